//! The connector API.
//!
//! Authors implement the typed traits: [`SourceConnector`] with its [`SourceTask`], or
//! [`SinkConnector`] with its [`SinkTask`] (async methods, no boxing). The runtime holds
//! them type-erased ([`DynConnector`], [`DynSourceTask`], [`DynSinkTask`], boxed futures),
//! made by the [`Plugins`] registry from a class name or alias.
//!
//! As in Kafka Connect, a connector is configured once and splits its work into task configs
//! (`task_configs(max_tasks)`); each task is created from its config alone, so tasks can run on
//! other workers.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use sluice_client::TopicPartition;

use crate::config::{Config, ConfigDef, Props};
use crate::data::{SinkRecord, SourceMap, SourceRecord};
use crate::error::{Error, Result};

/// A boxed future of the erased traits.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Whether a connector reads into the log or writes out of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectorType {
    /// Reads from outside into topics.
    Source,
    /// Writes topics to outside.
    Sink,
}

impl ConnectorType {
    /// Kafka Connect's name in the REST API (`source`, `sink`).
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectorType::Source => "source",
            ConnectorType::Sink => "sink",
        }
    }
}

/// What a source task can ask of the runtime: the last committed offset of each of its
/// source partitions (Kafka's `OffsetStorageReader`).
#[derive(Debug, Clone, Default)]
pub struct SourceTaskContext {
    offsets: Arc<Vec<(SourceMap, SourceMap)>>,
}

impl SourceTaskContext {
    /// A context over the connector's committed offsets.
    pub fn new(offsets: Vec<(SourceMap, SourceMap)>) -> Self {
        SourceTaskContext {
            offsets: Arc::new(offsets),
        }
    }

    /// The committed offset of a source partition.
    pub fn offset(&self, partition: &SourceMap) -> Option<&SourceMap> {
        self.offsets
            .iter()
            .find(|(p, _)| p == partition)
            .map(|(_, o)| o)
    }
}

/// A source connector, for authors.
pub trait SourceConnector: Send + 'static {
    /// Its task.
    type Task: SourceTask + Default;
    /// Its config definition (validated before `start`).
    fn config_def() -> ConfigDef;
    /// Starts with a validated config.
    fn start(&mut self, config: Config) -> Result<()>;
    /// At most `max_tasks` task configs.
    fn task_configs(&self, max_tasks: usize) -> Result<Vec<Props>>;
    /// Stops.
    fn stop(&mut self) {}
}

/// A source task, for authors: `poll` returns records; the runtime sends them and commits
/// their source offsets once the log acknowledged them.
pub trait SourceTask: Send + 'static {
    /// Starts with its task config.
    fn start(
        &mut self,
        config: Props,
        context: SourceTaskContext,
    ) -> impl Future<Output = Result<()>> + Send;
    /// The next records; an empty batch when there are none for now (after waiting a little,
    /// as Kafka's `poll` does).
    fn poll(&mut self) -> impl Future<Output = Result<Vec<SourceRecord>>> + Send;
    /// Stops (releasing files, connections).
    fn stop(&mut self) -> impl Future<Output = ()> + Send {
        async {}
    }
}

/// A sink connector, for authors.
pub trait SinkConnector: Send + 'static {
    /// Its task.
    type Task: SinkTask + Default;
    /// Its config definition (validated before `start`).
    fn config_def() -> ConfigDef;
    /// Starts with a validated config.
    fn start(&mut self, config: Config) -> Result<()>;
    /// At most `max_tasks` task configs.
    fn task_configs(&self, max_tasks: usize) -> Result<Vec<Props>>;
    /// Stops.
    fn stop(&mut self) {}
}

/// A sink task, for authors: records arrive in `put`; `flush` makes what was put durable, after
/// which the runtime commits the offsets to the group `connect-<name>`.
pub trait SinkTask: Send + 'static {
    /// Starts with its task config.
    fn start(&mut self, config: Props) -> impl Future<Output = Result<()>> + Send;
    /// Takes records (maybe none).
    fn put(&mut self, records: Vec<SinkRecord>) -> impl Future<Output = Result<()>> + Send;
    /// Makes everything put so far durable; `offsets` is the next offset of each partition.
    fn flush(
        &mut self,
        offsets: &BTreeMap<TopicPartition, i64>,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Stops.
    fn stop(&mut self) -> impl Future<Output = ()> + Send {
        async {}
    }
}

/// A connector, type-erased, for the runtime.
pub trait DynConnector: Send {
    /// Starts with a validated config.
    fn start(&mut self, config: Config) -> Result<()>;
    /// At most `max_tasks` task configs.
    fn task_configs(&self, max_tasks: usize) -> Result<Vec<Props>>;
    /// Stops.
    fn stop(&mut self);
}

/// A source task, type-erased, for the runtime.
pub trait DynSourceTask: Send {
    /// See [`SourceTask::start`].
    fn start(&mut self, config: Props, context: SourceTaskContext) -> BoxFuture<'_, Result<()>>;
    /// See [`SourceTask::poll`].
    fn poll(&mut self) -> BoxFuture<'_, Result<Vec<SourceRecord>>>;
    /// See [`SourceTask::stop`].
    fn stop(&mut self) -> BoxFuture<'_, ()>;
}

/// A sink task, type-erased, for the runtime.
pub trait DynSinkTask: Send {
    /// See [`SinkTask::start`].
    fn start(&mut self, config: Props) -> BoxFuture<'_, Result<()>>;
    /// See [`SinkTask::put`].
    fn put(&mut self, records: Vec<SinkRecord>) -> BoxFuture<'_, Result<()>>;
    /// See [`SinkTask::flush`].
    fn flush<'a>(
        &'a mut self,
        offsets: &'a BTreeMap<TopicPartition, i64>,
    ) -> BoxFuture<'a, Result<()>>;
    /// See [`SinkTask::stop`].
    fn stop(&mut self) -> BoxFuture<'_, ()>;
}

impl<T: SourceTask> DynSourceTask for T {
    fn start(&mut self, config: Props, context: SourceTaskContext) -> BoxFuture<'_, Result<()>> {
        Box::pin(SourceTask::start(self, config, context))
    }
    fn poll(&mut self) -> BoxFuture<'_, Result<Vec<SourceRecord>>> {
        Box::pin(SourceTask::poll(self))
    }
    fn stop(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(SourceTask::stop(self))
    }
}

impl<T: SinkTask> DynSinkTask for T {
    fn start(&mut self, config: Props) -> BoxFuture<'_, Result<()>> {
        Box::pin(SinkTask::start(self, config))
    }
    fn put(&mut self, records: Vec<SinkRecord>) -> BoxFuture<'_, Result<()>> {
        Box::pin(SinkTask::put(self, records))
    }
    fn flush<'a>(
        &'a mut self,
        offsets: &'a BTreeMap<TopicPartition, i64>,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(SinkTask::flush(self, offsets))
    }
    fn stop(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(SinkTask::stop(self))
    }
}

struct SourceAdapter<C>(C);
struct SinkAdapter<C>(C);

impl<C: SourceConnector> DynConnector for SourceAdapter<C> {
    fn start(&mut self, config: Config) -> Result<()> {
        self.0.start(config)
    }
    fn task_configs(&self, max_tasks: usize) -> Result<Vec<Props>> {
        self.0.task_configs(max_tasks)
    }
    fn stop(&mut self) {
        self.0.stop();
    }
}

impl<C: SinkConnector> DynConnector for SinkAdapter<C> {
    fn start(&mut self, config: Config) -> Result<()> {
        self.0.start(config)
    }
    fn task_configs(&self, max_tasks: usize) -> Result<Vec<Props>> {
        self.0.task_configs(max_tasks)
    }
    fn stop(&mut self) {
        self.0.stop();
    }
}

/// Makes a plugin's task.
#[derive(Clone, Copy)]
pub enum TaskFactory {
    /// A source task.
    Source(fn() -> Box<dyn DynSourceTask>),
    /// A sink task.
    Sink(fn() -> Box<dyn DynSinkTask>),
}

impl std::fmt::Debug for TaskFactory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TaskFactory::Source(_) => "TaskFactory::Source",
            TaskFactory::Sink(_) => "TaskFactory::Sink",
        })
    }
}

/// A connector plugin: its class name, aliases, type, config definition and factories.
#[derive(Debug, Clone)]
pub struct Plugin {
    /// The full class name (`org.apache.kafka.connect.file.FileStreamSourceConnector`).
    pub class: String,
    /// Other names it answers to (`FileStreamSourceConnector`, `FileStreamSource`).
    pub aliases: Vec<String>,
    /// Source or sink.
    pub kind: ConnectorType,
    /// Its version.
    pub version: String,
    config_def: fn() -> ConfigDef,
    connector: fn() -> Box<dyn DynConnector>,
    task: TaskFactory,
}

impl Plugin {
    /// The plugin of a typed source connector.
    pub fn source<C: SourceConnector + Default>(class: &str) -> Self {
        Plugin {
            class: class.to_owned(),
            aliases: aliases(class, "Connector"),
            kind: ConnectorType::Source,
            version: env!("CARGO_PKG_VERSION").to_owned(),
            config_def: C::config_def,
            connector: || Box::new(SourceAdapter(C::default())),
            task: TaskFactory::Source(|| Box::new(C::Task::default())),
        }
    }

    /// The plugin of a typed sink connector.
    pub fn sink<C: SinkConnector + Default>(class: &str) -> Self {
        Plugin {
            class: class.to_owned(),
            aliases: aliases(class, "Connector"),
            kind: ConnectorType::Sink,
            version: env!("CARGO_PKG_VERSION").to_owned(),
            config_def: C::config_def,
            connector: || Box::new(SinkAdapter(C::default())),
            task: TaskFactory::Sink(|| Box::new(C::Task::default())),
        }
    }

    /// Adds an alias.
    pub fn alias(mut self, alias: &str) -> Self {
        self.aliases.push(alias.to_owned());
        self
    }

    /// Its own config definition.
    pub fn config_def(&self) -> ConfigDef {
        (self.config_def)()
    }

    /// A new connector instance.
    pub fn connector(&self) -> Box<dyn DynConnector> {
        (self.connector)()
    }

    /// Its task factory.
    pub fn task(&self) -> TaskFactory {
        self.task
    }

    /// Whether `name` is this plugin's class or an alias.
    pub fn answers_to(&self, name: &str) -> bool {
        self.class == name || self.aliases.iter().any(|a| a == name)
    }
}

/// Kafka's aliases of a class: its simple name, and the simple name without `suffix`.
pub fn aliases(class: &str, suffix: &str) -> Vec<String> {
    let simple = class.rsplit('.').next().unwrap_or(class);
    let mut out = Vec::new();
    if simple != class {
        out.push(simple.to_owned());
    }
    if let Some(pruned) = simple.strip_suffix(suffix)
        && !pruned.is_empty()
    {
        out.push(pruned.to_owned());
    }
    out
}

/// The connector plugins a worker can run.
#[derive(Debug, Clone, Default)]
pub struct Plugins {
    plugins: Vec<Plugin>,
}

impl Plugins {
    /// No plugins.
    pub fn empty() -> Self {
        Plugins::default()
    }

    /// The built-in connectors: FileStreamSource, FileStreamSink, the datagen source, the JDBC
    /// (PostgreSQL) source and sink.
    pub fn builtin() -> Self {
        Plugins::empty()
            .with(Plugin::source::<
                crate::connectors::file::FileStreamSourceConnector,
            >(
                "org.apache.kafka.connect.file.FileStreamSourceConnector"
            ))
            .with(Plugin::sink::<
                crate::connectors::file::FileStreamSinkConnector,
            >(
                "org.apache.kafka.connect.file.FileStreamSinkConnector"
            ))
            .with(
                Plugin::source::<crate::connectors::datagen::DatagenConnector>(
                    "io.confluent.kafka.connect.datagen.DatagenConnector",
                )
                .alias("datagen"),
            )
            .with(
                Plugin::source::<crate::connectors::postgres::JdbcSourceConnector>(
                    "io.confluent.connect.jdbc.JdbcSourceConnector",
                )
                .alias("PostgresSource"),
            )
            .with(
                Plugin::sink::<crate::connectors::postgres::JdbcSinkConnector>(
                    "io.confluent.connect.jdbc.JdbcSinkConnector",
                )
                .alias("PostgresSink"),
            )
    }

    /// Adds a plugin.
    pub fn with(mut self, plugin: Plugin) -> Self {
        self.plugins.push(plugin);
        self
    }

    /// Every plugin.
    pub fn all(&self) -> &[Plugin] {
        &self.plugins
    }

    /// The plugin of a class name or alias; an error listing the available ones.
    pub fn get(&self, name: &str) -> Result<&Plugin> {
        let name = name.trim();
        self.plugins
            .iter()
            .find(|p| p.answers_to(name))
            .ok_or_else(|| Error::UnknownClass {
                kind: "connector",
                name: name.to_owned(),
                available: self
                    .plugins
                    .iter()
                    .flat_map(|p| std::iter::once(p.class.clone()).chain(p.aliases.clone()))
                    .collect(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafkas_aliases_are_the_simple_name_and_its_pruned_form() {
        assert_eq!(
            aliases(
                "org.apache.kafka.connect.file.FileStreamSourceConnector",
                "Connector"
            ),
            ["FileStreamSourceConnector", "FileStreamSource"]
        );
        let p = Plugins::builtin();
        for name in [
            "FileStreamSource",
            "FileStreamSinkConnector",
            "org.apache.kafka.connect.file.FileStreamSinkConnector",
            "datagen",
            "DatagenConnector",
            "io.confluent.connect.jdbc.JdbcSourceConnector",
            "JdbcSinkConnector",
            "PostgresSource",
        ] {
            assert!(p.get(name).is_ok(), "{name}");
        }
        let e = p.get("MongoSourceConnector").unwrap_err().to_string();
        assert!(
            e.contains("connector class \"MongoSourceConnector\" not found"),
            "{e}"
        );
        assert!(e.contains("FileStreamSource,"), "{e}");
    }
}
