//! `sluice perf`.
use clap::Args;
use sluice_log::client::Client;

/// Perf.
#[derive(Debug, Args)]
pub(crate) struct PerfArgs {}

pub(crate) async fn run<C: Client>(_client: C, _args: PerfArgs) -> anyhow::Result<()> {
    anyhow::bail!("not yet")
}
