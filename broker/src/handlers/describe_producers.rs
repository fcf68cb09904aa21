//! DescribeProducers: the producers each partition knows, with epoch, last sequence and
//! timestamp, and the first offset of an open transaction (`kafka-transactions.sh
//! describe-producers`, to find a hanging transaction).

use kafka_protocol::messages::describe_producers_response::{
    PartitionResponse, ProducerState, TopicResponse,
};
use kafka_protocol::messages::{DescribeProducersRequest, DescribeProducersResponse, ProducerId};
use sluice_log::TopicPartition;

use super::{RequestContext, error_of};
use crate::state::BrokerState;

pub(crate) fn handle(
    state: &BrokerState,
    _ctx: &RequestContext,
    req: DescribeProducersRequest,
) -> DescribeProducersResponse {
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let partitions = t
                .partition_indexes
                .iter()
                .map(|&p| {
                    let r = PartitionResponse::default()
                        .with_partition_index(p)
                        .with_error_message(None);
                    match state
                        .log
                        .partition(&TopicPartition::new(t.name.as_str(), p))
                    {
                        Ok(partition) => r.with_active_producers(
                            partition
                                .producer_states()
                                .into_iter()
                                .map(|s| {
                                    ProducerState::default()
                                        .with_producer_id(ProducerId(s.producer_id))
                                        .with_producer_epoch(i32::from(s.producer_epoch))
                                        .with_last_sequence(s.last_sequence)
                                        .with_last_timestamp(s.last_timestamp)
                                        .with_coordinator_epoch(s.coordinator_epoch)
                                        .with_current_txn_start_offset(
                                            s.current_txn_start_offset.unwrap_or(-1),
                                        )
                                })
                                .collect(),
                        ),
                        Err(e) => {
                            let (code, message) = error_of(&e);
                            r.with_error_code(code).with_error_message(message)
                        }
                    }
                })
                .collect();
            TopicResponse::default()
                .with_name(t.name)
                .with_partitions(partitions)
        })
        .collect();
    DescribeProducersResponse::default().with_topics(topics)
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::TopicName;
    use kafka_protocol::messages::describe_producers_request::TopicRequest;

    use super::*;
    use crate::handlers::sb;
    use crate::handlers::test_util::{create_topic, ctx, encodes, test_state, txn_batch};

    #[test]
    fn shows_each_partitions_producers_and_open_transactions() {
        let b = test_state();
        create_topic(&b, "t", 2);
        let (pid, epoch) = b.txns.init_producer_id("tx", 60_000).expect("init");
        let tp = TopicPartition::new("t", 1);
        b.txns
            .add_partitions("tx", pid, epoch, std::slice::from_ref(&tp))
            .expect("added");
        b.log
            .partition(&tp)
            .expect("partition")
            .append(txn_batch(pid, epoch, 0, &["a", "b", "c"]))
            .expect("appended");
        let req = DescribeProducersRequest::default().with_topics(vec![
            TopicRequest::default()
                .with_name(TopicName(sb("t")))
                .with_partition_indexes(vec![0, 1, 9]),
            TopicRequest::default()
                .with_name(TopicName(sb("nope")))
                .with_partition_indexes(vec![0]),
        ]);
        let r = handle(&b, &ctx(0), req);
        encodes(&r, 0);
        let t = &r.topics[0].partitions;
        assert!(t[0].active_producers.is_empty());
        assert_eq!(t[0].error_code, 0);
        let p = &t[1].active_producers;
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].producer_id.0, pid);
        assert_eq!(p[0].producer_epoch, i32::from(epoch));
        assert_eq!(p[0].last_sequence, 2);
        assert_eq!(p[0].last_timestamp, 1_700_000_000_000);
        assert_eq!(p[0].current_txn_start_offset, 0);
        assert_eq!(p[0].coordinator_epoch, -1, "no marker yet");
        assert_eq!(t[2].error_code, 3);
        assert_eq!(r.topics[1].partitions[0].error_code, 3);
        assert!(r.topics[1].partitions[0].error_message.is_some());
        b.txns
            .end_transaction("tx", pid, epoch, true)
            .expect("committed");
        let req = DescribeProducersRequest::default().with_topics(vec![
            TopicRequest::default()
                .with_name(TopicName(sb("t")))
                .with_partition_indexes(vec![1]),
        ]);
        let r = handle(&b, &ctx(0), req);
        let p = &r.topics[0].partitions[0].active_producers[0];
        assert_eq!(p.current_txn_start_offset, -1);
        // The commit marker's coordinator epoch (one node: the coordinator's epoch 0).
        assert_eq!(p.coordinator_epoch, 0);
    }
}
