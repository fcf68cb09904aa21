//! One module per API: a function from a typed request to a typed response over the log and the
//! coordinators. No handler touches a socket; the connection layer (`connection.rs`) decodes,
//! calls [`dispatch`], and writes what comes back in request order.
//!
//! A handler's effects happen when it is called, in request order; only waiting (for an fsync
//! under acks=all, for data under a long-poll fetch, for a rebalance) is left to the returned
//! [`Reply::Later`], which the connection awaits while it goes on reading the next requests.

mod add_offsets_to_txn;
mod add_partitions_to_txn;
mod alter_configs;
pub(crate) mod api_versions;
pub(crate) mod codes;
mod configs;
mod create_partitions;
mod create_topics;
mod delete_groups;
mod delete_records;
mod delete_topics;
mod describe_cluster;
mod describe_configs;
mod describe_groups;
mod describe_log_dirs;
mod describe_producers;
mod describe_topic_partitions;
mod describe_transactions;
#[cfg(test)]
mod dispatch_tests;
mod end_txn;
mod fetch;
pub(crate) mod fetch_session;
mod find_coordinator;
mod heartbeat;
mod incremental_alter_configs;
mod init_producer_id;
mod join_group;
mod leave_group;
mod list_groups;
mod list_offsets;
mod list_transactions;
mod metadata;
mod offset_commit;
mod offset_delete;
mod offset_fetch;
mod offset_for_leader_epoch;
mod produce;
mod sync_group;
#[cfg(test)]
pub(crate) mod test_util;
mod txn_errors;
mod txn_offset_commit;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use kafka_protocol::messages::{ApiKey, RequestKind, ResponseKind};
use kafka_protocol::protocol::StrBytes;

use crate::Principal;
use crate::handlers::codes::{
    COORDINATOR_NOT_AVAILABLE, INVALID_COMMIT_OFFSET_SIZE, NOT_COORDINATOR,
};
use crate::state::BrokerState;

/// Who sent a request and how; handlers that authorize (later: ACLs) look here.
#[derive(Debug, Clone)]
pub struct RequestContext {
    /// The authenticated principal of the connection (`User:ANONYMOUS` on PLAINTEXT).
    pub principal: Arc<Principal>,
    /// The client's `client.id` (shares the request's bytes: no copy per request).
    pub client_id: StrBytes,
    /// The client's address, as Kafka shows it (`/127.0.0.1`), shared by the connection.
    pub client_host: Arc<str>,
    /// The request's API version.
    pub api_version: i16,
}

/// A response future; `Send` so the connection's writer task can await it.
pub type LaterResponse = Pin<Box<dyn Future<Output = ResponseKind> + Send + 'static>>;

/// What a handler gives back.
#[allow(
    clippy::large_enum_variant,
    reason = "moved once per request; boxing would allocate per request"
)]
pub enum Reply {
    /// The response, ready.
    Now(ResponseKind),
    /// The effects are done; the response comes when this resolves.
    Later(LaterResponse),
    /// No response at all (Produce with acks=0).
    None,
    /// Close the connection, for the logged reason.
    Close(String),
}

impl std::fmt::Debug for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reply::Now(r) => f.debug_tuple("Now").field(r).finish(),
            Reply::Later(_) => f.write_str("Later(..)"),
            Reply::None => f.write_str("None"),
            Reply::Close(why) => f.debug_tuple("Close").field(why).finish(),
        }
    }
}

/// The versions served of each API: Kafka 4.1's ranges (its ApiVersions answer; KIP-896 took
/// the oldest versions out in 4.0), topic ids included (Produce v13, Fetch v13+, Metadata v10+,
/// DeleteTopics v6, DescribeTopicPartitions). Where Sluice differs, deliberately: Produce
/// starts at v3 (Kafka 4 lists v0-2 for old librdkafka's feature checks but refuses them),
/// and the transaction APIs stop before KIP-890's versions (AddPartitionsToTxn v4-5,
/// AddOffsetsToTxn v4, EndTxn v4-5, TxnOffsetCommit v4-5: transactions v2, not implemented).
/// Only what is fully implemented is listed; ApiVersions advertises exactly this table.
pub(crate) const SUPPORTED: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 3, 13),
    (ApiKey::Fetch, 4, 18),
    (ApiKey::ListOffsets, 1, 10),
    (ApiKey::Metadata, 0, 13),
    (ApiKey::FindCoordinator, 0, 6),
    (ApiKey::ApiVersions, 0, 4),
    (ApiKey::CreateTopics, 2, 7),
    (ApiKey::DeleteTopics, 1, 6),
    (ApiKey::JoinGroup, 0, 9),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 5),
    (ApiKey::OffsetCommit, 2, 9),
    (ApiKey::OffsetFetch, 1, 9),
    (ApiKey::OffsetDelete, 0, 0),
    (ApiKey::ListGroups, 0, 5),
    (ApiKey::DescribeGroups, 0, 6),
    (ApiKey::DeleteGroups, 0, 2),
    (ApiKey::InitProducerId, 0, 5),
    (ApiKey::AddPartitionsToTxn, 0, 3),
    (ApiKey::AddOffsetsToTxn, 0, 3),
    (ApiKey::EndTxn, 0, 3),
    (ApiKey::TxnOffsetCommit, 0, 3),
    (ApiKey::DescribeProducers, 0, 0),
    (ApiKey::DescribeTransactions, 0, 0),
    (ApiKey::ListTransactions, 0, 2),
    (ApiKey::CreatePartitions, 0, 3),
    (ApiKey::DeleteRecords, 0, 2),
    (ApiKey::DescribeConfigs, 1, 4),
    (ApiKey::AlterConfigs, 0, 2),
    (ApiKey::IncrementalAlterConfigs, 0, 1),
    (ApiKey::DescribeCluster, 0, 2),
    (ApiKey::DescribeLogDirs, 1, 4),
    (ApiKey::OffsetForLeaderEpoch, 2, 4),
    (ApiKey::DescribeTopicPartitions, 0, 0),
];

/// The versions of `key` this broker serves, if any.
pub fn supported_versions(key: ApiKey) -> Option<(i16, i16)> {
    SUPPORTED
        .iter()
        .find(|(k, _, _)| *k == key)
        .map(|&(_, min, max)| (min, max))
}

/// Runs the handler of `request`.
pub async fn dispatch(
    state: &Arc<BrokerState>,
    ctx: &RequestContext,
    request: RequestKind,
) -> Reply {
    use RequestKind as R;
    use ResponseKind as W;
    match request {
        R::ApiVersions(r) => Reply::Now(W::ApiVersions(api_versions::handle(ctx, &r))),
        R::Metadata(r) => Reply::Now(W::Metadata(metadata::handle(state, ctx, r).await)),
        R::Produce(r) => produce::handle(state, ctx, r),
        R::Fetch(r) => fetch::handle(state, ctx, r),
        R::ListOffsets(r) => Reply::Now(W::ListOffsets(list_offsets::handle(state, ctx, r))),
        R::FindCoordinator(r) => {
            Reply::Now(W::FindCoordinator(find_coordinator::handle(state, ctx, r)))
        }
        R::CreateTopics(r) => Reply::Now(W::CreateTopics(create_topics::handle(state, ctx, r))),
        R::DeleteTopics(r) => Reply::Now(W::DeleteTopics(delete_topics::handle(state, ctx, r))),
        R::JoinGroup(r) => join_group::handle(state, ctx, r),
        R::SyncGroup(r) => sync_group::handle(state, ctx, r),
        R::Heartbeat(r) => Reply::Now(W::Heartbeat(heartbeat::handle(state, ctx, r))),
        R::LeaveGroup(r) => Reply::Now(W::LeaveGroup(leave_group::handle(state, ctx, r))),
        R::OffsetCommit(r) => offset_commit::handle(state, ctx, r),
        R::OffsetFetch(r) => Reply::Now(W::OffsetFetch(offset_fetch::handle(state, ctx, r))),
        R::OffsetDelete(r) => offset_delete::handle(state, ctx, r),
        R::ListGroups(r) => Reply::Now(W::ListGroups(list_groups::handle(state, ctx, r))),
        R::DescribeGroups(r) => {
            Reply::Now(W::DescribeGroups(describe_groups::handle(state, ctx, r)))
        }
        R::DeleteGroups(r) => delete_groups::handle(state, ctx, r),
        R::InitProducerId(r) => {
            Reply::Now(W::InitProducerId(init_producer_id::handle(state, ctx, r)))
        }
        R::AddPartitionsToTxn(r) => Reply::Now(W::AddPartitionsToTxn(
            add_partitions_to_txn::handle(state, ctx, r),
        )),
        R::AddOffsetsToTxn(r) => Reply::Now(W::AddOffsetsToTxn(add_offsets_to_txn::handle(
            state, ctx, r,
        ))),
        R::EndTxn(r) => Reply::Now(W::EndTxn(end_txn::handle(state, ctx, r))),
        R::TxnOffsetCommit(r) => txn_offset_commit::handle(state, ctx, r),
        R::DescribeProducers(r) => Reply::Now(W::DescribeProducers(describe_producers::handle(
            state, ctx, r,
        ))),
        R::DescribeTransactions(r) => Reply::Now(W::DescribeTransactions(
            describe_transactions::handle(state, ctx, r),
        )),
        R::ListTransactions(r) => Reply::Now(W::ListTransactions(list_transactions::handle(
            state, ctx, r,
        ))),
        R::CreatePartitions(r) => Reply::Now(W::CreatePartitions(create_partitions::handle(
            state, ctx, r,
        ))),
        R::DeleteRecords(r) => Reply::Now(W::DeleteRecords(delete_records::handle(state, ctx, r))),
        R::DescribeConfigs(r) => {
            Reply::Now(W::DescribeConfigs(describe_configs::handle(state, ctx, r)))
        }
        R::AlterConfigs(r) => Reply::Now(W::AlterConfigs(alter_configs::handle(state, ctx, r))),
        R::IncrementalAlterConfigs(r) => Reply::Now(W::IncrementalAlterConfigs(
            incremental_alter_configs::handle(state, ctx, r),
        )),
        R::DescribeCluster(r) => {
            Reply::Now(W::DescribeCluster(describe_cluster::handle(state, ctx, r)))
        }
        R::DescribeLogDirs(r) => {
            Reply::Now(W::DescribeLogDirs(describe_log_dirs::handle(state, ctx, r)))
        }
        R::OffsetForLeaderEpoch(r) => Reply::Now(W::OffsetForLeaderEpoch(
            offset_for_leader_epoch::handle(state, ctx, r),
        )),
        R::DescribeTopicPartitions(r) => Reply::Now(W::DescribeTopicPartitions(
            describe_topic_partitions::handle(state, ctx, r),
        )),
        other => {
            // The codec lets through only what SUPPORTED lists, and every listed API has an
            // arm above; reaching here is a bug in that table.
            Reply::Close(format!(
                "no handler for {:?}",
                std::mem::discriminant(&other)
            ))
        }
    }
}

/// The error code and message of a log error, for a handler's `Result<_, (i16, String)>`.
pub(crate) fn log_error(e: sluice_log::Error) -> (i16, String) {
    (e.error_code(), sluice_log::report(&e).to_string())
}

/// The error code and message of a log error, for a response.
pub(crate) fn error_of(e: &sluice_log::Error) -> (i16, Option<StrBytes>) {
    (
        e.error_code(),
        Some(StrBytes::from_string(sluice_log::report(e).to_string())),
    )
}

/// A `StrBytes` of an owned string.
pub(crate) fn sb(s: impl Into<String>) -> StrBytes {
    StrBytes::from_string(s.into())
}

/// The id of topic `name` as the wire has it (Kafka's zero id for a topic that does not exist).
pub(crate) fn topic_uuid(state: &BrokerState, name: &str) -> uuid::Uuid {
    state.log.topic_id(name).map_or(uuid::Uuid::nil(), |id| {
        uuid::Uuid::from_bytes(*id.as_bytes())
    })
}

/// The name of the topic whose id is `id`, if there is one.
pub(crate) fn topic_by_uuid(state: &BrokerState, id: uuid::Uuid) -> Option<String> {
    state
        .log
        .topic_name(sluice_log::log::TopicId::from_bytes(id.into_bytes()))
}

/// The error code Kafka's group coordinator answers for a failed write to
/// `__consumer_offsets` (an offset commit, an offset or group deletion): a missing partition
/// or a timeout is COORDINATOR_NOT_AVAILABLE, a storage error NOT_COORDINATOR (the client
/// looks the coordinator up again and retries), a batch too large INVALID_COMMIT_OFFSET_SIZE;
/// the coordinator's own errors (ILLEGAL_GENERATION, ...) are kept.
pub(crate) fn offsets_write_error(e: &sluice_log::Error) -> i16 {
    match e.error_code() {
        3 | 7 => COORDINATOR_NOT_AVAILABLE,
        56 => NOT_COORDINATOR,
        10 => INVALID_COMMIT_OFFSET_SIZE,
        code => code,
    }
}

/// A future run up to its first wait when the handler is called (see [`start`]).
pub(crate) enum Started<T> {
    /// It finished without waiting.
    Done(T),
    /// The rest of it.
    Waiting(Pin<Box<dyn Future<Output = T> + Send + 'static>>),
}

/// Polls `future` once, now: whatever it does before its first wait (the checks and the append
/// of an offset commit, say) happens when the handler is called, so in request order, even
/// though the connection awaits the rest later. The rest is polled again, with a real waker,
/// when it is awaited.
pub(crate) fn start<T: 'static>(future: impl Future<Output = T> + Send + 'static) -> Started<T> {
    let mut future: Pin<Box<dyn Future<Output = T> + Send>> = Box::pin(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(v) => Started::Done(v),
        Poll::Pending => Started::Waiting(future),
    }
}

impl<T: Send + 'static> Started<T> {
    /// The result, waiting for it if need be.
    pub(crate) async fn finish(self) -> T {
        match self {
            Started::Done(v) => v,
            Started::Waiting(f) => f.await,
        }
    }

    /// The reply: `Now` if it finished, else `Later`, with `respond` making the response.
    pub(crate) fn reply(self, respond: impl FnOnce(T) -> ResponseKind + Send + 'static) -> Reply {
        match self {
            Started::Done(v) => Reply::Now(respond(v)),
            Started::Waiting(f) => Reply::Later(Box::pin(async move { respond(f.await) })),
        }
    }
}
