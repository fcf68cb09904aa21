//! Distributed workers (Kafka Connect's `DistributedHerder`): connector configs, source
//! offsets and statuses in compacted topics, connectors and tasks shared by the workers of one
//! `group.id`.
//!
//! ```text
//! config.storage.topic  connector-<name> {"properties"}   target-state-<name> {"state"}
//!                       task-<name>-<id> {"properties"}   commit-<name> {"tasks": n}
//!                       restart-connector-<name> {"include-tasks", "only-failed"}
//!                       restart-task-<name>-<id> {} (Sluice's: Kafka forwards it over REST)
//! offset.storage.topic  ["<name>", {partition}] -> {offset}
//! status.storage.topic  status-connector-<name>, status-task-<name>-<id>
//!                       {"state", "trace", "worker_id", "generation"};
//!                       topic-<topic>-connector-<name> {"topic": {...}}
//! ```
//!
//! Every worker reads the three topics from the beginning on start and tails them. The
//! workers of a `group.id` are members of one consumer group (through the client's consumer,
//! subscribed to the config topic, its partitions paused: membership is all it is for); after
//! each rebalance each worker describes the group and takes the sorted, distinct client ids
//! (each worker's id) as the members. The plan is then the same on every worker: connectors
//! (sorted by name) and then tasks (by connector and id) dealt round-robin over the members.
//! Each worker runs what the plan gives it, and stops what it no longer gives it.
//!
//! A connector's owner starts it, asks it for its task configs, and writes them to the config
//! topic when they changed; the tasks' owners start them from there. REST calls on any worker
//! write to the config topic (create, reconfigure, pause, resume, stop, delete, restart) and
//! read statuses from the status topic, so they act on the cluster.
//!
//! Handover: a worker that gives a task up stops it (its offsets committed) and writes its
//! status UNASSIGNED; the new owner waits for that (while the old owner is still a member, up
//! to `task.shutdown.graceful.timeout.ms` plus a second) before starting it, so a task runs on
//! one worker at a time when workers join or leave cleanly. A worker that dies leaves its tasks
//! to the others once the group expires its session (`session.timeout.ms`); they resume from
//! the last offsets it stored (at least once).

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use serde_json::{Value as Json, json};
use sluice_client::config::ConsumerConfig;
use sluice_client::{Admin, Client, Consumer, ConsumerRecord, RebalanceEvent};
use tokio::sync::{Notify, oneshot, watch};

use crate::config::{Config, Props, WorkerConfig};
use crate::connector::{ConnectorType, DynConnector, Plugins};
use crate::error::{Error, Result};
use crate::herder::{
    alter_connector_offsets, checked_config, common_config_def, connector_offsets, not_stopped,
    reset_connector_offsets, validate_config,
};
use crate::offsets::OffsetStore;
use crate::rest::ConnectApi;
use crate::topic_log::{TopicLog, TopicOffsetStore, record_json, record_key};
use crate::worker::{State, TargetState, TaskContext, TaskShared, spawn_task, trace};

/// How often statuses of what runs here are compared with what was written, and written.
const STATUS_EVERY: Duration = Duration::from_millis(250);
/// How often the group is described again, to catch a change between rebalances.
const DESCRIBE_EVERY: Duration = Duration::from_secs(3);

/// Deals connectors, then tasks, round-robin over the sorted members: the same plan on every
/// worker that sees the same members and configs. Returns the owner of each connector and task.
pub fn assign(
    members: &[String],
    connectors: &[String],
    tasks: &[(String, usize)],
) -> (BTreeMap<String, String>, BTreeMap<(String, usize), String>) {
    let mut sorted: Vec<&String> = members.iter().collect();
    sorted.sort();
    sorted.dedup();
    let mut c = BTreeMap::new();
    let mut t = BTreeMap::new();
    if sorted.is_empty() {
        return (c, t);
    }
    let mut names: Vec<&String> = connectors.iter().collect();
    names.sort();
    let mut i = 0usize;
    for n in names {
        c.insert(n.clone(), sorted[i % sorted.len()].clone());
        i += 1;
    }
    let mut ids: Vec<&(String, usize)> = tasks.iter().collect();
    ids.sort();
    for id in ids {
        t.insert(id.clone(), sorted[i % sorted.len()].clone());
        i += 1;
    }
    (c, t)
}

/// A restart asked through the config topic.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Restart {
    Connector {
        name: String,
        include_tasks: bool,
        only_failed: bool,
    },
    Task {
        name: String,
        id: usize,
    },
}

/// The cluster's connectors, as the config topic says.
#[derive(Debug, Default)]
struct ClusterConfig {
    connectors: BTreeMap<String, Props>,
    targets: BTreeMap<String, TargetState>,
    tasks: BTreeMap<String, Vec<Props>>,
    pending: BTreeMap<String, BTreeMap<usize, Props>>,
    restarts: Vec<Restart>,
    /// Restart records are acted on only once the topic has been read to its end on start.
    live: bool,
}

impl ClusterConfig {
    fn target(&self, name: &str) -> TargetState {
        self.targets
            .get(name)
            .copied()
            .unwrap_or(TargetState::Started)
    }

    fn kind(&self, plugins: &Plugins, name: &str) -> Result<ConnectorType> {
        let props = self.connectors.get(name).ok_or_else(|| not_found(name))?;
        let class = props.get("connector.class").cloned().unwrap_or_default();
        Ok(plugins.get(&class)?.kind)
    }

    /// Folds one record of the config topic in.
    fn apply(&mut self, key: &str, value: Option<Json>) -> std::result::Result<(), String> {
        let props = |v: &Json| -> std::result::Result<Props, String> {
            let Some(Json::Object(m)) = v.get("properties") else {
                return Err("no \"properties\" object".into());
            };
            Ok(m.iter()
                .map(|(k, v)| {
                    let v = match v {
                        Json::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    (k.clone(), v)
                })
                .collect())
        };
        if let Some(name) = key.strip_prefix("connector-") {
            match value {
                Some(v) => {
                    self.connectors.insert(name.to_owned(), props(&v)?);
                }
                None => {
                    self.connectors.remove(name);
                    self.targets.remove(name);
                    self.tasks.remove(name);
                    self.pending.remove(name);
                }
            }
        } else if let Some(name) = key.strip_prefix("target-state-") {
            match value {
                Some(v) => {
                    let s = v
                        .get("state.v2")
                        .or_else(|| v.get("state"))
                        .and_then(Json::as_str)
                        .unwrap_or_default();
                    let t = match s {
                        "STARTED" => TargetState::Started,
                        "PAUSED" => TargetState::Paused,
                        "STOPPED" => TargetState::Stopped,
                        other => return Err(format!("unknown target state {other:?}")),
                    };
                    self.targets.insert(name.to_owned(), t);
                }
                None => {
                    self.targets.remove(name);
                }
            }
        } else if let Some(rest) = key.strip_prefix("task-") {
            let (name, id) = split_id(rest).ok_or("not task-<connector>-<id>")?;
            match value {
                Some(v) => {
                    self.pending
                        .entry(name.to_owned())
                        .or_default()
                        .insert(id, props(&v)?);
                }
                None => {
                    if let Some(p) = self.pending.get_mut(name) {
                        p.remove(&id);
                    }
                }
            }
        } else if let Some(name) = key.strip_prefix("commit-") {
            let Some(v) = value else {
                return Ok(());
            };
            let n = v
                .get("tasks")
                .and_then(Json::as_u64)
                .ok_or("no \"tasks\" count")? as usize;
            let pending = self.pending.remove(name).unwrap_or_default();
            let configs: Option<Vec<Props>> = (0..n).map(|i| pending.get(&i).cloned()).collect();
            match configs {
                Some(c) => {
                    self.tasks.insert(name.to_owned(), c);
                }
                None => return Err(format!("commit of {n} tasks without all their configs")),
            }
        } else if let Some(name) = key.strip_prefix("restart-connector-") {
            if let (true, Some(v)) = (self.live, value) {
                self.restarts.push(Restart::Connector {
                    name: name.to_owned(),
                    include_tasks: v["include-tasks"].as_bool().unwrap_or(false),
                    only_failed: v["only-failed"].as_bool().unwrap_or(false),
                });
            }
        } else if let Some(rest) = key.strip_prefix("restart-task-") {
            let (name, id) = split_id(rest).ok_or("not restart-task-<connector>-<id>")?;
            if self.live && value.is_some() {
                self.restarts.push(Restart::Task {
                    name: name.to_owned(),
                    id,
                });
            }
        }
        Ok(())
    }
}

/// `name-3` -> (`name`, 3).
fn split_id(s: &str) -> Option<(&str, usize)> {
    let (name, id) = s.rsplit_once('-')?;
    Some((name, id.parse().ok()?))
}

/// A status as the status topic holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct StatusRecord {
    state: String,
    trace: Option<String>,
    worker_id: String,
    generation: i32,
}

impl StatusRecord {
    fn json(&self) -> Json {
        json!({"state": self.state, "trace": self.trace, "worker_id": self.worker_id, "generation": self.generation})
    }

    fn parse(v: &Json) -> Option<StatusRecord> {
        Some(StatusRecord {
            state: v["state"].as_str()?.to_owned(),
            trace: v["trace"].as_str().map(str::to_owned),
            worker_id: v["worker_id"].as_str().unwrap_or_default().to_owned(),
            generation: v["generation"]
                .as_i64()
                .and_then(|g| i32::try_from(g).ok())
                .unwrap_or(-1),
        })
    }
}

/// Statuses and active topics of the cluster, as the status topic says.
#[derive(Debug, Default)]
struct Statuses {
    connectors: BTreeMap<String, StatusRecord>,
    tasks: BTreeMap<(String, usize), StatusRecord>,
    topics: BTreeMap<String, BTreeSet<String>>,
}

/// Whether `new` replaces `old`: Kafka's rule, a status of another worker from an older
/// generation is stale.
fn newer(old: Option<&StatusRecord>, new: &StatusRecord) -> bool {
    match old {
        Some(o) => o.worker_id == new.worker_id || new.generation >= o.generation,
        None => true,
    }
}

impl Statuses {
    fn apply(&mut self, key: &str, value: Option<Json>) -> std::result::Result<(), String> {
        if let Some(name) = key.strip_prefix("status-connector-") {
            match value
                .as_ref()
                .map(|v| StatusRecord::parse(v).ok_or("not a status"))
            {
                None => {
                    self.connectors.remove(name);
                }
                Some(r) => {
                    let r = r?;
                    if newer(self.connectors.get(name), &r) {
                        self.connectors.insert(name.to_owned(), r);
                    }
                }
            }
        } else if let Some(rest) = key.strip_prefix("status-task-") {
            let (name, id) = split_id(rest).ok_or("not status-task-<connector>-<id>")?;
            let k = (name.to_owned(), id);
            match value
                .as_ref()
                .map(|v| StatusRecord::parse(v).ok_or("not a status"))
            {
                None => {
                    self.tasks.remove(&k);
                }
                Some(r) => {
                    let r = r?;
                    if newer(self.tasks.get(&k), &r) {
                        self.tasks.insert(k, r);
                    }
                }
            }
        } else if let Some(rest) = key.strip_prefix("topic-") {
            let (topic, name) = rest
                .split_once("-connector-")
                .ok_or("not topic-<topic>-connector-<connector>")?;
            let set = self.topics.entry(name.to_owned()).or_default();
            if value.is_some() {
                set.insert(topic.to_owned());
            } else {
                set.remove(topic);
                if set.is_empty() {
                    self.topics.remove(name);
                }
            }
        }
        Ok(())
    }
}

/// The workers of the group, as last described.
#[derive(Debug, Default, Clone)]
struct Membership {
    generation: i32,
    members: Vec<String>,
}

/// A connector run on this worker.
struct LocalConnector {
    props: Props,
    target: TargetState,
    connector: Option<Box<dyn DynConnector>>,
    state: State,
    trace: Option<String>,
}

/// A task run on this worker.
struct LocalTask {
    connector_props: Props,
    task_props: Props,
    target: TargetState,
    control: watch::Sender<TargetState>,
    join: Option<tokio::task::JoinHandle<()>>,
    shared: Arc<TaskShared>,
    topics: Arc<Mutex<BTreeSet<String>>>,
}

/// What runs here, and what of it was last written to the status topic.
#[derive(Default)]
struct Local {
    connectors: BTreeMap<String, LocalConnector>,
    tasks: BTreeMap<(String, usize), LocalTask>,
    published: BTreeMap<String, (String, Option<String>)>,
    published_topics: BTreeSet<(String, String)>,
    waiting: BTreeMap<(String, usize), Instant>,
}

struct Inner<C: Client> {
    client: C,
    worker: Arc<WorkerConfig>,
    plugins: Plugins,
    worker_id: String,
    config_log: TopicLog<C>,
    status_log: TopicLog<C>,
    offsets: Arc<TopicOffsetStore<C>>,
    cluster: Arc<Mutex<ClusterConfig>>,
    statuses: Arc<Mutex<Statuses>>,
    membership: Mutex<Membership>,
    local: tokio::sync::Mutex<Local>,
    wake: Arc<Notify>,
    stop_work: watch::Sender<bool>,
    stop_membership: watch::Sender<bool>,
    loops: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    membership_loop: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

/// A distributed worker's herder (cheap to clone: a handle).
pub struct DistributedHerder<C: Client> {
    inner: Arc<Inner<C>>,
}

impl<C: Client> Clone for DistributedHerder<C> {
    fn clone(&self) -> Self {
        DistributedHerder {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<C: Client> std::fmt::Debug for DistributedHerder<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DistributedHerder")
            .field("worker_id", &self.inner.worker_id)
            .finish_non_exhaustive()
    }
}

fn not_found(name: &str) -> Error {
    Error::NotFound(format!("Connector {name}"))
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn required<'a>(key: &str, v: &'a Option<String>) -> Result<&'a str> {
    v.as_deref().ok_or_else(|| {
        Error::config(
            "worker",
            key,
            "a distributed worker needs it (Kafka's connect-distributed.properties has it)",
        )
    })
}

fn target_json(t: TargetState) -> Json {
    match t {
        TargetState::Started => json!({"state": "STARTED", "state.v2": "STARTED"}),
        TargetState::Paused => json!({"state": "PAUSED", "state.v2": "PAUSED"}),
        // Kafka writes PAUSED for workers that predate STOPPED, and STOPPED as state.v2.
        TargetState::Stopped => json!({"state": "PAUSED", "state.v2": "STOPPED"}),
    }
}

fn task_configs_records(name: &str, configs: &[Props]) -> Vec<(String, Option<Json>)> {
    let mut out: Vec<(String, Option<Json>)> = configs
        .iter()
        .enumerate()
        .map(|(i, c)| (format!("task-{name}-{i}"), Some(json!({"properties": c}))))
        .collect();
    out.push((
        format!("commit-{name}"),
        Some(json!({"tasks": configs.len()})),
    ));
    out
}

impl<C: Client> DistributedHerder<C> {
    /// Opens the config, offset and status topics (creating them compacted when missing),
    /// reads them, joins the group and starts running what the plan gives this worker.
    pub async fn start(
        client: C,
        worker: Arc<WorkerConfig>,
        plugins: Plugins,
        worker_id: String,
    ) -> Result<Self> {
        let group = required("group.id", &worker.group_id)?.to_owned();
        let config_topic = required("config.storage.topic", &worker.config_topic)?.to_owned();
        let offset_topic = required("offset.storage.topic", &worker.offset_topic)?.to_owned();
        let status_topic = required("status.storage.topic", &worker.status_topic)?.to_owned();
        let wake = Arc::new(Notify::new());
        let cluster: Arc<Mutex<ClusterConfig>> = Arc::default();
        let statuses: Arc<Mutex<Statuses>> = Arc::default();
        let (c, w) = (Arc::clone(&cluster), Arc::clone(&wake));
        let config_log = TopicLog::open(
            &client,
            &config_topic,
            1,
            &worker_id,
            Box::new(move |r: &ConsumerRecord| {
                let applied = record_key(r)
                    .and_then(|k| Ok((k, record_json(r)?)))
                    .and_then(|(k, v)| c.lock().apply(k, v).map_err(|e| format!("{k}: {e}")));
                if let Err(e) = applied {
                    tracing::warn!(
                        "config topic {}-{} offset {}: {e}; skipped",
                        r.topic,
                        r.partition,
                        r.offset
                    );
                }
                w.notify_one();
            }),
        )
        .await?;
        cluster.lock().live = true;
        let (s, w) = (Arc::clone(&statuses), Arc::clone(&wake));
        let status_log = TopicLog::open(
            &client,
            &status_topic,
            worker.status_partitions,
            &worker_id,
            Box::new(move |r: &ConsumerRecord| {
                let applied = record_key(r)
                    .and_then(|k| Ok((k, record_json(r)?)))
                    .and_then(|(k, v)| s.lock().apply(k, v).map_err(|e| format!("{k}: {e}")));
                if let Err(e) = applied {
                    tracing::warn!(
                        "status topic {}-{} offset {}: {e}; skipped",
                        r.topic,
                        r.partition,
                        r.offset
                    );
                }
                w.notify_one();
            }),
        )
        .await?;
        let offsets = Arc::new(
            TopicOffsetStore::open(&client, &offset_topic, worker.offset_partitions, &worker_id)
                .await?,
        );
        let (stop_work, _) = watch::channel(false);
        let (stop_membership, _) = watch::channel(false);
        let herder = DistributedHerder {
            inner: Arc::new(Inner {
                client: client.clone(),
                worker: Arc::clone(&worker),
                plugins,
                worker_id: worker_id.clone(),
                config_log,
                status_log,
                offsets,
                cluster,
                statuses,
                membership: Mutex::new(Membership::default()),
                local: tokio::sync::Mutex::new(Local::default()),
                wake,
                stop_work,
                stop_membership,
                loops: Mutex::new(Vec::new()),
                membership_loop: Mutex::new(None),
            }),
        };
        let consumer = client.consumer(ConsumerConfig::from_pairs([
            ("group.id", group.clone()),
            ("client.id", worker_id.clone()),
            ("enable.auto.commit", "false".to_owned()),
            ("auto.offset.reset", "latest".to_owned()),
            ("session.timeout.ms", worker.session_timeout_ms.to_string()),
            (
                "heartbeat.interval.ms",
                worker.heartbeat_interval_ms.to_string(),
            ),
            (
                "max.poll.interval.ms",
                worker.rebalance_timeout_ms.to_string(),
            ),
        ])?)?;
        let h = herder.clone();
        *herder.inner.membership_loop.lock() = Some(tokio::spawn(async move {
            h.membership_loop(consumer, group, config_topic).await;
        }));
        let h = herder.clone();
        let reconciler = tokio::spawn(async move { h.reconcile_loop().await });
        let h = herder.clone();
        let publisher = tokio::spawn(async move { h.status_loop().await });
        herder.inner.loops.lock().extend([reconciler, publisher]);
        tracing::info!(worker_id, "distributed worker started");
        Ok(herder)
    }

    /// The worker's id (`host:port` of its REST listener).
    pub fn worker_id(&self) -> &str {
        &self.inner.worker_id
    }

    /// The workers of the group, as last described (sorted worker ids).
    pub fn members(&self) -> Vec<String> {
        self.inner.membership.lock().members.clone()
    }

    /// Connectors and tasks running on this worker now: (connector, task id or `None` for
    /// the connector itself).
    pub async fn running_here(&self) -> Vec<(String, Option<usize>)> {
        let local = self.inner.local.lock().await;
        let mut out: Vec<(String, Option<usize>)> =
            local.connectors.keys().map(|n| (n.clone(), None)).collect();
        out.extend(local.tasks.keys().map(|(n, i)| (n.clone(), Some(*i))));
        out
    }

    async fn membership_loop(&self, mut consumer: C::Consumer, group: String, topic: String) {
        let mut stop = self.inner.stop_membership.subscribe();
        if let Err(e) = consumer.subscribe(vec![topic]) {
            tracing::error!(error = %e, "cannot join the worker group");
            return;
        }
        let admin = match self.inner.client.admin() {
            Ok(a) => a,
            Err(e) => {
                tracing::error!(error = %e, "no admin client for the worker group");
                return;
            }
        };
        let mut describe = false;
        let mut last_describe = Instant::now();
        loop {
            if *stop.borrow() {
                break;
            }
            let polled = tokio::select! {
                r = consumer.poll(Duration::from_millis(100)) => r,
                _ = stop.changed() => break,
            };
            if let Err(e) = polled {
                tracing::warn!(error = %e, "the worker group's poll failed; retrying");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            for ev in consumer.rebalance_events() {
                if let RebalanceEvent::Assigned(_) = ev {
                    let a = consumer.assignment();
                    consumer.pause(&a);
                    describe = true;
                }
            }
            if describe || last_describe.elapsed() >= DESCRIBE_EVERY {
                last_describe = Instant::now();
                let generation = consumer
                    .group_metadata()
                    .map(|m| m.generation_id)
                    .unwrap_or(-1);
                match admin.describe_group(&group).await {
                    Ok(d) => {
                        let mut members: Vec<String> =
                            d.members.into_iter().map(|m| m.client_id).collect();
                        members.sort();
                        members.dedup();
                        let mut m = self.inner.membership.lock();
                        let changed = m.members != members || m.generation != generation;
                        if changed {
                            tracing::info!(?members, generation, "workers of the group");
                            m.members = members;
                            m.generation = generation;
                            self.inner.wake.notify_one();
                        }
                        describe = false;
                    }
                    Err(e) => tracing::warn!(error = %e, "describing the worker group failed"),
                }
            }
        }
        if let Err(e) = consumer.close().await {
            tracing::warn!(error = %e, "leaving the worker group");
        }
    }

    async fn reconcile_loop(&self) {
        let mut stop = self.inner.stop_work.subscribe();
        loop {
            if *stop.borrow() {
                break;
            }
            if let Err(e) = self.reconcile().await {
                tracing::warn!(error = %e, "applying the cluster's plan failed; retrying");
            }
            tokio::select! {
                _ = self.inner.wake.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                _ = stop.changed() => break,
            }
        }
    }

    async fn status_loop(&self) {
        let mut stop = self.inner.stop_work.subscribe();
        loop {
            tokio::select! {
                _ = tokio::time::sleep(STATUS_EVERY) => {}
                _ = stop.changed() => break,
            }
            if *stop.borrow() {
                break;
            }
            let mut local = self.inner.local.lock().await;
            if let Err(e) = self.publish(&mut local).await {
                tracing::warn!(error = %e, "writing statuses failed; retrying");
            }
        }
    }

    /// Writes the statuses of what runs here that changed since last written, and the topics
    /// its tasks use.
    async fn publish(&self, local: &mut Local) -> Result<()> {
        let generation = self.inner.membership.lock().generation;
        let mut writes = Vec::new();
        let mut now: Vec<(String, (String, Option<String>))> = Vec::new();
        for (name, c) in &local.connectors {
            now.push((
                format!("status-connector-{name}"),
                (c.state.as_str().to_owned(), c.trace.clone()),
            ));
        }
        let mut topics = Vec::new();
        for ((name, id), t) in &local.tasks {
            let (state, tr) = t.shared.status();
            if state != State::Unassigned {
                now.push((
                    format!("status-task-{name}-{id}"),
                    (state.as_str().to_owned(), tr),
                ));
            }
            for topic in t.topics.lock().iter() {
                if !local
                    .published_topics
                    .contains(&(name.clone(), topic.clone()))
                {
                    topics.push((name.clone(), *id, topic.clone()));
                }
            }
        }
        let changed: Vec<(String, (String, Option<String>))> = now
            .into_iter()
            .filter(|(k, v)| local.published.get(k) != Some(v))
            .collect();
        for (k, (state, tr)) in &changed {
            let r = StatusRecord {
                state: state.clone(),
                trace: tr.clone(),
                worker_id: self.inner.worker_id.clone(),
                generation,
            };
            writes.push((k.clone(), Some(r.json())));
        }
        for (name, id, topic) in &topics {
            writes.push((
                format!("topic-{topic}-connector-{name}"),
                Some(
                    json!({"topic": {"name": topic, "connector": name, "task": format!("{name}-{id}"), "discoverTimestamp": now_ms()}}),
                ),
            ));
        }
        if writes.is_empty() {
            return Ok(());
        }
        self.inner.status_log.send_all(writes).await?;
        for (k, v) in changed {
            local.published.insert(k, v);
        }
        for (name, _, topic) in topics {
            local.published_topics.insert((name, topic));
        }
        Ok(())
    }

    /// Writes the status of something this worker gave up or whose connector was deleted:
    /// UNASSIGNED (so its next owner may start it), or a tombstone.
    async fn release(&self, local: &mut Local, key: String, deleted: bool) {
        local.published.remove(&key);
        let value = if deleted {
            None
        } else {
            let generation = self.inner.membership.lock().generation;
            Some(
                StatusRecord {
                    state: State::Unassigned.as_str().to_owned(),
                    trace: None,
                    worker_id: self.inner.worker_id.clone(),
                    generation,
                }
                .json(),
            )
        };
        if let Err(e) = self.inner.status_log.send(key.clone(), value).await {
            tracing::warn!(key, error = %e, "writing a released status failed");
        }
    }

    async fn stop_task(&self, mut t: LocalTask) {
        let _ = t.control.send(TargetState::Stopped);
        if let Some(mut join) = t.join.take() {
            let wait = Duration::from_millis(self.inner.worker.task_shutdown_timeout_ms.max(1));
            if tokio::time::timeout(wait, &mut join).await.is_err() {
                tracing::warn!(
                    "a task did not stop within task.shutdown.graceful.timeout.ms; aborting it"
                );
                join.abort();
            }
        }
    }

    fn spawn_task(
        &self,
        name: &str,
        id: usize,
        connector_props: Props,
        task_props: Props,
        target: TargetState,
    ) -> Result<LocalTask> {
        let class = connector_props
            .get("connector.class")
            .cloned()
            .unwrap_or_default();
        let plugin = self.inner.plugins.get(&class)?;
        let (tx, rx) = watch::channel(target);
        let topics: Arc<Mutex<BTreeSet<String>>> = Arc::default();
        let shared = Arc::new(TaskShared::new(Arc::clone(&topics)));
        let offsets: Arc<dyn OffsetStore> = self.inner.offsets.clone();
        let ctx = TaskContext {
            client: self.inner.client.clone(),
            connector: name.to_owned(),
            task_id: id,
            connector_props: connector_props.clone(),
            task_props: task_props.clone(),
            factory: plugin.task(),
            worker: Arc::clone(&self.inner.worker),
            offsets,
            control: rx,
            shared: Arc::clone(&shared),
        };
        tracing::info!(connector = %name, task = id, "starting task");
        Ok(LocalTask {
            connector_props,
            task_props,
            target,
            control: tx,
            join: Some(spawn_task(ctx)),
            shared,
            topics,
        })
    }

    /// Starts a connector here: its state, and its task configs written when they changed.
    async fn start_connector(
        &self,
        name: &str,
        props: &Props,
        target: TargetState,
        committed: Option<&Vec<Props>>,
    ) -> LocalConnector {
        let mut lc = LocalConnector {
            props: props.clone(),
            target,
            connector: None,
            state: State::Stopped,
            trace: None,
        };
        if target == TargetState::Stopped {
            if committed.is_some_and(|c| !c.is_empty())
                && let Err(e) = self
                    .inner
                    .config_log
                    .send_all(task_configs_records(name, &[]))
                    .await
            {
                tracing::warn!(connector = %name, error = %e, "writing no task configs failed");
            }
            return lc;
        }
        let class = props.get("connector.class").cloned().unwrap_or_default();
        let started = self.inner.plugins.get(&class).and_then(|plugin| {
            let def = common_config_def(plugin.kind).merge(plugin.config_def());
            let mut connector = plugin.connector();
            let max_tasks = props
                .get("tasks.max")
                .and_then(|t| t.trim().parse::<usize>().ok())
                .unwrap_or(1)
                .max(1);
            Config::new(name, props.clone(), def)
                .and_then(|c| connector.start(c))
                .and_then(|()| connector.task_configs(max_tasks))
                .map(|mut configs| {
                    configs.truncate(max_tasks);
                    (connector, configs)
                })
        });
        match started {
            Ok((connector, configs)) => {
                lc.connector = Some(connector);
                lc.state = if target == TargetState::Paused {
                    State::Paused
                } else {
                    State::Running
                };
                tracing::info!(connector = %name, tasks = configs.len(), "connector started");
                if committed != Some(&configs)
                    && let Err(e) = self
                        .inner
                        .config_log
                        .send_all(task_configs_records(name, &configs))
                        .await
                {
                    tracing::warn!(connector = %name, error = %e, "writing task configs failed");
                }
            }
            Err(e) => {
                tracing::error!(connector = %name, error = %e, "connector failed to start");
                lc.state = State::Failed;
                lc.trace = Some(trace(&e));
            }
        }
        lc
    }

    /// Runs what the plan gives this worker and stops the rest.
    async fn reconcile(&self) -> Result<()> {
        let me = self.inner.worker_id.clone();
        let mut local = self.inner.local.lock().await;
        let (connectors, targets, tasks, restarts) = {
            let mut c = self.inner.cluster.lock();
            (
                c.connectors.clone(),
                c.targets.clone(),
                c.tasks.clone(),
                std::mem::take(&mut c.restarts),
            )
        };
        let target = |n: &str| targets.get(n).copied().unwrap_or(TargetState::Started);
        let members = self.inner.membership.lock().members.clone();
        let names: Vec<String> = connectors.keys().cloned().collect();
        let ids: Vec<(String, usize)> = tasks
            .iter()
            .filter(|(n, _)| connectors.contains_key(*n) && target(n) != TargetState::Stopped)
            .flat_map(|(n, t)| (0..t.len()).map(move |i| (n.clone(), i)))
            .collect();
        let (plan_c, plan_t) = if members.contains(&me) {
            assign(&members, &names, &ids)
        } else {
            (BTreeMap::new(), BTreeMap::new())
        };

        // Restarts asked through the config topic: what restarts is stopped here and
        // started again below.
        for r in restarts {
            match r {
                Restart::Connector {
                    name,
                    include_tasks,
                    only_failed,
                } => {
                    if let Some(lc) = local.connectors.get(&name)
                        && (!only_failed || lc.state == State::Failed)
                        && let Some(mut lc) = local.connectors.remove(&name)
                    {
                        if let Some(c) = lc.connector.as_mut() {
                            c.stop();
                        }
                        tracing::info!(connector = %name, "restarting connector");
                    }
                    if include_tasks {
                        let keys: Vec<(String, usize)> = local
                            .tasks
                            .iter()
                            .filter(|((n, _), t)| {
                                *n == name && (!only_failed || t.shared.status().0 == State::Failed)
                            })
                            .map(|(k, _)| k.clone())
                            .collect();
                        for k in keys {
                            if let Some(t) = local.tasks.remove(&k) {
                                self.stop_task(t).await;
                            }
                        }
                    }
                }
                Restart::Task { name, id } => {
                    if let Some(t) = local.tasks.remove(&(name, id)) {
                        self.stop_task(t).await;
                    }
                }
            }
        }

        // Tasks no longer ours, or whose configs changed.
        let keys: Vec<(String, usize)> = local.tasks.keys().cloned().collect();
        for key in keys {
            let (name, id) = (&key.0, key.1);
            let ours = plan_t.get(&key) == Some(&me);
            let same = local.tasks.get(&key).is_some_and(|t| {
                connectors.get(name) == Some(&t.connector_props)
                    && tasks.get(name).and_then(|c| c.get(id)) == Some(&t.task_props)
            });
            if ours && same {
                continue;
            }
            if let Some(t) = local.tasks.remove(&key) {
                tracing::info!(connector = %name, task = id, "stopping task: reassigned or reconfigured");
                self.stop_task(t).await;
            }
            let deleted =
                !connectors.contains_key(name) || tasks.get(name).is_none_or(|c| id >= c.len());
            if !ours || deleted {
                self.release(&mut local, format!("status-task-{name}-{id}"), deleted)
                    .await;
            }
        }

        // Connectors no longer ours, or reconfigured.
        let names_here: Vec<String> = local.connectors.keys().cloned().collect();
        for name in names_here {
            let ours = plan_c.get(&name) == Some(&me);
            let same = local
                .connectors
                .get(&name)
                .is_some_and(|c| connectors.get(&name) == Some(&c.props));
            if ours && same {
                continue;
            }
            if let Some(mut lc) = local.connectors.remove(&name) {
                if let Some(c) = lc.connector.as_mut() {
                    c.stop();
                }
                tracing::info!(connector = %name, "stopping connector: reassigned, reconfigured or deleted");
            }
            let deleted = !connectors.contains_key(&name);
            if !ours || deleted {
                self.release(&mut local, format!("status-connector-{name}"), deleted)
                    .await;
                if deleted {
                    let topics: Vec<(String, String)> = local
                        .published_topics
                        .iter()
                        .filter(|(n, _)| *n == name)
                        .cloned()
                        .collect();
                    for t in topics {
                        local.published_topics.remove(&t);
                    }
                }
            }
        }

        // Our connectors: started, or moved to their target state.
        for (name, owner) in &plan_c {
            if *owner != me {
                continue;
            }
            let Some(props) = connectors.get(name) else {
                continue;
            };
            let t = target(name);
            match local.connectors.get_mut(name) {
                None => {
                    let lc = self.start_connector(name, props, t, tasks.get(name)).await;
                    local.connectors.insert(name.clone(), lc);
                }
                Some(lc) if lc.target != t => {
                    if t == TargetState::Stopped || lc.target == TargetState::Stopped {
                        if let Some(mut lc) = local.connectors.remove(name)
                            && let Some(c) = lc.connector.as_mut()
                        {
                            c.stop();
                        }
                        let lc = self.start_connector(name, props, t, tasks.get(name)).await;
                        local.connectors.insert(name.clone(), lc);
                    } else {
                        lc.target = t;
                        if lc.state != State::Failed {
                            lc.state = if t == TargetState::Paused {
                                State::Paused
                            } else {
                                State::Running
                            };
                        }
                    }
                }
                Some(_) => {}
            }
        }

        // Our tasks: started (once their previous owner let go), or moved to their target.
        let handover = Duration::from_millis(self.inner.worker.task_shutdown_timeout_ms)
            + Duration::from_secs(1);
        let statuses: BTreeMap<(String, usize), StatusRecord> =
            self.inner.statuses.lock().tasks.clone();
        for (key, owner) in &plan_t {
            if *owner != me {
                continue;
            }
            let (name, id) = (&key.0, key.1);
            let t = target(name);
            if let Some(lt) = local.tasks.get_mut(key) {
                if lt.target != t {
                    lt.target = t;
                    let _ = lt.control.send(t);
                }
                continue;
            }
            let (Some(cp), Some(tp)) = (
                connectors.get(name),
                tasks.get(name).and_then(|c| c.get(id)),
            ) else {
                continue;
            };
            let held_elsewhere = statuses.get(key).is_some_and(|s| {
                s.worker_id != me
                    && members.contains(&s.worker_id)
                    && (s.state == "RUNNING" || s.state == "PAUSED")
            });
            if held_elsewhere {
                let since = *local
                    .waiting
                    .entry(key.clone())
                    .or_insert_with(Instant::now);
                if since.elapsed() < handover {
                    continue;
                }
                tracing::warn!(connector = %name, task = id, "the previous owner did not release the task in time; starting it");
            }
            local.waiting.remove(key);
            match self.spawn_task(name, id, cp.clone(), tp.clone(), t) {
                Ok(lt) => {
                    local.tasks.insert(key.clone(), lt);
                }
                Err(e) => {
                    tracing::error!(connector = %name, task = id, error = %e, "cannot start task")
                }
            }
        }
        local.waiting.retain(|k, _| plan_t.get(k) == Some(&me));
        self.publish(&mut local).await
    }

    /// Stops everything running here (tasks commit their offsets), writes their statuses
    /// UNASSIGNED, leaves the group and stops reading the topics.
    pub async fn shutdown(&self) {
        let _ = self.inner.stop_work.send(true);
        let loops: Vec<_> = std::mem::take(&mut *self.inner.loops.lock());
        for l in loops {
            let _ = l.await;
        }
        {
            let mut local = self.inner.local.lock().await;
            let tasks = std::mem::take(&mut local.tasks);
            for ((name, id), t) in tasks {
                self.stop_task(t).await;
                self.release(&mut local, format!("status-task-{name}-{id}"), false)
                    .await;
            }
            let connectors = std::mem::take(&mut local.connectors);
            for (name, mut lc) in connectors {
                if let Some(c) = lc.connector.as_mut() {
                    c.stop();
                }
                self.release(&mut local, format!("status-connector-{name}"), false)
                    .await;
            }
        }
        let _ = self.inner.stop_membership.send(true);
        let membership = self.inner.membership_loop.lock().take();
        if let Some(m) = membership {
            let _ = m.await;
        }
        self.inner.config_log.stop().await;
        self.inner.status_log.stop().await;
        self.inner.offsets.stop().await;
        tracing::info!(worker_id = %self.inner.worker_id, "distributed worker stopped");
    }

    fn exists(&self, name: &str) -> Result<Props> {
        self.inner
            .cluster
            .lock()
            .connectors
            .get(name)
            .cloned()
            .ok_or_else(|| not_found(name))
    }

    fn status_of(&self, rec: Option<&StatusRecord>) -> Json {
        match rec {
            Some(r) => {
                let mut j = json!({"state": r.state, "worker_id": r.worker_id});
                if let Some(t) = &r.trace {
                    j["trace"] = Json::from(t.clone());
                }
                j
            }
            None => json!({"state": "UNASSIGNED", "worker_id": ""}),
        }
    }

    fn status_json(&self, name: &str) -> Result<Json> {
        let (kind, n) = {
            let c = self.inner.cluster.lock();
            (
                c.kind(&self.inner.plugins, name)?,
                c.tasks.get(name).map_or(0, Vec::len),
            )
        };
        let s = self.inner.statuses.lock();
        let tasks: Vec<Json> = (0..n)
            .map(|id| {
                let mut j = self.status_of(s.tasks.get(&(name.to_owned(), id)));
                j["id"] = Json::from(id);
                j
            })
            .collect();
        Ok(
            json!({"name": name, "connector": self.status_of(s.connectors.get(name)), "tasks": tasks, "type": kind.as_str()}),
        )
    }

    fn info_json(&self, name: &str) -> Result<Json> {
        let c = self.inner.cluster.lock();
        let props = c.connectors.get(name).ok_or_else(|| not_found(name))?;
        let kind = c.kind(&self.inner.plugins, name)?;
        let tasks: Vec<Json> = (0..c.tasks.get(name).map_or(0, Vec::len))
            .map(|id| json!({"connector": name, "task": id}))
            .collect();
        Ok(json!({"name": name, "config": props, "tasks": tasks, "type": kind.as_str()}))
    }
}

impl<C: Client> ConnectApi for DistributedHerder<C> {
    fn plugins(&self) -> &Plugins {
        &self.inner.plugins
    }

    fn validate(&self, plugin: &str, props: &Props) -> Result<(Json, Vec<String>)> {
        validate_config(&self.inner.plugins, plugin, props)
    }

    async fn connectors(&self) -> Result<Vec<String>> {
        Ok(self
            .inner
            .cluster
            .lock()
            .connectors
            .keys()
            .cloned()
            .collect())
    }

    async fn info(&self, name: &str) -> Result<Json> {
        self.info_json(name)
    }

    async fn config(&self, name: &str) -> Result<Props> {
        self.exists(name)
    }

    async fn put_connector(&self, name: &str, props: Props, replace: bool) -> Result<(bool, Json)> {
        let (props, _) = checked_config(&self.inner.plugins, name, props)?;
        self.inner.config_log.read_to_end().await?;
        let existed = self.inner.cluster.lock().connectors.contains_key(name);
        if existed && !replace {
            return Err(Error::AlreadyExists(name.to_owned()));
        }
        self.inner
            .config_log
            .send(
                format!("connector-{name}"),
                Some(json!({"properties": props})),
            )
            .await?;
        self.inner.config_log.read_to_end().await?;
        tracing::info!(connector = %name, created = !existed, "connector config written to the config topic");
        Ok((!existed, self.info_json(name)?))
    }

    async fn delete(&self, name: &str) -> Result<()> {
        self.exists(name)?;
        self.inner
            .config_log
            .send_all(vec![
                (format!("connector-{name}"), None),
                (format!("target-state-{name}"), None),
            ])
            .await?;
        self.inner.config_log.read_to_end().await?;
        tracing::info!(connector = %name, "connector deleted");
        Ok(())
    }

    async fn status(&self, name: &str) -> Result<Json> {
        self.status_json(name)
    }

    async fn tasks(&self, name: &str) -> Result<Json> {
        let c = self.inner.cluster.lock();
        c.connectors.get(name).ok_or_else(|| not_found(name))?;
        Ok(Json::Array(
            c.tasks
                .get(name)
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .enumerate()
                .map(|(id, cfg)| json!({"id": {"connector": name, "task": id}, "config": cfg}))
                .collect(),
        ))
    }

    async fn task_status(&self, name: &str, id: usize) -> Result<Json> {
        let s = self.status_json(name)?;
        s["tasks"]
            .get(id)
            .cloned()
            .ok_or_else(|| Error::NotFound(format!("Task {name}-{id}")))
    }

    async fn restart_task(&self, name: &str, id: usize) -> Result<()> {
        self.exists(name)?;
        let n = self
            .inner
            .cluster
            .lock()
            .tasks
            .get(name)
            .map_or(0, Vec::len);
        if id >= n {
            return Err(Error::NotFound(format!("Task {name}-{id}")));
        }
        self.inner
            .config_log
            .send(format!("restart-task-{name}-{id}"), Some(json!({})))
            .await
    }

    async fn restart(&self, name: &str, include_tasks: bool, only_failed: bool) -> Result<Json> {
        let mut status = self.status_json(name)?;
        if !only_failed || status["connector"]["state"] == "FAILED" {
            status["connector"]["state"] = Json::from("RESTARTING");
        }
        if include_tasks && let Some(tasks) = status["tasks"].as_array_mut() {
            for t in tasks {
                if !only_failed || t["state"] == "FAILED" {
                    t["state"] = Json::from("RESTARTING");
                }
            }
        }
        self.inner
            .config_log
            .send(
                format!("restart-connector-{name}"),
                Some(json!({"include-tasks": include_tasks, "only-failed": only_failed})),
            )
            .await?;
        Ok(status)
    }

    async fn set_target(&self, name: &str, target: TargetState) -> Result<()> {
        self.exists(name)?;
        self.inner
            .config_log
            .send(format!("target-state-{name}"), Some(target_json(target)))
            .await?;
        self.inner.config_log.read_to_end().await?;
        tracing::info!(connector = %name, ?target, "connector target state written");
        Ok(())
    }

    async fn offsets(&self, name: &str) -> Result<Json> {
        let kind = self.inner.cluster.lock().kind(&self.inner.plugins, name)?;
        connector_offsets(&self.inner.client, &*self.inner.offsets, name, kind).await
    }

    async fn alter_offsets(&self, name: &str, body: &Json) -> Result<Json> {
        let kind = self.require_stopped(name)?;
        alter_connector_offsets(&self.inner.client, &*self.inner.offsets, name, kind, body).await
    }

    async fn reset_offsets(&self, name: &str) -> Result<Json> {
        let kind = self.require_stopped(name)?;
        reset_connector_offsets(&self.inner.client, &*self.inner.offsets, name, kind).await
    }

    async fn topics(&self, name: &str) -> Result<Json> {
        self.exists(name)?;
        let topics: Vec<String> = self
            .inner
            .statuses
            .lock()
            .topics
            .get(name)
            .map(|t| t.iter().cloned().collect())
            .unwrap_or_default();
        Ok(json!({ name: {"topics": topics} }))
    }

    async fn reset_topics(&self, name: &str) -> Result<()> {
        self.exists(name)?;
        let topics: Vec<String> = self
            .inner
            .statuses
            .lock()
            .topics
            .get(name)
            .map(|t| t.iter().cloned().collect())
            .unwrap_or_default();
        let tombstones = topics
            .iter()
            .map(|t| (format!("topic-{t}-connector-{name}"), None))
            .collect();
        self.inner.status_log.send_all(tombstones).await?;
        let mut local = self.inner.local.lock().await;
        local.published_topics.retain(|(n, _)| n != name);
        for ((n, _), t) in local.tasks.iter() {
            if n == name {
                t.topics.lock().clear();
            }
        }
        Ok(())
    }

    async fn metrics(&self, name: &str) -> Result<Json> {
        use std::sync::atomic::Ordering::Relaxed;
        self.exists(name)?;
        let local = self.inner.local.lock().await;
        Ok(Json::Array(
            local
                .tasks
                .iter()
                .filter(|((n, _), _)| n == name)
                .map(|((_, id), t)| {
                    json!({
                        "id": id,
                        "worker_id": self.inner.worker_id,
                        "records_polled": t.shared.records_polled.load(Relaxed),
                        "records_written": t.shared.records_written.load(Relaxed),
                        "records_skipped": t.shared.records_skipped.load(Relaxed),
                        "offset_commit_latency_us": t.shared.last_commit_micros.load(Relaxed),
                    })
                })
                .collect(),
        ))
    }
}

impl<C: Client> DistributedHerder<C> {
    fn require_stopped(&self, name: &str) -> Result<ConnectorType> {
        let c = self.inner.cluster.lock();
        let kind = c.kind(&self.inner.plugins, name)?;
        if c.target(name) != TargetState::Stopped {
            return Err(not_stopped(name));
        }
        Ok(kind)
    }
}

/// A running distributed worker: its herder and REST server.
#[derive(Debug)]
pub struct DistributedWorker<C: Client> {
    herder: DistributedHerder<C>,
    addr: SocketAddr,
    stop_rest: Option<oneshot::Sender<()>>,
    rest: Option<tokio::task::JoinHandle<()>>,
}

impl<C: Client> DistributedWorker<C> {
    /// Binds the REST listener, opens the internal topics, joins the group of `group.id`.
    pub async fn start(client: C, config: WorkerConfig, plugins: Plugins) -> Result<Self> {
        for n in &config.notices {
            tracing::warn!("{n}");
        }
        if config.offset_file.is_some() {
            tracing::warn!(
                "offset.storage.file.filename is for standalone workers; a distributed worker keeps offsets in offset.storage.topic"
            );
        }
        let (tcp, addr, worker_id) = crate::standalone::bind_rest(&config).await?;
        let herder = DistributedHerder::start(client, Arc::new(config), plugins, worker_id).await?;
        let (tx, rest) = crate::standalone::serve_rest(tcp, crate::rest::router(herder.clone()));
        tracing::info!(%addr, worker_id = herder.worker_id(), "REST API listening");
        Ok(DistributedWorker {
            herder,
            addr,
            stop_rest: Some(tx),
            rest: Some(rest),
        })
    }

    /// The herder.
    pub fn herder(&self) -> &DistributedHerder<C> {
        &self.herder
    }

    /// The REST listener's address.
    pub fn rest_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://host:port` of the REST API.
    pub fn rest_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops the REST server, then everything running here (offsets committed), then leaves
    /// the group: the other workers take over.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.stop_rest.take() {
            let _ = tx.send(());
        }
        self.herder.shutdown().await;
        if let Some(rest) = self.rest.take() {
            let _ = rest.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| (*x).to_owned()).collect()
    }

    #[test]
    fn the_plan_deals_connectors_then_tasks_round_robin_over_sorted_members() {
        let tasks = vec![
            ("a".to_owned(), 0),
            ("a".to_owned(), 1),
            ("b".to_owned(), 0),
        ];
        let (c, t) = assign(&s(&["w2", "w1", "w1"]), &s(&["b", "a"]), &tasks);
        assert_eq!(c["a"], "w1");
        assert_eq!(c["b"], "w2");
        assert_eq!(t[&("a".to_owned(), 0)], "w1");
        assert_eq!(t[&("a".to_owned(), 1)], "w2");
        assert_eq!(t[&("b".to_owned(), 0)], "w1");
        let (c2, t2) = assign(&s(&["w1", "w2"]), &s(&["a", "b"]), &tasks);
        assert_eq!((c, t), (c2, t2), "the order given does not matter");
        let (c, t) = assign(&[], &s(&["a"]), &tasks);
        assert!(c.is_empty() && t.is_empty());
    }

    #[test]
    fn config_records_fold_into_connectors_targets_and_committed_tasks() {
        let mut c = ClusterConfig::default();
        c.apply(
            "connector-my-conn",
            Some(json!({"properties": {"connector.class": "FileStreamSource", "tasks.max": 2}})),
        )
        .unwrap();
        assert_eq!(c.connectors["my-conn"]["tasks.max"], "2");
        c.apply("task-my-conn-0", Some(json!({"properties": {"x": "0"}})))
            .unwrap();
        assert!(!c.tasks.contains_key("my-conn"), "not before the commit");
        let e = c
            .apply("commit-my-conn", Some(json!({"tasks": 2})))
            .unwrap_err();
        assert!(e.contains("without all their configs"), "{e}");
        c.apply("task-my-conn-0", Some(json!({"properties": {"x": "0"}})))
            .unwrap();
        c.apply("task-my-conn-1", Some(json!({"properties": {"x": "1"}})))
            .unwrap();
        c.apply("commit-my-conn", Some(json!({"tasks": 2})))
            .unwrap();
        assert_eq!(c.tasks["my-conn"][1]["x"], "1");
        c.apply(
            "target-state-my-conn",
            Some(target_json(TargetState::Stopped)),
        )
        .unwrap();
        assert_eq!(c.target("my-conn"), TargetState::Stopped);
        assert!(
            c.apply("target-state-x", Some(json!({"state": "NAPPING"})))
                .is_err()
        );
        c.apply(
            "restart-connector-my-conn",
            Some(json!({"include-tasks": true})),
        )
        .unwrap();
        assert!(
            c.restarts.is_empty(),
            "restarts before going live are history"
        );
        c.live = true;
        c.apply("restart-task-my-conn-1", Some(json!({}))).unwrap();
        assert_eq!(
            c.restarts,
            [Restart::Task {
                name: "my-conn".into(),
                id: 1
            }]
        );
        c.apply("connector-my-conn", None).unwrap();
        assert!(c.connectors.is_empty() && c.tasks.is_empty() && c.targets.is_empty());
    }

    #[test]
    fn a_status_of_another_worker_from_an_older_generation_is_stale() {
        let mut s = Statuses::default();
        let rec = |state: &str, w: &str, g: i32| {
            Some(json!({"state": state, "trace": null, "worker_id": w, "generation": g}))
        };
        s.apply("status-task-c-0", rec("RUNNING", "b:1", 5))
            .unwrap();
        s.apply("status-task-c-0", rec("UNASSIGNED", "a:1", 4))
            .unwrap();
        assert_eq!(s.tasks[&("c".to_owned(), 0)].worker_id, "b:1");
        s.apply("status-task-c-0", rec("FAILED", "b:1", 5)).unwrap();
        assert_eq!(s.tasks[&("c".to_owned(), 0)].state, "FAILED");
        s.apply("topic-orders-connector-c", Some(json!({})))
            .unwrap();
        assert!(s.topics["c"].contains("orders"));
        s.apply("status-task-c-0", None).unwrap();
        assert!(s.tasks.is_empty());
        assert!(s.apply("status-task-c-x", rec("RUNNING", "a", 1)).is_err());
    }
}
