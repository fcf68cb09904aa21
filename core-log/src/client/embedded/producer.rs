//! The embedded producer: an accumulator of open batches per partition, and a sender thread
//! that closes them on `linger.ms` / `batch.size`, appends them to the log, and completes
//! their records' futures per `acks` (acks=all through the log's group-commit flusher).
//!
//! ```text
//! send() -> partitioner -> Accumulator (client::accumulator): open batch of tp
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
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use rustc_hash::FxHashMap as HashMap;

use crate::client::accumulator::{Accumulator, Pace, Sealed};
use crate::client::config::{Acks, ProducerConfig};
use crate::client::{ConsumerGroupMetadata, DeliveryFuture, Producer, ProducerRecord};
use crate::group::{CONSUMER_OFFSETS_TOPIC, OffsetAndMetadata};
use crate::log::{AppendOrigin, LogManager, Partition};
use crate::record::increment_sequence;
use crate::txn::TransactionCoordinator;
use crate::{Error, Result, TopicPartition};

/// A producer writing into an embedded log.
#[derive(Debug)]
pub struct EmbeddedProducer {
    shared: Arc<Shared>,
    sender: Option<JoinHandle<()>>,
}

#[derive(Debug)]
struct Shared {
    log: LogManager,
    acc: Accumulator,
    partition_counts: RwLock<PartitionCounts>,
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
    /// The first failure of a batch of the ongoing transaction: its commit is refused.
    failed: Option<String>,
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
            acc: Accumulator::new(config),
            partition_counts: RwLock::new(PartitionCounts::default()),
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

    async fn end_transaction(&self, commit: bool) -> Result<()> {
        let txn = self.transactions()?;
        if !txn.state.lock().in_transaction {
            return Err(Error::InvalidTxnState("no transaction in progress".into()));
        }
        let flushed = self.flush().await;
        // A newer producer of the transactional id fenced this one: fatal, as Kafka's
        // ProducerFencedException, for commit and abort alike.
        if let Some((_, epoch)) = self.producer_id_and_epoch()
            && let Ok(m) = txn.coordinator.describe_transaction(&txn.id)
            && m.producer_epoch > epoch
        {
            return Err(Error::ProducerFenced {
                transactional_id: txn.id.clone(),
                current: m.producer_epoch,
                got: epoch,
            });
        }
        if commit {
            // A record that failed must not be committed around: the caller aborts instead.
            flushed?;
            if let Some(failed) = txn.state.lock().failed.clone() {
                return Err(Error::InvalidTxnState(format!(
                    "commit_transaction: a record of the transaction failed ({failed}): abort it"
                )));
            }
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
        st.failed = None;
        Ok(())
    }

    fn stop(&mut self) {
        self.shared.acc.close();
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

impl EmbeddedProducer {
    /// Queues a record, to any topic: [`Producer::send`] after its check that the topic is
    /// not internal, and [`Producer::send_offsets_to_transaction`] (the group coordinator's
    /// records, written in this producer's transaction).
    async fn enqueue(&self, record: ProducerRecord) -> Result<DeliveryFuture> {
        if let Some(txn) = &self.shared.txn
            && !txn.state.lock().in_transaction
        {
            return Err(Error::InvalidTxnState(
                "a transactional producer sends only inside a transaction (begin_transaction)"
                    .into(),
            ));
        }
        let count = self.partition_count_cached(&record.topic)?;
        let timestamp = record
            .timestamp
            .unwrap_or_else(|| self.shared.log.clock().now_ms());
        self.shared.acc.append(record, count, timestamp).await
    }
}

impl Producer for EmbeddedProducer {
    /// Queues a record; a record to an internal topic is [`Error::InternalTopic`], as a Kafka
    /// broker refuses it.
    async fn send(&self, record: ProducerRecord) -> Result<DeliveryFuture> {
        if crate::names::is_internal(&record.topic) {
            return Err(Error::InternalTopic(record.topic.to_string()));
        }
        self.enqueue(record).await
    }

    async fn flush(&self) -> Result<()> {
        self.shared.acc.flush().await
    }

    async fn partition_count(&self, topic: &str) -> Result<i32> {
        let n = self.shared.log.partition_count(topic)?;
        let mut counts = self.shared.partition_counts.write();
        counts.by_topic.insert(Arc::from(topic), n);
        counts.last = None;
        Ok(n)
    }

    /// Registers `transactional.id` with the transaction coordinator: gets its producer id with
    /// a new epoch, fencing any earlier producer with the same id and aborting what it left
    /// open (Kafka's `initTransactions`).
    async fn init_transactions(&self) -> Result<()> {
        let txn = self.transactions()?;
        let timeout =
            i32::try_from(self.shared.acc.config().transaction_timeout_ms).unwrap_or(i32::MAX);
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
    fn begin_transaction(&self) -> Result<()> {
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
        st.failed = None;
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
    async fn send_offsets_to_transaction(
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
            sent.push((r.tp, r.committed, self.enqueue(record).await?));
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
    async fn commit_transaction(&self) -> Result<()> {
        self.end_transaction(true).await
    }

    /// Sends what is queued, then aborts the transaction: none of it becomes visible.
    async fn abort_transaction(&self) -> Result<()> {
        self.end_transaction(false).await
    }

    async fn close(mut self) -> Result<()> {
        let r = self.flush().await;
        self.stop();
        r
    }
}

fn run_sender(shared: &Arc<Shared>) {
    let mut partitions: HashMap<TopicPartition, Arc<Partition>> = HashMap::default();
    // The next sequence of each partition (idempotence): only this thread touches it, and it
    // sends each partition's batches in the order they were sealed.
    let mut sequences = Sequences::default();
    let mut pace = Pace::default();
    while let Some(batches) = shared.acc.next_ready(&mut pace, Duration::from_secs(3600)) {
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
        ..
    } = b;
    let release = {
        let shared = Arc::clone(shared);
        move || shared.acc.release(reserved)
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
    // Only send_offsets_to_transaction queues records to an internal topic (send refuses
    // them): the group coordinator's offset commits, written for this producer.
    let origin = if crate::names::is_internal(&tp.topic) {
        AppendOrigin::Coordinator
    } else {
        AppendOrigin::Client
    };
    let result =
        partition.and_then(|p| p.append_from(builder.build(), origin).map(|info| (p, info)));
    if let (Some(seq), Ok(_)) = (sequence, &result) {
        sequences
            .next
            .insert(tp.clone(), increment_sequence(seq, records));
    }
    match result {
        Err(e) => {
            partitions.remove(&tp);
            note_txn_failure(shared, &e);
            done.complete(Err(Arc::new(e)));
            release();
        }
        Ok((p, info)) => {
            let outcome = (info.base_offset, info.log_append_time);
            match shared.acc.config().acks {
                Acks::None | Acks::Leader => {
                    done.complete(Ok(outcome));
                    release();
                }
                Acks::All => {
                    let shared = Arc::clone(shared);
                    p.on_durable(
                        info.last_offset + 1,
                        Box::new(move |r| {
                            if let Err(e) = &r {
                                note_txn_failure(&shared, e);
                            }
                            done.complete(r.map(|()| outcome).map_err(Arc::new));
                            release();
                        }),
                    )
                }
            }
        }
    }
}

/// Notes a failed batch of an open transaction, so its commit is refused (Kafka's producer
/// enters its abortable error state).
fn note_txn_failure(shared: &Shared, e: &Error) {
    if let Some(txn) = &shared.txn {
        let mut st = txn.state.lock();
        if st.in_transaction && st.failed.is_none() {
            st.failed = Some(e.to_string());
        }
    }
}
