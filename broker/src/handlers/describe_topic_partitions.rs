//! DescribeTopicPartitions (KIP-966): topics and their partitions, as Metadata gives them but
//! paginated. Topics go in name order from the request's cursor, at most
//! `response_partition_limit` partitions (and Kafka's `max.request.partition.size.limit`,
//! 2000) per response; `next_cursor` names where the next request starts. An empty topic list
//! means every topic (unknown names then cannot occur); a listed topic that does not exist is
//! UNKNOWN_TOPIC_OR_PARTITION (INVALID_TOPIC_EXCEPTION for a name no topic can have).

use kafka_protocol::messages::describe_topic_partitions_response::{
    Cursor, DescribeTopicPartitionsResponsePartition, DescribeTopicPartitionsResponseTopic,
};
use kafka_protocol::messages::{
    BrokerId, DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse, TopicName,
};

use super::{RequestContext, sb, topic_uuid};
use crate::handlers::codes::{
    INVALID_REQUEST, INVALID_TOPIC_EXCEPTION, UNKNOWN_TOPIC_OR_PARTITION,
};
use crate::state::BrokerState;

/// Kafka's `max.request.partition.size.limit` default: the most partitions one response holds
/// whatever the request asks.
const MAX_PARTITIONS: i32 = 2000;

pub(crate) fn handle(
    state: &BrokerState,
    _ctx: &RequestContext,
    req: DescribeTopicPartitionsRequest,
) -> DescribeTopicPartitionsResponse {
    let all = req.topics.is_empty();
    let cursor = req
        .cursor
        .as_ref()
        .map(|c| (c.topic_name.to_string(), c.partition_index));
    let from = cursor.as_ref().map_or("", |(t, _)| t.as_str());
    let mut names: Vec<String> = if all {
        state.log.list_topics()
    } else {
        req.topics.iter().map(|t| t.name.to_string()).collect()
    };
    names.retain(|n| n.as_str() >= from);
    names.sort();
    names.dedup();
    // Kafka's checks: the cursor's topic must be one of those asked for, its partition >= 0.
    let refusal = match &cursor {
        Some((topic, _)) if !all && names.first() != Some(topic) => Some(format!(
            "the topic list should contain the cursor topic: {topic}"
        )),
        Some((_, p)) if *p < 0 => Some(format!("the cursor's partition {p} is not valid")),
        _ => None,
    };
    if let Some(why) = refusal {
        tracing::debug!(reason = %why, "DescribeTopicPartitions refused");
        return DescribeTopicPartitionsResponse::default().with_topics(
            req.topics
                .into_iter()
                .map(|t| {
                    DescribeTopicPartitionsResponseTopic::default()
                        .with_name(Some(t.name))
                        .with_error_code(INVALID_REQUEST)
                })
                .collect(),
        );
    }
    let node = BrokerId(state.config.node_id);
    let mut remaining = req.response_partition_limit.clamp(0, MAX_PARTITIONS);
    let mut topics = Vec::new();
    let mut next_cursor = None;
    for name in names {
        if remaining == 0 {
            // Every partition of the topics before is in; the next response starts here.
            next_cursor = Some(
                Cursor::default()
                    .with_topic_name(TopicName(sb(name)))
                    .with_partition_index(0),
            );
            break;
        }
        let topic = DescribeTopicPartitionsResponseTopic::default()
            .with_name(Some(TopicName(sb(name.clone()))))
            .with_is_internal(name.starts_with("__"));
        let Ok(count) = state.log.partition_count(&name) else {
            if !all {
                let code = if sluice_log::names::validate_topic_name(&name).is_ok() {
                    UNKNOWN_TOPIC_OR_PARTITION
                } else {
                    INVALID_TOPIC_EXCEPTION
                };
                topics.push(topic.with_error_code(code));
            }
            continue;
        };
        let start = match &cursor {
            Some((t, p)) if *t == name => *p,
            _ => 0,
        };
        let end = count.min(start.saturating_add(remaining));
        let partitions: Vec<_> = (start..end)
            .map(|p| {
                DescribeTopicPartitionsResponsePartition::default()
                    .with_partition_index(p)
                    .with_leader_id(node)
                    .with_leader_epoch(0)
                    .with_replica_nodes(vec![node])
                    .with_isr_nodes(vec![node])
                    .with_eligible_leader_replicas(Some(Vec::new()))
                    .with_last_known_elr(Some(Vec::new()))
            })
            .collect();
        remaining -= i32::try_from(partitions.len()).unwrap_or(remaining);
        topics.push(
            topic
                .with_topic_id(topic_uuid(state, &name))
                .with_partitions(partitions),
        );
        if end < count {
            next_cursor = Some(
                Cursor::default()
                    .with_topic_name(TopicName(sb(name)))
                    .with_partition_index(end),
            );
            break;
        }
    }
    DescribeTopicPartitionsResponse::default()
        .with_topics(topics)
        .with_next_cursor(next_cursor)
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::describe_topic_partitions_request::{Cursor, TopicRequest};

    use super::*;
    use crate::handlers::test_util::{create_topic, ctx, encodes, test_state};

    fn request(
        topics: &[&str],
        limit: i32,
        cursor: Option<(&str, i32)>,
    ) -> DescribeTopicPartitionsRequest {
        DescribeTopicPartitionsRequest::default()
            .with_topics(
                topics
                    .iter()
                    .map(|t| TopicRequest::default().with_name(TopicName(sb(*t))))
                    .collect(),
            )
            .with_response_partition_limit(limit)
            .with_cursor(cursor.map(|(t, p)| {
                Cursor::default()
                    .with_topic_name(TopicName(sb(t)))
                    .with_partition_index(p)
            }))
    }

    /// (topic, error, partitions) of a response, and its next cursor.
    type Page = (Vec<(String, i16, Vec<i32>)>, Option<(String, i32)>);

    fn page(r: &DescribeTopicPartitionsResponse) -> Page {
        encodes(r, 0);
        (
            r.topics
                .iter()
                .map(|t| {
                    (
                        t.name.as_ref().map(|n| n.to_string()).unwrap_or_default(),
                        t.error_code,
                        t.partitions.iter().map(|p| p.partition_index).collect(),
                    )
                })
                .collect(),
            r.next_cursor
                .as_ref()
                .map(|c| (c.topic_name.to_string(), c.partition_index)),
        )
    }

    #[test]
    fn pages_follow_the_cursor_through_every_topic() {
        let b = test_state();
        create_topic(&b, "b", 3);
        create_topic(&b, "a", 2);
        create_topic(&b, "c", 1);
        let go = |topics: &[&str], limit, cursor| {
            page(&handle(&b, &ctx(0), request(topics, limit, cursor)))
        };
        // All topics from "a" (after the internal topics), 2 partitions a page: a fills the
        // first exactly.
        let p1 = go(&[], 2, Some(("a", 0)));
        assert_eq!(
            p1,
            (vec![("a".into(), 0, vec![0, 1])], Some(("b".into(), 0)))
        );
        let p2 = go(&[], 2, Some(("b", 0)));
        assert_eq!(
            p2,
            (vec![("b".into(), 0, vec![0, 1])], Some(("b".into(), 2)))
        );
        let p3 = go(&[], 2, Some(("b", 2)));
        assert_eq!(
            p3,
            (
                vec![("b".into(), 0, vec![2]), ("c".into(), 0, vec![0])],
                None
            )
        );
        // Named topics, unknown ones answered, in name order.
        let named = go(&["c", "zz", "a"], 100, None);
        assert_eq!(
            named,
            (
                vec![
                    ("a".into(), 0, vec![0, 1]),
                    ("c".into(), 0, vec![0]),
                    ("zz".into(), UNKNOWN_TOPIC_OR_PARTITION, vec![]),
                ],
                None
            )
        );
        // A cursor naming a topic not asked for is refused, as Kafka refuses it.
        let refused = go(&["a"], 100, Some(("b", 0)));
        assert_eq!(refused.0, vec![("a".into(), INVALID_REQUEST, vec![])]);
        // Topic ids are there, and the same as Metadata's.
        let r = handle(&b, &ctx(0), request(&["a"], 10, None));
        assert_eq!(r.topics[0].topic_id, topic_uuid(&b, "a"));
        assert!(!r.topics[0].topic_id.is_nil());
    }
}
