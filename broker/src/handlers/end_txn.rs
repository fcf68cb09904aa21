//! EndTxn: commits or aborts the producer's transaction. The coordinator makes the decision
//! durable, writes a marker to every partition of the transaction (fsynced), and records the
//! outcome before this answers; a transaction's offsets in `__consumer_offsets` become
//! committed (or are dropped) with their marker. A retried end with the same outcome succeeds.

use kafka_protocol::messages::{EndTxnRequest, EndTxnResponse};

use super::RequestContext;
use super::txn_errors::coordinator_error;
use crate::handlers::codes::INVALID_REQUEST;
use crate::state::BrokerState;

/// The first version whose clients know PRODUCER_FENCED.
const FENCED_SINCE: i16 = 2;

pub(crate) fn handle(
    state: &BrokerState,
    ctx: &RequestContext,
    req: EndTxnRequest,
) -> EndTxnResponse {
    let id = req.transactional_id.as_str();
    if id.is_empty() {
        return EndTxnResponse::default().with_error_code(INVALID_REQUEST);
    }
    let code = match state.txns.end_transaction(
        id,
        req.producer_id.0,
        req.producer_epoch,
        req.committed,
    ) {
        Ok(()) => 0,
        Err(e) => {
            let (code, message) = coordinator_error(&e, ctx.api_version, FENCED_SINCE);
            tracing::debug!(transactional_id = id, commit = req.committed, error = %message, "EndTxn refused");
            code
        }
    };
    EndTxnResponse::default().with_error_code(code)
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::{InitProducerIdRequest, ProducerId, TransactionalId};
    use sluice_log::TopicPartition;

    use super::*;
    use crate::handlers::codes::{INVALID_PRODUCER_EPOCH, INVALID_TXN_STATE, PRODUCER_FENCED};
    use crate::handlers::test_util::{
        TestBroker, committed_values, create_topic, ctx, encodes, plain_batch, test_state,
        txn_batch,
    };
    use crate::handlers::txn_offset_commit::tests::{codes, commit};
    use crate::handlers::{
        add_offsets_to_txn, add_partitions_to_txn, init_producer_id, sb, txn_offset_commit,
    };

    fn end(id: &str, pid: i64, epoch: i16, commit: bool) -> EndTxnRequest {
        EndTxnRequest::default()
            .with_transactional_id(TransactionalId(sb(id)))
            .with_producer_id(ProducerId(pid))
            .with_producer_epoch(epoch)
            .with_committed(commit)
    }

    fn init(b: &TestBroker, id: &str) -> (i64, i16) {
        let r = init_producer_id::handle(
            b,
            &ctx(4),
            InitProducerIdRequest::default()
                .with_transactional_id(Some(TransactionalId(sb(id))))
                .with_transaction_timeout_ms(60_000),
        );
        assert_eq!(r.error_code, 0);
        (r.producer_id.0, r.producer_epoch)
    }

    /// One transaction through the handlers, left open: records to `out`, the offset of `in`
    /// for group `g`.
    async fn transaction(b: &TestBroker, pid: i64, epoch: i16, values: &[&str], offset: i64) {
        let r = add_partitions_to_txn::handle(
            b,
            &ctx(3),
            add_partitions_to_txn::tests::request("tx", pid, epoch, &[("out", &[0])]),
        );
        assert_eq!(
            r.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code,
            0
        );
        let out = b
            .log
            .partition(&TopicPartition::new("out", 0))
            .expect("out");
        let seq = out
            .producer_states()
            .iter()
            .find(|p| p.producer_id == pid && p.producer_epoch == epoch)
            .map_or(0, |p| p.last_sequence + 1);
        out.append(txn_batch(pid, epoch, seq, values))
            .expect("appended");
        let r = add_offsets_to_txn::handle(
            b,
            &ctx(3),
            add_offsets_to_txn::tests::request("tx", pid, epoch, "g"),
        );
        assert_eq!(r.error_code, 0);
        let r = commit(
            b,
            3,
            txn_offset_commit::tests::request("tx", pid, epoch, "g", &[("in", 0, offset)]),
        )
        .await;
        assert_eq!(codes(&r), [0]);
    }

    fn committed_offset(b: &TestBroker) -> Option<i64> {
        b.groups
            .fetch_offsets("g", Some(&[TopicPartition::new("in", 0)]))
            .first()
            .and_then(|(_, c)| c.as_ref().map(|c| c.offset))
    }

    fn setup() -> TestBroker {
        let b = test_state();
        create_topic(&b, "in", 1);
        create_topic(&b, "out", 1);
        b.log
            .partition(&TopicPartition::new("out", 0))
            .expect("out")
            .append(plain_batch(&["before"]))
            .expect("appended");
        b
    }

    #[tokio::test]
    async fn a_committed_transaction_shows_its_records_and_commits_its_offsets() {
        let b = setup();
        let out = TopicPartition::new("out", 0);
        let (pid, epoch) = init(&b, "tx");
        transaction(&b, pid, epoch, &["a", "b"], 10).await;
        // Open: read_committed stops at the transaction, the offsets are pending.
        assert_eq!(committed_values(&b, &out), ["before"]);
        assert_eq!(committed_offset(&b), None);
        let m = b.txns.describe_transaction("tx").expect("described");
        assert_eq!(m.partitions.len(), 2);
        assert_eq!(
            handle(&b, &ctx(3), end("tx", pid, epoch, true)).error_code,
            0
        );
        assert_eq!(committed_values(&b, &out), ["before", "a", "b"]);
        assert_eq!(committed_offset(&b), Some(10));
        // A retried commit is answered again; an abort of a committed transaction is not.
        assert_eq!(
            handle(&b, &ctx(3), end("tx", pid, epoch, true)).error_code,
            0
        );
        assert_eq!(
            handle(&b, &ctx(3), end("tx", pid, epoch, false)).error_code,
            INVALID_TXN_STATE
        );
        // The next transaction of the same producer continues its sequences.
        transaction(&b, pid, epoch, &["c"], 20).await;
        assert_eq!(
            handle(&b, &ctx(3), end("tx", pid, epoch, true)).error_code,
            0
        );
        assert_eq!(committed_values(&b, &out), ["before", "a", "b", "c"]);
        assert_eq!(committed_offset(&b), Some(20));
    }

    #[tokio::test]
    async fn an_aborted_transaction_hides_its_records_and_drops_its_offsets() {
        let b = setup();
        let out = TopicPartition::new("out", 0);
        let (pid, epoch) = init(&b, "tx");
        transaction(&b, pid, epoch, &["gone"], 10).await;
        assert_eq!(
            handle(&b, &ctx(0), end("tx", pid, epoch, false)).error_code,
            0
        );
        assert_eq!(committed_values(&b, &out), ["before"]);
        assert_eq!(committed_offset(&b), None);
        assert_eq!(b.groups.offsets().pending_count("g"), 0);
        let p = b.log.partition(&out).expect("out");
        assert_eq!(p.last_stable_offset(), p.log_end_offset());
    }

    #[tokio::test]
    async fn a_second_init_fences_the_first_producer() {
        let b = setup();
        let out = TopicPartition::new("out", 0);
        let (pid, old) = init(&b, "tx");
        transaction(&b, pid, old, &["zombie"], 10).await;
        let (same, new) = init(&b, "tx");
        assert_eq!(same, pid);
        assert!(new > old);
        // The zombie's transaction was aborted; it can neither end it nor add to it.
        assert_eq!(committed_values(&b, &out), ["before"]);
        assert_eq!(committed_offset(&b), None);
        assert_eq!(
            handle(&b, &ctx(2), end("tx", pid, old, true)).error_code,
            PRODUCER_FENCED
        );
        assert_eq!(
            handle(&b, &ctx(1), end("tx", pid, old, true)).error_code,
            INVALID_PRODUCER_EPOCH
        );
        let r = add_partitions_to_txn::handle(
            &b,
            &ctx(3),
            add_partitions_to_txn::tests::request("tx", pid, old, &[("out", &[0])]),
        );
        assert_eq!(
            r.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code,
            PRODUCER_FENCED
        );
        assert!(
            b.log
                .partition(&out)
                .expect("out")
                .append(txn_batch(pid, old, 1, &["late"]))
                .is_err()
        );
        // The new producer goes on.
        transaction(&b, pid, new, &["fresh"], 30).await;
        assert_eq!(handle(&b, &ctx(3), end("tx", pid, new, true)).error_code, 0);
        assert_eq!(committed_values(&b, &out), ["before", "fresh"]);
        assert_eq!(committed_offset(&b), Some(30));
    }

    #[test]
    fn ending_nothing_is_refused_and_every_version_encodes() {
        let b = test_state();
        let (pid, epoch) = init(&b, "tx");
        for v in 0..=3 {
            let r = handle(&b, &ctx(v), end("tx", pid, epoch, true));
            assert_eq!(r.error_code, INVALID_TXN_STATE);
            encodes(&r, v);
            let r = handle(&b, &ctx(v), end("", pid, epoch, true));
            assert_eq!(r.error_code, INVALID_REQUEST);
            encodes(&r, v);
        }
    }
}
