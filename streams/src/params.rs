//! Kafka Streams' parameter objects: serdes, names and store choices for each operator.

use std::sync::Arc;

use crate::serdes::{DefaultSerde, SerdeRef};

/// How a record's timestamp is taken at a source.
#[derive(Clone, Default)]
pub enum TimestampExtractor {
    /// The record's own timestamp (Kafka's `FailOnInvalidTimestamp` family; the default).
    #[default]
    RecordTime,
    /// The wall clock when the record is processed (`WallclockTimestampExtractor`).
    WallClock,
    /// A function of the raw record (key bytes, value bytes, record timestamp) to ms.
    Custom(Arc<dyn Fn(Option<&[u8]>, Option<&[u8]>, i64) -> i64 + Send + Sync>),
}

impl std::fmt::Debug for TimestampExtractor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TimestampExtractor::RecordTime => f.write_str("RecordTime"),
            TimestampExtractor::WallClock => f.write_str("WallClock"),
            TimestampExtractor::Custom(_) => f.write_str("Custom"),
        }
    }
}

/// How a source topic is read: serdes, timestamps, name.
#[derive(Debug, Clone)]
pub struct Consumed<K, V> {
    pub(crate) keys: SerdeRef<K>,
    pub(crate) values: SerdeRef<V>,
    pub(crate) timestamps: TimestampExtractor,
    pub(crate) name: Option<String>,
}

impl<K: 'static, V: 'static> Consumed<K, V> {
    /// With these serdes.
    pub fn with(keys: SerdeRef<K>, values: SerdeRef<V>) -> Self {
        Self {
            keys,
            values,
            timestamps: TimestampExtractor::RecordTime,
            name: None,
        }
    }

    /// With this timestamp extractor.
    pub fn with_timestamp_extractor(mut self, t: TimestampExtractor) -> Self {
        self.timestamps = t;
        self
    }

    /// Names the source node.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
}

impl<K: DefaultSerde, V: DefaultSerde> Default for Consumed<K, V> {
    fn default() -> Self {
        Self::with(K::default_serde(), V::default_serde())
    }
}

impl<K: DefaultSerde, V> Consumed<K, V>
where
    V: serde::Serialize + serde::de::DeserializeOwned + 'static,
{
    /// The key by its default serde, the value as JSON.
    pub fn json() -> Self {
        Self::with(K::default_serde(), crate::serdes::json())
    }
}

/// How a sink writes: serdes, partitioner, name.
#[derive(Clone)]
pub struct Produced<K, V> {
    pub(crate) keys: SerdeRef<K>,
    pub(crate) values: SerdeRef<V>,
    pub(crate) partitioner: Option<Arc<dyn Fn(&K, &V, i32) -> Option<i32> + Send + Sync>>,
    pub(crate) name: Option<String>,
}

impl<K, V> std::fmt::Debug for Produced<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Produced")
            .field("keys", &self.keys.name())
            .field("values", &self.values.name())
            .finish_non_exhaustive()
    }
}

impl<K: 'static, V: 'static> Produced<K, V> {
    /// With these serdes.
    pub fn with(keys: SerdeRef<K>, values: SerdeRef<V>) -> Self {
        Self {
            keys,
            values,
            partitioner: None,
            name: None,
        }
    }

    /// With a partitioner of your own: `(key, value, partition count) -> partition` (`None`:
    /// the default, murmur2 of the key bytes, as Kafka's).
    pub fn with_partitioner(
        mut self,
        p: impl Fn(&K, &V, i32) -> Option<i32> + Send + Sync + 'static,
    ) -> Self {
        self.partitioner = Some(Arc::new(p));
        self
    }

    /// Names the sink node.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
}

impl<K: DefaultSerde, V: DefaultSerde> Default for Produced<K, V> {
    fn default() -> Self {
        Self::with(K::default_serde(), V::default_serde())
    }
}

impl<K: DefaultSerde, V> Produced<K, V>
where
    V: serde::Serialize + serde::de::DeserializeOwned + 'static,
{
    /// The key by its default serde, the value as JSON.
    pub fn json() -> Self {
        Self::with(K::default_serde(), crate::serdes::json())
    }
}

/// The serdes (and name) of a grouping, used for its repartition topic when the key changed.
#[derive(Debug, Clone)]
pub struct Grouped<K, V> {
    pub(crate) keys: SerdeRef<K>,
    pub(crate) values: SerdeRef<V>,
    pub(crate) name: Option<String>,
}

impl<K: 'static, V: 'static> Grouped<K, V> {
    /// With these serdes.
    pub fn with(keys: SerdeRef<K>, values: SerdeRef<V>) -> Self {
        Self {
            keys,
            values,
            name: None,
        }
    }

    /// Names the grouping: its repartition topic is `<application.id>-<name>-repartition`.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
}

impl<K: DefaultSerde, V: DefaultSerde> Default for Grouped<K, V> {
    fn default() -> Self {
        Self::with(K::default_serde(), V::default_serde())
    }
}

/// Which engine a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StoreEngineChoice {
    /// RocksDB on disk under `state.dir` (the default, as Kafka Streams').
    #[default]
    RocksDb,
    /// In memory, rebuilt from the changelog on start.
    InMemory,
}

/// How an aggregation's or table's store is made: its name, serdes, engine, changelog.
#[derive(Debug, Clone)]
pub struct Materialized<K, V> {
    pub(crate) name: Option<String>,
    pub(crate) keys: Option<SerdeRef<K>>,
    pub(crate) values: Option<SerdeRef<V>>,
    pub(crate) engine: StoreEngineChoice,
    pub(crate) logging: bool,
    pub(crate) caching: bool,
    pub(crate) retention_ms: Option<i64>,
}

impl<K: 'static, V: 'static> Materialized<K, V> {
    /// A store named `name` (queryable; changelog `<application.id>-<name>-changelog`).
    pub fn as_(name: impl Into<String>) -> Self {
        Self {
            name: Some(name.into()),
            ..Self::unnamed()
        }
    }

    /// A store with a generated name.
    pub fn unnamed() -> Self {
        Self {
            name: None,
            keys: None,
            values: None,
            engine: StoreEngineChoice::RocksDb,
            logging: true,
            caching: true,
            retention_ms: None,
        }
    }

    /// With these serdes for the store.
    pub fn with(keys: SerdeRef<K>, values: SerdeRef<V>) -> Self {
        Self {
            keys: Some(keys),
            values: Some(values),
            ..Self::unnamed()
        }
    }

    /// The key serde.
    pub fn with_key_serde(mut self, keys: SerdeRef<K>) -> Self {
        self.keys = Some(keys);
        self
    }

    /// The value serde.
    pub fn with_value_serde(mut self, values: SerdeRef<V>) -> Self {
        self.values = Some(values);
        self
    }

    /// Keeps the store in memory.
    pub fn in_memory(mut self) -> Self {
        self.engine = StoreEngineChoice::InMemory;
        self
    }

    /// Without a changelog topic (not restored after a crash or a move).
    pub fn with_logging_disabled(mut self) -> Self {
        self.logging = false;
        self
    }

    /// Without the record cache: every update is forwarded downstream.
    pub fn with_caching_disabled(mut self) -> Self {
        self.caching = false;
        self
    }

    /// How long a windowed store keeps windows (at least window size + grace).
    pub fn with_retention(mut self, retention: std::time::Duration) -> Self {
        self.retention_ms = Some(i64::try_from(retention.as_millis()).unwrap_or(i64::MAX));
        self
    }
}

impl<K: 'static, V: 'static> Default for Materialized<K, V> {
    fn default() -> Self {
        Self::unnamed()
    }
}

/// Names an operator's processor node (and what derives its name from it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Named(pub(crate) String);

impl Named {
    /// The name.
    pub fn as_(name: impl Into<String>) -> Self {
        Named(name.into())
    }
}

/// Serdes and name of an explicit repartition.
#[derive(Debug, Clone)]
pub struct Repartitioned<K, V> {
    pub(crate) keys: SerdeRef<K>,
    pub(crate) values: SerdeRef<V>,
    pub(crate) name: Option<String>,
    pub(crate) partitions: Option<i32>,
}

impl<K: 'static, V: 'static> Repartitioned<K, V> {
    /// With these serdes.
    pub fn with(keys: SerdeRef<K>, values: SerdeRef<V>) -> Self {
        Self {
            keys,
            values,
            name: None,
            partitions: None,
        }
    }

    /// Names the repartition topic `<application.id>-<name>-repartition`.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// With this many partitions (default: as many as the upstream source topics).
    pub fn with_number_of_partitions(mut self, n: i32) -> Self {
        self.partitions = Some(n);
        self
    }
}

impl<K: DefaultSerde, V: DefaultSerde> Default for Repartitioned<K, V> {
    fn default() -> Self {
        Self::with(K::default_serde(), V::default_serde())
    }
}

/// Serdes of a stream-table join (the stream's key and value, and the table's value).
#[derive(Debug, Clone)]
pub struct Joined<K, V, VT> {
    pub(crate) keys: SerdeRef<K>,
    pub(crate) values: SerdeRef<V>,
    pub(crate) other: SerdeRef<VT>,
    pub(crate) name: Option<String>,
}

impl<K: 'static, V: 'static, VT: 'static> Joined<K, V, VT> {
    /// With these serdes.
    pub fn with(keys: SerdeRef<K>, values: SerdeRef<V>, other: SerdeRef<VT>) -> Self {
        Self {
            keys,
            values,
            other,
            name: None,
        }
    }

    /// Names the join (and its repartition topic, when the stream's key changed before it).
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
}
