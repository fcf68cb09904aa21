//! The storage engine: [`LogManager`] owns topics of [`Partition`]s of segments.

mod append_signal;
mod checkpoint;
mod cleaner;
mod files;
mod flusher;
mod loader;
mod manager;
mod page_cache;
mod partition;
mod producer_state;
mod readahead;
mod segment;
mod topic_id;
mod txn_index;
mod validator;

pub use append_signal::AppendSignal;
pub use cleaner::{CleanerStats, DEFAULT_DEDUPE_BUFFER_SIZE};
pub use manager::{LogManager, LogManagerConfig, PartitionDescription, TopicDescription};
pub use page_cache::{AUTO_WINDOW_BYTES, PageCacheWindow, host_reclaims_free_memory};
pub use partition::{AppendInfo, AppendOrigin, DROP_STEP, FetchedData, Partition};
pub use producer_state::{DEFAULT_PRODUCER_ID_EXPIRATION_MS, ProducerStateInfo};
pub use topic_id::TopicId;
pub use txn_index::AbortedTransaction;
pub use validator::{MAX_UNCOMPRESSED_BATCH, validate_batch};

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
    pub(crate) data_arrived: Arc<tokio::sync::Notify>,
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

/// Runs `f` over `items` on up to `threads` scoped threads (each takes the next item, so slow
/// items do not hold up a whole share), returning the results in the order of `items`. Used for
/// I/O-bound work across partitions: opening them, fsyncing them.
pub(crate) fn parallel_map<T: Sync, R: Send>(
    items: &[T],
    threads: usize,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    if items.len() <= 1 || threads <= 1 {
        return items.iter().map(f).collect();
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results = parking_lot::Mutex::new(Vec::with_capacity(items.len()));
    std::thread::scope(|s| {
        for _ in 0..threads.min(items.len()) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(i) else { return };
                    let r = f(item);
                    results.lock().push((i, r));
                }
            });
        }
    });
    let mut results = results.into_inner();
    results.sort_unstable_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn parallel_map_keeps_the_order_of_its_items() {
        let items: Vec<u64> = (0..200).collect();
        for threads in [1, 3, 16] {
            let out = super::parallel_map(&items, threads, |i| i * 2);
            assert_eq!(out, items.iter().map(|i| i * 2).collect::<Vec<_>>());
        }
    }
}
