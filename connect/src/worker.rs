//! Running tasks: the source loop (poll -> transforms -> converters -> producer; source
//! offsets committed once their records are acknowledged) and the sink loop (consumer in group
//! `connect-<name>` -> converters -> transforms -> `put`; `flush` then commit), with Kafka
//! Connect's error handling (`errors.tolerance`, `errors.log.enable`, the dead letter queue
//! with its context headers, `errors.retry.timeout.ms` with backoff).
//!
//! A task runs on its own tokio task; the herder steers it through a watch channel of its
//! target state (started, paused, stopped) and reads its status and metrics from
//! [`TaskShared`]. A task that fails records FAILED with its error chain; the worker goes on.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::Mutex;
use regex::Regex;
use sluice_client::config::{ConsumerConfig, ProducerConfig};
use sluice_client::{
    Admin, Client, Consumer, ConsumerRecord, DeliveryFuture, Header, NewTopic, Producer,
    ProducerRecord, RebalanceEvent, TopicPartition,
};
use tokio::sync::watch;

use crate::config::{Props, WorkerConfig, split_list};
use crate::connector::{DynSinkTask, DynSourceTask, SourceTaskContext, TaskFactory};
use crate::converter::{Converter, converter, header_from_bytes, header_to_bytes};
use crate::data::{ConnectRecord, SourceMap};
use crate::error::{Error, Result};
use crate::offsets::OffsetStore;
use crate::transforms::TransformChain;

/// A state of a connector or task, with Kafka Connect's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Not yet started.
    Unassigned,
    /// Running.
    Running,
    /// Paused (`PUT .../pause`).
    Paused,
    /// Failed: its trace says why.
    Failed,
    /// Being restarted.
    Restarting,
    /// Stopped (`PUT .../stop`): no tasks.
    Stopped,
}

impl State {
    /// Kafka Connect's name.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Unassigned => "UNASSIGNED",
            State::Running => "RUNNING",
            State::Paused => "PAUSED",
            State::Failed => "FAILED",
            State::Restarting => "RESTARTING",
            State::Stopped => "STOPPED",
        }
    }
}

/// What the herder asks of a connector and its tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetState {
    /// Run.
    Started,
    /// Keep resources, move no data.
    Paused,
    /// Stop (and for a task: commit and exit).
    Stopped,
}

/// A task's status and metrics, shared between its loop and the herder.
#[derive(Debug)]
pub struct TaskShared {
    status: Mutex<(State, Option<String>)>,
    topics: Arc<Mutex<BTreeSet<String>>>,
    /// Records returned by `poll` (source) or consumed (sink).
    pub records_polled: AtomicU64,
    /// Records sent and acknowledged (source) or put (sink).
    pub records_written: AtomicU64,
    /// Records skipped by `errors.tolerance=all`.
    pub records_skipped: AtomicU64,
    /// Duration of the last offset commit, in microseconds.
    pub last_commit_micros: AtomicU64,
}

impl TaskShared {
    pub(crate) fn new(topics: Arc<Mutex<BTreeSet<String>>>) -> Self {
        TaskShared {
            status: Mutex::new((State::Unassigned, None)),
            topics,
            records_polled: AtomicU64::new(0),
            records_written: AtomicU64::new(0),
            records_skipped: AtomicU64::new(0),
            last_commit_micros: AtomicU64::new(0),
        }
    }

    /// State and trace.
    pub fn status(&self) -> (State, Option<String>) {
        self.status.lock().clone()
    }

    pub(crate) fn set(&self, state: State, trace: Option<String>) {
        *self.status.lock() = (state, trace);
    }

    fn saw_topic(&self, topic: &str) {
        let mut t = self.topics.lock();
        if !t.contains(topic) {
            t.insert(topic.to_owned());
        }
    }
}

/// The error chain of an error, as the status endpoint's `trace`.
pub fn trace(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = format!("{e}");
    let mut source = e.source();
    while let Some(c) = source {
        s.push_str(&format!("\nCaused by: {c}"));
        source = c.source();
    }
    s
}

/// Everything a task loop needs.
pub(crate) struct TaskContext<C: Client> {
    pub(crate) client: C,
    pub(crate) connector: String,
    pub(crate) task_id: usize,
    pub(crate) connector_props: Props,
    pub(crate) task_props: Props,
    pub(crate) factory: TaskFactory,
    pub(crate) worker: Arc<WorkerConfig>,
    pub(crate) offsets: Arc<dyn OffsetStore>,
    pub(crate) control: watch::Receiver<TargetState>,
    pub(crate) shared: Arc<TaskShared>,
}

/// Starts a task on its own tokio task; its outcome lands in `shared`.
pub(crate) fn spawn_task<C: Client>(ctx: TaskContext<C>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let shared = Arc::clone(&ctx.shared);
        let id = format!("{}-{}", ctx.connector, ctx.task_id);
        let outcome = match ctx.factory {
            TaskFactory::Source(make) => run_source(ctx, make()).await,
            TaskFactory::Sink(make) => run_sink(ctx, make()).await,
        };
        match outcome {
            Ok(()) => {
                if shared.status().0 != State::Failed {
                    shared.set(State::Unassigned, None);
                }
                tracing::info!(task = %id, "task stopped");
            }
            Err(e) => {
                tracing::error!(task = %id, error = %e, "task failed; it stays FAILED until restarted");
                shared.set(State::Failed, Some(trace(&e)));
            }
        }
    })
}

/// A connector's error handling: Kafka Connect's `errors.*` keys.
#[derive(Debug, Clone)]
pub(crate) struct ErrorPolicy {
    connector: String,
    task_id: usize,
    tolerate_all: bool,
    retry_timeout: Duration,
    retry_delay_max: Duration,
    log: bool,
    log_messages: bool,
    dlq_topic: Option<String>,
    dlq_partitions: i32,
    dlq_headers: bool,
}

impl ErrorPolicy {
    pub(crate) fn from_props(connector: &str, task_id: usize, p: &Props) -> Result<Self> {
        let get = |k: &str| {
            p.get(k)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let ms = |k: &str, d: u64| -> Result<Duration> {
            match get(k) {
                None => Ok(Duration::from_millis(d)),
                Some(v) => v
                    .parse::<i64>()
                    .map(|n| {
                        if n < 0 {
                            Duration::MAX
                        } else {
                            Duration::from_millis(n as u64)
                        }
                    })
                    .map_err(|_| {
                        Error::config(connector, k, format!("\"{v}\" is not a number of ms"))
                    }),
            }
        };
        let flag = |k: &str| -> Result<bool> {
            match get(k).map(|v| v.to_ascii_lowercase()) {
                None => Ok(false),
                Some(v) if v == "true" => Ok(true),
                Some(v) if v == "false" => Ok(false),
                Some(v) => Err(Error::config(
                    connector,
                    k,
                    format!("\"{v}\" is not true or false"),
                )),
            }
        };
        let tolerate_all = match get("errors.tolerance")
            .map(|v| v.to_ascii_lowercase())
            .as_deref()
        {
            None | Some("none") => false,
            Some("all") => true,
            Some(v) => {
                return Err(Error::config(
                    connector,
                    "errors.tolerance",
                    format!("\"{v}\" is not none or all"),
                ));
            }
        };
        Ok(ErrorPolicy {
            connector: connector.to_owned(),
            task_id,
            tolerate_all,
            retry_timeout: ms("errors.retry.timeout.ms", 0)?,
            retry_delay_max: ms("errors.retry.delay.max.ms", 60_000)?,
            log: flag("errors.log.enable")?,
            log_messages: flag("errors.log.include.messages")?,
            dlq_topic: get("errors.deadletterqueue.topic.name"),
            dlq_partitions: 1,
            dlq_headers: flag("errors.deadletterqueue.context.headers.enable")?,
        })
    }

    /// The backoff of one operation: retriable errors are retried with exponential backoff
    /// (from 300 ms up to `errors.retry.delay.max.ms`) until `errors.retry.timeout.ms` passed.
    fn backoff(&self, stage: &'static str) -> Backoff<'_> {
        Backoff {
            policy: self,
            stage,
            start: Instant::now(),
            delay: Duration::from_millis(300),
            attempt: 0,
        }
    }

    /// An error of a record in `stage`: with `errors.tolerance=all` it is logged (if
    /// enabled) and the record skipped (`Ok`); otherwise it fails the task.
    fn tolerate(&self, stage: &str, record: &str, e: Error) -> Result<()> {
        if !self.tolerate_all {
            return Err(Error::Task(format!(
                "Tolerance exceeded in error handler: {stage} of {record} failed: {e}"
            )));
        }
        if self.log {
            if self.log_messages {
                tracing::error!(connector = %self.connector, task = self.task_id, stage, record, error = %e, "error in the record's processing; skipped (errors.tolerance=all)");
            } else {
                tracing::error!(connector = %self.connector, task = self.task_id, stage, error = %e, "error in a record's processing; skipped (errors.tolerance=all)");
            }
        }
        Ok(())
    }

    /// Kafka's DLQ context headers of a failed record.
    fn dlq_headers(&self, r: &ConsumerRecord, stage: &str, class: &str, e: &Error) -> Vec<Header> {
        if !self.dlq_headers {
            return r.headers.clone();
        }
        let mut h = r.headers.clone();
        let mut add = |k: &str, v: String| {
            h.push(Header::new(format!("__connect.errors.{k}"), Bytes::from(v)))
        };
        add("topic", r.topic.to_string());
        add("partition", r.partition.to_string());
        add("offset", r.offset.to_string());
        add("connector.name", self.connector.clone());
        add("task.id", self.task_id.to_string());
        add("stage", stage.to_owned());
        add("class.name", class.to_owned());
        add(
            "exception.class.name",
            "org.apache.kafka.connect.errors.DataException".to_owned(),
        );
        add("exception.message", e.to_string());
        add("exception.stacktrace", trace(e));
        h
    }
}

/// Retries of one operation (see [`ErrorPolicy::backoff`]).
struct Backoff<'a> {
    policy: &'a ErrorPolicy,
    stage: &'static str,
    start: Instant,
    delay: Duration,
    attempt: u32,
}

impl Backoff<'_> {
    /// Waits before the next attempt after `e`, or gives `e` back when it is not retriable
    /// or the time is up.
    async fn wait(&mut self, e: Error) -> Result<()> {
        if !e.is_retriable() || self.start.elapsed() + self.delay > self.policy.retry_timeout {
            return Err(e);
        }
        self.attempt += 1;
        tracing::warn!(connector = %self.policy.connector, task = self.policy.task_id, stage = self.stage, attempt = self.attempt, error = %e, "retriable error; retrying");
        tokio::time::sleep(self.delay).await;
        self.delay = (self.delay * 2).min(self.policy.retry_delay_max);
        Ok(())
    }
}

/// The converters of a connector: its own `key.converter`/`value.converter` (with their
/// prefixed keys) over the worker's.
fn converters(
    worker: &WorkerConfig,
    p: &Props,
) -> Result<(Arc<dyn Converter>, Arc<dyn Converter>)> {
    let make = |which: &str, is_key: bool, default: &str| -> Result<Arc<dyn Converter>> {
        let prefix = format!("{which}.");
        match p.get(which) {
            Some(class) => {
                let sub: Props = p
                    .iter()
                    .filter_map(|(k, v)| k.strip_prefix(&prefix).map(|s| (s.to_owned(), v.clone())))
                    .collect();
                converter(class, &sub, is_key)
            }
            None => converter(default, &worker.prefixed(&prefix), is_key),
        }
    };
    Ok((
        make("key.converter", true, &worker.key_converter)?,
        make("value.converter", false, &worker.value_converter)?,
    ))
}

/// Client configs: the worker's `prefix.*`, then the connector's `prefix.override.*`, then
/// `fixed` (what the runtime needs).
fn client_pairs(
    worker: &WorkerConfig,
    p: &Props,
    prefix: &str,
    fixed: &[(&str, String)],
) -> Vec<(String, String)> {
    let mut m: BTreeMap<String, String> = worker.prefixed(&format!("{prefix}."));
    let over = format!("{prefix}.override.");
    for (k, v) in p {
        if let Some(k) = k.strip_prefix(&over) {
            m.insert(k.to_owned(), v.clone());
        }
    }
    for (k, v) in fixed {
        m.entry((*k).to_owned()).or_insert_with(|| v.clone());
    }
    m.into_iter().collect()
}

/// A record waiting for its acknowledgement, with its source offset.
struct InFlight {
    partition: Option<SourceMap>,
    offset: Option<SourceMap>,
    delivery: Option<DeliveryFuture>,
}

/// Offsets of acknowledged records, by source partition (its JSON text), ready to commit.
#[derive(Default)]
struct Committable {
    offsets: HashMap<String, (SourceMap, SourceMap)>,
    dirty: bool,
}

impl Committable {
    fn record(&mut self, partition: SourceMap, offset: SourceMap) {
        let key = serde_json::Value::Object(partition.clone()).to_string();
        self.offsets.insert(key, (partition, offset));
        self.dirty = true;
    }
}

/// Moves acknowledged records from the front of `in_flight` (in order, so no offset is
/// committed before an earlier record's acknowledgement) into `done`. A failed delivery
/// fails the task.
fn drain_acked(
    in_flight: &mut VecDeque<InFlight>,
    done: &mut Committable,
    shared: &TaskShared,
) -> Result<()> {
    while let Some(front) = in_flight.front_mut() {
        if let Some(d) = front.delivery.as_mut() {
            match d.try_complete() {
                None => return Ok(()),
                Some(Err(e)) => return Err(Error::Task(format!("sending a record failed: {e}"))),
                Some(Ok(_)) => {
                    shared.records_written.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        if let Some(f) = in_flight.pop_front()
            && let (Some(p), Some(o)) = (f.partition, f.offset)
        {
            done.record(p, o);
        }
    }
    Ok(())
}

/// Stores the acknowledged offsets.
async fn commit_source(ctx: &TaskContext<impl Client>, done: &mut Committable) -> Result<()> {
    if !done.dirty {
        return Ok(());
    }
    let start = Instant::now();
    let offsets = done
        .offsets
        .values()
        .map(|(p, o)| (p.clone(), Some(o.clone())))
        .collect();
    ctx.offsets.put(&ctx.connector, offsets).await?;
    done.dirty = false;
    let took = start.elapsed();
    ctx.shared
        .last_commit_micros
        .store(took.as_micros() as u64, Ordering::Relaxed);
    tracing::debug!(connector = %ctx.connector, task = ctx.task_id, micros = took.as_micros() as u64, "source offsets committed");
    Ok(())
}

/// Waits while paused; `false` once stopped.
async fn wait_while_paused(
    control: &mut watch::Receiver<TargetState>,
    shared: &TaskShared,
) -> bool {
    loop {
        let target = *control.borrow_and_update();
        match target {
            TargetState::Stopped => return false,
            TargetState::Started => {
                if shared.status().0 != State::Running {
                    shared.set(State::Running, None);
                }
                return true;
            }
            TargetState::Paused => {
                if shared.status().0 != State::Paused {
                    shared.set(State::Paused, None);
                }
                if control.changed().await.is_err() {
                    return false;
                }
            }
        }
    }
}

async fn run_source<C: Client>(
    mut ctx: TaskContext<C>,
    mut task: Box<dyn DynSourceTask>,
) -> Result<()> {
    let policy = ErrorPolicy::from_props(&ctx.connector, ctx.task_id, &ctx.connector_props)?;
    let chain = TransformChain::from_config(&ctx.connector, &ctx.connector_props)?;
    let (key_conv, value_conv) = converters(&ctx.worker, &ctx.connector_props)?;
    let pairs = client_pairs(
        &ctx.worker,
        &ctx.connector_props,
        "producer",
        &[(
            "client.id",
            format!("connector-producer-{}-{}", ctx.connector, ctx.task_id),
        )],
    );
    let producer = ctx.client.producer(ProducerConfig::from_pairs(pairs)?)?;
    let context = SourceTaskContext::new(ctx.offsets.get(&ctx.connector).await?);
    task.start(ctx.task_props.clone(), context).await?;
    let flush_every = Duration::from_millis(ctx.worker.offset_flush_interval_ms);
    let mut last_commit = Instant::now();
    let mut in_flight: VecDeque<InFlight> = VecDeque::new();
    let mut done = Committable::default();
    let admin = ctx.client.admin()?;
    let mut known_topics: HashSet<String> = HashSet::new();
    let outcome: Result<()> = async {
        while wait_while_paused(&mut ctx.control, &ctx.shared).await {
            let records = task.poll().await?;
            ctx.shared
                .records_polled
                .fetch_add(records.len() as u64, Ordering::Relaxed);
            for mut r in records {
                let partition = r.source_partition.take();
                let offset = r.source_offset.take();
                let what = format!("a record of {}", r.topic);
                let converted = chain.apply(r).and_then(|r| match r {
                    None => Ok(None),
                    Some(r) => {
                        let key = key_conv.to_bytes(&r.topic, r.key_schema.as_ref(), &r.key)?;
                        let value =
                            value_conv.to_bytes(&r.topic, r.value_schema.as_ref(), &r.value)?;
                        Ok(Some((r, key, value)))
                    }
                });
                let delivery = match converted {
                    Ok(Some((r, key, value))) => {
                        if !known_topics.contains(&r.topic) {
                            ensure_topic(&admin, &r.topic, &ctx.connector_props).await?;
                            known_topics.insert(r.topic.clone());
                            ctx.shared.saw_topic(&r.topic);
                        }
                        let record = ProducerRecord {
                            topic: Arc::from(r.topic.as_str()),
                            partition: r.kafka_partition,
                            key,
                            value,
                            headers: r
                                .headers
                                .iter()
                                .map(|h| Header {
                                    key: h.key.clone(),
                                    value: header_to_bytes(h),
                                })
                                .collect(),
                            timestamp: r.timestamp,
                        };
                        Some(producer.send(record).await?)
                    }
                    Ok(None) => None,
                    Err(e) => {
                        policy.tolerate("transformation/conversion", &what, e)?;
                        ctx.shared.records_skipped.fetch_add(1, Ordering::Relaxed);
                        None
                    }
                };
                in_flight.push_back(InFlight {
                    partition,
                    offset,
                    delivery,
                });
            }
            drain_acked(&mut in_flight, &mut done, &ctx.shared)?;
            if last_commit.elapsed() >= flush_every {
                commit_source(&ctx, &mut done).await?;
                last_commit = Instant::now();
            }
        }
        Ok(())
    }
    .await;
    // Whatever happened, commit what was acknowledged (and on a clean stop, everything sent).
    if outcome.is_ok() {
        producer.flush().await?;
        let deadline =
            Instant::now() + Duration::from_millis(ctx.worker.task_shutdown_timeout_ms.max(1_000));
        while !in_flight.is_empty() && Instant::now() < deadline {
            drain_acked(&mut in_flight, &mut done, &ctx.shared)?;
            if !in_flight.is_empty() {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    } else {
        let _ = drain_acked(&mut in_flight, &mut done, &ctx.shared);
    }
    let committed = commit_source(&ctx, &mut done).await;
    task.stop().await;
    if let Err(e) = producer.close().await {
        tracing::warn!(connector = %ctx.connector, error = %e, "closing the producer");
    }
    outcome.and(committed)
}

/// Creates a source's topic when it is missing (as a broker with `auto.create.topics.enable`
/// would; the embedded log creates none by itself), with `topic.creation.default.partitions`
/// partitions (default 1) and the other `topic.creation.default.*` keys as topic configs.
async fn ensure_topic(admin: &impl Admin, topic: &str, p: &Props) -> Result<()> {
    if admin.list_topics().await?.iter().any(|t| t == topic) {
        return Ok(());
    }
    let partitions = match p.get("topic.creation.default.partitions").map(|v| v.trim()) {
        None | Some("-1") => 1,
        Some(v) => v.parse::<i32>().ok().filter(|n| *n > 0).ok_or_else(|| {
            Error::config(
                "source",
                "topic.creation.default.partitions",
                format!("\"{v}\" is not a positive number"),
            )
        })?,
    };
    let mut new = NewTopic::new(topic, partitions);
    for (k, v) in p {
        if let Some(k) = k.strip_prefix("topic.creation.default.")
            && k != "partitions"
            && k != "replication.factor"
        {
            new = new.config(k, v.clone());
        }
    }
    match admin.create_topics(vec![new]).await {
        Ok(()) | Err(sluice_client::Error::TopicExists(_)) => {
            tracing::info!(topic, partitions, "created the source's topic");
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// The topics a sink reads: `topics`, or those matching `topics.regex`.
async fn sink_topics(admin: &impl Admin, p: &Props) -> Result<Vec<String>> {
    if let Some(t) = p.get("topics").filter(|t| !t.trim().is_empty()) {
        return Ok(split_list(t));
    }
    let re = p.get("topics.regex").map(|r| r.trim()).unwrap_or_default();
    let re = Regex::new(&format!("^(?:{re})$"))
        .map_err(|e| Error::config("sink", "topics.regex", e.to_string()))?;
    let mut topics: Vec<String> = admin
        .list_topics()
        .await?
        .into_iter()
        .filter(|t| re.is_match(t))
        .collect();
    topics.sort();
    Ok(topics)
}

/// Those of `topics` the log does not have.
async fn missing_topics(admin: &impl Admin, topics: &[String]) -> Result<Vec<String>> {
    let have = admin.list_topics().await?;
    Ok(topics
        .iter()
        .filter(|t| !have.contains(t))
        .cloned()
        .collect())
}

/// A sink's dead letter queue: a producer to the topic, created on first use.
struct Dlq<P> {
    producer: Option<P>,
}

async fn run_sink<C: Client>(
    mut ctx: TaskContext<C>,
    mut task: Box<dyn DynSinkTask>,
) -> Result<()> {
    let policy = ErrorPolicy::from_props(&ctx.connector, ctx.task_id, &ctx.connector_props)?;
    let chain = TransformChain::from_config(&ctx.connector, &ctx.connector_props)?;
    let (key_conv, value_conv) = converters(&ctx.worker, &ctx.connector_props)?;
    let group = format!("connect-{}", ctx.connector);
    let pairs = client_pairs(
        &ctx.worker,
        &ctx.connector_props,
        "consumer",
        &[
            ("group.id", group.clone()),
            ("enable.auto.commit", "false".into()),
            ("auto.offset.reset", "earliest".into()),
            (
                "client.id",
                format!("connector-consumer-{}-{}", ctx.connector, ctx.task_id),
            ),
        ],
    );
    let mut consumer = ctx.client.consumer(ConsumerConfig::from_pairs(pairs)?)?;
    let admin = ctx.client.admin()?;
    let mut topics = sink_topics(&admin, &ctx.connector_props).await?;
    consumer.subscribe(topics.clone())?;
    // Topics not there yet: the embedded consumer does not rejoin when a subscribed topic
    // appears (Kafka's does on a metadata refresh), so the subscription is renewed once they
    // exist.
    let mut missing = missing_topics(&admin, &topics).await?;
    let mut last_missing_check = Instant::now();
    task.start(ctx.task_props.clone()).await?;
    let mut dlq: Dlq<C::Producer> = Dlq { producer: None };
    let flush_every = Duration::from_millis(ctx.worker.offset_flush_interval_ms);
    let mut last_commit = Instant::now();
    let mut positions: BTreeMap<TopicPartition, i64> = BTreeMap::new();
    let mut committed: BTreeMap<TopicPartition, i64> = BTreeMap::new();
    let mut paused = false;
    let outcome: Result<()> = async {
        loop {
            let target = *ctx.control.borrow_and_update();
            match target {
                TargetState::Stopped => break,
                TargetState::Paused => {
                    if !paused {
                        let a = consumer.assignment();
                        consumer.pause(&a);
                        paused = true;
                        ctx.shared.set(State::Paused, None);
                    }
                }
                TargetState::Started => {
                    if paused {
                        let a = consumer.assignment();
                        consumer.resume(&a);
                        paused = false;
                    }
                    if ctx.shared.status().0 != State::Running {
                        ctx.shared.set(State::Running, None);
                    }
                }
            }
            if !missing.is_empty() && last_missing_check.elapsed() >= Duration::from_millis(500) {
                last_missing_check = Instant::now();
                let now = missing_topics(&admin, &topics).await?;
                if now.len() < missing.len() {
                    consumer.subscribe(topics.clone())?;
                }
                missing = now;
            }
            let records = consumer.poll(Duration::from_millis(200)).await?;
            for ev in consumer.rebalance_events() {
                match ev {
                    RebalanceEvent::Revoked(tps) => {
                        commit_sink(
                            &ctx,
                            &mut *task,
                            &mut consumer,
                            &policy,
                            &positions,
                            &mut committed,
                        )
                        .await?;
                        for tp in tps {
                            positions.remove(&tp);
                            committed.remove(&tp);
                        }
                    }
                    RebalanceEvent::Lost(tps) => {
                        for tp in tps {
                            positions.remove(&tp);
                            committed.remove(&tp);
                        }
                    }
                    RebalanceEvent::Assigned(tps) => {
                        if paused {
                            consumer.pause(&tps);
                        }
                    }
                }
            }
            ctx.shared
                .records_polled
                .fetch_add(records.len() as u64, Ordering::Relaxed);
            let mut batch = Vec::with_capacity(records.len());
            for rec in records {
                ctx.shared.saw_topic(&rec.topic);
                let tp = TopicPartition::new(rec.topic.to_string(), rec.partition);
                let next = rec.offset + 1;
                match to_sink_record(&rec, &*key_conv, &*value_conv).and_then(|r| chain.apply(r)) {
                    Ok(Some(r)) => batch.push(r),
                    Ok(None) => {}
                    Err(e) => {
                        let what = format!("{}-{}@{}", rec.topic, rec.partition, rec.offset);
                        policy.tolerate(
                            "conversion/transformation",
                            &what,
                            Error::data(what.clone(), e.to_string()),
                        )?;
                        ctx.shared.records_skipped.fetch_add(1, Ordering::Relaxed);
                        if let Some(topic) = &policy.dlq_topic {
                            send_to_dlq(&ctx, &policy, &mut dlq, topic, &rec, &e).await?;
                        }
                    }
                }
                positions.insert(tp, next);
            }
            if !batch.is_empty() {
                let n = batch.len() as u64;
                let mut backoff = policy.backoff("TASK_PUT");
                loop {
                    match task.put(batch.clone()).await {
                        Ok(()) => break,
                        Err(e) => backoff.wait(e).await?,
                    }
                }
                ctx.shared.records_written.fetch_add(n, Ordering::Relaxed);
            }
            if last_commit.elapsed() >= flush_every {
                commit_sink(
                    &ctx,
                    &mut *task,
                    &mut consumer,
                    &policy,
                    &positions,
                    &mut committed,
                )
                .await?;
                last_commit = Instant::now();
                if ctx.connector_props.contains_key("topics.regex") {
                    let now = sink_topics(&admin, &ctx.connector_props).await?;
                    if now != topics {
                        topics = now;
                        consumer.subscribe(topics.clone())?;
                        missing.clear();
                    }
                }
            }
        }
        Ok(())
    }
    .await;
    let last = if outcome.is_ok() {
        commit_sink(
            &ctx,
            &mut *task,
            &mut consumer,
            &policy,
            &positions,
            &mut committed,
        )
        .await
    } else {
        Ok(())
    };
    task.stop().await;
    if let Err(e) = consumer.close().await {
        tracing::warn!(connector = %ctx.connector, error = %e, "closing the consumer");
    }
    if let Some(p) = dlq.producer.take()
        && let Err(e) = p.close().await
    {
        tracing::warn!(connector = %ctx.connector, error = %e, "closing the dead letter queue producer");
    }
    outcome.and(last)
}

/// A consumed record as Connect data.
fn to_sink_record(
    rec: &ConsumerRecord,
    key_conv: &dyn Converter,
    value_conv: &dyn Converter,
) -> Result<ConnectRecord> {
    let (key_schema, key) = key_conv.to_data(&rec.topic, rec.key.as_deref())?;
    let (value_schema, value) = value_conv.to_data(&rec.topic, rec.value.as_deref())?;
    Ok(ConnectRecord {
        topic: rec.topic.to_string(),
        kafka_partition: Some(rec.partition),
        key_schema,
        key,
        value_schema,
        value,
        timestamp: Some(rec.timestamp),
        headers: rec
            .headers
            .iter()
            .map(|h| header_from_bytes(&h.key, h.value.as_deref()))
            .collect(),
        source_partition: None,
        source_offset: None,
        kafka_offset: Some(rec.offset),
    })
}

/// Sends the original bytes of a failed record to the dead letter queue, with the context
/// headers when enabled; creates the topic when missing.
async fn send_to_dlq<C: Client>(
    ctx: &TaskContext<C>,
    policy: &ErrorPolicy,
    dlq: &mut Dlq<C::Producer>,
    topic: &str,
    rec: &ConsumerRecord,
    e: &Error,
) -> Result<()> {
    if dlq.producer.is_none() {
        let admin = ctx.client.admin()?;
        if !admin.list_topics().await?.iter().any(|t| t == topic) {
            match admin
                .create_topics(vec![NewTopic::new(topic, policy.dlq_partitions)])
                .await
            {
                Ok(()) | Err(sluice_client::Error::TopicExists(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let pairs = client_pairs(
            &ctx.worker,
            &ctx.connector_props,
            "producer",
            &[(
                "client.id",
                format!("connector-dlq-producer-{}-{}", ctx.connector, ctx.task_id),
            )],
        );
        dlq.producer = Some(ctx.client.producer(ProducerConfig::from_pairs(pairs)?)?);
    }
    let Some(p) = dlq.producer.as_ref() else {
        return Ok(());
    };
    let record = ProducerRecord {
        topic: Arc::from(topic),
        partition: None,
        key: rec.key.clone(),
        value: rec.value.clone(),
        headers: policy.dlq_headers(
            rec,
            "VALUE_CONVERTER",
            "org.apache.kafka.connect.json.JsonConverter",
            e,
        ),
        timestamp: Some(rec.timestamp),
    };
    p.send(record).await?.await?;
    Ok(())
}

/// Flushes the task, then commits the offsets it flushed (only those that moved).
async fn commit_sink<C: Client>(
    ctx: &TaskContext<C>,
    task: &mut dyn DynSinkTask,
    consumer: &mut C::Consumer,
    policy: &ErrorPolicy,
    positions: &BTreeMap<TopicPartition, i64>,
    committed: &mut BTreeMap<TopicPartition, i64>,
) -> Result<()> {
    let moved: Vec<(TopicPartition, i64)> = positions
        .iter()
        .filter(|(tp, o)| committed.get(*tp) != Some(*o))
        .map(|(tp, o)| (tp.clone(), *o))
        .collect();
    if moved.is_empty() {
        return Ok(());
    }
    let start = Instant::now();
    let mut backoff = policy.backoff("TASK_FLUSH");
    loop {
        match task.flush(positions).await {
            Ok(()) => break,
            Err(e) => backoff.wait(e).await?,
        }
    }
    consumer.commit_sync(Some(moved.clone())).await?;
    committed.extend(moved);
    let took = start.elapsed();
    ctx.shared
        .last_commit_micros
        .store(took.as_micros() as u64, Ordering::Relaxed);
    tracing::debug!(connector = %ctx.connector, task = ctx.task_id, micros = took.as_micros() as u64, "sink offsets committed");
    Ok(())
}
