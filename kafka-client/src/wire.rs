//! Requests librdkafka does not wrap, spoken directly with the kafka-protocol crate:
//! ListTransactions (asked of every broker, as Kafka's `Admin.listTransactions` does),
//! DescribeTransactions and OffsetDelete (asked of the transaction's or group's coordinator,
//! found with FindCoordinator), and ListOffsets' max-timestamp spec (asked of the leader).
//!
//! Written here rather than taken from a crate because rdkafka has no binding for these APIs
//! and no maintained Rust crate offers a Kafka admin client for them; kafka-protocol does the
//! encoding, this module only frames requests and picks versions.
//!
//! ```text
//! bootstrap --ApiVersions--> versions --Metadata--> brokers --ListTransactions--> each broker
//!           --FindCoordinator(key type 1)--> coordinator --DescribeTransactions--> it
//!           --FindCoordinator(key type 0)--> coordinator --OffsetDelete--> it
//!           --Metadata(topic)--> leader --ListOffsets(-3)--> it
//! ```
//!
//! Plaintext only, as the rest of this client (librdkafka is built without TLS or SASL).

use std::ops::RangeInclusive;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::metadata_response::MetadataResponseBroker;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_delete_request::{
    OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::{
    ApiVersionsRequest, ApiVersionsResponse, BrokerId, DescribeTransactionsRequest,
    FindCoordinatorRequest, GroupId, IncrementalAlterConfigsRequest, ListOffsetsRequest,
    ListTransactionsRequest, MetadataRequest, OffsetCommitRequest, OffsetDeleteRequest,
    OffsetFetchRequest, RequestHeader, ResponseHeader, TopicName, TransactionalId,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::CLIENT;
use sluice_client::{Error, Result, TopicPartition};
use sluice_client::{TransactionDescription, TransactionListing};
use sluice_protocol::ErrorCode;
use sluice_protocol::error::Subject;

/// The largest response read: far above any answer to these requests.
const MAX_RESPONSE: usize = 64 << 20;
/// librdkafka's local error codes, as the rest of this client reports them: `__TRANSPORT`,
/// `__BAD_MSG`, `__UNKNOWN_BROKER`.
pub(super) const TRANSPORT: i32 = -195;
pub(super) const BAD_MSG: i32 = -199;
pub(super) const UNKNOWN_BROKER: i32 = -146;
/// `items` grouped by topic, topics and each topic's items in first-seen order: the shape of
/// every per-topic, per-partition request.
pub(super) fn by_topic<T>(
    items: impl IntoIterator<Item = (std::sync::Arc<str>, T)>,
) -> Vec<(TopicName, Vec<T>)> {
    let mut out: Vec<(std::sync::Arc<str>, Vec<T>)> = Vec::new();
    for (topic, item) in items {
        match out.iter_mut().find(|(t, _)| *t == topic) {
            Some((_, v)) => v.push(item),
            None => out.push((topic, vec![item])),
        }
    }
    out.into_iter()
        .map(|(t, v)| (TopicName(StrBytes::from_string(t.to_string())), v))
        .collect()
}

/// The (api key, min, max) versions an ApiVersions answer lists, or its error.
pub(super) fn served_versions(
    r: &ApiVersionsResponse,
    operation: &'static str,
    addr: &str,
) -> Result<Vec<(i16, i16, i16)>> {
    if r.error_code != 0 {
        return Err(code_error(operation, r.error_code, addr));
    }
    Ok(r.api_keys
        .iter()
        .map(|k| (k.api_key, k.min_version, k.max_version))
        .collect())
}

/// A Metadata request for `topics` (created if `auto_create` and the cluster does so).
pub(super) fn metadata_request<'a>(
    topics: impl IntoIterator<Item = &'a str>,
    auto_create: bool,
) -> MetadataRequest {
    MetadataRequest::default()
        .with_topics(Some(
            topics
                .into_iter()
                .map(|t| {
                    MetadataRequestTopic::default()
                        .with_name(Some(TopicName(StrBytes::from_string(t.to_owned()))))
                })
                .collect(),
        ))
        .with_allow_auto_topic_creation(auto_create)
}

/// `host:port` of a broker of a Metadata answer.
pub(super) fn broker_addr(b: &MetadataResponseBroker) -> String {
    format!("{}:{}", b.host.as_str(), b.port)
}

/// Whether a partition's error code says its leader moved or is not known yet: the client
/// refreshes its metadata and tries again.
pub(super) fn is_leader_moved(code: i16) -> bool {
    matches!(
        ResponseError::try_from_code(code),
        Some(
            ResponseError::NotLeaderOrFollower
                | ResponseError::UnknownTopicOrPartition
                | ResponseError::LeaderNotAvailable
                | ResponseError::FencedLeaderEpoch
                | ResponseError::UnknownLeaderEpoch
        )
    )
}

/// FindCoordinator key type of a group id.
const GROUP_KEY: i8 = 0;
/// FindCoordinator key type of a transactional id.
const TRANSACTION_KEY: i8 = 1;
/// ListOffsets' timestamp asking for the record with the largest timestamp (KIP-734).
const MAX_TIMESTAMP: i64 = -3;
/// Attempts at a coordinator that is loading or moving, with [`RETRY_BACKOFF`] between them.
const COORDINATOR_ATTEMPTS: u32 = 10;
const RETRY_BACKOFF: Duration = Duration::from_millis(100);

/// One connection to one broker, with the versions it serves.
pub(super) struct Conn {
    stream: TcpStream,
    addr: String,
    /// The operation it serves, named in its errors.
    operation: &'static str,
    correlation_id: i32,
    /// (api key, min, max) as ApiVersions reported them.
    versions: Vec<(i16, i16, i16)>,
    timeout: Duration,
}

pub(super) fn io_error(operation: &'static str, addr: &str, e: impl std::fmt::Display) -> Error {
    Error::Kafka {
        operation,
        code: TRANSPORT,
        message: format!("{addr}: {e}"),
        retriable: true,
    }
}

pub(super) fn protocol_error(
    operation: &'static str,
    addr: &str,
    e: impl std::fmt::Display,
) -> Error {
    Error::Kafka {
        operation,
        code: BAD_MSG,
        message: format!("{addr}: malformed response: {e}"),
        retriable: false,
    }
}

/// A Kafka error code of a response as the client's error, through the one mapping
/// ([`Error::from_code`]); `label` (an address, a partition) leads the message.
pub(super) fn code_error(operation: &'static str, code: i16, label: &str) -> Error {
    code_error_about(operation, code, label, Subject::none())
}

/// [`code_error`] about a known subject, so typed variants can name it.
pub(super) fn code_error_about(
    operation: &'static str,
    code: i16,
    label: &str,
    subject: Subject<'_>,
) -> Error {
    let code = ErrorCode::from_i16(code);
    Error::from_code(operation, code, format!("{label}: {code}"), subject)
}

fn is_coordinator_moving(code: i16) -> bool {
    matches!(
        ResponseError::try_from_code(code),
        Some(
            ResponseError::CoordinatorLoadInProgress
                | ResponseError::CoordinatorNotAvailable
                | ResponseError::NotCoordinator
        )
    )
}

impl Conn {
    /// Connects and asks for the versions the broker serves (ApiVersions v0, which every
    /// broker answers).
    pub(super) async fn open(
        addr: &str,
        timeout: Duration,
        operation: &'static str,
    ) -> Result<Self> {
        let stream = tokio::time::timeout(timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| Error::Timeout(format!("{operation}: connecting to {addr}")))?
            .map_err(|e| io_error(operation, addr, e))?;
        stream
            .set_nodelay(true)
            .map_err(|e| io_error(operation, addr, e))?;
        let mut conn = Conn {
            stream,
            addr: addr.to_owned(),
            operation,
            correlation_id: 0,
            versions: Vec::new(),
            timeout,
        };
        let r = conn.call(&ApiVersionsRequest::default(), 0).await?;
        conn.versions = served_versions(&r, operation, addr)?;
        Ok(conn)
    }

    /// The highest version of `R` both sides know within `ours`.
    pub(super) fn version<R: Request>(
        &self,
        operation: &'static str,
        ours: RangeInclusive<i16>,
    ) -> Result<i16> {
        pick_version::<R>(&self.versions, &self.addr, operation, ours)
    }

    /// Sends `request` at `version` and reads its response, within the timeout.
    pub(super) async fn call<R: Request>(
        &mut self,
        request: &R,
        version: i16,
    ) -> Result<R::Response> {
        let operation = self.operation;
        let addr = self.addr.clone();
        tokio::time::timeout(self.timeout, self.exchange(request, version))
            .await
            .map_err(|_| Error::Timeout(format!("{operation}: API key {} to {addr}", R::KEY)))?
            .map_err(|e| match e {
                Exchange::Io(e) => io_error(operation, &addr, e),
                Exchange::Protocol(e) => protocol_error(operation, &addr, e),
            })
    }

    async fn exchange<R: Request>(
        &mut self,
        request: &R,
        version: i16,
    ) -> std::result::Result<R::Response, Exchange> {
        self.correlation_id = self.correlation_id.wrapping_add(1);
        let correlation_id = self.correlation_id;
        let frame = encode_request(request, version, correlation_id).map_err(Exchange::Protocol)?;
        self.stream.write_all(&frame).await.map_err(Exchange::Io)?;

        let size = self.stream.read_i32().await.map_err(Exchange::Io)?;
        let size = response_size(size).map_err(Exchange::Protocol)?;
        let mut body = vec![0u8; size];
        self.stream
            .read_exact(&mut body)
            .await
            .map_err(Exchange::Io)?;
        decode_response::<R>(Bytes::from(body), version, correlation_id, &self.addr)
            .map_err(Exchange::Protocol)
    }
}

/// The highest version of `R` both sides know within `ours`, of the (api key, min, max)
/// versions the broker at `addr` reported.
pub(super) fn pick_version<R: Request>(
    versions: &[(i16, i16, i16)],
    addr: &str,
    operation: &'static str,
    ours: RangeInclusive<i16>,
) -> Result<i16> {
    let served = versions.iter().find(|(k, _, _)| *k == R::KEY);
    match served {
        Some(&(_, min, max)) if max.min(*ours.end()) >= min.max(*ours.start()) => {
            Ok(max.min(*ours.end()))
        }
        _ => Err(Error::Unsupported {
            operation,
            client: CLIENT,
            reason: format!(
                "the broker at {addr} does not serve API key {} at versions {ours:?}",
                R::KEY
            ),
        }),
    }
}

/// `request` framed: size, header (client id `sluice`), body.
pub(super) fn encode_request<R: Request>(
    request: &R,
    version: i16,
    correlation_id: i32,
) -> std::result::Result<BytesMut, String> {
    let header = RequestHeader::default()
        .with_request_api_key(R::KEY)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str("sluice")));
    let mut frame = BytesMut::with_capacity(128);
    frame.put_i32(0);
    header
        .encode(&mut frame, R::header_version(version))
        .map_err(|e| e.to_string())?;
    request
        .encode(&mut frame, version)
        .map_err(|e| e.to_string())?;
    let size = i32::try_from(frame.len() - 4).map_err(|e| e.to_string())?;
    frame[..4].copy_from_slice(&size.to_be_bytes());
    Ok(frame)
}

/// The size of a response from its size field, if acceptable.
pub(super) fn response_size(size: i32) -> std::result::Result<usize, String> {
    usize::try_from(size)
        .ok()
        .filter(|s| *s <= MAX_RESPONSE)
        .ok_or_else(|| format!("response size {size}"))
}

/// The response to request `correlation_id` of type `R` at `version`, from its body (the
/// frame after the size).
pub(super) fn decode_response<R: Request>(
    mut body: Bytes,
    version: i16,
    correlation_id: i32,
    addr: &str,
) -> std::result::Result<R::Response, String> {
    let header = ResponseHeader::decode(&mut body, R::Response::header_version(version))
        .map_err(|e| e.to_string())?;
    if header.correlation_id != correlation_id {
        return Err(format!(
            "correlation id {} answers request {correlation_id}",
            header.correlation_id
        ));
    }
    let response = R::Response::decode(&mut body, version).map_err(|e| e.to_string())?;
    if body.has_remaining() {
        tracing::debug!(%addr, left = body.remaining(), "response with trailing bytes");
    }
    Ok(response)
}

enum Exchange {
    Io(std::io::Error),
    Protocol(String),
}

/// The Kafka-protocol requests of a client whose librdkafka does not make them.
#[derive(Debug, Clone)]
pub(super) struct Wire {
    bootstrap: Vec<String>,
    timeout: Duration,
    /// The operation these requests serve, named in their errors.
    operation: &'static str,
}

impl Wire {
    /// Requests to the cluster at `bootstrap_servers` (`host:port,...`, an optional
    /// `PLAINTEXT://` on each), or an error if `security_protocol` is not plaintext.
    pub(super) fn new(
        bootstrap_servers: &str,
        security_protocol: Option<&str>,
        timeout: Duration,
        operation: &'static str,
    ) -> Result<Self> {
        if let Some(p) = security_protocol
            && !p.eq_ignore_ascii_case("plaintext")
        {
            return Err(Error::Unsupported {
                operation,
                client: CLIENT,
                reason: format!("security.protocol={p}: only plaintext listeners are reached"),
            });
        }
        let bootstrap: Vec<String> = bootstrap_servers
            .split(',')
            .map(|s| {
                let s = s.trim();
                s.split_once("://").map_or(s, |(_, a)| a).to_owned()
            })
            .filter(|s| !s.is_empty())
            .collect();
        if bootstrap.is_empty() {
            return Err(Error::InvalidConfig {
                key: "bootstrap.servers".into(),
                value: bootstrap_servers.into(),
                reason: "no host:port given".into(),
            });
        }
        Ok(Self {
            bootstrap,
            timeout,
            operation,
        })
    }

    /// The bootstrap servers as `host:port`.
    pub(super) fn bootstrap_servers(&self) -> &[String] {
        &self.bootstrap
    }

    /// A connection to the first bootstrap server that answers.
    async fn bootstrap(&self) -> Result<Conn> {
        let mut last = None;
        for addr in &self.bootstrap {
            match Conn::open(addr, self.timeout, self.operation).await {
                Ok(c) => return Ok(c),
                Err(e) => {
                    tracing::debug!(%addr, error = %e, "bootstrap server did not answer");
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or_else(|| Error::Timeout("no bootstrap server".into())))
    }

    /// Every broker of the cluster as (node id, host:port).
    async fn brokers(&self, conn: &mut Conn) -> Result<Vec<(i32, String)>> {
        let version = conn.version::<MetadataRequest>("list_transactions", 1..=12)?;
        // An empty topic list (not null): brokers only.
        let r = conn.call(&metadata_request([], false), version).await?;
        Ok(r.brokers
            .iter()
            .map(|b| (b.node_id.0, broker_addr(b)))
            .collect())
    }

    /// ListTransactions of every broker (each lists the ids it coordinates), merged and
    /// sorted by transactional id.
    /// IncrementalAlterConfigs of one topic: sets `set` (SET) and returns `delete` to their
    /// defaults (DELETE), at any broker (Kafka forwards topic configs to its controller). Sent
    /// here rather than through librdkafka because rdkafka 0.39 reports every resource of an
    /// AlterConfigs result as altered, dropping the broker's per-resource error; and the
    /// incremental form needs no read-modify-write of the topic's other configs.
    pub(super) async fn alter_topic_configs(
        &self,
        topic: &str,
        set: &[(String, String)],
        delete: &[String],
    ) -> Result<()> {
        const OPERATION: &str = "alter_configs";
        const SET: i8 = 0;
        const DELETE: i8 = 1;
        const TOPIC: i8 = 2;
        let mut conn = self.bootstrap().await?;
        let version = conn.version::<IncrementalAlterConfigsRequest>(OPERATION, 0..=1)?;
        let configs = set
            .iter()
            .map(|(k, v)| {
                AlterableConfig::default()
                    .with_name(StrBytes::from_string(k.clone()))
                    .with_config_operation(SET)
                    .with_value(Some(StrBytes::from_string(v.clone())))
            })
            .chain(delete.iter().map(|k| {
                AlterableConfig::default()
                    .with_name(StrBytes::from_string(k.clone()))
                    .with_config_operation(DELETE)
            }))
            .collect();
        let request = IncrementalAlterConfigsRequest::default().with_resources(vec![
            AlterConfigsResource::default()
                .with_resource_type(TOPIC)
                .with_resource_name(StrBytes::from_string(topic.to_owned()))
                .with_configs(configs),
        ]);
        let r = conn.call(&request, version).await?;
        for resource in r.responses {
            if resource.error_code != 0 {
                let code = ErrorCode::from_i16(resource.error_code);
                let message = match resource.error_message {
                    Some(m) if !m.is_empty() => format!("{topic}: {m}"),
                    _ => format!("{topic}: {code}"),
                };
                return Err(Error::from_code(
                    OPERATION,
                    code,
                    message,
                    Subject::topic(topic),
                ));
            }
        }
        Ok(())
    }

    pub(super) async fn list_transactions(&self) -> Result<Vec<TransactionListing>> {
        let mut conn = self.bootstrap().await?;
        let brokers = self.brokers(&mut conn).await?;
        let mut listed = Vec::new();
        for (node, addr) in brokers {
            let mut other = None;
            let c = self.to(&mut conn, &mut other, &addr).await?;
            let version = c.version::<ListTransactionsRequest>("list_transactions", 0..=1)?;
            let r = c.call(&ListTransactionsRequest::default(), version).await?;
            if r.error_code != 0 {
                return Err(code_error(
                    "list_transactions",
                    r.error_code,
                    &format!("broker {node}"),
                ));
            }
            listed.extend(
                r.transaction_states
                    .into_iter()
                    .map(|t| TransactionListing {
                        transactional_id: t.transactional_id.0.to_string(),
                        producer_id: t.producer_id.0,
                        state: t.transaction_state.to_string(),
                    }),
            );
        }
        listed.sort_by(|a, b| a.transactional_id.cmp(&b.transactional_id));
        Ok(listed)
    }

    /// The coordinator of `key` (a group id for [`GROUP_KEY`], a transactional id for
    /// [`TRANSACTION_KEY`]) as (node id, host:port), waiting out a coordinator that is loading
    /// or moving (bounded by [`COORDINATOR_ATTEMPTS`]).
    async fn coordinator(
        &self,
        conn: &mut Conn,
        operation: &'static str,
        key_type: i8,
        key: &str,
    ) -> Result<(i32, String)> {
        let version = conn.version::<FindCoordinatorRequest>(operation, 1..=6)?;
        let mut request = FindCoordinatorRequest::default().with_key_type(key_type);
        if version >= 4 {
            request = request.with_coordinator_keys(vec![StrBytes::from_string(key.to_owned())]);
        } else {
            request = request.with_key(StrBytes::from_string(key.to_owned()));
        }
        let mut attempt = 0;
        loop {
            attempt += 1;
            let r = conn.call(&request, version).await?;
            let found = if version >= 4 {
                r.coordinators.into_iter().next().unwrap_or_else(|| {
                    Coordinator::default().with_error_code(ResponseError::UnknownServerError.code())
                })
            } else {
                Coordinator::default()
                    .with_error_code(r.error_code)
                    .with_node_id(r.node_id)
                    .with_host(r.host)
                    .with_port(r.port)
            };
            if found.error_code == 0 {
                return Ok((
                    found.node_id.0,
                    format!("{}:{}", found.host.as_str(), found.port),
                ));
            }
            if !is_coordinator_moving(found.error_code) || attempt >= COORDINATOR_ATTEMPTS {
                let subject = if key_type == 1 {
                    Subject::transaction(Some(key))
                } else {
                    Subject::group(key)
                };
                return Err(code_error_about(operation, found.error_code, key, subject));
            }
            tokio::time::sleep(RETRY_BACKOFF).await;
        }
    }

    /// A connection to `addr`: `conn` itself if it is connected there, else a new one.
    async fn to<'a>(
        &self,
        conn: &'a mut Conn,
        other: &'a mut Option<Conn>,
        addr: &str,
    ) -> Result<&'a mut Conn> {
        if addr == conn.addr {
            return Ok(conn);
        }
        if other.as_ref().is_none_or(|c| c.addr != addr) {
            *other = Some(Conn::open(addr, self.timeout, self.operation).await?);
        }
        other
            .as_mut()
            .ok_or_else(|| Error::Timeout(format!("connecting to {addr}")))
    }

    /// `request` (made for the version picked within `versions`) to `group`'s coordinator,
    /// found with FindCoordinator and asked again while `error` of the response says it is
    /// loading or moving (bounded).
    async fn group_call<R: Request>(
        &self,
        group: &str,
        operation: &'static str,
        versions: RangeInclusive<i16>,
        request: impl Fn(i16) -> R,
        error: impl Fn(&R::Response) -> i16,
    ) -> Result<R::Response> {
        let mut conn = self.bootstrap().await?;
        let mut other = None;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let (_, addr) = self
                .coordinator(&mut conn, operation, GROUP_KEY, group)
                .await?;
            let c = self.to(&mut conn, &mut other, &addr).await?;
            let version = c.version::<R>(operation, versions.clone())?;
            let r = c.call(&request(version), version).await?;
            if is_coordinator_moving(error(&r)) && attempt < COORDINATOR_ATTEMPTS {
                tokio::time::sleep(RETRY_BACKOFF).await;
                continue;
            }
            return Ok(r);
        }
    }

    /// OffsetCommit of `offsets` for `group` from outside its membership (generation -1, no
    /// member id), as Kafka's consumer commits with a manual assignment: accepted while the
    /// group has no members.
    pub(super) async fn commit_offsets(
        &self,
        group: &str,
        offsets: &[(TopicPartition, i64)],
    ) -> Result<()> {
        let operation = "commit";
        let topics = by_topic(offsets.iter().map(|(tp, offset)| {
            let p = OffsetCommitRequestPartition::default()
                .with_partition_index(tp.partition)
                .with_committed_offset(*offset)
                .with_committed_leader_epoch(-1)
                .with_committed_metadata(Some(StrBytes::from_static_str("")));
            (std::sync::Arc::clone(&tp.topic), p)
        }))
        .into_iter()
        .map(|(name, partitions)| {
            OffsetCommitRequestTopic::default()
                .with_name(name)
                .with_partitions(partitions)
        })
        .collect();
        let request = OffsetCommitRequest::default()
            .with_group_id(GroupId(StrBytes::from_string(group.to_owned())))
            .with_generation_id_or_member_epoch(-1)
            .with_retention_time_ms(-1)
            .with_topics(topics);
        let first_error = |r: &kafka_protocol::messages::OffsetCommitResponse| {
            r.topics
                .iter()
                .flat_map(|t| t.partitions.iter().map(move |p| (t, p)))
                .find(|(_, p)| p.error_code != 0)
                .map(|(t, p)| (t.name.0.to_string(), p.partition_index, p.error_code))
        };
        let r = self
            .group_call(
                group,
                operation,
                2..=8,
                |_| request.clone(),
                |r| first_error(r).map_or(0, |(_, _, code)| code),
            )
            .await?;
        match first_error(&r) {
            None => Ok(()),
            Some((topic, partition, code)) => Err(code_error_about(
                operation,
                code,
                &format!("{}", TopicPartition::new(topic.as_str(), partition)),
                Subject::partition(topic.as_str(), partition),
            )),
        }
    }

    /// OffsetFetch: `group`'s committed offsets of `partitions`, in their order.
    pub(super) async fn fetch_offsets(
        &self,
        group: &str,
        partitions: &[TopicPartition],
    ) -> Result<Vec<Option<i64>>> {
        let operation = "committed";
        let topics = by_topic(
            partitions
                .iter()
                .map(|tp| (std::sync::Arc::clone(&tp.topic), tp.partition)),
        )
        .into_iter()
        .map(|(name, indexes)| {
            OffsetFetchRequestTopic::default()
                .with_name(name)
                .with_partition_indexes(indexes)
        })
        .collect();
        // v1-v7: one group per request (v8 moved it into a list).
        let request = OffsetFetchRequest::default()
            .with_group_id(GroupId(StrBytes::from_string(group.to_owned())))
            .with_topics(Some(topics));
        let r = self
            .group_call(
                group,
                operation,
                1..=7,
                |_| request.clone(),
                |r| r.error_code,
            )
            .await?;
        if r.error_code != 0 {
            return Err(code_error(operation, r.error_code, group));
        }
        partitions
            .iter()
            .map(|tp| {
                let p = r
                    .topics
                    .iter()
                    .filter(|t| t.name.0.as_str() == &*tp.topic)
                    .flat_map(|t| t.partitions.iter())
                    .find(|p| p.partition_index == tp.partition);
                match p {
                    None => Ok(None),
                    Some(p) if p.error_code != 0 => {
                        Err(code_error(operation, p.error_code, &tp.to_string()))
                    }
                    Some(p) => Ok((p.committed_offset >= 0).then_some(p.committed_offset)),
                }
            })
            .collect()
    }

    /// OffsetDelete: removes `group`'s committed offsets of `partitions`, asked of the group's
    /// coordinator. A partition a member is subscribed to is refused, as Kafka refuses it.
    pub(super) async fn delete_offsets(
        &self,
        group: &str,
        partitions: &[TopicPartition],
    ) -> Result<()> {
        let operation = "delete_offsets";
        let topics = by_topic(partitions.iter().map(|tp| {
            let p = OffsetDeleteRequestPartition::default().with_partition_index(tp.partition);
            (std::sync::Arc::clone(&tp.topic), p)
        }))
        .into_iter()
        .map(|(name, partitions)| {
            OffsetDeleteRequestTopic::default()
                .with_name(name)
                .with_partitions(partitions)
        })
        .collect();
        let request = OffsetDeleteRequest::default()
            .with_group_id(GroupId(StrBytes::from_string(group.to_owned())))
            .with_topics(topics);
        let r = self
            .group_call(
                group,
                operation,
                0..=0,
                |_| request.clone(),
                |r| r.error_code,
            )
            .await?;
        match ResponseError::try_from_code(r.error_code) {
            None if r.error_code == 0 => {}
            Some(ResponseError::GroupIdNotFound) => {
                return Err(Error::GroupIdNotFound(group.to_owned()));
            }
            Some(ResponseError::InvalidGroupId) => {
                return Err(Error::InvalidGroupId(group.to_owned()));
            }
            _ => return Err(code_error(operation, r.error_code, group)),
        }
        for t in &r.topics {
            for p in &t.partitions {
                let tp = TopicPartition::new(t.name.0.as_str(), p.partition_index);
                match ResponseError::try_from_code(p.error_code) {
                    None if p.error_code == 0 => {}
                    Some(ResponseError::GroupSubscribedToTopic) => {
                        // As the embedded admin words it.
                        return Err(Error::InvalidRequest(format!(
                            "partition {tp} is assigned to a member of group \"{group}\""
                        )));
                    }
                    Some(ResponseError::UnknownTopicOrPartition) => {
                        return Err(Error::UnknownPartition {
                            topic: tp.topic.to_string(),
                            partition: tp.partition,
                        });
                    }
                    _ => return Err(code_error(operation, p.error_code, &tp.to_string())),
                }
            }
        }
        Ok(())
    }

    /// ListOffsets with the max-timestamp spec (-3, from v7): the offset and timestamp of the
    /// record with the largest timestamp of `tp` (-1 and -1 if it has none), asked of its
    /// leader.
    pub(super) async fn max_timestamp(&self, tp: &TopicPartition) -> Result<(i64, i64)> {
        self.list_offset(tp, MAX_TIMESTAMP).await
    }

    /// ListOffsets of one partition, asked of its leader: `timestamp` -2 (earliest), -1
    /// (latest), -3 (max timestamp) or a time; gives (offset, timestamp), -1 offset if none.
    pub(super) async fn list_offset(
        &self,
        tp: &TopicPartition,
        timestamp: i64,
    ) -> Result<(i64, i64)> {
        let found = self
            .list_offsets(std::slice::from_ref(tp), timestamp, 0)
            .await?;
        found.into_iter().next().ok_or_else(|| {
            protocol_error("list_offsets", "the cluster", format!("no answer for {tp}"))
        })
    }

    /// ListOffsets of `tps` (in that order), one request to each partition's leader (one
    /// Metadata request first): `timestamp` as for [`Self::list_offset`]; `isolation_level`
    /// 1 (read_committed) makes the latest offset the last stable offset.
    pub(super) async fn list_offsets(
        &self,
        tps: &[TopicPartition],
        timestamp: i64,
        isolation_level: i8,
    ) -> Result<Vec<(i64, i64)>> {
        let operation = "list_offsets";
        if tps.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.bootstrap().await?;
        let version = conn.version::<MetadataRequest>(operation, 1..=12)?;
        let mut topics: Vec<&str> = tps.iter().map(|tp| &*tp.topic).collect();
        topics.sort_unstable();
        topics.dedup();
        let metadata = conn
            .call(&metadata_request(topics.iter().copied(), false), version)
            .await?;
        // The leader's address of each partition, grouped: leader -> indexes into `tps`.
        let mut by_leader: std::collections::BTreeMap<String, Vec<usize>> = Default::default();
        for (i, tp) in tps.iter().enumerate() {
            let topic = metadata
                .topics
                .iter()
                .find(|t| t.name.as_ref().is_some_and(|n| n.0.as_str() == &*tp.topic))
                .ok_or_else(|| Error::UnknownTopic(tp.topic.to_string()))?;
            match ResponseError::try_from_code(topic.error_code) {
                None if topic.error_code == 0 => {}
                Some(ResponseError::UnknownTopicOrPartition) => {
                    return Err(Error::UnknownTopic(tp.topic.to_string()));
                }
                _ => return Err(code_error(operation, topic.error_code, &tp.topic)),
            }
            let leader = topic
                .partitions
                .iter()
                .find(|p| p.partition_index == tp.partition)
                .ok_or_else(|| Error::UnknownPartition {
                    topic: tp.topic.to_string(),
                    partition: tp.partition,
                })?
                .leader_id
                .0;
            let addr = metadata
                .brokers
                .iter()
                .find(|b| b.node_id.0 == leader)
                .map(broker_addr)
                .ok_or_else(|| Error::Kafka {
                    operation,
                    code: ResponseError::LeaderNotAvailable.code().into(),
                    message: format!("{tp}: leader {leader} is not among the brokers"),
                    retriable: true,
                })?;
            by_leader.entry(addr).or_default().push(i);
        }
        let mut out = vec![(-1, -1); tps.len()];
        let mut other = None;
        for (addr, indexes) in by_leader {
            let c = self.to(&mut conn, &mut other, &addr).await?;
            let version = if timestamp == MAX_TIMESTAMP {
                c.version::<ListOffsetsRequest>("list_offsets with MaxTimestamp", 7..=8)?
            } else if isolation_level > 0 {
                c.version::<ListOffsetsRequest>("list_offsets with read_committed", 2..=8)?
            } else {
                c.version::<ListOffsetsRequest>(operation, 1..=8)?
            };
            let topics = by_topic(indexes.iter().map(|&i| {
                let p = ListOffsetsPartition::default()
                    .with_partition_index(tps[i].partition)
                    .with_timestamp(timestamp);
                (std::sync::Arc::clone(&tps[i].topic), p)
            }))
            .into_iter()
            .map(|(name, partitions)| {
                ListOffsetsTopic::default()
                    .with_name(name)
                    .with_partitions(partitions)
            })
            .collect();
            let request = ListOffsetsRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_isolation_level(isolation_level)
                .with_topics(topics);
            let r = c.call(&request, version).await?;
            for i in indexes {
                let tp = &tps[i];
                let p = r
                    .topics
                    .iter()
                    .filter(|t| t.name.0.as_str() == &*tp.topic)
                    .flat_map(|t| t.partitions.iter())
                    .find(|p| p.partition_index == tp.partition)
                    .ok_or_else(|| {
                        protocol_error(operation, &addr, format!("no answer for {tp}"))
                    })?;
                match ResponseError::try_from_code(p.error_code) {
                    None if p.error_code == 0 => out[i] = (p.offset, p.timestamp),
                    Some(ResponseError::UnknownTopicOrPartition) => {
                        return Err(Error::UnknownPartition {
                            topic: tp.topic.to_string(),
                            partition: tp.partition,
                        });
                    }
                    _ => return Err(code_error(operation, p.error_code, &tp.to_string())),
                }
            }
        }
        Ok(out)
    }

    /// DescribeTransactions of one id, asked of its coordinator.
    pub(super) async fn describe_transaction(
        &self,
        transactional_id: &str,
    ) -> Result<TransactionDescription> {
        let operation = "describe_transaction";
        let mut conn = self.bootstrap().await?;
        let mut other = None;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let (node, addr) = self
                .coordinator(&mut conn, operation, TRANSACTION_KEY, transactional_id)
                .await?;
            let c = self.to(&mut conn, &mut other, &addr).await?;
            let version = c.version::<DescribeTransactionsRequest>(operation, 0..=0)?;
            let request = DescribeTransactionsRequest::default().with_transactional_ids(vec![
                TransactionalId(StrBytes::from_string(transactional_id.to_owned())),
            ]);
            let r = c.call(&request, version).await?;
            let Some(t) = r.transaction_states.into_iter().next() else {
                return Err(protocol_error(operation, &addr, "no transaction state"));
            };
            if is_coordinator_moving(t.error_code) && attempt < COORDINATOR_ATTEMPTS {
                tokio::time::sleep(RETRY_BACKOFF).await;
                continue;
            }
            if t.error_code != 0 {
                return Err(code_error_about(
                    operation,
                    t.error_code,
                    transactional_id,
                    Subject::transaction(Some(transactional_id)),
                ));
            }
            let partitions = t
                .topics
                .iter()
                .flat_map(|topic| {
                    topic
                        .partitions
                        .iter()
                        .map(|p| TopicPartition::new(topic.topic.0.as_str(), *p))
                })
                .collect();
            return Ok(TransactionDescription {
                transactional_id: transactional_id.to_owned(),
                coordinator_id: node,
                state: t.transaction_state.to_string(),
                producer_id: t.producer_id.0,
                producer_epoch: t.producer_epoch,
                transaction_timeout_ms: t.transaction_timeout_ms,
                transaction_start_time_ms: t.transaction_start_time_ms,
                partitions,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;

    #[test]
    fn bootstrap_lists_are_read_like_librdkafka_reads_them() {
        let w = Wire::new(
            " PLAINTEXT://127.0.0.1:9092, 127.0.0.1:9093 ,",
            None,
            Duration::from_secs(1),
            "t",
        )
        .unwrap();
        assert_eq!(w.bootstrap, ["127.0.0.1:9092", "127.0.0.1:9093"]);
        assert!(matches!(
            Wire::new(" , ", None, Duration::from_secs(1), "t"),
            Err(Error::InvalidConfig { .. })
        ));
        let e = Wire::new(
            "h:1",
            Some("SASL_SSL"),
            Duration::from_secs(1),
            "list_transactions",
        )
        .unwrap_err();
        assert!(e.to_string().contains("security.protocol=SASL_SSL"), "{e}");
        assert!(Wire::new("h:1", Some("PLAINTEXT"), Duration::from_secs(1), "t").is_ok());
    }

    #[test]
    fn error_codes_name_the_transaction_and_keep_retriability() {
        assert!(matches!(
            code_error_about(
                "d",
                ResponseError::TransactionalIdNotFound.code(),
                "tx",
                Subject::transaction(Some("tx"))
            ),
            Error::TransactionalIdNotFound(id) if id == "tx"
        ));
        match code_error("d", ResponseError::CoordinatorLoadInProgress.code(), "tx") {
            Error::Kafka {
                code,
                retriable,
                message,
                ..
            } => {
                assert_eq!(code, 14);
                assert!(retriable);
                assert_eq!(message, "tx: COORDINATOR_LOAD_IN_PROGRESS");
            }
            e => panic!("{e:?}"),
        }
        assert!(is_coordinator_moving(ResponseError::NotCoordinator.code()));
        assert!(!is_coordinator_moving(ResponseError::InvalidRequest.code()));
    }

    /// A server that reads one request frame and answers `reply`, then closes.
    async fn answering(reply: Vec<u8>) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            if let Ok((mut s, _)) = listener.accept().await {
                let mut size = [0u8; 4];
                if s.read_exact(&mut size).await.is_ok() {
                    let mut body = vec![0u8; i32::from_be_bytes(size).max(0) as usize];
                    let _ = s.read_exact(&mut body).await;
                    let _ = s.write_all(&reply).await;
                }
            }
        });
        addr
    }

    fn framed(payload: &[u8]) -> Vec<u8> {
        let mut v = (payload.len() as i32).to_be_bytes().to_vec();
        v.extend_from_slice(payload);
        v
    }

    #[tokio::test]
    async fn a_broker_answering_nonsense_is_an_error_not_a_panic() {
        let replies = [
            // Another request's correlation id.
            framed(&[0, 0, 0, 99, 0, 0]),
            // A negative size, and one beyond the bound.
            (-5i32).to_be_bytes().to_vec(),
            ((MAX_RESPONSE + 1) as i32).to_be_bytes().to_vec(),
            // Cut short, and garbage after the right correlation id.
            framed(&[0, 0])[..5].to_vec(),
            framed(&[0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff, 0xff]),
            Vec::new(),
        ];
        for reply in replies {
            let addr = answering(reply.clone()).await;
            let w = Wire::new(&addr, None, Duration::from_secs(5), "list_transactions").unwrap();
            let e = w.list_transactions().await.unwrap_err().to_string();
            assert!(e.starts_with("list_transactions: "), "{reply:?}: {e}");
        }
    }

    #[tokio::test]
    async fn a_closed_port_is_a_transport_error_naming_the_address() {
        // Bind then drop to find a port nothing listens on.
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap();
        let w = Wire::new(
            &addr.to_string(),
            None,
            Duration::from_secs(5),
            "list_transactions",
        )
        .unwrap();
        let e = w.list_transactions().await.unwrap_err().to_string();
        assert!(e.starts_with("list_transactions: "), "{e}");
        assert!(e.contains(&addr.to_string()), "{e}");
    }
}
