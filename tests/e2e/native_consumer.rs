//! Sluice's own Kafka consumer (`sluice.consumer.engine=native`) against `sluice broker`:
//! records as sent, positions, seeks, pause, committed offsets of a group, read_committed
//! over aborted transactions, and what it refuses.

use std::time::{Duration, Instant};

use bytes::Bytes;
use sluice_kafka::{CONSUMER_ENGINE_PROPERTY, KafkaClient, KafkaConsumer};
use sluice_log::TopicPartition;
use sluice_log::client::config::ConsumerConfig;
use sluice_log::client::{
    Admin, Client, Consumer, ConsumerRecord, Header, Producer, ProducerRecord,
};

use crate::kafka_client::{broker, values};

fn native(c: &KafkaClient, props: &[(&str, &str)]) -> KafkaConsumer {
    let c = c
        .clone()
        .with_consumer_property(CONSUMER_ENGINE_PROPERTY, "native")
        .consumer(ConsumerConfig::from_pairs(props.iter().copied()).expect("consumer config"))
        .expect("native consumer");
    assert!(c.is_native());
    c
}

/// Polls until `want` records arrived (bounded by 30 s).
async fn take(c: &mut KafkaConsumer, want: usize) -> Vec<ConsumerRecord> {
    let start = Instant::now();
    let mut out = Vec::new();
    while out.len() < want && start.elapsed() < Duration::from_secs(30) {
        out.extend(c.poll(Duration::from_millis(200)).await.expect("poll"));
    }
    out
}

/// Sends `n` records `prefix-i` keyed `k{i % 7}` with a header, to `topic`; returns when
/// all are acknowledged.
async fn fill(c: &KafkaClient, topic: &str, prefix: &str, n: usize) {
    let p = c
        .producer(
            sluice_log::client::config::ProducerConfig::from_pairs([("linger.ms", "1")])
                .expect("config"),
        )
        .expect("producer");
    let mut sent = Vec::new();
    for i in 0..n {
        let mut r = ProducerRecord::new(topic, format!("{prefix}-{i}"));
        r.key = Some(Bytes::from(format!("k{}", i % 7)));
        r.headers.push(Header::new("n", i.to_string()));
        r.timestamp = Some(1_700_000_000_000 + i as i64);
        sent.push(p.send(r).await.expect("send"));
    }
    for d in sent {
        d.await.expect("delivered");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_what_was_sent_with_positions_seeks_and_pause() {
    let b = broker().await;
    let admin = b.client.admin().expect("admin");
    b.create_topic("events", 3).await;
    fill(&b.client, "events", "e", 900).await;
    let tps: Vec<TopicPartition> = (0..3).map(|p| TopicPartition::new("events", p)).collect();

    let mut c = native(
        &b.client,
        &[
            ("auto.offset.reset", "earliest"),
            ("max.poll.records", "100"),
        ],
    );
    c.assign(tps.clone()).expect("assign");
    let first = c.poll(Duration::from_secs(10)).await.expect("poll");
    assert!(
        !first.is_empty() && first.len() <= 100,
        "max.poll.records: {}",
        first.len()
    );
    let mut got = first;
    got.extend(take(&mut c, 900 - got.len()).await);
    assert_eq!(got.len(), 900);
    // Every record as sent: key, value, header and timestamp agree; per partition in order.
    for r in &got {
        let i: i64 = String::from_utf8_lossy(r.value.as_deref().unwrap_or_default())
            .trim_start_matches("e-")
            .parse()
            .expect("number");
        assert_eq!(r.key.as_deref(), Some(format!("k{}", i % 7).as_bytes()));
        assert_eq!(r.timestamp, 1_700_000_000_000 + i);
        assert_eq!(r.headers.len(), 1);
        assert_eq!(
            r.headers[0].value.as_deref(),
            Some(i.to_string().as_bytes())
        );
    }
    for tp in &tps {
        let offsets: Vec<i64> = got
            .iter()
            .filter(|r| r.partition == tp.partition)
            .map(|r| r.offset)
            .collect();
        assert_eq!(
            offsets,
            (0..offsets.len() as i64).collect::<Vec<_>>(),
            "{tp}"
        );
        let end = admin
            .list_offsets(tp, sluice_log::client::OffsetSpec::Latest)
            .await
            .expect("end")
            .offset;
        assert_eq!(c.position(tp), Some(end), "{tp}: position is the log end");
    }
    // Nothing more: an empty poll within its timeout.
    assert!(
        c.poll(Duration::from_millis(300))
            .await
            .expect("poll")
            .is_empty()
    );

    // seek, seek_to_beginning, seek_to_timestamp, seek_to_end.
    let tp0 = tps[0].clone();
    c.seek(&tp0, 3).expect("seek");
    let r = take(&mut c, 1).await;
    assert_eq!((r[0].partition, r[0].offset), (0, 3));
    c.seek_to_beginning(std::slice::from_ref(&tp0))
        .await
        .expect("to beginning");
    assert_eq!(c.position(&tp0), Some(0));
    c.seek_to_end(&[]).await.expect("to end");
    c.seek_to_timestamp(1_700_000_000_000 + 899)
        .await
        .expect("to time");
    let last = take(&mut c, 1).await;
    assert_eq!(
        values(&last),
        ["e-899"],
        "only the last record is that late"
    );

    // pause drops what is buffered and fetches nothing more until resume.
    c.seek_to_beginning(&[]).await.expect("rewind");
    c.pause(&tps);
    assert!(
        c.poll(Duration::from_millis(300))
            .await
            .expect("poll")
            .is_empty()
    );
    c.resume(&tps);
    assert_eq!(take(&mut c, 900).await.len(), 900);
    c.close().await.expect("close");
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_commits_and_a_new_consumer_resumes_there() {
    let b = broker().await;
    b.create_topic("jobs", 1).await;
    fill(&b.client, "jobs", "j", 50).await;
    let tp = TopicPartition::new("jobs", 0);
    let group = [
        ("group.id", "native-readers"),
        ("auto.offset.reset", "earliest"),
        ("enable.auto.commit", "false"),
        ("max.poll.records", "20"),
    ];
    let mut a = native(&b.client, &group);
    a.assign(vec![tp.clone()]).expect("assign");
    assert_eq!(
        a.committed(std::slice::from_ref(&tp))
            .await
            .expect("committed"),
        [None]
    );
    let got = a.poll(Duration::from_secs(10)).await.expect("poll");
    assert_eq!(got.len(), 20);
    a.commit_sync(None).await.expect("commit");
    assert_eq!(
        a.committed(std::slice::from_ref(&tp))
            .await
            .expect("committed"),
        [Some(20)]
    );
    a.commit_sync(Some(vec![(tp.clone(), 30)]))
        .await
        .expect("commit 30");
    a.close().await.expect("close");

    let mut b2 = native(&b.client, &group);
    b2.assign(vec![tp.clone()]).expect("assign");
    let rest = take(&mut b2, 20).await;
    assert_eq!(rest[0].offset, 30, "resumes at the committed offset");
    assert_eq!(values(&rest).last().map(String::as_str), Some("j-49"));
    // commit_async lands too.
    b2.commit_async(None).expect("commit async");
    let start = Instant::now();
    while b2
        .committed(std::slice::from_ref(&tp))
        .await
        .expect("committed")
        != [Some(50)]
    {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "async commit never landed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    b2.close().await.expect("close");
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_committed_skips_aborted_transactions_and_markers() {
    let b = broker().await;
    b.create_topic("ledger", 1).await;
    let p = b
        .client
        .producer(
            sluice_log::client::config::ProducerConfig::from_pairs([
                ("transactional.id", "native-ledger"),
                ("linger.ms", "0"),
            ])
            .expect("config"),
        )
        .expect("producer");
    p.init_transactions().await.expect("init");
    for (values, commit) in [
        (["a1", "a2"], true),
        (["x1", "x2"], false),
        (["b1", "b2"], true),
    ] {
        p.begin_transaction().expect("begin");
        for v in values {
            p.send(ProducerRecord::new("ledger", v))
                .await
                .expect("send");
        }
        p.flush().await.expect("flush");
        if commit {
            p.commit_transaction().await.expect("commit");
        } else {
            p.abort_transaction().await.expect("abort");
        }
    }
    let tp = TopicPartition::new("ledger", 0);
    let mut committed = native(
        &b.client,
        &[
            ("isolation.level", "read_committed"),
            ("auto.offset.reset", "earliest"),
        ],
    );
    committed.assign(vec![tp.clone()]).expect("assign");
    assert_eq!(
        values(&take(&mut committed, 4).await),
        ["a1", "a2", "b1", "b2"]
    );
    // Past the last commit marker: the log end.
    assert!(
        committed
            .poll(Duration::from_millis(300))
            .await
            .expect("poll")
            .is_empty()
    );
    assert_eq!(
        committed.position(&tp),
        Some(9),
        "3 transactions of 2 records and a marker"
    );
    let mut everything = native(&b.client, &[("auto.offset.reset", "earliest")]);
    everything.assign(vec![tp]).expect("assign");
    assert_eq!(
        values(&take(&mut everything, 6).await),
        ["a1", "a2", "x1", "x2", "b1", "b2"]
    );
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_name_what_to_do_instead() {
    let b = broker().await;
    let mut c = native(&b.client, &[("group.id", "g")]);
    let e = c.subscribe(vec!["t".into()]).expect_err("no subscriptions");
    assert!(e.to_string().contains(CONSUMER_ENGINE_PROPERTY), "{e}");
    let e = b
        .client
        .clone()
        .with_consumer_property(CONSUMER_ENGINE_PROPERTY, "native")
        .with_consumer_property("queued.min.messages", "5")
        .consumer(ConsumerConfig::default())
        .expect_err("a librdkafka property");
    assert!(e.to_string().contains("queued.min.messages"), "{e}");
    // Without group.id there is nothing to commit to.
    let mut plain = native(&b.client, &[]);
    plain
        .assign(vec![TopicPartition::new("t", 0)])
        .expect("assign");
    assert!(plain.commit_sync(None).await.is_err());
    // auto.offset.reset=none with no committed offset: a typed error naming the partition.
    b.create_topic("strict", 1).await;
    let mut strict = native(&b.client, &[("auto.offset.reset", "none")]);
    strict
        .assign(vec![TopicPartition::new("strict", 0)])
        .expect("assign");
    let e = strict
        .poll(Duration::from_secs(2))
        .await
        .expect_err("no offset");
    assert!(e.to_string().contains("strict-0"), "{e}");
    b.stop().await;
}
