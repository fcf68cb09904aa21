//! What a hostile (or broken) client sends, through the log and the embedded producer: writes
//! to internal topics, batches whose CRC holds over garbage, keyless records on compacted
//! topics, timestamps out of bounds. Each is refused, and nothing stored before is lost; and a
//! garbage record already in an internal topic costs only itself when the coordinators load.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use sluice_log::client::config::ProducerConfig;
use sluice_log::client::embedded::EmbeddedClient;
use sluice_log::client::{Client, Producer, ProducerRecord};
use sluice_log::group::{
    CONSUMER_OFFSETS_TOPIC, OffsetAndMetadata, OffsetStore, OffsetStoreConfig,
};
use sluice_log::log::{AppendOrigin, LogManager, LogManagerConfig, Partition};
use sluice_log::record::{self, BatchBuilder, HEADER_LEN, testing};
use sluice_log::txn::{TRANSACTION_STATE_TOPIC, TransactionCoordinator, encode_key};
use sluice_log::{Compression, Error, MockClock, TopicPartition};

use crate::log::{open, read_all};

const NOW: i64 = 1_700_000_000_000;
const BOUND: Duration = Duration::from_secs(10);

fn one_record(key: &[u8], value: &[u8]) -> Vec<u8> {
    let mut b = BatchBuilder::new(Compression::None);
    b.append(NOW, Some(key), Some(value), &[]);
    b.build()
}

fn offsets_config() -> OffsetStoreConfig {
    OffsetStoreConfig {
        num_partitions: 4,
        ..OffsetStoreConfig::default()
    }
}

fn commit_of(o: i64) -> OffsetAndMetadata {
    OffsetAndMetadata {
        offset: o,
        leader_epoch: None,
        metadata: None,
    }
}

/// The key of an offset commit of `group` for `t`-`partition` (OffsetCommitKey v1).
fn commit_key(group: &str, partition: i32) -> Vec<u8> {
    let mut k = vec![0, 1];
    k.extend_from_slice(&(group.len() as i16).to_be_bytes());
    k.extend_from_slice(group.as_bytes());
    k.extend_from_slice(&[0, 1, b't']);
    k.extend_from_slice(&partition.to_be_bytes());
    k
}

/// `__transaction_state` and `__consumer_offsets` refuse a client's batch; garbage records
/// written there by the log API directly (as an older or damaged broker could have) are
/// skipped when the coordinators load, and the good records before and after them hold.
#[tokio::test]
async fn internal_topics_refuse_clients_and_load_past_garbage_records() {
    let dir = tempfile::tempdir().unwrap();
    let clock = MockClock::new(NOW);
    let group = "group";
    let (before, offsets_partition) = {
        let log = open(dir.path(), &clock);
        let txns = TransactionCoordinator::open(log.clone()).unwrap();
        let store = OffsetStore::open(log.clone(), offsets_config()).unwrap();
        txns.init_producer_id("before", 60_000).unwrap();
        let before = txns.describe_transaction("before").unwrap();
        let state = log
            .partition(&TopicPartition::new(TRANSACTION_STATE_TOPIC, 0))
            .unwrap();
        // As the issue's `sluice produce __transaction_state`: a client's batch is refused.
        let end = state.log_end_offset();
        let e = state
            .append(one_record(&encode_key("before"), b"\x00\x01x"))
            .unwrap_err();
        assert!(matches!(e, Error::InternalTopic(_)), "{e}");
        assert_eq!(e.error_code(), 17);
        assert_eq!(state.log_end_offset(), end);
        // Written by the log API directly: a value of an unknown version for a good key, and
        // a key that does not decode.
        for (k, v) in [
            (encode_key("before"), b"\x00\x01x".to_vec()),
            (b"\x00\x09?".to_vec(), b"\x00\x00".to_vec()),
        ] {
            state
                .append_from(one_record(&k, &v), AppendOrigin::Coordinator)
                .unwrap();
        }
        txns.init_producer_id("after", 60_000).unwrap();

        let p = store.partition_for(group);
        bounded(store.commit(group, vec![(TopicPartition::new("t", 3), commit_of(42))])).await;
        let offsets = log
            .partition(&TopicPartition::new(CONSUMER_OFFSETS_TOPIC, p))
            .unwrap();
        let e = offsets
            .append(one_record(&commit_key(group, 3), b"\x00\x01"))
            .unwrap_err();
        assert_eq!(e.error_code(), 17, "{e}");
        for (k, v) in [
            (commit_key(group, 3), b"\x00\x63garbage".to_vec()),
            (b"\x00\x01\x00\x50".to_vec(), b"\x00\x01".to_vec()),
        ] {
            offsets
                .append_from(one_record(&k, &v), AppendOrigin::Coordinator)
                .unwrap();
        }
        bounded(store.commit(group, vec![(TopicPartition::new("t", 4), commit_of(7))])).await;
        // Nor does the embedded producer write there.
        let client = EmbeddedClient::new(log.clone());
        let producer = client.producer(ProducerConfig::default()).unwrap();
        let refused = producer
            .send(ProducerRecord::new(CONSUMER_OFFSETS_TOPIC, "x").key("k"))
            .await;
        assert!(
            matches!(refused, Err(Error::InternalTopic(_))),
            "{refused:?}"
        );
        drop(producer);
        drop((txns, store, client));
        log.close().unwrap();
        (before, p)
    };
    let log = open(dir.path(), &clock);
    let txns = TransactionCoordinator::open(log.clone()).expect("loads past the garbage");
    assert_eq!(txns.describe_transaction("before").unwrap(), before);
    assert!(txns.describe_transaction("after").is_ok());
    let store = OffsetStore::open(log.clone(), offsets_config()).expect("loads past the garbage");
    assert_eq!(store.partition_for(group), offsets_partition);
    let got: Vec<(i32, i64)> = store
        .fetch(group, None)
        .into_iter()
        .map(|(tp, c)| (tp.partition, c.unwrap().offset))
        .collect();
    assert_eq!(got, [(3, 42), (4, 7)]);
}

async fn bounded<T>(f: impl std::future::Future<Output = sluice_log::Result<T>>) -> T {
    tokio::time::timeout(BOUND, f)
        .await
        .expect("bounded wait")
        .unwrap()
}

/// A batch of records that do not frame, already on disk in `__consumer_offsets` (written
/// past the log's checks): the offsets load skips the batch and keeps what follows.
#[tokio::test]
async fn a_batch_that_does_not_frame_costs_only_itself_at_load() {
    let dir = tempfile::tempdir().unwrap();
    let clock = MockClock::new(NOW);
    let group = "group";
    let path = {
        let log = open(dir.path(), &clock);
        let store = OffsetStore::open(log.clone(), offsets_config()).unwrap();
        bounded(store.commit(group, vec![(TopicPartition::new("t", 1), commit_of(5))])).await;
        let p = log
            .partition(&TopicPartition::new(
                CONSUMER_OFFSETS_TOPIC,
                store.partition_for(group),
            ))
            .unwrap();
        // Records of 0xff bytes under a valid CRC, at the next offset.
        let mut bad = one_record(&commit_key(group, 1), b"\x00\x01");
        bad[HEADER_LEN..].fill(0xff);
        record::set_base_offset(&mut bad, p.log_end_offset());
        let crc = record::compute_crc(&bad);
        bad[17..21].copy_from_slice(&crc.to_be_bytes());
        let path = p.dir().join("00000000000000000000.log");
        drop((store, p));
        log.close().unwrap();
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(&bad)
            .unwrap();
        path
    };
    {
        let log = open(dir.path(), &clock);
        let store = OffsetStore::open(log.clone(), offsets_config()).expect("loads past it");
        assert_eq!(
            store.fetch(group, None)[0].1.as_ref().map(|c| c.offset),
            Some(5)
        );
        bounded(store.commit(group, vec![(TopicPartition::new("t", 2), commit_of(9))])).await;
        drop(store);
        log.close().unwrap();
    }
    assert!(path.exists());
    let log = open(dir.path(), &clock);
    let store = OffsetStore::open(log, offsets_config()).unwrap();
    let got: Vec<(i32, i64)> = store
        .fetch(group, None)
        .into_iter()
        .map(|(tp, c)| (tp.partition, c.unwrap().offset))
        .collect();
    assert_eq!(got, [(1, 5), (2, 9)]);
}

/// Garbage batches with valid CRCs are refused one after another, and what was appended
/// before (and after) them reads back whole.
#[test]
fn refused_batches_leave_the_partition_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let clock = MockClock::new(NOW);
    let log = open(dir.path(), &clock);
    log.create_topic("t", 1, std::iter::empty::<(&str, &str)>())
        .unwrap();
    let p = log.partition(&TopicPartition::new("t", 0)).unwrap();
    p.append(testing::batch(["a", "b"], NOW)).unwrap();
    let garbage = |edit: &dyn Fn(&mut Vec<u8>)| {
        let mut b = testing::batch(["c", "d"], NOW);
        edit(&mut b);
        let crc = record::compute_crc(&b);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
        b
    };
    let cases: [(&str, Vec<u8>, i16); 4] = [
        ("0xff records", garbage(&|b| b[HEADER_LEN..].fill(0xff)), 87),
        (
            "a count larger than the records",
            garbage(&|b| {
                b[57..61].copy_from_slice(&3i32.to_be_bytes());
                b[23..27].copy_from_slice(&2i32.to_be_bytes());
            }),
            87,
        ),
        (
            "a count smaller than the records",
            garbage(&|b| {
                b[57..61].copy_from_slice(&1i32.to_be_bytes());
                b[23..27].copy_from_slice(&0i32.to_be_bytes());
            }),
            87,
        ),
        (
            "a random gzip payload",
            garbage(&|b| {
                b[21..23].copy_from_slice(&1i16.to_be_bytes());
                b[HEADER_LEN..].fill(0x1f);
            }),
            2,
        ),
    ];
    for (what, batch, code) in cases {
        let e = p.append(batch).unwrap_err();
        assert_eq!(e.error_code(), code, "{what}: {e}");
        assert!(e.to_string().contains("t-0"), "{what}: {e}");
        assert_eq!(p.log_end_offset(), 2, "{what}");
    }
    p.append(testing::batch(["e"], NOW)).unwrap();
    assert_eq!(read_all(&p, 0, 1 << 20), ["a", "b", "e"]);
}

/// Compacted topics refuse a record without a key, at the log and through the embedded
/// producer (whose future says so); a keyed record and a tombstone are accepted.
#[tokio::test]
async fn compacted_topics_refuse_records_without_a_key() {
    let dir = tempfile::tempdir().unwrap();
    let clock = MockClock::new(NOW);
    let log = open(dir.path(), &clock);
    log.create_topic("c", 1, [("cleanup.policy", "compact")])
        .unwrap();
    let p = log.partition(&TopicPartition::new("c", 0)).unwrap();
    p.append(testing::keyed([("k", Some("v"))], NOW)).unwrap();
    let e = p.append(testing::batch(["no key"], NOW)).unwrap_err();
    assert_eq!(e.error_code(), 87, "{e}");
    assert!(
        e.to_string()
            .contains("a compacted topic cannot accept a record without a key"),
        "{e}"
    );
    let client = EmbeddedClient::new(log.clone());
    let producer = client.producer(ProducerConfig::default()).unwrap();
    let keyless = producer
        .send(ProducerRecord::new("c", "no key"))
        .await
        .unwrap();
    let e = tokio::time::timeout(BOUND, keyless)
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(e.error_code(), 87, "{e}");
    let keyed = producer
        .send(ProducerRecord::new("c", "v2").key("k"))
        .await
        .unwrap();
    producer.flush().await.unwrap();
    tokio::time::timeout(BOUND, keyed).await.unwrap().unwrap();
    assert_eq!(read_all(&p, 0, 1 << 20), ["v", "v2"]);
}

/// The log's topic defaults bound timestamps (here an hour ahead, as Kafka's broker default):
/// ten hours ahead and negative timestamps are refused with INVALID_TIMESTAMP; -1 (none) is not.
#[test]
fn timestamps_ten_hours_ahead_or_negative_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let clock = MockClock::new(NOW);
    let mut c = LogManagerConfig::new(dir.path());
    c.clock = Arc::new(clock.clone());
    c.background = false;
    c.defaults = sluice_log::config::TopicConfig::from_pairs([(
        "message.timestamp.after.max.ms",
        "3600000",
    )])
    .unwrap();
    let log = LogManager::open(c).unwrap();
    log.create_topic("t", 1, std::iter::empty::<(&str, &str)>())
        .unwrap();
    let p: Arc<Partition> = log.partition(&TopicPartition::new("t", 0)).unwrap();
    p.append(testing::batch(["now"], NOW)).unwrap();
    for (what, ts) in [("ten hours ahead", NOW + 36_000_000), ("negative", -2)] {
        let e = p.append(testing::batch(["bad"], ts)).unwrap_err();
        assert!(matches!(e, Error::InvalidTimestamp { .. }), "{what}: {e}");
        assert_eq!(e.error_code(), 32, "{what}");
    }
    p.append(testing::batch(["none"], -1)).unwrap();
    assert_eq!(read_all(&p, 0, 1 << 20), ["now", "none"]);
}
