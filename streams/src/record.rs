//! What flows between processors.

pub use sluice_client::Header;

/// A record inside a topology: a typed key and value, the timestamp that decides windows and
/// stream time, headers, and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Record<K, V> {
    /// The key.
    pub key: K,
    /// The value.
    pub value: V,
    /// Event time in ms (from the timestamp extractor at the source; a processor may change it).
    pub timestamp: i64,
    /// Headers, carried from the input to the output unless a processor changes them.
    pub headers: Vec<Header>,
    /// The input record this one derives from.
    pub(crate) origin: Origin,
}

/// Where a record came from: the input record the current processing derives from (Kafka
/// Streams' `RecordContext`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Origin {
    /// Index of the topic in the task's source topics (`u32::MAX`: none, e.g. a punctuation).
    pub(crate) topic: u32,
    /// Partition.
    pub(crate) partition: i32,
    /// Offset (-1 for records made by punctuation).
    pub(crate) offset: i64,
}

impl Origin {
    pub(crate) const NONE: Origin = Origin {
        topic: u32::MAX,
        partition: -1,
        offset: -1,
    };
}

impl<K, V> Record<K, V> {
    /// A record with no headers and no origin (made by a processor, e.g. in a punctuation).
    pub fn new(key: K, value: V, timestamp: i64) -> Self {
        Self {
            key,
            value,
            timestamp,
            headers: Vec::new(),
            origin: Origin::NONE,
        }
    }

    /// The same record with another key and value, keeping timestamp, headers and origin.
    pub fn with<K2, V2>(&self, key: K2, value: V2) -> Record<K2, V2> {
        Record {
            key,
            value,
            timestamp: self.timestamp,
            headers: self.headers.clone(),
            origin: self.origin,
        }
    }

    /// The same record with another key and value, taking its headers.
    pub fn into_with<K2, V2>(self, key: K2, value: V2) -> Record<K2, V2> {
        Record {
            key,
            value,
            timestamp: self.timestamp,
            headers: self.headers,
            origin: self.origin,
        }
    }

    /// The same record with another value.
    pub fn map_value<V2>(self, f: impl FnOnce(V) -> V2) -> Record<K, V2> {
        Record {
            key: self.key,
            value: f(self.value),
            timestamp: self.timestamp,
            headers: self.headers,
            origin: self.origin,
        }
    }

    /// The offset of the input record this one derives from (-1 when none).
    pub fn offset(&self) -> i64 {
        self.origin.offset
    }

    /// The partition of the input record this one derives from (-1 when none).
    pub fn partition(&self) -> i32 {
        self.origin.partition
    }
}
