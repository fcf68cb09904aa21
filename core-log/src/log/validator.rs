//! What the log checks of a batch before appending it, as Kafka's `LogValidator` does: the
//! batch's fields against its records (count, offset deltas, sequence), each record's framing
//! (compressed batches are decompressed, within [`MAX_UNCOMPRESSED_BATCH`]), a key on every
//! record of a compacted topic, and `CreateTime` timestamps within the topic's bounds. The CRC
//! and the header's own sanity are [`record::validate`]'s, checked before.
//!
//! One pass over the records, without decoding them into values: what is refused here is what
//! would otherwise be stored and then stall every consumer reaching it.

use std::cell::RefCell;

use super::AppendOrigin;
use crate::config::TopicConfig;
use crate::record::{self, BatchHeader, HeaderFrame};
use crate::{Error, Result, TimestampType, TopicPartition};

/// The most bytes a compressed batch may decompress to. Sluice's consumers decode batches of
/// up to this size (at least), so nothing accepted is too large for them to read.
pub const MAX_UNCOMPRESSED_BATCH: usize = 64 << 20;

/// Kafka's `RecordBatch.NO_TIMESTAMP`: a record without a timestamp.
const NO_TIMESTAMP: i64 = -1;

/// A decompression buffer kept by each appending thread, dropped when a batch made it large.
const KEEP_SCRATCH_BYTES: usize = 8 << 20;

thread_local! {
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Checks `batch` (one batch whose header and CRC [`record::validate`] passed, `header` its
/// header) for an append to `tp` under `config` at `now`. Where the header's max timestamp is
/// not the records' largest `CreateTime` timestamp, rewrites it (and the CRC) as Kafka does.
/// Returns the header as it now is.
///
/// Refusals are [`Error::InvalidRecord`] (Kafka's INVALID_RECORD), [`Error::CorruptRecord`] for
/// compressed data that does not decompress (CORRUPT_MESSAGE), and [`Error::InvalidTimestamp`].
pub fn validate_batch(
    tp: &TopicPartition,
    config: &TopicConfig,
    batch: &mut [u8],
    header: BatchHeader,
    now: i64,
    origin: AppendOrigin,
) -> Result<BatchHeader> {
    let h = header;
    let invalid = |reason: String| Error::InvalidRecord {
        tp: tp.clone(),
        reason,
    };
    if origin == AppendOrigin::Client {
        check_client_batch(&h).map_err(invalid)?;
        if h.timestamp_type() == TimestampType::LogAppendTime {
            return Err(Error::InvalidTimestamp {
                topic: tp.topic.to_string(),
                timestamp: h.max_timestamp,
                reason: format!(
                    "the batch to {tp} has the LogAppendTime type, which only the log sets"
                ),
            });
        }
    }
    let check_times = config.message_timestamp_type == TimestampType::CreateTime;
    let max_timestamp = SCRATCH.with_borrow_mut(|scratch| {
        let scanned = scan(tp, config, batch, &h, now, check_times, scratch);
        if scratch.capacity() > KEEP_SCRATCH_BYTES {
            *scratch = Vec::new();
        }
        scanned
    })?;
    if check_times && max_timestamp != h.max_timestamp {
        record::set_max_timestamp(batch, max_timestamp);
        return record::validate(batch);
    }
    Ok(h)
}

/// Kafka's checks of a client's batch header against itself (`LogValidator.validateBatch`).
fn check_client_batch(h: &BatchHeader) -> std::result::Result<(), String> {
    if h.base_offset != 0 {
        return Err(format!(
            "the base offset of a batch from a client must be 0, not {}",
            h.base_offset
        ));
    }
    if h.record_count <= 0 {
        return Err(format!("invalid record count {}", h.record_count));
    }
    if i64::from(h.last_offset_delta) + 1 != i64::from(h.record_count) {
        return Err(format!(
            "last offset delta {} does not match the record count {}",
            h.last_offset_delta, h.record_count
        ));
    }
    if h.producer_id >= 0 && h.base_sequence < 0 {
        return Err(format!(
            "invalid base sequence {} in a batch of producer id {}",
            h.base_sequence, h.producer_id
        ));
    }
    Ok(())
}

/// One pass over the records: framing, count, offset deltas, keys, timestamps. Returns the
/// largest timestamp (`NO_TIMESTAMP` if none, or if timestamps are not checked).
fn scan(
    tp: &TopicPartition,
    config: &TopicConfig,
    batch: &[u8],
    h: &BatchHeader,
    now: i64,
    check_times: bool,
    scratch: &mut Vec<u8>,
) -> Result<i64> {
    let invalid = |reason: String| Error::InvalidRecord {
        tp: tp.clone(),
        reason,
    };
    let data =
        record::records_section(batch, h, MAX_UNCOMPRESSED_BATCH, scratch).map_err(
            |e| match e {
                Error::CorruptRecord(what) => Error::CorruptRecord(format!("{tp}: {what}")),
                other => other,
            },
        )?;
    let compacted = config.cleanup_policy.compact;
    let mut headers: Vec<HeaderFrame> = Vec::new();
    let mut max_timestamp = NO_TIMESTAMP;
    let mut pos = 0usize;
    for i in 0..h.record_count {
        let Some(rest) = data.get(pos..).filter(|r| !r.is_empty()) else {
            return Err(invalid(format!(
                "the batch declares {} records but holds {i}",
                h.record_count
            )));
        };
        let frame = record::read_record(rest, &mut headers)
            .map_err(|e| invalid(format!("record {i} is malformed: {e}")))?;
        pos += frame.len;
        if frame.offset_delta != i {
            return Err(invalid(format!(
                "record {i} has offset delta {}, not {i}",
                frame.offset_delta
            )));
        }
        if compacted && frame.key.is_none() {
            return Err(invalid(format!(
                "record {i}: a compacted topic cannot accept a record without a key"
            )));
        }
        if check_times {
            let timestamp = h.base_timestamp.wrapping_add(frame.timestamp_delta);
            if timestamp != NO_TIMESTAMP {
                check_timestamp(tp, config, i, timestamp, now)?;
            }
            max_timestamp = max_timestamp.max(timestamp);
        }
    }
    if pos != data.len() {
        return Err(invalid(format!(
            "{} bytes follow the last of the {} records the batch declares",
            data.len() - pos,
            h.record_count
        )));
    }
    Ok(max_timestamp)
}

/// A `CreateTime` timestamp: not negative (but for `NO_TIMESTAMP`, not checked here), and
/// within `message.timestamp.before.max.ms` / `after.max.ms` of the log's clock.
fn check_timestamp(
    tp: &TopicPartition,
    config: &TopicConfig,
    index: i32,
    timestamp: i64,
    now: i64,
) -> Result<()> {
    let refuse = |why: String| Error::InvalidTimestamp {
        topic: tp.topic.to_string(),
        timestamp,
        reason: format!("record {index} of the batch to {tp} {why}"),
    };
    let before = config.message_timestamp_before_max_ms;
    let after = config.message_timestamp_after_max_ms;
    if timestamp < 0 {
        return Err(refuse(
            "has a negative timestamp (only -1, no timestamp, is allowed)".into(),
        ));
    }
    if now.saturating_sub(timestamp) > before {
        return Err(refuse(format!(
            "is more than message.timestamp.before.max.ms ({before}) behind the log's clock ({now})"
        )));
    }
    if timestamp.saturating_sub(now) > after {
        return Err(refuse(format!(
            "is more than message.timestamp.after.max.ms ({after}) ahead of the log's clock ({now})"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use proptest::prelude::*;

    use super::*;
    use crate::Compression;
    use crate::record::{BatchBuilder, HEADER_LEN, decode_records};

    const NOW: i64 = 1_700_000_000_000;

    fn tp() -> TopicPartition {
        TopicPartition::new("t", 0)
    }

    /// A batch around `records` (a records section, compressed with `codec` if it is not
    /// `None`) declaring `count` records, with a correct CRC: what a hostile client can send.
    fn forge(codec: Compression, records: &[u8], count: i32) -> Vec<u8> {
        forge_with_delta(codec, records, count, count - 1)
    }

    /// As [`forge`], with this last offset delta.
    fn forge_with_delta(
        codec: Compression,
        records: &[u8],
        count: i32,
        last_offset_delta: i32,
    ) -> Vec<u8> {
        let mut b = vec![0u8; HEADER_LEN];
        b.extend_from_slice(records);
        let batch_length = (b.len() - 12) as i32;
        b[8..12].copy_from_slice(&batch_length.to_be_bytes());
        b[12..16].copy_from_slice(&(-1i32).to_be_bytes());
        b[16] = 2;
        b[21..23].copy_from_slice(&codec.id().to_be_bytes());
        b[23..27].copy_from_slice(&last_offset_delta.to_be_bytes());
        b[27..35].copy_from_slice(&NOW.to_be_bytes());
        b[35..43].copy_from_slice(&NOW.to_be_bytes());
        b[43..51].copy_from_slice(&(-1i64).to_be_bytes());
        b[51..53].copy_from_slice(&(-1i16).to_be_bytes());
        b[53..57].copy_from_slice(&(-1i32).to_be_bytes());
        b[57..61].copy_from_slice(&count.to_be_bytes());
        let crc = record::compute_crc(&b);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
        b
    }

    /// The records section of an uncompressed batch of these values (keyed `k`).
    fn section(values: &[&str]) -> Vec<u8> {
        let mut b = BatchBuilder::new(Compression::None);
        for v in values {
            b.append(NOW, Some(b"k"), Some(v.as_bytes()), &[]);
        }
        b.build()[HEADER_LEN..].to_vec()
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn check(batch: &[u8], config: &TopicConfig) -> Result<BatchHeader> {
        let mut batch = batch.to_vec();
        let h = record::validate(&batch)?;
        validate_batch(&tp(), config, &mut batch, h, NOW, AppendOrigin::Client)
    }

    /// A hand-written record: length prefix, attributes, deltas, key "k", value "v", then
    /// `headers` (count and bytes as given).
    fn raw_record(offset_delta: u8, headers: &[u8]) -> Vec<u8> {
        // attributes 0, timestamp delta 0, offset delta, key len 1 "k", value len 1 "v"
        let mut body = vec![0, 0, offset_delta * 2, 2, b'k', 2, b'v'];
        body.extend_from_slice(headers);
        let mut r = vec![(body.len() * 2) as u8];
        r.extend_from_slice(&body);
        r
    }

    #[test]
    fn well_formed_batches_pass_in_every_codec() {
        let config = TopicConfig::default();
        for codec in [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let mut b = BatchBuilder::new(codec);
            for i in 0..50 {
                b.append(
                    NOW + i,
                    Some(b"k"),
                    Some(b"value"),
                    &[record::Header::new("h", "x")],
                );
            }
            let h = check(&b.build(), &config).unwrap();
            assert_eq!(
                (h.record_count, h.max_timestamp),
                (50, NOW + 49),
                "{codec:?}"
            );
        }
    }

    /// What a hostile client sends, with a valid CRC: each is refused with the code Kafka
    /// answers, and the message says what is wrong.
    #[test]
    fn garbage_with_a_valid_crc_is_refused_saying_what_is_wrong() {
        let two = section(&["a", "b"]);
        let mut deltas_0_0 = section(&["a"]);
        deltas_0_0.extend(section(&["b"]));
        let mut bad_utf8 = raw_record(0, &[2, 2, b'h', 0]);
        let at = bad_utf8.iter().rposition(|&b| b == b'h').unwrap();
        bad_utf8[at] = 0xff;
        let mut long_prefix = section(&["a"]);
        long_prefix[0] += 2; // says one byte more than the record has
        long_prefix.push(0);
        let mut bomb = Vec::new();
        zstd::stream::copy_encode(
            &mut std::io::repeat(0).take(MAX_UNCOMPRESSED_BATCH as u64 + 1),
            &mut bomb,
            1,
        )
        .unwrap();
        let cases: Vec<(&str, Vec<u8>, i16, &str)> = vec![
            (
                "records of 0xff",
                forge(Compression::None, &[0xff; 64], 3),
                87,
                "record 0 is malformed",
            ),
            (
                "count larger than the records",
                forge(Compression::None, &two, 3),
                87,
                "declares 3 records but holds 2",
            ),
            (
                "count smaller than the records",
                forge(Compression::None, &two, 1),
                87,
                "bytes follow the last of the 1 records",
            ),
            (
                "random gzip payload",
                forge(Compression::Gzip, &[0x5a; 40], 1),
                2,
                "gzip data does not decompress",
            ),
            (
                "gzip of 0xff records",
                forge(Compression::Gzip, &gzip(&[0xff; 64]), 2),
                87,
                "record 0 is malformed",
            ),
            (
                "a decompression bomb",
                forge(Compression::Zstd, &bomb, 1),
                2,
                "decompresses to more than",
            ),
            (
                "offset deltas 0, 0",
                forge(Compression::None, &deltas_0_0, 2),
                87,
                "record 1 has offset delta 0",
            ),
            (
                "a negative header count",
                forge(Compression::None, &raw_record(0, &[1]), 1),
                87,
                "header count is negative",
            ),
            (
                "a header count past the record",
                forge(Compression::None, &raw_record(0, &[100]), 1),
                87,
                "header count is more than",
            ),
            (
                "a header key that is not UTF-8",
                forge(Compression::None, &bad_utf8, 1),
                87,
                "not UTF-8",
            ),
            (
                "a null header key",
                forge(Compression::None, &raw_record(0, &[2, 1, 0]), 1),
                87,
                "header key is null",
            ),
            (
                "a length prefix longer than the fields",
                forge(Compression::None, &long_prefix, 1),
                87,
                "says more bytes than its fields take",
            ),
            (
                "no records at all",
                forge_with_delta(Compression::None, &[], 0, 0),
                87,
                "invalid record count 0",
            ),
        ];
        for (what, batch, code, says) in cases {
            let e = check(&batch, &TopicConfig::default()).unwrap_err();
            assert_eq!(e.error_code(), code, "{what}: {e}");
            let text = e.to_string();
            assert!(
                text.contains(says) && text.contains("t-0"),
                "{what}: {text}"
            );
        }
    }

    #[test]
    fn client_batch_fields_must_agree_with_themselves() {
        let config = TopicConfig::default();
        let plain = || {
            let mut b = BatchBuilder::new(Compression::None);
            b.append(NOW, None, Some(b"v"), &[]);
            b.append(NOW, None, Some(b"w"), &[]);
            b.build()
        };
        let mut moved = plain();
        record::set_base_offset(&mut moved, 7);
        let mut bad_delta = plain();
        bad_delta[23..27].copy_from_slice(&5i32.to_be_bytes());
        let crc = record::compute_crc(&bad_delta);
        bad_delta[17..21].copy_from_slice(&crc.to_be_bytes());
        let mut no_sequence = BatchBuilder::new(Compression::None).producer(9, 0, -1);
        no_sequence.append(NOW, None, Some(b"v"), &[]);
        for (what, batch, says) in [
            ("a base offset", moved, "base offset"),
            ("a last offset delta", bad_delta, "last offset delta 5"),
            (
                "a sequence",
                no_sequence.build(),
                "invalid base sequence -1",
            ),
        ] {
            let e = check(&batch, &config).unwrap_err();
            assert_eq!(e.error_code(), 87, "{what}: {e}");
            assert!(e.to_string().contains(says), "{what}: {e}");
        }
        // A coordinator's batch is not a client's: its base offset is not checked.
        let mut moved = plain();
        record::set_base_offset(&mut moved, 7);
        let h = record::validate(&moved).unwrap();
        validate_batch(
            &tp(),
            &config,
            &mut moved,
            h,
            NOW,
            AppendOrigin::Coordinator,
        )
        .unwrap();
    }

    #[test]
    fn compacted_topics_refuse_records_without_a_key() {
        let compacted = TopicConfig::from_pairs([("cleanup.policy", "compact")]).unwrap();
        let mut b = BatchBuilder::new(Compression::Lz4);
        b.append(NOW, Some(b"k"), Some(b"v"), &[]);
        b.append(NOW, None, Some(b"no key"), &[]);
        let batch = b.build();
        let e = check(&batch, &compacted).unwrap_err();
        assert_eq!(e.error_code(), 87, "{e}");
        assert!(
            e.to_string()
                .contains("record 1: a compacted topic cannot accept a record without a key"),
            "{e}"
        );
        check(&batch, &TopicConfig::default()).unwrap();
        let mut b = BatchBuilder::new(Compression::None);
        b.append(NOW, Some(b"k"), None, &[]);
        check(&b.build(), &compacted).expect("a tombstone has a key");
    }

    #[test]
    fn timestamps_are_bounded_per_record_and_the_max_is_corrected() {
        let config =
            TopicConfig::from_pairs([("message.timestamp.after.max.ms", "3600000")]).unwrap();
        let batch = |stamps: &[i64]| {
            let mut b = BatchBuilder::new(Compression::Snappy);
            for ts in stamps {
                b.append(*ts, None, Some(b"v"), &[]);
            }
            b.build()
        };
        let ten_hours = 10 * 3_600_000;
        let e = check(&batch(&[NOW, NOW + ten_hours, NOW]), &config).unwrap_err();
        assert_eq!(e.error_code(), 32, "{e}");
        assert!(
            e.to_string().contains("record 1 of the batch to t-0"),
            "{e}"
        );
        for negative in [-2, -1_000, i64::MIN] {
            let e = check(&batch(&[NOW, negative]), &config).unwrap_err();
            assert_eq!(e.error_code(), 32, "{negative}: {e}");
            assert!(e.to_string().contains("negative timestamp"), "{e}");
        }
        check(&batch(&[-1, NOW]), &config).expect("-1 is no timestamp");
        // A header whose max timestamp lies is corrected, as Kafka's broker does.
        let mut lying = batch(&[NOW, NOW + 5]);
        lying[35..43].copy_from_slice(&(NOW + ten_hours).to_be_bytes());
        let crc = record::compute_crc(&lying);
        lying[17..21].copy_from_slice(&crc.to_be_bytes());
        let h = record::validate(&lying).unwrap();
        let h = validate_batch(&tp(), &config, &mut lying, h, NOW, AppendOrigin::Client).unwrap();
        assert_eq!(h.max_timestamp, NOW + 5);
        assert_eq!(record::validate(&lying).unwrap().max_timestamp, NOW + 5);
        // LogAppendTime is the log's to set, not a producer's.
        let mut lat = batch(&[NOW]);
        record::set_log_append_time(&mut lat, NOW);
        assert_eq!(check(&lat, &config).unwrap_err().error_code(), 32);
    }

    fn decodes_whole(batch: &[u8]) {
        let bytes = bytes::Bytes::copy_from_slice(batch);
        let h = record::validate(&bytes).unwrap();
        let mut n = 0;
        for r in decode_records(&bytes, MAX_UNCOMPRESSED_BATCH).unwrap() {
            r.unwrap();
            n += 1;
        }
        assert_eq!(n, h.record_count);
    }

    proptest! {
        /// Whatever a client sends with a valid CRC, the validator refuses it or every record
        /// of it decodes: nothing accepted stalls a consumer.
        #[test]
        fn what_is_accepted_decodes(
            body in proptest::collection::vec(any::<u8>(), 0..300),
            count in 0i32..6,
            codec in 0usize..2,
        ) {
            let codec = [Compression::None, Compression::Gzip][codec];
            let body = if codec == Compression::Gzip { gzip(&body) } else { body };
            let batch = forge(codec, &body, count);
            if check(&batch, &TopicConfig::default()).is_ok() {
                decodes_whole(&batch);
            }
        }

        /// Valid batches with bytes of their records flipped (CRC recomputed): the same.
        #[test]
        fn flipped_records_are_refused_or_decode(
            flips in proptest::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..4),
            n in 1usize..5,
        ) {
            let values: Vec<String> = (0..n).map(|i| format!("value-{i}")).collect();
            let refs: Vec<&str> = values.iter().map(String::as_str).collect();
            let mut records = section(&refs);
            for (at, mask) in flips {
                let i = at.index(records.len());
                records[i] ^= mask;
            }
            let batch = forge(Compression::None, &records, n as i32);
            match check(&batch, &TopicConfig::default()) {
                Ok(_) => decodes_whole(&batch),
                Err(e) => prop_assert!(matches!(e.error_code(), 2 | 32 | 87), "{e}"),
            }
        }
    }
}
