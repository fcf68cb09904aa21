//! Recovery: torn tails, trailing garbage, corrupt batches, lost index files, the trust rule for
//! segments below the recovery point, kill -9 during acknowledged appends, and the on-disk format
//! fixture every later version must still open.

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use sluice_log::log::Partition;
use sluice_log::record::{self, BatchIter, HEADER_LEN, decode_records, testing};
use sluice_log::{Error, MockClock, TopicPartition};

use crate::log::{open, values};

const TOPIC: &str = "t";
const RECOVERY_CHECKPOINT: &str = "recovery-point-offset-checkpoint";

fn tp(partition: i32) -> TopicPartition {
    TopicPartition::new(TOPIC, partition)
}

fn partition_dir(dir: &Path, partition: i32) -> PathBuf {
    dir.join(tp(partition).dir_name())
}

/// One record as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rec {
    offset: i64,
    timestamp: i64,
    value: String,
}

/// Every record of the partition, checking that offsets are contiguous from the log start.
fn records(p: &Partition) -> Vec<Rec> {
    let mut out: Vec<Rec> = Vec::new();
    let mut at = p.log_start_offset();
    for _ in 0..100_000 {
        if at >= p.log_end_offset() {
            break;
        }
        let data = p.read(at, 64 << 10).unwrap();
        let before = out.len();
        for (_, range) in BatchIter::new(&data.records) {
            for r in decode_records(&data.records.slice(range), 1 << 24).unwrap() {
                let r = r.unwrap();
                if r.offset >= at {
                    assert_eq!(r.offset, at, "offsets are contiguous");
                    at += 1;
                    out.push(Rec {
                        offset: r.offset,
                        timestamp: r.timestamp,
                        value: String::from_utf8(r.value.unwrap_or_default().to_vec()).unwrap(),
                    });
                }
            }
        }
        assert!(out.len() > before, "no progress at {at}");
    }
    assert_eq!(at, p.log_end_offset());
    out
}

/// The `.log` files of a partition directory, by base offset.
fn segment_logs(pdir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(pdir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    v.sort();
    v
}

fn base_offset_of(log: &Path) -> i64 {
    log.file_stem().unwrap().to_str().unwrap().parse().unwrap()
}

/// Copies a data directory (not its lock file), as a crash image or a fixture.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else if entry.file_name() != ".lock" {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

fn flip_byte(path: &Path, at: usize) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[at] ^= 0x5a;
    std::fs::write(path, bytes).unwrap();
}

/// Byte ranges of the batches of a `.log` file.
fn batch_ranges(log: &Path) -> Vec<std::ops::Range<usize>> {
    let bytes = std::fs::read(log).unwrap();
    BatchIter::new(&bytes).map(|(_, r)| r).collect()
}

/// Deterministic bytes (xorshift), for garbage that does not depend on the run.
fn garbage(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// 1. Torn tails, trailing garbage and zeros: the log keeps exactly the whole batches before them.

#[derive(Debug, Clone)]
enum TailDamage {
    /// Truncate the last segment at this byte (chosen within its length).
    Cut(prop::sample::Index),
    /// Append these bytes to it.
    Garbage(Vec<u8>),
    /// Append this many zero bytes (a file extended but not written, as after a power loss).
    Zeros(usize),
}

fn arb_tail_damage() -> impl Strategy<Value = TailDamage> {
    prop_oneof![
        3 => any::<prop::sample::Index>().prop_map(TailDamage::Cut),
        1 => prop::collection::vec(any::<u8>(), 1..300).prop_map(TailDamage::Garbage),
        1 => (1usize..5000).prop_map(TailDamage::Zeros),
    ]
}

fn check_tail_damage(
    batch_lens: &[Vec<usize>],
    segment_bytes: u64,
    index_interval: u64,
    damage: &TailDamage,
    drop_checkpoint: bool,
) {
    let dir = tempfile::tempdir().unwrap();
    let clock = MockClock::new(1_000_000);
    let mut written: Vec<(i64, Vec<String>)> = Vec::new();
    {
        let log = open(dir.path(), &clock);
        log.create_topic(
            TOPIC,
            1,
            [
                ("segment.bytes", segment_bytes.to_string()),
                ("index.interval.bytes", index_interval.to_string()),
            ],
        )
        .unwrap();
        let p = log.partition(&tp(0)).unwrap();
        for (i, lens) in batch_lens.iter().enumerate() {
            let vals: Vec<String> = lens
                .iter()
                .enumerate()
                .map(|(j, &n)| format!("{i}.{j}:{}", "x".repeat(n)))
                .collect();
            let a = p
                .append(testing::batch(
                    vals.iter().map(String::as_str),
                    1_000_000 + i as i64,
                ))
                .unwrap();
            written.push((a.base_offset, vals));
        }
        log.close().unwrap();
    }
    let logs = segment_logs(&partition_dir(dir.path(), 0));
    let last = logs.last().unwrap();
    let bytes = std::fs::read(last).unwrap();
    let end_of_all = written.last().map_or(0, |(b, vs)| b + vs.len() as i64);
    let keep_end = match damage {
        TailDamage::Cut(at) => {
            let cut = at.index(bytes.len() + 1);
            std::fs::OpenOptions::new()
                .write(true)
                .open(last)
                .unwrap()
                .set_len(cut as u64)
                .unwrap();
            BatchIter::new(&bytes[..cut])
                .last()
                .map_or(base_offset_of(last), |(h, _)| h.next_offset())
        }
        TailDamage::Garbage(g) => {
            let mut b = bytes.clone();
            b.extend_from_slice(g);
            std::fs::write(last, b).unwrap();
            end_of_all
        }
        TailDamage::Zeros(n) => {
            let mut b = bytes.clone();
            b.resize(b.len() + n, 0);
            std::fs::write(last, b).unwrap();
            end_of_all
        }
    };
    if drop_checkpoint {
        std::fs::remove_file(dir.path().join(RECOVERY_CHECKPOINT)).unwrap();
    }
    let want: Vec<(i64, String)> = written
        .iter()
        .filter(|(base, _)| *base < keep_end)
        .flat_map(|(base, vs)| {
            vs.iter()
                .enumerate()
                .map(move |(j, v)| (base + j as i64, v.clone()))
        })
        .collect();
    let got = |p: &Partition| -> Vec<(i64, String)> {
        records(p)
            .into_iter()
            .map(|r| (r.offset, r.value))
            .collect()
    };
    {
        let log = open(dir.path(), &clock);
        let p = log.partition(&tp(0)).unwrap();
        assert_eq!(p.log_end_offset(), keep_end);
        assert_eq!(got(&p), want);
        let a = p.append(testing::batch(["after"], 2_000_000)).unwrap();
        assert_eq!(a.base_offset, keep_end, "appends continue at the cut");
        assert_eq!(
            values(&p.read(keep_end, 1000).unwrap().records, keep_end),
            ["after"]
        );
        log.close().unwrap();
    }
    // The recovered log is a normal log: a clean reopen shows the same.
    let log = open(dir.path(), &clock);
    let p = log.partition(&tp(0)).unwrap();
    let mut want = want;
    want.push((keep_end, "after".to_owned()));
    assert_eq!(got(&p), want);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn a_damaged_tail_keeps_exactly_the_whole_batches_before_it(
        batch_lens in prop::collection::vec(prop::collection::vec(0usize..150, 1..6), 1..40),
        segment_bytes in prop_oneof![Just(300u64), Just(1000), Just(1 << 20)],
        index_interval in prop_oneof![Just(0u64), Just(200), Just(4096)],
        damage in arb_tail_damage(),
        drop_checkpoint in any::<bool>(),
    ) {
        check_tail_damage(&batch_lens, segment_bytes, index_interval, &damage, drop_checkpoint);
    }
}

// ---------------------------------------------------------------------------------------------
// 2. A corrupt batch with data after it takes its partition (only) offline.

/// A log with topic `t` of two partitions of several 1000-byte segments, 40 batches each.
fn two_partition_log(dir: &Path, clock: &MockClock) {
    let log = open(dir, clock);
    log.create_topic(TOPIC, 2, [("segment.bytes", "1000")])
        .unwrap();
    for part in 0..2 {
        let p = log.partition(&tp(part)).unwrap();
        for i in 0..40 {
            p.append(testing::batch(
                [format!("p{part}-{i}-{}", "v".repeat(20)).as_str()],
                1_000 + i,
            ))
            .unwrap();
        }
    }
    log.close().unwrap();
}

#[test]
fn a_corrupt_batch_mid_segment_takes_only_its_partition_offline() {
    // Where in the second batch of a middle segment the byte flips: in its records (only the CRC
    // notices), in its length field (it seems to run past the end), in its magic byte.
    type At = fn(std::ops::Range<usize>) -> usize;
    let damages: [(&str, At); 3] = [
        ("records", |r| {
            r.start + HEADER_LEN + (r.len() - HEADER_LEN) / 2
        }),
        ("length", |r| r.start + 8),
        ("magic", |r| r.start + 16),
    ];
    for (what, at) in damages {
        let dir = tempfile::tempdir().unwrap();
        let clock = MockClock::new(1_000);
        two_partition_log(dir.path(), &clock);
        std::fs::remove_file(dir.path().join(RECOVERY_CHECKPOINT)).unwrap();
        let logs = segment_logs(&partition_dir(dir.path(), 0));
        assert!(logs.len() >= 3, "{} segments", logs.len());
        let seg = &logs[1];
        let ranges = batch_ranges(seg);
        assert!(ranges.len() >= 3);
        let bad = ranges[1].clone();
        flip_byte(seg, at(bad.clone()));

        let log = open(dir.path(), &clock);
        let p0 = log.partition(&tp(0)).unwrap();
        let is_offline_here = |e: Error| match e {
            Error::PartitionOffline { path, position, .. } => {
                assert_eq!(&path, seg, "{what}");
                assert_eq!(position, bad.start as u64, "{what}");
            }
            other => panic!("{what}: expected PartitionOffline, got {other}"),
        };
        is_offline_here(p0.read(0, 1000).unwrap_err());
        is_offline_here(p0.append(testing::batch(["x"], 5_000)).unwrap_err());
        is_offline_here(p0.offset_for_timestamp(0).unwrap_err());
        let msg = p0.read(0, 1000).unwrap_err().to_string();
        assert!(
            msg.contains(&seg.display().to_string()) && msg.contains(&bad.start.to_string()),
            "{msg}"
        );
        let desc = log.describe_topic(TOPIC).unwrap();
        assert!(desc.partitions[0].offline.is_some(), "{what}");
        assert_eq!(desc.partitions[1].offline, None, "{what}");

        // The other partition serves reads and appends.
        let p1 = log.partition(&tp(1)).unwrap();
        let got: Vec<String> = records(&p1).into_iter().map(|r| r.value).collect();
        let want: Vec<String> = (0..40)
            .map(|i| format!("p1-{i}-{}", "v".repeat(20)))
            .collect();
        assert_eq!(got, want, "{what}");
        assert_eq!(
            p1.append(testing::batch(["more"], 9_000))
                .unwrap()
                .base_offset,
            40
        );
        log.close().unwrap();
        drop(log);
        // Nothing was truncated or deleted: the bad segment and those after it are still there.
        assert_eq!(segment_logs(&partition_dir(dir.path(), 0)), logs, "{what}");
    }
}

// ---------------------------------------------------------------------------------------------
// 3. Missing or damaged index files are rebuilt.

#[derive(Debug, Clone, Copy)]
enum IndexDamage {
    Deleted,
    OddLength,
    Garbage,
    Zeros,
}

#[test]
fn missing_or_damaged_index_files_are_rebuilt() {
    let pristine = tempfile::tempdir().unwrap();
    let clock = MockClock::new(10_000);
    {
        let log = open(pristine.path(), &clock);
        log.create_topic(
            TOPIC,
            1,
            [("segment.bytes", "2000"), ("index.interval.bytes", "100")],
        )
        .unwrap();
        let p = log.partition(&tp(0)).unwrap();
        for i in 0..150 {
            let vals: Vec<String> = (0..1 + i % 3).map(|j| format!("{i}.{j}")).collect();
            p.append(testing::batch(
                vals.iter().map(String::as_str),
                10_000 + 10 * i,
            ))
            .unwrap();
        }
        assert!(p.segment_count() >= 4);
        log.close().unwrap();
    }
    let expected = {
        let log = open(pristine.path(), &clock);
        let recs = records(&log.partition(&tp(0)).unwrap());
        log.close().unwrap();
        recs
    };
    let first_at_or_after = |ts: i64| {
        expected
            .iter()
            .find(|r| r.timestamp >= ts)
            .map(|r| (r.offset, r.timestamp))
    };
    let damages = [
        IndexDamage::Deleted,
        IndexDamage::OddLength,
        IndexDamage::Garbage,
        IndexDamage::Zeros,
    ];
    let targets: [&[&str]; 3] = [&["index"], &["timeindex"], &["index", "timeindex"]];
    for damage in damages {
        for exts in targets {
            let dir = tempfile::tempdir().unwrap();
            copy_dir(pristine.path(), dir.path());
            let pdir = partition_dir(dir.path(), 0);
            for log_file in segment_logs(&pdir) {
                for (k, ext) in exts.iter().enumerate() {
                    let f = log_file.with_extension(ext);
                    let len = std::fs::metadata(&f).unwrap().len() as usize;
                    match damage {
                        IndexDamage::Deleted => std::fs::remove_file(&f).unwrap(),
                        IndexDamage::OddLength => std::fs::OpenOptions::new()
                            .write(true)
                            .open(&f)
                            .unwrap()
                            .set_len(len.saturating_sub(3).max(5) as u64)
                            .unwrap(),
                        IndexDamage::Garbage => {
                            std::fs::write(&f, garbage(len.max(24), len as u64 + k as u64)).unwrap()
                        }
                        IndexDamage::Zeros => std::fs::write(&f, vec![0; len.max(24)]).unwrap(),
                    }
                }
            }
            let log = open(dir.path(), &clock);
            let p = log.partition(&tp(0)).unwrap();
            let ctx = format!("{damage:?} of {exts:?}");
            assert_eq!(p.log_end_offset(), expected.len() as i64, "{ctx}");
            for r in &expected {
                let data = p.read(r.offset, 1).unwrap();
                let (h, _) = BatchIter::new(&data.records).next().unwrap();
                assert!(
                    h.base_offset <= r.offset && r.offset <= h.last_offset(),
                    "{ctx}: read({}) returned batch {}..={}",
                    r.offset,
                    h.base_offset,
                    h.last_offset()
                );
            }
            let last_ts = expected.last().unwrap().timestamp;
            for ts in (9_990..=last_ts + 2).step_by(3) {
                assert_eq!(
                    p.offset_for_timestamp(ts).unwrap(),
                    first_at_or_after(ts),
                    "{ctx}: timestamp {ts}"
                );
            }
            assert_eq!(records(&p), expected, "{ctx}");
            log.close().unwrap();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 5. The trust rule: segments below the recovery point are not scanned on open.

/// Writes `t-0` with several segments, closes cleanly, and returns its segment files.
fn segmented_log(dir: &Path, clock: &MockClock) -> Vec<PathBuf> {
    let log = open(dir, clock);
    log.create_topic(TOPIC, 1, [("segment.bytes", "1000")])
        .unwrap();
    let p = log.partition(&tp(0)).unwrap();
    for i in 0..60 {
        p.append(testing::batch(
            [format!("r{i}-{}", "v".repeat(20)).as_str()],
            1_000 + i,
        ))
        .unwrap();
    }
    log.close().unwrap();
    let logs = segment_logs(&partition_dir(dir, 0));
    assert!(logs.len() >= 4, "{} segments", logs.len());
    logs
}

/// Flips a byte in the records of the second batch of `seg`; returns that batch's position.
fn corrupt_second_batch(seg: &Path) -> u64 {
    let r = batch_ranges(seg)[1].clone();
    flip_byte(seg, r.start + HEADER_LEN + (r.len() - HEADER_LEN) / 2);
    r.start as u64
}

#[test]
fn segments_below_the_recovery_point_are_trusted_without_a_crc_scan() {
    let dir = tempfile::tempdir().unwrap();
    let clock = MockClock::new(1_000);
    let logs = segmented_log(dir.path(), &clock);
    // After a clean close the recovery point is the log end: every segment but the last is
    // trusted. A flipped byte only a CRC check would notice goes unnoticed on open; it is the
    // price of opening a large log without reading it (Kafka's rule too). The last segment is
    // below the recovery point too: only its batch headers are read, to find the log end.
    corrupt_second_batch(&logs[0]);
    let last = logs.last().unwrap();
    assert!(batch_ranges(last).len() >= 3);
    corrupt_second_batch(last);
    let log = open(dir.path(), &clock);
    let p = log.partition(&tp(0)).unwrap();
    assert_eq!(p.log_end_offset(), 60);
    for offset in [1, base_offset_of(last) + 1] {
        let data = p.read(offset, 1).unwrap();
        let (_, range) = BatchIter::new(&data.records).next().unwrap();
        assert!(
            record::validate(&data.records[range]).is_err(),
            "the corrupt batch at {offset} is served as stored"
        );
    }
    assert_eq!(
        p.append(testing::batch(["next"], 9_000))
            .unwrap()
            .base_offset,
        60
    );
}

#[test]
fn after_a_crash_only_segments_past_the_recovery_point_are_scanned() {
    let dir = tempfile::tempdir().unwrap();
    let clock = MockClock::new(1_000);
    let logs = segmented_log(dir.path(), &clock);
    // The image a crash leaves when only the first two segments were fsynced: the checkpoint
    // names the base offset of the third.
    let rp = base_offset_of(&logs[2]);
    std::fs::write(
        dir.path().join(RECOVERY_CHECKPOINT),
        format!("0\n1\n{TOPIC} 0 {rp}\n"),
    )
    .unwrap();
    // Damage below the recovery point (unseen) and past it (found).
    corrupt_second_batch(&logs[0]);
    corrupt_second_batch(&logs[1]);
    let bad = corrupt_second_batch(&logs[2]);
    let log = open(dir.path(), &clock);
    let p = log.partition(&tp(0)).unwrap();
    match p.read(0, 100).unwrap_err() {
        Error::PartitionOffline { path, position, .. } => {
            assert_eq!(path, logs[2]);
            assert_eq!(position, bad);
        }
        other => panic!("expected PartitionOffline, got {other}"),
    }
}

#[test]
fn a_recovery_point_inside_the_last_segment_scans_only_from_there() {
    let dir = tempfile::tempdir().unwrap();
    let clock = MockClock::new(1_000);
    let logs = segmented_log(dir.path(), &clock);
    let last = logs.last().unwrap();
    let ranges = batch_ranges(last);
    assert!(ranges.len() >= 5, "{} batches", ranges.len());
    // A crash when the first three batches of the last segment were fsynced (one record each).
    let rp = base_offset_of(last) + 3;
    std::fs::write(
        dir.path().join(RECOVERY_CHECKPOINT),
        format!("0\n1\n{TOPIC} 0 {rp}\n"),
    )
    .unwrap();
    corrupt_second_batch(last); // below the recovery point: not checked
    let r = ranges[3].clone(); // at it, with a batch after it: found
    flip_byte(last, r.start + HEADER_LEN + (r.len() - HEADER_LEN) / 2);
    {
        let log = open(dir.path(), &clock);
        match log.partition(&tp(0)).unwrap().read(0, 100).unwrap_err() {
            Error::PartitionOffline { path, position, .. } => {
                assert_eq!(&path, last);
                assert_eq!(position, r.start as u64);
            }
            other => panic!("expected PartitionOffline, got {other}"),
        }
    }
    // Undo the damage past the recovery point: the log opens, all 60 records, the trusted
    // corrupt batch served as stored, offsets and timestamps found through the rebuilt index.
    flip_byte(last, r.start + HEADER_LEN + (r.len() - HEADER_LEN) / 2);
    let log = open(dir.path(), &clock);
    let p = log.partition(&tp(0)).unwrap();
    assert_eq!(p.log_end_offset(), 60);
    assert_eq!(p.offset_for_timestamp(1_059).unwrap(), Some((59, 1_059)));
    assert_eq!(
        values(&p.read(59, 100).unwrap().records, 59),
        [format!("r59-{}", "v".repeat(20))]
    );
}

// ---------------------------------------------------------------------------------------------
// 4. kill -9 during acknowledged (acks=all) appends loses nothing acknowledged.

/// Set in the child process: the data directory it writes to.
const CRASH_CHILD_ENV: &str = "SLUICE_CRASH_CHILD";
/// Set in the child process: the round, which prefixes every value it writes.
const CRASH_ROUND_ENV: &str = "SLUICE_CRASH_ROUND";
const CRASH_TEST: &str = "recovery::kill_9_never_loses_an_acknowledged_batch";
const CRASH_WRITERS: u64 = 4;
const CRASH_PARTITIONS: i32 = 3;
const CRASH_ROUNDS: u64 = 3;
const ACKS_PER_ROUND: usize = 300;

#[test]
fn kill_9_never_loses_an_acknowledged_batch() {
    if let Ok(dir) = std::env::var(CRASH_CHILD_ENV) {
        crash_child(Path::new(&dir));
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // (partition, base offset, value of the batch's first record)
    let mut acked: Vec<(i32, i64, String)> = Vec::new();
    for round in 0..CRASH_ROUNDS {
        let new = run_and_kill_child(dir.path(), round);
        assert!(
            new.len() >= ACKS_PER_ROUND,
            "round {round}: {} acks",
            new.len()
        );
        acked.extend(new);
        // Check a copy, so the next child recovers the crash image itself.
        let image = tempfile::tempdir().unwrap();
        copy_dir(dir.path(), image.path());
        check_crash_image(image.path(), &acked, round + 1);
    }
    check_crash_image(dir.path(), &acked, CRASH_ROUNDS);
}

/// Runs one child until it has acknowledged [`ACKS_PER_ROUND`] batches, kills it with SIGKILL,
/// and returns what it acknowledged.
fn run_and_kill_child(dir: &Path, round: u64) -> Vec<(i32, i64, String)> {
    use std::time::{Duration, Instant};

    let child = crate::child::spawn(
        CRASH_TEST,
        &[
            (CRASH_CHILD_ENV, dir.display().to_string()),
            (CRASH_ROUND_ENV, round.to_string()),
        ],
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut acks = Vec::new();
    while acks.len() < ACKS_PER_ROUND {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = match child.lines.recv_timeout(left) {
            Ok(line) => line,
            Err(e) => {
                child.kill();
                panic!(
                    "round {round}: child stopped acknowledging after {} acks: {e}",
                    acks.len()
                );
            }
        };
        let Some(rest) = line.strip_prefix("ack ") else {
            continue;
        };
        let mut f = rest.split(' ');
        let (Some(p), Some(base), Some(value)) = (f.next(), f.next(), f.next()) else {
            panic!("bad ack line {line:?}");
        };
        acks.push((p.parse().unwrap(), base.parse().unwrap(), value.to_owned()));
    }
    // Acks printed after the count was reached are acknowledged too.
    for line in child.kill() {
        if let Some(rest) = line.strip_prefix("ack ") {
            let f: Vec<&str> = rest.split(' ').collect();
            acks.push((
                f[0].parse().unwrap(),
                f[1].parse().unwrap(),
                f[2].to_owned(),
            ));
        }
    }
    acks
}

/// The child: writers append to several partitions, wait for each append to be durable, and
/// print one `ack <partition> <base offset> <first value>` line per batch, until killed.
fn crash_child(dir: &Path) {
    use std::io::Write;
    use std::time::{Duration, Instant};

    let round: u64 = std::env::var(CRASH_ROUND_ENV).unwrap().parse().unwrap();
    // Background checkpoints every 50 ms, so recovery points move while the child runs.
    let mut config = sluice_log::log::LogManagerConfig::new(dir);
    config.checkpoint_interval = Duration::from_millis(50);
    let log = sluice_log::log::LogManager::open(config).unwrap();
    if round == 0 {
        log.create_topic(TOPIC, CRASH_PARTITIONS, [("segment.bytes", "4096")])
            .unwrap();
    }
    // Bounded: a parent that died without killing us must not leave us running.
    let deadline = Instant::now() + Duration::from_secs(60);
    std::thread::scope(|s| {
        for w in 0..CRASH_WRITERS {
            let log = &log;
            s.spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .build()
                    .unwrap();
                let part = (w % CRASH_PARTITIONS as u64) as i32;
                let p = log.partition(&tp(part)).unwrap();
                let mut rng = garbage(100_000, round * 10 + w + 1).into_iter();
                let mut seq = 0u64;
                while Instant::now() < deadline {
                    // A few batches in flight, then wait for the last to be durable.
                    let n = 1 + rng.next().unwrap_or(0) % 3;
                    let mut pending = Vec::new();
                    let mut last = 0;
                    for _ in 0..n {
                        let k = 1 + rng.next().unwrap_or(0) % 4;
                        let vals: Vec<String> =
                            (0..k).map(|j| format!("r{round}-w{w}-{seq}.{j}")).collect();
                        let a = p
                            .append(testing::batch(vals.iter().map(String::as_str), 0))
                            .unwrap();
                        pending.push((a.base_offset, vals[0].clone()));
                        last = a.last_offset;
                        seq += 1;
                    }
                    rt.block_on(p.wait_durable(last + 1)).unwrap();
                    let mut out = std::io::stdout().lock();
                    for (base, value) in pending {
                        writeln!(out, "ack {part} {base} {value}").unwrap();
                    }
                    out.flush().unwrap();
                }
            });
        }
    });
    std::process::exit(0);
}

/// Opens a crash image and checks: offsets contiguous from 0, every acknowledged batch at its
/// offset, and every record one a child wrote, in each writer's order, without gaps.
fn check_crash_image(dir: &Path, acked: &[(i32, i64, String)], rounds: u64) {
    let clock = MockClock::new(0);
    let log = open(dir, &clock);
    let mut all = Vec::new();
    for part in 0..CRASH_PARTITIONS {
        let p = log.partition(&tp(part)).unwrap();
        assert_eq!(p.log_start_offset(), 0);
        let recs = records(&p);
        // Per (round, writer): (seq, j) goes (0, 0), then (seq, j + 1) or (seq + 1, 0).
        let mut last: std::collections::HashMap<(u64, u64), (u64, u64)> = Default::default();
        for r in &recs {
            let parse = || -> Option<(u64, u64, u64, u64)> {
                let (rw, sj) = r.value.rsplit_once('-')?;
                let (rr, ww) = rw.split_once("-w")?;
                let (s, j) = sj.split_once('.')?;
                Some((
                    rr.strip_prefix('r')?.parse().ok()?,
                    ww.parse().ok()?,
                    s.parse().ok()?,
                    j.parse().ok()?,
                ))
            };
            let Some((round, w, seq, j)) = parse() else {
                panic!("garbage record {r:?} in partition {part}");
            };
            assert!(
                round < rounds && w % CRASH_PARTITIONS as u64 == part as u64,
                "{r:?}"
            );
            let ok = match last.get(&(round, w)) {
                None => (seq, j) == (0, 0),
                Some(&(s, k)) => (seq, j) == (s, k + 1) || (seq, j) == (s + 1, 0),
            };
            assert!(
                ok,
                "partition {part}: {r:?} does not follow {:?}",
                last.get(&(round, w))
            );
            last.insert((round, w), (seq, j));
        }
        all.push(recs);
    }
    for (part, base, value) in acked {
        let recs = &all[*part as usize];
        assert_eq!(
            recs.get(*base as usize).map(|r| r.value.as_str()),
            Some(value.as_str()),
            "acknowledged batch at {part}/{base} lost"
        );
    }
    log.close().unwrap();
}

// ---------------------------------------------------------------------------------------------
// 6. The v1 format fixture: a data directory written once by this code, committed, that every
// later version must still open. Regenerate (only when the format is meant to change, as a new
// `vN` folder) with `SLUICE_WRITE_FIXTURES=1 cargo test -p sluice-log --test it write_fixture`.

const FIXTURE_T0: i64 = 1_700_000_000_000;

/// One batch of the fixture: where it goes, its codec, the clock at append, its records.
struct FixtureBatch {
    topic: &'static str,
    partition: i32,
    compression: sluice_log::Compression,
    clock_ms: i64,
    records: Vec<FixtureRecord>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct FixtureRecord {
    timestamp: i64,
    key: Option<String>,
    value: Option<String>,
    headers: Vec<(String, String)>,
}

fn fixture_v1_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v1")
}

/// The fixture's content: topic `events` (2 partitions, 1024-byte segments, every codec,
/// keys, headers, tombstones) and topic `audit` (LogAppendTime), in append order.
fn fixture_v1_batches() -> Vec<FixtureBatch> {
    use sluice_log::Compression;
    let codecs = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];
    let mut out = Vec::new();
    for i in 0..30i64 {
        for partition in 0..2 {
            let records = (0..1 + (i + i64::from(partition)) % 3)
                .map(|j| FixtureRecord {
                    timestamp: FIXTURE_T0 + i * 1000 + j,
                    key: Some(format!("k{partition}-{i}-{j}")),
                    value: (i % 7 != 3 || j != 0).then(|| {
                        format!("event {partition}/{i}/{j} {}", "z".repeat(10 * j as usize))
                    }),
                    headers: if i % 4 == 0 {
                        vec![("trace".to_owned(), format!("t{i}"))]
                    } else {
                        Vec::new()
                    },
                })
                .collect();
            out.push(FixtureBatch {
                topic: "events",
                partition,
                compression: codecs[(i as usize + partition as usize) % codecs.len()],
                clock_ms: FIXTURE_T0 + 100_000 + i,
                records,
            });
        }
    }
    for i in 0..6i64 {
        out.push(FixtureBatch {
            topic: "audit",
            partition: 0,
            compression: codecs[i as usize % codecs.len()],
            clock_ms: FIXTURE_T0 + 200_000 + 10 * i,
            records: (0..2)
                .map(|j| FixtureRecord {
                    // Producer timestamps the log replaces with its own.
                    timestamp: 5 + j,
                    key: None,
                    value: Some(format!("audit {i}.{j}")),
                    headers: Vec::new(),
                })
                .collect(),
        });
    }
    out
}

fn build_fixture_batch(b: &FixtureBatch) -> Vec<u8> {
    let mut builder = sluice_log::record::BatchBuilder::new(b.compression);
    for r in &b.records {
        let headers: Vec<sluice_log::record::Header> = r
            .headers
            .iter()
            .map(|(k, v)| {
                sluice_log::record::Header::new(k.as_str(), bytes::Bytes::from(v.clone()))
            })
            .collect();
        builder.append(
            r.timestamp,
            r.key.as_deref().map(str::as_bytes),
            r.value.as_deref().map(str::as_bytes),
            &headers,
        );
    }
    builder.build()
}

#[test]
fn write_fixture_v1() {
    if std::env::var("SLUICE_WRITE_FIXTURES").as_deref() != Ok("1") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let clock = MockClock::new(FIXTURE_T0);
    {
        let log = open(tmp.path(), &clock);
        log.create_topic(
            "events",
            2,
            [("segment.bytes", "1024"), ("retention.ms", "-1")],
        )
        .unwrap();
        log.create_topic(
            "audit",
            1,
            [
                ("message.timestamp.type", "LogAppendTime"),
                ("retention.ms", "-1"),
            ],
        )
        .unwrap();
        for b in fixture_v1_batches() {
            clock.set(b.clock_ms);
            let p = log
                .partition(&TopicPartition::new(b.topic, b.partition))
                .unwrap();
            p.append(build_fixture_batch(&b)).unwrap();
        }
        log.close().unwrap();
    }
    let target = fixture_v1_dir();
    if target.exists() {
        std::fs::remove_dir_all(&target).unwrap();
    }
    copy_dir(tmp.path(), &target);
}

#[test]
fn the_v1_fixture_opens_with_every_record() {
    use std::collections::BTreeMap;

    if std::env::var("SLUICE_WRITE_FIXTURES").as_deref() == Ok("1") {
        return; // the writer is replacing the fixture right now
    }
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&fixture_v1_dir(), dir.path());
    // What the fixture must hold, per partition: (codec, records) per batch.
    type Batches = Vec<(sluice_log::Compression, Vec<FixtureRecord>)>;
    let mut want: BTreeMap<(String, i32), Batches> = BTreeMap::new();
    for b in fixture_v1_batches() {
        let mut records = b.records.clone();
        if b.topic == "audit" {
            for r in &mut records {
                r.timestamp = b.clock_ms;
            }
        }
        want.entry((b.topic.to_owned(), b.partition))
            .or_default()
            .push((b.compression, records));
    }
    let clock = MockClock::new(FIXTURE_T0 + 1_000_000);
    let log = open(dir.path(), &clock);
    assert_eq!(log.list_topics(), ["audit", "events"]);
    assert_eq!(log.partition_count("events").unwrap(), 2);
    let events = log.topic_config("events").unwrap();
    assert_eq!((events.segment_bytes, events.retention_ms), (1024, -1));
    assert_eq!(
        log.topic_config("audit").unwrap().message_timestamp_type,
        sluice_log::TimestampType::LogAppendTime
    );
    for ((topic, partition), batches) in &want {
        let p = log
            .partition(&TopicPartition::new(topic.as_str(), *partition))
            .unwrap();
        let ctx = format!("{topic}-{partition}");
        assert_eq!(p.log_start_offset(), 0, "{ctx}");
        if topic == "events" {
            assert!(
                p.segment_count() >= 3,
                "{ctx}: {} segments",
                p.segment_count()
            );
        }
        let mut at = 0;
        for (i, (codec, records)) in batches.iter().enumerate() {
            let data = p.read(at, 1).unwrap();
            let (h, range) = BatchIter::new(&data.records).next().unwrap();
            let batch = data.records.slice(range);
            record::validate(&batch).unwrap();
            assert_eq!(h.base_offset, at, "{ctx} batch {i}");
            assert_eq!(h.compression().unwrap(), *codec, "{ctx} batch {i}");
            let got: Vec<FixtureRecord> = decode_records(&batch, 1 << 24)
                .unwrap()
                .map(|r| {
                    let r = r.unwrap();
                    let s = |b: bytes::Bytes| String::from_utf8(b.to_vec()).unwrap();
                    FixtureRecord {
                        timestamp: r.timestamp,
                        key: r.key.map(s),
                        value: r.value.map(s),
                        headers: r
                            .headers
                            .into_iter()
                            .map(|h| (h.key, s(h.value.unwrap_or_default())))
                            .collect(),
                    }
                })
                .collect();
            assert_eq!(&got, records, "{ctx} batch {i}");
            at = h.next_offset();
        }
        assert_eq!(p.log_end_offset(), at, "{ctx}");
        assert_eq!(
            p.recovery_point(),
            at,
            "{ctx}: the fixture was closed cleanly"
        );
    }
    // Lookups by time, and appends continue after the fixture's data.
    let p = log.partition(&TopicPartition::new("events", 1)).unwrap();
    let first = want[&("events".to_owned(), 1)]
        .iter()
        .flat_map(|(_, rs)| rs)
        .position(|r| r.timestamp >= FIXTURE_T0 + 17_000)
        .unwrap() as i64;
    assert_eq!(
        p.offset_for_timestamp(FIXTURE_T0 + 17_000).unwrap(),
        Some((first, FIXTURE_T0 + 17_000))
    );
    let end = p.log_end_offset();
    assert_eq!(
        p.append(testing::batch(["later"], FIXTURE_T0 + 999_000))
            .unwrap()
            .base_offset,
        end
    );
    let audit = log.partition(&TopicPartition::new("audit", 0)).unwrap();
    assert_eq!(
        audit.offset_for_timestamp(FIXTURE_T0 + 200_025).unwrap(),
        Some((6, FIXTURE_T0 + 200_030))
    );
}

// ---------------------------------------------------------------------------------------------
// 7. Topic ids: each partition directory's `partition.metadata`, in Kafka's format.

fn partition_metadata(dir: &Path, topic: &str, partition: i32) -> String {
    let tp = TopicPartition::new(topic, partition);
    std::fs::read_to_string(dir.join(tp.dir_name()).join("partition.metadata")).unwrap()
}

#[test]
fn a_topic_id_is_written_in_every_partition_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let clock = MockClock::new(FIXTURE_T0);
    let (orders, audit) = {
        let log = open(dir.path(), &clock);
        log.create_topic("orders", 2, [("retention.ms", "-1")])
            .unwrap();
        log.create_topic("audit", 1, std::iter::empty::<(&str, &str)>())
            .unwrap();
        let (orders, audit) = (
            log.topic_id("orders").unwrap(),
            log.topic_id("audit").unwrap(),
        );
        assert_ne!(orders, audit);
        assert_eq!(log.topic_name(orders).as_deref(), Some("orders"));
        // A partition added later carries the topic's id.
        log.create_partitions("orders", 3).unwrap();
        log.close().unwrap();
        (orders, audit)
    };
    for p in 0..3 {
        assert_eq!(
            partition_metadata(dir.path(), "orders", p),
            format!("version: 0\ntopic_id: {orders}\n")
        );
    }
    let log = open(dir.path(), &clock);
    assert_eq!(log.topic_id("orders").unwrap(), orders);
    assert_eq!(log.topic_id("audit").unwrap(), audit);
    assert_eq!(log.topic_name(audit).as_deref(), Some("audit"));
    // Deleted, the id names no topic; created again, the name gets a new id.
    log.delete_topic("orders").unwrap();
    assert_eq!(log.topic_name(orders), None);
    assert!(log.topic_id("orders").is_err());
    log.create_topic("orders", 1, std::iter::empty::<(&str, &str)>())
        .unwrap();
    assert_ne!(log.topic_id("orders").unwrap(), orders);
    log.close().unwrap();
}

#[test]
fn a_directory_written_before_topic_ids_gets_one_per_topic_and_keeps_it() {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&fixture_v1_dir(), dir.path());
    assert!(
        !partition_dir(dir.path(), 0)
            .join("partition.metadata")
            .exists()
    );
    let clock = MockClock::new(FIXTURE_T0 + 1_000_000);
    let events = {
        let log = open(dir.path(), &clock);
        let events = log.topic_id("events").unwrap();
        assert_ne!(events, log.topic_id("audit").unwrap());
        log.close().unwrap();
        events
    };
    let want = format!("version: 0\ntopic_id: {events}\n");
    assert_eq!(partition_metadata(dir.path(), "events", 0), want);
    assert_eq!(partition_metadata(dir.path(), "events", 1), want);
    let log = open(dir.path(), &clock);
    assert_eq!(log.topic_id("events").unwrap(), events);
    log.close().unwrap();
    // A partition that lost its file gets the topic's id back from the others.
    let lost = dir
        .path()
        .join(TopicPartition::new("events", 1).dir_name())
        .join("partition.metadata");
    std::fs::remove_file(&lost).unwrap();
    let log = open(dir.path(), &clock);
    assert_eq!(log.topic_id("events").unwrap(), events);
    log.close().unwrap();
    assert_eq!(std::fs::read_to_string(&lost).unwrap(), want);
}

#[test]
fn partitions_that_disagree_on_their_topic_id_are_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let clock = MockClock::new(FIXTURE_T0);
    {
        let log = open(dir.path(), &clock);
        log.create_topic("t", 2, std::iter::empty::<(&str, &str)>())
            .unwrap();
        log.create_topic("u", 1, std::iter::empty::<(&str, &str)>())
            .unwrap();
        log.close().unwrap();
    }
    // Partition t-1 takes topic u's id, as if copied in from elsewhere.
    let u = std::fs::read_to_string(dir.path().join("u-0/partition.metadata")).unwrap();
    std::fs::write(partition_dir(dir.path(), 1).join("partition.metadata"), u).unwrap();
    let mut c = sluice_log::log::LogManagerConfig::new(dir.path());
    c.background = false;
    let e = sluice_log::log::LogManager::open(c).unwrap_err();
    let report = sluice_log::report(&e).to_string();
    assert!(
        report.contains("t-1/partition.metadata") && report.contains("differs from"),
        "{report}"
    );
}
