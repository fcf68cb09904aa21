//! Cross-crate end-to-end tests: the `sluice` binary and the example pipeline.
mod broker;
mod cli;
mod kafka_client;
mod native_consumer;
mod native_producer;
mod readme;
