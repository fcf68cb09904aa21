//! Hands out unique, increasing producer ids from blocks recorded in the data directory.
//!
//! The file `producer-id-block` holds the first id not yet allocated, as text (`0` version line,
//! then the id). Before any id of a new block of [`PRODUCER_ID_BLOCK_SIZE`] is handed out, the
//! block's end is written (temporary file, fsync, rename, fsync of the directory), so after a
//! crash the next process starts past every id handed out before: ids never repeat. A crash
//! wastes the rest of its block, as Kafka's broker-allocated blocks do.

use std::io::Write;
use std::path::{Path, PathBuf};

use parking_lot::Mutex;

use crate::{Error, Result};

/// The file in the data directory holding the first unallocated producer id.
pub const PRODUCER_ID_BLOCK_FILE: &str = "producer-id-block";
/// Ids allocated (and recorded) at a time.
pub const PRODUCER_ID_BLOCK_SIZE: i64 = 1000;

/// The next id to hand out and the end (exclusive) of the block it comes from.
#[derive(Debug)]
struct Block {
    next: i64,
    end: i64,
}

/// Hands out producer ids for one data directory; safe to share between threads.
#[derive(Debug)]
pub struct ProducerIdManager {
    path: PathBuf,
    block: Mutex<Block>,
}

impl ProducerIdManager {
    /// Reads `dir/producer-id-block` (a missing file starts at id 0). No block is allocated
    /// until the first id is asked for.
    pub fn open(dir: &Path) -> Result<Self> {
        let path = dir.join(PRODUCER_ID_BLOCK_FILE);
        let next = match std::fs::read_to_string(&path) {
            Ok(text) => parse(&text).ok_or_else(|| {
                Error::ProducerIdUnavailable(format!("{} is damaged: {text:?}", path.display()))
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => return Err(Error::io(&path, e)),
        };
        Ok(Self {
            path,
            block: Mutex::new(Block { next, end: next }),
        })
    }

    /// A producer id never handed out before from this data directory, larger than every
    /// earlier one. Writes the file (with fsync) when a new block starts.
    pub fn next_id(&self) -> Result<i64> {
        let mut b = self.block.lock();
        if b.next >= b.end {
            let end = b.next.checked_add(PRODUCER_ID_BLOCK_SIZE).ok_or_else(|| {
                Error::ProducerIdUnavailable("every producer id has been used".into())
            })?;
            write_block_end(&self.path, end)?;
            tracing::debug!(first = b.next, end, "producer id block allocated");
            b.end = end;
        }
        let id = b.next;
        b.next += 1;
        Ok(id)
    }
}

fn parse(text: &str) -> Option<i64> {
    let mut lines = text.lines();
    if lines.next()?.trim() != "0" {
        return None;
    }
    let next: i64 = lines.next()?.trim().parse().ok()?;
    (next >= 0).then_some(next)
}

fn write_block_end(path: &Path, end: i64) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
    f.write_all(format!("0\n{end}\n").as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))?;
    if let Some(dir) = path.parent() {
        crate::log::sync_dir(dir)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_increase_and_never_repeat_across_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let m = ProducerIdManager::open(dir.path()).unwrap();
        let first: Vec<i64> = (0..3).map(|_| m.next_id().unwrap()).collect();
        assert_eq!(first, [0, 1, 2]);
        // A "crash": the rest of the block is skipped, never reused.
        drop(m);
        let m = ProducerIdManager::open(dir.path()).unwrap();
        assert_eq!(m.next_id().unwrap(), PRODUCER_ID_BLOCK_SIZE);
        for _ in 0..PRODUCER_ID_BLOCK_SIZE {
            m.next_id().unwrap();
        }
        let text = std::fs::read_to_string(dir.path().join(PRODUCER_ID_BLOCK_FILE)).unwrap();
        assert_eq!(text, format!("0\n{}\n", 3 * PRODUCER_ID_BLOCK_SIZE));
        let m = ProducerIdManager::open(dir.path()).unwrap();
        assert_eq!(m.next_id().unwrap(), 3 * PRODUCER_ID_BLOCK_SIZE);
    }

    #[test]
    fn a_damaged_block_file_refuses_to_hand_out_ids() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(PRODUCER_ID_BLOCK_FILE), "0\nbanana\n").unwrap();
        let err = ProducerIdManager::open(dir.path()).unwrap_err();
        assert!(matches!(err, Error::ProducerIdUnavailable(_)), "{err}");
    }

    #[test]
    fn exhausted_ids_are_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(PRODUCER_ID_BLOCK_FILE),
            format!("0\n{}\n", i64::MAX - 1),
        )
        .unwrap();
        let m = ProducerIdManager::open(dir.path()).unwrap();
        assert!(matches!(m.next_id(), Err(Error::ProducerIdUnavailable(_))));
    }
}
