//! [`ProducerConfig`] and [`ConsumerConfig`] as librdkafka properties.
//!
//! Every setting is passed, defaults included, so a Kafka client behaves as Kafka's Java client
//! with the same configs (librdkafka's own defaults differ: `batch.size`, the partitioner,
//! `enable.idempotence`, ...). Where librdkafka has no such key, the client implements the
//! setting itself: `max.block.ms` (waiting for queue space and for transactions) and
//! `max.poll.records` (records per `poll`).

use sluice_client::config::{
    Acks, AssignmentStrategy, AutoOffsetReset, ConsumerConfig, IsolationLevel, ProducerConfig,
};

/// librdkafka's largest `linger.ms`.
const MAX_LINGER_MS: u64 = 900_000;

/// How long librdkafka pauses fetching a partition whose prefetch queue is full.
const FETCH_QUEUE_BACKOFF_MS: u32 = 10;

/// librdkafka bounds its queue by message count as well as by bytes (`buffer.memory`); Kafka
/// only by bytes. This count is high enough that `buffer.memory` is what binds for records of
/// 32 bytes or more.
const QUEUE_MAX_MESSAGES: u32 = 1_000_000;

fn is_default(entries: &[sluice_client::ConfigEntry], name: &str) -> bool {
    entries.iter().any(|e| e.name == name && e.is_default)
}

/// librdkafka properties of a producer with `config`.
pub(super) fn producer_properties(config: &ProducerConfig) -> Vec<(&'static str, String)> {
    let mut p: Vec<(&'static str, String)> = Vec::with_capacity(20);
    if !config.client_id.is_empty() {
        p.push(("client.id", config.client_id.clone()));
    }
    p.push((
        "acks",
        match config.acks {
            Acks::None => "0",
            Acks::Leader => "1",
            Acks::All => "all",
        }
        .to_owned(),
    ));
    p.push(("linger.ms", config.linger_ms.min(MAX_LINGER_MS).to_string()));
    // `batch.size` only when set: Java's 16 KiB default caps each partition's share of a
    // request at 16 KiB, which under acks=all (one fsync per round of in-flight requests)
    // holds a producer to a few MB/s; librdkafka's own default (1,000,000 bytes, bounded
    // also by `batch.num.messages`) is what kcat and confluent-kafka users get.
    // librdkafka needs at least 1 byte; Kafka's 0 means "one record per batch".
    if config.batch_size_is_set() {
        p.push(("batch.size", config.batch_size.max(1).to_string()));
    }
    p.push((
        "queue.buffering.max.kbytes",
        (config.buffer_memory / 1024).max(1).to_string(),
    ));
    p.push((
        "queue.buffering.max.messages",
        QUEUE_MAX_MESSAGES.to_string(),
    ));
    p.push(("compression.type", config.compression.as_str().to_owned()));
    p.push(("message.max.bytes", config.max_request_size.to_string()));
    let mut delivery_timeout = config.delivery_timeout_ms;
    if config.transactional_id.is_some()
        && delivery_timeout > config.transaction_timeout_ms
        && is_default(&config.describe(), "delivery.timeout.ms")
    {
        // librdkafka refuses a delivery timeout beyond the transaction timeout; Kafka's
        // defaults (120 s, 60 s) would trip it.
        delivery_timeout = config.transaction_timeout_ms;
    }
    p.push(("delivery.timeout.ms", delivery_timeout.to_string()));
    p.push(("request.timeout.ms", config.request_timeout_ms.to_string()));
    // librdkafka takes 1 ms to a day.
    p.push((
        "metadata.max.age.ms",
        config.metadata_max_age_ms.clamp(1, 86_400_000).to_string(),
    ));
    p.push(("enable.idempotence", config.enable_idempotence.to_string()));
    p.push(("retries", config.retries.to_string()));
    p.push((
        "max.in.flight.requests.per.connection",
        config.max_in_flight_requests_per_connection.to_string(),
    ));
    // Kafka's partitioner: murmur2 of the key, sticky without one; `random` ignores keys.
    p.push((
        "partitioner",
        if config.partitioner_ignore_keys {
            "random"
        } else {
            "murmur2_random"
        }
        .to_owned(),
    ));
    if let Some(id) = &config.transactional_id {
        p.push(("transactional.id", id.clone()));
        p.push((
            "transaction.timeout.ms",
            config.transaction_timeout_ms.to_string(),
        ));
    }
    p
}

/// librdkafka properties of a consumer with `config`.
pub(super) fn consumer_properties(config: &ConsumerConfig) -> Vec<(&'static str, String)> {
    let mut p: Vec<(&'static str, String)> = Vec::with_capacity(20);
    if !config.client_id.is_empty() {
        p.push(("client.id", config.client_id.clone()));
    }
    if let Some(g) = &config.group_id {
        p.push(("group.id", g.clone()));
        p.push(("enable.auto.commit", config.enable_auto_commit.to_string()));
        p.push((
            "auto.commit.interval.ms",
            config.auto_commit_interval_ms.to_string(),
        ));
        // The consumer stores the offsets of what `poll` returned itself.
        p.push(("enable.auto.offset.store", "false".to_owned()));
        p.push(("session.timeout.ms", config.session_timeout_ms.to_string()));
        p.push((
            "heartbeat.interval.ms",
            config.heartbeat_interval_ms.to_string(),
        ));
        p.push((
            "max.poll.interval.ms",
            config.max_poll_interval_ms.to_string(),
        ));
        p.push((
            "partition.assignment.strategy",
            assignment_strategies(&config.partition_assignment_strategy),
        ));
    }
    if let Some(id) = &config.group_instance_id {
        p.push(("group.instance.id", id.clone()));
    }
    p.push((
        "auto.offset.reset",
        match config.auto_offset_reset {
            AutoOffsetReset::Earliest => "earliest",
            AutoOffsetReset::Latest => "latest",
            AutoOffsetReset::None => "error",
        }
        .to_owned(),
    ));
    p.push(("fetch.min.bytes", config.fetch_min_bytes.max(1).to_string()));
    p.push(("fetch.max.bytes", config.fetch_max_bytes.to_string()));
    p.push((
        "max.partition.fetch.bytes",
        config.max_partition_fetch_bytes.to_string(),
    ));
    p.push(("fetch.wait.max.ms", config.fetch_max_wait_ms.to_string()));
    p.push((
        "isolation.level",
        match config.isolation_level {
            IsolationLevel::ReadUncommitted => "read_uncommitted",
            IsolationLevel::ReadCommitted => "read_committed",
        }
        .to_owned(),
    ));
    p.push(("check.crcs", config.check_crcs.to_string()));
    // librdkafka prefetches until `queued.min.messages` wait in its queue, then pauses
    // fetching for `fetch.queue.backoff.ms` (1 s by default) even if the application drains
    // the queue at once: a fast consumer then idles most of each second (154k records/s
    // against sluice broker, 955k with 10 ms). Java's fetcher has no such pause; 10 ms keeps
    // the prefetch bound without the stall.
    p.push(("fetch.queue.backoff.ms", FETCH_QUEUE_BACKOFF_MS.to_string()));
    p
}

/// `partition.assignment.strategy` for librdkafka, which refuses to mix the eager assignors
/// (`range`, `roundrobin`) with the cooperative one: the strategies of the same kind as the
/// first are kept (Kafka's default `range,cooperative-sticky` becomes `range`, as a Java
/// consumer with that default uses `range` until every member upgrades).
fn assignment_strategies(strategies: &[AssignmentStrategy]) -> String {
    let cooperative = |s: &AssignmentStrategy| *s == AssignmentStrategy::CooperativeSticky;
    let first_cooperative = strategies.first().is_some_and(cooperative);
    let kept: Vec<&str> = strategies
        .iter()
        .filter(|s| cooperative(s) == first_cooperative)
        .map(|s| s.as_str())
        .collect();
    if kept.len() < strategies.len() {
        tracing::debug!(
            kept = %kept.join(","),
            "librdkafka cannot mix eager and cooperative assignors; using the first kind only"
        );
    }
    kept.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get<'a>(p: &'a [(&'static str, String)], key: &str) -> Option<&'a str> {
        p.iter().find(|(k, _)| *k == key).map(|(_, v)| v.as_str())
    }

    #[test]
    fn producer_defaults_are_kafkas() {
        let p = producer_properties(&ProducerConfig::default());
        for (key, value) in [
            ("acks", "all"),
            ("linger.ms", "5"),
            ("queue.buffering.max.kbytes", "32768"),
            ("compression.type", "none"),
            ("message.max.bytes", "1048576"),
            ("delivery.timeout.ms", "120000"),
            ("enable.idempotence", "true"),
            ("max.in.flight.requests.per.connection", "5"),
            ("partitioner", "murmur2_random"),
        ] {
            assert_eq!(get(&p, key), Some(value), "{key}");
        }
        // librdkafka's own batch.size unless one is set.
        assert_eq!(get(&p, "batch.size"), None);
        let mut c = ProducerConfig::default();
        c.set("batch.size", "65536").unwrap();
        assert_eq!(get(&producer_properties(&c), "batch.size"), Some("65536"));
        assert_eq!(get(&p, "transactional.id"), None);
        assert_eq!(get(&p, "client.id"), None);
    }

    #[test]
    fn producer_settings_map() {
        let c = ProducerConfig::from_pairs([
            ("acks", "1"),
            ("compression.type", "zstd"),
            ("linger.ms", "99999999"),
            ("partitioner.ignore.keys", "true"),
        ])
        .unwrap();
        let p = producer_properties(&c);
        assert_eq!(get(&p, "acks"), Some("1"));
        assert_eq!(get(&p, "enable.idempotence"), Some("false"));
        assert_eq!(get(&p, "compression.type"), Some("zstd"));
        assert_eq!(get(&p, "linger.ms"), Some("900000"));
        assert_eq!(get(&p, "partitioner"), Some("random"));
    }

    #[test]
    fn transactional_delivery_timeout_fits_the_transaction() {
        let c = ProducerConfig::from_pairs([("transactional.id", "tx")]).unwrap();
        let p = producer_properties(&c);
        assert_eq!(get(&p, "transactional.id"), Some("tx"));
        assert_eq!(get(&p, "delivery.timeout.ms"), Some("60000"));
        let c = ProducerConfig::from_pairs([
            ("transactional.id", "tx"),
            ("delivery.timeout.ms", "90000"),
        ])
        .unwrap();
        assert_eq!(
            get(&producer_properties(&c), "delivery.timeout.ms"),
            Some("90000"),
            "explicit values are passed for librdkafka to judge"
        );
    }

    #[test]
    fn consumer_settings_map() {
        let p = consumer_properties(&ConsumerConfig::default());
        assert_eq!(get(&p, "group.id"), None);
        assert_eq!(get(&p, "enable.auto.commit"), None);
        assert_eq!(get(&p, "auto.offset.reset"), Some("latest"));
        let c = ConsumerConfig::from_pairs([
            ("group.id", "g"),
            ("auto.offset.reset", "none"),
            ("isolation.level", "read_committed"),
            ("fetch.max.wait.ms", "100"),
        ])
        .unwrap();
        let p = consumer_properties(&c);
        assert_eq!(get(&p, "group.id"), Some("g"));
        assert_eq!(get(&p, "enable.auto.commit"), Some("true"));
        assert_eq!(get(&p, "enable.auto.offset.store"), Some("false"));
        assert_eq!(get(&p, "auto.offset.reset"), Some("error"));
        assert_eq!(get(&p, "isolation.level"), Some("read_committed"));
        assert_eq!(get(&p, "fetch.wait.max.ms"), Some("100"));
        assert_eq!(get(&p, "fetch.queue.backoff.ms"), Some("10"));
        assert_eq!(get(&p, "partition.assignment.strategy"), Some("range"));
    }

    #[test]
    fn assignors_of_one_kind() {
        use AssignmentStrategy::*;
        assert_eq!(assignment_strategies(&[Range, CooperativeSticky]), "range");
        assert_eq!(
            assignment_strategies(&[CooperativeSticky, Range]),
            "cooperative-sticky"
        );
        assert_eq!(
            assignment_strategies(&[RoundRobin, Range]),
            "roundrobin,range"
        );
    }
}
