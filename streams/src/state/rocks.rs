//! RocksDB engines of the three store kinds: one RocksDB instance per store, in the directory
//! the caller gives (`<state.dir>/<application.id>/<task id>/rocksdb/<store name>`).
//!
//! # Tuning
//!
//! As Kafka Streams' `RocksDBStore`: no write-ahead log (the changelog topic is the source of
//! truth; a store that lost its last writes is restored from it), 16 MiB write buffers (3 of
//! them), 4 KiB blocks with a bloom filter behind an LRU block cache, universal compaction,
//! no compression (the crate is built without compression libraries).
//!
//! # Key-value layout
//!
//! The store's key is RocksDB's key, in the default column family: RocksDB's bytewise order is
//! the key byte order the trait asks for.
//!
//! # Window and session layout
//!
//! Time-segmented: a window belongs to segment `start / interval` (a session to `end /
//! interval`), `interval = max(retention / 2, 60 s)` as in Kafka Streams; each segment is a
//! column family `segment-<id>`, dropped whole (its files deleted) once stream time has left
//! every time it can hold more than the retention behind. Within a segment, entries are
//! ordered **by key first**, so that fetching one key's windows is one seek:
//!
//! - window: `[escaped key][start][seqnum: 4 bytes BE]`
//! - session: `[escaped key][end][start]`
//!
//! where a time is 8 bytes big-endian with the sign bit flipped (so negative times sort before
//! positive ones), and the key is escaped so that byte order is kept and no key's encoding is a
//! prefix of another's: each `0x00` byte becomes `0x00 0xff` and the key ends with `0x00 0x00`.
//! Thus `[0x01]` (`01 00 00 ...`) sorts wholly before `[0x01, 0x00]` (`01 00 ff 00 00 ...`),
//! which sorts before `[0x02]`: the windows of a key never interleave with those of a key it is
//! a prefix of (Kafka's own layout, `[key][start][seqnum]` unescaped, lets them). Keys without
//! a `0x00` byte are stored as they are, plus the two terminating bytes.
//!
//! Reading one key's windows walks the live segments in time order; reading several keys
//! merges the segments' iterators by encoded key, which is key order then time order. Reads
//! hide what is older than the retention even before its segment is dropped, so both engines
//! answer the same.
//!
//! The segment interval and the stream time observed are kept in the default column family
//! (the interval when the store is created, the stream time at each [`StateStore::flush`]), so
//! a reopened store finds its segments and expires as before.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use rocksdb::{
    BlockBasedOptions, Cache, ColumnFamily, DB, DBCompactionStyle, DBCompressionType,
    DBRawIterator, Direction, FlushOptions, IteratorMode, Options, ReadOptions, WriteBatch,
    WriteOptions,
};

use super::memory::check_session;
use super::{
    KeyValueIter, KeyValueStore, NO_STREAM_TIME, SessionIter, SessionStore, StateStore, WindowIter,
    WindowStore, check_retention, empty_iter, min_live_time,
};
use crate::error::{Error, Result};

/// The smallest segment interval, as Kafka Streams' (one minute).
pub const MIN_SEGMENT_INTERVAL_MS: i64 = 60_000;

/// The segment interval of a window or session store keeping `retention_ms`:
/// `max(retention / 2, 60 s)`, as Kafka Streams.
pub fn segment_interval(retention_ms: i64) -> i64 {
    (retention_ms / 2).max(MIN_SEGMENT_INTERVAL_MS)
}

const WRITE_BUFFER_BYTES: usize = 16 << 20;
const WRITE_BUFFERS: i32 = 3;
const BLOCK_BYTES: usize = 4 << 10;
const BLOCK_CACHE_BYTES: usize = 16 << 20;
const BLOOM_BITS_PER_KEY: f64 = 10.0;
/// The share of the write buffer given to the memtable's bloom filter.
const MEMTABLE_BLOOM_RATIO: f64 = 0.1;

/// Where the segmented stores keep their segment interval (8 bytes BE).
const META_INTERVAL: &[u8] = b"segment.interval.ms";
/// Where the segmented stores keep the stream time observed at the last flush (8 bytes BE).
const META_STREAM_TIME: &[u8] = b"observed.stream.time";
/// Where a window store retaining duplicates keeps its next sequence number (4 bytes BE).
const META_SEQNUM: &[u8] = b"next.seqnum";
const SEGMENT_PREFIX: &str = "segment-";

fn options() -> Options {
    let mut opts = Options::default();
    opts.create_if_missing(true);
    opts.create_missing_column_families(true);
    opts.set_compression_type(DBCompressionType::None);
    opts.set_write_buffer_size(WRITE_BUFFER_BYTES);
    opts.set_max_write_buffer_number(WRITE_BUFFERS);
    opts.set_compaction_style(DBCompactionStyle::Universal);
    opts.set_max_background_jobs(2);
    // A bloom filter over the memtable's whole keys: a get of a key the memtable does not hold
    // (a window's first update, a join's miss) skips the skip-list search, which the windowed
    // count's profile showed as its largest cost.
    opts.set_memtable_whole_key_filtering(true);
    opts.set_memtable_prefix_bloom_ratio(MEMTABLE_BLOOM_RATIO);
    let mut table = BlockBasedOptions::default();
    table.set_block_size(BLOCK_BYTES);
    table.set_bloom_filter(BLOOM_BITS_PER_KEY, false);
    table.set_block_cache(&Cache::new_lru_cache(BLOCK_CACHE_BYTES));
    opts.set_block_based_table_factory(&table);
    opts
}

fn write_options() -> WriteOptions {
    let mut write = WriteOptions::default();
    write.disable_wal(true);
    write
}

fn create_dir(path: &Path) -> Result<()> {
    std::fs::create_dir_all(path).map_err(|source| Error::StateDir {
        path: path.to_owned(),
        source,
    })
}

/// An engine error, naming the store.
fn engine(name: &str) -> impl Fn(rocksdb::Error) -> Error + '_ {
    move |e| Error::store(name, e)
}

/// The smallest key greater than every key starting with `prefix`, if there is one (there is
/// none when `prefix` is empty or all `0xff`).
fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let last = prefix.iter().rposition(|&b| b != 0xff)?;
    let mut next = prefix[..=last].to_vec();
    next[last] += 1;
    Some(next)
}

/// A key-value store in RocksDB (its default column family).
pub struct RocksKeyValueStore {
    name: String,
    path: PathBuf,
    db: DB,
    read: ReadOptions,
    write: WriteOptions,
}

impl std::fmt::Debug for RocksKeyValueStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RocksKeyValueStore")
            .field("name", &self.name)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl RocksKeyValueStore {
    /// Opens (creating it if needed) the store `name` in the directory `path`; what an earlier
    /// instance flushed there is read back.
    pub fn open(name: impl Into<String>, path: impl Into<PathBuf>) -> Result<Self> {
        let name = name.into();
        let path = path.into();
        create_dir(&path)?;
        let db = DB::open(&options(), &path).map_err(engine(&name))?;
        Ok(Self {
            name,
            path,
            db,
            read: ReadOptions::default(),
            write: write_options(),
        })
    }

    /// The store's directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Applies a run of changelog records (`None`: a tombstone) as one `WriteBatch`: the fast
    /// path of restoring.
    pub fn restore_batch(&mut self, records: &[(Bytes, Option<Bytes>)]) -> Result<()> {
        self.write_batch(records)
    }

    fn entries<'a>(&'a self, from: Option<&[u8]>, read: ReadOptions) -> KeyValueIter<'a> {
        let mode = match from {
            Some(from) => IteratorMode::From(from, Direction::Forward),
            None => IteratorMode::Start,
        };
        let name = &self.name;
        Box::new(self.db.iterator_opt(mode, read).map(move |entry| {
            entry
                .map(|(k, v)| (Bytes::from(k), Bytes::from(v)))
                .map_err(engine(name))
        }))
    }
}

impl StateStore for RocksKeyValueStore {
    fn name(&self) -> &str {
        &self.name
    }
    fn persistent(&self) -> bool {
        true
    }
    fn flush(&mut self) -> Result<()> {
        self.db.flush().map_err(engine(&self.name))
    }
}

impl KeyValueStore for RocksKeyValueStore {
    fn get(&self, key: &[u8]) -> Result<Option<Bytes>> {
        let value = self
            .db
            .get_pinned_opt(key, &self.read)
            .map_err(engine(&self.name))?;
        Ok(value.map(|v| Bytes::copy_from_slice(&v)))
    }

    fn put(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        self.db
            .put_opt(key, value, &self.write)
            .map_err(engine(&self.name))
    }

    fn delete(&mut self, key: &[u8]) -> Result<Option<Bytes>> {
        let old = self.get(key)?;
        if old.is_some() {
            self.db
                .delete_opt(key, &self.write)
                .map_err(engine(&self.name))?;
        }
        Ok(old)
    }

    fn range(&self, from: &[u8], to: &[u8]) -> Result<KeyValueIter<'_>> {
        if from > to {
            return Ok(empty_iter());
        }
        let mut read = ReadOptions::default();
        // The smallest key after `to` is `to` followed by 0x00.
        let mut upper = Vec::with_capacity(to.len() + 1);
        upper.extend_from_slice(to);
        upper.push(0);
        read.set_iterate_upper_bound(upper);
        Ok(self.entries(Some(from), read))
    }

    fn prefix_scan(&self, prefix: &[u8]) -> Result<KeyValueIter<'_>> {
        let mut read = ReadOptions::default();
        if let Some(upper) = prefix_successor(prefix) {
            read.set_iterate_upper_bound(upper);
        }
        Ok(self.entries(Some(prefix), read))
    }

    fn all(&self) -> Result<KeyValueIter<'_>> {
        Ok(self.entries(None, ReadOptions::default()))
    }

    fn approximate_num_entries(&self) -> Result<u64> {
        let n = self
            .db
            .property_int_value("rocksdb.estimate-num-keys")
            .map_err(engine(&self.name))?;
        Ok(n.unwrap_or(0))
    }

    fn write_batch(&mut self, entries: &[(Bytes, Option<Bytes>)]) -> Result<()> {
        let mut batch = WriteBatch::default();
        for (key, value) in entries {
            match value {
                Some(value) => batch.put(key, value),
                None => batch.delete(key),
            }
        }
        self.db
            .write_opt(batch, &self.write)
            .map_err(engine(&self.name))
    }
}

/// Appends `key` escaped and terminated: `0x00` becomes `0x00 0xff`, then `0x00 0x00`.
fn push_key(buf: &mut Vec<u8>, key: &[u8]) {
    let mut parts = key.split(|&b| b == 0);
    if let Some(first) = parts.next() {
        buf.extend_from_slice(first);
    }
    for part in parts {
        buf.extend_from_slice(&[0x00, 0xff]);
        buf.extend_from_slice(part);
    }
    buf.extend_from_slice(&[0x00, 0x00]);
}

/// The bound past every entry of `key`: its escaped form followed by `0x00 0x01`.
fn key_upper_bound(key: &[u8]) -> Vec<u8> {
    let mut buf = Vec::with_capacity(key.len() + 2);
    push_key(&mut buf, key);
    if let Some(last) = buf.last_mut() {
        *last = 0x01;
    }
    buf
}

fn push_time(buf: &mut Vec<u8>, time: i64) {
    buf.extend_from_slice(&((time as u64) ^ (1 << 63)).to_be_bytes());
}

fn read_time(bytes: &[u8]) -> Option<i64> {
    let bytes: [u8; 8] = bytes.get(..8)?.try_into().ok()?;
    Some((u64::from_be_bytes(bytes) ^ (1 << 63)) as i64)
}

/// Splits an encoded entry key into the store key (unescaped) and what follows it; `None`
/// when it is not an encoded key.
fn split_key(raw: &[u8]) -> Option<(Bytes, &[u8])> {
    let mut key: Option<Vec<u8>> = None;
    let mut run_start = 0;
    let mut at = 0;
    loop {
        let zero = at + raw.get(at..)?.iter().position(|&b| b == 0)?;
        match raw.get(zero + 1)? {
            0x00 => {
                let rest = &raw[zero + 2..];
                let key = match key {
                    None => Bytes::copy_from_slice(&raw[..zero]),
                    Some(mut key) => {
                        key.extend_from_slice(&raw[run_start..zero]);
                        Bytes::from(key)
                    }
                };
                return Some((key, rest));
            }
            0xff => {
                let key = key.get_or_insert_with(|| Vec::with_capacity(raw.len()));
                key.extend_from_slice(&raw[run_start..zero]);
                key.push(0);
                at = zero + 2;
                run_start = at;
            }
            _ => return None,
        }
    }
}

/// What a scan of segments does with one entry: keep it (decoded) or pass over it.
type Decode<'a, T> = Box<dyn Fn(&[u8], &[u8]) -> Result<Option<T>> + 'a>;

/// Iterates entries of several segments: in segment order (`merge == false`, when the scan's
/// bounds keep each segment's entries before the next one's), or merged by encoded key.
struct SegmentScan<'a, T> {
    cursors: Vec<DBRawIterator<'a>>,
    merge: bool,
    decode: Decode<'a, T>,
    store: &'a str,
    failed: bool,
}

impl<T> Iterator for SegmentScan<'_, T> {
    type Item = Result<T>;

    fn next(&mut self) -> Option<Result<T>> {
        if self.failed {
            return None;
        }
        loop {
            let mut pick: Option<usize> = None;
            for (i, cursor) in self.cursors.iter().enumerate() {
                if !cursor.valid() {
                    if let Err(e) = cursor.status() {
                        self.failed = true;
                        return Some(Err(Error::store(self.store, e)));
                    }
                    continue;
                }
                if !self.merge {
                    pick = Some(i);
                    break;
                }
                pick = match pick {
                    Some(p) if self.cursors[p].key() <= cursor.key() => Some(p),
                    _ => Some(i),
                };
            }
            let cursor = &mut self.cursors[pick?];
            let decoded = match (cursor.key(), cursor.value()) {
                (Some(key), Some(value)) => (self.decode)(key, value),
                _ => Ok(None),
            };
            cursor.next();
            match decoded {
                Ok(Some(item)) => return Some(Ok(item)),
                Ok(None) => {}
                Err(e) => {
                    self.failed = true;
                    return Some(Err(e));
                }
            }
        }
    }
}

/// A corrupt entry key, as a store error.
fn corrupt(store: &str, raw: &[u8]) -> Error {
    Error::store(
        store,
        format!(
            "an entry key of {} bytes that is not an encoded key",
            raw.len()
        ),
    )
}

/// The RocksDB instance of a window or session store and its time segments.
struct Segmented {
    name: String,
    path: PathBuf,
    db: DB,
    opts: Options,
    read: ReadOptions,
    write: WriteOptions,
    retention_ms: i64,
    interval: i64,
    observed: i64,
    /// The live segments: id -> column family name.
    segments: BTreeMap<i64, String>,
    /// The key of the entry being written, reused.
    buf: Vec<u8>,
    /// The key of the entry being read, reused (reads take `&self`).
    read_buf: RefCell<Vec<u8>>,
}

impl Segmented {
    fn open(name: String, path: PathBuf, retention_ms: i64) -> Result<Self> {
        check_retention(&name, retention_ms)?;
        create_dir(&path)?;
        let opts = options();
        let families = if path.join("CURRENT").exists() {
            DB::list_cf(&opts, &path).map_err(engine(&name))?
        } else {
            Vec::new()
        };
        let db = DB::open_cf(&opts, &path, &families).map_err(engine(&name))?;
        let mut segments = BTreeMap::new();
        for family in families {
            if let Some(id) = family
                .strip_prefix(SEGMENT_PREFIX)
                .and_then(|id| id.parse::<i64>().ok())
            {
                segments.insert(id, family);
            }
        }
        let read = ReadOptions::default();
        let meta = |key: &[u8]| -> Result<Option<[u8; 8]>> {
            let value = db.get_pinned_opt(key, &read).map_err(engine(&name))?;
            value
                .map(|v| {
                    <[u8; 8]>::try_from(&v[..]).map_err(|_| {
                        Error::store(
                            &name,
                            format!(
                                "{} holds {} bytes, not 8",
                                String::from_utf8_lossy(key),
                                v.len()
                            ),
                        )
                    })
                })
                .transpose()
        };
        let configured = segment_interval(retention_ms);
        let interval = match meta(META_INTERVAL)? {
            Some(stored) => {
                let stored = i64::from_be_bytes(stored);
                if stored <= 0 {
                    return Err(Error::store(
                        &name,
                        format!("a stored segment interval of {stored} ms"),
                    ));
                }
                if stored != configured {
                    tracing::info!(
                        store = %name, stored, configured,
                        "keeping the segment interval the store was created with"
                    );
                }
                stored
            }
            None => {
                db.put_opt(META_INTERVAL, configured.to_be_bytes(), &write_options())
                    .map_err(engine(&name))?;
                configured
            }
        };
        let observed = meta(META_STREAM_TIME)?.map_or(NO_STREAM_TIME, i64::from_be_bytes);
        Ok(Self {
            name,
            path,
            db,
            opts,
            read,
            write: write_options(),
            retention_ms,
            interval,
            observed,
            segments,
            buf: Vec::new(),
            read_buf: RefCell::new(Vec::new()),
        })
    }

    fn segment_id(&self, time: i64) -> i64 {
        time.div_euclid(self.interval)
    }

    fn min_live(&self) -> i64 {
        min_live_time(self.observed, self.retention_ms)
    }

    /// Moves stream time to `stream_time` (never back) and drops every segment all of whose
    /// times are now expired.
    fn advance(&mut self, stream_time: i64) -> Result<()> {
        if stream_time <= self.observed {
            return Ok(());
        }
        self.observed = stream_time;
        let first_live = self.segment_id(self.min_live());
        while let Some(entry) = self.segments.first_entry() {
            if *entry.key() >= first_live {
                break;
            }
            let (id, family) = entry.remove_entry();
            tracing::debug!(store = %self.name, segment = id, "dropping an expired segment");
            self.db.drop_cf(&family).map_err(engine(&self.name))?;
        }
        Ok(())
    }

    fn family(&self, family: &str) -> Result<&ColumnFamily> {
        self.db
            .cf_handle(family)
            .ok_or_else(|| Error::store(&self.name, format!("column family {family} is not open")))
    }

    /// The id of the segment a write at `time` goes to (created if needed), or `None` when
    /// `time` is expired.
    fn segment_for_write(&mut self, time: i64) -> Result<Option<i64>> {
        if time < self.min_live() {
            return Ok(None);
        }
        let id = self.segment_id(time);
        if !self.segments.contains_key(&id) {
            let family = format!("{SEGMENT_PREFIX}{id}");
            self.db
                .create_cf(&family, &self.opts)
                .map_err(engine(&self.name))?;
            self.segments.insert(id, family);
        }
        Ok(Some(id))
    }

    /// The live segment holding `time`, if any.
    fn segment_for_read(&self, time: i64) -> Result<Option<&ColumnFamily>> {
        if time < self.min_live() {
            return Ok(None);
        }
        match self.segments.get(&self.segment_id(time)) {
            Some(family) => self.family(family).map(Some),
            None => Ok(None),
        }
    }

    /// Writes (or deletes, `None`) the entry whose encoded key is in `self.buf`, in the
    /// segment of `time`; nothing when `time` is expired.
    fn write_buffered(&mut self, time: i64, value: Option<&[u8]>) -> Result<()> {
        let id = match value {
            Some(_) => self.segment_for_write(time)?,
            // A delete needs no new segment.
            None => self.segment_for_read(time)?.map(|_| self.segment_id(time)),
        };
        let Some(family) = id.and_then(|id| self.segments.get(&id)) else {
            tracing::debug!(store = %self.name, time, "skipping a write for an expired segment");
            return Ok(());
        };
        let family = self.family(family)?;
        match value {
            Some(value) => self.db.put_cf_opt(family, &self.buf, value, &self.write),
            None => self.db.delete_cf_opt(family, &self.buf, &self.write),
        }
        .map_err(engine(&self.name))
    }

    /// The value of the entry whose encoded key `encode` writes, in the segment of `time`.
    fn get(&self, time: i64, encode: impl FnOnce(&mut Vec<u8>)) -> Result<Option<Bytes>> {
        let Some(family) = self.segment_for_read(time)? else {
            return Ok(None);
        };
        let mut buf = self.read_buf.borrow_mut();
        buf.clear();
        encode(&mut buf);
        let value = self
            .db
            .get_pinned_cf_opt(family, &buf[..], &self.read)
            .map_err(engine(&self.name))?;
        Ok(value.map(|v| Bytes::copy_from_slice(&v)))
    }

    /// A scan of the live segments with ids in `[first, last]`, each from `lower` (or its
    /// start) up to `upper` (exclusive, or its end).
    fn scan<'a, T>(
        &'a self,
        first: i64,
        last: i64,
        lower: Option<Vec<u8>>,
        upper: Option<Vec<u8>>,
        merge: bool,
        decode: Decode<'a, T>,
    ) -> Result<Box<dyn Iterator<Item = Result<T>> + 'a>>
    where
        T: 'a,
    {
        if first > last {
            return Ok(empty_iter());
        }
        let mut cursors = Vec::new();
        for family in self.segments.range(first..=last).map(|(_, f)| f) {
            let mut read = ReadOptions::default();
            if let Some(upper) = &upper {
                read.set_iterate_upper_bound(upper.clone());
            }
            let mut cursor = self.db.raw_iterator_cf_opt(self.family(family)?, read);
            match &lower {
                Some(lower) => cursor.seek(lower),
                None => cursor.seek_to_first(),
            }
            cursors.push(cursor);
        }
        Ok(Box::new(SegmentScan {
            cursors,
            merge,
            decode,
            store: &self.name,
            failed: false,
        }))
    }

    /// Makes every write durable: the memtables of every segment flushed to files, and the
    /// stream time recorded.
    fn flush(&mut self, extra_meta: Option<(&[u8], &[u8])>) -> Result<()> {
        self.db
            .put_opt(META_STREAM_TIME, self.observed.to_be_bytes(), &self.write)
            .map_err(engine(&self.name))?;
        if let Some((key, value)) = extra_meta {
            self.db
                .put_opt(key, value, &self.write)
                .map_err(engine(&self.name))?;
        }
        let mut families = Vec::with_capacity(self.segments.len());
        for family in self.segments.values() {
            families.push(self.family(family)?);
        }
        let mut flush = FlushOptions::default();
        flush.set_wait(true);
        self.db.flush_opt(&flush).map_err(engine(&self.name))?;
        if !families.is_empty() {
            self.db
                .flush_cfs_opt(&families, &flush)
                .map_err(engine(&self.name))?;
        }
        Ok(())
    }
}

impl std::fmt::Debug for Segmented {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Segmented")
            .field("name", &self.name)
            .field("path", &self.path)
            .field("retention_ms", &self.retention_ms)
            .field("interval", &self.interval)
            .field("observed", &self.observed)
            .field("segments", &self.segments.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// A window store in RocksDB, time-segmented (see the module's documentation).
#[derive(Debug)]
pub struct RocksWindowStore {
    seg: Segmented,
    retain_duplicates: bool,
    seqnum: u32,
}

impl RocksWindowStore {
    /// Opens (creating it if needed) the window store `name` in the directory `path`, keeping
    /// windows `retention_ms` behind stream time; with `retain_duplicates`, every put of the
    /// same key and window is kept. A negative retention is an error.
    pub fn open(
        name: impl Into<String>,
        path: impl Into<PathBuf>,
        retention_ms: i64,
        retain_duplicates: bool,
    ) -> Result<Self> {
        let seg = Segmented::open(name.into(), path.into(), retention_ms)?;
        let seqnum = match seg
            .db
            .get_pinned_opt(META_SEQNUM, &seg.read)
            .map_err(engine(&seg.name))?
        {
            Some(v) => u32::from_be_bytes(<[u8; 4]>::try_from(&v[..]).map_err(|_| {
                Error::store(
                    &seg.name,
                    format!("next.seqnum holds {} bytes, not 4", v.len()),
                )
            })?),
            None => 0,
        };
        Ok(Self {
            seg,
            retain_duplicates,
            seqnum,
        })
    }

    /// The store's directory.
    pub fn path(&self) -> &Path {
        &self.seg.path
    }

    /// The ids of the live time segments (one column family each), oldest first.
    pub fn segment_ids(&self) -> Vec<i64> {
        self.seg.segments.keys().copied().collect()
    }

    /// The segment interval in ms.
    pub fn segment_interval_ms(&self) -> i64 {
        self.seg.interval
    }

    fn encode(buf: &mut Vec<u8>, key: &[u8], start: i64, seqnum: u32) {
        push_key(buf, key);
        push_time(buf, start);
        buf.extend_from_slice(&seqnum.to_be_bytes());
    }

    /// Decodes `[key][start][seqnum]` into `(key, start)`.
    fn decode(raw: &[u8]) -> Option<(Bytes, i64)> {
        let (key, rest) = split_key(raw)?;
        if rest.len() != 12 {
            return None;
        }
        Some((key, read_time(rest)?))
    }

    /// The start of an entry of a known key (its encoded length `key_len`).
    fn start_of(raw: &[u8], key_len: usize) -> Option<i64> {
        let rest = raw.get(key_len..)?;
        if rest.len() != 12 {
            return None;
        }
        read_time(rest)
    }

    /// Entries of keys in `[key_from, key_to]` (all keys when `None`) with a start in
    /// `[time_from, time_to]`, merged across segments.
    fn scan_keys(
        &self,
        keys: Option<(&[u8], &[u8])>,
        time_from: i64,
        time_to: i64,
    ) -> Result<WindowIter<'_>> {
        let time_from = time_from.max(self.seg.min_live());
        if time_from > time_to {
            return Ok(empty_iter());
        }
        let (lower, upper) = match keys {
            Some((from, to)) => {
                if from > to {
                    return Ok(empty_iter());
                }
                let mut lower = Vec::with_capacity(from.len() + 14);
                Self::encode(&mut lower, from, time_from, 0);
                (Some(lower), Some(key_upper_bound(to)))
            }
            None => (None, None),
        };
        let store = self.seg.name.as_str();
        let decode: Decode<'_, (Bytes, i64, Bytes)> = Box::new(move |raw, value| {
            let (key, start) = Self::decode(raw).ok_or_else(|| corrupt(store, raw))?;
            Ok((time_from..=time_to)
                .contains(&start)
                .then(|| (key, start, Bytes::copy_from_slice(value))))
        });
        self.seg.scan(
            self.seg.segment_id(time_from),
            self.seg.segment_id(time_to),
            lower,
            upper,
            true,
            decode,
        )
    }
}

impl StateStore for RocksWindowStore {
    fn name(&self) -> &str {
        &self.seg.name
    }
    fn persistent(&self) -> bool {
        true
    }
    fn flush(&mut self) -> Result<()> {
        let seqnum = self.seqnum.to_be_bytes();
        let extra = self.retain_duplicates.then_some((META_SEQNUM, &seqnum[..]));
        self.seg.flush(extra)
    }
}

impl WindowStore for RocksWindowStore {
    fn put(&mut self, key: &[u8], window_start: i64, value: Option<&[u8]>) -> Result<()> {
        self.seg.advance(window_start)?;
        let seqnum = if self.retain_duplicates {
            if value.is_none() {
                return Ok(());
            }
            let seqnum = self.seqnum;
            self.seqnum = self.seqnum.wrapping_add(1);
            seqnum
        } else {
            0
        };
        self.seg.buf.clear();
        Self::encode(&mut self.seg.buf, key, window_start, seqnum);
        self.seg.write_buffered(window_start, value)
    }

    fn fetch(&self, key: &[u8], window_start: i64) -> Result<Option<Bytes>> {
        if !self.retain_duplicates {
            return self
                .seg
                .get(window_start, |buf| Self::encode(buf, key, window_start, 0));
        }
        let mut first = self.fetch_range(key, window_start, window_start)?;
        first.next().map(|e| e.map(|(_, _, v)| v)).transpose()
    }

    fn fetch_range(&self, key: &[u8], time_from: i64, time_to: i64) -> Result<WindowIter<'_>> {
        let time_from = time_from.max(self.seg.min_live());
        if time_from > time_to {
            return Ok(empty_iter());
        }
        let mut lower = Vec::with_capacity(key.len() + 14);
        Self::encode(&mut lower, key, time_from, 0);
        let key_len = lower.len() - 12;
        let upper = if time_to == i64::MAX {
            key_upper_bound(key)
        } else {
            let mut upper = Vec::with_capacity(lower.len());
            Self::encode(&mut upper, key, time_to + 1, 0);
            upper
        };
        let key = Bytes::copy_from_slice(key);
        let store = self.seg.name.as_str();
        let decode: Decode<'_, (Bytes, i64, Bytes)> = Box::new(move |raw, value| {
            let start = Self::start_of(raw, key_len).ok_or_else(|| corrupt(store, raw))?;
            Ok(Some((key.clone(), start, Bytes::copy_from_slice(value))))
        });
        // Segments hold disjoint time ranges: one after the other is by start.
        self.seg.scan(
            self.seg.segment_id(time_from),
            self.seg.segment_id(time_to),
            Some(lower),
            Some(upper),
            false,
            decode,
        )
    }

    fn fetch_keys(
        &self,
        key_from: &[u8],
        key_to: &[u8],
        time_from: i64,
        time_to: i64,
    ) -> Result<WindowIter<'_>> {
        self.scan_keys(Some((key_from, key_to)), time_from, time_to)
    }

    fn fetch_all(&self, time_from: i64, time_to: i64) -> Result<WindowIter<'_>> {
        self.scan_keys(None, time_from, time_to)
    }

    fn all(&self) -> Result<WindowIter<'_>> {
        self.scan_keys(None, i64::MIN, i64::MAX)
    }

    fn observe_stream_time(&mut self, stream_time: i64) -> Result<()> {
        self.seg.advance(stream_time)
    }

    fn retention_ms(&self) -> i64 {
        self.seg.retention_ms
    }
}

/// A session store in RocksDB, segmented by session end (see the module's documentation).
#[derive(Debug)]
pub struct RocksSessionStore {
    seg: Segmented,
}

impl RocksSessionStore {
    /// Opens (creating it if needed) the session store `name` in the directory `path`, keeping
    /// sessions `retention_ms` behind stream time (by their end). A negative retention is an
    /// error.
    pub fn open(
        name: impl Into<String>,
        path: impl Into<PathBuf>,
        retention_ms: i64,
    ) -> Result<Self> {
        Ok(Self {
            seg: Segmented::open(name.into(), path.into(), retention_ms)?,
        })
    }

    /// The store's directory.
    pub fn path(&self) -> &Path {
        &self.seg.path
    }

    /// The ids of the live time segments (one column family each), oldest first.
    pub fn segment_ids(&self) -> Vec<i64> {
        self.seg.segments.keys().copied().collect()
    }

    fn encode(buf: &mut Vec<u8>, key: &[u8], start: i64, end: i64) {
        push_key(buf, key);
        push_time(buf, end);
        push_time(buf, start);
    }

    /// Decodes `[end][start]`.
    fn times(rest: &[u8]) -> Option<(i64, i64)> {
        if rest.len() != 16 {
            return None;
        }
        Some((read_time(rest)?, read_time(&rest[8..])?))
    }

    /// The sessions of `key` with `end >= earliest_end` and `start <= latest_start`.
    fn of_key(&self, key: &[u8], earliest_end: i64, latest_start: i64) -> Result<SessionIter<'_>> {
        let earliest_end = earliest_end.max(self.seg.min_live());
        let mut lower = Vec::with_capacity(key.len() + 18);
        Self::encode(&mut lower, key, i64::MIN, earliest_end);
        let key_len = lower.len() - 16;
        let key = Bytes::copy_from_slice(key);
        let upper = key_upper_bound(&key);
        let store = self.seg.name.as_str();
        let decode: Decode<'_, (Bytes, i64, i64, Bytes)> = Box::new(move |raw, value| {
            let (end, start) = raw
                .get(key_len..)
                .and_then(Self::times)
                .ok_or_else(|| corrupt(store, raw))?;
            Ok((start <= latest_start)
                .then(|| (key.clone(), start, end, Bytes::copy_from_slice(value))))
        });
        // Segments hold disjoint ranges of ends: one after the other is by end.
        self.seg.scan(
            self.seg.segment_id(earliest_end),
            i64::MAX,
            Some(lower),
            Some(upper),
            false,
            decode,
        )
    }
}

impl StateStore for RocksSessionStore {
    fn name(&self) -> &str {
        &self.seg.name
    }
    fn persistent(&self) -> bool {
        true
    }
    fn flush(&mut self) -> Result<()> {
        self.seg.flush(None)
    }
}

impl SessionStore for RocksSessionStore {
    fn put(&mut self, key: &[u8], start: i64, end: i64, value: &[u8]) -> Result<()> {
        check_session(&self.seg.name, start, end)?;
        self.seg.advance(end)?;
        self.seg.buf.clear();
        Self::encode(&mut self.seg.buf, key, start, end);
        self.seg.write_buffered(end, Some(value))
    }

    fn remove(&mut self, key: &[u8], start: i64, end: i64) -> Result<()> {
        self.seg.buf.clear();
        Self::encode(&mut self.seg.buf, key, start, end);
        self.seg.write_buffered(end, None)
    }

    fn fetch_session(&self, key: &[u8], start: i64, end: i64) -> Result<Option<Bytes>> {
        self.seg.get(end, |buf| Self::encode(buf, key, start, end))
    }

    fn find_sessions(
        &self,
        key: &[u8],
        earliest_session_end: i64,
        latest_session_start: i64,
    ) -> Result<SessionIter<'_>> {
        self.of_key(key, earliest_session_end, latest_session_start)
    }

    fn fetch(&self, key: &[u8]) -> Result<SessionIter<'_>> {
        self.of_key(key, i64::MIN, i64::MAX)
    }

    fn all(&self) -> Result<SessionIter<'_>> {
        let min_live = self.seg.min_live();
        let store = self.seg.name.as_str();
        let decode: Decode<'_, (Bytes, i64, i64, Bytes)> = Box::new(move |raw, value| {
            let (key, rest) = split_key(raw).ok_or_else(|| corrupt(store, raw))?;
            let (end, start) = Self::times(rest).ok_or_else(|| corrupt(store, raw))?;
            Ok((end >= min_live).then(|| (key, start, end, Bytes::copy_from_slice(value))))
        });
        self.seg.scan(i64::MIN, i64::MAX, None, None, true, decode)
    }

    fn observe_stream_time(&mut self, stream_time: i64) -> Result<()> {
        self.seg.advance(stream_time)
    }

    fn retention_ms(&self) -> i64 {
        self.seg.retention_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(key: &[u8]) -> Vec<u8> {
        let mut buf = Vec::new();
        push_key(&mut buf, key);
        buf
    }

    #[test]
    fn escaped_keys_keep_byte_order_and_are_prefix_free() {
        let keys: [&[u8]; 9] = [
            &[],
            &[0x00],
            &[0x00, 0x00],
            &[0x00, 0x01],
            &[0x01],
            &[0x01, 0x00],
            &[0x01, 0x00, 0xff],
            &[0x01, 0xff],
            &[0x02],
        ];
        for pair in keys.windows(2) {
            let (a, b) = (encoded(pair[0]), encoded(pair[1]));
            assert!(a < b, "{:?} < {:?}", pair[0], pair[1]);
            assert!(!b.starts_with(&a), "{:?} is a prefix of {:?}", a, b);
        }
        for key in keys {
            let mut raw = encoded(key);
            raw.extend_from_slice(b"rest");
            let (decoded, rest) = split_key(&raw).unwrap_or_default();
            assert_eq!((&decoded[..], rest), (key, &b"rest"[..]));
        }
        assert_eq!(encoded(b"abc"), b"abc\x00\x00");
    }

    #[test]
    fn bad_encodings_are_refused() {
        assert!(split_key(b"abc").is_none(), "no terminator");
        assert!(
            split_key(b"ab\x00\x05").is_none(),
            "0x00 then neither 0x00 nor 0xff"
        );
        assert!(split_key(b"ab\x00").is_none(), "cut after 0x00");
    }

    #[test]
    fn times_sort_as_numbers() {
        let times = [i64::MIN, -1_000, -1, 0, 1, 1_000, i64::MAX];
        let enc: Vec<Vec<u8>> = times
            .iter()
            .map(|&t| {
                let mut buf = Vec::new();
                push_time(&mut buf, t);
                assert_eq!(read_time(&buf), Some(t));
                buf
            })
            .collect();
        assert!(enc.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn prefix_successors() {
        assert_eq!(prefix_successor(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_successor(b"a\xff\xff"), Some(b"b".to_vec()));
        assert_eq!(prefix_successor(b"\xff\xff"), None);
        assert_eq!(prefix_successor(b""), None);
    }

    #[test]
    fn intervals_follow_kafka() {
        assert_eq!(segment_interval(0), 60_000);
        assert_eq!(segment_interval(100_000), 60_000);
        assert_eq!(segment_interval(86_400_000), 43_200_000);
    }
}
