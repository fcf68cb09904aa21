//! Opening stores by spec: the engine chosen by config.

use anyhow::Result;
use sluice_streams::state::{
    Engine, StoreSpec, open_key_value, open_session, open_window, store_dir,
};

use super::{bytes, win, wins};

#[test]
fn each_kind_opens_on_each_engine() -> Result<()> {
    let dir = tempfile::tempdir()?;
    for engine in [Engine::RocksDb, Engine::InMemory] {
        let persistent = engine == Engine::RocksDb;
        let at = |store: &str| store_dir(dir.path(), "app", "0_1", &format!("{store}-{engine:?}"));
        let mut kv = open_key_value(&StoreSpec::key_value("kv", engine), &at("kv"))?;
        kv.put(b"a", b"1")?;
        assert_eq!((kv.name(), kv.persistent()), ("kv", persistent));
        assert_eq!(kv.get(b"a")?, bytes(b"1"));

        let spec = StoreSpec::window("w", engine, 1_000, true);
        let mut window = open_window(&spec, &at("w"))?;
        window.put(b"a", 0, Some(b"x"))?;
        window.put(b"a", 0, Some(b"y"))?;
        assert_eq!(window.retention_ms(), 1_000);
        assert_eq!(
            wins(window.all()?)?,
            vec![win(b"a", 0, b"x"), win(b"a", 0, b"y")],
            "duplicates retained as the spec says"
        );
        assert_eq!(window.persistent(), persistent);

        let mut session = open_session(&StoreSpec::session("s", engine, 500), &at("s"))?;
        session.put(b"a", 0, 10, b"v")?;
        assert_eq!(session.fetch_session(b"a", 0, 10)?, bytes(b"v"));
        assert_eq!(
            (session.retention_ms(), session.persistent()),
            (500, persistent)
        );
    }
    assert!(
        dir.path()
            .join("app/0_1/rocksdb/kv-RocksDb/CURRENT")
            .exists(),
        "RocksDB under <state.dir>/<application.id>/<task>/rocksdb/<store>"
    );
    assert!(!dir.path().join("app/0_1/rocksdb/kv-InMemory").exists());
    Ok(())
}

#[test]
fn a_spec_of_another_kind_is_refused() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let err = |r: Result<(), sluice_streams::Error>| r.err().map(|e| e.to_string());
    let window = StoreSpec::window("w", Engine::InMemory, 1_000, false);
    assert_eq!(
        err(open_key_value(&window, dir.path()).map(drop)).as_deref(),
        Some("state store \"w\": is a window store, opened as a key-value store")
    );
    let kv = StoreSpec::key_value("kv", Engine::RocksDb);
    assert_eq!(
        err(open_window(&kv, dir.path()).map(drop)).as_deref(),
        Some("state store \"kv\": is a key-value store, opened as a window store")
    );
    assert_eq!(
        err(open_session(&window, dir.path()).map(drop)).as_deref(),
        Some("state store \"w\": is a window store, opened as a session store")
    );
    assert!(
        std::fs::read_dir(dir.path())?.next().is_none(),
        "nothing opened on disk"
    );
    Ok(())
}

#[test]
fn engines_parse_kafkas_names() -> Result<()> {
    assert_eq!("rocksDB".parse::<Engine>()?, Engine::RocksDb);
    assert_eq!("in_memory".parse::<Engine>()?, Engine::InMemory);
    assert_eq!("IN-MEMORY".parse::<Engine>()?, Engine::InMemory);
    assert_eq!(Engine::default(), Engine::RocksDb);
    let err = "leveldb".parse::<Engine>().err().map(|e| e.to_string());
    assert_eq!(
        err.as_deref(),
        Some(
            "config \"default.dsl.store\": \"leveldb\" is not a store engine: rocksDB or in_memory"
        )
    );
    assert_eq!(
        StoreSpec::key_value("counts", Engine::RocksDb).changelog_topic("app"),
        "app-counts-changelog"
    );
    Ok(())
}
