//! Issue 13's streams benchmarks: one workload per run, each ending with the line
//! `WORKLOAD: N events/s (ceiling: M events/s)` (or `restore: S s`), the median of `--runs`.
//!
//! ```text
//! cargo run --release -p sluice-examples --bin streams_bench -- WORKLOAD [--events N] [--keys N]
//! ```
//!
//! - `windowed-count`: counts per key in 1-minute tumbling windows (RocksDB store with its
//!   changelog, every update to the output topic), at-least-once, on the embedded log.
//! - `join`: a stream-table join of events against a table of `--keys` keys (loaded, and then
//!   restored after a restart, before the clock starts).
//! - `restore`: a count store of `--keys` keys restored from its changelog into an empty state
//!   directory, from `start` until the store is restored.
//! - `eos`: the windowed count under `exactly_once_v2` (commit.interval.ms 100 by default).
//! - `broker`: the windowed count through an in-process `sluice broker` on loopback, over the
//!   Kafka protocol (`sluice_kafka::KafkaClient`).
//!
//! Input is written to the log first and is not timed. The clock runs from
//! `KafkaStreams::start` (for the join: from the end of the table's restore) until the
//! application's `process_total` counts every input record; the final commit at close is timed
//! apart and printed. The ceiling is the same work done by a plain loop over a `HashMap` in the
//! same process. One partition per topic, one stream thread.

use std::collections::HashMap;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use sluice_examples::Rng;
use sluice_log::TopicPartition;
use sluice_log::client::config::{ConsumerConfig, ProducerConfig};
use sluice_log::client::embedded::EmbeddedClient;
use sluice_log::client::{Admin, Client, Consumer, NewTopic, Producer, ProducerRecord};
use sluice_log::log::{LogManager, LogManagerConfig};
use sluice_streams::serdes;
use sluice_streams::{
    Consumed, Grouped, Joined, KafkaStreams, Materialized, Produced, StreamsBuilder, StreamsConfig,
    StreamsMetrics, TimeWindows, Topology,
};

/// The first event's timestamp (a whole minute, so windows line up with it).
const BASE_TS: i64 = 1_767_225_600_000;
/// Events per millisecond of event time: 1,000,000 events span 100 s, two or three windows.
const EVENTS_PER_MS: i64 = 10;
const WINDOW: Duration = Duration::from_secs(60);
/// How long one application may take to process its input before the run is an error.
const RUN_LIMIT: Duration = Duration::from_secs(900);

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Workload {
    WindowedCount,
    Join,
    Restore,
    Eos,
    Broker,
}

impl Workload {
    fn name(self) -> &'static str {
        match self {
            Workload::WindowedCount => "windowed-count",
            Workload::Join => "join",
            Workload::Restore => "restore",
            Workload::Eos => "eos",
            Workload::Broker => "broker",
        }
    }
}

#[derive(Debug, Parser)]
#[command(about = "Issue 13's streams benchmarks")]
struct Args {
    /// Which benchmark.
    #[arg(value_enum)]
    workload: Workload,
    /// Input events (not used by `restore`).
    #[arg(long, default_value_t = 1_000_000)]
    events: u64,
    /// Distinct keys: 100,000 for the windowed counts, 1,000,000 for the join's table and the
    /// restored store.
    #[arg(long)]
    keys: Option<u64>,
    /// Timed runs; the median is reported.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// commit.interval.ms (default: Kafka Streams' 30000, or 100 for `eos`).
    #[arg(long)]
    commit_interval_ms: Option<u64>,
    /// Where the log and the state live (default: a new temporary directory).
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

/// One input record: key, value, timestamp.
struct Event {
    key: String,
    value: String,
    ts: i64,
}

fn key_name(i: u64) -> String {
    format!("key-{i:07}")
}

/// `events` records over `keys` keys drawn at random, timestamps rising by 1 ms per
/// [`EVENTS_PER_MS`] records.
fn events(events: u64, keys: u64) -> Vec<Event> {
    let mut rng = Rng::new(13);
    (0..events)
        .map(|i| Event {
            key: key_name(rng.below(keys)),
            value: format!("event-{i:010}"),
            ts: BASE_TS + i as i64 / EVENTS_PER_MS,
        })
        .collect()
}

async fn create_topic<A: Admin>(admin: &A, name: &str) -> anyhow::Result<()> {
    match admin.create_topics(vec![NewTopic::new(name, 1)]).await {
        Ok(()) | Err(sluice_log::Error::TopicExists(_)) => Ok(()),
        Err(e) => Err(e).with_context(|| format!("creating topic {name}")),
    }
}

/// Writes `records` to `topic` (created with one partition) and waits until all are stored.
async fn write<C: Client>(
    client: &C,
    topic: &str,
    records: impl Iterator<Item = (&str, &str, i64)>,
) -> anyhow::Result<u64> {
    create_topic(&client.admin()?, topic).await?;
    let producer = client.producer(ProducerConfig::from_pairs([
        ("linger.ms", "5"),
        ("batch.size", "262144"),
    ])?)?;
    let t0 = Instant::now();
    let mut n = 0u64;
    for (k, v, ts) in records {
        // The delivery futures are dropped: the flush below waits for every record.
        let _delivery = producer
            .send(
                ProducerRecord::new(topic, v.to_owned())
                    .key(k.to_owned())
                    .timestamp(ts),
            )
            .await?;
        n += 1;
    }
    producer.flush().await?;
    let _ = producer.close().await;
    println!(
        "wrote {n} records to {topic} in {:.2} s (not timed)",
        t0.elapsed().as_secs_f64()
    );
    Ok(n)
}

/// The records in `topic` (its end offset; transaction markers count too).
async fn end_offset<C: Client>(client: &C, topic: &str) -> anyhow::Result<i64> {
    let mut consumer = client.consumer(ConsumerConfig::from_pairs([(
        "auto.offset.reset",
        "earliest",
    )])?)?;
    let ends = consumer
        .end_offsets(&[TopicPartition::new(topic, 0)])
        .await?;
    let _ = consumer.close().await;
    Ok(ends.first().map(|(_, o)| *o).unwrap_or(0))
}

fn config(
    app_id: &str,
    state_dir: &Path,
    guarantee: &str,
    commit_interval_ms: u64,
) -> anyhow::Result<StreamsConfig> {
    let state = state_dir
        .to_str()
        .context("the state directory's path is not UTF-8")?;
    Ok(StreamsConfig::from_pairs([
        ("application.id", app_id),
        ("processing.guarantee", guarantee),
        ("commit.interval.ms", &commit_interval_ms.to_string()),
        ("state.dir", state),
        ("num.stream.threads", "1"),
    ])?)
}

/// Polls the application's metrics every millisecond until `done` holds (an error when a
/// stream thread stopped, or after [`RUN_LIMIT`]).
async fn wait_for<C: Client>(
    app: &KafkaStreams<C>,
    what: &str,
    done: impl Fn(&StreamsMetrics) -> bool,
) -> anyhow::Result<StreamsMetrics> {
    let deadline = Instant::now() + RUN_LIMIT;
    loop {
        let m = app.metrics();
        if done(&m) {
            return Ok(m);
        }
        if !app.is_running() {
            bail!("the application stopped before {what} (metrics: {m:?})");
        }
        if Instant::now() > deadline {
            bail!(
                "{what} took longer than {} s (metrics: {m:?})",
                RUN_LIMIT.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// What one timed application run measured.
struct Timed {
    /// From the start of the clock until every input record was processed.
    processing: Duration,
    /// The final commit and shutdown, after that.
    close: Duration,
}

/// Starts `app`, waits (untimed) until `ready` holds when given, then times it until it has
/// processed `records`, and closes it.
async fn time_app<C: Client>(
    mut app: KafkaStreams<C>,
    ready: Option<&dyn Fn(&StreamsMetrics) -> bool>,
    records: u64,
) -> anyhow::Result<Timed> {
    let mut t0 = Instant::now();
    app.start().await?;
    if let Some(ready) = ready {
        wait_for(&app, "its stores were restored", ready).await?;
        t0 = Instant::now();
    }
    let result = wait_for(&app, "processing all input", |m| {
        m.tasks.process_total >= records
    })
    .await;
    let processing = t0.elapsed();
    let t1 = Instant::now();
    let closed = app.close().await;
    let close = t1.elapsed();
    let m = result?;
    closed.context("the streams application failed")?;
    if m.tasks.dropped_records + m.tasks.dropped_late_records > 0 {
        bail!("records were dropped: {:?}", m.tasks);
    }
    Ok(Timed { processing, close })
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs.get(xs.len() / 2).copied().unwrap_or(0.0)
}

/// Runs `f` `runs` times, the median of its events/s.
fn ceiling(runs: usize, events: usize, mut f: impl FnMut() -> usize) -> f64 {
    median(
        (0..runs)
            .map(|_| {
                let t = Instant::now();
                black_box(f());
                events as f64 / t.elapsed().as_secs_f64()
            })
            .collect(),
    )
}

fn windowed_count_topology(input: &str, output: &str) -> anyhow::Result<Topology> {
    let b = StreamsBuilder::new();
    b.stream::<String, String>(input, Consumed::with(serdes::string(), serdes::string()))
        .group_by_key(Grouped::with(serdes::string(), serdes::string()))
        .windowed_by(TimeWindows::of_size_with_no_grace(WINDOW))
        .count(Materialized::as_("counts"))
        .to_stream()
        .to(
            output,
            Produced::with(
                sluice_streams::windows::time_windowed_serde(
                    serdes::string(),
                    WINDOW.as_millis() as i64,
                ),
                serdes::option(serdes::i64()),
            ),
        );
    Ok(b.build()?)
}

/// The windowed count's plain-loop ceiling: the same counts in a `HashMap`.
fn windowed_count_ceiling(runs: usize, input: &[Event]) -> f64 {
    let size = WINDOW.as_millis() as i64;
    ceiling(runs, input.len(), || {
        let mut counts: HashMap<(&str, i64), i64> = HashMap::new();
        for e in input {
            *counts
                .entry((e.key.as_str(), e.ts - e.ts.rem_euclid(size)))
                .or_insert(0) += 1;
        }
        counts.len()
    })
}

struct Bench<C> {
    client: C,
    dir: PathBuf,
    args: Args,
}

impl<C: Client> Bench<C> {
    fn state_dir(&self, app_id: &str) -> PathBuf {
        self.dir.join("state").join(app_id)
    }

    fn commit_interval(&self, default: u64) -> u64 {
        self.args.commit_interval_ms.unwrap_or(default)
    }

    /// The windowed count (at-least-once or exactly-once) on this bench's client.
    async fn windowed_count(&self, guarantee: &str, commit_default: u64) -> anyhow::Result<()> {
        let name = self.args.workload.name();
        let keys = self.args.keys.unwrap_or(100_000);
        let input = events(self.args.events, keys);
        let topic = "bench-events";
        write(
            &self.client,
            topic,
            input
                .iter()
                .map(|e| (e.key.as_str(), e.value.as_str(), e.ts)),
        )
        .await?;
        let commit = self.commit_interval(commit_default);
        println!(
            "{name}: {} events over {keys} keys, 1-minute tumbling windows, RocksDB store with changelog, {guarantee}, commit.interval.ms={commit}, 1 stream thread",
            input.len()
        );
        let mut rates = Vec::new();
        for run in 1..=self.args.runs {
            let app_id = format!("bench-{name}-{run}");
            let output = format!("{app_id}-out");
            create_topic(&self.client.admin()?, &output).await?;
            let app = KafkaStreams::new(
                windowed_count_topology(topic, &output)?,
                config(&app_id, &self.state_dir(&app_id), guarantee, commit)?,
                self.client.clone(),
            );
            let t = time_app(app, None, input.len() as u64).await?;
            let out = end_offset(&self.client, &output).await?;
            if out < input.len() as i64 {
                bail!(
                    "run {run}: {out} records in {output}, {} expected",
                    input.len()
                );
            }
            let rate = input.len() as f64 / t.processing.as_secs_f64();
            println!(
                "run {run}: {rate:.0} events/s ({:.3} s; close with the final commit {:.3} s; {out} output records)",
                t.processing.as_secs_f64(),
                t.close.as_secs_f64()
            );
            rates.push(rate);
        }
        let ceiling = windowed_count_ceiling(self.args.runs, &input);
        println!(
            "{name}: {:.0} events/s (ceiling: {ceiling:.0} events/s)",
            median(rates)
        );
        Ok(())
    }

    async fn join(&self) -> anyhow::Result<()> {
        let keys = self.args.keys.unwrap_or(1_000_000);
        let table: Vec<(String, String)> = (0..keys)
            .map(|i| (key_name(i), format!("profile-{i:010}")))
            .collect();
        let input = events(self.args.events, keys);
        let table_topic = "bench-table";
        write(
            &self.client,
            table_topic,
            table.iter().map(|(k, v)| (k.as_str(), v.as_str(), BASE_TS)),
        )
        .await?;
        println!(
            "join: {} events against a table of {keys} keys (RocksDB store with changelog), at-least-once, 1 stream thread",
            input.len()
        );
        let commit = self.commit_interval(30_000);
        let mut rates = Vec::new();
        for run in 1..=self.args.runs {
            let app_id = format!("bench-join-{run}");
            let (events_topic, output) = (format!("{app_id}-events"), format!("{app_id}-out"));
            create_topic(&self.client.admin()?, &events_topic).await?;
            create_topic(&self.client.admin()?, &output).await?;
            let topology = || join_topology(table_topic, &events_topic, &output);
            let state = self.state_dir(&app_id);
            // Loads the table (its events topic still empty), not timed.
            let t = Instant::now();
            let app = KafkaStreams::new(
                topology()?,
                config(&app_id, &state, "at_least_once", commit)?,
                self.client.clone(),
            );
            time_app(app, None, table.len() as u64).await?;
            println!(
                "run {run}: loaded the table in {:.2} s (not timed)",
                t.elapsed().as_secs_f64()
            );
            write(
                &self.client,
                &events_topic,
                input
                    .iter()
                    .map(|e| (e.key.as_str(), e.value.as_str(), e.ts)),
            )
            .await?;
            // Restarted: the table is restored from its changelog, then the clock starts.
            let app = KafkaStreams::new(
                topology()?,
                config(&app_id, &state, "at_least_once", commit)?,
                self.client.clone(),
            );
            let t = time_app(
                app,
                Some(&|m: &StreamsMetrics| m.restored_records >= keys),
                input.len() as u64,
            )
            .await?;
            let out = end_offset(&self.client, &output).await?;
            if out < input.len() as i64 {
                bail!(
                    "run {run}: {out} joined records in {output}, {} expected",
                    input.len()
                );
            }
            let rate = input.len() as f64 / t.processing.as_secs_f64();
            println!(
                "run {run}: {rate:.0} events/s ({:.3} s; close with the final commit {:.3} s; {out} output records)",
                t.processing.as_secs_f64(),
                t.close.as_secs_f64()
            );
            rates.push(rate);
        }
        let lookup: HashMap<&str, &str> = table
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let ceiling = ceiling(self.args.runs, input.len(), || {
            let mut out = Vec::with_capacity(input.len());
            for e in &input {
                if let Some(t) = lookup.get(e.key.as_str()) {
                    out.push(join_values(&e.value, t));
                }
            }
            out.len()
        });
        println!(
            "join: {:.0} events/s (ceiling: {ceiling:.0} events/s)",
            median(rates)
        );
        Ok(())
    }

    async fn restore(&self) -> anyhow::Result<()> {
        let keys = self.args.keys.unwrap_or(1_000_000);
        let topic = "bench-keys";
        let names: Vec<String> = (0..keys).map(key_name).collect();
        write(
            &self.client,
            topic,
            names.iter().map(|k| (k.as_str(), "1", BASE_TS)),
        )
        .await?;
        let app_id = "bench-restore";
        let topology = || -> anyhow::Result<Topology> {
            let b = StreamsBuilder::new();
            b.stream::<String, String>(topic, Consumed::with(serdes::string(), serdes::string()))
                .group_by_key(Grouped::with(serdes::string(), serdes::string()))
                .count(Materialized::as_("counts"));
            Ok(b.build()?)
        };
        // Fills the store and its changelog, not timed.
        let t = Instant::now();
        let app = KafkaStreams::new(
            topology()?,
            config(app_id, &self.state_dir("fill"), "at_least_once", 30_000)?,
            self.client.clone(),
        );
        time_app(app, None, keys).await?;
        let changelog = format!("{app_id}-counts-changelog");
        let logged = end_offset(&self.client, &changelog).await?;
        println!(
            "restore: counted {keys} keys into a RocksDB store in {:.2} s ({logged} records in {changelog}; not timed)",
            t.elapsed().as_secs_f64()
        );
        let mut secs = Vec::new();
        for run in 1..=self.args.runs {
            // An empty state directory each time: the whole changelog is read back.
            let app = KafkaStreams::new(
                topology()?,
                config(
                    app_id,
                    &self.state_dir(&format!("restore-{run}")),
                    "at_least_once",
                    30_000,
                )?,
                self.client.clone(),
            );
            let mut app = app;
            let t0 = Instant::now();
            app.start().await?;
            let m = wait_for(&app, "restoring the store", |m| m.restored_records >= keys).await;
            let took = t0.elapsed();
            let closed = app.close().await;
            let m = m?;
            closed.context("the streams application failed")?;
            println!(
                "run {run}: restored {} records in {:.3} s ({:.0} records/s)",
                m.restored_records,
                took.as_secs_f64(),
                m.restored_records as f64 / took.as_secs_f64()
            );
            secs.push(took.as_secs_f64());
        }
        // For scale: the same entries into a HashMap.
        let entries: Vec<(Vec<u8>, Vec<u8>)> = names
            .iter()
            .map(|k| (k.as_bytes().to_vec(), 1i64.to_be_bytes().to_vec()))
            .collect();
        let mut ceiling_secs = Vec::new();
        for _ in 0..self.args.runs {
            let t = Instant::now();
            let map: HashMap<&[u8], &[u8]> = entries
                .iter()
                .map(|(k, v)| (k.as_slice(), v.as_slice()))
                .collect();
            black_box(map.len());
            ceiling_secs.push(t.elapsed().as_secs_f64());
        }
        println!(
            "the same {keys} entries into a HashMap: {:.3} s",
            median(ceiling_secs)
        );
        println!("restore: {:.3} s", median(secs));
        Ok(())
    }
}

fn join_values(event: &str, profile: &str) -> String {
    let mut s = String::with_capacity(event.len() + profile.len() + 1);
    s.push_str(event);
    s.push(',');
    s.push_str(profile);
    s
}

fn join_topology(table: &str, events: &str, output: &str) -> anyhow::Result<Topology> {
    let b = StreamsBuilder::new();
    let profiles = b.table::<String, String>(
        table,
        Consumed::with(serdes::string(), serdes::string()),
        Materialized::as_("profiles"),
    );
    b.stream::<String, String>(events, Consumed::with(serdes::string(), serdes::string()))
        .join(
            &profiles,
            |e: &String, p: &String| join_values(e, p),
            Joined::with(serdes::string(), serdes::string(), serdes::string()),
        )
        .to(output, Produced::with(serdes::string(), serdes::string()));
    Ok(b.build()?)
}

/// An in-process `sluice broker`: its address, what stops it, its task.
struct RunningBroker {
    addr: std::net::SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<sluice_broker::Result<()>>,
}

/// Starts a `sluice broker` on a loopback port, its log under `dir`.
async fn start_broker(dir: &Path) -> anyhow::Result<RunningBroker> {
    let mut config = sluice_broker::BrokerConfig::default();
    config.set("listeners", "PLAINTEXT://127.0.0.1:0")?;
    config.set(
        "log.dirs",
        dir.to_str()
            .context("the broker's log directory path is not UTF-8")?,
    )?;
    config.set("group.initial.rebalance.delay.ms", "0")?;
    let broker = sluice_broker::Broker::bind(config).await?;
    let addr = broker.local_addr();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(broker.run(async move {
        let _ = rx.await;
    }));
    Ok(RunningBroker {
        addr,
        stop: tx,
        task,
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.runs == 0 || args.events == 0 || args.keys == Some(0) {
        bail!("--runs, --events and --keys must be at least 1");
    }
    let (dir, _tmp) = match &args.data_dir {
        Some(d) => (d.clone(), None),
        None => {
            let t = tempfile::tempdir()?;
            (t.path().to_path_buf(), Some(t))
        }
    };
    match args.workload {
        Workload::Broker => {
            let RunningBroker { addr, stop, task } = start_broker(&dir.join("broker")).await?;
            println!("sluice broker on {addr}");
            let bench = Bench {
                client: sluice_kafka::KafkaClient::new(addr.to_string()),
                dir,
                args,
            };
            let r = bench.windowed_count("at_least_once", 30_000).await;
            let _ = stop.send(());
            task.await??;
            r
        }
        w => {
            let log = LogManager::open(LogManagerConfig::new(dir.join("log")))
                .with_context(|| format!("opening the embedded log in {}", dir.display()))?;
            let bench = Bench {
                client: EmbeddedClient::new(log),
                dir,
                args,
            };
            match w {
                Workload::WindowedCount => bench.windowed_count("at_least_once", 30_000).await,
                Workload::Eos => bench.windowed_count("exactly_once_v2", 100).await,
                Workload::Join => bench.join().await,
                _ => bench.restore().await,
            }
        }
    }
}
