//! Group commit: one thread fsyncs, once per partition, everything appended since its last
//! round, then completes every `acks=all` append that was waiting for it. Appends that arrive
//! during an fsync wait for the next round, so the fsync rate adapts to the load and many
//! producers share each fsync.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use parking_lot::{Condvar, Mutex};
use tokio::sync::oneshot;

use super::partition::Partition;
use crate::{Error, Result, TopicPartition};

type Resolver = Box<dyn Fn(&TopicPartition) -> Option<Arc<Partition>> + Send + Sync>;
/// Called once with the outcome of the fsync covering its offset.
pub(crate) type DurableCallback = Box<dyn FnOnce(Result<()>) + Send>;
type Waiter = (i64, DurableCallback);

#[derive(Default)]
struct State {
    waiters: HashMap<TopicPartition, Vec<Waiter>>,
    background: HashSet<TopicPartition>,
    shutdown: bool,
}

struct Shared {
    state: Mutex<State>,
    cond: Condvar,
    resolver: OnceLock<Resolver>,
}

/// The handle partitions use to ask for fsyncs.
#[derive(Clone)]
pub(crate) struct FlusherHandle(Arc<Shared>);

impl std::fmt::Debug for FlusherHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FlusherHandle")
    }
}

/// Most fsyncs run at once in one round (different files sync in parallel on most disks).
const PARALLEL_SYNCS: usize = 8;

impl FlusherHandle {
    /// Starts the flusher thread; `resolver` is set once the partitions can be looked up.
    pub(crate) fn start() -> std::io::Result<(Self, std::thread::JoinHandle<()>)> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            cond: Condvar::new(),
            resolver: OnceLock::new(),
        });
        let s = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("sluice-flusher".into())
            .spawn(move || run(&s))?;
        Ok((Self(shared), thread))
    }

    pub(crate) fn set_resolver(&self, r: Resolver) {
        let _ = self.0.resolver.set(r);
    }

    /// Waits until `tp` is fsynced up to `offset`.
    pub(crate) async fn wait(&self, tp: TopicPartition, offset: i64) -> Result<()> {
        let (tx, rx) = oneshot::channel();
        self.on_durable(
            tp,
            offset,
            Box::new(move |r| {
                let _ = tx.send(r);
            }),
        );
        rx.await.map_err(|_| Error::Closed("log"))?
    }

    /// Calls `done` once `tp` is fsynced up to `offset` (or the fsync failed), from the
    /// flusher thread.
    pub(crate) fn on_durable(&self, tp: TopicPartition, offset: i64, done: DurableCallback) {
        {
            let mut st = self.0.state.lock();
            if st.shutdown {
                drop(st);
                done(Err(Error::Closed("log")));
                return;
            }
            st.waiters.entry(tp).or_default().push((offset, done));
        }
        self.0.cond.notify_one();
    }

    /// Asks for an fsync of `tp` without waiting for it (after a segment roll).
    pub(crate) fn flush_in_background(&self, tp: TopicPartition) {
        self.0.state.lock().background.insert(tp);
        self.0.cond.notify_one();
    }

    /// Stops the thread after it completes what is queued.
    pub(crate) fn shutdown(&self) {
        self.0.state.lock().shutdown = true;
        self.0.cond.notify_one();
    }
}

fn run(shared: &Shared) {
    loop {
        let (waiters, background, shutdown) = {
            let mut st = shared.state.lock();
            while st.waiters.is_empty() && st.background.is_empty() && !st.shutdown {
                shared.cond.wait_for(&mut st, Duration::from_secs(1));
            }
            (
                std::mem::take(&mut st.waiters),
                std::mem::take(&mut st.background),
                st.shutdown,
            )
        };
        let mut tps: Vec<TopicPartition> = waiters.keys().cloned().collect();
        tps.extend(
            background
                .into_iter()
                .filter(|tp| !waiters.contains_key(tp)),
        );
        let results = sync_all(shared, &tps);
        for (tp, ws) in waiters {
            let res = results.get(&tp);
            for (offset, done) in ws {
                let r = match res {
                    Some(Ok(rp)) if *rp >= offset => Ok(()),
                    Some(Ok(rp)) => Err(Error::Timeout(format!(
                        "{tp} flushed to {rp}, below {offset}"
                    ))),
                    Some(Err(e)) => Err(clone_for_waiter(e)),
                    None => Err(Error::UnknownPartition {
                        topic: tp.topic.to_string(),
                        partition: tp.partition,
                    }),
                };
                done(r);
            }
        }
        if shutdown {
            let st = shared.state.lock();
            if st.waiters.is_empty() && st.background.is_empty() {
                return;
            }
        }
    }
}

/// fsyncs each partition once, up to [`PARALLEL_SYNCS`] at a time.
fn sync_all(shared: &Shared, tps: &[TopicPartition]) -> HashMap<TopicPartition, Result<i64>> {
    let Some(resolve) = shared.resolver.get() else {
        return HashMap::new();
    };
    let parts: Vec<(TopicPartition, Arc<Partition>)> = tps
        .iter()
        .filter_map(|tp| resolve(tp).map(|p| (tp.clone(), p)))
        .collect();
    let results = super::parallel_map(&parts, PARALLEL_SYNCS, |(_, p)| p.flush());
    parts.into_iter().map(|(tp, _)| tp).zip(results).collect()
}

/// The error each waiter of a failed fsync gets (the original goes to the log).
fn clone_for_waiter(err: &Error) -> Error {
    match err {
        Error::Io { path, source } => Error::Io {
            path: path.clone(),
            source: std::io::Error::new(source.kind(), source.to_string()),
        },
        Error::LogDirOffline { dir } => Error::LogDirOffline { dir: dir.clone() },
        other => Error::InvalidRequest(other.to_string()),
    }
}
