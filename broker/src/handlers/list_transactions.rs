//! ListTransactions: the transactional ids the coordinator knows, filtered as Kafka filters
//! them: by state (names it does not know are listed back in `unknown_state_filters`), by
//! producer id, and from v1 by duration (only transactions running longer than it).

use kafka_protocol::messages::list_transactions_response::TransactionState as Listed;
use kafka_protocol::messages::{
    ListTransactionsRequest, ListTransactionsResponse, ProducerId, TransactionalId,
};
use sluice_log::ErrorCode;
use sluice_log::txn::TransactionState;

use super::{RequestContext, sb};
use crate::state::BrokerState;

/// Every state, to read filter names.
const STATES: [TransactionState; 8] = [
    TransactionState::Empty,
    TransactionState::Ongoing,
    TransactionState::PrepareCommit,
    TransactionState::PrepareAbort,
    TransactionState::CompleteCommit,
    TransactionState::CompleteAbort,
    TransactionState::Dead,
    TransactionState::PrepareEpochFence,
];

pub(crate) fn handle(
    state: &BrokerState,
    ctx: &RequestContext,
    req: ListTransactionsRequest,
) -> ListTransactionsResponse {
    let mut states = Vec::new();
    let mut unknown = Vec::new();
    for name in req.state_filters {
        match STATES.iter().find(|s| s.as_str() == name.as_str()) {
            Some(s) => states.push(*s),
            None => unknown.push(name),
        }
    }
    let producer_ids: Vec<i64> = req.producer_id_filters.iter().map(|p| p.0).collect();
    // v2 (KIP-1152): ids matching a regular expression, the whole id (Java's `matches`); empty
    // or null lists everything.
    let pattern = match req.transactional_id_pattern.as_deref() {
        Some(p) if ctx.api_version >= 2 && !p.is_empty() => {
            match regex::Regex::new(&format!("^(?:{p})$")) {
                Ok(re) => Some(re),
                Err(e) => {
                    // The response has no message field: the reason goes to the log.
                    tracing::debug!(pattern = p, error = %e, "ListTransactions: invalid pattern");
                    return ListTransactionsResponse::default()
                        .with_error_code(ErrorCode::INVALID_REGULAR_EXPRESSION.code())
                        .with_unknown_state_filters(unknown);
                }
            }
        }
        _ => None,
    };
    let duration = if ctx.api_version >= 1 {
        req.duration_filter
    } else {
        -1
    };
    let now = state.log.clock().now_ms();
    let listed = state
        .txns
        .list_transactions()
        .into_iter()
        .filter_map(|(id, _)| {
            // Described one by one: a transaction may have moved on since the list was taken.
            let m = state.txns.describe_transaction(&id).ok()?;
            let keep = pattern.as_ref().is_none_or(|re| re.is_match(&id))
                && (producer_ids.is_empty() || producer_ids.contains(&m.producer_id))
                && (states.is_empty() || states.contains(&m.state))
                && (duration < 0 || now.saturating_sub(m.start_ms) > duration);
            keep.then(|| {
                Listed::default()
                    .with_transactional_id(TransactionalId(sb(id)))
                    .with_producer_id(ProducerId(m.producer_id))
                    .with_transaction_state(sb(m.state.as_str()))
            })
        })
        .collect();
    ListTransactionsResponse::default()
        .with_unknown_state_filters(unknown)
        .with_transaction_states(listed)
}

#[cfg(test)]
mod tests {
    use sluice_log::TopicPartition;

    use super::*;
    use crate::handlers::test_util::{create_topic, ctx, encodes, test_state};

    fn ids(r: &ListTransactionsResponse) -> Vec<String> {
        let mut v: Vec<String> = r
            .transaction_states
            .iter()
            .map(|s| s.transactional_id.to_string())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn filters_by_state_producer_and_duration() {
        let b = test_state();
        create_topic(&b, "t", 1);
        let (open_pid, epoch) = b.txns.init_producer_id("open", 60_000).expect("init");
        b.txns
            .add_partitions("open", open_pid, epoch, &[TopicPartition::new("t", 0)])
            .expect("added");
        let (idle_pid, _) = b.txns.init_producer_id("idle", 60_000).expect("init");
        let all = handle(&b, &ctx(1), ListTransactionsRequest::default());
        assert_eq!(ids(&all), ["idle", "open"]);
        let by_state =
            ListTransactionsRequest::default().with_state_filters(vec![sb("Ongoing"), sb("Bogus")]);
        let r = handle(&b, &ctx(0), by_state);
        assert_eq!(ids(&r), ["open"]);
        // v2: a regular expression over the whole id; an invalid one is refused.
        let by_pattern =
            |p: &str| ListTransactionsRequest::default().with_transactional_id_pattern(Some(sb(p)));
        assert_eq!(ids(&handle(&b, &ctx(2), by_pattern("op.*"))), ["open"]);
        assert_eq!(
            ids(&handle(&b, &ctx(2), by_pattern("pen"))),
            Vec::<String>::new()
        );
        assert_eq!(ids(&handle(&b, &ctx(2), by_pattern(""))), ["idle", "open"]);
        assert_eq!(
            ids(&handle(&b, &ctx(1), by_pattern("op.*"))),
            ["idle", "open"],
            "v1 has no pattern"
        );
        let bad = handle(&b, &ctx(2), by_pattern("(unclosed"));
        assert_eq!(bad.error_code, ErrorCode::INVALID_REGULAR_EXPRESSION.code());
        assert!(bad.transaction_states.is_empty());
        assert_eq!(
            r.transaction_states[0].transaction_state.as_str(),
            "Ongoing"
        );
        assert_eq!(r.transaction_states[0].producer_id.0, open_pid);
        assert_eq!(r.unknown_state_filters, [sb("Bogus")]);
        let by_pid =
            ListTransactionsRequest::default().with_producer_id_filters(vec![ProducerId(idle_pid)]);
        assert_eq!(ids(&handle(&b, &ctx(0), by_pid)), ["idle"]);
        // Running longer than an hour: none of the open ones.
        let long = ListTransactionsRequest::default()
            .with_state_filters(vec![sb("Ongoing")])
            .with_duration_filter(3_600_000);
        assert!(ids(&handle(&b, &ctx(1), long.clone())).is_empty());
        // v0 has no duration filter.
        assert_eq!(ids(&handle(&b, &ctx(0), long)), ["open"]);
        for v in 0..=1 {
            encodes(&handle(&b, &ctx(v), ListTransactionsRequest::default()), v);
        }
    }
}
