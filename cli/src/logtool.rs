//! `sluice log`: dump and verify segment files.
use clap::Args;

/// Inspect segment files.
#[derive(Debug, Args)]
pub(crate) struct LogArgs {}

pub(crate) fn run(_args: LogArgs) -> anyhow::Result<()> {
    anyhow::bail!("not yet")
}
