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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_answers_a_long_poll_fetch_at_once_instead_of_waiting_it_out() {
    let b = wire::start(|_| {}).await;
    let mut c = b.connect().await;
    crate::protocol::create(&mut c, "w", 1).await;
    let r = c
        .call(9, &crate::protocol::produce("w", 0, -1, batch(4)))
        .await;
    assert_eq!(r.responses[0].partition_responses[0].error_code, 0);
    // Past the end, willing to wait a minute: the broker has nothing to send.
    let corr = c.send(12, &crate::protocol::fetch("w", 4, 60_000)).await;
    // The fetch is parked in the broker once a later request on the connection is answered
    // (requests are answered in order, so wait for the connection to be read, not a time).
    let mut other = b.connect().await;
    let md = other
        .call(12, &kafka_protocol::messages::MetadataRequest::default())
        .await;
    assert!(md.brokers.len() == 1);
    let started = std::time::Instant::now();
    let dir_task = tokio::spawn(b.stop());
    let (got, r) = c.recv::<FetchRequest>(12).await;
    assert_eq!(got, corr);
    let p = &r.responses[0].partitions[0];
    assert_eq!((p.error_code, p.high_watermark), (0, 4));
    assert!(p.records.as_ref().is_none_or(|r| r.is_empty()));
    let dir = tokio::time::timeout(Duration::from_secs(40), dir_task)
        .await
        .unwrap()
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "shutdown took {:?} behind a 60 s long poll",
        started.elapsed()
    );
    // Nothing stored before is lost.
    let b = wire::start_in(dir, |_| {}).await;
    let p = b.state.log.partition(&TopicPartition::new("w", 0)).unwrap();
    assert_eq!((p.log_end_offset(), p.recovery_point()), (4, 4));
    b.stop().await;
}
