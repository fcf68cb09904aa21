//! Produce: appends each partition's batch (stored as sent, offsets assigned by rewriting its
//! header) in request order, then answers at once (acks=1), after the group-commit fsync
//! (acks=all), or not at all (acks=0). v13 names topics by id (KIP-516): an id no topic has
//! is UNKNOWN_TOPIC_ID, as Kafka answers it.

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse, ResponseKind};
use sluice_log::TopicPartition;
use sluice_log::log::Partition;

use super::{Reply, RequestContext, log_error, sb, topic_by_uuid};
use crate::handlers::codes::{
    CORRUPT_MESSAGE, INVALID_REQUIRED_ACKS, REQUEST_TIMED_OUT, UNKNOWN_TOPIC_ID,
};
use crate::state::BrokerState;

/// One partition's outcome, before durability.
struct Appended {
    partition: Arc<Partition>,
    /// The offset after the batch (what must be durable under acks=all).
    end: i64,
}

pub(crate) fn handle(state: &BrokerState, ctx: &RequestContext, req: ProduceRequest) -> Reply {
    let version = ctx.api_version;
    let acks = req.acks;
    let bad_acks = !matches!(acks, -1..=1);
    let mut pending: Vec<(usize, usize, Appended)> = Vec::new();
    let mut topics = Vec::with_capacity(req.topic_data.len());
    for (ti, t) in req.topic_data.into_iter().enumerate() {
        // v13 names the topic by id only.
        let name = if version >= 13 {
            topic_by_uuid(state, t.topic_id)
        } else {
            Some(t.name.to_string())
        };
        let mut partitions = Vec::with_capacity(t.partition_data.len());
        for (pi, p) in t.partition_data.into_iter().enumerate() {
            let r = PartitionProduceResponse::default()
                .with_index(p.index)
                .with_base_offset(-1);
            let fail = |r: PartitionProduceResponse, code: i16, message: String| {
                let r = r.with_error_code(code);
                if version >= 8 {
                    r.with_error_message(Some(sb(message)))
                } else {
                    r
                }
            };
            if bad_acks {
                partitions.push(fail(
                    r,
                    INVALID_REQUIRED_ACKS,
                    format!("acks={acks}: only 0, 1 and -1 (all) are valid"),
                ));
                continue;
            }
            let Some(name) = &name else {
                partitions.push(fail(
                    r,
                    UNKNOWN_TOPIC_ID,
                    format!("no topic has id {}", t.topic_id),
                ));
                continue;
            };
            let tp = TopicPartition::new(name.as_str(), p.index);
            let Some(records) = p.records else {
                partitions.push(fail(r, CORRUPT_MESSAGE, "no records".into()));
                continue;
            };
            let outcome = state
                .log
                .partition(&tp)
                .and_then(|part| part.append(records.to_vec()).map(|info| (part, info)));
            match outcome {
                Ok((part, info)) => {
                    let mut r = r
                        .with_base_offset(info.base_offset)
                        .with_log_append_time_ms(info.log_append_time);
                    if version >= 5 {
                        r = r.with_log_start_offset(info.log_start_offset);
                    }
                    if acks == -1 {
                        pending.push((
                            ti,
                            pi,
                            Appended {
                                partition: part,
                                end: info.last_offset + 1,
                            },
                        ));
                    }
                    partitions.push(r);
                }
                Err(e) => {
                    tracing::debug!(%tp, principal = %ctx.principal, error = %sluice_log::report(&e), "produce refused");
                    partitions.push(fail(r, e.error_code(), sluice_log::report(&e).to_string()));
                }
            }
        }
        topics.push(
            TopicProduceResponse::default()
                .with_name(t.name)
                .with_topic_id(t.topic_id)
                .with_partition_responses(partitions),
        );
    }
    if acks == 0 {
        // The client waits for no answer, so an error can only be told by closing the
        // connection (Kafka does the same): it then refreshes metadata and sees the problem.
        let failed = topics
            .iter()
            .flat_map(|t| t.partition_responses.iter().map(move |p| (t, p)))
            .find(|(_, p)| p.error_code != 0);
        return match failed {
            Some((t, p)) => Reply::Close(format!(
                "acks=0 produce to {}-{} failed with error {}",
                if version >= 13 {
                    t.topic_id.to_string()
                } else {
                    t.name.to_string()
                },
                p.index,
                p.error_code
            )),
            None => Reply::None,
        };
    }
    let response = ProduceResponse::default().with_responses(topics);
    if pending.is_empty() {
        return Reply::Now(ResponseKind::Produce(response));
    }
    let timeout = Duration::from_millis(u64::try_from(req.timeout_ms.max(0)).unwrap_or(0));
    Reply::Later(Box::pin(async move {
        let mut response = response;
        for (ti, pi, a) in pending {
            let waited = tokio::time::timeout(timeout, a.partition.wait_durable(a.end)).await;
            let failure = match waited {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(log_error(e)),
                Err(_) => Some((
                    REQUEST_TIMED_OUT,
                    format!("not durable within the request's timeout of {timeout:?}"),
                )),
            };
            if let Some((code, message)) = failure
                && let Some(r) = response
                    .responses
                    .get_mut(ti)
                    .and_then(|t| t.partition_responses.get_mut(pi))
            {
                r.error_code = code;
                if version >= 8 {
                    r.error_message = Some(sb(message));
                }
            }
        }
        ResponseKind::Produce(response)
    }))
}
