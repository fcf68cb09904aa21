//! Sluice's own Kafka producer (`sluice.producer.engine=native`) against `sluice broker`:
//! records read back by librdkafka's consumer as they were sent, Kafka's partitioning, acks,
//! errors a user can act on, and a broker restart under an idempotent producer losing and
//! duplicating nothing.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use sluice_kafka::{ENGINE_PROPERTY, KafkaClient, KafkaProducer};
use sluice_log::client::config::ProducerConfig;
use sluice_log::client::partitioner::partition_for_key;
use sluice_log::client::{Admin, Client, Consumer, Header, NewTopic, Producer, ProducerRecord};
use sluice_log::{Error, TopicPartition};

use crate::kafka_client::{broker, broker_at, consume, consumer, values};

fn native(c: &KafkaClient, props: &[(&str, &str)]) -> KafkaProducer {
    let p = c
        .clone()
        .with_producer_property(ENGINE_PROPERTY, "native")
        .producer(ProducerConfig::from_pairs(props.iter().copied()).expect("producer config"))
        .expect("native producer");
    assert!(p.is_native());
    p
}

fn record(topic: &Arc<str>, key: Option<&str>, value: &str) -> ProducerRecord {
    ProducerRecord {
        topic: Arc::clone(topic),
        partition: None,
        key: key.map(|k| Bytes::copy_from_slice(k.as_bytes())),
        value: Some(Bytes::copy_from_slice(value.as_bytes())),
        headers: Vec::new(),
        timestamp: None,
    }
}

async fn read_all(
    c: &KafkaClient,
    topic: &str,
    partitions: i32,
    want: usize,
) -> Vec<sluice_log::client::ConsumerRecord> {
    let mut cons = consumer(c, &[("auto.offset.reset", "earliest")]);
    cons.assign(
        (0..partitions)
            .map(|p| TopicPartition::new(topic, p))
            .collect(),
    )
    .expect("assign");
    let mut got = consume(&mut cons, want).await;
    got.sort_by_key(|r| (r.partition, r.offset));
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_arrive_as_sent_keyed_ones_where_kafka_puts_them() {
    let b = broker().await;
    b.create_topic("orders", 3).await;
    let topic: Arc<str> = Arc::from("orders");
    let p = native(&b.client, &[("acks", "all"), ("linger.ms", "2")]);
    let mut sent = Vec::new();
    for i in 0..600 {
        let key = format!("customer-{}", i % 17);
        let mut r = record(&topic, Some(&key), &format!("order-{i}"));
        r.timestamp = Some(1_700_000_000_000 + i);
        if i % 5 == 0 {
            r.headers.push(Header::new("trace", format!("t{i}")));
        }
        sent.push((key, p.send(r).await.expect("send")));
    }
    // Unkeyed records with no partition stick to one partition per batch (KIP-480).
    for i in 0..300 {
        sent.push((
            String::new(),
            p.send(record(&topic, None, &format!("event-{i}")))
                .await
                .expect("send"),
        ));
    }
    p.flush().await.expect("flush");
    let mut offsets: HashMap<i32, Vec<i64>> = HashMap::new();
    for (key, d) in sent {
        let m = d.await.expect("delivered");
        if !key.is_empty() {
            assert_eq!(m.partition, partition_for_key(key.as_bytes(), 3), "{key}");
        }
        offsets.entry(m.partition).or_default().push(m.offset);
    }
    for (partition, mut o) in offsets {
        o.sort_unstable();
        let want: Vec<i64> = (0..o.len() as i64).collect();
        assert_eq!(o, want, "partition {partition}: every offset once, from 0");
    }

    let got = read_all(&b.client, "orders", 3, 900).await;
    assert_eq!(got.len(), 900);
    let mut keyed: Vec<_> = got.iter().filter(|r| r.key.is_some()).collect();
    keyed.sort_by_key(|r| r.timestamp);
    assert_eq!(keyed.len(), 600);
    for (i, r) in keyed.iter().enumerate() {
        assert_eq!(r.value.as_deref(), Some(format!("order-{i}").as_bytes()));
        assert_eq!(r.timestamp, 1_700_000_000_000 + i as i64);
        let trace: Vec<_> = r.headers.iter().filter(|h| h.key == "trace").collect();
        if i % 5 == 0 {
            assert_eq!(trace.len(), 1, "record {i} keeps its header");
            assert_eq!(trace[0].value.as_deref(), Some(format!("t{i}").as_bytes()));
        } else {
            assert!(trace.is_empty());
        }
    }
    // Per partition, the records are in send order.
    for partition in 0..3 {
        let events: Vec<usize> = got
            .iter()
            .filter(|r| r.partition == partition && r.key.is_none())
            .map(|r| {
                String::from_utf8_lossy(r.value.as_deref().unwrap_or_default())
                    .trim_start_matches("event-")
                    .parse()
                    .expect("event number")
            })
            .collect();
        assert!(events.windows(2).all(|w| w[0] < w[1]), "{events:?}");
    }
    p.close().await.expect("close");
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_0_and_1_auto_creation_and_errors_a_user_can_act_on() {
    let b = broker().await;
    let topic: Arc<str> = Arc::from("fresh");
    // acks=1 to a topic that does not exist yet: the broker creates it.
    let one = native(&b.client, &[("acks", "1")]);
    let d = one.send(record(&topic, None, "a")).await.expect("send");
    assert_eq!(d.await.expect("delivered").offset, 0);
    assert_eq!(one.partition_count("fresh").await.expect("count"), 1);

    // acks=0: nothing comes back but the record is there.
    let zero = native(&b.client, &[("acks", "0")]);
    let d = zero.send(record(&topic, None, "b")).await.expect("send");
    assert_eq!(
        d.await.expect("written").offset,
        -1,
        "acks=0 knows no offset"
    );
    zero.close().await.expect("close");
    assert_eq!(
        values(&read_all(&b.client, "fresh", 1, 2).await),
        ["a", "b"]
    );

    // A record over max.request.size, and a partition the topic does not have.
    let mut big = record(&topic, None, "");
    big.value = Some(Bytes::from(vec![b'x'; 2 << 20]));
    assert!(matches!(
        one.send(big).await,
        Err(Error::RecordTooLarge { .. })
    ));
    let mut wrong = record(&topic, None, "c");
    wrong.partition = Some(5);
    assert!(matches!(
        one.send(wrong).await,
        Err(Error::UnknownPartition { partition: 5, .. })
    ));
    // The producer is still good after refusing them.
    let d = one.send(record(&topic, None, "d")).await.expect("send");
    assert_eq!(d.await.expect("delivered").offset, 2);
    one.close().await.expect("close");

    // A topic the broker will not create: send gives up after max.block.ms, naming it.
    let no_auto_dir = tempfile::tempdir().expect("tempdir");
    let strict = broker_at(
        no_auto_dir.path(),
        "127.0.0.1:0",
        &[("auto.create.topics.enable", "false")],
    )
    .await;
    let p = native(&strict.client, &[("max.block.ms", "500")]);
    let missing: Arc<str> = Arc::from("missing");
    let e = p
        .send(record(&missing, None, "x"))
        .await
        .expect_err("no such topic");
    assert!(e.to_string().contains("missing"), "{e}");

    // A transactional native producer is refused with the reason.
    let e = b
        .client
        .clone()
        .with_producer_property(ENGINE_PROPERTY, "native")
        .producer(ProducerConfig::from_pairs([("transactional.id", "t")]).expect("config"))
        .expect_err("no transactions");
    assert!(e.to_string().contains("transactional.id"), "{e}");
    let e = b
        .client
        .clone()
        .with_producer_property(ENGINE_PROPERTY, "fast")
        .producer(ProducerConfig::default())
        .expect_err("unknown engine");
    assert!(e.to_string().contains(ENGINE_PROPERTY), "{e}");
    drop(p);
    strict.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_refused_for_good_leaves_no_sequence_gap_behind_it() {
    let b = broker().await;
    b.client
        .admin()
        .expect("admin")
        .create_topics(vec![
            NewTopic::new("small", 1).config("max.message.bytes", "2000"),
        ])
        .await
        .expect("create");
    let topic: Arc<str> = Arc::from("small");
    let p = native(&b.client, &[("acks", "all"), ("linger.ms", "0")]);
    let d = p.send(record(&topic, None, "a")).await.expect("send");
    d.await.expect("delivered");
    // Within max.request.size, over the topic's max.message.bytes: the broker refuses it,
    // and its sequence number never reaches the log.
    let big = "x".repeat(5000);
    let d = p.send(record(&topic, None, &big)).await.expect("send");
    let e = d.await.expect_err("too large for the topic");
    assert!(e.to_string().contains("small-0"), "{e}");
    // The records after it go (under a new producer id), none lost, none twice.
    let mut sent = Vec::new();
    for v in ["b", "c", "d"] {
        sent.push(p.send(record(&topic, None, v)).await.expect("send"));
    }
    for d in sent {
        d.await.expect("delivered after the refused record");
    }
    p.close().await.expect("close");
    assert_eq!(
        values(&read_all(&b.client, "small", 1, 4).await),
        ["a", "b", "c", "d"]
    );
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_stay_within_max_request_size_whatever_batch_size_says() {
    let b = broker().await;
    let topic: Arc<str> = Arc::from("wide");
    // 3 MB in one linger window; batch.size would allow it all in one batch, which the
    // broker (message.max.bytes ~1 MB) could only refuse.
    let p = native(
        &b.client,
        &[
            ("batch.size", "4000000"),
            ("max.request.size", "100000"),
            ("linger.ms", "50"),
        ],
    );
    let value = "v".repeat(1000);
    let mut sent = Vec::new();
    for _ in 0..3000 {
        sent.push(p.send(record(&topic, None, &value)).await.expect("send"));
    }
    for d in sent {
        d.await.expect("delivered");
    }
    p.close().await.expect("close");
    assert_eq!(read_all(&b.client, "wide", 1, 3000).await.len(), 3000);
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_compression_type_reads_back() {
    let b = broker().await;
    for codec in ["gzip", "snappy", "lz4", "zstd"] {
        let name = format!("c-{codec}");
        let topic: Arc<str> = Arc::from(name.as_str());
        let p = native(
            &b.client,
            &[("compression.type", codec), ("linger.ms", "20")],
        );
        let mut sent = Vec::new();
        for i in 0..200 {
            let value = format!("{codec} record {i} {}", "z".repeat(i % 50));
            sent.push(p.send(record(&topic, None, &value)).await.expect("send"));
        }
        for d in sent {
            d.await.expect("delivered");
        }
        p.close().await.expect("close");
        let got = read_all(&b.client, &name, 1, 200).await;
        let want: Vec<String> = (0..200)
            .map(|i| format!("{codec} record {i} {}", "z".repeat(i % 50)))
            .collect();
        assert_eq!(values(&got), want, "{codec}");
    }
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_partitions_are_used_after_metadata_max_age() {
    let b = broker().await;
    let admin = b.client.admin().expect("admin");
    b.create_topic("grow", 1).await;
    let topic: Arc<str> = Arc::from("grow");
    let p = native(&b.client, &[("acks", "1"), ("metadata.max.age.ms", "200")]);
    // A key that Kafka's partitioner puts in partition 2 of 3.
    let key = (0..1000)
        .map(|i| format!("k{i}"))
        .find(|k| partition_for_key(k.as_bytes(), 3) == 2)
        .expect("such a key");
    let first = p
        .send(record(&topic, Some(&key), "before"))
        .await
        .expect("send")
        .await
        .expect("delivered");
    assert_eq!(first.partition, 0, "one partition so far");
    admin.create_partitions("grow", 3).await.expect("grow");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let m = p
            .send(record(&topic, Some(&key), "after"))
            .await
            .expect("send")
            .await
            .expect("delivered");
        if m.partition == 2 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the new partitions were never used"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    p.close().await.expect("close");
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotent_producer_rides_out_a_broker_restart_without_loss_or_duplicates() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = broker_at(dir.path(), "127.0.0.1:0", &[]).await;
    let addr = first.addr.to_string();
    let topic: Arc<str> = Arc::from("ledger");
    // acks=all: idempotence stays on (the default).
    let p = native(&first.client, &[("acks", "all"), ("linger.ms", "1")]);
    let mut deliveries = Vec::new();
    for i in 0..200 {
        deliveries.push(
            p.send(record(&topic, None, &format!("{i}")))
                .await
                .expect("send"),
        );
    }
    p.flush().await.expect("flush before the restart");
    first.stop().await;

    // Sent while the broker is down: retried until it is back.
    for i in 200..400 {
        deliveries.push(
            p.send(record(&topic, None, &format!("{i}")))
                .await
                .expect("send"),
        );
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let second = broker_at(dir.path(), &addr, &[]).await;
    let mut last = -1;
    for (i, d) in deliveries.into_iter().enumerate() {
        let m = tokio::time::timeout(Duration::from_secs(30), d)
            .await
            .expect("delivered in time")
            .unwrap_or_else(|e| panic!("record {i}: {e}"));
        assert!(m.offset > last, "record {i} at {} after {last}", m.offset);
        last = m.offset;
    }
    let got = read_all(&second.client, "ledger", 1, 400).await;
    let want: Vec<String> = (0..400).map(|i| i.to_string()).collect();
    assert_eq!(values(&got), want, "every record once, in order");
    p.close().await.expect("close");
    second.stop().await;
}
