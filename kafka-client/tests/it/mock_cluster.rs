//! The Kafka-protocol client against librdkafka's mock cluster on loopback.
//!
//! The mock cluster answers Produce, Fetch, ListOffsets, Metadata, the group protocol,
//! OffsetCommit/OffsetFetch and the transaction APIs, but not the admin APIs (CreateTopics,
//! DescribeConfigs, ListGroups, ...): topics are created through the mock itself.

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use sluice_client::config::{ConsumerConfig, ProducerConfig};
use sluice_client::partitioner::partition_for_key;
use sluice_client::{
    Admin, Client, Consumer, ConsumerGroupMetadata, ConsumerRecord, NewTopic, OffsetSpec, Producer,
    ProducerRecord, RebalanceListener, ResetSpec,
};
use sluice_client::{Error, TopicPartition};
use sluice_kafka::{KafkaClient, KafkaConsumer, KafkaProducer};

/// Longest any one wait of these tests may take.
const DEADLINE: Duration = Duration::from_secs(30);

fn cluster(topics: &[(&str, i32)]) -> MockCluster<'static, DefaultProducerContext> {
    let mock = MockCluster::new(1).unwrap();
    for (t, partitions) in topics {
        mock.create_topic(t, *partitions, 1).unwrap();
    }
    mock
}

fn producer(c: &KafkaClient, props: &[(&str, &str)]) -> KafkaProducer {
    c.producer(ProducerConfig::from_pairs(props.iter().copied()).unwrap())
        .unwrap()
}

fn consumer(c: &KafkaClient, props: &[(&str, &str)]) -> KafkaConsumer {
    c.consumer(ConsumerConfig::from_pairs(props.iter().copied()).unwrap())
        .unwrap()
}

/// Polls until `want` records arrived (or the deadline passed).
async fn consume<C: Consumer>(consumer: &mut C, want: usize) -> Vec<ConsumerRecord> {
    let start = Instant::now();
    let mut out = Vec::new();
    for _ in 0..1000 {
        if out.len() >= want || start.elapsed() > DEADLINE {
            break;
        }
        out.extend(consumer.poll(Duration::from_millis(200)).await.unwrap());
    }
    out
}

/// Polls for `wait`, expecting nothing.
async fn nothing_for<C: Consumer>(consumer: &mut C, wait: Duration) -> Vec<ConsumerRecord> {
    let start = Instant::now();
    let mut out = Vec::new();
    for _ in 0..100 {
        if start.elapsed() >= wait {
            break;
        }
        out.extend(consumer.poll(Duration::from_millis(100)).await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_keyed_records_with_headers_come_back_by_assign() {
    let mock = cluster(&[("orders", 3)]);
    let c = KafkaClient::new(mock.bootstrap_servers());
    let p = producer(&c, &[("linger.ms", "1")]);
    assert_eq!(p.partition_count("orders").await.unwrap(), 3);
    let mut deliveries = Vec::new();
    for i in 0..60 {
        let key = format!("customer-{}", i % 7);
        let rec = ProducerRecord::new("orders", format!("order-{i}"))
            .key(key.clone())
            .header("source", "test")
            .header("n", i.to_string());
        deliveries.push((key, p.send(rec).await.unwrap()));
    }
    p.flush().await.unwrap();
    assert_eq!(p.in_flight(), 0);
    let mut next = [0i64; 3];
    for (key, d) in deliveries {
        let m = tokio::time::timeout(DEADLINE, d).await.unwrap().unwrap();
        // Kafka's partitioner (murmur2), as the Java client and the embedded one use.
        assert_eq!(m.partition, partition_for_key(key.as_bytes(), 3), "{key}");
        assert_eq!(m.offset, next[m.partition as usize]);
        next[m.partition as usize] += 1;
        assert_eq!(&*m.topic, "orders");
    }

    let mut cons = consumer(&c, &[]);
    let tps: Vec<TopicPartition> = (0..3).map(|p| TopicPartition::new("orders", p)).collect();
    cons.assign(tps.clone()).unwrap();
    assert_eq!(cons.assignment(), tps);
    cons.seek_to_beginning(&[]).await.unwrap();
    assert_eq!(cons.position(&tps[0]), Some(0));
    let records = consume(&mut cons, 60).await;
    assert_eq!(records.len(), 60);
    for r in &records {
        let key = String::from_utf8(r.key.as_deref().unwrap().to_vec()).unwrap();
        assert_eq!(r.partition, partition_for_key(key.as_bytes(), 3));
        assert_eq!(r.headers[0].key, "source");
        assert_eq!(r.headers[0].value.as_deref(), Some(&b"test"[..]));
        let n: usize = std::str::from_utf8(r.headers[1].value.as_deref().unwrap())
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(r.value.as_deref(), Some(format!("order-{n}").as_bytes()));
        assert!(r.timestamp > 1_600_000_000_000, "{}", r.timestamp);
    }
    for (p, tp) in tps.iter().enumerate() {
        assert_eq!(cons.position(tp), Some(next[p]));
    }
    // Seek back on one partition: only its records again.
    cons.seek(&tps[1], next[1] - 2).unwrap();
    let again = consume(&mut cons, 2).await;
    assert_eq!(again.len(), 2);
    assert!(again.iter().all(|r| r.partition == 1));
    assert_eq!(again[0].offset, next[1] - 2);
    // A partition not assigned cannot be sought.
    assert!(matches!(
        cons.seek(&TopicPartition::new("orders", 7), 0),
        Err(Error::InvalidRequest(_))
    ));
    cons.close().await.unwrap();
    assert!(matches!(
        cons.poll(Duration::ZERO).await,
        Err(Error::Closed(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_admin_describes_topics_and_offsets() {
    let mock = cluster(&[("events", 2)]);
    // The mock cluster has no controller: what needs one (CreateTopics, DescribeConfigs) waits
    // this long, then fails (creating) or goes without (describing).
    let c = KafkaClient::new(mock.bootstrap_servers()).with_timeout(Duration::from_secs(2));
    let admin = c.admin().unwrap();
    let p = producer(&c, &[("acks", "1"), ("linger.ms", "0")]);
    for i in 0..10 {
        p.send(ProducerRecord::new("events", format!("e{i}")).partition(i % 2))
            .await
            .unwrap();
    }
    p.flush().await.unwrap();

    assert!(
        admin
            .list_topics()
            .await
            .unwrap()
            .contains(&"events".to_owned())
    );
    let d = admin.describe_topic("events").await.unwrap();
    assert_eq!(d.name, "events");
    assert_eq!(d.partitions.len(), 2);
    for part in &d.partitions {
        assert_eq!((part.log_start_offset, part.log_end_offset), (0, 5));
        assert_eq!(part.offline, None);
    }
    let tp = TopicPartition::new("events", 1);
    let earliest = admin.list_offsets(&tp, OffsetSpec::Earliest).await.unwrap();
    let latest = admin.list_offsets(&tp, OffsetSpec::Latest).await.unwrap();
    assert_eq!((earliest.offset, latest.offset), (0, 5));
    assert!(matches!(
        admin.describe_topic("missing").await,
        Err(Error::UnknownTopic(t)) if t == "missing"
    ));
    // (MaxTimestamp and delete_offsets, sent without librdkafka, are tested against
    // `sluice broker` in tests/e2e: the mock serves neither.)
    // Without a controller a topic cannot be created: a typed error, not a panic or a hang.
    let err = admin
        .create_topics(vec![NewTopic::new("new", 1)])
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout(_)), "{err:?}");
}

#[derive(Default)]
struct Recorder(Arc<Mutex<Vec<String>>>);

impl RebalanceListener for Recorder {
    fn on_partitions_revoked(&mut self, partitions: &[TopicPartition]) {
        self.0.lock().push(format!("revoked {}", partitions.len()));
    }
    fn on_partitions_assigned(&mut self, partitions: &[TopicPartition]) {
        self.0.lock().push(format!("assigned {}", partitions.len()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_group_subscribes_commits_and_resumes() {
    let mock = cluster(&[("jobs", 2)]);
    let c = KafkaClient::new(mock.bootstrap_servers());
    let p = producer(&c, &[("linger.ms", "0")]);
    for i in 0..20 {
        p.send(ProducerRecord::new("jobs", format!("job-{i}")).partition(i % 2))
            .await
            .unwrap();
    }
    p.flush().await.unwrap();

    let group = [
        ("group.id", "workers"),
        ("auto.offset.reset", "earliest"),
        ("enable.auto.commit", "false"),
        ("session.timeout.ms", "6000"),
        ("heartbeat.interval.ms", "500"),
    ];
    let mut cons = consumer(&c, &group);
    let events = Arc::new(Mutex::new(Vec::new()));
    cons.set_rebalance_listener(Box::new(Recorder(Arc::clone(&events))));
    cons.subscribe(vec!["jobs".into()]).unwrap();
    let records = consume(&mut cons, 20).await;
    assert_eq!(records.len(), 20);
    assert_eq!(
        events.lock().first().map(String::as_str),
        Some("assigned 2")
    );
    let mut assignment = cons.assignment();
    assignment.sort();
    assert_eq!(
        assignment,
        [
            TopicPartition::new("jobs", 0),
            TopicPartition::new("jobs", 1)
        ]
    );
    // Commit all but the last record of partition 0.
    let tp0 = TopicPartition::new("jobs", 0);
    let tp1 = TopicPartition::new("jobs", 1);
    cons.commit_sync(Some(vec![(tp0.clone(), 9)]))
        .await
        .unwrap();
    cons.commit_sync(None)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        cons.committed(&[tp0.clone(), tp1.clone()]).await.unwrap(),
        [Some(10), Some(10)]
    );
    cons.commit_sync(Some(vec![(tp0.clone(), 9)]))
        .await
        .unwrap();
    assert_eq!(
        cons.committed(std::slice::from_ref(&tp0)).await.unwrap(),
        [Some(9)]
    );
    cons.close().await.unwrap();
    assert!(
        events.lock().iter().any(|e| e == "revoked 2"),
        "{:?}",
        events.lock()
    );

    // The admin sees the group's offsets and lag (by OffsetFetch: the mock has no
    // DescribeGroups, so without members).
    let admin = c.admin().unwrap();
    let mut lag = admin.lag("workers").await.unwrap();
    lag.sort_by(|a, b| a.tp.cmp(&b.tp));
    assert_eq!(lag.len(), 2);
    assert_eq!(
        (lag[0].committed, lag[0].log_end, lag[0].lag),
        (Some(9), 10, Some(1))
    );
    assert_eq!(lag[1].lag, Some(0));

    // A new member resumes from the committed offsets: only the last record of partition 0.
    let mut again = consumer(&c, &group);
    again.subscribe(vec!["jobs".into()]).unwrap();
    let rest = consume(&mut again, 1).await;
    assert_eq!(rest.len(), 1);
    assert_eq!((rest[0].partition, rest[0].offset), (0, 9));
    assert!(
        nothing_for(&mut again, Duration::from_millis(500))
            .await
            .is_empty()
    );
    again.close().await.unwrap();

    // Reset a group's offsets from outside it (the mock refuses that for a group that ever
    // had members, unlike Kafka for an empty one: a group of its own here).
    let planned = admin
        .reset_offsets(
            "replay",
            vec![tp0.clone(), tp1.clone()],
            ResetSpec::ToOffset(4),
            false,
        )
        .await
        .unwrap();
    assert_eq!(planned, [(tp0.clone(), 4), (tp1.clone(), 4)]);
    let dry = admin
        .reset_offsets("replay", vec![tp0.clone()], ResetSpec::ShiftBy(-3), true)
        .await
        .unwrap();
    assert_eq!(dry, [(tp0.clone(), 1)]);
    let shifted = admin
        .reset_offsets("replay", vec![tp1.clone()], ResetSpec::ShiftBy(100), false)
        .await
        .unwrap();
    assert_eq!(shifted, [(tp1.clone(), 10)], "clamped to the log end");
    let mut lag = admin.lag("replay").await.unwrap();
    lag.sort_by(|a, b| a.tp.cmp(&b.tp));
    let committed: Vec<Option<i64>> = lag.iter().map(|l| l.committed).collect();
    assert_eq!(committed, [Some(4), Some(10)]);
    assert!(matches!(
        admin.lag("nobody").await,
        Err(Error::GroupIdNotFound(g)) if g == "nobody"
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_manual_assignment_commits_for_its_group() {
    let mock = cluster(&[("t", 1)]);
    let c = KafkaClient::new(mock.bootstrap_servers());
    let p = producer(&c, &[("linger.ms", "0")]);
    for i in 0..5 {
        p.send(ProducerRecord::new("t", format!("v{i}")))
            .await
            .unwrap();
    }
    p.flush().await.unwrap();
    let tp = TopicPartition::new("t", 0);
    let mut cons = consumer(
        &c,
        &[("group.id", "manual"), ("auto.offset.reset", "earliest")],
    );
    cons.assign(vec![tp.clone()]).unwrap();
    assert_eq!(consume(&mut cons, 5).await.len(), 5);
    // close commits the position (enable.auto.commit, a group).
    cons.close().await.unwrap();
    let mut next = consumer(&c, &[("group.id", "manual")]);
    assert_eq!(
        next.committed(std::slice::from_ref(&tp)).await.unwrap(),
        [Some(5)]
    );
    // Without a group there is nothing to commit to.
    let mut plain = consumer(&c, &[]);
    plain.assign(vec![tp.clone()]).unwrap();
    assert!(matches!(
        plain
            .commit_sync(None)
            .await
            .or(plain.commit_sync(Some(vec![(tp.clone(), 1)])).await),
        Err(Error::InvalidGroupId(_))
    ));
    assert!(matches!(
        plain.subscribe(vec!["t".into()]),
        Err(Error::InvalidGroupId(_))
    ));
    next.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_paused_partitions_return_nothing_until_resumed() {
    let mock = cluster(&[("p", 2)]);
    let c = KafkaClient::new(mock.bootstrap_servers());
    let p = producer(&c, &[("linger.ms", "0")]);
    for i in 0..10 {
        p.send(ProducerRecord::new("p", format!("v{i}")).partition(i % 2))
            .await
            .unwrap();
    }
    p.flush().await.unwrap();
    let tps = [TopicPartition::new("p", 0), TopicPartition::new("p", 1)];
    let mut cons = consumer(&c, &[]);
    cons.assign(tps.to_vec()).unwrap();
    cons.seek_to_beginning(&[]).await.unwrap();
    cons.pause(&tps[1..]);
    let got = consume(&mut cons, 5).await;
    assert_eq!(got.len(), 5);
    assert!(got.iter().all(|r| r.partition == 0));
    assert!(
        nothing_for(&mut cons, Duration::from_millis(300))
            .await
            .is_empty()
    );
    cons.resume(&tps[1..]);
    let got = consume(&mut cons, 5).await;
    assert_eq!(got.len(), 5);
    assert!(got.iter().all(|r| r.partition == 1));
    assert_eq!(got[0].offset, 0);
}

/// The mock cluster runs the transaction protocol (InitProducerId, AddPartitionsToTxn,
/// AddOffsetsToTxn, TxnOffsetCommit, EndTxn) but keeps no last stable offset and no
/// transactional offsets: `read_committed` reads up to the high watermark there, and offsets
/// sent to a transaction are not stored. What is checked is the producer's side.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_transactions_commit_and_abort() {
    let mock = cluster(&[("tx", 1)]);
    let c = KafkaClient::new(mock.bootstrap_servers());
    let p = producer(&c, &[("transactional.id", "tx-1"), ("linger.ms", "0")]);
    // Outside a transaction a transactional producer refuses to send.
    assert!(p.send(ProducerRecord::new("tx", "early")).await.is_err());
    p.init_transactions().await.unwrap();

    let tp = TopicPartition::new("tx", 0);
    let mut reader = consumer(&c, &[("isolation.level", "read_committed")]);
    reader.assign(vec![tp.clone()]).unwrap();
    reader.seek(&tp, 0).unwrap();

    p.begin_transaction().unwrap();
    let mut deliveries = Vec::new();
    for i in 0..3 {
        deliveries.push(
            p.send(ProducerRecord::new("tx", format!("a{i}")))
                .await
                .unwrap(),
        );
    }
    // A second transaction cannot begin inside the first.
    assert!(p.begin_transaction().is_err());
    p.commit_transaction().await.unwrap();
    // Commit flushed: every delivery is complete.
    for d in deliveries {
        assert!(
            tokio::time::timeout(Duration::ZERO, d)
                .await
                .unwrap()
                .is_ok()
        );
    }
    let got = consume(&mut reader, 3).await;
    let values: Vec<&[u8]> = got.iter().filter_map(|r| r.value.as_deref()).collect();
    assert_eq!(values, [&b"a0"[..], b"a1", b"a2"]);

    // Abort, then a transaction with offsets of a group (from outside it).
    p.begin_transaction().unwrap();
    p.send(ProducerRecord::new("tx", "aborted")).await.unwrap();
    p.abort_transaction().await.unwrap();
    p.begin_transaction().unwrap();
    p.send(ProducerRecord::new("tx", "b0")).await.unwrap();
    p.send_offsets_to_transaction(
        vec![(tp.clone(), 3)],
        &ConsumerGroupMetadata::new("tx-readers"),
    )
    .await
    .unwrap();
    p.commit_transaction().await.unwrap();
    // Committing with nothing open is a state error.
    assert!(p.commit_transaction().await.is_err());
    // A member's metadata needs librdkafka's object, which only its consumer builds.
    let member = ConsumerGroupMetadata::member("g", 3, "m", None);
    p.begin_transaction().unwrap();
    assert!(matches!(
        p.send_offsets_to_transaction(vec![], &member).await,
        Err(Error::Unsupported { .. })
    ));
    p.abort_transaction().await.unwrap();
    // A producer without a transactional.id has no transactions.
    let plain = producer(&c, &[]);
    assert!(matches!(
        plain.begin_transaction(),
        Err(Error::InvalidTxnState(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_pattern_subscription_skips_internal_topics() {
    let mock = cluster(&[
        ("logs-a", 1),
        ("logs-b", 1),
        ("metrics", 1),
        ("__logs-internal", 1),
    ]);
    let c = KafkaClient::new(mock.bootstrap_servers());
    let p = producer(&c, &[("linger.ms", "0")]);
    for t in ["logs-a", "logs-b", "metrics", "__logs-internal"] {
        p.send(ProducerRecord::new(t, t)).await.unwrap();
    }
    p.flush().await.unwrap();
    let mut cons = consumer(
        &c,
        &[("group.id", "pattern"), ("auto.offset.reset", "earliest")],
    );
    cons.subscribe_pattern(sluice_client::TopicPattern::new("*logs-*"))
        .await
        .unwrap();
    let got = consume(&mut cons, 2).await;
    let mut topics: Vec<&str> = got.iter().map(|r| &*r.topic).collect();
    topics.sort();
    assert_eq!(topics, ["logs-a", "logs-b"]);
    assert!(
        nothing_for(&mut cons, Duration::from_millis(300))
            .await
            .is_empty()
    );
    cons.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_send_fails_typed_for_bad_records() {
    let mock = cluster(&[("small", 1)]);
    let c = KafkaClient::new(mock.bootstrap_servers());
    let p = producer(&c, &[("max.request.size", "1000")]);
    let big = vec![b'x'; 2000];
    assert!(matches!(
        p.send(ProducerRecord::new("small", big)).await,
        Err(Error::RecordTooLarge { max: 1000, .. })
    ));
    // Without bootstrap servers there is nothing to connect to.
    assert!(matches!(
        KafkaClient::new("").producer(ProducerConfig::default()),
        Err(Error::InvalidConfig { key, .. }) if key == "bootstrap.servers"
    ));
    // A raw librdkafka property it does not know is refused, naming it.
    let bad = KafkaClient::new(mock.bootstrap_servers()).with_producer_property("no.such.key", "1");
    assert!(matches!(
        bad.producer(ProducerConfig::default()),
        Err(Error::InvalidConfig { key, .. }) if key == "no.such.key"
    ));
}

/// The native producer has no transactions: each transactional call of the `Producer` trait
/// is refused as unsupported, naming the engine that has them.
#[tokio::test]
async fn the_native_producer_refuses_each_transactional_call_naming_librdkafka() {
    let mock = cluster(&[("t", 1)]);
    let client = KafkaClient::new(mock.bootstrap_servers())
        .with_producer_property(sluice_kafka::ENGINE_PROPERTY, "native");
    let p = producer(&client, &[]);
    assert!(p.is_native());
    let refused = [
        p.init_transactions().await,
        p.begin_transaction(),
        p.send_offsets_to_transaction(vec![], &ConsumerGroupMetadata::new("g"))
            .await,
        p.commit_transaction().await,
        p.abort_transaction().await,
    ];
    for r in refused {
        match r {
            Err(e @ Error::Unsupported { .. }) => assert!(
                e.to_string().contains("sluice.producer.engine=librdkafka"),
                "{e}"
            ),
            other => panic!("expected Unsupported, got {other:?}"),
        }
    }
    p.close().await.unwrap();
}

/// `beginning_offsets` and `end_offsets` of partitions not assigned, in the order asked, from
/// both engines (librdkafka's offsets_for_times and the native consumer's ListOffsets per
/// leader); an unknown topic is an error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_beginning_and_end_offsets_of_both_engines() {
    let mock = cluster(&[("bounds", 3)]);
    let c = KafkaClient::new(mock.bootstrap_servers());
    let p = producer(&c, &[("linger.ms", "0")]);
    for (partition, n) in [(0, 2), (2, 5)] {
        for i in 0..n {
            drop(
                p.send(ProducerRecord::new("bounds", format!("{i}")).partition(partition))
                    .await
                    .unwrap(),
            );
        }
    }
    p.close().await.unwrap();
    let tps: Vec<TopicPartition> = [2, 0, 1]
        .into_iter()
        .map(|p| TopicPartition::new("bounds", p))
        .collect();
    let native = c
        .clone()
        .with_consumer_property(sluice_kafka::CONSUMER_ENGINE_PROPERTY, "native");
    for client in [&c, &native] {
        let mut cons = consumer(client, &[]);
        let ends = cons.end_offsets(&tps).await.unwrap();
        assert_eq!(
            ends,
            [
                (tps[0].clone(), 5),
                (tps[1].clone(), 2),
                (tps[2].clone(), 0)
            ],
            "native: {}",
            cons.is_native()
        );
        let starts = cons.beginning_offsets(&tps).await.unwrap();
        assert!(starts.iter().all(|(_, o)| *o == 0), "{starts:?}");
        assert!(cons.end_offsets(&[]).await.unwrap().is_empty());
        assert!(
            cons.end_offsets(&[TopicPartition::new("missing", 0)])
                .await
                .is_err()
        );
        cons.close().await.unwrap();
    }
}

/// The revocation contract on librdkafka's consumer: when a second member joins, the first
/// one's `poll` returns with `Revoked` queued while it still owns the partitions (the
/// unassign, after which librdkafka rejoins, waits for the next poll); then the group splits
/// the partitions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_a_revocation_waits_for_the_next_poll() {
    use sluice_client::RebalanceEvent;
    let mock = cluster(&[("work", 2)]);
    let c = KafkaClient::new(mock.bootstrap_servers());
    let group = [
        ("group.id", "revokers"),
        ("auto.offset.reset", "earliest"),
        ("enable.auto.commit", "false"),
        ("session.timeout.ms", "6000"),
        ("heartbeat.interval.ms", "200"),
    ];
    let all = [
        TopicPartition::new("work", 0),
        TopicPartition::new("work", 1),
    ];
    let mut a = consumer(&c, &group);
    a.subscribe(vec!["work".into()]).unwrap();
    let start = Instant::now();
    let mut events = Vec::new();
    while !events.contains(&RebalanceEvent::Assigned(all.to_vec())) {
        assert!(start.elapsed() < DEADLINE, "never assigned: {events:?}");
        a.poll(Duration::from_millis(100)).await.unwrap();
        events.extend(a.rebalance_events());
    }
    let mut b = consumer(&c, &group);
    b.subscribe(vec!["work".into()]).unwrap();
    let revoked = loop {
        assert!(start.elapsed() < DEADLINE, "never revoked");
        b.poll(Duration::from_millis(50)).await.unwrap();
        a.poll(Duration::from_millis(50)).await.unwrap();
        let found = a.rebalance_events().into_iter().find_map(|e| match e {
            RebalanceEvent::Revoked(tps) => Some(tps),
            _ => None,
        });
        if let Some(tps) = found {
            break tps;
        }
    };
    assert_eq!(
        revoked, all,
        "librdkafka's eager protocol revokes everything"
    );
    let mut held = a.assignment();
    held.sort();
    assert_eq!(held, all, "still owned until the next poll");
    // (A commit here counts on Kafka and `sluice broker`, whose coordinators accept commits
    // of the current generation while the group prepares its rebalance; librdkafka's mock
    // refuses every commit once a member joins, so it is not made here.)
    let lost = a.rebalance_events();
    assert!(
        lost.is_empty(),
        "nothing more before the next poll: {lost:?}"
    );
    // Then the group splits the partitions.
    loop {
        assert!(start.elapsed() < DEADLINE, "never split");
        a.poll(Duration::from_millis(50)).await.unwrap();
        b.poll(Duration::from_millis(50)).await.unwrap();
        if a.assignment().len() == 1 && b.assignment().len() == 1 {
            break;
        }
    }
    a.close().await.unwrap();
    b.close().await.unwrap();
}

/// A custom assignor that gives every member nothing.
struct Nothing;

impl sluice_client::PartitionAssignor for Nothing {
    fn name(&self) -> &str {
        "nothing"
    }
    fn assign(
        &self,
        _: &sluice_client::ClusterPartitions,
        subscriptions: &std::collections::BTreeMap<String, sluice_client::MemberSubscription>,
    ) -> sluice_client::Result<std::collections::BTreeMap<String, sluice_client::Assignment>> {
        Ok(subscriptions
            .keys()
            .map(|id| (id.clone(), sluice_client::Assignment::default()))
            .collect())
    }
}

/// librdkafka cannot run a Rust assignor: a consumer given one is refused as Unsupported,
/// naming the engine and the embedded client (which runs them); without it the same config
/// makes a consumer. The native consumer has no group subscriptions: its subscribe is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_custom_assignor_is_refused_by_librdkafka_and_the_native_consumer_cannot_subscribe() {
    let mock = cluster(&[("t", 2)]);
    let c = KafkaClient::new(mock.bootstrap_servers());
    let config = ConsumerConfig::from_pairs([("group.id", "g")]).unwrap();
    let custom = config
        .clone()
        .with_assignors(vec![Arc::new(Nothing)])
        .unwrap();
    match c.consumer(custom.clone()) {
        Err(e @ Error::Unsupported { .. }) => {
            let msg = e.to_string();
            for part in ["librdkafka", "nothing", "embedded client"] {
                assert!(msg.contains(part), "{part}: {msg}");
            }
        }
        other => panic!("expected Unsupported, got {:?}", other.map(|_| ())),
    }
    let mut plain = c.consumer(config).unwrap();
    plain.subscribe(vec!["t".into()]).unwrap();
    plain.close().await.unwrap();

    let native = KafkaClient::new(mock.bootstrap_servers())
        .with_consumer_property(sluice_kafka::CONSUMER_ENGINE_PROPERTY, "native");
    let mut n = native.consumer(custom).unwrap();
    assert!(matches!(
        n.subscribe(vec!["t".into()]),
        Err(Error::Unsupported { .. })
    ));
}
