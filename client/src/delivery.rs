//! Delivery reports of a Kafka producer without an allocation per record.
//!
//! Every `send` takes the next sequence number; librdkafka carries it as the message's opaque
//! (a plain integer) back to the delivery callback. Sequence numbers map to cells of chunks of
//! [`CHUNK`] cells, allocated one chunk per [`CHUNK`] records; the delivery future of a record
//! holds its chunk by reference count. The producer forgets a chunk once every record of it
//! is complete; the chunk itself lives while a future still points into it.
//!
//! ```text
//! send -> seq = next++ -> chunk[seq / CHUNK].cell[seq % CHUNK] <- DeliveryFuture polls
//!                |                         ^
//!          librdkafka (opaque = seq) --> delivery callback completes the cell, wakes waiters
//! ```

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{
    AtomicBool, AtomicI32, AtomicI64, AtomicU8, AtomicU64, AtomicUsize, Ordering,
};
use std::task::{Context, Poll, Waker};

use parking_lot::Mutex;

use crate::RecordMetadata;
use crate::{Error, Result};

/// Records per chunk.
pub const CHUNK: usize = 256;

const PENDING: u8 = 0;
const DELIVERED: u8 = 1;
const FAILED: u8 = 2;

#[derive(Debug, Default)]
struct Cell {
    state: AtomicU8,
    partition: AtomicI32,
    offset: AtomicI64,
    timestamp: AtomicI64,
}

/// [`CHUNK`] delivery cells.
#[derive(Debug)]
pub struct Chunk {
    cells: Box<[Cell]>,
    /// Cells not yet complete.
    open: AtomicUsize,
    /// Errors of failed cells, by index (rare).
    errors: Mutex<Vec<(usize, Arc<Error>)>>,
    wakers: Mutex<Vec<Waker>>,
    /// Whether `wakers` may hold any: completions skip the lock otherwise.
    waiting: AtomicBool,
}

impl Chunk {
    fn new() -> Self {
        Self {
            cells: (0..CHUNK).map(|_| Cell::default()).collect(),
            open: AtomicUsize::new(CHUNK),
            errors: Mutex::new(Vec::new()),
            wakers: Mutex::new(Vec::new()),
            waiting: AtomicBool::new(false),
        }
    }

    /// Completes cell `index`; returns the wakers to wake and whether the chunk is all done.
    fn complete(&self, index: usize, outcome: Result<(i32, i64, i64)>) -> (Vec<Waker>, bool) {
        let cell = &self.cells[index];
        let state = match outcome {
            Ok((partition, offset, timestamp)) => {
                cell.partition.store(partition, Ordering::Relaxed);
                cell.offset.store(offset, Ordering::Relaxed);
                cell.timestamp.store(timestamp, Ordering::Relaxed);
                DELIVERED
            }
            Err(e) => {
                self.errors.lock().push((index, Arc::new(e)));
                FAILED
            }
        };
        // SeqCst with `waiting` below (and in `poll`): either the waiter sees the state, or
        // this sees the waiter.
        if cell
            .state
            .compare_exchange(PENDING, state, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
        {
            // Completed twice: librdkafka reports each message once, so this is a bug here.
            tracing::error!(index, "a delivery report arrived twice for one record");
            return (Vec::new(), false);
        }
        let wakers = if self.waiting.load(Ordering::SeqCst) {
            let mut w = self.wakers.lock();
            self.waiting.store(false, Ordering::SeqCst);
            std::mem::take(&mut *w)
        } else {
            Vec::new()
        };
        let all_done = self.open.fetch_sub(1, Ordering::AcqRel) == 1;
        (wakers, all_done)
    }

    fn poll(
        &self,
        index: usize,
        cx: &Context<'_>,
    ) -> Poll<std::result::Result<(i32, i64, i64), Arc<Error>>> {
        if let Some(r) = self.outcome(index) {
            return Poll::Ready(r);
        }
        {
            let mut w = self.wakers.lock();
            if !w.iter().any(|x| x.will_wake(cx.waker())) {
                w.push(cx.waker().clone());
            }
            self.waiting.store(true, Ordering::SeqCst);
        }
        match self.outcome(index) {
            Some(r) => Poll::Ready(r),
            None => Poll::Pending,
        }
    }

    fn outcome(&self, index: usize) -> Option<std::result::Result<(i32, i64, i64), Arc<Error>>> {
        let cell = &self.cells[index];
        match cell.state.load(Ordering::SeqCst) {
            DELIVERED => Some(Ok((
                cell.partition.load(Ordering::Relaxed),
                cell.offset.load(Ordering::Relaxed),
                cell.timestamp.load(Ordering::Relaxed),
            ))),
            FAILED => {
                let errors = self.errors.lock();
                let e = errors
                    .iter()
                    .find(|(i, _)| *i == index)
                    .map(|(_, e)| Arc::clone(e))
                    .unwrap_or_else(|| {
                        Arc::new(Error::InvalidRequest(
                            "a failed delivery lost its error".into(),
                        ))
                    });
                Some(Err(e))
            }
            _ => None,
        }
    }
}

/// The record side of one delivery: polled by its [`DeliveryFuture`](crate::DeliveryFuture).
#[derive(Debug)]
pub struct Pending {
    chunk: Arc<Chunk>,
    index: usize,
    topic: Arc<str>,
}

impl Pending {
    pub fn poll(&self, cx: &Context<'_>) -> Poll<Result<RecordMetadata>> {
        self.chunk.poll(self.index, cx).map(|o| self.metadata(o))
    }

    /// The outcome if complete, without registering a waker.
    pub fn outcome(&self) -> Option<Result<RecordMetadata>> {
        self.chunk.outcome(self.index).map(|o| self.metadata(o))
    }

    fn metadata(
        &self,
        outcome: std::result::Result<(i32, i64, i64), Arc<Error>>,
    ) -> Result<RecordMetadata> {
        let (partition, offset, timestamp) = outcome.map_err(Error::Delivery)?;
        Ok(RecordMetadata {
            topic: Arc::clone(&self.topic),
            partition,
            offset,
            timestamp,
        })
    }
}

#[derive(Debug, Default)]
struct Table {
    /// Chunk number of `chunks[0]`.
    first: u64,
    chunks: VecDeque<Arc<Chunk>>,
    /// The next sequence number.
    next: u64,
}

/// The cells of one producer's records in flight.
#[derive(Debug, Default)]
pub struct Deliveries {
    table: Mutex<Table>,
    /// Records sent and not yet complete.
    in_flight: AtomicU64,
}

impl Deliveries {
    /// Takes the next sequence number, with the delivery future's side of it.
    pub fn start(&self, topic: Arc<str>) -> (u64, Pending) {
        let mut t = self.table.lock();
        let seq = t.next;
        t.next += 1;
        let index = (seq % CHUNK as u64) as usize;
        let filling = if index == 0 {
            None
        } else {
            t.chunks.back().map(Arc::clone)
        };
        let chunk = match filling {
            Some(c) => c,
            None => {
                if t.chunks.is_empty() {
                    t.first = seq / CHUNK as u64;
                }
                let c = Arc::new(Chunk::new());
                t.chunks.push_back(Arc::clone(&c));
                c
            }
        };
        drop(t);
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        (
            seq,
            Pending {
                chunk,
                index,
                topic,
            },
        )
    }

    /// Completes record `seq` with (partition, offset, timestamp) or an error; returns the
    /// records still in flight.
    pub fn complete(&self, seq: u64, outcome: Result<(i32, i64, i64)>) -> u64 {
        let chunk_no = seq / CHUNK as u64;
        let index = (seq % CHUNK as u64) as usize;
        let mut t = self.table.lock();
        let Some(chunk) = chunk_no
            .checked_sub(t.first)
            .and_then(|i| usize::try_from(i).ok())
            .and_then(|i| t.chunks.get(i))
        else {
            drop(t);
            tracing::error!(seq, "a delivery report for an unknown record");
            return self.in_flight.load(Ordering::Acquire);
        };
        let (wakers, all_done) = chunk.complete(index, outcome);
        if all_done {
            // Forget complete chunks from the front; the last one may still be filling.
            while t.chunks.len() > 1
                && t.chunks
                    .front()
                    .is_some_and(|c| c.open.load(Ordering::Acquire) == 0)
            {
                t.chunks.pop_front();
                t.first += 1;
            }
        }
        drop(t);
        for w in wakers {
            w.wake();
        }
        self.in_flight.fetch_sub(1, Ordering::AcqRel) - 1
    }

    /// Records sent and not yet complete.
    pub fn in_flight(&self) -> u64 {
        self.in_flight.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn poll(p: &Pending) -> Poll<Result<RecordMetadata>> {
        p.poll(&Context::from_waker(Waker::noop()))
    }

    #[test]
    fn cells_complete_out_of_order_and_chunks_are_forgotten() {
        let d = Deliveries::default();
        let started: Vec<(u64, Pending)> = (0..CHUNK * 2 + 3)
            .map(|_| d.start(Arc::from("t")))
            .collect();
        assert_eq!(d.in_flight(), (CHUNK * 2 + 3) as u64);
        assert_eq!(d.table.lock().chunks.len(), 3);
        // Complete in reverse: chunks are forgotten only from the front.
        for (seq, _) in started.iter().rev() {
            let outcome = if *seq == 5 {
                Err(Error::Timeout("t".into()))
            } else {
                Ok((1, *seq as i64 * 10, 7))
            };
            d.complete(*seq, outcome);
        }
        assert_eq!(d.in_flight(), 0);
        assert_eq!(d.table.lock().chunks.len(), 1, "the filling chunk stays");
        for (seq, p) in &started {
            match poll(p) {
                Poll::Ready(Ok(m)) => {
                    assert_eq!(
                        (m.partition, m.offset, m.timestamp),
                        (1, *seq as i64 * 10, 7)
                    );
                }
                Poll::Ready(Err(e)) => {
                    assert_eq!(*seq, 5);
                    assert!(matches!(e, Error::Delivery(_)), "{e}");
                }
                Poll::Pending => panic!("{seq} still pending"),
            }
        }
        // Sequence numbers go on in the chunk that stayed.
        let (seq, p) = d.start(Arc::from("t"));
        assert_eq!(seq, (CHUNK * 2 + 3) as u64);
        assert!(poll(&p).is_pending());
        d.complete(seq, Ok((0, 1, 2)));
        assert!(poll(&p).is_ready());
    }

    #[test]
    fn outcome_checks_without_registering_a_waker() {
        let d = Deliveries::default();
        let (seq, p) = d.start(Arc::from("t"));
        assert!(p.outcome().is_none());
        assert!(
            !p.chunk.waiting.load(Ordering::SeqCst),
            "no waker was registered"
        );
        d.complete(seq, Ok((2, 40, 9)));
        let m = p.outcome().unwrap().unwrap();
        assert_eq!(
            (&*m.topic, m.partition, m.offset, m.timestamp),
            ("t", 2, 40, 9)
        );
        let (seq, p) = d.start(Arc::from("t"));
        d.complete(seq, Err(Error::Timeout("gone".into())));
        assert!(matches!(p.outcome(), Some(Err(Error::Delivery(_)))));
    }

    #[tokio::test]
    async fn a_waiting_future_is_woken() {
        let d = Arc::new(Deliveries::default());
        let (seq, p) = d.start(Arc::from("t"));
        let completer = {
            let d = Arc::clone(&d);
            tokio::spawn(async move {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                d.complete(seq, Ok((3, 4, 5)));
            })
        };
        let m = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            std::future::poll_fn(|cx| p.poll(cx)),
        )
        .await
        .unwrap()
        .unwrap();
        assert_eq!((m.partition, m.offset), (3, 4));
        completer.await.unwrap();
    }
}
