//! Log compaction: what survives a cleaner pass, across reopen and interrupted swaps, under
//! concurrent appends and reads, and alongside retention.

use std::collections::BTreeMap;
use std::path::Path;

use bytes::Bytes;
use proptest::prelude::*;
use sluice_log::log::{LogManager, Partition};
use sluice_log::record::{BatchBuilder, BatchIter, decode_records, testing};
use sluice_log::{Clock, Compression, MockClock, TopicPartition};

use crate::log::open;

/// One record as read back: offset, key, value (`None` = tombstone).
type Rec = (i64, String, Option<String>);

/// Every record from the log start to the log end, following offset gaps.
fn records(p: &Partition) -> Vec<Rec> {
    let mut out = Vec::new();
    let mut at = p.log_start_offset();
    for _ in 0..1_000_000 {
        if at >= p.log_end_offset() {
            break;
        }
        let data = p.read(at, 2048).unwrap();
        if data.records.is_empty() {
            break;
        }
        let mut next = at;
        for (h, range) in BatchIter::new(&data.records) {
            for r in decode_records(&data.records.slice(range), 1 << 24).unwrap() {
                let r = r.unwrap();
                if r.offset >= at {
                    out.push((r.offset, utf8(r.key), r.value.map(|v| utf8(Some(v)))));
                }
            }
            next = next.max(h.next_offset());
        }
        assert!(next > at, "no progress at {at}");
        at = next;
    }
    out
}

fn utf8(b: Option<Bytes>) -> String {
    String::from_utf8(b.unwrap_or_default().to_vec()).unwrap()
}

/// The latest record of every key, as a compacted topic's reader would build its table.
fn table(recs: &[Rec]) -> BTreeMap<String, Option<String>> {
    let mut t = BTreeMap::new();
    for (_, k, v) in recs {
        t.insert(k.clone(), v.clone());
    }
    t.retain(|_, v| v.is_some());
    t
}

fn compacted_topic(
    log: &LogManager,
    name: &str,
    extra: &[(&str, &str)],
) -> std::sync::Arc<Partition> {
    let mut cfg = vec![
        ("cleanup.policy", "compact"),
        ("segment.bytes", "400"),
        ("delete.retention.ms", "1000"),
    ];
    cfg.extend_from_slice(extra);
    log.create_topic(name, 1, cfg).unwrap();
    log.partition(&TopicPartition::new(name, 0)).unwrap()
}

fn put(p: &Partition, k: &str, v: Option<&str>, ts: i64) {
    p.append(testing::keyed([(k, v)], ts)).unwrap();
}

fn partition_files(dir: &Path, suffix: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(suffix))
        .collect();
    v.sort();
    v
}

#[test]
fn cleaning_keeps_the_latest_record_of_each_key_and_expires_tombstones() {
    let dir = tempfile::tempdir().unwrap();
    let clock = MockClock::new(1_000_000);
    let log = open(dir.path(), &clock);
    let p = compacted_topic(&log, "c", &[]);
    let mut expect = BTreeMap::new();
    for i in 0..60 {
        let k = format!("k{}", i % 5);
        let v = format!("v{i}");
        put(&p, &k, Some(&v), clock.now_ms());
        expect.insert(k, Some(v));
    }
    put(&p, "k3", None, clock.now_ms());
    expect.remove("k3");
    // Enough after the tombstone that it leaves the active segment.
    for i in 0..10 {
        let k = format!("pad{i}");
        put(&p, &k, Some("x"), clock.now_ms());
        expect.insert(k, Some("x".into()));
    }
    let before = records(&p);
    let (end, segments) = (p.log_end_offset(), p.segment_count());
    assert!(segments > 4, "{segments} segments");
    clock.advance(10);

    let stats = log.run_cleaner_forced().unwrap();
    assert_eq!(stats.partitions_cleaned, 1);
    assert!(stats.records_superseded >= 50, "{stats:?}");
    assert_eq!(stats.tombstones_removed, 0, "the tombstone is too young");
    let after = records(&p);
    assert_eq!(p.log_end_offset(), end);
    assert!(p.segment_count() < segments);
    assert!(after.len() < before.len());
    assert_eq!(table(&after), table(&before));
    assert!(after.iter().any(|(_, k, v)| k == "k3" && v.is_none()));
    for r in &after {
        assert!(before.contains(r), "{r:?} was never appended");
    }
    assert!(after.windows(2).all(|w| w[0].0 < w[1].0));
    assert!(partition_files(p.dir(), ".cleaned").is_empty());
    assert!(partition_files(p.dir(), ".swap").is_empty());

    // Nothing new is dirty: a normal pass does nothing.
    assert_eq!(log.run_cleaner().unwrap().partitions_cleaned, 0);

    // Past delete.retention.ms the tombstone goes, and so does every older k3.
    clock.advance(2_000);
    let stats = log.run_cleaner_forced().unwrap();
    assert_eq!(stats.tombstones_removed, 1, "{stats:?}");
    let after = records(&p);
    assert!(after.iter().all(|(_, k, _)| k != "k3"), "{after:?}");
    assert_eq!(table(&after), expect.clone());
    assert_eq!(p.log_end_offset(), end);

    // Appends go on at the log end; reopen reads the same.
    put(&p, "k1", Some("new"), clock.now_ms());
    expect.insert("k1".into(), Some("new".into()));
    let before_close = records(&p);
    drop(p);
    log.close().unwrap();
    drop(log);
    let log = open(dir.path(), &clock);
    let p = log.partition(&TopicPartition::new("c", 0)).unwrap();
    assert_eq!(records(&p), before_close);
    assert_eq!(table(&records(&p)), expect);
    assert_eq!(p.log_end_offset(), end + 1);
    let cp = std::fs::read_to_string(dir.path().join("cleaner-offset-checkpoint")).unwrap();
    assert!(cp.starts_with("0\n1\nc 0 "), "{cp}");
    // The checkpoint survived: with nothing dirty a normal pass does nothing.
    assert_eq!(log.run_cleaner().unwrap().partitions_cleaned, 0);
}

#[test]
fn the_dirty_ratio_and_compaction_lag_decide_what_is_cleaned() {
    let dir = tempfile::tempdir().unwrap();
    let clock = MockClock::new(1_000_000);
    let log = open(dir.path(), &clock);
    let p = compacted_topic(
        &log,
        "c",
        &[
            ("min.compaction.lag.ms", "5000"),
            ("min.cleanable.dirty.ratio", "0.5"),
        ],
    );
    for i in 0..100 {
        put(&p, &format!("k{}", i % 50), Some("v"), clock.now_ms());
    }
    // Everything is younger than the lag: not even a forced pass touches it.
    assert_eq!(log.run_cleaner_forced().unwrap().partitions_cleaned, 0);
    clock.advance(5_000);
    let count = records(&p).len();
    let stats = log.run_cleaner().unwrap();
    assert_eq!(stats.partitions_cleaned, 1, "all dirty: ratio 1");
    assert!(records(&p).len() < count);
    // A segment more: the ratio stays far below 0.5, so nothing happens without force.
    let segments = p.segment_count();
    for i in 0..100 {
        if p.segment_count() > segments {
            break;
        }
        put(&p, &format!("k{}", i % 3), Some("w"), clock.now_ms());
    }
    clock.advance(5_000);
    assert_eq!(log.run_cleaner().unwrap().partitions_cleaned, 0);
    assert_eq!(log.run_cleaner_forced().unwrap().partitions_cleaned, 1);
    // Topics without compact are never cleaned.
    log.create_topic("d", 1, [("segment.bytes", "200")])
        .unwrap();
    let d = log.partition(&TopicPartition::new("d", 0)).unwrap();
    for _ in 0..20 {
        put(&d, "same", Some("v"), clock.now_ms());
    }
    clock.advance(1);
    let stats = log.run_cleaner_forced().unwrap();
    assert_eq!(records(&d).len(), 20, "{stats:?}");
}

#[test]
fn an_interrupted_swap_completes_on_reopen() {
    let root = tempfile::tempdir().unwrap();
    let (a, b) = (root.path().join("a"), root.path().join("b"));
    let clock = MockClock::new(1_000_000);
    {
        let log = open(&a, &clock);
        let p = compacted_topic(&log, "c", &[("segment.bytes", "2000")]);
        for i in 0..200 {
            // Unique keys (kept) between updates of seven keys (mostly superseded).
            let k = if i % 2 == 0 {
                format!("u{i}")
            } else {
                format!("k{}", i % 7)
            };
            put(&p, &k, Some(&format!("v{i}")), clock.now_ms());
        }
        drop(p);
        log.close().unwrap();
    }
    copy_dir(&a, &b);
    clock.advance(10);
    let cleaned = {
        let log = open(&a, &clock);
        let p = log.partition(&TopicPartition::new("c", 0)).unwrap();
        log.run_cleaner_forced().unwrap();
        let r = records(&p);
        drop(p);
        log.close().unwrap();
        r
    };
    // `b` is `a` as a crash right after the rename to .swap would leave it: the old segments
    // and the first cleaned segment, as `.log.swap` (index files too).
    let (pa, pb) = (a.join("c-0"), b.join("c-0"));
    let first = "00000000000000000000";
    for ext in ["log", "index", "timeindex"] {
        std::fs::copy(
            pa.join(format!("{first}.{ext}")),
            pb.join(format!("{first}.{ext}.swap")),
        )
        .unwrap();
    }
    let old_segments = partition_files(&pb, ".log").len();
    let old_first_len = std::fs::metadata(pb.join(format!("{first}.log")))
        .unwrap()
        .len();
    let swap_end = {
        let bytes = Bytes::from(std::fs::read(pb.join(format!("{first}.log.swap"))).unwrap());
        BatchIter::new(&bytes).last().unwrap().0.next_offset()
    };
    let log = open(&b, &clock);
    let p = log.partition(&TopicPartition::new("c", 0)).unwrap();
    assert!(partition_files(&pb, ".swap").is_empty());
    assert!(partition_files(&pb, ".log").len() <= old_segments);
    assert!(
        std::fs::metadata(pb.join(format!("{first}.log")))
            .unwrap()
            .len()
            < old_first_len
    );
    let got = records(&p);
    let head = |r: &[Rec]| {
        r.iter()
            .filter(|x| x.0 < swap_end)
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(
        head(&got),
        head(&cleaned),
        "the swapped segment serves its range"
    );
    assert_eq!(table(&got), table(&cleaned));
    assert!(got.windows(2).all(|w| w[0].0 < w[1].0));
    assert_eq!(p.log_end_offset(), 200);
    // And cleaning goes on from there.
    log.run_cleaner_forced().unwrap();
    assert_eq!(records(&p), cleaned);
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_name() == ".lock" {
            continue;
        }
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

#[test]
fn compact_delete_topics_get_retention_too() {
    let dir = tempfile::tempdir().unwrap();
    let clock = MockClock::new(1_000_000);
    let log = open(dir.path(), &clock);
    let p = compacted_topic(
        &log,
        "cd",
        &[
            ("cleanup.policy", "compact,delete"),
            ("retention.ms", "60000"),
        ],
    );
    for i in 0..50 {
        put(
            &p,
            &format!("k{}", i % 4),
            Some(&format!("v{i}")),
            clock.now_ms() + i,
        );
    }
    clock.advance(100);
    assert_eq!(log.run_cleaner_forced().unwrap().partitions_cleaned, 1);
    assert_eq!(log.run_retention().unwrap(), 0);
    clock.advance(61_000);
    assert!(log.run_retention().unwrap() > 0);
    put(&p, "k9", Some("fresh"), clock.now_ms());
    assert_eq!(p.log_start_offset(), 50);
    assert_eq!(
        records(&p),
        [(50, "k9".to_owned(), Some("fresh".to_owned()))]
    );
    // Compaction and retention go on together.
    for i in 0..20 {
        put(&p, "k9", Some(&format!("w{i}")), clock.now_ms());
    }
    clock.advance(10);
    log.run_cleaner_forced().unwrap();
    assert_eq!(table(&records(&p))["k9"].as_deref(), Some("w19"));
}

#[test]
fn batches_with_gaps_keep_codec_producer_state_and_headers() {
    let dir = tempfile::tempdir().unwrap();
    let clock = MockClock::new(1_000_000);
    let log = open(dir.path(), &clock);
    // One batch per segment: the last two are cleanable.
    let p = compacted_topic(&log, "c", &[("segment.bytes", "100")]);
    // One idempotent producer: each batch continues the sequence of the one before.
    for (n, codec) in [Compression::Zstd, Compression::Lz4, Compression::Snappy]
        .into_iter()
        .enumerate()
    {
        let mut b = BatchBuilder::new(codec).producer(42, 1, 7 + 4 * n as i32);
        for (i, k) in ["a", "b", "a", "c"].iter().enumerate() {
            b.append(
                clock.now_ms() + i as i64,
                Some(k.as_bytes()),
                Some(format!("{k}{i}").as_bytes()),
                &[sluice_log::record::Header::new("n", format!("{i}"))],
            );
        }
        p.append(b.build()).unwrap();
    }
    put(&p, "tail", Some("t"), clock.now_ms());
    clock.advance(10);
    log.run_cleaner_forced().unwrap();
    let data = p.read(0, 1 << 20).unwrap();
    let batches: Vec<_> = BatchIter::new(&data.records).collect();
    // The last batch holds the latest a, b and c: the first two are dropped whole, and the
    // last keeps offsets 9, 10, 11 (its first a is superseded).
    let (h, range) = &batches[0];
    assert_eq!(h.base_offset, 9);
    assert_eq!(h.compression().unwrap(), Compression::Snappy);
    assert_eq!(
        (h.producer_id, h.producer_epoch, h.base_sequence),
        (42, 1, 15)
    );
    let rs: Vec<_> = decode_records(&data.records.slice(range.clone()), 1 << 20)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let offsets: Vec<_> = rs.iter().map(|r| r.offset).collect();
    assert_eq!(offsets, [9, 10, 11]);
    assert_eq!(rs[2].headers, [sluice_log::record::Header::new("n", "3")]);
    assert_eq!(rs[2].timestamp, 1_000_003);
}

/// One step of a model-based run.
#[derive(Debug, Clone)]
enum Op {
    /// One batch of records: (key, tombstone, value padding).
    Append {
        records: Vec<(u8, bool, u8)>,
        codec: u8,
    },
    Advance(i64),
    Clean,
}

fn arb_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (
            proptest::collection::vec((0u8..6, proptest::bool::weighted(0.2), 0u8..40), 1..4),
            0u8..3
        )
            .prop_map(|(records, codec)| Op::Append { records, codec }),
        2 => (1i64..400).prop_map(Op::Advance),
        2 => Just(Op::Clean),
    ]
}

/// What the model knows of one appended record.
#[derive(Debug, Clone)]
struct Appended {
    key: String,
    value: Option<String>,
    ts: i64,
}

struct Model {
    delete_retention_ms: i64,
    min_lag_ms: i64,
    /// Indexed by offset.
    appended: Vec<Appended>,
}

impl Model {
    /// Checks the partition after a cleaner pass against what was appended.
    fn check(&self, p: &Partition, now: i64) -> Result<(), TestCaseError> {
        let recs = records(p);
        prop_assert_eq!(p.log_end_offset(), self.appended.len() as i64);
        prop_assert!(recs.windows(2).all(|w| w[0].0 < w[1].0), "offsets go back");
        for (o, k, v) in &recs {
            let a = &self.appended[*o as usize];
            prop_assert_eq!((k, v), (&a.key, &a.value), "offset {} changed", o);
        }
        // Every key reads as its latest value; a deleted key reads as deleted or not at all.
        let mut latest = BTreeMap::new();
        for (o, a) in self.appended.iter().enumerate() {
            latest.insert(a.key.clone(), o as i64);
        }
        let mut last_read = BTreeMap::new();
        for (o, k, _) in &recs {
            last_read.insert(k.clone(), *o);
        }
        for (k, o) in &latest {
            let got = last_read.get(k).copied();
            if self.appended[*o as usize].value.is_some() {
                prop_assert_eq!(got, Some(*o), "key {} lost its latest value", k);
            } else if self.appended[*o as usize].ts >= now - self.delete_retention_ms {
                prop_assert_eq!(got, Some(*o), "key {}'s tombstone went too early", k);
            } else {
                prop_assert!(
                    got.is_none() || got == Some(*o),
                    "key {} came back: {:?}",
                    k,
                    got
                );
            }
        }
        // The active segment is untouched.
        let active = p.active_segment_base_offset();
        let tail: Vec<i64> = recs.iter().map(|r| r.0).filter(|&o| o >= active).collect();
        let expect: Vec<i64> = (active..self.appended.len() as i64).collect();
        prop_assert_eq!(tail, expect, "active segment changed");
        // Below it, once everything is past the lag: one record per key, and no tombstone once
        // every segment is past delete.retention.ms (timestamps only grow in this model).
        if active > 0 {
            let newest = self.appended[active as usize - 1].ts;
            if newest <= now - self.min_lag_ms {
                let below: Vec<&Rec> = recs.iter().filter(|r| r.0 < active).collect();
                let mut seen = std::collections::BTreeSet::new();
                for r in &below {
                    prop_assert!(
                        seen.insert(&r.1),
                        "key {} twice below the active segment",
                        r.1
                    );
                }
                if newest < now - self.delete_retention_ms {
                    prop_assert!(
                        below.iter().all(|r| r.2.is_some()),
                        "an expired tombstone stayed"
                    );
                }
            }
        }
        Ok(())
    }
}

fn run_model(
    segment_bytes: u64,
    delete_retention_ms: i64,
    min_lag_ms: i64,
    ops: &[Op],
) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let clock = MockClock::new(1_000_000);
    let log = open(dir.path(), &clock);
    let (sb, dr, lag) = (
        segment_bytes.to_string(),
        delete_retention_ms.to_string(),
        min_lag_ms.to_string(),
    );
    let p = compacted_topic(
        &log,
        "m",
        &[
            ("segment.bytes", &sb),
            ("delete.retention.ms", &dr),
            ("min.compaction.lag.ms", &lag),
        ],
    );
    let mut model = Model {
        delete_retention_ms,
        min_lag_ms,
        appended: Vec::new(),
    };
    for op in ops {
        match op {
            Op::Append { records, codec } => {
                let codec =
                    [Compression::None, Compression::Zstd, Compression::Lz4][*codec as usize];
                let ts = clock.now_ms();
                let base = model.appended.len();
                let mut b = BatchBuilder::new(codec);
                for (i, &(k, tombstone, pad)) in records.iter().enumerate() {
                    let key = format!("k{k}");
                    let value =
                        (!tombstone).then(|| format!("v{}{}", base + i, "x".repeat(pad as usize)));
                    b.append(
                        ts,
                        Some(key.as_bytes()),
                        value.as_deref().map(str::as_bytes),
                        &[],
                    );
                    model.appended.push(Appended { key, value, ts });
                }
                prop_assert_eq!(p.append(b.build()).unwrap().base_offset, base as i64);
            }
            Op::Advance(ms) => clock.advance(*ms),
            Op::Clean => {
                let stats = log.run_cleaner_forced().unwrap();
                prop_assert_eq!(stats.partitions_failed, 0);
                model.check(&p, clock.now_ms())?;
            }
        }
    }
    let before = records(&p);
    drop(p);
    log.close().unwrap();
    drop(log);
    let log = open(dir.path(), &clock);
    let p = log.partition(&TopicPartition::new("m", 0)).unwrap();
    prop_assert_eq!(records(&p), before, "reopen reads differently");
    let stats = log.run_cleaner_forced().unwrap();
    prop_assert_eq!(stats.partitions_failed, 0);
    model.check(&p, clock.now_ms())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn compaction_keeps_what_a_model_says(
        segment_bytes in 100u64..700,
        delete_retention_ms in prop_oneof![Just(0i64), Just(100), Just(1000)],
        min_lag_ms in prop_oneof![Just(0i64), Just(150)],
        ops in proptest::collection::vec(arb_op(), 1..80),
    ) {
        run_model(segment_bytes, delete_retention_ms, min_lag_ms, &ops)?;
    }
}

#[test]
fn compaction_runs_while_a_writer_and_a_reader_work() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::time::{Duration, Instant};

    const N: i64 = 3_000;
    let dir = tempfile::tempdir().unwrap();
    let clock = MockClock::new(1_000_000);
    let log = open(dir.path(), &clock);
    let p = compacted_topic(&log, "c", &[("segment.bytes", "600")]);
    let deadline = Instant::now() + Duration::from_secs(120);
    let done = AtomicBool::new(false);
    let reads = AtomicUsize::new(0);
    let mut passes = 0;
    std::thread::scope(|s| {
        s.spawn(|| {
            for i in 0..N {
                let (k, v) = (format!("k{}", i % 25), i.to_string());
                let a = p.append(testing::keyed(
                    [(k.as_str(), Some(v.as_str()))],
                    clock.now_ms(),
                ));
                assert_eq!(a.unwrap().base_offset, i);
            }
            done.store(true, Ordering::Release);
        });
        s.spawn(|| {
            // Every record read carries its own offset as value, whatever the cleaner did.
            while !done.load(Ordering::Acquire) || reads.load(Ordering::Relaxed) < 3 {
                assert!(Instant::now() < deadline, "reader past the deadline");
                let recs = records(&p);
                assert!(recs.windows(2).all(|w| w[0].0 < w[1].0));
                for (o, _, v) in &recs {
                    assert_eq!(v.as_deref(), Some(o.to_string().as_str()));
                }
                reads.fetch_add(1, Ordering::Relaxed);
            }
        });
        while !done.load(Ordering::Acquire) || passes < 3 {
            assert!(Instant::now() < deadline, "cleaner past the deadline");
            clock.advance(1);
            let stats = log.run_cleaner_forced().unwrap();
            assert_eq!(stats.partitions_failed, 0, "{stats:?}");
            passes += 1;
        }
    });
    assert!(reads.load(Ordering::Relaxed) >= 3 && passes >= 3);
    log.run_cleaner_forced().unwrap();
    let recs = records(&p);
    assert_eq!(p.log_end_offset(), N);
    let expect: BTreeMap<String, Option<String>> = (N - 25..N)
        .map(|i| (format!("k{}", i % 25), Some(i.to_string())))
        .collect();
    assert_eq!(table(&recs), expect);
    assert!(recs.len() < 200, "{} records left", recs.len());
}

#[test]
fn the_background_cleaner_compacts_and_stops_on_close() {
    use std::time::{Duration, Instant};

    let dir = tempfile::tempdir().unwrap();
    let clock = MockClock::new(1_000_000);
    let mut c = sluice_log::log::LogManagerConfig::new(dir.path());
    c.clock = std::sync::Arc::new(clock.clone());
    c.cleaner_interval = Duration::from_millis(20);
    let log = LogManager::open(c).unwrap();
    let p = compacted_topic(&log, "c", &[]);
    for i in 0..100 {
        put(&p, &format!("k{}", i % 3), Some("v"), clock.now_ms());
    }
    clock.advance(10);
    let deadline = Instant::now() + Duration::from_secs(30);
    while records(&p).len() > 20 {
        assert!(
            Instant::now() < deadline,
            "the background cleaner did not run"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let started = Instant::now();
    log.close().unwrap();
    assert!(started.elapsed() < Duration::from_secs(10));
}
