//! `KafkaStreams` on the embedded log: a topology running against real topics, committing,
//! restoring its stores from their changelogs after a restart, and exactly-once output.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use sluice_log::client::config::{ConsumerConfig, ProducerConfig};
use sluice_log::client::embedded::EmbeddedClient;
use sluice_log::client::{Admin, Client, Consumer, NewTopic, Producer, ProducerRecord};
use sluice_log::log::{LogManager, LogManagerConfig};
use sluice_streams::serdes;
use sluice_streams::{
    Consumed, Grouped, KafkaStreams, Materialized, Produced, StreamsBuilder, StreamsConfig,
};

fn wordcount() -> sluice_streams::Topology {
    let b = StreamsBuilder::new();
    b.stream::<Option<String>, String>(
        "lines",
        Consumed::with(serdes::option(serdes::string()), serdes::string()),
    )
    .flat_map_values(|l: String| l.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
    .group_by(
        |_, w: &String| w.clone(),
        Grouped::with(serdes::string(), serdes::string()),
    )
    .count(Materialized::as_("counts"))
    .to_stream()
    .to(
        "counts-out",
        Produced::with(serdes::string(), serdes::option(serdes::i64_as_string())),
    );
    b.build().expect("topology")
}

async fn produce(c: &EmbeddedClient, topic: &str, lines: &[&str]) -> anyhow::Result<()> {
    let p = c.producer(ProducerConfig::from_pairs([("linger.ms", "0")])?)?;
    for l in lines {
        p.send(ProducerRecord::new(topic, l.to_string()))
            .await?
            .await?;
    }
    p.flush().await?;
    Ok(())
}

/// The last count per word in `counts-out`, read committed.
async fn final_counts(
    c: &EmbeddedClient,
    want_total: i64,
) -> anyhow::Result<BTreeMap<String, i64>> {
    let mut consumer = c.consumer(ConsumerConfig::from_pairs([
        ("isolation.level", "read_committed"),
        ("auto.offset.reset", "earliest"),
    ])?)?;
    let parts = c
        .admin()?
        .describe_topic("counts-out")
        .await?
        .partitions
        .len() as i32;
    consumer.assign(
        (0..parts)
            .map(|p| sluice_log::TopicPartition::new("counts-out", p))
            .collect(),
    )?;
    let mut last = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        for r in consumer.poll(Duration::from_millis(100)).await? {
            let k = String::from_utf8(r.key.unwrap_or_default().to_vec())?;
            let v: i64 = String::from_utf8(r.value.unwrap_or_default().to_vec())?.parse()?;
            last.insert(k, v);
        }
        if last.values().sum::<i64>() >= want_total {
            break;
        }
    }
    Ok(last)
}

fn config(dir: &std::path::Path, guarantee: &str) -> anyhow::Result<StreamsConfig> {
    Ok(StreamsConfig::from_pairs([
        ("application.id", "wc"),
        ("processing.guarantee", guarantee),
        ("commit.interval.ms", "50"),
        ("state.dir", dir.join("state").to_str().unwrap_or_default()),
    ])?)
}

async fn run_for(app: KafkaStreams<EmbeddedClient>, idle: Duration) -> anyhow::Result<()> {
    tokio::time::timeout(Duration::from_secs(60), app.run_until_idle(idle)).await??;
    Ok(())
}

async fn word_count_survives_a_restart(guarantee: &str) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let log = LogManager::open(LogManagerConfig::new(dir.path().join("log")))?;
    let c = EmbeddedClient::new(log.clone());
    c.admin()?
        .create_topics(vec![
            NewTopic::new("lines", 2),
            NewTopic::new("counts-out", 2),
        ])
        .await?;
    produce(&c, "lines", &["a b a", "c a"]).await?;
    let app = KafkaStreams::new(wordcount(), config(dir.path(), guarantee)?, c.clone());
    run_for(app, Duration::from_millis(1500)).await?;
    let got = final_counts(&c, 5).await?;
    assert_eq!(
        got,
        BTreeMap::from([("a".into(), 3), ("b".into(), 1), ("c".into(), 1)])
    );
    // Internal topics as Kafka Streams names them.
    let topics = c.admin()?.list_topics().await?;
    assert!(
        topics.contains(&"wc-counts-changelog".to_owned()),
        "{topics:?}"
    );
    assert!(
        topics.contains(&"wc-counts-repartition".to_owned()),
        "{topics:?}"
    );
    // A clean close left a checkpoint of the changelog offsets its RocksDB stores hold.
    let checkpoints = std::fs::read_dir(dir.path().join("state").join("wc"))?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join(".checkpoint").exists())
        .count();
    assert!(checkpoints > 0, "no task wrote a checkpoint");
    // A second run goes on from the checkpoint...
    produce(&c, "lines", &["b"]).await?;
    let app = KafkaStreams::new(wordcount(), config(dir.path(), guarantee)?, c.clone());
    run_for(app, Duration::from_millis(1500)).await?;
    let got = final_counts(&c, 6).await?;
    assert_eq!(
        got,
        BTreeMap::from([("a".into(), 3), ("b".into(), 2), ("c".into(), 1)])
    );
    // ... and a third, its stores rebuilt from the changelog alone (the state directory gone),
    // goes on counting from where the second stopped.
    std::fs::remove_dir_all(dir.path().join("state"))?;
    produce(&c, "lines", &["a d"]).await?;
    let app = KafkaStreams::new(wordcount(), config(dir.path(), guarantee)?, c.clone());
    run_for(app, Duration::from_millis(1500)).await?;
    let got = final_counts(&c, 8).await?;
    assert_eq!(
        got,
        BTreeMap::from([
            ("a".into(), 4),
            ("b".into(), 2),
            ("c".into(), 1),
            ("d".into(), 1)
        ])
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn word_count_at_least_once_restores_its_counts_after_a_restart() -> anyhow::Result<()> {
    word_count_survives_a_restart("at_least_once").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn word_count_exactly_once_restores_its_counts_after_a_restart() -> anyhow::Result<()> {
    word_count_survives_a_restart("exactly_once_v2").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_source_topic_and_bad_settings_are_refused_by_name() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let log = LogManager::open(LogManagerConfig::new(dir.path().join("log")))?;
    let c = EmbeddedClient::new(log.clone());
    let mut app = KafkaStreams::new(wordcount(), config(dir.path(), "at_least_once")?, c);
    let e = app.start().await.expect_err("no source topic");
    assert!(
        e.to_string()
            .contains("source topic \"lines\" does not exist"),
        "{e}"
    );
    let e = StreamsConfig::from_pairs([
        ("application.id", "x"),
        ("processing.guarantee", "exactly_once"),
    ])
    .expect_err("v1");
    assert!(e.to_string().contains("exactly_once_v2"), "{e}");
    let e = StreamsConfig::from_pairs([("application.id", "x"), ("num.stream.thread", "2")])
        .expect_err("typo");
    assert!(e.to_string().contains("num.stream.thread"), "{e}");
    let e = StreamsConfig::from_pairs([("num.stream.threads", "2")]).expect_err("no id");
    assert!(e.to_string().contains("application.id"), "{e}");
    Ok(())
}
