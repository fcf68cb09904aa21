//! `sluice connect standalone worker.properties connector.properties...`: Kafka Connect's
//! standalone worker (sluice-connect) with its REST API, on the embedded log or a Kafka
//! cluster.
//!
//! Where it runs: `--bootstrap` names a cluster; else `--data-dir` the embedded log; else the
//! worker config's `bootstrap.servers`; else the embedded log in `SLUICE_DATA_DIR` or
//! `./sluice-data`. (Kafka's own `connect-standalone.properties` has
//! `bootstrap.servers=localhost:9092`: with `--data-dir` it runs on the embedded log unchanged.)

use std::path::PathBuf;

use anyhow::Context;
use sluice_connect::config::{Props, WorkerConfig, read_config_file};
use sluice_connect::connector::Plugins;
use sluice_connect::standalone::ConnectWorker;
use sluice_kafka::KafkaClient;
use sluice_log::client::Client;
use sluice_log::log::PageCacheWindow;

/// `sluice connect`.
#[derive(Debug, clap::Args)]
pub(crate) struct ConnectArgs {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Debug, clap::Subcommand)]
enum Mode {
    /// Run a standalone worker: connectors from config files (and the REST API), offsets in
    /// offset.storage.file.filename.
    Standalone(StandaloneArgs),
}

#[derive(Debug, clap::Args)]
struct StandaloneArgs {
    /// The worker's config (Kafka Connect's connect-standalone.properties keys).
    worker: PathBuf,
    /// Connector configs, .properties or JSON ({"name", "config"} or flat).
    connectors: Vec<PathBuf>,
    /// Sets a worker config over the file's, KEY=VALUE (repeatable).
    #[arg(long = "override", value_name = "KEY=VALUE", value_parser = crate::parse_key_value)]
    overrides: Vec<(String, String)>,
    /// Data directory of the embedded log (wins over the worker's bootstrap.servers).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Run against a Kafka cluster (or `sluice broker`) at HOST:PORT[,...] instead.
    #[arg(long, value_name = "HOST:PORT")]
    bootstrap: Option<String>,
}

/// Runs `sluice connect`; `data_dir` and `bootstrap` are the flags given before the
/// subcommand.
pub(crate) fn run(
    args: ConnectArgs,
    data_dir: Option<PathBuf>,
    bootstrap: Option<String>,
) -> anyhow::Result<()> {
    let Mode::Standalone(a) = args.mode;
    let mut props: Props = read_config_file(&a.worker)
        .with_context(|| format!("reading the worker config {}", a.worker.display()))?;
    for (k, v) in &a.overrides {
        props.insert(k.clone(), v.clone());
    }
    let mut connectors = Vec::new();
    for path in &a.connectors {
        connectors.push(
            read_config_file(path)
                .with_context(|| format!("reading the connector config {}", path.display()))?,
        );
    }
    let config = WorkerConfig::from_props(props)?;
    let bootstrap = a.bootstrap.or(bootstrap);
    let data_dir = a.data_dir.or(data_dir);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_io()
        .enable_time()
        .build()
        .context("could not start the async runtime")?;
    match (bootstrap, data_dir, config.bootstrap_servers.clone()) {
        (Some(servers), _, _) => {
            runtime.block_on(serve(KafkaClient::new(&servers), config, connectors))
        }
        (None, Some(dir), file) => {
            if let Some(s) = file {
                tracing::info!(bootstrap.servers = %s, "--data-dir given: the embedded log is used, not bootstrap.servers");
            }
            runtime.block_on(serve(
                crate::open_client(&dir, PageCacheWindow::Auto)?,
                config,
                connectors,
            ))
        }
        (None, None, Some(servers)) => {
            runtime.block_on(serve(KafkaClient::new(&servers), config, connectors))
        }
        (None, None, None) => {
            let dir = std::env::var_os("SLUICE_DATA_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(crate::DEFAULT_DATA_DIR));
            runtime.block_on(serve(
                crate::open_client(&dir, PageCacheWindow::Auto)?,
                config,
                connectors,
            ))
        }
    }
}

/// Starts the worker and its connectors, then runs until SIGTERM or Ctrl-C.
async fn serve<C: Client>(
    client: C,
    config: WorkerConfig,
    connectors: Vec<Props>,
) -> anyhow::Result<()> {
    let worker = ConnectWorker::standalone(client, config, Plugins::builtin()).await?;
    outln!("Kafka Connect started: REST API at {}", worker.rest_url())?;
    for props in connectors {
        let name = props.get("name").cloned().unwrap_or_default();
        if let Err(e) = worker.add_connector(props).await {
            worker.shutdown().await;
            return Err(anyhow::Error::new(e).context(format!("creating connector {name}")));
        }
        outln!("Connector {name} started")?;
    }
    shutdown_signal().await;
    worker.shutdown().await;
    outln!("Kafka Connect stopped")?;
    Ok(())
}

/// Resolves on SIGTERM or Ctrl-C (SIGINT).
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => tracing::info!("SIGTERM: stopping the worker"),
                    _ = tokio::signal::ctrl_c() => tracing::info!("interrupted: stopping the worker"),
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; Ctrl-C still stops the worker");
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
