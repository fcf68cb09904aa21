//! The client interface ([`sluice_client`], re-exported here) and its embedded implementation,
//! [`embedded::EmbeddedClient`], in-process over a [`LogManager`](crate::log::LogManager).
//!
//! The Kafka-protocol implementation is the `sluice-kafka` crate; both implement the same
//! traits, so streams, SQL and connectors run on either.

pub use sluice_client::*;

pub mod embedded;
