//! Producer ids for idempotent (and, later, transactional) producers.
//!
//! ```text
//! LogManager::init_producer_id -> ProducerIdManager (blocks of ids, `producer-id-block` file)
//!                                     |  (pid, epoch 0)
//! producer stamps batches (pid, epoch, sequence) -> Partition::append checks them against the
//! partition's producer state (log::producer_state) and drops retried duplicates
//! ```
//!
//! **Transactional ids:** [`TransactionCoordinator`] maps a `transactional.id` to a stable
//! producer id kept in `__transaction_state`; every `init_producer_id` for that id returns the
//! same producer id with the epoch bumped, which fences older producer instances (their batches
//! then fail with [`crate::Error::InvalidProducerEpoch`], their coordinator calls with
//! [`crate::Error::ProducerFenced`]). It asks [`ProducerIdManager::next_id`] (through
//! `LogManager::init_producer_id`) for the id the first time it sees a transactional id.

mod coordinator;
mod producer_id;

pub use coordinator::{
    MAX_TRANSACTION_TIMEOUT_MS, OffsetsMarkerHook, TRANSACTION_STATE_TOPIC, TransactionCoordinator,
    TransactionMetadata, TransactionState, decode_key, decode_value, encode_key, encode_value,
};

pub use producer_id::{PRODUCER_ID_BLOCK_FILE, PRODUCER_ID_BLOCK_SIZE, ProducerIdManager};
