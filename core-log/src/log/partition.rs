//! One partition: an ordered list of segments with a single writer, lock-light readers, and
//! the offsets Kafka tracks (log start, log end = high watermark on one node, recovery point).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};

use super::LogContext;
use super::producer_state::{ProducerStateInfo, ProducerStateManager, Verdict};
use super::readahead::{self, Extent, READAHEAD_BYTES, READAHEAD_STEP};
use super::segment::Segment;
use super::txn_index::{self, AbortedTransaction, AbortedTxn};
use super::validator::{self, MAX_UNCOMPRESSED_BATCH};
use crate::config::{TopicCompression, TopicConfig};
use crate::record::{self, BatchHeader, ControlRecord};
use crate::{Error, Result, TimestampType, TopicPartition};

/// Who appends a batch (Kafka's `AppendOrigin`): what [`Partition::append_from`] checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendOrigin {
    /// A producer: the broker's Produce, the embedded producer.
    Client,
    /// A coordinator writing its own records (`__consumer_offsets`, `__transaction_state`).
    Coordinator,
}

/// What an append assigned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendInfo {
    /// Offset of the first record.
    pub base_offset: i64,
    /// Offset of the last record.
    pub last_offset: i64,
    /// The log's timestamp for `LogAppendTime` topics, else -1.
    pub log_append_time: i64,
    /// Log start offset after the append.
    pub log_start_offset: i64,
    /// The batch was a retry of one an idempotent producer already appended (same producer id,
    /// epoch and sequences): nothing was appended, and the offsets are the original batch's.
    pub duplicate: bool,
}

/// Whole record batches read from a partition, as stored.
#[derive(Debug, Clone)]
pub struct FetchedData {
    /// Complete batches, byte for byte as on disk (may start before the offset asked for, as
    /// Kafka's fetches do: the batch holding it comes whole).
    pub records: Bytes,
    /// Offset after the last record (one node: the high watermark is the log end).
    pub high_watermark: i64,
    /// First offset held.
    pub log_start_offset: i64,
    /// The last stable offset: no transaction is open below it. A read_committed fetch
    /// returns nothing at or past it.
    pub last_stable_offset: i64,
    /// For a read_committed fetch: the transactions aborted within the records returned
    /// (a consumer drops their producers' transactional records up to each abort marker).
    /// Empty for a read_uncommitted fetch.
    pub aborted_transactions: Vec<AbortedTransaction>,
}

/// Least cached bytes beyond the page-cache window worth a write-back and a drop.
pub const DROP_STEP: u64 = 8 << 20;

/// State only the writer touches.
#[derive(Debug)]
struct Writer {
    unflushed_messages: i64,
    last_flush_ms: i64,
    /// Idempotent producers' epochs, sequences and last batches.
    producers: ProducerStateManager,
}

/// If the loader found corrupt data, the partition serves nothing and says why.
#[derive(Debug, Clone)]
pub(crate) struct Offline {
    pub(crate) path: PathBuf,
    pub(crate) position: u64,
    pub(crate) reason: String,
}

/// One partition of a topic.
#[derive(Debug)]
pub struct Partition {
    tp: TopicPartition,
    dir: PathBuf,
    ctx: Arc<LogContext>,
    config: RwLock<Arc<TopicConfig>>,
    writer: Mutex<Writer>,
    /// Readers clone this snapshot; the writer replaces it when segments come and go.
    segments: RwLock<Arc<Vec<Arc<Segment>>>>,
    log_end: AtomicI64,
    log_start: AtomicI64,
    /// Everything below this offset is known to be on disk (fsynced).
    recovery_point: AtomicI64,
    offline: RwLock<Option<Offline>>,
    new_data: Arc<tokio::sync::Notify>,
    /// First offset of the oldest open transaction, `i64::MAX` if none. Stored before the log
    /// end when a transaction opens, after it when one closes (readers load the log end first).
    first_unstable: AtomicI64,
    /// Aborted transactions (the `.txnindex` files' entries), by marker offset.
    aborted: RwLock<Vec<AbortedTxn>>,
}

impl Partition {
    /// Assembles a partition from what the loader found; called from one place only.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn from_parts(
        tp: TopicPartition,
        dir: PathBuf,
        ctx: Arc<LogContext>,
        config: Arc<TopicConfig>,
        segments: Vec<Arc<Segment>>,
        log_start: i64,
        recovery_point: i64,
        offline: Option<Offline>,
        producers: ProducerStateManager,
        aborted: Vec<AbortedTxn>,
    ) -> Self {
        let log_end = segments.last().map_or(0, |s| s.next_offset());
        let now = ctx.clock.now_ms();
        let first_unstable = producers.first_unstable_offset().unwrap_or(i64::MAX);
        Self {
            tp,
            dir,
            ctx,
            config: RwLock::new(config),
            writer: Mutex::new(Writer {
                unflushed_messages: 0,
                last_flush_ms: now,
                producers,
            }),
            segments: RwLock::new(Arc::new(segments)),
            log_end: AtomicI64::new(log_end),
            log_start: AtomicI64::new(log_start),
            recovery_point: AtomicI64::new(recovery_point.min(log_end)),
            offline: RwLock::new(offline),
            new_data: Arc::new(tokio::sync::Notify::new()),
            first_unstable: AtomicI64::new(first_unstable),
            aborted: RwLock::new(aborted),
        }
    }

    /// Which partition this is.
    pub fn topic_partition(&self) -> &TopicPartition {
        &self.tp
    }

    /// The partition's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Offset the next record will get; on one node also the high watermark.
    pub fn log_end_offset(&self) -> i64 {
        self.log_end.load(Ordering::Acquire)
    }

    /// The high watermark: what consumers may read up to.
    pub fn high_watermark(&self) -> i64 {
        self.log_end_offset()
    }

    /// The last stable offset: the first offset of the oldest open transaction, else the high
    /// watermark. read_committed readers see nothing at or past it.
    pub fn last_stable_offset(&self) -> i64 {
        // The log end first: see `first_unstable`.
        let hw = self.high_watermark();
        self.first_unstable.load(Ordering::Acquire).min(hw)
    }

    /// The aborted transactions whose abort marker is at or past `from` and whose first offset
    /// is below `to`: what a read_committed fetch of `[from, to)` reports.
    pub fn aborted_transactions(&self, from: i64, to: i64) -> Vec<AbortedTransaction> {
        txn_index::overlapping(&self.aborted.read(), from, to)
    }

    /// The open transactions as (producer id, first offset), oldest first.
    pub fn ongoing_transactions(&self) -> Vec<(i64, i64)> {
        self.writer.lock().producers.ongoing_transactions()
    }

    /// The producers this partition knows (idempotent and transactional), by producer id:
    /// epoch, last sequence and timestamp, open transaction (Kafka's `DescribeProducers`).
    pub fn producer_states(&self) -> Vec<ProducerStateInfo> {
        let now = self.ctx.clock.now_ms();
        self.writer.lock().producers.describe(now)
    }

    /// First offset held.
    pub fn log_start_offset(&self) -> i64 {
        self.log_start.load(Ordering::Acquire)
    }

    /// Everything below is fsynced.
    pub fn recovery_point(&self) -> i64 {
        self.recovery_point.load(Ordering::Acquire)
    }

    /// The topic's config as this partition applies it.
    pub fn config(&self) -> Arc<TopicConfig> {
        Arc::clone(&self.config.read())
    }

    pub(crate) fn last_flush_ms(&self) -> i64 {
        self.writer.lock().last_flush_ms
    }

    pub(crate) fn set_config(&self, config: Arc<TopicConfig>) {
        *self.config.write() = config;
    }

    /// Bytes on disk over all segments.
    pub fn size_bytes(&self) -> u64 {
        self.segments.read().iter().map(|s| s.size()).sum()
    }

    /// Number of segments.
    pub fn segment_count(&self) -> usize {
        self.segments.read().len()
    }

    /// Base offset of the active (last) segment, the one appends go to and the cleaner never
    /// touches.
    pub fn active_segment_base_offset(&self) -> i64 {
        self.segments
            .read()
            .last()
            .map_or_else(|| self.log_end_offset(), |s| s.base_offset())
    }

    /// The segment file holding `offset` (the partition's directory if no segment does), to
    /// say where a record lies.
    pub(crate) fn segment_file_of(&self, offset: i64) -> PathBuf {
        let segments = self.segments();
        let at = segments
            .partition_point(|s| s.base_offset() <= offset)
            .saturating_sub(1);
        segments
            .get(at)
            .map_or_else(|| self.dir.clone(), |s| s.log_path())
    }

    pub(crate) fn segments(&self) -> Arc<Vec<Arc<Segment>>> {
        Arc::clone(&self.segments.read())
    }

    pub(crate) fn ctx(&self) -> &Arc<LogContext> {
        &self.ctx
    }

    pub(crate) fn check_online(&self) -> Result<()> {
        if let Some(o) = self.offline.read().as_ref() {
            return Err(Error::PartitionOffline {
                tp: self.tp.clone(),
                path: o.path.clone(),
                position: o.position,
                reason: o.reason.clone(),
            });
        }
        Ok(())
    }

    /// Appends one record batch (Kafka RecordBatch v2) from a client (a producer, the broker's
    /// Produce): validates it, assigns its offsets and writes it. Durability is the caller's to
    /// wait for ([`Partition::wait_durable`]). Internal topics refuse it
    /// ([`Error::InternalTopic`]); see [`Partition::append_from`].
    pub fn append(&self, batch: Vec<u8>) -> Result<AppendInfo> {
        self.append_from(batch, AppendOrigin::Client)
    }

    /// Appends one record batch as [`Partition::append`] does, from `origin`: a client's batch
    /// is checked as Kafka checks a producer's (count, offsets, sequence, no control batch, no
    /// internal topic); every batch's records are checked for framing, keys (compacted topics)
    /// and timestamps before anything is written (see [`MAX_UNCOMPRESSED_BATCH`]).
    pub fn append_from(&self, mut batch: Vec<u8>, origin: AppendOrigin) -> Result<AppendInfo> {
        if origin == AppendOrigin::Client && crate::names::is_internal(&self.tp.topic) {
            return Err(Error::InternalTopic(self.tp.topic.to_string()));
        }
        self.check_online()?;
        let config = self.config();
        let h = record::validate(&batch).map_err(|e| match e {
            Error::CorruptRecord(what) => Error::CorruptRecord(format!("{}: {what}", self.tp)),
            other => other,
        })?;
        if h.is_control() {
            return Err(Error::InvalidRecord {
                tp: self.tp.clone(),
                reason: "control batches are written by the transaction coordinator, not producers"
                    .into(),
            });
        }
        if h.is_transactional() && h.producer_id < 0 {
            return Err(Error::CorruptRecord(format!(
                "{}: a transactional batch needs a producer id",
                self.tp
            )));
        }
        if batch.len() > config.max_message_bytes {
            return Err(Error::MessageTooLarge {
                topic: self.tp.topic.to_string(),
                size: batch.len(),
                max: config.max_message_bytes,
            });
        }
        let now = self.ctx.clock.now_ms();
        let h = validator::validate_batch(&self.tp, &config, &mut batch, h, now, origin)?;
        let h = match config.compression {
            TopicCompression::Codec(codec) if h.compression()? != codec => {
                batch = recompress(&batch, codec)?;
                record::validate(&batch)?
            }
            _ => h,
        };
        let mut w = self.writer.lock();
        self.ctx.check_writable()?;
        if h.producer_id >= 0
            && let Verdict::Duplicate(dup) = w.producers.check(&h, now)?
        {
            tracing::debug!(tp = %self.tp, producer_id = h.producer_id, sequence = h.base_sequence, offset = dup.first_offset, "duplicate batch of an idempotent producer; not appended");
            return Ok(AppendInfo {
                base_offset: dup.first_offset,
                last_offset: dup.last_offset,
                log_append_time: match config.message_timestamp_type {
                    TimestampType::LogAppendTime => dup.max_timestamp,
                    TimestampType::CreateTime => -1,
                },
                log_start_offset: self.log_start_offset(),
                duplicate: true,
            });
        }
        let base = self.log_end.load(Ordering::Relaxed);
        let log_append_time = stamp(&mut batch, base, &config, now);
        let h = BatchHeader {
            base_offset: base,
            max_timestamp: if log_append_time >= 0 {
                now
            } else {
                h.max_timestamp
            },
            ..h
        };
        let active = self.active_for(&mut w, &config, batch.len(), now)?;
        if let Err(e) = active.append(&self.ctx.files, &batch, &h, config.index_interval_bytes) {
            return Err(self.ctx.fail_write(e));
        }
        if h.producer_id >= 0 {
            w.producers.update(&h, now);
            // Before the log end moves: readers must never see the batch as stable.
            self.publish_first_unstable(&w);
        }
        self.log_end.store(h.next_offset(), Ordering::Release);
        self.after_append(w, &config, &h, now)?;
        Ok(AppendInfo {
            base_offset: base,
            last_offset: h.last_offset(),
            log_append_time,
            log_start_offset: self.log_start_offset(),
            duplicate: false,
        })
    }

    fn publish_first_unstable(&self, w: &Writer) {
        let first = w.producers.first_unstable_offset().unwrap_or(i64::MAX);
        self.first_unstable.store(first, Ordering::Release);
    }

    /// Counts the batch towards `flush.messages`, wakes readers, and flushes if due.
    fn after_append(
        &self,
        mut w: parking_lot::MutexGuard<'_, Writer>,
        config: &TopicConfig,
        h: &BatchHeader,
        now: i64,
    ) -> Result<()> {
        w.unflushed_messages += i64::from(h.record_count);
        let flush_due = w.unflushed_messages >= config.flush_messages
            || (config.flush_ms < i64::MAX && now - w.last_flush_ms >= config.flush_ms);
        drop(w);
        self.new_data.notify_waiters();
        self.ctx.data_arrived.notify_waiters();
        if flush_due {
            self.flush()?;
        }
        Ok(())
    }

    /// Appends a transaction marker for `producer_id` (a control batch of one control record:
    /// key = the marker's key, value = version i16 0 and `coordinator_epoch` i32), closing the
    /// producer's open transaction; an abort is recorded in the `.txnindex` of the segment the
    /// marker lands in. A marker of an epoch older than the producer's is refused
    /// ([`Error::InvalidProducerEpoch`]); a newer one fences the older epoch. Durability is the
    /// caller's to wait for, as with [`Partition::append`].
    pub fn append_marker(
        &self,
        producer_id: i64,
        producer_epoch: i16,
        marker: ControlRecord,
        coordinator_epoch: i32,
    ) -> Result<AppendInfo> {
        self.check_online()?;
        if producer_id < 0 || producer_epoch < 0 {
            return Err(Error::InvalidRequest(format!(
                "a transaction marker needs a producer id and epoch, got {producer_id} and {producer_epoch}"
            )));
        }
        let config = self.config();
        let now = self.ctx.clock.now_ms();
        let mut value = [0u8; 6];
        value[2..].copy_from_slice(&coordinator_epoch.to_be_bytes());
        let mut b = record::BatchBuilder::new(crate::Compression::None)
            .producer(producer_id, producer_epoch, record::NO_SEQUENCE)
            .transactional()
            .control();
        b.append(now, Some(&marker.key()), Some(&value), &[]);
        let mut batch = b.build();
        let mut w = self.writer.lock();
        self.ctx.check_writable()?;
        w.producers.check_marker(producer_id, producer_epoch)?;
        let base = self.log_end.load(Ordering::Relaxed);
        let log_append_time = stamp(&mut batch, base, &config, now);
        let h = record::validate(&batch)?;
        let active = self.active_for(&mut w, &config, batch.len(), now)?;
        if let Err(e) = active.append(&self.ctx.files, &batch, &h, config.index_interval_bytes) {
            return Err(self.ctx.fail_write(e));
        }
        let first =
            w.producers
                .apply_marker(producer_id, producer_epoch, base, coordinator_epoch, now);
        if let (ControlRecord::Abort, Some(first_offset)) = (marker, first) {
            let entry = AbortedTxn {
                producer_id,
                first_offset,
                last_offset: base,
                last_stable_offset: w
                    .producers
                    .first_unstable_offset()
                    .unwrap_or(base + 1)
                    .min(base + 1),
            };
            let path = txn_index::path(&self.dir, active.base_offset());
            if let Err(e) = txn_index::append(&path, &entry) {
                return Err(self.ctx.fail_write(e));
            }
            // Before the log end and the last stable offset move past the marker.
            self.aborted.write().push(entry);
        }
        self.log_end.store(h.next_offset(), Ordering::Release);
        self.publish_first_unstable(&w);
        tracing::debug!(tp = %self.tp, producer_id, producer_epoch, ?marker, offset = base, "transaction marker written");
        self.after_append(w, &config, &h, now)?;
        Ok(AppendInfo {
            base_offset: base,
            last_offset: base,
            log_append_time,
            log_start_offset: self.log_start_offset(),
            duplicate: false,
        })
    }

    /// The segment to append `len` bytes to, rolling a new one when the active one is full or
    /// old. Called with the writer lock held.
    fn active_for(
        &self,
        w: &mut Writer,
        config: &TopicConfig,
        len: usize,
        now: i64,
    ) -> Result<Arc<Segment>> {
        let active = match self.segments.read().last() {
            Some(s) => Arc::clone(s),
            None => return self.roll(w, now),
        };
        let full = !active.is_empty() && active.size() + len as u64 > config.segment_bytes;
        let old = !active.is_empty() && now - active.created_ms() >= config.segment_ms;
        // Relative offsets in the index are u32, positions too.
        let offsets_overflow =
            self.log_end.load(Ordering::Relaxed) - active.base_offset() > i64::from(u32::MAX) - 1;
        if full || old || offsets_overflow {
            return self.roll(w, now);
        }
        Ok(active)
    }

    /// Closes the active segment and starts a new one at the log end, snapshotting the producer
    /// state there. Writer lock held.
    fn roll(&self, w: &mut Writer, now: i64) -> Result<Arc<Segment>> {
        let base = self.log_end.load(Ordering::Relaxed);
        let old = self.segments.read().last().cloned();
        if let Some(old) = &old {
            if old.is_empty() {
                return Ok(Arc::clone(old));
            }
            old.persist_index().map_err(|e| self.ctx.fail_write(e))?;
        }
        let seg = Segment::create(&self.dir, base, now, &self.ctx.files)
            .map_err(|e| self.ctx.fail_write(e))?;
        {
            let mut segs = self.segments.write();
            let mut v = Vec::clone(&segs);
            v.push(Arc::clone(&seg));
            *segs = Arc::new(v);
        }
        tracing::debug!(tp = %self.tp, base_offset = base, "segment rolled");
        if old.is_some() {
            // Kafka snapshots at every roll, so a restart replays only the newest segment. A
            // failed snapshot costs only a longer replay.
            if let Err(e) = w.producers.write_snapshot(base, now) {
                tracing::warn!(tp = %self.tp, error = %crate::report(&e), "producer state snapshot failed");
            }
        }
        // As Kafka does: the rolled segment is flushed in the background, moving the recovery
        // point so a restart after a crash only scans the new segment.
        if old.is_some() {
            self.ctx.flusher.flush_in_background(self.tp.clone());
        }
        Ok(seg)
    }

    /// Forces a roll (used by retention, so an expired active segment can go).
    pub(crate) fn roll_now(&self) -> Result<()> {
        let mut w = self.writer.lock();
        self.roll(&mut w, self.ctx.clock.now_ms()).map(|_| ())
    }

    /// Writes a producer state snapshot at the log end (on clean close), unless the partition
    /// is offline.
    pub(crate) fn write_producer_snapshot(&self) -> Result<()> {
        if self.offline.read().is_some() {
            return Ok(());
        }
        let mut w = self.writer.lock();
        let end = self.log_end.load(Ordering::Acquire);
        w.producers.write_snapshot(end, self.ctx.clock.now_ms())
    }

    /// fsyncs every segment holding data past the recovery point, then moves it. Returns the
    /// new recovery point.
    pub fn flush(&self) -> Result<i64> {
        let end = self.log_end_offset();
        if end <= self.recovery_point() {
            return Ok(self.recovery_point());
        }
        let rp = self.recovery_point();
        for seg in self.segments().iter() {
            if seg.next_offset() > rp || seg.base_offset() >= rp {
                let synced = seg.sync(&self.ctx.files).and_then(|()| seg.persist_index());
                match synced {
                    // Retention or the cleaner deleted it meanwhile: nothing left to sync.
                    Err(_) if seg.is_deleted() => {}
                    Err(e) => return Err(self.ctx.fail_write(e)),
                    Ok(()) => {}
                }
            }
        }
        self.recovery_point.fetch_max(end, Ordering::AcqRel);
        let mut w = self.writer.lock();
        w.unflushed_messages = 0;
        w.last_flush_ms = self.ctx.clock.now_ms();
        Ok(end)
    }

    /// Keeps at most `window` bytes behind the log end in the page cache: once more than
    /// [`DROP_STEP`] beyond the window is cached, writes everything back ([`Self::flush`]: the
    /// recovery point moves too) and drops the older pages. Returns the bytes dropped.
    pub fn drop_cache_behind(&self, window: u64) -> Result<u64> {
        if self.offline.read().is_some() {
            return Ok(0);
        }
        let segments = self.segments();
        let mut newer = 0u64;
        let mut plan = Vec::new();
        for seg in segments.iter().rev() {
            let size = seg.size();
            let keep = window.saturating_sub(newer).min(size);
            let upto = size - keep;
            if upto > seg.cache_dropped() {
                plan.push((Arc::clone(seg), upto));
            }
            newer = newer.saturating_add(size);
        }
        let pending: u64 = plan.iter().map(|(s, upto)| upto - s.cache_dropped()).sum();
        if pending < DROP_STEP {
            return Ok(0);
        }
        // Only clean pages can be dropped: write everything back first.
        self.flush()?;
        let mut dropped = 0;
        for (seg, upto) in plan {
            let before = seg.cache_dropped();
            match seg.drop_cache_below(&self.ctx.files, upto) {
                Ok(()) => dropped += upto.saturating_sub(before),
                // Retention or the cleaner deleted it meanwhile.
                Err(_) if seg.is_deleted() => {}
                Err(e) => return Err(e),
            }
        }
        Ok(dropped)
    }

    /// Waits until everything below `offset` is fsynced, grouping with every other waiter
    /// (group commit): one fsync completes all the appends waiting for it.
    pub async fn wait_durable(&self, offset: i64) -> Result<()> {
        if offset <= self.recovery_point() {
            return Ok(());
        }
        self.ctx.flusher.wait(self.tp.clone(), offset).await
    }

    /// Calls `done` from the flusher thread once everything below `offset` is fsynced.
    pub fn on_durable(&self, offset: i64, done: Box<dyn FnOnce(Result<()>) + Send>) {
        if offset <= self.recovery_point() {
            done(Ok(()));
        } else {
            self.ctx.flusher.on_durable(self.tp.clone(), offset, done);
        }
    }

    /// Reads whole batches from `offset` (the batch holding it first), at most `max_bytes`
    /// unless the first batch alone is larger (then it comes whole, so consumers progress).
    pub fn read(&self, offset: i64, max_bytes: usize) -> Result<FetchedData> {
        self.check_online()?;
        self.with_fresh_snapshot(|segments| self.read_from(segments, offset, max_bytes, false))
    }

    /// As [`Partition::read`], for a read_committed reader: returns nothing at or past the last
    /// stable offset, and lists the aborted transactions overlapping the batches returned.
    pub fn read_committed(&self, offset: i64, max_bytes: usize) -> Result<FetchedData> {
        self.check_online()?;
        self.with_fresh_snapshot(|segments| self.read_from(segments, offset, max_bytes, true))
    }

    /// Finds the corrupt batch a reader met in what [`Partition::read`] returned from `offset`
    /// (`len` bytes): walks those batches in the segment again, checking each as
    /// `sluice log verify` does (header, CRC, every record, decompressed into at most
    /// `max_uncompressed` bytes as the reader did), and takes the partition offline at
    /// the first bad one, as recovery does for a corrupt batch. The error names the partition,
    /// the segment file and the batch's byte position; `None` if the batches are sound now
    /// (the segment was replaced meanwhile) or cannot be read.
    pub fn locate_corruption(
        &self,
        offset: i64,
        len: usize,
        max_uncompressed: usize,
    ) -> Option<Error> {
        let segments = self.segments();
        let start = segments
            .partition_point(|s| s.base_offset() <= offset)
            .saturating_sub(1);
        for seg in segments.get(start..).unwrap_or_default() {
            let limit = seg.size();
            let found = match seg.find_offset(&self.ctx.files, offset, limit) {
                Ok(Some(found)) => found,
                Ok(None) => continue,
                Err(e) => return Some(self.take_offline(seg, None, &e)),
            };
            let file = seg.file(&self.ctx.files).ok()?;
            let end = (found.position + len as u64).min(limit);
            let mut pos = found.position;
            while pos < end {
                let header = match seg.header_at(&file, pos, limit) {
                    Ok(Some(h)) => h,
                    Ok(None) => break,
                    Err(e) => return Some(self.take_offline(seg, Some(pos), &e)),
                };
                let checked =
                    seg.read(&self.ctx.files, pos, header.total_len())
                        .and_then(|batch| {
                            record::decode_records(&Bytes::from(batch), max_uncompressed)?
                                .try_for_each(|r| r.map(drop))
                        });
                if let Err(e) = checked {
                    return Some(self.take_offline(seg, Some(pos), &e));
                }
                pos += header.total_len() as u64;
            }
            return None;
        }
        None
    }

    /// Takes the partition offline for corrupt data in `seg` at `position` (the segment's
    /// start if unknown); returns the error readers now get.
    fn take_offline(&self, seg: &Segment, position: Option<u64>, cause: &Error) -> Error {
        let reason = match cause {
            Error::CorruptRecord(what) => what.clone(),
            other => other.to_string(),
        };
        // info: the reader gets the error itself; the broker logs at info.
        tracing::info!(tp = %self.tp, path = %seg.log_path().display(), position, %reason, "corrupt batch found by a read: partition offline");
        let mut offline = self.offline.write();
        offline.get_or_insert_with(|| Offline {
            path: seg.log_path(),
            position: position.unwrap_or(0),
            reason,
        });
        drop(offline);
        self.check_online()
            .err()
            .unwrap_or_else(|| Error::CorruptRecord(format!("{} is offline", self.tp)))
    }

    /// Runs `f` on the current segments; if it fails while one of them has been deleted meanwhile
    /// (the cleaner replaced it, or retention dropped it), runs it again on the new segments. A
    /// retry fails the same way only if the segments changed again under it, so a few suffice.
    fn with_fresh_snapshot<T>(&self, f: impl Fn(&[Arc<Segment>]) -> Result<T>) -> Result<T> {
        const RETRIES: usize = 3;
        let mut segments = self.segments();
        for _ in 0..RETRIES {
            match f(&segments) {
                Err(e @ (Error::Io { .. } | Error::CorruptRecord(_)))
                    if segments.iter().any(|s| s.is_deleted()) =>
                {
                    let fresh = self.segments();
                    if Arc::ptr_eq(&fresh, &segments) {
                        return Err(e);
                    }
                    tracing::debug!(tp = %self.tp, error = %e, "segments changed under a read; retrying");
                    segments = fresh;
                }
                r => return r,
            }
        }
        f(&segments)
    }

    fn read_from(
        &self,
        segments: &[Arc<Segment>],
        offset: i64,
        max_bytes: usize,
        committed: bool,
    ) -> Result<FetchedData> {
        let last_stable_offset = self.last_stable_offset();
        let high_watermark = self.log_end_offset().max(last_stable_offset);
        let log_start = self.log_start_offset();
        let upper = if committed {
            last_stable_offset
        } else {
            high_watermark
        };
        let empty = |hw| FetchedData {
            records: Bytes::new(),
            high_watermark: hw,
            log_start_offset: log_start,
            last_stable_offset,
            aborted_transactions: Vec::new(),
        };
        if offset < log_start || offset > high_watermark {
            return Err(Error::OffsetOutOfRange {
                tp: self.tp.clone(),
                offset,
                log_start,
                log_end: high_watermark,
            });
        }
        if offset >= upper {
            return Ok(empty(high_watermark));
        }
        let start = segments
            .partition_point(|s| s.base_offset() <= offset)
            .saturating_sub(1);
        for (i, seg) in segments.iter().enumerate().skip(start) {
            let limit = seg.size();
            let Some(found) = seg.find_offset(&self.ctx.files, offset, limit)? else {
                continue;
            };
            if found.header.base_offset >= upper {
                break;
            }
            // One read up to max_bytes (the first batch whole however large), cut back to the
            // whole batches below `upper` it holds.
            let first_len = found.header.total_len();
            let want = (found.position + max_bytes as u64)
                .min(limit)
                .max(found.position + first_len as u64);
            let mut bytes = seg.read(
                &self.ctx.files,
                found.position,
                (want - found.position) as usize,
            )?;
            let (len, next) = whole_batches(&bytes, first_len, found.header.next_offset(), upper)
                .map_err(|(at, e)| {
                let pos = found.position + at as u64;
                Error::CorruptRecord(format!("{} at byte {pos}: {e}", seg.log_path().display()))
            })?;
            bytes.truncate(len);
            self.read_ahead(&segments[i..], found.position + len as u64);
            return Ok(FetchedData {
                records: Bytes::from(bytes),
                high_watermark,
                log_start_offset: log_start,
                last_stable_offset,
                aborted_transactions: if committed {
                    self.aborted_transactions(offset, next)
                } else {
                    Vec::new()
                },
            });
        }
        Ok(empty(high_watermark))
    }

    /// Asks the kernel to read ahead of a reader whose read ended at byte `end` of the first of
    /// `segments`, when it is far behind the end ([`readahead::plan`]). A hint: failures are
    /// only logged (a segment deleted meanwhile has nothing left to read).
    fn read_ahead(&self, segments: &[Arc<Segment>], end: u64) {
        // The segments the plan can reach, READAHEAD_BYTES past `end`, and one more (so the
        // plan knows whether the last one reached has a successor).
        let mut extents: Vec<Extent> = Vec::new();
        let mut after_end = 0u64;
        for (k, s) in segments.iter().enumerate() {
            let reached = after_end >= READAHEAD_BYTES;
            let size = s.size();
            extents.push(Extent {
                size,
                issued: s.read_ahead_issued(),
            });
            if reached {
                break;
            }
            let skip = if k == 0 { end.min(size) } else { 0 };
            after_end = after_end.saturating_add(size - skip);
        }
        for a in readahead::plan(end, &extents, READAHEAD_BYTES, READAHEAD_STEP) {
            let seg = &segments[a.segment];
            if let Err(e) = seg.read_ahead(&self.ctx.files, a.from, a.to)
                && !seg.is_deleted()
            {
                tracing::debug!(tp = %self.tp, error = %crate::report(&e), "readahead failed");
            }
        }
    }

    /// Waits until the log end passes `offset` or `timeout` passes; returns whether it did.
    pub async fn wait_for_data(&self, offset: i64, timeout: Duration) -> bool {
        let wait = async {
            loop {
                let notified = self.new_data.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if self.log_end_offset() > offset {
                    return;
                }
                notified.await;
            }
        };
        tokio::time::timeout(timeout, wait).await.is_ok() || self.log_end_offset() > offset
    }

    /// A wake-up at this partition's next append (or its deletion), registered now: make
    /// it, then read, then await it.
    pub fn next_append(&self) -> super::AppendSignal {
        super::AppendSignal::new([&self.new_data])
    }

    pub(crate) fn new_data(&self) -> &Arc<tokio::sync::Notify> {
        &self.new_data
    }

    /// Wakes every long-polling reader (used on shutdown and deletion).
    pub(crate) fn wake_readers(&self) {
        self.new_data.notify_waiters();
    }

    /// The first offset whose batch has a timestamp >= `ts` (Kafka's ListOffsets by time), or
    /// `None` if every record is older.
    pub fn offset_for_timestamp(&self, ts: i64) -> Result<Option<(i64, i64)>> {
        self.check_online()?;
        self.with_fresh_snapshot(|segments| self.offset_for_timestamp_in(segments, ts))
    }

    fn offset_for_timestamp_in(
        &self,
        segments: &[Arc<Segment>],
        ts: i64,
    ) -> Result<Option<(i64, i64)>> {
        let log_start = self.log_start_offset();
        for seg in segments {
            let limit = seg.size();
            if let Some(found) = seg.find_timestamp(&self.ctx.files, ts, limit)? {
                // The batch's max timestamp qualifies; find the first record in it that does.
                let bytes = Bytes::from(seg.read(
                    &self.ctx.files,
                    found.position,
                    found.header.total_len(),
                )?);
                for r in record::decode_records(&bytes, 64 << 20)? {
                    let r = r?;
                    if r.timestamp >= ts && r.offset >= log_start {
                        return Ok(Some((r.offset, r.timestamp)));
                    }
                }
            }
        }
        Ok(None)
    }

    /// The largest timestamp held and its offset (Kafka's `MAX_TIMESTAMP` spec).
    pub fn max_timestamp(&self) -> (i64, i64) {
        let segs = self.segments();
        let mut best = (-1, -1);
        for s in segs.iter() {
            let _ = s.ensure_index(&self.ctx.files);
            if s.max_timestamp() > best.0 {
                best = (s.max_timestamp(), s.base_offset());
            }
        }
        best
    }

    /// Moves the log start offset to `offset` (Kafka's DeleteRecords) and drops the segments
    /// wholly below it. Returns the new log start offset.
    pub fn delete_records(&self, offset: i64) -> Result<i64> {
        self.check_online()?;
        let mut w = self.writer.lock();
        let end = self.log_end_offset();
        let offset = if offset == -1 { end } else { offset };
        if offset < 0 || offset > end {
            return Err(Error::OffsetOutOfRange {
                tp: self.tp.clone(),
                offset,
                log_start: self.log_start_offset(),
                log_end: end,
            });
        }
        self.log_start.fetch_max(offset, Ordering::AcqRel);
        w.producers.evict_below(self.log_start_offset());
        self.drop_segments_below_start();
        self.forget_aborted_below_start();
        Ok(self.log_start_offset())
    }

    /// Forgets aborted transactions whose marker is below the log start (their `.txnindex`
    /// files go with their segments).
    fn forget_aborted_below_start(&self) {
        let start = self.log_start_offset();
        self.aborted.write().retain(|e| e.last_offset >= start);
    }

    /// Deletes segments whose records are all below the log start (never the active one).
    /// Writer lock held.
    fn drop_segments_below_start(&self) {
        let start = self.log_start_offset();
        let mut gone = Vec::new();
        {
            let mut segs = self.segments.write();
            let keep_from = segs
                .iter()
                .take(segs.len().saturating_sub(1))
                .take_while(|s| s.next_offset() <= start)
                .count();
            if keep_from > 0 {
                let mut v = Vec::clone(&segs);
                gone = v.drain(..keep_from).collect();
                *segs = Arc::new(v);
            }
        }
        for s in gone {
            tracing::info!(tp = %self.tp, base_offset = s.base_offset(), "deleting segment below log start");
            s.delete_files(&self.ctx.files);
        }
    }

    /// Applies `retention.ms` and `retention.bytes` (for `cleanup.policy` with delete).
    /// Returns the number of segments deleted.
    pub fn apply_retention(&self) -> Result<usize> {
        let config = self.config();
        if !config.cleanup_policy.delete || self.offline.read().is_some() {
            return Ok(0);
        }
        let now = self.ctx.clock.now_ms();
        let before = self.segment_count();
        let segs = self.segments();
        let mut new_start = self.log_start_offset();
        let mut total: u64 = segs.iter().map(|s| s.size()).sum();
        for (i, s) in segs.iter().enumerate() {
            if s.is_empty() {
                break;
            }
            let _ = s.ensure_index(&self.ctx.files);
            let by_time = config.retention_ms >= 0 && now - s.max_timestamp() > config.retention_ms;
            let by_size = config.retention_bytes >= 0
                && total.saturating_sub(s.size()) >= config.retention_bytes as u64;
            if !(by_time || by_size) {
                break;
            }
            if i == segs.len() - 1 {
                if !by_time {
                    break;
                }
                // The active segment itself expired: roll so it can go, as Kafka does.
                self.roll_now()?;
            }
            total -= s.size();
            new_start = new_start.max(s.next_offset());
        }
        if new_start > self.log_start_offset() {
            let mut w = self.writer.lock();
            self.log_start.fetch_max(new_start, Ordering::AcqRel);
            w.producers.evict_below(self.log_start_offset());
            self.drop_segments_below_start();
            self.forget_aborted_below_start();
        }
        Ok(before.saturating_sub(self.segment_count()))
    }

    /// Replaces segments after compaction: `old` (contiguous, not the active one) by `new`.
    pub(crate) fn replace_segments(&self, old: &[Arc<Segment>], new: Vec<Arc<Segment>>) -> bool {
        let _w = self.writer.lock();
        let mut segs = self.segments.write();
        let Some(first) = old.first() else {
            return false;
        };
        let Some(at) = segs.iter().position(|s| Arc::ptr_eq(s, first)) else {
            return false;
        };
        if segs.len() < at + old.len()
            || !old.iter().zip(&segs[at..]).all(|(a, b)| Arc::ptr_eq(a, b))
        {
            return false;
        }
        let mut v = Vec::with_capacity(segs.len());
        v.extend(segs[..at].iter().cloned());
        v.extend(new);
        v.extend(segs[at + old.len()..].iter().cloned());
        *segs = Arc::new(v);
        true
    }

    /// Closes file handles (before the directory goes away).
    pub(crate) fn close(&self) {
        for s in self.segments().iter() {
            let _ = s.persist_index();
            s.close_file(&self.ctx.files);
        }
        self.wake_readers();
    }
}

/// The length of the whole batches at the front of `buf` (a read from a segment) whose base
/// offset is below `upper`, given that the first batch (`first_len` bytes, ending before
/// `next`) is whole and taken, and the offset after the last of them. A batch cut off by the
/// end of `buf` ends the walk; a malformed header is an error, with its position in `buf`.
fn whole_batches(
    buf: &[u8],
    first_len: usize,
    next: i64,
    upper: i64,
) -> std::result::Result<(usize, i64), (usize, Error)> {
    let (mut end, mut next) = (first_len, next);
    while let Some(rest) = buf.get(end..).filter(|r| r.len() >= record::HEADER_LEN) {
        let h = BatchHeader::parse(rest).map_err(|e| (end, e))?;
        if h.total_len() > rest.len() || h.base_offset >= upper {
            break;
        }
        end += h.total_len();
        next = h.next_offset();
    }
    Ok((end, next))
}

/// Stamps a batch about to be written: its base offset, the leader epoch, and for
/// `LogAppendTime` topics the log's time (rewriting the CRC). Returns that time, or -1.
fn stamp(batch: &mut [u8], base_offset: i64, config: &TopicConfig, now: i64) -> i64 {
    record::set_base_offset(batch, base_offset);
    record::set_partition_leader_epoch(batch, 0);
    match config.message_timestamp_type {
        TimestampType::LogAppendTime => {
            record::set_log_append_time(batch, now);
            now
        }
        TimestampType::CreateTime => -1,
    }
}

/// Re-encodes a batch with the topic's `compression.type`, keeping producer id, epoch, sequence,
/// transactional flag, timestamps, keys, values and headers (as a Kafka broker does).
fn recompress(batch: &[u8], codec: crate::Compression) -> Result<Vec<u8>> {
    let h = record::validate(batch)?;
    let bytes = Bytes::copy_from_slice(batch);
    let mut b = record::BatchBuilder::with_capacity(codec, batch.len()).producer(
        h.producer_id,
        h.producer_epoch,
        h.base_sequence,
    );
    if h.is_transactional() {
        b = b.transactional();
    }
    for r in record::decode_records(&bytes, MAX_UNCOMPRESSED_BATCH)? {
        let r = r?;
        b.append(
            r.timestamp,
            r.key.as_deref(),
            r.value.as_deref(),
            &r.headers,
        );
    }
    Ok(b.build())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::{LogManager, LogManagerConfig};
    use crate::record::testing;

    fn open(dir: &Path) -> LogManager {
        let mut c = LogManagerConfig::new(dir);
        c.clock = Arc::new(crate::MockClock::new(1_000_000));
        c.background = false;
        LogManager::open(c).unwrap()
    }

    /// Three stamped batches of one record each, at offsets 10, 11 and 12.
    fn three_batches() -> (Vec<u8>, [usize; 3]) {
        let mut buf = Vec::new();
        let mut lens = [0; 3];
        for (i, v) in ["a", "bb", "ccc"].into_iter().enumerate() {
            let mut b = testing::batch([v], 1);
            record::set_base_offset(&mut b, 10 + i as i64);
            lens[i] = b.len();
            buf.extend_from_slice(&b);
        }
        (buf, lens)
    }

    #[test]
    fn whole_batches_stop_at_a_cut_batch_and_at_the_upper_offset() {
        let (buf, [a, b, c]) = three_batches();
        assert_eq!(
            whole_batches(&buf, a, 11, i64::MAX).unwrap(),
            (a + b + c, 13)
        );
        // The read ends inside the third batch, or inside its header.
        let cut = &buf[..a + b + c - 1];
        assert_eq!(whole_batches(cut, a, 11, i64::MAX).unwrap(), (a + b, 12));
        let cut = &buf[..a + b + 10];
        assert_eq!(whole_batches(cut, a, 11, i64::MAX).unwrap(), (a + b, 12));
        // read_committed: nothing at or past the last stable offset.
        assert_eq!(whole_batches(&buf, a, 11, 12).unwrap(), (a + b, 12));
        assert_eq!(whole_batches(&buf, a, 11, 11).unwrap(), (a, 11));
    }

    #[test]
    fn a_malformed_header_in_a_read_is_an_error_naming_its_place() {
        let (mut buf, [a, b, _]) = three_batches();
        buf[a + b + 16] = 7; // the third batch's magic
        let (at, e) = whole_batches(&buf, a, 11, i64::MAX).unwrap_err();
        assert_eq!(at, a + b);
        assert!(e.to_string().contains("magic 7"), "{e}");
    }

    #[test]
    fn a_reader_far_behind_the_end_reads_ahead_and_one_near_it_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path());
        log.create_topic("t", 1, [("segment.bytes", "8388608")])
            .unwrap();
        let p = log.partition(&TopicPartition::new("t", 0)).unwrap();
        let value = "v".repeat(64 << 10);
        // 40 MiB in 256 KiB batches (4 records each) over 8 MiB segments.
        for _ in 0..160 {
            p.append(testing::batch([value.as_str(); 4], 1)).unwrap();
        }
        let issued = |p: &Partition| -> Vec<u64> {
            p.segments().iter().map(|s| s.read_ahead_issued()).collect()
        };
        assert!(issued(&p).iter().all(|&i| i == 0));
        // A 1 MiB read at the start: the rest of the first segment, all of the second (both
        // closed), and of the third what makes READAHEAD_BYTES, once a step's worth.
        let data = p.read(0, 1 << 20).unwrap();
        let end = data.records.len() as u64;
        let segs = p.segments();
        let (s0, s1) = (segs[0].size(), segs[1].size());
        let i = issued(&p);
        assert_eq!(i[..2], [s0, s1]);
        let reach = s0 + s1 + i[2];
        assert!(reach <= end + READAHEAD_BYTES, "{i:?}");
        assert!(reach + READAHEAD_STEP > end + READAHEAD_BYTES, "{i:?}");
        // Reading on within what was asked for: nothing more until a step has passed.
        let before = issued(&p);
        p.read(16, 1 << 20).unwrap();
        assert_eq!(issued(&p), before);
        // A reader within READAHEAD_BYTES of the end gets none.
        let near = p.log_end_offset() - 4 * 40;
        p.read(near, 1 << 20).unwrap();
        assert_eq!(issued(&p), before);
        // A sequential reader from the start reads everything, with readahead ahead of it.
        let mut at = 0;
        let mut n = 0;
        while at < p.log_end_offset() {
            let d = p.read(at, 1 << 20).unwrap();
            let count: i64 = crate::record::BatchIter::new(&d.records)
                .map(|(h, _)| i64::from(h.record_count))
                .sum();
            assert!(count > 0);
            at += count;
            n += 1;
            assert!(n < 1000);
        }
        assert_eq!(at, 640);
        let total: u64 = issued(&p).iter().sum();
        // Up to within a step and a read of the last READAHEAD_BYTES.
        assert!(
            total + READAHEAD_STEP + (1 << 20) >= p.size_bytes(),
            "{:?}",
            issued(&p)
        );
    }
}
