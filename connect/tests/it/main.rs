//! sluice-connect's integration tests: a standalone worker on the embedded log, driven through
//! its REST API as Kafka Connect's documentation drives it.
#![allow(clippy::unwrap_used, reason = "tests panic on failure")]

mod distributed;
mod harness;
mod postgres;
mod rest;
mod runtime;
