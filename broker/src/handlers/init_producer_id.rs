//! InitProducerId: a new idempotent producer id from the log (no transactional id), or the
//! transactional id's producer id with a bumped epoch from the transaction coordinator, which
//! fences the previous producer of that id. `transaction.timeout.ms` must be within
//! `transaction.max.timeout.ms`. From v3 a producer may name its current producer id and epoch
//! to have that epoch bumped after an error (KIP-360); a retry naming the epoch that bump
//! replaced gets the same answer; anything else that is no longer the id's is fenced.

use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};

use super::RequestContext;
use super::txn_errors::coordinator_error;
use crate::handlers::codes::INVALID_REQUEST;
use crate::state::BrokerState;

/// The first version whose clients know PRODUCER_FENCED.
const FENCED_SINCE: i16 = 4;

pub(crate) fn handle(
    state: &BrokerState,
    ctx: &RequestContext,
    req: InitProducerIdRequest,
) -> InitProducerIdResponse {
    let version = ctx.api_version;
    let (pid, epoch) = (req.producer_id.0, req.producer_epoch);
    let fail = |code: i16| {
        InitProducerIdResponse::default()
            .with_error_code(code)
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1)
    };
    if version >= 3 && ((pid == -1) != (epoch == -1)) {
        tracing::debug!(
            producer_id = pid,
            producer_epoch = epoch,
            "InitProducerId with only one of producer id and epoch"
        );
        return fail(INVALID_REQUEST);
    }
    let outcome = match &req.transactional_id {
        // Kafka hands an idempotent producer a fresh id whatever it names.
        None => state.log.init_producer_id(),
        Some(id) => {
            let expected = (version >= 3 && pid != -1).then_some((pid, epoch));
            state.txns.init_producer_id_checked(
                id.as_str(),
                req.transaction_timeout_ms,
                state.config.transaction_max_timeout_ms,
                expected,
            )
        }
    };
    match outcome {
        Ok((producer_id, producer_epoch)) => InitProducerIdResponse::default()
            .with_producer_id(ProducerId(producer_id))
            .with_producer_epoch(producer_epoch),
        Err(e) => {
            let (code, message) = coordinator_error(&e, version, FENCED_SINCE);
            tracing::debug!(
                transactional_id = req.transactional_id.as_deref().map(|s| s.as_str()),
                principal = %ctx.principal,
                error = %message,
                "InitProducerId refused"
            );
            fail(code)
        }
    }
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::TransactionalId;

    use super::*;
    use crate::config::BrokerConfig;
    use crate::handlers::codes::{
        INVALID_PRODUCER_EPOCH, INVALID_TRANSACTION_TIMEOUT, PRODUCER_FENCED,
    };
    use crate::handlers::sb;
    use crate::handlers::test_util::{broker_with, ctx, encodes, test_state};

    fn idempotent() -> InitProducerIdRequest {
        InitProducerIdRequest::default().with_transactional_id(None)
    }

    fn txn_req(id: &str, timeout_ms: i32) -> InitProducerIdRequest {
        InitProducerIdRequest::default()
            .with_transactional_id(Some(TransactionalId(sb(id))))
            .with_transaction_timeout_ms(timeout_ms)
    }

    #[test]
    fn idempotent_producers_get_fresh_ids_and_transactional_ids_keep_theirs() {
        let b = test_state();
        let a = handle(&b, &ctx(0), idempotent());
        let c = handle(&b, &ctx(5), idempotent());
        assert_eq!((a.error_code, a.producer_epoch), (0, 0));
        assert_ne!(a.producer_id, c.producer_id);
        let first = handle(&b, &ctx(4), txn_req("tx", 60_000));
        assert_eq!(first.error_code, 0);
        let second = handle(&b, &ctx(4), txn_req("tx", 60_000));
        assert_eq!(second.producer_id, first.producer_id);
        assert_eq!(second.producer_epoch, first.producer_epoch + 1);
    }

    #[test]
    fn the_timeout_must_be_within_transaction_max_timeout_ms() {
        let mut config = BrokerConfig::default();
        config
            .set("transaction.max.timeout.ms", "30000")
            .expect("valid");
        let b = broker_with(config);
        for bad in [0, -5, 30_001] {
            let r = handle(&b, &ctx(4), txn_req("tx", bad));
            assert_eq!(r.error_code, INVALID_TRANSACTION_TIMEOUT, "{bad}");
            assert_eq!((r.producer_id.0, r.producer_epoch), (-1, -1));
        }
        assert_eq!(handle(&b, &ctx(4), txn_req("tx", 30_000)).error_code, 0);
        // Not checked without a transactional id.
        let idem = idempotent().with_transaction_timeout_ms(-1);
        assert_eq!(handle(&b, &ctx(4), idem).error_code, 0);
    }

    #[test]
    fn kip_360_bumps_the_named_epoch_and_fences_a_stale_one() {
        let b = test_state();
        let first = handle(&b, &ctx(4), txn_req("tx", 60_000));
        let bump = |pid: i64, epoch: i16, version: i16| {
            handle(
                &b,
                &ctx(version),
                txn_req("tx", 60_000)
                    .with_producer_id(ProducerId(pid))
                    .with_producer_epoch(epoch),
            )
        };
        let bumped = bump(first.producer_id.0, first.producer_epoch, 4);
        assert_eq!(bumped.error_code, 0);
        assert_eq!(bumped.producer_id, first.producer_id);
        assert_eq!(bumped.producer_epoch, first.producer_epoch + 1);
        // The same request again (its answer was lost): the same answer, no second bump.
        let retried = bump(first.producer_id.0, first.producer_epoch, 4);
        assert_eq!(retried.error_code, 0);
        assert_eq!(retried.producer_epoch, bumped.producer_epoch);
        // The producer bumps again; the first epoch is stale now.
        let again = bump(bumped.producer_id.0, bumped.producer_epoch, 4);
        assert_eq!(again.producer_epoch, bumped.producer_epoch + 1);
        let stale = bump(first.producer_id.0, first.producer_epoch, 4);
        assert_eq!(stale.error_code, PRODUCER_FENCED);
        let stale = bump(first.producer_id.0, first.producer_epoch, 3);
        assert_eq!(stale.error_code, INVALID_PRODUCER_EPOCH);
        // Half a producer id/epoch pair is malformed.
        assert_eq!(bump(first.producer_id.0, -1, 4).error_code, INVALID_REQUEST);
        // An empty transactional id is not a transactional id.
        assert_eq!(
            handle(&b, &ctx(4), txn_req("", 60_000)).error_code,
            INVALID_REQUEST
        );
    }

    #[test]
    fn every_version_encodes() {
        let b = test_state();
        for v in 0..=5 {
            encodes(&handle(&b, &ctx(v), txn_req("tx", 60_000)), v);
            encodes(&handle(&b, &ctx(v), txn_req("tx", 0)), v);
            encodes(&handle(&b, &ctx(v), idempotent()), v);
        }
    }
}
