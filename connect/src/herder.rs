//! The herder: a worker's connectors, their configs, tasks and states, as the REST API and
//! the config files steer them (Kafka Connect's `StandaloneHerder`). Each operation answers
//! with the JSON shapes of Kafka Connect's REST API.
//!
//! Create validates the config (the connector's own definition plus the common keys: `name`,
//! `connector.class`, `tasks.max`, converters, `transforms`, `predicates`, `errors.*`, and a
//! sink's `topics`/`topics.regex`), starts the connector, asks it for `tasks.max` task configs
//! and starts a task for each. Pause, resume, stop (KIP-875), restart and delete act on the
//! running tasks through their target state; a task that fails stays FAILED with its trace
//! until restarted.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde_json::{Value as Json, json};
use sluice_client::{Admin, Client, ResetSpec, TopicPartition};
use tokio::sync::watch;

use crate::config::{
    Config, ConfigDef, ConfigType, ConfigValue, Importance, Props, Validator, WorkerConfig,
};
use crate::connector::{ConnectorType, DynConnector, Plugin, Plugins};
use crate::data::SourceMap;
use crate::error::{Error, Result};
use crate::offsets::OffsetStore;
use crate::transforms::TransformChain;
use crate::worker::{State, TargetState, TaskContext, TaskShared, spawn_task, trace};

/// Key prefixes a connector config may carry beyond its definition.
const KNOWN_PREFIXES: &[&str] = &[
    "transforms.",
    "predicates.",
    "key.converter.",
    "value.converter.",
    "header.converter.",
    "producer.override.",
    "consumer.override.",
    "admin.override.",
    "errors.",
    "topic.creation.",
];

/// The keys every connector has (Kafka's `ConnectorConfig`), with a sink's or a source's own.
pub fn common_config_def(kind: ConnectorType) -> ConfigDef {
    let g = "Common";
    let mut def = ConfigDef::new()
        .define(
            "name",
            ConfigType::String,
            None,
            Some(Validator::NonEmpty),
            Importance::High,
            "Globally unique name to use for this connector.",
            g,
        )
        .define(
            "connector.class",
            ConfigType::String,
            None,
            Some(Validator::NonEmpty),
            Importance::High,
            "Name or alias of the class for this connector.",
            g,
        )
        .define(
            "tasks.max",
            ConfigType::Int,
            Some("1"),
            Some(Validator::AtLeast(1)),
            Importance::High,
            "Maximum number of tasks to use for this connector.",
            g,
        )
        .define(
            "key.converter",
            ConfigType::Class,
            Some(""),
            None,
            Importance::Low,
            "Converter class for keys; the worker's when unset.",
            g,
        )
        .define(
            "value.converter",
            ConfigType::Class,
            Some(""),
            None,
            Importance::Low,
            "Converter class for values; the worker's when unset.",
            g,
        )
        .define(
            "header.converter",
            ConfigType::Class,
            Some(""),
            None,
            Importance::Low,
            "Header converter (SimpleHeaderConverter is what Sluice uses).",
            g,
        )
        .define(
            "transforms",
            ConfigType::List,
            Some(""),
            None,
            Importance::Low,
            "Aliases for the transformations to be applied to records.",
            "Transforms",
        )
        .define(
            "predicates",
            ConfigType::List,
            Some(""),
            None,
            Importance::Low,
            "Aliases for the predicates used by transformations.",
            "Predicates",
        )
        .define(
            "errors.retry.timeout.ms",
            ConfigType::Long,
            Some("0"),
            None,
            Importance::Medium,
            "The maximum duration in milliseconds that a failed operation will be reattempted.",
            "Error Handling",
        )
        .define(
            "errors.retry.delay.max.ms",
            ConfigType::Long,
            Some("60000"),
            None,
            Importance::Medium,
            "The maximum duration in milliseconds between consecutive retry attempts.",
            "Error Handling",
        )
        .define(
            "errors.tolerance",
            ConfigType::String,
            Some("none"),
            Some(Validator::OneOf(vec!["none".into(), "all".into()])),
            Importance::Medium,
            "Behavior for tolerating errors during connector operation.",
            "Error Handling",
        )
        .define(
            "errors.log.enable",
            ConfigType::Boolean,
            Some("false"),
            None,
            Importance::Medium,
            "Log the error context of each failed operation.",
            "Error Handling",
        )
        .define(
            "errors.log.include.messages",
            ConfigType::Boolean,
            Some("false"),
            None,
            Importance::Medium,
            "Include the record in the error log.",
            "Error Handling",
        );
    if kind == ConnectorType::Sink {
        def = def
            .define("topics", ConfigType::List, Some(""), None, Importance::High, "List of topics to consume, separated by commas.", g)
            .define("topics.regex", ConfigType::String, Some(""), None, Importance::High, "Regular expression giving topics to consume.", g)
            .define("errors.deadletterqueue.topic.name", ConfigType::String, Some(""), None, Importance::Medium, "The name of the topic to be used as the dead letter queue.", "Error Handling")
            .define("errors.deadletterqueue.topic.replication.factor", ConfigType::Int, Some("3"), None, Importance::Medium, "Replication factor of the dead letter queue topic (one Sluice log keeps one copy).", "Error Handling")
            .define("errors.deadletterqueue.context.headers.enable", ConfigType::Boolean, Some("false"), None, Importance::Medium, "Add headers with the error context to records in the dead letter queue.", "Error Handling");
    }
    def
}

/// A running task.
struct TaskRuntime {
    control: watch::Sender<TargetState>,
    join: Option<tokio::task::JoinHandle<()>>,
    shared: Arc<TaskShared>,
}

/// A connector and what runs of it.
struct ConnectorEntry {
    props: Props,
    plugin: Plugin,
    target: TargetState,
    connector: Option<Box<dyn DynConnector>>,
    state: State,
    trace: Option<String>,
    task_configs: Vec<Props>,
    tasks: Vec<TaskRuntime>,
    topics: Arc<Mutex<BTreeSet<String>>>,
}

struct Inner<C: Client> {
    client: C,
    worker: Arc<WorkerConfig>,
    plugins: Plugins,
    offsets: Arc<dyn OffsetStore>,
    worker_id: String,
    connectors: tokio::sync::Mutex<BTreeMap<String, ConnectorEntry>>,
}

/// A worker's connectors (cheap to clone: a handle).
pub struct Herder<C: Client> {
    inner: Arc<Inner<C>>,
}

impl<C: Client> Clone for Herder<C> {
    fn clone(&self) -> Self {
        Herder {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<C: Client> std::fmt::Debug for Herder<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Herder")
            .field("worker_id", &self.inner.worker_id)
            .finish_non_exhaustive()
    }
}

fn not_found(name: &str) -> Error {
    Error::NotFound(format!("Connector {name}"))
}

impl<C: Client> Herder<C> {
    /// A herder of no connectors yet.
    pub fn new(
        client: C,
        worker: Arc<WorkerConfig>,
        plugins: Plugins,
        offsets: Arc<dyn OffsetStore>,
        worker_id: String,
    ) -> Self {
        Herder {
            inner: Arc::new(Inner {
                client,
                worker,
                plugins,
                offsets,
                worker_id,
                connectors: tokio::sync::Mutex::new(BTreeMap::new()),
            }),
        }
    }

    /// The worker's id (`host:port` of its REST listener).
    pub fn worker_id(&self) -> &str {
        &self.inner.worker_id
    }

    /// The plugins.
    pub fn plugins(&self) -> &Plugins {
        &self.inner.plugins
    }

    /// Validates a config against a plugin (given by class name or alias): every key with its
    /// errors, and the lines of the errors (`key: message`).
    pub fn validate(&self, plugin_name: &str, props: &Props) -> Result<(Json, Vec<String>)> {
        validate_config(&self.inner.plugins, plugin_name, props)
    }

    /// Creates a connector (409 if it exists) or, with `replace`, reconfigures it. Returns
    /// whether it was created, and its info.
    pub async fn put_connector(
        &self,
        name: &str,
        props: Props,
        replace: bool,
    ) -> Result<(bool, Json)> {
        let (props, plugin) = checked_config(&self.inner.plugins, name, props)?;
        self.put_checked(name, props, plugin, replace).await
    }
}

/// Validates a config against a plugin (given by class name or alias): every key with its
/// errors, and the lines of the errors (`key: message`).
pub fn validate_config(
    plugins: &Plugins,
    plugin_name: &str,
    props: &Props,
) -> Result<(Json, Vec<String>)> {
    let plugin = plugins.get(plugin_name)?;
    let def = common_config_def(plugin.kind).merge(plugin.config_def());
    let mut values = def.validate(props);
    let add = |key: &str, msg: String, values: &mut Vec<ConfigValue>| {
        if let Some(v) = values.iter_mut().find(|v| v.name == key) {
            v.errors.push(msg);
        }
    };
    if let Some(class) = props.get("connector.class")
        && !plugin.answers_to(class.trim())
    {
        add(
            "connector.class",
            format!("Connector class {class} is not {}", plugin.class),
            &mut values,
        );
    }
    let name = props.get("name").map(|n| n.trim()).unwrap_or_default();
    if name.contains('/') || name.chars().any(char::is_control) {
        add(
            "name",
            format!(
                "Invalid value {name} for configuration name: connector names may not contain '/' or control characters"
            ),
            &mut values,
        );
    }
    if let Err(e) = TransformChain::from_config(name, props) {
        add("transforms", e.to_string(), &mut values);
    }
    for which in ["key.converter", "value.converter"] {
        if let Some(class) = props.get(which).filter(|c| !c.trim().is_empty()) {
            let prefix = format!("{which}.");
            let sub: Props = props
                .iter()
                .filter_map(|(k, v)| k.strip_prefix(&prefix).map(|s| (s.to_owned(), v.clone())))
                .collect();
            if let Err(e) = crate::converter::converter(class, &sub, which == "key.converter") {
                add(which, e.to_string(), &mut values);
            }
        }
    }
    if plugin.kind == ConnectorType::Sink {
        let topics = props
            .get("topics")
            .map(|t| !t.trim().is_empty())
            .unwrap_or(false);
        let regex = props
            .get("topics.regex")
            .map(|t| t.trim())
            .filter(|t| !t.is_empty());
        match (topics, regex) {
            (true, Some(_)) => add(
                "topics",
                "topics and topics.regex are mutually exclusive.".into(),
                &mut values,
            ),
            (false, None) => add(
                "topics",
                "Must configure one of topics or topics.regex".into(),
                &mut values,
            ),
            (false, Some(r)) => {
                if let Err(e) = regex::Regex::new(r) {
                    add("topics.regex", format!("Invalid regex: {e}"), &mut values);
                }
            }
            (true, None) => {}
        }
        if let Some(dlq) = props
            .get("errors.deadletterqueue.topic.name")
            .map(|t| t.trim())
            .filter(|t| !t.is_empty())
            && props
                .get("topics")
                .is_some_and(|t| crate::config::split_list(t).iter().any(|x| x == dlq))
        {
            add(
                "errors.deadletterqueue.topic.name",
                format!("The DLQ topic '{dlq}' may not be included in the list of topics"),
                &mut values,
            );
        }
    }
    let errors = values
        .iter()
        .flat_map(|v| v.errors.iter().map(move |e| format!("{}: {e}", v.name)))
        .collect();
    Ok((def.validation_json(&plugin.class, &values), errors))
}

/// Reports keys neither the connector's definition nor the common keys know.
fn report_unknown_keys(name: &str, plugin: &Plugin, props: &Props) {
    let def = common_config_def(plugin.kind).merge(plugin.config_def());
    for k in props.keys() {
        if def.key(k).is_none() && !KNOWN_PREFIXES.iter().any(|p| k.starts_with(p)) {
            tracing::warn!(connector = %name, key = %k, "connector {name}: config \"{k}\" is not a key of {}; ignored", plugin.class);
        }
    }
}

/// The checks of a connector config before it is created or replaced: the name (of the URL
/// and of the config), the class, validation (every error), keys nobody knows (logged).
/// Returns the config with its `name` and the plugin.
pub(crate) fn checked_config(
    plugins: &Plugins,
    name: &str,
    mut props: Props,
) -> Result<(Props, Plugin)> {
    if name.trim().is_empty() {
        return Err(Error::BadRequest("Connector name must not be empty".into()));
    }
    match props.get("name") {
        Some(n) if n != name => {
            return Err(Error::BadRequest(format!(
                "Connector name configuration ({n}) doesn't match connector name in the URL ({name})"
            )));
        }
        _ => {
            props.insert("name".into(), name.to_owned());
        }
    }
    let class = props.get("connector.class").cloned().unwrap_or_default();
    if class.trim().is_empty() {
        return Err(Error::InvalidConfig { errors: vec!["connector.class: Missing required configuration \"connector.class\" which has no default value.".into()] });
    }
    let (_, errors) = validate_config(plugins, &class, &props)?;
    if !errors.is_empty() {
        return Err(Error::InvalidConfig { errors });
    }
    let plugin = plugins.get(&class)?.clone();
    report_unknown_keys(name, &plugin, &props);
    Ok((props, plugin))
}

impl<C: Client> Herder<C> {
    async fn put_checked(
        &self,
        name: &str,
        props: Props,
        plugin: Plugin,
        replace: bool,
    ) -> Result<(bool, Json)> {
        let mut all = self.inner.connectors.lock().await;
        let created = match all.get_mut(name) {
            Some(_) if !replace => return Err(Error::AlreadyExists(name.to_owned())),
            Some(entry) => {
                self.stop_all(entry).await;
                entry.props = props;
                entry.plugin = plugin;
                false
            }
            None => {
                all.insert(
                    name.to_owned(),
                    ConnectorEntry {
                        props,
                        plugin,
                        target: TargetState::Started,
                        connector: None,
                        state: State::Unassigned,
                        trace: None,
                        task_configs: Vec::new(),
                        tasks: Vec::new(),
                        topics: Arc::new(Mutex::new(BTreeSet::new())),
                    },
                );
                true
            }
        };
        let entry = all.get_mut(name).ok_or_else(|| not_found(name))?;
        self.start_connector(name, entry);
        tracing::info!(connector = %name, created, "connector configured");
        Ok((created, info_json(name, entry)))
    }

    /// Starts the connector and its tasks per its target state.
    fn start_connector(&self, name: &str, entry: &mut ConnectorEntry) {
        entry.trace = None;
        if entry.target == TargetState::Stopped {
            entry.state = State::Stopped;
            return;
        }
        let def = common_config_def(entry.plugin.kind).merge(entry.plugin.config_def());
        let mut connector = entry.plugin.connector();
        let max_tasks = entry
            .props
            .get("tasks.max")
            .and_then(|t| t.trim().parse::<usize>().ok())
            .unwrap_or(1)
            .max(1);
        let started = Config::new(name, entry.props.clone(), def)
            .and_then(|c| connector.start(c))
            .and_then(|()| connector.task_configs(max_tasks));
        match started {
            Err(e) => {
                tracing::error!(connector = %name, error = %e, "connector failed to start");
                entry.state = State::Failed;
                entry.trace = Some(trace(&e));
            }
            Ok(mut configs) => {
                configs.truncate(max_tasks);
                entry.task_configs = configs;
                entry.connector = Some(connector);
                entry.state = if entry.target == TargetState::Paused {
                    State::Paused
                } else {
                    State::Running
                };
                for id in 0..entry.task_configs.len() {
                    let rt = self.spawn(name, entry, id);
                    entry.tasks.push(rt);
                }
            }
        }
    }

    fn spawn(&self, name: &str, entry: &ConnectorEntry, id: usize) -> TaskRuntime {
        let (tx, rx) = watch::channel(entry.target);
        let shared = Arc::new(TaskShared::new(Arc::clone(&entry.topics)));
        shared.set(State::Unassigned, None);
        let ctx = TaskContext {
            client: self.inner.client.clone(),
            connector: name.to_owned(),
            task_id: id,
            connector_props: entry.props.clone(),
            task_props: entry.task_configs.get(id).cloned().unwrap_or_default(),
            factory: entry.plugin.task(),
            worker: Arc::clone(&self.inner.worker),
            offsets: Arc::clone(&self.inner.offsets),
            control: rx,
            shared: Arc::clone(&shared),
        };
        TaskRuntime {
            control: tx,
            join: Some(spawn_task(ctx)),
            shared,
        }
    }

    /// Stops a task and waits for it (its offsets committed) up to
    /// `task.shutdown.graceful.timeout.ms`, then aborts it.
    async fn stop_task(&self, rt: &mut TaskRuntime) {
        let _ = rt.control.send(TargetState::Stopped);
        if let Some(mut join) = rt.join.take() {
            let wait = Duration::from_millis(self.inner.worker.task_shutdown_timeout_ms.max(1));
            if tokio::time::timeout(wait, &mut join).await.is_err() {
                tracing::warn!(
                    "a task did not stop within task.shutdown.graceful.timeout.ms; aborting it"
                );
                join.abort();
            }
        }
    }

    /// Stops the tasks and the connector.
    async fn stop_all(&self, entry: &mut ConnectorEntry) {
        for mut rt in std::mem::take(&mut entry.tasks) {
            self.stop_task(&mut rt).await;
        }
        if let Some(mut c) = entry.connector.take() {
            c.stop();
        }
        entry.task_configs.clear();
    }

    /// Names of the connectors, sorted.
    pub async fn connectors(&self) -> Vec<String> {
        self.inner.connectors.lock().await.keys().cloned().collect()
    }

    /// `{name, config, tasks, type}`.
    pub async fn info(&self, name: &str) -> Result<Json> {
        let all = self.inner.connectors.lock().await;
        let e = all.get(name).ok_or_else(|| not_found(name))?;
        Ok(info_json(name, e))
    }

    /// The config.
    pub async fn config(&self, name: &str) -> Result<Props> {
        let all = self.inner.connectors.lock().await;
        Ok(all.get(name).ok_or_else(|| not_found(name))?.props.clone())
    }

    /// `{name, connector: {state, worker_id}, tasks: [{id, state, worker_id, trace?}], type}`.
    pub async fn status(&self, name: &str) -> Result<Json> {
        let all = self.inner.connectors.lock().await;
        let e = all.get(name).ok_or_else(|| not_found(name))?;
        Ok(self.status_json(name, e))
    }

    fn status_json(&self, name: &str, e: &ConnectorEntry) -> Json {
        let mut connector = json!({"state": e.state.as_str(), "worker_id": self.inner.worker_id});
        if let Some(t) = &e.trace {
            connector["trace"] = Json::from(t.clone());
        }
        let tasks: Vec<Json> = e
            .tasks
            .iter()
            .enumerate()
            .map(|(id, t)| self.task_json(id, t))
            .collect();
        json!({"name": name, "connector": connector, "tasks": tasks, "type": e.plugin.kind.as_str()})
    }

    fn task_json(&self, id: usize, t: &TaskRuntime) -> Json {
        let (state, tr) = t.shared.status();
        let mut j = json!({"id": id, "state": state.as_str(), "worker_id": self.inner.worker_id});
        if let Some(tr) = tr {
            j["trace"] = Json::from(tr);
        }
        j
    }

    /// One task's status.
    pub async fn task_status(&self, name: &str, id: usize) -> Result<Json> {
        let all = self.inner.connectors.lock().await;
        let e = all.get(name).ok_or_else(|| not_found(name))?;
        let t = e
            .tasks
            .get(id)
            .ok_or_else(|| Error::NotFound(format!("Task {name}-{id}")))?;
        Ok(self.task_json(id, t))
    }

    /// `[{id: {connector, task}, config}]`.
    pub async fn tasks(&self, name: &str) -> Result<Json> {
        let all = self.inner.connectors.lock().await;
        let e = all.get(name).ok_or_else(|| not_found(name))?;
        Ok(Json::Array(
            e.task_configs
                .iter()
                .enumerate()
                .map(|(id, c)| json!({"id": {"connector": name, "task": id}, "config": c}))
                .collect(),
        ))
    }

    /// Metrics of each task: records polled, written, skipped, last commit latency.
    pub async fn metrics(&self, name: &str) -> Result<Json> {
        use std::sync::atomic::Ordering::Relaxed;
        let all = self.inner.connectors.lock().await;
        let e = all.get(name).ok_or_else(|| not_found(name))?;
        Ok(Json::Array(
            e.tasks
                .iter()
                .enumerate()
                .map(|(id, t)| {
                    json!({
                        "id": id,
                        "records_polled": t.shared.records_polled.load(Relaxed),
                        "records_written": t.shared.records_written.load(Relaxed),
                        "records_skipped": t.shared.records_skipped.load(Relaxed),
                        "offset_commit_latency_us": t.shared.last_commit_micros.load(Relaxed),
                    })
                })
                .collect(),
        ))
    }

    /// Sets the target state of a connector and its tasks (pause, resume, stop).
    pub async fn set_target(&self, name: &str, target: TargetState) -> Result<()> {
        let mut all = self.inner.connectors.lock().await;
        let e = all.get_mut(name).ok_or_else(|| not_found(name))?;
        let was = e.target;
        e.target = target;
        match target {
            TargetState::Stopped => {
                self.stop_all(e).await;
                e.state = State::Stopped;
                e.trace = None;
            }
            _ if was == TargetState::Stopped => self.start_connector(name, e),
            _ => {
                for t in &e.tasks {
                    let _ = t.control.send(target);
                }
                if e.state != State::Failed {
                    e.state = if target == TargetState::Paused {
                        State::Paused
                    } else {
                        State::Running
                    };
                }
            }
        }
        tracing::info!(connector = %name, ?target, "connector target state set");
        Ok(())
    }

    /// Restarts a connector, and with `include_tasks` its tasks; with `only_failed` only
    /// what failed. Answers the status with what restarts as RESTARTING.
    pub async fn restart(
        &self,
        name: &str,
        include_tasks: bool,
        only_failed: bool,
    ) -> Result<Json> {
        let mut all = self.inner.connectors.lock().await;
        let e = all.get_mut(name).ok_or_else(|| not_found(name))?;
        let restart_connector = !only_failed || e.state == State::Failed;
        let task_failed: Vec<bool> = e
            .tasks
            .iter()
            .map(|t| t.shared.status().0 == State::Failed)
            .collect();
        let restart_tasks: Vec<usize> = (0..e.tasks.len())
            .filter(|i| include_tasks && (!only_failed || task_failed[*i]))
            .collect();
        let mut status = self.status_json(name, e);
        if restart_connector {
            status["connector"]["state"] = Json::from("RESTARTING");
        }
        for &i in &restart_tasks {
            status["tasks"][i]["state"] = Json::from("RESTARTING");
        }
        if restart_connector && (include_tasks || e.tasks.is_empty()) && !only_failed {
            // Whole restart: connector and tasks anew (new task configs).
            self.stop_all(e).await;
            self.start_connector(name, e);
        } else {
            if restart_connector {
                if let Some(mut c) = e.connector.take() {
                    c.stop();
                }
                let tasks = std::mem::take(&mut e.tasks);
                let configs = e.task_configs.clone();
                self.start_connector_only(name, e);
                if e.task_configs == configs || e.state == State::Failed {
                    e.tasks = tasks;
                } else {
                    // New task configs: the tasks follow them.
                    e.tasks = tasks;
                    self.stop_all_tasks(e).await;
                    for id in 0..e.task_configs.len() {
                        let rt = self.spawn(name, e, id);
                        e.tasks.push(rt);
                    }
                }
            }
            for i in restart_tasks {
                self.restart_task_in(name, e, i).await;
            }
        }
        Ok(status)
    }

    async fn stop_all_tasks(&self, e: &mut ConnectorEntry) {
        for mut rt in std::mem::take(&mut e.tasks) {
            self.stop_task(&mut rt).await;
        }
    }

    /// Starts the connector (not its tasks): its state and task configs.
    fn start_connector_only(&self, name: &str, e: &mut ConnectorEntry) {
        let def = common_config_def(e.plugin.kind).merge(e.plugin.config_def());
        let mut connector = e.plugin.connector();
        let max_tasks = e
            .props
            .get("tasks.max")
            .and_then(|t| t.trim().parse::<usize>().ok())
            .unwrap_or(1)
            .max(1);
        match Config::new(name, e.props.clone(), def)
            .and_then(|c| connector.start(c))
            .and_then(|()| connector.task_configs(max_tasks))
        {
            Ok(mut configs) => {
                configs.truncate(max_tasks);
                e.task_configs = configs;
                e.connector = Some(connector);
                e.state = if e.target == TargetState::Paused {
                    State::Paused
                } else {
                    State::Running
                };
                e.trace = None;
            }
            Err(err) => {
                e.state = State::Failed;
                e.trace = Some(trace(&err));
            }
        }
    }

    async fn restart_task_in(&self, name: &str, e: &mut ConnectorEntry, id: usize) {
        if id < e.tasks.len() {
            self.stop_task(&mut e.tasks[id]).await;
            let rt = self.spawn(name, e, id);
            e.tasks[id] = rt;
        }
    }

    /// Restarts one task.
    pub async fn restart_task(&self, name: &str, id: usize) -> Result<()> {
        let mut all = self.inner.connectors.lock().await;
        let e = all.get_mut(name).ok_or_else(|| not_found(name))?;
        if id >= e.tasks.len() {
            return Err(Error::NotFound(format!("Task {name}-{id}")));
        }
        self.restart_task_in(name, e, id).await;
        Ok(())
    }

    /// Deletes a connector (its tasks stopped; its offsets kept, as Kafka keeps them).
    pub async fn delete(&self, name: &str) -> Result<()> {
        let mut all = self.inner.connectors.lock().await;
        let mut e = all.remove(name).ok_or_else(|| not_found(name))?;
        self.stop_all(&mut e).await;
        tracing::info!(connector = %name, "connector deleted");
        Ok(())
    }

    /// Topics the connector has used: `{name: {topics: [...]}}`.
    pub async fn topics(&self, name: &str) -> Result<Json> {
        let all = self.inner.connectors.lock().await;
        let e = all.get(name).ok_or_else(|| not_found(name))?;
        let topics: Vec<String> = e.topics.lock().iter().cloned().collect();
        Ok(json!({ name: {"topics": topics} }))
    }

    /// Forgets the topics the connector has used.
    pub async fn reset_topics(&self, name: &str) -> Result<()> {
        let all = self.inner.connectors.lock().await;
        let e = all.get(name).ok_or_else(|| not_found(name))?;
        e.topics.lock().clear();
        Ok(())
    }

    /// The connector's offsets (KIP-875): a source's partitions and offsets; a sink's
    /// group offsets as `{kafka_topic, kafka_partition}` -> `{kafka_offset}`.
    pub async fn offsets(&self, name: &str) -> Result<Json> {
        let kind = {
            let all = self.inner.connectors.lock().await;
            all.get(name).ok_or_else(|| not_found(name))?.plugin.kind
        };
        connector_offsets(&self.inner.client, &*self.inner.offsets, name, kind).await
    }

    async fn require_stopped(&self, name: &str) -> Result<ConnectorType> {
        let all = self.inner.connectors.lock().await;
        let e = all.get(name).ok_or_else(|| not_found(name))?;
        if e.target != TargetState::Stopped {
            return Err(not_stopped(name));
        }
        Ok(e.plugin.kind)
    }

    /// Alters offsets (KIP-875's PATCH): `{"offsets": [{"partition": {...}, "offset": {...} or null}]}`.
    pub async fn alter_offsets(&self, name: &str, body: &Json) -> Result<Json> {
        let kind = self.require_stopped(name).await?;
        alter_connector_offsets(&self.inner.client, &*self.inner.offsets, name, kind, body).await
    }

    /// Resets every offset of the connector (KIP-875's DELETE).
    pub async fn reset_offsets(&self, name: &str) -> Result<Json> {
        let kind = self.require_stopped(name).await?;
        reset_connector_offsets(&self.inner.client, &*self.inner.offsets, name, kind).await
    }

    /// Stops every connector (tasks commit their offsets first).
    pub async fn shutdown(&self) {
        let mut all = self.inner.connectors.lock().await;
        for (name, e) in all.iter_mut() {
            tracing::info!(connector = %name, "stopping");
            self.stop_all(e).await;
        }
    }
}

fn info_json(name: &str, e: &ConnectorEntry) -> Json {
    let tasks: Vec<Json> = (0..e.task_configs.len())
        .map(|id| json!({"connector": name, "task": id}))
        .collect();
    json!({"name": name, "config": e.props, "tasks": tasks, "type": e.plugin.kind.as_str()})
}

/// KIP-875's refusal to change the offsets of a connector that is not STOPPED.
pub(crate) fn not_stopped(name: &str) -> Error {
    Error::BadRequest(format!(
        "Connectors must be in the STOPPED state before their offsets can be modified. This can be done for the specified connector by issuing a 'PUT' request to the '/connectors/{name}/stop' endpoint"
    ))
}

/// A connector's offsets (KIP-875): a source's partitions and offsets from `store`; a sink's
/// group offsets as `{kafka_topic, kafka_partition}` -> `{kafka_offset}`.
pub(crate) async fn connector_offsets<C: Client>(
    client: &C,
    store: &dyn OffsetStore,
    name: &str,
    kind: ConnectorType,
) -> Result<Json> {
    let offsets: Vec<Json> = match kind {
        ConnectorType::Source => store
            .get(name)
            .await?
            .into_iter()
            .map(|(p, o)| json!({"partition": p, "offset": o}))
            .collect(),
        ConnectorType::Sink => {
            let admin = client.admin()?;
            let lag = match admin.lag(&format!("connect-{name}")).await {
                Ok(l) => l,
                Err(sluice_client::Error::GroupIdNotFound(_)) => Vec::new(),
                Err(e) => return Err(e.into()),
            };
            lag.into_iter()
                .filter_map(|l| {
                    l.committed.map(|c| {
                        json!({"partition": {"kafka_topic": l.tp.topic.to_string(), "kafka_partition": l.tp.partition}, "offset": {"kafka_offset": c}})
                    })
                })
                .collect()
        }
    };
    Ok(json!({ "offsets": offsets }))
}

/// Alters a (stopped) connector's offsets (KIP-875's PATCH):
/// `{"offsets": [{"partition": {...}, "offset": {...} or null}]}`.
pub(crate) async fn alter_connector_offsets<C: Client>(
    client: &C,
    store: &dyn OffsetStore,
    name: &str,
    kind: ConnectorType,
    body: &Json,
) -> Result<Json> {
    let entries = body["offsets"].as_array().ok_or_else(|| {
        Error::BadRequest("The request body must contain an \"offsets\" array".into())
    })?;
    match kind {
        ConnectorType::Source => {
            let mut changes = Vec::new();
            for e in entries {
                let p = e["partition"]
                    .as_object()
                    .ok_or_else(|| Error::BadRequest("Source partitions may not be null".into()))?;
                let o = match &e["offset"] {
                    Json::Null => None,
                    Json::Object(o) => Some(o.clone()),
                    other => {
                        return Err(Error::BadRequest(format!(
                            "Source offsets must be objects or null, found {other}"
                        )));
                    }
                };
                changes.push((p.clone(), o));
            }
            store.put(name, changes).await?;
        }
        ConnectorType::Sink => {
            let admin = client.admin()?;
            let group = format!("connect-{name}");
            for e in entries {
                let topic = e["partition"]["kafka_topic"].as_str().ok_or_else(|| {
                    Error::BadRequest("Sink partitions need kafka_topic (a string)".into())
                })?;
                let partition = e["partition"]["kafka_partition"]
                    .as_i64()
                    .and_then(|p| i32::try_from(p).ok())
                    .ok_or_else(|| {
                        Error::BadRequest(
                            "Sink partitions need kafka_partition (an integer)".into(),
                        )
                    })?;
                let tp = TopicPartition::new(topic, partition);
                match &e["offset"] {
                    Json::Null => admin.delete_offsets(&group, vec![tp]).await?,
                    o => {
                        let off =
                            o["kafka_offset"]
                                .as_i64()
                                .filter(|o| *o >= 0)
                                .ok_or_else(|| {
                                    Error::BadRequest(
                                        "Sink offsets need kafka_offset (a non-negative integer)"
                                            .into(),
                                    )
                                })?;
                        admin
                            .reset_offsets(&group, vec![tp], ResetSpec::ToOffset(off), false)
                            .await?;
                    }
                }
            }
        }
    }
    Ok(json!({"message": "The offsets for this connector have been altered successfully"}))
}

/// Resets every offset of a (stopped) connector (KIP-875's DELETE).
pub(crate) async fn reset_connector_offsets<C: Client>(
    client: &C,
    store: &dyn OffsetStore,
    name: &str,
    kind: ConnectorType,
) -> Result<Json> {
    match kind {
        ConnectorType::Source => {
            let all: Vec<(SourceMap, Option<SourceMap>)> = store
                .get(name)
                .await?
                .into_iter()
                .map(|(p, _)| (p, None))
                .collect();
            store.put(name, all).await?;
        }
        ConnectorType::Sink => {
            let admin = client.admin()?;
            let group = format!("connect-{name}");
            match admin.lag(&group).await {
                Ok(lag) => {
                    let tps: Vec<TopicPartition> = lag
                        .into_iter()
                        .filter(|l| l.committed.is_some())
                        .map(|l| l.tp)
                        .collect();
                    if !tps.is_empty() {
                        admin.delete_offsets(&group, tps).await?;
                    }
                }
                Err(sluice_client::Error::GroupIdNotFound(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(json!({"message": "The offsets for this connector have been reset successfully"}))
}
