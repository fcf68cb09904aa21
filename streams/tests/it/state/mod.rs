//! The state stores: one suite of cases, each generic over an [`Engine`] that opens stores, run
//! against every engine (`state::memory::kv_byte_order`, `state::rocks::kv_byte_order`...), so
//! both engines are held to the same contract.

mod cache;
mod changelog;
mod checkpoint;
mod differential;
mod kv;
mod model;
mod rocks;
mod session;
mod spec;
mod window;

use anyhow::Result;
use bytes::Bytes;
use sluice_streams::state::memory::{MemoryKeyValueStore, MemorySessionStore, MemoryWindowStore};
use sluice_streams::state::rocks::{RocksKeyValueStore, RocksSessionStore, RocksWindowStore};
use sluice_streams::state::{
    KeyValueIter, KeyValueStore, SessionIter, SessionStore, WindowIter, WindowStore,
};

/// Opens fresh stores of one engine.
pub(crate) trait Engine {
    /// A new engine, owning whatever the stores need (a temporary directory).
    fn new() -> Result<Self>
    where
        Self: Sized;
    /// An empty key-value store.
    fn kv(&self, name: &str) -> Result<Box<dyn KeyValueStore>>;
    /// An empty window store.
    fn window(
        &self,
        name: &str,
        retention_ms: i64,
        retain_duplicates: bool,
    ) -> Result<Box<dyn WindowStore>>;
    /// An empty session store.
    fn session(&self, name: &str, retention_ms: i64) -> Result<Box<dyn SessionStore>>;
}

/// The in-memory engine.
pub(crate) struct Memory;

impl Engine for Memory {
    fn new() -> Result<Self> {
        Ok(Memory)
    }
    fn kv(&self, name: &str) -> Result<Box<dyn KeyValueStore>> {
        Ok(Box::new(MemoryKeyValueStore::new(name)))
    }
    fn window(
        &self,
        name: &str,
        retention_ms: i64,
        retain_duplicates: bool,
    ) -> Result<Box<dyn WindowStore>> {
        Ok(Box::new(MemoryWindowStore::new(
            name,
            retention_ms,
            retain_duplicates,
        )?))
    }
    fn session(&self, name: &str, retention_ms: i64) -> Result<Box<dyn SessionStore>> {
        Ok(Box::new(MemorySessionStore::new(name, retention_ms)?))
    }
}

/// The RocksDB engine, each store in its own directory under a temporary one.
pub(crate) struct Rocks {
    dir: tempfile::TempDir,
}

impl Engine for Rocks {
    fn new() -> Result<Self> {
        Ok(Rocks {
            dir: tempfile::tempdir()?,
        })
    }
    fn kv(&self, name: &str) -> Result<Box<dyn KeyValueStore>> {
        Ok(Box::new(RocksKeyValueStore::open(
            name,
            self.dir.path().join(name),
        )?))
    }
    fn window(
        &self,
        name: &str,
        retention_ms: i64,
        retain_duplicates: bool,
    ) -> Result<Box<dyn WindowStore>> {
        Ok(Box::new(RocksWindowStore::open(
            name,
            self.dir.path().join(name),
            retention_ms,
            retain_duplicates,
        )?))
    }
    fn session(&self, name: &str, retention_ms: i64) -> Result<Box<dyn SessionStore>> {
        Ok(Box::new(RocksSessionStore::open(
            name,
            self.dir.path().join(name),
            retention_ms,
        )?))
    }
}

/// Key-value stores behind a small record cache (about four entries, so writes are evicted
/// too), over RocksDB; window and session stores are the RocksDB engine's.
pub(crate) struct Cached {
    rocks: Rocks,
}

/// The cache's maximum in the `Cached` engine.
pub(crate) const SMALL_CACHE: usize = 300;

impl Engine for Cached {
    fn new() -> Result<Self> {
        Ok(Cached {
            rocks: Rocks::new()?,
        })
    }
    fn kv(&self, name: &str) -> Result<Box<dyn KeyValueStore>> {
        Ok(Box::new(
            sluice_streams::state::cache::CachingKeyValueStore::new(
                self.rocks.kv(name)?,
                SMALL_CACHE,
            ),
        ))
    }
    fn window(
        &self,
        name: &str,
        retention_ms: i64,
        retain_duplicates: bool,
    ) -> Result<Box<dyn WindowStore>> {
        self.rocks.window(name, retention_ms, retain_duplicates)
    }
    fn session(&self, name: &str, retention_ms: i64) -> Result<Box<dyn SessionStore>> {
        self.rocks.session(name, retention_ms)
    }
}

/// A key-value entry as plain vectors, to compare.
pub(crate) type Kv = (Vec<u8>, Vec<u8>);
/// A window entry `(key, start, value)` as plain vectors.
pub(crate) type Win = (Vec<u8>, i64, Vec<u8>);
/// A session entry `(key, start, end, value)` as plain vectors.
pub(crate) type Sess = (Vec<u8>, i64, i64, Vec<u8>);

pub(crate) fn kvs(iter: KeyValueIter<'_>) -> Result<Vec<Kv>> {
    iter.map(|e| Ok(e.map(|(k, v)| (k.to_vec(), v.to_vec()))?))
        .collect()
}

pub(crate) fn wins(iter: WindowIter<'_>) -> Result<Vec<Win>> {
    iter.map(|e| Ok(e.map(|(k, s, v)| (k.to_vec(), s, v.to_vec()))?))
        .collect()
}

pub(crate) fn sessions(iter: SessionIter<'_>) -> Result<Vec<Sess>> {
    iter.map(|e| Ok(e.map(|(k, s, e, v)| (k.to_vec(), s, e, v.to_vec()))?))
        .collect()
}

pub(crate) fn kv(k: &[u8], v: &[u8]) -> Kv {
    (k.to_vec(), v.to_vec())
}

pub(crate) fn win(k: &[u8], start: i64, v: &[u8]) -> Win {
    (k.to_vec(), start, v.to_vec())
}

pub(crate) fn sess(k: &[u8], start: i64, end: i64, v: &[u8]) -> Sess {
    (k.to_vec(), start, end, v.to_vec())
}

pub(crate) fn bytes(v: &[u8]) -> Option<Bytes> {
    Some(Bytes::copy_from_slice(v))
}

/// One `#[test]` per case and engine: `engine_cases!(memory, Memory; kv::put_get_delete, ...)`
/// makes `memory::put_get_delete` calling `kv::put_get_delete::<Memory>()`.
macro_rules! engine_cases {
    ($module:ident, $engine:ty; $($case_mod:ident :: $case:ident),* $(,)?) => {
        mod $module {
            $(
                #[test]
                fn $case() -> anyhow::Result<()> {
                    super::$case_mod::$case::<$engine>()
                }
            )*
        }
    };
}

macro_rules! all_engine_cases {
    ($module:ident, $engine:ty) => {
        engine_cases!($module, $engine;
            kv::put_get_delete,
            kv::inclusive_ranges,
            kv::reversed_range_is_empty,
            kv::prefix_scans,
            kv::byte_order_of_keys,
            kv::write_batch_applies_in_order,
            kv::num_entries,
            window::fetch_by_key_and_time,
            window::update_and_remove,
            window::prefix_keys_do_not_interleave,
            window::fetch_keys_and_fetch_all,
            window::reversed_ranges_are_empty,
            window::ordered_across_segments,
            window::duplicates_are_kept_in_order,
            window::retention_drops_old_windows,
            window::late_puts_are_dropped,
            window::a_put_advances_stream_time,
            window::negative_retention_is_refused,
            session::put_fetch_remove,
            session::find_sessions_overlap,
            session::ordered_by_key_end_start,
            session::sessions_of_prefix_keys_stay_apart,
            session::retention_drops_old_sessions,
            session::a_session_ending_before_it_starts_is_refused,
            model::kv_agrees_with_a_btreemap,
        );
    };
}

all_engine_cases!(memory, super::Memory);
all_engine_cases!(rocks_engine, super::Rocks);
engine_cases!(cached_rocks, super::Cached;
    kv::put_get_delete,
    kv::inclusive_ranges,
    kv::reversed_range_is_empty,
    kv::prefix_scans,
    kv::byte_order_of_keys,
    kv::write_batch_applies_in_order,
    kv::num_entries,
    model::kv_agrees_with_a_btreemap,
);
