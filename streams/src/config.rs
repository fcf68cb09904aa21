//! Settings of a streams application, with Kafka Streams' names.

use crate::context::DeserializationHandler;
use crate::error::{Error, Result};

/// `default.deserialization.exception.handler`: Kafka's class names or short names.
pub(crate) fn deserialization_handler(v: &str) -> Result<DeserializationHandler> {
    match v {
        "org.apache.kafka.streams.errors.LogAndFailExceptionHandler" | "log-and-fail" | "fail" => {
            Ok(DeserializationHandler::LogAndFail)
        }
        "org.apache.kafka.streams.errors.LogAndContinueExceptionHandler"
        | "log-and-continue"
        | "continue" => Ok(DeserializationHandler::LogAndContinue),
        other => Err(Error::config(
            "default.deserialization.exception.handler",
            format!(
                "\"{other}\" is not a handler: LogAndFailExceptionHandler or LogAndContinueExceptionHandler"
            ),
        )),
    }
}
