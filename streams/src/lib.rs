//! # sluice-streams
//!
//! Stream processing in the manner of Kafka Streams, on Sluice's client interface
//! (`sluice-client`): the same topology runs on the embedded log, on `sluice broker` or on any
//! Kafka cluster.
//!
//! - A typed DSL: `StreamsBuilder` builds a `Topology` of `KStream`s and `KTable`s.
//! - State stores ([`state`]): key-value, window and session stores on RocksDB or in memory,
//!   each backed by a changelog topic and restored from it.
//! - A runtime: tasks per input partition, a consumer group per application, at-least-once or
//!   exactly-once (transactions).

pub mod error;
pub mod state;

pub use error::{Error, Result};
