//! IncrementalAlterConfigs: SET, DELETE (back to the default), APPEND and SUBTRACT (items of a
//! list key such as `cleanup.policy`) on a topic's overrides, every operation of a resource
//! validated before any applies; `validate_only` checks without changing. Broker settings
//! cannot change while the broker runs.

use std::collections::BTreeMap;

use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse};
use sluice_log::config::TopicConfig;

use super::configs::{
    LIST, Resource, change_topic, duplicate, each_resource, static_broker_configs, topic_key,
};
use super::{RequestContext, log_error};
use crate::handlers::codes::INVALID_REQUEST;
use crate::state::BrokerState;

const SET: i8 = 0;
const DELETE: i8 = 1;
const APPEND: i8 = 2;
const SUBTRACT: i8 = 3;

pub(crate) fn handle(
    state: &BrokerState,
    ctx: &RequestContext,
    req: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let outcomes = each_resource(
        state,
        ctx,
        req.validate_only,
        "configs altered",
        &req.resources,
        |r| (r.resource_type, r.resource_name.as_str()),
        |r, resource| {
            let ops: Vec<(String, i8, Option<String>)> = r
                .configs
                .iter()
                .map(|c| {
                    (
                        c.name.to_string(),
                        c.config_operation,
                        c.value.as_ref().map(|v| v.to_string()),
                    )
                })
                .collect();
            alter(state, &resource, &ops, req.validate_only)
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
    IncrementalAlterConfigsResponse::default().with_responses(responses)
}

fn alter(
    state: &BrokerState,
    resource: &Resource,
    ops: &[(String, i8, Option<String>)],
    validate_only: bool,
) -> Result<(), (i16, String)> {
    let topic = match resource {
        Resource::Topic(name) => name,
        Resource::Broker | Resource::BrokerDefault if ops.is_empty() => return Ok(()),
        Resource::Broker | Resource::BrokerDefault => {
            let keys: Vec<String> = ops.iter().map(|(k, _, _)| k.clone()).collect();
            return Err(static_broker_configs(&keys));
        }
    };
    if let Some(key) = duplicate(ops.iter().map(|(k, _, _)| k.as_str())) {
        return Err((
            INVALID_REQUEST,
            format!("Error due to duplicate config keys: {key}"),
        ));
    }
    let current = state.log.topic_config(topic).map_err(log_error)?;
    let values: BTreeMap<String, String> = current
        .describe()
        .into_iter()
        .map(|e| (e.name, e.value))
        .collect();
    let mut set: Vec<(String, String)> = Vec::new();
    let mut delete: Vec<String> = Vec::new();
    for (key, op, value) in ops {
        let value = || {
            value.clone().ok_or_else(|| {
                (
                    INVALID_REQUEST,
                    format!("Null value not supported for : {key}"),
                )
            })
        };
        match *op {
            SET => set.push((key.clone(), value()?)),
            DELETE => delete.push(key.clone()),
            APPEND | SUBTRACT => {
                let verb = if *op == APPEND { "append" } else { "subtract" };
                let Some(now) = values.get(key) else {
                    return Err(log_error(sluice_log::Error::UnknownConfig {
                        key: key.clone(),
                        known: TopicConfig::known_keys().join(", "),
                    }));
                };
                if topic_key(key).map(|(t, _)| t) != Some(LIST) {
                    return Err((
                        INVALID_REQUEST,
                        format!("Config value {verb} is not allowed for config key: {key}"),
                    ));
                }
                let items = |s: &str| -> Vec<String> {
                    s.split(',')
                        .map(str::trim)
                        .filter(|i| !i.is_empty())
                        .map(str::to_owned)
                        .collect()
                };
                let mut list = items(now);
                let given = items(&value()?);
                if *op == APPEND {
                    for i in given {
                        if !list.contains(&i) {
                            list.push(i);
                        }
                    }
                } else {
                    list.retain(|i| !given.contains(i));
                }
                set.push((key.clone(), list.join(",")));
            }
            other => {
                return Err((
                    INVALID_REQUEST,
                    format!("Unknown alter config operation type {other} for config key: {key}"),
                ));
            }
        }
    }
    change_topic(state, topic, &current, set, delete, validate_only)
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::incremental_alter_configs_request::{
        AlterConfigsResource, AlterableConfig,
    };

    use super::*;
    use crate::handlers::codes::{INVALID_CONFIG, UNKNOWN_TOPIC_OR_PARTITION};
    use crate::handlers::configs::{BROKER, TOPIC};
    use crate::handlers::sb;
    use crate::handlers::test_util::{ctx, encodes, test_state};

    /// (key, operation, value).
    type Op<'a> = (&'a str, i8, Option<&'a str>);

    fn resource(t: i8, name: &str, ops: &[Op<'_>]) -> AlterConfigsResource {
        AlterConfigsResource::default()
            .with_resource_type(t)
            .with_resource_name(sb(name))
            .with_configs(
                ops.iter()
                    .map(|(k, op, v)| {
                        AlterableConfig::default()
                            .with_name(sb(*k))
                            .with_config_operation(*op)
                            .with_value(v.map(sb))
                    })
                    .collect(),
            )
    }

    fn run(
        b: &BrokerState,
        validate_only: bool,
        resources: Vec<AlterConfigsResource>,
    ) -> IncrementalAlterConfigsResponse {
        let mut last = None;
        for v in 0..=1 {
            // The same outcome at every version; apply at the last only.
            let r = handle(
                b,
                &ctx(v),
                IncrementalAlterConfigsRequest::default()
                    .with_resources(resources.clone())
                    .with_validate_only(validate_only || v == 0),
            );
            encodes(&r, v);
            last = Some(r);
        }
        last.expect("ran")
    }

    fn code(r: &IncrementalAlterConfigsResponse) -> i16 {
        r.responses[0].error_code
    }

    fn value(b: &BrokerState, key: &str) -> (String, bool) {
        let c = b.log.topic_config("t").expect("t");
        let v = c
            .describe()
            .into_iter()
            .find(|e| e.name == key)
            .expect("known key");
        (v.value, c.overrides().contains_key(key))
    }

    #[test]
    fn set_delete_append_and_subtract() {
        let b = test_state();
        b.log
            .create_topic("t", 1, [("retention.ms", "1000")])
            .expect("topic");
        // validate_only changes nothing.
        let r = run(
            &b,
            true,
            vec![resource(TOPIC, "t", &[("segment.ms", SET, Some("5000"))])],
        );
        assert_eq!(code(&r), 0);
        assert!(!value(&b, "segment.ms").1);
        let r = run(
            &b,
            false,
            vec![resource(
                TOPIC,
                "t",
                &[
                    ("segment.ms", SET, Some("5000")),
                    ("retention.ms", DELETE, None),
                    ("cleanup.policy", APPEND, Some("compact")),
                ],
            )],
        );
        assert_eq!(code(&r), 0);
        assert!(r.responses[0].error_message.is_none());
        assert_eq!(value(&b, "segment.ms"), ("5000".into(), true));
        assert_eq!(value(&b, "retention.ms"), ("604800000".into(), false));
        assert_eq!(value(&b, "cleanup.policy"), ("compact,delete".into(), true));
        // Appending what is there changes nothing; subtracting removes it.
        let r = run(
            &b,
            false,
            vec![resource(
                TOPIC,
                "t",
                &[("cleanup.policy", APPEND, Some("delete"))],
            )],
        );
        assert_eq!(code(&r), 0);
        assert_eq!(value(&b, "cleanup.policy").0, "compact,delete");
        let r = run(
            &b,
            false,
            vec![resource(
                TOPIC,
                "t",
                &[("cleanup.policy", SUBTRACT, Some("delete"))],
            )],
        );
        assert_eq!(code(&r), 0);
        assert_eq!(value(&b, "cleanup.policy").0, "compact");
        // Errors change nothing: an unknown key (named), a bad value, APPEND to a non-list,
        // a null SET, an unknown operation, a key twice.
        let bad: [(&[Op<'_>], i16, &str); 6] = [
            (
                &[
                    ("segment.ms", SET, Some("1")),
                    ("bogus.key", SET, Some("1")),
                ],
                INVALID_CONFIG,
                "bogus.key",
            ),
            (
                &[("retention.ms", SET, Some("later"))],
                INVALID_CONFIG,
                "retention.ms",
            ),
            (
                &[("retention.ms", APPEND, Some("5"))],
                INVALID_REQUEST,
                "retention.ms",
            ),
            (
                &[("retention.ms", SET, None)],
                INVALID_REQUEST,
                "retention.ms",
            ),
            (
                &[("retention.ms", 9, Some("5"))],
                INVALID_REQUEST,
                "retention.ms",
            ),
            (
                &[("segment.ms", SET, Some("1")), ("segment.ms", DELETE, None)],
                INVALID_REQUEST,
                "segment.ms",
            ),
        ];
        for (ops, expect, named) in bad {
            let r = run(&b, false, vec![resource(TOPIC, "t", ops)]);
            assert_eq!(code(&r), expect, "{ops:?}");
            let message = r.responses[0].error_message.as_ref().expect("message");
            assert!(message.contains(named), "{message}");
            assert_eq!(value(&b, "segment.ms").0, "5000");
        }
        let r = run(
            &b,
            false,
            vec![resource(TOPIC, "t", &[("bogus.key", APPEND, Some("x"))])],
        );
        assert_eq!(code(&r), INVALID_CONFIG);
        let r = run(
            &b,
            false,
            vec![
                resource(TOPIC, "nope", &[("retention.ms", SET, Some("1"))]),
                resource(BROKER, "1", &[("num.partitions", SET, Some("3"))]),
                resource(7, "x", &[]),
            ],
        );
        let codes: Vec<i16> = r.responses.iter().map(|r| r.error_code).collect();
        assert_eq!(
            codes,
            [UNKNOWN_TOPIC_OR_PARTITION, INVALID_REQUEST, INVALID_REQUEST]
        );
    }
}
