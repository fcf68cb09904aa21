//! The integration tests of sluice-streams.

mod state;
