//! The integration tests of `sluice-log`: one binary, one module per area.

mod client;
mod codec;
mod log;
