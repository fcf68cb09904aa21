//! The integration tests of `sluice-log`: one binary, one module per area.

// `allow-unwrap-in-tests` covers `#[test]` functions only, not their helpers.
#![allow(clippy::unwrap_used)]

mod codec;
mod compaction;
mod log;
