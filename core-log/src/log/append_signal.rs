//! Waiting for appends to a set of partitions.
//!
//! A long-poll (a broker fetch, an embedded consumer's poll) registers its wake-ups first, then
//! reads, then waits: an append between the read and the wait is not missed. Only appends to
//! its own partitions wake it, so one busy topic does not make every idle reader of other
//! topics re-read all its partitions.
//!
//! ```text
//! signal = log.next_append_to(tps)   // registered now
//! read(tps)                          // nothing new?
//! signal.await                       // an append to one of tps (or its deletion)
//! ```

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::sync::Notify;
use tokio::sync::futures::OwnedNotified;

/// Completes at the next append to any partition it watches; see the module docs.
///
/// Watching nothing, it never completes: callers wait with a deadline.
#[must_use = "a signal does nothing unless awaited"]
pub struct AppendSignal {
    waits: Vec<Pin<Box<OwnedNotified>>>,
}

impl std::fmt::Debug for AppendSignal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppendSignal")
            .field("watched", &self.waits.len())
            .finish()
    }
}

impl AppendSignal {
    /// Registers a wake-up with each of `notifies` now.
    pub(crate) fn new<'a>(notifies: impl IntoIterator<Item = &'a Arc<Notify>>) -> Self {
        let waits = notifies
            .into_iter()
            .map(|n| {
                let mut w = Box::pin(Arc::clone(n).notified_owned());
                w.as_mut().enable();
                w
            })
            .collect();
        Self { waits }
    }
}

impl Future for AppendSignal {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        for w in &mut self.waits {
            if w.as_mut().poll(cx).is_ready() {
                return Poll::Ready(());
            }
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ready(s: &mut AppendSignal) -> bool {
        Pin::new(s)
            .poll(&mut Context::from_waker(std::task::Waker::noop()))
            .is_ready()
    }

    #[test]
    fn fires_on_a_watched_notify_only_and_remembers_one_before_the_wait() {
        let (a, b, other) = (
            Arc::new(Notify::new()),
            Arc::new(Notify::new()),
            Arc::new(Notify::new()),
        );
        let mut s = AppendSignal::new([&a, &b]);
        assert!(!ready(&mut s));
        other.notify_waiters();
        assert!(!ready(&mut s), "not watched");
        // Notified before anyone polls: registered at creation, so not lost.
        b.notify_waiters();
        assert!(ready(&mut s));
        let mut none = AppendSignal::new([]);
        assert!(!ready(&mut none));
    }
}
