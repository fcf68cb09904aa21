//! The integration tests of `sluice-broker`: a live broker on loopback, spoken to over raw
//! frames built with `kafka-protocol`, one module per area.

#![allow(clippy::unwrap_used, reason = "tests panic on failure")]
#![allow(unreachable_pub, reason = "helpers shared between the test modules")]

mod config;
mod fuzz_seeds;
mod hostile;
mod protocol;
mod robustness;
mod shutdown;
mod topic_ids;
mod wire;
