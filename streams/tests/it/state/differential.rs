//! Differential: random operations on the in-memory and the RocksDB window and session stores
//! must give the same answers (segments, merges, expiry and key escaping against `BTreeMap`s).

use anyhow::{Result, bail};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use sluice_streams::state::memory::{MemorySessionStore, MemoryWindowStore};
use sluice_streams::state::rocks::{RocksSessionStore, RocksWindowStore};
use sluice_streams::state::{SessionStore, StateStore, WindowStore};

use super::{sessions, wins};

/// 2 minutes: RocksDB segments of 1 minute, so times over 10 minutes span many.
const RETENTION: i64 = 120_000;

fn key() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(prop::sample::select(vec![0x00u8, 0x01, 0xff]), 0..3)
}

fn time() -> impl Strategy<Value = i64> {
    (-2i64..40).prop_map(|t| t * 15_000)
}

#[derive(Debug, Clone)]
enum WindowOp {
    Put(Vec<u8>, i64, Option<u8>),
    Observe(i64),
    Fetch(Vec<u8>, i64),
    FetchRange(Vec<u8>, i64, i64),
    FetchKeys(Vec<u8>, Vec<u8>, i64, i64),
    FetchAll(i64, i64),
    All,
    Flush,
}

fn window_op() -> impl Strategy<Value = WindowOp> {
    prop_oneof![
        6 => (key(), time(), prop::option::weighted(0.8, any::<u8>()))
            .prop_map(|(k, t, v)| WindowOp::Put(k, t, v)),
        1 => time().prop_map(WindowOp::Observe),
        2 => (key(), time()).prop_map(|(k, t)| WindowOp::Fetch(k, t)),
        2 => (key(), time(), time()).prop_map(|(k, a, b)| WindowOp::FetchRange(k, a, b)),
        2 => (key(), key(), time(), time()).prop_map(|(k, l, a, b)| WindowOp::FetchKeys(k, l, a, b)),
        1 => (time(), time()).prop_map(|(a, b)| WindowOp::FetchAll(a, b)),
        1 => Just(WindowOp::All),
        1 => Just(WindowOp::Flush),
    ]
}

fn run_windows(ops: &[WindowOp], duplicates: bool) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let mut memory = MemoryWindowStore::new("w", RETENTION, duplicates)?;
    let mut rocks = RocksWindowStore::open("w", dir.path(), RETENTION, duplicates)?;
    for (i, op) in ops.iter().enumerate() {
        let (m, r) = match op {
            WindowOp::Put(k, t, v) => {
                let v = v.map(|v| [v]);
                memory.put(k, *t, v.as_ref().map(|v| &v[..]))?;
                rocks.put(k, *t, v.as_ref().map(|v| &v[..]))?;
                continue;
            }
            WindowOp::Observe(t) => {
                memory.observe_stream_time(*t)?;
                rocks.observe_stream_time(*t)?;
                continue;
            }
            WindowOp::Flush => {
                rocks.flush()?;
                continue;
            }
            WindowOp::Fetch(k, t) => {
                let (m, r) = (memory.fetch(k, *t)?, rocks.fetch(k, *t)?);
                if m != r {
                    bail!("op {i} {op:?}: memory {m:?}, rocks {r:?}");
                }
                continue;
            }
            WindowOp::FetchRange(k, a, b) => (
                wins(memory.fetch_range(k, *a, *b)?)?,
                wins(rocks.fetch_range(k, *a, *b)?)?,
            ),
            WindowOp::FetchKeys(k, l, a, b) => (
                wins(memory.fetch_keys(k, l, *a, *b)?)?,
                wins(rocks.fetch_keys(k, l, *a, *b)?)?,
            ),
            WindowOp::FetchAll(a, b) => (
                wins(memory.fetch_all(*a, *b)?)?,
                wins(rocks.fetch_all(*a, *b)?)?,
            ),
            WindowOp::All => (wins(memory.all()?)?, wins(rocks.all()?)?),
        };
        if m != r {
            bail!("op {i} {op:?}: memory {m:?}, rocks {r:?}");
        }
    }
    let (m, r) = (wins(memory.all()?)?, wins(rocks.all()?)?);
    if m != r {
        bail!("at the end: memory {m:?}, rocks {r:?}");
    }
    Ok(())
}

#[derive(Debug, Clone)]
enum SessionOp {
    Put(Vec<u8>, i64, i64, u8),
    Remove(Vec<u8>, i64, i64),
    Observe(i64),
    FetchSession(Vec<u8>, i64, i64),
    Find(Vec<u8>, i64, i64),
    Fetch(Vec<u8>),
    All,
    Flush,
}

fn session_op() -> impl Strategy<Value = SessionOp> {
    let span = || (time(), 0i64..3).prop_map(|(start, n)| (start, start + n * 15_000));
    prop_oneof![
        6 => (key(), span(), any::<u8>()).prop_map(|(k, (s, e), v)| SessionOp::Put(k, s, e, v)),
        2 => (key(), span()).prop_map(|(k, (s, e))| SessionOp::Remove(k, s, e)),
        1 => time().prop_map(SessionOp::Observe),
        2 => (key(), span()).prop_map(|(k, (s, e))| SessionOp::FetchSession(k, s, e)),
        3 => (key(), time(), time()).prop_map(|(k, a, b)| SessionOp::Find(k, a, b)),
        1 => key().prop_map(SessionOp::Fetch),
        1 => Just(SessionOp::All),
        1 => Just(SessionOp::Flush),
    ]
}

fn run_sessions(ops: &[SessionOp]) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let mut memory = MemorySessionStore::new("s", RETENTION)?;
    let mut rocks = RocksSessionStore::open("s", dir.path(), RETENTION)?;
    for (i, op) in ops.iter().enumerate() {
        let (m, r) = match op {
            SessionOp::Put(k, s, e, v) => {
                memory.put(k, *s, *e, &[*v])?;
                rocks.put(k, *s, *e, &[*v])?;
                continue;
            }
            SessionOp::Remove(k, s, e) => {
                memory.remove(k, *s, *e)?;
                rocks.remove(k, *s, *e)?;
                continue;
            }
            SessionOp::Observe(t) => {
                memory.observe_stream_time(*t)?;
                rocks.observe_stream_time(*t)?;
                continue;
            }
            SessionOp::Flush => {
                rocks.flush()?;
                continue;
            }
            SessionOp::FetchSession(k, s, e) => {
                let (m, r) = (
                    memory.fetch_session(k, *s, *e)?,
                    rocks.fetch_session(k, *s, *e)?,
                );
                if m != r {
                    bail!("op {i} {op:?}: memory {m:?}, rocks {r:?}");
                }
                continue;
            }
            SessionOp::Find(k, a, b) => (
                sessions(memory.find_sessions(k, *a, *b)?)?,
                sessions(rocks.find_sessions(k, *a, *b)?)?,
            ),
            SessionOp::Fetch(k) => (sessions(memory.fetch(k)?)?, sessions(rocks.fetch(k)?)?),
            SessionOp::All => (sessions(memory.all()?)?, sessions(rocks.all()?)?),
        };
        if m != r {
            bail!("op {i} {op:?}: memory {m:?}, rocks {r:?}");
        }
    }
    let (m, r) = (sessions(memory.all()?)?, sessions(rocks.all()?)?);
    if m != r {
        bail!("at the end: memory {m:?}, rocks {r:?}");
    }
    Ok(())
}

fn runner() -> TestRunner {
    TestRunner::new(Config {
        cases: 32,
        failure_persistence: None,
        ..Config::default()
    })
}

fn fail(e: anyhow::Error) -> TestCaseError {
    TestCaseError::fail(format!("{e:#}"))
}

#[test]
fn window_engines_agree() -> Result<()> {
    runner()
        .run(&prop::collection::vec(window_op(), 1..80), |ops| {
            run_windows(&ops, false).map_err(fail)
        })
        .map_err(|e| anyhow::anyhow!("{e}"))
}

#[test]
fn window_engines_agree_retaining_duplicates() -> Result<()> {
    runner()
        .run(&prop::collection::vec(window_op(), 1..80), |ops| {
            run_windows(&ops, true).map_err(fail)
        })
        .map_err(|e| anyhow::anyhow!("{e}"))
}

#[test]
fn session_engines_agree() -> Result<()> {
    runner()
        .run(&prop::collection::vec(session_op(), 1..80), |ops| {
            run_sessions(&ops).map_err(fail)
        })
        .map_err(|e| anyhow::anyhow!("{e}"))
}
