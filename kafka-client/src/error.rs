//! librdkafka's errors as the crate's [`Error`].
//!
//! Codes with a variant of their own whose fields are known at the call site (the topic, the
//! group, the transactional id) become that variant; the rest become [`Error::Kafka`] with the
//! code kept, so [`Error::error_code`] still answers Kafka's number.

use rdkafka::error::{KafkaError, RDKafkaErrorCode as Code};

use sluice_client::Error;
use sluice_protocol::ErrorCode;

pub(super) use sluice_protocol::error::Subject;

/// Whether librdkafka calls one of its local (negative) codes retriable. Kafka's wire codes
/// never get here: [`Error::from_code`] knows their retriability.
fn retriable(code: Code) -> bool {
    matches!(
        code,
        Code::BrokerTransportFailure
            | Code::AllBrokersDown
            | Code::Resolve
            | Code::WaitingForCoordinator
            | Code::QueueFull
            | Code::Retry
    )
}

/// The error code of an rdkafka error (rdkafka's own accessor leaves out admin errors).
pub(super) fn code_of(err: &KafkaError) -> Option<Code> {
    match err {
        KafkaError::AdminOp(code) => Some(*code),
        other => other.rdkafka_error_code(),
    }
}

/// An error code from `operation` on `subject`.
pub(super) fn from_code(operation: &'static str, code: Code, subject: Subject<'_>) -> Error {
    from_code_message(operation, code, code.to_string(), subject)
}

fn from_code_message(
    operation: &'static str,
    code: Code,
    message: String,
    subject: Subject<'_>,
) -> Error {
    let owned = |s: Option<&str>| s.unwrap_or_default().to_owned();
    let number = code as i32;
    // Kafka's wire codes (and UNKNOWN -1) go through the one mapping every client shares;
    // librdkafka's local codes (negative) are librdkafka's own.
    if let Ok(wire) = i16::try_from(number)
        && wire >= -1
    {
        return Error::from_code(operation, ErrorCode::from_i16(wire), message, subject);
    }
    match code {
        Code::UnknownPartition if subject.topic.is_some() && subject.partition.is_some() => {
            Error::UnknownPartition {
                topic: owned(subject.topic),
                partition: subject.partition.unwrap_or(-1),
            }
        }
        Code::UnknownTopic | Code::UnknownPartition if subject.topic.is_some() => {
            Error::UnknownTopic(owned(subject.topic))
        }
        Code::OperationTimedOut | Code::MessageTimedOut | Code::TimedOutQueue => {
            Error::Timeout(format!("{operation}: {message}"))
        }
        // librdkafka's own fencing (a transactional producer fenced by a newer one).
        Code::Fenced if subject.transactional_id.is_some() => Error::ProducerFenced {
            transactional_id: owned(subject.transactional_id),
            current: -1,
            got: -1,
        },
        Code::State => Error::InvalidTxnState(format!("{operation}: {message}")),
        Code::BrokerDestroy | Code::DestroyBroker => Error::Closed("Kafka client"),
        _ => Error::Kafka {
            operation,
            code: number,
            message,
            retriable: retriable(code),
        },
    }
}

/// An rdkafka error from `operation` on `subject`.
pub(super) fn from_kafka(operation: &'static str, err: KafkaError, subject: Subject<'_>) -> Error {
    match err {
        KafkaError::ClientConfig(_, description, key, value) => Error::InvalidConfig {
            key,
            value,
            reason: description,
        },
        KafkaError::Transaction(e) => {
            let code = e.code();
            let mut message = e.string();
            if e.txn_requires_abort() {
                message.push_str(" (the transaction must be aborted)");
            }
            if e.is_fatal() {
                message.push_str(" (fatal: the producer must be closed)");
            }
            match from_code_message(operation, code, message, subject) {
                Error::Kafka {
                    operation,
                    code,
                    message,
                    ..
                } => Error::Kafka {
                    operation,
                    code,
                    message,
                    retriable: e.is_retriable(),
                },
                other => other,
            }
        }
        KafkaError::Canceled => Error::Closed("Kafka client"),
        KafkaError::Nul(_) => {
            Error::InvalidRequest(format!("{operation}: a name or value holds a NUL byte"))
        }
        KafkaError::NoMessageReceived => Error::Timeout(format!("{operation}: no message")),
        other => match code_of(&other) {
            Some(code) => from_code(operation, code, subject),
            None => Error::Kafka {
                operation,
                code: Code::Fail as i32,
                message: other.to_string(),
                retriable: false,
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_become_typed_errors_where_the_subject_is_known() {
        let e = from_code(
            "create_topics",
            Code::TopicAlreadyExists,
            Subject::topic("t"),
        );
        assert!(matches!(&e, Error::TopicExists(t) if t == "t"), "{e}");
        assert_eq!(e.error_code(), 36);
        let e = from_code(
            "list_offsets",
            Code::UnknownTopicOrPartition,
            Subject::partition("t", 3),
        );
        assert!(
            matches!(e, Error::UnknownPartition { partition: 3, .. }),
            "{e}"
        );
        let e = from_code("delete_groups", Code::NonEmptyGroup, Subject::group("g"));
        assert!(matches!(&e, Error::NonEmptyGroup(g) if g == "g"), "{e}");
        let e = from_code("commit", Code::RequestTimedOut, Subject::none());
        assert!(e.is_retriable() && matches!(e, Error::Timeout(_)), "{e}");
    }

    #[test]
    fn fencing_of_a_transactional_producer_is_producer_fenced() {
        for code in [
            Code::ProducerFenced,
            Code::Fenced,
            Code::InvalidProducerEpoch,
        ] {
            let e = from_code("commit_transaction", code, Subject::transaction(Some("tx")));
            assert!(
                matches!(&e, Error::ProducerFenced { transactional_id, .. } if transactional_id == "tx"),
                "{e}"
            );
        }
    }

    #[test]
    fn other_codes_keep_their_number() {
        let e = from_code("commit", Code::UnknownMemberId, Subject::group("g"));
        assert!(matches!(e, Error::Kafka { code: 25, .. }), "{e}");
        assert_eq!(e.error_code(), 25);
        assert!(!e.is_retriable());
        let e = from_code("poll", Code::AllBrokersDown, Subject::none());
        assert_eq!(e.error_code(), -1, "local codes are not wire codes");
        assert!(e.is_retriable());
        assert!(e.to_string().starts_with("poll: "), "{e}");
    }
}
