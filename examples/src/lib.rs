//! What the streams examples share: their command line (`--data-dir` or `--bootstrap`,
//! `--input`, `--output`, `--application-id`, `--processing-guarantee`, `--max-idle-ms`), the
//! client they run on, generating their own input when given none, and printing what they
//! compute as it arrives.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use sluice_log::client::config::{ConsumerConfig, ProducerConfig};
use sluice_log::client::embedded::EmbeddedClient;
use sluice_log::client::{Admin, Client, Consumer, NewTopic, Producer, ProducerRecord};
use sluice_log::log::{LogManager, LogManagerConfig};
use sluice_streams::{KafkaStreams, StreamsConfig, Topology};

/// The command line every streams example takes.
#[derive(Debug, Clone, clap::Parser)]
pub struct StreamsArgs {
    /// The embedded log's directory (the default: a new temporary one).
    #[arg(long, conflicts_with = "bootstrap")]
    pub data_dir: Option<PathBuf>,
    /// A Kafka cluster (or `sluice broker`) instead of the embedded log.
    #[arg(long)]
    pub bootstrap: Option<String>,
    /// The input topic; without it the example writes its own input first.
    #[arg(long)]
    pub input: Option<String>,
    /// The output topic.
    #[arg(long)]
    pub output: Option<String>,
    /// The application id (the consumer group and the prefix of internal topics).
    #[arg(long)]
    pub application_id: Option<String>,
    /// at_least_once or exactly_once_v2.
    #[arg(long, default_value = "at_least_once")]
    pub processing_guarantee: String,
    /// Exit cleanly after this many ms without input; without it, run until SIGINT or SIGTERM.
    #[arg(long)]
    pub max_idle_ms: Option<u64>,
}

/// One example: its names, its topology, its generated input, and how it prints a result.
#[allow(missing_debug_implementations, clippy::type_complexity)] // function pointers only
pub struct Example {
    /// The default application id.
    pub application_id: &'static str,
    /// The default input topic (and any other input topics the example reads, with their
    /// generated records).
    pub input: &'static str,
    /// The default output topic.
    pub output: &'static str,
    /// Builds the topology from the input and output topic names.
    pub topology: fn(&str, &str) -> anyhow::Result<Topology>,
    /// Generated input: `(topic or None for the input topic, key, value, timestamp ms)`.
    pub generate: fn() -> Vec<(Option<&'static str>, Option<String>, String, i64)>,
    /// One line for an output record.
    pub show: fn(Option<&[u8]>, Option<&[u8]>) -> String,
}

/// Runs `example` as its command line says.
pub async fn run(example: Example, args: StreamsArgs) -> anyhow::Result<()> {
    match &args.bootstrap {
        Some(b) => run_on(sluice_kafka::KafkaClient::new(b.clone()), example, args).await,
        None => {
            let (dir, _tmp) = match &args.data_dir {
                Some(d) => (d.clone(), None),
                None => {
                    let t = tempfile::tempdir()?;
                    (t.path().to_path_buf(), Some(t))
                }
            };
            let log = LogManager::open(LogManagerConfig::new(dir.join("log")))
                .with_context(|| format!("opening the embedded log in {}", dir.display()))?;
            let args = StreamsArgs {
                data_dir: Some(dir),
                ..args
            };
            run_on(EmbeddedClient::new(log), example, args).await
        }
    }
}

async fn ensure_topic<A: Admin>(admin: &A, name: &str, partitions: i32) -> anyhow::Result<()> {
    match admin
        .create_topics(vec![NewTopic::new(name, partitions)])
        .await
    {
        Ok(()) | Err(sluice_log::Error::TopicExists(_)) => Ok(()),
        Err(e) => Err(e).with_context(|| format!("creating topic {name}")),
    }
}

async fn run_on<C: Client>(client: C, ex: Example, args: StreamsArgs) -> anyhow::Result<()> {
    let input = args.input.clone().unwrap_or_else(|| ex.input.to_owned());
    let output = args.output.clone().unwrap_or_else(|| ex.output.to_owned());
    let app_id = args
        .application_id
        .clone()
        .unwrap_or_else(|| ex.application_id.to_owned());
    let admin = client.admin()?;
    let records = if args.input.is_none() {
        (ex.generate)()
    } else {
        Vec::new()
    };
    ensure_topic(&admin, &input, 2).await?;
    ensure_topic(&admin, &output, 2).await?;
    if !records.is_empty() {
        let producer = client.producer(ProducerConfig::from_pairs([("linger.ms", "5")])?)?;
        let mut topics = vec![input.clone()];
        for (topic, key, value, ts) in &records {
            let topic = topic.map(str::to_owned).unwrap_or_else(|| input.clone());
            if !topics.contains(&topic) {
                ensure_topic(&admin, &topic, 2).await?;
                topics.push(topic.clone());
            }
            let mut r = ProducerRecord::new(topic, value.clone()).timestamp(*ts);
            if let Some(k) = key {
                r = r.key(k.clone());
            }
            producer.send(r).await?;
        }
        producer.flush().await?;
        println!(
            "wrote {} input records to {}",
            records.len(),
            topics.join(", ")
        );
    }
    let state_dir = match &args.data_dir {
        Some(d) => d.join("streams-state"),
        None => std::env::temp_dir().join("sluice-streams").join(&app_id),
    };
    let config = StreamsConfig::from_pairs([
        ("application.id", app_id.as_str()),
        ("processing.guarantee", args.processing_guarantee.as_str()),
        ("commit.interval.ms", "200"),
        ("state.dir", state_dir.to_str().unwrap_or(".")),
    ])?;
    let topology = (ex.topology)(&input, &output)?;
    println!("{}", topology.describe());
    let app = KafkaStreams::new(topology, config, client.clone());
    // Prints the output as it is committed, until the application stops.
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let printer = {
        let client = client.clone();
        let output = output.clone();
        let show = ex.show;
        tokio::spawn(async move {
            let mut consumer = client.consumer(ConsumerConfig::from_pairs([
                ("isolation.level", "read_committed"),
                ("auto.offset.reset", "earliest"),
            ])?)?;
            let parts = client
                .admin()?
                .describe_topic(&output)
                .await?
                .partitions
                .len() as i32;
            consumer.assign(
                (0..parts)
                    .map(|p| sluice_log::TopicPartition::new(output.as_str(), p))
                    .collect(),
            )?;
            let mut lines = 0u64;
            let mut stopping = 0;
            loop {
                let recs = consumer.poll(Duration::from_millis(100)).await?;
                for r in &recs {
                    println!("{output}: {}", show(r.key.as_deref(), r.value.as_deref()));
                    lines += 1;
                }
                if *stop_rx.borrow_and_update() {
                    // After the application stopped: drain what it committed last.
                    stopping += 1;
                    if recs.is_empty() && stopping > 3 {
                        break;
                    }
                }
            }
            anyhow::Ok(lines)
        })
    };
    let result = match args.max_idle_ms {
        Some(ms) => app.run_until_idle(Duration::from_millis(ms)).await,
        None => app.run_until_signal().await,
    };
    let _ = stop_tx.send(true);
    let lines = printer.await??;
    result.context("the streams application failed")?;
    println!("{app_id}: {lines} output records in {output}");
    Ok(())
}

/// Shows bytes as UTF-8 text (lossy), `null` for none.
pub fn text(b: Option<&[u8]>) -> String {
    b.map(|b| String::from_utf8_lossy(b).into_owned())
        .unwrap_or_else(|| "null".into())
}

/// A deterministic pseudo-random sequence (xorshift), so generated input is the same each run.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// Seeded.
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    /// The next number below `n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}
