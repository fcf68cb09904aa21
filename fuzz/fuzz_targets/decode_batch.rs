//! Any bytes as a record batch, with its length field and CRC-32C made right (recomputed over
//! the fuzzed bytes) so decoding goes past the CRC check: validation and the decoding of every
//! record (with every compression codec) return errors, never panic, and never allocate past
//! their bound.
//! Property: when every record decodes and their offset deltas increase, the same records built
//! into a batch again (`BatchBuilder`, same codec, base offset and producer) decode the same.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use sluice_log::record::{
    BatchBuilder, HEADER_LEN, LOG_OVERHEAD, Record, compute_crc, decode_records, set_base_offset,
};

/// Decompressed bytes a batch may expand to (the fetch path's bound is of this order).
const MAX_UNCOMPRESSED: usize = 1 << 20;

fuzz_target!(|data: &[u8]| {
    let mut batch = data.to_vec();
    if batch.len() >= HEADER_LEN {
        let len = i32::try_from(batch.len() - LOG_OVERHEAD).unwrap_or(i32::MAX);
        batch[8..12].copy_from_slice(&len.to_be_bytes());
        let crc = compute_crc(&batch);
        batch[17..21].copy_from_slice(&crc.to_be_bytes());
    }
    let batch = Bytes::from(batch);
    let Ok(records) = decode_records(&batch, MAX_UNCOMPRESSED) else {
        return;
    };
    let header = *records.header();
    // What the log and the clients ask of any header that validated.
    let _ = (
        header.last_offset(),
        header.next_offset(),
        header.last_sequence(),
        header.timestamp_type(),
        header.is_transactional(),
        header.is_control(),
    );
    let mut decoded: Vec<Record> = Vec::new();
    for r in records {
        match r {
            Ok(r) => decoded.push(r),
            Err(_) => return,
        }
    }
    let Ok(codec) = header.compression() else {
        return;
    };
    let mut builder = BatchBuilder::new(codec).producer(
        header.producer_id,
        header.producer_epoch,
        header.base_sequence,
    );
    for r in &decoded {
        let Some(delta) = r
            .offset
            .checked_sub(header.base_offset)
            .and_then(|d| i32::try_from(d).ok())
        else {
            return;
        };
        let headers = r.headers.as_slice();
        if !builder.append_with_offset_delta(
            delta,
            r.timestamp,
            r.key.as_deref(),
            r.value.as_deref(),
            headers,
        ) {
            return;
        }
    }
    let mut rebuilt = builder.build();
    set_base_offset(&mut rebuilt, header.base_offset);
    let rebuilt = Bytes::from(rebuilt);
    let again: Vec<Record> = decode_records(&rebuilt, usize::MAX)
        .expect("a rebuilt batch validates")
        .collect::<Result<_, _>>()
        .expect("a rebuilt batch's records decode");
    assert_eq!(again, decoded);
});
