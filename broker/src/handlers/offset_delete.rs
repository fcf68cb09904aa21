//! OffsetDelete: removes a group's committed offsets of some partitions (tombstones in
//! `__consumer_offsets`), as `kafka-consumer-groups --delete-offsets` does.
//!
//! As in Kafka: an empty group (or one with only offsets) loses any of them; a consumer group
//! with members keeps those of topics a member subscribes to (GROUP_SUBSCRIBED_TO_TOPIC) and
//! loses the others; a group of another protocol type with members refuses as a whole
//! (NON_EMPTY_GROUP), and an unknown group is GROUP_ID_NOT_FOUND. A partition that does not
//! exist is UNKNOWN_TOPIC_OR_PARTITION.

use std::collections::BTreeSet;
use std::sync::Arc;

use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::{OffsetDeleteRequest, OffsetDeleteResponse, ResponseKind};
use sluice_log::TopicPartition;
use sluice_log::group::{GroupDescription, GroupState, Subscription};

use super::{Reply, RequestContext, offsets_write_error, start};
use crate::handlers::codes::{
    GROUP_SUBSCRIBED_TO_TOPIC, INVALID_GROUP_ID, NON_EMPTY_GROUP, UNKNOWN_TOPIC_OR_PARTITION,
};
use crate::state::BrokerState;

pub(crate) fn handle(
    state: &BrokerState,
    _ctx: &RequestContext,
    req: OffsetDeleteRequest,
) -> Reply {
    let fail = |code: i16| {
        Reply::Now(ResponseKind::OffsetDelete(
            OffsetDeleteResponse::default().with_error_code(code),
        ))
    };
    let group = req.group_id.to_string();
    if group.is_empty() {
        return fail(INVALID_GROUP_ID);
    }
    let subscribed = match state.groups.describe_group(&group) {
        Err(e) => return fail(e.error_code()),
        Ok(d) => match subscriptions(&d) {
            Ok(s) => s,
            Err(code) => return fail(code),
        },
    };
    let mut eligible = Vec::new();
    let mut shape = Vec::with_capacity(req.topics.len());
    for t in req.topics {
        let count = state.log.partition_count(&t.name).ok();
        let partitions: Vec<(i32, i16)> = t
            .partitions
            .iter()
            .map(|p| {
                let index = p.partition_index;
                if !count.is_some_and(|n| (0..n).contains(&index)) {
                    (index, UNKNOWN_TOPIC_OR_PARTITION)
                } else if subscribed.includes(t.name.as_str()) {
                    (index, GROUP_SUBSCRIBED_TO_TOPIC)
                } else {
                    eligible.push(TopicPartition::new(t.name.as_str(), index));
                    (index, 0)
                }
            })
            .collect();
        shape.push((t.name, partitions));
    }
    let respond = move |result: sluice_log::Result<()>| {
        let response = match result {
            Err(e) => OffsetDeleteResponse::default().with_error_code(offsets_write_error(&e)),
            Ok(()) => OffsetDeleteResponse::default().with_topics(
                shape
                    .into_iter()
                    .map(|(name, partitions)| {
                        OffsetDeleteResponseTopic::default()
                            .with_name(name)
                            .with_partitions(
                                partitions
                                    .into_iter()
                                    .map(|(index, code)| {
                                        OffsetDeleteResponsePartition::default()
                                            .with_partition_index(index)
                                            .with_error_code(code)
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
            ),
        };
        ResponseKind::OffsetDelete(response)
    };
    if eligible.is_empty() {
        return Reply::Now(respond(Ok(())));
    }
    tracing::info!(
        group,
        partitions = eligible.len(),
        "deleting committed offsets"
    );
    let groups = Arc::clone(&state.groups);
    start(async move { groups.offsets().delete_offsets(&group, &eligible).await }).reply(respond)
}

/// Topics whose offsets the group's members still use.
enum Subscribed {
    /// None: the group has no members.
    Nothing,
    /// These.
    Topics(BTreeSet<String>),
    /// Unknown (a member's subscription is not at hand): every topic counts as subscribed,
    /// as Kafka counts them when it cannot tell.
    Everything,
}

impl Subscribed {
    fn includes(&self, topic: &str) -> bool {
        match self {
            Subscribed::Nothing => false,
            Subscribed::Topics(t) => t.contains(topic),
            Subscribed::Everything => true,
        }
    }
}

/// What the group's members subscribe to, or the group-level error.
fn subscriptions(d: &GroupDescription) -> Result<Subscribed, i16> {
    if d.state == GroupState::Empty {
        return Ok(Subscribed::Nothing);
    }
    if d.protocol_type != "consumer" {
        return Err(NON_EMPTY_GROUP);
    }
    // While the group prepares a rebalance the description carries no member metadata.
    if d.state == GroupState::PreparingRebalance {
        return Ok(Subscribed::Everything);
    }
    let mut topics = BTreeSet::new();
    for m in &d.members {
        match Subscription::decode(&m.metadata) {
            Ok(s) => topics.extend(s.topics),
            Err(_) => return Ok(Subscribed::Everything),
        }
    }
    Ok(Subscribed::Topics(topics))
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use kafka_protocol::messages::offset_delete_request::{
        OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
    };
    use kafka_protocol::messages::{GroupId, TopicName};

    use super::*;
    use crate::handlers::codes::GROUP_ID_NOT_FOUND;
    use crate::handlers::join_group::tests::{join, join_request};
    use crate::handlers::offset_commit::tests::{commit, commit_request};
    use crate::handlers::sb;
    use crate::handlers::sync_group::tests::sync;
    use crate::handlers::test_util::{ctx, encodes, response, test_state};

    fn delete_request(group: &str, partitions: &[(&str, i32)]) -> OffsetDeleteRequest {
        let mut topics: Vec<OffsetDeleteRequestTopic> = Vec::new();
        for &(topic, partition) in partitions {
            let p = OffsetDeleteRequestPartition::default().with_partition_index(partition);
            match topics.iter_mut().find(|t| t.name.as_str() == topic) {
                Some(t) => t.partitions.push(p),
                None => topics.push(
                    OffsetDeleteRequestTopic::default()
                        .with_name(TopicName(sb(topic)))
                        .with_partitions(vec![p]),
                ),
            }
        }
        OffsetDeleteRequest::default()
            .with_group_id(GroupId(sb(group)))
            .with_topics(topics)
    }

    async fn delete(state: &BrokerState, req: OffsetDeleteRequest) -> OffsetDeleteResponse {
        let ResponseKind::OffsetDelete(r) = response(handle(state, &ctx(0), req)).await else {
            panic!("not an OffsetDelete response");
        };
        encodes(&r, 0);
        r
    }

    fn codes(r: &OffsetDeleteResponse) -> Vec<(String, i32, i16)> {
        r.topics
            .iter()
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .map(|p| (t.name.to_string(), p.partition_index, p.error_code))
            })
            .collect()
    }

    #[tokio::test]
    async fn subscribed_topics_keep_their_offsets() {
        let t = test_state();
        t.log
            .create_topic("t", 1, std::iter::empty::<(&str, &str)>())
            .unwrap();
        t.log
            .create_topic("u", 1, std::iter::empty::<(&str, &str)>())
            .unwrap();
        let req = commit_request("g", -1, "", &[("t", 0, 1, ""), ("u", 0, 2, "")]);
        assert!(commit(&t, 9, req).await.iter().all(|e| e.2 == 0));
        // A member subscribed to t joins and syncs.
        let r = join(&t, 3, join_request("g", "", &["t"])).await;
        let id = r.member_id.to_string();
        let s = sync(
            &t,
            3,
            "g",
            r.generation_id,
            &id,
            vec![(id.clone(), Bytes::new())],
        )
        .await;
        assert_eq!(s.error_code, 0);
        let r = delete(&t, delete_request("g", &[("t", 0), ("u", 0), ("v", 0)])).await;
        assert_eq!(r.error_code, 0);
        assert_eq!(
            codes(&r),
            vec![
                ("t".to_owned(), 0, GROUP_SUBSCRIBED_TO_TOPIC),
                ("u".to_owned(), 0, 0),
                ("v".to_owned(), 0, UNKNOWN_TOPIC_OR_PARTITION),
            ]
        );
        let left: Vec<String> = t
            .groups
            .fetch_offsets("g", None)
            .into_iter()
            .map(|(tp, _)| tp.to_string())
            .collect();
        assert_eq!(left, vec!["t-0".to_owned()]);
        // Unknown groups and empty ids are group-level errors.
        let r = delete(&t, delete_request("nope", &[("t", 0)])).await;
        assert_eq!((r.error_code, r.topics.len()), (GROUP_ID_NOT_FOUND, 0));
        let r = delete(&t, delete_request("", &[("t", 0)])).await;
        assert_eq!(r.error_code, INVALID_GROUP_ID);
    }

    #[tokio::test]
    async fn an_empty_group_loses_any_offset() {
        let t = test_state();
        t.log
            .create_topic("t", 2, std::iter::empty::<(&str, &str)>())
            .unwrap();
        let req = commit_request("g", -1, "", &[("t", 0, 1, ""), ("t", 1, 2, "")]);
        assert!(commit(&t, 9, req).await.iter().all(|e| e.2 == 0));
        let r = delete(&t, delete_request("g", &[("t", 1)])).await;
        assert_eq!(codes(&r), vec![("t".to_owned(), 1, 0)]);
        let left = t.groups.fetch_offsets("g", None);
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].0, TopicPartition::new("t", 0));
    }
}
