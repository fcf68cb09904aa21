//! The main job: an example pipeline on the embedded log. It creates a topic, produces a
//! million records through the producer, consumes them back through the consumer, and prints
//! what it did.
//!
//! ```text
//! cargo run --release -p sluice-examples --bin pipeline [-- --records N --data-dir DIR]
//! ```

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use sluice_log::TopicPartition;
use sluice_log::client::config::{ConsumerConfig, ProducerConfig};
use sluice_log::client::embedded::EmbeddedClient;
use sluice_log::client::{Admin, Client, Consumer, NewTopic, Producer, ProducerRecord};
use sluice_log::log::{LogManager, LogManagerConfig};

const TOPIC: &str = "page-views";
const PARTITIONS: i32 = 4;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut records: u64 = 1_000_000;
    let mut data_dir = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--records" => records = args.next().context("--records needs a number")?.parse()?,
            "--data-dir" => data_dir = Some(args.next().context("--data-dir needs a path")?),
            other => bail!("unknown argument {other:?} (known: --records N, --data-dir DIR)"),
        }
    }
    let tmp;
    let dir = match data_dir {
        Some(d) => std::path::PathBuf::from(d),
        None => {
            tmp = tempdir()?;
            tmp.0.clone()
        }
    };
    let log = LogManager::open(LogManagerConfig::new(&dir))?;
    let client = EmbeddedClient::new(log.clone());
    let admin = client.admin()?;
    if !admin.list_topics().await?.iter().any(|t| t == TOPIC) {
        admin
            .create_topics(vec![
                NewTopic::new(TOPIC, PARTITIONS).config("segment.bytes", "67108864"),
            ])
            .await?;
    }
    let before: i64 = (0..PARTITIONS)
        .map(|p| {
            log.partition(&TopicPartition::new(TOPIC, p))
                .map(|p| p.log_end_offset())
        })
        .sum::<Result<i64, _>>()?;
    println!(
        "sluice pipeline: topic {TOPIC} ({PARTITIONS} partitions) in {}",
        dir.display()
    );

    // Produce: keyed page views, acks=1, lz4, batched by the producer.
    let producer = client.producer(ProducerConfig::from_pairs([
        ("acks", "1"),
        ("compression.type", "lz4"),
        ("linger.ms", "5"),
        ("batch.size", "262144"),
    ])?)?;
    let start = Instant::now();
    let pages = ["/", "/cart", "/checkout", "/search", "/product/42"];
    let mut last = None;
    for i in 0..records {
        let user = format!("user-{}", i % 10_000);
        let value = format!(
            r#"{{"user":"{user}","page":"{}","seq":{i}}}"#,
            pages[(i % 5) as usize]
        );
        last = Some(
            producer
                .send(ProducerRecord::new(TOPIC, value).key(user))
                .await?,
        );
    }
    producer.flush().await?;
    if let Some(f) = last {
        f.await?;
    }
    let produce_secs = start.elapsed().as_secs_f64();
    println!(
        "produced {records} records in {produce_secs:.2} s ({:.0} records/s)",
        records as f64 / produce_secs
    );

    // Consume them back from where this run started, counting views per page.
    let mut consumer =
        client.consumer(ConsumerConfig::from_pairs([("max.poll.records", "10000")])?)?;
    let tps: Vec<_> = (0..PARTITIONS)
        .map(|p| TopicPartition::new(TOPIC, p))
        .collect();
    consumer.assign(tps.clone())?;
    consumer.seek_to_beginning(&[]).await?;
    let start = Instant::now();
    let mut counts = std::collections::BTreeMap::<String, u64>::new();
    let mut seen: u64 = 0;
    let total = before as u64 + records;
    let mut idle = 0;
    while seen < total && idle < 50 {
        let batch = consumer.poll(Duration::from_millis(100)).await?;
        if batch.is_empty() {
            idle += 1;
            continue;
        }
        idle = 0;
        for r in &batch {
            let v = r.value.as_deref().unwrap_or_default();
            if let Some(page) = std::str::from_utf8(v)
                .ok()
                .and_then(|s| s.split("\"page\":\"").nth(1))
                .and_then(|s| s.split('"').next())
            {
                *counts.entry(page.to_owned()).or_default() += 1;
            }
        }
        seen += batch.len() as u64;
    }
    let consume_secs = start.elapsed().as_secs_f64();
    println!(
        "consumed {seen} records in {consume_secs:.2} s ({:.0} records/s)",
        seen as f64 / consume_secs
    );
    for (page, n) in &counts {
        println!("  {page:<12} {n:>9} views");
    }
    for tp in &tps {
        let p = log.partition(tp)?;
        println!(
            "  {tp}: offsets [{}, {}), {} segment(s), {:.1} MB",
            p.log_start_offset(),
            p.log_end_offset(),
            p.segment_count(),
            p.size_bytes() as f64 / 1e6
        );
    }
    if seen != total {
        bail!("consumed {seen} records, expected {total}");
    }
    drop(producer);
    log.close()?;
    Ok(())
}

/// A temporary directory removed at exit (examples avoid extra dependencies).
struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn tempdir() -> anyhow::Result<TempDir> {
    let p = std::env::temp_dir().join(format!("sluice-pipeline-{}", std::process::id()));
    std::fs::create_dir_all(&p)?;
    Ok(TempDir(p))
}
