//! AddOffsetsToTxn: adds the group's partition of `__consumer_offsets` to the producer's open
//! transaction, so the offsets its TxnOffsetCommit writes there get the transaction's marker.

use kafka_protocol::messages::{AddOffsetsToTxnRequest, AddOffsetsToTxnResponse};
use sluice_log::TopicPartition;
use sluice_log::group::CONSUMER_OFFSETS_TOPIC;

use super::RequestContext;
use super::txn_errors::coordinator_error;
use crate::handlers::codes::INVALID_REQUEST;
use crate::state::BrokerState;

/// The first version whose clients know PRODUCER_FENCED.
const FENCED_SINCE: i16 = 2;

/// The partition of `__consumer_offsets` holding `group`'s offsets.
pub(crate) fn offsets_partition(state: &BrokerState, group: &str) -> TopicPartition {
    TopicPartition::new(
        CONSUMER_OFFSETS_TOPIC,
        state.groups.offsets().partition_for(group),
    )
}

pub(crate) fn handle(
    state: &BrokerState,
    ctx: &RequestContext,
    req: AddOffsetsToTxnRequest,
) -> AddOffsetsToTxnResponse {
    let id = req.transactional_id.as_str();
    if id.is_empty() {
        return AddOffsetsToTxnResponse::default().with_error_code(INVALID_REQUEST);
    }
    let tp = offsets_partition(state, req.group_id.as_str());
    let code = match state.txns.add_partitions(
        id,
        req.producer_id.0,
        req.producer_epoch,
        std::slice::from_ref(&tp),
    ) {
        Ok(()) => 0,
        Err(e) => {
            let (code, message) = coordinator_error(&e, ctx.api_version, FENCED_SINCE);
            tracing::debug!(transactional_id = id, group = %req.group_id.as_str(), error = %message, "AddOffsetsToTxn refused");
            code
        }
    };
    AddOffsetsToTxnResponse::default().with_error_code(code)
}

#[cfg(test)]
pub(crate) mod tests {
    use kafka_protocol::messages::{GroupId, ProducerId, TransactionalId};

    use super::*;
    use crate::handlers::codes::{INVALID_PRODUCER_EPOCH, PRODUCER_FENCED};
    use crate::handlers::sb;
    use crate::handlers::test_util::{ctx, encodes, test_state};

    pub(crate) fn request(id: &str, pid: i64, epoch: i16, group: &str) -> AddOffsetsToTxnRequest {
        AddOffsetsToTxnRequest::default()
            .with_transactional_id(TransactionalId(sb(id)))
            .with_producer_id(ProducerId(pid))
            .with_producer_epoch(epoch)
            .with_group_id(GroupId(sb(group)))
    }

    #[test]
    fn adds_the_groups_offsets_partition() {
        let b = test_state();
        let (pid, epoch) = b.txns.init_producer_id("tx", 60_000).expect("init");
        let r = handle(&b, &ctx(3), request("tx", pid, epoch, "g"));
        assert_eq!(r.error_code, 0);
        let m = b.txns.describe_transaction("tx").expect("described");
        assert!(m.partitions.contains(&offsets_partition(&b, "g")));
        assert_eq!(
            handle(&b, &ctx(2), request("tx", pid, epoch + 1, "g")).error_code,
            PRODUCER_FENCED
        );
        assert_eq!(
            handle(&b, &ctx(1), request("tx", pid, epoch + 1, "g")).error_code,
            INVALID_PRODUCER_EPOCH
        );
        assert_eq!(
            handle(&b, &ctx(1), request("", pid, epoch, "g")).error_code,
            INVALID_REQUEST
        );
        for v in 0..=3 {
            encodes(&handle(&b, &ctx(v), request("tx", pid, epoch, "g")), v);
        }
    }
}
