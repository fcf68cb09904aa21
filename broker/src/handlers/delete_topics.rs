//! DeleteTopics, by name (topic ids are not served).

use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse, TopicName};

use super::{RequestContext, error_of, sb};
use crate::handlers::codes::{TOPIC_AUTHORIZATION_FAILED, UNKNOWN_TOPIC_ID};
use crate::state::BrokerState;

pub(crate) fn handle(
    state: &BrokerState,
    ctx: &RequestContext,
    req: DeleteTopicsRequest,
) -> DeleteTopicsResponse {
    let names: Vec<Option<TopicName>> = if ctx.api_version >= 6 {
        req.topics.into_iter().map(|t| t.name).collect()
    } else {
        req.topic_names.into_iter().map(Some).collect()
    };
    let responses = names
        .into_iter()
        .map(|name| {
            let Some(name) = name else {
                return DeletableTopicResult::default().with_error_code(UNKNOWN_TOPIC_ID);
            };
            let r = DeletableTopicResult::default().with_name(Some(name.clone()));
            let outcome = if name.starts_with("__") {
                Err((
                    TOPIC_AUTHORIZATION_FAILED,
                    format!("{} is an internal topic and cannot be deleted", name.as_str()),
                ))
            } else {
                state.log.delete_topic(name.as_str()).map_err(|e| {
                    let (code, message) = error_of(&e);
                    (code, message.map(|m| m.to_string()).unwrap_or_default())
                })
            };
            match outcome {
                Ok(()) => {
                    tracing::info!(topic = %name.as_str(), principal = %ctx.principal, "deleted topic");
                    r
                }
                Err((code, message)) => {
                    let r = r.with_error_code(code);
                    if ctx.api_version >= 5 { r.with_error_message(Some(sb(message))) } else { r }
                }
            }
        })
        .collect();
    DeleteTopicsResponse::default().with_responses(responses)
}
