//! OffsetForLeaderEpoch: the end offset of a leader epoch, which clients use to detect log
//! truncation. This broker has led every partition since its creation in one epoch, 0, so the
//! answer is Kafka's for a leader-epoch cache holding epoch 0 alone: epoch 0 ends at the log
//! end; an epoch below every known one (< -1) gets the first offset held; -1 (undefined) and
//! epochs after 0 are undefined (-1, -1). A current leader epoch other than 0 (or -1: not
//! given) is fenced or unknown, as for a stale or future leader.

use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};
use sluice_log::TopicPartition;

use super::RequestContext;
use crate::handlers::codes::{FENCED_LEADER_EPOCH, UNKNOWN_LEADER_EPOCH};
use crate::state::BrokerState;

/// The leader epoch of every partition.
const LEADER_EPOCH: i32 = 0;
const UNDEFINED: i32 = -1;

pub(crate) fn handle(
    state: &BrokerState,
    _ctx: &RequestContext,
    req: OffsetForLeaderEpochRequest,
) -> OffsetForLeaderEpochResponse {
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let r = EpochEndOffset::default().with_partition(p.partition);
                    let partition = match state
                        .log
                        .partition(&TopicPartition::new(t.topic.as_str(), p.partition))
                    {
                        Ok(part) => part,
                        Err(e) => return r.with_error_code(e.error_code()),
                    };
                    match p.current_leader_epoch {
                        UNDEFINED | LEADER_EPOCH => {}
                        e if e < LEADER_EPOCH => return r.with_error_code(FENCED_LEADER_EPOCH),
                        _ => return r.with_error_code(UNKNOWN_LEADER_EPOCH),
                    }
                    match p.leader_epoch {
                        LEADER_EPOCH => r
                            .with_leader_epoch(LEADER_EPOCH)
                            .with_end_offset(partition.log_end_offset()),
                        e if e < UNDEFINED => r
                            .with_leader_epoch(e)
                            .with_end_offset(partition.log_start_offset()),
                        _ => r.with_leader_epoch(UNDEFINED).with_end_offset(-1),
                    }
                })
                .collect();
            OffsetForLeaderTopicResult::default()
                .with_topic(t.topic)
                .with_partitions(partitions)
        })
        .collect();
    OffsetForLeaderEpochResponse::default().with_topics(topics)
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::TopicName;
    use kafka_protocol::messages::offset_for_leader_epoch_request::{
        OffsetForLeaderPartition, OffsetForLeaderTopic,
    };

    use super::*;
    use crate::handlers::sb;
    use crate::handlers::test_util::{create_topic, ctx, encodes, plain_batch, test_state};

    fn ask(topic: &str, partition: i32, current: i32, epoch: i32) -> OffsetForLeaderEpochRequest {
        OffsetForLeaderEpochRequest::default().with_topics(vec![
            OffsetForLeaderTopic::default()
                .with_topic(TopicName(sb(topic)))
                .with_partitions(vec![
                    OffsetForLeaderPartition::default()
                        .with_partition(partition)
                        .with_current_leader_epoch(current)
                        .with_leader_epoch(epoch),
                ]),
        ])
    }

    fn answer(b: &BrokerState, v: i16, req: OffsetForLeaderEpochRequest) -> (i16, i32, i64) {
        let r = handle(b, &ctx(v), req);
        encodes(&r, v);
        let p = &r.topics[0].partitions[0];
        (p.error_code, p.leader_epoch, p.end_offset)
    }

    #[test]
    fn epoch_zero_ends_at_the_log_end() {
        let b = test_state();
        create_topic(&b, "t", 1);
        let p = b.log.partition(&TopicPartition::new("t", 0)).expect("p");
        p.append(plain_batch(&["a", "b", "c"])).expect("appended");
        p.delete_records(1).expect("deleted");
        for v in 2..=4 {
            assert_eq!(answer(&b, v, ask("t", 0, 0, 0)), (0, 0, 3));
            assert_eq!(answer(&b, v, ask("t", 0, -1, 0)), (0, 0, 3));
            assert_eq!(answer(&b, v, ask("t", 0, -1, 1)), (0, -1, -1));
            assert_eq!(answer(&b, v, ask("t", 0, -1, -1)), (0, -1, -1));
            assert_eq!(answer(&b, v, ask("t", 0, -1, -5)), (0, -5, 1));
            assert_eq!(
                answer(&b, v, ask("t", 0, 3, 0)),
                (UNKNOWN_LEADER_EPOCH, -1, -1)
            );
            assert_eq!(
                answer(&b, v, ask("t", 0, -2, 0)),
                (FENCED_LEADER_EPOCH, -1, -1)
            );
            assert_eq!(answer(&b, v, ask("t", 4, -1, 0)), (3, -1, -1));
            assert_eq!(answer(&b, v, ask("nope", 0, -1, 0)), (3, -1, -1));
        }
    }
}
