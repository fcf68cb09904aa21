//! ApiVersions: what this broker serves, from the one table the codec also checks.

use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse};

use super::{RequestContext, SUPPORTED};

/// Every API and version range served.
pub(crate) fn api_keys() -> Vec<ApiVersion> {
    SUPPORTED
        .iter()
        .map(|&(key, min, max)| {
            ApiVersion::default()
                .with_api_key(key as i16)
                .with_min_version(min)
                .with_max_version(max)
        })
        .collect()
}

pub(crate) fn handle(ctx: &RequestContext, req: &ApiVersionsRequest) -> ApiVersionsResponse {
    if ctx.api_version >= 3 {
        tracing::debug!(
            client_id = %ctx.client_id,
            software = %req.client_software_name,
            software_version = %req.client_software_version,
            "client connected"
        );
    }
    ApiVersionsResponse::default().with_api_keys(api_keys())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::ApiKey;

    /// Kafka 4.1's ApiVersions answer for the APIs Sluice serves (as kafka-python 3.0.12
    /// records it in `broker_version_data.py`, and Kafka's `*Request.json` `validVersions`
    /// after KIP-896), and where Sluice stops short, with why (see `SUPPORTED`).
    #[test]
    fn the_ranges_are_kafka_4s() {
        use ApiKey as K;
        let kafka_4_1: &[(ApiKey, i16, i16)] = &[
            (K::Produce, 0, 13),
            (K::Fetch, 4, 18),
            (K::ListOffsets, 1, 10),
            (K::Metadata, 0, 13),
            (K::OffsetCommit, 2, 9),
            (K::OffsetFetch, 1, 9),
            (K::FindCoordinator, 0, 6),
            (K::JoinGroup, 0, 9),
            (K::Heartbeat, 0, 4),
            (K::LeaveGroup, 0, 5),
            (K::SyncGroup, 0, 5),
            (K::DescribeGroups, 0, 6),
            (K::ListGroups, 0, 5),
            (K::ApiVersions, 0, 4),
            (K::CreateTopics, 2, 7),
            (K::DeleteTopics, 1, 6),
            (K::DeleteRecords, 0, 2),
            (K::InitProducerId, 0, 5),
            (K::OffsetForLeaderEpoch, 2, 4),
            (K::AddPartitionsToTxn, 0, 5),
            (K::AddOffsetsToTxn, 0, 4),
            (K::EndTxn, 0, 5),
            (K::TxnOffsetCommit, 0, 5),
            (K::DescribeConfigs, 1, 4),
            (K::AlterConfigs, 0, 2),
            (K::DescribeLogDirs, 1, 4),
            (K::CreatePartitions, 0, 3),
            (K::DeleteGroups, 0, 2),
            (K::IncrementalAlterConfigs, 0, 1),
            (K::OffsetDelete, 0, 0),
            (K::DescribeCluster, 0, 2),
            (K::DescribeProducers, 0, 0),
            (K::DescribeTransactions, 0, 0),
            (K::ListTransactions, 0, 2),
            (K::DescribeTopicPartitions, 0, 0),
        ];
        // Sluice's deliberate differences: Produce v0-2 (listed by Kafka 4 but refused), the
        // versions of KIP-890's transactions v2.
        let short: &[(ApiKey, i16, i16)] = &[
            (K::Produce, 3, 13),
            (K::AddPartitionsToTxn, 0, 3),
            (K::AddOffsetsToTxn, 0, 3),
            (K::EndTxn, 0, 3),
            (K::TxnOffsetCommit, 0, 3),
        ];
        let served: Vec<(ApiKey, i16, i16)> = api_keys()
            .iter()
            .map(|v| {
                (
                    ApiKey::try_from(v.api_key).expect("known"),
                    v.min_version,
                    v.max_version,
                )
            })
            .collect();
        assert_eq!(served.len(), kafka_4_1.len(), "{served:?}");
        for &(key, min, max) in kafka_4_1 {
            let want = short
                .iter()
                .find(|(k, _, _)| *k == key)
                .copied()
                .unwrap_or((key, min, max));
            assert!(
                served.contains(&want),
                "{key:?}: want {want:?}, serving {served:?}"
            );
        }
    }

    #[test]
    fn every_advertised_version_is_one_the_codec_knows() {
        for v in api_keys() {
            let key = ApiKey::try_from(v.api_key).expect("known key");
            let valid = key.valid_versions();
            assert!(
                v.min_version >= valid.min && v.max_version <= valid.max,
                "{key:?}"
            );
        }
    }
}
