//! AddPartitionsToTxn (v0-3, one transaction per request): adds partitions to the producer's
//! open transaction, opening it. If any partition does not exist, nothing is added: those
//! partitions get UNKNOWN_TOPIC_OR_PARTITION and the others OPERATION_NOT_ATTEMPTED, as Kafka
//! answers.

use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::{AddPartitionsToTxnRequest, AddPartitionsToTxnResponse};
use sluice_log::TopicPartition;

use super::RequestContext;
use super::txn_errors::coordinator_error;
use crate::handlers::codes::{
    INVALID_REQUEST, OPERATION_NOT_ATTEMPTED, UNKNOWN_TOPIC_OR_PARTITION,
};
use crate::state::BrokerState;

/// The first version whose clients know PRODUCER_FENCED.
const FENCED_SINCE: i16 = 2;

pub(crate) fn handle(
    state: &BrokerState,
    ctx: &RequestContext,
    req: AddPartitionsToTxnRequest,
) -> AddPartitionsToTxnResponse {
    let id = req.v3_and_below_transactional_id.as_str();
    let partitions: Vec<TopicPartition> = req
        .v3_and_below_topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(|&p| TopicPartition::new(t.name.as_str(), p))
        })
        .collect();
    let unknown: Vec<bool> = partitions
        .iter()
        .map(|tp| state.log.partition(tp).is_err())
        .collect();
    let codes: Vec<i16> = if id.is_empty() {
        vec![INVALID_REQUEST; partitions.len()]
    } else if unknown.iter().any(|&u| u) {
        unknown
            .iter()
            .map(|&u| {
                if u {
                    UNKNOWN_TOPIC_OR_PARTITION
                } else {
                    OPERATION_NOT_ATTEMPTED
                }
            })
            .collect()
    } else {
        let code = match state.txns.add_partitions(
            id,
            req.v3_and_below_producer_id.0,
            req.v3_and_below_producer_epoch,
            &partitions,
        ) {
            Ok(()) => 0,
            Err(e) => {
                let (code, message) = coordinator_error(&e, ctx.api_version, FENCED_SINCE);
                tracing::debug!(transactional_id = id, error = %message, "AddPartitionsToTxn refused");
                code
            }
        };
        vec![code; partitions.len()]
    };
    let mut codes = codes.into_iter();
    let topics = req
        .v3_and_below_topics
        .into_iter()
        .map(|t| {
            let results = t
                .partitions
                .iter()
                .map(|&p| {
                    AddPartitionsToTxnPartitionResult::default()
                        .with_partition_index(p)
                        .with_partition_error_code(codes.next().unwrap_or(0))
                })
                .collect();
            AddPartitionsToTxnTopicResult::default()
                .with_name(t.name)
                .with_results_by_partition(results)
        })
        .collect();
    AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(topics)
}

#[cfg(test)]
pub(crate) mod tests {
    use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
    use kafka_protocol::messages::{ProducerId, TopicName, TransactionalId};

    use super::*;
    use crate::handlers::codes::{
        INVALID_PRODUCER_EPOCH, INVALID_PRODUCER_ID_MAPPING, PRODUCER_FENCED,
    };
    use crate::handlers::sb;
    use crate::handlers::test_util::{create_topic, ctx, encodes, test_state};

    pub(crate) fn request(
        id: &str,
        pid: i64,
        epoch: i16,
        topics: &[(&str, &[i32])],
    ) -> AddPartitionsToTxnRequest {
        AddPartitionsToTxnRequest::default()
            .with_v3_and_below_transactional_id(TransactionalId(sb(id)))
            .with_v3_and_below_producer_id(ProducerId(pid))
            .with_v3_and_below_producer_epoch(epoch)
            .with_v3_and_below_topics(
                topics
                    .iter()
                    .map(|(t, ps)| {
                        AddPartitionsToTxnTopic::default()
                            .with_name(TopicName(sb(*t)))
                            .with_partitions(ps.to_vec())
                    })
                    .collect(),
            )
    }

    fn codes(r: &AddPartitionsToTxnResponse) -> Vec<i16> {
        r.results_by_topic_v3_and_below
            .iter()
            .flat_map(|t| {
                t.results_by_partition
                    .iter()
                    .map(|p| p.partition_error_code)
            })
            .collect()
    }

    #[test]
    fn adds_partitions_and_answers_per_partition() {
        let b = test_state();
        create_topic(&b, "t", 2);
        let (pid, epoch) = b.txns.init_producer_id("tx", 60_000).expect("init");
        let r = handle(&b, &ctx(3), request("tx", pid, epoch, &[("t", &[0, 1])]));
        assert_eq!(codes(&r), [0, 0]);
        let m = b.txns.describe_transaction("tx").expect("described");
        assert_eq!(m.partitions.len(), 2);
        // One unknown partition: nothing added, the rest not attempted.
        let r = handle(
            &b,
            &ctx(3),
            request(
                "tx",
                pid,
                epoch,
                &[("t", &[0]), ("nope", &[0]), ("t", &[7])],
            ),
        );
        assert_eq!(
            codes(&r),
            [
                OPERATION_NOT_ATTEMPTED,
                UNKNOWN_TOPIC_OR_PARTITION,
                UNKNOWN_TOPIC_OR_PARTITION
            ]
        );
        // Wrong producer id, stale epoch, unknown id.
        let r = handle(&b, &ctx(3), request("tx", pid + 1, epoch, &[("t", &[0])]));
        assert_eq!(codes(&r), [INVALID_PRODUCER_ID_MAPPING]);
        let r = handle(&b, &ctx(2), request("tx", pid, epoch - 1, &[("t", &[0])]));
        assert_eq!(codes(&r), [PRODUCER_FENCED]);
        let r = handle(&b, &ctx(1), request("tx", pid, epoch - 1, &[("t", &[0])]));
        assert_eq!(codes(&r), [INVALID_PRODUCER_EPOCH]);
        let r = handle(&b, &ctx(3), request("other", pid, epoch, &[("t", &[0])]));
        assert_eq!(codes(&r), [INVALID_PRODUCER_ID_MAPPING]);
        let r = handle(&b, &ctx(3), request("", pid, epoch, &[("t", &[0])]));
        assert_eq!(codes(&r), [INVALID_REQUEST]);
    }

    #[test]
    fn every_version_encodes() {
        let b = test_state();
        create_topic(&b, "t", 1);
        let (pid, epoch) = b.txns.init_producer_id("tx", 60_000).expect("init");
        for v in 0..=3 {
            encodes(
                &handle(&b, &ctx(v), request("tx", pid, epoch, &[("t", &[0])])),
                v,
            );
            encodes(
                &handle(&b, &ctx(v), request("tx", pid, 9, &[("x", &[0])])),
                v,
            );
        }
    }
}
