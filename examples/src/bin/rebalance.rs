//! How long a consumer group takes to settle after a join and after a leave: 10 embedded
//! consumers of one group subscribe to a 20-partition topic; the time from the first subscribe
//! until all 10 hold a non-empty assignment of a Stable group covering every partition; then
//! one member closes, and the time until the other 9 cover all 20 partitions again. Repeated
//! `--rounds` times (a fresh group each), printing each time and the medians.
//!
//! A Stable member learns of a rebalance at its next heartbeat, so `heartbeat.interval.ms`
//! (Kafka's 3000 by default, `--heartbeat-ms`) bounds both; `session.timeout.ms` plays no part
//! (the leaving member says so).
//!
//! ```text
//! cargo run --release -p sluice-examples --bin rebalance [-- --members 10 --partitions 20 --rounds 3 --heartbeat-ms 3000]
//! ```

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use sluice_log::TopicPartition;
use sluice_log::client::config::ConsumerConfig;
use sluice_log::client::embedded::EmbeddedClient;
use sluice_log::client::{Client, Consumer};
use sluice_log::group::GroupState;
use sluice_log::log::{LogManager, LogManagerConfig};

const TOPIC: &str = "rebalance";
/// Give up on a settle after this long.
const SETTLE_LIMIT: Duration = Duration::from_secs(120);

/// One member as the measuring task sees it: its latest assignment, and a stop switch.
#[derive(Default)]
struct Member {
    assignment: Mutex<Vec<TopicPartition>>,
    stop: AtomicBool,
}

/// Polls until told to stop, publishing the assignment after every poll; then closes (leaves).
async fn member(
    client: EmbeddedClient,
    config: ConsumerConfig,
    me: Arc<Member>,
) -> anyhow::Result<()> {
    let mut consumer = client.consumer(config)?;
    consumer.subscribe(vec![TOPIC.to_owned()])?;
    while !me.stop.load(Ordering::Relaxed) {
        consumer.poll(Duration::from_millis(20)).await?;
        *me.assignment.lock().expect("assignment lock") = consumer.assignment();
    }
    consumer.close().await?;
    me.assignment.lock().expect("assignment lock").clear();
    Ok(())
}

/// Waits until `members` (by index, the others ignored) each hold a non-empty assignment, their
/// union is every partition, and the coordinator reports the group Stable with just them.
async fn settled(
    client: &EmbeddedClient,
    group: &str,
    members: &[Arc<Member>],
    live: &[usize],
    partitions: usize,
) -> anyhow::Result<()> {
    let coordinator = client.group_coordinator()?;
    let limit = Instant::now() + SETTLE_LIMIT;
    loop {
        let mut union = BTreeSet::new();
        let mut all_non_empty = true;
        for &i in live {
            let a = members[i].assignment.lock().expect("assignment lock");
            all_non_empty &= !a.is_empty();
            union.extend(a.iter().cloned());
        }
        if all_non_empty
            && union.len() == partitions
            && let Ok(d) = coordinator.describe_group(group)
            && d.state == GroupState::Stable
            && d.members.len() == live.len()
            && d.members.iter().all(|m| !m.assignment.is_empty())
        {
            return Ok(());
        }
        if Instant::now() >= limit {
            bail!("group {group} did not settle in {SETTLE_LIMIT:?}");
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

fn median(v: &[Duration]) -> Duration {
    let mut v = v.to_vec();
    v.sort();
    v[v.len() / 2]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut members_n = 10;
    let mut partitions = 20;
    let mut rounds = 3;
    let mut heartbeat_ms = 3000;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let v: usize = args.next().context("flag needs a number")?.parse()?;
        match a.as_str() {
            "--members" => members_n = v,
            "--partitions" => partitions = v,
            "--rounds" => rounds = v,
            "--heartbeat-ms" => heartbeat_ms = v,
            other => bail!("unknown flag {other}"),
        }
    }
    if members_n < 2 || rounds == 0 {
        bail!("needs --members of at least 2 and --rounds of at least 1");
    }
    let dir = std::env::temp_dir().join(format!("sluice-rebalance-{}", std::process::id()));
    let log = LogManager::open(LogManagerConfig::new(&dir))?;
    log.create_topic(TOPIC, partitions as i32, None::<(&str, &str)>)?;
    let client = EmbeddedClient::new(log.clone());
    println!(
        "{members_n} members, {partitions} partitions, heartbeat.interval.ms={heartbeat_ms}, {rounds} rounds"
    );
    let mut joins = Vec::new();
    let mut leaves = Vec::new();
    for round in 1..=rounds {
        let group = format!("rebalance-{round}");
        let config = ConsumerConfig::from_pairs([
            ("group.id", group.as_str()),
            ("auto.offset.reset", "earliest"),
            ("heartbeat.interval.ms", &heartbeat_ms.to_string()),
        ])?;
        let members: Vec<Arc<Member>> = (0..members_n).map(|_| Arc::default()).collect();
        let start = Instant::now();
        let tasks: Vec<_> = members
            .iter()
            .map(|m| tokio::spawn(member(client.clone(), config.clone(), Arc::clone(m))))
            .collect();
        let all: Vec<usize> = (0..members_n).collect();
        settled(&client, &group, &members, &all, partitions).await?;
        let join = start.elapsed();
        let start = Instant::now();
        members[0].stop.store(true, Ordering::Relaxed);
        settled(&client, &group, &members, &all[1..], partitions).await?;
        let leave = start.elapsed();
        println!(
            "round {round}: join of {members_n} settled in {:.1} ms, leave of 1 in {:.1} ms",
            join.as_secs_f64() * 1e3,
            leave.as_secs_f64() * 1e3
        );
        joins.push(join);
        leaves.push(leave);
        for m in &members {
            m.stop.store(true, Ordering::Relaxed);
        }
        for t in tasks {
            t.await.context("member task panicked")??;
        }
    }
    println!(
        "median: join {:.1} ms, leave {:.1} ms",
        median(&joins).as_secs_f64() * 1e3,
        median(&leaves).as_secs_f64() * 1e3
    );
    drop(client);
    log.close()?;
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}
