//! Client-side pieces: configs under Kafka's names, and the partitioner.

pub mod config;
pub mod partitioner;
