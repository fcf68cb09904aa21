//! The integration tests of `sluice-log`: one binary, one module per area.

// clippy.toml's allow-unwrap-in-tests covers `#[test]` functions only, not their helpers here.
#![allow(clippy::unwrap_used)]

mod codec;
mod log;
mod recovery;
