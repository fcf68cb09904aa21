//! AlterConfigs (the legacy, non-incremental form): a topic's overrides become exactly the
//! keys given (the others return to their defaults), all validated before anything changes;
//! `validate_only` checks without changing. Broker settings cannot change while the broker
//! runs.

use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{AlterConfigsRequest, AlterConfigsResponse};

use super::configs::{Resource, change_topic, duplicate, each_resource, static_broker_configs};
use super::{RequestContext, log_error};
use crate::handlers::codes::INVALID_REQUEST;
use crate::state::BrokerState;

pub(crate) fn handle(
    state: &BrokerState,
    ctx: &RequestContext,
    req: AlterConfigsRequest,
) -> AlterConfigsResponse {
    let outcomes = each_resource(
        state,
        ctx,
        req.validate_only,
        "configs replaced",
        &req.resources,
        |r| (r.resource_type, r.resource_name.as_str()),
        |r, resource| {
            let configs: Vec<(String, Option<String>)> = r
                .configs
                .iter()
                .map(|c| (c.name.to_string(), c.value.as_ref().map(|v| v.to_string())))
                .collect();
            alter(state, &resource, configs, req.validate_only)
        },
    );
    let responses = req
        .resources
        .iter()
        .zip(outcomes)
        .map(|(r, (code, message))| {
            AlterConfigsResourceResponse::default()
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name.clone())
                .with_error_code(code)
                .with_error_message(message)
        })
        .collect();
    AlterConfigsResponse::default().with_responses(responses)
}

fn alter(
    state: &BrokerState,
    resource: &Resource,
    configs: Vec<(String, Option<String>)>,
    validate_only: bool,
) -> Result<(), (i16, String)> {
    let name = match resource {
        Resource::Topic(name) => name,
        Resource::Broker | Resource::BrokerDefault if configs.is_empty() => return Ok(()),
        Resource::Broker | Resource::BrokerDefault => {
            let keys: Vec<String> = configs.into_iter().map(|(k, _)| k).collect();
            return Err(static_broker_configs(&keys));
        }
    };
    let nulls: Vec<&str> = configs
        .iter()
        .filter(|(_, v)| v.is_none())
        .map(|(k, _)| k.as_str())
        .collect();
    if !nulls.is_empty() {
        return Err((
            INVALID_REQUEST,
            format!("Null value not supported for : {}", nulls.join(",")),
        ));
    }
    if let Some(key) = duplicate(configs.iter().map(|(k, _)| k.as_str())) {
        return Err((
            INVALID_REQUEST,
            format!("Error due to duplicate config keys: {key}"),
        ));
    }
    let set: Vec<(String, String)> = configs
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect();
    replace_overrides(state, name, set, validate_only)
}

/// Makes `set` the topic's overrides: what is not in it returns to its default.
fn replace_overrides(
    state: &BrokerState,
    topic: &str,
    set: Vec<(String, String)>,
    validate_only: bool,
) -> Result<(), (i16, String)> {
    let current = state.log.topic_config(topic).map_err(log_error)?;
    let delete: Vec<String> = current
        .overrides()
        .keys()
        .filter(|k| !set.iter().any(|(s, _)| s == *k))
        .cloned()
        .collect();
    change_topic(state, topic, &current, set, delete, validate_only)
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::alter_configs_request::{AlterConfigsResource, AlterableConfig};

    use super::*;
    use crate::handlers::codes::{INVALID_CONFIG, UNKNOWN_TOPIC_OR_PARTITION};
    use crate::handlers::configs::{BROKER, TOPIC};
    use crate::handlers::sb;
    use crate::handlers::test_util::{ctx, encodes, test_state};

    fn resource(t: i8, name: &str, configs: &[(&str, Option<&str>)]) -> AlterConfigsResource {
        AlterConfigsResource::default()
            .with_resource_type(t)
            .with_resource_name(sb(name))
            .with_configs(
                configs
                    .iter()
                    .map(|(k, v)| {
                        AlterableConfig::default()
                            .with_name(sb(*k))
                            .with_value(v.map(sb))
                    })
                    .collect(),
            )
    }

    fn run(
        b: &BrokerState,
        v: i16,
        validate_only: bool,
        resources: Vec<AlterConfigsResource>,
    ) -> AlterConfigsResponse {
        let r = handle(
            b,
            &ctx(v),
            AlterConfigsRequest::default()
                .with_resources(resources)
                .with_validate_only(validate_only),
        );
        encodes(&r, v);
        r
    }

    fn overrides(b: &BrokerState) -> Vec<(String, String)> {
        b.log
            .topic_config("t")
            .expect("t")
            .overrides()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    #[test]
    fn replaces_every_override_or_nothing() {
        let b = test_state();
        b.log
            .create_topic(
                "t",
                1,
                [("cleanup.policy", "compact"), ("retention.ms", "1000")],
            )
            .expect("topic");
        // validate_only: checked, not applied.
        let r = run(
            &b,
            2,
            true,
            vec![resource(TOPIC, "t", &[("segment.ms", Some("5000"))])],
        );
        assert_eq!(r.responses[0].error_code, 0);
        assert_eq!(overrides(&b).len(), 2);
        // The overrides become exactly the keys given.
        let r = run(
            &b,
            1,
            false,
            vec![resource(TOPIC, "t", &[("segment.ms", Some("5000"))])],
        );
        assert_eq!(r.responses[0].error_code, 0);
        assert!(r.responses[0].error_message.is_none());
        assert_eq!(
            overrides(&b),
            [("segment.ms".to_owned(), "5000".to_owned())]
        );
        // A bad key or value changes nothing and is named.
        for bad in [("segmnt.ms", "1"), ("retention.ms", "soon")] {
            let r = run(
                &b,
                0,
                false,
                vec![resource(
                    TOPIC,
                    "t",
                    &[("flush.ms", Some("9")), (bad.0, Some(bad.1))],
                )],
            );
            assert_eq!(r.responses[0].error_code, INVALID_CONFIG);
            let message = r.responses[0].error_message.as_ref().expect("message");
            assert!(message.contains(bad.0), "{message}");
            assert_eq!(
                overrides(&b),
                [("segment.ms".to_owned(), "5000".to_owned())]
            );
        }
        let r = run(
            &b,
            2,
            false,
            vec![resource(TOPIC, "t", &[("retention.ms", None)])],
        );
        assert_eq!(r.responses[0].error_code, INVALID_REQUEST);
        let r = run(
            &b,
            2,
            false,
            vec![
                resource(TOPIC, "nope", &[]),
                resource(BROKER, "1", &[("num.partitions", Some("3"))]),
                resource(BROKER, "1", &[]),
            ],
        );
        assert_eq!(r.responses[0].error_code, UNKNOWN_TOPIC_OR_PARTITION);
        assert_eq!(r.responses[1].error_code, INVALID_REQUEST);
        assert_eq!(r.responses[2].error_code, INVALID_REQUEST);
        let r = run(&b, 2, false, vec![resource(BROKER, "1", &[])]);
        assert_eq!(r.responses[0].error_code, 0);
        // An empty list clears every override.
        let r = run(&b, 2, false, vec![resource(TOPIC, "t", &[])]);
        assert_eq!(r.responses[0].error_code, 0);
        assert!(overrides(&b).is_empty());
    }
}
