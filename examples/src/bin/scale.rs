//! Scale in partitions: 100 topics of 100 partitions receive round-robin appends through the
//! producer; prints resident memory, open file descriptors, and how long a reopen takes.
//!
//! ```text
//! cargo run --release -p sluice-examples --bin scale [-- --topics 100 --partitions 100 --rounds 20]
//! ```

use std::time::Instant;

use anyhow::Context;
use sluice_log::client::config::ProducerConfig;
use sluice_log::client::embedded::EmbeddedClient;
use sluice_log::client::{Client, Producer, ProducerRecord};
use sluice_log::log::{LogManager, LogManagerConfig};

fn status(field: &str) -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .map(|l| l[field.len()..].trim().to_owned())
        })
        .unwrap_or_else(|| "?".into())
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut topics = 100;
    let mut partitions = 100;
    let mut rounds = 20;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let v: usize = args.next().context("flag needs a number")?.parse()?;
        match a.as_str() {
            "--topics" => topics = v,
            "--partitions" => partitions = v,
            "--rounds" => rounds = v,
            other => anyhow::bail!("unknown flag {other}"),
        }
    }
    let dir = std::env::temp_dir().join(format!("sluice-scale-{}", std::process::id()));
    let total = topics * partitions;
    let t = Instant::now();
    let log = LogManager::open(LogManagerConfig::new(&dir))?;
    for i in 0..topics {
        log.create_topic(
            &format!("topic-{i}"),
            partitions as i32,
            None::<(&str, &str)>,
        )?;
    }
    println!(
        "created {total} partitions in {:.2} s",
        t.elapsed().as_secs_f64()
    );
    let client = EmbeddedClient::new(log.clone());
    let producer = client.producer(ProducerConfig::from_pairs([
        ("acks", "1"),
        ("linger.ms", "5"),
    ])?)?;
    let value = bytes::Bytes::from(vec![b'v'; 100]);
    let names: Vec<std::sync::Arc<str>> =
        (0..topics).map(|i| format!("topic-{i}").into()).collect();
    let t = Instant::now();
    for _ in 0..rounds {
        for name in &names {
            for p in 0..partitions {
                producer
                    .send(
                        ProducerRecord::new(std::sync::Arc::clone(name), value.clone())
                            .partition(p as i32),
                    )
                    .await?;
            }
        }
    }
    producer.flush().await?;
    let n = total * rounds;
    println!(
        "appended {n} records round-robin in {:.2} s; RSS {}, open fds {}, segment handles {}",
        t.elapsed().as_secs_f64(),
        status("VmRSS:"),
        open_fds(),
        log.open_file_count()
    );
    drop(producer);
    drop(client);
    log.close()?;
    drop(log);
    let t = Instant::now();
    let log = LogManager::open(LogManagerConfig::new(&dir))?;
    println!(
        "reopened {} topics in {:.2} s; RSS {}, open fds {}",
        log.list_topics().len(),
        t.elapsed().as_secs_f64(),
        status("VmRSS:"),
        open_fds()
    );
    log.close()?;
    drop(log);
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
