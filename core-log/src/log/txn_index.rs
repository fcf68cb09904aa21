//! The transaction index: one `NNNNNNNNNNNNNNNNNNNN.txnindex` file per segment listing the
//! transactions aborted by a marker in that segment, in Kafka's format (34-byte big-endian
//! entries: version i16 = 0, producer id i64, first offset i64, last offset i64, last stable
//! offset i64). A read_committed fetch answers with the aborted transactions overlapping it.
//!
//! Entries are appended (and fsynced) when an abort marker is written. On open, the entries of
//! markers at or past the producer-state replay point are dropped and rebuilt by the replay, so
//! a crash can neither lose nor duplicate one.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// Bytes per entry.
pub(crate) const ENTRY_LEN: usize = 34;
const VERSION: i16 = 0;

/// A transaction aborted in a partition, as a read_committed fetch reports it (Kafka's
/// `AbortedTransaction` of a FetchResponse).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AbortedTransaction {
    /// The producer whose records from `first_offset` up to its abort marker are aborted.
    pub producer_id: i64,
    /// The transaction's first offset in the partition.
    pub first_offset: i64,
}

/// One entry of a `.txnindex` file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AbortedTxn {
    pub(crate) producer_id: i64,
    pub(crate) first_offset: i64,
    /// Offset of the abort marker.
    pub(crate) last_offset: i64,
    /// The last stable offset once the marker was written.
    pub(crate) last_stable_offset: i64,
}

impl AbortedTxn {
    pub(crate) fn encode(&self) -> [u8; ENTRY_LEN] {
        let mut b = [0u8; ENTRY_LEN];
        b[..2].copy_from_slice(&VERSION.to_be_bytes());
        b[2..10].copy_from_slice(&self.producer_id.to_be_bytes());
        b[10..18].copy_from_slice(&self.first_offset.to_be_bytes());
        b[18..26].copy_from_slice(&self.last_offset.to_be_bytes());
        b[26..34].copy_from_slice(&self.last_stable_offset.to_be_bytes());
        b
    }

    /// Decodes one entry; `None` for a short slice, an unknown version or impossible offsets.
    pub(crate) fn decode(b: &[u8]) -> Option<Self> {
        let i64_at = |at: usize| -> Option<i64> {
            Some(i64::from_be_bytes(b.get(at..at + 8)?.try_into().ok()?))
        };
        let version = i16::from_be_bytes(b.get(..2)?.try_into().ok()?);
        let e = Self {
            producer_id: i64_at(2)?,
            first_offset: i64_at(10)?,
            last_offset: i64_at(18)?,
            last_stable_offset: i64_at(26)?,
        };
        (version == VERSION && e.first_offset >= 0 && e.first_offset <= e.last_offset).then_some(e)
    }

    pub(crate) fn public(&self) -> AbortedTransaction {
        AbortedTransaction {
            producer_id: self.producer_id,
            first_offset: self.first_offset,
        }
    }
}

/// The `.txnindex` path of the segment at `base_offset`.
pub(crate) fn path(dir: &Path, base_offset: i64) -> PathBuf {
    dir.join(format!(
        "{}.txnindex",
        super::segment::file_stem(base_offset)
    ))
}

/// Appends one entry to `path` and fsyncs it.
pub(crate) fn append(path: &Path, entry: &AbortedTxn) -> Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .map_err(|e| Error::io(path, e))?;
    f.write_all(&entry.encode())
        .and_then(|()| f.sync_data())
        .map_err(|e| Error::io(path, e))
}

/// Reads the entries of the segments at `bases` (ascending), keeping those whose marker lies
/// in `[log_start, replay_from)`; files holding others are rewritten without them (a torn
/// trailing entry is dropped the same way).
pub(crate) fn load(
    dir: &Path,
    bases: impl IntoIterator<Item = i64>,
    log_start: i64,
    replay_from: i64,
) -> Result<Vec<AbortedTxn>> {
    let mut out = Vec::new();
    for base in bases {
        let p = path(dir, base);
        let bytes = match std::fs::read(&p) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::io(&p, e)),
        };
        let mut kept = Vec::new();
        let mut all = true;
        for chunk in bytes.chunks(ENTRY_LEN) {
            match AbortedTxn::decode(chunk) {
                Some(e) if e.last_offset < replay_from => kept.push(e),
                _ => all = false,
            }
        }
        if !all {
            let body: Vec<u8> = kept.iter().flat_map(|e| e.encode()).collect();
            std::fs::write(&p, body).map_err(|e| Error::io(&p, e))?;
        }
        out.extend(kept.into_iter().filter(|e| e.last_offset >= log_start));
    }
    out.sort_by_key(|e| e.last_offset);
    Ok(out)
}

/// The aborted transactions a fetch of `[from, to)` must report: those whose marker is at or
/// past `from` and whose first offset is below `to`. `entries` is sorted by marker offset.
pub(crate) fn overlapping(entries: &[AbortedTxn], from: i64, to: i64) -> Vec<AbortedTransaction> {
    let start = entries.partition_point(|e| e.last_offset < from);
    entries[start..]
        .iter()
        .filter(|e| e.first_offset < to)
        .map(AbortedTxn::public)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_roundtrip_in_34_bytes_and_torn_ones_are_dropped_on_load() {
        let dir = tempfile::tempdir().unwrap();
        let a = AbortedTxn {
            producer_id: 7,
            first_offset: 3,
            last_offset: 9,
            last_stable_offset: 10,
        };
        assert_eq!(AbortedTxn::decode(&a.encode()), Some(a));
        let b = AbortedTxn {
            last_offset: 20,
            ..a
        };
        let p = path(dir.path(), 0);
        append(&p, &a).unwrap();
        append(&p, &b).unwrap();
        assert_eq!(std::fs::metadata(&p).unwrap().len(), 68);
        std::fs::OpenOptions::new()
            .append(true)
            .open(&p)
            .unwrap()
            .write_all(&[0, 0, 1])
            .unwrap();
        assert_eq!(load(dir.path(), [0, 5], 0, 100).unwrap(), [a, b]);
        assert_eq!(std::fs::metadata(&p).unwrap().len(), 68);
        // Markers at or past the replay point are dropped (the replay writes them again).
        assert_eq!(load(dir.path(), [0], 0, 15).unwrap(), [a]);
        assert_eq!(std::fs::metadata(&p).unwrap().len(), 34);
        assert_eq!(overlapping(&[a], 9, 10).len(), 1);
        assert!(overlapping(&[a], 10, 20).is_empty());
        assert!(overlapping(&[a], 0, 3).is_empty());
    }

    #[test]
    fn garbage_never_panics() {
        for len in 0..40 {
            let _ = AbortedTxn::decode(&vec![0xff; len]);
        }
    }
}
