//! A bounded pool of open segment files: handles are opened on first use and closed again,
//! least recently used first (clock algorithm), once more than `capacity` are open. This keeps
//! file descriptors bounded with tens of thousands of partitions.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};

use parking_lot::Mutex;

/// One lazily opened file.
#[derive(Debug, Default)]
pub(crate) struct FileSlot {
    handle: Mutex<Option<Arc<File>>>,
    referenced: AtomicBool,
}

impl FileSlot {
    fn close(&self) -> bool {
        self.handle.lock().take().is_some()
    }
}

/// The pool's bookkeeping: slots with an open handle, in clock order.
#[derive(Debug)]
pub(crate) struct FileCache {
    capacity: usize,
    open: Mutex<VecDeque<Weak<FileSlot>>>,
}

impl FileCache {
    pub(crate) fn new(capacity: usize) -> Arc<Self> {
        Arc::new(Self {
            capacity: capacity.max(4),
            open: Mutex::new(VecDeque::new()),
        })
    }

    /// The open handle of `slot`, opening `path` (read-write, created if missing) on a miss.
    pub(crate) fn get(&self, slot: &Arc<FileSlot>, path: &Path) -> std::io::Result<Arc<File>> {
        {
            let h = slot.handle.lock();
            if let Some(f) = h.as_ref() {
                slot.referenced.store(true, Ordering::Relaxed);
                return Ok(Arc::clone(f));
            }
        }
        let file = Arc::new(
            OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(path)?,
        );
        {
            let mut h = slot.handle.lock();
            if let Some(f) = h.as_ref() {
                return Ok(Arc::clone(f));
            }
            *h = Some(Arc::clone(&file));
        }
        slot.referenced.store(true, Ordering::Relaxed);
        let mut open = self.open.lock();
        open.push_back(Arc::downgrade(slot));
        // Evict with the clock algorithm: a referenced slot gets a second chance.
        let mut turns = open.len() * 2;
        while open.len() > self.capacity && turns > 0 {
            turns -= 1;
            let Some(victim) = open.pop_front() else {
                break;
            };
            let Some(v) = victim.upgrade() else { continue };
            if v.referenced.swap(false, Ordering::Relaxed) {
                open.push_back(victim);
            } else {
                v.close();
            }
        }
        Ok(file)
    }

    /// Handles currently open (approximately: dropped slots are counted until swept).
    pub(crate) fn open_count(&self) -> usize {
        self.open.lock().len()
    }

    /// Closes the handle of `slot` if open (before renaming or deleting its file).
    pub(crate) fn close(&self, slot: &FileSlot) {
        slot.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_handles_stay_within_capacity() {
        let dir = tempfile::tempdir().unwrap();
        let cache = FileCache::new(8);
        let slots: Vec<_> = (0..50).map(|_| Arc::new(FileSlot::default())).collect();
        for round in 0..3 {
            for (i, s) in slots.iter().enumerate() {
                let f = cache.get(s, &dir.path().join(format!("{i}"))).unwrap();
                drop(f);
                let open = slots.iter().filter(|s| s.handle.lock().is_some()).count();
                assert!(open <= 8, "round {round}: {open} open");
            }
        }
        assert!(cache.open_count() <= 8);
    }
}
