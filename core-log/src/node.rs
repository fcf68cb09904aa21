//! The composition root: one log with its group and transaction coordinators, wired once.
//!
//! ```text
//!             Node ------------------------------+
//!   (EmbeddedClient, sluice broker hold it)      |
//!    |            |                 |            |
//!    v            v                 v            v
//! LogManager  GroupCoordinator  TransactionCoordinator --(markers of __consumer_offsets)--> groups
//!    ^            |  (OffsetStore)  |
//!    +------------+-----------------+   the coordinators hold the log
//! ```
//!
//! A node is built for a log once; every embedded client and the broker of that log share it
//! ([`Node::of`] finds the live one through the log's one typed, weak reference, so the
//! coordinators never hold their own log open). The coordinators are created on first use
//! (creating `__consumer_offsets` / `__transaction_state`), so a process that only produces
//! never opens them; a broker opens both before it serves anyone. Each has one ticker thread
//! of the log (expiring sessions and rebalances; aborting transactions past their timeout),
//! which ends with the node.

use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;

use crate::Result;
use crate::group::{GroupCoordinator, GroupCoordinatorConfig, OffsetStore, OffsetStoreConfig};
use crate::log::LogManager;
use crate::txn::TransactionCoordinator;

/// How often the ticker thread lets the group coordinator expire sessions and rebalances.
/// The deadlines themselves come from the log's clock, so a mock clock decides when they pass.
const GROUP_TICK_EVERY: Duration = Duration::from_millis(100);
/// How often transactions past `transaction.timeout.ms` are looked for.
const TXN_TICK_EVERY: Duration = Duration::from_secs(1);

/// A log and its coordinators (see the [module](self)). Cheap to clone.
#[derive(Debug, Clone)]
pub struct Node {
    inner: Arc<NodeInner>,
}

/// What a [`Node`] shares; the log holds a weak reference to it.
#[derive(Debug)]
pub struct NodeInner {
    log: LogManager,
    group_config: GroupCoordinatorConfig,
    /// Locked while the coordinator is created (its offset store replaying
    /// `__consumer_offsets`) and while a transaction marker is handed to it, which orders the
    /// two: a marker is either replayed by the loading store or handed to the loaded one.
    groups: Mutex<Option<Arc<GroupCoordinator>>>,
    txns: Mutex<Option<Arc<TransactionCoordinator>>>,
}

impl Node {
    /// The node of `log`: the live one if a client or broker of this log holds one, else a new
    /// one whose group coordinator (when first used) has `group_config`.
    pub fn of(log: &LogManager, group_config: GroupCoordinatorConfig) -> Node {
        let mut slot = log.node_slot().lock();
        if let Some(inner) = slot.node.upgrade() {
            return Node { inner };
        }
        let inner = Arc::new(NodeInner {
            log: log.clone(),
            group_config,
            groups: Mutex::new(None),
            txns: Mutex::new(None),
        });
        slot.node = Arc::downgrade(&inner);
        Node { inner }
    }

    /// The node of `log` for embedded clients: an initial rebalance delay of 0 (in one process
    /// there is no restart stampede to wait out, so the first consumer starts at once).
    pub fn embedded(log: &LogManager) -> Node {
        Node::of(
            log,
            GroupCoordinatorConfig {
                initial_rebalance_delay_ms: 0,
                ..GroupCoordinatorConfig::default()
            },
        )
    }

    /// The log.
    pub fn log(&self) -> &LogManager {
        &self.inner.log
    }

    /// The group coordinator, created (replaying `__consumer_offsets`, creating it if
    /// missing) on first use.
    pub fn groups(&self) -> Result<Arc<GroupCoordinator>> {
        let mut slot = self.inner.groups.lock();
        if let Some(c) = slot.as_ref() {
            return Ok(Arc::clone(c));
        }
        let log = &self.inner.log;
        let offsets = OffsetStore::open(log.clone(), OffsetStoreConfig::default())?;
        let coordinator = Arc::new(GroupCoordinator::new(
            offsets,
            Arc::clone(log.clock()),
            self.inner.group_config.clone(),
        ));
        *slot = Some(Arc::clone(&coordinator));
        drop(slot);
        // One ticker per log, for the coordinator of whichever node of it is alive at a tick.
        if !std::mem::replace(&mut log.node_slot().lock().group_ticker, true) {
            log.spawn_periodic("sluice-group-ticker", GROUP_TICK_EVERY, |log| {
                let node = log.node_slot().lock().node.upgrade();
                let Some(c) = node.and_then(|n| n.groups.lock().clone()) else {
                    return;
                };
                if let Err(e) = c.tick() {
                    tracing::warn!(error = %crate::report(&e), "group coordinator tick failed");
                }
            })?;
        }
        Ok(coordinator)
    }

    /// The transaction coordinator, created (replaying `__transaction_state`, creating it if
    /// missing, completing transactions a crash left half-done) on first use. Its markers on
    /// `__consumer_offsets` reach the group coordinator's offset store, if one is open.
    pub fn transactions(&self) -> Result<Arc<TransactionCoordinator>> {
        let mut slot = self.inner.txns.lock();
        if let Some(c) = slot.as_ref() {
            return Ok(Arc::clone(c));
        }
        let log = &self.inner.log;
        let node = Arc::downgrade(&self.inner);
        let coordinator = Arc::new(TransactionCoordinator::open_with(
            log.clone(),
            Box::new(move |partition, producer_id, producer_epoch, commit| {
                let Some(n) = node.upgrade() else { return };
                let groups = n.groups.lock();
                if let Some(g) = groups.as_ref() {
                    g.offsets().complete_transaction(
                        partition,
                        producer_id,
                        producer_epoch,
                        commit,
                    );
                }
            }),
        )?);
        *slot = Some(Arc::clone(&coordinator));
        drop(slot);
        if !std::mem::replace(&mut log.node_slot().lock().txn_ticker, true) {
            log.spawn_periodic("sluice-txn-timeouts", TXN_TICK_EVERY, |log| {
                let node = log.node_slot().lock().node.upgrade();
                let Some(c) = node.and_then(|n| n.txns.lock().clone()) else {
                    return;
                };
                if let Err(e) = c.tick() {
                    tracing::warn!(error = %crate::report(&e), "transaction timeout check failed");
                }
            })?;
        }
        Ok(coordinator)
    }
}

/// The log's reference to its node, and whether its tickers run (once per log).
#[derive(Debug, Default)]
pub(crate) struct NodeSlot {
    pub(crate) node: Weak<NodeInner>,
    pub(crate) group_ticker: bool,
    pub(crate) txn_ticker: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::LogManagerConfig;

    #[test]
    fn every_client_of_a_log_shares_one_node_and_its_coordinators() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| crate::Error::io("tempdir", e))?;
        let log = LogManager::open(LogManagerConfig::new(dir.path()))?;
        let broker = Node::of(
            &log,
            GroupCoordinatorConfig {
                initial_rebalance_delay_ms: 3_000,
                ..GroupCoordinatorConfig::default()
            },
        );
        let groups = broker.groups()?;
        let txns = broker.transactions()?;
        // A client of the same log finds the broker's node, not a second set of coordinators.
        let client = crate::client::embedded::EmbeddedClient::new(log.clone());
        assert!(Arc::ptr_eq(&client.group_coordinator()?, &groups));
        assert!(Arc::ptr_eq(&client.transaction_coordinator()?, &txns));
        assert!(Arc::ptr_eq(&Node::embedded(&log).groups()?, &groups));
        // Once nobody holds the node, the next one starts afresh (reloading the topics).
        drop((broker, client, groups, txns));
        let again = Node::embedded(&log);
        assert!(log.list_topics().iter().any(|t| t == "__consumer_offsets"));
        let groups = again.groups()?;
        assert!(Arc::ptr_eq(&Node::embedded(&log).groups()?, &groups));
        Ok(())
    }

    #[test]
    fn a_log_that_only_produces_opens_no_coordinator() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| crate::Error::io("tempdir", e))?;
        let log = LogManager::open(LogManagerConfig::new(dir.path()))?;
        let _client = crate::client::embedded::EmbeddedClient::new(log.clone());
        assert!(log.list_topics().is_empty(), "{:?}", log.list_topics());
        Ok(())
    }
}
