//! The seed corpus of `fuzz/` `decode_request` (`fuzz/corpus/decode_request/`): request frames
//! (payloads after the size) at the highest version served, encoded with `kafka-protocol`. With
//! `SLUICE_WRITE_FUZZ_SEEDS=1` the test (re)writes the files; without it, it checks that the
//! committed files are exactly what it writes now, and that each seed decodes as a request.

use std::collections::BTreeSet;
use std::path::PathBuf;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, DescribeClusterRequest, FetchRequest, FindCoordinatorRequest,
    GroupId, InitProducerIdRequest, JoinGroupRequest, MetadataRequest, ProduceRequest,
    RequestHeader, TopicName,
};
use kafka_protocol::protocol::{Encodable, StrBytes};
use sluice_broker::codec::{Decoded, decode_request};
use sluice_broker::handlers::supported_versions;

fn frame(key: ApiKey, body: &impl Encodable) -> (String, Vec<u8>) {
    let (_, version) = supported_versions(key).unwrap();
    let mut buf = BytesMut::new();
    RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(1)
        .with_client_id(Some(StrBytes::from_static_str("seed")))
        .encode(&mut buf, key.request_header_version(version))
        .unwrap();
    body.encode(&mut buf, version).unwrap();
    (format!("{key:?}-v{version}"), buf.to_vec())
}

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_owned()))
}

#[test]
fn decode_request_seeds() {
    let mut batch = sluice_log::record::BatchBuilder::new(sluice_log::Compression::None);
    batch.append(1_700_000_000_000, Some(b"k"), Some(b"v"), &[]);
    let records = Bytes::from(batch.build());
    let seeds = [
        frame(ApiKey::ApiVersions, &ApiVersionsRequest::default()),
        frame(
            ApiKey::Metadata,
            &MetadataRequest::default().with_topics(Some(vec![
                MetadataRequestTopic::default().with_name(Some(name("orders"))),
            ])),
        ),
        frame(
            ApiKey::Produce,
            &ProduceRequest::default()
                .with_acks(-1)
                .with_timeout_ms(30_000)
                .with_topic_data(vec![
                    TopicProduceData::default()
                        .with_name(name("orders"))
                        .with_partition_data(vec![
                            PartitionProduceData::default()
                                .with_index(0)
                                .with_records(Some(records)),
                        ]),
                ]),
        ),
        frame(
            ApiKey::Fetch,
            &FetchRequest::default()
                .with_max_wait_ms(500)
                .with_max_bytes(1 << 20)
                .with_topics(vec![
                    FetchTopic::default()
                        .with_topic(name("orders"))
                        .with_partitions(vec![
                            FetchPartition::default().with_partition_max_bytes(1 << 20),
                        ]),
                ]),
        ),
        frame(
            ApiKey::FindCoordinator,
            &FindCoordinatorRequest::default()
                .with_coordinator_keys(vec![StrBytes::from_static_str("billing")]),
        ),
        frame(
            ApiKey::JoinGroup,
            &JoinGroupRequest::default()
                .with_group_id(GroupId(StrBytes::from_static_str("billing")))
                .with_session_timeout_ms(45_000)
                .with_rebalance_timeout_ms(300_000)
                .with_protocol_type(StrBytes::from_static_str("consumer"))
                .with_protocols(vec![
                    JoinGroupRequestProtocol::default()
                        .with_name(StrBytes::from_static_str("range"))
                        .with_metadata(sluice_log::group::Subscription::new(["orders"]).encode()),
                ]),
        ),
        frame(
            ApiKey::InitProducerId,
            &InitProducerIdRequest::default()
                .with_transaction_timeout_ms(60_000)
                .with_producer_id(kafka_protocol::messages::ProducerId(-1))
                .with_producer_epoch(-1),
        ),
        frame(ApiKey::DescribeCluster, &DescribeClusterRequest::default()),
    ];
    for (n, bytes) in &seeds {
        assert!(
            matches!(
                decode_request(Bytes::from(bytes.clone())),
                Ok(Decoded::Request(_))
            ),
            "{n} does not decode as a request"
        );
    }

    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/decode_request");
    if std::env::var_os("SLUICE_WRITE_FUZZ_SEEDS").is_some() {
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for (n, bytes) in &seeds {
            std::fs::write(dir.join(n), bytes).unwrap();
        }
        return;
    }
    let committed: BTreeSet<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e} (SLUICE_WRITE_FUZZ_SEEDS=1 writes it)",
                dir.display()
            )
        })
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let written: BTreeSet<String> = seeds.iter().map(|(n, _)| n.clone()).collect();
    assert_eq!(committed, written, "{}: seed files", dir.display());
    for (n, bytes) in &seeds {
        assert!(
            std::fs::read(dir.join(n)).unwrap() == *bytes,
            "{}/{n} is not what the encoder writes now (SLUICE_WRITE_FUZZ_SEEDS=1 rewrites it)",
            dir.display()
        );
    }
}
