//! Decoding the records of a batch, zero-copy for uncompressed batches.

use bytes::Bytes;

use std::ops::Range;

use super::compression::{decompress, decompress_into};
use super::varint::Reader;
use super::{BatchHeader, HEADER_LEN, validate};
use crate::{Compression, Error, Result, TimestampType};

/// A record header: a string key and a nullable value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Header key.
    pub key: String,
    /// Header value; `None` is Kafka's null.
    pub value: Option<Bytes>,
}

impl Header {
    /// A header with a value.
    pub fn new(key: impl Into<String>, value: impl Into<Bytes>) -> Self {
        Self {
            key: key.into(),
            value: Some(value.into()),
        }
    }
}

/// One record, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Offset in its partition.
    pub offset: i64,
    /// Timestamp in ms since the epoch (the batch's max timestamp for `LogAppendTime`).
    pub timestamp: i64,
    /// Key; `None` is null.
    pub key: Option<Bytes>,
    /// Value; `None` is null (a tombstone on a compacted topic).
    pub value: Option<Bytes>,
    /// Headers in order.
    pub headers: Vec<Header>,
}

/// The key of a control record: what a transaction marker says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlRecord {
    /// The transaction was aborted.
    Abort,
    /// The transaction was committed.
    Commit,
}

impl ControlRecord {
    /// Reads a control record's key (`version i16, type i16`).
    pub fn parse(key: &[u8]) -> Option<Self> {
        let t = i16::from_be_bytes([*key.get(2)?, *key.get(3)?]);
        match t {
            0 => Some(ControlRecord::Abort),
            1 => Some(ControlRecord::Commit),
            _ => None,
        }
    }

    /// The key bytes of this marker (version 0).
    pub fn key(self) -> [u8; 4] {
        let t: i16 = match self {
            ControlRecord::Abort => 0,
            ControlRecord::Commit => 1,
        };
        let mut k = [0u8; 4];
        k[2..].copy_from_slice(&t.to_be_bytes());
        k
    }
}

/// The records of one batch, decoded lazily.
#[derive(Debug)]
pub struct RecordIter {
    header: BatchHeader,
    data: Bytes,
    pos: usize,
    left: i32,
}

impl RecordIter {
    /// The batch header.
    pub fn header(&self) -> &BatchHeader {
        &self.header
    }

    fn fail(&mut self, what: &str) -> Error {
        let index = self.header.record_count - self.left;
        self.left = 0;
        Error::CorruptRecord(format!(
            "record {index} of the batch at offset {}: {what}",
            self.header.base_offset
        ))
    }
}

impl Iterator for RecordIter {
    type Item = Result<Record>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.left <= 0 {
            return None;
        }
        let base = self.pos;
        let mut headers = Vec::new();
        let frame = match read_record(self.data.get(base..).unwrap_or_default(), &mut headers) {
            Ok(frame) => frame,
            Err(e) => return Some(Err(self.fail(e.0))),
        };
        let slice = |r: Range<usize>| self.data.slice(base + r.start..base + r.end);
        let mut hs = Vec::with_capacity(headers.len());
        for (k, v) in headers {
            let Ok(key) = String::from_utf8(slice(k).to_vec()) else {
                return Some(Err(self.fail("a header key is not UTF-8")));
            };
            hs.push(Header {
                key,
                value: v.map(slice),
            });
        }
        let timestamp = match self.header.timestamp_type() {
            TimestampType::LogAppendTime => self.header.max_timestamp,
            TimestampType::CreateTime => self
                .header
                .base_timestamp
                .wrapping_add(frame.timestamp_delta),
        };
        let Some(offset) = self
            .header
            .base_offset
            .checked_add(i64::from(frame.offset_delta))
        else {
            return Some(Err(self.fail("offset delta overflows the offsets")));
        };
        let record = Record {
            offset,
            timestamp,
            key: frame.key.map(slice),
            value: frame.value.map(slice),
            headers: hs,
        };
        self.pos = base + frame.len;
        self.left -= 1;
        Some(Ok(record))
    }
}

/// Where the fields of one record lie, as [`read_record`] found them (byte ranges from the
/// record's first byte).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordFrame {
    /// Bytes the record takes, its length prefix included.
    pub len: usize,
    /// Timestamp minus the batch's base timestamp.
    pub timestamp_delta: i64,
    /// Offset minus the batch's base offset.
    pub offset_delta: i32,
    /// The key's bytes; `None` is null.
    pub key: Option<Range<usize>>,
    /// The value's bytes; `None` is null.
    pub value: Option<Range<usize>>,
}

/// The key and value ranges of one header of a [`RecordFrame`].
pub type HeaderFrame = (Range<usize>, Option<Range<usize>>);

/// What is wrong with the framing of a record ([`read_record`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct MalformedRecord(pub &'static str);

/// Reads the framing of the record at the start of `buf` (a records section, decompressed),
/// checking it as Kafka's `DefaultRecord.readFrom` does: the length prefix, each varint, the
/// key, value and header lengths, a non-null UTF-8 key for each header, and that the fields end
/// exactly where the length prefix says. The headers' ranges replace the contents of `headers`.
pub fn read_record(
    buf: &[u8],
    headers: &mut Vec<HeaderFrame>,
) -> std::result::Result<RecordFrame, MalformedRecord> {
    let bad = |what| Err(MalformedRecord(what));
    headers.clear();
    let mut r = Reader::new(buf);
    let Some(len) = r.varint() else {
        return bad("its length prefix is not a varint");
    };
    let start = r.pos();
    let Some(end) = usize::try_from(len).ok().and_then(|l| start.checked_add(l)) else {
        return bad("its length prefix is negative");
    };
    let Some(record) = buf.get(..end) else {
        return bad("its length prefix runs past the end of the records");
    };
    // Every field is read within the record's own length.
    let mut r = Reader::new(record);
    if r.take(start).is_none() || r.i8().is_none() {
        return bad("it ends before its attributes");
    }
    let Some(timestamp_delta) = r.varlong() else {
        return bad("its timestamp delta is not a varlong within the record");
    };
    let Some(offset_delta) = r.varint() else {
        return bad("its offset delta is not a varint within the record");
    };
    let Some(key) = r.nullable_range() else {
        return bad("its key length is invalid or runs past the record");
    };
    let Some(value) = r.nullable_range() else {
        return bad("its value length is invalid or runs past the record");
    };
    let Some(count) = r.varint() else {
        return bad("its header count is not a varint within the record");
    };
    // A header takes at least two bytes: a bound before anything is reserved.
    match usize::try_from(count) {
        Err(_) => return bad("its header count is negative"),
        Ok(n) if n > r.remaining() / 2 => {
            return bad("its header count is more than the record's bytes can hold");
        }
        Ok(n) => headers.reserve(n),
    }
    for _ in 0..count {
        let k = match r.nullable_range() {
            Some(Some(k)) => k,
            Some(None) => return bad("a header key is null"),
            None => return bad("a header key length is invalid or runs past the record"),
        };
        if std::str::from_utf8(&record[k.clone()]).is_err() {
            return bad("a header key is not UTF-8");
        }
        let Some(v) = r.nullable_range() else {
            return bad("a header value length is invalid or runs past the record");
        };
        headers.push((k, v));
    }
    if r.pos() != end {
        return bad("its length prefix says more bytes than its fields take");
    }
    Ok(RecordFrame {
        len: end,
        timestamp_delta,
        offset_delta,
        key,
        value,
    })
}

/// The records section of a checked batch (the bytes after its header): as they are, or for a
/// compressed batch decompressed into `scratch` (replacing its contents). Compressed bytes that
/// do not decompress, or decompress to more than `max_uncompressed` bytes, are
/// [`Error::CorruptRecord`].
pub fn records_section<'a>(
    batch: &'a [u8],
    header: &BatchHeader,
    max_uncompressed: usize,
    scratch: &'a mut Vec<u8>,
) -> Result<&'a [u8]> {
    let body = batch.get(HEADER_LEN..).unwrap_or_default();
    match header.compression()? {
        Compression::None => Ok(body),
        codec => {
            decompress_into(codec, body, max_uncompressed, scratch)
                .map_err(Error::CorruptRecord)?;
            Ok(scratch)
        }
    }
}

/// Decodes the records of one complete batch (CRC checked), decompressing into at most
/// `max_uncompressed` bytes.
pub fn decode_records(batch: &Bytes, max_uncompressed: usize) -> Result<RecordIter> {
    let header = validate(batch)?;
    let body = batch.slice(HEADER_LEN..);
    let data = match header.compression()? {
        Compression::None => body,
        codec => {
            Bytes::from(decompress(codec, &body, max_uncompressed).map_err(Error::CorruptRecord)?)
        }
    };
    Ok(RecordIter {
        header,
        data,
        pos: 0,
        left: header.record_count,
    })
}
