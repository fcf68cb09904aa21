//! End-to-end tests live in `e2e/`; this crate has no code of its own.
