//! The seed corpus of the fuzz targets (`fuzz/corpus/<target>/`) that take this crate's
//! formats: written by the encoders here, so the seeds follow the formats. With
//! `SLUICE_WRITE_FUZZ_SEEDS=1` the test (re)writes the files; without it, it checks that the
//! committed files are exactly what the encoders write now, and that each seed decodes.

use std::collections::BTreeSet;
use std::path::PathBuf;

use bytes::Bytes;
use sluice_log::group::schema::{OffsetCommitValue, OffsetsKey};
use sluice_log::group::{Assignment, Subscription};
use sluice_log::record::{BatchBuilder, Header, decode_records};
use sluice_log::txn::{
    TransactionMetadata, TransactionState, decode_key, decode_value, encode_key, encode_value,
};
use sluice_log::{Compression, TopicPartition};

/// Writes (`SLUICE_WRITE_FUZZ_SEEDS` set) or checks the seeds of one target.
pub(crate) fn seeds(target: &str, seeds: &[(&str, Vec<u8>)]) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    if std::env::var_os("SLUICE_WRITE_FUZZ_SEEDS").is_some() {
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for (name, bytes) in seeds {
            std::fs::write(dir.join(name), bytes).unwrap();
        }
        return;
    }
    let committed: BTreeSet<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e} (SLUICE_WRITE_FUZZ_SEEDS=1 writes it)",
                dir.display()
            )
        })
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let written: BTreeSet<String> = seeds.iter().map(|(n, _)| (*n).to_owned()).collect();
    assert_eq!(committed, written, "{}: seed files", dir.display());
    for (name, bytes) in seeds {
        let on_disk = std::fs::read(dir.join(name)).unwrap();
        assert!(
            on_disk == *bytes,
            "{}/{name} is not what the encoder writes now (SLUICE_WRITE_FUZZ_SEEDS=1 rewrites it)",
            dir.display()
        );
    }
}

fn batch(compression: Compression, transactional: bool, headers: &[Header]) -> Vec<u8> {
    let mut b = BatchBuilder::new(compression).producer(1000, 2, 5);
    if transactional {
        b = b.transactional();
    }
    b.append(1_700_000_000_000, Some(b"key"), Some(b"value"), headers);
    b.append(1_700_000_000_007, None, Some(b"second"), &[]);
    b.append(1_700_000_000_003, Some(b"k"), None, &[]);
    b.build()
}

#[test]
fn decode_batch_seeds() {
    let header = [
        Header::new("trace", "abc"),
        Header {
            key: "null".into(),
            value: None,
        },
    ];
    let mut control = BatchBuilder::new(Compression::None)
        .producer(1000, 2, -1)
        .transactional()
        .control();
    control.append(
        1_700_000_000_000,
        Some(&[0, 0, 0, 1]),
        Some(&[0, 0, 0, 0, 0, 3]),
        &[],
    );
    let s = [
        ("none", batch(Compression::None, false, &header)),
        ("gzip", batch(Compression::Gzip, false, &[])),
        ("snappy", batch(Compression::Snappy, false, &[])),
        ("lz4", batch(Compression::Lz4, false, &[])),
        ("zstd", batch(Compression::Zstd, true, &header)),
        ("control", control.build()),
    ];
    for (name, b) in &s {
        let records = decode_records(&Bytes::from(b.clone()), 1 << 20).unwrap();
        assert_eq!(
            records.filter(Result::is_ok).count(),
            if *name == "control" { 1 } else { 3 }
        );
    }
    seeds("decode_batch", &s);
}

#[test]
fn consumer_protocol_seeds() {
    let owned = vec![
        TopicPartition::new("orders", 0),
        TopicPartition::new("orders", 2),
    ];
    let v1 = Subscription {
        owned_partitions: owned.clone(),
        user_data: Some(Bytes::from_static(b"u")),
        ..Subscription::new(["orders", "payments"])
    };
    let v2 = Subscription {
        generation_id: 4,
        ..v1.clone()
    };
    let v3 = Subscription {
        rack_id: Some("rack-a".into()),
        ..v2.clone()
    };
    let assignment = Assignment {
        partitions: owned,
        user_data: None,
    };
    let s: Vec<(&str, Vec<u8>)> = vec![
        ("subscription-v1", v1.encode().to_vec()),
        ("subscription-v2", v2.encode().to_vec()),
        ("subscription-v3", v3.encode().to_vec()),
        ("assignment", assignment.encode().to_vec()),
    ];
    for (_, b) in &s[..3] {
        Subscription::decode(b).unwrap();
    }
    Assignment::decode(&s[3].1).unwrap();
    seeds("consumer_protocol", &s);
}

#[test]
fn consumer_offsets_seeds() {
    let commit_key = OffsetsKey::OffsetCommit {
        group: "billing".into(),
        tp: TopicPartition::new("orders", 1),
    };
    let group_key = OffsetsKey::GroupMetadata {
        group: "billing".into(),
    };
    let value = OffsetCommitValue {
        offset: 42,
        leader_epoch: 3,
        metadata: "m".into(),
        commit_timestamp: 1_700_000_000_000,
    };
    // v4 (flexible), as Kafka 4 writes it: compact metadata string and tagged fields.
    let mut v4 = vec![0, 4];
    v4.extend_from_slice(&42i64.to_be_bytes());
    v4.extend_from_slice(&3i32.to_be_bytes());
    v4.extend_from_slice(&[2, b'm']);
    v4.extend_from_slice(&1_700_000_000_000i64.to_be_bytes());
    v4.push(0);
    let s = [
        ("offset-commit-key", commit_key.encode()),
        ("group-metadata-key", group_key.encode()),
        ("offset-commit-value-v3", value.encode()),
        ("offset-commit-value-v4", v4),
    ];
    assert_eq!(OffsetsKey::decode(&s[0].1).unwrap(), Some(commit_key));
    assert_eq!(OffsetsKey::decode(&s[1].1).unwrap(), Some(group_key));
    assert_eq!(OffsetCommitValue::decode(&s[2].1).unwrap(), value);
    assert_eq!(OffsetCommitValue::decode(&s[3].1).unwrap(), value);
    seeds("consumer_offsets", &s);
}

#[test]
fn transaction_state_seeds() {
    let m = TransactionMetadata {
        producer_id: 1000,
        producer_epoch: 2,
        timeout_ms: 60_000,
        state: TransactionState::Ongoing,
        partitions: [
            TopicPartition::new("orders", 0),
            TopicPartition::new("orders", 1),
            TopicPartition::new("payments", 0),
        ]
        .into_iter()
        .collect(),
        last_update_ms: 1_700_000_000_000,
        start_ms: 1_699_999_999_000,
    };
    let s = [("key", encode_key("txn-1")), ("value", encode_value(&m))];
    assert_eq!(decode_key(&s[0].1).unwrap(), "txn-1");
    assert_eq!(decode_value(&s[1].1).unwrap(), m);
    seeds("transaction_state", &s);
}
