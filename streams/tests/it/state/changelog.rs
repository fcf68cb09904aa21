//! The changelog: what one engine writes restores into the other.

use anyhow::Result;
use bytes::Bytes;
use sluice_streams::state::changelog::{
    Change, Changelogged, restore_key_value, restore_key_value_batch, restore_session,
    restore_window, split_window_key, window_key,
};
use sluice_streams::state::memory::{MemoryKeyValueStore, MemorySessionStore, MemoryWindowStore};
use sluice_streams::state::rocks::{RocksKeyValueStore, RocksSessionStore, RocksWindowStore};
use sluice_streams::state::{KeyValueStore, SessionStore, WindowStore};

use super::{kvs, sessions, wins};

const LONG: i64 = 10_000_000;

fn kv_writes(store: &mut dyn KeyValueStore) -> Result<()> {
    for i in 0..50u32 {
        store.put(format!("k{}", i % 7).as_bytes(), &i.to_be_bytes())?;
    }
    store.delete(b"k3")?;
    store.delete(b"never")?;
    store.write_batch(&[
        (Bytes::from_static(b"k4"), None),
        (Bytes::from_static(b"b"), Some(Bytes::from_static(b"batch"))),
    ])?;
    store.put(b"k3", b"back")?;
    Ok(())
}

#[test]
fn key_value_changelog_restores_into_rocks() -> Result<()> {
    let mut logged = Changelogged::new(MemoryKeyValueStore::new("kv"));
    kv_writes(&mut logged)?;
    let changes = logged.take_changes();
    assert_eq!(changes.len(), 50 + 2 + 2 + 1);
    assert!(logged.take_changes().is_empty(), "taken once");
    assert_eq!(
        changes[50],
        (Bytes::from_static(b"k3"), None),
        "a delete is a tombstone"
    );
    let dir = tempfile::tempdir()?;
    let mut one_by_one = RocksKeyValueStore::open("kv", dir.path().join("a"))?;
    for (key, value) in &changes {
        restore_key_value(&mut one_by_one, key, value.as_deref())?;
    }
    let mut batched = RocksKeyValueStore::open("kv", dir.path().join("b"))?;
    restore_key_value_batch(&mut batched, &changes)?;
    let expected = kvs(logged.all()?)?;
    assert_eq!(expected.len(), 7, "k0..k6 less k4, plus b");
    assert_eq!(kvs(one_by_one.all()?)?, expected);
    assert_eq!(kvs(batched.all()?)?, expected);
    Ok(())
}

fn window_writes(store: &mut dyn WindowStore) -> Result<()> {
    for i in 0..40i64 {
        let key = [b'a' + (i % 3) as u8];
        store.put(&key, (i % 5) * 1_000, Some(&i.to_be_bytes()))?;
    }
    store.put(b"a", 0, None)?;
    store.put(&[0x01], 7, Some(b"prefix"))?;
    store.put(&[0x01, 0x00], 7, Some(b"longer"))?;
    Ok(())
}

#[test]
fn window_changelog_restores_into_rocks() -> Result<()> {
    let mut logged = Changelogged::new(MemoryWindowStore::new("w", LONG, false)?);
    window_writes(&mut logged)?;
    let changes = logged.take_changes();
    assert_eq!(changes[40], (window_key(b"a", 0, 0), None));
    assert!(
        changes
            .iter()
            .all(|(k, _)| split_window_key(k).is_some_and(|(_, _, seqnum)| seqnum == 0)),
        "seqnum 0 without duplicates"
    );
    let dir = tempfile::tempdir()?;
    let mut restored = RocksWindowStore::open("w", dir.path(), LONG, false)?;
    for (key, value) in &changes {
        restore_window(&mut restored, key, value.as_deref())?;
    }
    let expected = wins(logged.all()?)?;
    assert_eq!(expected.len(), 3 * 5 - 1 + 2);
    assert_eq!(wins(restored.all()?)?, expected);
    Ok(())
}

#[test]
fn duplicate_window_changelog_restores_into_rocks() -> Result<()> {
    let mut logged = Changelogged::retaining_duplicates(MemoryWindowStore::new("j", LONG, true)?);
    window_writes(&mut logged)?;
    let changes = logged.take_changes();
    let seqnums: Vec<u32> = changes
        .iter()
        .filter_map(|(k, _)| split_window_key(k).map(|(_, _, s)| s))
        .collect();
    assert_eq!(
        seqnums,
        (1..=42).collect::<Vec<u32>>(),
        "increasing from 1 (the ignored None is not logged)"
    );
    let dir = tempfile::tempdir()?;
    let mut restored = RocksWindowStore::open("j", dir.path(), LONG, true)?;
    for (key, value) in &changes {
        restore_window(&mut restored, key, value.as_deref())?;
    }
    let expected = wins(logged.all()?)?;
    assert_eq!(expected.len(), 42);
    assert_eq!(wins(restored.all()?)?, expected);
    Ok(())
}

#[test]
fn window_changelog_of_rocks_restores_into_memory() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let mut logged = Changelogged::new(RocksWindowStore::open("w", dir.path(), LONG, false)?);
    window_writes(&mut logged)?;
    let mut restored = MemoryWindowStore::new("w", LONG, false)?;
    for (key, value) in logged.take_changes() {
        restore_window(&mut restored, &key, value.as_deref())?;
    }
    assert_eq!(wins(restored.all()?)?, wins(logged.all()?)?);
    Ok(())
}

#[test]
fn session_changelog_restores_into_rocks() -> Result<()> {
    let mut logged = Changelogged::new(MemorySessionStore::new("s", LONG)?);
    logged.put(b"a", 0, 10, b"1")?;
    logged.put(b"a", 0, 10, b"2")?;
    logged.put(b"a", 20, 30, b"3")?;
    logged.put(b"b", 5, 5, b"4")?;
    logged.remove(b"a", 20, 30)?;
    logged.put(b"a", 0, 40, b"merged")?;
    logged.remove(b"a", 0, 10)?;
    let changes: Vec<Change> = logged.take_changes();
    assert_eq!(changes.len(), 7);
    let dir = tempfile::tempdir()?;
    let mut restored = RocksSessionStore::open("s", dir.path(), LONG)?;
    for (key, value) in &changes {
        restore_session(&mut restored, key, value.as_deref())?;
    }
    let expected = sessions(logged.all()?)?;
    assert_eq!(expected.len(), 2);
    assert_eq!(sessions(restored.all()?)?, expected);
    Ok(())
}

#[test]
fn short_changelog_keys_are_errors_naming_the_store() -> Result<()> {
    let mut window = MemoryWindowStore::new("w", LONG, false)?;
    let err = restore_window(&mut window, b"short", Some(b"v"))
        .err()
        .map(|e| e.to_string());
    assert_eq!(
        err.as_deref(),
        Some(
            "state store \"w\": a changelog key of 5 bytes, shorter than a window key's 12 \
             bytes of start and seqnum"
        )
    );
    let mut session = MemorySessionStore::new("s", LONG)?;
    let err = restore_session(&mut session, &[0; 15], None)
        .err()
        .map(|e| e.to_string());
    assert_eq!(
        err.as_deref(),
        Some(
            "state store \"s\": a changelog key of 15 bytes, shorter than a session key's 16 \
             bytes of end and start"
        )
    );
    Ok(())
}
