//! Committed offsets, kept in the compacted topic `__consumer_offsets` and in memory.
//!
//! Every commit is one record batch appended to the group's partition of `__consumer_offsets`
//! (`abs(groupId.hashCode) % partitions`, as Kafka places groups), waited on until fsynced,
//! then applied to the in-memory map. Opening the store replays the topic; a tombstone (null
//! value) removes an offset. Each entry remembers the log offset of the record that set it, so
//! commits that race apply in log order whatever order their fsyncs finish in.
//!
//! Offsets committed inside a transaction (Kafka's `TxnOffsetCommit`, sent by a transactional
//! producer's `send_offsets_to_transaction`) are transactional records of the producer in the
//! group's partition. They stay pending, keyed by (partition, producer id), invisible to
//! [`OffsetStore::fetch`], until the transaction's marker reaches that partition: a COMMIT
//! applies them, an ABORT drops them. Replaying the topic follows the same rule, so after a
//! crash offsets of a committed transaction are kept, those of an aborted one dropped, and
//! those of a transaction still open stay pending until its marker is written.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;

use super::schema::{OffsetCommitValue, OffsetsKey, partition_for};
use crate::log::{AppendOrigin, LogManager, MAX_UNCOMPRESSED_BATCH, Partition};
use crate::record::{BatchBuilder, BatchIter, ControlRecord, decode_records};
use crate::{Compression, Error, Result, SharedClock, TopicPartition};

/// Name of the internal topic of committed offsets.
pub const CONSUMER_OFFSETS_TOPIC: &str = "__consumer_offsets";

/// Largest batch read at once while loading.
const LOAD_READ_BYTES: usize = 4 << 20;

/// Configs of the offset store, under Kafka's broker config names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetStoreConfig {
    /// `offsets.topic.num.partitions` (default 50); used only when the topic is created.
    pub num_partitions: i32,
    /// `offsets.retention.minutes` in ms (default 7 days): how long offsets of an empty group
    /// are kept.
    pub retention_ms: i64,
    /// `offset.metadata.max.bytes` (default 4096).
    pub metadata_max_bytes: usize,
    /// `offsets.topic.segment.bytes` (default 100 MiB).
    pub segment_bytes: u64,
}

impl Default for OffsetStoreConfig {
    fn default() -> Self {
        Self {
            num_partitions: 50,
            retention_ms: 7 * 24 * 60 * 60 * 1000,
            metadata_max_bytes: 4096,
            segment_bytes: 100 << 20,
        }
    }
}

/// An offset to commit, as Kafka's `OffsetAndMetadata`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OffsetAndMetadata {
    /// The next offset to consume.
    pub offset: i64,
    /// Leader epoch of the last consumed record, if known.
    pub leader_epoch: Option<i32>,
    /// Free-form metadata; `None` is stored as empty.
    pub metadata: Option<String>,
}

impl OffsetAndMetadata {
    /// An offset without leader epoch or metadata.
    pub fn new(offset: i64) -> Self {
        Self {
            offset,
            leader_epoch: None,
            metadata: None,
        }
    }
}

/// An offset as committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOffset {
    /// The next offset to consume.
    pub offset: i64,
    /// Leader epoch of the last consumed record, if known.
    pub leader_epoch: Option<i32>,
    /// The metadata committed with it (empty if none).
    pub metadata: String,
    /// When it was committed, by the store's clock.
    pub commit_timestamp: i64,
}

#[derive(Debug, Clone)]
struct Entry {
    committed: CommittedOffset,
    /// Offset in `__consumer_offsets` of the record that set it.
    log_offset: i64,
}

/// Committed offsets of every group. Cheap to clone; clones share the store.
#[derive(Debug, Clone)]
pub struct OffsetStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    log: LogManager,
    clock: SharedClock,
    config: OffsetStoreConfig,
    partitions: i32,
    /// group -> partition -> offset.
    offsets: Mutex<HashMap<String, BTreeMap<TopicPartition, Entry>>>,
    /// Offsets of open transactions, by (partition of `__consumer_offsets`, producer id).
    pending: Mutex<PendingTxns>,
}

/// Offsets of open transactions, by (partition of `__consumer_offsets`, producer id).
type PendingTxns = HashMap<(i32, i64), Vec<PendingOffset>>;

/// One offset committed in a transaction not yet completed.
#[derive(Debug, Clone)]
struct PendingOffset {
    producer_epoch: i16,
    group: String,
    tp: TopicPartition,
    value: Option<CommittedOffset>,
    log_offset: i64,
}

/// One offset-commit record to write in a transaction (see
/// [`OffsetStore::txn_offset_commit_records`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnOffsetRecord {
    /// The partition the offset is for.
    pub tp: TopicPartition,
    /// The record's key (OffsetCommitKey).
    pub key: Bytes,
    /// The record's value (OffsetCommitValue).
    pub value: Bytes,
    /// The offset as it will be committed.
    pub committed: CommittedOffset,
}

impl OffsetStore {
    /// Opens the store over `log`, creating `__consumer_offsets` (compacted) on first use and
    /// replaying it otherwise.
    pub fn open(log: LogManager, config: OffsetStoreConfig) -> Result<Self> {
        if config.num_partitions < 1 {
            return Err(Error::InvalidConfig {
                key: "offsets.topic.num.partitions".into(),
                value: config.num_partitions.to_string(),
                reason: "must be at least 1".into(),
            });
        }
        let segment_bytes = config.segment_bytes.to_string();
        match log.create_topic(
            CONSUMER_OFFSETS_TOPIC,
            config.num_partitions,
            [
                ("cleanup.policy", "compact"),
                ("compression.type", "producer"),
                ("segment.bytes", segment_bytes.as_str()),
            ],
        ) {
            Ok(()) | Err(Error::TopicExists(_)) => {}
            Err(e) => return Err(e),
        }
        let partitions = log.partition_count(CONSUMER_OFFSETS_TOPIC)?;
        let clock = Arc::clone(log.clock());
        let store = OffsetStore {
            inner: Arc::new(Inner {
                log,
                clock,
                config,
                partitions,
                offsets: Mutex::new(HashMap::new()),
                pending: Mutex::new(HashMap::new()),
            }),
        };
        store.load()?;
        Ok(store)
    }

    /// The store's configs.
    pub fn config(&self) -> &OffsetStoreConfig {
        &self.inner.config
    }

    /// The partition of `__consumer_offsets` holding `group`'s records.
    pub fn partition_for(&self, group: &str) -> i32 {
        partition_for(group, self.inner.partitions)
    }

    /// Replays every partition of `__consumer_offsets` into the map, honouring transactions:
    /// a transactional record is applied only when its producer's COMMIT marker follows it,
    /// dropped on ABORT, and left pending when neither is in the log yet. A record (or batch)
    /// that does not decode is skipped with a warning naming where it lies.
    fn load(&self) -> Result<()> {
        let parts = self.inner.log.partitions(CONSUMER_OFFSETS_TOPIC)?;
        let mut map = self.inner.offsets.lock();
        let mut pending = self.inner.pending.lock();
        let mut loaded = 0usize;
        for p in parts.iter() {
            let partition = p.topic_partition().partition;
            let skip = |offset: i64, error: &str| {
                tracing::warn!(
                    tp = %p.topic_partition(),
                    offset,
                    file = %p.segment_file_of(offset).display(),
                    error,
                    "skipping a __consumer_offsets record that does not decode"
                );
            };
            let mut at = p.log_start_offset();
            while at < p.log_end_offset() {
                let data = p.read(at, LOAD_READ_BYTES)?;
                let mut next = at;
                for (h, range) in BatchIter::new(&data.records) {
                    next = next.max(h.next_offset());
                    let records =
                        match decode_records(&data.records.slice(range), MAX_UNCOMPRESSED_BATCH) {
                            Ok(records) => records,
                            Err(e) => {
                                skip(h.base_offset, &crate::report(&e));
                                continue;
                            }
                        };
                    // A record that does not frame ends its batch: the rest cannot be framed.
                    let records = records.map_while(|r| {
                        r.inspect_err(|e| skip(h.base_offset, &crate::report(e)))
                            .ok()
                    });
                    if h.is_control() {
                        for r in records {
                            let marker = r.key.as_deref().and_then(ControlRecord::parse);
                            if let Some(marker) = marker {
                                complete_pending(
                                    &mut map,
                                    &mut pending,
                                    partition,
                                    h.producer_id,
                                    h.producer_epoch,
                                    marker == ControlRecord::Commit,
                                );
                            }
                        }
                        continue;
                    }
                    for r in records {
                        if r.offset < at {
                            continue;
                        }
                        let (group, tp, value) = match decode_record(&r.key, &r.value) {
                            Ok(Some(decoded)) => decoded,
                            Ok(None) => continue,
                            Err(e) => {
                                skip(r.offset, &crate::report(&e));
                                continue;
                            }
                        };
                        if h.is_transactional() {
                            pending.entry((partition, h.producer_id)).or_default().push(
                                PendingOffset {
                                    producer_epoch: h.producer_epoch,
                                    group,
                                    tp,
                                    value,
                                    log_offset: r.offset,
                                },
                            );
                        } else {
                            apply_entry(&mut map, &group, tp, value, r.offset);
                        }
                        loaded += 1;
                    }
                }
                if next <= at {
                    // A gap or an unreadable tail: nothing more to load from this partition.
                    break;
                }
                at = next;
            }
        }
        tracing::info!(
            records = loaded,
            groups = map.len(),
            pending_transactions = pending.len(),
            "consumer offsets loaded"
        );
        Ok(())
    }

    /// The offset-commit records (Kafka's OffsetCommitKey/Value, as [`OffsetStore::commit`]
    /// writes them) of `offsets` for `group`, for a transactional producer to write to the
    /// group's partition (Kafka's `TxnOffsetCommit`). Checks the group id and metadata sizes.
    pub fn txn_offset_commit_records(
        &self,
        group: &str,
        offsets: Vec<(TopicPartition, OffsetAndMetadata)>,
    ) -> Result<Vec<TxnOffsetRecord>> {
        if group.is_empty() {
            return Err(Error::InvalidGroupId(group.to_owned()));
        }
        let max = self.inner.config.metadata_max_bytes;
        let now = self.inner.clock.now_ms();
        offsets
            .into_iter()
            .map(|(tp, o)| {
                let size = o.metadata.as_deref().map_or(0, str::len);
                if size > max {
                    return Err(Error::OffsetMetadataTooLarge { size, max });
                }
                let committed = CommittedOffset {
                    offset: o.offset,
                    leader_epoch: o.leader_epoch,
                    metadata: o.metadata.unwrap_or_default(),
                    commit_timestamp: now,
                };
                let (key, value) = encode_commit(group, &tp, Some(&committed));
                Ok(TxnOffsetRecord {
                    tp,
                    key: Bytes::from(key),
                    value: Bytes::from(value.unwrap_or_default()),
                    committed,
                })
            })
            .collect()
    }

    /// Records offsets `producer_id`/`producer_epoch` wrote in its open transaction to
    /// `partition` of `__consumer_offsets`, as `(partition consumed, offset, log offset of the
    /// record)`: pending, not visible to [`OffsetStore::fetch`], until
    /// [`OffsetStore::complete_transaction`] sees the transaction's marker.
    pub fn add_pending(
        &self,
        partition: i32,
        producer_id: i64,
        producer_epoch: i16,
        group: &str,
        offsets: Vec<(TopicPartition, CommittedOffset, i64)>,
    ) {
        let mut pending = self.inner.pending.lock();
        let list = pending.entry((partition, producer_id)).or_default();
        list.extend(
            offsets
                .into_iter()
                .map(|(tp, committed, log_offset)| PendingOffset {
                    producer_epoch,
                    group: group.to_owned(),
                    tp,
                    value: Some(committed),
                    log_offset,
                }),
        );
    }

    /// A transaction marker of `producer_id`/`producer_epoch` was written (and fsynced) to
    /// `partition` of `__consumer_offsets`: on commit, the pending offsets of that epoch are
    /// applied; every pending offset of the producer up to that epoch is then dropped.
    pub fn complete_transaction(
        &self,
        partition: i32,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
    ) {
        let mut map = self.inner.offsets.lock();
        let mut pending = self.inner.pending.lock();
        complete_pending(
            &mut map,
            &mut pending,
            partition,
            producer_id,
            producer_epoch,
            commit,
        );
    }

    /// The partition of each offset `group` has pending in open transactions, one per offset
    /// (a partition committed twice in open transactions is there twice).
    fn pending_of(&self, group: &str) -> Vec<TopicPartition> {
        self.inner
            .pending
            .lock()
            .values()
            .flatten()
            .filter(|o| o.group == group)
            .map(|o| o.tp.clone())
            .collect()
    }

    /// How many offsets of open transactions `group` has pending.
    pub fn pending_count(&self, group: &str) -> usize {
        self.pending_of(group).len()
    }

    /// The partitions `group` has offsets pending for in open transactions (an OffsetFetch
    /// with `require_stable` answers those UNSTABLE_OFFSET_COMMIT).
    pub fn pending_partitions(&self, group: &str) -> BTreeSet<TopicPartition> {
        self.pending_of(group).into_iter().collect()
    }

    /// Commits `offsets` for `group` in one batch and waits until it is fsynced. Generation
    /// and member checks are the caller's ([`super::GroupCoordinator::commit_offsets`]).
    pub async fn commit(
        &self,
        group: &str,
        offsets: Vec<(TopicPartition, OffsetAndMetadata)>,
    ) -> Result<()> {
        // An empty group id is accepted, as Kafka accepts it in OffsetCommit (not in
        // TxnOffsetCommit, see `txn_offset_commit_records`).
        let max = self.inner.config.metadata_max_bytes;
        for (_, o) in &offsets {
            let size = o.metadata.as_deref().map_or(0, str::len);
            if size > max {
                return Err(Error::OffsetMetadataTooLarge { size, max });
            }
        }
        if offsets.is_empty() {
            return Ok(());
        }
        let now = self.inner.clock.now_ms();
        let records: Vec<_> = offsets
            .into_iter()
            .map(|(tp, o)| {
                let committed = CommittedOffset {
                    offset: o.offset,
                    leader_epoch: o.leader_epoch,
                    metadata: o.metadata.unwrap_or_default(),
                    commit_timestamp: now,
                };
                (tp, Some(committed))
            })
            .collect();
        self.write(group, records, false).await
    }

    /// Removes the committed offsets of `partitions` (tombstones), waiting until fsynced.
    pub async fn delete_offsets(&self, group: &str, partitions: &[TopicPartition]) -> Result<()> {
        let records = partitions.iter().map(|tp| (tp.clone(), None)).collect();
        self.write(group, records, false).await
    }

    /// Removes every offset of `group` and its group metadata (tombstones), waiting until
    /// fsynced. Returns whether the group had offsets.
    pub async fn delete_group(&self, group: &str) -> Result<bool> {
        let tps: Vec<_> = match self.inner.offsets.lock().get(group) {
            Some(m) => m.keys().cloned().collect(),
            None => Vec::new(),
        };
        let had = !tps.is_empty();
        let records = tps.into_iter().map(|tp| (tp, None)).collect();
        self.write(group, records, true).await?;
        Ok(had)
    }

    /// Appends one batch of offset records (and a group metadata tombstone if asked), waits
    /// for durability, then applies it to the map.
    async fn write(
        &self,
        group: &str,
        records: Vec<(TopicPartition, Option<CommittedOffset>)>,
        group_tombstone: bool,
    ) -> Result<()> {
        if records.is_empty() && !group_tombstone {
            return Ok(());
        }
        let (partition, base_offset, applied) = self.append(group, records, group_tombstone)?;
        let end = base_offset + applied.len() as i64 + i64::from(group_tombstone);
        partition.wait_durable(end).await?;
        self.apply(group, applied, base_offset);
        Ok(())
    }

    /// Appends one batch; returns the partition, the batch's base offset and its records.
    #[allow(clippy::type_complexity)]
    fn append(
        &self,
        group: &str,
        records: Vec<(TopicPartition, Option<CommittedOffset>)>,
        group_tombstone: bool,
    ) -> Result<(
        Arc<Partition>,
        i64,
        Vec<(TopicPartition, Option<CommittedOffset>)>,
    )> {
        let tp = TopicPartition::new(CONSUMER_OFFSETS_TOPIC, self.partition_for(group));
        let partition = self.inner.log.partition(&tp)?;
        let now = self.inner.clock.now_ms();
        let mut b = BatchBuilder::new(Compression::None);
        for (tp, value) in &records {
            let (key, value) = encode_commit(group, tp, value.as_ref());
            b.append(now, Some(&key), value.as_deref(), &[]);
        }
        if group_tombstone {
            let key = OffsetsKey::GroupMetadata {
                group: group.to_owned(),
            }
            .encode();
            b.append(now, Some(&key), None, &[]);
        }
        let info = partition.append_from(b.build(), AppendOrigin::Coordinator)?;
        Ok((partition, info.base_offset, records))
    }

    fn apply(
        &self,
        group: &str,
        records: Vec<(TopicPartition, Option<CommittedOffset>)>,
        base_offset: i64,
    ) {
        let mut map = self.inner.offsets.lock();
        for (i, (tp, value)) in records.into_iter().enumerate() {
            apply_entry(&mut map, group, tp, value, base_offset + i as i64);
        }
    }

    /// The committed offsets of `group`: of `partitions` (`None` where nothing is committed),
    /// or with `None`, every partition it has an offset for.
    pub fn fetch(
        &self,
        group: &str,
        partitions: Option<&[TopicPartition]>,
    ) -> Vec<(TopicPartition, Option<CommittedOffset>)> {
        let map = self.inner.offsets.lock();
        let offsets = map.get(group);
        match partitions {
            Some(tps) => tps
                .iter()
                .map(|tp| {
                    let c = offsets.and_then(|m| m.get(tp)).map(|e| e.committed.clone());
                    (tp.clone(), c)
                })
                .collect(),
            None => offsets
                .map(|m| {
                    m.iter()
                        .map(|(tp, e)| (tp.clone(), Some(e.committed.clone())))
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    /// Groups that have committed offsets.
    pub fn groups(&self) -> Vec<String> {
        let mut v: Vec<_> = self.inner.offsets.lock().keys().cloned().collect();
        v.sort();
        v
    }

    /// Whether `group` has any committed offset.
    pub fn has_offsets(&self, group: &str) -> bool {
        self.inner.offsets.lock().contains_key(group)
    }

    /// Removes offsets past `offsets.retention.minutes`, writing tombstones (not waited on: an
    /// expiry lost in a crash runs again). `empty_since(group)` says whether a group may lose
    /// offsets: `None` while it has members (its offsets are kept), `Some(t)` if it has been
    /// empty since `t` (`i64::MIN` for groups without members at all). An offset expires when
    /// both `t` and its commit are older than the retention. Returns offsets expired.
    pub fn expire_offsets(&self, empty_since: impl Fn(&str) -> Option<i64>) -> Result<usize> {
        let now = self.inner.clock.now_ms();
        let retention = self.inner.config.retention_ms;
        let expired: Vec<(String, Vec<TopicPartition>)> = {
            let map = self.inner.offsets.lock();
            map.iter()
                .filter_map(|(group, offsets)| {
                    let since = empty_since(group)?;
                    let tps: Vec<_> = offsets
                        .iter()
                        .filter(|(_, e)| {
                            let from = since.max(e.committed.commit_timestamp);
                            now.saturating_sub(from) >= retention
                        })
                        .map(|(tp, _)| tp.clone())
                        .collect();
                    (!tps.is_empty()).then(|| (group.clone(), tps))
                })
                .collect()
        };
        let mut n = 0;
        for (group, tps) in expired {
            n += tps.len();
            let records = tps.into_iter().map(|tp| (tp, None)).collect();
            let (_, base, applied) = self.append(&group, records, false)?;
            self.apply(&group, applied, base);
            tracing::info!(group, "expired committed offsets");
        }
        Ok(n)
    }
}

/// The key and value (`None`: a tombstone) of an offset-commit record.
fn encode_commit(
    group: &str,
    tp: &TopicPartition,
    value: Option<&CommittedOffset>,
) -> (Vec<u8>, Option<Vec<u8>>) {
    let key = OffsetsKey::OffsetCommit {
        group: group.to_owned(),
        tp: tp.clone(),
    }
    .encode();
    let value = value.map(|c| {
        OffsetCommitValue {
            offset: c.offset,
            leader_epoch: c.leader_epoch.unwrap_or(-1),
            metadata: c.metadata.clone(),
            commit_timestamp: c.commit_timestamp,
        }
        .encode()
    });
    (key, value)
}

/// Completes the pending offsets of `producer_id` in `partition` on its marker (see
/// [`OffsetStore::complete_transaction`]).
fn complete_pending(
    map: &mut HashMap<String, BTreeMap<TopicPartition, Entry>>,
    pending: &mut PendingTxns,
    partition: i32,
    producer_id: i64,
    producer_epoch: i16,
    commit: bool,
) {
    let Some(list) = pending.remove(&(partition, producer_id)) else {
        return;
    };
    let (done, later): (Vec<_>, Vec<_>) = list
        .into_iter()
        .partition(|o| o.producer_epoch <= producer_epoch);
    if !later.is_empty() {
        pending.insert((partition, producer_id), later);
    }
    if !commit {
        return;
    }
    for o in done {
        if o.producer_epoch == producer_epoch {
            apply_entry(map, &o.group, o.tp, o.value, o.log_offset);
        }
    }
}

/// Decodes one record of `__consumer_offsets` read back from the log: the group, partition and
/// offset (`None`: a tombstone) of an offset commit, `None` for other records, or what does not
/// decode.
#[allow(clippy::type_complexity)]
fn decode_record(
    key: &Option<Bytes>,
    value: &Option<Bytes>,
) -> Result<Option<(String, TopicPartition, Option<CommittedOffset>)>> {
    let Some(key) = key.as_ref() else {
        return Ok(None);
    };
    let Some(key) = OffsetsKey::decode(key)? else {
        return Ok(None);
    };
    let OffsetsKey::OffsetCommit { group, tp } = key else {
        // Group metadata: membership is not restored (members rejoin after a restart).
        return Ok(None);
    };
    let committed = match value {
        None => None,
        Some(v) => {
            let v = OffsetCommitValue::decode(v)?;
            Some(CommittedOffset {
                offset: v.offset,
                leader_epoch: (v.leader_epoch >= 0).then_some(v.leader_epoch),
                metadata: v.metadata,
                commit_timestamp: v.commit_timestamp,
            })
        }
    };
    Ok(Some((group, tp, committed)))
}

fn apply_entry(
    map: &mut HashMap<String, BTreeMap<TopicPartition, Entry>>,
    group: &str,
    tp: TopicPartition,
    value: Option<CommittedOffset>,
    log_offset: i64,
) {
    let offsets = map.entry(group.to_owned()).or_default();
    if offsets.get(&tp).is_some_and(|e| e.log_offset > log_offset) {
        return; // a later record already applied
    }
    match value {
        Some(committed) => {
            offsets.insert(
                tp,
                Entry {
                    committed,
                    log_offset,
                },
            );
        }
        None => {
            offsets.remove(&tp);
        }
    }
    if offsets.is_empty() {
        map.remove(group);
    }
}
