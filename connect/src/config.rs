//! Configs: each connector's config definition ([`ConfigDef`], Kafka's `ConfigDef`: name, type,
//! default, importance, documentation) and its validation into the per-field results that
//! `PUT /connector-plugins/{plugin}/config/validate` returns; typed reads of a connector's
//! config ([`Config`]); `.properties` and JSON config files; the worker's config
//! ([`WorkerConfig`]) with Kafka's keys.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Value as Json, json};

use crate::error::{Error, Result};

/// A config as given: key -> value, both strings (as Kafka Connect's REST API carries them).
pub type Props = BTreeMap<String, String>;

/// The type of a config key, with Kafka's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigType {
    /// `BOOLEAN`.
    Boolean,
    /// `STRING`.
    String,
    /// `INT`.
    Int,
    /// `LONG`.
    Long,
    /// `DOUBLE`.
    Double,
    /// `LIST` (comma-separated).
    List,
    /// `CLASS` (a class name or alias).
    Class,
    /// `PASSWORD` (shown as `[hidden]`).
    Password,
}

impl ConfigType {
    /// Kafka's name.
    pub fn as_str(self) -> &'static str {
        match self {
            ConfigType::Boolean => "BOOLEAN",
            ConfigType::String => "STRING",
            ConfigType::Int => "INT",
            ConfigType::Long => "LONG",
            ConfigType::Double => "DOUBLE",
            ConfigType::List => "LIST",
            ConfigType::Class => "CLASS",
            ConfigType::Password => "PASSWORD",
        }
    }
}

/// How much a key matters, with Kafka's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Importance {
    /// `HIGH`.
    High,
    /// `MEDIUM`.
    Medium,
    /// `LOW`.
    Low,
}

impl Importance {
    /// Kafka's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Importance::High => "HIGH",
            Importance::Medium => "MEDIUM",
            Importance::Low => "LOW",
        }
    }
}

/// A check of a value beyond its type.
#[derive(Debug, Clone, PartialEq)]
pub enum Validator {
    /// One of these (case-insensitive).
    OneOf(Vec<String>),
    /// A number at least this.
    AtLeast(i64),
    /// A non-empty string or list.
    NonEmpty,
}

/// One key of a [`ConfigDef`].
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigKey {
    /// The key.
    pub name: String,
    /// Its type.
    pub ty: ConfigType,
    /// Its default; `None`: required.
    pub default: Option<String>,
    /// How much it matters.
    pub importance: Importance,
    /// What it does.
    pub documentation: String,
    /// Its group in `validate`'s answer (`Common`, `Transforms`, the connector's own...).
    pub group: String,
    /// A check beyond the type.
    pub validator: Option<Validator>,
}

/// A connector's (or transform's) config definition: its keys, in order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConfigDef {
    /// The keys.
    pub keys: Vec<ConfigKey>,
}

/// What `validate` says of one key: Kafka's `ConfigValue`.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigValue {
    /// The key.
    pub name: String,
    /// The value given (or its default).
    pub value: Option<String>,
    /// Values to suggest (a `OneOf`'s choices).
    pub recommended_values: Vec<String>,
    /// What is wrong with it.
    pub errors: Vec<String>,
}

impl ConfigDef {
    /// An empty definition.
    pub fn new() -> Self {
        ConfigDef::default()
    }

    /// Adds a key with a default (`None`: required), in `group`.
    #[allow(clippy::too_many_arguments)]
    pub fn define(
        mut self,
        name: &str,
        ty: ConfigType,
        default: Option<&str>,
        validator: Option<Validator>,
        importance: Importance,
        documentation: &str,
        group: &str,
    ) -> Self {
        self.keys.push(ConfigKey {
            name: name.to_owned(),
            ty,
            default: default.map(str::to_owned),
            importance,
            documentation: documentation.to_owned(),
            group: group.to_owned(),
            validator,
        });
        self
    }

    /// The key of this name.
    pub fn key(&self, name: &str) -> Option<&ConfigKey> {
        self.keys.iter().find(|k| k.name == name)
    }

    /// Appends another definition's keys.
    pub fn merge(mut self, other: ConfigDef) -> Self {
        for k in other.keys {
            if self.key(&k.name).is_none() {
                self.keys.push(k);
            }
        }
        self
    }

    /// Every key with its value and errors: a missing required key, a value not of its type
    /// or refused by its validator.
    pub fn validate(&self, props: &Props) -> Vec<ConfigValue> {
        self.keys
            .iter()
            .map(|k| {
                let value = props.get(&k.name).cloned().or_else(|| k.default.clone());
                let mut errors = Vec::new();
                match &value {
                    None => errors.push(format!(
                        "Missing required configuration \"{}\" which has no default value.",
                        k.name
                    )),
                    Some(v) => {
                        if let Err(e) = check_value(k, v) {
                            errors.push(e);
                        }
                    }
                }
                let recommended_values = match &k.validator {
                    Some(Validator::OneOf(v)) => v.clone(),
                    _ => Vec::new(),
                };
                ConfigValue {
                    name: k.name.clone(),
                    value,
                    recommended_values,
                    errors,
                }
            })
            .collect()
    }

    /// Kafka Connect's `validate` answer: `{name, error_count, groups, configs}`, each
    /// config with its `definition` and `value`.
    pub fn validation_json(&self, plugin: &str, values: &[ConfigValue]) -> Json {
        let mut groups: Vec<&str> = Vec::new();
        for k in &self.keys {
            if !groups.contains(&k.group.as_str()) {
                groups.push(&k.group);
            }
        }
        let configs: Vec<Json> = self
            .keys
            .iter()
            .zip(values)
            .enumerate()
            .map(|(i, (k, v))| {
                let shown = if k.ty == ConfigType::Password {
                    v.value.as_ref().map(|_| "[hidden]".to_owned())
                } else {
                    v.value.clone()
                };
                json!({
                    "definition": {
                        "name": k.name,
                        "type": k.ty.as_str(),
                        "required": k.default.is_none(),
                        "default_value": k.default,
                        "importance": k.importance.as_str(),
                        "documentation": k.documentation,
                        "group": k.group,
                        "width": "NONE",
                        "display_name": k.name,
                        "dependents": [],
                        "order": i + 1,
                    },
                    "value": {
                        "name": v.name,
                        "value": shown,
                        "recommended_values": v.recommended_values,
                        "errors": v.errors,
                        "visible": true,
                    }
                })
            })
            .collect();
        json!({
            "name": plugin,
            "error_count": values.iter().map(|v| v.errors.len()).sum::<usize>(),
            "groups": groups,
            "configs": configs,
        })
    }
}

/// Whether `value` is of `key`'s type and passes its validator.
fn check_value(key: &ConfigKey, value: &str) -> std::result::Result<(), String> {
    let v = value.trim();
    let bad = |what: &str| {
        format!(
            "Invalid value {value} for configuration {}: {what}",
            key.name
        )
    };
    let number = match key.ty {
        ConfigType::Boolean => {
            if !v.eq_ignore_ascii_case("true") && !v.eq_ignore_ascii_case("false") {
                return Err(bad("Expected value to be either true or false"));
            }
            None
        }
        ConfigType::Int => Some(
            v.parse::<i32>()
                .map(i64::from)
                .map_err(|_| bad("Not a number of type INT"))?,
        ),
        ConfigType::Long => Some(
            v.parse::<i64>()
                .map_err(|_| bad("Not a number of type LONG"))?,
        ),
        ConfigType::Double => {
            v.parse::<f64>()
                .map_err(|_| bad("Not a number of type DOUBLE"))?;
            None
        }
        _ => None,
    };
    match &key.validator {
        Some(Validator::OneOf(choices)) if !choices.iter().any(|c| c.eq_ignore_ascii_case(v)) => {
            return Err(bad(&format!(
                "String must be one of: {}",
                choices.join(", ")
            )));
        }
        Some(Validator::AtLeast(min)) if number.is_some_and(|n| n < *min) => {
            return Err(bad(&format!("Value must be at least {min}")));
        }
        Some(Validator::NonEmpty)
            if v.is_empty() || (key.ty == ConfigType::List && split_list(v).is_empty()) =>
        {
            return Err(bad("String must be non-empty"));
        }
        _ => {}
    }
    Ok(())
}

/// The items of a comma-separated list, trimmed, empty items dropped.
pub fn split_list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// A connector's (or a transform's) config, read through its definition: defaults applied,
/// values checked as they are read, errors naming the connector and the key.
#[derive(Debug, Clone)]
pub struct Config {
    owner: String,
    props: Props,
    def: ConfigDef,
}

impl Config {
    /// `props` of `owner` (a connector's name, `transforms.x`...) read through `def`. Fails
    /// on the first key `def.validate` finds wrong.
    pub fn new(owner: impl Into<String>, props: Props, def: ConfigDef) -> Result<Self> {
        let owner = owner.into();
        for v in def.validate(&props) {
            if let Some(e) = v.errors.first() {
                return Err(Error::config(owner, v.name, e.clone()));
            }
        }
        Ok(Config { owner, props, def })
    }

    /// Who this config belongs to.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// Every key as given.
    pub fn props(&self) -> &Props {
        &self.props
    }

    /// The value of `key`, or its default; `None` for a key without either.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.props
            .get(key)
            .map(String::as_str)
            .or_else(|| self.def.key(key).and_then(|k| k.default.as_deref()))
    }

    /// A string; an empty string for a key without value or default.
    pub fn string(&self, key: &str) -> String {
        self.get(key).unwrap_or_default().to_owned()
    }

    /// A string, `None` when unset or empty.
    pub fn optional_string(&self, key: &str) -> Option<String> {
        self.get(key)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    }

    /// A comma-separated list.
    pub fn list(&self, key: &str) -> Vec<String> {
        self.get(key).map(split_list).unwrap_or_default()
    }

    /// An integer.
    pub fn long(&self, key: &str) -> Result<i64> {
        let v = self.get(key).unwrap_or_default();
        v.trim()
            .parse()
            .map_err(|_| Error::config(&self.owner, key, format!("\"{v}\" is not an integer")))
    }

    /// A boolean.
    pub fn boolean(&self, key: &str) -> Result<bool> {
        let v = self.get(key).unwrap_or_default().trim();
        if v.eq_ignore_ascii_case("true") {
            Ok(true)
        } else if v.eq_ignore_ascii_case("false") {
            Ok(false)
        } else {
            Err(Error::config(
                &self.owner,
                key,
                format!("\"{v}\" is not true or false"),
            ))
        }
    }
}

/// Reads a connector (or worker) config file: Java `.properties`, or JSON (a file ending in
/// `.json` or starting with `{`), either `{"name": ..., "config": {...}}` as the REST API
/// takes it or a flat object of keys. JSON values that are not strings are taken as their
/// JSON text (`"tasks.max": 1` is `"1"`).
pub fn read_config_file(path: &Path) -> Result<Props> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let is_json =
        path.extension().is_some_and(|e| e == "json") || text.trim_start().starts_with('{');
    if is_json {
        let j: Json = serde_json::from_str(&text).map_err(|e| {
            Error::config(
                path.display().to_string(),
                "(file)",
                format!("not valid JSON: {e}"),
            )
        })?;
        json_config(&j).map_err(|m| Error::config(path.display().to_string(), "(file)", m))
    } else {
        Ok(sluice_protocol::config::parse::properties(&text)
            .into_iter()
            .collect())
    }
}

/// A config from JSON: `{"name", "config": {...}}` (the name joins the config) or a flat
/// object.
pub fn json_config(j: &Json) -> std::result::Result<Props, String> {
    let o = j
        .as_object()
        .ok_or_else(|| "a connector config must be a JSON object".to_owned())?;
    let mut props = Props::new();
    let inner = match o.get("config") {
        Some(Json::Object(c)) => {
            if let Some(Json::String(n)) = o.get("name") {
                props.insert("name".into(), n.clone());
            }
            c
        }
        _ => o,
    };
    for (k, v) in inner {
        let v = match v {
            Json::String(s) => s.clone(),
            Json::Null => continue,
            other => other.to_string(),
        };
        props.insert(k.clone(), v);
    }
    Ok(props)
}

/// Default of `listeners`.
pub const DEFAULT_LISTENER: &str = "http://0.0.0.0:8083";

/// Worker keys Kafka Connect knows that mean nothing to one Sluice worker: accepted with a
/// notice. Prefixes end with `.`.
const NO_EFFECT_KEYS: &[&str] = &[
    "plugin.path",
    "plugin.discovery",
    "internal.",
    "metrics.",
    "metric.reporters",
    "client.id",
    "security.protocol",
    "ssl.",
    "sasl.",
    "config.providers",
    "config.providers.",
    "connector.client.config.override.policy",
    "access.control.",
    "admin.listeners",
    "rest.extension.classes",
    "response.http.headers.config",
    "topic.creation.enable",
    "exactly.once.source.support",
    "header.converter",
    "scheduled.rebalance.max.delay.ms",
    "connect.protocol",
    "worker.sync.timeout.ms",
    "worker.unsync.backoff.ms",
    "inter.worker.",
    "key.converter.",
    "value.converter.",
    "producer.",
    "consumer.",
    "admin.",
    "auto.include.jmx.reporter",
    "client.dns.lookup",
    "connections.max.idle.ms",
    "receive.buffer.bytes",
    "send.buffer.bytes",
    "request.timeout.ms",
    "retry.backoff.ms",
    "reconnect.backoff.",
    "offset.flush.timeout.ms",
    "status.storage.replication.factor",
    "config.storage.replication.factor",
    "offset.storage.replication.factor",
];

/// A worker's config, with Kafka Connect's keys.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Every key as given.
    pub props: Props,
    /// `bootstrap.servers`: the Kafka cluster, if any.
    pub bootstrap_servers: Option<String>,
    /// `key.converter` (default JsonConverter).
    pub key_converter: String,
    /// `value.converter` (default JsonConverter).
    pub value_converter: String,
    /// `offset.storage.file.filename` (standalone).
    pub offset_file: Option<PathBuf>,
    /// `offset.flush.interval.ms` (default 60000): how often source offsets are committed
    /// and sinks flushed and committed.
    pub offset_flush_interval_ms: u64,
    /// `listeners` (default `http://0.0.0.0:8083`): `http://host:port` items.
    pub listeners: Vec<String>,
    /// `rest.advertised.host.name`.
    pub advertised_host: Option<String>,
    /// `rest.advertised.port`.
    pub advertised_port: Option<u16>,
    /// `group.id` (distributed).
    pub group_id: Option<String>,
    /// `config.storage.topic` (distributed).
    pub config_topic: Option<String>,
    /// `offset.storage.topic` (distributed).
    pub offset_topic: Option<String>,
    /// `status.storage.topic` (distributed).
    pub status_topic: Option<String>,
    /// `offset.storage.partitions` (default 25).
    pub offset_partitions: i32,
    /// `status.storage.partitions` (default 5).
    pub status_partitions: i32,
    /// `task.shutdown.graceful.timeout.ms` (default 5000).
    pub task_shutdown_timeout_ms: u64,
    /// `session.timeout.ms` (default 10000): how long a distributed worker may go silent
    /// before the others take its connectors and tasks.
    pub session_timeout_ms: u64,
    /// `heartbeat.interval.ms` (default 3000) of a distributed worker's group membership.
    pub heartbeat_interval_ms: u64,
    /// `rebalance.timeout.ms` (default 60000): how long a rebalance waits for every worker.
    pub rebalance_timeout_ms: u64,
    /// Notices for the log: keys with no effect on a Sluice worker, keys not known.
    pub notices: Vec<String>,
}

impl WorkerConfig {
    /// The config of `props`: known keys read, keys of Kafka's worker that do nothing here
    /// and unknown keys listed in `notices`.
    pub fn from_props(props: Props) -> Result<Self> {
        let get = |k: &str| {
            props
                .get(k)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let num = |k: &str, default: u64| -> Result<u64> {
            match get(k) {
                None => Ok(default),
                Some(v) => v.parse().map_err(|_| {
                    Error::config(
                        "worker",
                        k,
                        format!("\"{v}\" is not a non-negative integer"),
                    )
                }),
            }
        };
        let int = |k: &str, default: i32| -> Result<i32> {
            match get(k) {
                None => Ok(default),
                Some(v) => v.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                    Error::config("worker", k, format!("\"{v}\" is not a positive integer"))
                }),
            }
        };
        let mut listeners = get("listeners").map(|v| split_list(&v)).unwrap_or_default();
        if listeners.is_empty() {
            // Kafka's deprecated rest.host.name / rest.port, before the default.
            match (get("rest.host.name"), get("rest.port")) {
                (None, None) => listeners.push(DEFAULT_LISTENER.to_owned()),
                (h, p) => listeners.push(format!(
                    "http://{}:{}",
                    h.unwrap_or_else(|| "0.0.0.0".into()),
                    p.unwrap_or_else(|| "8083".into())
                )),
            }
        }
        for l in &listeners {
            listener_addr(l)?;
        }
        let advertised_port = match get("rest.advertised.port") {
            None => None,
            Some(v) => Some(v.parse().map_err(|_| {
                Error::config(
                    "worker",
                    "rest.advertised.port",
                    format!("\"{v}\" is not a port"),
                )
            })?),
        };
        let known = [
            "bootstrap.servers",
            "key.converter",
            "value.converter",
            "offset.storage.file.filename",
            "offset.flush.interval.ms",
            "listeners",
            "rest.host.name",
            "rest.port",
            "rest.advertised.host.name",
            "rest.advertised.port",
            "rest.advertised.listener",
            "group.id",
            "config.storage.topic",
            "offset.storage.topic",
            "status.storage.topic",
            "offset.storage.partitions",
            "status.storage.partitions",
            "session.timeout.ms",
            "heartbeat.interval.ms",
            "rebalance.timeout.ms",
            "task.shutdown.graceful.timeout.ms",
        ];
        let mut notices = Vec::new();
        for k in props.keys() {
            if known.contains(&k.as_str()) {
                continue;
            }
            if NO_EFFECT_KEYS.iter().any(|p| {
                if p.ends_with('.') {
                    k.starts_with(p)
                } else {
                    k == p
                }
            }) {
                if k.starts_with("key.converter.")
                    || k.starts_with("value.converter.")
                    || k.starts_with("producer.")
                    || k.starts_with("consumer.")
                {
                    continue;
                }
                notices.push(format!(
                    "worker config \"{k}\" has no effect on a Sluice worker; ignored"
                ));
            } else {
                notices.push(format!(
                    "worker config \"{k}\" is not a Kafka Connect worker key; ignored"
                ));
            }
        }
        Ok(WorkerConfig {
            bootstrap_servers: get("bootstrap.servers"),
            key_converter: get("key.converter")
                .unwrap_or_else(|| "org.apache.kafka.connect.json.JsonConverter".into()),
            value_converter: get("value.converter")
                .unwrap_or_else(|| "org.apache.kafka.connect.json.JsonConverter".into()),
            offset_file: get("offset.storage.file.filename").map(PathBuf::from),
            offset_flush_interval_ms: num("offset.flush.interval.ms", 60_000)?,
            listeners,
            advertised_host: get("rest.advertised.host.name"),
            advertised_port,
            group_id: get("group.id"),
            config_topic: get("config.storage.topic"),
            offset_topic: get("offset.storage.topic"),
            status_topic: get("status.storage.topic"),
            offset_partitions: int("offset.storage.partitions", 25)?,
            status_partitions: int("status.storage.partitions", 5)?,
            task_shutdown_timeout_ms: num("task.shutdown.graceful.timeout.ms", 5_000)?,
            session_timeout_ms: num("session.timeout.ms", 10_000)?,
            heartbeat_interval_ms: num("heartbeat.interval.ms", 3_000)?,
            rebalance_timeout_ms: num("rebalance.timeout.ms", 60_000)?,
            props,
            notices,
        })
    }

    /// Configs given with `prefix` (`key.converter.`, `producer.`), the prefix removed.
    pub fn prefixed(&self, prefix: &str) -> Props {
        self.props
            .iter()
            .filter_map(|(k, v)| k.strip_prefix(prefix).map(|s| (s.to_owned(), v.clone())))
            .collect()
    }
}

/// The `host:port` of a listener `http://host:port` (an empty host is every address).
pub fn listener_addr(listener: &str) -> Result<String> {
    let rest = listener.strip_prefix("http://").ok_or_else(|| {
        Error::config(
            "worker",
            "listeners",
            format!("\"{listener}\": only http:// listeners are served"),
        )
    })?;
    let rest = rest.trim_end_matches('/');
    let (host, port) = rest.rsplit_once(':').ok_or_else(|| {
        Error::config("worker", "listeners", format!("\"{listener}\" has no port"))
    })?;
    port.parse::<u16>().map_err(|_| {
        Error::config(
            "worker",
            "listeners",
            format!("\"{listener}\": \"{port}\" is not a port"),
        )
    })?;
    let host = if host.is_empty() { "0.0.0.0" } else { host };
    Ok(format!("{host}:{port}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(pairs: &[(&str, &str)]) -> Props {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn validation_lists_every_bad_key() {
        let def = ConfigDef::new()
            .define(
                "file",
                ConfigType::String,
                None,
                None,
                Importance::High,
                "f",
                "Common",
            )
            .define(
                "batch.size",
                ConfigType::Int,
                Some("2000"),
                Some(Validator::AtLeast(1)),
                Importance::Low,
                "b",
                "Common",
            )
            .define(
                "mode",
                ConfigType::String,
                Some("a"),
                Some(Validator::OneOf(vec!["a".into(), "b".into()])),
                Importance::Low,
                "m",
                "Other",
            );
        let values = def.validate(&props(&[("batch.size", "0"), ("mode", "c")]));
        assert_eq!(values[0].errors.len(), 1, "file is required");
        assert!(
            values[1].errors[0].contains("at least 1"),
            "{:?}",
            values[1]
        );
        assert!(
            values[2].errors[0].contains("one of: a, b"),
            "{:?}",
            values[2]
        );
        let j = def.validation_json("X", &values);
        assert_eq!(j["error_count"], 3);
        assert_eq!(j["groups"], json!(["Common", "Other"]));
        assert_eq!(j["configs"][0]["definition"]["required"], true);
        let e = Config::new("c1", props(&[("batch.size", "x")]), def.clone()).unwrap_err();
        assert!(e.to_string().starts_with("c1: config \"file\""), "{e}");
        let c = Config::new("c1", props(&[("file", "f.txt")]), def).unwrap();
        assert_eq!(c.long("batch.size").unwrap(), 2000);
    }

    #[test]
    fn json_configs_take_either_shape() {
        let j = json!({"name": "n", "config": {"tasks.max": 2, "file": "x"}});
        let p = json_config(&j).unwrap();
        assert_eq!(p["name"], "n");
        assert_eq!(p["tasks.max"], "2");
        let p = json_config(&json!({"name": "n", "topic": "t"})).unwrap();
        assert_eq!(p["topic"], "t");
        assert!(json_config(&json!([1])).is_err());
    }

    #[test]
    fn worker_config_knows_kafkas_keys() {
        let w = WorkerConfig::from_props(props(&[
            ("bootstrap.servers", "localhost:9092"),
            ("key.converter.schemas.enable", "true"),
            ("plugin.path", "/usr/share/java"),
            ("internal.key.converter", "x"),
            ("offset.flush.interval.ms", "10000"),
            ("nonsense.key", "1"),
        ]))
        .unwrap();
        assert_eq!(w.bootstrap_servers.as_deref(), Some("localhost:9092"));
        assert_eq!(w.offset_flush_interval_ms, 10_000);
        assert_eq!(w.listeners, [DEFAULT_LISTENER]);
        assert_eq!(
            w.prefixed("key.converter."),
            props(&[("schemas.enable", "true")])
        );
        assert_eq!(w.notices.len(), 3, "{:?}", w.notices);
        assert!(
            w.notices
                .iter()
                .any(|n| n.contains("\"plugin.path\" has no effect"))
        );
        assert!(
            w.notices
                .iter()
                .any(|n| n.contains("\"nonsense.key\" is not"))
        );
        let e = WorkerConfig::from_props(props(&[("listeners", "https://x:1")])).unwrap_err();
        assert!(e.to_string().contains("only http://"), "{e}");
        assert_eq!(listener_addr("http://:8083").unwrap(), "0.0.0.0:8083");
    }
}
