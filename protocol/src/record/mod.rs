//! Kafka's RecordBatch v2 (magic 2), byte for byte: the format producers send, the `.log` files
//! hold, and fetches return.
//!
//! ```text
//! baseOffset i64 | batchLength i32 | partitionLeaderEpoch i32 | magic i8 = 2 | crc u32 (CRC-32C of
//! attributes..end) | attributes i16 | lastOffsetDelta i32 | baseTimestamp i64 | maxTimestamp i64 |
//! producerId i64 | producerEpoch i16 | baseSequence i32 | recordCount i32 | records...
//! ```
//!
//! Appending only rewrites the header (base offset, leader epoch, and for `LogAppendTime` the
//! timestamp and CRC); records are decoded only where an application needs them.

pub mod builder;
pub mod compression;
pub mod records;
pub mod varint;

pub use builder::BatchBuilder;
pub use records::{
    ControlRecord, Header, HeaderFrame, MalformedRecord, Record, RecordFrame, RecordIter,
    decode_records, read_record, records_section,
};

use crate::{Compression, Error, Result, TimestampType};

/// Bytes in the batch header, before the first record.
pub const HEADER_LEN: usize = 61;
/// Bytes before `batchLength` counts: baseOffset and batchLength itself.
pub const LOG_OVERHEAD: usize = 12;
/// The only magic this log stores.
pub const MAGIC: i8 = 2;
/// `producerId` of a batch without an idempotent producer.
pub const NO_PRODUCER_ID: i64 = -1;
/// `baseSequence` of a batch without an idempotent producer.
pub const NO_SEQUENCE: i32 = -1;

const CRC_OFFSET: usize = 17;
const ATTRIBUTES_OFFSET: usize = 21;
const MAX_TIMESTAMP_OFFSET: usize = 35;
/// Producer id (8 bytes), then producer epoch (2) and base sequence (4).
const PRODUCER_ID_OFFSET: usize = 43;
const TIMESTAMP_TYPE_BIT: i16 = 0x08;
const TRANSACTIONAL_BIT: i16 = 0x10;
const CONTROL_BIT: i16 = 0x20;
const DELETE_HORIZON_BIT: i16 = 0x40;

/// The fixed header of one record batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    /// Offset of the first record.
    pub base_offset: i64,
    /// Bytes after the `batchLength` field.
    pub batch_length: i32,
    /// Leader epoch stamped at append.
    pub partition_leader_epoch: i32,
    /// Format version; always 2 here.
    pub magic: i8,
    /// CRC-32C over attributes to the end.
    pub crc: u32,
    /// Compression, timestamp type, transactional and control bits.
    pub attributes: i16,
    /// Offset of the last record minus `base_offset`.
    pub last_offset_delta: i32,
    /// Timestamp of the first record (or the delete horizon, see [`Self::has_delete_horizon`]).
    pub base_timestamp: i64,
    /// Largest timestamp in the batch.
    pub max_timestamp: i64,
    /// Idempotent producer id, or -1.
    pub producer_id: i64,
    /// Producer epoch, or -1.
    pub producer_epoch: i16,
    /// Sequence of the first record, or -1.
    pub base_sequence: i32,
    /// Number of records.
    pub record_count: i32,
}

impl BatchHeader {
    /// Reads the header at the start of `buf`; checks only that the bytes are there and the
    /// magic is 2.
    pub fn parse(buf: &[u8]) -> Result<Self> {
        let Some(h) = buf.get(..HEADER_LEN) else {
            return Err(Error::CorruptRecord(format!(
                "batch header needs {HEADER_LEN} bytes, found {}",
                buf.len()
            )));
        };
        let i64_at = |at: usize| i64::from_be_bytes(h[at..at + 8].try_into().unwrap_or([0; 8]));
        let i32_at = |at: usize| i32::from_be_bytes(h[at..at + 4].try_into().unwrap_or([0; 4]));
        let i16_at = |at: usize| i16::from_be_bytes([h[at], h[at + 1]]);
        let header = BatchHeader {
            base_offset: i64_at(0),
            batch_length: i32_at(8),
            partition_leader_epoch: i32_at(12),
            magic: h[16] as i8,
            crc: i32_at(CRC_OFFSET) as u32,
            attributes: i16_at(ATTRIBUTES_OFFSET),
            last_offset_delta: i32_at(23),
            base_timestamp: i64_at(27),
            max_timestamp: i64_at(MAX_TIMESTAMP_OFFSET),
            producer_id: i64_at(43),
            producer_epoch: i16_at(51),
            base_sequence: i32_at(53),
            record_count: i32_at(57),
        };
        if header.magic != MAGIC {
            return Err(Error::CorruptRecord(format!(
                "unsupported magic {} (only RecordBatch v2, magic 2, is stored)",
                header.magic
            )));
        }
        if (header.batch_length as i64) < (HEADER_LEN - LOG_OVERHEAD) as i64 {
            return Err(Error::CorruptRecord(format!(
                "batch length {} is shorter than the header",
                header.batch_length
            )));
        }
        Ok(header)
    }

    /// Bytes of the whole batch, header included.
    pub fn total_len(&self) -> usize {
        self.batch_length as usize + LOG_OVERHEAD
    }

    /// Offset of the last record. Wraps as Kafka's `baseOffset + lastOffsetDelta` does for a
    /// header whose offsets overflow, which [`validate`] refuses.
    pub fn last_offset(&self) -> i64 {
        self.base_offset
            .wrapping_add(i64::from(self.last_offset_delta))
    }

    /// Offset after the last record.
    pub fn next_offset(&self) -> i64 {
        self.last_offset().wrapping_add(1)
    }

    /// Sequence of the last record (an idempotent producer's batch), wrapping past `i32::MAX`
    /// to 0 as Kafka does; -1 for a batch without a sequence.
    pub fn last_sequence(&self) -> i32 {
        if self.base_sequence == NO_SEQUENCE {
            return NO_SEQUENCE;
        }
        increment_sequence(self.base_sequence, self.last_offset_delta)
    }

    /// Codec of the records section.
    pub fn compression(&self) -> Result<Compression> {
        Compression::from_id(self.attributes & 0x07).ok_or_else(|| {
            Error::CorruptRecord(format!(
                "unknown compression codec {}",
                self.attributes & 0x07
            ))
        })
    }

    /// Whether timestamps are the log's (`LogAppendTime`) or the producer's.
    pub fn timestamp_type(&self) -> TimestampType {
        if self.attributes & TIMESTAMP_TYPE_BIT != 0 {
            TimestampType::LogAppendTime
        } else {
            TimestampType::CreateTime
        }
    }

    /// Part of a transaction.
    pub fn is_transactional(&self) -> bool {
        self.attributes & TRANSACTIONAL_BIT != 0
    }

    /// A control batch (transaction marker), never handed to applications.
    pub fn is_control(&self) -> bool {
        self.attributes & CONTROL_BIT != 0
    }

    /// `base_timestamp` holds the delete horizon set by the cleaner (KIP-534).
    pub fn has_delete_horizon(&self) -> bool {
        self.attributes & DELETE_HORIZON_BIT != 0
    }
}

/// `sequence + by` for producer sequence numbers, which wrap from `i32::MAX` to 0 (Kafka's
/// `DefaultRecordBatch.incrementSequence`).
pub fn increment_sequence(sequence: i32, by: i32) -> i32 {
    let sum = i64::from(sequence) + i64::from(by);
    if sum > i64::from(i32::MAX) {
        (sum - i64::from(i32::MAX) - 1) as i32
    } else {
        sum as i32
    }
}

/// CRC-32C of a whole batch as the header's `crc` field should hold it.
pub fn compute_crc(batch: &[u8]) -> u32 {
    crc32c::crc32c(batch.get(ATTRIBUTES_OFFSET..).unwrap_or_default())
}

/// Checks one complete batch: header, length, CRC, record count and offset delta sanity.
/// `batch` must be exactly one batch.
pub fn validate(batch: &[u8]) -> Result<BatchHeader> {
    let h = BatchHeader::parse(batch)?;
    if h.total_len() != batch.len() {
        return Err(Error::CorruptRecord(format!(
            "batch length field says {} bytes, found {}",
            h.total_len(),
            batch.len()
        )));
    }
    let crc = compute_crc(batch);
    if crc != h.crc {
        return Err(Error::CorruptRecord(format!(
            "CRC-32C mismatch: header {:#010x}, computed {crc:#010x}",
            h.crc
        )));
    }
    h.compression()?;
    if h.record_count < 0 || h.last_offset_delta < 0 {
        return Err(Error::CorruptRecord(format!(
            "negative record count {} or last offset delta {}",
            h.record_count, h.last_offset_delta
        )));
    }
    if h.base_offset
        .checked_add(i64::from(h.last_offset_delta))
        .and_then(|last| last.checked_add(1))
        .is_none()
    {
        return Err(Error::CorruptRecord(format!(
            "base offset {} and last offset delta {} overflow the offsets",
            h.base_offset, h.last_offset_delta
        )));
    }
    if h.record_count == 0 && !h.is_control() {
        // The cleaner may leave an empty batch to keep producer state; producers never send one.
        return Ok(h);
    }
    Ok(h)
}

/// Stamps the base offset (not covered by the CRC).
pub fn set_base_offset(batch: &mut [u8], base_offset: i64) {
    if let Some(b) = batch.get_mut(..8) {
        b.copy_from_slice(&base_offset.to_be_bytes());
    }
}

/// Stamps the partition leader epoch (not covered by the CRC).
pub fn set_partition_leader_epoch(batch: &mut [u8], epoch: i32) {
    if let Some(b) = batch.get_mut(12..16) {
        b.copy_from_slice(&epoch.to_be_bytes());
    }
}

/// Restamps the producer id, epoch and base sequence of a built batch and rewrites its CRC
/// (a producer re-sending held batches under a new producer id, as Java's does after an
/// epoch bump).
pub fn set_producer(batch: &mut [u8], producer_id: i64, producer_epoch: i16, base_sequence: i32) {
    if batch.len() < HEADER_LEN {
        return;
    }
    batch[PRODUCER_ID_OFFSET..PRODUCER_ID_OFFSET + 8].copy_from_slice(&producer_id.to_be_bytes());
    batch[PRODUCER_ID_OFFSET + 8..PRODUCER_ID_OFFSET + 10]
        .copy_from_slice(&producer_epoch.to_be_bytes());
    batch[PRODUCER_ID_OFFSET + 10..PRODUCER_ID_OFFSET + 14]
        .copy_from_slice(&base_sequence.to_be_bytes());
    let crc = compute_crc(batch);
    batch[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
}

/// Rewrites the max timestamp of a batch and its CRC (a `CreateTime` batch whose header does not
/// hold the largest timestamp of its records, which Kafka's broker corrects likewise).
pub fn set_max_timestamp(batch: &mut [u8], max_timestamp: i64) {
    if batch.len() < HEADER_LEN {
        return;
    }
    batch[MAX_TIMESTAMP_OFFSET..MAX_TIMESTAMP_OFFSET + 8]
        .copy_from_slice(&max_timestamp.to_be_bytes());
    let crc = compute_crc(batch);
    batch[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
}

/// Marks the batch `LogAppendTime` with `now_ms` as its max timestamp and rewrites the CRC, as a
/// Kafka broker does for topics with `message.timestamp.type=LogAppendTime`.
pub fn set_log_append_time(batch: &mut [u8], now_ms: i64) {
    if batch.len() < HEADER_LEN {
        return;
    }
    let attrs = i16::from_be_bytes([batch[ATTRIBUTES_OFFSET], batch[ATTRIBUTES_OFFSET + 1]])
        | TIMESTAMP_TYPE_BIT;
    batch[ATTRIBUTES_OFFSET..ATTRIBUTES_OFFSET + 2].copy_from_slice(&attrs.to_be_bytes());
    batch[MAX_TIMESTAMP_OFFSET..MAX_TIMESTAMP_OFFSET + 8].copy_from_slice(&now_ms.to_be_bytes());
    let crc = compute_crc(batch);
    batch[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
}

/// Walks the complete batches at the front of a buffer (a fetch response, a segment read);
/// stops at the first incomplete or malformed one. Yields `(header, byte range)`.
#[derive(Debug)]
pub struct BatchIter<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> BatchIter<'a> {
    /// Batches of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// Bytes consumed by the batches yielded so far.
    pub fn position(&self) -> usize {
        self.pos
    }
}

impl Iterator for BatchIter<'_> {
    type Item = (BatchHeader, std::ops::Range<usize>);

    fn next(&mut self) -> Option<Self::Item> {
        let rest = self.buf.get(self.pos..)?;
        let h = BatchHeader::parse(rest).ok()?;
        let len = h.total_len();
        if len > rest.len() {
            return None;
        }
        let range = self.pos..self.pos + len;
        self.pos += len;
        Some((h, range))
    }
}

/// Test helpers: build batches in one line.
pub mod testing {
    use super::BatchBuilder;
    use crate::Compression;

    /// An uncompressed batch of unkeyed records with these values, timestamps `ts, ts+1, ...`.
    pub fn batch<'a>(values: impl IntoIterator<Item = &'a str>, ts: i64) -> Vec<u8> {
        let mut b = BatchBuilder::new(Compression::None);
        for (i, v) in values.into_iter().enumerate() {
            b.append(ts + i as i64, None, Some(v.as_bytes()), &[]);
        }
        b.build()
    }

    /// An uncompressed batch of keyed records, timestamps `ts, ts+1, ...`; a `None` value is a
    /// tombstone.
    pub fn keyed<'a>(
        records: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
        ts: i64,
    ) -> Vec<u8> {
        let mut b = BatchBuilder::new(Compression::None);
        for (i, (k, v)) in records.into_iter().enumerate() {
            b.append(ts + i as i64, Some(k.as_bytes()), v.map(str::as_bytes), &[]);
        }
        b.build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_restamped_batch_carries_the_new_producer_and_a_valid_crc() {
        let mut b = BatchBuilder::new(Compression::None).producer(7, 3, 100);
        b.append(1_000, Some(b"k"), Some(b"v"), &[]);
        b.append(1_001, None, Some(b"w"), &[]);
        let mut batch = b.build();
        set_producer(&mut batch, 8, 0, 41);
        let h = validate(&batch).expect("the CRC covers the new fields");
        assert_eq!(
            (h.producer_id, h.producer_epoch, h.base_sequence),
            (8, 0, 41)
        );
        assert_eq!(h.record_count, 2);
        let mut short = vec![0u8; 10];
        set_producer(&mut short, 8, 0, 41);
        assert_eq!(short, [0u8; 10], "too short to be a batch: left alone");
    }

    #[test]
    fn offsets_past_i64_max_are_an_error_not_an_overflow() {
        // Found by fuzz/decode_batch: base offset + last offset delta overflowed (a panic in
        // debug builds) in `last_offset`, and base offset + a record's delta in decoding.
        let mut b = BatchBuilder::new(Compression::None);
        b.append(1_000, None, Some(b"a"), &[]);
        b.append(1_000, None, Some(b"b"), &[]);
        let mut batch = b.build();
        set_base_offset(&mut batch, i64::MAX);
        let err = validate(&batch).expect_err("offsets past i64::MAX");
        assert!(err.to_string().contains("overflow the offsets"), "{err}");
        let h = BatchHeader::parse(&batch).expect("the header itself parses");
        assert_eq!(
            h.last_offset(),
            i64::MIN,
            "wraps as Kafka's arithmetic does"
        );

        // A header that fits, but a record whose own delta goes past it.
        let mut b = BatchBuilder::new(Compression::None);
        assert!(b.append_with_offset_delta(i32::MAX, 1_000, None, Some(b"a"), &[]));
        let mut batch = b.build();
        set_base_offset(&mut batch, i64::MAX - 1);
        batch[23..27].copy_from_slice(&0i32.to_be_bytes());
        let crc = compute_crc(&batch);
        batch[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
        let mut records =
            decode_records(&bytes::Bytes::from(batch), 1 << 20).expect("the header validates");
        let err = records
            .next()
            .expect("one record")
            .expect_err("overflowing offset");
        assert!(err.to_string().contains("overflows the offsets"), "{err}");
    }
}
