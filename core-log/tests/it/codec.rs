//! The RecordBatch v2 codec against the `kafka-protocol` crate's: what one encodes the other
//! decodes, byte-exact where both are deterministic.

use bytes::{Bytes, BytesMut};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression as KCompression, Record as KRecord, RecordBatchDecoder, RecordBatchEncoder,
    RecordEncodeOptions, TimestampType as KTimestampType,
};
use proptest::prelude::*;
use sluice_log::Compression;
use sluice_log::record::{BatchBuilder, BatchHeader, Header, decode_records, validate};

#[derive(Debug, Clone)]
struct Rec {
    ts: i64,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: Vec<(String, Option<Vec<u8>>)>,
}

fn arb_bytes() -> impl Strategy<Value = Option<Vec<u8>>> {
    proptest::option::of(proptest::collection::vec(any::<u8>(), 0..300))
}

fn arb_rec() -> impl Strategy<Value = Rec> {
    (
        0i64..4_000_000_000_000,
        arb_bytes(),
        arb_bytes(),
        proptest::collection::btree_map("[a-z]{1,8}", arb_bytes(), 0..3),
    )
        .prop_map(|(ts, key, value, headers)| Rec {
            ts,
            key,
            value,
            headers: headers.into_iter().collect(),
        })
}

fn codec(i: usize) -> (Compression, KCompression) {
    [
        (Compression::None, KCompression::None),
        (Compression::Gzip, KCompression::Gzip),
        (Compression::Snappy, KCompression::Snappy),
        (Compression::Lz4, KCompression::Lz4),
        (Compression::Zstd, KCompression::Zstd),
    ][i]
}

fn build(recs: &[Rec], c: Compression) -> Vec<u8> {
    build_with(recs, c, |b| b)
}

fn build_with(
    recs: &[Rec],
    c: Compression,
    f: impl FnOnce(BatchBuilder) -> BatchBuilder,
) -> Vec<u8> {
    let mut b = f(BatchBuilder::new(c));
    for r in recs {
        let hs: Vec<Header> = r
            .headers
            .iter()
            .map(|(k, v)| Header {
                key: k.clone(),
                value: v.clone().map(Bytes::from),
            })
            .collect();
        b.append(r.ts, r.key.as_deref(), r.value.as_deref(), &hs);
    }
    b.build()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn kafka_protocol_decodes_our_batches(recs in proptest::collection::vec(arb_rec(), 1..20), c in 0usize..5, base in 0i64..1_000_000) {
        let (ours, theirs) = codec(c);
        let mut batch = build(&recs, ours);
        sluice_log::record::set_base_offset(&mut batch, base);
        let h = validate(&batch).unwrap();
        prop_assert_eq!(h.record_count as usize, recs.len());
        let mut buf = Bytes::from(batch);
        let set = RecordBatchDecoder::decode(&mut buf).unwrap();
        prop_assert_eq!(set.compression, theirs);
        prop_assert_eq!(set.records.len(), recs.len());
        for (i, (k, r)) in set.records.iter().zip(&recs).enumerate() {
            prop_assert_eq!(k.offset, base + i as i64);
            prop_assert_eq!(k.timestamp, r.ts);
            prop_assert_eq!(k.key.as_deref(), r.key.as_deref());
            prop_assert_eq!(k.value.as_deref(), r.value.as_deref());
            let hs: Vec<(String, Option<Vec<u8>>)> = k.headers.iter().map(|(k, v)| (k.to_string(), v.as_ref().map(|v| v.to_vec()))).collect();
            prop_assert_eq!(&hs, &r.headers);
        }
    }

    #[test]
    fn we_decode_kafka_protocol_batches(recs in proptest::collection::vec(arb_rec(), 1..20), c in 0usize..5, transactional in any::<bool>()) {
        let (ours, theirs) = codec(c);
        let krecs: Vec<KRecord> = recs.iter().enumerate().map(|(i, r)| KRecord {
            transactional,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 7,
            producer_id: 42,
            producer_epoch: 3,
            timestamp_type: KTimestampType::Creation,
            offset: 100 + i as i64,
            sequence: 9 + i as i32,
            timestamp: r.ts,
            key: r.key.clone().map(Bytes::from),
            value: r.value.clone().map(Bytes::from),
            headers: r.headers.iter().map(|(k, v)| (StrBytes::from_string(k.clone()), v.clone().map(Bytes::from))).collect::<IndexMap<_, _>>(),
        }).collect();
        let mut buf = BytesMut::new();
        RecordBatchEncoder::encode(&mut buf, &krecs, &RecordEncodeOptions { version: 2, compression: theirs }).unwrap();
        let bytes = buf.freeze();
        let h = BatchHeader::parse(&bytes).unwrap();
        prop_assert_eq!(h.compression().unwrap(), ours);
        prop_assert_eq!(h.producer_id, 42);
        prop_assert_eq!(h.base_sequence, 9);
        prop_assert_eq!(h.is_transactional(), transactional);
        prop_assert_eq!(h.base_offset, 100);
        let decoded: Vec<_> = decode_records(&bytes, 1 << 24).unwrap().collect::<Result<_, _>>().unwrap();
        prop_assert_eq!(decoded.len(), recs.len());
        for (i, (d, r)) in decoded.iter().zip(&recs).enumerate() {
            prop_assert_eq!(d.offset, 100 + i as i64);
            prop_assert_eq!(d.timestamp, r.ts);
            prop_assert_eq!(d.key.as_deref(), r.key.as_deref());
            prop_assert_eq!(d.value.as_deref(), r.value.as_deref());
            let hs: Vec<(String, Option<Vec<u8>>)> = d.headers.iter().map(|h| (h.key.clone(), h.value.as_ref().map(|v| v.to_vec()))).collect();
            prop_assert_eq!(&hs, &r.headers);
        }
    }

    #[test]
    fn uncompressed_batches_are_byte_identical(mut recs in proptest::collection::vec(arb_rec(), 1..20)) {
        // Both take the base timestamp from the first record when timestamps do not go back in
        // time (kafka-protocol takes the smallest, Kafka's Java client the first).
        recs.sort_by_key(|r| r.ts);
        let ours = build_with(&recs, Compression::None, |b| b.producer(42, 3, 0));
        let krecs: Vec<KRecord> = recs.iter().enumerate().map(|(i, r)| KRecord {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: 42,
            producer_epoch: 3,
            timestamp_type: KTimestampType::Creation,
            offset: i as i64,
            sequence: i as i32,
            timestamp: r.ts,
            key: r.key.clone().map(Bytes::from),
            value: r.value.clone().map(Bytes::from),
            headers: r.headers.iter().map(|(k, v)| (StrBytes::from_string(k.clone()), v.clone().map(Bytes::from))).collect::<IndexMap<_, _>>(),
        }).collect();
        let mut buf = BytesMut::new();
        RecordBatchEncoder::encode(&mut buf, &krecs, &RecordEncodeOptions { version: 2, compression: KCompression::None }).unwrap();
        prop_assert_eq!(&ours[..], &buf[..]);
    }

    #[test]
    fn corrupt_batches_are_errors_not_panics(recs in proptest::collection::vec(arb_rec(), 1..5), c in 0usize..5, flip in any::<prop::sample::Index>(), cut in any::<prop::sample::Index>()) {
        let batch = build(&recs, codec(c).0);
        let mut flipped = batch.clone();
        let i = flip.index(flipped.len());
        flipped[i] ^= 0x5a;
        if i >= 16 {
            prop_assert!(validate(&flipped).is_err(), "flip at {} not caught", i);
        }
        let flipped = Bytes::from(flipped);
        if let Ok(it) = decode_records(&flipped, 1 << 24) { for r in it { let _ = r; } }
        let cut = Bytes::copy_from_slice(&batch[..cut.index(batch.len())]);
        prop_assert!(validate(&cut).is_err());
        prop_assert!(decode_records(&cut, 1 << 24).is_err());
    }
}
