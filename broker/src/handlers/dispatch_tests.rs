//! Every API this table names is served at every version SUPPORTED lists: `dispatch` has an arm
//! for it (a default request is answered, not closed on), and the answer encodes at that
//! version.

use bytes::BytesMut;
use kafka_protocol::messages::*;

use super::test_util::{ctx, response, test_state};
use super::{Reply, dispatch, supported_versions};

/// A default request of each API served.
fn requests() -> Vec<(ApiKey, RequestKind)> {
    use RequestKind as R;
    vec![
        (ApiKey::Produce, R::Produce(ProduceRequest::default())),
        (ApiKey::Fetch, R::Fetch(FetchRequest::default())),
        (
            ApiKey::ListOffsets,
            R::ListOffsets(ListOffsetsRequest::default()),
        ),
        (ApiKey::Metadata, R::Metadata(MetadataRequest::default())),
        (
            ApiKey::FindCoordinator,
            R::FindCoordinator(FindCoordinatorRequest::default()),
        ),
        (
            ApiKey::ApiVersions,
            R::ApiVersions(ApiVersionsRequest::default()),
        ),
        (
            ApiKey::CreateTopics,
            R::CreateTopics(CreateTopicsRequest::default()),
        ),
        (
            ApiKey::DeleteTopics,
            R::DeleteTopics(DeleteTopicsRequest::default()),
        ),
        (
            ApiKey::InitProducerId,
            R::InitProducerId(InitProducerIdRequest::default().with_transactional_id(None)),
        ),
        (
            ApiKey::AddPartitionsToTxn,
            R::AddPartitionsToTxn(AddPartitionsToTxnRequest::default()),
        ),
        (
            ApiKey::AddOffsetsToTxn,
            R::AddOffsetsToTxn(AddOffsetsToTxnRequest::default()),
        ),
        (ApiKey::EndTxn, R::EndTxn(EndTxnRequest::default())),
        (
            ApiKey::TxnOffsetCommit,
            R::TxnOffsetCommit(TxnOffsetCommitRequest::default()),
        ),
        (
            ApiKey::DescribeProducers,
            R::DescribeProducers(DescribeProducersRequest::default()),
        ),
        (
            ApiKey::DescribeTransactions,
            R::DescribeTransactions(DescribeTransactionsRequest::default()),
        ),
        (
            ApiKey::ListTransactions,
            R::ListTransactions(ListTransactionsRequest::default()),
        ),
        (
            ApiKey::CreatePartitions,
            R::CreatePartitions(CreatePartitionsRequest::default()),
        ),
        (
            ApiKey::DeleteRecords,
            R::DeleteRecords(DeleteRecordsRequest::default()),
        ),
        (
            ApiKey::DescribeConfigs,
            R::DescribeConfigs(DescribeConfigsRequest::default()),
        ),
        (
            ApiKey::AlterConfigs,
            R::AlterConfigs(AlterConfigsRequest::default()),
        ),
        (
            ApiKey::IncrementalAlterConfigs,
            R::IncrementalAlterConfigs(IncrementalAlterConfigsRequest::default()),
        ),
        (
            ApiKey::DescribeCluster,
            R::DescribeCluster(DescribeClusterRequest::default()),
        ),
        (
            ApiKey::DescribeLogDirs,
            R::DescribeLogDirs(DescribeLogDirsRequest::default()),
        ),
        (
            ApiKey::OffsetForLeaderEpoch,
            R::OffsetForLeaderEpoch(OffsetForLeaderEpochRequest::default()),
        ),
        (
            ApiKey::DescribeTopicPartitions,
            R::DescribeTopicPartitions(DescribeTopicPartitionsRequest::default()),
        ),
        (ApiKey::JoinGroup, R::JoinGroup(JoinGroupRequest::default())),
        (ApiKey::SyncGroup, R::SyncGroup(SyncGroupRequest::default())),
        (ApiKey::Heartbeat, R::Heartbeat(HeartbeatRequest::default())),
        (
            ApiKey::LeaveGroup,
            R::LeaveGroup(LeaveGroupRequest::default()),
        ),
        (
            ApiKey::OffsetCommit,
            R::OffsetCommit(OffsetCommitRequest::default()),
        ),
        (
            ApiKey::OffsetFetch,
            R::OffsetFetch(OffsetFetchRequest::default()),
        ),
        (
            ApiKey::OffsetDelete,
            R::OffsetDelete(OffsetDeleteRequest::default()),
        ),
        (
            ApiKey::ListGroups,
            R::ListGroups(ListGroupsRequest::default()),
        ),
        (
            ApiKey::DescribeGroups,
            R::DescribeGroups(DescribeGroupsRequest::default()),
        ),
        (
            ApiKey::DeleteGroups,
            R::DeleteGroups(DeleteGroupsRequest::default()),
        ),
    ]
}

#[test]
fn every_supported_api_is_in_the_table() {
    let listed: Vec<ApiKey> = requests().into_iter().map(|(k, _)| k).collect();
    for (key, _, _) in super::SUPPORTED {
        assert!(
            listed.contains(key),
            "{key:?} is served but not exercised here"
        );
    }
}

#[tokio::test]
async fn every_api_is_dispatched_and_answers_at_every_version() {
    let b = test_state();
    for (key, request) in requests() {
        let (min, max) =
            supported_versions(key).unwrap_or_else(|| panic!("{key:?} is not in SUPPORTED"));
        for v in min..=max {
            let reply = dispatch(&b.state, &ctx(v), request.clone()).await;
            let response = match reply {
                // Produce with acks=0 (the default) has no answer.
                Reply::None if key == ApiKey::Produce => continue,
                Reply::Close(why) => panic!("{key:?} v{v}: closed: {why}"),
                other => response(other).await,
            };
            let mut buf = BytesMut::new();
            if let Err(e) = response.encode(&mut buf, v) {
                panic!("{key:?} v{v}: {e:#}");
            }
        }
    }
}
