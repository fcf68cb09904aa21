//! The consumer's embedded protocol: what JoinGroup metadata and SyncGroup assignments hold for
//! `protocol_type = "consumer"`, byte for byte as Kafka's `ConsumerProtocol`.
//!
//! ```text
//! Subscription  version i16 | topics [string] | user_data bytes (nullable)
//!               | v1+: owned_partitions [topic string, partitions [i32]] | v2+: generation i32
//!               | v3+: rack_id string (nullable)
//! Assignment    version i16 | assigned_partitions [topic string, partitions [i32]]
//!               | user_data bytes (nullable)
//! ```
//!
//! Arrays are an i32 count then the items; strings an i16 length; bytes an i32 length (-1 is
//! null). Later versions decode as their known prefix, as Kafka's decoder does.

use std::collections::BTreeMap;

use bytes::Bytes;

use crate::codec::Reader;
use crate::{Error, Result, TopicPartition};

/// `ConsumerProtocolSubscription`: a member's JoinGroup metadata.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Subscription {
    /// Subscribed topics.
    pub topics: Vec<String>,
    /// Assignor-specific data.
    pub user_data: Option<Bytes>,
    /// Partitions the member owns now (v1+; the cooperative protocol relies on them).
    pub owned_partitions: Vec<TopicPartition>,
    /// The generation the owned partitions are from (v2+), -1 if unknown.
    pub generation_id: i32,
    /// `client.rack` (v3+).
    pub rack_id: Option<String>,
}

impl Subscription {
    /// A subscription to `topics`, owning nothing.
    pub fn new(topics: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self {
            topics: topics.into_iter().map(Into::into).collect(),
            user_data: None,
            owned_partitions: Vec::new(),
            generation_id: -1,
            rack_id: None,
        }
    }

    /// Encodes in the lowest version holding every field set: v1, v2 with a generation (any
    /// but -1, "unknown", which is what v1 decodes as), v3 with a rack.
    pub fn encode(&self) -> Bytes {
        let version: i16 = if self.rack_id.is_some() {
            3
        } else if self.generation_id != -1 {
            2
        } else {
            1
        };
        let mut buf = Vec::with_capacity(64);
        buf.extend_from_slice(&version.to_be_bytes());
        put_i32(&mut buf, self.topics.len());
        for t in &self.topics {
            put_string(&mut buf, t);
        }
        put_nullable_bytes(&mut buf, self.user_data.as_deref());
        put_partitions(&mut buf, &self.owned_partitions);
        if version >= 2 {
            buf.extend_from_slice(&self.generation_id.to_be_bytes());
        }
        if version >= 3 {
            match &self.rack_id {
                Some(r) => put_string(&mut buf, r),
                None => buf.extend_from_slice(&(-1i16).to_be_bytes()),
            }
        }
        Bytes::from(buf)
    }

    /// Decodes any version.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new(bytes);
        let version = r.i16()?;
        if version < 0 {
            return Err(corrupt(format!("subscription version {version}")));
        }
        let n = count(&mut r)?;
        let mut topics = Vec::with_capacity(n.min(r.remaining()));
        for _ in 0..n {
            topics.push(r.string()?);
        }
        let user_data = r.nullable_bytes()?.map(Bytes::copy_from_slice);
        let owned_partitions = if version >= 1 {
            get_partitions(&mut r)?
        } else {
            Vec::new()
        };
        let generation_id = if version >= 2 { r.i32()? } else { -1 };
        let rack_id = if version >= 3 {
            r.nullable_string()?
        } else {
            None
        };
        Ok(Self {
            topics,
            user_data,
            owned_partitions,
            generation_id,
            rack_id,
        })
    }
}

/// `ConsumerProtocolAssignment`: what SyncGroup hands a member.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Assignment {
    /// Assigned partitions.
    pub partitions: Vec<TopicPartition>,
    /// Assignor-specific data.
    pub user_data: Option<Bytes>,
}

impl Assignment {
    /// An assignment of `partitions` without user data.
    pub fn new(partitions: Vec<TopicPartition>) -> Self {
        Self {
            partitions,
            user_data: None,
        }
    }

    /// Encodes as version 1.
    pub fn encode(&self) -> Bytes {
        let mut buf = Vec::with_capacity(64);
        buf.extend_from_slice(&1i16.to_be_bytes());
        put_partitions(&mut buf, &self.partitions);
        put_nullable_bytes(&mut buf, self.user_data.as_deref());
        Bytes::from(buf)
    }

    /// Decodes any version; empty bytes (a member the leader assigned nothing) decode as an
    /// empty assignment.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        if bytes.is_empty() {
            return Ok(Self::default());
        }
        let mut r = Reader::new(bytes);
        let version = r.i16()?;
        if version < 0 {
            return Err(corrupt(format!("assignment version {version}")));
        }
        let partitions = get_partitions(&mut r)?;
        let user_data = r.nullable_bytes()?.map(Bytes::copy_from_slice);
        Ok(Self {
            partitions,
            user_data,
        })
    }
}

fn corrupt(what: String) -> Error {
    Error::InvalidRequest(format!("malformed consumer protocol data: {what}"))
}

fn put_i32(buf: &mut Vec<u8>, n: usize) {
    buf.extend_from_slice(&(i32::try_from(n).unwrap_or(i32::MAX)).to_be_bytes());
}

fn put_string(buf: &mut Vec<u8>, s: &str) {
    let b = s.as_bytes();
    let len = b.len().min(i16::MAX as usize);
    buf.extend_from_slice(&(len as i16).to_be_bytes());
    buf.extend_from_slice(&b[..len]);
}

fn put_nullable_bytes(buf: &mut Vec<u8>, b: Option<&[u8]>) {
    match b {
        None => buf.extend_from_slice(&(-1i32).to_be_bytes()),
        Some(b) => {
            put_i32(buf, b.len());
            buf.extend_from_slice(b);
        }
    }
}

/// Partitions grouped by topic, topics in order of first appearance.
fn put_partitions(buf: &mut Vec<u8>, tps: &[TopicPartition]) {
    let mut order: Vec<&str> = Vec::new();
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for tp in tps {
        let e = by_topic.entry(&tp.topic).or_default();
        if e.is_empty() {
            order.push(&tp.topic);
        }
        e.push(tp.partition);
    }
    put_i32(buf, order.len());
    for t in order {
        put_string(buf, t);
        let ps = by_topic.get(t).map(Vec::as_slice).unwrap_or_default();
        put_i32(buf, ps.len());
        for p in ps {
            buf.extend_from_slice(&p.to_be_bytes());
        }
    }
}

fn count(r: &mut Reader<'_>) -> Result<usize> {
    let n = r.i32()?;
    usize::try_from(n).map_err(|_| corrupt(format!("array length {n}")))
}

fn get_partitions(r: &mut Reader<'_>) -> Result<Vec<TopicPartition>> {
    let topics = count(r)?;
    let mut out = Vec::new();
    for _ in 0..topics {
        let topic: std::sync::Arc<str> = r.string()?.into();
        let n = count(r)?;
        if n > r.remaining() / 4 {
            return Err(corrupt(format!(
                "{n} partitions in {} bytes",
                r.remaining()
            )));
        }
        out.reserve(n);
        for _ in 0..n {
            out.push(TopicPartition::new(topic.clone(), r.i32()?));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn arb_tps() -> impl Strategy<Value = Vec<TopicPartition>> {
        // Grouped by topic, as the encoding groups them.
        prop::collection::btree_map("[a-z]{1,8}", prop::collection::vec(0i32..1000, 0..5), 0..4)
            .prop_map(|m| {
                m.into_iter()
                    .flat_map(|(t, ps)| {
                        let t: std::sync::Arc<str> = t.into();
                        ps.into_iter()
                            .map(move |p| TopicPartition::new(t.clone(), p))
                    })
                    .collect()
            })
    }

    fn arb_subscription() -> impl Strategy<Value = Subscription> {
        (
            prop::collection::vec("[a-z._-]{1,20}", 0..5),
            prop::option::of(prop::collection::vec(any::<u8>(), 0..16)),
            arb_tps(),
            -1i32..100,
            prop::option::of("[a-z0-9]{0,6}"),
        )
            .prop_map(
                |(topics, user_data, owned_partitions, generation_id, rack_id)| Subscription {
                    topics,
                    user_data: user_data.map(Bytes::from),
                    owned_partitions,
                    generation_id,
                    rack_id,
                },
            )
    }

    proptest! {
        #[test]
        fn subscription_roundtrips(s in arb_subscription()) {
            prop_assert_eq!(Subscription::decode(&s.encode()).unwrap(), s);
        }

        #[test]
        fn assignment_roundtrips(
            partitions in arb_tps(),
            user_data in prop::option::of(prop::collection::vec(any::<u8>(), 0..16)),
        ) {
            let a = Assignment { partitions, user_data: user_data.map(Bytes::from) };
            prop_assert_eq!(Assignment::decode(&a.encode()).unwrap(), a);
        }

        #[test]
        fn decoders_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
            let _ = Subscription::decode(&bytes);
            let _ = Assignment::decode(&bytes);
        }
    }

    #[test]
    fn subscription_v1_bytes_match_kafka() {
        let s = Subscription {
            owned_partitions: vec![TopicPartition::new("t", 0), TopicPartition::new("t", 2)],
            ..Subscription::new(["t"])
        };
        let mut expect = vec![0, 1, 0, 0, 0, 1, 0, 1, b't', 0xff, 0xff, 0xff, 0xff];
        expect.extend_from_slice(&[0, 0, 0, 1, 0, 1, b't', 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 2]);
        assert_eq!(&s.encode()[..], &expect[..]);
        // Version 0 (no owned partitions) still decodes.
        let v0 = [0, 0, 0, 0, 0, 1, 0, 1, b't', 0xff, 0xff, 0xff, 0xff];
        assert_eq!(Subscription::decode(&v0).unwrap(), Subscription::new(["t"]));
    }

    #[test]
    fn a_negative_generation_other_than_unknown_survives_a_round_trip() {
        // Found by fuzz/consumer_protocol: a v2 subscription with generation -1044266559 was
        // written as v1, which has no generation, and read back as -1.
        for generation_id in [-2, i32::MIN] {
            let s = Subscription {
                generation_id,
                ..Subscription::new(["t"])
            };
            assert_eq!(Subscription::decode(&s.encode()).unwrap(), s);
        }
    }
}
