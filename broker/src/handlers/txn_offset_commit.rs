//! TxnOffsetCommit: a transactional producer's consumer offsets (Kafka's
//! `sendOffsetsToTransaction`). They are written as one transactional batch of the producer to
//! the group's partition of `__consumer_offsets`, and stay pending, invisible to OffsetFetch,
//! until EndTxn's marker reaches that partition: committed with the transaction, dropped with
//! its abort.
//!
//! Checked first, as Kafka's coordinators do: the group id; that the producer id and epoch are
//! the transactional id's and its open transaction holds the group's partition (added by
//! AddOffsetsToTxn), so the marker will come; from v3 the member and generation, when the
//! producer names them. Partitions of unknown topics get UNKNOWN_TOPIC_OR_PARTITION and
//! offsets with oversized metadata OFFSET_METADATA_TOO_LARGE; the others are written. The
//! answer waits for the batch to be fsynced.

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{ResponseKind, TxnOffsetCommitRequest, TxnOffsetCommitResponse};
use parking_lot::Mutex;
use sluice_log::group::{CommittedOffset, OffsetAndMetadata};
use sluice_log::log::{AppendOrigin, Partition};
use sluice_log::record::{BatchBuilder, increment_sequence};
use sluice_log::txn::TransactionState;
use sluice_log::{Compression, Error, TopicPartition};

use super::add_offsets_to_txn::offsets_partition;
use super::{Reply, RequestContext, log_error};
use crate::handlers::codes::{
    COORDINATOR_NOT_AVAILABLE, INVALID_COMMIT_OFFSET_SIZE, INVALID_GROUP_ID,
    INVALID_PRODUCER_EPOCH, INVALID_PRODUCER_ID_MAPPING, INVALID_TXN_STATE, KAFKA_STORAGE_ERROR,
    MESSAGE_TOO_LARGE, NOT_COORDINATOR, OFFSET_METADATA_TOO_LARGE, UNKNOWN_TOPIC_OR_PARTITION,
};
use crate::state::BrokerState;

/// Kafka's `offsets.commit.timeout.ms`: how long the answer waits for the fsync.
const COMMIT_TIMEOUT: Duration = Duration::from_secs(5);

/// Serialises reading a producer's next sequence on a partition of `__consumer_offsets` and
/// appending at it, so two commits of one producer cannot take the same sequence.
static APPEND: Mutex<()> = Mutex::new(());

pub(crate) fn handle(
    state: &BrokerState,
    ctx: &RequestContext,
    req: TxnOffsetCommitRequest,
) -> Reply {
    let requested: Vec<(TopicPartition, i64, i32, Option<String>)> = req
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| {
                (
                    TopicPartition::new(t.name.as_str(), p.partition_index),
                    p.committed_offset,
                    p.committed_leader_epoch,
                    p.committed_metadata.as_ref().map(|m| m.to_string()),
                )
            })
        })
        .collect();
    let group = req.group_id.as_str();
    let mut codes = vec![0i16; requested.len()];
    let mut durable = None;
    match check(state, ctx, &req) {
        Err((code, why)) => {
            tracing::debug!(transactional_id = %req.transactional_id.as_str(), group, error = %why, "TxnOffsetCommit refused");
            codes.fill(code);
        }
        Ok(offsets_tp) => {
            let max = state.groups.offsets().config().metadata_max_bytes;
            let mut accepted = Vec::new();
            for (i, (tp, offset, leader_epoch, metadata)) in requested.iter().enumerate() {
                if state.log.partition(tp).is_err() {
                    codes[i] = UNKNOWN_TOPIC_OR_PARTITION;
                } else if metadata.as_ref().is_some_and(|m| m.len() > max) {
                    codes[i] = OFFSET_METADATA_TOO_LARGE;
                } else {
                    let leader_epoch =
                        (ctx.api_version >= 2 && *leader_epoch >= 0).then_some(*leader_epoch);
                    accepted.push((
                        i,
                        tp.clone(),
                        OffsetAndMetadata {
                            offset: *offset,
                            leader_epoch,
                            metadata: metadata.clone(),
                        },
                    ));
                }
            }
            if !accepted.is_empty() {
                let indexes: Vec<usize> = accepted.iter().map(|(i, _, _)| *i).collect();
                let offsets = accepted.into_iter().map(|(_, tp, o)| (tp, o)).collect();
                match write(state, &req, &offsets_tp, offsets) {
                    Ok((partition, end)) => durable = Some((partition, end, indexes)),
                    Err(e) => {
                        tracing::debug!(group, error = %sluice_log::report(&e), "transactional offsets not written");
                        let code = append_error_code(&e);
                        for i in indexes {
                            codes[i] = code;
                        }
                    }
                }
            }
        }
    }
    let topics = req.topics;
    let build = move |codes: &[i16]| {
        let mut codes = codes.iter().copied();
        let topics = topics
            .into_iter()
            .map(|t| {
                let partitions = t
                    .partitions
                    .iter()
                    .map(|p| {
                        TxnOffsetCommitResponsePartition::default()
                            .with_partition_index(p.partition_index)
                            .with_error_code(codes.next().unwrap_or(0))
                    })
                    .collect();
                TxnOffsetCommitResponseTopic::default()
                    .with_name(t.name)
                    .with_partitions(partitions)
            })
            .collect();
        ResponseKind::TxnOffsetCommit(TxnOffsetCommitResponse::default().with_topics(topics))
    };
    let Some((partition, end, written)) = durable else {
        return Reply::Now(build(&codes));
    };
    Reply::Later(Box::pin(async move {
        let waited = tokio::time::timeout(COMMIT_TIMEOUT, partition.wait_durable(end)).await;
        let failure = match waited {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(append_error_code(&e)),
            // Kafka answers an offset commit that timed out so: find the coordinator, retry.
            Err(_) => Some(COORDINATOR_NOT_AVAILABLE),
        };
        if let Some(code) = failure {
            for i in written {
                codes[i] = code;
            }
        }
        build(&codes)
    }))
}

/// The checks that fail the whole request; the group's partition of `__consumer_offsets` if
/// they pass.
fn check(
    state: &BrokerState,
    ctx: &RequestContext,
    req: &TxnOffsetCommitRequest,
) -> Result<TopicPartition, (i16, String)> {
    let group = req.group_id.as_str();
    if group.is_empty() {
        return Err((INVALID_GROUP_ID, "empty group id".into()));
    }
    let id = req.transactional_id.as_str();
    let offsets_tp = offsets_partition(state, group);
    let m = state.txns.describe_transaction(id).map_err(|e| {
        (
            INVALID_PRODUCER_ID_MAPPING,
            sluice_log::report(&e).to_string(),
        )
    })?;
    if m.producer_id != req.producer_id.0 {
        return Err((
            INVALID_PRODUCER_ID_MAPPING,
            format!(
                "producer id {} is not transactional id \"{id}\"'s",
                req.producer_id.0
            ),
        ));
    }
    if m.producer_epoch != req.producer_epoch {
        return Err((
            INVALID_PRODUCER_EPOCH,
            format!(
                "epoch {} of transactional id \"{id}\" is fenced by epoch {}",
                req.producer_epoch, m.producer_epoch
            ),
        ));
    }
    if m.state != TransactionState::Ongoing || !m.partitions.contains(&offsets_tp) {
        return Err((
            INVALID_TXN_STATE,
            format!(
                "{offsets_tp} is not in the open transaction of \"{id}\" (AddOffsetsToTxn first)"
            ),
        ));
    }
    // Kafka checks the member only when the producer names one, and the generation only when
    // it is given (v0-2 send neither).
    if ctx.api_version >= 3 && (!req.member_id.is_empty() || req.generation_id >= 0) {
        state
            .groups
            .check_txn_offset_commit(
                group,
                req.generation_id,
                req.member_id.as_str(),
                req.group_instance_id.as_ref().map(|s| s.as_str()),
            )
            .map_err(log_error)?;
    }
    Ok(offsets_tp)
}

/// Appends the offsets as one transactional batch of the producer and records them pending.
/// Returns the partition and the offset that must be durable.
fn write(
    state: &BrokerState,
    req: &TxnOffsetCommitRequest,
    offsets_tp: &TopicPartition,
    offsets: Vec<(TopicPartition, OffsetAndMetadata)>,
) -> sluice_log::Result<(Arc<Partition>, i64)> {
    let group = req.group_id.as_str();
    let (pid, epoch) = (req.producer_id.0, req.producer_epoch);
    let store = state.groups.offsets();
    let records = store.txn_offset_commit_records(group, offsets)?;
    let partition = state.log.partition(offsets_tp)?;
    let _serial = APPEND.lock();
    let sequence = partition
        .producer_states()
        .iter()
        .find(|p| p.producer_id == pid && p.producer_epoch == epoch && p.last_sequence >= 0)
        .map_or(0, |p| increment_sequence(p.last_sequence, 1));
    let mut b = BatchBuilder::new(Compression::None)
        .producer(pid, epoch, sequence)
        .transactional();
    for r in &records {
        b.append(
            r.committed.commit_timestamp,
            Some(&r.key),
            Some(&r.value),
            &[],
        );
    }
    let info = partition.append_from(b.build(), AppendOrigin::Coordinator)?;
    let pending: Vec<(TopicPartition, CommittedOffset, i64)> = records
        .into_iter()
        .zip(info.base_offset..)
        .map(|(r, offset)| (r.tp, r.committed, offset))
        .collect();
    store.add_pending(offsets_tp.partition, pid, epoch, group, pending);
    Ok((partition, info.last_offset + 1))
}

/// What Kafka answers an offset commit whose append failed with `e`.
fn append_error_code(e: &Error) -> i16 {
    match e.error_code() {
        UNKNOWN_TOPIC_OR_PARTITION => COORDINATOR_NOT_AVAILABLE,
        KAFKA_STORAGE_ERROR => NOT_COORDINATOR,
        MESSAGE_TOO_LARGE => INVALID_COMMIT_OFFSET_SIZE,
        code => code,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use kafka_protocol::messages::txn_offset_commit_request::{
        TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
    };
    use kafka_protocol::messages::{GroupId, ProducerId, TopicName, TransactionalId};

    use super::*;
    use crate::handlers::codes::ILLEGAL_GENERATION;
    use crate::handlers::sb;
    use crate::handlers::test_util::{create_topic, ctx, encodes, response, test_state};

    pub(crate) fn request(
        id: &str,
        pid: i64,
        epoch: i16,
        group: &str,
        offsets: &[(&str, i32, i64)],
    ) -> TxnOffsetCommitRequest {
        TxnOffsetCommitRequest::default()
            .with_transactional_id(TransactionalId(sb(id)))
            .with_producer_id(ProducerId(pid))
            .with_producer_epoch(epoch)
            .with_group_id(GroupId(sb(group)))
            .with_topics(
                offsets
                    .iter()
                    .map(|&(t, p, o)| {
                        TxnOffsetCommitRequestTopic::default()
                            .with_name(TopicName(sb(t)))
                            .with_partitions(vec![
                                TxnOffsetCommitRequestPartition::default()
                                    .with_partition_index(p)
                                    .with_committed_offset(o)
                                    .with_committed_metadata(Some(sb("m"))),
                            ])
                    })
                    .collect(),
            )
    }

    pub(crate) async fn commit(
        state: &BrokerState,
        version: i16,
        req: TxnOffsetCommitRequest,
    ) -> TxnOffsetCommitResponse {
        match response(handle(state, &ctx(version), req)).await {
            ResponseKind::TxnOffsetCommit(r) => r,
            other => panic!("unexpected {other:?}"),
        }
    }

    pub(crate) fn codes(r: &TxnOffsetCommitResponse) -> Vec<i16> {
        r.topics
            .iter()
            .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
            .collect()
    }

    #[tokio::test]
    async fn offsets_need_the_groups_partition_in_the_open_transaction() {
        let b = test_state();
        create_topic(&b, "in", 1);
        let (pid, epoch) = b.txns.init_producer_id("tx", 60_000).expect("init");
        let offsets = [("in", 0, 5)];
        // No AddOffsetsToTxn yet.
        let r = commit(&b, 3, request("tx", pid, epoch, "g", &offsets)).await;
        assert_eq!(codes(&r), [INVALID_TXN_STATE]);
        let tp = offsets_partition(&b, "g");
        b.txns
            .add_partitions("tx", pid, epoch, std::slice::from_ref(&tp))
            .expect("added");
        let r = commit(&b, 3, request("tx", pid + 1, epoch, "g", &offsets)).await;
        assert_eq!(codes(&r), [INVALID_PRODUCER_ID_MAPPING]);
        let r = commit(&b, 3, request("tx", pid, epoch + 1, "g", &offsets)).await;
        assert_eq!(codes(&r), [INVALID_PRODUCER_EPOCH]);
        let r = commit(&b, 3, request("nope", pid, epoch, "g", &offsets)).await;
        assert_eq!(codes(&r), [INVALID_PRODUCER_ID_MAPPING]);
        let r = commit(&b, 3, request("tx", pid, epoch, "", &offsets)).await;
        assert_eq!(codes(&r), [INVALID_GROUP_ID]);
        // A generation of a group the coordinator does not have (v3 names it).
        let r = commit(
            &b,
            3,
            request("tx", pid, epoch, "g", &offsets)
                .with_member_id(sb("ghost"))
                .with_generation_id(4),
        )
        .await;
        assert_eq!(codes(&r), [ILLEGAL_GENERATION]);
        // Unknown partitions and oversized metadata are refused one by one; the rest is
        // written, twice (the second batch continues the producer's sequence).
        let mut big = request(
            "tx",
            pid,
            epoch,
            "g",
            &[("in", 0, 6), ("gone", 0, 1), ("in", 0, 7)],
        );
        big.topics[2].partitions[0].committed_metadata = Some(sb("x".repeat(5000)));
        let r = commit(&b, 3, big).await;
        assert_eq!(
            codes(&r),
            [0, UNKNOWN_TOPIC_OR_PARTITION, OFFSET_METADATA_TOO_LARGE]
        );
        let r = commit(&b, 3, request("tx", pid, epoch, "g", &[("in", 0, 8)])).await;
        assert_eq!(codes(&r), [0]);
        // Pending until the transaction ends.
        assert_eq!(b.groups.offsets().pending_count("g"), 2);
        let committed = b
            .groups
            .fetch_offsets("g", Some(&[TopicPartition::new("in", 0)]));
        assert_eq!(committed[0].1, None);
        // v0-2 have no member or generation: not checked.
        let r = commit(
            &b,
            2,
            request("tx", pid, epoch, "g", &[("in", 0, 9)])
                .with_member_id(sb("ghost"))
                .with_generation_id(4),
        )
        .await;
        assert_eq!(codes(&r), [0]);
    }

    #[tokio::test]
    async fn every_version_encodes() {
        let b = test_state();
        create_topic(&b, "in", 1);
        let (pid, epoch) = b.txns.init_producer_id("tx", 60_000).expect("init");
        let tp = offsets_partition(&b, "g");
        b.txns
            .add_partitions("tx", pid, epoch, std::slice::from_ref(&tp))
            .expect("added");
        for v in 0..=3 {
            let r = commit(&b, v, request("tx", pid, epoch, "g", &[("in", 0, 1)])).await;
            assert_eq!(codes(&r), [0]);
            encodes(&r, v);
        }
    }
}
