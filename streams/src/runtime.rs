//! `KafkaStreams`: runs a topology on any `sluice_client::Client`. Each stream thread has one
//! consumer in the group `application.id` (the range assignor keeps partition `p` of every
//! topic of a sub-topology on one member, so a task's inputs stay together) and one producer;
//! its loop is poll -> process per task -> punctuate -> commit every `commit.interval.ms`.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use sluice_client::config::{ConsumerConfig, ProducerConfig};
use sluice_client::{
    Admin, Client, Consumer, ConsumerRecord, NewTopic, Producer, RebalanceEvent, TopicPartition,
};
use tokio::sync::watch;

use crate::context::{DeserializationHandler, TaskId, TaskMetrics};
use crate::error::{Error, Result};
use crate::state::checkpoint::Checkpoint;
use crate::task::{Task, TaskSetup, changelog_topic};
use crate::topology::{NodeKind, RawRecord, Topology, resolve_topic};

/// `processing.guarantee`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProcessingGuarantee {
    /// Output, changelogs and offsets are committed separately: after a crash some input may
    /// be processed again (the default).
    #[default]
    AtLeastOnce,
    /// Output, changelog writes and input offsets commit in one transaction.
    ExactlyOnceV2,
}

/// The settings of a streams application, under Kafka Streams' names.
#[derive(Debug, Clone)]
pub struct StreamsConfig {
    /// `application.id`: the consumer group, and the prefix of internal topics.
    pub application_id: String,
    /// `num.stream.threads`.
    pub num_stream_threads: usize,
    /// `commit.interval.ms` (default 30000, or 100 under exactly-once).
    pub commit_interval: Duration,
    /// `processing.guarantee`.
    pub processing_guarantee: ProcessingGuarantee,
    /// `state.dir`: where RocksDB stores live.
    pub state_dir: PathBuf,
    /// `default.deserialization.exception.handler`.
    pub on_deserialization_error: DeserializationHandler,
    /// `replication.factor` of internal topics (kept for Kafka's configs; one broker here).
    pub replication_factor: i32,
    /// Consumer settings passed through (`consumer.` prefix stripped, or known consumer keys).
    pub consumer: Vec<(String, String)>,
    /// Producer settings passed through (`producer.` prefix stripped).
    pub producer: Vec<(String, String)>,
}

impl StreamsConfig {
    /// The settings from `(key, value)` pairs; `application.id` is required, an unknown key is
    /// an error naming it.
    pub fn from_pairs<K: AsRef<str>, V: AsRef<str>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Self> {
        let mut app = None;
        let mut c = StreamsConfig {
            application_id: String::new(),
            num_stream_threads: 1,
            commit_interval: Duration::from_millis(30_000),
            processing_guarantee: ProcessingGuarantee::AtLeastOnce,
            state_dir: std::env::temp_dir().join("kafka-streams"),
            on_deserialization_error: DeserializationHandler::LogAndFail,
            replication_factor: 1,
            consumer: Vec::new(),
            producer: Vec::new(),
        };
        let mut commit_set = false;
        for (k, v) in pairs {
            let (k, v) = (k.as_ref(), v.as_ref());
            let int = |key: &str| -> Result<i64> {
                v.trim()
                    .parse()
                    .map_err(|_| Error::config(key, format!("\"{v}\" is not a whole number")))
            };
            match k {
                "application.id" => {
                    if v.is_empty()
                        || !v
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
                    {
                        return Err(Error::config(
                            k,
                            format!("\"{v}\": letters, digits, '.', '_' and '-' only, not empty"),
                        ));
                    }
                    app = Some(v.to_owned());
                }
                "num.stream.threads" => {
                    let n = int(k)?;
                    if !(1..=64).contains(&n) {
                        return Err(Error::config(k, format!("{n}: between 1 and 64")));
                    }
                    c.num_stream_threads = n as usize;
                }
                "commit.interval.ms" => {
                    let n = int(k)?;
                    if n < 0 {
                        return Err(Error::config(k, format!("{n}: 0 or more")));
                    }
                    c.commit_interval = Duration::from_millis(n as u64);
                    commit_set = true;
                }
                "processing.guarantee" => {
                    c.processing_guarantee = match v {
                        "at_least_once" => ProcessingGuarantee::AtLeastOnce,
                        "exactly_once_v2" | "exactly_once_beta" => {
                            ProcessingGuarantee::ExactlyOnceV2
                        }
                        "exactly_once" => {
                            return Err(Error::config(
                                k,
                                "exactly_once (v1) was removed in Kafka 4: use exactly_once_v2",
                            ));
                        }
                        other => {
                            return Err(Error::config(
                                k,
                                format!("\"{other}\": at_least_once or exactly_once_v2"),
                            ));
                        }
                    }
                }
                "state.dir" => c.state_dir = PathBuf::from(v),
                "default.deserialization.exception.handler" => {
                    c.on_deserialization_error = crate::config::deserialization_handler(v)?;
                }
                "replication.factor" => c.replication_factor = int(k)? as i32,
                // Accepted for compatibility with Kafka Streams configs; the cache size and
                // the bootstrap are the client's business here.
                "statestore.cache.max.bytes"
                | "cache.max.bytes.buffering"
                | "bootstrap.servers"
                | "num.standby.replicas"
                | "default.key.serde"
                | "default.value.serde" => {}
                _ => {
                    if let Some(rest) = k
                        .strip_prefix("consumer.")
                        .or_else(|| k.strip_prefix("main.consumer."))
                    {
                        c.consumer.push((rest.to_owned(), v.to_owned()));
                    } else if let Some(rest) = k.strip_prefix("producer.") {
                        c.producer.push((rest.to_owned(), v.to_owned()));
                    } else {
                        return Err(Error::config(
                            k,
                            "not a Kafka Streams setting Sluice knows (consumer.* and producer.* pass settings to the clients)",
                        ));
                    }
                }
            }
        }
        c.application_id = app.ok_or_else(|| Error::config("application.id", "required"))?;
        if !commit_set && c.processing_guarantee == ProcessingGuarantee::ExactlyOnceV2 {
            c.commit_interval = Duration::from_millis(100);
        }
        Ok(c)
    }
}

/// Counters of a running application, summed over its tasks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamsMetrics {
    /// Per-task metrics, summed.
    pub tasks: TaskMetrics,
    /// Commits made.
    pub commits: u64,
    /// Total time spent committing, in µs.
    pub commit_micros: u64,
    /// Changelog records restored into stores.
    pub restored_records: u64,
}

/// A streams application running a topology on a client.
pub struct KafkaStreams<C: Client> {
    topology: Arc<Topology>,
    config: Arc<StreamsConfig>,
    client: C,
    shutdown: watch::Sender<bool>,
    threads: Vec<tokio::task::JoinHandle<Result<()>>>,
    metrics: Arc<Mutex<StreamsMetrics>>,
    partition_counts: Arc<HashMap<Arc<str>, i32>>,
    activity: Arc<Mutex<Activity>>,
}

/// When the application last did something, for [`KafkaStreams::run_until_idle`].
#[derive(Debug, Default)]
struct Activity {
    /// Set once a thread got its first assignment.
    assigned: bool,
    /// The last time records were processed (or the first assignment came).
    last: Option<Instant>,
}

impl<C: Client> std::fmt::Debug for KafkaStreams<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaStreams")
            .field("application_id", &self.config.application_id)
            .finish_non_exhaustive()
    }
}

impl<C: Client> KafkaStreams<C> {
    /// An application of `topology` with `config` on `client` (not started).
    pub fn new(topology: Topology, config: StreamsConfig, client: C) -> Self {
        let (shutdown, _) = watch::channel(false);
        Self {
            topology: Arc::new(topology),
            config: Arc::new(config),
            client,
            shutdown,
            threads: Vec::new(),
            metrics: Arc::default(),
            partition_counts: Arc::default(),
            activity: Arc::default(),
        }
    }

    /// Checks the source topics, creates the internal topics, and starts the stream threads.
    pub async fn start(&mut self) -> Result<()> {
        if !self.threads.is_empty() {
            return Err(Error::NotRunning("started already"));
        }
        self.partition_counts = Arc::new(self.prepare_topics().await?);
        for i in 0..self.config.num_stream_threads {
            let thread = StreamThread {
                index: i,
                topology: self.topology.clone(),
                config: self.config.clone(),
                client: self.client.clone(),
                shutdown: self.shutdown.subscribe(),
                metrics: self.metrics.clone(),
                partition_counts: self.partition_counts.clone(),
                activity: self.activity.clone(),
            };
            self.threads.push(tokio::spawn(thread.run()));
        }
        Ok(())
    }

    /// The partition counts of source topics, repartition topics made with them, changelog
    /// topics made for each sub-topology's tasks; co-partitioning checked.
    async fn prepare_topics(&self) -> Result<HashMap<Arc<str>, i32>> {
        let admin = self.client.admin()?;
        let app = &self.config.application_id;
        let mut counts: HashMap<Arc<str>, i32> = HashMap::new();
        for topic in self.topology.source_topics() {
            let d = admin.describe_topic(&topic).await.map_err(|e| match e {
                sluice_client::Error::UnknownTopic(_) => Error::Topology(format!(
                    "source topic \"{topic}\" does not exist: create it before starting the application"
                )),
                other => Error::Client(other),
            })?;
            counts.insert(Arc::from(topic.as_str()), d.partitions.len() as i32);
        }
        // Sub-topologies in order: a repartition topic's writer comes before its readers.
        let mut tasks_of: BTreeMap<u32, i32> = BTreeMap::new();
        for st in &self.topology.subtopologies {
            let n = st
                .topics
                .iter()
                .filter_map(|t| counts.get(resolve_topic(t, app).as_str()).copied())
                .max()
                .unwrap_or(1);
            if self.topology.copartitioned(st) {
                let mut seen: Vec<(String, i32)> = st
                    .topics
                    .iter()
                    .map(|t| resolve_topic(t, app))
                    .filter_map(|t| counts.get(t.as_str()).map(|c| (t, *c)))
                    .collect();
                seen.dedup_by_key(|(_, c)| *c);
                if seen.len() > 1 {
                    return Err(Error::Topology(format!(
                        "the topics of a join are not co-partitioned: {}",
                        seen.iter()
                            .map(|(t, c)| format!("{t} has {c}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )));
                }
            }
            tasks_of.insert(st.id, n);
            for r in &self.topology.repartitions {
                if st.nodes.contains(&r.writer) {
                    let name = format!("{app}-{}", r.suffix);
                    let p = r.partitions.unwrap_or(n);
                    create_if_missing(&admin, &name, p, vec![]).await?;
                    counts.insert(Arc::from(name.as_str()), p);
                }
            }
        }
        for st in &self.topology.subtopologies {
            let n = tasks_of.get(&st.id).copied().unwrap_or(1);
            for store in &st.stores {
                let Some(def) = self.topology.stores.iter().find(|d| &d.name == store) else {
                    continue;
                };
                if !def.logged {
                    continue;
                }
                let name = changelog_topic(app, store);
                let configs = match def.kind {
                    crate::topology::StoreType::KeyValue => {
                        vec![("cleanup.policy".into(), "compact".into())]
                    }
                    crate::topology::StoreType::Window { retention_ms, .. }
                    | crate::topology::StoreType::Session { retention_ms } => vec![
                        ("cleanup.policy".into(), "compact,delete".into()),
                        // Kafka Streams adds a day to the store's retention.
                        (
                            "retention.ms".into(),
                            (retention_ms + 86_400_000).to_string(),
                        ),
                    ],
                };
                create_if_missing(&admin, &name, n, configs).await?;
                counts.insert(Arc::from(name.as_str()), n);
            }
        }
        // Sinks to user topics: their partition counts, for partitioners of the user's.
        for node in &self.topology.nodes {
            if let NodeKind::Sink { topic } = &node.kind {
                if topic.starts_with("${app}") || counts.contains_key(topic.as_str()) {
                    continue;
                }
                if let Ok(d) = admin.describe_topic(topic).await {
                    counts.insert(Arc::from(topic.as_str()), d.partitions.len() as i32);
                }
            }
        }
        Ok(counts)
    }

    /// The application's metrics so far.
    pub fn metrics(&self) -> StreamsMetrics {
        self.metrics.lock().clone()
    }

    /// Whether every stream thread is still running.
    pub fn is_running(&self) -> bool {
        !self.threads.is_empty() && self.threads.iter().all(|t| !t.is_finished())
    }

    /// Waits until a stream thread stops (with the error that stopped it), or `until`
    /// completes; then shuts down.
    pub async fn run_until(mut self, until: impl std::future::Future<Output = ()>) -> Result<()> {
        if self.threads.is_empty() {
            self.start().await?;
        }
        let mut threads = std::mem::take(&mut self.threads);
        let failed = {
            let any = futures_select(&mut threads);
            tokio::select! {
                r = any => Some(r),
                () = until => None,
            }
        };
        let _ = self.shutdown.send(true);
        let mut first_err = match failed {
            Some(Err(e)) => Some(e),
            _ => None,
        };
        for t in threads {
            match t.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    first_err.get_or_insert(e);
                }
                Err(e) => {
                    first_err.get_or_insert(Error::Processing {
                        processor: "stream thread".into(),
                        topic: String::new(),
                        partition: -1,
                        offset: -1,
                        message: e.to_string(),
                    });
                }
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Runs until SIGINT or SIGTERM (or a thread fails), then commits, flushes the stores and
    /// leaves the group.
    pub async fn run_until_signal(self) -> Result<()> {
        self.run_until(shutdown_signal()).await
    }

    /// Runs until no record was processed for `max_idle` (counted from the first
    /// assignment), or SIGINT or SIGTERM, then shuts down cleanly.
    pub async fn run_until_idle(self, max_idle: Duration) -> Result<()> {
        let activity = self.activity.clone();
        let idle = async move {
            loop {
                tokio::time::sleep(Duration::from_millis(20)).await;
                let a = activity.lock();
                if a.assigned && a.last.is_some_and(|t| t.elapsed() >= max_idle) {
                    break;
                }
            }
        };
        self.run_until(async move {
            tokio::select! {
                () = idle => {}
                () = shutdown_signal() => {}
            }
        })
        .await
    }

    /// Stops the threads after their current iteration: commit, close tasks, leave the group.
    pub async fn close(self) -> Result<()> {
        self.run_until(async {}).await
    }
}

/// Resolves when any of `threads` finished (taking its result out of the list).
async fn futures_select(threads: &mut Vec<tokio::task::JoinHandle<Result<()>>>) -> Result<()> {
    loop {
        if let Some(i) = threads.iter().position(|t| t.is_finished()) {
            let t = threads.remove(i);
            return match t.await {
                Ok(r) => r,
                Err(e) => Err(Error::Processing {
                    processor: "stream thread".into(),
                    topic: String::new(),
                    partition: -1,
                    offset: -1,
                    message: e.to_string(),
                }),
            };
        }
        if threads.is_empty() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) {
            (Ok(mut i), Ok(mut t)) => {
                tokio::select! {
                    _ = i.recv() => {}
                    _ = t.recv() => {}
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

async fn create_if_missing<A: Admin>(
    admin: &A,
    name: &str,
    partitions: i32,
    configs: Vec<(String, String)>,
) -> Result<()> {
    match admin
        .create_topics(vec![NewTopic {
            name: name.to_owned(),
            partitions,
            configs,
        }])
        .await
    {
        Ok(()) | Err(sluice_client::Error::TopicExists(_)) => Ok(()),
        Err(e) => Err(Error::Client(e)),
    }
}

struct StreamThread<C: Client> {
    index: usize,
    topology: Arc<Topology>,
    config: Arc<StreamsConfig>,
    client: C,
    shutdown: watch::Receiver<bool>,
    metrics: Arc<Mutex<StreamsMetrics>>,
    partition_counts: Arc<HashMap<Arc<str>, i32>>,
    activity: Arc<Mutex<Activity>>,
}

/// The state of one thread's tasks between polls.
struct Tasks {
    tasks: BTreeMap<TaskId, Task>,
    /// Next offset to commit per input partition.
    offsets: BTreeMap<TopicPartition, i64>,
    in_txn: bool,
}

impl<C: Client> StreamThread<C> {
    fn eos(&self) -> bool {
        self.config.processing_guarantee == ProcessingGuarantee::ExactlyOnceV2
    }

    fn consumer_config(&self, group: bool) -> Result<ConsumerConfig> {
        let mut pairs: Vec<(String, String)> = vec![
            ("auto.offset.reset".into(), "earliest".into()),
            ("enable.auto.commit".into(), "false".into()),
            (
                "client.id".into(),
                format!(
                    "{}-StreamThread-{}-consumer",
                    self.config.application_id,
                    self.index + 1
                ),
            ),
        ];
        if group {
            pairs.push(("group.id".into(), self.config.application_id.clone()));
            pairs.push(("partition.assignment.strategy".into(), "range".into()));
        }
        if self.eos() {
            pairs.push(("isolation.level".into(), "read_committed".into()));
        }
        pairs.extend(self.config.consumer.iter().cloned());
        Ok(ConsumerConfig::from_pairs(pairs)?)
    }

    async fn run(self) -> Result<()> {
        let mut consumer = self.client.consumer(self.consumer_config(true)?)?;
        let mut pairs: Vec<(String, String)> = vec![
            ("linger.ms".into(), "5".into()),
            (
                "client.id".into(),
                format!(
                    "{}-StreamThread-{}-producer",
                    self.config.application_id,
                    self.index + 1
                ),
            ),
        ];
        if self.eos() {
            pairs.push((
                "transactional.id".into(),
                format!(
                    "{}-StreamThread-{}",
                    self.config.application_id,
                    self.index + 1
                ),
            ));
        }
        pairs.extend(self.config.producer.iter().cloned());
        let producer = self.client.producer(ProducerConfig::from_pairs(pairs)?)?;
        if self.eos() {
            producer.init_transactions().await?;
        }
        let mut topics: Vec<String> = Vec::new();
        for st in &self.topology.subtopologies {
            for t in &st.topics {
                let r = resolve_topic(t, &self.config.application_id);
                if !topics.contains(&r) {
                    topics.push(r);
                }
            }
        }
        consumer.subscribe(topics)?;
        let mut state = Tasks {
            tasks: BTreeMap::new(),
            offsets: BTreeMap::new(),
            in_txn: false,
        };
        let mut last_commit = Instant::now();
        let started = Instant::now();
        let result = loop {
            if *self.shutdown.borrow() {
                break Ok(());
            }
            let records = match consumer.poll(Duration::from_millis(100)).await {
                Ok(r) => r,
                Err(e) => break Err(Error::Client(e)),
            };
            for ev in consumer.rebalance_events() {
                let r = match ev {
                    RebalanceEvent::Revoked(tps) => {
                        let r = self.commit(&mut consumer, &producer, &mut state).await;
                        if r.is_ok() {
                            let ids = tasks_of(&state, &tps);
                            self.close_tasks(&mut consumer, &mut state, ids).await;
                        }
                        drop_tasks(&mut state, &tps);
                        r
                    }
                    RebalanceEvent::Lost(tps) => {
                        if state.in_txn {
                            let _ = producer.abort_transaction().await;
                            state.in_txn = false;
                        }
                        drop_tasks(&mut state, &tps);
                        Ok(())
                    }
                    RebalanceEvent::Assigned(tps) => {
                        let r = self.create_tasks(&mut state, &tps).await;
                        let mut a = self.activity.lock();
                        a.assigned = true;
                        a.last = Some(Instant::now());
                        r
                    }
                };
                if let Err(e) = r {
                    return self.fail(consumer, producer, e).await;
                }
            }
            if !records.is_empty() {
                self.activity.lock().last = Some(Instant::now());
            }
            if let Err(e) = self.process(&producer, &mut state, records, started).await {
                return self.fail(consumer, producer, e).await;
            }
            if last_commit.elapsed() >= self.config.commit_interval {
                if let Err(e) = self.commit(&mut consumer, &producer, &mut state).await {
                    return self.fail(consumer, producer, e).await;
                }
                last_commit = Instant::now();
            }
        };
        // Graceful: commit, flush the stores and write their checkpoints, leave the group.
        let committed = self.commit(&mut consumer, &producer, &mut state).await;
        if committed.is_ok() {
            let ids: Vec<TaskId> = state.tasks.keys().copied().collect();
            self.close_tasks(&mut consumer, &mut state, ids).await;
        }
        let closed = consumer.close().await;
        let _ = producer.close().await;
        result.and(committed).and(closed.map_err(Error::Client))
    }

    /// A failure stops the thread: what is in a transaction is aborted, the group is left.
    async fn fail(&self, mut consumer: C::Consumer, producer: C::Producer, e: Error) -> Result<()> {
        tracing::error!(error = %e, thread = self.index + 1, "stream thread failed");
        if self.eos() {
            let _ = producer.abort_transaction().await;
        }
        let _ = consumer.close().await;
        let _ = producer.close().await;
        Err(e)
    }

    async fn process(
        &self,
        producer: &C::Producer,
        state: &mut Tasks,
        records: Vec<ConsumerRecord>,
        started: Instant,
    ) -> Result<()> {
        if !records.is_empty() && self.eos() && !state.in_txn {
            producer.begin_transaction()?;
            state.in_txn = true;
        }
        // Records arrive grouped by partition in offset order: runs of one partition go to
        // their task as one batch.
        let mut i = 0;
        while i < records.len() {
            let (topic, partition) = (records[i].topic.clone(), records[i].partition);
            let mut j = i;
            let mut batch = Vec::new();
            while j < records.len()
                && records[j].partition == partition
                && records[j].topic == topic
            {
                let r = &records[j];
                batch.push(RawRecord {
                    partition: r.partition,
                    offset: r.offset,
                    timestamp: r.timestamp,
                    key: r.key.clone(),
                    value: r.value.clone(),
                    headers: r.headers.clone(),
                });
                j += 1;
            }
            let last = batch.last().map(|r| r.offset).unwrap_or(-1);
            let task = state
                .tasks
                .values_mut()
                .find(|t| t.id().partition == partition && t.topic_index(&topic).is_some());
            match task {
                Some(task) => {
                    let idx = task.topic_index(&topic).unwrap_or(0);
                    task.process(idx, &batch)
                        .map_err(|e| with_origin(e, &topic, partition, last))?;
                    for r in task.take_output() {
                        // Delivery is checked by the flush or transaction commit that ends the commit.
                        drop(producer.send(r).await?);
                    }
                }
                None => {
                    tracing::warn!(topic = %topic, partition, "records for a partition without a task");
                }
            }
            state
                .offsets
                .insert(TopicPartition::new(&*topic, partition), last + 1);
            i = j;
        }
        // Wall-clock punctuation.
        let now = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
        for task in state.tasks.values_mut() {
            task.wall_clock(now)?;
            let out = task.take_output();
            if !out.is_empty() && self.eos() && !state.in_txn {
                producer.begin_transaction()?;
                state.in_txn = true;
            }
            for r in out {
                // Delivery is checked by the flush or transaction commit that ends the commit.
                drop(producer.send(r).await?);
            }
        }
        let mut m = self.metrics.lock();
        let mut total = TaskMetrics::default();
        for t in state.tasks.values() {
            let tm = t.metrics();
            total.process_total += tm.process_total;
            total.dropped_late_records += tm.dropped_late_records;
            total.dropped_records += tm.dropped_records;
        }
        m.tasks = total;
        Ok(())
    }

    /// Flushes the tasks, sends their output and changelogs, then commits the input offsets
    /// (in the transaction under exactly-once).
    async fn commit(
        &self,
        consumer: &mut C::Consumer,
        producer: &C::Producer,
        state: &mut Tasks,
    ) -> Result<()> {
        let t0 = Instant::now();
        let mut out = Vec::new();
        for task in state.tasks.values_mut() {
            task.flush()?;
            out.extend(task.take_output());
        }
        if !out.is_empty() && self.eos() && !state.in_txn {
            producer.begin_transaction()?;
            state.in_txn = true;
        }
        for r in out {
            // Delivery is checked by the flush or transaction commit that ends the commit.
            drop(producer.send(r).await?);
        }
        let offsets: Vec<(TopicPartition, i64)> =
            std::mem::take(&mut state.offsets).into_iter().collect();
        if self.eos() {
            if state.in_txn {
                if !offsets.is_empty() {
                    let meta = consumer
                        .group_metadata()
                        .ok_or(Error::NotRunning("without group metadata"))?;
                    producer.send_offsets_to_transaction(offsets, &meta).await?;
                }
                producer.commit_transaction().await?;
                state.in_txn = false;
            }
        } else {
            producer.flush().await?;
            if !offsets.is_empty() {
                consumer.commit_sync(Some(offsets)).await?;
            }
        }
        let mut m = self.metrics.lock();
        m.commits += 1;
        m.commit_micros += t0.elapsed().as_micros() as u64;
        Ok(())
    }

    /// Creates the tasks of newly assigned partitions, restoring their stores first.
    async fn create_tasks(&self, state: &mut Tasks, tps: &[TopicPartition]) -> Result<()> {
        let app: Arc<str> = Arc::from(self.config.application_id.as_str());
        let mut wanted: Vec<TaskId> = Vec::new();
        for tp in tps {
            for st in &self.topology.subtopologies {
                if st
                    .topics
                    .iter()
                    .any(|t| *resolve_topic(t, &app) == *tp.topic)
                {
                    let id = TaskId {
                        subtopology: st.id,
                        partition: tp.partition,
                    };
                    if !wanted.contains(&id) && !state.tasks.contains_key(&id) {
                        wanted.push(id);
                    }
                }
            }
        }
        let state_dir = self.config.state_dir.join(&*app);
        for id in wanted {
            let mut task = Task::new(TaskSetup {
                topology: &self.topology,
                subtopology: id.subtopology,
                partition: id.partition,
                application_id: app.clone(),
                state_dir: Some(&state_dir),
                on_deserialization_error: self.config.on_deserialization_error,
                partition_counts: (*self.partition_counts).clone(),
                wall_clock: 0,
            })?;
            self.restore(&mut task).await?;
            task.init()?;
            state.tasks.insert(id, task);
        }
        Ok(())
    }

    /// Reads each changelog of the task into its store, up to the changelog's end: from the
    /// offset in the task's checkpoint file for a RocksDB store that has one (written at a
    /// clean close), else from the beginning. The checkpoint is deleted once read, so a crash
    /// before the next clean close restores everything again (as Kafka Streams does under
    /// exactly-once).
    async fn restore(&self, task: &mut Task) -> Result<()> {
        let changelogs = task.changelogs();
        if changelogs.is_empty() {
            return Ok(());
        }
        let checkpoint = task.dir.as_deref().map(Checkpoint::in_dir);
        let checkpointed = match &checkpoint {
            Some(c) => match c.read() {
                Ok(o) => o,
                Err(e) => {
                    tracing::warn!(error = %e, task = %task.id(), "ignoring an unreadable checkpoint: restoring from the beginning");
                    Default::default()
                }
            },
            None => Default::default(),
        };
        if let Some(c) = &checkpoint {
            c.delete()?;
        }
        let mut consumer = self.client.consumer(self.consumer_config(false)?)?;
        let partition = task.id().partition;
        for (store, topic, persistent) in changelogs {
            let tp = TopicPartition::new(&*topic, partition);
            let end = consumer
                .end_offsets(std::slice::from_ref(&tp))
                .await?
                .first()
                .map(|(_, o)| *o)
                .unwrap_or(0);
            let from = if persistent {
                checkpointed.get(&tp).copied().unwrap_or(0)
            } else {
                0
            };
            if from >= end {
                continue;
            }
            consumer.assign(vec![tp.clone()])?;
            if from > 0 {
                consumer.seek(&tp, from)?;
            } else {
                consumer
                    .seek_to_beginning(std::slice::from_ref(&tp))
                    .await?;
            }
            let mut restored = 0u64;
            let deadline = Instant::now() + Duration::from_secs(600);
            loop {
                let recs = consumer.poll(Duration::from_millis(200)).await?;
                let batch: Vec<(bytes::Bytes, Option<bytes::Bytes>)> = recs
                    .iter()
                    .filter_map(|r| r.key.clone().map(|k| (k, r.value.clone())))
                    .collect();
                restored += batch.len() as u64;
                task.restore(&store, &batch)?;
                let pos = consumer.position(&tp).unwrap_or(0);
                if pos >= end {
                    break;
                }
                if Instant::now() > deadline {
                    return Err(Error::store(
                        &store,
                        format!("restoring {topic} did not reach offset {end} in 10 minutes"),
                    ));
                }
            }
            tracing::info!(store = %store, changelog = %topic, partition, from, records = restored, "restored");
            self.metrics.lock().restored_records += restored;
        }
        let _ = consumer.close().await;
        Ok(())
    }

    /// Closes tasks cleanly after a commit: flushes their stores and writes their checkpoint
    /// files (the changelogs' end offsets, which the stores now hold).
    async fn close_tasks(&self, consumer: &mut C::Consumer, state: &mut Tasks, ids: Vec<TaskId>) {
        for id in ids {
            let Some(mut task) = state.tasks.remove(&id) else {
                continue;
            };
            if let Err(e) = task.flush() {
                tracing::warn!(error = %e, task = %id, "flushing a closing task");
                continue;
            }
            let Some(dir) = task.dir.clone() else {
                continue;
            };
            let tps: Vec<TopicPartition> = task
                .changelogs()
                .into_iter()
                .filter(|(_, _, persistent)| *persistent)
                .map(|(_, topic, _)| TopicPartition::new(&*topic, id.partition))
                .collect();
            if tps.is_empty() {
                continue;
            }
            match consumer.end_offsets(&tps).await {
                Ok(ends) => {
                    let offsets: crate::state::checkpoint::Offsets = ends.into_iter().collect();
                    if let Err(e) = Checkpoint::in_dir(&dir).write(&offsets) {
                        tracing::warn!(error = %e, task = %id, "writing the checkpoint");
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, task = %id, "no checkpoint: the changelogs' end offsets are unknown")
                }
            }
        }
    }
}

fn tasks_of(state: &Tasks, tps: &[TopicPartition]) -> Vec<TaskId> {
    state
        .tasks
        .iter()
        .filter(|(_, t)| {
            tps.iter()
                .any(|tp| tp.partition == t.id().partition && t.topic_index(&tp.topic).is_some())
        })
        .map(|(id, _)| *id)
        .collect()
}

fn drop_tasks(state: &mut Tasks, tps: &[TopicPartition]) {
    for id in tasks_of(state, tps) {
        if let Some(mut t) = state.tasks.remove(&id) {
            let _ = t.flush();
        }
    }
    state.offsets.retain(|tp, _| !tps.contains(tp));
}

fn with_origin(e: Error, topic: &str, partition: i32, offset: i64) -> Error {
    match e {
        Error::Processing { .. } | Error::Deserialize { .. } => e,
        other => Error::Processing {
            processor: "task".into(),
            topic: topic.to_owned(),
            partition,
            offset,
            message: other.to_string(),
        },
    }
}
