//! The transaction coordinator: maps a `transactional.id` to a producer id and epoch, tracks
//! the partitions of its open transaction, and completes transactions with markers, keeping its
//! state in the compacted internal topic `__transaction_state` in Kafka's schemas.
//!
//! ```text
//! init_producer_id(txn id) -> same producer id, epoch + 1 (an open transaction of the old
//!                             epoch is aborted first: the zombie is fenced)
//! add_partitions           -> Ongoing {partitions}                      (written, fsynced)
//! end_transaction(commit)  -> PrepareCommit (fsynced) -> markers on every partition (fsynced)
//!                             -> CompleteCommit
//! open after a crash       -> a transaction left in Prepare* completes
//! tick()                   -> Ongoing past transaction.timeout.ms: aborted with a bumped epoch
//! ```
//!
//! A marker written to `__consumer_offsets` (a transaction with `send_offsets_to_transaction`)
//! is also handed to the log's offset store, which applies or drops the transaction's pending
//! offsets.
//!
//! Record key (TransactionLogKey v0): `version i16 = 0 | transactional id (i16 length, UTF-8)`.
//! Record value (TransactionLogValue v0): `version i16 = 0 | producer id i64 | producer epoch
//! i16 | transaction timeout ms i32 | state i8 | partitions (i32 count, per topic: topic string,
//! i32 count of i32 partitions) | last update ms i64 | start ms i64`, all big-endian. A null
//! value deletes the id. All calls are serialised by one lock.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;

use crate::group::CONSUMER_OFFSETS_TOPIC;
use crate::log::{AppendOrigin, LogManager, MAX_UNCOMPRESSED_BATCH, Partition};
use crate::record::{BatchBuilder, BatchIter, ControlRecord, decode_records};
use crate::{Compression, Error, Result, TopicPartition};
use sluice_protocol::codec::{Reader, put_string};

/// The internal topic holding the coordinator's state.
pub const TRANSACTION_STATE_TOPIC: &str = "__transaction_state";
/// Kafka's `transaction.max.timeout.ms` default: the longest `transaction.timeout.ms` accepted.
pub const MAX_TRANSACTION_TIMEOUT_MS: i32 = 900_000;
const VERSION: i16 = 0;

/// Where a transactional id's transaction is (Kafka's `TransactionState`, with its codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransactionState {
    /// No transaction open.
    Empty,
    /// A transaction is open: partitions were added.
    Ongoing,
    /// Commit decided and durable; markers being written.
    PrepareCommit,
    /// Abort decided and durable; markers being written.
    PrepareAbort,
    /// The last transaction committed.
    CompleteCommit,
    /// The last transaction aborted.
    CompleteAbort,
    /// The id expired.
    Dead,
    /// The epoch is being bumped to fence a producer.
    PrepareEpochFence,
}

impl TransactionState {
    /// The state's code in `__transaction_state`.
    pub fn code(self) -> i8 {
        match self {
            TransactionState::Empty => 0,
            TransactionState::Ongoing => 1,
            TransactionState::PrepareCommit => 2,
            TransactionState::PrepareAbort => 3,
            TransactionState::CompleteCommit => 4,
            TransactionState::CompleteAbort => 5,
            TransactionState::Dead => 6,
            TransactionState::PrepareEpochFence => 7,
        }
    }

    /// The state of a code, if known.
    pub fn from_code(code: i8) -> Option<Self> {
        Some(match code {
            0 => TransactionState::Empty,
            1 => TransactionState::Ongoing,
            2 => TransactionState::PrepareCommit,
            3 => TransactionState::PrepareAbort,
            4 => TransactionState::CompleteCommit,
            5 => TransactionState::CompleteAbort,
            6 => TransactionState::Dead,
            7 => TransactionState::PrepareEpochFence,
            _ => return None,
        })
    }

    /// Kafka's name of the state.
    pub fn as_str(self) -> &'static str {
        match self {
            TransactionState::Empty => "Empty",
            TransactionState::Ongoing => "Ongoing",
            TransactionState::PrepareCommit => "PrepareCommit",
            TransactionState::PrepareAbort => "PrepareAbort",
            TransactionState::CompleteCommit => "CompleteCommit",
            TransactionState::CompleteAbort => "CompleteAbort",
            TransactionState::Dead => "Dead",
            TransactionState::PrepareEpochFence => "PrepareEpochFence",
        }
    }
}

/// What the coordinator keeps per transactional id (one `__transaction_state` value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionMetadata {
    /// The producer id the transactional id maps to.
    pub producer_id: i64,
    /// Its current epoch.
    pub producer_epoch: i16,
    /// `transaction.timeout.ms` of the producer.
    pub timeout_ms: i32,
    /// Where the transaction is.
    pub state: TransactionState,
    /// Partitions of the open (or completing) transaction.
    pub partitions: BTreeSet<TopicPartition>,
    /// Last change, ms on the log's clock.
    pub last_update_ms: i64,
    /// When the open transaction began, or -1.
    pub start_ms: i64,
}

/// Encodes a TransactionLogKey v0.
pub fn encode_key(transactional_id: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + transactional_id.len());
    out.extend_from_slice(&VERSION.to_be_bytes());
    put_string(&mut out, transactional_id);
    out
}

/// Decodes a TransactionLogKey v0.
pub fn decode_key(bytes: &[u8]) -> Result<String> {
    in_state_topic(key_fields(bytes))
}

fn key_fields(bytes: &[u8]) -> Result<String> {
    let mut c = Reader::new(bytes);
    let version = c.i16()?;
    if version != VERSION {
        return Err(corrupt(format!("unknown key version {version}")));
    }
    c.string()
}

/// Encodes a TransactionLogValue v0.
pub fn encode_value(m: &TransactionMetadata) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(&VERSION.to_be_bytes());
    out.extend_from_slice(&m.producer_id.to_be_bytes());
    out.extend_from_slice(&m.producer_epoch.to_be_bytes());
    out.extend_from_slice(&m.timeout_ms.to_be_bytes());
    out.push(m.state.code() as u8);
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for tp in &m.partitions {
        by_topic.entry(&tp.topic).or_default().push(tp.partition);
    }
    out.extend_from_slice(&(by_topic.len() as i32).to_be_bytes());
    for (topic, parts) in by_topic {
        put_string(&mut out, topic);
        out.extend_from_slice(&(parts.len() as i32).to_be_bytes());
        for p in parts {
            out.extend_from_slice(&p.to_be_bytes());
        }
    }
    out.extend_from_slice(&m.last_update_ms.to_be_bytes());
    out.extend_from_slice(&m.start_ms.to_be_bytes());
    out
}

/// Decodes a TransactionLogValue v0.
pub fn decode_value(bytes: &[u8]) -> Result<TransactionMetadata> {
    in_state_topic(value_fields(bytes))
}

fn value_fields(bytes: &[u8]) -> Result<TransactionMetadata> {
    let mut c = Reader::new(bytes);
    let version = c.i16()?;
    if version != VERSION {
        return Err(corrupt(format!("unknown value version {version}")));
    }
    let producer_id = c.i64()?;
    let producer_epoch = c.i16()?;
    let timeout_ms = c.i32()?;
    let code = c.i8()?;
    let state = TransactionState::from_code(code)
        .ok_or_else(|| corrupt(format!("unknown transaction state {code}")))?;
    let mut partitions = BTreeSet::new();
    let topics = c.i32()?;
    for _ in 0..topics.max(0) {
        let topic = c.string()?;
        let n = c.i32()?;
        for _ in 0..n.max(0) {
            partitions.insert(TopicPartition::new(topic.as_str(), c.i32()?));
        }
    }
    Ok(TransactionMetadata {
        producer_id,
        producer_epoch,
        timeout_ms,
        state,
        partitions,
        last_update_ms: c.i64()?,
        start_ms: c.i64()?,
    })
}

fn corrupt(what: String) -> Error {
    Error::CorruptRecord(what)
}

/// Names `__transaction_state` in a decoding error.
fn in_state_topic<T>(r: Result<T>) -> Result<T> {
    r.map_err(|e| match e {
        Error::CorruptRecord(what) => {
            Error::CorruptRecord(format!("{TRANSACTION_STATE_TOPIC}: {what}"))
        }
        other => other,
    })
}

/// The transaction coordinator of one log (see the module docs).
pub struct TransactionCoordinator {
    log: LogManager,
    state_partition: Arc<Partition>,
    txns: Mutex<BTreeMap<String, TransactionMetadata>>,
    /// Per transactional id, the producer id and epoch a KIP-360 bump (InitProducerId naming
    /// the current epoch) replaced, so that a retry of that bump whose answer was lost gets
    /// the same answer. In memory only, as Kafka keeps it with value v0: a retry across a
    /// restart is fenced. Locked only while `txns` is.
    bumped_from: Mutex<BTreeMap<String, (i64, i16)>>,
    /// Told of every marker written to a partition of `__consumer_offsets`, so that the
    /// group coordinator's offset store applies or drops the transaction's offsets.
    on_offsets_marker: OffsetsMarkerHook,
}

/// What a [`TransactionCoordinator`] calls when it wrote a marker to `__consumer_offsets`:
/// (partition, producer id, producer epoch, commit). [`crate::node::Node`] hands it to the
/// group coordinator's offset store.
pub type OffsetsMarkerHook = Box<dyn Fn(i32, i64, i16, bool) + Send + Sync>;

impl std::fmt::Debug for TransactionCoordinator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransactionCoordinator")
            .field("log", &self.log)
            .field("state_partition", &self.state_partition)
            .finish_non_exhaustive()
    }
}

impl TransactionCoordinator {
    /// Opens the coordinator of `log`: creates `__transaction_state` (compacted) if missing,
    /// loads its state, and completes transactions a crash left in PrepareCommit/PrepareAbort.
    ///
    /// Offsets committed in transactions are completed in an offset store only when it is
    /// opened later (replaying the markers); [`TransactionCoordinator::open_with`] also tells a
    /// live one.
    pub fn open(log: LogManager) -> Result<Self> {
        Self::open_with(log, Box::new(|_, _, _, _| {}))
    }

    /// [`TransactionCoordinator::open`], calling `on_offsets_marker` for every marker it
    /// writes to `__consumer_offsets`.
    pub fn open_with(log: LogManager, on_offsets_marker: OffsetsMarkerHook) -> Result<Self> {
        if !log
            .list_topics()
            .iter()
            .any(|t| t == TRANSACTION_STATE_TOPIC)
        {
            match log.create_topic(
                TRANSACTION_STATE_TOPIC,
                1,
                [
                    ("cleanup.policy", "compact"),
                    ("segment.bytes", "104857600"),
                ],
            ) {
                Ok(()) | Err(Error::TopicExists(_)) => {}
                Err(e) => return Err(e),
            }
        }
        let state_partition = log.partition(&TopicPartition::new(TRANSACTION_STATE_TOPIC, 0))?;
        let txns = load(&state_partition)?;
        let c = Self {
            log,
            state_partition,
            txns: Mutex::new(txns),
            bumped_from: Mutex::new(BTreeMap::new()),
            on_offsets_marker,
        };
        let mut txns = c.txns.lock();
        let pending: Vec<String> = txns
            .iter()
            .filter(|(_, m)| {
                matches!(
                    m.state,
                    TransactionState::PrepareCommit | TransactionState::PrepareAbort
                )
            })
            .map(|(id, _)| id.clone())
            .collect();
        for id in pending {
            tracing::info!(transactional_id = %id, "completing a transaction left prepared");
            c.complete(&mut txns, &id)?;
        }
        drop(txns);
        Ok(c)
    }

    /// Kafka's `InitProducerId` with a `transactional.id`: the id's producer id (a new one the
    /// first time) and a bumped epoch. An open transaction of the previous epoch is aborted
    /// first, so that producer (a zombie) is fenced.
    pub fn init_producer_id(&self, transactional_id: &str, timeout_ms: i32) -> Result<(i64, i16)> {
        self.init_producer_id_checked(
            transactional_id,
            timeout_ms,
            MAX_TRANSACTION_TIMEOUT_MS,
            None,
        )
    }

    /// [`TransactionCoordinator::init_producer_id`] as a broker serves it: `timeout_ms` must be
    /// in `[1, max_timeout_ms]` (`transaction.max.timeout.ms`), and a producer that names its
    /// current producer id and epoch (`expected`, KIP-360) gets its epoch bumped only if they
    /// are still the transactional id's: anything else means a newer producer took over, and
    /// it is fenced ([`Error::ProducerFenced`]). A transactional id not known yet is
    /// registered whatever `expected` says (the producer recovers from an expired id).
    ///
    /// A retry of such a bump whose answer was lost (naming the epoch the bump replaced) gets
    /// the bumped epoch again, as in Kafka; the previous epoch is kept in memory only, so a
    /// retry across a restart is fenced.
    pub fn init_producer_id_checked(
        &self,
        transactional_id: &str,
        timeout_ms: i32,
        max_timeout_ms: i32,
        expected: Option<(i64, i16)>,
    ) -> Result<(i64, i16)> {
        if transactional_id.is_empty() {
            return Err(Error::InvalidRequest("empty transactional.id".into()));
        }
        if !(1..=max_timeout_ms).contains(&timeout_ms) {
            return Err(Error::InvalidTransactionTimeout {
                timeout_ms,
                max_ms: max_timeout_ms,
            });
        }
        let now = self.log.clock().now_ms();
        let mut txns = self.txns.lock();
        if let (Some(named), Some(m)) = (expected, txns.get(transactional_id))
            && named != (m.producer_id, m.producer_epoch)
        {
            let retry = self.bumped_from.lock().get(transactional_id) == Some(&named)
                && matches!(
                    m.state,
                    TransactionState::Empty
                        | TransactionState::CompleteCommit
                        | TransactionState::CompleteAbort
                );
            if !retry {
                return Err(Error::ProducerFenced {
                    transactional_id: transactional_id.to_owned(),
                    current: m.producer_epoch,
                    got: named.1,
                });
            }
            // The answer to the bump was lost: the same answer again, without a new bump.
            let mut m = m.clone();
            initialised(&mut m, timeout_ms, now);
            self.write(&mut txns, transactional_id, m.clone())?;
            tracing::debug!(
                transactional_id,
                "InitProducerId retried after a lost answer"
            );
            return Ok((m.producer_id, m.producer_epoch));
        }
        let mut m = match txns.get(transactional_id).cloned() {
            None => {
                let (producer_id, _) = self.log.init_producer_id()?;
                let m = TransactionMetadata {
                    producer_id,
                    producer_epoch: 0,
                    timeout_ms,
                    state: TransactionState::Empty,
                    partitions: BTreeSet::new(),
                    last_update_ms: now,
                    start_ms: -1,
                };
                self.write(&mut txns, transactional_id, m.clone())?;
                tracing::info!(transactional_id, producer_id, "transactional id registered");
                return Ok((m.producer_id, m.producer_epoch));
            }
            Some(m) => m,
        };
        let fenced = match m.state {
            TransactionState::PrepareCommit
            | TransactionState::PrepareAbort
            | TransactionState::PrepareEpochFence => {
                self.complete(&mut txns, transactional_id)?;
                false
            }
            TransactionState::Ongoing => {
                // Fence the old epoch: abort with the bumped one, which the new producer gets.
                // Kafka answers CONCURRENT_TRANSACTIONS here and never returns the fencing
                // epoch: a new instance's retry gets the epoch after it (the same end), but a
                // producer that named its own epoch (KIP-360) is fenced on its retry, where
                // here it gets the fencing epoch and carries on with its transaction aborted.
                self.abort_with_bumped_epoch(&mut txns, transactional_id)?;
                true
            }
            _ => false,
        };
        if let Some(cur) = txns.get(transactional_id) {
            m = cur.clone();
        }
        let before = (m.producer_id, m.producer_epoch);
        if !fenced {
            bump_epoch(&self.log, &mut m)?;
        }
        initialised(&mut m, timeout_ms, now);
        self.write(&mut txns, transactional_id, m.clone())?;
        // Only a bump the producer asked for by naming its epoch can be retried; any other
        // init (a new producer instance) ends that.
        let mut bumped_from = self.bumped_from.lock();
        if expected.is_some() && !fenced {
            bumped_from.insert(transactional_id.to_owned(), before);
        } else {
            bumped_from.remove(transactional_id);
        }
        Ok((m.producer_id, m.producer_epoch))
    }

    /// Kafka's `AddPartitionsToTxn`: adds partitions to the open transaction (opening it).
    pub fn add_partitions(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &[TopicPartition],
    ) -> Result<()> {
        for tp in partitions {
            self.log.partition(tp)?;
        }
        let now = self.log.clock().now_ms();
        let mut txns = self.txns.lock();
        let mut m = self.validated(&txns, transactional_id, producer_id, producer_epoch)?;
        match m.state {
            TransactionState::PrepareCommit
            | TransactionState::PrepareAbort
            | TransactionState::PrepareEpochFence => {
                return Err(Error::ConcurrentTransactions(transactional_id.to_owned()));
            }
            TransactionState::Dead => {
                return Err(Error::InvalidTxnState(format!(
                    "transactional id \"{transactional_id}\" is dead"
                )));
            }
            TransactionState::Ongoing => {
                if partitions.iter().all(|tp| m.partitions.contains(tp)) {
                    return Ok(());
                }
            }
            TransactionState::Empty
            | TransactionState::CompleteCommit
            | TransactionState::CompleteAbort => {
                m.state = TransactionState::Ongoing;
                m.partitions.clear();
                m.start_ms = now;
            }
        }
        m.partitions.extend(partitions.iter().cloned());
        m.last_update_ms = now;
        self.write(&mut txns, transactional_id, m)
    }

    /// Kafka's `EndTxn`: commits or aborts the open transaction. PrepareCommit/PrepareAbort is
    /// made durable first, then a marker goes to every partition of the transaction (and is
    /// fsynced), then CompleteCommit/CompleteAbort is written. Repeating a completed end with
    /// the same outcome succeeds (a retry).
    pub fn end_transaction(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
    ) -> Result<()> {
        let now = self.log.clock().now_ms();
        let mut txns = self.txns.lock();
        let mut m = self.validated(&txns, transactional_id, producer_id, producer_epoch)?;
        match (m.state, commit) {
            (TransactionState::Ongoing, _) => {}
            (TransactionState::CompleteCommit, true) | (TransactionState::CompleteAbort, false) => {
                return Ok(());
            }
            (TransactionState::PrepareCommit | TransactionState::PrepareAbort, _) => {
                return Err(Error::ConcurrentTransactions(transactional_id.to_owned()));
            }
            (state, _) => {
                return Err(Error::InvalidTxnState(format!(
                    "cannot {} transactional id \"{transactional_id}\" in state {}",
                    if commit { "commit" } else { "abort" },
                    state.as_str()
                )));
            }
        }
        m.state = if commit {
            TransactionState::PrepareCommit
        } else {
            TransactionState::PrepareAbort
        };
        m.last_update_ms = now;
        self.write(&mut txns, transactional_id, m)?;
        self.complete(&mut txns, transactional_id)
    }

    /// Aborts every transaction open longer than its timeout (on the log's clock), bumping the
    /// epoch so its producer is fenced. Returns the transactional ids aborted. Called
    /// periodically by the owner of the coordinator.
    pub fn tick(&self) -> Result<Vec<String>> {
        let now = self.log.clock().now_ms();
        let mut txns = self.txns.lock();
        let expired: Vec<String> = txns
            .iter()
            .filter(|(_, m)| {
                m.state == TransactionState::Ongoing
                    && now.saturating_sub(m.start_ms) > i64::from(m.timeout_ms)
            })
            .map(|(id, _)| id.clone())
            .collect();
        for id in &expired {
            tracing::info!(transactional_id = %id, "aborting a transaction past transaction.timeout.ms");
            self.abort_with_bumped_epoch(&mut txns, id)?;
        }
        Ok(expired)
    }

    /// Every transactional id known, with its state. An id in state Dead (being removed) is as
    /// good as gone, as Kafka answers: it is not listed.
    pub fn list_transactions(&self) -> Vec<(String, TransactionState)> {
        self.txns
            .lock()
            .iter()
            .filter(|(_, m)| m.state != TransactionState::Dead)
            .map(|(id, m)| (id.clone(), m.state))
            .collect()
    }

    /// What the coordinator knows of `transactional_id`; [`Error::TransactionalIdNotFound`]
    /// for an unknown id, and for one in state Dead (being removed).
    pub fn describe_transaction(&self, transactional_id: &str) -> Result<TransactionMetadata> {
        self.txns
            .lock()
            .get(transactional_id)
            .filter(|m| m.state != TransactionState::Dead)
            .cloned()
            .ok_or_else(|| Error::TransactionalIdNotFound(transactional_id.to_owned()))
    }

    fn validated(
        &self,
        txns: &BTreeMap<String, TransactionMetadata>,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
    ) -> Result<TransactionMetadata> {
        let m = txns
            .get(transactional_id)
            .ok_or_else(|| Error::TransactionalIdNotFound(transactional_id.to_owned()))?;
        if m.producer_id != producer_id {
            return Err(Error::InvalidProducerIdMapping {
                transactional_id: transactional_id.to_owned(),
                producer_id,
            });
        }
        if m.producer_epoch != producer_epoch {
            return Err(Error::ProducerFenced {
                transactional_id: transactional_id.to_owned(),
                current: m.producer_epoch,
                got: producer_epoch,
            });
        }
        Ok(m.clone())
    }

    /// Bumps the epoch of an Ongoing transaction and aborts it with the new epoch.
    fn abort_with_bumped_epoch(
        &self,
        txns: &mut BTreeMap<String, TransactionMetadata>,
        transactional_id: &str,
    ) -> Result<()> {
        let Some(mut m) = txns.get(transactional_id).cloned() else {
            return Ok(());
        };
        // An abort that fences is not a bump a producer can retry.
        self.bumped_from.lock().remove(transactional_id);
        // Markers must carry the same producer id the partitions know: bump within it.
        m.producer_epoch = m.producer_epoch.saturating_add(1);
        m.state = TransactionState::PrepareAbort;
        m.last_update_ms = self.log.clock().now_ms();
        self.write(txns, transactional_id, m)?;
        self.complete(txns, transactional_id)
    }

    /// Writes the markers of a Prepare* transaction, waits for them to be durable, and writes
    /// its Complete* state.
    fn complete(
        &self,
        txns: &mut BTreeMap<String, TransactionMetadata>,
        transactional_id: &str,
    ) -> Result<()> {
        let Some(mut m) = txns.get(transactional_id).cloned() else {
            return Ok(());
        };
        let (marker, done) = match m.state {
            TransactionState::PrepareCommit => {
                (ControlRecord::Commit, TransactionState::CompleteCommit)
            }
            TransactionState::PrepareAbort | TransactionState::PrepareEpochFence => {
                (ControlRecord::Abort, TransactionState::CompleteAbort)
            }
            _ => return Ok(()),
        };
        for tp in &m.partitions {
            let p = match self.log.partition(tp) {
                Ok(p) => p,
                // Deleted meanwhile: nothing to mark.
                Err(Error::UnknownTopic(_) | Error::UnknownPartition { .. }) => continue,
                Err(e) => return Err(e),
            };
            p.append_marker(m.producer_id, m.producer_epoch, marker, 0)?;
            p.flush()?;
            if &*tp.topic == CONSUMER_OFFSETS_TOPIC {
                self.offsets_marker_written(tp.partition, &m, marker == ControlRecord::Commit);
            }
        }
        m.state = done;
        m.partitions.clear();
        m.start_ms = -1;
        m.last_update_ms = self.log.clock().now_ms();
        tracing::debug!(
            transactional_id,
            state = done.as_str(),
            "transaction completed"
        );
        self.write(txns, transactional_id, m)
    }

    /// Tells the group coordinator's offset store (through the hook) that a marker reached
    /// `partition` of `__consumer_offsets`, so the transaction's offsets are applied or
    /// dropped. A store opened later replays the marker from the log instead; the node orders
    /// the two (see [`crate::node::Node`]).
    fn offsets_marker_written(&self, partition: i32, m: &TransactionMetadata, commit: bool) {
        (self.on_offsets_marker)(partition, m.producer_id, m.producer_epoch, commit);
    }

    /// Appends the id's new state to `__transaction_state`, fsyncs it, then applies it.
    fn write(
        &self,
        txns: &mut BTreeMap<String, TransactionMetadata>,
        transactional_id: &str,
        m: TransactionMetadata,
    ) -> Result<()> {
        let mut b = BatchBuilder::new(Compression::None);
        b.append(
            self.log.clock().now_ms(),
            Some(&encode_key(transactional_id)),
            Some(&encode_value(&m)),
            &[],
        );
        self.state_partition
            .append_from(b.build(), AppendOrigin::Coordinator)?;
        self.state_partition.flush()?;
        txns.insert(transactional_id.to_owned(), m);
        Ok(())
    }
}

/// A new epoch for `m`: one more, or a fresh producer id at epoch 0 when it would overflow.
/// A transactional id just (re)initialised by InitProducerId: no open transaction, the
/// producer's `transaction.timeout.ms`.
fn initialised(m: &mut TransactionMetadata, timeout_ms: i32, now: i64) {
    m.timeout_ms = timeout_ms;
    m.state = TransactionState::Empty;
    m.partitions.clear();
    m.last_update_ms = now;
    m.start_ms = -1;
}

fn bump_epoch(log: &LogManager, m: &mut TransactionMetadata) -> Result<()> {
    if m.producer_epoch >= i16::MAX - 1 {
        let (id, _) = log.init_producer_id()?;
        m.producer_id = id;
        m.producer_epoch = 0;
    } else {
        m.producer_epoch += 1;
    }
    Ok(())
}

/// Replays `__transaction_state`: the last value of each key wins, a null value deletes it. A
/// record (or batch) that does not decode is skipped with a warning naming where it lies, so
/// one bad record costs only itself: the coordinator still starts.
fn load(p: &Partition) -> Result<BTreeMap<String, TransactionMetadata>> {
    let mut txns = BTreeMap::new();
    let mut at = p.log_start_offset();
    let skip = |offset: i64, error: &Error| {
        tracing::warn!(
            tp = %p.topic_partition(),
            offset,
            file = %p.segment_file_of(offset).display(),
            error = %crate::report(error),
            "skipping a __transaction_state record that does not decode"
        );
    };
    while at < p.log_end_offset() {
        let data = p.read(at, 1 << 20)?;
        if data.records.is_empty() {
            break;
        }
        for (h, range) in BatchIter::new(&data.records) {
            at = at.max(h.next_offset());
            if h.is_control() {
                continue;
            }
            let batch: Bytes = data.records.slice(range);
            let records = match decode_records(&batch, MAX_UNCOMPRESSED_BATCH) {
                Ok(records) => records,
                Err(e) => {
                    skip(h.base_offset, &e);
                    continue;
                }
            };
            for r in records {
                let r = match r {
                    Ok(r) => r,
                    Err(e) => {
                        // The rest of the batch cannot be framed either.
                        skip(h.base_offset, &e);
                        break;
                    }
                };
                let Some(key) = r.key else { continue };
                let id = match decode_key(&key) {
                    Ok(id) => id,
                    Err(e) => {
                        skip(r.offset, &e);
                        continue;
                    }
                };
                match r.value.map(|v| decode_value(&v)) {
                    Some(Ok(m)) => {
                        txns.insert(id, m);
                    }
                    Some(Err(e)) => skip(r.offset, &e),
                    None => {
                        txns.remove(&id);
                    }
                }
            }
        }
    }
    Ok(txns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_roundtrip_and_garbage_never_panics() {
        let m = TransactionMetadata {
            producer_id: 42,
            producer_epoch: 3,
            timeout_ms: 60_000,
            state: TransactionState::Ongoing,
            partitions: [TopicPartition::new("a", 0), TopicPartition::new("a", 2)]
                .into_iter()
                .collect(),
            last_update_ms: 5,
            start_ms: 4,
        };
        let v = encode_value(&m);
        assert_eq!(decode_value(&v).unwrap(), m);
        assert_eq!(decode_key(&encode_key("tx-1")).unwrap(), "tx-1");
        for len in 0..v.len() {
            let _ = decode_value(&v[..len]);
        }
        for code in 0..8 {
            let s = TransactionState::from_code(code).unwrap();
            assert_eq!(s.code(), code);
        }
    }
}
