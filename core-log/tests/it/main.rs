//! The integration tests of `sluice-log`: one binary, one module per area.

#![allow(clippy::unwrap_used, reason = "tests panic on failure")]

mod child;
mod client;
mod codec;
mod compaction;
mod consumer_group;
mod eos;
mod fuzz_seeds;
mod group;
mod hostile;
mod idempotence;
mod log;
mod recovery;
mod transactions;
