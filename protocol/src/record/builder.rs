//! Builds one RecordBatch v2 record by record, as a producer's accumulator does.

use super::compression::compress;
use super::varint::{put_varint, put_varlong, varint_len, varlong_len};
use super::{
    ATTRIBUTES_OFFSET, CONTROL_BIT, CRC_OFFSET, HEADER_LEN, Header, LOG_OVERHEAD, MAGIC,
    NO_PRODUCER_ID, NO_SEQUENCE, TRANSACTIONAL_BIT, compute_crc,
};
use crate::Compression;

/// An open batch: records are encoded as they are appended; [`BatchBuilder::build`] writes the
/// header, compresses, and computes the CRC.
#[derive(Debug)]
pub struct BatchBuilder {
    buf: Vec<u8>,
    compression: Compression,
    base_timestamp: i64,
    max_timestamp: i64,
    count: i32,
    /// Largest offset delta appended so far (-1 while empty).
    last_offset_delta: i32,
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
    attributes: i16,
}

impl BatchBuilder {
    /// An empty batch whose records section will be compressed with `compression`.
    pub fn new(compression: Compression) -> Self {
        Self::with_capacity(compression, 1024)
    }

    /// Like [`BatchBuilder::new`], reserving room for `capacity` bytes.
    pub fn with_capacity(compression: Compression, capacity: usize) -> Self {
        let mut buf = Vec::with_capacity(capacity.max(HEADER_LEN));
        buf.resize(HEADER_LEN, 0);
        Self {
            buf,
            compression,
            base_timestamp: -1,
            max_timestamp: -1,
            count: 0,
            last_offset_delta: -1,
            producer_id: NO_PRODUCER_ID,
            producer_epoch: -1,
            base_sequence: NO_SEQUENCE,
            attributes: compression.id(),
        }
    }

    /// Stamps an idempotent producer's id, epoch and first sequence number.
    pub fn producer(mut self, producer_id: i64, producer_epoch: i16, base_sequence: i32) -> Self {
        self.producer_id = producer_id;
        self.producer_epoch = producer_epoch;
        self.base_sequence = base_sequence;
        self
    }

    /// Marks the batch as part of a transaction.
    pub fn transactional(mut self) -> Self {
        self.attributes |= TRANSACTIONAL_BIT;
        self
    }

    /// Marks the batch as a control batch (a transaction marker).
    pub fn control(mut self) -> Self {
        self.attributes |= CONTROL_BIT;
        self
    }

    /// Records appended so far.
    pub fn len(&self) -> usize {
        self.count as usize
    }

    /// No record appended yet.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Size of the batch if built uncompressed; an upper bound for compressed batches.
    pub fn estimated_size(&self) -> usize {
        self.buf.len()
    }

    /// Bytes one record adds to an uncompressed batch (used to decide whether it still fits).
    pub fn record_size(
        offset_delta: i32,
        timestamp_delta: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header],
    ) -> usize {
        let body = body_len(offset_delta, timestamp_delta, key, value, headers);
        varint_len(body as i32) + body
    }

    /// Appends one record; returns its offset delta within the batch (one past the previous
    /// record's).
    pub fn append(
        &mut self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header],
    ) -> i32 {
        let offset_delta = self.last_offset_delta.saturating_add(1);
        self.push(offset_delta, timestamp, key, value, headers);
        offset_delta
    }

    /// Appends one record at an explicit offset delta, leaving a gap after the previous record
    /// (as the log cleaner writes compacted batches). Deltas must increase from record to
    /// record; the batch's `lastOffsetDelta` is the largest one. Returns false, appending
    /// nothing, if `offset_delta` is negative or not above the previous record's.
    #[must_use = "a refused record is not in the batch"]
    pub fn append_with_offset_delta(
        &mut self,
        offset_delta: i32,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header],
    ) -> bool {
        if offset_delta <= self.last_offset_delta {
            return false;
        }
        self.push(offset_delta, timestamp, key, value, headers);
        true
    }

    fn push(
        &mut self,
        offset_delta: i32,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header],
    ) {
        if self.count == 0 {
            self.base_timestamp = timestamp;
        }
        if timestamp > self.max_timestamp {
            self.max_timestamp = timestamp;
        }
        let ts_delta = timestamp.wrapping_sub(self.base_timestamp);
        let body = body_len(offset_delta, ts_delta, key, value, headers);
        let buf = &mut self.buf;
        buf.reserve(body + 5);
        put_varint(buf, body as i32);
        buf.push(0); // record attributes: unused
        put_varlong(buf, ts_delta);
        put_varint(buf, offset_delta);
        put_bytes(buf, key);
        put_bytes(buf, value);
        put_varint(buf, headers.len() as i32);
        for h in headers {
            put_bytes(buf, Some(h.key.as_bytes()));
            put_bytes(buf, h.value.as_deref());
        }
        self.count += 1;
        self.last_offset_delta = offset_delta;
    }

    /// Finishes the batch: header, compression, CRC. Base offset is 0 until the log assigns one.
    pub fn build(self) -> Vec<u8> {
        let mut attributes = self.attributes;
        let mut buf = self.buf;
        if self.compression != Compression::None {
            let mut out = Vec::with_capacity(buf.len() / 2 + HEADER_LEN);
            out.resize(HEADER_LEN, 0);
            match compress(self.compression, &buf[HEADER_LEN..], &mut out) {
                Ok(()) => buf = out,
                Err(e) => {
                    // Compressing into memory does not fail in practice; if it does, the
                    // records go uncompressed rather than being lost.
                    tracing::warn!(codec = self.compression.as_str(), error = %e, "compression failed, sending uncompressed");
                    attributes &= !0x07;
                }
            }
        }
        let batch_length = (buf.len() - LOG_OVERHEAD) as i32;
        let h = &mut buf[..HEADER_LEN];
        h[0..8].copy_from_slice(&0i64.to_be_bytes());
        h[8..12].copy_from_slice(&batch_length.to_be_bytes());
        h[12..16].copy_from_slice(&(-1i32).to_be_bytes());
        h[16] = MAGIC as u8;
        h[ATTRIBUTES_OFFSET..ATTRIBUTES_OFFSET + 2].copy_from_slice(&attributes.to_be_bytes());
        h[23..27].copy_from_slice(&self.last_offset_delta.max(0).to_be_bytes());
        h[27..35].copy_from_slice(&self.base_timestamp.to_be_bytes());
        h[35..43].copy_from_slice(&self.max_timestamp.to_be_bytes());
        h[43..51].copy_from_slice(&self.producer_id.to_be_bytes());
        h[51..53].copy_from_slice(&self.producer_epoch.to_be_bytes());
        h[53..57].copy_from_slice(&self.base_sequence.to_be_bytes());
        h[57..61].copy_from_slice(&self.count.to_be_bytes());
        let crc = compute_crc(&buf);
        buf[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
        buf
    }
}

fn put_bytes(buf: &mut Vec<u8>, b: Option<&[u8]>) {
    match b {
        None => put_varint(buf, -1),
        Some(b) => {
            put_varint(buf, b.len() as i32);
            buf.extend_from_slice(b);
        }
    }
}

fn bytes_len(b: Option<&[u8]>) -> usize {
    match b {
        None => 1,
        Some(b) => varint_len(b.len() as i32) + b.len(),
    }
}

fn body_len(
    offset_delta: i32,
    timestamp_delta: i64,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    headers: &[Header],
) -> usize {
    let mut n = 1 + varlong_len(timestamp_delta) + varint_len(offset_delta);
    n += bytes_len(key) + bytes_len(value) + varint_len(headers.len() as i32);
    for h in headers {
        n += bytes_len(Some(h.key.as_bytes())) + bytes_len(h.value.as_deref());
    }
    n
}
