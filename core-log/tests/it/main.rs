//! The integration tests of `sluice-log`: one binary, one module per area.

mod codec;
mod log;
mod recovery;
