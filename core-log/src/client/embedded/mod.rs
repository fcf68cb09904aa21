//! The client interface in-process, straight over a [`LogManager`]: no sockets, no copies
//! beyond the page cache.

mod admin;
mod consumer;
mod group;
mod producer;

pub use admin::EmbeddedAdmin;
pub use consumer::{ConsumerMetrics, EmbeddedConsumer};
pub use producer::EmbeddedProducer;

use std::sync::Arc;

use super::Client;
use super::config::{ConsumerConfig, ProducerConfig};
use crate::Result;
use crate::group::GroupCoordinator;
use crate::log::LogManager;
use crate::node::Node;
use crate::txn::TransactionCoordinator;

/// A client of a log in this process.
#[derive(Debug, Clone)]
pub struct EmbeddedClient {
    node: Node,
}

impl EmbeddedClient {
    /// A client of `log`, sharing the log's node (its coordinators: [`Node`]) with every other
    /// client and broker of the same log.
    pub fn new(log: LogManager) -> Self {
        Self {
            node: Node::embedded(&log),
        }
    }

    /// A client of a node built by its owner (a broker with its `group.*` settings).
    pub fn of_node(node: Node) -> Self {
        Self { node }
    }

    /// The node: the log and its coordinators.
    pub fn node(&self) -> &Node {
        &self.node
    }

    /// The transaction coordinator of this log, opened (replaying `__transaction_state`) on
    /// first use; a thread of the log aborts transactions past `transaction.timeout.ms`,
    /// checking once a second. See [`Node::transactions`].
    pub fn transaction_coordinator(&self) -> Result<Arc<TransactionCoordinator>> {
        self.node.transactions()
    }

    /// The log underneath.
    pub fn log(&self) -> &LogManager {
        self.node.log()
    }

    /// The group coordinator of the log, created (with `__consumer_offsets`) on first use.
    ///
    /// One coordinator per log, shared by every client of the log through its [`Node`]. The
    /// initial rebalance delay is 0 unless the node was built by a broker: in one process
    /// there is no restart stampede to wait out, and the first consumer starts at once.
    /// Sessions and rebalance timeouts are expired by a thread of the log (stopped when the log
    /// closes) calling [`GroupCoordinator::tick`], whatever runtime (if any) the caller uses.
    pub fn group_coordinator(&self) -> Result<Arc<GroupCoordinator>> {
        self.node.groups()
    }
}

/// The group coordinator of `log` (see [`EmbeddedClient::group_coordinator`]).
pub(crate) fn group_coordinator_of(log: &LogManager) -> Result<Arc<GroupCoordinator>> {
    Node::embedded(log).groups()
}

impl Client for EmbeddedClient {
    type Admin = EmbeddedAdmin;
    type Producer = EmbeddedProducer;
    type Consumer = EmbeddedConsumer;

    fn admin(&self) -> Result<EmbeddedAdmin> {
        Ok(EmbeddedAdmin::new(self.clone()))
    }

    fn producer(&self, config: ProducerConfig) -> Result<EmbeddedProducer> {
        EmbeddedProducer::new(self.log().clone(), config, || {
            self.transaction_coordinator()
        })
    }

    fn consumer(&self, config: ConsumerConfig) -> Result<EmbeddedConsumer> {
        let coordinator = match config.group_id {
            Some(_) => Some(self.group_coordinator()?),
            None => None,
        };
        Ok(EmbeddedConsumer::new(
            self.log().clone(),
            config,
            coordinator,
        ))
    }
}
