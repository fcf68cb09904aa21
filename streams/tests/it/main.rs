//! sluice-streams' integration tests: the state stores on both engines, and the DSL through the
//! test driver.

mod dsl;
mod runtime;
mod state;
