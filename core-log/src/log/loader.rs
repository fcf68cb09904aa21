//! Opening a partition directory: find the segments, trust those below the recovery point,
//! scan the rest (CRC of every batch from the recovery point on; only the headers of the batches
//! below it, to rebuild the index), cut a torn tail, rebuild indexes, and take the partition
//! offline if a batch with valid data after it is corrupt.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use super::LogContext;
use super::partition::{Offline, Partition};
use super::producer_state::ProducerStateManager;
use super::segment::Segment;
use super::txn_index::{self, AbortedTxn};
use crate::config::TopicConfig;
use crate::record::{self, BatchHeader, ControlRecord, HEADER_LEN};
use crate::{Error, Result, TopicPartition};

/// Where the magic byte sits in a batch header.
const MAGIC_AT: usize = 16;

/// Parses a segment file name `NNNNNNNNNNNNNNNNNNNN.log` into its base offset.
fn base_offset_of(name: &str, ext: &str) -> Option<i64> {
    let stem = name.strip_suffix(ext)?;
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok()
}

/// Opens (recovering if needed) the partition in `dir`.
pub(crate) fn open_partition(
    dir: &Path,
    tp: TopicPartition,
    ctx: &Arc<LogContext>,
    config: Arc<TopicConfig>,
    recovery_point: Option<i64>,
    log_start: Option<i64>,
) -> Result<Partition> {
    complete_swaps(dir)?;
    let mut bases = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.ends_with(".cleaned") || name.ends_with(".deleted") {
            let _ = std::fs::remove_file(entry.path());
        } else if let Some(b) = base_offset_of(name, ".log") {
            bases.push(b);
        }
    }
    bases.sort_unstable();
    let now = ctx.clock.now_ms();
    let rp = recovery_point.unwrap_or(0);
    let mut segments: Vec<Arc<Segment>> = Vec::with_capacity(bases.len());
    let mut offline = None;
    let interval = config.index_interval_bytes;
    let mut i = 0;
    while i < bases.len() {
        let seg = Arc::new(Segment::new(dir, bases[i], now));
        let len = std::fs::metadata(seg.log_path())
            .map_err(|e| Error::io(seg.log_path(), e))?
            .len();
        let next_base = bases.get(i + 1).copied();
        let trusted = next_base.is_some_and(|nb| nb <= rp);
        if trusted {
            // Below the recovery point: fsynced, trust it; the index loads on first use.
            seg.set_extent(len, next_base.unwrap_or(bases[i]));
            segments.push(seg);
            i += 1;
            continue;
        }
        match recover_segment(&seg, ctx, len, interval, rp)? {
            Scan::Clean => {}
            Scan::TornTail { position, reason } => {
                tracing::warn!(%tp, segment = %seg.log_path().display(), position, reason, "truncating torn tail after unclean shutdown");
                seg.truncate_to(&ctx.files, position, seg.next_offset())?;
                // Nothing after a torn write can have been acknowledged durably.
                for later in &bases[i + 1..] {
                    let s = Segment::new(dir, *later, now);
                    tracing::warn!(%tp, segment = %s.log_path().display(), "deleting segment after a torn tail");
                    s.delete_files(&ctx.files);
                }
                bases.truncate(i + 1);
            }
            Scan::Corrupt { position, reason } => {
                tracing::error!(%tp, segment = %seg.log_path().display(), position, reason, "corrupt batch: partition offline");
                offline = Some(Offline {
                    path: seg.log_path().to_path_buf(),
                    position,
                    reason,
                });
            }
        }
        seg.rewrite_index()?;
        segments.push(seg);
        if offline.is_some() {
            break;
        }
        i += 1;
    }
    // The last trusted segment may be the last one: find its end from the index.
    if let Some(last) = segments.last()
        && offline.is_none()
        && last.next_offset() == last.base_offset()
        && last.size() > 0
    {
        last.ensure_index(&ctx.files)?;
        let file = last.file(&ctx.files)?;
        let mut pos = 0;
        let mut next = last.base_offset();
        // Walk forward from the last index entry (at most index.interval.bytes of headers).
        if let Some(found) = last
            .find_offset(&ctx.files, i64::MAX - 1, last.size())
            .ok()
            .flatten()
        {
            pos = found.position;
            next = found.header.next_offset();
        }
        while let Some(h) = last.header_at(&file, pos, last.size())? {
            next = h.next_offset();
            pos += h.total_len() as u64;
        }
        last.set_extent(last.size(), next);
    }
    let first_base = segments
        .first()
        .map_or(log_start.unwrap_or(0).max(0), |s| s.base_offset());
    if segments.is_empty() {
        let seg = Segment::create(dir, first_base, now, &ctx.files)?;
        segments.push(seg);
    }
    let log_start = log_start.unwrap_or(first_base).max(first_base);
    let (producers, aborted) = if offline.is_none() {
        load_producer_state(dir, &tp, ctx, &segments, log_start, rp)?
    } else {
        (
            ProducerStateManager::new(tp.clone(), dir, ctx.producer_id_expiration_ms, now),
            Vec::new(),
        )
    };
    let p = Partition::from_parts(
        tp,
        dir.to_path_buf(),
        Arc::clone(ctx),
        config,
        segments,
        log_start,
        recovery_point.unwrap_or(0),
        offline,
        producers,
        aborted,
    );
    Ok(p)
}

/// Rebuilds the producer state: the newest valid snapshot at or below both the log end and the
/// recovery point, then the headers of every batch after it (those of batches wholly below the
/// log start are skipped: their producers are forgotten, as the snapshot's are). Transaction
/// markers replayed close their producer's open transaction; aborts are written again to the
/// `.txnindex` files, whose entries from the replay point on were dropped first. Returns the
/// state and the aborted transactions.
fn load_producer_state(
    dir: &Path,
    tp: &TopicPartition,
    ctx: &LogContext,
    segments: &[Arc<Segment>],
    log_start: i64,
    recovery_point: i64,
) -> Result<(ProducerStateManager, Vec<AbortedTxn>)> {
    let now = ctx.clock.now_ms();
    let log_end = segments.last().map_or(log_start, |s| s.next_offset());
    let (mut state, from) = ProducerStateManager::load(
        tp.clone(),
        dir,
        log_start,
        log_end.min(recovery_point),
        ctx.producer_id_expiration_ms,
        now,
    )?;
    let mut aborted = txn_index::load(
        dir,
        segments.iter().map(|s| s.base_offset()),
        log_start,
        from,
    )?;
    let mut replayed = 0u64;
    for seg in segments.iter().filter(|s| s.next_offset() > from) {
        let limit = seg.size();
        let start = if seg.base_offset() >= from {
            Some(0)
        } else {
            seg.find_offset(&ctx.files, from, limit)
                .map(|f| f.map(|f| f.position))
                .unwrap_or_else(|e| {
                    tracing::warn!(%tp, error = %crate::report(&e), "cannot find where to replay producer state from");
                    None
                })
        };
        let Some(mut pos) = start else { continue };
        let file = seg.file(&ctx.files)?;
        loop {
            match seg.header_at(&file, pos, limit) {
                Ok(Some(h)) => {
                    if h.base_offset >= from && h.is_control() && h.producer_id >= 0 {
                        let (marker, coordinator_epoch) = control_marker(seg, ctx, pos, &h)?;
                        let first = state.apply_marker(
                            h.producer_id,
                            h.producer_epoch,
                            h.base_offset,
                            coordinator_epoch,
                            now,
                        );
                        if let (Some(ControlRecord::Abort), Some(first_offset)) = (marker, first)
                            && h.base_offset >= log_start
                        {
                            let entry = AbortedTxn {
                                producer_id: h.producer_id,
                                first_offset,
                                last_offset: h.base_offset,
                                last_stable_offset: state
                                    .first_unstable_offset()
                                    .unwrap_or(h.next_offset())
                                    .min(h.next_offset()),
                            };
                            txn_index::append(&txn_index::path(dir, seg.base_offset()), &entry)?;
                            aborted.push(entry);
                        }
                        replayed += 1;
                    } else if h.base_offset >= from && h.last_offset() >= log_start {
                        state.update(&h, now);
                        replayed += 1;
                    }
                    pos += h.total_len() as u64;
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(%tp, segment = %seg.log_path().display(), error = %crate::report(&e), "stopped replaying producer state in a segment");
                    break;
                }
            }
        }
    }
    tracing::debug!(%tp, snapshot = from, batches = replayed, "producer state loaded");
    Ok((state, aborted))
}

/// The marker a control batch holds (`None` if its record is not a known marker).
/// The marker of a control batch and its coordinator epoch (-1 if the value has none).
fn control_marker(
    seg: &Segment,
    ctx: &LogContext,
    pos: u64,
    h: &BatchHeader,
) -> Result<(Option<ControlRecord>, i32)> {
    let bytes = bytes::Bytes::from(seg.read(&ctx.files, pos, h.total_len())?);
    let Some(first) = record::decode_records(&bytes, 1 << 20)?.next() else {
        return Ok((None, -1));
    };
    let first = first?;
    let coordinator_epoch = first
        .value
        .as_deref()
        .and_then(|v| v.get(2..6))
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map_or(-1, i32::from_be_bytes);
    Ok((
        first.key.as_deref().and_then(ControlRecord::parse),
        coordinator_epoch,
    ))
}

enum Scan {
    Clean,
    TornTail { position: u64, reason: String },
    Corrupt { position: u64, reason: String },
}

/// Scans a segment, rebuilding its index and checking every batch from the first one reaching
/// `recovery_point` on (those wholly below it were fsynced: only their headers are read).
fn recover_segment(
    seg: &Segment,
    ctx: &LogContext,
    len: u64,
    interval: u64,
    recovery_point: i64,
) -> Result<Scan> {
    seg.reset_index();
    seg.mark_index_loaded();
    seg.set_extent(0, seg.base_offset());
    let file = seg.file(&ctx.files)?;
    let mut reader = std::io::BufReader::with_capacity(1 << 20, &*file);
    let mut pos = 0u64;
    let mut next = seg.base_offset();
    let mut header = [0u8; HEADER_LEN];
    let mut buf = Vec::new();
    // The trusted prefix: headers only, skipping the records (no CRC). Any header that does
    // not fit ends it, and the checked scan below takes over from that batch.
    let io = |e| Error::io(seg.log_path(), e);
    while pos + HEADER_LEN as u64 <= len {
        reader.read_exact(&mut header).map_err(io)?;
        let fits = BatchHeader::parse(&header).ok().filter(|h| {
            h.last_offset() < recovery_point
                && h.base_offset >= next
                && pos + h.total_len() as u64 <= len
        });
        let Some(h) = fits else {
            reader.seek_relative(-(HEADER_LEN as i64)).map_err(io)?;
            break;
        };
        let total = h.total_len() as u64;
        reader
            .seek_relative((total - HEADER_LEN as u64) as i64)
            .map_err(io)?;
        seg.note_batch(&h, pos, total, interval);
        pos += total;
        next = h.next_offset();
        seg.set_extent(pos, next);
    }
    loop {
        if pos == len {
            return Ok(Scan::Clean);
        }
        // A bad batch is a torn tail (cut it) unless a whole, valid batch follows it: then it
        // is corruption with data after it, and the partition goes offline rather than lose it.
        let bad = |reason: String| -> Result<Scan> {
            Ok(if valid_batch_after(seg, &file, pos, len, next)? {
                Scan::Corrupt {
                    position: pos,
                    reason,
                }
            } else {
                Scan::TornTail {
                    position: pos,
                    reason,
                }
            })
        };
        if len - pos < HEADER_LEN as u64 {
            return bad(format!(
                "{} trailing bytes, less than a batch header",
                len - pos
            ));
        }
        reader
            .read_exact(&mut header)
            .map_err(|e| Error::io(seg.log_path(), e))?;
        let h = match BatchHeader::parse(&header) {
            Ok(h) => h,
            Err(e) => return bad(e.to_string()),
        };
        let total = h.total_len() as u64;
        if pos + total > len {
            return bad(format!(
                "batch of {total} bytes runs past the end of the file"
            ));
        }
        buf.clear();
        buf.extend_from_slice(&header);
        buf.resize(total as usize, 0);
        reader
            .read_exact(&mut buf[HEADER_LEN..])
            .map_err(|e| Error::io(seg.log_path(), e))?;
        if let Err(e) = record::validate(&buf) {
            return bad(e.to_string());
        }
        if h.base_offset < next {
            return Ok(Scan::Corrupt {
                position: pos,
                reason: format!("batch base offset {} goes back from {next}", h.base_offset),
            });
        }
        seg.note_batch(&h, pos, total, interval);
        pos += total;
        next = h.next_offset();
        seg.set_extent(pos, next);
    }
}

/// Whether a whole batch with a valid CRC and offsets from `next` on starts anywhere after the
/// bad bytes at `from` (byte by byte: the bad batch's length field cannot be trusted). Runs only
/// after a bad batch was found; reads the rest of the segment once.
fn valid_batch_after(seg: &Segment, file: &File, from: u64, len: u64, next: i64) -> Result<bool> {
    const CHUNK: u64 = 1 << 20;
    let io = |e| Error::io(seg.log_path(), e);
    let mut window = Vec::new();
    let mut start = from + 1;
    while start + HEADER_LEN as u64 <= len {
        // Candidates in [start, start + CHUNK); the window holds their whole headers.
        let end = (start + CHUNK + HEADER_LEN as u64).min(len);
        window.resize((end - start) as usize, 0);
        file.read_exact_at(&mut window, start).map_err(io)?;
        for i in 0..=(window.len() - HEADER_LEN).min(CHUNK as usize - 1) {
            if window[i + MAGIC_AT] != record::MAGIC as u8 {
                continue;
            }
            let Ok(h) = BatchHeader::parse(&window[i..]) else {
                continue;
            };
            let at = start + i as u64;
            if h.base_offset < next || at + h.total_len() as u64 > len {
                continue;
            }
            let mut batch = vec![0u8; h.total_len()];
            file.read_exact_at(&mut batch, at).map_err(io)?;
            if record::validate(&batch).is_ok() {
                return Ok(true);
            }
        }
        start += CHUNK;
    }
    Ok(false)
}

/// Finishes a compaction interrupted by a crash.
///
/// The cleaner writes `<base>.log.cleaned` (and `.index.cleaned`, `.timeindex.cleaned`),
/// fsyncs it, renames it to `<base>.log.swap` (index files first), swaps it in memory, deletes
/// the old segments' files in ascending order (the first one, whose names the new segment takes,
/// last), and renames the `.swap` files to their final names (the log file last). A `.log.swap`
/// found here is therefore complete, and replaces every old segment whose base offset lies in
/// `[base, end)`, `end` being the offset after its last batch. Old segments of the same group
/// starting at or past `end` held only records the cleaner removed; they stay, which is safe:
/// such a suffix of the group holds, for every key it mentions, that key's later records too
/// (removed tombstones come back with the values they deleted), and the next pass removes them.
/// `.cleaned` files are deleted by the caller.
pub(crate) fn complete_swaps(dir: &Path) -> Result<()> {
    let mut swaps = Vec::new();
    let mut logs = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(b) = base_offset_of(&name, ".log.swap") {
            swaps.push(b);
        } else if let Some(b) = base_offset_of(&name, ".log") {
            logs.push(b);
        }
    }
    logs.sort_unstable();
    swaps.sort_unstable();
    let completed = !swaps.is_empty();
    for base in swaps {
        let stem = super::segment::file_stem(base);
        let swap = dir.join(format!("{stem}.log.swap"));
        let end = next_offset_of_file(&swap)?.unwrap_or(base);
        for &old in logs.iter().filter(|&&b| b >= base && b < end.max(base + 1)) {
            let old_stem = super::segment::file_stem(old);
            for ext in ["log", "index", "timeindex", "txnindex"] {
                remove_if_present(&dir.join(format!("{old_stem}.{ext}")))?;
            }
        }
        for ext in ["index", "timeindex"] {
            let from = dir.join(format!("{stem}.{ext}.swap"));
            let to = dir.join(format!("{stem}.{ext}"));
            match std::fs::rename(&from, &to) {
                Ok(()) => {}
                // The index is rebuilt by a scan.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(&from, e)),
            }
        }
        let target = dir.join(format!("{stem}.log"));
        std::fs::rename(&swap, &target).map_err(|e| Error::io(&target, e))?;
        tracing::info!(segment = %target.display(), "completed an interrupted compaction swap");
    }
    // Index files of a swap whose log file was already renamed: stale, rebuilt if needed.
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".index.swap") || name.ends_with(".timeindex.swap") {
            remove_if_present(&entry.path())?;
        }
    }
    if completed {
        super::checkpoint::sync_dir(dir)?;
    }
    Ok(())
}

fn remove_if_present(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(path, e)),
    }
}

/// The offset after the last complete batch of a segment file, walking batch headers.
fn next_offset_of_file(path: &Path) -> Result<Option<i64>> {
    use std::os::unix::fs::FileExt;
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    let mut pos = 0u64;
    let mut next = None;
    let mut header = [0u8; HEADER_LEN];
    while pos + HEADER_LEN as u64 <= len {
        file.read_exact_at(&mut header, pos)
            .map_err(|e| Error::io(path, e))?;
        let Ok(h) = BatchHeader::parse(&header) else {
            break;
        };
        if pos + h.total_len() as u64 > len {
            break;
        }
        next = Some(h.next_offset());
        pos += h.total_len() as u64;
    }
    Ok(next)
}
