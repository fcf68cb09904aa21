//! Sluice's client interface ([`sluice_client`]) over the Kafka protocol: against `sluice
//! broker` or any Kafka cluster. librdkafka (the `rdkafka` crate) by default; Sluice's own
//! producer and consumer where chosen. Depends on the interface, never on the storage engine.
//!
//! ```text
//! KafkaClient (bootstrap.servers, extra librdkafka properties)
//!   |-- admin()    -> KafkaAdmin:    rdkafka AdminClient + a group-less consumer for metadata,
//!   |                                offsets and group listings; a consumer of the group for
//!   |                                its committed offsets
//!   |-- producer() -> KafkaProducer: ThreadedProducer; delivery reports complete cells of
//!   |                                shared chunks (no allocation per record)
//!   |                 or, with sluice.producer.engine=native, Sluice's own (`native`): the
//!   |                 embedded producer's accumulator, Produce requests pipelined per leader
//!   '-- consumer() -> KafkaConsumer: StreamConsumer; poll returns up to max.poll.records
//!                     or, with sluice.consumer.engine=native, Sluice's own for assigned
//!                     partitions (`native_consumer`): Fetch decoded in place
//! ```
//!
//! The native engines exist for speed: on a small machine librdkafka's per-record costs bound
//! a client near a million records per second, while these encode records straight into (and
//! decode them straight out of) the record batches on the wire, at a fraction of the cost
//! (`docs/benchmarks.md`). They speak plaintext only; the producer has no transactions and the
//! consumer no group subscriptions (both refuse, naming the engine that has them); librdkafka
//! properties given to them are refused, naming the key.
//!
//! [`ProducerConfig`] and [`ConsumerConfig`] map to librdkafka's properties (Kafka's defaults
//! included, so the client behaves as Kafka's Java client would); properties given with
//! [`KafkaClient::with_property`] (and the producer and consumer variants) are passed to
//! librdkafka as they are, after those, so they can tune anything librdkafka knows.
//!
//! librdkafka's blocking calls (metadata, offsets, commits, transactions) run on Tokio's
//! blocking threads; the `Client` methods and the consumer must be used inside a Tokio runtime.
//!
//! A consumer without `group.id` still has one for librdkafka (which needs it even to assign
//! partitions): a group id of its own that it never joins nor commits to.
//!
//! What rdkafka does not wrap (ListTransactions, DescribeTransactions, OffsetDelete and
//! ListOffsets' max-timestamp spec) is sent directly with the kafka-protocol crate (`wire`).
//!
//! What the client cannot do is an [`Error::Unsupported`]: `send_offsets_to_transaction`
//! with the metadata of a group member that did not come from a librdkafka consumer's
//! `group_metadata` (librdkafka builds a member's metadata only in its consumer, and hands it
//! to its producer as an opaque object: [`sluice_client::ConsumerGroupMetadata`] carries it).
//! So is a consumer given custom partition assignors
//! (`ConsumerConfig::with_assignors`): librdkafka runs only its built-in ones, and rdkafka has
//! no way to plug in a Rust [`sluice_client::PartitionAssignor`] (the native consumer has no
//! group subscriptions at all).
//! A topic's description has no
//! sizes or segment counts (DescribeLogDirs is not wrapped either: they read 0), and a group
//! member's `group.instance.id` is not reported. Without the `ssl` feature of rdkafka (not
//! enabled: it needs OpenSSL) only plaintext listeners can be reached.

mod admin;
mod config;
mod consumer;
mod error;
mod native;
mod native_consumer;
mod producer;
mod wire;

use std::sync::Arc;
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::TopicPartitionList;
use rdkafka::topic_partition_list::Offset;

pub use admin::KafkaAdmin;
pub use consumer::KafkaConsumer;
pub use producer::KafkaProducer;

use sluice_client::Client;
use sluice_client::config::{ConsumerConfig, ProducerConfig};
use sluice_client::{Error, Result, TopicPartition};

/// The producer property choosing the producer: `librdkafka` (the default) or `native`
/// (Sluice's own, [`KafkaProducer`] over the Kafka protocol directly: see `native`).
pub const ENGINE_PROPERTY: &str = "sluice.producer.engine";

/// The consumer property choosing the consumer: `librdkafka` (the default) or `native`
/// (Sluice's own for manually assigned partitions: see `native_consumer`).
pub const CONSUMER_ENGINE_PROPERTY: &str = "sluice.consumer.engine";

/// The client's name in [`Error::Unsupported`].
const CLIENT: &str = "the Kafka-protocol client";

/// A client of a Kafka cluster (or `sluice broker`).
#[derive(Debug, Clone)]
pub struct KafkaClient {
    settings: Arc<Settings>,
}

#[derive(Debug, Clone)]
struct Settings {
    bootstrap_servers: String,
    /// Raw librdkafka properties of every client.
    common: Vec<(String, String)>,
    /// ... of producers only.
    producer: Vec<(String, String)>,
    /// ... of consumers only.
    consumer: Vec<(String, String)>,
    /// Bound of librdkafka's blocking calls: metadata, offsets, commits, group listings.
    timeout: Duration,
}

impl KafkaClient {
    /// A client of the cluster at `bootstrap_servers` (`host:port[,host:port...]`); a
    /// `bootstrap.servers` in a producer's or consumer's config takes precedence.
    pub fn new(bootstrap_servers: impl Into<String>) -> Self {
        Self {
            settings: Arc::new(Settings {
                bootstrap_servers: bootstrap_servers.into(),
                common: Vec::new(),
                producer: Vec::new(),
                consumer: Vec::new(),
                timeout: Duration::from_secs(30),
            }),
        }
    }

    /// Adds a librdkafka property for every client made from now on (e.g. `security.protocol`,
    /// `debug`); it overrides what the configs map to.
    pub fn with_property(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        Arc::make_mut(&mut self.settings)
            .common
            .push((key.into(), value.into()));
        self
    }

    /// Adds a librdkafka property for producers only (e.g. `queue.buffering.max.messages`).
    pub fn with_producer_property(
        mut self,
        key: impl Into<String>,
        value: impl Into<String>,
    ) -> Self {
        Arc::make_mut(&mut self.settings)
            .producer
            .push((key.into(), value.into()));
        self
    }

    /// Adds a librdkafka property for consumers only (e.g. `queued.min.messages`).
    pub fn with_consumer_property(
        mut self,
        key: impl Into<String>,
        value: impl Into<String>,
    ) -> Self {
        Arc::make_mut(&mut self.settings)
            .consumer
            .push((key.into(), value.into()));
        self
    }

    /// Bounds librdkafka's blocking calls (metadata, offsets, commits, group listings); 30 s
    /// by default.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        Arc::make_mut(&mut self.settings).timeout = timeout;
        self
    }

    /// The bootstrap servers.
    pub fn bootstrap_servers(&self) -> &str {
        &self.settings.bootstrap_servers
    }

    pub(crate) fn timeout(&self) -> Duration {
        self.settings.timeout
    }

    /// Direct Kafka-protocol requests for what librdkafka does not wrap, to the same servers
    /// (refused unless `security.protocol` is plaintext).
    fn wire(&self, operation: &'static str) -> Result<wire::Wire> {
        self.wire_to(&[], operation)
    }

    /// [`Self::wire`] to `servers` if any are given.
    fn wire_to(&self, servers: &[String], operation: &'static str) -> Result<wire::Wire> {
        let security = self
            .settings
            .common
            .iter()
            .rev()
            .find(|(k, _)| k == "security.protocol")
            .map(|(_, v)| v.as_str());
        let servers = if servers.is_empty() {
            self.settings.bootstrap_servers.clone()
        } else {
            servers.join(",")
        };
        wire::Wire::new(&servers, security, self.settings.timeout, operation)
    }

    /// Whether `property` (of the common properties, then `raw`) asks for the native engine
    /// rather than librdkafka (the default), and `raw` without it. `refuse` names what the
    /// native engine cannot do for this client, if anything (operation, engine, reason: an
    /// [`Error::Unsupported`]); librdkafka properties are refused with it too, naming the key.
    fn engine(
        &self,
        raw: &[(String, String)],
        property: &'static str,
        refuse: impl Fn(bool) -> Option<(&'static str, &'static str, &'static str)>,
    ) -> Result<(bool, Vec<(String, String)>)> {
        let mut native = false;
        for (k, v) in self.settings.common.iter().chain(raw) {
            if k == property {
                native = match v.as_str() {
                    "librdkafka" => false,
                    "native" => true,
                    _ => {
                        return Err(Error::InvalidConfig {
                            key: property.into(),
                            value: v.clone(),
                            reason: "expected librdkafka or native".into(),
                        });
                    }
                };
            }
        }
        if let Some((operation, client, reason)) = refuse(native) {
            return Err(Error::Unsupported {
                operation,
                client,
                reason: reason.into(),
            });
        }
        let rest: Vec<(String, String)> = raw
            .iter()
            .filter(|(k, _)| k != ENGINE_PROPERTY && k != CONSUMER_ENGINE_PROPERTY)
            .cloned()
            .collect();
        if native && let Some((k, v)) = rest.first() {
            return Err(Error::InvalidConfig {
                key: k.clone(),
                value: v.clone(),
                reason: format!(
                    "not a Kafka config; librdkafka properties apply only with \
                     {property}=librdkafka"
                ),
            });
        }
        Ok((native, rest))
    }

    /// An rdkafka config: bootstrap servers (`servers` if any, else the client's), then
    /// `mapped`, then the raw properties of every client and of `extra`.
    fn rd_config(
        &self,
        servers: &[String],
        mapped: &[(&'static str, String)],
        extra: &[(String, String)],
    ) -> Result<ClientConfig> {
        let bootstrap = if servers.is_empty() {
            self.settings.bootstrap_servers.trim().to_owned()
        } else {
            servers.join(",")
        };
        if bootstrap.is_empty() {
            return Err(Error::InvalidConfig {
                key: "bootstrap.servers".into(),
                value: String::new(),
                reason: "must name at least one host:port".into(),
            });
        }
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", bootstrap);
        for (k, v) in mapped {
            c.set(*k, v.as_str());
        }
        for (k, v) in self.settings.common.iter().chain(extra) {
            if k != ENGINE_PROPERTY && k != CONSUMER_ENGINE_PROPERTY {
                c.set(k.as_str(), v.as_str());
            }
        }
        Ok(c)
    }

    /// The config of a consumer for metadata and offsets (admin, lookups): of `group`, which
    /// it never joins, else of a group of its own. It reads uncommitted, as Kafka's `Admin`
    /// lists offsets: the latest offset is the high watermark, not the last stable offset
    /// (librdkafka's default isolation is read_committed).
    fn lookup_config(&self, group: Option<&str>) -> Result<ClientConfig> {
        let group = group.map_or_else(unjoined_group, str::to_owned);
        let mapped = [
            ("group.id", group),
            ("isolation.level", "read_uncommitted".to_owned()),
            ("enable.auto.commit", "false".to_owned()),
            ("enable.auto.offset.store", "false".to_owned()),
            ("enable.partition.eof", "false".to_owned()),
        ];
        self.rd_config(&[], &mapped, &[])
    }
}

/// A group id no one else uses, for a consumer without `group.id`: librdkafka's consumer
/// needs one even to assign partitions. Such a consumer never joins it nor commits to it
/// (`subscribe` and commits are refused without a `group.id` of the config); it only asks it
/// for committed offsets, finding none.
fn unjoined_group() -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("sluice-unjoined-{}-{n}", std::process::id())
}

impl Client for KafkaClient {
    type Admin = KafkaAdmin;
    type Producer = KafkaProducer;
    type Consumer = KafkaConsumer;

    fn admin(&self) -> Result<KafkaAdmin> {
        KafkaAdmin::new(self.clone())
    }

    fn producer(&self, config: ProducerConfig) -> Result<KafkaProducer> {
        let transactional = config.transactional_id.is_some();
        let (native, raw) = self.engine(&self.settings.producer, ENGINE_PROPERTY, |native| {
            (native && transactional).then_some((
                "transactions (transactional.id)",
                "Sluice's native Kafka producer",
                "the native producer has no transactions: a producer with a transactional.id \
                 uses librdkafka (sluice.producer.engine=librdkafka)",
            ))
        })?;
        match native {
            true => {
                let wire = self.wire_to(&config.bootstrap_servers, "producer")?;
                let native =
                    native::NativeProducer::new(wire.bootstrap_servers().to_vec(), config.clone())?;
                Ok(KafkaProducer::native(self.clone(), native, config))
            }
            false => {
                let rd = self.rd_config(
                    &config.bootstrap_servers,
                    &config::producer_properties(&config),
                    &raw,
                )?;
                KafkaProducer::new(self.clone(), rd, config)
            }
        }
    }

    fn consumer(&self, config: ConsumerConfig) -> Result<KafkaConsumer> {
        let (native, raw) =
            self.engine(&self.settings.consumer, CONSUMER_ENGINE_PROPERTY, |_| None)?;
        if native {
            let wire = self.wire_to(&config.bootstrap_servers, "consumer")?;
            let timeout = self.settings.timeout;
            return Ok(KafkaConsumer::native(native_consumer::NativeConsumer::new(
                wire, config, timeout,
            )));
        }
        if !config.assignors().is_empty() {
            // librdkafka assigns with its own built-ins; rdkafka offers no way to plug in a
            // Rust assignor.
            let names = config
                .assignors()
                .iter()
                .map(|a| a.name())
                .collect::<Vec<_>>()
                .join(", ");
            return Err(Error::Unsupported {
                operation: "a custom partition assignor",
                client: CLIENT,
                reason: format!(
                    "the librdkafka consumer runs only the built-in assignors of \
                     partition.assignment.strategy, not {names}; the embedded client runs \
                     custom assignors"
                ),
            });
        }
        let mut mapped = config::consumer_properties(&config);
        if config.group_id.is_none() {
            mapped.push(("group.id", unjoined_group()));
            mapped.push(("enable.auto.commit", "false".to_owned()));
            mapped.push(("enable.auto.offset.store", "false".to_owned()));
        }
        let rd = self.rd_config(&config.bootstrap_servers, &mapped, &raw)?;
        consumer::RdConsumer::new(self.clone(), rd, config).map(KafkaConsumer::librdkafka)
    }
}

/// Runs a blocking librdkafka call on Tokio's blocking threads.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => Err(Error::Closed("async runtime")),
    }
}

/// Runs a blocking librdkafka call from a synchronous method: off the runtime's worker
/// thread where the runtime allows it (multi-threaded), else in place.
/// Fetches the metadata of `topic` (blocking) and runs `f` on it: [`Error::UnknownTopic`]
/// when the cluster does not list it, the topic's own error when it has one.
fn with_topic_metadata<C: rdkafka::ClientContext, T>(
    client: &rdkafka::client::Client<C>,
    topic: &str,
    timeout: Duration,
    operation: &'static str,
    f: impl FnOnce(&rdkafka::metadata::MetadataTopic) -> Result<T>,
) -> Result<T> {
    let md = client
        .fetch_metadata(Some(topic), timeout)
        .map_err(|e| error::from_kafka(operation, e, error::Subject::topic(topic)))?;
    let t = md
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .ok_or_else(|| Error::UnknownTopic(topic.to_owned()))?;
    if let Some(err) = t.error() {
        return Err(error::from_code(
            operation,
            err.into(),
            error::Subject::topic(topic),
        ));
    }
    f(t)
}

fn block_here<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

/// A partition list of `tps` at `offset`.
fn tpl_of<'a>(
    tps: impl IntoIterator<Item = (&'a TopicPartition, Offset)>,
) -> Result<TopicPartitionList> {
    let mut tpl = TopicPartitionList::new();
    for (tp, offset) in tps {
        tpl.add_partition_offset(&tp.topic, tp.partition, offset)
            .map_err(|e| error::from_kafka("partition list", e, error::Subject::none()))?;
    }
    Ok(tpl)
}

/// The partitions of a partition list.
fn tps_of(tpl: &TopicPartitionList) -> Vec<TopicPartition> {
    tpl.elements()
        .iter()
        .map(|e| TopicPartition::new(e.topic(), e.partition()))
        .collect()
}
