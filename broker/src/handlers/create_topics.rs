//! CreateTopics: with partitions (or `num.partitions` for -1), configs, and validate_only; v7
//! answers each created topic's id.

use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};
use sluice_log::config::TopicConfig;

use super::{RequestContext, error_of, sb, topic_uuid};
use crate::handlers::codes::{INVALID_REPLICA_ASSIGNMENT, INVALID_REPLICATION_FACTOR};
use crate::state::BrokerState;

/// Kafka's ConfigSource: a topic override, or the broker's default.
const TOPIC_CONFIG: i8 = 1;
const DEFAULT_CONFIG: i8 = 5;

pub(crate) fn handle(
    state: &BrokerState,
    ctx: &RequestContext,
    req: CreateTopicsRequest,
) -> CreateTopicsResponse {
    let mut results = Vec::with_capacity(req.topics.len());
    for t in req.topics {
        let name = t.name.to_string();
        let mut r = CreatableTopicResult::default().with_name(t.name.clone());
        let fail = |r: CreatableTopicResult, code: i16, message: String| {
            let r = r.with_error_code(code);
            if ctx.api_version >= 1 {
                r.with_error_message(Some(sb(message)))
            } else {
                r
            }
        };
        if t.replication_factor != -1 && t.replication_factor != 1 {
            results.push(fail(
                r,
                INVALID_REPLICATION_FACTOR,
                format!(
                    "replication factor {} is larger than the 1 available broker",
                    t.replication_factor
                ),
            ));
            continue;
        }
        let partitions = if !t.assignments.is_empty() {
            let ok = t.assignments.iter().enumerate().all(|(i, a)| {
                usize::try_from(a.partition_index).ok() == Some(i)
                    && a.broker_ids.iter().all(|b| b.0 == state.config.node_id)
                    && a.broker_ids.len() == 1
            });
            if !ok || t.num_partitions != -1 {
                results.push(fail(
                    r,
                    INVALID_REPLICA_ASSIGNMENT,
                    format!(
                        "a replica assignment must name partitions 0.. in order, each on broker {} alone, with num_partitions -1",
                        state.config.node_id
                    ),
                ));
                continue;
            }
            i32::try_from(t.assignments.len()).unwrap_or(i32::MAX)
        } else if t.num_partitions == -1 {
            state.config.num_partitions
        } else {
            t.num_partitions
        };
        let mut configs = Vec::with_capacity(t.configs.len());
        for c in &t.configs {
            // A null value leaves the key at its default.
            if let Some(v) = &c.value {
                configs.push((c.name.to_string(), v.to_string()));
            }
        }
        let outcome = if req.validate_only {
            sluice_log::names::validate_topic_name(&name)
                .and_then(|()| {
                    if state.log.partition_count(&name).is_ok() {
                        Err(sluice_log::Error::TopicExists(name.clone()))
                    } else if partitions < 1 {
                        Err(sluice_log::Error::InvalidPartitions {
                            count: partitions,
                            reason: "a topic needs at least one partition".into(),
                        })
                    } else {
                        Ok(())
                    }
                })
                .and_then(|()| TopicConfig::with_overrides(state.log.defaults(), configs.clone()))
                .map(Some)
        } else {
            state
                .log
                .create_topic(&name, partitions, configs.clone())
                .and_then(|()| state.log.topic_config(&name).map(|c| Some((*c).clone())))
        };
        match outcome {
            Ok(config) => {
                if ctx.api_version >= 7 && !req.validate_only {
                    r = r.with_topic_id(topic_uuid(state, &name));
                }
                if ctx.api_version >= 5 {
                    r = r.with_num_partitions(partitions).with_replication_factor(1);
                    if let Some(config) = config {
                        let overrides = config.overrides().clone();
                        r = r.with_configs(Some(
                            config
                                .describe()
                                .into_iter()
                                .map(|e| {
                                    let source = if overrides.contains_key(&e.name) {
                                        TOPIC_CONFIG
                                    } else {
                                        DEFAULT_CONFIG
                                    };
                                    CreatableTopicConfigs::default()
                                        .with_name(sb(e.name))
                                        .with_value(Some(sb(e.value)))
                                        .with_config_source(source)
                                })
                                .collect(),
                        ));
                    }
                }
                if !req.validate_only {
                    tracing::info!(topic = %name, partitions, principal = %ctx.principal, "created topic");
                }
                results.push(r);
            }
            Err(e) => {
                let (code, message) = error_of(&e);
                results.push(fail(
                    r,
                    code,
                    message.map(|m| m.to_string()).unwrap_or_default(),
                ));
            }
        }
    }
    CreateTopicsResponse::default().with_topics(results)
}
