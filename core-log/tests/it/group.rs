//! Consumer groups: committed offsets in `__consumer_offsets`, the group coordinator, assignors.

use std::time::Duration;

use sluice_log::group::{
    CONSUMER_OFFSETS_TOPIC, OffsetAndMetadata, OffsetStore, OffsetStoreConfig,
};
use sluice_log::record::{BatchIter, decode_records};
use sluice_log::{MockClock, TopicPartition};

use crate::log::open;

const BOUND: Duration = Duration::from_secs(10);

fn tp(topic: &str, p: i32) -> TopicPartition {
    TopicPartition::new(topic, p)
}

fn small_config() -> OffsetStoreConfig {
    OffsetStoreConfig {
        num_partitions: 4,
        ..OffsetStoreConfig::default()
    }
}

fn offset(o: i64, metadata: &str) -> OffsetAndMetadata {
    OffsetAndMetadata {
        offset: o,
        leader_epoch: Some(1),
        metadata: Some(metadata.to_owned()),
    }
}

async fn bounded<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(BOUND, f).await.expect("bounded wait")
}

#[tokio::test]
async fn offsets_survive_a_reopen_and_tombstones_delete() {
    let dir = tempfile::tempdir().unwrap();
    let clock = MockClock::new(1_000_000);
    {
        let log = open(dir.path(), &clock);
        let store = OffsetStore::open(log.clone(), small_config()).unwrap();
        assert_eq!(log.partition_count(CONSUMER_OFFSETS_TOPIC).unwrap(), 4);
        assert!(
            log.topic_config(CONSUMER_OFFSETS_TOPIC)
                .unwrap()
                .cleanup_policy
                .compact
        );
        bounded(store.commit(
            "g",
            vec![(tp("t", 0), offset(5, "a")), (tp("t", 1), offset(7, ""))],
        ))
        .await
        .unwrap();
        bounded(store.commit("g", vec![(tp("t", 0), offset(9, "b"))]))
            .await
            .unwrap();
        bounded(store.commit("other", vec![(tp("t", 0), OffsetAndMetadata::new(1))]))
            .await
            .unwrap();
        bounded(store.delete_offsets("g", &[tp("t", 1)]))
            .await
            .unwrap();
        let got = store.fetch("g", Some(&[tp("t", 0), tp("t", 1), tp("u", 0)]));
        let o = got[0].1.as_ref().unwrap();
        assert_eq!(
            (o.offset, o.metadata.as_str(), o.leader_epoch),
            (9, "b", Some(1))
        );
        assert_eq!(o.commit_timestamp, 1_000_000);
        assert!(got[1].1.is_none() && got[2].1.is_none());
        log.close().unwrap();
    }
    let log = open(dir.path(), &clock);
    let store = OffsetStore::open(log, small_config()).unwrap();
    let all = store.fetch("g", None);
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0].0, tp("t", 0));
    assert_eq!(all[0].1.as_ref().unwrap().offset, 9);
    assert_eq!(store.fetch("other", None)[0].1.as_ref().unwrap().offset, 1);
    assert_eq!(store.groups(), ["g", "other"]);
}

#[tokio::test]
async fn records_use_kafkas_key_and_value_schemas_in_the_groups_partition() {
    let dir = tempfile::tempdir().unwrap();
    let clock = MockClock::new(1_000);
    let log = open(dir.path(), &clock);
    let store = OffsetStore::open(log.clone(), OffsetStoreConfig::default()).unwrap();
    assert_eq!(log.partition_count(CONSUMER_OFFSETS_TOPIC).unwrap(), 50);
    // "group".hashCode() == 98629247 in Java.
    assert_eq!(store.partition_for("group"), 98_629_247 % 50);
    bounded(store.commit("group", vec![(tp("t", 3), offset(42, "m"))]))
        .await
        .unwrap();
    let p = log
        .partition(&tp(CONSUMER_OFFSETS_TOPIC, 98_629_247 % 50))
        .unwrap();
    let data = p.read(0, 1 << 20).unwrap();
    let (_, range) = BatchIter::new(&data.records).next().unwrap();
    let r = decode_records(&data.records.slice(range), 1 << 20)
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    let key = r.key.unwrap();
    assert_eq!(
        &key[..],
        &[
            0, 1, 0, 5, b'g', b'r', b'o', b'u', b'p', 0, 1, b't', 0, 0, 0, 3
        ]
    );
    let value = r.value.unwrap();
    let mut expect = vec![0, 3];
    expect.extend_from_slice(&42i64.to_be_bytes());
    expect.extend_from_slice(&1i32.to_be_bytes());
    expect.extend_from_slice(&[0, 1, b'm']);
    expect.extend_from_slice(&1_000i64.to_be_bytes());
    assert_eq!(&value[..], &expect[..]);
}

#[tokio::test]
async fn bad_commits_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let clock = MockClock::new(1_000);
    let store = OffsetStore::open(open(dir.path(), &clock), small_config()).unwrap();
    let big = OffsetAndMetadata {
        metadata: Some("x".repeat(5000)),
        ..OffsetAndMetadata::new(1)
    };
    let err = bounded(store.commit("g", vec![(tp("t", 0), big)]))
        .await
        .unwrap_err();
    assert_eq!(err.error_code(), 12, "{err}");
    let err = bounded(store.commit("", vec![(tp("t", 0), OffsetAndMetadata::new(1))]))
        .await
        .unwrap_err();
    assert_eq!(err.error_code(), 24, "{err}");
    assert!(store.fetch("g", None).is_empty());
}

#[tokio::test]
async fn offsets_of_empty_groups_expire_after_the_retention() {
    let dir = tempfile::tempdir().unwrap();
    let clock = MockClock::new(1_000);
    let config = OffsetStoreConfig {
        retention_ms: 60_000,
        ..small_config()
    };
    {
        let log = open(dir.path(), &clock);
        let store = OffsetStore::open(log.clone(), config.clone()).unwrap();
        bounded(store.commit("idle", vec![(tp("t", 0), OffsetAndMetadata::new(3))]))
            .await
            .unwrap();
        bounded(store.commit("busy", vec![(tp("t", 0), OffsetAndMetadata::new(4))]))
            .await
            .unwrap();
        clock.advance(30_000);
        let empty_since = |g: &str| (g == "idle").then_some(i64::MIN);
        assert_eq!(store.expire_offsets(empty_since).unwrap(), 0);
        clock.advance(30_000);
        assert_eq!(store.expire_offsets(empty_since).unwrap(), 1);
        assert!(store.fetch("idle", None).is_empty());
        assert_eq!(store.fetch("busy", None).len(), 1);
        log.close().unwrap();
    }
    let store = OffsetStore::open(open(dir.path(), &clock), config).unwrap();
    assert_eq!(store.groups(), ["busy"], "the expiry tombstone is replayed");
}
