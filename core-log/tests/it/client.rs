//! The client interface over the embedded log, used the way an application uses it.

use std::sync::Arc;
use std::time::Duration;

use sluice_log::client::config::{ConsumerConfig, ProducerConfig};
use sluice_log::client::embedded::EmbeddedClient;
use sluice_log::client::partitioner::partition_for_key;
use sluice_log::client::{Admin, Client, Consumer, NewTopic, OffsetSpec, Producer, ProducerRecord};
use sluice_log::log::{LogManager, LogManagerConfig};
use sluice_log::{Error, MockClock, TimestampType, TopicPartition};

fn client(dir: &std::path::Path, clock: &MockClock) -> EmbeddedClient {
    let mut c = LogManagerConfig::new(dir);
    c.clock = Arc::new(clock.clone());
    c.background = false;
    EmbeddedClient::new(LogManager::open(c).unwrap())
}

fn producer(
    c: &EmbeddedClient,
    props: &[(&str, &str)],
) -> sluice_log::client::embedded::EmbeddedProducer {
    c.producer(ProducerConfig::from_pairs(props.iter().copied()).unwrap())
        .unwrap()
}

async fn consume_all<C: Consumer>(
    consumer: &mut C,
    want: usize,
) -> Vec<sluice_log::client::ConsumerRecord> {
    let mut out = Vec::new();
    for _ in 0..200 {
        if out.len() >= want {
            break;
        }
        out.extend(consumer.poll(Duration::from_millis(500)).await.unwrap());
    }
    out
}

#[tokio::test]
async fn keyed_records_land_on_the_java_partition_and_come_back_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let clock = MockClock::new(1_700_000_000_000);
    let c = client(dir.path(), &clock);
    c.admin()
        .unwrap()
        .create_topics(vec![NewTopic::new("orders", 4)])
        .await
        .unwrap();
    let p = producer(&c, &[("linger.ms", "0")]);
    let mut futures = Vec::new();
    for i in 0..400 {
        let key = format!("customer-{}", i % 10);
        let rec = ProducerRecord::new("orders", format!("order-{i}"))
            .key(key.clone())
            .header("source", "test");
        futures.push((key, p.send(rec).await.unwrap()));
    }
    for (key, f) in futures {
        let md = f.await.unwrap();
        assert_eq!(md.partition, partition_for_key(key.as_bytes(), 4));
        assert_eq!(md.timestamp, 1_700_000_000_000);
    }
    let mut consumer = c
        .consumer(ConsumerConfig::from_pairs([("auto.offset.reset", "earliest")]).unwrap())
        .unwrap();
    consumer
        .assign((0..4).map(|i| TopicPartition::new("orders", i)).collect())
        .unwrap();
    let got = consume_all(&mut consumer, 400).await;
    assert_eq!(got.len(), 400);
    // Per key, values arrive in the order sent.
    for k in 0..10 {
        let key = format!("customer-{k}");
        let vals: Vec<i32> = got
            .iter()
            .filter(|r| r.key.as_deref() == Some(key.as_bytes()))
            .map(|r| {
                std::str::from_utf8(r.value.as_deref().unwrap()).unwrap()[6..]
                    .parse()
                    .unwrap()
            })
            .collect();
        assert_eq!(vals.len(), 40);
        assert!(vals.windows(2).all(|w| w[0] < w[1]), "{key}: {vals:?}");
    }
    assert!(got.iter().all(|r| r.headers[0].key == "source"));
}

#[tokio::test]
async fn acks_all_is_durable_and_every_codec_roundtrips() {
    let dir = tempfile::tempdir().unwrap();
    let clock = MockClock::new(1_000);
    let c = client(dir.path(), &clock);
    let admin = c.admin().unwrap();
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
        let topic = format!("t-{codec}");
        admin
            .create_topics(vec![NewTopic::new(topic.as_str(), 1)])
            .await
            .unwrap();
        let p = producer(
            &c,
            &[
                ("acks", "all"),
                ("compression.type", codec),
                ("linger.ms", "1"),
            ],
        );
        let mut fs = Vec::new();
        for i in 0..1000 {
            fs.push(
                p.send(ProducerRecord::new(topic.as_str(), format!("value-{i}")))
                    .await
                    .unwrap(),
            );
        }
        let mut last = -1;
        for f in fs {
            let md = f.await.unwrap();
            assert!(md.offset > last);
            last = md.offset;
        }
        let part = c
            .log()
            .partition(&TopicPartition::new(topic.as_str(), 0))
            .unwrap();
        assert!(
            part.recovery_point() >= 1000,
            "acks=all waited for the fsync"
        );
        let mut consumer = c
            .consumer(ConsumerConfig::from_pairs([("auto.offset.reset", "earliest")]).unwrap())
            .unwrap();
        consumer
            .assign(vec![TopicPartition::new(topic.as_str(), 0)])
            .unwrap();
        let got = consume_all(&mut consumer, 1000).await;
        assert_eq!(got.len(), 1000, "{codec}");
        assert_eq!(got[999].value.as_deref(), Some(&b"value-999"[..]));
    }
}

#[tokio::test]
async fn log_append_time_topics_stamp_the_logs_clock() {
    let dir = tempfile::tempdir().unwrap();
    let clock = MockClock::new(42_000);
    let c = client(dir.path(), &clock);
    c.admin()
        .unwrap()
        .create_topics(vec![
            NewTopic::new("audit", 1).config("message.timestamp.type", "LogAppendTime"),
        ])
        .await
        .unwrap();
    let p = producer(&c, &[("linger.ms", "0")]);
    let md = p
        .send(ProducerRecord::new("audit", "x").timestamp(5))
        .await
        .unwrap()
        .await
        .unwrap();
    assert_eq!(md.timestamp, 42_000);
    let mut consumer = c
        .consumer(ConsumerConfig::from_pairs([("auto.offset.reset", "earliest")]).unwrap())
        .unwrap();
    consumer
        .assign(vec![TopicPartition::new("audit", 0)])
        .unwrap();
    let got = consume_all(&mut consumer, 1).await;
    assert_eq!(got[0].timestamp, 42_000);
    assert_eq!(got[0].timestamp_type, TimestampType::LogAppendTime);
}

#[tokio::test]
async fn list_offsets_seek_and_reset() {
    let dir = tempfile::tempdir().unwrap();
    let clock = MockClock::new(0);
    let c = client(dir.path(), &clock);
    let admin = c.admin().unwrap();
    admin
        .create_topics(vec![NewTopic::new("events", 1)])
        .await
        .unwrap();
    let p = producer(&c, &[("linger.ms", "0"), ("batch.size", "100")]);
    for i in 0..100 {
        p.send(ProducerRecord::new("events", format!("e{i}")).timestamp(1_000 + i * 10))
            .await
            .unwrap();
    }
    p.flush().await.unwrap();
    let tp = TopicPartition::new("events", 0);
    assert_eq!(
        admin
            .list_offsets(&tp, OffsetSpec::Earliest)
            .await
            .unwrap()
            .offset,
        0
    );
    assert_eq!(
        admin
            .list_offsets(&tp, OffsetSpec::Latest)
            .await
            .unwrap()
            .offset,
        100
    );
    let by_ts = admin
        .list_offsets(&tp, OffsetSpec::Timestamp(1_255))
        .await
        .unwrap();
    assert_eq!((by_ts.offset, by_ts.timestamp), (26, 1_260));
    let max = admin
        .list_offsets(&tp, OffsetSpec::MaxTimestamp)
        .await
        .unwrap();
    assert_eq!((max.offset, max.timestamp), (99, 1_990));
    assert_eq!(
        admin
            .list_offsets(&tp, OffsetSpec::Timestamp(5_000))
            .await
            .unwrap()
            .offset,
        100
    );

    let mut consumer = c
        .consumer(ConsumerConfig::from_pairs([("auto.offset.reset", "none")]).unwrap())
        .unwrap();
    consumer.assign(vec![tp.clone()]).unwrap();
    let err = consumer.poll(Duration::from_millis(10)).await.unwrap_err();
    assert!(matches!(err, Error::NoOffsetForPartition { .. }), "{err}");
    consumer.seek_to_timestamp(1_500).await.unwrap();
    assert_eq!(consumer.position(&tp), Some(50));
    let got = consume_all(&mut consumer, 50).await;
    assert_eq!(got.first().map(|r| r.offset), Some(50));
    assert_eq!(got.len(), 50);

    admin.delete_records(&tp, 60).await.unwrap();
    let mut consumer = c
        .consumer(ConsumerConfig::from_pairs([("auto.offset.reset", "earliest")]).unwrap())
        .unwrap();
    consumer.assign(vec![tp.clone()]).unwrap();
    consumer.seek(&tp, 10).unwrap();
    let got = consume_all(&mut consumer, 40).await;
    assert_eq!(
        got.first().map(|r| r.offset),
        Some(60),
        "an out-of-range position resets"
    );
}

#[tokio::test]
async fn a_long_poll_wakes_when_data_arrives() {
    let dir = tempfile::tempdir().unwrap();
    let clock = MockClock::new(0);
    let c = client(dir.path(), &clock);
    c.admin()
        .unwrap()
        .create_topics(vec![NewTopic::new("t", 2)])
        .await
        .unwrap();
    let mut consumer = c.consumer(ConsumerConfig::default()).unwrap();
    consumer
        .assign(vec![
            TopicPartition::new("t", 0),
            TopicPartition::new("t", 1),
        ])
        .unwrap();
    consumer.seek_to_end(&[]).await.unwrap();
    let p = producer(&c, &[("linger.ms", "0")]);
    let poll = tokio::spawn(async move { consumer.poll(Duration::from_secs(30)).await });
    tokio::task::yield_now().await;
    p.send(ProducerRecord::new("t", "wake").partition(1))
        .await
        .unwrap()
        .await
        .unwrap();
    let got = tokio::time::timeout(Duration::from_secs(10), poll)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].partition, 1);
}

#[tokio::test]
async fn producers_are_held_back_at_buffer_memory_and_bad_records_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let clock = MockClock::new(0);
    let c = client(dir.path(), &clock);
    c.admin()
        .unwrap()
        .create_topics(vec![NewTopic::new("t", 1)])
        .await
        .unwrap();
    let p = producer(&c, &[("max.request.size", "1000"), ("linger.ms", "0")]);
    let err = p
        .send(ProducerRecord::new("t", vec![0u8; 2000]))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::RecordTooLarge { .. }), "{err}");
    let err = p.send(ProducerRecord::new("nope", "x")).await.unwrap_err();
    assert!(matches!(err, Error::UnknownTopic(_)), "{err}");
    let err = p
        .send(ProducerRecord::new("t", "x").partition(3))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::UnknownPartition { .. }), "{err}");
    // A tiny buffer still moves everything, a little at a time.
    let p = producer(
        &c,
        &[
            ("buffer.memory", "4096"),
            ("batch.size", "1024"),
            ("linger.ms", "0"),
            ("max.block.ms", "10000"),
        ],
    );
    let mut fs = Vec::new();
    for i in 0..2000 {
        fs.push(
            p.send(ProducerRecord::new("t", format!("{i:0100}")))
                .await
                .unwrap(),
        );
    }
    for f in fs {
        f.await.unwrap();
    }
    assert_eq!(
        c.log()
            .partition(&TopicPartition::new("t", 0))
            .unwrap()
            .log_end_offset(),
        2000
    );
}

#[tokio::test]
async fn concurrent_producers_and_consumers_see_every_record_once() {
    let dir = tempfile::tempdir().unwrap();
    let clock = MockClock::new(0);
    let c = client(dir.path(), &clock);
    c.admin()
        .unwrap()
        .create_topics(vec![NewTopic::new("t", 3)])
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for w in 0..4 {
        let c = c.clone();
        tasks.push(tokio::spawn(async move {
            let p = producer(&c, &[("linger.ms", "1"), ("acks", "1")]);
            for i in 0..2500 {
                p.send(ProducerRecord::new("t", format!("{w}-{i}")).key(format!("k{i}")))
                    .await
                    .unwrap();
            }
            p.flush().await.unwrap();
        }));
    }
    let mut consumer = c
        .consumer(ConsumerConfig::from_pairs([("auto.offset.reset", "earliest")]).unwrap())
        .unwrap();
    consumer
        .assign((0..3).map(|i| TopicPartition::new("t", i)).collect())
        .unwrap();
    let got = consume_all(&mut consumer, 10_000).await;
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(got.len(), 10_000);
    let mut seen: Vec<_> = got.iter().map(|r| r.value.clone().unwrap()).collect();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 10_000);
}

#[tokio::test]
async fn transactional_producer_commits_all_or_nothing_and_zombies_are_fenced() {
    let dir = tempfile::tempdir().unwrap();
    let clock = MockClock::new(1_000);
    let c = client(dir.path(), &clock);
    c.admin()
        .unwrap()
        .create_topics(vec![NewTopic::new("payments", 2)])
        .await
        .unwrap();
    let p = producer(
        &c,
        &[("transactional.id", "payments-app"), ("linger.ms", "0")],
    );
    let err = p
        .send(ProducerRecord::new("payments", "early"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidTxnState(_)), "{err}");
    p.init_transactions().await.unwrap();
    p.begin_transaction().unwrap();
    for i in 0..10 {
        p.send(ProducerRecord::new("payments", format!("ok-{i}")).key(format!("k{i}")))
            .await
            .unwrap();
    }
    p.commit_transaction().await.unwrap();
    p.begin_transaction().unwrap();
    for i in 0..5 {
        p.send(ProducerRecord::new("payments", format!("aborted-{i}")).key(format!("k{i}")))
            .await
            .unwrap();
    }
    p.abort_transaction().await.unwrap();

    let read = |isolation: &'static str| {
        let c = c.clone();
        async move {
            let mut consumer = c
                .consumer(
                    ConsumerConfig::from_pairs([
                        ("auto.offset.reset", "earliest"),
                        ("isolation.level", isolation),
                    ])
                    .unwrap(),
                )
                .unwrap();
            consumer
                .assign(vec![
                    TopicPartition::new("payments", 0),
                    TopicPartition::new("payments", 1),
                ])
                .unwrap();
            let mut got = Vec::new();
            for _ in 0..20 {
                let batch = consumer.poll(Duration::from_millis(100)).await.unwrap();
                if batch.is_empty() && !got.is_empty() {
                    break;
                }
                got.extend(
                    batch
                        .into_iter()
                        .map(|r| String::from_utf8(r.value.unwrap().to_vec()).unwrap()),
                );
            }
            got.sort();
            got
        }
    };
    let committed = read("read_committed").await;
    assert_eq!(committed.len(), 10, "{committed:?}");
    assert!(committed.iter().all(|v| v.starts_with("ok-")));
    assert_eq!(
        read("read_uncommitted").await.len(),
        15,
        "control records never reach the application"
    );

    // A second producer with the same transactional.id fences the first.
    p.begin_transaction().unwrap();
    p.send(ProducerRecord::new("payments", "zombie"))
        .await
        .unwrap()
        .await
        .unwrap();
    let p2 = producer(
        &c,
        &[("transactional.id", "payments-app"), ("linger.ms", "0")],
    );
    p2.init_transactions().await.unwrap();
    let err = p.commit_transaction().await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::ProducerFenced { .. } | Error::InvalidProducerEpoch { .. }
        ),
        "{err}"
    );
    assert!(!read("read_committed").await.contains(&"zombie".to_owned()));
}

#[tokio::test]
async fn the_consumer_reports_its_lag_as_kafkas_records_lag_metric() {
    let dir = tempfile::tempdir().unwrap();
    let clock = MockClock::new(0);
    let c = client(dir.path(), &clock);
    c.admin()
        .unwrap()
        .create_topics(vec![NewTopic::new("m", 2)])
        .await
        .unwrap();
    // One 100-byte record per batch, so a 200-byte fetch takes only a few.
    let p = producer(&c, &[("linger.ms", "0"), ("batch.size", "120")]);
    for i in 0..30 {
        p.send(ProducerRecord::new("m", format!("{i:0100}")).partition(i % 2))
            .await
            .unwrap();
    }
    p.flush().await.unwrap();
    let mut consumer = c
        .consumer(
            ConsumerConfig::from_pairs([
                ("auto.offset.reset", "earliest"),
                ("max.partition.fetch.bytes", "200"),
            ])
            .unwrap(),
        )
        .unwrap();
    consumer
        .assign(vec![
            TopicPartition::new("m", 0),
            TopicPartition::new("m", 1),
        ])
        .unwrap();
    assert!(consumer.metrics().records_lag.is_empty(), "no fetch yet");
    consumer.poll(Duration::from_millis(100)).await.unwrap();
    let m = consumer.metrics();
    assert_eq!(m.records_lag.len(), 2);
    assert!(m.records_lag_max > 0 && m.records_lag_max < 15, "{m:?}");
    let got = consume_all(&mut consumer, 30 - m.records_consumed_total as usize).await;
    let m = consumer.metrics();
    assert_eq!(
        m.records_consumed_total,
        30,
        "{} more after the first poll",
        got.len()
    );
    consumer.poll(Duration::from_millis(10)).await.unwrap();
    let m = consumer.metrics();
    assert_eq!(m.records_lag_max, 0, "{m:?}");
    assert!(m.bytes_consumed_total > 0);
}
