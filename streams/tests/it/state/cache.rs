//! The record cache: deduplicated flushes, bounded memory, eviction in the order of writes.

use anyhow::Result;
use bytes::Bytes;
use sluice_streams::state::cache::{CachingKeyValueStore, ENTRY_OVERHEAD, Flushed};
use sluice_streams::state::memory::MemoryKeyValueStore;
use sluice_streams::state::rocks::RocksKeyValueStore;
use sluice_streams::state::{KeyValueStore, StateStore};

use super::{bytes, kv, kvs};

fn flushed(key: &str, new: Option<&str>, old: Option<&str>) -> Flushed {
    let b = |s: &str| Bytes::copy_from_slice(s.as_bytes());
    Flushed {
        key: b(key),
        new: new.map(b),
        old: old.map(b),
    }
}

#[test]
fn a_thousand_updates_of_ten_keys_flush_as_ten() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let mut inner = RocksKeyValueStore::open("counts", dir.path())?;
    for k in 0..5 {
        inner.put(format!("key{k}").as_bytes(), b"before")?;
    }
    let mut cache = CachingKeyValueStore::new(inner, 1 << 20);
    for i in 0..1_000 {
        cache.put(
            format!("key{}", i % 10).as_bytes(),
            i.to_string().as_bytes(),
        )?;
    }
    assert_eq!(cache.dirty_entries(), 10);
    assert_eq!(cache.get(b"key3")?, bytes(b"993"), "reads see the cache");
    assert_eq!(
        cache.inner().get(b"key3")?,
        bytes(b"before"),
        "the store is not written yet"
    );
    assert!(cache.take_evicted().is_empty(), "nothing evicted");
    let out = cache.flush_entries()?;
    let expected: Vec<Flushed> = (0..10)
        .map(|k| {
            let new = (990 + k).to_string();
            let old = (k < 5).then_some("before");
            flushed(&format!("key{k}"), Some(&new), old)
        })
        .collect();
    assert_eq!(
        out, expected,
        "each key once, its last value, the store's old one"
    );
    assert_eq!(cache.inner().get(b"key3")?, bytes(b"993"));
    assert!(
        cache.flush_entries()?.is_empty(),
        "nothing dirty after a flush"
    );
    assert_eq!(cache.cached_entries(), 10, "flushed entries stay, clean");

    cache.put(b"key1", b"again")?;
    cache.delete(b"key2")?;
    assert_eq!(
        cache.flush_entries()?,
        vec![
            flushed("key1", Some("again"), Some("991")),
            flushed("key2", None, Some("992")),
        ]
    );
    assert_eq!(cache.inner().get(b"key2")?, None);
    Ok(())
}

#[test]
fn flush_orders_entries_by_their_latest_write() -> Result<()> {
    let mut cache = CachingKeyValueStore::new(MemoryKeyValueStore::new("c"), 1 << 20);
    cache.put(b"a", b"1")?;
    cache.put(b"b", b"1")?;
    cache.put(b"c", b"1")?;
    cache.put(b"a", b"2")?;
    let keys: Vec<Bytes> = cache.flush_entries()?.into_iter().map(|f| f.key).collect();
    assert_eq!(keys, vec![&b"b"[..], b"c", b"a"]);
    Ok(())
}

#[test]
fn eviction_keeps_memory_bounded_in_write_order() -> Result<()> {
    // Keys of 2 bytes, values of 10: 12 + overhead each; room for 5.
    let entry = 12 + ENTRY_OVERHEAD;
    let max = 5 * entry + entry / 2;
    let mut cache = CachingKeyValueStore::new(MemoryKeyValueStore::new("c"), max);
    let key = |i: usize| format!("k{i}");
    for i in 0..10 {
        cache.put(key(i).as_bytes(), format!("value-{i:04}").as_bytes())?;
        assert!(
            cache.cached_bytes() <= max,
            "{} > {max}",
            cache.cached_bytes()
        );
    }
    assert_eq!(cache.cached_entries(), 5);
    let evicted: Vec<Bytes> = cache.take_evicted().into_iter().map(|f| f.key).collect();
    assert_eq!(evicted, vec![&b"k0"[..], b"k1", b"k2", b"k3", b"k4"]);
    assert_eq!(
        cache.inner().get(b"k4")?,
        bytes(b"value-0004"),
        "evicted entries are written"
    );
    // k5 is the least recently written; writing it again makes k6 the one.
    cache.put(b"k5", b"value-0055")?;
    cache.put(b"k0", b"value-0100")?;
    assert_eq!(
        cache.take_evicted(),
        vec![Flushed {
            key: Bytes::from_static(b"k6"),
            new: bytes(b"value-0006"),
            old: None,
        }]
    );
    // A read does not change the order: k7 goes next.
    assert_eq!(cache.get(b"k7")?, bytes(b"value-0007"));
    cache.put(b"k1", b"value-0101")?;
    assert_eq!(
        cache.take_evicted(),
        vec![Flushed {
            key: Bytes::from_static(b"k7"),
            new: bytes(b"value-0007"),
            old: None,
        }]
    );
    // k0 came back: its eviction would report the first write as old.
    for i in 20..30 {
        cache.put(key(i).as_bytes(), b"value-xxxx")?;
    }
    let k0 = cache
        .take_evicted()
        .into_iter()
        .find(|f| &f.key[..] == b"k0");
    assert_eq!(
        k0.map(|f| (f.new, f.old)),
        Some((bytes(b"value-0100"), bytes(b"value-0000")))
    );
    assert!(cache.cached_bytes() <= max);
    Ok(())
}

#[test]
fn a_max_of_zero_writes_through() -> Result<()> {
    let mut cache = CachingKeyValueStore::new(MemoryKeyValueStore::new("c"), 0);
    cache.put(b"a", b"1")?;
    assert_eq!(cache.inner().get(b"a")?, bytes(b"1"));
    cache.put(b"a", b"2")?;
    cache.delete(b"a")?;
    assert_eq!(cache.inner().get(b"a")?, None);
    assert_eq!((cache.cached_entries(), cache.cached_bytes()), (0, 0));
    assert_eq!(
        cache.take_evicted(),
        vec![
            flushed("a", Some("1"), None),
            flushed("a", Some("2"), Some("1")),
            flushed("a", None, Some("2")),
        ],
        "every write, at once"
    );
    assert!(cache.flush_entries()?.is_empty());
    Ok(())
}

#[test]
fn ranges_merge_the_cache_and_the_store() -> Result<()> {
    let mut inner = MemoryKeyValueStore::new("c");
    for k in [b"a", b"c", b"e", b"g"] {
        inner.put(k, b"stored")?;
    }
    let mut cache = CachingKeyValueStore::new(inner, 1 << 20);
    cache.put(b"b", b"cached")?;
    cache.put(b"c", b"cached")?;
    cache.delete(b"e")?;
    cache.delete(b"f")?;
    cache.put(b"h", b"cached")?;
    assert_eq!(
        kvs(cache.all()?)?,
        vec![
            kv(b"a", b"stored"),
            kv(b"b", b"cached"),
            kv(b"c", b"cached"),
            kv(b"g", b"stored"),
            kv(b"h", b"cached"),
        ],
        "cache over store, deletes hiding"
    );
    assert_eq!(
        kvs(cache.range(b"c", b"g")?)?,
        vec![kv(b"c", b"cached"), kv(b"g", b"stored")]
    );
    assert_eq!(cache.get(b"e")?, None);
    assert_eq!(
        cache.delete(b"g")?,
        bytes(b"stored"),
        "a delete returns the stored value"
    );
    // After a flush the store holds the same.
    cache.flush()?;
    assert_eq!(kvs(cache.inner().all()?)?, kvs(cache.all()?)?);
    assert_eq!(
        cache.take_evicted().len(),
        6,
        "flush() keeps what it wrote for take_evicted"
    );
    Ok(())
}
