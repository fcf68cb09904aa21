//! Producer and consumer configs under Kafka's property names, with Kafka's defaults.
//!
//! Build one with `from_pairs` (or `from_properties`, for a Java-style properties file), or start
//! from `Default` and `set` keys one at a time, then call `resolve` to apply the rules that span
//! several keys, as Kafka's clients do at construction.
//!
//! ```
//! use sluice_client::config::{Acks, ProducerConfig};
//!
//! let config = ProducerConfig::from_pairs([("bootstrap.servers", "localhost:9092"), ("acks", "1")])?;
//! assert_eq!(config.acks, Acks::Leader);
//! assert!(!config.enable_idempotence); // acks=1 turns off idempotence that was not asked for
//! assert_eq!(config.linger_ms, 5);
//! # Ok::<(), sluice_client::Error>(())
//! ```

use std::collections::BTreeSet;
use std::sync::Arc;

use sluice_protocol::Compression;
use sluice_protocol::config::ConfigEntry;
use sluice_protocol::config::parse::{self, Def, INT_MAX, LONG_MAX, bool_def, integer_def};
use sluice_protocol::names;
use sluice_protocol::{Error, Result};

use crate::assignor::{Assignors, PartitionAssignor};

/// `acks`: how many acknowledgements the producer waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Acks {
    /// `0`: none; the record counts as sent once written to the socket.
    None,
    /// `1`: the leader's.
    Leader,
    /// `all` (or `-1`): every in-sync replica's (Kafka's default since 3.0).
    #[default]
    All,
}

impl Acks {
    /// Kafka's config spelling: `0`, `1` or `all`.
    pub fn as_str(self) -> &'static str {
        match self {
            Acks::None => "0",
            Acks::Leader => "1",
            Acks::All => "all",
        }
    }

    /// The `acks` field of a Produce request: 0, 1 or -1.
    pub fn as_i16(self) -> i16 {
        match self {
            Acks::None => 0,
            Acks::Leader => 1,
            Acks::All => -1,
        }
    }
}

const ACKS: &[(&str, Acks)] = &[
    ("all", Acks::All),
    ("-1", Acks::All),
    ("0", Acks::None),
    ("1", Acks::Leader),
];

const PRODUCER_COMPRESSION: &[(&str, Compression)] = &[
    ("none", Compression::None),
    ("gzip", Compression::Gzip),
    ("snappy", Compression::Snappy),
    ("lz4", Compression::Lz4),
    ("zstd", Compression::Zstd),
];

/// Kafka's default `delivery.timeout.ms`.
const DEFAULT_DELIVERY_TIMEOUT_MS: u64 = 120_000;

/// The configs of a producer.
///
/// `Default` is Kafka's defaults. After [`ProducerConfig::set`], call
/// [`ProducerConfig::resolve`]; [`ProducerConfig::from_pairs`] does both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerConfig {
    /// `bootstrap.servers`: `host:port` items, kept as given (default none).
    pub bootstrap_servers: Vec<String>,
    /// `client.id` (default empty).
    pub client_id: String,
    /// `acks` (default `all`).
    pub acks: Acks,
    /// `linger.ms`: how long a batch waits for more records (default 5).
    pub linger_ms: u64,
    /// `batch.size`: bytes per partition batch (default 16384).
    pub batch_size: usize,
    /// `buffer.memory`: bytes of records waiting to be sent (default 32 MiB).
    pub buffer_memory: usize,
    /// `max.block.ms`: how long `send` may block for buffer space or metadata (default 60000).
    pub max_block_ms: u64,
    /// `compression.type` (default `none`).
    pub compression: Compression,
    /// `max.request.size`: largest request, hence largest record (default 1 MiB).
    pub max_request_size: usize,
    /// `delivery.timeout.ms`: time from `send` to success or failure (default 120000).
    pub delivery_timeout_ms: u64,
    /// `request.timeout.ms`: time to wait for a response (default 30000).
    pub request_timeout_ms: u64,
    /// `metadata.max.age.ms`: how often partition counts and leaders are refreshed even
    /// without an error, so new partitions are used (default 300000).
    pub metadata_max_age_ms: u64,
    /// `enable.idempotence` (default true; turned off by [`ProducerConfig::resolve`] when
    /// conflicting settings are given and it was not set explicitly).
    pub enable_idempotence: bool,
    /// `partitioner.ignore.keys`: partition keyed records like unkeyed ones (default false).
    pub partitioner_ignore_keys: bool,
    /// `retries` (default `i32::MAX`).
    pub retries: u32,
    /// `max.in.flight.requests.per.connection` (default 5, at least 1).
    pub max_in_flight_requests_per_connection: u32,
    /// `transactional.id` (default none; empty means none).
    pub transactional_id: Option<String>,
    /// `transaction.timeout.ms` (default 60000).
    pub transaction_timeout_ms: u64,
    /// Keys set explicitly.
    explicit: BTreeSet<&'static str>,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        ProducerConfig {
            bootstrap_servers: Vec::new(),
            client_id: String::new(),
            acks: Acks::All,
            linger_ms: 5,
            batch_size: 16_384,
            buffer_memory: 33_554_432,
            max_block_ms: 60_000,
            compression: Compression::None,
            max_request_size: 1_048_576,
            delivery_timeout_ms: DEFAULT_DELIVERY_TIMEOUT_MS,
            request_timeout_ms: 30_000,
            metadata_max_age_ms: 300_000,
            enable_idempotence: true,
            partitioner_ignore_keys: false,
            retries: i32::MAX.unsigned_abs(),
            max_in_flight_requests_per_connection: 5,
            transactional_id: None,
            transaction_timeout_ms: 60_000,
            explicit: BTreeSet::new(),
        }
    }
}

const PRODUCER_DEFS: &[Def<ProducerConfig>] = &[
    Def {
        name: "acks",
        set: |c, v| {
            c.acks = parse::one_of_ignore_case("acks", v, ACKS)?;
            Ok(())
        },
        get: |c| c.acks.as_str().to_owned(),
    },
    integer_def!("batch.size", batch_size, 0, INT_MAX),
    Def {
        name: "bootstrap.servers",
        set: |c, v| {
            c.bootstrap_servers = parse::string_list(v);
            Ok(())
        },
        get: |c| c.bootstrap_servers.join(","),
    },
    integer_def!("buffer.memory", buffer_memory, 0, LONG_MAX),
    Def {
        name: "client.id",
        set: |c, v| {
            c.client_id = v.trim().to_owned();
            Ok(())
        },
        get: |c| c.client_id.clone(),
    },
    Def {
        name: "compression.type",
        set: |c, v| {
            c.compression = parse::one_of("compression.type", v, PRODUCER_COMPRESSION)?;
            Ok(())
        },
        get: |c| c.compression.as_str().to_owned(),
    },
    integer_def!("delivery.timeout.ms", delivery_timeout_ms, 0, INT_MAX),
    bool_def!("enable.idempotence", enable_idempotence),
    integer_def!("linger.ms", linger_ms, 0, LONG_MAX),
    integer_def!("max.block.ms", max_block_ms, 0, LONG_MAX),
    integer_def!(
        "max.in.flight.requests.per.connection",
        max_in_flight_requests_per_connection,
        1,
        INT_MAX
    ),
    integer_def!("max.request.size", max_request_size, 0, INT_MAX),
    integer_def!("metadata.max.age.ms", metadata_max_age_ms, 0, LONG_MAX),
    bool_def!("partitioner.ignore.keys", partitioner_ignore_keys),
    integer_def!("request.timeout.ms", request_timeout_ms, 0, INT_MAX),
    integer_def!("retries", retries, 0, INT_MAX),
    integer_def!("transaction.timeout.ms", transaction_timeout_ms, 1, INT_MAX),
    Def {
        name: "transactional.id",
        set: |c, v| {
            c.transactional_id = parse::optional_string(v);
            Ok(())
        },
        get: |c| c.transactional_id.clone().unwrap_or_default(),
    },
];

impl ProducerConfig {
    /// Kafka's defaults with `pairs` set on top, then [resolved](ProducerConfig::resolve).
    ///
    /// An unknown key is [`Error::UnknownConfig`]; a bad value, or a combination Kafka refuses,
    /// is [`Error::InvalidConfig`]. When a key repeats, the last value wins.
    pub fn from_pairs<K, V>(pairs: impl IntoIterator<Item = (K, V)>) -> Result<ProducerConfig>
    where
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut config = ProducerConfig::default();
        for (key, value) in pairs {
            config.set(key.as_ref(), value.as_ref())?;
        }
        config.resolve()?;
        Ok(config)
    }

    /// Reads a Java-style properties text (`key=value` lines, `#` comments), as
    /// [`ProducerConfig::from_pairs`].
    pub fn from_properties(text: &str) -> Result<ProducerConfig> {
        Self::from_pairs(parse::properties(text))
    }

    /// Sets one key, validating its value alone; on error nothing changes.
    ///
    /// Call [`ProducerConfig::resolve`] after the last `set`.
    pub fn set(&mut self, key: &str, value: &str) -> Result<&mut Self> {
        let name = parse::set(PRODUCER_DEFS, self, key, value)?;
        self.explicit.insert(name);
        Ok(self)
    }

    /// Applies Kafka's rules spanning several keys, as its producer does at construction.
    ///
    /// - Idempotence needs `acks=all`, `retries > 0` and at most 5 requests in flight. If
    ///   `enable.idempotence` was not set explicitly it follows from those; if it was set to
    ///   true, or `transactional.id` is set, a conflict is an error.
    /// - `transactional.id` needs idempotence.
    /// - `delivery.timeout.ms` must be at least `linger.ms + request.timeout.ms`; when not set
    ///   explicitly it is raised to that.
    pub fn resolve(&mut self) -> Result<()> {
        let mut resolved = self.clone();
        resolved.resolve_idempotence()?;
        let floor = resolved
            .linger_ms
            .saturating_add(resolved.request_timeout_ms);
        if resolved.is_explicit("delivery.timeout.ms") {
            if resolved.delivery_timeout_ms < floor {
                return Err(parse::invalid(
                    "delivery.timeout.ms",
                    &resolved.delivery_timeout_ms.to_string(),
                    format!("must be at least linger.ms + request.timeout.ms ({floor})"),
                ));
            }
        } else {
            resolved.delivery_timeout_ms = DEFAULT_DELIVERY_TIMEOUT_MS.max(floor);
        }
        *self = resolved;
        Ok(())
    }

    fn resolve_idempotence(&mut self) -> Result<()> {
        let conflict = if self.acks != Acks::All {
            Some(("acks", self.acks.as_str().to_owned(), "must be all"))
        } else if self.retries == 0 {
            Some(("retries", "0".to_owned(), "must be at least 1"))
        } else if self.max_in_flight_requests_per_connection > 5 {
            Some((
                "max.in.flight.requests.per.connection",
                self.max_in_flight_requests_per_connection.to_string(),
                "must be at most 5",
            ))
        } else {
            None
        };
        let transactional = self.transactional_id.is_some();
        let explicit = self.is_explicit("enable.idempotence");
        if let Some((key, value, need)) = &conflict {
            if transactional {
                return Err(parse::invalid(
                    key,
                    value,
                    format!("{need} when transactional.id is set"),
                ));
            }
            if explicit && self.enable_idempotence {
                return Err(parse::invalid(
                    key,
                    value,
                    format!("{need} when enable.idempotence is true"),
                ));
            }
        }
        if !explicit {
            self.enable_idempotence = conflict.is_none();
        }
        if transactional && !self.enable_idempotence {
            return Err(parse::invalid(
                "enable.idempotence",
                "false",
                "must be true when transactional.id is set",
            ));
        }
        Ok(())
    }

    fn is_explicit(&self, key: &str) -> bool {
        self.explicit.contains(key)
    }

    /// Whether `batch.size` was set rather than left at Kafka's 16 KiB default. Clients over
    /// the Kafka protocol then use 1,000,000 bytes (librdkafka's default): Kafka's 16 KiB caps
    /// each partition's share of a request, which under acks=all (one fsync per round of
    /// in-flight requests here) holds a producer to a few tens of MB/s.
    pub fn batch_size_is_set(&self) -> bool {
        self.is_explicit("batch.size")
    }

    /// Every known key with its value, sorted by name; keys never `set` count as defaults.
    pub fn describe(&self) -> Vec<ConfigEntry> {
        parse::describe(PRODUCER_DEFS, self, |name| !self.is_explicit(name))
    }

    /// The names of every known key, sorted.
    pub fn known_keys() -> Vec<&'static str> {
        parse::names(PRODUCER_DEFS)
    }
}

/// `auto.offset.reset`: where a consumer starts when it has no valid committed offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum AutoOffsetReset {
    /// `earliest`: the log start offset.
    Earliest,
    /// `latest`: the log end offset (Kafka's default).
    #[default]
    Latest,
    /// `none`: fail with an offset-out-of-range error.
    None,
}

impl AutoOffsetReset {
    /// Kafka's config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            AutoOffsetReset::Earliest => "earliest",
            AutoOffsetReset::Latest => "latest",
            AutoOffsetReset::None => "none",
        }
    }
}

const OFFSET_RESET: &[(&str, AutoOffsetReset)] = &[
    ("earliest", AutoOffsetReset::Earliest),
    ("latest", AutoOffsetReset::Latest),
    ("none", AutoOffsetReset::None),
];

/// `isolation.level`: whether a consumer sees records of open or aborted transactions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum IsolationLevel {
    /// `read_uncommitted`: everything up to the high watermark (Kafka's default).
    #[default]
    ReadUncommitted,
    /// `read_committed`: only committed transactional records, up to the last stable offset.
    ReadCommitted,
}

impl IsolationLevel {
    /// Kafka's config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            IsolationLevel::ReadUncommitted => "read_uncommitted",
            IsolationLevel::ReadCommitted => "read_committed",
        }
    }

    /// The `isolation_level` field of a Fetch request: 0 or 1.
    pub fn as_i8(self) -> i8 {
        match self {
            IsolationLevel::ReadUncommitted => 0,
            IsolationLevel::ReadCommitted => 1,
        }
    }
}

const ISOLATION_LEVELS: &[(&str, IsolationLevel)] = &[
    ("read_uncommitted", IsolationLevel::ReadUncommitted),
    ("read_committed", IsolationLevel::ReadCommitted),
];

/// One of `partition.assignment.strategy`: how a group's partitions are spread over members.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AssignmentStrategy {
    /// `range` (Java: `RangeAssignor`): consecutive ranges of each topic's partitions.
    Range,
    /// `roundrobin` (Java: `RoundRobinAssignor`): all partitions dealt out in turn.
    RoundRobin,
    /// `cooperative-sticky` (Java: `CooperativeStickyAssignor`): keeps assignments across
    /// rebalances, revoking incrementally.
    CooperativeSticky,
}

impl AssignmentStrategy {
    /// The protocol name members announce in JoinGroup, as librdkafka spells it in its config.
    pub fn as_str(self) -> &'static str {
        match self {
            AssignmentStrategy::Range => "range",
            AssignmentStrategy::RoundRobin => "roundrobin",
            AssignmentStrategy::CooperativeSticky => "cooperative-sticky",
        }
    }
}

const ASSIGNMENT_STRATEGIES: &[(&str, AssignmentStrategy)] = &[
    ("range", AssignmentStrategy::Range),
    ("roundrobin", AssignmentStrategy::RoundRobin),
    ("cooperative-sticky", AssignmentStrategy::CooperativeSticky),
    (
        "org.apache.kafka.clients.consumer.RangeAssignor",
        AssignmentStrategy::Range,
    ),
    (
        "org.apache.kafka.clients.consumer.RoundRobinAssignor",
        AssignmentStrategy::RoundRobin,
    ),
    (
        "org.apache.kafka.clients.consumer.CooperativeStickyAssignor",
        AssignmentStrategy::CooperativeSticky,
    ),
];

/// The configs of a consumer.
///
/// `Default` is Kafka's defaults. After [`ConsumerConfig::set`], call
/// [`ConsumerConfig::resolve`]; [`ConsumerConfig::from_pairs`] does both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerConfig {
    /// `bootstrap.servers`: `host:port` items, kept as given (default none).
    pub bootstrap_servers: Vec<String>,
    /// `client.id` (default empty).
    pub client_id: String,
    /// `group.id` (default none; empty means none).
    pub group_id: Option<String>,
    /// `group.instance.id`: static membership id (default none); follows the topic name rules.
    pub group_instance_id: Option<String>,
    /// `auto.offset.reset` (default `latest`).
    pub auto_offset_reset: AutoOffsetReset,
    /// `enable.auto.commit` (default true; false without a `group.id` unless set explicitly,
    /// which is then an error).
    pub enable_auto_commit: bool,
    /// `auto.commit.interval.ms` (default 5000).
    pub auto_commit_interval_ms: u64,
    /// `fetch.min.bytes` (default 1).
    pub fetch_min_bytes: usize,
    /// `fetch.max.bytes` (default 50 MiB).
    pub fetch_max_bytes: usize,
    /// `max.partition.fetch.bytes` (default 1 MiB).
    pub max_partition_fetch_bytes: usize,
    /// `fetch.max.wait.ms` (default 500).
    pub fetch_max_wait_ms: u64,
    /// `max.poll.records` (default 500, at least 1).
    pub max_poll_records: u32,
    /// `isolation.level` (default `read_uncommitted`).
    pub isolation_level: IsolationLevel,
    /// `session.timeout.ms` (default 45000).
    pub session_timeout_ms: u64,
    /// `heartbeat.interval.ms` (default 3000; below `session.timeout.ms` when in a group).
    pub heartbeat_interval_ms: u64,
    /// `max.poll.interval.ms` (default 300000, at least 1).
    pub max_poll_interval_ms: u64,
    /// `partition.assignment.strategy`, in order of preference (default `range,cooperative-sticky`).
    pub partition_assignment_strategy: Vec<AssignmentStrategy>,
    /// `check.crcs` (default true).
    pub check_crcs: bool,
    /// Custom assignors ([`ConsumerConfig::with_assignors`]); when set they replace
    /// `partition.assignment.strategy`.
    assignors: Assignors,
    /// Keys set explicitly.
    explicit: BTreeSet<&'static str>,
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        ConsumerConfig {
            bootstrap_servers: Vec::new(),
            client_id: String::new(),
            group_id: None,
            group_instance_id: None,
            auto_offset_reset: AutoOffsetReset::Latest,
            enable_auto_commit: true,
            auto_commit_interval_ms: 5_000,
            fetch_min_bytes: 1,
            fetch_max_bytes: 52_428_800,
            max_partition_fetch_bytes: 1_048_576,
            fetch_max_wait_ms: 500,
            max_poll_records: 500,
            isolation_level: IsolationLevel::ReadUncommitted,
            session_timeout_ms: 45_000,
            heartbeat_interval_ms: 3_000,
            max_poll_interval_ms: 300_000,
            partition_assignment_strategy: vec![
                AssignmentStrategy::Range,
                AssignmentStrategy::CooperativeSticky,
            ],
            check_crcs: true,
            assignors: Assignors::default(),
            explicit: BTreeSet::new(),
        }
    }
}

const CONSUMER_DEFS: &[Def<ConsumerConfig>] = &[
    integer_def!(
        "auto.commit.interval.ms",
        auto_commit_interval_ms,
        0,
        INT_MAX
    ),
    Def {
        name: "auto.offset.reset",
        set: |c, v| {
            c.auto_offset_reset = parse::one_of("auto.offset.reset", v, OFFSET_RESET)?;
            Ok(())
        },
        get: |c| c.auto_offset_reset.as_str().to_owned(),
    },
    Def {
        name: "bootstrap.servers",
        set: |c, v| {
            c.bootstrap_servers = parse::string_list(v);
            Ok(())
        },
        get: |c| c.bootstrap_servers.join(","),
    },
    bool_def!("check.crcs", check_crcs),
    Def {
        name: "client.id",
        set: |c, v| {
            c.client_id = v.trim().to_owned();
            Ok(())
        },
        get: |c| c.client_id.clone(),
    },
    bool_def!("enable.auto.commit", enable_auto_commit),
    integer_def!("fetch.max.bytes", fetch_max_bytes, 0, INT_MAX),
    integer_def!("fetch.max.wait.ms", fetch_max_wait_ms, 0, INT_MAX),
    integer_def!("fetch.min.bytes", fetch_min_bytes, 0, INT_MAX),
    Def {
        name: "group.id",
        set: |c, v| {
            c.group_id = parse::optional_string(v);
            Ok(())
        },
        get: |c| c.group_id.clone().unwrap_or_default(),
    },
    Def {
        name: "group.instance.id",
        set: |c, v| {
            let id = parse::optional_string(v);
            if let Some(id) = &id
                && let Err(err) = names::validate_topic_name(id)
            {
                let reason = match err {
                    Error::InvalidTopicName { reason, .. } => reason,
                    other => other.to_string(),
                };
                return Err(parse::invalid("group.instance.id", v, reason));
            }
            c.group_instance_id = id;
            Ok(())
        },
        get: |c| c.group_instance_id.clone().unwrap_or_default(),
    },
    integer_def!("heartbeat.interval.ms", heartbeat_interval_ms, 0, INT_MAX),
    Def {
        name: "isolation.level",
        set: |c, v| {
            c.isolation_level = parse::one_of("isolation.level", v, ISOLATION_LEVELS)?;
            Ok(())
        },
        get: |c| c.isolation_level.as_str().to_owned(),
    },
    integer_def!(
        "max.partition.fetch.bytes",
        max_partition_fetch_bytes,
        0,
        INT_MAX
    ),
    integer_def!("max.poll.interval.ms", max_poll_interval_ms, 1, INT_MAX),
    integer_def!("max.poll.records", max_poll_records, 1, INT_MAX),
    Def {
        name: "partition.assignment.strategy",
        set: |c, v| {
            c.partition_assignment_strategy =
                parse::list_of("partition.assignment.strategy", v, ASSIGNMENT_STRATEGIES)?;
            Ok(())
        },
        get: |c| {
            let names: Vec<&str> = c
                .partition_assignment_strategy
                .iter()
                .map(|s| s.as_str())
                .collect();
            names.join(",")
        },
    },
    integer_def!("session.timeout.ms", session_timeout_ms, 0, INT_MAX),
];

impl ConsumerConfig {
    /// Kafka's defaults with `pairs` set on top, then [resolved](ConsumerConfig::resolve).
    ///
    /// An unknown key is [`Error::UnknownConfig`]; a bad value, or a combination Kafka refuses,
    /// is [`Error::InvalidConfig`]. When a key repeats, the last value wins.
    pub fn from_pairs<K, V>(pairs: impl IntoIterator<Item = (K, V)>) -> Result<ConsumerConfig>
    where
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut config = ConsumerConfig::default();
        for (key, value) in pairs {
            config.set(key.as_ref(), value.as_ref())?;
        }
        config.resolve()?;
        Ok(config)
    }

    /// Reads a Java-style properties text (`key=value` lines, `#` comments), as
    /// [`ConsumerConfig::from_pairs`].
    pub fn from_properties(text: &str) -> Result<ConsumerConfig> {
        Self::from_pairs(parse::properties(text))
    }

    /// Sets one key, validating its value alone; on error nothing changes.
    ///
    /// Call [`ConsumerConfig::resolve`] after the last `set`.
    pub fn set(&mut self, key: &str, value: &str) -> Result<&mut Self> {
        let name = parse::set(CONSUMER_DEFS, self, key, value)?;
        self.explicit.insert(name);
        Ok(self)
    }

    /// Applies Kafka's rules spanning several keys, as its consumer does at construction.
    ///
    /// - Without a `group.id` there is nothing to commit to: `enable.auto.commit` becomes false,
    ///   or is an error if set to true explicitly.
    /// - In a group, `heartbeat.interval.ms` must be below `session.timeout.ms`.
    pub fn resolve(&mut self) -> Result<()> {
        let in_group = self.group_id.is_some();
        if !self.explicit.contains("enable.auto.commit") {
            self.enable_auto_commit = in_group;
        } else if self.enable_auto_commit && !in_group {
            return Err(parse::invalid(
                "enable.auto.commit",
                "true",
                "must be false when no group.id is set",
            ));
        }
        if in_group && self.heartbeat_interval_ms >= self.session_timeout_ms {
            return Err(parse::invalid(
                "heartbeat.interval.ms",
                &self.heartbeat_interval_ms.to_string(),
                format!(
                    "must be below session.timeout.ms ({})",
                    self.session_timeout_ms
                ),
            ));
        }
        Ok(())
    }

    /// Every known key with its value, sorted by name; keys never `set` count as defaults.
    pub fn describe(&self) -> Vec<ConfigEntry> {
        parse::describe(CONSUMER_DEFS, self, |name| !self.explicit.contains(name))
    }

    /// The names of every known key, sorted.
    pub fn known_keys() -> Vec<&'static str> {
        parse::names(CONSUMER_DEFS)
    }

    /// Gives the consumer its own partition assignors, in order of preference, as listing
    /// classes in Kafka's `partition.assignment.strategy` does: they replace the built-ins
    /// that key names (an empty list returns to them). The consumer announces each in its
    /// JoinGroup; the group uses the one every member supports. See
    /// [`PartitionAssignor`] for which implementations run them (the embedded client does;
    /// the librdkafka consumer refuses them).
    ///
    /// An assignor with an empty name, or two with the same name, is
    /// [`Error::InvalidConfig`] (`partition.assignment.strategy`).
    pub fn with_assignors(mut self, assignors: Vec<Arc<dyn PartitionAssignor>>) -> Result<Self> {
        let mut names = BTreeSet::new();
        for a in &assignors {
            let name = a.name();
            if name.is_empty() {
                return Err(parse::invalid(
                    "partition.assignment.strategy",
                    "",
                    "an assignor's name must not be empty",
                ));
            }
            if !names.insert(name) {
                return Err(parse::invalid(
                    "partition.assignment.strategy",
                    name,
                    "two assignors have this name",
                ));
            }
        }
        self.assignors = assignors.into();
        Ok(self)
    }

    /// The assignors given with [`ConsumerConfig::with_assignors`], in order of preference
    /// (empty: the built-ins of `partition.assignment.strategy` assign).
    pub fn assignors(&self) -> &[Arc<dyn PartitionAssignor>] {
        self.assignors.as_slice()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry<'a>(entries: &'a [ConfigEntry], name: &str) -> &'a str {
        &entries.iter().find(|e| e.name == name).unwrap().value
    }

    #[test]
    fn producer_defaults_match_kafka() {
        let c = ProducerConfig::from_pairs::<&str, &str>([]).unwrap();
        assert_eq!(c, ProducerConfig::default());
        let d = c.describe();
        let expect = [
            ("acks", "all"),
            ("batch.size", "16384"),
            ("bootstrap.servers", ""),
            ("buffer.memory", "33554432"),
            ("client.id", ""),
            ("compression.type", "none"),
            ("delivery.timeout.ms", "120000"),
            ("enable.idempotence", "true"),
            ("linger.ms", "5"),
            ("max.block.ms", "60000"),
            ("max.in.flight.requests.per.connection", "5"),
            ("max.request.size", "1048576"),
            ("metadata.max.age.ms", "300000"),
            ("partitioner.ignore.keys", "false"),
            ("request.timeout.ms", "30000"),
            ("retries", "2147483647"),
            ("transaction.timeout.ms", "60000"),
            ("transactional.id", ""),
        ];
        let got: Vec<(&str, &str)> = d
            .iter()
            .map(|e| (e.name.as_str(), e.value.as_str()))
            .collect();
        assert_eq!(got, expect);
        assert!(d.iter().all(|e| e.is_default));
    }

    #[test]
    fn consumer_defaults_match_kafka() {
        let c = ConsumerConfig::default();
        let d = c.describe();
        let expect = [
            ("auto.commit.interval.ms", "5000"),
            ("auto.offset.reset", "latest"),
            ("bootstrap.servers", ""),
            ("check.crcs", "true"),
            ("client.id", ""),
            ("enable.auto.commit", "true"),
            ("fetch.max.bytes", "52428800"),
            ("fetch.max.wait.ms", "500"),
            ("fetch.min.bytes", "1"),
            ("group.id", ""),
            ("group.instance.id", ""),
            ("heartbeat.interval.ms", "3000"),
            ("isolation.level", "read_uncommitted"),
            ("max.partition.fetch.bytes", "1048576"),
            ("max.poll.interval.ms", "300000"),
            ("max.poll.records", "500"),
            ("partition.assignment.strategy", "range,cooperative-sticky"),
            ("session.timeout.ms", "45000"),
        ];
        let got: Vec<(&str, &str)> = d
            .iter()
            .map(|e| (e.name.as_str(), e.value.as_str()))
            .collect();
        assert_eq!(got, expect);
        let in_group = ConsumerConfig::from_pairs([("group.id", "g")]).unwrap();
        assert_eq!(
            in_group,
            ConsumerConfig {
                group_id: Some("g".to_owned()),
                explicit: ["group.id"].into(),
                ..ConsumerConfig::default()
            }
        );
    }

    #[test]
    fn batch_size_is_set_only_when_given() {
        assert!(!ProducerConfig::default().batch_size_is_set());
        let c = ProducerConfig::from_pairs([("batch.size", "16384")]).unwrap();
        assert!(c.batch_size_is_set(), "even at the default value");
    }

    #[test]
    fn producer_parses_typed_values() {
        let c = ProducerConfig::from_pairs([
            ("bootstrap.servers", " a:9092, b:9093 ,"),
            ("client.id", " app "),
            ("acks", "-1"),
            ("linger.ms", "0"),
            ("batch.size", "1000"),
            ("compression.type", "zstd"),
            ("partitioner.ignore.keys", "True"),
            ("transactional.id", "tx-1"),
        ])
        .unwrap();
        assert_eq!(c.bootstrap_servers, ["a:9092", "b:9093"]);
        assert_eq!(c.client_id, "app");
        assert_eq!(c.acks, Acks::All);
        assert_eq!((c.linger_ms, c.batch_size), (0, 1000));
        assert_eq!(c.compression, Compression::Zstd);
        assert!(c.partitioner_ignore_keys);
        assert_eq!(c.transactional_id.as_deref(), Some("tx-1"));
        assert!(c.enable_idempotence);
        assert_eq!(Acks::Leader.as_i16(), 1);
        for (v, acks) in [("0", Acks::None), ("1", Acks::Leader), ("ALL", Acks::All)] {
            assert_eq!(
                ProducerConfig::from_pairs([("acks", v)]).unwrap().acks,
                acks
            );
        }
    }

    #[test]
    fn consumer_parses_typed_values() {
        let c = ConsumerConfig::from_pairs([
            ("group.id", "g"),
            ("group.instance.id", "member-1"),
            ("auto.offset.reset", "earliest"),
            ("isolation.level", "read_committed"),
            ("max.poll.records", "10"),
            (
                "partition.assignment.strategy",
                "org.apache.kafka.clients.consumer.RoundRobinAssignor, range",
            ),
            ("check.crcs", "false"),
        ])
        .unwrap();
        assert_eq!(c.group_id.as_deref(), Some("g"));
        assert_eq!(c.group_instance_id.as_deref(), Some("member-1"));
        assert_eq!(c.auto_offset_reset, AutoOffsetReset::Earliest);
        assert_eq!(c.isolation_level, IsolationLevel::ReadCommitted);
        assert_eq!(c.isolation_level.as_i8(), 1);
        assert_eq!(c.max_poll_records, 10);
        assert_eq!(
            c.partition_assignment_strategy,
            [AssignmentStrategy::RoundRobin, AssignmentStrategy::Range]
        );
        assert_eq!(
            entry(&c.describe(), "partition.assignment.strategy"),
            "roundrobin,range"
        );
        assert!(!c.check_crcs && c.enable_auto_commit);
    }

    fn assert_invalid(err: Error, key: &str, value: &str) {
        match &err {
            Error::InvalidConfig {
                key: k,
                value: v,
                reason,
            } => {
                assert_eq!((k.as_str(), v.as_str()), (key, value), "{err}");
                assert!(reason.starts_with("must"), "{reason}");
            }
            other => panic!("{key}={value}: unexpected {other:?}"),
        }
    }

    #[test]
    fn producer_rejects_bad_values_naming_the_key() {
        let bad = [
            ("acks", "2"),
            ("batch.size", "-1"),
            ("buffer.memory", "lots"),
            ("compression.type", "uncompressed"),
            ("delivery.timeout.ms", "2147483648"),
            ("enable.idempotence", "1"),
            ("linger.ms", "-5"),
            ("max.block.ms", "1.5"),
            ("max.in.flight.requests.per.connection", "0"),
            ("max.request.size", ""),
            ("partitioner.ignore.keys", "no"),
            ("request.timeout.ms", "-1"),
            ("retries", "-1"),
            ("transaction.timeout.ms", "0"),
        ];
        for (key, value) in bad {
            assert_invalid(
                ProducerConfig::from_pairs([(key, value)]).unwrap_err(),
                key,
                value,
            );
        }
        let err = ProducerConfig::from_pairs([("compression.type", "brotli")]).unwrap_err();
        assert!(
            err.to_string()
                .contains("must be one of: none, gzip, snappy, lz4, zstd")
        );
    }

    #[test]
    fn consumer_rejects_bad_values_naming_the_key() {
        let bad = [
            ("auto.commit.interval.ms", "-1"),
            ("auto.offset.reset", "smallest"),
            ("check.crcs", "maybe"),
            ("enable.auto.commit", "on"),
            ("fetch.max.bytes", "-1"),
            ("fetch.max.wait.ms", "x"),
            ("fetch.min.bytes", "-1"),
            ("group.instance.id", "a/b"),
            ("heartbeat.interval.ms", "-1"),
            ("isolation.level", "READ_COMMITTED"),
            ("max.partition.fetch.bytes", "-1"),
            ("max.poll.interval.ms", "0"),
            ("max.poll.records", "0"),
            ("partition.assignment.strategy", "sticky"),
            ("partition.assignment.strategy", ""),
            ("session.timeout.ms", "-1"),
        ];
        for (key, value) in bad {
            assert_invalid(
                ConsumerConfig::from_pairs([(key, value)]).unwrap_err(),
                key,
                value,
            );
        }
    }

    #[test]
    fn unknown_keys_list_known_ones() {
        match ProducerConfig::from_pairs([("key.serializer", "x")]).unwrap_err() {
            Error::UnknownConfig { key, known } => {
                assert_eq!(key, "key.serializer");
                assert_eq!(known, ProducerConfig::known_keys().join(", "));
            }
            other => panic!("unexpected {other:?}"),
        }
        match ConsumerConfig::default().set("group", "g").unwrap_err() {
            Error::UnknownConfig { known, .. } => assert!(known.contains("group.id")),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn idempotence_follows_conflicting_settings_unless_explicit() {
        for (key, value) in [
            ("acks", "1"),
            ("retries", "0"),
            ("max.in.flight.requests.per.connection", "6"),
        ] {
            let c = ProducerConfig::from_pairs([(key, value)]).unwrap();
            assert!(!c.enable_idempotence, "{key}={value}");
            let err = ProducerConfig::from_pairs([(key, value), ("enable.idempotence", "true")])
                .unwrap_err();
            assert_invalid(err, key, value);
            let err =
                ProducerConfig::from_pairs([(key, value), ("transactional.id", "t")]).unwrap_err();
            assert_invalid(err, key, value);
        }
        let err = ProducerConfig::from_pairs([
            ("enable.idempotence", "false"),
            ("transactional.id", "t"),
        ])
        .unwrap_err();
        assert_invalid(err, "enable.idempotence", "false");

        let mut c = ProducerConfig::default();
        c.set("acks", "1").unwrap();
        c.resolve().unwrap();
        assert!(!c.enable_idempotence);
        c.set("acks", "all").unwrap();
        c.resolve().unwrap();
        assert!(c.enable_idempotence, "recomputed, not stuck");
    }

    #[test]
    fn delivery_timeout_covers_linger_and_request_timeout() {
        let c = ProducerConfig::from_pairs([("request.timeout.ms", "200000")]).unwrap();
        assert_eq!(c.delivery_timeout_ms, 200_005);
        let err = ProducerConfig::from_pairs([
            ("request.timeout.ms", "200000"),
            ("delivery.timeout.ms", "120000"),
        ])
        .unwrap_err();
        assert_invalid(err, "delivery.timeout.ms", "120000");
        assert!(
            err_text(ProducerConfig::from_pairs([
                ("linger.ms", "100"),
                ("delivery.timeout.ms", "30050"),
            ]))
            .contains("(30100)")
        );
    }

    fn err_text<T: std::fmt::Debug>(r: Result<T>) -> String {
        r.unwrap_err().to_string()
    }

    #[test]
    fn auto_commit_needs_a_group() {
        let c = ConsumerConfig::from_pairs::<&str, &str>([]).unwrap();
        assert!(!c.enable_auto_commit);
        let err = ConsumerConfig::from_pairs([("enable.auto.commit", "true")]).unwrap_err();
        assert_invalid(err, "enable.auto.commit", "true");
        let c = ConsumerConfig::from_pairs([("group.id", "g"), ("enable.auto.commit", "false")])
            .unwrap();
        assert!(!c.enable_auto_commit);
        let c = ConsumerConfig::from_pairs([("group.id", " ")]).unwrap();
        assert_eq!(c.group_id, None);
    }

    #[test]
    fn heartbeat_must_be_below_session_timeout_in_a_group() {
        let err = ConsumerConfig::from_pairs([("group.id", "g"), ("session.timeout.ms", "3000")])
            .unwrap_err();
        assert_invalid(err, "heartbeat.interval.ms", "3000");
        assert!(ConsumerConfig::from_pairs([("session.timeout.ms", "3000")]).is_ok());
    }

    #[test]
    fn set_chains_and_leaves_config_alone_on_error() {
        let mut c = ConsumerConfig::default();
        c.set("group.id", "g")
            .unwrap()
            .set("max.poll.records", "7")
            .unwrap();
        let before = c.clone();
        assert!(c.set("max.poll.records", "0").is_err());
        assert_eq!(c, before);
        c.resolve().unwrap();
        assert_eq!(c.max_poll_records, 7);
        assert!(
            !c.describe()
                .iter()
                .find(|e| e.name == "group.id")
                .unwrap()
                .is_default
        );
    }

    #[test]
    fn reads_properties_files() {
        let text =
            "# producer.properties\nbootstrap.servers=localhost:9092\nacks=1\nlinger.ms = 20\n";
        let c = ProducerConfig::from_properties(text).unwrap();
        assert_eq!(c.bootstrap_servers, ["localhost:9092"]);
        assert_eq!((c.acks, c.linger_ms), (Acks::Leader, 20));
        let c = ConsumerConfig::from_properties("group.id: g\nauto.offset.reset earliest").unwrap();
        assert_eq!(c.auto_offset_reset, AutoOffsetReset::Earliest);
    }
}
