//! What DescribeConfigs, AlterConfigs and IncrementalAlterConfigs share: resource types,
//! config sources and types, the topic keys' types and documentation, and finding the resource
//! a request names.

use kafka_protocol::protocol::StrBytes;
use sluice_log::config::TopicConfig;

use super::{RequestContext, log_error, sb};
use crate::handlers::codes::{
    INVALID_REQUEST, INVALID_TOPIC_EXCEPTION, UNKNOWN_TOPIC_OR_PARTITION,
};
use crate::state::BrokerState;

/// Kafka's ConfigResource types served.
pub(super) const TOPIC: i8 = 2;
pub(super) const BROKER: i8 = 4;

/// Kafka's ConfigSource codes.
pub(super) const DYNAMIC_TOPIC_CONFIG: i8 = 1;
pub(super) const STATIC_BROKER_CONFIG: i8 = 4;
pub(super) const DEFAULT_CONFIG: i8 = 5;

/// Kafka's ConfigType codes.
pub(super) const BOOLEAN: i8 = 1;
pub(super) const STRING: i8 = 2;
pub(super) const INT: i8 = 3;
pub(super) const LONG: i8 = 5;
pub(super) const DOUBLE: i8 = 6;
pub(super) const LIST: i8 = 7;

/// Every topic key: its type and what it does.
const TOPIC_KEYS: &[(&str, i8, &str)] = &[
    (
        "cleanup.policy",
        LIST,
        "What happens to old segments: delete them (retention), compact them (keep the last record of each key), or both.",
    ),
    (
        "compression.type",
        STRING,
        "The compression of stored batches: producer (as sent), uncompressed, gzip, snappy, lz4 or zstd.",
    ),
    (
        "delete.retention.ms",
        LONG,
        "How long tombstones (null values) of a compacted topic are kept after compaction reaches them.",
    ),
    (
        "file.delete.delay.ms",
        LONG,
        "How long a deleted segment's files stay on disk before they are removed.",
    ),
    (
        "flush.messages",
        LONG,
        "Records appended between two forced fsyncs of a partition.",
    ),
    (
        "flush.ms",
        LONG,
        "Longest time a record waits before its partition is fsynced.",
    ),
    (
        "index.interval.bytes",
        INT,
        "Bytes between two entries of the offset index.",
    ),
    (
        "max.compaction.lag.ms",
        LONG,
        "Longest time a record stays uncompacted in a compacted topic.",
    ),
    ("max.message.bytes", INT, "Largest record batch accepted."),
    (
        "message.timestamp.after.max.ms",
        LONG,
        "How far in the future a CreateTime timestamp may be, from the broker's clock.",
    ),
    (
        "message.timestamp.before.max.ms",
        LONG,
        "How far in the past a CreateTime timestamp may be, from the broker's clock.",
    ),
    (
        "message.timestamp.type",
        STRING,
        "Which timestamp records keep: CreateTime (the producer's) or LogAppendTime (the broker's).",
    ),
    (
        "min.cleanable.dirty.ratio",
        DOUBLE,
        "Share of uncompacted bytes at which the cleaner compacts a partition.",
    ),
    (
        "min.compaction.lag.ms",
        LONG,
        "Shortest time a record stays uncompacted in a compacted topic.",
    ),
    (
        "preallocate",
        BOOLEAN,
        "Whether segment files are preallocated when created.",
    ),
    (
        "retention.bytes",
        LONG,
        "Largest size of a partition before its oldest segments are deleted (-1: no limit).",
    ),
    (
        "retention.ms",
        LONG,
        "How long records are kept before their segment is deleted (-1: forever).",
    ),
    (
        "segment.bytes",
        INT,
        "Size at which a partition's active segment is rolled.",
    ),
    (
        "segment.index.bytes",
        INT,
        "Size of a segment's offset and time indexes.",
    ),
    (
        "segment.ms",
        LONG,
        "Age at which a partition's active segment is rolled.",
    ),
];

/// The type and documentation of a topic key.
pub(super) fn topic_key(name: &str) -> Option<(i8, &'static str)> {
    TOPIC_KEYS
        .iter()
        .find(|(k, _, _)| *k == name)
        .map(|&(_, t, doc)| (t, doc))
}

/// The type of a broker setting: its topic key's for topic defaults, else by its value.
pub(super) fn broker_key_type(key: &str, default: &str) -> i8 {
    match key {
        "listeners" | "advertised.listeners" | "log.dirs" | "cluster.id" => STRING,
        "connections.max.idle.ms"
        | "log.retention.check.interval.ms"
        | "log.cleaner.backoff.ms"
        | "log.roll.ms"
        | "log.retention.ms"
        | "log.retention.minutes"
        | "log.flush.interval.ms" => LONG,
        "log.retention.hours" | "log.roll.hours" => INT,
        _ => match TOPIC_SYNONYM_TYPES.iter().find(|(k, _)| *k == key) {
            Some((_, topic_key)) => topic_key_type(topic_key),
            None if default == "true" || default == "false" => BOOLEAN,
            None if default.parse::<i32>().is_ok() => INT,
            None => STRING,
        },
    }
}

fn topic_key_type(key: &str) -> i8 {
    topic_key(key).map_or(STRING, |(t, _)| t)
}

/// Broker keys setting a topic default whose type is the topic key's.
const TOPIC_SYNONYM_TYPES: &[(&str, &str)] = &[
    ("message.max.bytes", "max.message.bytes"),
    ("log.segment.bytes", "segment.bytes"),
    ("log.retention.bytes", "retention.bytes"),
    ("log.cleanup.policy", "cleanup.policy"),
    ("log.cleaner.delete.retention.ms", "delete.retention.ms"),
    ("log.cleaner.min.compaction.lag.ms", "min.compaction.lag.ms"),
    ("log.cleaner.max.compaction.lag.ms", "max.compaction.lag.ms"),
    (
        "log.cleaner.min.cleanable.ratio",
        "min.cleanable.dirty.ratio",
    ),
    ("log.index.interval.bytes", "index.interval.bytes"),
    ("log.index.size.max.bytes", "segment.index.bytes"),
    ("log.flush.interval.messages", "flush.messages"),
    ("log.message.timestamp.type", "message.timestamp.type"),
    (
        "log.message.timestamp.before.max.ms",
        "message.timestamp.before.max.ms",
    ),
    (
        "log.message.timestamp.after.max.ms",
        "message.timestamp.after.max.ms",
    ),
    ("log.segment.delete.delay.ms", "file.delete.delay.ms"),
    ("log.preallocate", "preallocate"),
    ("compression.type", "compression.type"),
];

/// The resource a request names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Resource {
    /// An existing topic.
    Topic(String),
    /// This broker, by its id.
    Broker,
    /// The cluster-wide broker defaults (an empty broker name): there are no dynamic ones.
    BrokerDefault,
}

/// Finds the resource of `resource_type` named `name`, or the error code and message to
/// answer with.
pub(super) fn resolve(
    state: &BrokerState,
    resource_type: i8,
    name: &str,
) -> Result<Resource, (i16, String)> {
    match resource_type {
        TOPIC => {
            if let Err(e) = sluice_log::names::validate_topic_name(name) {
                return Err((INVALID_TOPIC_EXCEPTION, sluice_log::report(&e).to_string()));
            }
            match state.log.partition_count(name) {
                Ok(_) => Ok(Resource::Topic(name.to_owned())),
                Err(e) => Err((
                    UNKNOWN_TOPIC_OR_PARTITION,
                    sluice_log::report(&e).to_string(),
                )),
            }
        }
        BROKER if name.is_empty() => Ok(Resource::BrokerDefault),
        BROKER => match name.parse::<i32>() {
            Ok(id) if id == state.config.node_id => Ok(Resource::Broker),
            Ok(_) => Err((
                INVALID_REQUEST,
                format!(
                    "Unexpected broker id, expected {} or empty string, but received {name}",
                    state.config.node_id
                ),
            )),
            Err(_) => Err((
                INVALID_REQUEST,
                format!("Broker id must be an integer, but it is: {name}"),
            )),
        },
        other => Err((
            INVALID_REQUEST,
            format!(
                "Unsupported resource type {other}: only topics (2) and brokers (4) are served"
            ),
        )),
    }
}

/// The error of an alteration of broker settings: none can change while the broker runs.
pub(super) fn static_broker_configs(keys: &[String]) -> (i16, String) {
    (
        INVALID_REQUEST,
        format!(
            "Cannot update these configs dynamically: {}; broker settings are read from server.properties at startup",
            keys.join(", ")
        ),
    )
}

/// The value Kafka's defaults give `topic_key`.
pub(super) fn kafka_default(topic_key: &str) -> Option<String> {
    TopicConfig::default()
        .describe()
        .into_iter()
        .find(|e| e.name == topic_key)
        .map(|e| e.value)
}

/// The outcome for each resource of an AlterConfigs or IncrementalAlterConfigs request, in
/// order, as its response's error code and message (0 and none when it went through):
/// INVALID_REQUEST for a resource the request names twice, else `apply` on the resource once
/// [`resolve`]d. A change made (not only validated) is logged as `what`, with the principal.
pub(super) fn each_resource<'r, R>(
    state: &BrokerState,
    ctx: &RequestContext,
    validate_only: bool,
    what: &'static str,
    resources: &'r [R],
    name: impl Fn(&'r R) -> (i8, &'r str),
    apply: impl Fn(&'r R, Resource) -> Result<(), (i16, String)>,
) -> Vec<(i16, Option<StrBytes>)> {
    let names: Vec<(i8, &str)> = resources.iter().map(&name).collect();
    resources
        .iter()
        .zip(&names)
        .map(|(r, key)| {
            let outcome = if names.iter().filter(|n| *n == key).count() > 1 {
                Err((INVALID_REQUEST, "Duplicate resource in request".to_owned()))
            } else {
                resolve(state, key.0, key.1).and_then(|resource| apply(r, resource))
            };
            match outcome {
                Ok(()) => {
                    if !validate_only {
                        tracing::info!(resource = %key.1, principal = %ctx.principal, "{what}");
                    }
                    (0, None)
                }
                Err((code, message)) => (code, Some(sb(message))),
            }
        })
        .collect()
}

/// Checks `set` and `delete` against `topic`'s `current` config and, unless `validate_only`,
/// applies them: all of them or, on the first error, none.
pub(super) fn change_topic(
    state: &BrokerState,
    topic: &str,
    current: &TopicConfig,
    set: Vec<(String, String)>,
    delete: Vec<String>,
    validate_only: bool,
) -> Result<(), (i16, String)> {
    let mut candidate = current.clone();
    candidate
        .apply(set.clone(), delete.clone())
        .map_err(log_error)?;
    if validate_only {
        return Ok(());
    }
    state
        .log
        .alter_topic_config(topic, set, delete)
        .map_err(log_error)
}

/// Finds the first of `names` that appears twice.
pub(super) fn duplicate<'a>(names: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let mut seen = std::collections::HashSet::new();
    names.into_iter().find(|n| !seen.insert(*n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_topic_key_has_a_type_and_documentation() {
        for key in TopicConfig::known_keys() {
            let (t, doc) = topic_key(key).unwrap_or_else(|| panic!("{key} is not described"));
            assert!(t > 0 && !doc.is_empty(), "{key}");
        }
        assert_eq!(TOPIC_KEYS.len(), TopicConfig::known_keys().len());
        for s in crate::config::SETTINGS {
            assert!(broker_key_type(s.key, s.default) > 0, "{}", s.key);
        }
    }
}
