//! `sluice perf`: producer and consumer throughput and latency (kafka-producer-perf-test and
//! kafka-consumer-perf-test).
//!
//! Both measure the library, not the CLI: one pregenerated payload shared by every record
//! (`Bytes::clone` is a reference count), no per-record allocation here beyond what the client
//! API takes, delivery futures completed from a bounded in-flight queue, and counters in atomics.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context as _, bail};
use bytes::Bytes;
use clap::{Args, Subcommand};
use hdrhistogram::Histogram;
use sluice_kafka::{CONSUMER_ENGINE_PROPERTY, ENGINE_PROPERTY};
use sluice_log::TopicPartition;
use sluice_log::client::config::{ConsumerConfig, ProducerConfig};
use sluice_log::client::{
    Admin, Client, Consumer, DeliveryFuture, NewTopic, Producer, ProducerRecord, RecordMetadata,
};
use tokio::time::Instant;

use crate::parse_key_value;

/// Deliveries a producer task keeps in flight before it waits for the oldest.
const MAX_IN_FLIGHT: usize = 100_000;
/// How often progress is printed.
const REPORT_EVERY: Duration = Duration::from_secs(5);
const MB: f64 = 1024.0 * 1024.0;

/// Measure throughput and latency.
#[derive(Debug, Args)]
pub(crate) struct PerfArgs {
    /// Where the log is (`--data-dir`, `--bootstrap`), when given after the subcommand.
    #[command(flatten)]
    pub(crate) target: crate::Target,
    #[command(subcommand)]
    command: PerfCommand,
}

#[derive(Debug, Subcommand)]
enum PerfCommand {
    /// Send records as fast as allowed; report throughput and send-to-ack latency.
    Produce(ProducePerf),
    /// Read a topic from the beginning; report throughput.
    Consume(ConsumePerf),
    /// Produce at a fixed rate while a consumer reads the same partition; report the time from
    /// send to receipt of each record (kafka-e2e-latency, at a rate).
    EndToEnd(EndToEndPerf),
}

#[derive(Debug, Args)]
struct EndToEndPerf {
    /// Topic to use (created with one partition if missing; read from its end).
    #[arg(long)]
    topic: String,
    /// Records to send and receive.
    #[arg(long)]
    num_records: u64,
    /// Bytes of each record's value (at least 8: the send time travels in it).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(8..))]
    record_size: u64,
    /// Records per second.
    #[arg(long)]
    throughput: f64,
    /// Acknowledgements the producer waits for.
    #[arg(long, value_parser = ["0", "1", "all", "-1"], default_value = "1")]
    acks: String,
    /// Producer configs KEY=VALUE, e.g. linger.ms=0 (with --bootstrap: Sluice's own producer,
    /// unless sluice.producer.engine=librdkafka or librdkafka properties are given).
    #[arg(long = "producer-props", value_name = "KEY=VALUE", num_args = 1.., value_parser = parse_key_value)]
    producer_props: Vec<(String, String)>,
    /// Consumer configs KEY=VALUE (with --bootstrap also librdkafka's).
    #[arg(long = "consumer-props", value_name = "KEY=VALUE", num_args = 1.., value_parser = parse_key_value)]
    consumer_props: Vec<(String, String)>,
    /// Give up when no record arrives for this long.
    #[arg(long, value_name = "MS", default_value_t = 10_000)]
    timeout_ms: u64,
}

#[derive(Debug, Args)]
struct ProducePerf {
    /// Topic to send to (created if missing).
    #[arg(long)]
    topic: String,
    /// Records to send in total.
    #[arg(long)]
    num_records: u64,
    /// Bytes of each record's value.
    #[arg(long)]
    record_size: usize,
    /// Records per second at most, over all producers; -1 is unlimited.
    #[arg(long, default_value_t = -1.0, allow_negative_numbers = true)]
    throughput: f64,
    /// Acknowledgements to wait for.
    #[arg(long, value_parser = ["0", "1", "all", "-1"])]
    acks: Option<String>,
    /// Concurrent producers, each with its own share of the records and the throughput.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1024))]
    producers: u32,
    /// Partitions of the topic if it has to be created.
    #[arg(long, default_value_t = 1)]
    partitions: i32,
    /// Producer configs KEY=VALUE under Kafka's names, e.g. linger.ms=10 batch.size=65536. With
    /// --bootstrap the producer is Sluice's own, unless sluice.producer.engine=librdkafka or
    /// librdkafka properties are given (passed as they are) or the run is transactional.
    #[arg(long = "producer-props", value_name = "KEY=VALUE", num_args = 1.., value_parser = parse_key_value)]
    producer_props: Vec<(String, String)>,
    /// Print the producer's effective configs and the run's counters at the end.
    #[arg(long)]
    print_metrics: bool,
    /// Send in transactions under this `transactional.id` (suffixed `-N` per producer when
    /// there are several).
    #[arg(long, requires = "transaction_duration_ms")]
    transactional_id: Option<String>,
    /// Commit the open transaction and begin the next every this many milliseconds.
    #[arg(long, value_name = "MS", requires = "transactional_id",
          value_parser = clap::value_parser!(u64).range(1..))]
    transaction_duration_ms: Option<u64>,
}

#[derive(Debug, Args)]
struct ConsumePerf {
    /// Topic to read (all partitions, from the beginning).
    #[arg(long)]
    topic: String,
    /// Records to read.
    #[arg(long)]
    messages: u64,
    /// Give up when no record arrives for this long.
    #[arg(long, value_name = "MS", default_value_t = 10_000)]
    timeout_ms: u64,
    /// Consumer configs KEY=VALUE under Kafka's names, e.g. max.poll.records=2000. With
    /// --bootstrap the consumer is Sluice's own, unless sluice.consumer.engine=librdkafka or
    /// librdkafka properties are given (passed as they are) or --group is.
    #[arg(long = "consumer-props", value_name = "KEY=VALUE", num_args = 1.., value_parser = parse_key_value)]
    consumer_props: Vec<(String, String)>,
    /// Read as this consumer group (subscribe; committed offsets, else the beginning) instead
    /// of assigning every partition to one consumer.
    #[arg(long)]
    group: Option<String>,
    /// Consumers in the group, each its own task; the records count over all of them.
    #[arg(long, default_value_t = 1, requires = "group",
          value_parser = clap::value_parser!(u32).range(1..=1024))]
    consumers: u32,
}

impl PerfArgs {
    /// The `--producer-props`/`--consumer-props` keys Sluice's configs do not know
    /// (librdkafka's).
    pub(crate) fn raw_properties(&mut self) -> crate::RawProperties {
        match &mut self.command {
            PerfCommand::Produce(a) => crate::RawProperties {
                producer: with_native_default(
                    crate::take_unknown(&mut a.producer_props, true),
                    ENGINE_PROPERTY,
                    a.transactional_id.is_none(),
                ),
                consumer: Vec::new(),
            },
            PerfCommand::Consume(a) => crate::RawProperties {
                producer: Vec::new(),
                consumer: with_native_default(
                    crate::take_unknown(&mut a.consumer_props, false),
                    CONSUMER_ENGINE_PROPERTY,
                    a.group.is_none(),
                ),
            },
            PerfCommand::EndToEnd(a) => crate::RawProperties {
                producer: with_native_default(
                    crate::take_unknown(&mut a.producer_props, true),
                    ENGINE_PROPERTY,
                    true,
                ),
                consumer: with_native_default(
                    crate::take_unknown(&mut a.consumer_props, false),
                    CONSUMER_ENGINE_PROPERTY,
                    true,
                ),
            },
        }
    }
}

/// The load tool runs Sluice's own producer and consumer unless told otherwise: by their
/// engine `property`, by librdkafka properties among theirs, or (`native` false) by what only
/// librdkafka's do (transactions, group subscriptions).
fn with_native_default(
    mut raw: Vec<(String, String)>,
    property: &str,
    native: bool,
) -> Vec<(String, String)> {
    if native && raw.is_empty() {
        raw.push((property.to_owned(), "native".to_owned()));
    }
    raw
}

pub(crate) async fn run<C: Client>(client: C, args: PerfArgs) -> anyhow::Result<()> {
    match args.command {
        PerfCommand::Produce(a) => produce(client.admin()?, |c| client.producer(c), a).await,
        PerfCommand::Consume(a) => consume(client, a).await,
        PerfCommand::EndToEnd(a) => end_to_end(client, a).await,
    }
}

/// Sends `num_records` at `throughput` with the send time (µs since the run began) in the
/// first 8 bytes of each value, while one consumer, positioned at the end beforehand, reads
/// them back; the latency of a record is its receipt time minus its send time, both on this
/// process's monotonic clock.
async fn end_to_end<C: Client>(client: C, a: EndToEndPerf) -> anyhow::Result<()> {
    if a.throughput.is_nan() || a.throughput <= 0.0 {
        bail!("--throughput must be positive");
    }
    let admin = client.admin()?;
    if !admin.list_topics().await?.contains(&a.topic) {
        admin
            .create_topics(vec![NewTopic::new(a.topic.clone(), 1)])
            .await?;
    }
    let tp = TopicPartition::new(a.topic.as_str(), 0);
    let mut consumer = client.consumer(ConsumerConfig::from_pairs(
        a.consumer_props.iter().map(|(k, v)| (k, v)),
    )?)?;
    consumer.assign(vec![tp.clone()])?;
    consumer.seek_to_end(std::slice::from_ref(&tp)).await?;
    // A first poll settles the position before anything is sent.
    consumer.poll(Duration::from_millis(100)).await?;
    let mut pairs = a.producer_props.clone();
    pairs.push(("acks".into(), a.acks.clone()));
    let producer = client.producer(ProducerConfig::from_pairs(pairs)?)?;
    let start = Instant::now();
    let topic: Arc<str> = Arc::from(a.topic.as_str());
    let filler = payload(a.record_size as usize - 8);
    let n = a.num_records;
    let throttle = Throttle::new(Some(a.throughput));
    let sender = async {
        let mut deliveries: VecDeque<DeliveryFuture> = VecDeque::new();
        for i in 0..n {
            throttle.wait(i).await;
            let mut value = Vec::with_capacity(a.record_size as usize);
            value.extend_from_slice(&(start.elapsed().as_micros() as u64).to_be_bytes());
            value.extend_from_slice(&filler);
            deliveries.push_back(
                producer
                    .send(ProducerRecord::new(Arc::clone(&topic), value).partition(0))
                    .await?,
            );
            while deliveries.len() > MAX_IN_FLIGHT {
                if let Some(d) = deliveries.pop_front() {
                    let _: RecordMetadata = d.await?;
                }
            }
        }
        for d in deliveries {
            d.await?;
        }
        anyhow::Ok(())
    };
    let receiver = async {
        let mut h = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3)?;
        let timeout = Duration::from_millis(a.timeout_ms);
        let mut last = Instant::now();
        while h.len() < n {
            if last.elapsed() >= timeout {
                eprintln!(
                    "WARNING: stopped after {} of {n} records: none arrived for {} ms",
                    h.len(),
                    a.timeout_ms
                );
                break;
            }
            let batch = consumer.poll(Duration::from_millis(100)).await?;
            let now = start.elapsed().as_micros() as u64;
            for r in batch.iter() {
                let sent = r
                    .value
                    .as_ref()
                    .and_then(|v| v.get(..8))
                    .and_then(|b| <[u8; 8]>::try_from(b).ok())
                    .map(u64::from_be_bytes)
                    .context(
                        "a record without the send time: is another producer writing this topic?",
                    )?;
                h.saturating_record(now.saturating_sub(sent).max(1));
                last = Instant::now();
            }
        }
        anyhow::Ok(h)
    };
    let (sent, h) = tokio::join!(sender, receiver);
    sent?;
    let h = h?;
    let took = start.elapsed();
    let q = |p: f64| ms(h.value_at_quantile(p) as f64);
    outln!(
        "{} records received at {:.0} records/s (target {:.0}); end-to-end latency ms: p50 {:.3}, p99 {:.3}, p99.9 {:.3}, max {:.3}",
        h.len(),
        h.len() as f64 / took.as_secs_f64(),
        a.throughput,
        q(0.5),
        q(0.99),
        q(0.999),
        ms(h.max() as f64)
    )?;
    Ok(())
}

/// A payload of `size` pseudo-random uppercase letters, as Kafka's perf test sends.
fn payload(size: usize) -> Bytes {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let v: Vec<u8> = (0..size)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            b'A' + (x % 26) as u8
        })
        .collect();
    Bytes::from(v)
}

/// Paces sends to a rate: record `i` goes no earlier than `start + i / rate`. The schedule is
/// absolute, so the timer's millisecond granularity never accumulates into drift.
#[derive(Debug)]
struct Throttle {
    start: Instant,
    per_second: Option<f64>,
}

impl Throttle {
    fn new(per_second: Option<f64>) -> Self {
        Self {
            start: Instant::now(),
            per_second,
        }
    }

    fn due(&self, sent: u64) -> Option<Instant> {
        let rate = self.per_second?;
        Some(self.start + Duration::from_secs_f64(sent as f64 / rate))
    }

    async fn wait(&self, sent: u64) {
        if let Some(due) = self.due(sent)
            && due > Instant::now()
        {
            tokio::time::sleep_until(due).await;
        }
    }
}

/// Counters since the last progress line, shared by the producer tasks.
#[derive(Debug, Default)]
struct Window {
    records: AtomicU64,
    latency_us_sum: AtomicU64,
    latency_us_max: AtomicU64,
}

/// What one producer task measured.
#[derive(Debug)]
struct TaskOutcome {
    histogram: Histogram<u64>,
    acked: u64,
    failed: u64,
    first_error: Option<String>,
    /// Transactions committed.
    transactions: u64,
    /// Acks, latency sum and maximum not yet added to the shared [`Window`]: published once
    /// per batch of acks, not per record.
    unpublished: (u64, u64, u64),
}

impl TaskOutcome {
    fn new() -> anyhow::Result<Self> {
        Ok(Self {
            // Microseconds, from 1 µs to an hour, 3 significant digits.
            histogram: Histogram::new_with_bounds(1, 3_600_000_000, 3)
                .context("could not create the latency histogram")?,
            acked: 0,
            failed: 0,
            first_error: None,
            transactions: 0,
            unpublished: (0, 0, 0),
        })
    }

    /// Records one delivery; [`TaskOutcome::publish`] shows it in the progress lines.
    fn complete(
        &mut self,
        sent_at: Instant,
        now: Instant,
        result: sluice_log::Result<RecordMetadata>,
    ) {
        match result {
            Ok(_) => {
                let us = u64::try_from(now.saturating_duration_since(sent_at).as_micros())
                    .unwrap_or(u64::MAX);
                self.histogram.saturating_record(us.max(1));
                self.acked += 1;
                let (n, sum, max) = &mut self.unpublished;
                *n += 1;
                *sum = sum.saturating_add(us);
                *max = (*max).max(us);
            }
            Err(e) => {
                self.failed += 1;
                self.first_error
                    .get_or_insert_with(|| sluice_log::report(&e));
            }
        }
    }

    /// Adds the deliveries recorded since the last call to the shared window.
    fn publish(&mut self, window: &Window) {
        let (n, sum, max) = std::mem::take(&mut self.unpublished);
        if n > 0 {
            window.records.fetch_add(n, Ordering::Relaxed);
            window.latency_us_sum.fetch_add(sum, Ordering::Relaxed);
            window.latency_us_max.fetch_max(max, Ordering::Relaxed);
        }
    }
}

/// Completes the deliveries at the front of the queue that are already done, without waiting.
fn complete_ready(
    in_flight: &mut VecDeque<(Instant, DeliveryFuture)>,
    outcome: &mut TaskOutcome,
    window: &Window,
) {
    // One clock read for every delivery completing in this call: reading the clock costs as
    // much as a send here, and these acks arrived together.
    let mut now = None;
    while let Some((_, f)) = in_flight.front_mut() {
        let Some(result) = f.try_complete() else {
            break;
        };
        if let Some((sent_at, _)) = in_flight.pop_front() {
            let now = *now.get_or_insert_with(Instant::now);
            outcome.complete(sent_at, now, result);
        }
    }
    outcome.publish(window);
}

async fn produce_task<P: Producer>(
    producer: P,
    topic: Arc<str>,
    value: Bytes,
    records: u64,
    throttle: Throttle,
    window: Arc<Window>,
    transaction_every: Option<Duration>,
) -> anyhow::Result<TaskOutcome> {
    let mut outcome = TaskOutcome::new()?;
    let mut in_flight: VecDeque<(Instant, DeliveryFuture)> =
        VecDeque::with_capacity(MAX_IN_FLIGHT.min(records as usize) + 1);
    let mut transaction_ends = None;
    if let Some(every) = transaction_every {
        producer.init_transactions().await?;
        producer.begin_transaction()?;
        transaction_ends = Some(Instant::now() + every);
    }
    let mut sent_at = Instant::now();
    for i in 0..records {
        throttle.wait(i).await;
        // The send time is read once every 8 records (a clock read costs as much as a send);
        // latencies are off by at most the time to send 8 records, a few microseconds.
        if i % 8 == 0 {
            sent_at = Instant::now();
            if let (Some(every), Some(ends)) = (transaction_every, transaction_ends)
                && sent_at >= ends
            {
                // Commit flushes: every delivery of the transaction is complete after it.
                producer.commit_transaction().await?;
                outcome.transactions += 1;
                complete_ready(&mut in_flight, &mut outcome, &window);
                producer.begin_transaction()?;
                sent_at = Instant::now();
                transaction_ends = Some(sent_at + every);
            }
        }
        let record = ProducerRecord {
            topic: Arc::clone(&topic),
            partition: None,
            key: None,
            value: Some(value.clone()),
            headers: Vec::new(),
            timestamp: None,
        };
        match producer.send(record).await {
            Ok(f) => in_flight.push_back((sent_at, f)),
            Err(e) => {
                outcome.failed += 1;
                outcome
                    .first_error
                    .get_or_insert_with(|| sluice_log::report(&e));
            }
        }
        complete_ready(&mut in_flight, &mut outcome, &window);
        if in_flight.len() >= MAX_IN_FLIGHT
            && let Some((sent_at, f)) = in_flight.pop_front()
        {
            let r = f.await;
            outcome.complete(sent_at, Instant::now(), r);
            outcome.publish(&window);
        }
    }
    if transaction_ends.is_some() {
        producer.commit_transaction().await?;
        outcome.transactions += 1;
    }
    while let Some((sent_at, f)) = in_flight.pop_front() {
        let r = f.await;
        outcome.complete(sent_at, Instant::now(), r);
        complete_ready(&mut in_flight, &mut outcome, &window);
    }
    producer.close().await?;
    Ok(outcome)
}

fn ms(us: f64) -> f64 {
    us / 1000.0
}

async fn produce<A: Admin, P: Producer + 'static>(
    admin: A,
    new_producer: impl Fn(ProducerConfig) -> sluice_log::Result<P>,
    a: ProducePerf,
) -> anyhow::Result<()> {
    if a.throughput == 0.0 || a.throughput.is_nan() {
        bail!("--throughput must be positive, or -1 for unlimited");
    }
    let mut pairs = a.producer_props.clone();
    if let Some(acks) = &a.acks {
        pairs.push(("acks".into(), acks.clone()));
    }
    let config = ProducerConfig::from_pairs(pairs)?;
    if !admin.list_topics().await?.contains(&a.topic) {
        admin
            .create_topics(vec![NewTopic::new(a.topic.clone(), a.partitions)])
            .await?;
    }
    let window = Arc::new(Window::default());
    let start = Instant::now();
    let tasks = spawn_producers(&a, &config, new_producer, &window)?;
    let reporter = spawn_reporter(Arc::clone(&window), a.record_size as f64);
    let (total, task_error) = gather(tasks).await?;
    let elapsed = start.elapsed().as_secs_f64();
    reporter.abort();
    print_produced(&a, &config, &total, elapsed)?;
    if let Some(e) = task_error {
        return Err(e);
    }
    if total.failed > 0 {
        bail!(
            "{} of {} records failed; the first: {}",
            total.failed,
            a.num_records,
            total.first_error.unwrap_or_default()
        );
    }
    Ok(())
}

/// Starts `--producers` tasks, each sending its share of the records (with its own
/// `transactional.id` when there are several).
fn spawn_producers<P: Producer + 'static>(
    a: &ProducePerf,
    config: &ProducerConfig,
    new_producer: impl Fn(ProducerConfig) -> sluice_log::Result<P>,
    window: &Arc<Window>,
) -> anyhow::Result<Vec<tokio::task::JoinHandle<anyhow::Result<TaskOutcome>>>> {
    let topic: Arc<str> = Arc::from(a.topic.as_str());
    let value = payload(a.record_size);
    let producers = u64::from(a.producers);
    let rate = (a.throughput > 0.0).then(|| a.throughput / producers as f64);
    let transaction_every = a.transaction_duration_ms.map(Duration::from_millis);
    let mut tasks = Vec::new();
    for i in 0..producers {
        let share = a.num_records / producers + u64::from(i < a.num_records % producers);
        let mut config = config.clone();
        if let Some(id) = &a.transactional_id {
            let id = if producers > 1 {
                format!("{id}-{i}")
            } else {
                id.clone()
            };
            config.set("transactional.id", &id)?;
            config.resolve()?;
        }
        let producer = new_producer(config)?;
        tasks.push(tokio::spawn(produce_task(
            producer,
            Arc::clone(&topic),
            value.clone(),
            share,
            Throttle::new(rate),
            Arc::clone(window),
            transaction_every,
        )));
    }
    Ok(tasks)
}

/// Prints the last interval's records, rate and latency every [`REPORT_EVERY`], as
/// kafka-producer-perf-test does, until aborted.
fn spawn_reporter(window: Arc<Window>, record_size: f64) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut last = Instant::now();
        let mut tick = tokio::time::interval_at(last + REPORT_EVERY, REPORT_EVERY);
        loop {
            tick.tick().await;
            let now = Instant::now();
            let secs = (now - last).as_secs_f64();
            last = now;
            let n = window.records.swap(0, Ordering::Relaxed);
            let sum = window.latency_us_sum.swap(0, Ordering::Relaxed);
            let max = window.latency_us_max.swap(0, Ordering::Relaxed);
            let avg = if n > 0 { sum as f64 / n as f64 } else { 0.0 };
            let _ = outln!(
                "{n} records sent, {:.1} records/sec ({:.2} MB/sec), {:.1} ms avg latency, {:.1} ms max latency.",
                n as f64 / secs,
                n as f64 * record_size / MB / secs,
                ms(avg),
                ms(max as f64),
            );
        }
    })
}

/// Waits for every producer task and sums their outcomes; the first task error is kept.
async fn gather(
    tasks: Vec<tokio::task::JoinHandle<anyhow::Result<TaskOutcome>>>,
) -> anyhow::Result<(TaskOutcome, Option<anyhow::Error>)> {
    let mut total = TaskOutcome::new()?;
    let mut task_error = None;
    for t in tasks {
        match t.await.context("producer task panicked")? {
            Ok(o) => {
                total.histogram.add(&o.histogram).ok();
                total.acked += o.acked;
                total.failed += o.failed;
                total.transactions += o.transactions;
                if total.first_error.is_none() {
                    total.first_error = o.first_error;
                }
            }
            Err(e) => task_error = task_error.or(Some(e)),
        }
    }
    Ok((total, task_error))
}

/// The summary line (kafka-producer-perf-test's), transactions, and with `--print-metrics`
/// the producer's configs and the run's metrics.
fn print_produced(
    a: &ProducePerf,
    config: &ProducerConfig,
    total: &TaskOutcome,
    elapsed: f64,
) -> anyhow::Result<()> {
    let h = &total.histogram;
    let n = total.acked;
    let q = |p: f64| ms(h.value_at_quantile(p) as f64);
    outln!(
        "{n} records sent, {:.1} records/sec ({:.2} MB/sec), {:.2} ms avg latency, {:.2} ms max latency, \
         {:.2} ms 50th, {:.2} ms 95th, {:.2} ms 99th, {:.2} ms 99.9th.",
        n as f64 / elapsed,
        n as f64 * a.record_size as f64 / MB / elapsed,
        ms(h.mean()),
        ms(h.max() as f64),
        q(0.50),
        q(0.95),
        q(0.99),
        q(0.999),
    )?;
    if a.transactional_id.is_some() {
        outln!(
            "{} transactions committed, {:.1} transactions/sec.",
            total.transactions,
            total.transactions as f64 / elapsed
        )?;
    }
    if a.print_metrics {
        outln!()?;
        outln!("{:<50} Value", "Producer config")?;
        for e in config.describe() {
            outln!("{:<50} {}", e.name, e.value)?;
        }
        outln!()?;
        outln!("{:<50} Value", "Metric Name")?;
        let metrics: [(&str, String); 7] = [
            ("perf:producers", a.producers.to_string()),
            ("perf:record-send-total", n.to_string()),
            ("perf:record-error-total", total.failed.to_string()),
            ("perf:record-size-bytes", a.record_size.to_string()),
            ("perf:elapsed-seconds", format!("{elapsed:.3}")),
            ("perf:latency-min-ms", format!("{:.3}", ms(h.min() as f64))),
            ("perf:latency-stdev-ms", format!("{:.3}", ms(h.stdev()))),
        ];
        for (name, value) in metrics {
            outln!("{name:<50} {value}")?;
        }
    }
    Ok(())
}

/// `yyyy-MM-dd HH:mm:ss:SSS` in UTC, the layout kafka-consumer-perf-test prints.
fn format_utc_ms(ms_since_epoch: i64) -> String {
    let days = ms_since_epoch.div_euclid(86_400_000);
    let ms_of_day = ms_since_epoch.rem_euclid(86_400_000);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}:{:03}",
        ms_of_day / 3_600_000,
        ms_of_day / 60_000 % 60,
        ms_of_day / 1000 % 60,
        ms_of_day % 1000
    )
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

async fn consume<C: Client>(client: C, a: ConsumePerf) -> anyhow::Result<()> {
    if a.group.is_some() {
        return consume_group(client, a).await;
    }
    let config = ConsumerConfig::from_pairs(a.consumer_props.iter().map(|(k, v)| (k, v)))?;
    let d = client.admin()?.describe_topic(&a.topic).await?;
    let partitions: Vec<TopicPartition> = d
        .partitions
        .iter()
        .map(|p| TopicPartition::new(a.topic.as_str(), p.partition))
        .collect();
    let mut consumer = client.consumer(config)?;
    consumer.assign(partitions)?;
    consumer.seek_to_beginning(&[]).await?;
    let timeout = Duration::from_millis(a.timeout_ms);
    let start_ms = now_ms();
    let start = Instant::now();
    let mut last_record = start;
    let mut records = 0u64;
    let mut bytes = 0u64;
    while records < a.messages {
        let idle = last_record.elapsed();
        if idle >= timeout {
            eprintln!(
                "WARNING: Exiting before consuming the expected number of messages: timeout ({} ms) exceeded.",
                a.timeout_ms
            );
            break;
        }
        let batch = consumer
            .poll((timeout - idle).min(Duration::from_secs(1)))
            .await?;
        if batch.is_empty() {
            continue;
        }
        last_record = Instant::now();
        for r in batch.iter().take((a.messages - records) as usize) {
            records += 1;
            bytes += r.key.as_ref().map_or(0, |k| k.len() as u64)
                + r.value.as_ref().map_or(0, |v| v.len() as u64);
        }
    }
    // Time to the last record read: a final idle timeout is not part of the throughput.
    print_consumed(start_ms, last_record - start, records, bytes)
}

/// The final lines of `perf consume`: Kafka's CSV header and row, then a summary.
fn print_consumed(start_ms: i64, took: Duration, records: u64, bytes: u64) -> anyhow::Result<()> {
    let elapsed = took.as_secs_f64().max(1e-9);
    let end_ms = start_ms + took.as_millis() as i64;
    let mb = bytes as f64 / MB;
    outln!("start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec")?;
    outln!(
        "{}, {}, {mb:.4}, {:.4}, {records}, {:.4}",
        format_utc_ms(start_ms),
        format_utc_ms(end_ms),
        mb / elapsed,
        records as f64 / elapsed,
    )?;
    outln!(
        "{records} records in {elapsed:.3} s: {:.1} records/s ({:.2} MB/s)",
        records as f64 / elapsed,
        mb / elapsed
    )?;
    Ok(())
}

/// Counters shared by the consumers of `perf consume --group`.
#[derive(Debug, Default)]
struct GroupProgress {
    records: AtomicU64,
    bytes: AtomicU64,
    /// Microseconds from the start to the latest record read by any consumer.
    last_record_us: AtomicU64,
}

/// One consumer of `perf consume --group`: subscribes, polls until the group has read
/// `messages` in total or nothing arrived for `timeout`, then leaves the group.
async fn group_consumer<K: Consumer>(
    mut consumer: K,
    topic: String,
    messages: u64,
    timeout: Duration,
    start: Instant,
    progress: Arc<GroupProgress>,
) -> anyhow::Result<()> {
    consumer.subscribe(vec![topic])?;
    let since_last = |p: &GroupProgress| {
        let last = start + Duration::from_micros(p.last_record_us.load(Ordering::Relaxed));
        last.elapsed()
    };
    let result = async {
        while progress.records.load(Ordering::Relaxed) < messages {
            let idle = since_last(&progress);
            if idle >= timeout {
                break;
            }
            let batch = consumer
                .poll((timeout - idle).min(Duration::from_millis(200)))
                .await?;
            if batch.is_empty() {
                continue;
            }
            let before = progress
                .records
                .fetch_add(batch.len() as u64, Ordering::Relaxed);
            let take = messages.saturating_sub(before).min(batch.len() as u64);
            if take < batch.len() as u64 {
                // Count only up to `messages` in total.
                progress
                    .records
                    .fetch_sub(batch.len() as u64 - take, Ordering::Relaxed);
            }
            let bytes: u64 = batch
                .iter()
                .take(take as usize)
                .map(|r| {
                    r.key.as_ref().map_or(0, |k| k.len() as u64)
                        + r.value.as_ref().map_or(0, |v| v.len() as u64)
                })
                .sum();
            progress.bytes.fetch_add(bytes, Ordering::Relaxed);
            let us = u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX);
            progress.last_record_us.fetch_max(us, Ordering::Relaxed);
        }
        anyhow::Ok(())
    }
    .await;
    let closed = consumer.close().await;
    result?;
    closed?;
    Ok(())
}

/// `perf consume --group G --consumers K`: K consumers of one group, each its own task,
/// reading together until `messages` records in total. The time includes joining the group.
async fn consume_group<C: Client>(client: C, a: ConsumePerf) -> anyhow::Result<()> {
    let group = a.group.clone().context("--consumers needs --group")?;
    let mut pairs: Vec<(String, String)> = vec![
        ("auto.offset.reset".into(), "earliest".into()),
        // A member learns of a rebalance at its next heartbeat: with Kafka's 3 s the later
        // consumers would sit idle for seconds while the first reads everything.
        ("heartbeat.interval.ms".into(), "100".into()),
    ];
    pairs.extend(a.consumer_props.iter().cloned());
    pairs.push(("group.id".into(), group));
    let config = ConsumerConfig::from_pairs(pairs)?;
    // Fail early, and clearly, on a missing topic.
    client.admin()?.describe_topic(&a.topic).await?;
    let timeout = Duration::from_millis(a.timeout_ms);
    let progress = Arc::new(GroupProgress::default());
    let start_ms = now_ms();
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..a.consumers {
        let consumer = client.consumer(config.clone())?;
        tasks.push(tokio::spawn(group_consumer(
            consumer,
            a.topic.clone(),
            a.messages,
            timeout,
            start,
            Arc::clone(&progress),
        )));
    }
    let mut first_error = None;
    for t in tasks {
        if let Err(e) = t.await.context("consumer task panicked")? {
            first_error = first_error.or(Some(e));
        }
    }
    let records = progress.records.load(Ordering::Relaxed);
    if records < a.messages {
        eprintln!(
            "WARNING: Exiting before consuming the expected number of messages: timeout ({} ms) exceeded.",
            a.timeout_ms
        );
    }
    let took = Duration::from_micros(progress.last_record_us.load(Ordering::Relaxed));
    print_consumed(
        start_ms,
        took,
        records,
        progress.bytes.load(Ordering::Relaxed),
    )?;
    match first_error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates_format_like_kafka() {
        assert_eq!(format_utc_ms(0), "1970-01-01 00:00:00:000");
        assert_eq!(format_utc_ms(951_782_400_123), "2000-02-29 00:00:00:123");
        assert_eq!(format_utc_ms(1_700_000_000_000), "2023-11-14 22:13:20:000");
    }

    #[test]
    fn payload_is_letters_of_the_asked_size() {
        let p = payload(1000);
        assert_eq!(p.len(), 1000);
        assert!(p.iter().all(u8::is_ascii_uppercase));
    }

    #[tokio::test]
    async fn throttle_keeps_the_rate_without_drift() {
        // 300 records at 2000/s: 150 ms, whatever the timer's granularity.
        let t = Throttle::new(Some(2000.0));
        for i in 0..=300 {
            t.wait(i).await;
        }
        let elapsed = t.start.elapsed();
        assert!(
            elapsed >= Duration::from_millis(150) && elapsed <= Duration::from_millis(190),
            "{elapsed:?}"
        );
        let unlimited = Throttle::new(None);
        assert_eq!(unlimited.due(1_000_000), None);
    }
}
