//! The client interface in-process, straight over a [`LogManager`]: no sockets, no copies
//! beyond the page cache.

mod admin;
mod consumer;
mod group;
mod producer;

pub use admin::EmbeddedAdmin;
pub use consumer::{ConsumerMetrics, EmbeddedConsumer};
pub use producer::EmbeddedProducer;

use std::sync::{Arc, Weak};
use std::time::Duration;

use super::Client;
use super::config::{ConsumerConfig, ProducerConfig};
use crate::Result;
use crate::group::{GroupCoordinator, GroupCoordinatorConfig, OffsetStore, OffsetStoreConfig};
use crate::log::LogManager;
use crate::txn::TransactionCoordinator;

/// How often the ticker thread lets the coordinator expire sessions and rebalances. The
/// deadlines themselves come from the log's clock, so a mock clock decides when they pass.
const TICK_EVERY: Duration = Duration::from_millis(100);

/// A client of a log in this process.
#[derive(Debug, Clone)]
pub struct EmbeddedClient {
    log: LogManager,
}

impl EmbeddedClient {
    /// A client of `log`.
    pub fn new(log: LogManager) -> Self {
        Self { log }
    }

    /// The transaction coordinator of this log, opened (replaying `__transaction_state`) on
    /// first use. One per log, found through a weak slot of the log as the group coordinator
    /// is (see [`EmbeddedClient::group_coordinator`]); a thread of the log aborts transactions
    /// past `transaction.timeout.ms`, checking once a second.
    pub fn transaction_coordinator(&self) -> Result<Arc<TransactionCoordinator>> {
        let mut slot = self.log.transaction_coordinator_slot().lock();
        if let Some(c) = slot
            .as_ref()
            .and_then(Weak::upgrade)
            .and_then(|any| any.downcast::<TransactionCoordinator>().ok())
        {
            return Ok(c);
        }
        let first = slot.is_none();
        let coordinator = Arc::new(TransactionCoordinator::open(self.log.clone())?);
        let any: Arc<dyn std::any::Any + Send + Sync> = coordinator.clone();
        *slot = Some(Arc::downgrade(&any));
        drop(slot);
        if first {
            self.log
                .spawn_periodic("sluice-txn-timeouts", Duration::from_secs(1), |log| {
                    let current = log
                        .transaction_coordinator_slot()
                        .lock()
                        .as_ref()
                        .and_then(Weak::upgrade)
                        .and_then(|any| any.downcast::<TransactionCoordinator>().ok());
                    if let Some(c) = current
                        && let Err(e) = c.tick()
                    {
                        tracing::warn!(error = %crate::report(&e), "transaction timeout check failed");
                    }
                })?;
        }
        Ok(coordinator)
    }

    /// The log underneath.
    pub fn log(&self) -> &LogManager {
        &self.log
    }

    /// The group coordinator of the log, created (with `__consumer_offsets`) on first use.
    ///
    /// One coordinator per log: the log keeps a weak reference to it in a slot every clone of
    /// the log shares, so every `EmbeddedClient` of the same log (and every clone of one)
    /// finds the same coordinator while anyone holds it. A strong reference in the log would
    /// be a cycle (the coordinator's offset store holds the log) and keep the log open; with a
    /// weak one, a coordinator is rebuilt from `__consumer_offsets` only after every holder
    /// (consumers, admins) dropped the previous one, so two never coexist.
    ///
    /// The initial rebalance delay is 0: in one process there is no restart stampede to wait
    /// out, and the first consumer starts at once. Sessions and rebalance timeouts are expired
    /// by a thread of the log (stopped when the log closes) calling
    /// [`GroupCoordinator::tick`], whatever runtime (if any) the caller uses.
    pub fn group_coordinator(&self) -> Result<Arc<GroupCoordinator>> {
        group_coordinator_of(&self.log)
    }

    /// As [`EmbeddedClient::group_coordinator`], creating the coordinator with `config` if
    /// none is alive (a broker passes its `group.*` settings this way before serving anyone;
    /// a live coordinator is returned as it is).
    pub fn group_coordinator_with(
        &self,
        config: GroupCoordinatorConfig,
    ) -> Result<Arc<GroupCoordinator>> {
        group_coordinator_with(&self.log, config)
    }
}

/// The group coordinator of `log` (see [`EmbeddedClient::group_coordinator`]).
pub(crate) fn group_coordinator_of(log: &LogManager) -> Result<Arc<GroupCoordinator>> {
    let config = GroupCoordinatorConfig {
        initial_rebalance_delay_ms: 0,
        ..GroupCoordinatorConfig::default()
    };
    group_coordinator_with(log, config)
}

fn group_coordinator_with(
    log: &LogManager,
    config: GroupCoordinatorConfig,
) -> Result<Arc<GroupCoordinator>> {
    let mut slot = log.group_coordinator_slot().lock();
    if let Some(c) = slot
        .as_ref()
        .and_then(Weak::upgrade)
        .and_then(|any| any.downcast::<GroupCoordinator>().ok())
    {
        return Ok(c);
    }
    let first = slot.is_none();
    let offsets = OffsetStore::open(log.clone(), OffsetStoreConfig::default())?;
    let coordinator = Arc::new(GroupCoordinator::new(
        offsets,
        Arc::clone(log.clock()),
        config,
    ));
    let any: Arc<dyn std::any::Any + Send + Sync> = coordinator.clone();
    *slot = Some(Arc::downgrade(&any));
    drop(slot);
    if first {
        // One ticker per log, for whichever coordinator is alive at each tick.
        log.spawn_periodic("sluice-group-ticker", TICK_EVERY, |log| {
            let current = log
                .group_coordinator_slot()
                .lock()
                .as_ref()
                .and_then(Weak::upgrade)
                .and_then(|any| any.downcast::<GroupCoordinator>().ok());
            if let Some(c) = current
                && let Err(e) = c.tick()
            {
                tracing::warn!(error = %crate::report(&e), "group coordinator tick failed");
            }
        })?;
    }
    Ok(coordinator)
}

impl Client for EmbeddedClient {
    type Admin = EmbeddedAdmin;
    type Producer = EmbeddedProducer;
    type Consumer = EmbeddedConsumer;

    fn admin(&self) -> Result<EmbeddedAdmin> {
        Ok(EmbeddedAdmin::new(self.clone()))
    }

    fn producer(&self, config: ProducerConfig) -> Result<EmbeddedProducer> {
        EmbeddedProducer::new(self.log.clone(), config, || self.transaction_coordinator())
    }

    fn consumer(&self, config: ConsumerConfig) -> Result<EmbeddedConsumer> {
        let coordinator = match config.group_id {
            Some(_) => Some(self.group_coordinator()?),
            None => None,
        };
        Ok(EmbeddedConsumer::new(self.log.clone(), config, coordinator))
    }
}
