//! Per-topic configs under Kafka's names, with Kafka's defaults and validation.
//!
//! A [`TopicConfig`] is a base (Kafka's defaults, or broker-level defaults layered on them) plus
//! the keys set explicitly for the topic, its *overrides*. The overrides are what
//! `kafka-configs --describe` shows as `DYNAMIC_TOPIC_CONFIG` and what is persisted next to the
//! topic's data, in the properties form of [`TopicConfig::to_properties`].
//!
//! ```
//! use sluice_log::config::TopicConfig;
//!
//! let config = TopicConfig::from_pairs([("cleanup.policy", "compact"), ("segment.bytes", "1048576")])?;
//! assert!(config.cleanup_policy.compact && !config.cleanup_policy.delete);
//! assert_eq!(config.segment_bytes, 1_048_576);
//! assert_eq!(config.retention_ms, 604_800_000); // Kafka's default
//!
//! let err = TopicConfig::from_pairs([("segment.bytes", "1")]).unwrap_err();
//! assert!(err.to_string().contains("segment.bytes"));
//! # Ok::<(), sluice_log::Error>(())
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

pub use sluice_protocol::config::ConfigEntry;
pub(crate) use sluice_protocol::config::parse;

use crate::error::{Error, Result};
use crate::types::{Compression, TimestampType};

use self::parse::{Def, INT_MAX, LONG_MAX, bool_def, integer_def};

/// `cleanup.policy`: what happens to old segments; either or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CleanupPolicy {
    /// Old segments are deleted by `retention.ms` and `retention.bytes`.
    pub delete: bool,
    /// The log is compacted: only the latest record of each key is kept.
    pub compact: bool,
}

impl CleanupPolicy {
    /// `delete`, Kafka's default.
    pub const DELETE: CleanupPolicy = CleanupPolicy {
        delete: true,
        compact: false,
    };
    /// `compact`.
    pub const COMPACT: CleanupPolicy = CleanupPolicy {
        delete: false,
        compact: true,
    };
    /// `compact,delete`.
    pub const COMPACT_DELETE: CleanupPolicy = CleanupPolicy {
        delete: true,
        compact: true,
    };

    /// Parses Kafka's spelling: a comma-separated list of `compact` and `delete`.
    pub fn parse(value: &str) -> Option<Self> {
        let mut policy = CleanupPolicy {
            delete: false,
            compact: false,
        };
        for item in parse::split_list(value)? {
            match item {
                "delete" => policy.delete = true,
                "compact" => policy.compact = true,
                _ => return None,
            }
        }
        Some(policy)
    }
}

impl Default for CleanupPolicy {
    fn default() -> Self {
        CleanupPolicy::DELETE
    }
}

impl fmt::Display for CleanupPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match (self.compact, self.delete) {
            (true, true) => "compact,delete",
            (true, false) => "compact",
            (false, true) => "delete",
            (false, false) => "",
        })
    }
}

/// `compression.type` of a topic: keep the producer's codec, or recompress with a given one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TopicCompression {
    /// `producer`: batches are stored as the producer compressed them (Kafka's default).
    #[default]
    Producer,
    /// Batches are stored with this codec; `uncompressed` is `Codec(Compression::None)`.
    Codec(Compression),
}

impl TopicCompression {
    /// Kafka's spelling: `producer`, `uncompressed`, `gzip`, `snappy`, `lz4` or `zstd`.
    pub fn as_str(self) -> &'static str {
        match self {
            TopicCompression::Producer => "producer",
            TopicCompression::Codec(Compression::None) => "uncompressed",
            TopicCompression::Codec(c) => c.as_str(),
        }
    }
}

const TOPIC_COMPRESSION: &[(&str, TopicCompression)] = &[
    ("producer", TopicCompression::Producer),
    ("uncompressed", TopicCompression::Codec(Compression::None)),
    ("gzip", TopicCompression::Codec(Compression::Gzip)),
    ("snappy", TopicCompression::Codec(Compression::Snappy)),
    ("lz4", TopicCompression::Codec(Compression::Lz4)),
    ("zstd", TopicCompression::Codec(Compression::Zstd)),
];

const TIMESTAMP_TYPES: &[(&str, TimestampType)] = &[
    ("CreateTime", TimestampType::CreateTime),
    ("LogAppendTime", TimestampType::LogAppendTime),
];

/// The configs of one topic, typed, with the keys set explicitly remembered.
///
/// `Default` is Kafka's defaults. Fields may be written directly (e.g. to build broker-level
/// defaults to pass as a base), but such writes are not overrides: [`TopicConfig::apply`] and
/// [`TopicConfig::with_overrides`] rebuild the fields from the base and the overrides.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicConfig {
    /// `cleanup.policy` (default `delete`).
    pub cleanup_policy: CleanupPolicy,
    /// `retention.ms`: age after which a segment may be deleted; -1 = unlimited (default 7 days).
    pub retention_ms: i64,
    /// `retention.bytes`: size a partition may grow to before old segments go; negative =
    /// unlimited (default -1).
    pub retention_bytes: i64,
    /// `segment.bytes`: size at which a segment is rolled (default 1 GiB, at least 14).
    pub segment_bytes: u64,
    /// `segment.ms`: age at which a segment is rolled (default 7 days, at least 1).
    pub segment_ms: i64,
    /// `segment.index.bytes`: size of the offset and time indexes (default 10 MiB, at least 4).
    pub segment_index_bytes: u64,
    /// `index.interval.bytes`: log bytes between index entries (default 4096).
    pub index_interval_bytes: u64,
    /// `max.message.bytes`: largest record batch accepted (default 1048588).
    pub max_message_bytes: usize,
    /// `message.timestamp.type` (default `CreateTime`).
    pub message_timestamp_type: TimestampType,
    /// `min.cleanable.dirty.ratio`: dirty share of the log that triggers compaction (default 0.5).
    pub min_cleanable_dirty_ratio: f64,
    /// `delete.retention.ms`: how long tombstones survive compaction (default 1 day).
    pub delete_retention_ms: i64,
    /// `min.compaction.lag.ms`: minimum age of a record before it may be compacted (default 0).
    pub min_compaction_lag_ms: i64,
    /// `max.compaction.lag.ms`: maximum age of a record before it must be compacted (default
    /// `i64::MAX`, at least 1).
    pub max_compaction_lag_ms: i64,
    /// `flush.messages`: records between forced fsyncs (default `i64::MAX`, at least 1).
    pub flush_messages: i64,
    /// `flush.ms`: time between forced fsyncs (default `i64::MAX`).
    pub flush_ms: i64,
    /// `compression.type` (default `producer`).
    pub compression: TopicCompression,
    /// `file.delete.delay.ms`: time a deleted segment's files linger (default 60000).
    pub file_delete_delay_ms: i64,
    /// `preallocate`: whether new segment files are preallocated (default false).
    pub preallocate: bool,
    /// `message.timestamp.before.max.ms`: how far in the past a `CreateTime` timestamp may be
    /// (default `i64::MAX`).
    pub message_timestamp_before_max_ms: i64,
    /// `message.timestamp.after.max.ms`: how far in the future a `CreateTime` timestamp may be
    /// (default `i64::MAX`).
    pub message_timestamp_after_max_ms: i64,
    /// Keys set explicitly, in canonical form.
    overrides: BTreeMap<String, String>,
    /// What a deleted override falls back to; `None` = Kafka's defaults. Never itself layered.
    base: Option<Arc<TopicConfig>>,
}

impl Default for TopicConfig {
    fn default() -> Self {
        TopicConfig {
            cleanup_policy: CleanupPolicy::DELETE,
            retention_ms: 604_800_000,
            retention_bytes: -1,
            segment_bytes: 1_073_741_824,
            segment_ms: 604_800_000,
            segment_index_bytes: 10_485_760,
            index_interval_bytes: 4096,
            max_message_bytes: 1_048_588,
            message_timestamp_type: TimestampType::CreateTime,
            min_cleanable_dirty_ratio: 0.5,
            delete_retention_ms: 86_400_000,
            min_compaction_lag_ms: 0,
            max_compaction_lag_ms: i64::MAX,
            flush_messages: i64::MAX,
            flush_ms: i64::MAX,
            compression: TopicCompression::Producer,
            file_delete_delay_ms: 60_000,
            preallocate: false,
            message_timestamp_before_max_ms: i64::MAX,
            message_timestamp_after_max_ms: i64::MAX,
            overrides: BTreeMap::new(),
            base: None,
        }
    }
}

const TOPIC_DEFS: &[Def<TopicConfig>] = &[
    Def {
        name: "cleanup.policy",
        set: |c, v| {
            c.cleanup_policy = CleanupPolicy::parse(v).ok_or_else(|| {
                parse::invalid(
                    "cleanup.policy",
                    v,
                    "must be one of: delete, compact, compact,delete",
                )
            })?;
            Ok(())
        },
        get: |c| c.cleanup_policy.to_string(),
    },
    Def {
        name: "compression.type",
        set: |c, v| {
            c.compression = parse::one_of("compression.type", v, TOPIC_COMPRESSION)?;
            Ok(())
        },
        get: |c| c.compression.as_str().to_owned(),
    },
    integer_def!("delete.retention.ms", delete_retention_ms, 0, LONG_MAX),
    integer_def!("file.delete.delay.ms", file_delete_delay_ms, 0, LONG_MAX),
    integer_def!("flush.messages", flush_messages, 1, LONG_MAX),
    integer_def!("flush.ms", flush_ms, 0, LONG_MAX),
    integer_def!("index.interval.bytes", index_interval_bytes, 0, INT_MAX),
    integer_def!("max.compaction.lag.ms", max_compaction_lag_ms, 1, LONG_MAX),
    integer_def!("max.message.bytes", max_message_bytes, 0, INT_MAX),
    integer_def!(
        "message.timestamp.after.max.ms",
        message_timestamp_after_max_ms,
        0,
        LONG_MAX
    ),
    integer_def!(
        "message.timestamp.before.max.ms",
        message_timestamp_before_max_ms,
        0,
        LONG_MAX
    ),
    Def {
        name: "message.timestamp.type",
        set: |c, v| {
            c.message_timestamp_type = parse::one_of("message.timestamp.type", v, TIMESTAMP_TYPES)?;
            Ok(())
        },
        get: |c| c.message_timestamp_type.as_str().to_owned(),
    },
    Def {
        name: "min.cleanable.dirty.ratio",
        set: |c, v| {
            c.min_cleanable_dirty_ratio = parse::number("min.cleanable.dirty.ratio", v, 0.0, 1.0)?;
            Ok(())
        },
        get: |c| c.min_cleanable_dirty_ratio.to_string(),
    },
    integer_def!("min.compaction.lag.ms", min_compaction_lag_ms, 0, LONG_MAX),
    bool_def!("preallocate", preallocate),
    integer_def!("retention.bytes", retention_bytes, i64::MIN, LONG_MAX),
    integer_def!("retention.ms", retention_ms, -1, LONG_MAX),
    integer_def!("segment.bytes", segment_bytes, 14, INT_MAX),
    integer_def!("segment.index.bytes", segment_index_bytes, 4, INT_MAX),
    integer_def!("segment.ms", segment_ms, 1, LONG_MAX),
];

impl TopicConfig {
    /// Kafka's defaults with `pairs` set on top.
    ///
    /// An unknown key is [`Error::UnknownConfig`]; a bad value is [`Error::InvalidConfig`]. When a
    /// key repeats, the last value wins.
    pub fn from_pairs<K, V>(pairs: impl IntoIterator<Item = (K, V)>) -> Result<TopicConfig>
    where
        K: AsRef<str>,
        V: AsRef<str>,
    {
        Self::with_overrides(&TopicConfig::default(), pairs)
    }

    /// `base`'s values (e.g. broker-level defaults) with `pairs` set on top as overrides.
    ///
    /// `base`'s own overrides are not carried over: they become part of the defaults, which a
    /// deleted override falls back to.
    pub fn with_overrides<K, V>(
        base: &TopicConfig,
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Result<TopicConfig>
    where
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let flat_base = TopicConfig {
            overrides: BTreeMap::new(),
            base: None,
            ..base.clone()
        };
        let mut config = flat_base.clone();
        if !flat_base.same_values(&TopicConfig::default()) {
            config.base = Some(Arc::new(flat_base));
        }
        for (key, value) in pairs {
            let def = parse::lookup(TOPIC_DEFS, key.as_ref())?;
            (def.set)(&mut config, value.as_ref())?;
            let canonical = (def.get)(&config);
            config.overrides.insert(def.name.to_owned(), canonical);
        }
        config.check_combination()?;
        Ok(config)
    }

    /// Reads the properties form written by [`TopicConfig::to_properties`], over Kafka's defaults.
    pub fn parse_properties(text: &str) -> Result<TopicConfig> {
        Self::with_overrides(&TopicConfig::default(), parse::properties(text))
    }

    /// Reads the properties form written by [`TopicConfig::to_properties`], over `base`.
    pub fn parse_properties_with_base(base: &TopicConfig, text: &str) -> Result<TopicConfig> {
        Self::with_overrides(base, parse::properties(text))
    }

    /// The overrides as a properties text: one `key=value` line per key set explicitly.
    pub fn to_properties(&self) -> String {
        let mut out = String::new();
        for (key, value) in &self.overrides {
            out.push_str(key);
            out.push('=');
            out.push_str(value);
            out.push('\n');
        }
        out
    }

    /// The keys set explicitly for this topic, with their values in canonical form.
    pub fn overrides(&self) -> &BTreeMap<String, String> {
        &self.overrides
    }

    /// Every known key with the value in effect, sorted by name (`kafka-configs --describe --all`).
    pub fn describe(&self) -> Vec<ConfigEntry> {
        parse::describe(TOPIC_DEFS, self, |name| !self.overrides.contains_key(name))
    }

    /// The names of every known key, sorted.
    pub fn known_keys() -> Vec<&'static str> {
        parse::names(TOPIC_DEFS)
    }

    /// Alters the config incrementally: sets `set`, and returns `delete` to their defaults.
    ///
    /// Everything is validated before anything changes: on error `self` is untouched. Deleting a
    /// key that is not overridden does nothing; naming a key in both lists is
    /// [`Error::InvalidRequest`], as Kafka's `IncrementalAlterConfigs` has it.
    pub fn apply<K, V, D>(
        &mut self,
        set: impl IntoIterator<Item = (K, V)>,
        delete: impl IntoIterator<Item = D>,
    ) -> Result<()>
    where
        K: AsRef<str>,
        V: AsRef<str>,
        D: AsRef<str>,
    {
        let set: Vec<(K, V)> = set.into_iter().collect();
        let mut overrides = self.overrides.clone();
        for key in delete {
            let key = key.as_ref();
            let def = parse::lookup(TOPIC_DEFS, key)?;
            if set.iter().any(|(k, _)| k.as_ref() == key) {
                return Err(Error::InvalidRequest(format!(
                    "config \"{key}\" is both set and deleted"
                )));
            }
            overrides.remove(def.name);
        }
        for (key, value) in &set {
            overrides.insert(key.as_ref().to_owned(), value.as_ref().to_owned());
        }
        let base = match &self.base {
            Some(base) => TopicConfig::clone(base),
            None => TopicConfig::default(),
        };
        *self = Self::with_overrides(&base, &overrides)?;
        Ok(())
    }

    /// Whether every key has the same value in both (overrides aside).
    fn same_values(&self, other: &TopicConfig) -> bool {
        TOPIC_DEFS.iter().all(|d| (d.get)(self) == (d.get)(other))
    }

    /// Rules spanning two keys, as Kafka's `LogConfig.validateValues`.
    fn check_combination(&self) -> Result<()> {
        if self.min_compaction_lag_ms > self.max_compaction_lag_ms {
            return Err(parse::invalid(
                "min.compaction.lag.ms",
                &self.min_compaction_lag_ms.to_string(),
                format!(
                    "must not exceed max.compaction.lag.ms ({})",
                    self.max_compaction_lag_ms
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value<'a>(entries: &'a [ConfigEntry], name: &str) -> &'a ConfigEntry {
        entries.iter().find(|e| e.name == name).unwrap()
    }

    #[test]
    fn defaults_match_kafka() {
        let d = TopicConfig::default().describe();
        let expect = [
            ("cleanup.policy", "delete"),
            ("compression.type", "producer"),
            ("delete.retention.ms", "86400000"),
            ("file.delete.delay.ms", "60000"),
            ("flush.messages", "9223372036854775807"),
            ("flush.ms", "9223372036854775807"),
            ("index.interval.bytes", "4096"),
            ("max.compaction.lag.ms", "9223372036854775807"),
            ("max.message.bytes", "1048588"),
            ("message.timestamp.after.max.ms", "9223372036854775807"),
            ("message.timestamp.before.max.ms", "9223372036854775807"),
            ("message.timestamp.type", "CreateTime"),
            ("min.cleanable.dirty.ratio", "0.5"),
            ("min.compaction.lag.ms", "0"),
            ("preallocate", "false"),
            ("retention.bytes", "-1"),
            ("retention.ms", "604800000"),
            ("segment.bytes", "1073741824"),
            ("segment.index.bytes", "10485760"),
            ("segment.ms", "604800000"),
        ];
        let got: Vec<(&str, &str)> = d
            .iter()
            .map(|e| (e.name.as_str(), e.value.as_str()))
            .collect();
        assert_eq!(got, expect);
        assert!(d.iter().all(|e| e.is_default));
        assert_eq!(
            TopicConfig::from_pairs::<&str, &str>([]).unwrap(),
            TopicConfig::default()
        );
    }

    #[test]
    fn every_key_rejects_a_bad_value_naming_the_key() {
        let bad = [
            ("cleanup.policy", "remove"),
            ("cleanup.policy", "compact,"),
            ("compression.type", "none"),
            ("delete.retention.ms", "-1"),
            ("file.delete.delay.ms", "-1"),
            ("flush.messages", "0"),
            ("flush.ms", "-1"),
            ("index.interval.bytes", "-1"),
            ("max.compaction.lag.ms", "0"),
            ("max.message.bytes", "2147483648"),
            ("message.timestamp.after.max.ms", "-1"),
            ("message.timestamp.before.max.ms", "soon"),
            ("message.timestamp.type", "createtime"),
            ("min.cleanable.dirty.ratio", "1.01"),
            ("min.compaction.lag.ms", "-5"),
            ("preallocate", "yes"),
            ("retention.bytes", "1GB"),
            ("retention.ms", "-2"),
            ("segment.bytes", "13"),
            ("segment.index.bytes", "3"),
            ("segment.ms", "0"),
        ];
        for name in TopicConfig::known_keys() {
            assert!(
                bad.iter().any(|(k, _)| *k == name),
                "no bad value for {name}"
            );
        }
        for (key, value) in bad {
            let err = TopicConfig::from_pairs([(key, value)]).unwrap_err();
            match &err {
                Error::InvalidConfig {
                    key: k,
                    value: v,
                    reason,
                } => {
                    assert_eq!((k.as_str(), v.as_str()), (key, value));
                    assert!(reason.starts_with("must be"), "{reason}");
                }
                other => panic!("{key}={value}: unexpected {other:?}"),
            }
            let msg = err.to_string();
            assert!(msg.contains(key) && msg.contains(value), "{msg}");
        }
    }

    #[test]
    fn messages_say_what_is_accepted() {
        let err = TopicConfig::from_pairs([("cleanup.policy", "x")]).unwrap_err();
        assert!(
            err.to_string()
                .contains("must be one of: delete, compact, compact,delete")
        );
        let err = TopicConfig::from_pairs([("segment.bytes", "1")]).unwrap_err();
        assert!(
            err.to_string()
                .contains("must be an integer between 14 and 2147483647")
        );
        let err = TopicConfig::from_pairs([("retention.ms", "x")]).unwrap_err();
        assert!(err.to_string().contains("must be an integer >= -1"));
        let err = TopicConfig::from_pairs([("compression.type", "brotli")]).unwrap_err();
        assert!(
            err.to_string()
                .contains("must be one of: producer, uncompressed, gzip, snappy, lz4, zstd")
        );
    }

    #[test]
    fn unknown_key_lists_known_ones() {
        let err = TopicConfig::from_pairs([("retention.hours", "1")]).unwrap_err();
        match err {
            Error::UnknownConfig { key, known } => {
                assert_eq!(key, "retention.hours");
                assert_eq!(known, TopicConfig::known_keys().join(", "));
                assert!(known.contains("retention.ms") && known.contains("cleanup.policy"));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn values_are_typed_and_canonical() {
        let c = TopicConfig::from_pairs([
            ("cleanup.policy", " delete , compact "),
            ("compression.type", "uncompressed"),
            ("message.timestamp.type", "LogAppendTime"),
            ("preallocate", "TRUE"),
            ("retention.ms", "-1"),
            ("retention.bytes", "-100"),
            ("min.cleanable.dirty.ratio", "1"),
        ])
        .unwrap();
        assert_eq!(c.cleanup_policy, CleanupPolicy::COMPACT_DELETE);
        assert_eq!(c.compression, TopicCompression::Codec(Compression::None));
        assert_eq!(c.message_timestamp_type, TimestampType::LogAppendTime);
        assert!(c.preallocate);
        assert_eq!((c.retention_ms, c.retention_bytes), (-1, -100));
        assert_eq!(c.min_cleanable_dirty_ratio, 1.0);
        assert_eq!(c.overrides()["cleanup.policy"], "compact,delete");
        assert_eq!(c.overrides()["preallocate"], "true");
        let d = c.describe();
        assert!(!value(&d, "retention.ms").is_default);
        assert!(value(&d, "segment.ms").is_default);
    }

    #[test]
    fn min_compaction_lag_cannot_exceed_max() {
        let err = TopicConfig::from_pairs([
            ("min.compaction.lag.ms", "10"),
            ("max.compaction.lag.ms", "5"),
        ])
        .unwrap_err();
        assert!(err.to_string().contains("max.compaction.lag.ms"), "{err}");
    }

    #[test]
    fn properties_round_trip() {
        let c = TopicConfig::from_pairs([
            ("cleanup.policy", "compact,delete"),
            ("segment.bytes", "1048576"),
            ("min.cleanable.dirty.ratio", "0.125"),
            ("message.timestamp.type", "LogAppendTime"),
            ("compression.type", "zstd"),
        ])
        .unwrap();
        let text = c.to_properties();
        assert_eq!(text.lines().count(), 5);
        let with_comments = format!("# topic orders\n\n{text}");
        let back = TopicConfig::parse_properties(&with_comments).unwrap();
        assert_eq!(back, c);
        assert_eq!(back.to_properties(), text);
        assert_eq!(TopicConfig::default().to_properties(), "");
    }

    #[test]
    fn broker_defaults_layer_under_overrides() {
        let broker =
            TopicConfig::from_pairs([("retention.ms", "1000"), ("segment.ms", "50")]).unwrap();
        let mut topic = TopicConfig::with_overrides(&broker, [("retention.ms", "2000")]).unwrap();
        assert_eq!((topic.retention_ms, topic.segment_ms), (2000, 50));
        assert_eq!(topic.overrides().len(), 1);
        assert_eq!(topic.to_properties(), "retention.ms=2000\n");
        topic.apply::<&str, &str, _>([], ["retention.ms"]).unwrap();
        assert_eq!(topic.retention_ms, 1000, "falls back to the broker's value");
        assert!(topic.overrides().is_empty());
        let reloaded =
            TopicConfig::parse_properties_with_base(&broker, "retention.ms=2000").unwrap();
        assert_eq!(reloaded.retention_ms, 2000);
    }

    #[test]
    fn apply_sets_and_deletes_all_or_nothing() {
        let mut c =
            TopicConfig::from_pairs([("retention.ms", "1000"), ("segment.ms", "10")]).unwrap();
        c.apply([("cleanup.policy", "compact")], ["segment.ms"])
            .unwrap();
        assert_eq!(c.cleanup_policy, CleanupPolicy::COMPACT);
        assert_eq!(c.segment_ms, 604_800_000);
        assert_eq!(c.retention_ms, 1000);

        let before = c.clone();
        let err = c
            .apply(
                [("retention.ms", "5"), ("segment.bytes", "1")],
                ["cleanup.policy"],
            )
            .unwrap_err();
        assert!(matches!(err, Error::InvalidConfig { .. }));
        assert_eq!(c, before);
        let err = c.apply::<&str, &str, _>([], ["no.such.key"]).unwrap_err();
        assert!(matches!(err, Error::UnknownConfig { .. }));
        assert_eq!(c, before);
        let err = c
            .apply([("retention.ms", "5")], ["retention.ms"])
            .unwrap_err();
        assert!(matches!(err, Error::InvalidRequest(_)));
        assert_eq!(c, before);
        c.apply::<&str, &str, _>([], ["flush.ms"]).unwrap();
        assert_eq!(c, before, "deleting a key that is not set does nothing");
    }
}
