//! Criterion benchmarks of the state stores' hot paths: put and get of the RocksDB key-value
//! store, restoring a changelog in batches, and a windowed count's fetch-then-put on both
//! window engines. `cargo bench -p sluice-streams --bench stores`.

use std::hint::black_box;

use bytes::Bytes;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use sluice_streams::state::memory::MemoryWindowStore;
use sluice_streams::state::rocks::{RocksKeyValueStore, RocksWindowStore};
use sluice_streams::state::{KeyValueStore, StateStore, WindowStore};

/// Keys the get benchmark reads among (all present).
const KEYS: u64 = 100_000;
/// Records per restore batch.
const BATCH: usize = 10_000;
const VALUE: [u8; 100] = [b'x'; 100];

fn key(i: u64) -> [u8; 8] {
    i.to_be_bytes()
}

/// Visits `0..KEYS` in a scattered order (a multiplier coprime with `KEYS`).
fn scattered(i: u64) -> u64 {
    i.wrapping_mul(7_919) % KEYS
}

fn rocks_kv(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut g = c.benchmark_group("rocks_kv");
    g.throughput(Throughput::Elements(1));

    let mut store = RocksKeyValueStore::open("put", dir.path().join("put")).expect("open");
    let mut i = 0u64;
    g.bench_function("put_100b", |b| {
        b.iter(|| {
            i += 1;
            store.put(&key(scattered(i)), &VALUE).expect("put");
        })
    });

    let mut store = RocksKeyValueStore::open("get", dir.path().join("get")).expect("open");
    for i in 0..KEYS {
        store.put(&key(i), &VALUE).expect("put");
    }
    store.flush().expect("flush");
    let mut i = 0u64;
    g.bench_function("get_100b", |b| {
        b.iter(|| {
            i += 1;
            black_box(store.get(&key(scattered(i))).expect("get"));
        })
    });

    g.throughput(Throughput::Elements(BATCH as u64));
    let mut store = RocksKeyValueStore::open("restore", dir.path().join("restore")).expect("open");
    let mut next = 0u64;
    g.bench_function("restore_batch_10k", |b| {
        b.iter_batched(
            || {
                (0..BATCH)
                    .map(|_| {
                        next += 1;
                        (
                            Bytes::copy_from_slice(&key(next)),
                            Some(Bytes::from_static(&VALUE)),
                        )
                    })
                    .collect::<Vec<_>>()
            },
            |records| store.restore_batch(&records).expect("restore"),
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

/// A windowed count over 1,000 keys in one-minute tumbling windows, a window closing every
/// 100,000 records (each window of a key counts 100 records): fetch the count of the record's
/// window, put it back plus one.
fn count(store: &mut dyn WindowStore, i: u64) {
    let k = key(scattered(i) % 1_000);
    let start = (i / 100_000) as i64 * 60_000;
    let n = store.fetch(&k, start).expect("fetch").map_or(0, |v| {
        u64::from_be_bytes(v[..].try_into().unwrap_or([0; 8]))
    });
    store
        .put(&k, start, Some(&(n + 1).to_be_bytes()))
        .expect("put");
}

fn window_count(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut g = c.benchmark_group("window_count");
    g.throughput(Throughput::Elements(1));
    let mut rocks =
        RocksWindowStore::open("count", dir.path().join("count"), 3_600_000, false).expect("open");
    let mut i = 0u64;
    g.bench_function("rocks", |b| {
        b.iter(|| {
            i += 1;
            count(&mut rocks, i);
        })
    });
    let mut memory = MemoryWindowStore::new("count", 3_600_000, false).expect("new");
    let mut i = 0u64;
    g.bench_function("memory", |b| {
        b.iter(|| {
            i += 1;
            count(&mut memory, i);
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(std::time::Duration::from_secs(1))
        .measurement_time(std::time::Duration::from_secs(3));
    targets = rocks_kv, window_count
}
criterion_main!(benches);
