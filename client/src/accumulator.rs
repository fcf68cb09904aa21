//! The record accumulator of Sluice's own producers (Kafka's `RecordAccumulator`): open batches
//! per partition, sealed on `batch.size`, `linger.ms` or `flush`, handed to one sender thread;
//! `buffer.memory` bounds what waits. The embedded producer's sender appends sealed batches to
//! the log, the native Kafka producer's sends them in Produce requests.
//!
//! ```text
//! append() -> partitioner -> open[tp] (the record encoded into its batch)
//!                                |  full, or linger.ms passed, or flush()
//!                                v
//!                 next_ready() on the sender thread -> Vec<Sealed>
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use rustc_hash::FxHashMap as HashMap;

use crate::config::ProducerConfig;
use crate::partitioner::{StickyPartitioner, partition_for_key};
use crate::{BatchDone, DeliveryFuture, ProducerRecord};
use crate::{Error, Result, TopicPartition};
use sluice_protocol::record::{BatchBuilder, HEADER_LEN};

/// A batch closed for appends, waiting for (or in) its send.
#[derive(Debug)]
pub struct Sealed {
    pub tp: TopicPartition,
    pub builder: BatchBuilder,
    pub done: Arc<BatchDone>,
    /// Bytes of `buffer.memory` it holds until [`Accumulator::release`].
    pub reserved: usize,
    /// When its first record was appended (for `delivery.timeout.ms`).
    pub created: Instant,
}

#[derive(Debug)]
struct Open {
    builder: BatchBuilder,
    created: Instant,
    deadline: Instant,
    done: Arc<BatchDone>,
    reserved: usize,
    sticky: bool,
}

#[derive(Debug, Default)]
struct State {
    open: HashMap<TopicPartition, Open>,
    ready: Vec<Sealed>,
    /// Batches not known to be complete, for `flush`.
    outstanding: Vec<Arc<BatchDone>>,
    closing: bool,
}

/// Open and sealed batches of one producer.
#[derive(Debug)]
pub struct Accumulator {
    config: ProducerConfig,
    partitioner: StickyPartitioner,
    state: Mutex<State>,
    wake: Condvar,
    buffer_used: AtomicUsize,
    space: tokio::sync::Notify,
    /// Batches sealed so far (the sender watches it while spinning).
    sealed: AtomicU64,
}

/// What the sender thread remembers between [`Accumulator::next_ready`] calls: how often
/// spinning found nothing lately.
#[derive(Debug, Default)]
pub struct Pace {
    misses: u32,
    waits: u32,
}

/// Times the sender yields, looking for a sealed batch, before it sleeps.
const SPINS: usize = 64;

/// An upper bound of a record's encoded size, without walking varints.
fn size_bound(record: &ProducerRecord) -> usize {
    32 + record.key.as_ref().map_or(0, |k| k.len())
        + record.value.as_ref().map_or(0, |v| v.len())
        + record
            .headers
            .iter()
            .map(|h| 10 + h.key.len() + h.value.as_ref().map_or(0, |v| v.len()))
            .sum::<usize>()
}

impl Accumulator {
    pub fn new(config: ProducerConfig) -> Self {
        Self {
            config,
            partitioner: StickyPartitioner::from_entropy(),
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
            buffer_used: AtomicUsize::new(0),
            space: tokio::sync::Notify::new(),
            sealed: AtomicU64::new(0),
        }
    }

    pub fn config(&self) -> &ProducerConfig {
        &self.config
    }

    /// Queues `record` in the open batch of its partition (of `partition_count`, chosen as
    /// Kafka's default partitioner does unless the record names one), waiting for buffer
    /// space up to `max.block.ms`.
    pub async fn append(
        &self,
        record: ProducerRecord,
        partition_count: i32,
        timestamp: i64,
    ) -> Result<DeliveryFuture> {
        let cfg = &self.config;
        let (partition, sticky) = match record.partition {
            Some(p) if p < 0 || p >= partition_count => {
                return Err(Error::UnknownPartition {
                    topic: record.topic.to_string(),
                    partition: p,
                });
            }
            Some(p) => (p, false),
            None => match &record.key {
                Some(k) if !cfg.partitioner_ignore_keys => {
                    (partition_for_key(k, partition_count), false)
                }
                _ => (
                    self.partitioner.partition(&record.topic, partition_count),
                    true,
                ),
            },
        };
        let size = size_bound(&record);
        if size + HEADER_LEN > cfg.max_request_size {
            let exact = BatchBuilder::record_size(
                0,
                0,
                record.key.as_deref(),
                record.value.as_deref(),
                &record.headers,
            );
            if exact + HEADER_LEN > cfg.max_request_size {
                return Err(Error::RecordTooLarge {
                    size: exact + HEADER_LEN,
                    max: cfg.max_request_size,
                });
            }
        }
        self.reserve(size).await?;
        let tp = TopicPartition {
            topic: record.topic,
            partition,
        };
        let mut st = self.state.lock();
        if st.closing {
            drop(st);
            self.release(size);
            return Err(Error::Closed("producer"));
        }
        let mut wake = false;
        let State {
            open,
            ready,
            outstanding,
            ..
        } = &mut *st;
        let batch = open.entry(tp.clone()).or_insert_with(|| {
            // The sender learns of the batch's linger deadline.
            wake = true;
            new_open(cfg, outstanding, sticky)
        });
        if !batch.builder.is_empty() && batch.builder.estimated_size() + size > cfg.batch_size {
            let full = std::mem::replace(batch, new_open(cfg, outstanding, sticky));
            self.seal(ready, tp.clone(), full);
            wake = true;
        }
        let delta = batch.builder.append(
            timestamp,
            record.key.as_deref(),
            record.value.as_deref(),
            &record.headers,
        );
        batch.reserved += size;
        let done = Arc::clone(&batch.done);
        if batch.builder.estimated_size() >= cfg.batch_size {
            if let Some(full) = open.remove(&tp) {
                self.seal(ready, tp.clone(), full);
            }
            wake = true;
        } else if cfg.linger_ms == 0 {
            wake = true;
        }
        drop(st);
        if wake {
            self.wake.notify_one();
        }
        Ok(DeliveryFuture::in_batch(
            done, delta, tp.topic, partition, timestamp,
        ))
    }

    /// Reserves `size` bytes of `buffer.memory`, waiting up to `max.block.ms`.
    async fn reserve(&self, size: usize) -> Result<()> {
        let limit = self.config.buffer_memory;
        let used = &self.buffer_used;
        // Fast path: room in the buffer (or an empty buffer: a record alone bigger than the
        // buffer still goes).
        let prev = used.fetch_add(size, Ordering::AcqRel);
        if prev + size <= limit || prev == 0 {
            return Ok(());
        }
        used.fetch_sub(size, Ordering::AcqRel);
        let deadline =
            tokio::time::Instant::now() + Duration::from_millis(self.config.max_block_ms);
        loop {
            let space = self.space.notified();
            tokio::pin!(space);
            space.as_mut().enable();
            let prev = used.fetch_add(size, Ordering::AcqRel);
            if prev + size <= limit || prev == 0 {
                return Ok(());
            }
            used.fetch_sub(size, Ordering::AcqRel);
            // Make sure what is queued goes out, so space comes back.
            self.wake.notify_one();
            if tokio::time::timeout_at(deadline, space).await.is_err() {
                return Err(Error::BufferExhausted {
                    buffer_memory: limit,
                    max_block_ms: self.config.max_block_ms,
                });
            }
        }
    }

    /// Gives back the buffer space of a batch that is done with.
    pub fn release(&self, reserved: usize) {
        self.buffer_used.fetch_sub(reserved, Ordering::AcqRel);
        self.space.notify_waiters();
    }

    fn seal(&self, ready: &mut Vec<Sealed>, tp: TopicPartition, o: Open) {
        self.sealed.fetch_add(1, Ordering::Relaxed);
        if o.sticky {
            // KIP-480: an unkeyed batch closed, stick to another partition for the next one.
            self.partitioner.on_new_batch(&tp.topic, tp.partition);
        }
        ready.push(Sealed {
            tp,
            builder: o.builder,
            done: o.done,
            reserved: o.reserved,
            created: o.created,
        });
    }

    /// Seals every open batch; returns the batches not yet known to be complete.
    fn seal_all(&self) -> Vec<Arc<BatchDone>> {
        let mut st = self.state.lock();
        let State {
            open,
            ready,
            outstanding,
            ..
        } = &mut *st;
        for (tp, o) in open.drain() {
            self.seal(ready, tp, o);
        }
        outstanding.retain(|d| !d.is_done());
        outstanding.clone()
    }

    /// Sends everything queued now and waits for all of it; the first failure is returned.
    pub async fn flush(&self) -> Result<()> {
        let waiting = self.seal_all();
        self.wake.notify_one();
        let mut first_err = None;
        for d in waiting {
            if let Err(e) = d.wait().await {
                first_err.get_or_insert(Error::Delivery(e));
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// Refuses new records and lets the sender seal what is open; [`Self::next_ready`] returns
    /// `None` once nothing is left.
    pub fn close(&self) {
        self.state.lock().closing = true;
        self.wake.notify_all();
    }

    /// Wakes the sender (e.g. when it has something of its own to do), once.
    pub fn nudge(&self) {
        self.wake.notify_all();
    }

    /// Waits (on the sender thread) until batches are sealed, at most `max_wait`; seals those
    /// whose `linger.ms` passed. `None` when closed and drained; an empty list when
    /// `max_wait` passed with nothing ready.
    pub fn next_ready(&self, pace: &mut Pace, max_wait: Duration) -> Option<Vec<Sealed>> {
        let mut st = self.state.lock();
        let mut spun = false;
        let give_up = Instant::now() + max_wait;
        loop {
            let now = Instant::now();
            let closing = st.closing;
            let State { open, ready, .. } = &mut *st;
            let due: Vec<TopicPartition> = open
                .iter()
                .filter(|(_, o)| closing || o.deadline <= now)
                .map(|(tp, _)| tp.clone())
                .collect();
            for tp in due {
                if let Some(o) = open.remove(&tp) {
                    self.seal(ready, tp, o);
                }
            }
            if !ready.is_empty() {
                return Some(std::mem::take(ready));
            }
            if closing {
                return None;
            }
            if now >= give_up {
                return Some(Vec::new());
            }
            let next = open.values().map(|o| o.deadline).min();
            let wait = next
                .map_or(Duration::from_millis(100), |d| {
                    d.saturating_duration_since(now)
                })
                .min(give_up.saturating_duration_since(now));
            pace.waits = pace.waits.wrapping_add(1);
            // Spinning pays only when batches come faster than a thread wakes up; after a few
            // spins that found nothing, spin only now and then (many producers on few cores
            // must not burn CPU looking for each other's work).
            if !spun && next.is_some() && (pace.misses < 4 || pace.waits.is_multiple_of(64)) {
                spun = true;
                let seen = self.sealed.load(Ordering::Relaxed);
                let found = parking_lot::MutexGuard::unlocked(&mut st, || {
                    (0..SPINS).any(|_| {
                        std::thread::yield_now();
                        self.sealed.load(Ordering::Relaxed) != seen
                    })
                });
                pace.misses = if found {
                    0
                } else {
                    pace.misses.saturating_add(1)
                };
                continue;
            }
            self.wake
                .wait_for(&mut st, wait.max(Duration::from_micros(50)));
        }
    }
}

fn new_open(cfg: &ProducerConfig, outstanding: &mut Vec<Arc<BatchDone>>, sticky: bool) -> Open {
    let done = Arc::new(BatchDone::default());
    if outstanding.len() > 4096 {
        outstanding.retain(|d| !d.is_done());
    }
    outstanding.push(Arc::clone(&done));
    let now = Instant::now();
    Open {
        builder: BatchBuilder::with_capacity(
            cfg.compression,
            // Grown as records come: a batch of a few records does not hold a megabyte.
            cfg.batch_size.min(256 << 10) + HEADER_LEN,
        ),
        created: now,
        deadline: now + Duration::from_millis(cfg.linger_ms),
        done,
        reserved: 0,
        sticky,
    }
}
