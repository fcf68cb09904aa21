//! Metadata: the one broker, and the topics asked for (auto-creating them when allowed), with
//! their ids from v10 and asked for by id from v12 (KIP-516); an id no topic has is
//! UNKNOWN_TOPIC_ID, as Kafka answers it.

use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};

use super::{RequestContext, sb, topic_by_uuid, topic_uuid};
use crate::handlers::codes::{UNKNOWN_TOPIC_ID, UNKNOWN_TOPIC_OR_PARTITION};
use crate::state::BrokerState;

pub(crate) async fn handle(
    state: &BrokerState,
    ctx: &RequestContext,
    req: MetadataRequest,
) -> MetadataResponse {
    let node = BrokerId(state.config.node_id);
    // v0 has no way to ask for "all topics" but an empty list; v1+ uses null for all.
    let named = req.topics.is_some();
    let names: Vec<Result<String, uuid::Uuid>> = match req.topics {
        None => state.log.list_topics().into_iter().map(Ok).collect(),
        Some(ts) if ts.is_empty() && ctx.api_version == 0 => {
            state.log.list_topics().into_iter().map(Ok).collect()
        }
        Some(ts) => ts
            .into_iter()
            .map(|t| match t.name {
                Some(n) => Ok(n.to_string()),
                None => topic_by_uuid(state, t.topic_id).ok_or(t.topic_id),
            })
            .collect(),
    };
    // Auto-creation only for explicitly named topics, as Kafka does (v4+ asks per request).
    let may_create = named && (ctx.api_version < 4 || req.allow_auto_topic_creation);
    let mut topics = Vec::with_capacity(names.len());
    for name in names {
        let name = match name {
            Ok(n) => n,
            Err(id) => {
                topics.push(
                    MetadataResponseTopic::default()
                        .with_error_code(UNKNOWN_TOPIC_ID)
                        .with_topic_id(id),
                );
                continue;
            }
        };
        if may_create {
            // An invalid name is INVALID_TOPIC_EXCEPTION, by the log's error mapping.
            if let Err(e) = state.auto_create(&name) {
                topics.push(
                    MetadataResponseTopic::default()
                        .with_name(Some(TopicName(sb(name))))
                        .with_error_code(e.error_code()),
                );
                continue;
            }
        }
        let mut topic = MetadataResponseTopic::default()
            .with_name(Some(TopicName(sb(name.clone()))))
            .with_is_internal(name.starts_with("__"));
        if ctx.api_version >= 10 {
            topic = topic.with_topic_id(topic_uuid(state, &name));
        }
        let topic = match state.log.partition_count(&name) {
            Ok(n) => topic.with_partitions(
                (0..n)
                    .map(|p| {
                        let mut part = MetadataResponsePartition::default()
                            .with_partition_index(p)
                            .with_leader_id(node)
                            .with_replica_nodes(vec![node])
                            .with_isr_nodes(vec![node]);
                        if ctx.api_version >= 7 {
                            part = part.with_leader_epoch(0);
                        }
                        part
                    })
                    .collect(),
            ),
            Err(_) => topic.with_error_code(UNKNOWN_TOPIC_OR_PARTITION),
        };
        let topic = if ctx.api_version >= 8 && req.include_topic_authorized_operations {
            // No ACLs yet: every operation is allowed (Kafka's bit set of ALL of them).
            topic.with_topic_authorized_operations(TOPIC_OPERATIONS)
        } else {
            topic
        };
        topics.push(topic);
    }
    let mut r = MetadataResponse::default()
        .with_brokers(vec![
            MetadataResponseBroker::default()
                .with_node_id(node)
                .with_host(sb(state.advertised.host.clone()))
                .with_port(i32::from(state.advertised.port)),
        ])
        .with_topics(topics);
    if ctx.api_version >= 1 {
        r = r.with_controller_id(node);
    }
    if ctx.api_version >= 2 {
        r = r.with_cluster_id(Some(sb(state.config.cluster_id.clone())));
    }
    if (8..=10).contains(&ctx.api_version) && req.include_cluster_authorized_operations {
        r = r.with_cluster_authorized_operations(CLUSTER_OPERATIONS);
    }
    r
}

/// READ, WRITE, CREATE, DELETE, ALTER, DESCRIBE, DESCRIBE_CONFIGS, ALTER_CONFIGS (Kafka's
/// AclOperation codes 3-8, 10, 11 as bits).
const TOPIC_OPERATIONS: i32 = 0b1101_1111_1000;
/// CREATE, ALTER, DESCRIBE, CLUSTER_ACTION, DESCRIBE_CONFIGS, ALTER_CONFIGS, IDEMPOTENT_WRITE.
pub(crate) const CLUSTER_OPERATIONS: i32 =
    (1 << 5) | (1 << 7) | (1 << 8) | (1 << 9) | (1 << 10) | (1 << 11) | (1 << 12);
