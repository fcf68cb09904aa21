//! Topic ids over the wire (KIP-516) and Kafka 4's current versions: Metadata v12 gives ids,
//! Fetch v15/v16 and Produce v13 address topics by them (an unknown id is UNKNOWN_TOPIC_ID),
//! DescribeTopicPartitions pages through topics, ListOffsets at v10; ids survive a restart.
//! Also the answers behind kafka-python's `offsets_for_times` for a partition the topic does
//! not have.

use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::describe_topic_partitions_request::{Cursor, TopicRequest};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    CreateTopicsRequest, DeleteTopicsRequest, DescribeTopicPartitionsRequest, FetchRequest,
    ListOffsetsRequest, MetadataRequest, MetadataResponse, ProduceRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use crate::wire::{self, Conn, batch};

const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const UNKNOWN_TOPIC_ID: i16 = 100;
const FETCH_SESSION_TOPIC_ID_ERROR: i16 = 106;

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_owned()))
}

/// Creates `topic` and returns the id CreateTopics v7 answers.
async fn create(conn: &mut Conn, topic: &str, partitions: i32) -> Uuid {
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
    assert!(
        !r.topics[0].topic_id.is_nil(),
        "CreateTopics v7 answers the id"
    );
    r.topics[0].topic_id
}

async fn metadata(
    conn: &mut Conn,
    version: i16,
    topics: Vec<MetadataRequestTopic>,
) -> MetadataResponse {
    conn.call(
        version,
        &MetadataRequest::default().with_topics(Some(topics)),
    )
    .await
}

fn fetch_by_id(id: Uuid, partition: i32, offset: i64) -> FetchRequest {
    FetchRequest::default()
        .with_max_wait_ms(0)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_session_epoch(-1)
        .with_topics(vec![
            FetchTopic::default()
                .with_topic_id(id)
                .with_partitions(vec![
                    FetchPartition::default()
                        .with_partition(partition)
                        .with_fetch_offset(offset)
                        .with_partition_max_bytes(1 << 20),
                ]),
        ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_v12_gives_ids_and_fetch_by_id_reads_them() {
    let b = wire::start(|_| {}).await;
    let mut c = b.connect().await;
    let id = create(&mut c, "ids", 2).await;
    // Metadata v12: the id by name, and the topic by id.
    let by_name = metadata(
        &mut c,
        12,
        vec![MetadataRequestTopic::default().with_name(Some(name("ids")))],
    )
    .await;
    assert_eq!(by_name.topics[0].topic_id, id);
    let by_id = metadata(
        &mut c,
        12,
        vec![
            MetadataRequestTopic::default()
                .with_name(None)
                .with_topic_id(id),
        ],
    )
    .await;
    assert_eq!(by_id.topics[0].error_code, 0);
    assert_eq!(by_id.topics[0].name, Some(name("ids")));
    assert_eq!(by_id.topics[0].partitions.len(), 2);
    let unknown = Uuid::from_u128(0x1234);
    let missing = metadata(
        &mut c,
        12,
        vec![
            MetadataRequestTopic::default()
                .with_name(None)
                .with_topic_id(unknown),
        ],
    )
    .await;
    assert_eq!(missing.topics[0].error_code, UNKNOWN_TOPIC_ID);
    assert_eq!(missing.topics[0].topic_id, unknown);
    // v13 too (its top-level error code is 0).
    let v13 = metadata(
        &mut c,
        13,
        vec![MetadataRequestTopic::default().with_name(Some(name("ids")))],
    )
    .await;
    assert_eq!((v13.error_code, v13.topics[0].topic_id), (0, id));

    // Produce v13 by id, then Fetch v15 and v16 by id read it back.
    let produced = c
        .call(
            13,
            &ProduceRequest::default()
                .with_acks(-1)
                .with_timeout_ms(10_000)
                .with_topic_data(vec![
                    TopicProduceData::default()
                        .with_topic_id(id)
                        .with_partition_data(vec![
                            PartitionProduceData::default()
                                .with_index(1)
                                .with_records(Some(batch(3))),
                        ]),
                    TopicProduceData::default()
                        .with_topic_id(unknown)
                        .with_partition_data(vec![
                            PartitionProduceData::default()
                                .with_index(0)
                                .with_records(Some(batch(1))),
                        ]),
                ]),
        )
        .await;
    assert_eq!(produced.responses[0].topic_id, id);
    assert_eq!(produced.responses[0].partition_responses[0].error_code, 0);
    assert_eq!(
        produced.responses[1].partition_responses[0].error_code,
        UNKNOWN_TOPIC_ID
    );
    for v in [15, 16] {
        let r = c.call(v, &fetch_by_id(id, 1, 0)).await;
        assert_eq!(r.error_code, 0);
        assert_eq!(r.responses[0].topic_id, id, "v{v}");
        let p = &r.responses[0].partitions[0];
        assert_eq!((p.error_code, p.high_watermark), (0, 3), "v{v}");
        assert!(!p.records.as_ref().unwrap().is_empty(), "v{v}");
        // An id no topic has: UNKNOWN_TOPIC_ID, at once.
        let r = c
            .call(v, &fetch_by_id(unknown, 0, 0).with_max_wait_ms(5_000))
            .await;
        assert_eq!(r.responses[0].topic_id, unknown);
        assert_eq!(
            r.responses[0].partitions[0].error_code, UNKNOWN_TOPIC_ID,
            "v{v}"
        );
    }

    // A session opened by id and continued by name is refused.
    let opened = c
        .call(16, &fetch_by_id(id, 1, 3).with_session_epoch(0))
        .await;
    assert!(opened.session_id > 0);
    let by_name = FetchRequest::default()
        .with_session_id(opened.session_id)
        .with_session_epoch(1)
        .with_max_bytes(1 << 20)
        .with_topics(vec![
            FetchTopic::default()
                .with_topic(name("ids"))
                .with_partitions(vec![
                    FetchPartition::default()
                        .with_partition(1)
                        .with_fetch_offset(3)
                        .with_partition_max_bytes(1 << 20),
                ]),
        ]);
    let r = c.call(12, &by_name).await;
    assert_eq!(r.error_code, FETCH_SESSION_TOPIC_ID_ERROR);

    // Deleted by id (DeleteTopics v6): the id names nothing any more.
    let deleted = c
        .call(
            6,
            &DeleteTopicsRequest::default()
                .with_topics(vec![DeleteTopicState::default().with_topic_id(id)])
                .with_timeout_ms(10_000),
        )
        .await;
    assert_eq!(deleted.responses[0].error_code, 0);
    assert_eq!(deleted.responses[0].name, Some(name("ids")));
    let r = c.call(16, &fetch_by_id(id, 1, 0)).await;
    assert_eq!(r.responses[0].partitions[0].error_code, UNKNOWN_TOPIC_ID);
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_topic_partitions_pages_with_its_cursor() {
    let b = wire::start(|_| {}).await;
    let mut c = b.connect().await;
    let a = create(&mut c, "dtp-a", 3).await;
    create(&mut c, "dtp-b", 2).await;
    let ask = |cursor: Option<(&str, i32)>| {
        DescribeTopicPartitionsRequest::default()
            .with_topics(
                ["dtp-b", "dtp-a", "dtp-none"]
                    .iter()
                    .map(|t| TopicRequest::default().with_name(name(t)))
                    .collect(),
            )
            .with_response_partition_limit(2)
            .with_cursor(cursor.map(|(t, p)| {
                Cursor::default()
                    .with_topic_name(name(t))
                    .with_partition_index(p)
            }))
    };
    let mut pages = Vec::new();
    let mut cursor: Option<(String, i32)> = None;
    for _ in 0..10 {
        let r = c
            .call(0, &ask(cursor.as_ref().map(|(t, p)| (t.as_str(), *p))))
            .await;
        let page: Vec<(String, i16, Vec<i32>)> = r
            .topics
            .iter()
            .map(|t| {
                (
                    t.name.as_ref().unwrap().to_string(),
                    t.error_code,
                    t.partitions.iter().map(|p| p.partition_index).collect(),
                )
            })
            .collect();
        if let Some(t) = r.topics.iter().find(|t| t.name == Some(name("dtp-a"))) {
            assert_eq!(t.topic_id, a);
        }
        pages.push(page);
        cursor = r
            .next_cursor
            .map(|c| (c.topic_name.to_string(), c.partition_index));
        if cursor.is_none() {
            break;
        }
    }
    let s = |t: &str| t.to_owned();
    assert_eq!(
        pages,
        vec![
            vec![(s("dtp-a"), 0, vec![0, 1])],
            vec![(s("dtp-a"), 0, vec![2]), (s("dtp-b"), 0, vec![0])],
            vec![
                (s("dtp-b"), 0, vec![1]),
                (s("dtp-none"), UNKNOWN_TOPIC_OR_PARTITION, vec![])
            ],
        ]
    );
    b.stop().await;
}

/// kafka-python's `offsets_for_times` for a partition the topic does not have: the client
/// sees no such partition in Metadata, so it refreshes metadata until its timeout (as against
/// Kafka); asked anyway, ListOffsets answers the partition UNKNOWN_TOPIC_OR_PARTITION with
/// offset, timestamp and leader epoch -1, as Kafka's ReplicaManager does for a partition its
/// metadata does not have.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_offsets_at_v10_and_for_a_partition_the_topic_does_not_have() {
    let b = wire::start(|_| {}).await;
    let mut c = b.connect().await;
    create(&mut c, "lo", 1).await;
    let m = metadata(
        &mut c,
        12,
        vec![MetadataRequestTopic::default().with_name(Some(name("lo")))],
    )
    .await;
    let parts: Vec<i32> = m.topics[0]
        .partitions
        .iter()
        .map(|p| p.partition_index)
        .collect();
    assert_eq!(
        parts,
        vec![0],
        "Metadata lists only the partitions there are"
    );
    c.call(
        9,
        &ProduceRequest::default()
            .with_acks(1)
            .with_timeout_ms(10_000)
            .with_topic_data(vec![
                TopicProduceData::default()
                    .with_name(name("lo"))
                    .with_partition_data(vec![
                        PartitionProduceData::default()
                            .with_index(0)
                            .with_records(Some(batch(2))),
                    ]),
            ]),
    )
    .await;
    let ask = |partition: i32, timestamp: i64| {
        ListOffsetsRequest::default()
            .with_replica_id(kafka_protocol::messages::BrokerId(-1))
            .with_timeout_ms(1000)
            .with_topics(vec![
                ListOffsetsTopic::default()
                    .with_name(name("lo"))
                    .with_partitions(vec![
                        ListOffsetsPartition::default()
                            .with_partition_index(partition)
                            .with_timestamp(timestamp),
                    ]),
            ])
    };
    for v in [9, 10] {
        let latest = c.call(v, &ask(0, -1)).await;
        let p = &latest.topics[0].partitions[0];
        assert_eq!((p.error_code, p.offset, p.leader_epoch), (0, 2, 0), "v{v}");
        // KIP-1005's latest tiered offset: no tiered storage, so none, as Kafka answers.
        let tiered = c.call(v, &ask(0, -5)).await;
        let p = &tiered.topics[0].partitions[0];
        assert_eq!(
            (p.error_code, p.offset, p.timestamp, p.leader_epoch),
            (0, -1, -1, -1),
            "v{v}"
        );
        let missing = c.call(v, &ask(5, 0)).await;
        let p = &missing.topics[0].partitions[0];
        assert_eq!(
            (
                p.partition_index,
                p.error_code,
                p.offset,
                p.timestamp,
                p.leader_epoch
            ),
            (5, UNKNOWN_TOPIC_OR_PARTITION, -1, -1, -1),
            "v{v}"
        );
    }
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_ids_survive_a_restart() {
    let b = wire::start(|_| {}).await;
    let mut c = b.connect().await;
    let id = create(&mut c, "kept", 1).await;
    let internal = metadata(
        &mut c,
        12,
        vec![MetadataRequestTopic::default().with_name(Some(name("__consumer_offsets")))],
    )
    .await;
    let offsets_id = internal.topics[0].topic_id;
    assert!(!offsets_id.is_nil(), "internal topics have ids too");
    drop(c);
    let dir = b.stop().await;
    let b = wire::start_in(dir, |_| {}).await;
    let mut c = b.connect().await;
    let m = metadata(
        &mut c,
        12,
        vec![
            MetadataRequestTopic::default().with_name(Some(name("kept"))),
            MetadataRequestTopic::default().with_name(Some(name("__consumer_offsets"))),
        ],
    )
    .await;
    assert_eq!(m.topics[0].topic_id, id);
    assert_eq!(m.topics[1].topic_id, offsets_id);
    b.stop().await;
}
