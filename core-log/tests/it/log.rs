//! The partitioned log through `LogManager`: append, read, indexes, reopen, recovery,
//! retention, the lock file.

use std::sync::Arc;

use bytes::Bytes;
use sluice_log::log::{LogManager, LogManagerConfig};
use sluice_log::record::{BatchIter, decode_records, testing};
use sluice_log::{Error, MockClock, TopicPartition};

pub(crate) fn open(dir: &std::path::Path, clock: &MockClock) -> LogManager {
    let mut c = LogManagerConfig::new(dir);
    c.clock = Arc::new(clock.clone());
    c.background = false;
    LogManager::open(c).unwrap()
}

/// Every value from `from` to the log end, reading `max_bytes` at a time.
pub(crate) fn read_all(p: &sluice_log::log::Partition, from: i64, max_bytes: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut at = from;
    for _ in 0..100_000 {
        if at >= p.log_end_offset() {
            break;
        }
        let data = p.read(at, max_bytes).unwrap();
        let vs = values(&data.records, at);
        assert!(!vs.is_empty(), "no progress at {at}");
        at += vs.len() as i64;
        out.extend(vs);
    }
    out
}

pub(crate) fn values(bytes: &Bytes, from: i64) -> Vec<String> {
    let mut out = Vec::new();
    for (_, range) in BatchIter::new(bytes) {
        for r in decode_records(&bytes.slice(range), 1 << 24).unwrap() {
            let r = r.unwrap();
            if r.offset >= from {
                out.push(String::from_utf8(r.value.unwrap().to_vec()).unwrap());
            }
        }
    }
    out
}

#[test]
fn appends_get_consecutive_offsets_and_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let clock = MockClock::new(1_000_000);
    let log = open(dir.path(), &clock);
    log.create_topic("orders", 3, [("segment.bytes", "1000")])
        .unwrap();
    let p = log.partition(&TopicPartition::new("orders", 1)).unwrap();
    let mut expect = Vec::new();
    for i in 0..100 {
        let a = p
            .append(testing::batch(
                [format!("v{i}a").as_str(), format!("v{i}b").as_str()],
                1_000_000 + i,
            ))
            .unwrap();
        assert_eq!(a.base_offset, 2 * i);
        assert_eq!(a.last_offset, 2 * i + 1);
        expect.push(format!("v{i}a"));
        expect.push(format!("v{i}b"));
    }
    assert_eq!(p.log_end_offset(), 200);
    assert!(
        p.segment_count() > 5,
        "segment.bytes=1000 rolls: {}",
        p.segment_count()
    );
    // Read everything from any offset, across segments.
    for start in [0, 1, 57, 150, 199] {
        let mut got = Vec::new();
        let mut at = start;
        while at < 200 {
            let data = p.read(at, 300).unwrap();
            let vs = values(&data.records, at);
            assert!(!vs.is_empty());
            at += vs.len() as i64;
            got.extend(vs);
        }
        assert_eq!(got, expect[start as usize..]);
    }
    assert!(p.read(200, 100).unwrap().records.is_empty());
    assert!(matches!(
        p.read(201, 100),
        Err(Error::OffsetOutOfRange { .. })
    ));
}

#[test]
fn reopen_keeps_everything_and_continues_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let clock = MockClock::new(5_000);
    {
        let log = open(dir.path(), &clock);
        log.create_topic("t", 2, [("segment.bytes", "500"), ("retention.ms", "-1")])
            .unwrap();
        let p = log.partition(&TopicPartition::new("t", 0)).unwrap();
        for i in 0..50 {
            p.append(testing::batch([format!("r{i}").as_str()], 5_000 + i))
                .unwrap();
        }
        log.close().unwrap();
    }
    let log = open(dir.path(), &clock);
    assert_eq!(log.list_topics(), ["t"]);
    assert_eq!(log.partition_count("t").unwrap(), 2);
    assert_eq!(log.topic_config("t").unwrap().retention_ms, -1);
    let p = log.partition(&TopicPartition::new("t", 0)).unwrap();
    assert_eq!(p.log_end_offset(), 50);
    assert_eq!(
        p.append(testing::batch(["next"], 9_000))
            .unwrap()
            .base_offset,
        50
    );
    assert_eq!(read_all(&p, 49, 1000), ["r49", "next"]);
    assert_eq!(p.offset_for_timestamp(5_010).unwrap(), Some((10, 5_010)));
    assert_eq!(p.offset_for_timestamp(8_000).unwrap(), Some((50, 9_000)));
    assert_eq!(p.offset_for_timestamp(10_000).unwrap(), None);
}

#[test]
fn a_second_process_cannot_open_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let clock = MockClock::new(0);
    let _log = open(dir.path(), &clock);
    let mut c = LogManagerConfig::new(dir.path());
    c.background = false;
    let err = LogManager::open(c).unwrap_err();
    assert!(matches!(err, Error::DirectoryLocked { .. }), "{err}");
    assert!(
        err.to_string()
            .contains(&format!("pid {}", std::process::id())),
        "{err}"
    );
}

/// `close` frees the directory even while some handle (a thread finishing its last flush, a
/// clone not dropped yet) still exists: the next open succeeds at once.
#[test]
fn close_frees_the_directory_while_a_handle_remains() {
    let dir = tempfile::tempdir().unwrap();
    let clock = MockClock::new(0);
    let log = open(dir.path(), &clock);
    log.create_topic("t", 1, None::<(&str, &str)>).unwrap();
    let lingering = log.clone();
    log.close().unwrap();
    drop(log);
    let reopened = open(dir.path(), &clock);
    assert_eq!(reopened.list_topics(), ["t"]);
    drop(lingering);
    // The old handle's last drop must not disturb the new owner's lock.
    let mut c = LogManagerConfig::new(dir.path());
    c.background = false;
    assert!(matches!(
        LogManager::open(c),
        Err(Error::DirectoryLocked { .. })
    ));
}

#[test]
fn retention_by_time_and_size_deletes_whole_segments() {
    let dir = tempfile::tempdir().unwrap();
    let clock = MockClock::new(1_000_000);
    let log = open(dir.path(), &clock);
    log.create_topic(
        "logs",
        1,
        [("segment.bytes", "300"), ("retention.ms", "60000")],
    )
    .unwrap();
    let p = log.partition(&TopicPartition::new("logs", 0)).unwrap();
    for i in 0..30 {
        p.append(testing::batch(["0123456789"], 1_000_000 + i))
            .unwrap();
    }
    let segs = p.segment_count();
    assert!(segs > 3);
    assert_eq!(log.run_retention().unwrap(), 0, "nothing is old yet");
    clock.advance(61_000);
    p.append(testing::batch(["fresh"], 1_061_000)).unwrap();
    let deleted = log.run_retention().unwrap();
    assert_eq!(deleted, segs, "every segment of old records goes");
    assert_eq!(p.log_start_offset(), 30);
    assert_eq!(values(&p.read(30, 1000).unwrap().records, 30), ["fresh"]);
    assert!(matches!(
        p.read(0, 100),
        Err(Error::OffsetOutOfRange { .. })
    ));

    log.alter_topic_config(
        "logs",
        [("retention.ms", "-1"), ("retention.bytes", "600")],
        None::<&str>,
    )
    .unwrap();
    for i in 0..30 {
        p.append(testing::batch(["0123456789"], 1_061_000 + i))
            .unwrap();
    }
    log.run_retention().unwrap();
    assert!(p.size_bytes() <= 600 + 300, "size {}", p.size_bytes());
    assert_eq!(p.log_end_offset(), 61);
}

#[test]
fn delete_records_moves_the_log_start() {
    let dir = tempfile::tempdir().unwrap();
    let clock = MockClock::new(0);
    let log = open(dir.path(), &clock);
    log.create_topic("t", 1, [("segment.bytes", "200")])
        .unwrap();
    let p = log.partition(&TopicPartition::new("t", 0)).unwrap();
    for _ in 0..20 {
        p.append(testing::batch(["x"], 0)).unwrap();
    }
    assert_eq!(p.delete_records(12).unwrap(), 12);
    assert_eq!(p.log_start_offset(), 12);
    assert!(p.read(11, 100).is_err());
    assert_eq!(read_all(&p, 12, 10_000).len(), 8);
    assert!(p.delete_records(21).is_err());
    drop(p);
    log.close().unwrap();
    drop(log);
    let log = open(dir.path(), &clock);
    assert_eq!(
        log.partition(&TopicPartition::new("t", 0))
            .unwrap()
            .log_start_offset(),
        12
    );
}

#[test]
fn bad_topics_and_configs_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), &MockClock::new(0));
    let e = log
        .create_topic("bad/name", 1, None::<(&str, &str)>)
        .unwrap_err();
    assert!(e.to_string().contains("bad/name"), "{e}");
    let e = log.create_topic("t", 0, None::<(&str, &str)>).unwrap_err();
    assert!(matches!(e, Error::InvalidPartitions { .. }));
    let e = log
        .create_topic("t", 1, [("retention.mss", "1")])
        .unwrap_err();
    assert!(e.to_string().contains("retention.mss"), "{e}");
    let e = log
        .create_topic("t", 1, [("cleanup.policy", "shred")])
        .unwrap_err();
    assert!(e.to_string().contains("cleanup.policy"), "{e}");
    log.create_topic("t", 1, None::<(&str, &str)>).unwrap();
    assert!(matches!(
        log.create_topic("t", 1, None::<(&str, &str)>),
        Err(Error::TopicExists(_))
    ));
    let p = log.partition(&TopicPartition::new("t", 0)).unwrap();
    let e = p.append(vec![0; 70]).unwrap_err();
    assert!(matches!(e, Error::CorruptRecord(_)), "{e}");
    log.alter_topic_config("t", [("max.message.bytes", "100")], None::<&str>)
        .unwrap();
    let e = p
        .append(testing::batch(["a".repeat(200).as_str()], 0))
        .unwrap_err();
    assert!(matches!(e, Error::MessageTooLarge { .. }), "{e}");
}

#[test]
fn timestamps_are_found_before_and_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let clock = MockClock::new(5_000);
    let log = open(dir.path(), &clock);
    log.create_topic("t", 1, [("segment.bytes", "500")])
        .unwrap();
    let p = log.partition(&TopicPartition::new("t", 0)).unwrap();
    for i in 0..50 {
        p.append(testing::batch([format!("r{i}").as_str()], 5_000 + i))
            .unwrap();
    }
    for ts in 5000..5050 {
        assert_eq!(
            p.offset_for_timestamp(ts).unwrap(),
            Some((ts - 5000, ts)),
            "ts {ts}"
        );
    }
    drop(p);
    log.close().unwrap();
    drop(log);
    let log = open(dir.path(), &clock);
    let p = log.partition(&TopicPartition::new("t", 0)).unwrap();
    for ts in 5000..5050 {
        assert_eq!(
            p.offset_for_timestamp(ts).unwrap(),
            Some((ts - 5000, ts)),
            "ts {ts}"
        );
    }
}

#[test]
fn topic_compression_recompresses_and_timestamps_are_bounded() {
    use sluice_log::Compression;
    use sluice_log::record::BatchHeader;
    let dir = tempfile::tempdir().unwrap();
    let clock = MockClock::new(1_000_000);
    let log = open(dir.path(), &clock);
    log.create_topic(
        "z",
        1,
        [
            ("compression.type", "zstd"),
            ("message.timestamp.after.max.ms", "1000"),
            ("message.timestamp.before.max.ms", "5000"),
        ],
    )
    .unwrap();
    let p = log.partition(&TopicPartition::new("z", 0)).unwrap();
    p.append(testing::batch(["a", "b", "c"], 999_000)).unwrap();
    let data = p.read(0, 10_000).unwrap();
    assert_eq!(
        BatchHeader::parse(&data.records)
            .unwrap()
            .compression()
            .unwrap(),
        Compression::Zstd
    );
    assert_eq!(values(&data.records, 0), ["a", "b", "c"]);
    let e = p.append(testing::batch(["future"], 1_002_000)).unwrap_err();
    assert!(
        matches!(e, Error::InvalidTimestamp { .. })
            && e.to_string().contains("message.timestamp.after.max.ms"),
        "{e}"
    );
    let e = p.append(testing::batch(["past"], 990_000)).unwrap_err();
    assert!(
        e.to_string().contains("message.timestamp.before.max.ms"),
        "{e}"
    );
    assert_eq!(p.log_end_offset(), 3);
}

#[test]
fn a_failed_write_takes_the_directory_offline_for_writes_and_reads_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let clock = MockClock::new(0);
    let log = open(dir.path(), &clock);
    log.create_topic("t", 1, [("segment.bytes", "200")])
        .unwrap();
    log.create_topic("other", 1, None::<(&str, &str)>).unwrap();
    let p = log.partition(&TopicPartition::new("t", 0)).unwrap();
    p.append(testing::batch(["a", "b"], 0)).unwrap();
    p.append(testing::batch(["c"], 0)).unwrap();
    // The next roll opens the segment for offset 3: make that file a disk that is always full.
    let next = dir
        .path()
        .join("t-0")
        .join(format!("{:020}.log", p.log_end_offset()));
    std::os::unix::fs::symlink("/dev/full", &next).unwrap();
    let mut err = None;
    for _ in 0..10 {
        if let Err(e) = p.append(testing::batch(
            ["0123456789012345678901234567890123456789"],
            0,
        )) {
            err = Some(e);
            break;
        }
    }
    let err = err.expect("a write to a full disk fails");
    assert!(
        err.to_string().contains(&next.display().to_string()) || matches!(err, Error::Io { .. }),
        "{err}"
    );
    // Offline for writes, everywhere in the directory; what was acknowledged stays readable.
    let e = p.append(testing::batch(["d"], 0)).unwrap_err();
    assert!(matches!(e, Error::LogDirOffline { .. }), "{e}");
    let other = log.partition(&TopicPartition::new("other", 0)).unwrap();
    assert!(matches!(
        other.append(testing::batch(["x"], 0)),
        Err(Error::LogDirOffline { .. })
    ));
    assert_eq!(read_all(&p, 0, 10_000)[..3], ["a", "b", "c"]);
    assert!(log.create_topic("new", 1, None::<(&str, &str)>).is_err());
}

#[test]
fn dropping_the_last_handle_closes_the_log_and_frees_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    for round in 0..3 {
        let log = LogManager::open(LogManagerConfig::new(dir.path())).unwrap();
        if round == 0 {
            log.create_topic("t", 1, None::<(&str, &str)>).unwrap();
        }
        let p = log.partition(&TopicPartition::new("t", 0)).unwrap();
        assert_eq!(
            p.append(testing::batch(["x"], 0)).unwrap().base_offset,
            round
        );
        // No close(): background threads must not keep the log (and its lock) alive.
    }
}

/// A long-poll's wake-up fires on appends to the partitions it watches (and their deletion),
/// not on appends elsewhere; one watching a partition that does not exist yet wakes on any.
#[test]
fn append_signals_fire_only_for_their_partitions() {
    use std::future::Future;
    use std::task::{Context, Waker};
    fn fired(s: &mut sluice_log::log::AppendSignal) -> bool {
        std::pin::Pin::new(s)
            .poll(&mut Context::from_waker(Waker::noop()))
            .is_ready()
    }
    let dir = tempfile::tempdir().unwrap();
    let clock = MockClock::new(1_000_000);
    let log = open(dir.path(), &clock);
    log.create_topic("a", 2, None::<(&str, &str)>).unwrap();
    log.create_topic("b", 1, None::<(&str, &str)>).unwrap();
    let (a0, a1, b0) = (
        TopicPartition::new("a", 0),
        TopicPartition::new("a", 1),
        TopicPartition::new("b", 0),
    );
    let mut on_a = log.next_append_to([&a0, &a1]);
    let later = TopicPartition::new("later", 0);
    let mut on_missing = log.next_append_to([&later]);
    log.partition(&b0)
        .unwrap()
        .append(testing::batch(["elsewhere"], 0))
        .unwrap();
    assert!(
        !fired(&mut on_a),
        "an append to b does not wake a reader of a"
    );
    assert!(
        fired(&mut on_missing),
        "any append wakes a reader of a missing partition"
    );
    log.partition(&a1)
        .unwrap()
        .append(testing::batch(["here"], 0))
        .unwrap();
    assert!(fired(&mut on_a));

    let mut on_b = log.next_append_to([&b0]);
    assert!(!fired(&mut on_b));
    log.delete_topic("b").unwrap();
    assert!(fired(&mut on_b), "deletion wakes its readers");
}

#[test]
fn the_page_cache_window_writes_back_and_drops_what_is_behind_it() {
    let dir = tempfile::tempdir().unwrap();
    let clock = MockClock::new(1_000_000);
    let log = open(dir.path(), &clock);
    log.create_topic("big", 1, [("segment.bytes", "4194304")])
        .unwrap();
    let p = log.partition(&TopicPartition::new("big", 0)).unwrap();
    let value = "x".repeat(64 << 10);
    let append = |n: usize| {
        for _ in 0..n {
            p.append(testing::batch([value.as_str(); 4], 1)).unwrap();
        }
    };
    // 40 MiB in 256 KiB batches over 4 MiB segments.
    append(160);
    let window = 8 << 20;
    let dropped = p.drop_cache_behind(window).unwrap();
    assert!(
        (31 << 20..=33 << 20).contains(&dropped),
        "all but the window's 8 MiB of 40: {dropped}"
    );
    assert_eq!(p.recovery_point(), p.log_end_offset(), "written back first");
    assert_eq!(
        p.drop_cache_behind(window).unwrap(),
        0,
        "nothing new behind it"
    );
    // Less than a step past the window: left alone until more comes.
    append(16);
    assert_eq!(p.drop_cache_behind(window).unwrap(), 0);
    append(32);
    assert!(p.drop_cache_behind(window).unwrap() >= sluice_log::log::DROP_STEP);
    // Dropped data reads back from the file.
    let all = read_all(&p, 0, 1 << 20);
    assert_eq!(all.len(), 208 * 4);
    assert!(all.iter().all(|v| v.len() == 64 << 10));
}

#[test]
fn a_log_with_a_page_cache_window_writes_back_in_the_background() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = LogManagerConfig::new(dir.path());
    c.page_cache_window = sluice_log::log::PageCacheWindow::Bytes(1 << 20);
    let log = LogManager::open(c).unwrap();
    log.create_topic("t", 1, [("segment.bytes", "4194304")])
        .unwrap();
    let p = log.partition(&TopicPartition::new("t", 0)).unwrap();
    let value = "y".repeat(64 << 10);
    for _ in 0..64 {
        p.append(testing::batch([value.as_str(); 4], 1)).unwrap();
    }
    // flush.ms is off: only the window's thread moves the recovery point.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while p.recovery_point() < p.log_end_offset() {
        assert!(
            std::time::Instant::now() < deadline,
            "the window's thread never wrote back"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    log.close().unwrap();
}

/// Every file under `dir`, recursively, as paths relative to it.
fn files_under(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    for _ in 0..10_000 {
        let Some(d) = stack.pop() else { break };
        for e in std::fs::read_dir(&d).unwrap() {
            let path = e.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    out
}

#[test]
fn topic_names_up_to_249_characters_keep_their_config_and_data_through_reopen_and_delete() {
    let dir = tempfile::tempdir().unwrap();
    let clock = MockClock::new(5_000);
    let names: Vec<String> = (245..=249)
        .map(|n| format!("t.{}", "x".repeat(n - 2)))
        .collect();
    {
        let log = open(dir.path(), &clock);
        for name in &names {
            log.create_topic(name, 2, [("retention.ms", "-1")])
                .unwrap_or_else(|e| panic!("{}: {e}", name.len()));
            let p = log
                .partition(&TopicPartition::new(name.as_str(), 1))
                .unwrap();
            p.append(testing::batch(["kept"], 5_000)).unwrap();
        }
        log.alter_topic_config(&names[4], [("segment.bytes", "2000000")], [] as [&str; 0])
            .unwrap();
        log.close().unwrap();
    }
    let log = open(dir.path(), &clock);
    assert_eq!(log.list_topics(), names);
    for name in &names {
        assert_eq!(
            log.topic_config(name).unwrap().retention_ms,
            -1,
            "{}",
            name.len()
        );
        let p = log
            .partition(&TopicPartition::new(name.as_str(), 1))
            .unwrap();
        assert_eq!(read_all(&p, 0, 1000), ["kept"]);
    }
    assert_eq!(
        log.topic_config(&names[4]).unwrap().segment_bytes,
        2_000_000
    );
    log.delete_topic(&names[4]).unwrap();
    assert_eq!(log.list_topics(), names[..4]);
    let left = files_under(dir.path());
    assert!(!left.iter().any(|f| f.contains(".tmp")), "{left:?}");
    assert!(
        !left.iter().any(|f| f.contains(&names[4])),
        "deleted: {left:?}"
    );
    log.close().unwrap();
    let log = open(dir.path(), &clock);
    assert_eq!(log.list_topics(), names[..4]);
}

#[test]
fn a_topic_config_of_the_old_layout_is_read_and_replaced_on_the_next_write() {
    let dir = tempfile::tempdir().unwrap();
    let clock = MockClock::new(5_000);
    {
        let log = open(dir.path(), &clock);
        log.create_topic("old", 1, [] as [(&str, &str); 0]).unwrap();
        log.close().unwrap();
    }
    // What an older Sluice left: the config in topic-configs/<topic>.properties.
    std::fs::remove_file(dir.path().join("old-0/topic.properties")).unwrap();
    std::fs::create_dir_all(dir.path().join("topic-configs")).unwrap();
    std::fs::write(
        dir.path().join("topic-configs/old.properties"),
        "retention.ms=1234\n",
    )
    .unwrap();
    let log = open(dir.path(), &clock);
    assert_eq!(log.topic_config("old").unwrap().retention_ms, 1234);
    log.alter_topic_config("old", [("segment.bytes", "2000000")], [] as [&str; 0])
        .unwrap();
    assert!(!dir.path().join("topic-configs/old.properties").exists());
    log.close().unwrap();
    let log = open(dir.path(), &clock);
    let c = log.topic_config("old").unwrap();
    assert_eq!((c.retention_ms, c.segment_bytes), (1234, 2_000_000));
}

#[test]
fn a_log_directory_that_is_a_file_is_refused_as_not_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("data");
    std::fs::write(&file, "not a directory").unwrap();
    let e = LogManager::open(LogManagerConfig::new(&file)).unwrap_err();
    let report = sluice_log::report(&e).to_string();
    assert!(
        report.contains(&format!(
            "log directory {} is not a directory",
            file.display()
        )),
        "{report}"
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "not a directory");
}
