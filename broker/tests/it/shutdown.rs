//! A clean shutdown finishes what it has read, flushes and checkpoints; the data is there on
//! restart.

use std::time::Duration;

use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{FetchRequest, ProduceRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use sluice_log::TopicPartition;

use crate::wire::{self, batch};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_answers_in_flight_requests_and_keeps_the_data() {
    let b = wire::start(|c| c.set("auto.create.topics.enable", "true").unwrap()).await;
    b.state
        .log
        .create_topic("t", 1, std::iter::empty::<(&str, &str)>())
        .unwrap();
    let name = TopicName(StrBytes::from_static_str("t"));
    let mut c = b.connect().await;
    let produce = ProduceRequest::default()
        .with_acks(1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![
            TopicProduceData::default()
                .with_name(name.clone())
                .with_partition_data(vec![
                    PartitionProduceData::default()
                        .with_index(0)
                        .with_records(Some(batch(7))),
                ]),
        ]);
    let r = c.call(9, &produce).await;
    assert_eq!(r.responses[0].partition_responses[0].error_code, 0);
    // A long-poll fetch past the end is in flight when the shutdown starts: it is answered.
    let fetch = FetchRequest::default()
        .with_max_wait_ms(2_000)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_topics(vec![
            FetchTopic::default().with_topic(name).with_partitions(vec![
                FetchPartition::default()
                    .with_partition(0)
                    .with_fetch_offset(7)
                    .with_partition_max_bytes(1 << 20),
            ]),
        ]);
    let corr = c.send(12, &fetch).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let addr = b.addr;
    let stopping = tokio::spawn(b.stop());
    let (got, r) = c.recv::<FetchRequest>(12).await;
    assert_eq!(got, corr);
    assert_eq!(r.responses[0].partitions[0].high_watermark, 7);
    let dir = tokio::time::timeout(Duration::from_secs(40), stopping)
        .await
        .unwrap()
        .unwrap();
    // No new connections once stopped.
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    // Reopened: everything acknowledged is there, with a clean recovery point.
    let b = wire::start_in(dir, |_| {}).await;
    let p = b.state.log.partition(&TopicPartition::new("t", 0)).unwrap();
    assert_eq!(p.log_end_offset(), 7);
    assert_eq!(
        p.recovery_point(),
        7,
        "closed cleanly: flushed and checkpointed"
    );
    b.stop().await;
}
