//! `sluice broker`: Kafka's wire protocol over Sluice's log, so unmodified Kafka clients
//! (librdkafka and kcat, kafka-python, the Java client) produce, fetch, join groups and run
//! transactions against it.
//!
//! ```text
//! server (accept, one task pair per connection: reader decodes frames, writer answers in order)
//!    |  codec: frames <-> kafka-protocol's typed requests and responses
//! handlers::<api>   typed request -> typed response, over
//!    |
//! sluice_log: LogManager, GroupCoordinator, TransactionCoordinator (the same ones the embedded
//!             client uses, so in-process and remote clients share groups and transactions)
//! ```
//!
//! Single node: this broker leads every partition, is every group's and transaction's
//! coordinator, and is the controller. Every connection carries a [`Principal`]; PLAINTEXT
//! connections are `User:ANONYMOUS`, which is where SASL and ACLs will slot in.

pub mod codec;
pub mod config;
mod connection;
pub mod error;
pub mod handlers;
mod server;
pub mod state;

pub use config::{BrokerConfig, Listener};
pub use error::{BrokerError, Result};
pub use server::Broker;

/// Who a connection is authenticated as, in Kafka's `Type:name` form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// `User` for every principal today.
    pub principal_type: String,
    /// The name (`ANONYMOUS` without authentication).
    pub name: String,
}

impl Principal {
    /// `User:ANONYMOUS`, the principal of an unauthenticated connection.
    pub fn anonymous() -> Self {
        Self {
            principal_type: "User".into(),
            name: "ANONYMOUS".into(),
        }
    }
}

impl std::fmt::Display for Principal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.principal_type, self.name)
    }
}
