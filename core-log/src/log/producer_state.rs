//! Per-partition state of idempotent producers, as Kafka's `ProducerStateManager` keeps it: for
//! each producer id its epoch and its last [`MAX_CACHED_BATCHES`] batches, so a retried batch is
//! recognised and answered with its original offsets instead of being appended twice.
//!
//! ```text
//! Partition::append (writer lock) -> check(batch) -> Append | Duplicate(original offsets) | Err
//!                                    ... offsets assigned, batch written ... -> update(batch)
//! roll, clean close -> NNNNNNNNNNNNNNNNNNNN.snapshot (state of every batch below that offset)
//! open -> newest valid snapshot <= log end, then replay the batch headers after it
//! ```
//!
//! The rules (Kafka's):
//! - an epoch older than the one known for the producer id is fenced (`InvalidProducerEpoch`);
//! - a batch with the same epoch whose (first, last) sequence equals one of the cached batches
//!   is a retry: nothing is appended and the original offsets come back;
//! - a newer epoch must start at sequence 0; the same epoch must continue at the last sequence
//!   plus one (wrapping from `i32::MAX` to 0); anything else is `OutOfOrderSequence`;
//! - an unknown producer id is accepted at any sequence (its state may have expired);
//! - a producer that has not written for `producer.id.expiration.ms` (on the log's clock) is
//!   forgotten, lazily: when it writes again, and by a sweep at most once a minute on append;
//! - when the log start moves past a producer's last batch, the producer is forgotten.
//!
//! Transactions: a transactional batch opens a transaction for its producer at its first offset
//! (unless one is open); a marker ([`ProducerStateManager::apply_marker`]) closes it. The
//! smallest first offset of the open transactions bounds the last stable offset. Producers with
//! an open transaction never expire.
//!
//! Snapshot file, big-endian: `version u16 = 3 | crc u32 (CRC-32C of what follows) | offset i64
//! | producers u32 | per producer: id i64, epoch i16, last append ms i64, open transaction's
//! first offset i64 (-1: none), last marker offset i64 (-1: none), that marker's coordinator
//! epoch i32 (-1: none), batches u8, per batch: first sequence i32, last sequence i32, first
//! offset i64, last offset i64, max timestamp i64`. Versions 1 and 2 are read, never written:
//! version 2 lacks the coordinator epoch; version 1 also the two transaction fields, and has at
//! least one batch.
//! Written to `.snapshot.tmp`, fsynced, renamed; a snapshot failing its CRC is ignored (and
//! deleted), and an older one plus a longer replay takes its place. The newest
//! [`SNAPSHOTS_KEPT`] are kept.

use std::collections::{BTreeMap, VecDeque};
use std::io::Write;
use std::path::{Path, PathBuf};

use rustc_hash::FxHashMap as HashMap;

use crate::record::{BatchHeader, increment_sequence};
use crate::{Error, Result, TopicPartition};

/// Default `producer.id.expiration.ms`: a producer silent for a day is forgotten.
pub const DEFAULT_PRODUCER_ID_EXPIRATION_MS: i64 = 86_400_000;
/// Batches remembered per producer: `max.in.flight.requests.per.connection` may be at most 5
/// with idempotence, so a retry is always one of them.
pub(crate) const MAX_CACHED_BATCHES: usize = 5;
/// Snapshot files kept per partition.
pub(crate) const SNAPSHOTS_KEPT: usize = 2;
const SNAPSHOT_SUFFIX: &str = ".snapshot";
const SNAPSHOT_TMP_SUFFIX: &str = ".snapshot.tmp";
const SNAPSHOT_VERSION: u16 = 3;
/// Longest time between two sweeps for expired producers.
const MAX_SWEEP_INTERVAL_MS: i64 = 60_000;
const BATCH_BYTES: usize = 32;

/// One batch of a producer, as remembered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BatchMetadata {
    pub(crate) first_seq: i32,
    pub(crate) last_seq: i32,
    pub(crate) first_offset: i64,
    pub(crate) last_offset: i64,
    pub(crate) max_timestamp: i64,
}

impl BatchMetadata {
    fn of(h: &BatchHeader) -> Self {
        Self {
            first_seq: h.base_sequence,
            last_seq: h.last_sequence(),
            first_offset: h.base_offset,
            last_offset: h.last_offset(),
            max_timestamp: h.max_timestamp,
        }
    }
}

/// What the partition knows of one producer id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProducerEntry {
    pub(crate) epoch: i16,
    /// Oldest first; at most [`MAX_CACHED_BATCHES`]; empty when only markers were seen since
    /// the epoch began.
    pub(crate) batches: VecDeque<BatchMetadata>,
    /// First offset of the producer's open transaction.
    pub(crate) txn_first_offset: Option<i64>,
    /// Offset of the last transaction marker written for the producer, or -1.
    pub(crate) last_marker_offset: i64,
    /// Coordinator epoch of that marker, or -1 (Kafka's `coordinatorEpoch`).
    pub(crate) coordinator_epoch: i32,
    /// The log's clock at the producer's last append (load time for replayed batches).
    pub(crate) last_append_ms: i64,
}

impl ProducerEntry {
    fn last_seq(&self) -> Option<i32> {
        self.batches.back().map(|b| b.last_seq)
    }

    fn last_offset(&self) -> i64 {
        self.batches
            .back()
            .map_or(-1, |b| b.last_offset)
            .max(self.last_marker_offset)
    }
}

/// One producer as a partition knows it (what Kafka's `DescribeProducers` shows).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerStateInfo {
    /// The producer id.
    pub producer_id: i64,
    /// Its current epoch.
    pub producer_epoch: i16,
    /// Last sequence number appended in this epoch, -1 if none (only markers since it began).
    pub last_sequence: i32,
    /// Largest timestamp of its last batch, -1 if none.
    pub last_timestamp: i64,
    /// First offset of its open transaction, if one is open.
    pub current_txn_start_offset: Option<i64>,
    /// Coordinator epoch of its last transaction marker, -1 if none.
    pub coordinator_epoch: i32,
}

/// What [`ProducerStateManager::check`] decided for a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Append it, then call [`ProducerStateManager::update`].
    Append,
    /// A retry of a batch already in the log: append nothing, answer with these offsets.
    Duplicate(BatchMetadata),
}

/// The idempotent producers of one partition. Owned by the partition's writer.
#[derive(Debug)]
pub(crate) struct ProducerStateManager {
    tp: TopicPartition,
    dir: PathBuf,
    producers: HashMap<i64, ProducerEntry>,
    expiration_ms: i64,
    next_sweep_ms: i64,
    /// Offset of the snapshot last written or loaded, and whether the state changed since.
    snapshot_at: Option<i64>,
    dirty: bool,
    /// Open transactions: first offset -> producer id.
    ongoing: BTreeMap<i64, i64>,
}

impl ProducerStateManager {
    /// Empty state (no snapshot read).
    pub(crate) fn new(tp: TopicPartition, dir: &Path, expiration_ms: i64, now: i64) -> Self {
        Self {
            tp,
            dir: dir.to_path_buf(),
            producers: HashMap::default(),
            expiration_ms,
            next_sweep_ms: now.saturating_add(sweep_interval(expiration_ms)),
            snapshot_at: None,
            dirty: false,
            ongoing: BTreeMap::new(),
        }
    }

    /// The first offset of the oldest open transaction: the last stable offset, if any is open.
    pub(crate) fn first_unstable_offset(&self) -> Option<i64> {
        self.ongoing.first_key_value().map(|(&first, _)| first)
    }

    /// Open transactions as (producer id, first offset), oldest first.
    pub(crate) fn ongoing_transactions(&self) -> Vec<(i64, i64)> {
        self.ongoing.iter().map(|(&f, &pid)| (pid, f)).collect()
    }

    fn rebuild_ongoing(&mut self) {
        self.ongoing = self
            .producers
            .iter()
            .filter_map(|(&pid, e)| e.txn_first_offset.map(|f| (f, pid)))
            .collect();
    }

    /// Checks that a transaction marker for `producer_id` carries an epoch at least as new as
    /// the one known (Kafka fences markers of an older epoch too).
    pub(crate) fn check_marker(&self, producer_id: i64, epoch: i16) -> Result<()> {
        match self.producers.get(&producer_id) {
            Some(e) if epoch < e.epoch => Err(Error::InvalidProducerEpoch {
                tp: self.tp.clone(),
                producer_id,
                current: e.epoch,
                got: epoch,
            }),
            _ => Ok(()),
        }
    }

    /// Records a transaction marker written at `offset` (or replayed): adopts a newer epoch
    /// (which fences the older one; the new epoch starts at sequence 0) and closes the
    /// producer's open transaction. Returns the closed transaction's first offset.
    pub(crate) fn apply_marker(
        &mut self,
        producer_id: i64,
        epoch: i16,
        offset: i64,
        coordinator_epoch: i32,
        now: i64,
    ) -> Option<i64> {
        let entry = self
            .producers
            .entry(producer_id)
            .or_insert_with(|| ProducerEntry {
                epoch,
                batches: VecDeque::new(),
                txn_first_offset: None,
                last_marker_offset: -1,
                coordinator_epoch: -1,
                last_append_ms: now,
            });
        if epoch > entry.epoch {
            entry.epoch = epoch;
            entry.batches.clear();
        }
        if offset >= entry.last_marker_offset {
            entry.coordinator_epoch = coordinator_epoch;
        }
        entry.last_marker_offset = entry.last_marker_offset.max(offset);
        entry.last_append_ms = entry.last_append_ms.max(now);
        let first = entry.txn_first_offset.take();
        if let Some(f) = first {
            self.ongoing.remove(&f);
        }
        first
    }

    /// Every producer not yet expired at `now`, by producer id.
    pub(crate) fn describe(&self, now: i64) -> Vec<ProducerStateInfo> {
        let mut out: Vec<ProducerStateInfo> = self
            .producers
            .iter()
            .filter(|(_, e)| !self.is_expired(e, now))
            .map(|(&producer_id, e)| ProducerStateInfo {
                producer_id,
                producer_epoch: e.epoch,
                last_sequence: e.last_seq().unwrap_or(-1),
                last_timestamp: e.batches.back().map_or(-1, |b| b.max_timestamp),
                current_txn_start_offset: e.txn_first_offset,
                coordinator_epoch: e.coordinator_epoch,
            })
            .collect();
        out.sort_by_key(|p| p.producer_id);
        out
    }

    /// Producer ids known.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.producers.len()
    }

    /// What is known of `producer_id`.
    #[cfg(test)]
    pub(crate) fn entry(&self, producer_id: i64) -> Option<&ProducerEntry> {
        self.producers.get(&producer_id)
    }

    /// Decides what to do with a batch of an idempotent producer (`producer_id >= 0`) before
    /// offsets are assigned. Changes nothing but expiry.
    pub(crate) fn check(&mut self, h: &BatchHeader, now: i64) -> Result<Verdict> {
        let pid = h.producer_id;
        if h.producer_epoch < 0 || h.base_sequence < 0 {
            return Err(Error::CorruptRecord(format!(
                "batch of producer {pid} has epoch {} and base sequence {}; an idempotent batch needs both non-negative",
                h.producer_epoch, h.base_sequence
            )));
        }
        self.maybe_sweep(now);
        if self
            .producers
            .get(&pid)
            .is_some_and(|e| self.is_expired(e, now))
        {
            tracing::debug!(tp = %self.tp, producer_id = pid, "producer state expired");
            self.producers.remove(&pid);
            self.dirty = true;
        }
        let first = h.base_sequence;
        let Some(entry) = self.producers.get(&pid) else {
            if first != 0 {
                tracing::debug!(tp = %self.tp, producer_id = pid, sequence = first, "unknown producer id with a non-zero sequence; accepting it");
            }
            return Ok(Verdict::Append);
        };
        if h.producer_epoch < entry.epoch {
            return Err(Error::InvalidProducerEpoch {
                tp: self.tp.clone(),
                producer_id: pid,
                current: entry.epoch,
                got: h.producer_epoch,
            });
        }
        if entry.txn_first_offset.is_some() && !h.is_transactional() {
            return Err(Error::InvalidTxnState(format!(
                "producer {pid} wrote a non-transactional batch to {} while its transaction is open",
                self.tp
            )));
        }
        if h.producer_epoch > entry.epoch {
            if first != 0 {
                return Err(self.out_of_order(pid, 0, first));
            }
            return Ok(Verdict::Append);
        }
        let last = h.last_sequence();
        if let Some(dup) = entry
            .batches
            .iter()
            .find(|b| b.first_seq == first && b.last_seq == last)
        {
            return Ok(Verdict::Duplicate(*dup));
        }
        match entry.last_seq() {
            Some(prev) if increment_sequence(prev, 1) != first => {
                Err(self.out_of_order(pid, increment_sequence(prev, 1), first))
            }
            _ => Ok(Verdict::Append),
        }
    }

    fn out_of_order(&self, producer_id: i64, expected: i32, got: i32) -> Error {
        Error::OutOfOrderSequence {
            tp: self.tp.clone(),
            producer_id,
            expected,
            got,
        }
    }

    /// Records a batch appended at its final offsets (or replayed from the log). A batch of an
    /// epoch older than the known one is ignored.
    pub(crate) fn update(&mut self, h: &BatchHeader, now: i64) {
        if h.producer_id < 0 || h.producer_epoch < 0 || h.base_sequence < 0 || h.is_control() {
            return;
        }
        let meta = BatchMetadata::of(h);
        self.dirty = true;
        let entry = self
            .producers
            .entry(h.producer_id)
            .or_insert_with(|| ProducerEntry {
                epoch: h.producer_epoch,
                batches: VecDeque::with_capacity(MAX_CACHED_BATCHES),
                txn_first_offset: None,
                last_marker_offset: -1,
                coordinator_epoch: -1,
                last_append_ms: now,
            });
        if h.producer_epoch < entry.epoch {
            return;
        }
        if h.is_transactional() && entry.txn_first_offset.is_none() {
            entry.txn_first_offset = Some(h.base_offset);
            self.ongoing.insert(h.base_offset, h.producer_id);
        }
        if h.producer_epoch > entry.epoch {
            entry.epoch = h.producer_epoch;
            entry.batches.clear();
        }
        if entry.batches.len() >= MAX_CACHED_BATCHES {
            entry.batches.pop_front();
        }
        entry.batches.push_back(meta);
        entry.last_append_ms = entry.last_append_ms.max(now);
    }

    /// Forgets producers whose last batch lies below the new log start (retention,
    /// DeleteRecords), as Kafka does.
    pub(crate) fn evict_below(&mut self, log_start: i64) {
        let before = self.producers.len();
        self.producers
            .retain(|_, e| e.last_offset() >= log_start || e.txn_first_offset.is_some());
        self.dirty |= self.producers.len() < before;
    }

    fn is_expired(&self, e: &ProducerEntry, now: i64) -> bool {
        e.txn_first_offset.is_none() && now.saturating_sub(e.last_append_ms) >= self.expiration_ms
    }

    fn maybe_sweep(&mut self, now: i64) {
        if now < self.next_sweep_ms {
            return;
        }
        self.next_sweep_ms = now.saturating_add(sweep_interval(self.expiration_ms));
        let expiration = self.expiration_ms;
        let before = self.producers.len();
        self.producers.retain(|_, e| {
            e.txn_first_offset.is_some() || now.saturating_sub(e.last_append_ms) < expiration
        });
        if self.producers.len() < before {
            self.dirty = true;
            tracing::debug!(tp = %self.tp, expired = before - self.producers.len(), "producer states expired");
        }
    }

    /// Writes `<offset>.snapshot` (the state of every batch below `offset`, which must be the
    /// log end) and deletes all but the newest [`SNAPSHOTS_KEPT`] snapshots. Does nothing if
    /// that snapshot exists and the state has not changed since.
    pub(crate) fn write_snapshot(&mut self, offset: i64, now: i64) -> Result<()> {
        self.maybe_sweep(now);
        if !self.dirty
            && self.snapshot_at == Some(offset)
            && snapshot_path(&self.dir, offset).exists()
        {
            return Ok(());
        }
        let bytes = encode_snapshot(offset, &self.producers);
        let path = snapshot_path(&self.dir, offset);
        let tmp = self.dir.join(format!(
            "{}{SNAPSHOT_TMP_SUFFIX}",
            super::segment::file_stem(offset)
        ));
        let mut f = std::fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        f.write_all(&bytes)
            .and_then(|()| f.sync_all())
            .map_err(|e| Error::io(&tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))?;
        self.snapshot_at = Some(offset);
        self.dirty = false;
        tracing::debug!(tp = %self.tp, offset, producers = self.producers.len(), "producer state snapshot written");
        let mut offsets = list_snapshots(&self.dir)?;
        offsets.sort_unstable_by(|a, b| b.cmp(a));
        for old in offsets.into_iter().skip(SNAPSHOTS_KEPT) {
            remove_snapshot(&self.dir, old);
        }
        Ok(())
    }

    /// Loads the newest valid snapshot at or below `trusted_end`, the offset below which the
    /// log is known complete and durable (the smaller of the log end and the recovery point, as
    /// Kafka trusts no snapshot past the recovery point after an unclean shutdown). Newer
    /// snapshots are deleted (they may describe batches a crash took away), and so are torn
    /// ones. Producers whose last batch lies below `log_start` are forgotten. Returns the state
    /// and the offset from which batches must be replayed with
    /// [`ProducerStateManager::update`].
    pub(crate) fn load(
        tp: TopicPartition,
        dir: &Path,
        log_start: i64,
        trusted_end: i64,
        expiration_ms: i64,
        now: i64,
    ) -> Result<(Self, i64)> {
        let mut state = Self::new(tp, dir, expiration_ms, now);
        let mut offsets = list_snapshots(dir)?;
        offsets.sort_unstable_by(|a, b| b.cmp(a));
        let mut replay_from = 0;
        for offset in offsets {
            if offset > trusted_end {
                tracing::info!(tp = %state.tp, offset, trusted_end, "deleting a producer state snapshot past the recovery point");
                remove_snapshot(dir, offset);
                continue;
            }
            let path = snapshot_path(dir, offset);
            let decoded = std::fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|bytes| decode_snapshot(&bytes, offset));
            match decoded {
                Ok(producers) => {
                    state.producers = producers;
                    state.snapshot_at = Some(offset);
                    state.rebuild_ongoing();
                    replay_from = offset;
                    break;
                }
                Err(reason) => {
                    tracing::warn!(tp = %state.tp, snapshot = %path.display(), reason, "ignoring a damaged producer state snapshot");
                    remove_snapshot(dir, offset);
                }
            }
        }
        state.evict_below(log_start);
        Ok((state, replay_from))
    }
}

fn sweep_interval(expiration_ms: i64) -> i64 {
    expiration_ms.clamp(1, MAX_SWEEP_INTERVAL_MS)
}

fn snapshot_path(dir: &Path, offset: i64) -> PathBuf {
    dir.join(format!(
        "{}{SNAPSHOT_SUFFIX}",
        super::segment::file_stem(offset)
    ))
}

fn remove_snapshot(dir: &Path, offset: i64) {
    let path = snapshot_path(dir, offset);
    if let Err(e) = std::fs::remove_file(&path)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(snapshot = %path.display(), error = %e, "could not delete a producer state snapshot");
    }
}

/// Offsets of the snapshot files in `dir`; leftover temporary files are deleted.
fn list_snapshots(dir: &Path) -> Result<Vec<i64>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.ends_with(SNAPSHOT_TMP_SUFFIX) {
            let _ = std::fs::remove_file(entry.path());
        } else if let Some(stem) = name.strip_suffix(SNAPSHOT_SUFFIX)
            && stem.len() == 20
            && stem.bytes().all(|b| b.is_ascii_digit())
            && let Ok(offset) = stem.parse::<i64>()
        {
            out.push(offset);
        }
    }
    Ok(out)
}

fn encode_snapshot(offset: i64, producers: &HashMap<i64, ProducerEntry>) -> Vec<u8> {
    let mut ids: Vec<&i64> = producers.keys().collect();
    ids.sort_unstable();
    let mut body = Vec::with_capacity(12 + producers.len() * (19 + 2 * BATCH_BYTES));
    body.extend_from_slice(&offset.to_be_bytes());
    body.extend_from_slice(&(producers.len() as u32).to_be_bytes());
    for id in ids {
        let Some(e) = producers.get(id) else { continue };
        body.extend_from_slice(&id.to_be_bytes());
        body.extend_from_slice(&e.epoch.to_be_bytes());
        body.extend_from_slice(&e.last_append_ms.to_be_bytes());
        body.extend_from_slice(&e.txn_first_offset.unwrap_or(-1).to_be_bytes());
        body.extend_from_slice(&e.last_marker_offset.to_be_bytes());
        body.extend_from_slice(&e.coordinator_epoch.to_be_bytes());
        body.push(e.batches.len() as u8);
        for b in &e.batches {
            body.extend_from_slice(&b.first_seq.to_be_bytes());
            body.extend_from_slice(&b.last_seq.to_be_bytes());
            body.extend_from_slice(&b.first_offset.to_be_bytes());
            body.extend_from_slice(&b.last_offset.to_be_bytes());
            body.extend_from_slice(&b.max_timestamp.to_be_bytes());
        }
    }
    let mut out = Vec::with_capacity(6 + body.len());
    out.extend_from_slice(&SNAPSHOT_VERSION.to_be_bytes());
    out.extend_from_slice(&crc32c::crc32c(&body).to_be_bytes());
    out.extend_from_slice(&body);
    out
}

/// Bounds-checked big-endian reads.
struct Cursor<'a>(&'a [u8]);

impl Cursor<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let (head, rest) = self
            .0
            .split_first_chunk::<N>()
            .ok_or_else(|| "truncated".to_owned())?;
        self.0 = rest;
        Ok(*head)
    }
    fn i64(&mut self) -> Result<i64, String> {
        self.take().map(i64::from_be_bytes)
    }
    fn i32(&mut self) -> Result<i32, String> {
        self.take().map(i32::from_be_bytes)
    }
    fn i16(&mut self) -> Result<i16, String> {
        self.take().map(i16::from_be_bytes)
    }
    fn u32(&mut self) -> Result<u32, String> {
        self.take().map(u32::from_be_bytes)
    }
    fn u16(&mut self) -> Result<u16, String> {
        self.take().map(u16::from_be_bytes)
    }
    fn u8(&mut self) -> Result<u8, String> {
        self.take::<1>().map(|[b]| b)
    }
}

fn decode_snapshot(bytes: &[u8], offset: i64) -> Result<HashMap<i64, ProducerEntry>, String> {
    let mut c = Cursor(bytes);
    let version = c.u16()?;
    if !(1..=SNAPSHOT_VERSION).contains(&version) {
        return Err(format!("unknown snapshot version {version}"));
    }
    let crc = c.u32()?;
    if crc32c::crc32c(c.0) != crc {
        return Err("CRC-32C mismatch".into());
    }
    let at = c.i64()?;
    if at != offset {
        return Err(format!("holds offset {at}, its name says {offset}"));
    }
    let count = c.u32()? as usize;
    // Each producer takes at least 19 bytes: a bogus count cannot make us allocate much.
    let mut producers =
        HashMap::with_capacity_and_hasher(count.min(c.0.len() / 19), Default::default());
    for _ in 0..count {
        let id = c.i64()?;
        let epoch = c.i16()?;
        let last_append_ms = c.i64()?;
        let (txn_first_offset, last_marker_offset) = if version >= 2 {
            (Some(c.i64()?).filter(|&f| f >= 0), c.i64()?)
        } else {
            (None, -1)
        };
        let coordinator_epoch = if version >= 3 { c.i32()? } else { -1 };
        let n = c.u8()? as usize;
        if (n == 0 && version == 1) || n > MAX_CACHED_BATCHES {
            return Err(format!("producer {id} has {n} batches"));
        }
        let mut batches = VecDeque::with_capacity(n);
        for _ in 0..n {
            batches.push_back(BatchMetadata {
                first_seq: c.i32()?,
                last_seq: c.i32()?,
                first_offset: c.i64()?,
                last_offset: c.i64()?,
                max_timestamp: c.i64()?,
            });
        }
        producers.insert(
            id,
            ProducerEntry {
                epoch,
                batches,
                txn_first_offset,
                last_marker_offset,
                coordinator_epoch,
                last_append_ms,
            },
        );
    }
    if !c.0.is_empty() {
        return Err(format!("{} bytes after the last producer", c.0.len()));
    }
    Ok(producers)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Compression;
    use crate::record::{BatchBuilder, set_base_offset};

    const EXPIRY: i64 = 1_000;

    fn tp() -> TopicPartition {
        TopicPartition::new("t", 0)
    }

    /// A header of `count` records from `pid`/`epoch` starting at `seq`, at `offset`.
    fn header(pid: i64, epoch: i16, seq: i32, count: usize, offset: i64) -> BatchHeader {
        let mut b = BatchBuilder::new(Compression::None).producer(pid, epoch, seq);
        for i in 0..count {
            b.append(i as i64, None, Some(b"v"), &[]);
        }
        let mut bytes = b.build();
        set_base_offset(&mut bytes, offset);
        BatchHeader::parse(&bytes).unwrap()
    }

    fn state(dir: &Path) -> ProducerStateManager {
        ProducerStateManager::new(tp(), dir, EXPIRY, 0)
    }

    /// Checks and, if accepted, records the batch; returns the verdict.
    fn offer(s: &mut ProducerStateManager, h: &BatchHeader, now: i64) -> Result<Verdict> {
        let v = s.check(h, now)?;
        if v == Verdict::Append {
            s.update(h, now);
        }
        Ok(v)
    }

    #[test]
    fn sequences_continue_and_retries_of_the_last_five_are_duplicates() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = state(dir.path());
        let mut offset = 0;
        for i in 0..7 {
            let h = header(1, 0, i * 2, 2, offset);
            assert_eq!(offer(&mut s, &h, 0).unwrap(), Verdict::Append);
            offset += 2;
        }
        // Batches 2..7 are cached (the last five), batches 0 and 1 are not.
        for i in 2..7 {
            let retry = header(1, 0, i * 2, 2, 999);
            let Verdict::Duplicate(m) = s.check(&retry, 0).unwrap() else {
                panic!("batch {i} is a duplicate");
            };
            assert_eq!(
                (m.first_offset, m.last_offset),
                (i64::from(i) * 2, i64::from(i) * 2 + 1)
            );
        }
        let old = header(1, 0, 2, 2, 999);
        let err = s.check(&old, 0).unwrap_err();
        assert!(
            matches!(
                err,
                Error::OutOfOrderSequence {
                    expected: 14,
                    got: 2,
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(s.entry(1).unwrap().batches.len(), MAX_CACHED_BATCHES);
    }

    #[test]
    fn a_gap_is_out_of_order_and_names_everything() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = state(dir.path());
        offer(&mut s, &header(7, 0, 0, 3, 0), 0).unwrap();
        let err = s.check(&header(7, 0, 4, 1, 3), 0).unwrap_err();
        assert_eq!(
            err.to_string(),
            "out of order sequence number for producer 7 on t-0: expected 3, received 4"
        );
        // Nothing changed: the right sequence still goes.
        assert_eq!(
            offer(&mut s, &header(7, 0, 3, 1, 3), 0).unwrap(),
            Verdict::Append
        );
    }

    #[test]
    fn epochs_fence_old_producers_and_new_epochs_start_at_zero() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = state(dir.path());
        offer(&mut s, &header(3, 5, 0, 2, 0), 0).unwrap();
        let err = s.check(&header(3, 4, 2, 1, 2), 0).unwrap_err();
        assert!(
            matches!(
                err,
                Error::InvalidProducerEpoch {
                    current: 5,
                    got: 4,
                    ..
                }
            ),
            "{err}"
        );
        let err = s.check(&header(3, 6, 2, 1, 2), 0).unwrap_err();
        assert!(
            matches!(
                err,
                Error::OutOfOrderSequence {
                    expected: 0,
                    got: 2,
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(
            offer(&mut s, &header(3, 6, 0, 1, 2), 0).unwrap(),
            Verdict::Append
        );
        // The old epoch's batches are no longer duplicates: it is fenced.
        assert!(s.check(&header(3, 5, 0, 2, 9), 0).is_err());
        assert_eq!(s.entry(3).unwrap().batches.len(), 1);
    }

    #[test]
    fn unknown_producers_may_start_anywhere_and_sequences_wrap() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = state(dir.path());
        // Two records from i32::MAX: sequences MAX and 0.
        let h = header(9, 0, i32::MAX, 2, 0);
        assert_eq!(h.last_sequence(), 0);
        assert_eq!(offer(&mut s, &h, 0).unwrap(), Verdict::Append);
        assert_eq!(
            offer(&mut s, &header(9, 0, 1, 1, 2), 0).unwrap(),
            Verdict::Append
        );
        assert!(matches!(
            s.check(&header(9, 0, i32::MAX, 2, 5), 0).unwrap(),
            Verdict::Duplicate(_)
        ));
    }

    #[test]
    fn idle_producers_expire_lazily() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = state(dir.path());
        offer(&mut s, &header(1, 0, 0, 1, 0), 0).unwrap();
        offer(&mut s, &header(2, 0, 0, 1, 1), 500).unwrap();
        // Producer 1 expired: a retry is no longer recognised, any sequence is accepted.
        assert_eq!(
            s.check(&header(1, 0, 0, 1, 2), EXPIRY).unwrap(),
            Verdict::Append
        );
        assert!(s.entry(1).is_none());
        // The next sweep (at most an expiration interval later) forgets producer 2 too.
        s.check(&header(5, 0, 0, 1, 2), 2 * EXPIRY - 1).unwrap();
        assert_eq!(s.len(), 1);
        s.check(&header(5, 0, 0, 1, 2), 2 * EXPIRY).unwrap();
        assert_eq!(s.len(), 0);
    }

    #[test]
    fn negative_epoch_or_sequence_with_a_producer_id_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = state(dir.path());
        assert!(matches!(
            s.check(&header(1, -1, 0, 1, 0), 0),
            Err(Error::CorruptRecord(_))
        ));
        assert!(matches!(
            s.check(&header(1, 0, -5, 1, 0), 0),
            Err(Error::CorruptRecord(_))
        ));
    }

    #[test]
    fn snapshots_roundtrip_keep_two_and_skip_torn_or_future_ones() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = state(dir.path());
        let mut seqs: HashMap<i64, i32> = HashMap::default();
        for (offset, pid) in [1, 2, 1, 3, 1, 1, 1, 1].into_iter().enumerate() {
            let seq = seqs.entry(pid).or_insert(0);
            let h = header(pid, 0, *seq, 1, offset as i64);
            assert_eq!(offer(&mut s, &h, 0).unwrap(), Verdict::Append);
            *seq += 1;
        }
        s.write_snapshot(4, 0).unwrap();
        s.write_snapshot(6, 0).unwrap();
        s.write_snapshot(8, 0).unwrap();
        assert_eq!(
            {
                let mut v = list_snapshots(dir.path()).unwrap();
                v.sort();
                v
            },
            [6, 8]
        );
        let (loaded, from) = ProducerStateManager::load(tp(), dir.path(), 0, 8, EXPIRY, 0).unwrap();
        assert_eq!(from, 8);
        assert_eq!(loaded.producers, s.producers);
        // The log end went back below 8 (a crash cut the tail): the snapshot at 8 goes.
        let (_, from) = ProducerStateManager::load(tp(), dir.path(), 0, 7, EXPIRY, 0).unwrap();
        assert_eq!(from, 6);
        assert_eq!(list_snapshots(dir.path()).unwrap(), [6]);
        // A torn snapshot is ignored.
        let p = snapshot_path(dir.path(), 6);
        let bytes = std::fs::read(&p).unwrap();
        std::fs::write(&p, &bytes[..bytes.len() - 3]).unwrap();
        let (loaded, from) = ProducerStateManager::load(tp(), dir.path(), 0, 7, EXPIRY, 0).unwrap();
        assert_eq!((from, loaded.len()), (0, 0));
        // Producers whose batches are below the log start are forgotten.
        s.write_snapshot(8, 0).unwrap();
        let (loaded, _) = ProducerStateManager::load(tp(), dir.path(), 7, 8, EXPIRY, 0).unwrap();
        assert_eq!(loaded.producers.keys().copied().collect::<Vec<_>>(), [1]);
    }

    #[test]
    fn a_markers_coordinator_epoch_survives_a_snapshot_and_older_versions_read_as_none() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = state(dir.path());
        let h = header(5, 0, 0, 1, 0);
        assert_eq!(offer(&mut s, &h, 0).unwrap(), Verdict::Append);
        assert_eq!(s.describe(0)[0].coordinator_epoch, -1, "no marker yet");
        s.apply_marker(5, 0, 1, 7, 0);
        assert_eq!(s.describe(0)[0].coordinator_epoch, 7);
        s.write_snapshot(2, 0).unwrap();
        let (loaded, _) = ProducerStateManager::load(tp(), dir.path(), 0, 2, EXPIRY, 0).unwrap();
        assert_eq!(loaded.describe(0)[0].coordinator_epoch, 7);
        // The same snapshot as version 2 wrote it: no coordinator epoch field.
        let bytes = encode_snapshot(2, &s.producers);
        let body = &bytes[6..];
        // offset i64, count u32, id i64, epoch i16, last append i64, txn first i64, marker i64
        let at = 8 + 4 + 8 + 2 + 8 + 8 + 8;
        let mut v2_body = body[..at].to_vec();
        v2_body.extend_from_slice(&body[at + 4..]);
        let mut v2 = 2u16.to_be_bytes().to_vec();
        v2.extend_from_slice(&crc32c::crc32c(&v2_body).to_be_bytes());
        v2.extend_from_slice(&v2_body);
        let producers = decode_snapshot(&v2, 2).unwrap();
        assert_eq!(producers[&5].coordinator_epoch, -1);
        assert_eq!(producers[&5].last_marker_offset, 1);
    }

    #[test]
    fn garbage_snapshots_never_panic() {
        let mut bytes = encode_snapshot(0, &HashMap::default());
        for len in 0..bytes.len() {
            let _ = decode_snapshot(&bytes[..len], 0);
        }
        bytes.extend_from_slice(&[0xff; 64]);
        assert!(decode_snapshot(&bytes, 0).is_err());
        let mut seed = 1u64;
        for _ in 0..2000 {
            let noise: Vec<u8> = (0..(seed % 200) as usize)
                .map(|_| {
                    seed = seed
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    (seed >> 33) as u8
                })
                .collect();
            let _ = decode_snapshot(&noise, 0);
        }
    }
}
