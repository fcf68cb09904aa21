//! What only the RocksDB engine does: keep its data across a reopen, drop whole segments.

use anyhow::Result;
use sluice_streams::state::rocks::{RocksKeyValueStore, RocksSessionStore, RocksWindowStore};
use sluice_streams::state::{KeyValueStore, SessionStore, StateStore, WindowStore};

use super::{bytes, kv, kvs, sess, sessions, win, wins};

#[test]
fn a_reopened_key_value_store_keeps_its_data() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("app/0_1/rocksdb/counts");
    {
        let mut store = RocksKeyValueStore::open("counts", &path)?;
        assert!(store.persistent());
        assert_eq!(store.path(), path);
        store.put(b"a", b"1")?;
        store.put(b"b", b"2")?;
        store.delete(b"a")?;
        store.flush()?;
        store.put(b"c", b"3")?;
    }
    let store = RocksKeyValueStore::open("counts", &path)?;
    assert_eq!(
        kvs(store.all()?)?,
        vec![kv(b"b", b"2"), kv(b"c", b"3")],
        "flushed writes, and those after the flush (closing flushes a WAL-less store)"
    );
    Ok(())
}

#[test]
fn a_store_open_twice_is_refused() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let _first = RocksKeyValueStore::open("kv", dir.path())?;
    let err = RocksKeyValueStore::open("kv", dir.path())
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.starts_with("state store \"kv\": "), "{err}");
    assert!(err.contains("lock"), "{err}");
    Ok(())
}

#[test]
fn a_reopened_window_store_keeps_its_windows_and_stream_time() -> Result<()> {
    let dir = tempfile::tempdir()?;
    {
        let mut store = RocksWindowStore::open("w", dir.path(), 1_000, false)?;
        store.put(b"a", 100, Some(b"a100"))?;
        store.put(b"a", 500, Some(b"a500"))?;
        store.observe_stream_time(1_200)?;
        store.flush()?;
    }
    {
        let mut store = RocksWindowStore::open("w", dir.path(), 1_000, false)?;
        assert_eq!(wins(store.all()?)?, vec![win(b"a", 500, b"a500")]);
        store.put(b"a", 150, Some(b"late"))?;
        assert_eq!(
            store.fetch(b"a", 150)?,
            None,
            "the stream time observed before the reopen holds"
        );
    }
    // A longer retention at reopen: the segments keep the interval they were made with
    // (60 s, not 500 s), and what the longer retention keeps is seen again.
    let store = RocksWindowStore::open("w", dir.path(), 1_000_000, false)?;
    assert_eq!(store.segment_interval_ms(), 60_000);
    assert_eq!(store.segment_ids(), vec![0]);
    assert_eq!(
        wins(store.all()?)?,
        vec![win(b"a", 100, b"a100"), win(b"a", 500, b"a500")]
    );
    Ok(())
}

#[test]
fn a_reopened_duplicate_store_does_not_overwrite() -> Result<()> {
    let dir = tempfile::tempdir()?;
    {
        let mut store = RocksWindowStore::open("join", dir.path(), 100_000, true)?;
        store.put(b"a", 0, Some(b"x"))?;
        store.put(b"a", 0, Some(b"y"))?;
        store.flush()?;
    }
    let mut store = RocksWindowStore::open("join", dir.path(), 100_000, true)?;
    store.put(b"a", 0, Some(b"z"))?;
    assert_eq!(
        wins(store.all()?)?,
        vec![win(b"a", 0, b"x"), win(b"a", 0, b"y"), win(b"a", 0, b"z")]
    );
    Ok(())
}

#[test]
fn expired_segments_are_dropped_whole() -> Result<()> {
    let dir = tempfile::tempdir()?;
    // Retention 120 s: segments of 60 s.
    let mut store = RocksWindowStore::open("w", dir.path(), 120_000, false)?;
    for minute in 0..5 {
        store.put(b"k", minute * 60_000 + 1, Some(b"v"))?;
    }
    // Stream time 240,001: live from 120,002, so segments 0 and 1 are gone; segment 2 stays
    // (it could hold 120,002), though its window 120,001 is hidden.
    assert_eq!(store.segment_ids(), vec![2, 3, 4]);
    assert_eq!(
        wins(store.fetch_range(b"k", 0, i64::MAX)?)?
            .into_iter()
            .map(|(_, start, _)| start)
            .collect::<Vec<_>>(),
        vec![180_001, 240_001]
    );
    store.observe_stream_time(300_000)?;
    assert_eq!(
        store.segment_ids(),
        vec![3, 4],
        "segment 2 holds nothing live"
    );
    assert_eq!(wins(store.all()?)?.len(), 2, "window 180,001 is still live");
    store.observe_stream_time(10_000_000)?;
    assert_eq!(store.segment_ids(), Vec::<i64>::new());
    Ok(())
}

#[test]
fn a_reopened_session_store_keeps_its_sessions() -> Result<()> {
    let dir = tempfile::tempdir()?;
    {
        let mut store = RocksSessionStore::open("s", dir.path(), 1_000)?;
        store.put(b"a", 0, 10, b"first")?;
        store.put(b"a", 5_000, 6_000, b"second")?;
        store.put(b"b", 5_500, 5_600, b"b")?;
        store.remove(b"b", 5_500, 5_600)?;
        store.flush()?;
    }
    let store = RocksSessionStore::open("s", dir.path(), 1_000)?;
    assert_eq!(
        sessions(store.all()?)?,
        vec![sess(b"a", 5_000, 6_000, b"second")],
        "the first session expired before the flush"
    );
    assert_eq!(store.fetch_session(b"a", 5_000, 6_000)?, bytes(b"second"));
    Ok(())
}
