//! DeleteTopics, by name, or (v6+) by name or id (KIP-516), answering each with both.

use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse, TopicName};

use super::{RequestContext, error_of, sb, topic_by_uuid, topic_uuid};
use crate::handlers::codes::{INVALID_REQUEST, TOPIC_AUTHORIZATION_FAILED, UNKNOWN_TOPIC_ID};
use crate::state::BrokerState;

pub(crate) fn handle(
    state: &BrokerState,
    ctx: &RequestContext,
    req: DeleteTopicsRequest,
) -> DeleteTopicsResponse {
    // (name, id) as asked: v6 names each topic by one of them; before, by name.
    let asked: Vec<(Option<TopicName>, uuid::Uuid)> = if ctx.api_version >= 6 {
        req.topics
            .into_iter()
            .map(|t| (t.name, t.topic_id))
            .collect()
    } else {
        req.topic_names
            .into_iter()
            .map(|n| (Some(n), uuid::Uuid::nil()))
            .collect()
    };
    let responses = asked
        .into_iter()
        .map(|(name, id)| {
            let fail = |r: DeletableTopicResult, code: i16, message: String| {
                let r = r.with_error_code(code);
                if ctx.api_version >= 5 {
                    r.with_error_message(Some(sb(message)))
                } else {
                    r
                }
            };
            let r = DeletableTopicResult::default()
                .with_name(name.clone())
                .with_topic_id(id);
            // Kafka's checks of a v6 entry: one of name and id, not both.
            let name = match (name, id.is_nil()) {
                (Some(_), false) => {
                    return fail(
                        r,
                        INVALID_REQUEST,
                        "you may not specify both topic name and topic id".into(),
                    );
                }
                (Some(name), true) => name,
                (None, true) => {
                    return fail(
                        r,
                        INVALID_REQUEST,
                        "neither topic name nor topic id was specified".into(),
                    );
                }
                (None, false) => match topic_by_uuid(state, id) {
                    Some(name) => TopicName(sb(name)),
                    None => {
                        return fail(r, UNKNOWN_TOPIC_ID, format!("no topic has id {id}"));
                    }
                },
            };
            let mut r = r.with_name(Some(name.clone()));
            if ctx.api_version >= 6 {
                r = r.with_topic_id(topic_uuid(state, name.as_str()));
            }
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
                Err((code, message)) => fail(r, code, message),
            }
        })
        .collect();
    DeleteTopicsResponse::default().with_responses(responses)
}
