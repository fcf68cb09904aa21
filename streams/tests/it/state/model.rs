//! Model-based: random operations on a key-value store and on a `BTreeMap` must agree.

use std::collections::BTreeMap;

use anyhow::{Result, bail};
use bytes::Bytes;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

use super::{Engine, kvs};

#[derive(Debug, Clone)]
enum Op {
    Put(Vec<u8>, Vec<u8>),
    Delete(Vec<u8>),
    Get(Vec<u8>),
    Range(Vec<u8>, Vec<u8>),
    Prefix(Vec<u8>),
    All,
    Batch(Vec<(Vec<u8>, Option<Vec<u8>>)>),
    Flush,
}

/// Short keys over bytes chosen to hit the edges of byte order: 0x00, 0xff, prefixes.
fn key() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(prop::sample::select(vec![0x00u8, 0x01, 0x02, 0xff]), 0..4)
}

fn value() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..4)
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (key(), value()).prop_map(|(k, v)| Op::Put(k, v)),
        2 => key().prop_map(Op::Delete),
        2 => key().prop_map(Op::Get),
        2 => (key(), key()).prop_map(|(a, b)| Op::Range(a, b)),
        1 => key().prop_map(Op::Prefix),
        1 => Just(Op::All),
        1 => prop::collection::vec((key(), prop::option::of(value())), 0..6).prop_map(Op::Batch),
        1 => Just(Op::Flush),
    ]
}

fn model_range(
    model: &BTreeMap<Vec<u8>, Vec<u8>>,
    from: &[u8],
    to: &[u8],
) -> Vec<(Vec<u8>, Vec<u8>)> {
    model
        .iter()
        .filter(|(k, _)| k.as_slice() >= from && k.as_slice() <= to)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn run<E: Engine>(ops: &[Op]) -> Result<()> {
    let engine = E::new()?;
    let mut store = engine.kv("model")?;
    let mut model: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    for (i, op) in ops.iter().enumerate() {
        match op {
            Op::Put(k, v) => {
                store.put(k, v)?;
                model.insert(k.clone(), v.clone());
            }
            Op::Delete(k) => {
                let got = store.delete(k)?.map(|b| b.to_vec());
                let want = model.remove(k);
                if got != want {
                    bail!("op {i} {op:?}: store deleted {got:?}, model {want:?}");
                }
            }
            Op::Get(k) => {
                let got = store.get(k)?.map(|b| b.to_vec());
                if got.as_ref() != model.get(k) {
                    bail!("op {i} {op:?}: store {got:?}, model {:?}", model.get(k));
                }
            }
            Op::Range(a, b) => {
                let got = kvs(store.range(a, b)?)?;
                let want = model_range(&model, a, b);
                if got != want {
                    bail!("op {i} {op:?}: store {got:?}, model {want:?}");
                }
            }
            Op::Prefix(p) => {
                let got = kvs(store.prefix_scan(p)?)?;
                let want: Vec<_> = model
                    .iter()
                    .filter(|(k, _)| k.starts_with(p))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                if got != want {
                    bail!("op {i} {op:?}: store {got:?}, model {want:?}");
                }
            }
            Op::All => {
                let got = kvs(store.all()?)?;
                let want: Vec<_> = model.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                if got != want {
                    bail!("op {i} {op:?}: store {got:?}, model {want:?}");
                }
            }
            Op::Batch(entries) => {
                let batch: Vec<(Bytes, Option<Bytes>)> = entries
                    .iter()
                    .map(|(k, v)| (Bytes::from(k.clone()), v.clone().map(Bytes::from)))
                    .collect();
                store.write_batch(&batch)?;
                for (k, v) in entries {
                    match v {
                        Some(v) => model.insert(k.clone(), v.clone()),
                        None => model.remove(k),
                    };
                }
            }
            Op::Flush => store.flush()?,
        }
    }
    let got = kvs(store.all()?)?;
    let want: Vec<_> = model.into_iter().collect();
    if got != want {
        bail!("at the end: store {got:?}, model {want:?}");
    }
    Ok(())
}

pub(crate) fn kv_agrees_with_a_btreemap<E: Engine>() -> Result<()> {
    let mut runner = TestRunner::new(Config {
        cases: 64,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&prop::collection::vec(op(), 1..60), |ops| {
            run::<E>(&ops).map_err(|e| TestCaseError::fail(format!("{e:#}")))
        })
        .map_err(|e| anyhow::anyhow!("{e}"))
}
