//! The record formats of `__consumer_offsets`, byte for byte as Kafka writes them, so Kafka's
//! tools (`kafka-console-consumer --formatter OffsetsMessageFormatter`) can read them.
//!
//! ```text
//! key   = version i16 | fields...          (0, 1: OffsetCommitKey; 2: GroupMetadataKey)
//! OffsetCommitKey v1      group string | topic string | partition i32
//! GroupMetadataKey v2     group string
//! OffsetCommitValue v3    version i16 = 3 | offset i64 | leader_epoch i32 | metadata string |
//!                         commit_timestamp i64
//! ```
//!
//! Strings are an i16 length then UTF-8 bytes, big-endian throughout. Values of versions 0 to 4
//! are read (v1 carries an expire timestamp, v4 is flexible: compact strings, tagged fields).

use sluice_protocol::codec::{Reader, put_string};

use crate::{Error, Result, TopicPartition};

/// Key version of offset commits that this store writes.
const OFFSET_COMMIT_KEY_VERSION: i16 = 1;
/// Key version of group metadata.
const GROUP_METADATA_KEY_VERSION: i16 = 2;
/// Value version of offset commits that this store writes.
const OFFSET_COMMIT_VALUE_VERSION: i16 = 3;

/// What a key of `__consumer_offsets` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OffsetsKey {
    /// A committed offset of a group for one partition.
    OffsetCommit {
        /// The group.
        group: String,
        /// The partition the offset is for.
        tp: TopicPartition,
    },
    /// A group's membership metadata.
    GroupMetadata {
        /// The group.
        group: String,
    },
}

/// A committed offset as `OffsetCommitValue` holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetCommitValue {
    /// The committed offset.
    pub offset: i64,
    /// -1 when unknown.
    pub leader_epoch: i32,
    /// The commit's metadata string.
    pub metadata: String,
    /// When the offset was committed, ms since the epoch.
    pub commit_timestamp: i64,
}

impl OffsetsKey {
    /// Encodes the key (OffsetCommitKey v1 or GroupMetadataKey v2).
    pub fn encode(&self) -> Vec<u8> {
        let mut buf = Vec::with_capacity(64);
        match self {
            OffsetsKey::OffsetCommit { group, tp } => {
                buf.extend_from_slice(&OFFSET_COMMIT_KEY_VERSION.to_be_bytes());
                put_string(&mut buf, group);
                put_string(&mut buf, &tp.topic);
                buf.extend_from_slice(&tp.partition.to_be_bytes());
            }
            OffsetsKey::GroupMetadata { group } => {
                buf.extend_from_slice(&GROUP_METADATA_KEY_VERSION.to_be_bytes());
                put_string(&mut buf, group);
            }
        }
        buf
    }

    /// Decodes a key; `Ok(None)` for key versions this store does not know (skipped on load).
    pub fn decode(bytes: &[u8]) -> Result<Option<Self>> {
        let mut r = Reader::new(bytes);
        let key = match r.i16()? {
            0 | 1 => {
                let group = r.string()?;
                let topic = r.string()?;
                let partition = r.i32()?;
                OffsetsKey::OffsetCommit {
                    group,
                    tp: TopicPartition::new(topic, partition),
                }
            }
            2 => OffsetsKey::GroupMetadata { group: r.string()? },
            _ => return Ok(None),
        };
        r.finish()?;
        Ok(Some(key))
    }
}

impl OffsetCommitValue {
    /// Encodes the value as OffsetCommitValue v3.
    pub fn encode(&self) -> Vec<u8> {
        let mut buf = Vec::with_capacity(32 + self.metadata.len());
        buf.extend_from_slice(&OFFSET_COMMIT_VALUE_VERSION.to_be_bytes());
        buf.extend_from_slice(&self.offset.to_be_bytes());
        buf.extend_from_slice(&self.leader_epoch.to_be_bytes());
        put_string(&mut buf, &self.metadata);
        buf.extend_from_slice(&self.commit_timestamp.to_be_bytes());
        buf
    }

    /// Decodes versions 0 to 4.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new(bytes);
        let version = r.i16()?;
        let value = match version {
            0..=2 => {
                let offset = r.i64()?;
                let metadata = r.string()?;
                let commit_timestamp = r.i64()?;
                if version == 1 {
                    let _expire_timestamp = r.i64()?;
                }
                OffsetCommitValue {
                    offset,
                    leader_epoch: -1,
                    metadata,
                    commit_timestamp,
                }
            }
            3 => OffsetCommitValue {
                offset: r.i64()?,
                leader_epoch: r.i32()?,
                metadata: r.string()?,
                commit_timestamp: r.i64()?,
            },
            4 => {
                let offset = r.i64()?;
                let leader_epoch = r.i32()?;
                let metadata = r.compact_string()?;
                let commit_timestamp = r.i64()?;
                r.skip_tagged_fields()?;
                OffsetCommitValue {
                    offset,
                    leader_epoch,
                    metadata,
                    commit_timestamp,
                }
            }
            v => {
                return Err(Error::CorruptRecord(format!(
                    "unknown OffsetCommitValue version {v}"
                )));
            }
        };
        Ok(value)
    }
}

/// Java's `String.hashCode` (over UTF-16 code units), which Kafka uses to place a group.
pub(crate) fn java_string_hashcode(s: &str) -> i32 {
    s.encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)))
}

/// Kafka's `partitionFor(groupId)`: `Utils.abs(groupId.hashCode) % partitions`
/// (`Utils.abs(Integer.MIN_VALUE)` is 0).
pub(crate) fn partition_for(group: &str, partitions: i32) -> i32 {
    let h = java_string_hashcode(group);
    let abs = if h == i32::MIN { 0 } else { h.abs() };
    abs % partitions.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_commit_key_matches_kafka_bytes() {
        let key = OffsetsKey::OffsetCommit {
            group: "g".into(),
            tp: TopicPartition::new("t", 2),
        };
        assert_eq!(
            key.encode(),
            [0, 1, 0, 1, b'g', 0, 1, b't', 0, 0, 0, 2].to_vec()
        );
        assert_eq!(OffsetsKey::decode(&key.encode()).unwrap(), Some(key));
        let gm = OffsetsKey::GroupMetadata { group: "g".into() };
        assert_eq!(gm.encode(), [0, 2, 0, 1, b'g'].to_vec());
        assert_eq!(OffsetsKey::decode(&gm.encode()).unwrap(), Some(gm));
        assert_eq!(OffsetsKey::decode(&[0, 9, 1]).unwrap(), None);
    }

    #[test]
    fn offset_commit_value_v3_roundtrips_and_old_versions_read() {
        let v = OffsetCommitValue {
            offset: 42,
            leader_epoch: 3,
            metadata: "m".into(),
            commit_timestamp: 1000,
        };
        let bytes = v.encode();
        assert_eq!(&bytes[..2], &[0, 3]);
        assert_eq!(bytes.len(), 2 + 8 + 4 + 3 + 8);
        assert_eq!(OffsetCommitValue::decode(&bytes).unwrap(), v);
        // v1: offset, metadata, commit timestamp, expire timestamp.
        let mut v1 = vec![0, 1];
        v1.extend_from_slice(&7i64.to_be_bytes());
        v1.extend_from_slice(&[0, 0]);
        v1.extend_from_slice(&5i64.to_be_bytes());
        v1.extend_from_slice(&9i64.to_be_bytes());
        let d = OffsetCommitValue::decode(&v1).unwrap();
        assert_eq!((d.offset, d.leader_epoch, d.commit_timestamp), (7, -1, 5));
        // v4: flexible.
        let mut v4 = vec![0, 4];
        v4.extend_from_slice(&8i64.to_be_bytes());
        v4.extend_from_slice(&2i32.to_be_bytes());
        v4.extend_from_slice(&[3, b'a', b'b']);
        v4.extend_from_slice(&6i64.to_be_bytes());
        v4.push(0);
        let d = OffsetCommitValue::decode(&v4).unwrap();
        assert_eq!((d.offset, d.metadata.as_str()), (8, "ab"));
    }

    #[test]
    fn truncated_input_is_an_error_not_a_panic() {
        let v = OffsetCommitValue {
            offset: 1,
            leader_epoch: -1,
            metadata: "meta".into(),
            commit_timestamp: 2,
        }
        .encode();
        for n in 0..v.len() {
            assert!(OffsetCommitValue::decode(&v[..n]).is_err());
        }
        assert!(OffsetsKey::decode(&[0, 1, 0, 5, b'a']).is_err());
    }

    #[test]
    fn partition_for_matches_java() {
        // "".hashCode() == 0, "a".hashCode() == 97, "group".hashCode() == 98629247.
        assert_eq!(java_string_hashcode(""), 0);
        assert_eq!(java_string_hashcode("a"), 97);
        assert_eq!(java_string_hashcode("group"), 98_629_247);
        assert_eq!(partition_for("group", 50), 98_629_247 % 50);
        // "polygenelubricants".hashCode() == Integer.MIN_VALUE.
        assert_eq!(java_string_hashcode("polygenelubricants"), i32::MIN);
        assert_eq!(partition_for("polygenelubricants", 50), 0);
        // Negative hash codes: "Aa-negative" style; abs is taken.
        let h = java_string_hashcode("zzzzzzzz");
        assert!(h < 0);
        assert_eq!(partition_for("zzzzzzzz", 50), h.abs() % 50);
    }
}
