//! The storage engine: [`LogManager`] owns topics of [`Partition`]s of segments.

mod checkpoint;
mod cleaner;
mod files;
mod flusher;
mod loader;
mod manager;
mod partition;
mod producer_state;
mod segment;
mod txn_index;

pub use cleaner::{CleanerStats, DEFAULT_DEDUPE_BUFFER_SIZE};
pub use manager::{LogManager, LogManagerConfig, TopicDescription};
pub use partition::{AppendInfo, FetchedData, Partition};
pub use producer_state::DEFAULT_PRODUCER_ID_EXPIRATION_MS;
pub use txn_index::AbortedTransaction;

pub(crate) use checkpoint::sync_dir;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::{Error, SharedClock};

/// What every partition of one log directory shares.
#[derive(Debug)]
pub(crate) struct LogContext {
    pub(crate) dir: PathBuf,
    pub(crate) files: Arc<files::FileCache>,
    pub(crate) clock: SharedClock,
    /// `producer.id.expiration.ms`: idle time after which a partition forgets a producer.
    pub(crate) producer_id_expiration_ms: i64,
    /// Set after an I/O failure on a write: the directory refuses further writes, reads go on.
    offline: AtomicBool,
    pub(crate) flusher: flusher::FlusherHandle,
    /// Notified on every append to any partition, for consumers polling many partitions.
    pub(crate) data_arrived: tokio::sync::Notify,
}

impl LogContext {
    pub(crate) fn check_writable(&self) -> crate::Result<()> {
        if self.offline.load(Ordering::Acquire) {
            return Err(Error::LogDirOffline {
                dir: self.dir.clone(),
            });
        }
        Ok(())
    }

    /// Takes the directory offline for writes after `err`, and returns the error to report.
    pub(crate) fn fail_write(&self, err: Error) -> Error {
        if !self.offline.swap(true, Ordering::AcqRel) {
            tracing::error!(dir = %self.dir.display(), error = %crate::report(&err), "log directory offline for writes after an I/O failure");
        }
        err
    }

    pub(crate) fn is_offline(&self) -> bool {
        self.offline.load(Ordering::Acquire)
    }
}
