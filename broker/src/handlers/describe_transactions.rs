//! DescribeTransactions: what the coordinator holds of each transactional id: state, producer
//! id and epoch, timeout, start time, and the partitions of the open transaction (an unknown
//! or Dead id: TRANSACTIONAL_ID_NOT_FOUND, from the coordinator).

use kafka_protocol::messages::describe_transactions_response::{TopicData, TransactionState};
use kafka_protocol::messages::{
    DescribeTransactionsRequest, DescribeTransactionsResponse, ProducerId, TopicName,
};

use super::{RequestContext, sb};
use crate::handlers::codes::INVALID_REQUEST;
use crate::state::BrokerState;

pub(crate) fn handle(
    state: &BrokerState,
    _ctx: &RequestContext,
    req: DescribeTransactionsRequest,
) -> DescribeTransactionsResponse {
    let states = req
        .transactional_ids
        .into_iter()
        .map(|id| {
            let r = TransactionState::default().with_transactional_id(id.clone());
            if id.is_empty() {
                return r.with_error_code(INVALID_REQUEST);
            }
            match state.txns.describe_transaction(id.as_str()) {
                Ok(m) => {
                    let mut topics: Vec<TopicData> = Vec::new();
                    for tp in &m.partitions {
                        match topics.last_mut() {
                            Some(t) if t.topic.as_str() == &*tp.topic => {
                                t.partitions.push(tp.partition);
                            }
                            _ => topics.push(
                                TopicData::default()
                                    .with_topic(TopicName(sb(tp.topic.to_string())))
                                    .with_partitions(vec![tp.partition]),
                            ),
                        }
                    }
                    r.with_transaction_state(sb(m.state.as_str()))
                        .with_transaction_timeout_ms(m.timeout_ms)
                        .with_transaction_start_time_ms(m.start_ms)
                        .with_producer_id(ProducerId(m.producer_id))
                        .with_producer_epoch(m.producer_epoch)
                        .with_topics(topics)
                }
                Err(e) => r.with_error_code(e.error_code()),
            }
        })
        .collect();
    DescribeTransactionsResponse::default().with_transaction_states(states)
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::TransactionalId;
    use sluice_log::TopicPartition;

    use super::*;
    use crate::handlers::codes::TRANSACTIONAL_ID_NOT_FOUND;
    use crate::handlers::test_util::{create_topic, ctx, encodes, test_state};

    #[test]
    fn describes_known_ids_and_refuses_unknown_ones() {
        let b = test_state();
        create_topic(&b, "t", 3);
        let (pid, epoch) = b.txns.init_producer_id("tx", 45_000).expect("init");
        let tps = [TopicPartition::new("t", 2), TopicPartition::new("t", 0)];
        b.txns
            .add_partitions("tx", pid, epoch, &tps)
            .expect("added");
        let ids = ["tx", "nope", ""]
            .into_iter()
            .map(|s| TransactionalId(sb(s)))
            .collect();
        let r = handle(
            &b,
            &ctx(0),
            DescribeTransactionsRequest::default().with_transactional_ids(ids),
        );
        encodes(&r, 0);
        let s = &r.transaction_states;
        assert_eq!(s[0].error_code, 0);
        assert_eq!(s[0].transaction_state.as_str(), "Ongoing");
        assert_eq!((s[0].producer_id.0, s[0].producer_epoch), (pid, epoch));
        assert_eq!(s[0].transaction_timeout_ms, 45_000);
        assert!(s[0].transaction_start_time_ms > 0);
        assert_eq!(s[0].topics.len(), 1);
        assert_eq!(s[0].topics[0].topic.as_str(), "t");
        assert_eq!(s[0].topics[0].partitions, [0, 2]);
        assert_eq!(s[1].error_code, TRANSACTIONAL_ID_NOT_FOUND);
        assert_eq!(s[1].transactional_id.as_str(), "nope");
        assert_eq!(s[2].error_code, INVALID_REQUEST);
    }
}
