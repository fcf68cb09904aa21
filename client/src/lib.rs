//! The client interface everything above the log uses: [`Admin`], [`Producer`], [`Consumer`],
//! in Kafka's vocabulary, and what their implementations share (configs, the partitioner, the
//! record accumulator, the decoding of fetched batches, delivery futures).
//!
//! ```text
//! streams / SQL / connect / the CLI  --->  sluice-client (this crate: the traits)
//!                                            ^                     ^
//!                 sluice-log's EmbeddedClient (in-process)    sluice-kafka's KafkaClient
//!                                                             (any Kafka cluster, `sluice broker`)
//! ```
//!
//! Upper layers are generic over [`Client`] and depend on this crate alone; the storage engine
//! and the Kafka-protocol client each implement it without depending on each other. **Not** an
//! implementation: this crate reaches no log and opens no socket.
//!
//! ```
//! use sluice_client::{ProducerRecord, TopicPattern};
//!
//! let record = ProducerRecord::new("orders", "{\"id\":1}").key("1").header("source", "web");
//! assert_eq!(record.key.as_deref(), Some(&b"1"[..]));
//! assert!(TopicPattern::new("orders-*").matches("orders-eu"));
//! ```

pub mod accumulator;
pub mod assignor;
pub mod config;
pub mod delivery;
pub mod fetched;
pub mod partitioner;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;

pub use assignor::{
    Assignment, ClusterPartitions, MemberSubscription, PartitionAssignor, RebalanceProtocol,
    Subscription,
};
pub use sluice_protocol::config::ConfigEntry;
pub use sluice_protocol::record::Header;
pub use sluice_protocol::{Compression, Error, ErrorCode, Result, TimestampType, TopicPartition};

use config::{ConsumerConfig, ProducerConfig};

/// The state of a group, as Kafka names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GroupState {
    /// No members (offsets may remain).
    Empty,
    /// Waiting for members to (re)join.
    PreparingRebalance,
    /// Joined; waiting for the leader's assignment.
    CompletingRebalance,
    /// Every member has its assignment.
    Stable,
    /// Deleted.
    Dead,
}

impl GroupState {
    /// Kafka's spelling, as DescribeGroups and ListGroups report it.
    pub fn as_str(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }
}

/// One group in ListGroups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupListing {
    /// The group.
    pub group_id: String,
    /// Its protocol type (empty for groups with only committed offsets).
    pub protocol_type: String,
    /// Its state.
    pub state: GroupState,
}

/// A topic as [`Admin::describe_topic`] reports it, from any implementation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicDescription {
    /// Topic name.
    pub name: String,
    /// Internal topics (`__consumer_offsets`, `__transaction_state`).
    pub internal: bool,
    /// Its partitions, by number.
    pub partitions: Vec<PartitionInfo>,
    /// Every config with its value and whether it is the default.
    pub configs: Vec<ConfigEntry>,
}

/// One partition of a [`TopicDescription`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionInfo {
    /// Partition number.
    pub partition: i32,
    /// The node id of its leader; -1 on the embedded log (no nodes) and where none is known.
    pub leader: i32,
    /// First offset held (ListOffsets earliest).
    pub log_start_offset: i64,
    /// Next offset to be written: the high watermark (ListOffsets latest).
    pub log_end_offset: i64,
    /// Why it cannot be read, if it cannot (the embedded log's offline partitions; a Kafka
    /// cluster's leaderless ones).
    pub offline: Option<String>,
}

/// A record to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerRecord {
    /// Topic to send to.
    pub topic: Arc<str>,
    /// Partition; `None` lets the partitioner choose (murmur2 of the key, else sticky).
    pub partition: Option<i32>,
    /// Key; `None` is null.
    pub key: Option<Bytes>,
    /// Value; `None` is null (a tombstone on compacted topics).
    pub value: Option<Bytes>,
    /// Headers.
    pub headers: Vec<Header>,
    /// Timestamp in ms; `None` takes the producer's clock.
    pub timestamp: Option<i64>,
}

impl ProducerRecord {
    /// A record with a value and no key.
    pub fn new(topic: impl Into<Arc<str>>, value: impl Into<Bytes>) -> Self {
        Self {
            topic: topic.into(),
            partition: None,
            key: None,
            value: Some(value.into()),
            headers: Vec::new(),
            timestamp: None,
        }
    }

    /// Sets the key.
    pub fn key(mut self, key: impl Into<Bytes>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// Makes the value null (a tombstone).
    pub fn tombstone(mut self) -> Self {
        self.value = None;
        self
    }

    /// Sends to this partition.
    pub fn partition(mut self, partition: i32) -> Self {
        self.partition = Some(partition);
        self
    }

    /// Adds a header.
    pub fn header(mut self, key: impl Into<String>, value: impl Into<Bytes>) -> Self {
        self.headers.push(Header::new(key, value));
        self
    }

    /// Sets the timestamp.
    pub fn timestamp(mut self, ms: i64) -> Self {
        self.timestamp = Some(ms);
        self
    }
}

/// Where a sent record landed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordMetadata {
    /// Topic.
    pub topic: Arc<str>,
    /// Partition.
    pub partition: i32,
    /// Offset assigned.
    pub offset: i64,
    /// The record's timestamp (the log's for `LogAppendTime` topics).
    pub timestamp: i64,
}

/// A consumer's place in its group, for a transactional producer committing offsets on its
/// behalf (Kafka's `ConsumerGroupMetadata`): what [`Consumer::group_metadata`] gives and
/// [`Producer::send_offsets_to_transaction`] takes.
///
/// Besides the public fields it may carry an implementation's own handle (librdkafka's
/// consumer builds an opaque metadata object that only librdkafka's producer reads): the
/// Kafka consumer fills it, the Kafka producer reads it, and equality and `Debug` ignore it.
/// Metadata made with [`ConsumerGroupMetadata::new`] or [`ConsumerGroupMetadata::member`]
/// has none.
#[derive(Clone, Default)]
pub struct ConsumerGroupMetadata {
    /// The group.
    pub group_id: String,
    /// The member's generation; -1 from outside the group.
    pub generation_id: i32,
    /// The member's id; empty from outside the group.
    pub member_id: String,
    /// `group.instance.id` of a static member.
    pub group_instance_id: Option<String>,
    /// An implementation's own form of this metadata (see the type's docs).
    handle: Option<Arc<dyn std::any::Any + Send + Sync>>,
}

impl ConsumerGroupMetadata {
    /// Metadata of `group_id` from outside the group (generation -1, no member): accepted only
    /// while the group has no members.
    pub fn new(group_id: impl Into<String>) -> Self {
        Self::member(group_id, -1, String::new(), None)
    }

    /// Metadata of a member of `group_id` in `generation_id`.
    pub fn member(
        group_id: impl Into<String>,
        generation_id: i32,
        member_id: impl Into<String>,
        group_instance_id: Option<String>,
    ) -> Self {
        Self {
            group_id: group_id.into(),
            generation_id,
            member_id: member_id.into(),
            group_instance_id,
            handle: None,
        }
    }

    /// Whether this is metadata from outside the group (no generation, no member).
    pub fn is_outside_group(&self) -> bool {
        self.generation_id < 0 && self.member_id.is_empty()
    }

    /// Attaches an implementation's own form of this metadata (for client implementations).
    pub fn with_handle(mut self, handle: Arc<dyn std::any::Any + Send + Sync>) -> Self {
        self.handle = Some(handle);
        self
    }

    /// The implementation's own form attached by [`Self::with_handle`], if any (for client
    /// implementations: downcast it to the type they attached).
    pub fn handle(&self) -> Option<&Arc<dyn std::any::Any + Send + Sync>> {
        self.handle.as_ref()
    }
}

impl std::fmt::Debug for ConsumerGroupMetadata {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsumerGroupMetadata")
            .field("group_id", &self.group_id)
            .field("generation_id", &self.generation_id)
            .field("member_id", &self.member_id)
            .field("group_instance_id", &self.group_instance_id)
            .finish_non_exhaustive()
    }
}

impl PartialEq for ConsumerGroupMetadata {
    fn eq(&self, other: &Self) -> bool {
        self.group_id == other.group_id
            && self.generation_id == other.generation_id
            && self.member_id == other.member_id
            && self.group_instance_id == other.group_instance_id
    }
}

impl Eq for ConsumerGroupMetadata {}

/// A record read by a consumer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerRecord {
    /// Topic.
    pub topic: Arc<str>,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Timestamp in ms.
    pub timestamp: i64,
    /// Whose timestamp it is.
    pub timestamp_type: TimestampType,
    /// Key; `None` is null.
    pub key: Option<Bytes>,
    /// Value; `None` is null.
    pub value: Option<Bytes>,
    /// Headers.
    pub headers: Vec<Header>,
}

/// The outcome of one `send`, resolved when the record is acknowledged per `acks`.
pub struct DeliveryFuture {
    inner: DeliveryInner,
}

enum DeliveryInner {
    Boxed(Pin<Box<dyn Future<Output = Result<RecordMetadata>> + Send>>),
    /// A record in a batch: no allocation per record.
    Batch {
        done: Arc<BatchDone>,
        offset_delta: i32,
        topic: Arc<str>,
        partition: i32,
        timestamp: i64,
    },
    /// A record whose outcome arrives on its own (a Kafka producer's delivery report): a cell
    /// of a shared chunk, no allocation per record.
    Cell(delivery::Pending),
}

impl DeliveryFuture {
    /// Wraps any future of a delivery (for client implementations).
    pub fn new(f: impl Future<Output = Result<RecordMetadata>> + Send + 'static) -> Self {
        Self {
            inner: DeliveryInner::Boxed(Box::pin(f)),
        }
    }

    /// The future of a record tracked by a [`delivery::Deliveries`] cell.
    pub fn cell(pending: delivery::Pending) -> Self {
        Self {
            inner: DeliveryInner::Cell(pending),
        }
    }

    /// The future of one record of a batch that completes as a whole (for client
    /// implementations): its offset is the batch's base offset plus `offset_delta`.
    pub fn in_batch(
        done: Arc<BatchDone>,
        offset_delta: i32,
        topic: Arc<str>,
        partition: i32,
        timestamp: i64,
    ) -> Self {
        Self {
            inner: DeliveryInner::Batch {
                done,
                offset_delta,
                topic,
                partition,
                timestamp,
            },
        }
    }
}

/// How a batch of records ended: shared by the delivery futures of its records (for client
/// implementations).
#[derive(Debug, Default)]
pub struct BatchDone {
    outcome: std::sync::OnceLock<std::result::Result<(i64, i64), Arc<Error>>>,
    wakers: parking_lot::Mutex<Vec<std::task::Waker>>,
}

impl BatchDone {
    /// Completes the batch with (base offset, log append time or -1), or an error.
    pub fn complete(&self, outcome: std::result::Result<(i64, i64), Arc<Error>>) {
        let _ = self.outcome.set(outcome);
        let wakers = std::mem::take(&mut *self.wakers.lock());
        for w in wakers {
            w.wake();
        }
    }

    /// Whether the batch has an outcome.
    pub fn is_done(&self) -> bool {
        self.outcome.get().is_some()
    }

    fn poll_outcome(&self, cx: &Context<'_>) -> Poll<std::result::Result<(i64, i64), Arc<Error>>> {
        if let Some(o) = self.outcome.get() {
            return Poll::Ready(o.clone());
        }
        let mut w = self.wakers.lock();
        if let Some(o) = self.outcome.get() {
            return Poll::Ready(o.clone());
        }
        if !w.iter().any(|x| x.will_wake(cx.waker())) {
            w.push(cx.waker().clone());
        }
        Poll::Pending
    }

    /// Waits for the outcome.
    pub async fn wait(self: &Arc<Self>) -> std::result::Result<(i64, i64), Arc<Error>> {
        std::future::poll_fn(|cx| self.poll_outcome(cx)).await
    }
}

impl std::fmt::Debug for DeliveryFuture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DeliveryFuture")
    }
}

impl DeliveryFuture {
    /// The outcome if the record is complete already, else `None`; unlike `poll`, registers no
    /// wake-up, so a caller checking many deliveries in turn (a load generator completing the
    /// front of its window after every send) pays an atomic load per check, not a lock.
    pub fn try_complete(&mut self) -> Option<Result<RecordMetadata>> {
        match &mut self.inner {
            DeliveryInner::Boxed(f) => {
                match f
                    .as_mut()
                    .poll(&mut Context::from_waker(std::task::Waker::noop()))
                {
                    Poll::Ready(r) => Some(r),
                    Poll::Pending => None,
                }
            }
            DeliveryInner::Cell(p) => p.outcome(),
            DeliveryInner::Batch { done, .. } => {
                let outcome = done.outcome.get()?.clone();
                Some(self.batch_metadata(outcome))
            }
        }
    }

    /// A batched record's metadata from its batch's outcome.
    fn batch_metadata(
        &self,
        outcome: std::result::Result<(i64, i64), Arc<Error>>,
    ) -> Result<RecordMetadata> {
        let DeliveryInner::Batch {
            offset_delta,
            topic,
            partition,
            timestamp,
            ..
        } = &self.inner
        else {
            return Err(Error::InvalidRequest(
                "batch metadata of a record outside a batch".into(),
            ));
        };
        let (base, log_append_time) = outcome.map_err(Error::Delivery)?;
        Ok(RecordMetadata {
            topic: Arc::clone(topic),
            partition: *partition,
            // A batch with no known offset (acks=0) gives its records none either.
            offset: if base < 0 {
                -1
            } else {
                base + i64::from(*offset_delta)
            },
            timestamp: if log_append_time >= 0 {
                log_append_time
            } else {
                *timestamp
            },
        })
    }
}

impl Future for DeliveryFuture {
    type Output = Result<RecordMetadata>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.inner {
            DeliveryInner::Boxed(f) => f.as_mut().poll(cx),
            DeliveryInner::Cell(p) => p.poll(cx),
            DeliveryInner::Batch { done, .. } => match done.poll_outcome(cx) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(outcome) => Poll::Ready(self.batch_metadata(outcome)),
            },
        }
    }
}

/// One transactional id as its coordinator lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionListing {
    /// The `transactional.id`.
    pub transactional_id: String,
    /// The producer id it maps to.
    pub producer_id: i64,
    /// Kafka's name of the state: `Empty`, `Ongoing`, `CompleteCommit`, ...
    pub state: String,
}

/// What the coordinator knows of one transactional id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionDescription {
    /// The `transactional.id`.
    pub transactional_id: String,
    /// The broker coordinating it; -1 on the embedded log.
    pub coordinator_id: i32,
    /// Kafka's name of the state: `Empty`, `Ongoing`, `CompleteCommit`, ...
    pub state: String,
    /// The producer id it maps to.
    pub producer_id: i64,
    /// The producer's current epoch.
    pub producer_epoch: i16,
    /// The producer's `transaction.timeout.ms`.
    pub transaction_timeout_ms: i32,
    /// When the open transaction began (ms since the epoch), -1 without one.
    pub transaction_start_time_ms: i64,
    /// Partitions of the open transaction.
    pub partitions: Vec<TopicPartition>,
}

/// A topic to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTopic {
    /// Name.
    pub name: String,
    /// Partition count.
    pub partitions: i32,
    /// Config overrides under Kafka's names.
    pub configs: Vec<(String, String)>,
}

impl NewTopic {
    /// A topic with default configs.
    pub fn new(name: impl Into<String>, partitions: i32) -> Self {
        Self {
            name: name.into(),
            partitions,
            configs: Vec::new(),
        }
    }

    /// Adds a config override.
    pub fn config(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.configs.push((key.into(), value.into()));
        self
    }
}

/// Which offset `list_offsets` looks up (Kafka's `OffsetSpec`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetSpec {
    /// The log start offset.
    Earliest,
    /// The log end offset (high watermark).
    Latest,
    /// The first offset with a timestamp >= this (the log end if none).
    Timestamp(i64),
    /// The offset of the record with the largest timestamp.
    MaxTimestamp,
}

/// An answer of `list_offsets`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListedOffset {
    /// The offset.
    pub offset: i64,
    /// The record's timestamp where the spec looked one up, else -1.
    pub timestamp: i64,
}

/// Where `reset_offsets` moves a group's committed offsets (kafka-consumer-groups'
/// `--to-earliest`, `--to-latest`, `--to-datetime`, `--shift-by`, `--to-offset`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetSpec {
    /// The log start offset.
    Earliest,
    /// The log end offset.
    Latest,
    /// The first offset with a timestamp >= this (ms since the epoch; the log end if none).
    ToDatetime(i64),
    /// The committed offset (the log start if none) plus this, clamped to the log.
    ShiftBy(i64),
    /// This offset, clamped to the log.
    ToOffset(i64),
}

/// A member of a consumer group as `describe_group` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerGroupMember {
    /// Member id.
    pub member_id: String,
    /// `group.instance.id` of a static member.
    pub group_instance_id: Option<String>,
    /// The client's `client.id`.
    pub client_id: String,
    /// The client's host.
    pub host: String,
    /// Its assigned partitions (empty if not a consumer or not yet assigned).
    pub assignment: Vec<TopicPartition>,
}

/// A consumer group as `describe_group` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerGroupDescription {
    /// The group.
    pub group_id: String,
    /// Its state.
    pub state: GroupState,
    /// The chosen protocol (assignor), empty if none.
    pub protocol: String,
    /// Its members.
    pub members: Vec<ConsumerGroupMember>,
}

impl ConsumerGroupDescription {
    /// Partition -> id of the member it is assigned to.
    pub fn owners(&self) -> std::collections::BTreeMap<TopicPartition, String> {
        self.members
            .iter()
            .flat_map(|m| {
                m.assignment
                    .iter()
                    .map(|tp| (tp.clone(), m.member_id.clone()))
            })
            .collect()
    }
}

/// One row of `lag`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionLag {
    /// The partition.
    pub tp: TopicPartition,
    /// The committed offset, if any.
    pub committed: Option<i64>,
    /// The log end offset (high watermark).
    pub log_end: i64,
    /// `log_end - committed` (`None` without a committed offset).
    pub lag: Option<i64>,
    /// The member it is assigned to, if any.
    pub member_id: Option<String>,
}

/// A change of a subscribed consumer's assignment, as [`Consumer::rebalance_events`] reports
/// it: Kafka's `ConsumerRebalanceListener` callbacks as values, so the code acting on them can
/// use the consumer (and a producer) in between.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RebalanceEvent {
    /// Partitions being taken from this consumer in a clean handover (its offsets committed
    /// first with `enable.auto.commit`). The consumer still owns them, in the same generation,
    /// until the next `poll`: commit what was processed of them now (`commit_sync`, or
    /// `send_offsets_to_transaction` and commit the transaction), as Kafka's
    /// `onPartitionsRevoked` does before the consumer rejoins.
    Revoked(Vec<TopicPartition>),
    /// Partitions newly given to this consumer (after every completed rebalance, maybe empty).
    Assigned(Vec<TopicPartition>),
    /// Partitions this consumer lost without a clean handover (its session or generation
    /// expired): other members may own them already, so committing them is refused.
    Lost(Vec<TopicPartition>),
}

/// Callbacks of a rebalance, as Kafka's `ConsumerRebalanceListener`, called from `poll` (and
/// `unsubscribe`/`close`) on the consumer's task, for the same changes
/// [`Consumer::rebalance_events`] reports (a listener cannot reach the consumer: to commit on
/// revocation, use the events).
pub trait RebalanceListener: Send {
    /// Partitions taken from this consumer, after their offsets were committed (with
    /// `enable.auto.commit`). Eager protocols revoke everything; cooperative ones only what moves.
    fn on_partitions_revoked(&mut self, partitions: &[TopicPartition]);
    /// Partitions newly given to this consumer (called after every rebalance, maybe empty).
    fn on_partitions_assigned(&mut self, partitions: &[TopicPartition]);
    /// Partitions this consumer lost without a clean handover (its session or generation
    /// expired): other members may own them already, so nothing was committed.
    fn on_partitions_lost(&mut self, partitions: &[TopicPartition]) {
        self.on_partitions_revoked(partitions);
    }
}

/// Topics of a subscription by pattern. Not a regex: `*` matches any run of characters
/// (`orders-*`, `*-events`, `*`); anything else matches itself. Internal topics (`__...`)
/// match only a pattern starting with `__`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicPattern(String);

impl TopicPattern {
    /// A pattern.
    pub fn new(pattern: impl Into<String>) -> Self {
        Self(pattern.into())
    }

    /// The pattern as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `topic` matches.
    pub fn matches(&self, topic: &str) -> bool {
        if topic.starts_with("__") && !self.0.starts_with("__") {
            return false;
        }
        glob(self.0.as_bytes(), topic.as_bytes())
    }
}

fn glob(p: &[u8], s: &[u8]) -> bool {
    // Iterative matching with backtracking to the last `*`: linear in practice.
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, si));
            pi += 1;
        } else if pi < p.len() && p[pi] == s[si] {
            pi += 1;
            si += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

/// Topic administration, as Kafka's `Admin` client.
pub trait Admin: Send + Sync {
    /// Creates topics; fails on the first that cannot be created.
    ///
    /// A refused config: the embedded log names the key ([`Error::InvalidConfig`], or
    /// [`Error::UnknownConfig`] for a key it does not know); the Kafka-protocol client reports
    /// [`Error::Kafka`] with INVALID_CONFIG (40), as librdkafka's admin results carry the code
    /// without the broker's message that names the key.
    fn create_topics(&self, topics: Vec<NewTopic>) -> impl Future<Output = Result<()>> + Send;
    /// Deletes topics with their data.
    fn delete_topics(&self, names: Vec<String>) -> impl Future<Output = Result<()>> + Send;
    /// Names of all topics.
    fn list_topics(&self) -> impl Future<Output = Result<Vec<String>>> + Send;
    /// Partitions, offsets and configs of a topic.
    fn describe_topic(&self, name: &str) -> impl Future<Output = Result<TopicDescription>> + Send;
    /// Sets some configs and returns others to their defaults (IncrementalAlterConfigs). A
    /// refused value is reported as by [`Admin::create_topics`].
    fn alter_configs(
        &self,
        topic: &str,
        set: Vec<(String, String)>,
        delete: Vec<String>,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Grows a topic to `total` partitions.
    fn create_partitions(&self, topic: &str, total: i32)
    -> impl Future<Output = Result<()>> + Send;
    /// Deletes records below `offset` (-1: everything); returns the new log start offset.
    ///
    /// An offset past the log end: the embedded log says where the log is
    /// ([`Error::OffsetOutOfRange`]); the Kafka-protocol client reports [`Error::Kafka`] with
    /// OFFSET_OUT_OF_RANGE (1), all librdkafka's DeleteRecords result gives.
    fn delete_records(
        &self,
        tp: &TopicPartition,
        offset: i64,
    ) -> impl Future<Output = Result<i64>> + Send;
    /// Looks up an offset.
    fn list_offsets(
        &self,
        tp: &TopicPartition,
        spec: OffsetSpec,
    ) -> impl Future<Output = Result<ListedOffset>> + Send;
    /// Groups with members or committed offsets (ListGroups).
    fn list_groups(&self) -> impl Future<Output = Result<Vec<GroupListing>>> + Send;
    /// State, protocol and members (with their assignments) of a group (DescribeGroups).
    fn describe_group(
        &self,
        group: &str,
    ) -> impl Future<Output = Result<ConsumerGroupDescription>> + Send;
    /// Deletes groups without members, with their offsets (DeleteGroups); one result per group.
    fn delete_groups(
        &self,
        groups: Vec<String>,
    ) -> impl Future<Output = Result<Vec<Result<()>>>> + Send;
    /// Deletes a group's committed offsets of `partitions` (OffsetDelete).
    fn delete_offsets(
        &self,
        group: &str,
        partitions: Vec<TopicPartition>,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Transactional ids the transaction coordinators know, with producer id and state,
    /// sorted by id (Kafka's `Admin.listTransactions`: ListTransactions of every broker).
    fn list_transactions(&self) -> impl Future<Output = Result<Vec<TransactionListing>>> + Send;
    /// State, producer and open partitions of one transactional id (Kafka's
    /// `Admin.describeTransactions`); [`Error::TransactionalIdNotFound`] if unknown.
    fn describe_transaction(
        &self,
        transactional_id: &str,
    ) -> impl Future<Output = Result<TransactionDescription>> + Send;
    /// Computes new committed offsets of `partitions` for `group` by `spec`, and commits them
    /// unless `dry_run`. Refused with NON_EMPTY_GROUP unless the group is Empty (or unknown).
    fn reset_offsets(
        &self,
        group: &str,
        partitions: Vec<TopicPartition>,
        spec: ResetSpec,
        dry_run: bool,
    ) -> impl Future<Output = Result<Vec<(TopicPartition, i64)>>> + Send;
    /// Committed offset, log end and lag of every partition the group has an offset for or
    /// is assigned.
    fn lag(&self, group: &str) -> impl Future<Output = Result<Vec<PartitionLag>>> + Send;
}

/// Sends records, batching them per partition by `linger.ms` and `batch.size`.
///
/// # Transactions
///
/// A producer with a `transactional.id` sends only inside a transaction, as Kafka's does:
/// [`Producer::init_transactions`] once, then [`Producer::begin_transaction`], sends (and
/// [`Producer::send_offsets_to_transaction`] for a consume-transform-produce loop), then
/// [`Producer::commit_transaction`] or [`Producer::abort_transaction`]. With Kafka's semantics
/// on every implementation:
///
/// - Without a `transactional.id`, each transactional call fails with
///   [`Error::InvalidTxnState`]; so does every call but `init_transactions` before it, a
///   `begin_transaction` inside a transaction, and a send, `send_offsets_to_transaction`,
///   commit or abort outside one.
/// - `init_transactions` fences every earlier producer of the same `transactional.id` (and
///   aborts what it left open): the earlier producer's next transactional call fails with
///   [`Error::ProducerFenced`] (its epoch numbers are -1 where the client does not know them:
///   librdkafka does not report them).
/// - `commit_transaction` sends what is queued first; if any record of the transaction failed,
///   the commit fails and nothing of the transaction becomes visible: abort then.
///
/// Where the implementations differ: Sluice's native Kafka producer
/// (`sluice.producer.engine=native`) has no transactions: a `transactional.id` is refused when
/// it is made, and each transactional call fails with [`Error::Unsupported`] naming
/// `sluice.producer.engine=librdkafka`.
pub trait Producer: Send + Sync {
    /// Queues a record. Waits only for buffer space (`buffer.memory`, up to `max.block.ms`);
    /// the returned future resolves once the record is acknowledged per `acks`.
    fn send(&self, record: ProducerRecord) -> impl Future<Output = Result<DeliveryFuture>> + Send;
    /// Sends everything queued now and waits for all of it to be acknowledged.
    fn flush(&self) -> impl Future<Output = Result<()>> + Send;
    /// Partitions of a topic, as the partitioner sees them.
    fn partition_count(&self, topic: &str) -> impl Future<Output = Result<i32>> + Send;
    /// Registers `transactional.id` with its transaction coordinator (Kafka's
    /// `initTransactions`): gets the producer id with a new epoch, fencing every earlier
    /// producer with the same id and aborting what it left open. Bounded by `max.block.ms` on
    /// the Kafka-protocol client.
    fn init_transactions(&self) -> impl Future<Output = Result<()>> + Send;
    /// Starts a transaction: what is sent until commit or abort is all visible to
    /// `read_committed` consumers, or none of it. Local: no I/O.
    fn begin_transaction(&self) -> Result<()>;
    /// Kafka's `sendOffsetsToTransaction`: commits `offsets` (the next offset to consume of
    /// each partition) for `group` as part of the open transaction, so a
    /// consume-transform-produce loop is exactly once: the offsets become the group's
    /// committed offsets only if the transaction commits.
    ///
    /// `group` is a member's metadata ([`Consumer::group_metadata`] of the consumer whose
    /// records were processed: the coordinator refuses it with [`Error::IllegalGeneration`]
    /// once that generation passed, or [`Error::UnknownMemberId`]), or metadata from outside
    /// the group ([`ConsumerGroupMetadata::new`], accepted while the group has no members).
    ///
    /// Where the implementations differ: librdkafka's producer needs librdkafka's own
    /// metadata object, which only librdkafka's consumer builds; member metadata that did not
    /// come from a librdkafka consumer's `group_metadata` (built by hand, or from another
    /// client) is refused there with [`Error::Unsupported`].
    fn send_offsets_to_transaction(
        &self,
        offsets: Vec<(TopicPartition, i64)>,
        group: &ConsumerGroupMetadata,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Sends what is queued, then commits the transaction. A record of it that failed fails
    /// the commit (abort then).
    fn commit_transaction(&self) -> impl Future<Output = Result<()>> + Send;
    /// Aborts the transaction: none of it becomes visible to `read_committed` consumers, and
    /// offsets sent with it are not committed.
    fn abort_transaction(&self) -> impl Future<Output = Result<()>> + Send;
    /// Closes the producer (Kafka's `close`): sends what is queued and waits until every
    /// record in flight completed (acknowledged, or failed with its error in its delivery
    /// future), then releases the producer's threads and connections. Returns the flush's
    /// error if one failed. Dropping a producer without `close` also sends what is queued,
    /// but blocks the dropping thread to do so.
    fn close(self) -> impl Future<Output = Result<()>> + Send
    where
        Self: Sized;
}

/// Reads records from assigned partitions.
pub trait Consumer: Send {
    /// Replaces the assignment (positions of partitions kept are kept).
    fn assign(&mut self, partitions: Vec<TopicPartition>) -> Result<()>;
    /// The assigned partitions.
    fn assignment(&self) -> Vec<TopicPartition>;
    /// Sets the next offset to read of an assigned partition.
    fn seek(&mut self, tp: &TopicPartition, offset: i64) -> Result<()>;
    /// Moves to the log start of these partitions (all assigned if empty).
    fn seek_to_beginning(
        &mut self,
        tps: &[TopicPartition],
    ) -> impl Future<Output = Result<()>> + Send;
    /// Moves to the log end of these partitions (all assigned if empty).
    fn seek_to_end(&mut self, tps: &[TopicPartition]) -> impl Future<Output = Result<()>> + Send;
    /// Moves every assigned partition to its first record with a timestamp >= `ts` (the log
    /// end where there is none).
    fn seek_to_timestamp(&mut self, ts: i64) -> impl Future<Output = Result<()>> + Send;
    /// The first offset of each of `tps` (the log start offset; Kafka's
    /// `beginningOffsets`), in the order given. The partitions need not be assigned. Batched:
    /// the Kafka client asks each leader once (ListOffsets) for all its partitions.
    fn beginning_offsets(
        &mut self,
        tps: &[TopicPartition],
    ) -> impl Future<Output = Result<Vec<(TopicPartition, i64)>>> + Send;
    /// The end offset of each of `tps` (Kafka's `endOffsets`), in the order given: the high
    /// watermark, or with `isolation.level=read_committed` the last stable offset (the first
    /// offset of a transaction still open), as Kafka's consumer gives. What restoring a
    /// changelog reads up to. Batched as [`Consumer::beginning_offsets`].
    fn end_offsets(
        &mut self,
        tps: &[TopicPartition],
    ) -> impl Future<Output = Result<Vec<(TopicPartition, i64)>>> + Send;
    /// The next offset `poll` returns (records fetched but not yet returned do not count), if
    /// known: `None` until the consumer places the partition (a seek, or its first fetch from
    /// the committed offset or by `auto.offset.reset`). The native Kafka consumer places every
    /// assigned partition at its first poll, paused or not; the embedded and librdkafka
    /// consumers only those they fetch. (Kafka's Java consumer places it in `position` itself.)
    fn position(&self, tp: &TopicPartition) -> Option<i64>;
    /// Stops fetching these partitions until resumed.
    fn pause(&mut self, tps: &[TopicPartition]);
    /// Resumes fetching.
    fn resume(&mut self, tps: &[TopicPartition]);
    /// Returns available records, waiting up to `timeout` for some (an empty result means none
    /// arrived in time).
    ///
    /// With `group.id` and a subscription, `poll` also runs the group membership: joins,
    /// heartbeats, rebalances (queuing [`RebalanceEvent`]s and calling the
    /// [`RebalanceListener`]) and auto-commits. When a rebalance would revoke partitions,
    /// `poll` returns at once (maybe with no records) with [`RebalanceEvent::Revoked`] queued,
    /// and the consumer gives those partitions up (leaves its generation, rejoins) only at the
    /// next `poll`: a `commit_sync` or `send_offsets_to_transaction` made in between counts for
    /// the current generation. Check [`Consumer::rebalance_events`] after each `poll`.
    fn poll(
        &mut self,
        timeout: Duration,
    ) -> impl Future<Output = Result<Vec<ConsumerRecord>>> + Send;
    /// Subscribes to `topics` through the consumer group of `group.id` (replacing any earlier
    /// subscription); partitions come from the group's assignor at the next `poll`. Fails
    /// without `group.id` or with a manual assignment.
    fn subscribe(&mut self, topics: Vec<String>) -> Result<()>;
    /// Subscribes to every topic matching `pattern` (see [`TopicPattern`]) when the consumer
    /// (re)joins its group, and again as topics appear or go. Async because the Kafka client
    /// resolves the pattern against the cluster's metadata (as Kafka's Java consumer does);
    /// the embedded consumer matches the log's topics.
    fn subscribe_pattern(
        &mut self,
        pattern: TopicPattern,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Drops the subscription: commits (with `enable.auto.commit`), revokes and leaves the group.
    fn unsubscribe(&mut self) -> impl Future<Output = Result<()>> + Send;
    /// Commits offsets for `group.id` and waits until they are stored: these, or with `None`
    /// the current positions of every assigned partition.
    fn commit_sync(
        &mut self,
        offsets: Option<Vec<(TopicPartition, i64)>>,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Like `commit_sync` but returns at once; a failure is logged.
    fn commit_async(&mut self, offsets: Option<Vec<(TopicPartition, i64)>>) -> Result<()>;
    /// The committed offsets of `group.id` for these partitions, in their order (`None`
    /// where there is none); [`Error::InvalidGroupId`] without `group.id`. Async: the Kafka
    /// client asks the group coordinator (OffsetFetch). Offsets committed in a transaction
    /// count once it committed.
    fn committed(
        &mut self,
        tps: &[TopicPartition],
    ) -> impl Future<Output = Result<Vec<Option<i64>>>> + Send;
    /// This consumer's group, generation and member id, for
    /// [`Producer::send_offsets_to_transaction`] (Kafka's `groupMetadata`); `None` without
    /// `group.id`. Outside a membership (manual assignment, or before the first join) it is
    /// the metadata from outside the group (generation -1, no member id).
    ///
    /// Where the implementations differ: the librdkafka consumer's metadata carries
    /// librdkafka's own object, which only the librdkafka producer can use (see
    /// [`ConsumerGroupMetadata`]); librdkafka does not report the generation and member id
    /// otherwise, so its public fields read -1 and "" (the object holds the real ones).
    /// Sluice's native Kafka consumer, which has no membership, gives the metadata from
    /// outside the group.
    fn group_metadata(&self) -> Option<ConsumerGroupMetadata>;
    /// The rebalance events since the last call, oldest first (drained: each is returned
    /// once). Events wait here until asked for; a consumer that never asks keeps them (one
    /// per rebalance).
    ///
    /// Where the implementations differ: Sluice's native Kafka consumer has no group
    /// membership and never has events. The librdkafka consumer reports eager rebalances as
    /// Revoked of everything then Assigned of everything (librdkafka's eager protocol), and
    /// cooperative ones as the partitions that move.
    fn rebalance_events(&mut self) -> Vec<RebalanceEvent>;
    /// Sets the callbacks of rebalances.
    fn set_rebalance_listener(&mut self, listener: Box<dyn RebalanceListener>);
    /// Commits (with `enable.auto.commit`), revokes and leaves the group. The consumer keeps
    /// no assignment afterwards.
    fn close(&mut self) -> impl Future<Output = Result<()>> + Send;
}

/// A way to reach a log: embedded, or over the Kafka protocol.
pub trait Client: Clone + Send + Sync + 'static {
    /// Admin implementation.
    type Admin: Admin;
    /// Producer implementation.
    type Producer: Producer;
    /// Consumer implementation.
    type Consumer: Consumer;
    /// An admin client.
    fn admin(&self) -> Result<Self::Admin>;
    /// A producer with these configs.
    fn producer(&self, config: ProducerConfig) -> Result<Self::Producer>;
    /// A consumer with these configs.
    fn consumer(&self, config: ConsumerConfig) -> Result<Self::Consumer>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn try_complete_gives_a_batched_record_its_offset_once_the_batch_is_done() {
        let done = Arc::new(BatchDone::default());
        let mut f = DeliveryFuture::in_batch(Arc::clone(&done), 3, Arc::from("t"), 1, 77);
        assert!(f.try_complete().is_none());
        assert!(done.wakers.lock().is_empty(), "no waker was registered");
        done.complete(Ok((100, -1)));
        let m = f.try_complete().unwrap().unwrap();
        assert_eq!((m.partition, m.offset, m.timestamp), (1, 103, 77));

        let done = Arc::new(BatchDone::default());
        let mut f = DeliveryFuture::in_batch(Arc::clone(&done), 0, Arc::from("t"), 0, 5);
        done.complete(Ok((7, 1_000)));
        assert_eq!(
            f.try_complete().unwrap().unwrap().timestamp,
            1_000,
            "log append time"
        );

        let done = Arc::new(BatchDone::default());
        let mut f = DeliveryFuture::in_batch(Arc::clone(&done), 4, Arc::from("t"), 0, 5);
        done.complete(Ok((-1, -1)));
        assert_eq!(f.try_complete().unwrap().unwrap().offset, -1, "acks=0");

        let done = Arc::new(BatchDone::default());
        let mut f = DeliveryFuture::in_batch(Arc::clone(&done), 0, Arc::from("t"), 0, 5);
        done.complete(Err(Arc::new(Error::Timeout("t".into()))));
        assert!(matches!(f.try_complete(), Some(Err(Error::Delivery(_)))));
    }

    #[test]
    fn group_metadata_equality_and_debug_ignore_the_implementation_handle() {
        let plain = ConsumerGroupMetadata::member("g", 3, "m", None);
        let handled = plain.clone().with_handle(Arc::new(7u32));
        assert_eq!(plain, handled);
        assert_eq!(format!("{plain:?}"), format!("{handled:?}"));
        assert!(plain.handle().is_none());
        let h = handled.handle().expect("attached");
        assert_eq!(Arc::clone(h).downcast::<u32>().ok().as_deref(), Some(&7));
        assert!(ConsumerGroupMetadata::new("g").is_outside_group());
        assert!(!plain.is_outside_group());
    }

    #[test]
    fn try_complete_of_a_wrapped_future() {
        let mut ready = DeliveryFuture::new(async {
            Ok(RecordMetadata {
                topic: Arc::from("t"),
                partition: 0,
                offset: 9,
                timestamp: 1,
            })
        });
        assert_eq!(ready.try_complete().unwrap().unwrap().offset, 9);
        let mut never = DeliveryFuture::new(std::future::pending());
        assert!(never.try_complete().is_none());
    }
}
