//! sluice-streams' integration tests: the DSL through the test driver.

mod dsl;
