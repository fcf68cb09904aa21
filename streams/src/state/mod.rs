//! State stores: what a processor keeps between records.
//!
//! Stores hold bytes (the serdes of the topology turn keys and values into bytes at their
//! edge), so that one engine serves every type, and what is written is exactly what goes to
//! the store's changelog topic. Three kinds, as in Kafka Streams:
//!
//! - [`KeyValueStore`]: a sorted map of keys to values.
//! - [`WindowStore`]: values per key and window start time, dropped once older than the
//!   store's retention behind stream time.
//! - [`SessionStore`]: values per key and session (start, end), found by overlap.
//!
//! Each has a RocksDB engine ([`rocks`]) and an in-memory engine ([`memory`]), both checked by
//! one shared test suite. In front of a store may sit a write-back record cache ([`cache`]);
//! behind it, a changelogging layer ([`changelog`]) that collects each write for the store's
//! changelog topic and applies changelog records when the store is restored.

use std::path::{Path, PathBuf};

use bytes::Bytes;

use crate::error::{Error, Result};

pub mod cache;
pub mod changelog;
pub mod checkpoint;
pub mod memory;
pub mod rocks;

/// An iterator over `(key, value)` entries of a key-value store, in key byte order.
pub type KeyValueIter<'a> = Box<dyn Iterator<Item = Result<(Bytes, Bytes)>> + 'a>;

/// An iterator over `(key, window start, value)` entries of a window store, ordered by key,
/// then window start (then insertion order, for duplicates).
pub type WindowIter<'a> = Box<dyn Iterator<Item = Result<(Bytes, i64, Bytes)>> + 'a>;

/// An iterator over `(key, session start, session end, value)` entries of a session store,
/// ordered by key, then session end, then session start.
pub type SessionIter<'a> = Box<dyn Iterator<Item = Result<(Bytes, i64, i64, Bytes)>> + 'a>;

/// What every store is.
pub trait StateStore: Send {
    /// The store's name (unique in a topology; its changelog topic is
    /// `<application.id>-<name>-changelog`).
    fn name(&self) -> &str;
    /// Whether the store keeps its data on disk (RocksDB) across a restart of the process.
    fn persistent(&self) -> bool;
    /// Makes every write so far durable in the engine (RocksDB: a WAL-less flush of the
    /// memtable is not needed; writes are made visible and the engine's buffers written).
    fn flush(&mut self) -> Result<()>;
}

/// A sorted map from keys to values, both bytes.
pub trait KeyValueStore: StateStore {
    /// The value of `key`, if any.
    fn get(&self, key: &[u8]) -> Result<Option<Bytes>>;
    /// Sets `key` to `value`.
    fn put(&mut self, key: &[u8], value: &[u8]) -> Result<()>;
    /// Removes `key`, returning the value it had.
    fn delete(&mut self, key: &[u8]) -> Result<Option<Bytes>>;
    /// Entries with `from <= key <= to` (both inclusive, as Kafka's `range`), in key order;
    /// empty when `from > to`.
    fn range(&self, from: &[u8], to: &[u8]) -> Result<KeyValueIter<'_>>;
    /// Entries whose key starts with `prefix`, in key order.
    fn prefix_scan(&self, prefix: &[u8]) -> Result<KeyValueIter<'_>>;
    /// Every entry, in key order.
    fn all(&self) -> Result<KeyValueIter<'_>>;
    /// The number of entries, exact for the in-memory engine, RocksDB's estimate otherwise.
    fn approximate_num_entries(&self) -> Result<u64>;
    /// Applies `entries` in order (`Some` puts, `None` deletes) as one write where the engine
    /// can (RocksDB: one `WriteBatch`). Restoring from a changelog and flushing a record cache
    /// go through it. The default applies them one by one.
    fn write_batch(&mut self, entries: &[(Bytes, Option<Bytes>)]) -> Result<()> {
        for (key, value) in entries {
            match value {
                Some(value) => self.put(key, value)?,
                None => {
                    self.delete(key)?;
                }
            }
        }
        Ok(())
    }
}

/// Values per key and window start.
pub trait WindowStore: StateStore {
    /// Sets the value of `key` in the window starting at `window_start`; `None` removes it.
    /// A store that retains duplicates (a stream-stream join's) keeps every put of the same
    /// key and window, in order, and ignores `None`. A put for a window already older than
    /// the retention (behind the stream time the store observed) is dropped.
    fn put(&mut self, key: &[u8], window_start: i64, value: Option<&[u8]>) -> Result<()>;
    /// The value of `key` in the window starting at `window_start` (the first one, when
    /// duplicates are retained).
    fn fetch(&self, key: &[u8], window_start: i64) -> Result<Option<Bytes>>;
    /// The windows of `key` with `time_from <= start <= time_to`, by start.
    fn fetch_range(&self, key: &[u8], time_from: i64, time_to: i64) -> Result<WindowIter<'_>>;
    /// The windows of keys in `[key_from, key_to]` with `time_from <= start <= time_to`.
    fn fetch_keys(
        &self,
        key_from: &[u8],
        key_to: &[u8],
        time_from: i64,
        time_to: i64,
    ) -> Result<WindowIter<'_>>;
    /// Every window with `time_from <= start <= time_to`.
    fn fetch_all(&self, time_from: i64, time_to: i64) -> Result<WindowIter<'_>>;
    /// Every window the store holds.
    fn all(&self) -> Result<WindowIter<'_>>;
    /// Tells the store how far stream time has come: windows that started more than the
    /// retention before it are dropped (RocksDB: whole time segments at once).
    fn observe_stream_time(&mut self, stream_time: i64) -> Result<()>;
    /// How long windows are kept behind stream time, in ms.
    fn retention_ms(&self) -> i64;
}

/// Values per key and session `[start, end]`.
pub trait SessionStore: StateStore {
    /// Sets the value of the session of `key` spanning `[start, end]`.
    fn put(&mut self, key: &[u8], start: i64, end: i64, value: &[u8]) -> Result<()>;
    /// Removes the session of `key` spanning exactly `[start, end]`.
    fn remove(&mut self, key: &[u8], start: i64, end: i64) -> Result<()>;
    /// The value of the session of `key` spanning exactly `[start, end]`.
    fn fetch_session(&self, key: &[u8], start: i64, end: i64) -> Result<Option<Bytes>>;
    /// Sessions of `key` with `end >= earliest_session_end` and
    /// `start <= latest_session_start`: those a record at time t with inactivity gap g merges
    /// with are found with `(t - g, t + g)`.
    fn find_sessions(
        &self,
        key: &[u8],
        earliest_session_end: i64,
        latest_session_start: i64,
    ) -> Result<SessionIter<'_>>;
    /// Every session of `key`.
    fn fetch(&self, key: &[u8]) -> Result<SessionIter<'_>>;
    /// Every session the store holds.
    fn all(&self) -> Result<SessionIter<'_>>;
    /// Sessions that ended more than the retention before `stream_time` are dropped.
    fn observe_stream_time(&mut self, stream_time: i64) -> Result<()>;
    /// How long sessions are kept behind stream time, in ms.
    fn retention_ms(&self) -> i64;
}

impl<S: StateStore + ?Sized> StateStore for Box<S> {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn persistent(&self) -> bool {
        (**self).persistent()
    }
    fn flush(&mut self) -> Result<()> {
        (**self).flush()
    }
}

impl<S: KeyValueStore + ?Sized> KeyValueStore for Box<S> {
    fn get(&self, key: &[u8]) -> Result<Option<Bytes>> {
        (**self).get(key)
    }
    fn put(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        (**self).put(key, value)
    }
    fn delete(&mut self, key: &[u8]) -> Result<Option<Bytes>> {
        (**self).delete(key)
    }
    fn range(&self, from: &[u8], to: &[u8]) -> Result<KeyValueIter<'_>> {
        (**self).range(from, to)
    }
    fn prefix_scan(&self, prefix: &[u8]) -> Result<KeyValueIter<'_>> {
        (**self).prefix_scan(prefix)
    }
    fn all(&self) -> Result<KeyValueIter<'_>> {
        (**self).all()
    }
    fn approximate_num_entries(&self) -> Result<u64> {
        (**self).approximate_num_entries()
    }
    fn write_batch(&mut self, entries: &[(Bytes, Option<Bytes>)]) -> Result<()> {
        (**self).write_batch(entries)
    }
}

impl<S: WindowStore + ?Sized> WindowStore for Box<S> {
    fn put(&mut self, key: &[u8], window_start: i64, value: Option<&[u8]>) -> Result<()> {
        (**self).put(key, window_start, value)
    }
    fn fetch(&self, key: &[u8], window_start: i64) -> Result<Option<Bytes>> {
        (**self).fetch(key, window_start)
    }
    fn fetch_range(&self, key: &[u8], time_from: i64, time_to: i64) -> Result<WindowIter<'_>> {
        (**self).fetch_range(key, time_from, time_to)
    }
    fn fetch_keys(
        &self,
        key_from: &[u8],
        key_to: &[u8],
        time_from: i64,
        time_to: i64,
    ) -> Result<WindowIter<'_>> {
        (**self).fetch_keys(key_from, key_to, time_from, time_to)
    }
    fn fetch_all(&self, time_from: i64, time_to: i64) -> Result<WindowIter<'_>> {
        (**self).fetch_all(time_from, time_to)
    }
    fn all(&self) -> Result<WindowIter<'_>> {
        (**self).all()
    }
    fn observe_stream_time(&mut self, stream_time: i64) -> Result<()> {
        (**self).observe_stream_time(stream_time)
    }
    fn retention_ms(&self) -> i64 {
        (**self).retention_ms()
    }
}

impl<S: SessionStore + ?Sized> SessionStore for Box<S> {
    fn put(&mut self, key: &[u8], start: i64, end: i64, value: &[u8]) -> Result<()> {
        (**self).put(key, start, end, value)
    }
    fn remove(&mut self, key: &[u8], start: i64, end: i64) -> Result<()> {
        (**self).remove(key, start, end)
    }
    fn fetch_session(&self, key: &[u8], start: i64, end: i64) -> Result<Option<Bytes>> {
        (**self).fetch_session(key, start, end)
    }
    fn find_sessions(
        &self,
        key: &[u8],
        earliest_session_end: i64,
        latest_session_start: i64,
    ) -> Result<SessionIter<'_>> {
        (**self).find_sessions(key, earliest_session_end, latest_session_start)
    }
    fn fetch(&self, key: &[u8]) -> Result<SessionIter<'_>> {
        (**self).fetch(key)
    }
    fn all(&self) -> Result<SessionIter<'_>> {
        (**self).all()
    }
    fn observe_stream_time(&mut self, stream_time: i64) -> Result<()> {
        (**self).observe_stream_time(stream_time)
    }
    fn retention_ms(&self) -> i64 {
        (**self).retention_ms()
    }
}

/// Which engine keeps a store's data (Kafka Streams' `default.dsl.store`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Engine {
    /// RocksDB, on disk under the state directory ([`rocks`]).
    #[default]
    RocksDb,
    /// `BTreeMap`s in memory, restored from the changelog at each start ([`memory`]).
    InMemory,
}

impl std::str::FromStr for Engine {
    type Err = Error;

    /// Kafka's values, `rocksDB` and `in_memory`, in any case (`in-memory` too).
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "rocksdb" => Ok(Engine::RocksDb),
            "in_memory" | "in-memory" => Ok(Engine::InMemory),
            _ => Err(Error::config(
                "default.dsl.store",
                format!("{s:?} is not a store engine: rocksDB or in_memory"),
            )),
        }
    }
}

/// A store's kind, with what the kind needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    /// A [`KeyValueStore`].
    KeyValue,
    /// A [`WindowStore`].
    Window {
        /// How long windows are kept behind stream time, in ms.
        retention_ms: i64,
        /// Whether every put of the same key and window is kept (a stream-stream join's).
        retain_duplicates: bool,
    },
    /// A [`SessionStore`].
    Session {
        /// How long sessions are kept behind stream time, in ms.
        retention_ms: i64,
    },
}

impl StoreKind {
    fn describe(&self) -> &'static str {
        match self {
            StoreKind::KeyValue => "a key-value store",
            StoreKind::Window { .. } => "a window store",
            StoreKind::Session { .. } => "a session store",
        }
    }
}

/// What a topology says of a store: its name, kind and engine; [`open_key_value`],
/// [`open_window`] and [`open_session`] open it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreSpec {
    /// The store's name, unique in the topology.
    pub name: String,
    /// Its kind.
    pub kind: StoreKind,
    /// Its engine.
    pub engine: Engine,
}

impl StoreSpec {
    /// A key-value store.
    pub fn key_value(name: impl Into<String>, engine: Engine) -> Self {
        Self {
            name: name.into(),
            kind: StoreKind::KeyValue,
            engine,
        }
    }

    /// A window store.
    pub fn window(
        name: impl Into<String>,
        engine: Engine,
        retention_ms: i64,
        retain_duplicates: bool,
    ) -> Self {
        Self {
            name: name.into(),
            kind: StoreKind::Window {
                retention_ms,
                retain_duplicates,
            },
            engine,
        }
    }

    /// A session store.
    pub fn session(name: impl Into<String>, engine: Engine, retention_ms: i64) -> Self {
        Self {
            name: name.into(),
            kind: StoreKind::Session { retention_ms },
            engine,
        }
    }

    /// The store's changelog topic in the application `application_id`.
    pub fn changelog_topic(&self, application_id: &str) -> String {
        changelog::changelog_topic(application_id, &self.name)
    }

    fn wrong_kind(&self, wanted: &str) -> Error {
        Error::store(
            &self.name,
            format!("is {}, opened as {wanted}", self.kind.describe()),
        )
    }
}

/// The directory of a RocksDB store, as Kafka Streams lays it out:
/// `<state.dir>/<application.id>/<task id>/rocksdb/<store name>`.
pub fn store_dir(state_dir: &Path, application_id: &str, task_id: &str, store: &str) -> PathBuf {
    state_dir
        .join(application_id)
        .join(task_id)
        .join("rocksdb")
        .join(store)
}

/// Opens the key-value store `spec` describes; `dir` is its directory (see [`store_dir`]),
/// unused in memory. A spec of another kind is an error naming the store.
pub fn open_key_value(spec: &StoreSpec, dir: &Path) -> Result<Box<dyn KeyValueStore>> {
    if spec.kind != StoreKind::KeyValue {
        return Err(spec.wrong_kind("a key-value store"));
    }
    Ok(match spec.engine {
        Engine::RocksDb => Box::new(rocks::RocksKeyValueStore::open(&spec.name, dir)?),
        Engine::InMemory => Box::new(memory::MemoryKeyValueStore::new(&spec.name)),
    })
}

/// Opens the window store `spec` describes; `dir` is its directory (see [`store_dir`]),
/// unused in memory. A spec of another kind is an error naming the store.
pub fn open_window(spec: &StoreSpec, dir: &Path) -> Result<Box<dyn WindowStore>> {
    let StoreKind::Window {
        retention_ms,
        retain_duplicates,
    } = spec.kind
    else {
        return Err(spec.wrong_kind("a window store"));
    };
    Ok(match spec.engine {
        Engine::RocksDb => Box::new(rocks::RocksWindowStore::open(
            &spec.name,
            dir,
            retention_ms,
            retain_duplicates,
        )?),
        Engine::InMemory => Box::new(memory::MemoryWindowStore::new(
            &spec.name,
            retention_ms,
            retain_duplicates,
        )?),
    })
}

/// Opens the session store `spec` describes; `dir` is its directory (see [`store_dir`]),
/// unused in memory. A spec of another kind is an error naming the store.
pub fn open_session(spec: &StoreSpec, dir: &Path) -> Result<Box<dyn SessionStore>> {
    let StoreKind::Session { retention_ms } = spec.kind else {
        return Err(spec.wrong_kind("a session store"));
    };
    Ok(match spec.engine {
        Engine::RocksDb => Box::new(rocks::RocksSessionStore::open(
            &spec.name,
            dir,
            retention_ms,
        )?),
        Engine::InMemory => Box::new(memory::MemorySessionStore::new(&spec.name, retention_ms)?),
    })
}

/// Stream time before a window or session store has observed any: nothing is expired.
pub(crate) const NO_STREAM_TIME: i64 = i64::MIN;

/// The oldest time (window start, session end) still live once stream time reached
/// `observed`: as Kafka Streams, a window or session whose time is `<= observed - retention`
/// is expired, so the oldest live one is `observed - retention + 1`.
pub(crate) fn min_live_time(observed: i64, retention_ms: i64) -> i64 {
    if observed == NO_STREAM_TIME {
        NO_STREAM_TIME
    } else {
        observed.saturating_sub(retention_ms).saturating_add(1)
    }
}

/// A retention that cannot be used (negative), as a store error.
pub(crate) fn check_retention(store: &str, retention_ms: i64) -> Result<()> {
    if retention_ms < 0 {
        return Err(crate::Error::store(
            store,
            format!("retention of {retention_ms} ms: a retention is 0 ms or more"),
        ));
    }
    Ok(())
}

/// An iterator with nothing in it (a range whose bounds are reversed).
pub(crate) fn empty_iter<'a, T: 'a>() -> Box<dyn Iterator<Item = Result<T>> + 'a> {
    Box::new(std::iter::empty())
}
