//! A compacted topic read as a log of state (Kafka Connect's `KafkaBasedLog`): the config,
//! offset and status topics of distributed workers.
//!
//! [`TopicLog`] creates its topic when missing (compacted, `cleanup.policy=compact`, with the
//! partition count asked for), reads it from the beginning with a consumer of its own
//! (assigned every partition, no group), hands each record to a callback that folds it into
//! the caller's state, and keeps tailing it; [`TopicLog::read_to_end`] waits until everything
//! written before the call has been folded in. Writes go through a producer and return once
//! acknowledged. [`TopicOffsetStore`] is the source offsets over such a log, in the
//! offset topic's format of Kafka Connect (key `["connector", {partition}]`, value the
//! offset, both JSON), so a task resumes on any worker from what another one stored.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;
use serde_json::{Value as Json, json};
use sluice_client::config::{ConsumerConfig, ProducerConfig};
use sluice_client::{
    Admin, Client, Consumer, ConsumerRecord, NewTopic, OffsetSpec, Producer, ProducerRecord,
    TopicPartition,
};
use tokio::sync::watch;

use crate::connector::BoxFuture;
use crate::data::SourceMap;
use crate::error::{Error, Result};
use crate::offsets::{OffsetStore, Offsets, apply};

/// How long [`TopicLog::read_to_end`] may wait for the log to catch up.
pub const READ_TO_END_TIMEOUT: Duration = Duration::from_secs(30);

/// Folds one record of the topic into the caller's state.
pub type ApplyRecord = Box<dyn Fn(&ConsumerRecord) + Send + Sync>;

/// A compacted topic, read to its end and tailed.
pub struct TopicLog<C: Client> {
    topic: String,
    partitions: Vec<TopicPartition>,
    admin: C::Admin,
    producer: C::Producer,
    positions: watch::Receiver<BTreeMap<i32, i64>>,
    stop: watch::Sender<bool>,
    reader: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl<C: Client> std::fmt::Debug for TopicLog<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TopicLog")
            .field("topic", &self.topic)
            .finish_non_exhaustive()
    }
}

/// Creates `topic` compacted with `partitions` partitions when it is missing; an existing
/// topic must be compacted (Kafka Connect refuses one that is not, as records would be lost
/// to retention).
async fn ensure_compacted(admin: &impl Admin, topic: &str, partitions: i32) -> Result<()> {
    if !admin.list_topics().await?.iter().any(|t| t == topic) {
        let new = NewTopic::new(topic, partitions).config("cleanup.policy", "compact");
        match admin.create_topics(vec![new]).await {
            Ok(()) => {
                tracing::info!(topic, partitions, "created the compacted topic");
                return Ok(());
            }
            Err(sluice_client::Error::TopicExists(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let desc = admin.describe_topic(topic).await?;
    let policy = desc
        .configs
        .iter()
        .find(|c| c.name == "cleanup.policy")
        .map(|c| c.value.clone())
        .unwrap_or_default();
    if !policy.split(',').any(|p| p.trim() == "compact") {
        return Err(Error::config(
            "worker",
            topic,
            format!(
                "topic {topic} has cleanup.policy={policy}; Kafka Connect's internal topics must be compacted (cleanup.policy=compact)"
            ),
        ));
    }
    Ok(())
}

impl<C: Client> TopicLog<C> {
    /// Opens the log: creates the topic when missing, starts reading it from the beginning
    /// into `apply`, and returns once everything already in it has been read.
    pub async fn open(
        client: &C,
        topic: &str,
        partitions: i32,
        client_id: &str,
        apply: ApplyRecord,
    ) -> Result<Self> {
        let admin = client.admin()?;
        ensure_compacted(&admin, topic, partitions).await?;
        let desc = admin.describe_topic(topic).await?;
        let tps: Vec<TopicPartition> = desc
            .partitions
            .iter()
            .map(|p| TopicPartition::new(topic, p.partition))
            .collect();
        let producer = client.producer(ProducerConfig::from_pairs([
            ("client.id", format!("{client_id}-{topic}-producer")),
            ("acks", "all".to_owned()),
            ("linger.ms", "0".to_owned()),
        ])?)?;
        let mut consumer = client.consumer(ConsumerConfig::from_pairs([
            ("client.id", format!("{client_id}-{topic}-reader")),
            ("enable.auto.commit", "false".to_owned()),
        ])?)?;
        consumer.assign(tps.clone())?;
        consumer.seek_to_beginning(&[]).await?;
        let (pos_tx, positions) = watch::channel(BTreeMap::new());
        let (stop, mut stopped) = watch::channel(false);
        let name = topic.to_owned();
        let reader_tps = tps.clone();
        let reader = tokio::spawn(async move {
            let mut failures = 0u32;
            loop {
                if *stopped.borrow() {
                    break;
                }
                let polled = tokio::select! {
                    r = consumer.poll(Duration::from_millis(100)) => r,
                    _ = stopped.changed() => break,
                };
                match polled {
                    Ok(records) => {
                        failures = 0;
                        for r in &records {
                            apply(r);
                        }
                        let now: BTreeMap<i32, i64> = reader_tps
                            .iter()
                            .filter_map(|tp| consumer.position(tp).map(|o| (tp.partition, o)))
                            .collect();
                        pos_tx.send_if_modified(|p| {
                            if *p == now {
                                false
                            } else {
                                *p = now;
                                true
                            }
                        });
                    }
                    Err(e) => {
                        failures = failures.saturating_add(1);
                        tracing::warn!(topic = %name, error = %e, failures, "reading the topic failed; retrying");
                        let backoff = Duration::from_millis(100 * u64::from(failures.min(20)));
                        tokio::select! {
                            _ = tokio::time::sleep(backoff) => {}
                            _ = stopped.changed() => break,
                        }
                    }
                }
            }
            if let Err(e) = consumer.close().await {
                tracing::debug!(topic = %name, error = %e, "closing the reader");
            }
        });
        let log = TopicLog {
            topic: topic.to_owned(),
            partitions: tps,
            admin,
            producer,
            positions,
            stop,
            reader: Mutex::new(Some(reader)),
        };
        log.read_to_end().await?;
        Ok(log)
    }

    /// The topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Waits until every record written before this call has been read into the state
    /// (Kafka's `readToEnd`), up to [`READ_TO_END_TIMEOUT`].
    pub async fn read_to_end(&self) -> Result<()> {
        let mut ends = Vec::with_capacity(self.partitions.len());
        for tp in &self.partitions {
            let end = self.admin.list_offsets(tp, OffsetSpec::Latest).await?;
            ends.push((tp.partition, end.offset));
        }
        let mut rx = self.positions.clone();
        let caught_up = |pos: &BTreeMap<i32, i64>| {
            ends.iter()
                .all(|(p, end)| *end <= 0 || pos.get(p).is_some_and(|o| o >= end))
        };
        match tokio::time::timeout(READ_TO_END_TIMEOUT, rx.wait_for(caught_up)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => Err(Error::Task(format!(
                "the reader of topic {} stopped",
                self.topic
            ))),
            Err(_) => Err(Error::Task(format!(
                "topic {} was not read to its end within {} s",
                self.topic,
                READ_TO_END_TIMEOUT.as_secs()
            ))),
        }
    }

    /// Writes a record (a `None` value is a tombstone) and waits for its acknowledgement.
    pub async fn send(&self, key: String, value: Option<Json>) -> Result<()> {
        self.send_all(vec![(key, value)]).await
    }

    /// Writes records in order and waits until all are acknowledged.
    pub async fn send_all(&self, records: Vec<(String, Option<Json>)>) -> Result<()> {
        let mut pending = Vec::with_capacity(records.len());
        for (key, value) in records {
            let record = ProducerRecord {
                topic: Arc::from(self.topic.as_str()),
                partition: None,
                key: Some(Bytes::from(key)),
                value: value.map(|v| Bytes::from(v.to_string())),
                headers: Vec::new(),
                timestamp: None,
            };
            pending.push(self.producer.send(record).await?);
        }
        self.producer.flush().await?;
        for p in pending {
            p.await?;
        }
        Ok(())
    }

    /// Stops reading.
    pub async fn stop(&self) {
        let _ = self.stop.send(true);
        let reader = self.reader.lock().take();
        if let Some(r) = reader {
            let _ = r.await;
        }
    }
}

/// A record's value as JSON: `None` for a tombstone, an error naming topic, partition and
/// offset for bytes that are not JSON (logged and skipped by the callers, as Kafka's
/// backing stores skip what they cannot read).
pub fn record_json(r: &ConsumerRecord) -> std::result::Result<Option<Json>, String> {
    match r.value.as_deref() {
        None => Ok(None),
        Some(v) => serde_json::from_slice(v).map(Some).map_err(|e| {
            format!(
                "{}-{} offset {}: the value is not JSON: {e}",
                r.topic, r.partition, r.offset
            )
        }),
    }
}

/// A record's key as text (an error naming where, for a key that is missing or not UTF-8).
pub fn record_key(r: &ConsumerRecord) -> std::result::Result<&str, String> {
    r.key
        .as_deref()
        .and_then(|k| std::str::from_utf8(k).ok())
        .ok_or_else(|| {
            format!(
                "{}-{} offset {}: the key is missing or not UTF-8",
                r.topic, r.partition, r.offset
            )
        })
}

/// Source offsets in the offset topic (`offset.storage.topic`), Kafka Connect's format.
pub struct TopicOffsetStore<C: Client> {
    log: TopicLog<C>,
    offsets: Arc<Mutex<Offsets>>,
}

impl<C: Client> std::fmt::Debug for TopicOffsetStore<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TopicOffsetStore")
            .field("topic", &self.log.topic)
            .finish_non_exhaustive()
    }
}

/// One record of the offset topic: (connector, source partition, offset or `None`).
fn parse_offset_record(
    r: &ConsumerRecord,
) -> std::result::Result<(String, SourceMap, Option<SourceMap>), String> {
    let where_ = || format!("{}-{} offset {}", r.topic, r.partition, r.offset);
    let key: Json = r
        .key
        .as_deref()
        .ok_or_else(|| format!("{}: no key", where_()))
        .and_then(|k| {
            serde_json::from_slice(k).map_err(|e| format!("{}: key not JSON: {e}", where_()))
        })?;
    let (Some(name), Some(Json::Object(partition))) = (key[0].as_str(), key.get(1)) else {
        return Err(format!(
            "{}: the key is not [\"connector\", {{partition}}]",
            where_()
        ));
    };
    let offset = match record_json(r)? {
        None | Some(Json::Null) => None,
        Some(Json::Object(o)) => Some(o),
        Some(other) => return Err(format!("{}: the offset {other} is not an object", where_())),
    };
    Ok((name.to_owned(), partition.clone(), offset))
}

impl<C: Client> TopicOffsetStore<C> {
    /// Opens the offset topic (created compacted with `partitions` when missing) and reads it.
    pub async fn open(client: &C, topic: &str, partitions: i32, client_id: &str) -> Result<Self> {
        let offsets: Arc<Mutex<Offsets>> = Arc::default();
        let state = Arc::clone(&offsets);
        let log = TopicLog::open(
            client,
            topic,
            partitions,
            client_id,
            Box::new(move |r| match parse_offset_record(r) {
                Ok((name, p, o)) => apply(&mut state.lock(), &name, vec![(p, o)]),
                Err(e) => tracing::warn!("offset topic: {e}; skipped"),
            }),
        )
        .await?;
        Ok(TopicOffsetStore { log, offsets })
    }

    /// Stops reading the topic.
    pub async fn stop(&self) {
        self.log.stop().await;
    }
}

impl<C: Client> OffsetStore for TopicOffsetStore<C> {
    fn get<'a>(&'a self, connector: &'a str) -> BoxFuture<'a, Result<Vec<(SourceMap, SourceMap)>>> {
        Box::pin(async move {
            self.log.read_to_end().await?;
            Ok(self
                .offsets
                .lock()
                .get(connector)
                .cloned()
                .unwrap_or_default())
        })
    }

    fn put<'a>(
        &'a self,
        connector: &'a str,
        offsets: Vec<(SourceMap, Option<SourceMap>)>,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let records = offsets
                .iter()
                .map(|(p, o)| {
                    (
                        json!([connector, p]).to_string(),
                        o.clone().map(Json::Object),
                    )
                })
                .collect();
            self.log.send_all(records).await?;
            apply(&mut self.offsets.lock(), connector, offsets);
            Ok(())
        })
    }
}
