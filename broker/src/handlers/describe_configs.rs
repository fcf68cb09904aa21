//! DescribeConfigs (v1-4) of topics and of this broker.
//!
//! A topic's keys come with the value in effect and its source: DYNAMIC_TOPIC_CONFIG for an
//! override, STATIC_BROKER_CONFIG when `server.properties` set the default (`log.retention.hours`
//! for `retention.ms`), DEFAULT_CONFIG otherwise; with `include_synonyms`, the chain of those
//! (override, broker key, default) as Kafka lists it. The broker lists every setting of
//! [`crate::config::SETTINGS`] with its value, all read-only (none changes while it runs). From
//! v3 each key has its type, and with `include_documentation` what it does.

use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};
use kafka_protocol::protocol::StrBytes;

use super::configs::{
    DEFAULT_CONFIG, DYNAMIC_TOPIC_CONFIG, Resource, STATIC_BROKER_CONFIG, broker_key_type,
    kafka_default, resolve, topic_key,
};
use super::{RequestContext, log_error, sb};
use crate::state::BrokerState;

/// What one request asks to see of each key.
struct Want<'a> {
    keys: Option<&'a [StrBytes]>,
    synonyms: bool,
    documentation: bool,
    version: i16,
}

impl Want<'_> {
    /// Kafka lists every key for a null list and for an empty one.
    fn includes(&self, key: &str) -> bool {
        self.keys
            .is_none_or(|keys| keys.is_empty() || keys.iter().any(|k| k.as_str() == key))
    }

    fn entry(
        &self,
        name: &str,
        value: Option<String>,
        source: i8,
        read_only: bool,
        synonyms: Vec<(String, Option<String>, i8)>,
        (config_type, doc): (i8, &str),
    ) -> DescribeConfigsResourceResult {
        let mut e = DescribeConfigsResourceResult::default()
            .with_name(sb(name))
            .with_value(value.map(sb))
            .with_read_only(read_only)
            .with_config_source(source)
            .with_is_sensitive(false);
        if self.synonyms {
            e = e.with_synonyms(
                synonyms
                    .into_iter()
                    .map(|(name, value, source)| {
                        DescribeConfigsSynonym::default()
                            .with_name(sb(name))
                            .with_value(value.map(sb))
                            .with_source(source)
                    })
                    .collect(),
            );
        }
        if self.version >= 3 {
            e = e
                .with_config_type(config_type)
                .with_documentation(self.documentation.then(|| sb(doc)));
        }
        e
    }
}

pub(crate) fn handle(
    state: &BrokerState,
    ctx: &RequestContext,
    req: DescribeConfigsRequest,
) -> DescribeConfigsResponse {
    let results =
        req.resources
            .iter()
            .map(|r| {
                let want = Want {
                    keys: r.configuration_keys.as_deref(),
                    synonyms: req.include_synonyms,
                    documentation: ctx.api_version >= 3 && req.include_documentation,
                    version: ctx.api_version,
                };
                let result = DescribeConfigsResult::default()
                    .with_resource_type(r.resource_type)
                    .with_resource_name(r.resource_name.clone())
                    .with_error_message(None);
                let configs = resolve(state, r.resource_type, r.resource_name.as_str()).and_then(
                    |resource| match resource {
                        Resource::Topic(name) => topic(state, &name, &want),
                        Resource::Broker => Ok(broker(state, &want)),
                        Resource::BrokerDefault => Ok(Vec::new()),
                    },
                );
                match configs {
                    Ok(configs) => result.with_configs(configs),
                    Err((code, message)) => result
                        .with_error_code(code)
                        .with_error_message(Some(sb(message))),
                }
            })
            .collect();
    DescribeConfigsResponse::default().with_results(results)
}

fn topic(
    state: &BrokerState,
    name: &str,
    want: &Want<'_>,
) -> Result<Vec<DescribeConfigsResourceResult>, (i16, String)> {
    let config = state.log.topic_config(name).map_err(log_error)?;
    let overrides = config.overrides();
    Ok(config
        .describe()
        .into_iter()
        .filter(|e| want.includes(&e.name))
        .map(|e| {
            let broker = state.config.topic_key_synonyms(&e.name);
            let mut synonyms = Vec::new();
            if let Some(v) = overrides.get(&e.name) {
                synonyms.push((e.name.clone(), Some(v.clone()), DYNAMIC_TOPIC_CONFIG));
            }
            if let Some((key, value)) = &broker.set {
                synonyms.push(((*key).to_owned(), Some(value.clone()), STATIC_BROKER_CONFIG));
            }
            match broker.default {
                Some((key, value)) => {
                    synonyms.push((key.to_owned(), Some(value.to_owned()), DEFAULT_CONFIG));
                }
                None => synonyms.push((e.name.clone(), kafka_default(&e.name), DEFAULT_CONFIG)),
            }
            let source = synonyms.first().map_or(DEFAULT_CONFIG, |s| s.2);
            let info = topic_key(&e.name).unwrap_or((super::configs::STRING, ""));
            want.entry(&e.name, Some(e.value), source, false, synonyms, info)
        })
        .collect())
}

fn broker(state: &BrokerState, want: &Want<'_>) -> Vec<DescribeConfigsResourceResult> {
    state
        .config
        .describe()
        .into_iter()
        .filter(|s| want.includes(s.setting.key))
        .map(|s| {
            let key = s.setting.key;
            let own_default =
                (!s.setting.default.starts_with('(')).then(|| s.setting.default.to_owned());
            let mut synonyms = Vec::new();
            if s.is_set {
                synonyms.push((key.to_owned(), s.value.clone(), STATIC_BROKER_CONFIG));
            }
            if let Some(d) = own_default {
                synonyms.push((key.to_owned(), Some(d), DEFAULT_CONFIG));
            }
            let source = if s.is_set {
                STATIC_BROKER_CONFIG
            } else {
                DEFAULT_CONFIG
            };
            let info = (broker_key_type(key, s.setting.default), s.setting.doc);
            want.entry(key, s.value, source, true, synonyms, info)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;

    use super::*;
    use crate::config::BrokerConfig;
    use crate::handlers::codes::{
        INVALID_REQUEST, INVALID_TOPIC_EXCEPTION, UNKNOWN_TOPIC_OR_PARTITION,
    };
    use crate::handlers::configs::{BROKER, LIST, LONG, TOPIC};
    use crate::handlers::test_util::{broker_with, ctx, encodes};

    fn resource(t: i8, name: &str, keys: Option<&[&str]>) -> DescribeConfigsResource {
        DescribeConfigsResource::default()
            .with_resource_type(t)
            .with_resource_name(sb(name))
            .with_configuration_keys(keys.map(|ks| ks.iter().map(|k| sb(*k)).collect()))
    }

    fn request(resources: Vec<DescribeConfigsResource>) -> DescribeConfigsRequest {
        DescribeConfigsRequest::default()
            .with_resources(resources)
            .with_include_synonyms(true)
            .with_include_documentation(true)
    }

    fn find<'a>(r: &'a DescribeConfigsResult, name: &str) -> &'a DescribeConfigsResourceResult {
        r.configs
            .iter()
            .find(|c| c.name.as_str() == name)
            .unwrap_or_else(|| panic!("{name} listed"))
    }

    fn synonyms(c: &DescribeConfigsResourceResult) -> Vec<(String, Option<String>, i8)> {
        c.synonyms
            .iter()
            .map(|s| {
                (
                    s.name.to_string(),
                    s.value.as_ref().map(|v| v.to_string()),
                    s.source,
                )
            })
            .collect()
    }

    fn configured() -> crate::handlers::test_util::TestBroker {
        let config =
            BrokerConfig::from_properties("log.retention.hours=2\nnode.id=3\n").expect("config");
        let b = broker_with(config);
        b.log
            .create_topic("t", 1, [("cleanup.policy", "compact")])
            .expect("topic");
        b
    }

    #[test]
    fn topics_show_values_sources_and_synonyms() {
        let b = configured();
        let r = handle(
            &b,
            &ctx(4),
            request(vec![
                resource(TOPIC, "t", None),
                resource(TOPIC, "nope", None),
                resource(TOPIC, "bad/name", None),
            ]),
        );
        encodes(&r, 4);
        let t = &r.results[0];
        assert_eq!(t.error_code, 0);
        assert!(t.error_message.is_none());
        assert_eq!(
            t.configs.len(),
            sluice_log::config::TopicConfig::known_keys().len()
        );
        let policy = find(t, "cleanup.policy");
        assert_eq!(policy.value.as_deref(), Some("compact"));
        assert_eq!(policy.config_source, DYNAMIC_TOPIC_CONFIG);
        assert_eq!(policy.config_type, LIST);
        assert!(policy.documentation.as_ref().is_some_and(|d| !d.is_empty()));
        assert_eq!(
            synonyms(policy),
            [
                (
                    "cleanup.policy".into(),
                    Some("compact".into()),
                    DYNAMIC_TOPIC_CONFIG
                ),
                (
                    "log.cleanup.policy".into(),
                    Some("delete".into()),
                    DEFAULT_CONFIG
                ),
            ]
        );
        let retention = find(t, "retention.ms");
        assert_eq!(retention.value.as_deref(), Some("7200000"));
        assert_eq!(retention.config_source, STATIC_BROKER_CONFIG);
        assert_eq!(retention.config_type, LONG);
        assert_eq!(
            synonyms(retention),
            [
                (
                    "log.retention.hours".into(),
                    Some("2".into()),
                    STATIC_BROKER_CONFIG
                ),
                (
                    "log.retention.hours".into(),
                    Some("168".into()),
                    DEFAULT_CONFIG
                ),
            ]
        );
        assert_eq!(find(t, "segment.bytes").config_source, DEFAULT_CONFIG);
        assert_eq!(r.results[1].error_code, UNKNOWN_TOPIC_OR_PARTITION);
        assert_eq!(r.results[2].error_code, INVALID_TOPIC_EXCEPTION);
        // Only the keys asked for; no synonyms or documentation unless asked.
        let r = handle(
            &b,
            &ctx(4),
            DescribeConfigsRequest::default().with_resources(vec![resource(
                TOPIC,
                "t",
                Some(&["retention.ms", "bogus"]),
            )]),
        );
        assert_eq!(r.results[0].configs.len(), 1);
        assert!(r.results[0].configs[0].synonyms.is_empty());
        assert!(r.results[0].configs[0].documentation.is_none());
        let r = handle(
            &b,
            &ctx(4),
            DescribeConfigsRequest::default().with_resources(vec![resource(TOPIC, "t", Some(&[]))]),
        );
        assert_eq!(
            r.results[0].configs.len(),
            sluice_log::config::TopicConfig::known_keys().len()
        );
    }

    #[test]
    fn the_broker_lists_its_settings() {
        let b = configured();
        let r = handle(
            &b,
            &ctx(4),
            request(vec![
                resource(BROKER, "3", None),
                resource(BROKER, "", None),
                resource(BROKER, "4", None),
                resource(BROKER, "x", None),
                resource(8, "3", None),
            ]),
        );
        encodes(&r, 4);
        let broker = &r.results[0];
        assert_eq!(broker.error_code, 0);
        assert_eq!(broker.configs.len(), crate::config::SETTINGS.len());
        let node = find(broker, "node.id");
        assert_eq!(node.value.as_deref(), Some("3"));
        assert_eq!(node.config_source, STATIC_BROKER_CONFIG);
        assert!(node.read_only);
        let hours = find(broker, "log.retention.hours");
        assert_eq!(hours.value.as_deref(), Some("2"));
        assert_eq!(hours.config_source, STATIC_BROKER_CONFIG);
        let ms = find(broker, "log.retention.ms");
        assert_eq!(ms.value, None);
        assert_eq!(ms.config_source, DEFAULT_CONFIG);
        let partitions = find(broker, "num.partitions");
        assert_eq!(partitions.value.as_deref(), Some("1"));
        assert_eq!(partitions.config_source, DEFAULT_CONFIG);
        assert!(r.results[1].configs.is_empty());
        assert_eq!(r.results[1].error_code, 0);
        for bad in &r.results[2..] {
            assert_eq!(bad.error_code, INVALID_REQUEST);
            assert!(bad.error_message.is_some());
        }
    }

    #[test]
    fn every_version_encodes() {
        let b = configured();
        for v in 1..=4 {
            let r = handle(
                &b,
                &ctx(v),
                request(vec![
                    resource(TOPIC, "t", None),
                    resource(BROKER, "3", None),
                    resource(TOPIC, "nope", None),
                ]),
            );
            encodes(&r, v);
            let c = &r.results[0].configs[0];
            if v < 3 {
                assert_eq!(c.config_type, 0);
            } else {
                assert!(c.config_type > 0);
            }
        }
    }
}
