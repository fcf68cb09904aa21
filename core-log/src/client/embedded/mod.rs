//! The client interface in-process, straight over a [`LogManager`]: no sockets, no copies
//! beyond the page cache.

mod admin;
mod consumer;
mod producer;

pub use admin::EmbeddedAdmin;
pub use consumer::EmbeddedConsumer;
pub use producer::EmbeddedProducer;

use super::Client;
use super::config::{ConsumerConfig, ProducerConfig};
use crate::Result;
use crate::log::LogManager;

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
        EmbeddedProducer::new(self.log.clone(), config)
    }

    fn consumer(&self, config: ConsumerConfig) -> Result<EmbeddedConsumer> {
        Ok(EmbeddedConsumer::new(self.log.clone(), config))
    }
}
