//! `sluice broker`: serve the Kafka protocol over a data directory until SIGTERM or Ctrl-C.

use std::path::PathBuf;

use anyhow::Context;
use sluice_broker::{Broker, BrokerConfig};

#[derive(Debug, clap::Args)]
#[command(after_long_help = BrokerConfig::help_table())]
pub(crate) struct BrokerArgs {
    /// A Kafka-style server.properties file (`key=value` lines).
    #[arg(value_name = "SERVER_PROPERTIES")]
    config: Option<PathBuf>,
    /// Set one setting over the file, as Kafka's `--override` (repeatable).
    #[arg(long = "override", value_name = "KEY=VALUE", value_parser = crate::parse_key_value)]
    overrides: Vec<(String, String)>,
    /// Shorthand for `--override listeners=...`.
    #[arg(long, value_name = "PLAINTEXT://HOST:PORT")]
    listeners: Option<String>,
    /// Shorthand for `--override advertised.listeners=...`.
    #[arg(long, value_name = "PLAINTEXT://HOST:PORT")]
    advertised_listeners: Option<String>,
    /// Shorthand for `--override log.dirs=...`.
    #[arg(long, value_name = "DIR")]
    log_dirs: Option<PathBuf>,
    /// Shorthand for `--override node.id=...`.
    #[arg(long, value_name = "ID")]
    node_id: Option<i32>,
}

impl BrokerArgs {
    fn config(&self) -> anyhow::Result<BrokerConfig> {
        let mut config = match &self.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("could not read {}", path.display()))?;
                BrokerConfig::from_properties(&text)
                    .with_context(|| format!("in {}", path.display()))?
            }
            None => BrokerConfig::default(),
        };
        let mut set = self.overrides.clone();
        if let Some(l) = &self.listeners {
            set.push(("listeners".into(), l.clone()));
        }
        if let Some(l) = &self.advertised_listeners {
            set.push(("advertised.listeners".into(), l.clone()));
        }
        if let Some(d) = &self.log_dirs {
            set.push(("log.dirs".into(), d.display().to_string()));
        }
        if let Some(n) = self.node_id {
            set.push(("node.id".into(), n.to_string()));
        }
        for (k, v) in &set {
            config.set(k, v)?;
        }
        config.validate()?;
        Ok(config)
    }
}

pub(crate) fn run(args: BrokerArgs) -> anyhow::Result<()> {
    let config = args.config()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("sluice-broker")
        .build()
        .context("could not start the async runtime")?;
    runtime.block_on(async move {
        let broker = Broker::bind(config).await?;
        broker.run(shutdown_signal()).await?;
        anyhow::Ok(())
    })
}

/// Resolves on SIGTERM or Ctrl-C (SIGINT).
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
                    _ = tokio::signal::ctrl_c() => tracing::info!("interrupted: shutting down"),
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; Ctrl-C still stops the broker");
                // Ignored error: without a Ctrl-C handler there is no signal to wait for.
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
