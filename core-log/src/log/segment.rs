//! One segment: `NNNNNNNNNNNNNNNNNNNN.log` (record batches as Kafka stores them), its sparse
//! offset index `.index` (8-byte entries: relative offset u32, position u32) and its time index
//! `.timeindex` (12-byte entries: timestamp i64, relative offset u32), all big-endian as Kafka
//! writes them.
//!
//! The active segment keeps its index in memory and writes it out when it rolls or is flushed;
//! a closed segment loads its index on first lookup. After a crash, the loader rebuilds the index
//! of every segment past the recovery point, so an index on disk is only trusted below it.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use parking_lot::Mutex;

use super::files::{FileCache, FileSlot};
use crate::record::{BatchHeader, HEADER_LEN};
use crate::{Error, Result};

const OFFSET_ENTRY: usize = 8;
const TIME_ENTRY: usize = 12;

/// The file name stem Kafka gives a segment: the base offset, zero-padded to 20 digits.
pub(crate) fn file_stem(base_offset: i64) -> String {
    format!("{base_offset:020}")
}

/// Where a batch sits: its header and byte position in the segment.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BatchPos {
    pub(crate) header: BatchHeader,
    pub(crate) position: u64,
}

#[derive(Debug, Default)]
struct Index {
    /// (relative offset, position)
    offsets: Vec<(u32, u32)>,
    /// (timestamp, relative offset)
    times: Vec<(i64, u32)>,
    /// Entries already written to the index files.
    offsets_persisted: usize,
    times_persisted: usize,
    /// Bytes appended since the last offset index entry.
    bytes_since_entry: u64,
    /// In memory (always true for the active segment).
    loaded: bool,
}

/// Where a segment's files are. Opening the log file by path happens under the lock holding
/// this, so a deleted segment is never reopened (opening creates missing files) and renaming
/// never races an open.
#[derive(Debug)]
struct FileState {
    /// Appended to every file name: `""`, or [`CLEANED_SUFFIX`] / [`SWAP_SUFFIX`] while the
    /// cleaner writes a segment and swaps it in, as Kafka names them.
    suffix: &'static str,
    /// The files were deleted: the segment left the partition and must not be reopened.
    deleted: bool,
}

/// Suffix of a segment the cleaner is writing; the loader deletes such files.
pub(crate) const CLEANED_SUFFIX: &str = ".cleaned";
/// Suffix of a cleaned segment ready to replace the segments it covers; the loader completes
/// the swap (see `loader::complete_swaps`).
pub(crate) const SWAP_SUFFIX: &str = ".swap";

/// One segment of a partition.
#[derive(Debug)]
pub(crate) struct Segment {
    base_offset: i64,
    dir: PathBuf,
    state: Mutex<FileState>,
    file: Arc<FileSlot>,
    /// Bytes of complete batches: readers never look past this.
    size: AtomicU64,
    /// Offset after the last batch (base offset while empty).
    next_offset: AtomicI64,
    /// Largest timestamp seen, and the offset of the batch holding it.
    max_timestamp: AtomicI64,
    offset_of_max_timestamp: AtomicI64,
    /// Wall-clock ms when this segment was created (or opened), for `segment.ms`.
    created_ms: i64,
    index: Mutex<Index>,
    /// Bytes from the start whose page-cache pages were dropped (the page-cache window).
    cache_dropped: AtomicU64,
    /// Bytes from the start the kernel was asked to read ahead (see `super::readahead`).
    read_ahead: AtomicU64,
}

impl Segment {
    /// A new, empty segment file.
    pub(crate) fn create(
        dir: &Path,
        base_offset: i64,
        now_ms: i64,
        files: &FileCache,
    ) -> Result<Arc<Self>> {
        Self::create_with_suffix(dir, base_offset, now_ms, files, "")
    }

    /// A new, empty segment named `<base>.log.cleaned` (and index files likewise), for the
    /// cleaner to fill before it is renamed with [`Segment::rename_suffix`].
    pub(crate) fn create_cleaned(
        dir: &Path,
        base_offset: i64,
        now_ms: i64,
        files: &FileCache,
    ) -> Result<Arc<Self>> {
        Self::create_with_suffix(dir, base_offset, now_ms, files, CLEANED_SUFFIX)
    }

    fn create_with_suffix(
        dir: &Path,
        base_offset: i64,
        now_ms: i64,
        files: &FileCache,
        suffix: &'static str,
    ) -> Result<Arc<Self>> {
        let seg = Arc::new(Self::new(dir, base_offset, now_ms));
        seg.state.lock().suffix = suffix;
        if suffix.is_empty() {
            seg.file(files)?;
        } else {
            // A leftover of an earlier attempt must not be appended to.
            let p = seg.log_path();
            File::create(&p).map_err(|e| Error::io(&p, e))?;
            seg.file(files)?;
        }
        // Empty index files, as Kafka keeps beside every segment.
        for p in [seg.index_path(), seg.time_index_path()] {
            File::create(&p).map_err(|e| Error::io(&p, e))?;
        }
        seg.index.lock().loaded = true;
        Ok(seg)
    }

    /// A segment found on disk; the loader fills in size, offsets and index.
    pub(crate) fn new(dir: &Path, base_offset: i64, now_ms: i64) -> Self {
        Self {
            base_offset,
            dir: dir.to_path_buf(),
            state: Mutex::new(FileState {
                suffix: "",
                deleted: false,
            }),
            file: Arc::new(FileSlot::default()),
            size: AtomicU64::new(0),
            next_offset: AtomicI64::new(base_offset),
            max_timestamp: AtomicI64::new(-1),
            offset_of_max_timestamp: AtomicI64::new(-1),
            created_ms: now_ms,
            index: Mutex::new(Index::default()),
            cache_dropped: AtomicU64::new(0),
            read_ahead: AtomicU64::new(0),
        }
    }

    pub(crate) fn base_offset(&self) -> i64 {
        self.base_offset
    }

    fn path_of(&self, ext: &str, suffix: &str) -> PathBuf {
        self.dir
            .join(format!("{}.{ext}{suffix}", file_stem(self.base_offset)))
    }

    /// The log file's path as it is now (with the cleaner's suffix while it has one).
    pub(crate) fn log_path(&self) -> PathBuf {
        self.path_of("log", self.state.lock().suffix)
    }

    pub(crate) fn index_path(&self) -> PathBuf {
        self.path_of("index", self.state.lock().suffix)
    }

    pub(crate) fn time_index_path(&self) -> PathBuf {
        self.path_of("timeindex", self.state.lock().suffix)
    }

    pub(crate) fn size(&self) -> u64 {
        self.size.load(Ordering::Acquire)
    }

    pub(crate) fn next_offset(&self) -> i64 {
        self.next_offset.load(Ordering::Acquire)
    }

    pub(crate) fn created_ms(&self) -> i64 {
        self.created_ms
    }

    /// Largest timestamp in the segment (-1 when empty).
    pub(crate) fn max_timestamp(&self) -> i64 {
        self.max_timestamp.load(Ordering::Acquire)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.size() == 0
    }

    /// The open log file. Fails for a segment whose files were deleted (a reader holding an
    /// old snapshot then retries with a fresh one).
    pub(crate) fn file(&self, files: &FileCache) -> Result<Arc<File>> {
        let st = self.state.lock();
        let path = self.path_of("log", st.suffix);
        if st.deleted {
            return Err(Error::io(
                path,
                std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "segment was deleted (compacted or past retention)",
                ),
            ));
        }
        files
            .get(&self.file, &path)
            .map_err(|e| Error::io(&path, e))
    }

    /// Whether the segment's files were deleted.
    pub(crate) fn is_deleted(&self) -> bool {
        self.state.lock().deleted
    }

    /// Renames the segment's files from their current suffix to `to` (the log file last, so a
    /// crash leaves the log file's name telling the state). Open handles stay valid.
    pub(crate) fn rename_suffix(&self, to: &'static str) -> Result<()> {
        let mut st = self.state.lock();
        let from = st.suffix;
        if st.deleted {
            return Err(Error::io(
                self.path_of("log", from),
                std::io::Error::new(std::io::ErrorKind::NotFound, "segment was deleted"),
            ));
        }
        for ext in ["index", "timeindex", "log"] {
            let (a, b) = (self.path_of(ext, from), self.path_of(ext, to));
            match std::fs::rename(&a, &b) {
                Ok(()) => {}
                // Index files are rebuilt when missing.
                Err(e) if ext != "log" && e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(&a, e)),
            }
        }
        st.suffix = to;
        Ok(())
    }

    pub(crate) fn close_file(&self, files: &FileCache) {
        files.close(&self.file);
    }

    /// Appends one batch (already stamped with its offsets) at the end of the segment.
    pub(crate) fn append(
        &self,
        files: &FileCache,
        batch: &[u8],
        h: &BatchHeader,
        index_interval: u64,
    ) -> Result<()> {
        let pos = self.size();
        let file = self.file(files)?;
        file.write_all_at(batch, pos)
            .map_err(|e| Error::io(self.log_path(), e))?;
        self.note_batch(h, pos, batch.len() as u64, index_interval);
        self.size.store(pos + batch.len() as u64, Ordering::Release);
        self.next_offset.store(h.next_offset(), Ordering::Release);
        Ok(())
    }

    /// Records a batch at `pos` in the index (used by append and by the loader's rebuild).
    pub(crate) fn note_batch(&self, h: &BatchHeader, pos: u64, len: u64, index_interval: u64) {
        let mut idx = self.index.lock();
        let rel = (h.last_offset() - self.base_offset) as u32;
        if h.max_timestamp > self.max_timestamp.load(Ordering::Relaxed) {
            self.max_timestamp.store(h.max_timestamp, Ordering::Release);
            self.offset_of_max_timestamp
                .store(h.last_offset(), Ordering::Release);
        }
        if idx.offsets.is_empty() || idx.bytes_since_entry >= index_interval {
            idx.offsets.push((rel, pos as u32));
            let max_ts = self.max_timestamp.load(Ordering::Relaxed);
            if idx.times.last().is_none_or(|&(t, _)| max_ts > t) {
                let rel_max = (self.offset_of_max_timestamp.load(Ordering::Relaxed)
                    - self.base_offset) as u32;
                idx.times.push((max_ts, rel_max));
            }
            idx.bytes_since_entry = 0;
        }
        idx.bytes_since_entry += len;
    }

    /// Sets the segment's extent after the loader scanned or trusted it.
    pub(crate) fn set_extent(&self, size: u64, next_offset: i64) {
        self.size.store(size, Ordering::Release);
        self.next_offset.store(next_offset, Ordering::Release);
    }

    /// Marks the in-memory index as complete (after a rebuild).
    pub(crate) fn mark_index_loaded(&self) {
        self.index.lock().loaded = true;
    }

    /// Forgets index entries and timestamps (before a rebuild).
    pub(crate) fn reset_index(&self) {
        *self.index.lock() = Index::default();
        self.max_timestamp.store(-1, Ordering::Release);
        self.offset_of_max_timestamp.store(-1, Ordering::Release);
    }

    /// Writes index entries not yet on disk (nothing once the segment was deleted).
    pub(crate) fn persist_index(&self) -> Result<()> {
        // Lock order: file state, then index. Holding the state keeps the files from being
        // deleted or renamed under the write.
        let st = self.state.lock();
        if st.deleted {
            return Ok(());
        }
        self.write_index(st.suffix)
    }

    fn write_index(&self, suffix: &str) -> Result<()> {
        let mut idx = self.index.lock();
        if !idx.loaded {
            return Ok(());
        }
        // As Kafka does on roll and close: the time index ends with the segment's max
        // timestamp, so a reopened segment knows it without a scan.
        let max_ts = self.max_timestamp.load(Ordering::Acquire);
        if max_ts >= 0 && idx.times.last().is_none_or(|&(t, _)| max_ts > t) {
            let rel =
                (self.offset_of_max_timestamp.load(Ordering::Acquire) - self.base_offset) as u32;
            idx.times.push((max_ts, rel));
        }
        let mut buf = Vec::new();
        for &(rel, pos) in &idx.offsets[idx.offsets_persisted..] {
            buf.extend_from_slice(&rel.to_be_bytes());
            buf.extend_from_slice(&pos.to_be_bytes());
        }
        let p = self.path_of("index", suffix);
        write_at_end(&p, (idx.offsets_persisted * OFFSET_ENTRY) as u64, &buf)?;
        idx.offsets_persisted = idx.offsets.len();
        buf.clear();
        for &(ts, rel) in &idx.times[idx.times_persisted..] {
            buf.extend_from_slice(&ts.to_be_bytes());
            buf.extend_from_slice(&rel.to_be_bytes());
        }
        let p = self.path_of("timeindex", suffix);
        write_at_end(&p, (idx.times_persisted * TIME_ENTRY) as u64, &buf)?;
        idx.times_persisted = idx.times.len();
        Ok(())
    }

    /// Rewrites both index files from memory (after a rebuild), and fsyncs them.
    pub(crate) fn rewrite_index(&self) -> Result<()> {
        let st = self.state.lock();
        if st.deleted {
            return Ok(());
        }
        {
            let mut idx = self.index.lock();
            idx.offsets_persisted = 0;
            idx.times_persisted = 0;
        }
        for p in [
            self.path_of("index", st.suffix),
            self.path_of("timeindex", st.suffix),
        ] {
            let f = File::create(&p).map_err(|e| Error::io(&p, e))?;
            drop(f);
        }
        self.write_index(st.suffix)
    }

    /// Loads the index files of a closed segment; returns false if they are missing or do not
    /// make sense (then the caller rebuilds by scanning).
    pub(crate) fn load_index(&self, files: &FileCache) -> Result<bool> {
        // Paths first: the file state lock is never taken under the index lock.
        let (index_path, time_index_path) = (self.index_path(), self.time_index_path());
        if self.index.lock().loaded {
            return Ok(true);
        }
        let size = self.size();
        let (Ok(ob), Ok(tb)) = (std::fs::read(index_path), std::fs::read(time_index_path)) else {
            return Ok(false);
        };
        if ob.len() % OFFSET_ENTRY != 0 || tb.len() % TIME_ENTRY != 0 {
            return Ok(false);
        }
        let mut offsets = Vec::with_capacity(ob.len() / OFFSET_ENTRY);
        for e in ob.chunks_exact(OFFSET_ENTRY) {
            let rel = u32::from_be_bytes([e[0], e[1], e[2], e[3]]);
            let pos = u32::from_be_bytes([e[4], e[5], e[6], e[7]]);
            if u64::from(pos) >= size.max(1)
                || offsets.last().is_some_and(|&(r, p)| rel < r || pos <= p)
            {
                return Ok(false);
            }
            offsets.push((rel, pos));
        }
        let mut times = Vec::with_capacity(tb.len() / TIME_ENTRY);
        for e in tb.chunks_exact(TIME_ENTRY) {
            let ts = i64::from_be_bytes([e[0], e[1], e[2], e[3], e[4], e[5], e[6], e[7]]);
            let rel = u32::from_be_bytes([e[8], e[9], e[10], e[11]]);
            if times.last().is_some_and(|&(t, r)| ts < t || rel < r) {
                return Ok(false);
            }
            times.push((ts, rel));
        }
        if size > 0 && (offsets.is_empty() || times.is_empty()) {
            return Ok(false);
        }
        // Checked without the index lock: it reads the log file.
        if !self.index_matches_log(files, &offsets, &times, size) {
            return Ok(false);
        }
        let mut idx = self.index.lock();
        if idx.loaded {
            return Ok(true);
        }
        if let Some(&(ts, rel)) = times.last()
            && ts > self.max_timestamp.load(Ordering::Relaxed)
        {
            self.max_timestamp.store(ts, Ordering::Release);
            self.offset_of_max_timestamp
                .store(self.base_offset + i64::from(rel), Ordering::Release);
        }
        idx.offsets_persisted = offsets.len();
        idx.times_persisted = times.len();
        idx.offsets = offsets;
        idx.times = times;
        idx.loaded = true;
        Ok(true)
    }

    /// Spot-checks index entries read from disk against the log: the last offset entry must point
    /// at the batch it names, and the last time entry (the segment's max timestamp, written on
    /// roll and close) at a batch with that max timestamp. This catches zeroed or garbage files
    /// that happen to be well formed, which would otherwise hide records from lookups by time.
    fn index_matches_log(
        &self,
        files: &FileCache,
        offsets: &[(u32, u32)],
        times: &[(i64, u32)],
        size: u64,
    ) -> bool {
        let Ok(file) = self.file(files) else {
            return false;
        };
        let header = |pos: u64| self.header_at(&file, pos, size).ok().flatten();
        if let Some(&(rel, pos)) = offsets.last() {
            match header(u64::from(pos)) {
                Some(h) if h.last_offset() - self.base_offset == i64::from(rel) => {}
                _ => return false,
            }
        }
        if let Some(&(ts, rel)) = times.last() {
            let target = self.base_offset + i64::from(rel);
            let mut pos = match offsets.partition_point(|&(r, _)| r <= rel) {
                0 => 0,
                i => u64::from(offsets[i - 1].1),
            };
            // Each step moves past a whole batch below `size`, so this ends.
            loop {
                let Some(h) = header(pos) else {
                    return false;
                };
                if h.last_offset() >= target {
                    return h.last_offset() == target && h.max_timestamp == ts;
                }
                pos += h.total_len() as u64;
            }
        }
        true
    }

    /// Position of the last indexed batch at or below `offset` (0 if none), from the loaded index.
    fn index_floor(&self, offset: i64) -> u64 {
        let idx = self.index.lock();
        let rel = (offset - self.base_offset).clamp(0, i64::from(u32::MAX)) as u32;
        match idx.offsets.partition_point(|&(r, _)| r <= rel) {
            0 => 0,
            i => u64::from(idx.offsets[i - 1].1),
        }
    }

    /// Position to scan from for the first batch with timestamp >= `ts`.
    fn time_floor(&self, ts: i64) -> u64 {
        let rel = {
            let idx = self.index.lock();
            match idx.times.partition_point(|&(t, _)| t < ts) {
                0 => None,
                i => Some(idx.times[i - 1].1),
            }
        };
        match rel {
            None => 0,
            Some(rel) => self.index_floor(self.base_offset + i64::from(rel)),
        }
    }

    /// Reads the batch header at `pos`, if a whole batch sits there below `limit`.
    pub(crate) fn header_at(
        &self,
        file: &File,
        pos: u64,
        limit: u64,
    ) -> Result<Option<BatchHeader>> {
        if pos + HEADER_LEN as u64 > limit {
            return Ok(None);
        }
        let mut buf = [0u8; HEADER_LEN];
        file.read_exact_at(&mut buf, pos)
            .map_err(|e| Error::io(self.log_path(), e))?;
        let h = BatchHeader::parse(&buf).map_err(|e| {
            Error::CorruptRecord(format!("{} at byte {pos}: {e}", self.log_path().display()))
        })?;
        if pos + h.total_len() as u64 > limit {
            return Ok(None);
        }
        Ok(Some(h))
    }

    /// The first batch holding an offset >= `offset`, scanning from the index.
    pub(crate) fn find_offset(
        &self,
        files: &FileCache,
        offset: i64,
        limit: u64,
    ) -> Result<Option<BatchPos>> {
        self.ensure_index(files)?;
        let file = self.file(files)?;
        let mut pos = self.index_floor(offset);
        while let Some(h) = self.header_at(&file, pos, limit)? {
            if h.last_offset() >= offset {
                return Ok(Some(BatchPos {
                    header: h,
                    position: pos,
                }));
            }
            pos += h.total_len() as u64;
        }
        Ok(None)
    }

    /// The first batch with a max timestamp >= `ts`.
    pub(crate) fn find_timestamp(
        &self,
        files: &FileCache,
        ts: i64,
        limit: u64,
    ) -> Result<Option<BatchPos>> {
        self.ensure_index(files)?;
        if self.max_timestamp() < ts {
            return Ok(None);
        }
        let file = self.file(files)?;
        let mut pos = self.time_floor(ts);
        while let Some(h) = self.header_at(&file, pos, limit)? {
            if h.max_timestamp >= ts {
                return Ok(Some(BatchPos {
                    header: h,
                    position: pos,
                }));
            }
            pos += h.total_len() as u64;
        }
        Ok(None)
    }

    /// Loads the index, or rebuilds it by scanning if the files are missing or damaged.
    pub(crate) fn ensure_index(&self, files: &FileCache) -> Result<()> {
        if self.load_index(files)? {
            return Ok(());
        }
        tracing::info!(segment = %self.log_path().display(), "rebuilding index");
        self.reset_index();
        let file = self.file(files)?;
        let size = self.size();
        let mut pos = 0;
        while let Some(h) = self.header_at(&file, pos, size)? {
            self.note_batch(&h, pos, h.total_len() as u64, 4096);
            pos += h.total_len() as u64;
        }
        self.mark_index_loaded();
        self.rewrite_index()
    }

    /// Cuts the segment back to `size` bytes (recovery of a torn tail, truncation).
    pub(crate) fn truncate_to(&self, files: &FileCache, size: u64, next_offset: i64) -> Result<()> {
        let file = self.file(files)?;
        file.set_len(size)
            .map_err(|e| Error::io(self.log_path(), e))?;
        self.set_extent(size, next_offset);
        // Bytes appended anew past `size` are not read ahead yet.
        self.read_ahead.fetch_min(size, Ordering::AcqRel);
        let mut idx = self.index.lock();
        idx.offsets.retain(|&(_, p)| u64::from(p) < size);
        let base = self.base_offset;
        idx.times
            .retain(|&(_, r)| base + i64::from(r) < next_offset);
        idx.offsets_persisted = idx.offsets_persisted.min(idx.offsets.len());
        idx.times_persisted = idx.times_persisted.min(idx.times.len());
        Ok(())
    }

    /// Bytes from the start whose page-cache pages were dropped.
    pub(crate) fn cache_dropped(&self) -> u64 {
        self.cache_dropped.load(Ordering::Acquire)
    }

    /// Drops the page-cache pages of bytes `[cache_dropped, upto)` (written back already:
    /// the kernel keeps dirty pages). Readers of them read the file from disk again.
    pub(crate) fn drop_cache_below(&self, files: &FileCache, upto: u64) -> Result<()> {
        let from = self.cache_dropped();
        let Some(len) = upto.checked_sub(from).and_then(std::num::NonZeroU64::new) else {
            return Ok(());
        };
        let file = self.file(files)?;
        rustix::fs::fadvise(&*file, from, Some(len), rustix::fs::Advice::DontNeed)
            .map_err(|e| Error::io(self.log_path(), std::io::Error::from(e)))?;
        self.cache_dropped.fetch_max(upto, Ordering::AcqRel);
        Ok(())
    }

    /// Bytes from the start the kernel was asked to read ahead.
    pub(crate) fn read_ahead_issued(&self) -> u64 {
        self.read_ahead.load(Ordering::Acquire)
    }

    /// Asks the kernel to read bytes `[from, to)` into the page cache in the background
    /// (`fadvise(WILLNEED)`: it starts the reads and returns).
    pub(crate) fn read_ahead(&self, files: &FileCache, from: u64, to: u64) -> Result<()> {
        let Some(len) = to.checked_sub(from).and_then(std::num::NonZeroU64::new) else {
            return Ok(());
        };
        let file = self.file(files)?;
        rustix::fs::fadvise(&*file, from, Some(len), rustix::fs::Advice::WillNeed)
            .map_err(|e| Error::io(self.log_path(), std::io::Error::from(e)))?;
        self.read_ahead.fetch_max(to, Ordering::AcqRel);
        Ok(())
    }

    /// fsyncs the log file (index files are rebuilt after a crash, so they need no fsync).
    pub(crate) fn sync(&self, files: &FileCache) -> Result<()> {
        let file = self.file(files)?;
        file.sync_data().map_err(|e| Error::io(self.log_path(), e))
    }

    /// Reads `len` bytes at `pos`.
    pub(crate) fn read(&self, files: &FileCache, pos: u64, len: usize) -> Result<Vec<u8>> {
        let file = self.file(files)?;
        let mut buf = vec![0u8; len];
        file.read_exact_at(&mut buf, pos)
            .map_err(|e| Error::io(self.log_path(), e))?;
        Ok(buf)
    }

    /// Deletes the segment's files; afterwards it never reopens them (see [`Segment::file`]).
    pub(crate) fn delete_files(&self, files: &FileCache) {
        let mut st = self.state.lock();
        st.deleted = true;
        self.close_file(files);
        for p in ["log", "index", "timeindex", "txnindex"].map(|ext| self.path_of(ext, st.suffix)) {
            if let Err(e) = std::fs::remove_file(&p)
                && e.kind() != std::io::ErrorKind::NotFound
            {
                tracing::warn!(file = %p.display(), error = %e, "could not delete segment file");
            }
        }
    }
}

fn write_at_end(path: &Path, at: u64, buf: &[u8]) -> Result<()> {
    if buf.is_empty() {
        return Ok(());
    }
    let f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| Error::io(path, e))?;
    f.write_all_at(buf, at).map_err(|e| Error::io(path, e))
}
