//! Cross-crate end-to-end tests: the `sluice` binary and the example pipeline, the client
//! contract on every implementation, the dependency direction.
mod broker;
mod cli;
mod connect;
mod contract;
mod depcheck;
mod kafka_client;
mod native_consumer;
mod native_producer;
mod readme;
