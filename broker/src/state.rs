//! What every handler works over: the log, the coordinators, the settings.

use std::sync::Arc;

use sluice_log::Node;
use sluice_log::group::{GroupCoordinator, GroupCoordinatorConfig};
use sluice_log::log::{LogManager, LogManagerConfig};
use sluice_log::txn::TransactionCoordinator;

use crate::config::{BrokerConfig, Listener};
use crate::error::Result;
use crate::handlers::fetch_session::FetchSessions;

/// The broker's shared state.
#[derive(Debug)]
pub struct BrokerState {
    /// The settings it was started with.
    pub config: BrokerConfig,
    /// The address Metadata and FindCoordinator give clients.
    pub advertised: Listener,
    /// The log.
    pub log: LogManager,
    /// The group coordinator (shared with embedded clients of the same log).
    pub groups: Arc<GroupCoordinator>,
    /// The transaction coordinator (shared likewise).
    pub txns: Arc<TransactionCoordinator>,
    /// The node the coordinators belong to, held so that embedded clients of the same log in
    /// this process share them.
    pub node: Node,
    /// Incremental fetch sessions (KIP-227).
    pub(crate) fetch_sessions: FetchSessions,
    /// Becomes true when the broker starts shutting down: long-poll fetches answer at once.
    shutting_down: tokio::sync::watch::Sender<bool>,
}

impl BrokerState {
    /// Opens (recovering) the log of `config` and its coordinators. Blocks on the log's I/O.
    /// `advertised` is `advertised.listeners`, else `listeners` as configured; a listener on
    /// port 0 is advertised with the port it bound (see `Broker::bind`).
    pub fn open(config: BrokerConfig) -> Result<BrokerState> {
        config.validate()?;
        let mut log_config = LogManagerConfig::new(&config.log_dir);
        log_config.defaults = config.topic_defaults()?;
        log_config.retention_check_interval = config.retention_check_interval;
        log_config.checkpoint_interval = config.checkpoint_interval;
        log_config.cleaner_interval = config.cleaner_backoff;
        log_config.page_cache_window = config.page_cache_window;
        let log = LogManager::open(log_config)?;
        // The composition root the embedded client shares: the log and its coordinators.
        let node = Node::of(
            &log,
            GroupCoordinatorConfig {
                min_session_timeout_ms: config.group_min_session_timeout_ms,
                max_session_timeout_ms: config.group_max_session_timeout_ms,
                initial_rebalance_delay_ms: config.group_initial_rebalance_delay_ms,
                ..GroupCoordinatorConfig::default()
            },
        );
        let groups = node.groups()?;
        let txns = node.transactions()?;
        let advertised = config
            .advertised
            .clone()
            .unwrap_or_else(|| config.listener.clone());
        Ok(BrokerState {
            config,
            advertised,
            log,
            groups,
            txns,
            node,
            fetch_sessions: FetchSessions::default(),
            shutting_down: tokio::sync::watch::Sender::new(false),
        })
    }

    /// Tells requests waiting on something that may take long (a long-poll fetch) to answer
    /// now with what they have: the broker is shutting down.
    pub fn begin_shutdown(&self) {
        self.shutting_down.send_replace(true);
    }

    /// Watches for [`Self::begin_shutdown`].
    pub(crate) fn shutdown_watch(&self) -> tokio::sync::watch::Receiver<bool> {
        self.shutting_down.subscribe()
    }

    /// Creates `topic` with the broker's defaults if `auto.create.topics.enable` allows it and
    /// the name is a valid, non-internal one. Returns whether the topic exists afterwards.
    pub fn auto_create(&self, topic: &str) -> sluice_log::Result<bool> {
        if self.log.partition_count(topic).is_ok() {
            return Ok(true);
        }
        if !self.config.auto_create_topics || topic.starts_with("__") {
            return Ok(false);
        }
        match self.log.create_topic(
            topic,
            self.config.num_partitions,
            std::iter::empty::<(&str, &str)>(),
        ) {
            Ok(()) => {
                tracing::info!(
                    topic,
                    partitions = self.config.num_partitions,
                    "auto-created topic"
                );
                Ok(true)
            }
            Err(sluice_log::Error::TopicExists(_)) => Ok(true),
            Err(e) => Err(e),
        }
    }
}
