//! Producer ids for idempotent (and, later, transactional) producers.
//!
//! ```text
//! LogManager::init_producer_id -> ProducerIdManager (blocks of ids, `producer-id-block` file)
//!                                     |  (pid, epoch 0)
//! producer stamps batches (pid, epoch, sequence) -> Partition::append checks them against the
//! partition's producer state (log::producer_state) and drops retried duplicates
//! ```
//!
//! **Transactional ids (not yet):** Kafka's transaction coordinator maps a `transactional.id`
//! to a stable producer id kept in `__transaction_state`, and every `InitProducerId` for that id
//! returns the same producer id with the epoch bumped, which fences older producer instances
//! (their batches then fail with [`crate::Error::InvalidProducerEpoch`]). The hook for it is
//! [`ProducerIdManager::next_id`]: a coordinator asks it for the id the first time it sees a
//! transactional id, records the mapping, and bumps the epoch itself afterwards (when the epoch
//! would overflow `i16::MAX`, it takes a fresh id with epoch 0, as Kafka does).

mod producer_id;

pub use producer_id::{PRODUCER_ID_BLOCK_FILE, PRODUCER_ID_BLOCK_SIZE, ProducerIdManager};
