//! The protocol as clients meet it: versions, ordering, acks, long-poll, sessions, limits.

use std::time::Duration;

use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, CreateTopicsRequest, FetchRequest, MetadataRequest, ProduceRequest,
    TopicName,
};
use kafka_protocol::protocol::StrBytes;

use crate::wire::{self, Conn, batch};

pub fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_owned()))
}

pub async fn create(conn: &mut Conn, topic: &str, partitions: i32) {
    let r = conn
        .call(
            7,
            &CreateTopicsRequest::default().with_topics(vec![
                CreatableTopic::default()
                    .with_name(name(topic))
                    .with_num_partitions(partitions)
                    .with_replication_factor(1),
            ]),
        )
        .await;
    assert_eq!(r.topics[0].error_code, 0, "{:?}", r.topics[0].error_message);
}

pub fn produce(topic: &str, partition: i32, acks: i16, records: bytes::Bytes) -> ProduceRequest {
    ProduceRequest::default()
        .with_acks(acks)
        .with_timeout_ms(10_000)
        .with_topic_data(vec![
            TopicProduceData::default()
                .with_name(name(topic))
                .with_partition_data(vec![
                    PartitionProduceData::default()
                        .with_index(partition)
                        .with_records(Some(records)),
                ]),
        ])
}

pub fn fetch(topic: &str, offset: i64, max_wait_ms: i32) -> FetchRequest {
    FetchRequest::default()
        .with_max_wait_ms(max_wait_ms)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_topics(vec![
            FetchTopic::default()
                .with_topic(name(topic))
                .with_partitions(vec![
                    FetchPartition::default()
                        .with_partition(0)
                        .with_fetch_offset(offset)
                        .with_partition_max_bytes(1 << 20),
                ]),
        ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_versions_advertises_kafka_4s_topic_id_versions() {
    let b = wire::start(|_| {}).await;
    let mut c = b.connect().await;
    for v in [0, 3, 4] {
        let r = c.call(v, &ApiVersionsRequest::default()).await;
        assert_eq!(r.error_code, 0);
        let range = |key: ApiKey| {
            r.api_keys
                .iter()
                .find(|k| k.api_key == key as i16)
                .map(|k| (k.min_version, k.max_version))
        };
        // Kafka 4.1's maxima: Fetch by topic id, Produce v13 by topic id, ListOffsets v10
        // (what kafka-python reads as "4.0"), Metadata v13, DescribeTopicPartitions.
        assert_eq!(range(ApiKey::Fetch), Some((4, 18)), "v{v}");
        assert_eq!(range(ApiKey::Produce), Some((3, 13)), "v{v}");
        assert_eq!(range(ApiKey::ListOffsets), Some((1, 10)), "v{v}");
        assert_eq!(range(ApiKey::Metadata), Some((0, 13)), "v{v}");
        assert_eq!(range(ApiKey::DeleteTopics), Some((1, 6)), "v{v}");
        assert_eq!(range(ApiKey::DescribeTopicPartitions), Some((0, 0)), "v{v}");
    }
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_requests_are_answered_in_order_and_acks_0_gets_no_answer() {
    let b = wire::start(|_| {}).await;
    let mut c = b.connect().await;
    create(&mut c, "p", 1).await;
    let mut sent = Vec::new();
    for i in 0..40 {
        let acks = [1, -1][i % 2];
        sent.push(c.send(9, &produce("p", 0, acks, batch(3))).await);
        if i % 10 == 0 {
            // An acks=0 produce in between: appended, never answered.
            c.send(9, &produce("p", 0, 0, batch(3))).await;
            sent.push(c.send(12, &MetadataRequest::default()).await);
        }
    }
    for corr in sent {
        let mut frame = c.read_frame().await.unwrap();
        let got = bytes::Buf::get_i32(&mut frame);
        assert_eq!(got, corr, "out of order");
    }
    // 40 answered batches and 4 unanswered ones, 3 records each.
    let p = b
        .state
        .log
        .partition(&sluice_log::TopicPartition::new("p", 0))
        .unwrap();
    assert_eq!(p.log_end_offset(), 44 * 3);
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_all_answers_after_the_data_is_durable() {
    let b = wire::start(|_| {}).await;
    let mut c = b.connect().await;
    create(&mut c, "d", 1).await;
    let r = c.call(9, &produce("d", 0, -1, batch(10))).await;
    let p = &r.responses[0].partition_responses[0];
    assert_eq!((p.error_code, p.base_offset), (0, 0));
    let part = b
        .state
        .log
        .partition(&sluice_log::TopicPartition::new("d", 0))
        .unwrap();
    assert!(part.recovery_point() >= 10, "acknowledged before fsync");
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_come_back_per_partition_with_kafka_codes() {
    let b = wire::start(|c| c.set("message.max.bytes", "1000").unwrap()).await;
    let mut c = b.connect().await;
    create(&mut c, "e", 1).await;
    // Over message.max.bytes: MESSAGE_TOO_LARGE (10).
    let big = c.call(9, &produce("e", 0, 1, batch(200))).await;
    assert_eq!(big.responses[0].partition_responses[0].error_code, 10);
    // Unknown partition: UNKNOWN_TOPIC_OR_PARTITION (3).
    let r = c.call(9, &produce("e", 7, 1, batch(1))).await;
    assert_eq!(r.responses[0].partition_responses[0].error_code, 3);
    // A corrupt batch (a flipped byte in the CRC-covered part): CORRUPT_MESSAGE (2).
    let mut bad = batch(2).to_vec();
    let last = bad.len() - 1;
    bad[last] ^= 0xff;
    let r = c.call(9, &produce("e", 0, 1, bad.into())).await;
    assert_eq!(r.responses[0].partition_responses[0].error_code, 2);
    // acks=2 is not a valid setting: INVALID_REQUIRED_ACKS (21).
    let r = c.call(9, &produce("e", 0, 2, batch(1))).await;
    assert_eq!(r.responses[0].partition_responses[0].error_code, 21);
    // Nothing of the above was appended.
    let part = b
        .state
        .log
        .partition(&sluice_log::TopicPartition::new("e", 0))
        .unwrap();
    assert_eq!(part.log_end_offset(), 0);
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_poll_fetch_returns_when_data_arrives() {
    let b = wire::start(|_| {}).await;
    let mut producer = b.connect().await;
    create(&mut producer, "lp", 1).await;
    let mut consumer = b.connect().await;
    let corr = consumer.send(12, &fetch("lp", 0, 15_000)).await;
    // The fetch is parked; a produce on another connection wakes it long before 15 s.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let started = std::time::Instant::now();
    producer.call(9, &produce("lp", 0, 1, batch(5))).await;
    let (got, r) = consumer.recv::<FetchRequest>(12).await;
    assert_eq!(got, corr);
    assert!(started.elapsed() < Duration::from_secs(10));
    let p = &r.responses[0].partitions[0];
    assert_eq!(p.high_watermark, 5);
    let records = p.records.clone().unwrap();
    let n = sluice_log::record::decode_records(&records, 1 << 20)
        .unwrap()
        .count();
    assert_eq!(n, 5);
    // Stored bytes come back as they were appended (the base offset and partition leader
    // epoch are assigned in the header, the rest is the producer's).
    assert_eq!(&records[16..], &batch(5)[16..]);
    // Past the log end: OFFSET_OUT_OF_RANGE.
    let r = consumer.call(12, &fetch("lp", 100, 0)).await;
    assert_eq!(r.responses[0].partitions[0].error_code, 1);
    // With empty records, not null: librdkafka rejects a null record set as a bad message
    // and never sees the error.
    assert_eq!(
        r.responses[0].partitions[0]
            .records
            .as_ref()
            .map(|r| r.len()),
        Some(0)
    );
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incremental_fetch_session_answers_only_what_changed() {
    let b = wire::start(|_| {}).await;
    let mut c = b.connect().await;
    create(&mut c, "s", 1).await;
    c.call(9, &produce("s", 0, 1, batch(2))).await;
    // Epoch 0 opens a session: a full answer with a session id.
    let full = c
        .call(
            12,
            &fetch("s", 0, 0).with_session_id(0).with_session_epoch(0),
        )
        .await;
    assert_eq!(full.error_code, 0);
    assert!(full.session_id > 0);
    assert_eq!(full.responses.len(), 1);
    let id = full.session_id;
    // Epoch 1 moves the offset to 2: nothing new, so no partitions in the answer.
    let inc = c
        .call(
            12,
            &fetch("s", 2, 0).with_session_id(id).with_session_epoch(1),
        )
        .await;
    assert_eq!((inc.error_code, inc.session_id), (0, id));
    assert!(inc.responses.is_empty(), "{:?}", inc.responses);
    // New data: epoch 2 with no partitions listed still fetches the session's partition.
    c.call(9, &produce("s", 0, 1, batch(1))).await;
    let inc = c
        .call(
            12,
            &FetchRequest::default()
                .with_max_wait_ms(0)
                .with_max_bytes(1 << 20)
                .with_session_id(id)
                .with_session_epoch(2),
        )
        .await;
    assert_eq!(inc.responses.len(), 1);
    assert_eq!(inc.responses[0].partitions[0].high_watermark, 3);
    // A replayed epoch: INVALID_FETCH_SESSION_EPOCH (71); an unknown id: 70.
    let bad = c
        .call(
            12,
            &fetch("s", 0, 0).with_session_id(id).with_session_epoch(2),
        )
        .await;
    assert_eq!(bad.error_code, 71);
    let bad = c
        .call(
            12,
            &fetch("s", 0, 0)
                .with_session_id(id + 1000)
                .with_session_epoch(1),
        )
        .await;
    assert_eq!(bad.error_code, 70);
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_auto_creates_only_when_allowed() {
    let b = wire::start(|c| c.set("num.partitions", "3").unwrap()).await;
    let mut c = b.connect().await;
    use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
    let ask = |allow: bool, t: &str| {
        MetadataRequest::default()
            .with_topics(Some(vec![
                MetadataRequestTopic::default().with_name(Some(name(t))),
            ]))
            .with_allow_auto_topic_creation(allow)
    };
    let r = c.call(12, &ask(false, "nope")).await;
    assert_eq!(r.topics[0].error_code, 3);
    let r = c.call(12, &ask(true, "auto")).await;
    assert_eq!(
        (r.topics[0].error_code, r.topics[0].partitions.len()),
        (0, 3)
    );
    let r = c.call(12, &ask(true, "bad/name")).await;
    assert_eq!(r.topics[0].error_code, 17);
    b.stop().await;
}
