//! # sluice-streams
//!
//! Stream processing in the manner of Kafka Streams, on Sluice's client interface
//! (`sluice-client`): the same topology runs on the embedded log, on `sluice broker` or on any
//! Kafka cluster.
//!
//! - A typed DSL: [`StreamsBuilder`] builds a [`Topology`] of [`KStream`]s and [`KTable`]s:
//!   stateless operators, groupings and aggregations (by key, by time window, by session),
//!   suppression, stream-table and table-table joins, and the Processor API.
//! - State stores ([`state`]): key-value, window and session stores on RocksDB or in memory,
//!   each backed by a changelog topic and restored from it.
//! - [`TopologyTestDriver`]: pipe records in, read results out, no broker and no sleeping.

// The DSL keeps users' closures as shared trait objects (`Arc<dyn Fn(&K, &V) -> ...>`); naming
// each such type would hide what it is.
#![allow(clippy::type_complexity)]

pub mod config;
pub mod context;
pub mod driver;
pub mod error;
pub mod grouped;
pub mod kstream;
pub mod ktable;
mod node;
pub mod params;
pub mod processor;
pub mod record;
pub mod runtime;
pub mod serdes;
pub mod state;
pub mod task;
pub mod topology;
pub mod windows;

pub use context::{DeserializationHandler, TaskContext, TaskId, TaskMetrics};
pub use driver::TopologyTestDriver;
pub use error::{Error, Result};
pub use grouped::{KGroupedStream, SessionWindowedKStream, TimeWindowedKStream};
pub use kstream::{BranchedKStream, KStream};
pub use ktable::{Change, KTable, Suppressed};
pub use params::{
    Consumed, Grouped, Joined, Materialized, Named, Produced, Repartitioned, StoreEngineChoice,
    TimestampExtractor,
};
pub use processor::{Processor, ProcessorContext, PunctuationType};
pub use record::Record;
pub use runtime::{KafkaStreams, ProcessingGuarantee, StreamsConfig, StreamsMetrics};
pub use topology::{StreamsBuilder, Topology};
pub use windows::{SessionWindows, TimeWindows, Windowed};
