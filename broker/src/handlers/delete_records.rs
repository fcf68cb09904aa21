//! DeleteRecords: moves each partition's log start offset up to the offset given (-1: the high
//! watermark), deleting the segments wholly below it; answers the new low watermark. As Kafka:
//! an offset past the high watermark is OFFSET_OUT_OF_RANGE, an internal topic
//! INVALID_TOPIC_EXCEPTION, a topic without `delete` in its cleanup.policy POLICY_VIOLATION.

use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};
use sluice_log::TopicPartition;

use super::{RequestContext, log_error};
use crate::handlers::codes::{INVALID_TOPIC_EXCEPTION, POLICY_VIOLATION};
use crate::state::BrokerState;

pub(crate) fn handle(
    state: &BrokerState,
    ctx: &RequestContext,
    req: DeleteRecordsRequest,
) -> DeleteRecordsResponse {
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let tp = TopicPartition::new(t.name.as_str(), p.partition_index);
                    let r = DeleteRecordsPartitionResult::default()
                        .with_partition_index(p.partition_index);
                    match delete(state, &tp, p.offset) {
                        Ok(low) => {
                            tracing::info!(%tp, log_start_offset = low, principal = %ctx.principal, "deleted records");
                            r.with_low_watermark(low)
                        }
                        Err((code, why)) => {
                            tracing::debug!(%tp, offset = p.offset, error = %why, "DeleteRecords refused");
                            r.with_error_code(code).with_low_watermark(-1)
                        }
                    }
                })
                .collect();
            DeleteRecordsTopicResult::default()
                .with_name(t.name)
                .with_partitions(partitions)
        })
        .collect();
    DeleteRecordsResponse::default().with_topics(topics)
}

fn delete(state: &BrokerState, tp: &TopicPartition, offset: i64) -> Result<i64, (i16, String)> {
    if sluice_log::names::is_internal(&tp.topic) {
        return Err((
            INVALID_TOPIC_EXCEPTION,
            format!("Cannot delete records of internal topic {}", tp.topic),
        ));
    }
    let partition = state.log.partition(tp).map_err(log_error)?;
    if !partition.config().cleanup_policy.delete {
        return Err((
            POLICY_VIOLATION,
            format!("Records of partition {tp} can not be deleted due to the configured policy"),
        ));
    }
    partition.delete_records(offset).map_err(log_error)
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::TopicName;
    use kafka_protocol::messages::delete_records_request::{
        DeleteRecordsPartition, DeleteRecordsTopic,
    };

    use super::*;
    use crate::handlers::sb;
    use crate::handlers::test_util::{create_topic, ctx, encodes, plain_batch, test_state};

    fn request(topic: &str, offsets: &[(i32, i64)]) -> DeleteRecordsRequest {
        DeleteRecordsRequest::default().with_topics(vec![
            DeleteRecordsTopic::default()
                .with_name(TopicName(sb(topic)))
                .with_partitions(
                    offsets
                        .iter()
                        .map(|&(p, o)| {
                            DeleteRecordsPartition::default()
                                .with_partition_index(p)
                                .with_offset(o)
                        })
                        .collect(),
                ),
        ])
    }

    fn results(r: &DeleteRecordsResponse) -> Vec<(i16, i64)> {
        r.topics[0]
            .partitions
            .iter()
            .map(|p| (p.error_code, p.low_watermark))
            .collect()
    }

    #[test]
    fn moves_the_log_start_within_the_log() {
        let b = test_state();
        b.log
            .create_topic("t", 2, [("segment.bytes", "100")])
            .expect("topic");
        let p = b.log.partition(&TopicPartition::new("t", 0)).expect("p");
        for i in 0..10 {
            p.append(plain_batch(&[&format!(
                "record {i} with some padding to roll segments"
            )]))
            .expect("appended");
        }
        let segments = p.segment_count();
        assert!(segments > 2);
        let r = handle(&b, &ctx(2), request("t", &[(0, 4), (1, 0), (7, 0)]));
        assert_eq!(results(&r), [(0, 4), (0, 0), (3, -1)]);
        assert_eq!(p.log_start_offset(), 4);
        assert!(p.segment_count() < segments);
        // Below the log start: nothing moves; past the high watermark: out of range; -1: all.
        let r = handle(&b, &ctx(1), request("t", &[(0, 2)]));
        assert_eq!(results(&r), [(0, 4)]);
        let r = handle(&b, &ctx(1), request("t", &[(0, 11)]));
        assert_eq!(results(&r), [(1, -1)]);
        let r = handle(&b, &ctx(0), request("t", &[(0, -1)]));
        assert_eq!(results(&r), [(0, 10)]);
        assert_eq!(p.log_start_offset(), 10);
        // Compacted topics and internal topics are refused.
        b.log
            .create_topic("c", 1, [("cleanup.policy", "compact")])
            .expect("topic");
        let r = handle(&b, &ctx(2), request("c", &[(0, 0)]));
        assert_eq!(results(&r), [(POLICY_VIOLATION, -1)]);
        create_topic(&b, "__internal", 1);
        let r = handle(&b, &ctx(2), request("__internal", &[(0, 0)]));
        assert_eq!(results(&r), [(INVALID_TOPIC_EXCEPTION, -1)]);
        for v in 0..=2 {
            encodes(&handle(&b, &ctx(v), request("t", &[(0, -1), (9, 0)])), v);
        }
    }
}
