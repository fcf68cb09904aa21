//! The broker's settings, in Kafka's `server.properties` form.
//!
//! Every key Sluice acts on is in [`SETTINGS`] with its default and meaning (`sluice broker
//! --help` prints the table). Topic defaults are set with Kafka's broker-level synonyms
//! (`log.retention.ms` for `retention.ms`, ...). Every other key of Kafka's broker configuration
//! (`kafka_keys`: `num.network.threads`, `process.roles`, `replica.lag.time.max.ms`, ...) has no
//! meaning on one node without replication and is accepted with a warning, so a Kafka
//! `server.properties` works as it is; a key that is no Kafka key at all is an error naming it and
//! the nearest known key.
//!
//! Listeners are Kafka's: `NAME://host:port`, the name's security protocol from
//! `listener.security.protocol.map` (or the name itself), and the listeners named in
//! `controller.listener.names` (KRaft's `CONTROLLER://:9093`) skipped with a warning, since one
//! Sluice node is its own controller. One PLAINTEXT client listener is served; SSL and SASL ones
//! are refused as not supported yet.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use sluice_log::config::TopicConfig;
use sluice_log::log::PageCacheWindow;

use crate::error::{BrokerError, Result};

mod kafka_keys;

/// The security protocols Kafka knows, which are also the listener names that need no entry in
/// `listener.security.protocol.map`.
const SECURITY_PROTOCOLS: &[&str] = &["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"];

/// One listener: `NAME://host:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    /// The listener name (upper case): a security protocol (`PLAINTEXT`) or a name that
    /// `listener.security.protocol.map` maps to one (`CONTROLLER`, `CLIENT`).
    pub name: String,
    /// Host to bind or advertise; empty binds every interface.
    pub host: String,
    /// Port; 0 binds an ephemeral port (the one bound is advertised).
    pub port: u16,
}

impl Listener {
    /// Parses `PLAINTEXT://127.0.0.1:9092` (also `PLAINTEXT://:9092`, `PLAINTEXT://[::1]:9092`
    /// and any listener name, `CONTROLLER://:9093`). Which protocol a name stands for is
    /// settled by [`BrokerConfig::validate`], once every key is read.
    pub fn parse(s: &str) -> Result<Listener> {
        let bad = |why: &str| {
            config_error(
                "listeners",
                format!("`{s}`: {why}; expected NAME://host:port, e.g. PLAINTEXT://127.0.0.1:9092"),
            )
        };
        let (name, rest) = s.trim().split_once("://").ok_or_else(|| bad("no `://`"))?;
        let name = name.trim().to_ascii_uppercase();
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(bad("the listener name must be letters, digits, `_` or `-`"));
        }
        let (host, port) = rest.rsplit_once(':').ok_or_else(|| bad("no port"))?;
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = port
            .parse::<u16>()
            .map_err(|_| bad("the port is not a number 0-65535"))?;
        Ok(Listener { name, host, port })
    }

    fn parse_list(key: &str, value: &str) -> Result<Vec<Listener>> {
        let list = value
            .split(',')
            .filter(|s| !s.trim().is_empty())
            .map(Listener::parse)
            .collect::<Result<Vec<_>>>()
            .map_err(|e| match e {
                BrokerError::Config { message, .. } => BrokerError::Config {
                    key: key.into(),
                    message,
                },
                other => other,
            })?;
        if list.is_empty() {
            return Err(config_error(key, "no listener given"));
        }
        for (i, l) in list.iter().enumerate() {
            if list[..i].iter().any(|m| m.name == l.name) {
                return Err(config_error(
                    key,
                    format!("listener name {} is given twice", l.name),
                ));
            }
        }
        Ok(list)
    }
}

impl std::fmt::Display for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "{}://[{}]:{}", self.name, self.host, self.port)
        } else {
            write!(f, "{}://{}:{}", self.name, self.host, self.port)
        }
    }
}

/// The broker's settings.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// `listeners`: where to accept connections.
    pub listener: Listener,
    /// `advertised.listeners`: what Metadata tells clients (default: `listeners`, with the bound
    /// port when that is 0).
    pub advertised: Option<Listener>,
    /// `listeners` as given, the controller listener included.
    listeners: Vec<Listener>,
    /// `advertised.listeners` as given.
    advertised_listeners: Vec<Listener>,
    /// `controller.listener.names`, upper case.
    controller_listener_names: Vec<String>,
    /// `listener.security.protocol.map`, if set: listener name to security protocol.
    protocol_map: Option<BTreeMap<String, String>>,
    /// Whether `node.id` was set (`broker.id`, its older name, applies only when not).
    node_id_set: bool,
    /// `log.dirs` / `log.dir`: the data directory.
    pub log_dir: PathBuf,
    /// `node.id`: this broker's id in Metadata.
    pub node_id: i32,
    /// `cluster.id` reported by Metadata and DescribeCluster.
    pub cluster_id: String,
    /// `auto.create.topics.enable`: create unknown topics on Metadata and Produce.
    pub auto_create_topics: bool,
    /// `num.partitions`: partitions of auto-created topics and of CreateTopics with -1.
    pub num_partitions: i32,
    /// `log.page.cache.window.bytes`: bytes behind each partition's end kept in the page cache
    /// (`auto`, the default: 64 MiB where the host reclaims free memory, else everything as
    /// Kafka; -1: everything).
    pub page_cache_window: PageCacheWindow,
    /// `socket.request.max.bytes`: largest request frame accepted; a larger one closes the
    /// connection.
    pub socket_request_max_bytes: usize,
    /// `connections.max.idle.ms`: idle connections are closed after this long.
    pub connections_max_idle: Duration,
    /// `group.initial.rebalance.delay.ms`.
    pub group_initial_rebalance_delay_ms: i32,
    /// `group.min.session.timeout.ms`.
    pub group_min_session_timeout_ms: i32,
    /// `group.max.session.timeout.ms`.
    pub group_max_session_timeout_ms: i32,
    /// `transaction.max.timeout.ms`: the longest `transaction.timeout.ms` a producer may ask for.
    pub transaction_max_timeout_ms: i32,
    /// `log.retention.check.interval.ms`.
    pub retention_check_interval: Duration,
    /// `log.flush.offset.checkpoint.interval.ms`.
    pub checkpoint_interval: Duration,
    /// `log.cleaner.backoff.ms`.
    pub cleaner_backoff: Duration,
    /// Topic defaults, by topic-level key (from `log.*` synonyms, `message.max.bytes`, ...).
    pub topic_defaults: BTreeMap<String, String>,
    /// Which synonym set each topic default (an index into the synonym table; lower is more
    /// precise), so `log.retention.ms` wins over `log.retention.hours` in any order.
    topic_defaults_source: BTreeMap<&'static str, usize>,
}

/// What a key does and its default, for `--help` and the error on an unknown key.
#[derive(Debug, Clone, Copy)]
pub struct Setting {
    /// Kafka's name of the key.
    pub key: &'static str,
    /// The default, as it would be written in the file.
    pub default: &'static str,
    /// One line on what it does.
    pub doc: &'static str,
}

const fn s(key: &'static str, default: &'static str, doc: &'static str) -> Setting {
    Setting { key, default, doc }
}

/// Every broker-level key Sluice acts on.
pub const SETTINGS: &[Setting] = &[
    s(
        "listeners",
        "PLAINTEXT://127.0.0.1:9092",
        "where to accept connections: one PLAINTEXT client listener (port 0 binds any free \
         port); a controller listener (controller.listener.names) is skipped",
    ),
    s(
        "advertised.listeners",
        "(listeners)",
        "the address Metadata gives clients",
    ),
    s(
        "log.dirs",
        "./sluice-data",
        "the data directory (one; `log.dir` is a synonym)",
    ),
    s("node.id", "1", "this broker's id"),
    s(
        "cluster.id",
        "sluice-cluster",
        "the cluster id reported to clients",
    ),
    s(
        "auto.create.topics.enable",
        "true",
        "create a topic when a client first asks for it",
    ),
    s("num.partitions", "1", "partitions of an auto-created topic"),
    s(
        "log.page.cache.window.bytes",
        "auto",
        "bytes behind each partition's end kept in the page cache; older data is written \
         back and dropped from it (-1: keep everything, as Kafka; auto: 64 MiB on a VM whose \
         host reclaims free memory, else -1)",
    ),
    s(
        "message.max.bytes",
        "1048588",
        "largest record batch accepted (topic default of max.message.bytes)",
    ),
    s(
        "socket.request.max.bytes",
        "104857600",
        "largest request frame; a larger one closes the connection",
    ),
    s(
        "connections.max.idle.ms",
        "600000",
        "close connections idle this long",
    ),
    s(
        "group.initial.rebalance.delay.ms",
        "3000",
        "how long the first rebalance of an empty group waits for more members",
    ),
    s(
        "group.min.session.timeout.ms",
        "6000",
        "smallest session.timeout.ms a consumer may ask for",
    ),
    s(
        "group.max.session.timeout.ms",
        "1800000",
        "largest session.timeout.ms a consumer may ask for",
    ),
    s(
        "transaction.max.timeout.ms",
        "900000",
        "largest transaction.timeout.ms a producer may ask for",
    ),
    s(
        "log.retention.check.interval.ms",
        "300000",
        "how often retention runs",
    ),
    s(
        "log.flush.offset.checkpoint.interval.ms",
        "60000",
        "how often recovery points are checkpointed",
    ),
    s(
        "log.cleaner.backoff.ms",
        "15000",
        "pause between compaction passes",
    ),
    s(
        "log.segment.bytes",
        "1073741824",
        "topic default: segment.bytes",
    ),
    s(
        "log.roll.ms",
        "(log.roll.hours)",
        "topic default: segment.ms",
    ),
    s(
        "log.roll.hours",
        "168",
        "topic default: segment.ms, in hours",
    ),
    s(
        "log.retention.ms",
        "(log.retention.minutes)",
        "topic default: retention.ms",
    ),
    s(
        "log.retention.minutes",
        "(log.retention.hours)",
        "topic default: retention.ms, in minutes",
    ),
    s(
        "log.retention.hours",
        "168",
        "topic default: retention.ms, in hours",
    ),
    s(
        "log.retention.bytes",
        "-1",
        "topic default: retention.bytes",
    ),
    s(
        "log.cleanup.policy",
        "delete",
        "topic default: cleanup.policy",
    ),
    s(
        "log.cleaner.delete.retention.ms",
        "86400000",
        "topic default: delete.retention.ms",
    ),
    s(
        "log.cleaner.min.compaction.lag.ms",
        "0",
        "topic default: min.compaction.lag.ms",
    ),
    s(
        "log.cleaner.max.compaction.lag.ms",
        "9223372036854775807",
        "topic default: max.compaction.lag.ms",
    ),
    s(
        "log.cleaner.min.cleanable.ratio",
        "0.5",
        "topic default: min.cleanable.dirty.ratio",
    ),
    s(
        "log.index.interval.bytes",
        "4096",
        "topic default: index.interval.bytes",
    ),
    s(
        "log.index.size.max.bytes",
        "10485760",
        "topic default: segment.index.bytes",
    ),
    s(
        "log.flush.interval.messages",
        "9223372036854775807",
        "topic default: flush.messages",
    ),
    s("log.flush.interval.ms", "(none)", "topic default: flush.ms"),
    s(
        "log.message.timestamp.type",
        "CreateTime",
        "topic default: message.timestamp.type",
    ),
    s(
        "log.message.timestamp.before.max.ms",
        "9223372036854775807",
        "topic default: message.timestamp.before.max.ms",
    ),
    s(
        "log.message.timestamp.after.max.ms",
        "3600000",
        "topic default: message.timestamp.after.max.ms",
    ),
    s(
        "log.segment.delete.delay.ms",
        "60000",
        "topic default: file.delete.delay.ms",
    ),
    s("log.preallocate", "false", "topic default: preallocate"),
    s(
        "compression.type",
        "producer",
        "topic default: compression.type",
    ),
    s(
        "min.insync.replicas",
        "1",
        "topic default: min.insync.replicas",
    ),
];

/// Broker keys that set a topic default, with the topic key and a unit multiplier.
const TOPIC_SYNONYMS: &[(&str, &str, i64)] = &[
    ("message.max.bytes", "max.message.bytes", 1),
    ("log.segment.bytes", "segment.bytes", 1),
    ("log.roll.ms", "segment.ms", 1),
    ("log.roll.hours", "segment.ms", 3_600_000),
    ("log.retention.ms", "retention.ms", 1),
    ("log.retention.minutes", "retention.ms", 60_000),
    ("log.retention.hours", "retention.ms", 3_600_000),
    ("log.retention.bytes", "retention.bytes", 1),
    ("log.cleanup.policy", "cleanup.policy", 1),
    ("log.cleaner.delete.retention.ms", "delete.retention.ms", 1),
    (
        "log.cleaner.min.compaction.lag.ms",
        "min.compaction.lag.ms",
        1,
    ),
    (
        "log.cleaner.max.compaction.lag.ms",
        "max.compaction.lag.ms",
        1,
    ),
    (
        "log.cleaner.min.cleanable.ratio",
        "min.cleanable.dirty.ratio",
        1,
    ),
    ("log.index.interval.bytes", "index.interval.bytes", 1),
    ("log.index.size.max.bytes", "segment.index.bytes", 1),
    ("log.flush.interval.messages", "flush.messages", 1),
    ("log.flush.interval.ms", "flush.ms", 1),
    ("log.message.timestamp.type", "message.timestamp.type", 1),
    (
        "log.message.timestamp.before.max.ms",
        "message.timestamp.before.max.ms",
        1,
    ),
    (
        "log.message.timestamp.after.max.ms",
        "message.timestamp.after.max.ms",
        1,
    ),
    ("log.segment.delete.delay.ms", "file.delete.delay.ms", 1),
    ("log.preallocate", "preallocate", 1),
    ("compression.type", "compression.type", 1),
];

impl Default for BrokerConfig {
    fn default() -> Self {
        Self {
            listener: Listener {
                name: "PLAINTEXT".into(),
                host: "127.0.0.1".into(),
                port: 9092,
            },
            advertised: None,
            listeners: Vec::new(),
            advertised_listeners: Vec::new(),
            controller_listener_names: Vec::new(),
            protocol_map: None,
            node_id_set: false,
            log_dir: PathBuf::from("./sluice-data"),
            node_id: 1,
            cluster_id: "sluice-cluster".into(),
            auto_create_topics: true,
            num_partitions: 1,
            page_cache_window: PageCacheWindow::Auto,
            socket_request_max_bytes: 104_857_600,
            connections_max_idle: Duration::from_millis(600_000),
            group_initial_rebalance_delay_ms: 3_000,
            group_min_session_timeout_ms: 6_000,
            group_max_session_timeout_ms: 1_800_000,
            transaction_max_timeout_ms: 900_000,
            retention_check_interval: Duration::from_millis(300_000),
            checkpoint_interval: Duration::from_millis(60_000),
            cleaner_backoff: Duration::from_millis(15_000),
            topic_defaults: BTreeMap::new(),
            topic_defaults_source: BTreeMap::new(),
        }
    }
}

/// A [`BrokerError::Config`] for `key`.
fn config_error(key: impl Into<String>, message: impl Into<String>) -> BrokerError {
    BrokerError::Config {
        key: key.into(),
        message: message.into(),
    }
}

fn parse_num<T: std::str::FromStr>(key: &str, value: &str, what: &str) -> Result<T> {
    value
        .trim()
        .parse::<T>()
        .map_err(|_| config_error(key, format!("`{value}` is not {what}")))
}

/// Parses `listener.security.protocol.map`: `NAME:PROTOCOL` pairs separated by commas.
fn parse_protocol_map(key: &str, value: &str) -> Result<BTreeMap<String, String>> {
    let mut map = BTreeMap::new();
    for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let Some((name, protocol)) = entry.split_once(':') else {
            return Err(config_error(
                key,
                format!("`{entry}` is not NAME:PROTOCOL, e.g. CONTROLLER:PLAINTEXT"),
            ));
        };
        let protocol = protocol.trim().to_ascii_uppercase();
        if !SECURITY_PROTOCOLS.contains(&protocol.as_str()) {
            return Err(config_error(
                key,
                format!(
                    "`{entry}`: {protocol} is not a security protocol ({})",
                    SECURITY_PROTOCOLS.join(", ")
                ),
            ));
        }
        map.insert(name.trim().to_ascii_uppercase(), protocol);
    }
    Ok(map)
}

fn parse_ms(key: &str, value: &str) -> Result<Duration> {
    let ms: u64 = parse_num(key, value, "a non-negative number of milliseconds")?;
    Ok(Duration::from_millis(ms))
}

impl BrokerConfig {
    /// Reads a `server.properties` text (`key=value` or `key: value` lines, `#`/`!` comments)
    /// over the defaults.
    pub fn from_properties(text: &str) -> Result<BrokerConfig> {
        let mut config = BrokerConfig::default();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
                continue;
            }
            let Some((k, v)) = line.split_once(['=', ':']) else {
                return Err(config_error(
                    line,
                    format!("line {}: expected key=value", n + 1),
                ));
            };
            config.set(k.trim(), v.trim())?;
        }
        config.validate()?;
        Ok(config)
    }

    /// Sets one key, as a `server.properties` line or a `--override key=value` would.
    pub fn set(&mut self, key: &str, value: &str) -> Result<()> {
        match key {
            "listeners" => {
                self.listeners = Listener::parse_list(key, value)?;
                self.select_listeners();
            }
            "advertised.listeners" => {
                self.advertised_listeners = Listener::parse_list(key, value)?;
                self.select_listeners();
            }
            "controller.listener.names" => {
                self.controller_listener_names = value
                    .split(',')
                    .map(|n| n.trim().to_ascii_uppercase())
                    .filter(|n| !n.is_empty())
                    .collect();
                self.select_listeners();
            }
            "listener.security.protocol.map" => {
                self.protocol_map = Some(parse_protocol_map(key, value)?);
                self.select_listeners();
            }
            "log.dirs" | "log.dir" => {
                let dirs: Vec<&str> = value
                    .split(',')
                    .map(str::trim)
                    .filter(|d| !d.is_empty())
                    .collect();
                match dirs.as_slice() {
                    [one] => self.log_dir = PathBuf::from(one),
                    [] => {
                        return Err(config_error(key, "no directory given"));
                    }
                    _ => {
                        return Err(config_error(key, "one data directory is supported so far"));
                    }
                }
            }
            "node.id" => {
                self.node_id = parse_num(key, value, "a node id (a non-negative 32-bit integer)")?;
                self.node_id_set = true;
            }
            "broker.id" => {
                // Kafka's older name of node.id, still its synonym; node.id wins.
                let id: i32 = parse_num(key, value, "a broker id (a 32-bit integer)")?;
                if !self.node_id_set && id >= 0 {
                    self.node_id = id;
                }
            }
            "cluster.id" => self.cluster_id = value.to_owned(),
            "auto.create.topics.enable" => {
                self.auto_create_topics = parse_num(key, value, "true or false")?;
            }
            "num.partitions" => {
                self.num_partitions = parse_num(key, value, "a positive number of partitions")?
            }
            "log.page.cache.window.bytes" => {
                self.page_cache_window = value.parse().map_err(|e| config_error(key, e))?;
            }
            "socket.request.max.bytes" => {
                self.socket_request_max_bytes =
                    parse_num(key, value, "a positive number of bytes")?;
            }
            "connections.max.idle.ms" => self.connections_max_idle = parse_ms(key, value)?,
            "group.initial.rebalance.delay.ms" => {
                self.group_initial_rebalance_delay_ms = parse_num(key, value, "milliseconds")?;
            }
            "group.min.session.timeout.ms" => {
                self.group_min_session_timeout_ms = parse_num(key, value, "milliseconds")?;
            }
            "group.max.session.timeout.ms" => {
                self.group_max_session_timeout_ms = parse_num(key, value, "milliseconds")?;
            }
            "transaction.max.timeout.ms" => {
                self.transaction_max_timeout_ms = parse_num(key, value, "milliseconds")?;
            }
            "log.retention.check.interval.ms" => {
                self.retention_check_interval = parse_ms(key, value)?
            }
            "log.flush.offset.checkpoint.interval.ms" => {
                self.checkpoint_interval = parse_ms(key, value)?
            }
            "log.cleaner.backoff.ms" => self.cleaner_backoff = parse_ms(key, value)?,
            _ => {
                if let Some(&(_, topic_key, unit)) =
                    TOPIC_SYNONYMS.iter().find(|(k, _, _)| *k == key)
                {
                    let value = if unit == 1 {
                        value.to_owned()
                    } else {
                        let n: i64 = parse_num(key, value, "a whole number")?;
                        n.checked_mul(unit)
                            .ok_or_else(|| config_error(key, format!("`{value}` is too large")))?
                            .to_string()
                    };
                    // Kafka's precedence: ms over minutes over hours.
                    let precise = |k: &str| TOPIC_SYNONYMS.iter().position(|(s, _, _)| *s == k);
                    let this = precise(key);
                    let set_by = self.topic_defaults_source.get(topic_key).copied();
                    let wins = match (set_by, this) {
                        (Some(prev), Some(this)) => this <= prev,
                        _ => true,
                    };
                    if wins {
                        // Validate now, so the error names the broker key.
                        TopicConfig::from_pairs([(topic_key, value.as_str())])
                            .map_err(|e| config_error(key, sluice_log::report(&e).to_string()))?;
                        self.topic_defaults.insert(topic_key.to_owned(), value);
                        if let Some(this) = this {
                            self.topic_defaults_source.insert(topic_key, this);
                        }
                    }
                } else if let Some(known) = kafka_keys::lookup(key) {
                    match known {
                        kafka_keys::KafkaKey::Current => tracing::warn!(
                            key,
                            "Kafka setting with no effect on a single Sluice node; ignored"
                        ),
                        kafka_keys::KafkaKey::Removed => tracing::warn!(
                            key,
                            "Kafka setting removed in Kafka 4.0, with no effect here; ignored"
                        ),
                        kafka_keys::KafkaKey::Family(what) => tracing::warn!(
                            key,
                            family = what,
                            "Kafka setting with no effect on a single Sluice node; ignored"
                        ),
                    }
                } else {
                    return Err(config_error(key, unknown_key_message(key)));
                }
            }
        }
        Ok(())
    }

    /// Checks values that only make sense together; called after a file and overrides are read.
    pub fn validate(&self) -> Result<()> {
        if self.node_id < 0 {
            return Err(config_error(
                "node.id",
                format!("{} is negative", self.node_id),
            ));
        }
        if self.num_partitions < 1 {
            return Err(config_error(
                "num.partitions",
                format!("{} is below 1", self.num_partitions),
            ));
        }
        self.check_listeners()?;
        if self.socket_request_max_bytes < 1024 {
            return Err(config_error(
                "socket.request.max.bytes",
                "must be at least 1024",
            ));
        }
        if let Some(a) = &self.advertised
            && (a.host.is_empty() || a.port == 0)
        {
            return Err(config_error(
                "advertised.listeners",
                format!("`{a}` needs a host and a non-zero port"),
            ));
        }
        self.topic_defaults()?;
        Ok(())
    }

    /// Picks the client listener (the first not named in `controller.listener.names`) and its
    /// advertised address. Never fails: what is wrong is reported by [`Self::validate`], when
    /// every key is read (Kafka's files set `listeners` before `controller.listener.names`).
    fn select_listeners(&mut self) {
        let controllers = &self.controller_listener_names;
        if let Some(l) = self
            .listeners
            .iter()
            .find(|l| !controllers.contains(&l.name))
        {
            self.listener = l.clone();
        }
        self.advertised = self
            .advertised_listeners
            .iter()
            .find(|a| a.name == self.listener.name)
            .cloned();
    }

    /// The security protocol of listener `name`: its entry in `listener.security.protocol.map`,
    /// else the name itself when it is a protocol, else PLAINTEXT for a controller listener
    /// without a map (Kafka's defaults).
    fn protocol_of(&self, name: &str) -> Option<String> {
        if let Some(p) = self.protocol_map.as_ref().and_then(|m| m.get(name)) {
            return Some(p.clone());
        }
        if SECURITY_PROTOCOLS.contains(&name) {
            return Some(name.to_owned());
        }
        (self.protocol_map.is_none() && self.controller_listener_names.iter().any(|c| c == name))
            .then(|| "PLAINTEXT".to_owned())
    }

    /// The listeners of `listeners` named in `controller.listener.names`: KRaft's controller
    /// endpoints, which one Sluice node does not serve.
    pub fn controller_listeners(&self) -> impl Iterator<Item = &Listener> {
        self.listeners
            .iter()
            .filter(|l| self.controller_listener_names.contains(&l.name))
    }

    fn check_listeners(&self) -> Result<()> {
        let mut clients: Vec<&Listener> = Vec::new();
        for l in &self.listeners {
            if self.controller_listener_names.contains(&l.name) {
                continue;
            }
            let Some(protocol) = self.protocol_of(&l.name) else {
                return Err(config_error(
                    "listeners",
                    format!(
                        "listener `{l}` has no security protocol: name it {} or map its name in \
                         listener.security.protocol.map",
                        SECURITY_PROTOCOLS.join(", ")
                    ),
                ));
            };
            if protocol != "PLAINTEXT" {
                return Err(config_error(
                    "listeners",
                    format!(
                        "listener `{l}` is {protocol}: {protocol} listeners are not supported yet; \
                         Sluice serves PLAINTEXT listeners only"
                    ),
                ));
            }
            clients.push(l);
        }
        match clients.as_slice() {
            [] if !self.listeners.is_empty() => {
                return Err(config_error(
                    "listeners",
                    "every listener is a controller listener (controller.listener.names); \
                     Sluice needs one PLAINTEXT listener for clients",
                ));
            }
            [a, b, ..] => {
                return Err(config_error(
                    "listeners",
                    format!(
                        "one client listener is served so far, and `{a}` and `{b}` are both \
                         client listeners"
                    ),
                ));
            }
            _ => {}
        }
        for a in &self.advertised_listeners {
            if self.controller_listener_names.contains(&a.name) {
                continue;
            }
            let listed = self.listeners.iter().any(|l| l.name == a.name)
                || (self.listeners.is_empty() && a.name == self.listener.name);
            if !listed {
                return Err(config_error(
                    "advertised.listeners",
                    format!("`{a}`: listener {} is not one of `listeners`", a.name),
                ));
            }
        }
        Ok(())
    }

    /// The topic defaults as a [`TopicConfig`]: each topic key from the broker key that set
    /// it, else from that key's own default, as Kafka's topic defaults come from its broker's
    /// keys (`log.message.timestamp.after.max.ms` is an hour where a topic key alone would be
    /// unbounded).
    pub fn topic_defaults(&self) -> Result<TopicConfig> {
        let mut pairs: BTreeMap<&str, String> = BTreeMap::new();
        for &(_, topic_key, _) in TOPIC_SYNONYMS {
            if pairs.contains_key(topic_key) {
                continue;
            }
            if let Some(value) = self.topic_defaults.get(topic_key) {
                pairs.insert(topic_key, value.clone());
            } else if let Some((key, default)) = self.topic_key_synonyms(topic_key).default {
                let unit = TOPIC_SYNONYMS
                    .iter()
                    .find(|(k, _, _)| *k == key)
                    .map_or(1, |(_, _, unit)| *unit);
                let value = if unit == 1 {
                    default.to_owned()
                } else {
                    let n: i64 = parse_num(key, default, "a whole number")?;
                    n.saturating_mul(unit).to_string()
                };
                pairs.insert(topic_key, value);
            }
        }
        TopicConfig::from_pairs(pairs)
            .map_err(|e| config_error("log.*", sluice_log::report(&e).to_string()))
    }

    /// `--help`'s table of every setting.
    pub fn help_table() -> String {
        let width = SETTINGS.iter().map(|s| s.key.len()).max().unwrap_or(0);
        let mut out =
            String::from("Settings (server.properties keys; also --override key=value):\n");
        for s in SETTINGS {
            out.push_str(&format!(
                "  {:width$}  {}  [default: {}]\n",
                s.key, s.doc, s.default
            ));
        }
        out
    }
}

/// One broker setting as DescribeConfigs shows it.
#[derive(Debug, Clone)]
pub struct SettingValue {
    /// The setting.
    pub setting: &'static Setting,
    /// The value in effect, as it would be written in the file; `None` for a key that is
    /// unset and has no default of its own (`log.retention.ms` falls back to
    /// `log.retention.minutes`, then `log.retention.hours`).
    pub value: Option<String>,
    /// Set (in the file or by an override) rather than left at its default.
    pub is_set: bool,
}

/// The broker-level keys behind a topic-level key, for DescribeConfigs' synonyms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicKeySynonyms {
    /// The broker key that set the topic default in this config, with its value as written.
    pub set: Option<(&'static str, String)>,
    /// The broker key whose default applies when none is set, with that default.
    pub default: Option<(&'static str, &'static str)>,
}

/// A setting's own default, or `None` where the default is another key (`(log.roll.hours)`)
/// or none at all (`(none)`).
fn own_default(s: &Setting) -> Option<&'static str> {
    (!s.default.starts_with('(')).then_some(s.default)
}

impl BrokerConfig {
    /// Every setting of [`SETTINGS`] with the value in effect.
    pub fn describe(&self) -> Vec<SettingValue> {
        SETTINGS
            .iter()
            .map(|setting| {
                let value = match self.own_value(setting.key) {
                    Some(v) => v,
                    None => match self.topic_synonym_value(setting.key) {
                        Some(v) => Some(v),
                        None => own_default(setting).map(str::to_owned),
                    },
                };
                let is_set = value.as_deref() != own_default(setting);
                SettingValue {
                    setting,
                    value,
                    is_set,
                }
            })
            .collect()
    }

    /// The value of a setting held in its own field (not a topic default), if it is one.
    fn own_value(&self, key: &str) -> Option<Option<String>> {
        let ms = |d: Duration| d.as_millis().to_string();
        Some(match key {
            "listeners" => Some(self.listener.to_string()),
            "advertised.listeners" => self.advertised.as_ref().map(ToString::to_string),
            "log.dirs" => Some(self.log_dir.display().to_string()),
            "node.id" => Some(self.node_id.to_string()),
            "cluster.id" => Some(self.cluster_id.clone()),
            "auto.create.topics.enable" => Some(self.auto_create_topics.to_string()),
            "num.partitions" => Some(self.num_partitions.to_string()),
            "log.page.cache.window.bytes" => Some(self.page_cache_window.to_string()),
            "socket.request.max.bytes" => Some(self.socket_request_max_bytes.to_string()),
            "connections.max.idle.ms" => Some(ms(self.connections_max_idle)),
            "group.initial.rebalance.delay.ms" => {
                Some(self.group_initial_rebalance_delay_ms.to_string())
            }
            "group.min.session.timeout.ms" => Some(self.group_min_session_timeout_ms.to_string()),
            "group.max.session.timeout.ms" => Some(self.group_max_session_timeout_ms.to_string()),
            "transaction.max.timeout.ms" => Some(self.transaction_max_timeout_ms.to_string()),
            "log.retention.check.interval.ms" => Some(ms(self.retention_check_interval)),
            "log.flush.offset.checkpoint.interval.ms" => Some(ms(self.checkpoint_interval)),
            "log.cleaner.backoff.ms" => Some(ms(self.cleaner_backoff)),
            _ => return None,
        })
    }

    /// The value of a broker key that sets a topic default, as written, if this key (rather
    /// than a synonym) set it.
    fn topic_synonym_value(&self, key: &str) -> Option<String> {
        let index = TOPIC_SYNONYMS.iter().position(|(k, _, _)| *k == key)?;
        let (_, topic_key, unit) = TOPIC_SYNONYMS[index];
        if self.topic_defaults_source.get(topic_key) != Some(&index) {
            return None;
        }
        let value = self.topic_defaults.get(topic_key)?;
        if unit == 1 {
            return Some(value.clone());
        }
        value.parse::<i64>().ok().map(|v| (v / unit).to_string())
    }

    /// The broker keys behind `topic_key` (a topic-level key such as `retention.ms`).
    pub fn topic_key_synonyms(&self, topic_key: &str) -> TopicKeySynonyms {
        let keys: Vec<&'static str> = TOPIC_SYNONYMS
            .iter()
            .filter(|(_, t, _)| *t == topic_key)
            .map(|(k, _, _)| *k)
            .collect();
        let set = keys
            .iter()
            .find_map(|k| self.topic_synonym_value(k).map(|v| (*k, v)));
        let default = keys.iter().find_map(|k| {
            SETTINGS
                .iter()
                .find(|s| s.key == *k)
                .and_then(own_default)
                .map(|d| (*k, d))
        });
        TopicKeySynonyms { set, default }
    }
}

fn unknown_key_message(key: &str) -> String {
    let nearest = SETTINGS
        .iter()
        .map(|s| s.key)
        .chain(kafka_keys::all_names())
        .min_by_key(|k| edit_distance(k, key));
    match nearest {
        Some(k) if edit_distance(k, key) <= 3.max(key.len() / 5) => format!(
            "not a Kafka broker setting; did you mean `{k}`? (`sluice broker --help` lists \
             Sluice's settings)"
        ),
        Some(k) => format!(
            "not a Kafka broker setting (the nearest known key is `{k}`; `sluice broker --help` \
             lists Sluice's settings)"
        ),
        None => "not a Kafka broker setting".into(),
    }
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_cache_window_is_auto_bytes_or_minus_one() {
        let c = BrokerConfig::from_properties("log.page.cache.window.bytes=67108864\n").unwrap();
        assert_eq!(c.page_cache_window, PageCacheWindow::Bytes(64 << 20));
        let c = BrokerConfig::from_properties("log.page.cache.window.bytes=-1\n").unwrap();
        assert_eq!(c.page_cache_window, PageCacheWindow::Unbounded);
        let c = BrokerConfig::from_properties("log.page.cache.window.bytes=auto\n").unwrap();
        assert_eq!(c.page_cache_window, PageCacheWindow::Auto);
        assert_eq!(
            BrokerConfig::default().page_cache_window,
            PageCacheWindow::Auto
        );
        let e = BrokerConfig::from_properties("log.page.cache.window.bytes=-5\n").unwrap_err();
        assert!(e.to_string().contains("log.page.cache.window.bytes"), "{e}");
        assert!(e.to_string().contains("auto, -1"), "{e}");
    }

    #[test]
    fn reads_a_kafka_style_file() {
        let c = BrokerConfig::from_properties(
            "# comment\nlisteners=PLAINTEXT://127.0.0.1:0\nlog.dirs=/tmp/x\nnode.id=3\n\
             num.partitions=4\nlog.retention.hours=1\nmessage.max.bytes=2000\nnum.network.threads=3\n",
        )
        .expect("valid");
        assert_eq!(c.listener.port, 0);
        assert_eq!(c.node_id, 3);
        assert_eq!(c.num_partitions, 4);
        assert_eq!(
            c.topic_defaults.get("retention.ms").map(String::as_str),
            Some("3600000")
        );
        assert_eq!(
            c.topic_defaults
                .get("max.message.bytes")
                .map(String::as_str),
            Some("2000")
        );
        let t = c.topic_defaults().expect("topic defaults");
        assert_eq!(t.max_message_bytes, 2000);
    }

    #[test]
    fn ms_wins_over_hours_in_any_order() {
        let a = BrokerConfig::from_properties("log.retention.ms=5\nlog.retention.hours=1\n")
            .expect("valid");
        let b = BrokerConfig::from_properties("log.retention.hours=1\nlog.retention.ms=5\n")
            .expect("valid");
        assert_eq!(a.topic_defaults.get("retention.ms"), Some(&"5".to_owned()));
        assert_eq!(b.topic_defaults.get("retention.ms"), Some(&"5".to_owned()));
    }

    #[test]
    fn describe_shows_every_setting_with_its_value() {
        let d = BrokerConfig::default().describe();
        assert_eq!(d.len(), SETTINGS.len());
        for v in &d {
            assert!(!v.is_set, "{} is at its default", v.setting.key);
            assert_eq!(
                v.value.as_deref(),
                own_default(v.setting),
                "{}",
                v.setting.key
            );
        }
        let c = BrokerConfig::from_properties(
            "node.id=7\nlog.retention.hours=2\nlog.cleanup.policy=compact\n",
        )
        .expect("valid");
        let d = c.describe();
        let get = |k: &str| {
            d.iter()
                .find(|v| v.setting.key == k)
                .map(|v| (v.value.clone(), v.is_set))
                .expect("listed")
        };
        assert_eq!(get("node.id"), (Some("7".into()), true));
        assert_eq!(get("log.retention.hours"), (Some("2".into()), true));
        assert_eq!(get("log.retention.ms"), (None, false));
        assert_eq!(get("log.cleanup.policy"), (Some("compact".into()), true));
        assert_eq!(get("num.partitions"), (Some("1".into()), false));
        let syn = c.topic_key_synonyms("retention.ms");
        assert_eq!(syn.set, Some(("log.retention.hours", "2".into())));
        assert_eq!(syn.default, Some(("log.retention.hours", "168")));
        let syn = c.topic_key_synonyms("segment.bytes");
        assert_eq!(syn.set, None);
        assert_eq!(syn.default, Some(("log.segment.bytes", "1073741824")));
    }

    #[test]
    fn bad_keys_and_values_are_named() {
        let e = BrokerConfig::from_properties("listners=PLAINTEXT://:1\n").expect_err("typo");
        let msg = e.to_string();
        assert!(
            msg.contains("listners") && msg.contains("did you mean `listeners`"),
            "{msg}"
        );
        let e = BrokerConfig::from_properties("num.partitions=zero\n").expect_err("bad value");
        assert!(e.to_string().contains("num.partitions"), "{e}");
        let e = BrokerConfig::from_properties("log.cleanup.policy=shred\n").expect_err("bad value");
        assert!(e.to_string().contains("log.cleanup.policy"), "{e}");
        let e = BrokerConfig::from_properties("listeners=SSL://:9093\n").expect_err("ssl");
        assert!(e.to_string().contains("PLAINTEXT"), "{e}");
        let e = BrokerConfig::from_properties("advertised.listeners=OTHER://h:1\n")
            .expect_err("not a listener");
        assert!(
            e.to_string().contains("OTHER is not one of `listeners`"),
            "{e}"
        );
    }

    #[test]
    fn a_controller_listener_is_skipped_wherever_it_is_named() {
        // Advertised controller listener, listeners left at the default, in any key order.
        let c = BrokerConfig::from_properties(
            "advertised.listeners=PLAINTEXT://h:9092,CONTROLLER://h:9093\n\
             controller.listener.names=CONTROLLER\n",
        )
        .expect("valid");
        assert_eq!(c.advertised.as_ref().map(|a| a.port), Some(9092));
        let c = BrokerConfig::from_properties(
            "listeners=CONTROLLER://:9093,PLAINTEXT://127.0.0.1:9092\n\
             controller.listener.names=CONTROLLER\n",
        )
        .expect("valid");
        assert_eq!(
            (c.listener.name.as_str(), c.listener.port),
            ("PLAINTEXT", 9092)
        );
        assert_eq!(c.controller_listeners().count(), 1);
    }
}
