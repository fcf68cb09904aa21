//! `sluice connect standalone worker.properties connector.properties...` and `sluice connect
//! distributed worker.properties`: Kafka Connect's standalone and distributed workers
//! (sluice-connect) with their REST API, on the embedded log or a Kafka cluster.
//!
//! Where it runs: `--bootstrap` names a cluster; else `--data-dir` the embedded log; else the
//! worker config's `bootstrap.servers`; else the embedded log in `SLUICE_DATA_DIR` or
//! `./sluice-data`. (Kafka's own `connect-standalone.properties` has
//! `bootstrap.servers=localhost:9092`: with `--data-dir` it runs on the embedded log unchanged.)

use std::path::PathBuf;

use anyhow::Context;
use sluice_connect::config::{Props, WorkerConfig, read_config_file};
use sluice_connect::connector::Plugins;
use sluice_connect::distributed::DistributedWorker;
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
    /// Run a distributed worker: connector configs, offsets and statuses in the topics of
    /// config.storage.topic, offset.storage.topic and status.storage.topic; the workers of
    /// one group.id share connectors and tasks. Connectors are created through the REST API.
    Distributed(DistributedArgs),
}

#[derive(Debug, clap::Args)]
struct DistributedArgs {
    /// The worker's config (Kafka Connect's connect-distributed.properties keys).
    worker: PathBuf,
    /// Sets a worker config over the file's, KEY=VALUE (repeatable).
    #[arg(long = "override", value_name = "KEY=VALUE", value_parser = crate::parse_key_value)]
    overrides: Vec<(String, String)>,
    /// Data directory of the embedded log (wins over the worker's bootstrap.servers). Only
    /// the workers of one process share an embedded log: workers in several processes need
    /// a Kafka cluster (`sluice broker`).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Run against a Kafka cluster (or `sluice broker`) at HOST:PORT[,...] instead.
    #[arg(long, value_name = "HOST:PORT")]
    bootstrap: Option<String>,
}

/// What a worker runs: a standalone worker with its connector configs, or a distributed one.
enum Run {
    Standalone(Vec<Props>),
    Distributed,
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
    let (worker, overrides, flag_dir, flag_bootstrap, connector_files, distributed) =
        match args.mode {
            Mode::Standalone(a) => (
                a.worker,
                a.overrides,
                a.data_dir,
                a.bootstrap,
                a.connectors,
                false,
            ),
            Mode::Distributed(a) => (
                a.worker,
                a.overrides,
                a.data_dir,
                a.bootstrap,
                Vec::new(),
                true,
            ),
        };
    let mut props: Props = read_config_file(&worker)
        .with_context(|| format!("reading the worker config {}", worker.display()))?;
    for (k, v) in &overrides {
        props.insert(k.clone(), v.clone());
    }
    let mut connectors = Vec::new();
    for path in &connector_files {
        connectors.push(
            read_config_file(path)
                .with_context(|| format!("reading the connector config {}", path.display()))?,
        );
    }
    let what = if distributed {
        Run::Distributed
    } else {
        Run::Standalone(connectors)
    };
    let config = WorkerConfig::from_props(props)?;
    let bootstrap = flag_bootstrap.or(bootstrap);
    let data_dir = flag_dir.or(data_dir);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_io()
        .enable_time()
        .build()
        .context("could not start the async runtime")?;
    match (bootstrap, data_dir, config.bootstrap_servers.clone()) {
        (Some(servers), _, _) => runtime.block_on(serve(KafkaClient::new(&servers), config, what)),
        (None, Some(dir), file) => {
            if let Some(s) = file {
                tracing::info!(bootstrap.servers = %s, "--data-dir given: the embedded log is used, not bootstrap.servers");
            }
            runtime.block_on(serve(
                crate::open_client(&dir, PageCacheWindow::Auto)?,
                config,
                what,
            ))
        }
        (None, None, Some(servers)) => {
            runtime.block_on(serve(KafkaClient::new(&servers), config, what))
        }
        (None, None, None) => {
            let dir = std::env::var_os("SLUICE_DATA_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(crate::DEFAULT_DATA_DIR));
            runtime.block_on(serve(
                crate::open_client(&dir, PageCacheWindow::Auto)?,
                config,
                what,
            ))
        }
    }
}

/// Starts the worker (and a standalone one's connectors), then runs until SIGTERM or Ctrl-C.
async fn serve<C: Client>(client: C, config: WorkerConfig, what: Run) -> anyhow::Result<()> {
    let connectors = match what {
        Run::Standalone(c) => c,
        Run::Distributed => {
            let worker = DistributedWorker::start(client, config, Plugins::builtin()).await?;
            outln!(
                "Kafka Connect (distributed, worker {}) started: REST API at {}",
                worker.herder().worker_id(),
                worker.rest_url()
            )?;
            shutdown_signal().await;
            worker.shutdown().await;
            outln!("Kafka Connect stopped")?;
            return Ok(());
        }
    };
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
