//! Criterion benchmarks of the log's hot paths: building a batch, appending it, reading it back.
//! `cargo bench -p sluice-log` (CI compiles them; it does not time them).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sluice_log::config::TopicConfig;
use sluice_log::log::{AppendOrigin, LogManager, LogManagerConfig, validate_batch};
use sluice_log::record::{BatchBuilder, BatchIter, decode_records, validate};
use sluice_log::{Compression, TopicPartition};

const RECORDS: usize = 160; // ~16 KiB batches of 100-byte records, Kafka's default batch.size

const NOW: i64 = 1_700_000_000_000;

fn batch(compression: Compression) -> Vec<u8> {
    keyed_batch(compression, false)
}

fn keyed_batch(compression: Compression, keys: bool) -> Vec<u8> {
    let value = [b'x'; 100];
    let mut b = BatchBuilder::new(compression);
    for i in 0..RECORDS {
        let key = format!("key-{i}");
        b.append(
            NOW + i as i64,
            keys.then_some(key.as_bytes()),
            Some(&value),
            &[],
        );
    }
    b.build()
}

fn codec(c: &mut Criterion) {
    let mut g = c.benchmark_group("codec");
    g.throughput(Throughput::Elements(RECORDS as u64));
    g.bench_function("build_16k_batch", |b| {
        b.iter(|| black_box(batch(Compression::None)))
    });
    g.bench_function("build_16k_batch_lz4", |b| {
        b.iter(|| black_box(batch(Compression::Lz4)))
    });
    let bytes = bytes::Bytes::from(batch(Compression::None));
    g.bench_function("validate_crc", |b| {
        b.iter(|| black_box(validate(&bytes).ok()))
    });
    g.bench_function("decode_records", |b| {
        b.iter(|| decode_records(&bytes, 1 << 24).map(|it| it.count()).ok())
    });
    // What the log checks of a client's batch before appending it (Kafka's LogValidator), past
    // the header and CRC check above: framing, count, offset deltas, compressed contents,
    // timestamps.
    let tp = TopicPartition::new("bench", 0);
    let config =
        TopicConfig::from_pairs([("message.timestamp.after.max.ms", "3600000")]).expect("config");
    for (name, compression, keys) in [
        ("validate_records", Compression::None, false),
        ("validate_records_keyed", Compression::None, true),
        ("validate_records_lz4", Compression::Lz4, false),
        ("validate_records_zstd", Compression::Zstd, false),
    ] {
        let mut copy = keyed_batch(compression, keys);
        g.bench_function(name, |b| {
            b.iter(|| {
                let header = validate(&copy).expect("valid");
                black_box(
                    validate_batch(&tp, &config, &mut copy, header, NOW, AppendOrigin::Client).ok(),
                )
            })
        });
    }
    g.finish();
}

fn log(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = LogManagerConfig::new(dir.path());
    cfg.background = false;
    let log = LogManager::open(cfg).expect("open");
    log.create_topic("bench", 1, [("segment.bytes", "268435456")])
        .expect("topic");
    let p = log
        .partition(&TopicPartition::new("bench", 0))
        .expect("partition");
    let template = batch(Compression::None);
    let mut g = c.benchmark_group("log");
    g.throughput(Throughput::Elements(RECORDS as u64));
    g.bench_function("append_16k_batch", |b| {
        b.iter(|| p.append(template.clone()).ok())
    });
    g.bench_function("read_1mb", |b| {
        b.iter(|| {
            let data = p.read(p.log_start_offset(), 1 << 20).ok();
            data.map(|d| BatchIter::new(&d.records).count())
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(3));
    targets = codec, log
}
criterion_main!(benches);
