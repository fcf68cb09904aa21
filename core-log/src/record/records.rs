//! Decoding the records of a batch, zero-copy for uncompressed batches.

use bytes::Bytes;

use super::compression::decompress;
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
        self.left = 0;
        Error::CorruptRecord(format!(
            "record {} of the batch at offset {}: {what}",
            self.header.record_count - self.left,
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
        let mut r = Reader::new(&self.data[self.pos..]);
        let parsed = (|| {
            let len = r.varint()?;
            if len < 0 || len as usize > r.remaining() {
                return None;
            }
            let end = r.pos() + len as usize;
            let _attributes = r.i8()?;
            let ts_delta = r.varlong()?;
            let offset_delta = r.varint()?;
            let key = r.nullable_range()?;
            let value = r.nullable_range()?;
            let n_headers = r.varint()?;
            if n_headers < 0 || n_headers as usize > r.remaining() {
                return None;
            }
            let mut headers = Vec::with_capacity(n_headers as usize);
            for _ in 0..n_headers {
                let k = r.nullable_range()??;
                let v = r.nullable_range()?;
                headers.push((k, v));
            }
            if r.pos() != end {
                return None;
            }
            Some((ts_delta, offset_delta, key, value, headers, end))
        })();
        let Some((ts_delta, offset_delta, key, value, headers, end)) = parsed else {
            return Some(Err(self.fail("malformed record")));
        };
        let base = self.pos;
        let slice = |r: std::ops::Range<usize>| self.data.slice(base + r.start..base + r.end);
        let mut hs = Vec::with_capacity(headers.len());
        for (k, v) in headers {
            let Ok(key) = String::from_utf8(slice(k).to_vec()) else {
                return Some(Err(self.fail("header key is not UTF-8")));
            };
            hs.push(Header {
                key,
                value: v.map(slice),
            });
        }
        let timestamp = match self.header.timestamp_type() {
            TimestampType::LogAppendTime => self.header.max_timestamp,
            TimestampType::CreateTime => self.header.base_timestamp.wrapping_add(ts_delta),
        };
        let Some(offset) = self.header.base_offset.checked_add(i64::from(offset_delta)) else {
            return Some(Err(self.fail("offset delta overflows the offsets")));
        };
        let record = Record {
            offset,
            timestamp,
            key: key.map(slice),
            value: value.map(slice),
            headers: hs,
        };
        self.pos = base + end;
        self.left -= 1;
        Some(Ok(record))
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
