//! Log compaction, as Kafka's log cleaner does it: keep the latest record of every key.
//!
//! ```text
//!  segments:  [ clean ..... | dirty ............ | too recent | active ]
//!             0        checkpoint          map end         (never touched)
//!  1. offset map: latest offset of every key in the dirty part (bounded by the dedupe buffer)
//!  2. rewrite [0, map end) in groups of segments that fit in one segment.bytes, keeping a
//!     record iff no later record of its key is in the map (tombstones: and not yet expired)
//!  3. swap each group's new segment in: .cleaned -> fsync -> .swap -> in memory -> delete old
//!     files -> rename to .log; the cleaner checkpoint moves to the map end
//! ```
//!
//! The rules, Kafka's unless said otherwise:
//! - The active segment is never cleaned, nor any segment from the first one holding a record
//!   younger than `min.compaction.lag.ms` (by its max timestamp, on the log's clock).
//! - A partition is cleaned when its dirty ratio (bytes of cleanable segments at or past the
//!   cleaner checkpoint over all cleanable bytes) reaches `min.cleanable.dirty.ratio`, or when
//!   its first dirty segment is older than `max.compaction.lag.ms`; a forced pass cleans every
//!   partition with a cleanable segment.
//! - A record survives iff no later record with the same key is in the offset map. Offsets,
//!   timestamps, headers, and each batch's producer id, epoch, base sequence, transactional
//!   flag, leader epoch and codec are kept; surviving records of a batch are re-encoded into
//!   one batch based at the first survivor's offset (offset gaps are normal in compacted
//!   logs). A batch losing all its records is dropped (Kafka may keep an empty one for the
//!   producer state; here producer state survives in snapshots taken at every roll, so only a
//!   replay without a snapshot, after snapshots were lost, misses a producer's dropped batches).
//! - Records with a null key are kept. Kafka refuses them at append on compacted topics; this
//!   log accepts them, so the cleaner cannot drop them without losing data.
//! - Tombstones (null value): a tombstone not superseded by a later record is removed once the
//!   max timestamp of the segment holding it is older than `now - delete.retention.ms`. This
//!   replaces Kafka's delete horizon (KIP-534, stamped in the batch at the first cleaning)
//!   with a rule that gives consumers the same guarantee: a tombstone stays at least
//!   `delete.retention.ms` after it was written, so a consumer reading that far behind sees it.
//! - Control batches (transaction markers) are copied as they are. A transactional record
//!   enters the offset map only when its producer's COMMIT marker follows it within the dirty
//!   range, so records of aborted (or still open) transactions never supersede older records
//!   (`__consumer_offsets` relies on it: an aborted offset commit must not erase the committed
//!   one). They themselves are kept like any record until a later committed one supersedes
//!   them; readers skip them through the markers.
//!
//! Memory: the offset map keeps whole keys (no hash collisions, unlike Kafka's MD5 digests) and
//! counts `key length + 48` bytes per entry against `log.cleaner.dedupe.buffer.size`; when it
//! fills, the pass cleans up to the last segment that fitted and the next pass goes on from
//! there. The first dirty segment is always taken whole, even past the limit, so every pass
//! progresses.
//!
//! Concurrency: the cleaner reads segments through [`Segment::read`] without the writer lock;
//! only [`Partition::replace_segments`] takes it, briefly. Readers holding a replaced segment
//! get an error from its deleted files and retry on the new segments.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;

use super::checkpoint;
use super::files::FileCache;
use super::partition::Partition;
use super::segment::{SWAP_SUFFIX, Segment};
use crate::config::TopicConfig;
use crate::record::{self, BatchBuilder, BatchHeader, BatchIter, ControlRecord, Record};
use crate::{Error, Result, TimestampType};

/// Kafka's default `log.cleaner.dedupe.buffer.size`: 128 MiB.
pub const DEFAULT_DEDUPE_BUFFER_SIZE: usize = 128 << 20;

/// Bytes counted per offset-map entry besides the key: the key's `Vec`, the offset, and the
/// hash table's slack.
const ENTRY_OVERHEAD: usize = 48;
/// Bytes read from a segment at once (more when one batch is larger).
const READ_CHUNK: u64 = 1 << 20;
/// Largest uncompressed records section the cleaner decompresses.
const MAX_UNCOMPRESSED: usize = 256 << 20;

/// What one cleaner pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CleanerStats {
    /// Partitions whose segments were rewritten.
    pub partitions_cleaned: usize,
    /// Old segments replaced.
    pub segments_replaced: usize,
    /// New segments written (a group whose records all go leaves none).
    pub segments_written: usize,
    /// Bytes of the segments replaced.
    pub bytes_read: u64,
    /// Bytes of the segments written.
    pub bytes_written: u64,
    /// Records read from the segments replaced.
    pub records_read: u64,
    /// Records dropped because a later record has the same key.
    pub records_superseded: u64,
    /// Tombstones dropped after `delete.retention.ms`.
    pub tombstones_removed: u64,
    /// Partitions whose cleaning failed (logged; retried next pass).
    pub partitions_failed: usize,
}

impl CleanerStats {
    pub(crate) fn add(&mut self, o: &CleanerStats) {
        self.partitions_cleaned += o.partitions_cleaned;
        self.segments_replaced += o.segments_replaced;
        self.segments_written += o.segments_written;
        self.bytes_read += o.bytes_read;
        self.bytes_written += o.bytes_written;
        self.records_read += o.records_read;
        self.records_superseded += o.records_superseded;
        self.tombstones_removed += o.tombstones_removed;
        self.partitions_failed += o.partitions_failed;
    }
}

/// How one pass runs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CleanerOptions {
    /// Clean every partition with a cleanable segment, whatever its dirty ratio.
    pub(crate) force: bool,
    /// `log.cleaner.dedupe.buffer.size`: memory the offset map may use.
    pub(crate) dedupe_buffer_size: usize,
}

/// What cleaning one partition did.
#[derive(Debug)]
pub(crate) struct Outcome {
    /// The new cleaner checkpoint, if the whole planned range was cleaned.
    pub(crate) checkpoint: Option<i64>,
    pub(crate) stats: CleanerStats,
}

/// Latest offset of each key in the dirty range.
#[derive(Debug)]
struct OffsetMap {
    map: HashMap<Vec<u8>, i64>,
    bytes: usize,
}

impl OffsetMap {
    fn put(&mut self, key: &[u8], offset: i64) {
        match self.map.get_mut(key) {
            Some(o) => *o = (*o).max(offset),
            None => {
                self.bytes += key.len() + ENTRY_OVERHEAD;
                self.map.insert(key.to_vec(), offset);
            }
        }
    }

    fn latest(&self, key: &[u8]) -> Option<i64> {
        self.map.get(key).copied()
    }
}

/// Cleans one partition if it is due (or `force`). `first_dirty` is its cleaner checkpoint;
/// `stop` is polled between segments so a closing log does not wait for a whole pass.
/// Returns `None` when there was nothing to do or the segments changed under the pass.
pub(crate) fn clean_partition(
    p: &Partition,
    first_dirty: Option<i64>,
    opts: &CleanerOptions,
    stop: &dyn Fn() -> bool,
) -> Result<Option<Outcome>> {
    let config = p.config();
    if !config.cleanup_policy.compact {
        return Ok(None);
    }
    p.check_online()?;
    p.ctx().check_writable()?;
    let now = p.ctx().clock.now_ms();
    let segs = p.segments();
    let Some(dirty) = dirty_range(p, &config, &segs, first_dirty, opts, now)? else {
        return Ok(None);
    };
    // 1. The offset map over the dirty segments, as many as fit.
    let Some((map, map_end)) = offset_map(p, &segs, &dirty, opts, stop)? else {
        return Ok(None);
    };
    // The map covers [first dirty, base of segment `map_end`): the next pass starts there.
    let checkpoint_to = match segs.get(map_end) {
        Some(s) if map_end > dirty.start => s.base_offset(),
        _ => dirty.first_dirty,
    };
    // 2. Groups of segments below the map end, each fitting in one segment.
    let (finished, stats) = clean_groups(p, &config, &segs, map_end, &map, now, stop)?;
    Ok(Some(Outcome {
        checkpoint: finished.then_some(checkpoint_to),
        stats,
    }))
}

/// The segments a pass cleans: from the first dirty one to the first one within the
/// compaction lag (the active segment never).
#[derive(Debug)]
struct DirtyRange {
    /// Index of the first dirty segment.
    start: usize,
    /// Index after the last segment old enough to clean.
    cleanable_end: usize,
    /// The first dirty offset (the checkpoint, if it lies in the log).
    first_dirty: i64,
}

/// The upper bound of segment `i`: the next segment's base (it exists below the active one).
fn upper_bound(segs: &[Arc<Segment>], i: usize) -> i64 {
    segs.get(i + 1).map_or(i64::MAX, |s| s.base_offset())
}

/// Whether the partition is due for cleaning (dirty ratio or max compaction lag), or `force`d;
/// if so, the range of segments to clean.
fn dirty_range(
    p: &Partition,
    config: &TopicConfig,
    segs: &[Arc<Segment>],
    first_dirty: Option<i64>,
    opts: &CleanerOptions,
    now: i64,
) -> Result<Option<DirtyRange>> {
    let files = &*p.ctx().files;
    let Some((_active, non_active)) = segs.split_last() else {
        return Ok(None);
    };
    for s in non_active {
        if let Err(e) = s.ensure_index(files) {
            // Retention may have deleted it meanwhile; the next pass sees fresh segments.
            if s.is_deleted() {
                return Ok(None);
            }
            return Err(e);
        }
    }
    let lag_horizon = now.saturating_sub(config.min_compaction_lag_ms);
    let cleanable_end = non_active
        .iter()
        .position(|s| s.max_timestamp() > lag_horizon)
        .unwrap_or(non_active.len());
    if cleanable_end == 0 {
        return Ok(None);
    }
    let first_base = segs.first().map_or(0, |s| s.base_offset());
    let first_dirty = match first_dirty {
        Some(o) if o >= first_base && o <= p.log_end_offset() => o,
        _ => first_base,
    };
    let dirty_start = (0..cleanable_end)
        .find(|&i| upper_bound(segs, i) > first_dirty)
        .unwrap_or(cleanable_end);
    let size_of = |r: Range<usize>| segs[r].iter().map(|s| s.size()).sum::<u64>();
    let dirty_bytes = size_of(dirty_start..cleanable_end);
    let total_bytes = size_of(0..cleanable_end);
    let ratio = if total_bytes == 0 {
        0.0
    } else {
        dirty_bytes as f64 / total_bytes as f64
    };
    let lag_due = segs.get(dirty_start).is_some_and(|s| {
        dirty_start < cleanable_end
            && s.max_timestamp() <= now.saturating_sub(config.max_compaction_lag_ms)
    });
    let due = dirty_bytes > 0 && (ratio >= config.min_cleanable_dirty_ratio || lag_due);
    if !due && !opts.force {
        return Ok(None);
    }
    Ok(Some(DirtyRange {
        start: dirty_start,
        cleanable_end,
        first_dirty,
    }))
}

/// Step 1: the offset map over the dirty segments, as many as fit in the dedupe buffer (at
/// least the first), and the index of the segment after the last one mapped. `None` if
/// `stop` asked to stop.
fn offset_map(
    p: &Partition,
    segs: &[Arc<Segment>],
    dirty: &DirtyRange,
    opts: &CleanerOptions,
    stop: &dyn Fn() -> bool,
) -> Result<Option<(OffsetMap, usize)>> {
    let files = &*p.ctx().files;
    let mut map = OffsetMap {
        map: HashMap::new(),
        bytes: 0,
    };
    let mut map_end = dirty.start;
    // Keys of transactions not completed yet, by producer id: an aborted (or still open)
    // transaction's records must not make older records look superseded.
    let mut open_txns: HashMap<i64, Vec<(Vec<u8>, i64)>> = HashMap::new();
    let dirty_segments = segs.iter().enumerate().take(dirty.cleanable_end);
    for (i, seg) in dirty_segments.skip(dirty.start) {
        if stop() {
            return Ok(None);
        }
        let first = i == dirty.start;
        let complete = for_each_batch(seg, files, |h, batch| {
            if h.is_control() {
                // A transaction's records supersede older ones only once it committed.
                let marker = record::decode_records(batch, MAX_UNCOMPRESSED)?
                    .next()
                    .transpose()?
                    .and_then(|r| r.key.as_deref().and_then(ControlRecord::parse));
                let keys = open_txns.remove(&h.producer_id).unwrap_or_default();
                if marker == Some(ControlRecord::Commit) {
                    for (k, offset) in keys {
                        map.put(&k, offset);
                    }
                }
                return Ok(true);
            }
            for r in record::decode_records(batch, MAX_UNCOMPRESSED)? {
                let r = r?;
                if let Some(k) = &r.key {
                    if h.is_transactional() {
                        open_txns
                            .entry(h.producer_id)
                            .or_default()
                            .push((k.to_vec(), r.offset));
                    } else {
                        map.put(k, r.offset);
                    }
                }
            }
            // Entries past the map end only make older records look superseded by records
            // that do exist later in the log, which is still right.
            Ok(first || map.bytes <= opts.dedupe_buffer_size)
        })?;
        if !complete {
            break;
        }
        map_end = i + 1;
        if map.bytes > opts.dedupe_buffer_size {
            if first {
                tracing::warn!(tp = %p.topic_partition(), buffer = opts.dedupe_buffer_size, used = map.bytes, "one segment's keys exceed log.cleaner.dedupe.buffer.size");
            }
            break;
        }
    }
    Ok(Some((map, map_end)))
}

/// Step 2: rewrites the segments below `map_end` in groups, each fitting in one segment.
/// Returns whether every group was cleaned (false if `stop` asked to stop or the segments
/// changed under the pass) and what was done.
fn clean_groups(
    p: &Partition,
    config: &TopicConfig,
    segs: &[Arc<Segment>],
    map_end: usize,
    map: &OffsetMap,
    now: i64,
    stop: &dyn Fn() -> bool,
) -> Result<(bool, CleanerStats)> {
    let mut stats = CleanerStats {
        partitions_cleaned: 1,
        ..CleanerStats::default()
    };
    let mut i = 0;
    while i < map_end {
        if stop() {
            return Ok((false, stats));
        }
        let mut j = i + 1;
        let mut size = segs[i].size();
        while j < map_end
            && size + segs[j].size() <= config.segment_bytes
            && upper_bound(segs, j) - segs[i].base_offset() < i64::from(u32::MAX)
        {
            size += segs[j].size();
            j += 1;
        }
        let cleaned = clean_group(p, config, &segs[i..j], map, now, &mut stats)?;
        if !cleaned {
            tracing::debug!(tp = %p.topic_partition(), "segments changed during cleaning; trying again next pass");
            return Ok((false, stats));
        }
        i = j;
    }
    Ok((true, stats))
}

/// Rewrites one group of segments into one. Returns false if the partition's segments changed
/// meanwhile (then nothing changed on disk).
fn clean_group(
    p: &Partition,
    config: &TopicConfig,
    group: &[Arc<Segment>],
    map: &OffsetMap,
    now: i64,
    stats: &mut CleanerStats,
) -> Result<bool> {
    let Some(first) = group.first() else {
        return Ok(true);
    };
    let files = &*p.ctx().files;
    let base = first.base_offset();
    let tombstone_horizon = now.saturating_sub(config.delete_retention_ms);
    let new = Segment::create_cleaned(p.dir(), base, now, files)?;
    let mut group_stats = CleanerStats::default();
    let written = (|| {
        for seg in group {
            let expired = seg.max_timestamp() < tombstone_horizon;
            group_stats.bytes_read += seg.size();
            let complete = for_each_batch(seg, files, |h, batch| {
                if let Some(out) = filter_batch(h, batch, map, expired, &mut group_stats)? {
                    let nh = record::validate(&out)?;
                    new.append(files, &out, &nh, config.index_interval_bytes)?;
                }
                Ok(true)
            })?;
            if !complete {
                return Err(Error::CorruptRecord(format!(
                    "segment {} ended early while cleaning",
                    seg.log_path().display()
                )));
            }
        }
        new.persist_index()?;
        new.sync(files)
    })();
    if let Err(e) = written {
        new.delete_files(files);
        return Err(e);
    }
    let tp = p.topic_partition();
    if new.is_empty() {
        // Every record went: the group leaves no segment. Deleting the old files in ascending
        // order means a crash leaves a suffix of them, which is safe (see loader).
        new.delete_files(files);
        if !p.replace_segments(group, Vec::new()) {
            return Ok(false);
        }
    } else {
        let swapped = new
            .rename_suffix(SWAP_SUFFIX)
            .and_then(|()| checkpoint::sync_dir(p.dir()));
        if let Err(e) = swapped {
            new.delete_files(files);
            return Err(e);
        }
        if !p.replace_segments(group, vec![Arc::clone(&new)]) {
            new.delete_files(files);
            return Ok(false);
        }
    }
    // From here the new segment serves reads; a crash is finished by the loader.
    for old in group.iter().skip(1).chain(group.first()) {
        old.delete_files(files);
    }
    if !new.is_empty() {
        new.rename_suffix("")
            .and_then(|()| checkpoint::sync_dir(p.dir()))
            .map_err(|e| p.ctx().fail_write(e))?;
        group_stats.segments_written = 1;
        group_stats.bytes_written = new.size();
    }
    group_stats.segments_replaced = group.len();
    tracing::info!(
        tp = %tp,
        base_offset = base,
        segments = group.len(),
        bytes_before = group_stats.bytes_read,
        bytes_after = group_stats.bytes_written,
        records_superseded = group_stats.records_superseded,
        tombstones_removed = group_stats.tombstones_removed,
        "segments cleaned"
    );
    stats.add(&group_stats);
    Ok(true)
}

/// The batch to write for `batch`: itself when every record stays, a re-encoded batch of the
/// survivors, or `None` when none does.
fn filter_batch(
    h: &BatchHeader,
    batch: &Bytes,
    map: &OffsetMap,
    tombstones_expired: bool,
    stats: &mut CleanerStats,
) -> Result<Option<Vec<u8>>> {
    if h.is_control() {
        record::validate(batch)?;
        return Ok(Some(batch.to_vec()));
    }
    let mut kept: Vec<Record> = Vec::new();
    let mut dropped = false;
    for r in record::decode_records(batch, MAX_UNCOMPRESSED)? {
        let r = r?;
        stats.records_read += 1;
        let Some(key) = &r.key else {
            kept.push(r);
            continue;
        };
        if map.latest(key).is_some_and(|latest| latest > r.offset) {
            stats.records_superseded += 1;
            dropped = true;
        } else if r.value.is_none() && tombstones_expired {
            stats.tombstones_removed += 1;
            dropped = true;
        } else {
            kept.push(r);
        }
    }
    if !dropped {
        return Ok(Some(batch.to_vec()));
    }
    let Some(first) = kept.first().map(|r| r.offset) else {
        return Ok(None);
    };
    let mut b = BatchBuilder::with_capacity(h.compression()?, batch.len()).producer(
        h.producer_id,
        h.producer_epoch,
        h.base_sequence,
    );
    if h.is_transactional() {
        b = b.transactional();
    }
    for r in &kept {
        let delta = i32::try_from(r.offset - first).ok();
        let appended = delta.is_some_and(|d| {
            b.append_with_offset_delta(
                d,
                r.timestamp,
                r.key.as_deref(),
                r.value.as_deref(),
                &r.headers,
            )
        });
        if !appended {
            return Err(Error::CorruptRecord(format!(
                "record offsets of the batch at offset {} do not increase",
                h.base_offset
            )));
        }
    }
    let mut out = b.build();
    record::set_base_offset(&mut out, first);
    record::set_partition_leader_epoch(&mut out, h.partition_leader_epoch);
    if h.timestamp_type() == TimestampType::LogAppendTime {
        record::set_log_append_time(&mut out, h.max_timestamp);
    }
    Ok(Some(out))
}

/// Calls `f` on every batch of `seg` in order, reading a chunk at a time. `f` returns whether
/// to go on; returns false if it stopped early.
fn for_each_batch(
    seg: &Segment,
    files: &FileCache,
    mut f: impl FnMut(&BatchHeader, &Bytes) -> Result<bool>,
) -> Result<bool> {
    let size = seg.size();
    let mut pos = 0u64;
    while pos < size {
        let want = READ_CHUNK.min(size - pos);
        let chunk = Bytes::from(seg.read(files, pos, want as usize)?);
        let mut batches = BatchIter::new(&chunk);
        for (h, range) in batches.by_ref() {
            if !f(&h, &chunk.slice(range))? {
                return Ok(false);
            }
        }
        let consumed = batches.position() as u64;
        if consumed > 0 {
            pos += consumed;
            continue;
        }
        // One batch larger than the chunk, or a bad header.
        let h = BatchHeader::parse(&chunk).map_err(|e| {
            Error::CorruptRecord(format!("{} at byte {pos}: {e}", seg.log_path().display()))
        })?;
        let len = h.total_len() as u64;
        if pos + len > size {
            return Err(Error::CorruptRecord(format!(
                "{} at byte {pos}: batch of {len} bytes runs past the segment end",
                seg.log_path().display()
            )));
        }
        let whole = Bytes::from(seg.read(files, pos, len as usize)?);
        if !f(&h, &whole)? {
            return Ok(false);
        }
        pos += len;
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Compression;
    use crate::record::{Header, decode_records};

    fn keyed(records: &[(i32, &str, Option<&str>)], codec: Compression) -> Bytes {
        let mut b = BatchBuilder::new(codec).producer(7, 3, 100).transactional();
        for &(delta, k, v) in records {
            assert!(b.append_with_offset_delta(
                delta,
                1_000 + i64::from(delta),
                Some(k.as_bytes()),
                v.map(str::as_bytes),
                &[Header::new("h", format!("{delta}"))],
            ));
        }
        let mut out = b.build();
        record::set_base_offset(&mut out, 10);
        Bytes::from(out)
    }

    #[test]
    fn survivors_keep_offsets_timestamps_headers_and_producer_state() {
        for codec in [Compression::None, Compression::Zstd, Compression::Gzip] {
            let batch = keyed(
                &[
                    (0, "a", Some("1")),
                    (1, "b", Some("2")),
                    (2, "a", None),
                    (3, "c", Some("3")),
                ],
                codec,
            );
            let h = record::validate(&batch).unwrap();
            let mut map = OffsetMap {
                map: HashMap::new(),
                bytes: 0,
            };
            map.put(b"a", 12);
            map.put(b"b", 99);
            let mut stats = CleanerStats::default();
            let out = filter_batch(&h, &batch, &map, false, &mut stats)
                .unwrap()
                .unwrap();
            let nh = record::validate(&out).unwrap();
            assert_eq!(nh.base_offset, 12);
            assert_eq!(nh.last_offset(), 13);
            assert_eq!(nh.record_count, 2);
            assert_eq!(nh.compression().unwrap(), codec);
            assert_eq!(
                (nh.producer_id, nh.producer_epoch, nh.base_sequence),
                (7, 3, 100)
            );
            assert!(nh.is_transactional());
            let rs: Vec<_> = decode_records(&Bytes::from(out), 1 << 20)
                .unwrap()
                .map(Result::unwrap)
                .collect();
            assert_eq!(rs[0].offset, 12);
            assert_eq!(rs[0].value, None);
            assert_eq!(rs[0].timestamp, 1_002);
            assert_eq!(rs[1].offset, 13);
            assert_eq!(rs[1].headers, [Header::new("h", "3")]);
            assert_eq!(stats.records_superseded, 2);

            // Expired: the tombstone goes too.
            let out = filter_batch(&h, &batch, &map, true, &mut stats)
                .unwrap()
                .unwrap();
            let nh = record::validate(&out).unwrap();
            assert_eq!((nh.base_offset, nh.record_count), (13, 1));
        }
    }

    #[test]
    fn untouched_batches_are_copied_byte_for_byte_and_empty_ones_dropped() {
        let batch = keyed(
            &[(0, "a", Some("1")), (1, "b", Some("2"))],
            Compression::None,
        );
        let h = record::validate(&batch).unwrap();
        let mut map = OffsetMap {
            map: HashMap::new(),
            bytes: 0,
        };
        let mut stats = CleanerStats::default();
        let out = filter_batch(&h, &batch, &map, true, &mut stats).unwrap();
        assert_eq!(out.as_deref(), Some(&batch[..]));
        map.put(b"a", 50);
        map.put(b"b", 50);
        assert_eq!(
            filter_batch(&h, &batch, &map, true, &mut stats).unwrap(),
            None
        );
    }

    #[test]
    fn builder_offset_deltas_set_last_offset_delta() {
        let mut b = BatchBuilder::new(Compression::None);
        assert!(b.append_with_offset_delta(3, 5, None, Some(b"x"), &[]));
        assert!(!b.append_with_offset_delta(3, 5, None, Some(b"y"), &[]));
        assert!(!b.append_with_offset_delta(-1, 5, None, Some(b"y"), &[]));
        assert_eq!(b.append(6, None, Some(b"z"), &[]), 4);
        let h = record::validate(&b.build()).unwrap();
        assert_eq!((h.last_offset_delta, h.record_count), (4, 2));
    }
}
