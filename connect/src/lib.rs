//! # sluice-connect
//!
//! Kafka Connect on Sluice's client interface (`sluice-client`): a worker runs source and sink
//! connectors from config files or a REST API, keeps their offsets, and recovers from failures;
//! the same worker runs on the embedded log, on `sluice broker` or on any Kafka cluster.
//!
//! ```text
//! REST (axum, Kafka Connect's endpoints) -> Herder (connectors, their tasks and states)
//!   source: task.poll -> transforms -> converters -> Producer -> offsets stored once acknowledged
//!   sink:   Consumer (group connect-<name>) -> converters -> transforms -> task.put -> flush -> commit
//! ```
//!
//! - [`connector`]: the connector API (typed traits for authors, type-erased ones for the
//!   runtime) and the plugin registry with Kafka's class names and aliases.
//! - [`config`]: config definitions and validation, `.properties`/JSON files, the worker config.
//! - [`data`], [`converter`]: Connect's data model; JSON, String and ByteArray converters.
//! - [`connectors`]: FileStreamSource, FileStreamSink, datagen, PostgreSQL source and sink.
//! - [`standalone`], [`distributed`]: the workers; [`topic_log`]: the compacted topics of
//!   distributed workers (configs, offsets, statuses).

pub mod config;
pub mod connector;
pub mod connectors;
pub mod converter;
pub mod data;
pub mod distributed;
pub mod error;
pub mod herder;
pub mod offsets;
pub mod rest;
pub mod standalone;
pub mod topic_log;
pub mod transforms;
pub mod worker;

pub use error::{Error, Result};
