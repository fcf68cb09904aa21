//! Idempotent producers: retried batches come back as duplicates with their original offsets
//! (also after a clean reopen, a crash image and kill -9), sequence gaps and old epochs are
//! refused, the embedded producer stamps producer id, epoch and sequences, and a model-based run
//! of interleaved producers with retries and reopens holds every batch exactly once.

use std::collections::HashMap;
use std::path::Path;

use proptest::prelude::*;
use sluice_log::client::config::ProducerConfig;
use sluice_log::client::embedded::EmbeddedClient;
use sluice_log::client::{Admin, Client, NewTopic, Producer, ProducerRecord};
use sluice_log::log::{AppendInfo, LogManager, Partition};
use sluice_log::record::{BatchBuilder, BatchHeader, BatchIter};
use sluice_log::{Compression, Error, MockClock, TopicPartition};

use crate::log::open;

const TOPIC: &str = "t";

fn tp(partition: i32) -> TopicPartition {
    TopicPartition::new(TOPIC, partition)
}

/// A batch of `count` records from `pid`/`epoch` with sequences from `seq`; values name the
/// producer and each record's sequence.
fn idem_batch(pid: i64, epoch: i16, seq: i32, count: i32) -> Vec<u8> {
    let mut b = BatchBuilder::new(Compression::None).producer(pid, epoch, seq);
    for j in 0..count {
        b.append(
            1_000 + i64::from(j),
            None,
            Some(format!("p{pid}-e{epoch}-s{}", seq + j).as_bytes()),
            &[],
        );
    }
    b.build()
}

/// Every batch header of the partition, checking offsets are contiguous.
fn batches(p: &Partition) -> Vec<BatchHeader> {
    let mut out: Vec<BatchHeader> = Vec::new();
    let mut at = p.log_start_offset();
    while at < p.log_end_offset() {
        let data = p.read(at, 1 << 20).unwrap();
        let before = out.len();
        for (h, _) in BatchIter::new(&data.records) {
            if h.last_offset() >= at {
                assert_eq!(h.base_offset, at, "offsets are contiguous");
                at = h.next_offset();
                out.push(h);
            }
        }
        assert!(out.len() > before, "no progress at {at}");
    }
    out
}

/// Copies a data directory without its lock file: the image a kill -9 leaves.
fn crash_image(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            crash_image(&entry.path(), &target);
        } else if entry.file_name() != ".lock" {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn snapshots(pdir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(pdir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".snapshot"))
        .collect();
    v.sort();
    v
}

fn assert_duplicate(got: AppendInfo, original: AppendInfo) {
    assert!(got.duplicate, "{got:?} is a duplicate");
    assert_eq!(
        (got.base_offset, got.last_offset),
        (original.base_offset, original.last_offset)
    );
}

// ---------------------------------------------------------------------------------------------
// Duplicates, gaps, epochs.

#[test]
fn a_resent_batch_returns_its_original_offsets_and_appends_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let clock = MockClock::new(1_000_000);
    let log = open(dir.path(), &clock);
    // Small segments: rolls (and snapshots) happen between the batches.
    log.create_topic(TOPIC, 1, [("segment.bytes", "300")])
        .unwrap();
    let (pid, epoch) = log.init_producer_id().unwrap();
    let p = log.partition(&tp(0)).unwrap();
    p.append(sluice_log::record::testing::batch(["plain"], 1_000))
        .unwrap();
    let mut sent = Vec::new();
    let mut seq = 0;
    for count in [3, 1, 2, 4, 1, 2] {
        let info = p.append(idem_batch(pid, epoch, seq, count)).unwrap();
        assert!(!info.duplicate);
        sent.push((seq, count, info));
        seq += count;
    }
    let end = p.log_end_offset();
    assert!(p.segment_count() > 2, "{} segments", p.segment_count());
    let resend_last_five = |p: &Partition| {
        for &(seq, count, info) in &sent[1..] {
            assert_duplicate(p.append(idem_batch(pid, epoch, seq, count)).unwrap(), info);
        }
        assert_eq!(p.log_end_offset(), end, "a duplicate appends nothing");
    };
    resend_last_five(&p);
    // The oldest batch is no longer cached: its sequence is out of order now.
    let err = p.append(idem_batch(pid, epoch, 0, 3)).unwrap_err();
    assert!(matches!(err, Error::OutOfOrderSequence { .. }), "{err}");

    // A crash image before anything was fsynced: the roll snapshots are past the recovery
    // point, so they are not trusted (deleted) and the whole log is replayed.
    let image = tempfile::tempdir().unwrap();
    crash_image(dir.path(), image.path());
    let image_pdir = image.path().join(tp(0).dir_name());
    assert!(!snapshots(&image_pdir).is_empty());
    {
        let crashed = open(image.path(), &clock);
        assert!(snapshots(&image_pdir).is_empty());
        resend_last_five(&crashed.partition(&tp(0)).unwrap());
    }
    // After a flush and checkpoint: the newest roll snapshot plus a replay of what follows.
    log.flush_all().unwrap();
    log.checkpoint().unwrap();
    let image = tempfile::tempdir().unwrap();
    crash_image(dir.path(), image.path());
    let image_pdir = image.path().join(tp(0).dir_name());
    let before = snapshots(&image_pdir);
    {
        let crashed = open(image.path(), &clock);
        assert_eq!(snapshots(&image_pdir), before, "trusted snapshots stay");
        resend_last_five(&crashed.partition(&tp(0)).unwrap());
    }
    // A clean close writes a snapshot at the log end; the reopened log needs no replay.
    drop(p);
    log.close().unwrap();
    drop(log);
    let pdir = dir.path().join(tp(0).dir_name());
    let snaps = snapshots(&pdir);
    assert!(snaps.len() <= 2, "old snapshots are deleted: {snaps:?}");
    assert_eq!(snaps.last().unwrap(), &format!("{end:020}.snapshot"));
    let log = open(dir.path(), &clock);
    let p = log.partition(&tp(0)).unwrap();
    resend_last_five(&p);
    // The producer goes on where it was.
    let next = p.append(idem_batch(pid, epoch, seq, 1)).unwrap();
    assert_eq!((next.base_offset, next.duplicate), (end, false));
    let seqs: Vec<i32> = batches(&p).iter().map(|h| h.base_sequence).collect();
    assert_eq!(seqs, [-1, 0, 3, 4, 6, 10, 11, 13]);
}

#[test]
fn a_sequence_gap_or_an_old_epoch_is_refused_and_appends_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let clock = MockClock::new(1_000_000);
    let log = open(dir.path(), &clock);
    log.create_topic(TOPIC, 1, std::iter::empty::<(&str, &str)>())
        .unwrap();
    let (pid, _) = log.init_producer_id().unwrap();
    let p = log.partition(&tp(0)).unwrap();
    p.append(idem_batch(pid, 0, 0, 3)).unwrap();
    let end = p.log_end_offset();
    let err = p.append(idem_batch(pid, 0, 5, 1)).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("out of order sequence number for producer {pid} on t-0: expected 3, received 5")
    );
    assert!(
        matches!(err, Error::OutOfOrderSequence { producer_id, expected: 3, got: 5, ref tp }
            if producer_id == pid && *tp == self::tp(0))
    );
    assert_eq!(p.log_end_offset(), end);
    // A new epoch starts over at 0 and fences the old one.
    let err = p.append(idem_batch(pid, 1, 3, 1)).unwrap_err();
    assert!(
        matches!(
            err,
            Error::OutOfOrderSequence {
                expected: 0,
                got: 3,
                ..
            }
        ),
        "{err}"
    );
    p.append(idem_batch(pid, 1, 0, 2)).unwrap();
    let end = p.log_end_offset();
    let err = p.append(idem_batch(pid, 0, 3, 1)).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("producer {pid} on t-0 has epoch 0, older than its current epoch 1")
    );
    assert!(matches!(
        err,
        Error::InvalidProducerEpoch {
            current: 1,
            got: 0,
            ..
        }
    ));
    // A retry from the fenced epoch is not a duplicate either.
    assert!(p.append(idem_batch(pid, 0, 0, 3)).is_err());
    assert_eq!(p.log_end_offset(), end);
    // Another producer id is unaffected, and an unknown one may start at any sequence.
    let (other, _) = log.init_producer_id().unwrap();
    assert!(other > pid);
    assert!(!p.append(idem_batch(other, 0, 42, 1)).unwrap().duplicate);
}

#[test]
fn producer_ids_are_unique_across_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let clock = MockClock::new(0);
    let mut seen = Vec::new();
    for _ in 0..3 {
        let log = open(dir.path(), &clock);
        for _ in 0..5 {
            let (pid, epoch) = log.init_producer_id().unwrap();
            assert_eq!(epoch, 0);
            seen.push(pid);
        }
    }
    let mut sorted = seen.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted, seen, "increasing, never repeated");
}

#[test]
fn retention_forgets_producers_whose_batches_are_gone() {
    let dir = tempfile::tempdir().unwrap();
    let clock = MockClock::new(1_000_000);
    let log = open(dir.path(), &clock);
    log.create_topic(TOPIC, 1, [("segment.bytes", "200")])
        .unwrap();
    let p = log.partition(&tp(0)).unwrap();
    let first = p.append(idem_batch(7, 0, 0, 2)).unwrap();
    for i in 0..5 {
        p.append(idem_batch(8, 0, i, 1)).unwrap();
    }
    p.delete_records(first.last_offset + 1).unwrap();
    // Producer 7's only batch is gone: a retry of it is a new batch now (Kafka does the same).
    assert!(!p.append(idem_batch(7, 0, 0, 2)).unwrap().duplicate);
    // Producer 8 still deduplicates, also after a crash image is reopened.
    let image = tempfile::tempdir().unwrap();
    crash_image(dir.path(), image.path());
    let log2 = open(image.path(), &clock);
    let p2 = log2.partition(&tp(0)).unwrap();
    assert!(p2.append(idem_batch(8, 0, 4, 1)).unwrap().duplicate);
    assert!(p2.append(idem_batch(7, 0, 0, 2)).unwrap().duplicate);
}

#[test]
fn idle_producers_expire_after_producer_id_expiration_ms() {
    let dir = tempfile::tempdir().unwrap();
    let clock = MockClock::new(1_000_000);
    let mut c = sluice_log::log::LogManagerConfig::new(dir.path());
    c.clock = std::sync::Arc::new(clock.clone());
    c.background = false;
    c.producer_id_expiration_ms = 10_000;
    let log = LogManager::open(c).unwrap();
    log.create_topic(TOPIC, 1, std::iter::empty::<(&str, &str)>())
        .unwrap();
    let p = log.partition(&tp(0)).unwrap();
    p.append(idem_batch(3, 0, 0, 1)).unwrap();
    clock.advance(9_999);
    assert!(p.append(idem_batch(3, 0, 0, 1)).unwrap().duplicate);
    clock.advance(10_000);
    // Forgotten: the same batch is new again.
    assert!(!p.append(idem_batch(3, 0, 0, 1)).unwrap().duplicate);
}

// ---------------------------------------------------------------------------------------------
// The embedded producer.

#[tokio::test]
async fn the_embedded_producer_stamps_producer_id_epoch_and_sequences() {
    let dir = tempfile::tempdir().unwrap();
    let clock = MockClock::new(1_700_000_000_000);
    let mut c = sluice_log::log::LogManagerConfig::new(dir.path());
    c.clock = std::sync::Arc::new(clock.clone());
    c.background = false;
    let log = LogManager::open(c).unwrap();
    let client = EmbeddedClient::new(log.clone());
    client
        .admin()
        .unwrap()
        .create_topics(vec![
            NewTopic::new(TOPIC, 2).config("max.message.bytes", "400"),
        ])
        .await
        .unwrap();
    // Defaults: idempotence on. Small batches, so each partition gets several.
    let producer = client
        .producer(ProducerConfig::from_pairs([("batch.size", "120"), ("linger.ms", "0")]).unwrap())
        .unwrap();
    let (pid, epoch) = producer.producer_id_and_epoch().unwrap();
    assert_eq!(epoch, 0);
    let mut futures = Vec::new();
    for i in 0..60 {
        let rec = ProducerRecord::new(TOPIC, format!("value-{i}")).partition(i % 2);
        futures.push(producer.send(rec).await.unwrap());
        if i == 30 {
            // A batch the partition refuses (too large) must not leave a sequence gap. Flushed
            // first, so it is a batch of its own.
            producer.flush().await.unwrap();
            let big = ProducerRecord::new(TOPIC, "x".repeat(600)).partition(0);
            let f = producer.send(big).await.unwrap();
            assert!(f.await.is_err());
        }
    }
    for f in futures {
        f.await.unwrap();
    }
    for part in 0..2 {
        let hs = batches(&log.partition(&tp(part)).unwrap());
        assert!(hs.len() > 2, "partition {part}: {} batches", hs.len());
        let mut next = 0;
        for h in &hs {
            assert_eq!((h.producer_id, h.producer_epoch), (pid, 0));
            assert_eq!(
                h.base_sequence, next,
                "partition {part}: sequences are contiguous"
            );
            next += h.record_count;
        }
        assert_eq!(next, 30);
    }
    // Another producer gets another id; without idempotence no id is stamped.
    let second = client.producer(ProducerConfig::default()).unwrap();
    assert!(second.producer_id_and_epoch().unwrap().0 > pid);
    let plain = client
        .producer(ProducerConfig::from_pairs([("enable.idempotence", "false")]).unwrap())
        .unwrap();
    assert_eq!(plain.producer_id_and_epoch(), None);
    plain
        .send(ProducerRecord::new(TOPIC, "plain").partition(1))
        .await
        .unwrap()
        .await
        .unwrap();
    let last = *batches(&log.partition(&tp(1)).unwrap()).last().unwrap();
    assert_eq!((last.producer_id, last.base_sequence), (-1, -1));
}

// ---------------------------------------------------------------------------------------------
// kill -9: acknowledged idempotent batches resent after the crash are duplicates.

/// Set in the child process: the data directory it writes to.
const KILL_CHILD_ENV: &str = "SLUICE_IDEM_CHILD";
const KILL_TEST: &str = "idempotence::resent_batches_after_kill_9_are_duplicates";
const KILL_WRITERS: i32 = 3;
const KILL_PARTITIONS: i32 = 2;
const KILL_ACKS: usize = 120;
/// Batches resent per writer after the crash: the last acknowledged ones. The child appends
/// one batch at a time, so at most one unacknowledged batch follows them and all are among the
/// last five the partition remembers.
const KILL_RESEND: usize = 4;

/// Records in a writer's batch number `i` (so both processes know every batch's sequences).
fn kill_batch_len(i: u32) -> i32 {
    1 + (i % 3) as i32
}

fn kill_batch_seq(i: u32) -> i32 {
    (0..i).map(kill_batch_len).sum()
}

/// One acknowledged batch: writer, producer id, batch number, base and last offset.
type KillAck = (i32, i64, u32, i64, i64);

#[test]
fn resent_batches_after_kill_9_are_duplicates() {
    if let Ok(dir) = std::env::var(KILL_CHILD_ENV) {
        kill_child(Path::new(&dir));
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut pids_before = Vec::new();
    for round in 0..2 {
        let acks = run_and_kill(dir.path());
        let pids: Vec<i64> = acks.iter().map(|a| a.1).collect();
        assert!(
            pids.iter().all(|p| pids_before.iter().all(|q| p > q)),
            "round {round}: producer ids after a crash are new"
        );
        pids_before.extend(pids);
        // Check a crash image, so the next child recovers the original itself.
        let image = tempfile::tempdir().unwrap();
        crash_image(dir.path(), image.path());
        check_kill_image(image.path(), &acks);
    }
}

fn run_and_kill(dir: &Path) -> Vec<KillAck> {
    use std::time::{Duration, Instant};

    let child = crate::child::spawn(KILL_TEST, &[(KILL_CHILD_ENV, dir.display().to_string())]);
    let parse = |line: &str| -> Option<KillAck> {
        let f: Vec<&str> = line.strip_prefix("ack ")?.split(' ').collect();
        Some((
            f.first()?.parse().ok()?,
            f.get(1)?.parse().ok()?,
            f.get(2)?.parse().ok()?,
            f.get(3)?.parse().ok()?,
            f.get(4)?.parse().ok()?,
        ))
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut acks = Vec::new();
    while acks.len() < KILL_ACKS {
        let left = deadline.saturating_duration_since(Instant::now());
        match child.lines.recv_timeout(left) {
            Ok(line) => acks.extend(parse(&line)),
            Err(e) => {
                child.kill();
                panic!("child stopped acknowledging after {} acks: {e}", acks.len());
            }
        }
    }
    // Acks printed after the count was reached are acknowledged too.
    acks.extend(child.kill().iter().filter_map(|l| parse(l)));
    acks
}

/// The child: writers, each an idempotent producer on partition `writer % 2`, append one batch
/// at a time, wait until it is durable, and print `ack <writer> <pid> <batch> <base> <last>`.
fn kill_child(dir: &Path) {
    use std::io::Write;
    use std::time::{Duration, Instant};

    let mut config = sluice_log::log::LogManagerConfig::new(dir);
    config.checkpoint_interval = Duration::from_millis(50);
    let log = LogManager::open(config).unwrap();
    if log.list_topics().is_empty() {
        log.create_topic(TOPIC, KILL_PARTITIONS, [("segment.bytes", "2048")])
            .unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    std::thread::scope(|s| {
        for w in 0..KILL_WRITERS {
            let log = &log;
            s.spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .build()
                    .unwrap();
                let (pid, epoch) = log.init_producer_id().unwrap();
                let p = log.partition(&tp(w % KILL_PARTITIONS)).unwrap();
                let mut i = 0;
                while Instant::now() < deadline {
                    let a = p
                        .append(idem_batch(pid, epoch, kill_batch_seq(i), kill_batch_len(i)))
                        .unwrap();
                    assert!(!a.duplicate);
                    rt.block_on(p.wait_durable(a.last_offset + 1)).unwrap();
                    let mut out = std::io::stdout().lock();
                    writeln!(out, "ack {w} {pid} {i} {} {}", a.base_offset, a.last_offset).unwrap();
                    out.flush().unwrap();
                    i += 1;
                }
            });
        }
    });
    std::process::exit(0);
}

/// Reopens a crash image, resends each writer's last acknowledged batches (duplicates, at their
/// original offsets) and the batch after them (appended once, or a duplicate if the child got
/// it in before dying), then checks every writer's batches are in the log exactly once, in
/// order, without gaps.
fn check_kill_image(dir: &Path, acks: &[KillAck]) {
    let clock = MockClock::new(0);
    let log = open(dir, &clock);
    let mut by_pid: HashMap<i64, (i32, Vec<&KillAck>)> = HashMap::new();
    for a in acks {
        by_pid.entry(a.1).or_insert((a.0, Vec::new())).1.push(a);
    }
    for (&pid, (w, acked)) in &by_pid {
        let p = log.partition(&tp(w % KILL_PARTITIONS)).unwrap();
        for &&(_, _, i, base, last) in acked.iter().rev().take(KILL_RESEND).rev() {
            let got = p
                .append(idem_batch(pid, 0, kill_batch_seq(i), kill_batch_len(i)))
                .unwrap_or_else(|e| panic!("writer {w}: resending batch {i}: {e}"));
            assert!(got.duplicate, "writer {w}: batch {i} was appended twice");
            assert_eq!((got.base_offset, got.last_offset), (base, last));
        }
        let next = acked.last().map_or(0, |a| a.2 + 1);
        p.append(idem_batch(
            pid,
            0,
            kill_batch_seq(next),
            kill_batch_len(next),
        ))
        .unwrap_or_else(|e| panic!("writer {w}: sending batch {next}: {e}"));
    }
    for part in 0..KILL_PARTITIONS {
        let p = log.partition(&tp(part)).unwrap();
        let mut next_batch: HashMap<i64, u32> = HashMap::new();
        for h in batches(&p) {
            let i = next_batch.entry(h.producer_id).or_insert(0);
            assert_eq!(
                (h.base_sequence, h.record_count),
                (kill_batch_seq(*i), kill_batch_len(*i)),
                "partition {part}: producer {} batch {i} at offset {}",
                h.producer_id,
                h.base_offset
            );
            *i += 1;
        }
        for (&pid, (w, acked)) in &by_pid {
            if w % KILL_PARTITIONS == part {
                let last = acked.last().map_or(0, |a| a.2);
                assert_eq!(next_batch.get(&pid).copied(), Some(last + 2), "writer {w}");
            }
        }
    }
    log.close().unwrap();
}

// ---------------------------------------------------------------------------------------------
// Model-based: interleaved producers, retries, reopens.

#[derive(Debug, Clone)]
enum Op {
    /// The producer's next batch of `count` records.
    Send { producer: usize, count: i32 },
    /// Resends the producer's batch `back` places before its last (if there is one).
    Retry { producer: usize, back: usize },
    /// Closes and reopens the log; `crash`: reopens a crash image instead (no close snapshot).
    Reopen { crash: bool },
}

const MODEL_PRODUCERS: usize = 3;

fn arb_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..MODEL_PRODUCERS, 1..4i32).prop_map(|(producer, count)| Op::Send { producer, count }),
        4 => (0..MODEL_PRODUCERS, 0..5usize).prop_map(|(producer, back)| Op::Retry { producer, back }),
        1 => any::<bool>().prop_map(|crash| Op::Reopen { crash }),
    ]
}

/// A batch as the model knows it: producer, first sequence, records, offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Sent {
    producer: usize,
    seq: i32,
    count: i32,
    base: i64,
    last: i64,
}

fn run_model(ops: &[Op]) {
    let clock = MockClock::new(1_000_000);
    let mut dirs = vec![tempfile::tempdir().unwrap()];
    let mut log = open(dirs[0].path(), &clock);
    log.create_topic(TOPIC, 1, [("segment.bytes", "400")])
        .unwrap();
    let pids: Vec<i64> = (0..MODEL_PRODUCERS)
        .map(|_| log.init_producer_id().unwrap().0)
        .collect();
    let mut p = log.partition(&tp(0)).unwrap();
    let mut in_log: Vec<Sent> = Vec::new();
    let mut per_producer: Vec<Vec<Sent>> = vec![Vec::new(); MODEL_PRODUCERS];
    for (step, op) in ops.iter().enumerate() {
        match *op {
            Op::Send { producer, count } => {
                let seq = per_producer[producer].last().map_or(0, |s| s.seq + s.count);
                let a = p.append(idem_batch(pids[producer], 0, seq, count)).unwrap();
                assert!(!a.duplicate, "step {step}: {op:?}");
                assert_eq!(a.base_offset, in_log.last().map_or(0, |s| s.last + 1));
                let sent = Sent {
                    producer,
                    seq,
                    count,
                    base: a.base_offset,
                    last: a.last_offset,
                };
                in_log.push(sent);
                per_producer[producer].push(sent);
            }
            Op::Retry { producer, back } => {
                let mine = &per_producer[producer];
                let Some(s) = mine.len().checked_sub(back + 1).map(|i| mine[i]) else {
                    continue;
                };
                let a = p
                    .append(idem_batch(pids[producer], 0, s.seq, s.count))
                    .unwrap_or_else(|e| panic!("step {step}: {op:?}: {e}"));
                assert!(a.duplicate, "step {step}: {op:?}");
                assert_eq!(
                    (a.base_offset, a.last_offset),
                    (s.base, s.last),
                    "step {step}"
                );
            }
            Op::Reopen { crash } => {
                drop(p);
                if crash {
                    let image = tempfile::tempdir().unwrap();
                    crash_image(dirs.last().unwrap().path(), image.path());
                    drop(log);
                    dirs.push(image);
                } else {
                    log.close().unwrap();
                    drop(log);
                }
                log = open(dirs.last().unwrap().path(), &clock);
                p = log.partition(&tp(0)).unwrap();
            }
        }
        assert_eq!(p.log_end_offset(), in_log.last().map_or(0, |s| s.last + 1));
    }
    let got: Vec<(i64, i32, i32, i64)> = batches(&p)
        .iter()
        .map(|h| {
            (
                h.producer_id,
                h.base_sequence,
                h.record_count,
                h.base_offset,
            )
        })
        .collect();
    let want: Vec<(i64, i32, i32, i64)> = in_log
        .iter()
        .map(|s| (pids[s.producer], s.seq, s.count, s.base))
        .collect();
    assert_eq!(got, want, "each batch exactly once, in order");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn interleaved_producers_with_retries_and_reopens_hold_each_batch_once(
        ops in proptest::collection::vec(arb_op(), 1..60)
    ) {
        run_model(&ops);
    }
}
