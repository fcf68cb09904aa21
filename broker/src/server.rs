//! Accepting connections, and shutting down cleanly.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use sluice_log::client::embedded::EmbeddedClient;
use sluice_log::group::GroupCoordinatorConfig;
use sluice_log::log::{LogManager, LogManagerConfig};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::config::{BrokerConfig, Listener};
use crate::connection;
use crate::error::{BrokerError, Result};
use crate::handlers::fetch_session::FetchSessions;
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
    /// Opens (recovering) the log and binds the listener.
    pub async fn bind(config: BrokerConfig) -> Result<Broker> {
        config.validate()?;
        let mut log_config = LogManagerConfig::new(&config.log_dir);
        log_config.defaults = config.topic_defaults()?;
        log_config.retention_check_interval = config.retention_check_interval;
        log_config.checkpoint_interval = config.checkpoint_interval;
        log_config.cleaner_interval = config.cleaner_backoff;
        let log = tokio::task::spawn_blocking(move || LogManager::open(log_config))
            .await
            .map_err(|e| BrokerError::Io {
                what: "opening the log".into(),
                source: std::io::Error::other(e),
            })??;
        let client = EmbeddedClient::new(log.clone());
        let groups = client.group_coordinator_with(GroupCoordinatorConfig {
            min_session_timeout_ms: config.group_min_session_timeout_ms,
            max_session_timeout_ms: config.group_max_session_timeout_ms,
            initial_rebalance_delay_ms: config.group_initial_rebalance_delay_ms,
            ..GroupCoordinatorConfig::default()
        })?;
        let txns = client.transaction_coordinator()?;
        let bind_host = if config.listener.host.is_empty() {
            "0.0.0.0"
        } else {
            config.listener.host.as_str()
        };
        let listener = TcpListener::bind((bind_host, config.listener.port))
            .await
            .map_err(|source| BrokerError::Io {
                what: format!("binding {}", config.listener),
                source,
            })?;
        let local_addr = listener.local_addr().map_err(|source| BrokerError::Io {
            what: "reading the bound address".into(),
            source,
        })?;
        let advertised = match &config.advertised {
            Some(a) => a.clone(),
            None => {
                let host = match config.listener.host.as_str() {
                    "" | "0.0.0.0" | "::" => {
                        tracing::warn!(
                            "listening on every interface without advertised.listeners: clients are told 127.0.0.1"
                        );
                        "127.0.0.1".to_owned()
                    }
                    h => h.to_owned(),
                };
                Listener {
                    name: config.listener.name.clone(),
                    host,
                    port: local_addr.port(),
                }
            }
        };
        tracing::info!(
            listening = %local_addr,
            advertised = %advertised,
            data_dir = %config.log_dir.display(),
            node_id = config.node_id,
            "sluice broker started"
        );
        let state = Arc::new(BrokerState {
            config,
            advertised,
            log,
            groups,
            txns,
            client,
            fetch_sessions: FetchSessions::default(),
        });
        Ok(Broker {
            state,
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

    /// Serves until `shutdown` resolves, then stops accepting, lets every connection finish
    /// the requests it has read (up to 30 s), and closes the log (flush and checkpoints).
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
