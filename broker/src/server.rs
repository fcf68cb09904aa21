//! Accepting connections, and shutting down cleanly.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::config::{BrokerConfig, Listener};
use crate::connection;
use crate::error::{BrokerError, Result};
use crate::state::BrokerState;

/// How long a shutdown waits for in-flight requests (a long-poll fetch, an acks=all produce)
/// before closing their connections anyway.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// A bound broker, ready to [`Broker::run`].
#[derive(Debug)]
pub struct Broker {
    state: Arc<BrokerState>,
    listener: TcpListener,
    local_addr: SocketAddr,
}

impl Broker {
    /// Checks the settings, binds the listener, then opens (recovering) the log: a port in use
    /// or a data directory that is not one fails before anything is written.
    pub async fn bind(config: BrokerConfig) -> Result<Broker> {
        config.validate()?;
        for skipped in config.controller_listeners() {
            tracing::warn!(
                listener = %skipped,
                "not serving the controller listener: one Sluice node is its own KRaft controller; \
                 clients use the client listener"
            );
        }
        let bind_host = if config.listener.host.is_empty() {
            "0.0.0.0"
        } else {
            config.listener.host.as_str()
        };
        let listener = TcpListener::bind((bind_host, config.listener.port))
            .await
            .map_err(|source| BrokerError::Io {
                what: format!(
                    "binding {} (address {bind_host}:{})",
                    config.listener, config.listener.port
                ),
                source,
            })?;
        let local_addr = listener.local_addr().map_err(|source| BrokerError::Io {
            what: "reading the bound address".into(),
            source,
        })?;
        if std::fs::metadata(&config.log_dir).is_ok_and(|m| !m.is_dir()) {
            return Err(BrokerError::Config {
                key: "log.dirs".into(),
                message: format!(
                    "log directory {} is not a directory",
                    config.log_dir.display()
                ),
            });
        }
        let mut state = tokio::task::spawn_blocking(move || BrokerState::open(config))
            .await
            .map_err(|e| BrokerError::Io {
                what: "opening the log".into(),
                source: std::io::Error::other(e),
            })??;
        let config = &state.config;
        if config.advertised.is_none() {
            let host = match config.listener.host.as_str() {
                "" | "0.0.0.0" | "::" => {
                    tracing::warn!(
                        "listening on every interface without advertised.listeners: clients are told 127.0.0.1"
                    );
                    "127.0.0.1".to_owned()
                }
                h => h.to_owned(),
            };
            state.advertised = Listener {
                name: config.listener.name.clone(),
                host,
                port: local_addr.port(),
            };
        }
        tracing::info!(
            listening = %local_addr,
            advertised = %state.advertised,
            data_dir = %state.config.log_dir.display(),
            node_id = state.config.node_id,
            "sluice broker started"
        );
        Ok(Broker {
            state: Arc::new(state),
            listener,
            local_addr,
        })
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The shared state (tests drive handlers and the log through it).
    pub fn state(&self) -> &Arc<BrokerState> {
        &self.state
    }

    /// Serves until `shutdown` resolves, then stops accepting, answers pending long-poll
    /// fetches at once, lets every connection finish the requests it has read (up to 30 s), and
    /// closes the log (flush and checkpoints).
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<()> {
        let Broker {
            state, listener, ..
        } = self;
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut connections = JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        if let Err(e) = stream.set_nodelay(true) {
                            tracing::debug!(%peer, error = %e, "set_nodelay failed");
                        }
                        connections.spawn(connection::serve(
                            Arc::clone(&state),
                            stream,
                            peer,
                            stop_rx.clone(),
                        ));
                    }
                    Err(e) => {
                        // Out of file descriptors, most likely: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
        }
        drop(listener);
        tracing::info!(
            connections = connections.len(),
            "shutting down: no new connections; finishing in-flight requests"
        );
        // Long-poll fetches answer now with what they have instead of waiting out max_wait_ms.
        state.begin_shutdown();
        // Ignored error: no receiver left means no connection left to stop.
        let _ = stop_tx.send(true);
        let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
            while connections.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                left = connections.len(),
                "connections still busy after 30 s; closing them"
            );
            connections.shutdown().await;
        }
        let log = state.log.clone();
        drop(state);
        tokio::task::spawn_blocking(move || log.close())
            .await
            .map_err(|e| BrokerError::Io {
                what: "closing the log".into(),
                source: std::io::Error::other(e),
            })??;
        tracing::info!("sluice broker stopped; log flushed and checkpointed");
        Ok(())
    }
}
