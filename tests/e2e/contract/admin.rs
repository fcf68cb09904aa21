//! Admin: topics created, described (partitions with offsets, configs), listed, altered,
//! grown and deleted, and each refusal with its error.

use sluice_log::Error;
use sluice_log::client::{Admin, Client, NewTopic, Producer, ProducerRecord};

use super::{Harness, Impl, send};

fn config<'a>(d: &'a sluice_log::client::TopicDescription, key: &str) -> (&'a str, bool) {
    let e = d
        .configs
        .iter()
        .find(|e| e.name == key)
        .unwrap_or_else(|| panic!("{} has no config {key}", d.name));
    (e.value.as_str(), e.is_default)
}

/// A refused config: the embedded log names the key ([`Error::InvalidConfig`], or
/// [`Error::UnknownConfig`] for a key it does not know); the Kafka-protocol client gets only
/// INVALID_CONFIG (40) from librdkafka's admin results, which drop the broker's message (see
/// `Admin::create_topics`).
fn invalid_config(imp: Impl, r: sluice_log::Result<()>, key: &str, what: &str) {
    match imp {
        Impl::Embedded => assert_refused!(
            r,
            Error::InvalidConfig { key: k, .. } | Error::UnknownConfig { key: k, .. } if k == key,
            what
        ),
        Impl::Librdkafka | Impl::Native => {
            assert_refused!(r, Error::Kafka { code: 40, .. }, what);
        }
    }
}

pub(crate) async fn create_describe_list_delete_topics<C: Client>(h: &Harness<C>) {
    let admin = h.admin();
    admin
        .create_topics(vec![
            NewTopic::new("alpha", 3).config("retention.ms", "3600000"),
            NewTopic::new("beta", 1),
        ])
        .await
        .expect("create");
    let mut names = admin.list_topics().await.expect("list");
    names.retain(|n| !n.starts_with("__"));
    names.sort();
    assert_eq!(names, ["alpha", "beta"]);

    let p = h.producer(&[]);
    for _ in 0..3 {
        send(&p, ProducerRecord::new("alpha", "x").partition(1)).await;
    }
    let d = admin.describe_topic("alpha").await.expect("describe");
    assert_eq!(d.name, "alpha");
    assert!(!d.internal);
    let parts: Vec<(i32, i64, i64)> = d
        .partitions
        .iter()
        .map(|p| (p.partition, p.log_start_offset, p.log_end_offset))
        .collect();
    assert_eq!(parts, [(0, 0, 0), (1, 0, 3), (2, 0, 0)]);
    assert!(d.partitions.iter().all(|p| p.offline.is_none()));
    assert_eq!(
        config(&d, "retention.ms"),
        ("3600000", false),
        "an override"
    );
    assert_eq!(config(&d, "cleanup.policy"), ("delete", true), "a default");

    admin
        .delete_topics(vec!["beta".into()])
        .await
        .expect("delete");
    let names = admin.list_topics().await.expect("list");
    assert!(!names.iter().any(|n| n == "beta"), "{names:?}");
    assert_refused!(
        admin.describe_topic("beta").await,
        Error::UnknownTopic(t) if t == "beta",
        "describe of a deleted topic"
    );
}

pub(crate) async fn alter_configs_and_create_partitions<C: Client>(h: &Harness<C>) {
    h.create(NewTopic::new("tuned", 1).config("retention.ms", "1000"))
        .await;
    let admin = h.admin();
    admin
        .alter_configs(
            "tuned",
            vec![("segment.bytes".into(), "1048576".into())],
            vec!["retention.ms".into()],
        )
        .await
        .expect("alter");
    let d = admin.describe_topic("tuned").await.expect("describe");
    assert_eq!(config(&d, "segment.bytes"), ("1048576", false), "set");
    assert_eq!(
        config(&d, "retention.ms"),
        ("604800000", true),
        "deleted: back to the default"
    );

    admin.create_partitions("tuned", 3).await.expect("grow");
    let d = admin.describe_topic("tuned").await.expect("describe");
    assert_eq!(d.partitions.len(), 3);
    let p = h.producer(&[]);
    assert_eq!(
        p.partition_count("tuned").await.expect("partition_count"),
        3,
        "a new producer sees the new partitions"
    );
    assert_eq!(
        send(&p, ProducerRecord::new("tuned", "x").partition(2))
            .await
            .partition,
        2
    );
}

pub(crate) async fn refusals_name_the_problem<C: Client>(h: &Harness<C>) {
    let admin = h.admin();
    h.create_topic("taken", 2).await;
    assert_refused!(
        admin.create_topics(vec![NewTopic::new("taken", 1)]).await,
        Error::TopicExists(t) if t == "taken",
        "create of an existing topic"
    );
    assert_refused!(
        admin.delete_topics(vec!["missing".into()]).await,
        Error::UnknownTopic(t) if t == "missing",
        "delete of a missing topic"
    );
    assert_refused!(
        admin.describe_topic("missing").await,
        Error::UnknownTopic(t) if t == "missing",
        "describe of a missing topic"
    );
    assert_refused!(
        admin.create_topics(vec![NewTopic::new("none", 0)]).await,
        Error::InvalidPartitions { count: 0, .. },
        "create with 0 partitions"
    );
    assert_refused!(
        admin.create_partitions("taken", 1).await,
        Error::InvalidPartitions { count: 1, .. },
        "shrinking a topic"
    );
    assert_refused!(
        admin.create_partitions("missing", 3).await,
        Error::UnknownTopic(t) if t == "missing",
        "growing a missing topic"
    );
    invalid_config(
        h.imp,
        admin
            .create_topics(vec![
                NewTopic::new("badcfg", 1).config("retention.ms", "soon"),
            ])
            .await,
        "retention.ms",
        "create with a bad config value",
    );
    invalid_config(
        h.imp,
        admin
            .create_topics(vec![
                NewTopic::new("badkey", 1).config("retention.bogus", "1"),
            ])
            .await,
        "retention.bogus",
        "create with an unknown config key",
    );
    invalid_config(
        h.imp,
        admin
            .alter_configs(
                "taken",
                vec![("retention.ms".into(), "soon".into())],
                vec![],
            )
            .await,
        "retention.ms",
        "alter to a bad config value",
    );
    assert_refused!(
        admin
            .alter_configs("missing", vec![("retention.ms".into(), "1".into())], vec![])
            .await,
        Error::UnknownTopic(t) if t == "missing",
        "alter of a missing topic"
    );
    for (name, why) in [
        ("", "empty"),
        ("..", "dots only"),
        ("has space", "a space"),
        ("slash/ed", "a slash"),
        (&"x".repeat(250), "too long"),
    ] {
        assert_refused!(
            admin.create_topics(vec![NewTopic::new(name, 1)]).await,
            Error::InvalidTopicName { name: n, .. } if n == name,
            format!("a topic name with {why}")
        );
    }
    let mut names = admin.list_topics().await.expect("list");
    names.retain(|n| !n.starts_with("__"));
    assert_eq!(names, ["taken"], "nothing refused was created");
}
