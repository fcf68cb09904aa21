//! `sluice log`: dump and verify segment files (kafka-dump-log), reading them directly.
//!
//! Neither command opens the [`LogManager`](sluice_log::log::LogManager): that would take the
//! directory's lock and cut torn tails off, destroying what one wants to look at.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use bytes::Bytes;
use clap::{Args, Subcommand};
use sluice_log::record::{self, BatchHeader, ControlRecord, HEADER_LEN, LOG_OVERHEAD};

use crate::is_broken_pipe;

/// Most bytes one batch may decompress to while dumping or verifying.
const MAX_UNCOMPRESSED: usize = 256 << 20;

/// Inspect segment files without opening the log.
#[derive(Debug, Args)]
pub(crate) struct LogArgs {
    #[command(subcommand)]
    command: LogCommand,
}

#[derive(Debug, Subcommand)]
enum LogCommand {
    /// Print the batches of a .log segment, or the entries of a .index or .timeindex file.
    Dump {
        /// The file; its extension says what it is.
        file: PathBuf,
        /// Print each record's key and value (implies --deep-iteration).
        #[arg(long)]
        print_data: bool,
        /// Print each record, not only the batches.
        #[arg(long)]
        deep_iteration: bool,
    },
    /// Check every batch of every segment under a data directory or one partition directory.
    Verify {
        /// A data directory (its partition directories are checked) or a partition directory.
        dir: PathBuf,
    },
}

pub(crate) fn run(args: LogArgs) -> anyhow::Result<()> {
    let out = BufWriter::new(std::io::stdout().lock());
    let result = match args.command {
        LogCommand::Dump {
            file,
            print_data,
            deep_iteration,
        } => dump(&file, deep_iteration || print_data, print_data, out),
        LogCommand::Verify { dir } => verify(&dir, out),
    };
    match result {
        Err(e)
            if e.downcast_ref::<std::io::Error>()
                .is_some_and(is_broken_pipe) =>
        {
            Ok(())
        }
        r => r,
    }
}

/// The base offset a segment file's name gives, e.g. `00000000000000000042.log` -> 42.
fn base_offset_of(path: &Path) -> Option<i64> {
    path.file_stem()?.to_str()?.parse().ok()
}

/// One step through a `.log` file.
#[derive(Debug)]
enum Step {
    /// A complete batch at `position`; `problem` says why it is not valid, if it is not.
    Batch {
        position: u64,
        header: BatchHeader,
        problem: Option<String>,
    },
    /// Bytes at `position` that are not a complete batch: a torn tail or corruption. Nothing
    /// after them can be trusted, so the walk ends here.
    Bad { position: u64, reason: String },
    /// The end of the file.
    End,
}

/// Walks a `.log` file batch by batch, reading one batch at a time.
#[derive(Debug)]
struct SegmentReader {
    file: File,
    len: u64,
    pos: u64,
    /// The bytes of the last batch returned.
    buf: Vec<u8>,
}

impl SegmentReader {
    fn open(path: &Path) -> anyhow::Result<Self> {
        let file =
            File::open(path).with_context(|| format!("could not open {}", path.display()))?;
        let len = file
            .metadata()
            .with_context(|| format!("could not stat {}", path.display()))?
            .len();
        Ok(Self {
            file,
            len,
            pos: 0,
            buf: Vec::new(),
        })
    }

    fn next(&mut self) -> std::io::Result<Step> {
        let position = self.pos;
        let remaining = self.len - position;
        if remaining == 0 {
            return Ok(Step::End);
        }
        let bad = |reason: String| Ok(Step::Bad { position, reason });
        if remaining < HEADER_LEN as u64 {
            return bad(format!(
                "torn tail: {remaining} bytes, fewer than a batch header ({HEADER_LEN})"
            ));
        }
        let mut head = [0u8; HEADER_LEN];
        self.file.read_exact_at(&mut head, position)?;
        if head[..LOG_OVERHEAD].iter().all(|&b| b == 0) && head[16] == 0 {
            return bad(format!(
                "{remaining} bytes of zeros (preallocated or torn tail)"
            ));
        }
        let header = match BatchHeader::parse(&head) {
            Ok(h) => h,
            Err(e) => return bad(e.to_string()),
        };
        let total = header.total_len() as u64;
        if total > remaining {
            return bad(format!(
                "torn tail: batch at offset {} claims {total} bytes, {remaining} remain",
                header.base_offset
            ));
        }
        self.buf.resize(total as usize, 0);
        self.file.read_exact_at(&mut self.buf, position)?;
        self.pos += total;
        let problem = record::validate(&self.buf).err().map(|e| e.to_string());
        Ok(Step::Batch {
            position,
            header,
            problem,
        })
    }

    fn batch(&self) -> &[u8] {
        &self.buf
    }
}

fn dump(path: &Path, deep: bool, print_data: bool, out: impl Write) -> anyhow::Result<()> {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    match ext {
        "log" => dump_log(path, deep, print_data, out),
        "index" => dump_index(path, out, 8, |e, base| {
            let rel = u32::from_be_bytes([e[0], e[1], e[2], e[3]]);
            let pos = u32::from_be_bytes([e[4], e[5], e[6], e[7]]);
            format!("offset: {} position: {pos}", base + i64::from(rel))
        }),
        "timeindex" => dump_index(path, out, 12, |e, base| {
            let mut ts = [0u8; 8];
            ts.copy_from_slice(&e[..8]);
            let rel = u32::from_be_bytes([e[8], e[9], e[10], e[11]]);
            format!(
                "timestamp: {} offset: {}",
                i64::from_be_bytes(ts),
                base + i64::from(rel)
            )
        }),
        _ => bail!(
            "{}: not a segment file (expected .log, .index or .timeindex)",
            path.display()
        ),
    }
}

fn dump_log(path: &Path, deep: bool, print_data: bool, mut out: impl Write) -> anyhow::Result<()> {
    let mut reader = SegmentReader::open(path)?;
    writeln!(out, "Dumping {}", path.display())?;
    if let Some(base) = base_offset_of(path) {
        writeln!(out, "Log starting offset: {base}")?;
    }
    let mut invalid = 0u64;
    loop {
        let step = reader
            .next()
            .with_context(|| format!("could not read {}", path.display()))?;
        let (position, h, problem) = match step {
            Step::End => break,
            Step::Bad { position, reason } => {
                writeln!(out, "Found bad bytes at position {position}: {reason}")?;
                out.flush()?;
                bail!("{}: bad bytes at byte {position}: {reason}", path.display());
            }
            Step::Batch {
                position,
                header,
                problem,
            } => (position, header, problem),
        };
        let last_sequence = if h.base_sequence < 0 {
            -1
        } else {
            h.base_sequence.wrapping_add(h.last_offset_delta)
        };
        let codec = h
            .compression()
            .map(|c| c.as_str().to_owned())
            .unwrap_or_else(|_| format!("unknown({})", h.attributes & 0x07));
        writeln!(
            out,
            "baseOffset: {} lastOffset: {} count: {} baseSequence: {} lastSequence: {last_sequence} \
             producerId: {} producerEpoch: {} partitionLeaderEpoch: {} isTransactional: {} \
             isControl: {} position: {position} {}: {} size: {} magic: {} compresscodec: {codec} \
             crc: {} isvalid: {}",
            h.base_offset,
            h.last_offset(),
            h.record_count,
            h.base_sequence,
            h.producer_id,
            h.producer_epoch,
            h.partition_leader_epoch,
            h.is_transactional(),
            h.is_control(),
            h.timestamp_type().as_str(),
            h.max_timestamp,
            h.total_len(),
            h.magic,
            h.crc,
            problem.is_none(),
        )?;
        if let Some(p) = &problem {
            invalid += 1;
            writeln!(out, "| invalid batch: {p}")?;
            continue;
        }
        if deep {
            print_records(&mut out, &h, reader.batch(), print_data)?;
        }
    }
    out.flush()?;
    if invalid > 0 {
        bail!("{}: {invalid} invalid batches", path.display());
    }
    Ok(())
}

fn print_records(
    out: &mut impl Write,
    h: &BatchHeader,
    batch: &[u8],
    print_data: bool,
) -> anyhow::Result<()> {
    let records = match record::decode_records(&Bytes::copy_from_slice(batch), MAX_UNCOMPRESSED) {
        Ok(r) => r,
        Err(e) => {
            writeln!(out, "| could not decode records: {e}")?;
            return Ok(());
        }
    };
    let ts_type = h.timestamp_type().as_str();
    for r in records {
        let r = match r {
            Ok(r) => r,
            Err(e) => {
                writeln!(out, "| could not decode record: {e}")?;
                break;
            }
        };
        let size = |b: &Option<Bytes>| b.as_ref().map_or(-1, |b| b.len() as i64);
        let sequence = if h.base_sequence < 0 {
            -1
        } else {
            i64::from(h.base_sequence) + (r.offset - h.base_offset)
        };
        let keys: Vec<&str> = r.headers.iter().map(|x| x.key.as_str()).collect();
        write!(
            out,
            "| offset: {} {ts_type}: {} keySize: {} valueSize: {} sequence: {sequence} headerKeys: [{}]",
            r.offset,
            r.timestamp,
            size(&r.key),
            size(&r.value),
            keys.join(","),
        )?;
        if h.is_control() {
            let marker = r.key.as_deref().and_then(ControlRecord::parse);
            match marker {
                Some(ControlRecord::Commit) => write!(out, " endTxnMarker: COMMIT")?,
                Some(ControlRecord::Abort) => write!(out, " endTxnMarker: ABORT")?,
                None => write!(out, " endTxnMarker: unknown")?,
            }
        } else if print_data {
            fn text(b: &Option<Bytes>) -> std::borrow::Cow<'_, str> {
                b.as_deref()
                    .map_or_else(|| "null".into(), String::from_utf8_lossy)
            }
            write!(out, " key: {} payload: {}", text(&r.key), text(&r.value))?;
        }
        writeln!(out)?;
    }
    Ok(())
}

fn dump_index(
    path: &Path,
    mut out: impl Write,
    entry: usize,
    show: impl Fn(&[u8], i64) -> String,
) -> anyhow::Result<()> {
    let file = File::open(path).with_context(|| format!("could not open {}", path.display()))?;
    let base = base_offset_of(path).unwrap_or(0);
    writeln!(out, "Dumping {}", path.display())?;
    let mut reader = BufReader::with_capacity(64 << 10, file);
    let mut e = vec![0u8; entry];
    let mut position = 0u64;
    loop {
        let mut filled = 0;
        while filled < entry {
            let n = reader
                .read(&mut e[filled..])
                .with_context(|| format!("could not read {}", path.display()))?;
            if n == 0 {
                break;
            }
            filled += n;
        }
        if filled == 0 {
            break;
        }
        if filled < entry {
            out.flush()?;
            bail!(
                "{}: torn entry at byte {position}: {filled} bytes, entries are {entry}",
                path.display()
            );
        }
        writeln!(out, "{}", show(&e, base))?;
        position += entry as u64;
    }
    out.flush()?;
    Ok(())
}

/// The partition directories to verify: `dir` itself if it holds segments, else its
/// subdirectories that do.
fn partition_dirs(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    if !segments_of(dir)?.is_empty() {
        return Ok(vec![dir.to_path_buf()]);
    }
    let mut dirs = Vec::new();
    for entry in
        std::fs::read_dir(dir).with_context(|| format!("could not read {}", dir.display()))?
    {
        let entry = entry.with_context(|| format!("could not read {}", dir.display()))?;
        let path = entry.path();
        if path.is_dir() && !segments_of(&path)?.is_empty() {
            dirs.push(path);
        }
    }
    dirs.sort();
    if dirs.is_empty() {
        bail!(
            "no segment files (*.log) in {} or its subdirectories",
            dir.display()
        );
    }
    Ok(dirs)
}

/// The `.log` files of a directory with their base offsets, in offset order.
fn segments_of(dir: &Path) -> anyhow::Result<Vec<(i64, PathBuf)>> {
    let mut segs = Vec::new();
    for entry in
        std::fs::read_dir(dir).with_context(|| format!("could not read {}", dir.display()))?
    {
        let path = entry
            .with_context(|| format!("could not read {}", dir.display()))?
            .path();
        if path.extension().is_some_and(|e| e == "log")
            && path.is_file()
            && let Some(base) = base_offset_of(&path)
        {
            segs.push((base, path));
        }
    }
    segs.sort();
    Ok(segs)
}

/// What one segment holds, if it is sound.
#[derive(Debug, Default, PartialEq, Eq)]
struct SegmentSummary {
    batches: u64,
    first: Option<i64>,
    next_offset: Option<i64>,
}

/// Checks every batch of one `.log` file: framing, CRC, records, and offsets increasing from
/// `min_offset`. Returns the problem with its byte position, if any.
fn verify_segment(path: &Path, min_offset: i64) -> anyhow::Result<Result<SegmentSummary, String>> {
    let mut reader = SegmentReader::open(path)?;
    let mut s = SegmentSummary::default();
    let mut expect = min_offset;
    loop {
        let step = reader
            .next()
            .with_context(|| format!("could not read {}", path.display()))?;
        let (position, h, problem) = match step {
            Step::End => return Ok(Ok(s)),
            Step::Bad { position, reason } => {
                return Ok(Err(format!("at byte {position}: {reason}")));
            }
            Step::Batch {
                position,
                header,
                problem,
            } => (position, header, problem),
        };
        let at = format!(
            "in the batch at byte {position} (offsets {}..{})",
            h.base_offset,
            h.last_offset()
        );
        if let Some(p) = problem {
            return Ok(Err(format!("{at}: {p}")));
        }
        if h.base_offset < expect {
            return Ok(Err(format!(
                "{at}: base offset {} is below {expect}: offsets must increase",
                h.base_offset
            )));
        }
        let records =
            record::decode_records(&Bytes::copy_from_slice(reader.batch()), MAX_UNCOMPRESSED);
        let mut count = 0i64;
        let mut prev = h.base_offset - 1;
        for r in records.map_err(|e| e.to_string()).into_iter().flatten() {
            match r {
                Ok(r) if r.offset > prev && r.offset <= h.last_offset() => {
                    prev = r.offset;
                    count += 1;
                }
                Ok(r) => {
                    return Ok(Err(format!(
                        "{at}: record offset {} is out of order",
                        r.offset
                    )));
                }
                Err(e) => return Ok(Err(format!("{at}: {e}"))),
            }
        }
        if count != i64::from(h.record_count) {
            return Ok(Err(format!(
                "{at}: the header says {} records, the batch holds {count}",
                h.record_count
            )));
        }
        s.batches += 1;
        s.first.get_or_insert(h.base_offset);
        s.next_offset = Some(h.next_offset());
        expect = h.next_offset();
    }
}

fn verify(dir: &Path, mut out: impl Write) -> anyhow::Result<()> {
    let mut checked = 0u64;
    let mut bad = 0u64;
    for pdir in partition_dirs(dir)? {
        // Each segment's offsets start at its base offset and above the previous segment's.
        let mut floor = i64::MIN;
        for (base, path) in segments_of(&pdir)? {
            checked += 1;
            let line = if base < floor {
                bad += 1;
                format!(
                    "base offset {base} overlaps the previous segment, which ends at {}",
                    floor - 1
                )
            } else {
                match verify_segment(&path, base)? {
                    Ok(s) => {
                        floor = s.next_offset.unwrap_or(base);
                        match (s.first, s.next_offset) {
                            (Some(a), Some(b)) => {
                                format!("ok ({} batches, offsets {a}..{})", s.batches, b - 1)
                            }
                            _ => "ok (empty)".to_owned(),
                        }
                    }
                    Err(problem) => {
                        bad += 1;
                        format!("corrupt {problem}")
                    }
                }
            };
            writeln!(out, "{}: {line}", path.display())?;
        }
    }
    out.flush()?;
    if bad > 0 {
        bail!("{bad} of {checked} segments have problems");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use sluice_log::record::testing;

    use super::*;

    fn segment(dir: &Path, batches: &[Vec<u8>]) -> PathBuf {
        let path = dir.join("00000000000000000000.log");
        let mut bytes = Vec::new();
        let mut next = 0;
        for b in batches {
            let mut b = b.clone();
            record::set_base_offset(&mut b, next);
            next += BatchHeader::parse(&b).unwrap().next_offset();
            bytes.extend_from_slice(&b);
        }
        std::fs::write(&path, bytes).unwrap();
        path
    }

    fn temp_dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("sluice-cli-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn verify_reports_the_byte_of_a_flipped_byte_and_a_torn_tail() {
        let d = temp_dir("verify");
        let batches = [testing::batch(["a", "b"], 1), testing::batch(["c"], 3)];
        let path = segment(&d, &batches);
        let good = verify_segment(&path, 0).unwrap().unwrap();
        assert_eq!((good.batches, good.next_offset), (2, Some(3)));
        let mut bytes = std::fs::read(&path).unwrap();
        let second = batches[0].len();
        bytes[second + HEADER_LEN] ^= 0xff;
        std::fs::write(&path, &bytes[..bytes.len()]).unwrap();
        let err = verify_segment(&path, 0).unwrap().unwrap_err();
        assert!(
            err.starts_with(&format!("in the batch at byte {second} (offsets 2..2): "))
                && err.contains("CRC"),
            "{err}"
        );
        bytes[second + HEADER_LEN] ^= 0xff;
        std::fs::write(&path, &bytes[..bytes.len() - 3]).unwrap();
        let err = verify_segment(&path, 0).unwrap().unwrap_err();
        assert!(
            err.starts_with(&format!("at byte {second}: torn tail")),
            "{err}"
        );
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn dump_prints_batches_and_records() {
        let d = temp_dir("dump");
        let path = segment(&d, &[testing::keyed([("k", Some("v")), ("t", None)], 5)]);
        let mut out = Vec::new();
        dump(&path, true, true, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains("baseOffset: 0 lastOffset: 1 count: 2"),
            "{text}"
        );
        assert!(text.contains("isvalid: true"), "{text}");
        assert!(
            text.contains("| offset: 1 CreateTime: 6 keySize: 1 valueSize: -1"),
            "{text}"
        );
        assert!(text.contains("key: k payload: v"), "{text}");
        let _ = std::fs::remove_dir_all(&d);
    }
}
