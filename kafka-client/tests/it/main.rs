//! The integration tests of `sluice-kafka`: one binary, one module per area.

#![allow(clippy::unwrap_used, reason = "tests panic on failure")]

mod mock_cluster;
