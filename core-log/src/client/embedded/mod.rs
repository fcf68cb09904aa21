//! The client interface in-process, straight over a [`LogManager`]: no sockets, no copies
//! beyond the page cache.

mod admin;
mod consumer;
mod producer;

pub use admin::EmbeddedAdmin;
pub use consumer::EmbeddedConsumer;
pub use producer::EmbeddedProducer;

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use super::Client;
use super::config::{ConsumerConfig, ProducerConfig};
use crate::Result;
use crate::log::LogManager;
use crate::txn::TransactionCoordinator;

/// A client of a log in this process. Create one per log and clone it: clones share the
/// transaction coordinator.
#[derive(Debug, Clone)]
pub struct EmbeddedClient {
    log: LogManager,
    txn: Arc<Mutex<Option<Arc<TransactionCoordinator>>>>,
}

impl EmbeddedClient {
    /// A client of `log`.
    pub fn new(log: LogManager) -> Self {
        Self {
            log,
            txn: Arc::new(Mutex::new(None)),
        }
    }

    /// The transaction coordinator of this log, opened (replaying `__transaction_state`) on
    /// first use; it aborts transactions past `transaction.timeout.ms` once a second.
    pub fn transaction_coordinator(&self) -> Result<Arc<TransactionCoordinator>> {
        let mut slot = self.txn.lock();
        if let Some(c) = slot.as_ref() {
            return Ok(Arc::clone(c));
        }
        let c = Arc::new(TransactionCoordinator::open(self.log.clone())?);
        let weak = Arc::downgrade(&c);
        self.log
            .spawn_periodic("sluice-txn-timeouts", Duration::from_secs(1), move |_| {
                if let Some(c) = weak.upgrade()
                    && let Err(e) = c.tick()
                {
                    tracing::warn!(error = %crate::report(&e), "transaction timeout check failed");
                }
            })?;
        *slot = Some(Arc::clone(&c));
        Ok(c)
    }

    /// The log underneath.
    pub fn log(&self) -> &LogManager {
        &self.log
    }
}

impl Client for EmbeddedClient {
    type Admin = EmbeddedAdmin;
    type Producer = EmbeddedProducer;
    type Consumer = EmbeddedConsumer;

    fn admin(&self) -> Result<EmbeddedAdmin> {
        Ok(EmbeddedAdmin::new(self.log.clone()))
    }

    fn producer(&self, config: ProducerConfig) -> Result<EmbeddedProducer> {
        EmbeddedProducer::new(self.log.clone(), config, || self.transaction_coordinator())
    }

    fn consumer(&self, config: ConsumerConfig) -> Result<EmbeddedConsumer> {
        Ok(EmbeddedConsumer::new(self.log.clone(), config))
    }
}
