//! Incremental fetch sessions (KIP-227): a client that fetches the same partitions over and
//! over names them once; later requests carry only changes, and responses only partitions with
//! something new (records, or a moved high watermark, last stable offset or log start).
//!
//! Fetch v13+ names topics by id (KIP-516): a session opened by such a request keys its
//! partitions by (topic id, partition), as Kafka's do, and a request that mixes the two ways
//! with the session it continues is refused with FETCH_SESSION_TOPIC_ID_ERROR.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI32, Ordering};

use kafka_protocol::messages::TopicName;
use kafka_protocol::protocol::StrBytes;
use parking_lot::Mutex;
use sluice_log::TopicPartition;
use uuid::Uuid;

use crate::handlers::codes::{
    FETCH_SESSION_ID_NOT_FOUND, FETCH_SESSION_TOPIC_ID_ERROR, INVALID_FETCH_SESSION_EPOCH,
};

/// How a request names a partition: by topic name (Fetch v4-12) or by topic id (v13+).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum PartitionKey {
    /// A topic name and partition.
    Name(TopicPartition),
    /// A topic id and partition; the name is looked up at each read, so a topic deleted (and
    /// perhaps created again under the same name, with a new id) answers UNKNOWN_TOPIC_ID.
    Id(Uuid, i32),
}

impl PartitionKey {
    /// The partition index.
    pub(crate) fn partition(&self) -> i32 {
        match self {
            PartitionKey::Name(tp) => tp.partition,
            PartitionKey::Id(_, p) => *p,
        }
    }

    /// The topic as a response names it: (name, id); the id is nil for names.
    pub(crate) fn topic(&self) -> (TopicName, Uuid) {
        match self {
            PartitionKey::Name(tp) => (
                TopicName(StrBytes::from_string(tp.topic.to_string())),
                Uuid::nil(),
            ),
            PartitionKey::Id(id, _) => (TopicName::default(), *id),
        }
    }
}

/// Kafka's `max.incremental.fetch.session.cache.slots`.
const MAX_SESSIONS: usize = 1000;

/// One partition of a session: what the client asks for, and what it was last told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SessionPartition {
    pub(crate) key: PartitionKey,
    pub(crate) fetch_offset: i64,
    pub(crate) max_bytes: i32,
    /// (high watermark, last stable offset, log start offset) last sent; None before any.
    pub(crate) last_sent: Option<(i64, i64, i64)>,
}

#[derive(Debug)]
struct Session {
    /// The epoch the next request must carry.
    next_epoch: i32,
    /// Whether the session's partitions are keyed by topic id (opened by Fetch v13+).
    topic_ids: bool,
    /// In the client's order.
    partitions: Vec<SessionPartition>,
    last_used: u64,
}

/// The broker's sessions.
#[derive(Debug)]
pub(crate) struct FetchSessions {
    sessions: Mutex<HashMap<i32, Session>>,
    next_id: AtomicI32,
    clock: std::sync::atomic::AtomicU64,
}

impl Default for FetchSessions {
    fn default() -> Self {
        // Ids differ across restarts (a client holding an old id gets NOT_FOUND, not someone
        // else's session): start from the time.
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(1);
        Self {
            sessions: Mutex::new(HashMap::new()),
            next_id: AtomicI32::new(i32::try_from(seed % 1_000_000_000).unwrap_or(1).max(1)),
            clock: std::sync::atomic::AtomicU64::new(0),
        }
    }
}

/// How a request relates to sessions, after resolving it.
#[derive(Debug)]
pub(crate) enum Resolved {
    /// A full fetch: answer every partition. `session_id` is 0 (sessionless) or a new session.
    Full {
        session_id: i32,
        partitions: Vec<SessionPartition>,
    },
    /// An incremental fetch of `session_id`: answer partitions with news.
    Incremental {
        session_id: i32,
        partitions: Vec<SessionPartition>,
    },
    /// The request's session is unknown or out of step: answer the error, no partitions.
    Error(i16),
}

/// A full fetch outside any session (requests before v7, and session id 0 with epoch -1).
pub(crate) fn sessionless(requested: Vec<(PartitionKey, i64, i32)>) -> Resolved {
    Resolved::Full {
        session_id: 0,
        partitions: fresh(requested),
    }
}

/// Session partitions of the request's (partition, offset, max bytes), never sent anything.
fn fresh(requested: Vec<(PartitionKey, i64, i32)>) -> Vec<SessionPartition> {
    requested
        .into_iter()
        .map(|(key, fetch_offset, max_bytes)| SessionPartition {
            key,
            fetch_offset,
            max_bytes,
            last_sent: None,
        })
        .collect()
}

impl FetchSessions {
    /// Applies a request's session fields. `requested` are the request's partitions with their
    /// offsets and limits; `forgotten` the ones to drop from an incremental session;
    /// `topic_ids` whether the request names topics by id (Fetch v13+).
    pub(crate) fn resolve(
        &self,
        session_id: i32,
        epoch: i32,
        topic_ids: bool,
        requested: Vec<(PartitionKey, i64, i32)>,
        forgotten: Vec<PartitionKey>,
    ) -> Resolved {
        let now = self.clock.fetch_add(1, Ordering::Relaxed);
        let mut sessions = self.sessions.lock();
        match (session_id, epoch) {
            // Sessionless full fetch (every pre-KIP-227 client, and librdkafka).
            (0, -1) => sessionless(requested),
            // A full fetch opening a new session.
            (0, 0) => {
                let partitions = fresh(requested);
                if sessions.len() >= MAX_SESSIONS
                    && let Some(oldest) = sessions
                        .iter()
                        .min_by_key(|(_, s)| s.last_used)
                        .map(|(id, _)| *id)
                {
                    sessions.remove(&oldest);
                }
                let id = self.new_id(&sessions);
                sessions.insert(
                    id,
                    Session {
                        next_epoch: 1,
                        topic_ids,
                        partitions: partitions.clone(),
                        last_used: now,
                    },
                );
                Resolved::Full {
                    session_id: id,
                    partitions,
                }
            }
            (0, _) => Resolved::Error(INVALID_FETCH_SESSION_EPOCH),
            // Closing a session with a full, sessionless fetch.
            (id, -1) => {
                sessions.remove(&id);
                sessionless(requested)
            }
            // A full fetch renewing an existing session (epoch 0 with an id): Kafka closes the
            // old one and opens a new one.
            (id, 0) => {
                sessions.remove(&id);
                drop(sessions);
                self.resolve(0, 0, topic_ids, requested, forgotten)
            }
            (id, epoch) => {
                let Some(s) = sessions.get_mut(&id) else {
                    return Resolved::Error(FETCH_SESSION_ID_NOT_FOUND);
                };
                if s.next_epoch != epoch {
                    return Resolved::Error(INVALID_FETCH_SESSION_EPOCH);
                }
                // Kafka's FETCH_SESSION_TOPIC_ID_ERROR: a session opened with names continued
                // with ids, or the other way round.
                if s.topic_ids != topic_ids {
                    return Resolved::Error(FETCH_SESSION_TOPIC_ID_ERROR);
                }
                s.next_epoch = if epoch == i32::MAX { 1 } else { epoch + 1 };
                s.last_used = now;
                s.partitions.retain(|p| !forgotten.contains(&p.key));
                for (key, fetch_offset, max_bytes) in requested {
                    match s.partitions.iter_mut().find(|p| p.key == key) {
                        Some(p) => {
                            p.fetch_offset = fetch_offset;
                            p.max_bytes = max_bytes;
                        }
                        None => s.partitions.push(SessionPartition {
                            key,
                            fetch_offset,
                            max_bytes,
                            last_sent: None,
                        }),
                    }
                }
                Resolved::Incremental {
                    session_id: id,
                    partitions: s.partitions.clone(),
                }
            }
        }
    }

    /// Records what was sent for a session's partitions, so the next incremental response
    /// leaves out what has not changed. Offsets advance only by the client's next request.
    pub(crate) fn sent(&self, session_id: i32, sent: &[(PartitionKey, (i64, i64, i64))]) {
        if session_id == 0 {
            return;
        }
        let mut sessions = self.sessions.lock();
        if let Some(s) = sessions.get_mut(&session_id) {
            for (key, marks) in sent {
                if let Some(p) = s.partitions.iter_mut().find(|p| &p.key == key) {
                    p.last_sent = Some(*marks);
                }
            }
        }
    }

    fn new_id(&self, sessions: &HashMap<i32, Session>) -> i32 {
        loop {
            let id = self.next_id.fetch_add(1, Ordering::Relaxed);
            if id <= 0 {
                self.next_id.store(1, Ordering::Relaxed);
                continue;
            }
            if !sessions.contains_key(&id) {
                return id;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp(p: i32) -> PartitionKey {
        PartitionKey::Name(TopicPartition::new("t", p))
    }

    #[test]
    fn a_session_tracks_partitions_and_epochs() {
        let s = FetchSessions::default();
        let Resolved::Full {
            session_id,
            partitions,
        } = s.resolve(0, 0, false, vec![(tp(0), 5, 100), (tp(1), 0, 100)], vec![])
        else {
            panic!("full");
        };
        assert!(session_id > 0);
        assert_eq!(partitions.len(), 2);
        // Epoch 1: forget partition 0, move partition 1, add partition 2.
        let Resolved::Incremental { partitions, .. } = s.resolve(
            session_id,
            1,
            false,
            vec![(tp(1), 7, 100), (tp(2), 0, 50)],
            vec![tp(0)],
        ) else {
            panic!("incremental");
        };
        let got: Vec<(i32, i64)> = partitions
            .iter()
            .map(|p| (p.key.partition(), p.fetch_offset))
            .collect();
        assert_eq!(got, vec![(1, 7), (2, 0)]);
        // A replayed epoch and an unknown id are errors.
        assert!(matches!(
            s.resolve(session_id, 1, false, vec![], vec![]),
            Resolved::Error(INVALID_FETCH_SESSION_EPOCH)
        ));
        assert!(matches!(
            s.resolve(session_id + 1, 1, false, vec![], vec![]),
            Resolved::Error(FETCH_SESSION_ID_NOT_FOUND)
        ));
        // Closing it: the id is gone.
        assert!(matches!(
            s.resolve(session_id, -1, false, vec![], vec![]),
            Resolved::Full { session_id: 0, .. }
        ));
        assert!(matches!(
            s.resolve(session_id, 2, false, vec![], vec![]),
            Resolved::Error(FETCH_SESSION_ID_NOT_FOUND)
        ));
    }

    #[test]
    fn a_session_keyed_by_topic_ids_stays_so() {
        let s = FetchSessions::default();
        let id = Uuid::from_u128(7);
        let Resolved::Full { session_id, .. } =
            s.resolve(0, 0, true, vec![(PartitionKey::Id(id, 0), 0, 100)], vec![])
        else {
            panic!("full");
        };
        // Continued by name: refused, and the epoch is not used up.
        assert!(matches!(
            s.resolve(session_id, 1, false, vec![(tp(0), 0, 100)], vec![]),
            Resolved::Error(FETCH_SESSION_TOPIC_ID_ERROR)
        ));
        // By id: the partition is updated in place, another one is added, then forgotten.
        let Resolved::Incremental { partitions, .. } = s.resolve(
            session_id,
            1,
            true,
            vec![
                (PartitionKey::Id(id, 0), 5, 100),
                (PartitionKey::Id(id, 1), 0, 100),
            ],
            vec![],
        ) else {
            panic!("incremental");
        };
        assert_eq!(partitions.len(), 2);
        assert_eq!(partitions[0].fetch_offset, 5);
        let Resolved::Incremental { partitions, .. } =
            s.resolve(session_id, 2, true, vec![], vec![PartitionKey::Id(id, 0)])
        else {
            panic!("incremental");
        };
        assert_eq!(
            partitions.iter().map(|p| p.key.clone()).collect::<Vec<_>>(),
            vec![PartitionKey::Id(id, 1)]
        );
    }

    #[test]
    fn the_cache_is_bounded() {
        let s = FetchSessions::default();
        for _ in 0..MAX_SESSIONS + 10 {
            let _ = s.resolve(0, 0, false, vec![(tp(0), 0, 1)], vec![]);
        }
        assert_eq!(s.sessions.lock().len(), MAX_SESSIONS);
    }
}
