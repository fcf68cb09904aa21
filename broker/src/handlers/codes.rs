//! Kafka's error codes that the handlers answer with, by Kafka's names, from
//! `kafka_protocol`'s table of them (one definition instead of a literal per handler).

use kafka_protocol::ResponseError;

pub(crate) const COORDINATOR_NOT_AVAILABLE: i16 = ResponseError::CoordinatorNotAvailable.code();
pub(crate) const CORRUPT_MESSAGE: i16 = ResponseError::CorruptMessage.code();
pub(crate) const FENCED_LEADER_EPOCH: i16 = ResponseError::FencedLeaderEpoch.code();
pub(crate) const FETCH_SESSION_ID_NOT_FOUND: i16 = ResponseError::FetchSessionIdNotFound.code();
pub(crate) const FETCH_SESSION_TOPIC_ID_ERROR: i16 = ResponseError::FetchSessionTopicIdError.code();
#[cfg(test)]
pub(crate) const GROUP_ID_NOT_FOUND: i16 = ResponseError::GroupIdNotFound.code();
pub(crate) const GROUP_SUBSCRIBED_TO_TOPIC: i16 = ResponseError::GroupSubscribedToTopic.code();
#[cfg(test)]
pub(crate) const ILLEGAL_GENERATION: i16 = ResponseError::IllegalGeneration.code();
pub(crate) const INCONSISTENT_GROUP_PROTOCOL: i16 = ResponseError::InconsistentGroupProtocol.code();
pub(crate) const INVALID_COMMIT_OFFSET_SIZE: i16 = ResponseError::InvalidCommitOffsetSize.code();
#[cfg(test)]
pub(crate) const INVALID_CONFIG: i16 = ResponseError::InvalidConfig.code();
pub(crate) const INVALID_FETCH_SESSION_EPOCH: i16 = ResponseError::InvalidFetchSessionEpoch.code();
pub(crate) const INVALID_GROUP_ID: i16 = ResponseError::InvalidGroupId.code();
pub(crate) const INVALID_PARTITIONS: i16 = ResponseError::InvalidPartitions.code();
pub(crate) const INVALID_PRODUCER_EPOCH: i16 = ResponseError::InvalidProducerEpoch.code();
pub(crate) const INVALID_PRODUCER_ID_MAPPING: i16 = ResponseError::InvalidProducerIdMapping.code();
pub(crate) const INVALID_REPLICATION_FACTOR: i16 = ResponseError::InvalidReplicationFactor.code();
pub(crate) const INVALID_REPLICA_ASSIGNMENT: i16 = ResponseError::InvalidReplicaAssignment.code();
pub(crate) const INVALID_REQUEST: i16 = ResponseError::InvalidRequest.code();
pub(crate) const INVALID_REQUIRED_ACKS: i16 = ResponseError::InvalidRequiredAcks.code();
pub(crate) const INVALID_TOPIC_EXCEPTION: i16 = ResponseError::InvalidTopicException.code();
#[cfg(test)]
pub(crate) const INVALID_TRANSACTION_TIMEOUT: i16 = ResponseError::InvalidTransactionTimeout.code();
pub(crate) const INVALID_TXN_STATE: i16 = ResponseError::InvalidTxnState.code();
pub(crate) const KAFKA_STORAGE_ERROR: i16 = ResponseError::KafkaStorageError.code();
#[cfg(test)]
pub(crate) const MEMBER_ID_REQUIRED: i16 = ResponseError::MemberIdRequired.code();
pub(crate) const MESSAGE_TOO_LARGE: i16 = ResponseError::MessageTooLarge.code();
pub(crate) const MISMATCHED_ENDPOINT_TYPE: i16 = ResponseError::MismatchedEndpointType.code();
pub(crate) const NON_EMPTY_GROUP: i16 = ResponseError::NonEmptyGroup.code();
pub(crate) const NOT_COORDINATOR: i16 = ResponseError::NotCoordinator.code();
pub(crate) const OFFSET_METADATA_TOO_LARGE: i16 = ResponseError::OffsetMetadataTooLarge.code();
pub(crate) const OFFSET_OUT_OF_RANGE: i16 = ResponseError::OffsetOutOfRange.code();
pub(crate) const OPERATION_NOT_ATTEMPTED: i16 = ResponseError::OperationNotAttempted.code();
pub(crate) const POLICY_VIOLATION: i16 = ResponseError::PolicyViolation.code();
pub(crate) const PRODUCER_FENCED: i16 = ResponseError::ProducerFenced.code();
#[cfg(test)]
pub(crate) const REBALANCE_IN_PROGRESS: i16 = ResponseError::RebalanceInProgress.code();
pub(crate) const REQUEST_TIMED_OUT: i16 = ResponseError::RequestTimedOut.code();
pub(crate) const TOPIC_AUTHORIZATION_FAILED: i16 = ResponseError::TopicAuthorizationFailed.code();
#[cfg(test)]
pub(crate) const TRANSACTIONAL_ID_NOT_FOUND: i16 = ResponseError::TransactionalIdNotFound.code();
pub(crate) const UNKNOWN_LEADER_EPOCH: i16 = ResponseError::UnknownLeaderEpoch.code();
#[cfg(test)]
pub(crate) const UNKNOWN_MEMBER_ID: i16 = ResponseError::UnknownMemberId.code();
pub(crate) const UNKNOWN_TOPIC_ID: i16 = ResponseError::UnknownTopicId.code();
pub(crate) const UNKNOWN_TOPIC_OR_PARTITION: i16 = ResponseError::UnknownTopicOrPartition.code();
pub(crate) const UNSTABLE_OFFSET_COMMIT: i16 = ResponseError::UnstableOffsetCommit.code();
pub(crate) const UNSUPPORTED_ENDPOINT_TYPE: i16 = ResponseError::UnsupportedEndpointType.code();

#[cfg(test)]
mod tests {
    use kafka_protocol::ResponseError;
    use sluice_log::ErrorCode;

    /// Kafka's name of a kafka-protocol variant: `UnknownTopicOrPartition` ->
    /// `UNKNOWN_TOPIC_OR_PARTITION`.
    fn kafka_name(variant: &ResponseError) -> String {
        let debug = format!("{variant:?}");
        let mut name = String::new();
        for (i, c) in debug.chars().enumerate() {
            if c.is_ascii_uppercase() && i > 0 {
                name.push('_');
            }
            name.push(c.to_ascii_uppercase());
        }
        name
    }

    #[test]
    fn the_error_code_table_is_kafkas() {
        // Both ways over every code Kafka defines: names, numbers and retriability agree with
        // kafka-protocol's table, which the broker's responses are encoded with.
        for code in ErrorCode::ALL {
            let theirs = ResponseError::try_from_code(code.code())
                .unwrap_or_else(|| panic!("{code:?} is NONE to kafka-protocol"));
            assert!(
                !matches!(theirs, ResponseError::Unknown(_)),
                "{code:?} unknown to kafka-protocol"
            );
            assert_eq!(code.name(), Some(kafka_name(&theirs).as_str()));
            assert_eq!(code.is_retriable(), theirs.is_retriable(), "{code:?}");
        }
        for number in -1..=200i16 {
            if let Some(theirs) = ResponseError::try_from_code(number)
                && !matches!(theirs, ResponseError::Unknown(_))
            {
                assert!(
                    ErrorCode::ALL.contains(&ErrorCode::from_i16(number)),
                    "{theirs:?} ({number}) is missing from ErrorCode"
                );
            }
        }
        assert_eq!(ErrorCode::NONE.name(), Some("NONE"));
        assert_eq!(ErrorCode::from_i16(9999).name(), None);
    }

    #[test]
    fn errors_answer_the_codes_clients_map_back_to_the_same_errors() {
        use sluice_log::Error;
        use sluice_log::error::Subject;
        // The two mappings are inverse where the subject is known.
        let cases = [
            (Error::UnknownTopic("t".into()), Subject::topic("t")),
            (
                Error::UnknownPartition {
                    topic: "t".into(),
                    partition: 3,
                },
                Subject::partition("t", 3),
            ),
            (Error::TopicExists("t".into()), Subject::topic("t")),
            (Error::GroupIdNotFound("g".into()), Subject::group("g")),
            (Error::NonEmptyGroup("g".into()), Subject::group("g")),
            (Error::InvalidGroupId("g".into()), Subject::group("g")),
            (
                Error::CoordinatorNotAvailable("g".into()),
                Subject::group("g"),
            ),
            (
                Error::TransactionalIdNotFound("tx".into()),
                Subject::transaction(Some("tx")),
            ),
            (
                Error::ConcurrentTransactions("tx".into()),
                Subject::transaction(Some("tx")),
            ),
        ];
        for (err, subject) in cases {
            let code = err.code();
            let back = Error::from_code("op", code, "m", subject);
            assert_eq!(back.code(), code, "{err:?} -> {code:?} -> {back:?}");
            assert_eq!(back.to_string(), err.to_string(), "{code:?}");
        }
        // Codes without a variant keep their number and Kafka's retriability.
        let back = Error::from_code("op", ErrorCode::NOT_ENOUGH_REPLICAS, "m", Subject::none());
        assert_eq!(back.code(), ErrorCode::NOT_ENOUGH_REPLICAS);
        assert!(back.is_retriable());
    }
}
