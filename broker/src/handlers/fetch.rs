//! Fetch: stored batches as bytes (never decoded here), long-polling until `min_bytes` or
//! `max_wait_ms`, within `max_bytes` and each partition's limit, at either isolation level, in
//! or out of an incremental fetch session. v13+ names topics by id (KIP-516): an id no topic
//! has is answered UNKNOWN_TOPIC_ID, as Kafka does.

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::fetch_response::{
    AbortedTransaction, FetchableTopicResponse, PartitionData,
};
use kafka_protocol::messages::{FetchRequest, FetchResponse, ProducerId, ResponseKind, TopicName};
use sluice_log::TopicPartition;
use uuid::Uuid;

use super::fetch_session::{PartitionKey, Resolved, SessionPartition, sessionless};
use super::{Reply, RequestContext, topic_by_uuid};
use crate::handlers::codes::{OFFSET_OUT_OF_RANGE, UNKNOWN_TOPIC_ID};
use crate::state::BrokerState;

const READ_COMMITTED: i8 = 1;

pub(crate) fn handle(state: &Arc<BrokerState>, ctx: &RequestContext, req: FetchRequest) -> Reply {
    let version = ctx.api_version;
    let topic_ids = version >= 13;
    let key = |name: &TopicName, id: Uuid, partition: i32| {
        if topic_ids {
            PartitionKey::Id(id, partition)
        } else {
            PartitionKey::Name(TopicPartition::new(name.as_str(), partition))
        }
    };
    let requested: Vec<(PartitionKey, i64, i32)> = req
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| {
                (
                    key(&t.topic, t.topic_id, p.partition),
                    p.fetch_offset,
                    p.partition_max_bytes,
                )
            })
        })
        .collect();
    let resolved = if version >= 7 {
        let forgotten = req
            .forgotten_topics_data
            .iter()
            .flat_map(|t| t.partitions.iter().map(|&p| key(&t.topic, t.topic_id, p)))
            .collect();
        state.fetch_sessions.resolve(
            req.session_id,
            req.session_epoch,
            topic_ids,
            requested,
            forgotten,
        )
    } else {
        sessionless(requested)
    };
    let (session_id, partitions, incremental) = match resolved {
        Resolved::Error(code) => {
            return Reply::Now(ResponseKind::Fetch(
                FetchResponse::default().with_error_code(code),
            ));
        }
        Resolved::Full {
            session_id,
            partitions,
        } => (session_id, partitions, false),
        Resolved::Incremental {
            session_id,
            partitions,
        } => (session_id, partitions, true),
    };
    let plan = Plan {
        committed: version >= 4 && req.isolation_level == READ_COMMITTED,
        max_bytes: usize::try_from(if version >= 3 {
            req.max_bytes
        } else {
            i32::MAX
        })
        .unwrap_or(0),
        min_bytes: usize::try_from(req.min_bytes).unwrap_or(0),
        max_wait: Duration::from_millis(u64::try_from(req.max_wait_ms).unwrap_or(0)),
        version,
        incremental,
        session_id,
    };
    let state = Arc::clone(state);
    Reply::Later(Box::pin(async move {
        ResponseKind::Fetch(long_poll(&state, &plan, &partitions).await)
    }))
}

struct Plan {
    committed: bool,
    max_bytes: usize,
    min_bytes: usize,
    max_wait: Duration,
    version: i16,
    incremental: bool,
    session_id: i32,
}

/// Reads; if that is less than `min_bytes`, waits for appends and reads again, until enough
/// arrived or `max_wait` passed. Each pass is woken only by an append to one of the fetched
/// partitions (or the deadline): appends elsewhere in the log do not make it read again. A
/// broker shutting down answers at once with what there is, as Kafka completes its delayed
/// fetches on shutdown.
async fn long_poll(
    state: &BrokerState,
    plan: &Plan,
    partitions: &[SessionPartition],
) -> FetchResponse {
    let deadline = tokio::time::Instant::now() + plan.max_wait;
    let mut shutdown = state.shutdown_watch();
    // The partitions by name, as now: a topic id no topic has is left out (it is answered
    // UNKNOWN_TOPIC_ID at once, so there is no waiting for it).
    let named: Vec<Option<TopicPartition>> = partitions
        .iter()
        .map(|p| topic_partition(state, &p.key))
        .collect();
    loop {
        let mut appended = state.log.next_append_to(named.iter().flatten());
        let read = read_once(state, plan, partitions, &named);
        let done = read.bytes >= plan.min_bytes.max(1)
            || read.errors
            || plan.max_wait.is_zero()
            || *shutdown.borrow_and_update()
            || tokio::time::Instant::now() >= deadline;
        if done {
            state.fetch_sessions.sent(plan.session_id, &read.sent);
            let mut r = FetchResponse::default().with_responses(read.topics);
            if plan.version >= 7 {
                r = r.with_session_id(plan.session_id);
            }
            return r;
        }
        tokio::select! {
            () = &mut appended => {}
            () = tokio::time::sleep_until(deadline) => {}
            // An error means the state is gone, which is a shutdown too.
            _ = shutdown.changed() => {}
        }
    }
}

/// The partition `key` names: by name as it is, by id the topic that has that id now.
fn topic_partition(state: &BrokerState, key: &PartitionKey) -> Option<TopicPartition> {
    match key {
        PartitionKey::Name(tp) => Some(tp.clone()),
        PartitionKey::Id(id, p) => {
            topic_by_uuid(state, *id).map(|name| TopicPartition::new(name.as_str(), *p))
        }
    }
}

struct Read {
    topics: Vec<FetchableTopicResponse>,
    bytes: usize,
    errors: bool,
    sent: Vec<(PartitionKey, (i64, i64, i64))>,
}

fn read_once(
    state: &BrokerState,
    plan: &Plan,
    partitions: &[SessionPartition],
    named: &[Option<TopicPartition>],
) -> Read {
    let mut out = Read {
        topics: Vec::new(),
        bytes: 0,
        errors: false,
        sent: Vec::new(),
    };
    for (sp, tp) in partitions.iter().zip(named) {
        let data = match tp {
            Some(tp) => read_partition(state, plan, sp, tp, out.bytes),
            None => PartitionData::default()
                .with_partition_index(sp.key.partition())
                .with_error_code(UNKNOWN_TOPIC_ID)
                .with_high_watermark(-1)
                .with_aborted_transactions(None)
                .with_records(Some(bytes::Bytes::new())),
        };
        let marks = (
            data.high_watermark,
            data.last_stable_offset,
            data.log_start_offset,
        );
        let has_records = data.records.as_ref().is_some_and(|r| !r.is_empty());
        let news =
            !plan.incremental || has_records || data.error_code != 0 || sp.last_sent != Some(marks);
        if !news {
            continue;
        }
        if data.error_code != 0 {
            out.errors = true;
        }
        out.bytes += data.records.as_ref().map_or(0, |r| r.len());
        out.sent.push((sp.key.clone(), marks));
        let (name, id) = sp.key.topic();
        match out.topics.last_mut() {
            Some(t) if t.topic == name && t.topic_id == id => t.partitions.push(data),
            _ => out.topics.push(
                FetchableTopicResponse::default()
                    .with_topic(name)
                    .with_topic_id(id)
                    .with_partitions(vec![data]),
            ),
        }
    }
    out
}

fn read_partition(
    state: &BrokerState,
    plan: &Plan,
    sp: &SessionPartition,
    tp: &TopicPartition,
    so_far: usize,
) -> PartitionData {
    let base = PartitionData::default()
        .with_partition_index(tp.partition)
        .with_aborted_transactions(None);
    let partition = match state.log.partition(tp) {
        Ok(p) => p,
        Err(e) => {
            return base
                .with_error_code(e.error_code())
                .with_high_watermark(-1)
                .with_records(Some(bytes::Bytes::new()));
        }
    };
    let mut data = base.with_high_watermark(partition.high_watermark());
    if plan.version >= 4 {
        data = data.with_last_stable_offset(partition.last_stable_offset());
    }
    if plan.version >= 5 {
        data = data.with_log_start_offset(partition.log_start_offset());
    }
    // Kafka's OFFSET_OUT_OF_RANGE: before the log start or past the log end.
    if sp.fetch_offset < partition.log_start_offset()
        || sp.fetch_offset > partition.log_end_offset()
    {
        return data
            .with_error_code(OFFSET_OUT_OF_RANGE)
            .with_records(Some(bytes::Bytes::new()));
    }
    let remaining = plan.max_bytes.saturating_sub(so_far);
    let limit = usize::try_from(sp.max_bytes).unwrap_or(0).min(remaining);
    let read = if limit == 0 {
        Ok(None)
    } else if plan.committed {
        partition.read_committed(sp.fetch_offset, limit).map(Some)
    } else {
        partition.read(sp.fetch_offset, limit).map(Some)
    };
    match read {
        Ok(Some(mut fetched)) => {
            // Only the first partition with data may exceed the limits (so a consumer always
            // progresses); later ones get nothing rather than too much.
            if so_far > 0 && fetched.records.len() > limit {
                fetched.records = bytes::Bytes::new();
                fetched.aborted_transactions.clear();
            }
            if plan.committed {
                data = data.with_aborted_transactions(Some(
                    fetched
                        .aborted_transactions
                        .iter()
                        .map(|a| {
                            AbortedTransaction::default()
                                .with_producer_id(ProducerId(a.producer_id))
                                .with_first_offset(a.first_offset)
                        })
                        .collect(),
                ));
            }
            data.with_records(Some(fetched.records))
        }
        Ok(None) => data
            .with_aborted_transactions(plan.committed.then(Vec::new))
            .with_records(Some(bytes::Bytes::new())),
        Err(e) => data
            .with_error_code(e.error_code())
            .with_records(Some(bytes::Bytes::new())),
    }
}
