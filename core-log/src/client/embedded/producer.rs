//! The embedded producer: an accumulator of open batches per partition, and a sender thread
//! that closes them on `linger.ms` / `batch.size`, appends them to the log, and completes
//! their records' futures per `acks` (acks=all through the log's group-commit flusher).
//!
//! ```text
//! send() -> partitioner -> Accumulator[tp].append (encodes the record into the open batch)
//!                                   |  full, or linger.ms passed, or flush()
//!                                   v
//!                    sender thread: stamp (pid, epoch, sequence) -> build (compress, CRC)
//!                                   -> Partition::append -> ack
//! ```
//!
//! With `enable.idempotence` (the default) the producer gets a producer id at construction, and
//! the one sender thread stamps each batch with the next sequence of its partition just before
//! building it, in the order the batches were sealed. The sequence advances only when the
//! append succeeds, so a failed batch leaves no gap for the next one to trip over.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, RwLock};
use rustc_hash::FxHashMap as HashMap;

use crate::client::config::{Acks, ProducerConfig};
use crate::client::partitioner::{StickyPartitioner, partition_for_key};
use crate::client::{BatchDone, ConsumerGroupMetadata, DeliveryFuture, Producer, ProducerRecord};
use crate::group::{CONSUMER_OFFSETS_TOPIC, OffsetAndMetadata};
use crate::log::{LogManager, Partition};
use crate::record::{BatchBuilder, HEADER_LEN, increment_sequence};
use crate::txn::TransactionCoordinator;
use crate::{Error, Result, TopicPartition};

/// A producer writing into an embedded log.
#[derive(Debug)]
pub struct EmbeddedProducer {
    shared: Arc<Shared>,
    sender: Option<JoinHandle<()>>,
}

#[derive(Debug)]
struct Open {
    builder: BatchBuilder,
    deadline: Instant,
    done: Arc<BatchDone>,
    reserved: usize,
    sticky: bool,
}

#[derive(Debug)]
struct Sealed {
    tp: TopicPartition,
    builder: BatchBuilder,
    done: Arc<BatchDone>,
    reserved: usize,
}

#[derive(Debug, Default)]
struct Accumulator {
    open: HashMap<TopicPartition, Open>,
    ready: Vec<Sealed>,
    /// Batches not known to be complete, for `flush`.
    outstanding: Vec<Arc<BatchDone>>,
    closing: bool,
}

#[derive(Debug)]
struct Shared {
    log: LogManager,
    config: ProducerConfig,
    partitioner: StickyPartitioner,
    acc: Mutex<Accumulator>,
    wake: Condvar,
    buffer_used: AtomicUsize,
    space: tokio::sync::Notify,
    partition_counts: RwLock<PartitionCounts>,
    /// Batches sealed so far (the sender watches it while spinning).
    sealed: std::sync::atomic::AtomicU64,
    /// Producer id and epoch with `enable.idempotence` (a transactional producer gets them
    /// from `init_transactions`).
    idempotence: RwLock<Option<(i64, i16)>>,
    /// With a `transactional.id`: the coordinator and this producer's transaction.
    txn: Option<Transactions>,
}

/// A transactional producer's side of its transactions.
#[derive(Debug)]
struct Transactions {
    coordinator: Arc<TransactionCoordinator>,
    id: String,
    state: Mutex<TxnLocal>,
}

#[derive(Debug, Default)]
struct TxnLocal {
    initialized: bool,
    in_transaction: bool,
    /// Partitions already added to the ongoing transaction.
    partitions: std::collections::HashSet<TopicPartition>,
}

/// Partition counts by topic, with the last topic used kept by handle.
#[derive(Debug, Default)]
struct PartitionCounts {
    last: Option<(Arc<str>, i32)>,
    by_topic: HashMap<Arc<str>, i32>,
}

impl EmbeddedProducer {
    pub(crate) fn new(
        log: LogManager,
        mut config: ProducerConfig,
        coordinator: impl FnOnce() -> Result<Arc<TransactionCoordinator>>,
    ) -> Result<Self> {
        config.resolve()?;
        let txn = match &config.transactional_id {
            Some(id) => Some(Transactions {
                coordinator: coordinator()?,
                id: id.clone(),
                state: Mutex::new(TxnLocal::default()),
            }),
            None => None,
        };
        let idempotence = if config.enable_idempotence && txn.is_none() {
            Some(log.init_producer_id()?)
        } else {
            None
        };
        let shared = Arc::new(Shared {
            log,
            partitioner: StickyPartitioner::from_entropy(),
            config,
            acc: Mutex::new(Accumulator::default()),
            wake: Condvar::new(),
            buffer_used: AtomicUsize::new(0),
            space: tokio::sync::Notify::new(),
            partition_counts: RwLock::new(PartitionCounts::default()),
            sealed: std::sync::atomic::AtomicU64::new(0),
            idempotence: RwLock::new(idempotence),
            txn,
        });
        let s = Arc::clone(&shared);
        let sender = std::thread::Builder::new()
            .name("sluice-producer-sender".into())
            .spawn(move || run_sender(&s))
            .map_err(|e| Error::io("producer sender thread", e))?;
        Ok(Self {
            shared,
            sender: Some(sender),
        })
    }

    fn partition_count_cached(&self, topic: &Arc<str>) -> Result<i32> {
        {
            let counts = self.shared.partition_counts.read();
            // The same topic handle as last time: no hashing, no string compare.
            if let Some((last, n)) = &counts.last
                && Arc::ptr_eq(last, topic)
            {
                return Ok(*n);
            }
        }
        let mut counts = self.shared.partition_counts.write();
        let n = match counts.by_topic.get(topic) {
            Some(n) => *n,
            None => {
                let n = self.shared.log.partition_count(topic)?;
                counts.by_topic.insert(Arc::clone(topic), n);
                n
            }
        };
        counts.last = Some((Arc::clone(topic), n));
        Ok(n)
    }

    /// Reserves `size` bytes of `buffer.memory`, waiting up to `max.block.ms`.
    async fn reserve(&self, size: usize) -> Result<()> {
        let limit = self.shared.config.buffer_memory;
        let used = &self.shared.buffer_used;
        // Fast path: room in the buffer (or an empty buffer: a record alone bigger than the
        // buffer still goes).
        let prev = used.fetch_add(size, Ordering::AcqRel);
        if prev + size <= limit || prev == 0 {
            return Ok(());
        }
        used.fetch_sub(size, Ordering::AcqRel);
        let deadline =
            tokio::time::Instant::now() + Duration::from_millis(self.shared.config.max_block_ms);
        loop {
            let space = self.shared.space.notified();
            tokio::pin!(space);
            space.as_mut().enable();
            let prev = used.fetch_add(size, Ordering::AcqRel);
            if prev + size <= limit || prev == 0 {
                return Ok(());
            }
            used.fetch_sub(size, Ordering::AcqRel);
            // Make sure what is queued goes out, so space comes back.
            self.shared.wake.notify_one();
            if tokio::time::timeout_at(deadline, space).await.is_err() {
                return Err(Error::BufferExhausted {
                    buffer_memory: limit,
                    max_block_ms: self.shared.config.max_block_ms,
                });
            }
        }
    }

    /// The producer id and epoch stamped on every batch, if `enable.idempotence` is on.
    pub fn producer_id_and_epoch(&self) -> Option<(i64, i16)> {
        *self.shared.idempotence.read()
    }

    fn transactions(&self) -> Result<&Transactions> {
        self.shared
            .txn
            .as_ref()
            .ok_or_else(|| Error::InvalidTxnState("this producer has no transactional.id".into()))
    }

    /// Registers `transactional.id` with the transaction coordinator: gets its producer id with
    /// a new epoch, fencing any earlier producer with the same id and aborting what it left
    /// open (Kafka's `initTransactions`).
    pub async fn init_transactions(&self) -> Result<()> {
        let txn = self.transactions()?;
        let timeout = i32::try_from(self.shared.config.transaction_timeout_ms).unwrap_or(i32::MAX);
        let (pid, epoch) = txn.coordinator.init_producer_id(&txn.id, timeout)?;
        *self.shared.idempotence.write() = Some((pid, epoch));
        *txn.state.lock() = TxnLocal {
            initialized: true,
            ..TxnLocal::default()
        };
        Ok(())
    }

    /// Starts a transaction: what is sent until commit or abort is all visible to
    /// `read_committed` consumers, or none of it.
    pub fn begin_transaction(&self) -> Result<()> {
        let txn = self.transactions()?;
        let mut st = txn.state.lock();
        if !st.initialized {
            return Err(Error::InvalidTxnState(
                "call init_transactions first".into(),
            ));
        }
        if st.in_transaction {
            return Err(Error::InvalidTxnState(
                "a transaction is already in progress".into(),
            ));
        }
        st.in_transaction = true;
        st.partitions.clear();
        Ok(())
    }

    /// Kafka's `sendOffsetsToTransaction`: commits `offsets` (the next offset to consume of
    /// each partition) for `group` as part of the open transaction, so a consume-transform-
    /// produce loop is exactly once. The group's partition of `__consumer_offsets` joins the
    /// transaction (AddOffsetsToTxn), then the offset-commit records go through this producer
    /// as transactional records of that partition (TxnOffsetCommit), stamped and sequenced as
    /// any other batch. They stay pending in the offset store (not returned by fetches) until
    /// the transaction commits, and are dropped if it aborts.
    ///
    /// The group checks are an OffsetCommit's: a stale generation gives
    /// [`Error::IllegalGeneration`], an unknown member [`Error::UnknownMemberId`]; metadata
    /// from outside the group ([`ConsumerGroupMetadata::new`]) is accepted while the group
    /// has no members.
    pub async fn send_offsets_to_transaction(
        &self,
        offsets: Vec<(TopicPartition, i64)>,
        group: &ConsumerGroupMetadata,
    ) -> Result<()> {
        let txn = self.transactions()?;
        if !txn.state.lock().in_transaction {
            return Err(Error::InvalidTxnState("no transaction in progress".into()));
        }
        let (pid, epoch) = self
            .producer_id_and_epoch()
            .ok_or_else(|| Error::InvalidTxnState("call init_transactions first".into()))?;
        let groups = super::group_coordinator_of(&self.shared.log)?;
        groups.check_txn_offset_commit(
            &group.group_id,
            group.generation_id,
            &group.member_id,
            group.group_instance_id.as_deref(),
        )?;
        let store = groups.offsets();
        let records = store.txn_offset_commit_records(
            &group.group_id,
            offsets
                .into_iter()
                .map(|(tp, o)| (tp, OffsetAndMetadata::new(o)))
                .collect(),
        )?;
        if records.is_empty() {
            return Ok(());
        }
        let partition = store.partition_for(&group.group_id);
        let offsets_tp = TopicPartition::new(CONSUMER_OFFSETS_TOPIC, partition);
        // AddOffsetsToTxn: the group's partition joins the transaction (the sender then finds
        // it added).
        {
            let mut st = txn.state.lock();
            if !st.partitions.contains(&offsets_tp) {
                txn.coordinator.add_partitions(
                    &txn.id,
                    pid,
                    epoch,
                    std::slice::from_ref(&offsets_tp),
                )?;
                st.partitions.insert(offsets_tp.clone());
            }
        }
        // TxnOffsetCommit: the records, in this producer's transaction.
        let mut sent = Vec::with_capacity(records.len());
        for r in records {
            let record = ProducerRecord {
                topic: Arc::clone(&offsets_tp.topic),
                partition: Some(partition),
                key: Some(r.key),
                value: Some(r.value),
                headers: Vec::new(),
                timestamp: Some(r.committed.commit_timestamp),
            };
            sent.push((r.tp, r.committed, self.send(record).await?));
        }
        self.flush().await?;
        let mut pending = Vec::with_capacity(sent.len());
        for (tp, committed, delivery) in sent {
            let meta = delivery.await?;
            pending.push((tp, committed, meta.offset));
        }
        store.add_pending(partition, pid, epoch, &group.group_id, pending);
        Ok(())
    }

    /// Sends what is queued, then commits the transaction.
    pub async fn commit_transaction(&self) -> Result<()> {
        self.end_transaction(true).await
    }

    /// Sends what is queued, then aborts the transaction: none of it becomes visible.
    pub async fn abort_transaction(&self) -> Result<()> {
        self.end_transaction(false).await
    }

    async fn end_transaction(&self, commit: bool) -> Result<()> {
        let txn = self.transactions()?;
        if !txn.state.lock().in_transaction {
            return Err(Error::InvalidTxnState("no transaction in progress".into()));
        }
        let flushed = self.flush().await;
        if commit {
            // A record that failed must not be committed around: the caller aborts instead.
            flushed?;
        }
        let (pid, epoch) = self
            .producer_id_and_epoch()
            .ok_or_else(|| Error::InvalidTxnState("call init_transactions first".into()))?;
        let added = !txn.state.lock().partitions.is_empty();
        if added {
            txn.coordinator
                .end_transaction(&txn.id, pid, epoch, commit)?;
        }
        let mut st = txn.state.lock();
        st.in_transaction = false;
        st.partitions.clear();
        Ok(())
    }

    /// Closes the producer: sends what is queued, waits for it, stops the sender thread.
    pub async fn close(mut self) -> Result<()> {
        let r = self.flush().await;
        self.stop();
        r
    }

    fn stop(&mut self) {
        self.shared.acc.lock().closing = true;
        self.shared.wake.notify_all();
        if let Some(t) = self.sender.take() {
            let _ = t.join();
        }
    }
}

impl Drop for EmbeddedProducer {
    fn drop(&mut self) {
        // Queued records are still sent (as Kafka's close does with no timeout).
        self.stop();
    }
}

impl Producer for EmbeddedProducer {
    async fn send(&self, record: ProducerRecord) -> Result<DeliveryFuture> {
        let cfg = &self.shared.config;
        if let Some(txn) = &self.shared.txn
            && !txn.state.lock().in_transaction
        {
            return Err(Error::InvalidTxnState(
                "a transactional producer sends only inside a transaction (begin_transaction)"
                    .into(),
            ));
        }
        let count = self.partition_count_cached(&record.topic)?;
        let (partition, sticky) = match record.partition {
            Some(p) if p < 0 || p >= count => {
                return Err(Error::UnknownPartition {
                    topic: record.topic.to_string(),
                    partition: p,
                });
            }
            Some(p) => (p, false),
            None => match &record.key {
                Some(k) if !cfg.partitioner_ignore_keys => (partition_for_key(k, count), false),
                _ => (
                    self.shared.partitioner.partition(&record.topic, count),
                    true,
                ),
            },
        };
        let timestamp = record
            .timestamp
            .unwrap_or_else(|| self.shared.log.clock().now_ms());
        // An upper bound of the record's encoded size, without walking varints.
        let size = 32
            + record.key.as_ref().map_or(0, |k| k.len())
            + record.value.as_ref().map_or(0, |v| v.len())
            + record
                .headers
                .iter()
                .map(|h| 10 + h.key.len() + h.value.as_ref().map_or(0, |v| v.len()))
                .sum::<usize>();
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
            topic: Arc::clone(&record.topic),
            partition,
        };
        let mut acc = self.shared.acc.lock();
        if acc.closing {
            drop(acc);
            self.shared.buffer_used.fetch_sub(size, Ordering::AcqRel);
            return Err(Error::Closed("producer"));
        }
        let mut wake = false;
        let Accumulator {
            open,
            ready,
            outstanding,
            ..
        } = &mut *acc;
        let batch = open
            .entry(tp.clone())
            .or_insert_with(|| new_open(cfg, outstanding, sticky));
        if !batch.builder.is_empty() && batch.builder.estimated_size() + size > cfg.batch_size {
            let full = std::mem::replace(batch, new_open(cfg, outstanding, sticky));
            seal(&self.shared, ready, tp.clone(), full);
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
                seal(&self.shared, ready, tp.clone(), full);
            }
            wake = true;
        } else if cfg.linger_ms == 0 {
            wake = true;
        }
        drop(acc);
        if wake {
            self.shared.wake.notify_one();
        }
        Ok(DeliveryFuture::in_batch(
            done, delta, tp.topic, partition, timestamp,
        ))
    }

    async fn flush(&self) -> Result<()> {
        let waiting: Vec<Arc<BatchDone>> = {
            let mut acc = self.shared.acc.lock();
            let Accumulator {
                open,
                ready,
                outstanding,
                ..
            } = &mut *acc;
            for (tp, o) in open.drain() {
                seal(&self.shared, ready, tp, o);
            }
            outstanding.retain(|d| !d.is_done());
            outstanding.clone()
        };
        self.shared.wake.notify_one();
        let mut first_err = None;
        for d in waiting {
            if let Err(e) = d.wait().await {
                first_err.get_or_insert(Error::Delivery(e));
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    async fn partition_count(&self, topic: &str) -> Result<i32> {
        let n = self.shared.log.partition_count(topic)?;
        let mut counts = self.shared.partition_counts.write();
        counts.by_topic.insert(Arc::from(topic), n);
        counts.last = None;
        Ok(n)
    }
}

fn new_open(cfg: &ProducerConfig, outstanding: &mut Vec<Arc<BatchDone>>, sticky: bool) -> Open {
    let done = Arc::new(BatchDone::default());
    if outstanding.len() > 4096 {
        outstanding.retain(|d| !d.is_done());
    }
    outstanding.push(Arc::clone(&done));
    Open {
        builder: BatchBuilder::with_capacity(
            cfg.compression,
            cfg.batch_size.min(1 << 20) + HEADER_LEN,
        ),
        deadline: Instant::now() + Duration::from_millis(cfg.linger_ms),
        done,
        reserved: 0,
        sticky,
    }
}

/// Times the sender yields, looking for a sealed batch, before it sleeps.
const SPINS: usize = 64;

fn seal(shared: &Shared, ready: &mut Vec<Sealed>, tp: TopicPartition, o: Open) {
    shared.sealed.fetch_add(1, Ordering::Relaxed);
    if o.sticky {
        // KIP-480: an unkeyed batch closed, stick to another partition for the next one.
        shared.partitioner.on_new_batch(&tp.topic, tp.partition);
    }
    ready.push(Sealed {
        tp,
        builder: o.builder,
        done: o.done,
        reserved: o.reserved,
    });
}

fn run_sender(shared: &Arc<Shared>) {
    let mut partitions: HashMap<TopicPartition, Arc<Partition>> = HashMap::default();
    // The next sequence of each partition (idempotence): only this thread touches it, and it
    // sends each partition's batches in the order they were sealed.
    let mut sequences = Sequences::default();
    // Spinning pays only when batches come faster than a thread wakes up; after a few spins
    // that found nothing, spin only now and then (many producers on few cores must not burn
    // CPU looking for each other's work).
    let mut misses = 0u32;
    let mut waits = 0u32;
    loop {
        let batches = {
            let mut acc = shared.acc.lock();
            let mut spun = false;
            loop {
                let now = Instant::now();
                let closing = acc.closing;
                let Accumulator { open, ready, .. } = &mut *acc;
                let due: Vec<TopicPartition> = open
                    .iter()
                    .filter(|(_, o)| closing || o.deadline <= now)
                    .map(|(tp, _)| tp.clone())
                    .collect();
                for tp in due {
                    if let Some(o) = open.remove(&tp) {
                        seal(shared, ready, tp, o);
                    }
                }
                if !ready.is_empty() {
                    break std::mem::take(ready);
                }
                if closing {
                    return;
                }
                let next = open.values().map(|o| o.deadline).min();
                let wait = next.map_or(Duration::from_millis(100), |d| {
                    d.saturating_duration_since(now)
                });
                waits = waits.wrapping_add(1);
                if !spun && next.is_some() && (misses < 4 || waits.is_multiple_of(64)) {
                    // Records are coming: look again for a few tens of microseconds before
                    // sleeping, so a busy producer rarely pays for waking this thread.
                    spun = true;
                    let seen = shared.sealed.load(Ordering::Relaxed);
                    let found = parking_lot::MutexGuard::unlocked(&mut acc, || {
                        (0..SPINS).any(|_| {
                            std::thread::yield_now();
                            shared.sealed.load(Ordering::Relaxed) != seen
                        })
                    });
                    misses = if found { 0 } else { misses.saturating_add(1) };
                    continue;
                }
                shared
                    .wake
                    .wait_for(&mut acc, wait.max(Duration::from_micros(50)));
            }
        };
        for b in batches {
            send_batch(shared, &mut partitions, &mut sequences, b);
        }
    }
}

/// The next sequence of each partition, for one producer id and epoch.
#[derive(Debug, Default)]
struct Sequences {
    epoch: Option<(i64, i16)>,
    next: HashMap<TopicPartition, i32>,
}

fn send_batch(
    shared: &Arc<Shared>,
    partitions: &mut HashMap<TopicPartition, Arc<Partition>>,
    sequences: &mut Sequences,
    b: Sealed,
) {
    let Sealed {
        tp,
        builder,
        done,
        reserved,
    } = b;
    let release = {
        let shared = Arc::clone(shared);
        move || {
            shared.buffer_used.fetch_sub(reserved, Ordering::AcqRel);
            shared.space.notify_waiters();
        }
    };
    let partition = match partitions.get(&tp) {
        Some(p) => Ok(Arc::clone(p)),
        None => shared.log.partition(&tp).inspect(|p| {
            partitions.insert(tp.clone(), Arc::clone(p));
        }),
    };
    let ids = *shared.idempotence.read();
    if let Some(ids) = ids
        && sequences.epoch != Some(ids)
    {
        // A new producer id or epoch starts every partition's sequence at 0.
        sequences.next.clear();
        sequences.epoch = Some(ids);
    }
    let (mut builder, sequence) = match ids {
        Some((pid, epoch)) => {
            let seq = sequences.next.get(&tp).copied().unwrap_or(0);
            (builder.producer(pid, epoch, seq), Some(seq))
        }
        None => (builder, None),
    };
    let mut partition = partition;
    if let (Some(txn), Some((pid, epoch))) = (&shared.txn, ids) {
        let mut st = txn.state.lock();
        if st.in_transaction {
            builder = builder.transactional();
            if !st.partitions.contains(&tp) {
                // Kafka's AddPartitionsToTxn, before the first batch to a partition.
                match txn
                    .coordinator
                    .add_partitions(&txn.id, pid, epoch, std::slice::from_ref(&tp))
                {
                    Ok(()) => {
                        st.partitions.insert(tp.clone());
                    }
                    Err(e) => partition = Err(e),
                }
            }
        }
    }
    let records = builder.len() as i32;
    let result = partition.and_then(|p| p.append(builder.build()).map(|info| (p, info)));
    if let (Some(seq), Ok(_)) = (sequence, &result) {
        sequences
            .next
            .insert(tp.clone(), increment_sequence(seq, records));
    }
    match result {
        Err(e) => {
            partitions.remove(&tp);
            done.complete(Err(Arc::new(e)));
            release();
        }
        Ok((p, info)) => {
            let outcome = (info.base_offset, info.log_append_time);
            match shared.config.acks {
                Acks::None | Acks::Leader => {
                    done.complete(Ok(outcome));
                    release();
                }
                Acks::All => p.on_durable(
                    info.last_offset + 1,
                    Box::new(move |r| {
                        done.complete(r.map(|()| outcome).map_err(Arc::new));
                        release();
                    }),
                ),
            }
        }
    }
}
