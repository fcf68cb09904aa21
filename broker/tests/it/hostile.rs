//! What a hostile client sends in Produce: writes to internal topics, batches whose CRC holds
//! over garbage, keyless records on a compacted topic, timestamps out of bounds. Each gets the
//! code Kafka answers, and the records stored before read back whole.

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::produce_response::PartitionProduceResponse;
use kafka_protocol::messages::{DescribeConfigsRequest, FetchRequest, ProduceRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use sluice_log::Compression;
use sluice_log::record::{self, BatchBuilder, BatchIter, HEADER_LEN, decode_records};

use crate::wire::{self, Conn};

const INVALID_TOPIC_EXCEPTION: i16 = 17;
const CORRUPT_MESSAGE: i16 = 2;
const INVALID_TIMESTAMP: i16 = 32;
const INVALID_RECORD: i16 = 87;

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_owned()))
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// One batch of these (key, value) records, all stamped `ts`.
fn batch(records: &[(Option<&str>, &str)], ts: i64) -> Vec<u8> {
    let mut b = BatchBuilder::new(Compression::None);
    for (k, v) in records {
        b.append(ts, k.map(str::as_bytes), Some(v.as_bytes()), &[]);
    }
    b.build()
}

/// `batch` edited by `edit`, its CRC made right again: what a hostile client can send.
fn forged(edit: impl Fn(&mut Vec<u8>)) -> Vec<u8> {
    let mut b = batch(&[(Some("k"), "c"), (Some("k"), "d")], now_ms());
    edit(&mut b);
    let crc = record::compute_crc(&b);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    b
}

/// Produces one batch (Produce v9, acks=all) and returns the partition's answer.
async fn produce(c: &mut Conn, topic: &str, records: Vec<u8>) -> PartitionProduceResponse {
    let req = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(10_000)
        .with_topic_data(vec![
            TopicProduceData::default()
                .with_name(name(topic))
                .with_partition_data(vec![
                    PartitionProduceData::default()
                        .with_index(0)
                        .with_records(Some(Bytes::from(records))),
                ]),
        ]);
    let mut r = c.call(9, &req).await;
    r.responses.remove(0).partition_responses.remove(0)
}

fn create(b: &wire::TestBroker, topic: &str) {
    b.state
        .log
        .create_topic(topic, 1, std::iter::empty::<(&str, &str)>())
        .unwrap();
}

fn refused(r: &PartitionProduceResponse, code: i16, says: &str, what: &str) {
    let message = r
        .error_message
        .as_deref()
        .map(|m| m.to_string())
        .unwrap_or_default();
    assert_eq!(r.error_code, code, "{what}: {message}");
    assert!(message.contains(says), "{what}: {message}");
}

/// Every value in `topic`-0, read with Fetch from offset 0.
async fn values(c: &mut Conn, topic: &str) -> Vec<String> {
    let req = FetchRequest::default()
        .with_max_wait_ms(0)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_topics(vec![
            FetchTopic::default()
                .with_topic(name(topic))
                .with_partitions(vec![
                    FetchPartition::default()
                        .with_partition(0)
                        .with_fetch_offset(0)
                        .with_partition_max_bytes(1 << 20),
                ]),
        ]);
    let r = c.call(12, &req).await;
    let p = &r.responses[0].partitions[0];
    assert_eq!(p.error_code, 0);
    let records = p.records.clone().unwrap_or_default();
    let mut out = Vec::new();
    for (_, range) in BatchIter::new(&records) {
        for r in decode_records(&records.slice(range), 1 << 20).unwrap() {
            out.push(String::from_utf8(r.unwrap().value.unwrap().to_vec()).unwrap());
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_to_an_internal_topic_is_refused_and_stores_nothing() {
    let b = wire::start(|_| {}).await;
    let mut c = b.connect().await;
    for topic in ["__transaction_state", "__consumer_offsets"] {
        let tp = sluice_log::TopicPartition::new(topic, 0);
        let end = b.state.log.partition(&tp).unwrap().log_end_offset();
        // The record: a key and a value of an unknown version.
        let r = produce(
            &mut c,
            topic,
            batch(&[(Some("\0\0\0\x01a"), "\0\x01x")], now_ms()),
        )
        .await;
        refused(&r, INVALID_TOPIC_EXCEPTION, "internal topic", topic);
        assert_eq!(b.state.log.partition(&tp).unwrap().log_end_offset(), end);
    }
    // The broker starts again on the same data.
    let dir = b.stop().await;
    let b = wire::start_in(dir, |_| {}).await;
    create(&b, "after");
    let mut c = b.connect().await;
    let r = produce(&mut c, "after", batch(&[(None, "ok")], now_ms())).await;
    assert_eq!(r.error_code, 0);
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_under_a_valid_crc_is_refused_and_earlier_records_read_back() {
    let b = wire::start(|_| {}).await;
    create(&b, "g");
    let mut c = b.connect().await;
    let r = produce(&mut c, "g", batch(&[(None, "a"), (None, "b")], now_ms())).await;
    assert_eq!(r.error_code, 0);
    let set_count = |n: i32| {
        move |b: &mut Vec<u8>| {
            b[57..61].copy_from_slice(&n.to_be_bytes());
            b[23..27].copy_from_slice(&(n - 1).to_be_bytes());
        }
    };
    let cases: Vec<(&str, Vec<u8>, i16, &str)> = vec![
        (
            "records of 0xff",
            forged(|b| b[HEADER_LEN..].fill(0xff)),
            INVALID_RECORD,
            "record 0 is malformed",
        ),
        (
            "a count larger than the records",
            forged(set_count(3)),
            INVALID_RECORD,
            "declares 3 records but holds 2",
        ),
        (
            "a count smaller than the records",
            forged(set_count(1)),
            INVALID_RECORD,
            "follow the last of the 1 records",
        ),
        (
            "a random gzip payload",
            forged(|b| {
                b[21..23].copy_from_slice(&1i16.to_be_bytes());
                b[HEADER_LEN..].fill(0x1f);
            }),
            CORRUPT_MESSAGE,
            "gzip data does not decompress",
        ),
    ];
    for (what, records, code, says) in cases {
        let r = produce(&mut c, "g", records).await;
        refused(&r, code, says, what);
        refused(&r, code, "g-0", what);
    }
    assert_eq!(values(&mut c, "g").await, ["a", "b"]);
    let r = produce(&mut c, "g", batch(&[(None, "e")], now_ms())).await;
    assert_eq!((r.error_code, r.base_offset), (0, 2));
    assert_eq!(values(&mut c, "g").await, ["a", "b", "e"]);
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compacted_topic_refuses_a_record_without_a_key() {
    let b = wire::start(|_| {}).await;
    b.state
        .log
        .create_topic("c", 1, [("cleanup.policy", "compact")])
        .unwrap();
    let mut c = b.connect().await;
    let r = produce(&mut c, "c", batch(&[(Some("k"), "v")], now_ms())).await;
    assert_eq!(r.error_code, 0);
    let r = produce(
        &mut c,
        "c",
        batch(&[(Some("k"), "w"), (None, "x")], now_ms()),
    )
    .await;
    refused(
        &r,
        INVALID_RECORD,
        "record 1: a compacted topic cannot accept a record without a key",
        "keyless",
    );
    assert_eq!(values(&mut c, "c").await, ["v"]);
    b.stop().await;
}

/// Topics inherit `log.message.timestamp.after.max.ms` (an hour by default), as DescribeConfigs
/// says; a record ten hours ahead, or with a negative timestamp, is INVALID_TIMESTAMP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_inherit_the_brokers_timestamp_bounds() {
    let b = wire::start(|_| {}).await;
    create(&b, "t");
    let mut c = b.connect().await;
    let r = produce(&mut c, "t", batch(&[(None, "now")], now_ms())).await;
    assert_eq!(r.error_code, 0);
    let describe = DescribeConfigsRequest::default().with_resources(vec![
        DescribeConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(StrBytes::from_static_str("t"))
            .with_configuration_keys(Some(vec![
                StrBytes::from_static_str("message.timestamp.after.max.ms"),
                StrBytes::from_static_str("message.timestamp.before.max.ms"),
            ])),
    ]);
    let r = c.call(4, &describe).await;
    let configs: Vec<(String, Option<String>)> = r.results[0]
        .configs
        .iter()
        .map(|e| (e.name.to_string(), e.value.as_ref().map(|v| v.to_string())))
        .collect();
    assert_eq!(
        configs,
        [
            (
                "message.timestamp.after.max.ms".to_owned(),
                Some("3600000".to_owned())
            ),
            (
                "message.timestamp.before.max.ms".to_owned(),
                Some(i64::MAX.to_string())
            ),
        ]
    );
    let ten_hours = 36_000_000;
    let r = produce(&mut c, "t", batch(&[(None, "ahead")], now_ms() + ten_hours)).await;
    refused(
        &r,
        INVALID_TIMESTAMP,
        "message.timestamp.after.max.ms (3600000)",
        "ahead",
    );
    let r = produce(&mut c, "t", batch(&[(None, "negative")], -2)).await;
    refused(&r, INVALID_TIMESTAMP, "negative timestamp", "negative");
    assert_eq!(values(&mut c, "t").await, ["now"]);
    b.stop().await;

    // A broker setting is inherited as well.
    let b = wire::start(|c| {
        c.set("log.message.timestamp.after.max.ms", "60000")
            .unwrap();
    })
    .await;
    create(&b, "u");
    let mut c = b.connect().await;
    let r = produce(&mut c, "u", batch(&[(None, "ahead")], now_ms() + 600_000)).await;
    refused(
        &r,
        INVALID_TIMESTAMP,
        "message.timestamp.after.max.ms (60000)",
        "ahead",
    );
    b.stop().await;
}
