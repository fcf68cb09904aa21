//! A standalone worker: a [`Herder`] with offsets in `offset.storage.file.filename` (in memory
//! without it) and the REST API on the first of `listeners`; connectors from config files
//! and from the REST API.

use std::net::SocketAddr;
use std::sync::Arc;

use sluice_client::Client;
use tokio::sync::oneshot;

use crate::config::{Props, WorkerConfig, listener_addr};
use crate::connector::Plugins;
use crate::error::{Error, Result};
use crate::herder::Herder;
use crate::offsets::{FileOffsetStore, MemoryOffsetStore, OffsetStore};

/// A running worker: its herder and REST server.
#[derive(Debug)]
pub struct ConnectWorker<C: Client> {
    herder: Herder<C>,
    addr: SocketAddr,
    stop_rest: Option<oneshot::Sender<()>>,
    rest: Option<tokio::task::JoinHandle<()>>,
}

impl<C: Client> ConnectWorker<C> {
    /// Starts a standalone worker: binds the REST listener, opens the offset file.
    pub async fn standalone(client: C, config: WorkerConfig, plugins: Plugins) -> Result<Self> {
        for n in &config.notices {
            tracing::warn!("{n}");
        }
        let offsets: Arc<dyn OffsetStore> = match &config.offset_file {
            Some(path) => Arc::new(FileOffsetStore::open(path)?),
            None => {
                tracing::warn!(
                    "no offset.storage.file.filename: source offsets are kept in memory only"
                );
                Arc::new(MemoryOffsetStore::default())
            }
        };
        Self::start(client, config, plugins, offsets).await
    }

    /// Starts a worker on an offset store of the caller's.
    pub async fn start(
        client: C,
        config: WorkerConfig,
        plugins: Plugins,
        offsets: Arc<dyn OffsetStore>,
    ) -> Result<Self> {
        let (tcp, addr, worker_id) = bind_rest(&config).await?;
        let herder = Herder::new(client, Arc::new(config), plugins, offsets, worker_id);
        let (tx, rest) = serve_rest(tcp, crate::rest::router(herder.clone()));
        tracing::info!(%addr, worker_id = herder.worker_id(), "REST API listening");
        Ok(ConnectWorker {
            herder,
            addr,
            stop_rest: Some(tx),
            rest: Some(rest),
        })
    }

    /// The herder.
    pub fn herder(&self) -> &Herder<C> {
        &self.herder
    }

    /// The REST listener's address.
    pub fn rest_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://host:port` of the REST API.
    pub fn rest_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Creates a connector from a config file's keys (its `name` key names it).
    pub async fn add_connector(&self, props: Props) -> Result<()> {
        let name = props
            .get("name")
            .map(|n| n.trim().to_owned())
            .filter(|n| !n.is_empty())
            .ok_or_else(|| Error::config("connector", "name", "a connector config needs a name"))?;
        self.herder.put_connector(&name, props, false).await?;
        Ok(())
    }

    /// Stops the REST server and every connector (tasks commit their offsets first).
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.stop_rest.take() {
            let _ = tx.send(());
        }
        self.herder.shutdown().await;
        if let Some(rest) = self.rest.take() {
            let _ = rest.await;
        }
    }
}

/// Binds the REST listener (the first of `listeners`) and names the worker as Kafka does:
/// `host:port`, from `rest.advertised.host.name`/`rest.advertised.port` or the listener
/// (the machine's host name for an unspecified address).
pub(crate) async fn bind_rest(
    config: &WorkerConfig,
) -> Result<(tokio::net::TcpListener, SocketAddr, String)> {
    let listener = config
        .listeners
        .first()
        .cloned()
        .unwrap_or_else(|| crate::config::DEFAULT_LISTENER.to_owned());
    let bind = listener_addr(&listener)?;
    let tcp = tokio::net::TcpListener::bind(&bind)
        .await
        .map_err(|e| Error::io(format!("listener {listener}"), e))?;
    let addr = tcp
        .local_addr()
        .map_err(|e| Error::io(format!("listener {listener}"), e))?;
    let host = match &config.advertised_host {
        Some(h) => h.clone(),
        None if addr.ip().is_unspecified() => std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".into()),
        None => addr.ip().to_string(),
    };
    let worker_id = format!("{host}:{}", config.advertised_port.unwrap_or(addr.port()));
    Ok((tcp, addr, worker_id))
}

/// Serves the REST API until the returned sender fires (or is dropped).
pub(crate) fn serve_rest(
    tcp: tokio::net::TcpListener,
    app: axum::Router,
) -> (oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
    let (tx, rx) = oneshot::channel::<()>();
    let rest = tokio::spawn(async move {
        let served = axum::serve(tcp, app)
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "the REST server stopped");
        }
    });
    (tx, rest)
}
