//! The one error type of the log and its clients (`sluice-log`, `sluice-client`,
//! `sluice-kafka` all return it): Kafka's error conditions, with one mapping each way to
//! [`ErrorCode`].

use std::path::PathBuf;

use crate::TopicPartition;
pub use crate::error_code::ErrorCode;

/// Everything that can go wrong in the log and its clients.
///
/// `Display` describes only this error; a wrapped `source` is not repeated in the message.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The topic is not known.
    #[error("topic \"{0}\" does not exist")]
    UnknownTopic(String),
    /// The topic exists but not that partition.
    #[error("partition {partition} of topic \"{topic}\" does not exist")]
    UnknownPartition {
        /// Topic name.
        topic: String,
        /// Partition asked for.
        partition: i32,
    },
    /// `create_topic` for a name already in use.
    #[error("topic \"{0}\" already exists")]
    TopicExists(String),
    /// A topic name breaking Kafka's naming rules.
    #[error("invalid topic name \"{name}\": {reason}")]
    InvalidTopicName {
        /// The name given.
        name: String,
        /// Which rule it breaks.
        reason: String,
    },
    /// A partition count that is not positive, or would shrink a topic.
    #[error("invalid partition count {count}: {reason}")]
    InvalidPartitions {
        /// The count given.
        count: i32,
        /// Why it is refused.
        reason: String,
    },
    /// A config key this log does not know.
    #[error("unknown config \"{key}\" (known: {known})")]
    UnknownConfig {
        /// The key given.
        key: String,
        /// The accepted keys, comma separated.
        known: String,
    },
    /// A config value out of range or of the wrong form.
    #[error("invalid value \"{value}\" for config \"{key}\": {reason}")]
    InvalidConfig {
        /// The key.
        key: String,
        /// The value given.
        value: String,
        /// What is accepted.
        reason: String,
    },
    /// A fetch or seek outside the partition's offsets.
    #[error("offset {offset} is out of range for {tp}: the log holds [{log_start}, {log_end})")]
    OffsetOutOfRange {
        /// The partition.
        tp: TopicPartition,
        /// The offset asked for.
        offset: i64,
        /// First offset held.
        log_start: i64,
        /// Next offset to be written.
        log_end: i64,
    },
    /// A batch larger than `max.message.bytes`.
    #[error("record batch of {size} bytes exceeds max.message.bytes ({max}) of topic \"{topic}\"")]
    MessageTooLarge {
        /// Topic.
        topic: String,
        /// Batch size in bytes.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// A `CreateTime` timestamp outside `message.timestamp.before.max.ms` /
    /// `message.timestamp.after.max.ms` of the log's clock (Kafka's INVALID_TIMESTAMP).
    #[error("timestamp {timestamp} of a record is out of range for topic \"{topic}\": {reason}")]
    InvalidTimestamp {
        /// Topic.
        topic: String,
        /// The offending timestamp.
        timestamp: i64,
        /// Which bound it breaks.
        reason: String,
    },
    /// A record batch handed to the log (or read back) that is not valid Kafka RecordBatch v2.
    #[error("corrupt record batch: {0}")]
    CorruptRecord(String),
    /// A batch whose CRC holds but whose records the log refuses, as Kafka's log validator does
    /// (INVALID_RECORD): malformed records, a record count that does not match them, a control
    /// batch or a bad sequence from a client, a record without a key on a compacted topic.
    /// Nothing of the batch was appended.
    #[error("invalid record batch for {tp}: {reason}")]
    InvalidRecord {
        /// The partition appended to.
        tp: TopicPartition,
        /// What is wrong.
        reason: String,
    },
    /// A client's write to an internal topic (`__consumer_offsets`, `__transaction_state`):
    /// only their coordinators write to them (Kafka's INVALID_TOPIC_EXCEPTION).
    #[error("cannot append to internal topic \"{0}\": only its coordinator writes to it")]
    InternalTopic(String),
    /// A partition taken offline by corrupt data found on disk; other partitions keep serving.
    #[error("partition {tp} is offline: corrupt data in {} at byte {position}: {reason}", path.display())]
    PartitionOffline {
        /// The partition.
        tp: TopicPartition,
        /// The segment file holding the bad bytes.
        path: PathBuf,
        /// Byte position of the bad batch in that file.
        position: u64,
        /// What is wrong.
        reason: String,
    },
    /// The log directory refused writes after an I/O failure (as Kafka does); reads go on.
    #[error("log directory {} is offline for writes after an I/O failure", dir.display())]
    LogDirOffline {
        /// The directory.
        dir: PathBuf,
    },
    /// An I/O error on one file.
    #[error("I/O error on {}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// Another process holds the data directory's lock file.
    #[error("data directory {} is in use by another process ({holder})", dir.display())]
    DirectoryLocked {
        /// The directory.
        dir: PathBuf,
        /// What the lock file says of its holder.
        holder: String,
    },
    /// The producer could not get buffer space within `max.block.ms`.
    #[error(
        "producer buffer.memory ({buffer_memory} bytes) stayed full for max.block.ms ({max_block_ms} ms)"
    )]
    BufferExhausted {
        /// The configured `buffer.memory`.
        buffer_memory: usize,
        /// The configured `max.block.ms`.
        max_block_ms: u64,
    },
    /// A record that was not delivered within `delivery.timeout.ms`, or a request timing out.
    #[error("timed out: {0}")]
    Timeout(String),
    /// The client or log was closed.
    #[error("{0} is closed")]
    Closed(&'static str),
    /// A record's batch failed; every record of the batch gets the same error.
    #[error(transparent)]
    Delivery(std::sync::Arc<Error>),
    /// A record larger than the producer's `max.request.size`.
    #[error("record of {size} bytes exceeds max.request.size ({max})")]
    RecordTooLarge {
        /// Record size in bytes, as encoded.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// A consumer's position is out of range and `auto.offset.reset` is `none`.
    #[error("no valid offset for {tp} and auto.offset.reset is none")]
    NoOffsetForPartition {
        /// The partition.
        tp: TopicPartition,
    },
    /// An idempotent producer's batch whose first sequence does not follow the last one the
    /// partition holds from that producer (Kafka's `OUT_OF_ORDER_SEQUENCE_NUMBER`). Nothing of
    /// the batch was appended.
    #[error(
        "out of order sequence number for producer {producer_id} on {tp}: expected {expected}, received {got}"
    )]
    OutOfOrderSequence {
        /// The partition.
        tp: TopicPartition,
        /// The producer id.
        producer_id: i64,
        /// The sequence the partition expected next.
        expected: i32,
        /// The batch's first sequence.
        got: i32,
    },
    /// A batch from an idempotent producer whose epoch is older than the epoch the partition
    /// knows for that producer id: a fenced ("zombie") producer (Kafka's
    /// `INVALID_PRODUCER_EPOCH`, 47). Nothing of the batch was appended.
    #[error(
        "producer {producer_id} on {tp} has epoch {got}, older than its current epoch {current}"
    )]
    InvalidProducerEpoch {
        /// The partition.
        tp: TopicPartition,
        /// The producer id.
        producer_id: i64,
        /// The epoch the partition knows.
        current: i16,
        /// The batch's epoch.
        got: i16,
    },
    /// No producer id can be handed out: the ids are exhausted, or the file recording the
    /// allocated block is damaged (so ids could repeat).
    #[error("cannot allocate a producer id: {0}")]
    ProducerIdUnavailable(String),
    /// A transactional request that does not fit the transaction's state (Kafka's
    /// `INVALID_TXN_STATE`, 48), e.g. a non-transactional batch while the producer's transaction is
    /// open, or committing a transaction that is not ongoing.
    #[error("invalid transaction state: {0}")]
    InvalidTxnState(String),
    /// A transactional id the coordinator does not know (Kafka's
    /// `TRANSACTIONAL_ID_NOT_FOUND`, 105).
    #[error("transactional id \"{0}\" does not exist")]
    TransactionalIdNotFound(String),
    /// A producer whose epoch is not the transactional id's current one: a newer producer
    /// with the same `transactional.id` took over (Kafka's `PRODUCER_FENCED`, 90).
    #[error(
        "producer of transactional id \"{transactional_id}\" is fenced: epoch {got}, current epoch {current}"
    )]
    ProducerFenced {
        /// The transactional id.
        transactional_id: String,
        /// The coordinator's epoch.
        current: i16,
        /// The request's epoch.
        got: i16,
    },
    /// A producer id that is not the one the transactional id maps to (Kafka's
    /// `INVALID_PRODUCER_ID_MAPPING`, 49).
    #[error(
        "producer id {producer_id} is not the producer id of transactional id \"{transactional_id}\""
    )]
    InvalidProducerIdMapping {
        /// The transactional id.
        transactional_id: String,
        /// The request's producer id.
        producer_id: i64,
    },
    /// The transaction is being completed; retry later (Kafka's `CONCURRENT_TRANSACTIONS`,
    /// 51).
    #[error("transaction of transactional id \"{0}\" is being completed")]
    ConcurrentTransactions(String),
    /// A `transaction.timeout.ms` out of range (Kafka's `INVALID_TRANSACTION_TIMEOUT`, 50).
    #[error("transaction.timeout.ms {timeout_ms} is outside [1, {max_ms}]")]
    InvalidTransactionTimeout {
        /// The timeout asked for.
        timeout_ms: i32,
        /// `transaction.max.timeout.ms`.
        max_ms: i32,
    },
    /// A request that makes no sense (e.g. seeking an unassigned partition).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// A group request from a member the group does not know (Kafka's UNKNOWN_MEMBER_ID).
    #[error("member \"{member_id}\" is not in group \"{group_id}\"")]
    UnknownMemberId {
        /// The group.
        group_id: String,
        /// The member id given.
        member_id: String,
    },
    /// A group request for another generation than the group's (ILLEGAL_GENERATION).
    #[error("generation {generation} of group \"{group_id}\" is not the current one ({current})")]
    IllegalGeneration {
        /// The group.
        group_id: String,
        /// The generation given.
        generation: i32,
        /// The group's generation.
        current: i32,
    },
    /// The group is rebalancing: the member must rejoin (REBALANCE_IN_PROGRESS).
    #[error("group \"{group_id}\" is rebalancing")]
    RebalanceInProgress {
        /// The group.
        group_id: String,
    },
    /// A static member's id was taken over by a newer member with the same
    /// `group.instance.id` (FENCED_INSTANCE_ID).
    #[error(
        "member \"{member_id}\" of group \"{group_id}\" was fenced by a newer member with group.instance.id \"{instance_id}\""
    )]
    FencedInstanceId {
        /// The group.
        group_id: String,
        /// The static member's `group.instance.id`.
        instance_id: String,
        /// The fenced member id.
        member_id: String,
    },
    /// A first JoinGroup without a member id (KIP-394): the member must rejoin with the id
    /// given here (MEMBER_ID_REQUIRED).
    #[error("group \"{group_id}\" requires a member id: rejoin as \"{member_id}\"")]
    MemberIdRequired {
        /// The group.
        group_id: String,
        /// The member id to rejoin with.
        member_id: String,
    },
    /// The group does not exist (GROUP_ID_NOT_FOUND).
    #[error("group \"{0}\" does not exist")]
    GroupIdNotFound(String),
    /// The group still has members, so it cannot be deleted (NON_EMPTY_GROUP).
    #[error("group \"{0}\" is not empty")]
    NonEmptyGroup(String),
    /// A group id that is empty (INVALID_GROUP_ID).
    #[error("invalid group id \"{0}\"")]
    InvalidGroupId(String),
    /// A member's protocol type or protocols match none the group uses
    /// (INCONSISTENT_GROUP_PROTOCOL).
    #[error("inconsistent group protocol in group \"{group_id}\": {reason}")]
    InconsistentGroupProtocol {
        /// The group.
        group_id: String,
        /// What does not match.
        reason: String,
    },
    /// A `session.timeout.ms` outside the coordinator's bounds (INVALID_SESSION_TIMEOUT).
    #[error("session timeout {timeout_ms} ms is outside [{min_ms}, {max_ms}]")]
    InvalidSessionTimeout {
        /// The timeout given.
        timeout_ms: i32,
        /// `group.min.session.timeout.ms`.
        min_ms: i32,
        /// `group.max.session.timeout.ms`.
        max_ms: i32,
    },
    /// The group is being removed or the coordinator is shutting down
    /// (COORDINATOR_NOT_AVAILABLE): find the coordinator again and retry.
    #[error("the coordinator of group \"{0}\" is not available")]
    CoordinatorNotAvailable(String),
    /// An error the Kafka-protocol client (librdkafka) reported that no variant above
    /// describes, with Kafka's wire error code (positive) or librdkafka's local one (negative).
    #[error("{operation}: {message}")]
    Kafka {
        /// What was being done, e.g. `describe_topic`.
        operation: &'static str,
        /// Kafka's error code (positive) or librdkafka's (negative).
        code: i32,
        /// The client's description.
        message: String,
        /// Whether the client says retrying can succeed.
        retriable: bool,
    },
    /// An operation a client cannot perform.
    #[error("{operation} is not supported by {client}: {reason}")]
    Unsupported {
        /// The operation, e.g. `delete_offsets`.
        operation: &'static str,
        /// The client, e.g. `the Kafka-protocol client`.
        client: &'static str,
        /// Why.
        reason: String,
    },
    /// Offset metadata longer than `offset.metadata.max.bytes` (OFFSET_METADATA_TOO_LARGE).
    #[error("offset metadata of {size} bytes exceeds offset.metadata.max.bytes ({max})")]
    OffsetMetadataTooLarge {
        /// Metadata size in bytes.
        size: usize,
        /// The limit.
        max: usize,
    },
}

/// `Result` with [`Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// Whether retrying the same call later can succeed.
    pub fn is_retriable(&self) -> bool {
        matches!(
            self,
            Error::Timeout(_)
                | Error::BufferExhausted { .. }
                | Error::CoordinatorNotAvailable(_)
                | Error::Kafka {
                    retriable: true,
                    ..
                }
        )
    }

    /// Kafka's error code for this error (UNKNOWN_SERVER_ERROR for errors a broker would not
    /// send). The one mapping from errors to codes: the broker answers with it.
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::OffsetOutOfRange { .. } => ErrorCode::OFFSET_OUT_OF_RANGE,
            Error::CorruptRecord(_) => ErrorCode::CORRUPT_MESSAGE,
            Error::InvalidRecord { .. } => ErrorCode::INVALID_RECORD,
            Error::InternalTopic(_) => ErrorCode::INVALID_TOPIC_EXCEPTION,
            Error::UnknownTopic(_) | Error::UnknownPartition { .. } => {
                ErrorCode::UNKNOWN_TOPIC_OR_PARTITION
            }
            Error::Timeout(_) => ErrorCode::REQUEST_TIMED_OUT,
            Error::MessageTooLarge { .. } | Error::RecordTooLarge { .. } => {
                ErrorCode::MESSAGE_TOO_LARGE
            }
            Error::OffsetMetadataTooLarge { .. } => ErrorCode::OFFSET_METADATA_TOO_LARGE,
            Error::CoordinatorNotAvailable(_) => ErrorCode::COORDINATOR_NOT_AVAILABLE,
            Error::InvalidTopicName { .. } => ErrorCode::INVALID_TOPIC_EXCEPTION,
            Error::IllegalGeneration { .. } => ErrorCode::ILLEGAL_GENERATION,
            Error::InconsistentGroupProtocol { .. } => ErrorCode::INCONSISTENT_GROUP_PROTOCOL,
            Error::InvalidGroupId(_) => ErrorCode::INVALID_GROUP_ID,
            Error::UnknownMemberId { .. } => ErrorCode::UNKNOWN_MEMBER_ID,
            Error::InvalidSessionTimeout { .. } => ErrorCode::INVALID_SESSION_TIMEOUT,
            Error::RebalanceInProgress { .. } => ErrorCode::REBALANCE_IN_PROGRESS,
            Error::InvalidTimestamp { .. } => ErrorCode::INVALID_TIMESTAMP,
            Error::OutOfOrderSequence { .. } => ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER,
            Error::InvalidProducerEpoch { .. } => ErrorCode::INVALID_PRODUCER_EPOCH,
            Error::InvalidTxnState(_) => ErrorCode::INVALID_TXN_STATE,
            Error::InvalidProducerIdMapping { .. } => ErrorCode::INVALID_PRODUCER_ID_MAPPING,
            Error::InvalidTransactionTimeout { .. } => ErrorCode::INVALID_TRANSACTION_TIMEOUT,
            Error::ConcurrentTransactions(_) => ErrorCode::CONCURRENT_TRANSACTIONS,
            Error::ProducerFenced { .. } => ErrorCode::PRODUCER_FENCED,
            Error::TransactionalIdNotFound(_) => ErrorCode::TRANSACTIONAL_ID_NOT_FOUND,
            Error::TopicExists(_) => ErrorCode::TOPIC_ALREADY_EXISTS,
            Error::InvalidPartitions { .. } => ErrorCode::INVALID_PARTITIONS,
            Error::UnknownConfig { .. } | Error::InvalidConfig { .. } => ErrorCode::INVALID_CONFIG,
            Error::InvalidRequest(_) => ErrorCode::INVALID_REQUEST,
            Error::PartitionOffline { .. } | Error::LogDirOffline { .. } | Error::Io { .. } => {
                ErrorCode::KAFKA_STORAGE_ERROR
            }
            Error::NonEmptyGroup(_) => ErrorCode::NON_EMPTY_GROUP,
            Error::GroupIdNotFound(_) => ErrorCode::GROUP_ID_NOT_FOUND,
            Error::MemberIdRequired { .. } => ErrorCode::MEMBER_ID_REQUIRED,
            Error::FencedInstanceId { .. } => ErrorCode::FENCED_INSTANCE_ID,
            Error::Delivery(inner) => inner.code(),
            // Kafka's codes as they are; librdkafka's local (negative) ones are not wire codes.
            Error::Kafka { code, .. } => i16::try_from(*code)
                .ok()
                .filter(|c| *c > 0)
                .map_or(ErrorCode::UNKNOWN_SERVER_ERROR, ErrorCode::from_i16),
            Error::DirectoryLocked { .. }
            | Error::BufferExhausted { .. }
            | Error::Closed(_)
            | Error::NoOffsetForPartition { .. }
            | Error::ProducerIdUnavailable(_)
            | Error::Unsupported { .. } => ErrorCode::UNKNOWN_SERVER_ERROR,
        }
    }

    /// Kafka's wire error code for this error, as a number (see [`Error::code`]).
    pub fn error_code(&self) -> i16 {
        self.code().code()
    }

    /// The error a client reports for `code` answered to `operation` on `subject`: the other
    /// mapping, from codes to errors, shared by the Kafka-protocol clients. A code whose
    /// variant needs a subject the caller did not give (a topic, a group) stays
    /// [`Error::Kafka`] with its number.
    pub fn from_code(
        operation: &'static str,
        code: ErrorCode,
        message: impl Into<String>,
        subject: Subject<'_>,
    ) -> Error {
        let message = message.into();
        let owned = |s: Option<&str>| s.unwrap_or_default().to_owned();
        match code {
            ErrorCode::UNKNOWN_TOPIC_OR_PARTITION
                if subject.topic.is_some() && subject.partition.is_some() =>
            {
                Error::UnknownPartition {
                    topic: owned(subject.topic),
                    partition: subject.partition.unwrap_or(-1),
                }
            }
            ErrorCode::UNKNOWN_TOPIC_OR_PARTITION if subject.topic.is_some() => {
                Error::UnknownTopic(owned(subject.topic))
            }
            ErrorCode::TOPIC_ALREADY_EXISTS if subject.topic.is_some() => {
                Error::TopicExists(owned(subject.topic))
            }
            ErrorCode::INVALID_TOPIC_EXCEPTION if subject.topic.is_some() => {
                Error::InvalidTopicName {
                    name: owned(subject.topic),
                    reason: message,
                }
            }
            ErrorCode::INVALID_PARTITIONS if subject.count.is_some() => Error::InvalidPartitions {
                count: subject.count.unwrap_or(-1),
                reason: message,
            },
            ErrorCode::REQUEST_TIMED_OUT => Error::Timeout(format!("{operation}: {message}")),
            ErrorCode::CORRUPT_MESSAGE => Error::CorruptRecord(format!("{operation}: {message}")),
            ErrorCode::INVALID_REQUEST => Error::InvalidRequest(format!("{operation}: {message}")),
            ErrorCode::GROUP_ID_NOT_FOUND if subject.group.is_some() => {
                Error::GroupIdNotFound(owned(subject.group))
            }
            ErrorCode::NON_EMPTY_GROUP if subject.group.is_some() => {
                Error::NonEmptyGroup(owned(subject.group))
            }
            ErrorCode::INVALID_GROUP_ID if subject.group.is_some() => {
                Error::InvalidGroupId(owned(subject.group))
            }
            ErrorCode::COORDINATOR_NOT_AVAILABLE
            | ErrorCode::NOT_COORDINATOR
            | ErrorCode::COORDINATOR_LOAD_IN_PROGRESS
                if subject.group.is_some() =>
            {
                Error::CoordinatorNotAvailable(owned(subject.group))
            }
            ErrorCode::REBALANCE_IN_PROGRESS if subject.group.is_some() => {
                Error::RebalanceInProgress {
                    group_id: owned(subject.group),
                }
            }
            ErrorCode::INVALID_TXN_STATE => {
                Error::InvalidTxnState(format!("{operation}: {message}"))
            }
            // A client learns no epochs from these codes: -1.
            ErrorCode::PRODUCER_FENCED | ErrorCode::INVALID_PRODUCER_EPOCH
                if subject.transactional_id.is_some() =>
            {
                Error::ProducerFenced {
                    transactional_id: owned(subject.transactional_id),
                    current: -1,
                    got: -1,
                }
            }
            ErrorCode::CONCURRENT_TRANSACTIONS if subject.transactional_id.is_some() => {
                Error::ConcurrentTransactions(owned(subject.transactional_id))
            }
            ErrorCode::TRANSACTIONAL_ID_NOT_FOUND if subject.transactional_id.is_some() => {
                Error::TransactionalIdNotFound(owned(subject.transactional_id))
            }
            _ => Error::Kafka {
                operation,
                code: i32::from(code.code()),
                message,
                retriable: code.is_retriable(),
            },
        }
    }
}

/// What a failed request was about, so that [`Error::from_code`] can name it.
#[derive(Debug, Default, Clone, Copy)]
pub struct Subject<'a> {
    /// The topic.
    pub topic: Option<&'a str>,
    /// The partition of the topic.
    pub partition: Option<i32>,
    /// A partition count asked for.
    pub count: Option<i32>,
    /// The group.
    pub group: Option<&'a str>,
    /// The transactional id.
    pub transactional_id: Option<&'a str>,
}

impl<'a> Subject<'a> {
    /// Nothing in particular.
    pub fn none() -> Self {
        Self::default()
    }

    /// A topic.
    pub fn topic(topic: &'a str) -> Self {
        Self {
            topic: Some(topic),
            ..Self::default()
        }
    }

    /// One partition of a topic.
    pub fn partition(topic: &'a str, partition: i32) -> Self {
        Self {
            topic: Some(topic),
            partition: Some(partition),
            ..Self::default()
        }
    }

    /// A group.
    pub fn group(group: &'a str) -> Self {
        Self {
            group: Some(group),
            ..Self::default()
        }
    }

    /// A transactional id.
    pub fn transaction(transactional_id: Option<&'a str>) -> Self {
        Self {
            transactional_id,
            ..Self::default()
        }
    }
}

/// Renders an error with its chain of sources, for logs and the CLI: `a: b: c`.
pub fn report(err: &(dyn std::error::Error + 'static)) -> String {
    use std::fmt::Write;
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let _ = write!(out, ": {s}");
        source = s.source();
    }
    out
}
