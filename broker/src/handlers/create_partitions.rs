//! CreatePartitions: grows topics to the requested partition count (never shrinks them), with
//! Kafka's checks: the count must exceed the current one, an explicit assignment must list one
//! replica set per new partition, each being this broker alone; `validate_only` checks
//! without creating.

use std::collections::HashMap;

use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};

use super::{RequestContext, error_of, sb};
use crate::handlers::codes::{
    INVALID_PARTITIONS, INVALID_REPLICA_ASSIGNMENT, INVALID_REQUEST, UNKNOWN_TOPIC_OR_PARTITION,
};
use crate::state::BrokerState;

pub(crate) fn handle(
    state: &BrokerState,
    ctx: &RequestContext,
    req: CreatePartitionsRequest,
) -> CreatePartitionsResponse {
    let mut seen: HashMap<String, usize> = HashMap::new();
    for t in &req.topics {
        *seen.entry(t.name.to_string()).or_default() += 1;
    }
    let results = req
        .topics
        .into_iter()
        .map(|t| {
            let name = t.name.to_string();
            let outcome = if seen.get(&name).copied().unwrap_or(0) > 1 {
                Err((INVALID_REQUEST, "Duplicate topic in request.".to_owned()))
            } else {
                grow(state, &name, t.count, t.assignments.as_deref(), req.validate_only)
            };
            let r = CreatePartitionsTopicResult::default()
                .with_name(t.name)
                .with_error_message(None);
            match outcome {
                Ok(()) => {
                    if !req.validate_only {
                        tracing::info!(topic = %name, partitions = t.count, principal = %ctx.principal, "added partitions");
                    }
                    r
                }
                Err((code, message)) => r.with_error_code(code).with_error_message(Some(sb(message))),
            }
        })
        .collect();
    CreatePartitionsResponse::default().with_results(results)
}

fn grow(
    state: &BrokerState,
    name: &str,
    count: i32,
    assignments: Option<
        &[kafka_protocol::messages::create_partitions_request::CreatePartitionsAssignment],
    >,
    validate_only: bool,
) -> Result<(), (i16, String)> {
    let current = state.log.partition_count(name).map_err(|e| {
        (
            UNKNOWN_TOPIC_OR_PARTITION,
            sluice_log::report(&e).to_string(),
        )
    })?;
    if sluice_log::names::is_internal(name) {
        // The coordinators place groups and transactional ids by a partition count fixed when
        // they open.
        return Err((
            INVALID_REQUEST,
            format!("the partitions of internal topic {name} cannot be changed"),
        ));
    }
    if count == current {
        return Err((
            INVALID_PARTITIONS,
            format!("Topic already has {current} partitions."),
        ));
    }
    if count < current {
        return Err((
            INVALID_PARTITIONS,
            format!(
                "Topic currently has {current} partitions, which is higher than the requested {count}."
            ),
        ));
    }
    if let Some(assignments) = assignments {
        let added = count - current;
        if usize::try_from(added).ok() != Some(assignments.len()) {
            return Err((
                INVALID_REPLICA_ASSIGNMENT,
                format!(
                    "Increasing the number of partitions by {added} but {} assignments provided.",
                    assignments.len()
                ),
            ));
        }
        let node = state.config.node_id;
        for (i, a) in assignments.iter().enumerate() {
            if a.broker_ids.len() != 1 {
                return Err((
                    INVALID_REPLICA_ASSIGNMENT,
                    format!(
                        "the assignment of new partition {} has {} replicas; the topic's replication factor is 1",
                        current + i32::try_from(i).unwrap_or(i32::MAX),
                        a.broker_ids.len()
                    ),
                ));
            }
            if let Some(b) = a.broker_ids.iter().find(|b| b.0 != node) {
                return Err((
                    INVALID_REPLICA_ASSIGNMENT,
                    format!("Unknown broker(s) in replica assignment: {}.", b.0),
                ));
            }
        }
    }
    if validate_only {
        return Ok(());
    }
    state.log.create_partitions(name, count).map_err(|e| {
        let (code, message) = error_of(&e);
        (code, message.map(|m| m.to_string()).unwrap_or_default())
    })
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::create_partitions_request::{
        CreatePartitionsAssignment, CreatePartitionsTopic,
    };
    use kafka_protocol::messages::{BrokerId, TopicName};

    use super::*;
    use crate::handlers::test_util::{create_topic, ctx, encodes, test_state};

    fn topic(name: &str, count: i32) -> CreatePartitionsTopic {
        CreatePartitionsTopic::default()
            .with_name(TopicName(sb(name)))
            .with_count(count)
            .with_assignments(None)
    }

    fn request(topics: Vec<CreatePartitionsTopic>, validate_only: bool) -> CreatePartitionsRequest {
        CreatePartitionsRequest::default()
            .with_topics(topics)
            .with_validate_only(validate_only)
    }

    fn codes(r: &CreatePartitionsResponse) -> Vec<i16> {
        r.results.iter().map(|t| t.error_code).collect()
    }

    #[test]
    fn grows_never_shrinks_and_validates_assignments() {
        let b = test_state();
        create_topic(&b, "t", 2);
        // validate_only changes nothing.
        let r = handle(&b, &ctx(3), request(vec![topic("t", 4)], true));
        assert_eq!(codes(&r), [0]);
        assert_eq!(b.log.partition_count("t").expect("t"), 2);
        let r = handle(&b, &ctx(3), request(vec![topic("t", 4)], false));
        assert_eq!(codes(&r), [0]);
        assert!(r.results[0].error_message.is_none());
        assert_eq!(b.log.partition_count("t").expect("t"), 4);
        // Shrinking, or the same count, is refused.
        let r = handle(
            &b,
            &ctx(3),
            request(vec![topic("t", 3), topic("nope", 2)], false),
        );
        assert_eq!(codes(&r), [INVALID_PARTITIONS, UNKNOWN_TOPIC_OR_PARTITION]);
        let message = r.results[0].error_message.as_ref().expect("message");
        assert!(message.contains("higher than the requested 3"), "{message}");
        let r = handle(&b, &ctx(0), request(vec![topic("t", 4)], false));
        assert_eq!(codes(&r), [INVALID_PARTITIONS]);
        // Assignments: one per new partition, on this broker only.
        let on = |ids: &[i32]| {
            CreatePartitionsAssignment::default()
                .with_broker_ids(ids.iter().map(|&i| BrokerId(i)).collect())
        };
        let node = b.config.node_id;
        for bad in [
            vec![on(&[node])],
            vec![on(&[node]), on(&[node + 1])],
            vec![on(&[node, node]), on(&[node])],
        ] {
            let r = handle(
                &b,
                &ctx(3),
                request(vec![topic("t", 6).with_assignments(Some(bad))], false),
            );
            assert_eq!(codes(&r), [INVALID_REPLICA_ASSIGNMENT]);
        }
        let good = vec![on(&[node]), on(&[node])];
        let r = handle(
            &b,
            &ctx(3),
            request(vec![topic("t", 6).with_assignments(Some(good))], false),
        );
        assert_eq!(codes(&r), [0]);
        assert_eq!(b.log.partition_count("t").expect("t"), 6);
        let r = handle(
            &b,
            &ctx(3),
            request(vec![topic("t", 8), topic("t", 9)], false),
        );
        assert_eq!(codes(&r), [INVALID_REQUEST, INVALID_REQUEST]);
        assert_eq!(b.log.partition_count("t").expect("t"), 6);
        for v in 0..=3 {
            encodes(&handle(&b, &ctx(v), request(vec![topic("t", 1)], true)), v);
            encodes(&handle(&b, &ctx(v), request(vec![topic("t", 7)], true)), v);
        }
    }
}
