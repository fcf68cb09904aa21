//! OffsetCommit: a member (at its generation) or a client outside group management
//! (generation -1, accepted while the group has no members) commits offsets to
//! `__consumer_offsets`. The checks and the append happen when the handler is called; the
//! answer waits for the fsync.
//!
//! Errors are per partition, as Kafka puts them: UNKNOWN_TOPIC_OR_PARTITION for a partition
//! that does not exist, OFFSET_METADATA_TOO_LARGE for metadata over
//! `offset.metadata.max.bytes` (the others are still committed), and the group's error
//! (ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID, REBALANCE_IN_PROGRESS, FENCED_INSTANCE_ID, ...) on
//! every partition that exists.
//!
//! Versions: v2-4 carry a retention time (ignored: offsets of an empty group expire after
//! `offsets.retention.minutes`, as Kafka does from v5 on), v6 the leader epoch, v7
//! `group.instance.id`.

use std::sync::Arc;

use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse, ResponseKind};
use kafka_protocol::protocol::StrBytes;
use sluice_log::group::{self, OffsetAndMetadata};
use sluice_log::{Error, TopicPartition};

use super::{Reply, RequestContext, offsets_write_error, start};
use crate::handlers::codes::{OFFSET_METADATA_TOO_LARGE, UNKNOWN_TOPIC_OR_PARTITION};
use crate::state::BrokerState;

/// A partition's fate, known now or decided by the commit.
#[derive(Clone, Copy)]
enum Outcome {
    /// Committed with the others: the commit's error, or none.
    Committed,
    /// Metadata too large: not committed, but a group error still takes precedence.
    TooLarge,
    /// Not a partition at all.
    Unknown,
}

pub(crate) fn handle(state: &BrokerState, ctx: &RequestContext, req: OffsetCommitRequest) -> Reply {
    let version = ctx.api_version;
    let max_metadata = state.groups.offsets().config().metadata_max_bytes;
    let mut offsets = Vec::new();
    let mut shape: Vec<(kafka_protocol::messages::TopicName, Vec<(i32, Outcome)>)> =
        Vec::with_capacity(req.topics.len());
    for t in req.topics {
        let count = state.log.partition_count(&t.name).ok();
        let mut partitions = Vec::with_capacity(t.partitions.len());
        for p in t.partitions {
            let exists = count.is_some_and(|n| (0..n).contains(&p.partition_index));
            let metadata = p.committed_metadata.as_ref().map(StrBytes::to_string);
            let outcome = if !exists {
                Outcome::Unknown
            } else if metadata.as_deref().map_or(0, str::len) > max_metadata {
                Outcome::TooLarge
            } else {
                offsets.push((
                    TopicPartition::new(t.name.as_str(), p.partition_index),
                    OffsetAndMetadata {
                        offset: p.committed_offset,
                        leader_epoch: (version >= 6 && p.committed_leader_epoch >= 0)
                            .then_some(p.committed_leader_epoch),
                        metadata,
                    },
                ));
                Outcome::Committed
            };
            partitions.push((p.partition_index, outcome));
        }
        shape.push((t.name, partitions));
    }
    let commit = group::OffsetCommitRequest {
        group_id: req.group_id.to_string(),
        generation_id: req.generation_id_or_member_epoch,
        member_id: req.member_id.to_string(),
        group_instance_id: req.group_instance_id.as_ref().map(StrBytes::to_string),
        offsets,
    };
    let groups = Arc::clone(&state.groups);
    start(async move { groups.commit_offsets(commit).await }).reply(move |result| {
        let (group_error, write_error) = match &result {
            Ok(()) => (None, None),
            Err(e) if is_group_error(e) => (Some(e.error_code()), None),
            Err(e) => (None, Some(offsets_write_error(e))),
        };
        if let Err(e) = &result {
            tracing::debug!(error = %sluice_log::report(e), "offset commit refused");
        }
        let topics = shape
            .into_iter()
            .map(|(name, partitions)| {
                let partitions = partitions
                    .into_iter()
                    .map(|(index, outcome)| {
                        let code = match outcome {
                            Outcome::Unknown => UNKNOWN_TOPIC_OR_PARTITION,
                            Outcome::TooLarge => group_error.unwrap_or(OFFSET_METADATA_TOO_LARGE),
                            Outcome::Committed => group_error.or(write_error).unwrap_or(0),
                        };
                        OffsetCommitResponsePartition::default()
                            .with_partition_index(index)
                            .with_error_code(code)
                    })
                    .collect();
                OffsetCommitResponseTopic::default()
                    .with_name(name)
                    .with_partitions(partitions)
            })
            .collect();
        ResponseKind::OffsetCommit(OffsetCommitResponse::default().with_topics(topics))
    })
}

/// Errors of the group checks, which Kafka gives every partition (as against errors of the
/// write, which only the partitions written get).
fn is_group_error(e: &Error) -> bool {
    matches!(
        e,
        Error::InvalidGroupId(_)
            | Error::IllegalGeneration { .. }
            | Error::UnknownMemberId { .. }
            | Error::RebalanceInProgress { .. }
            | Error::FencedInstanceId { .. }
            | Error::CoordinatorNotAvailable(_)
    )
}

#[cfg(test)]
pub(crate) mod tests {
    use bytes::Bytes;
    use kafka_protocol::messages::offset_commit_request::{
        OffsetCommitRequestPartition, OffsetCommitRequestTopic,
    };
    use kafka_protocol::messages::{GroupId, TopicName};

    use super::*;
    use crate::handlers::codes::{ILLEGAL_GENERATION, REBALANCE_IN_PROGRESS, UNKNOWN_MEMBER_ID};
    use crate::handlers::join_group::tests::{join, join_request};
    use crate::handlers::sb;
    use crate::handlers::sync_group::tests::sync;
    use crate::handlers::test_util::{ctx, encodes, response, test_state};

    /// A commit of `(topic, partition, offset, metadata)`.
    pub(crate) fn commit_request(
        group: &str,
        generation: i32,
        member: &str,
        offsets: &[(&str, i32, i64, &str)],
    ) -> OffsetCommitRequest {
        let mut topics: Vec<OffsetCommitRequestTopic> = Vec::new();
        for &(topic, partition, offset, metadata) in offsets {
            let p = OffsetCommitRequestPartition::default()
                .with_partition_index(partition)
                .with_committed_offset(offset)
                .with_committed_metadata(Some(sb(metadata)));
            match topics.iter_mut().find(|t| t.name.as_str() == topic) {
                Some(t) => t.partitions.push(p),
                None => topics.push(
                    OffsetCommitRequestTopic::default()
                        .with_name(TopicName(sb(topic)))
                        .with_partitions(vec![p]),
                ),
            }
        }
        OffsetCommitRequest::default()
            .with_group_id(GroupId(sb(group)))
            .with_generation_id_or_member_epoch(generation)
            .with_member_id(sb(member))
            .with_topics(topics)
    }

    pub(crate) async fn commit(
        state: &BrokerState,
        version: i16,
        req: OffsetCommitRequest,
    ) -> Vec<(String, i32, i16)> {
        let ResponseKind::OffsetCommit(r) = response(handle(state, &ctx(version), req)).await
        else {
            panic!("not an OffsetCommit response");
        };
        encodes(&r, version);
        r.topics
            .iter()
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .map(|p| (t.name.to_string(), p.partition_index, p.error_code))
            })
            .collect()
    }

    fn codes(errors: &[(String, i32, i16)]) -> Vec<i16> {
        errors.iter().map(|e| e.2).collect()
    }

    #[tokio::test]
    async fn a_simple_commit_and_per_partition_errors() {
        let t = test_state();
        t.log
            .create_topic("t", 2, std::iter::empty::<(&str, &str)>())
            .unwrap();
        let long = "m".repeat(5000);
        let got = commit(
            &t,
            9,
            commit_request(
                "simple",
                -1,
                "",
                &[
                    ("t", 0, 5, "meta"),
                    ("t", 1, 7, &long),
                    ("t", 2, 1, ""),
                    ("none", 0, 1, ""),
                ],
            ),
        )
        .await;
        assert_eq!(
            got,
            vec![
                ("t".to_owned(), 0, 0),
                ("t".to_owned(), 1, OFFSET_METADATA_TOO_LARGE),
                ("t".to_owned(), 2, UNKNOWN_TOPIC_OR_PARTITION),
                ("none".to_owned(), 0, UNKNOWN_TOPIC_OR_PARTITION),
            ]
        );
        let committed = t.groups.fetch_offsets("simple", None);
        assert_eq!(committed.len(), 1);
        let (tp, o) = &committed[0];
        assert_eq!(tp, &TopicPartition::new("t", 0));
        let o = o.as_ref().expect("committed");
        assert_eq!((o.offset, o.metadata.as_str()), (5, "meta"));
    }

    #[tokio::test]
    async fn the_empty_group_id_commits_as_kafka_lets_old_clients() {
        let t = test_state();
        t.log
            .create_topic("t", 1, std::iter::empty::<(&str, &str)>())
            .unwrap();
        let got = commit(&t, 9, commit_request("", -1, "", &[("t", 0, 4, "")])).await;
        assert_eq!(got, vec![("t".to_owned(), 0, 0)]);
        let committed = t.groups.fetch_offsets("", None);
        assert_eq!(committed.len(), 1);
        assert_eq!(committed[0].1.as_ref().map(|o| o.offset), Some(4));
    }

    #[tokio::test]
    async fn a_member_commits_at_its_generation_only() {
        let t = test_state();
        t.log
            .create_topic("t", 1, std::iter::empty::<(&str, &str)>())
            .unwrap();
        let r = join(&t, 3, join_request("g", "", &["t"])).await;
        let (id, generation) = (r.member_id.to_string(), r.generation_id);
        // Joined but not synced: the group is completing its rebalance.
        let got = commit(
            &t,
            8,
            commit_request("g", generation, &id, &[("t", 0, 1, "")]),
        )
        .await;
        assert_eq!(codes(&got), vec![REBALANCE_IN_PROGRESS]);
        let s = sync(
            &t,
            3,
            "g",
            generation,
            &id,
            vec![(id.clone(), Bytes::new())],
        )
        .await;
        assert_eq!(s.error_code, 0);
        let long = "m".repeat(5000);
        let req = commit_request("g", generation, &id, &[("t", 0, 3, ""), ("t", 0, 4, &long)]);
        assert_eq!(
            codes(&commit(&t, 8, req).await),
            vec![0, OFFSET_METADATA_TOO_LARGE]
        );
        // A stale generation, an unknown member and a commit from outside the group are
        // refused for every partition that exists, too-large metadata included.
        let req = commit_request(
            "g",
            generation + 1,
            &id,
            &[("t", 0, 9, ""), ("t", 0, 9, &long)],
        );
        assert_eq!(
            codes(&commit(&t, 8, req).await),
            vec![ILLEGAL_GENERATION; 2]
        );
        let req = commit_request("g", generation, "stranger", &[("t", 0, 9, "")]);
        assert_eq!(codes(&commit(&t, 8, req).await), vec![UNKNOWN_MEMBER_ID]);
        let req = commit_request("g", -1, "", &[("t", 0, 9, "")]);
        assert_eq!(codes(&commit(&t, 8, req).await), vec![UNKNOWN_MEMBER_ID]);
        // A group that does not exist takes no generation but -1.
        let req = commit_request("other", 1, "m", &[("t", 0, 9, "")]);
        assert_eq!(codes(&commit(&t, 2, req).await), vec![ILLEGAL_GENERATION]);
        let o = t
            .groups
            .fetch_offsets("g", Some(&[TopicPartition::new("t", 0)]));
        assert_eq!(o[0].1.as_ref().map(|o| o.offset), Some(3));
    }

    #[tokio::test]
    async fn the_commit_is_appended_when_handled() {
        let t = test_state();
        t.log
            .create_topic("t", 1, std::iter::empty::<(&str, &str)>())
            .unwrap();
        let offsets = TopicPartition::new(
            sluice_log::group::CONSUMER_OFFSETS_TOPIC,
            t.groups.offsets().partition_for("g"),
        );
        let end = || t.log.partition(&offsets).unwrap().log_end_offset();
        let before = end();
        let reply = handle(&t, &ctx(9), commit_request("g", -1, "", &[("t", 0, 5, "")]));
        // Appended already, before anyone awaits the reply.
        assert_eq!(end(), before + 1);
        let ResponseKind::OffsetCommit(r) = response(reply).await else {
            panic!("not an OffsetCommit response");
        };
        assert_eq!(r.topics[0].partitions[0].error_code, 0);
    }

    #[tokio::test]
    async fn every_version_encodes() {
        let t = test_state();
        t.log
            .create_topic("t", 1, std::iter::empty::<(&str, &str)>())
            .unwrap();
        for v in 2..=9 {
            let req = commit_request("g", -1, "", &[("t", 0, i64::from(v), ""), ("x", 0, 1, "")]);
            let got = commit(&t, v, req).await;
            assert_eq!(codes(&got), vec![0, UNKNOWN_TOPIC_OR_PARTITION], "v{v}");
            let req = commit_request("g", 4, "m", &[("t", 0, 1, "")]);
            let _ = commit(&t, v, req).await;
        }
    }
}
