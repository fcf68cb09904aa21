//! The Kafka producer: librdkafka's producer with a polling thread (`ThreadedProducer`) serving
//! delivery reports in batches; each report completes its record's cell (see
//! [`super::delivery`]). `send` never waits for a delivery, only for queue space
//! (`buffer.memory`, up to `max.block.ms`) when librdkafka's queue is full.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer as _, ConsumerGroupMetadata as RdGroupMetadata};
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode as Code};
use rdkafka::message::{Header as RdHeader, Message as _, OwnedHeaders};
use rdkafka::producer::{
    BaseRecord, DeliveryResult, Producer as _, ProducerContext, ThreadedProducer,
};
use rdkafka::topic_partition_list::Offset;
use rdkafka::util::Timeout;

use super::error::{Subject, code_of, from_kafka};
use super::native::NativeProducer;
use super::{KafkaClient, block_here, blocking, tpl_of, with_topic_metadata};
use sluice_client::config::ProducerConfig;
use sluice_client::delivery::Deliveries;
use sluice_client::{ConsumerGroupMetadata, DeliveryFuture, Producer, ProducerRecord};
use sluice_client::{Error, Result, TopicPartition};

/// What librdkafka's threads share with the producer.
#[derive(Debug, Default)]
pub(super) struct ProducerCtx {
    deliveries: Deliveries,
    /// Signalled on deliveries while a `send` waits for queue space.
    space: tokio::sync::Notify,
    space_waiters: AtomicUsize,
    /// Signalled when no record is in flight any more.
    idle: tokio::sync::Notify,
}

impl ClientContext for ProducerCtx {}

impl ProducerContext for ProducerCtx {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, seq: usize) {
        let outcome = match result {
            Ok(m) => Ok((
                m.partition(),
                m.offset(),
                m.timestamp().to_millis().unwrap_or(-1),
            )),
            Err((e, m)) => {
                let subject = if m.partition() >= 0 {
                    Subject::partition(m.topic(), m.partition())
                } else {
                    Subject::topic(m.topic())
                };
                Err(from_kafka("send", e.clone(), subject))
            }
        };
        let left = self.deliveries.complete(seq as u64, outcome);
        if self.space_waiters.load(Ordering::SeqCst) > 0 {
            self.space.notify_waiters();
        }
        if left == 0 {
            self.idle.notify_waiters();
        }
    }
}

/// A producer to a Kafka cluster: librdkafka's, or with `sluice.producer.engine=native`
/// Sluice's own (see [`super::ENGINE_PROPERTY`]).
pub struct KafkaProducer {
    engine: Engine,
    config: ProducerConfig,
    client: KafkaClient,
}

enum Engine {
    Librdkafka(ThreadedProducer<ProducerCtx>),
    Native(NativeProducer),
    /// Taken by `close`.
    Closed,
}

impl std::fmt::Debug for KafkaProducer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("KafkaProducer");
        d.field("bootstrap_servers", &self.client.bootstrap_servers())
            .field("transactional_id", &self.config.transactional_id);
        match &self.engine {
            Engine::Librdkafka(p) => d.field("in_flight", &p.context().deliveries.in_flight()),
            Engine::Native(n) => d.field("native", n),
            Engine::Closed => d.field("closed", &true),
        };
        d.finish_non_exhaustive()
    }
}

/// Why one attempt to queue a record failed.
enum Refused {
    QueueFull,
    Failed(Error),
}

impl KafkaProducer {
    pub(super) fn new(
        client: KafkaClient,
        rd: ClientConfig,
        config: ProducerConfig,
    ) -> Result<Self> {
        let producer: ThreadedProducer<ProducerCtx> = rd
            .create_with_context(ProducerCtx::default())
            .map_err(|e| from_kafka("create producer", e, Subject::none()))?;
        Ok(Self {
            engine: Engine::Librdkafka(producer),
            config,
            client,
        })
    }

    pub(super) fn native(
        client: KafkaClient,
        native: NativeProducer,
        config: ProducerConfig,
    ) -> Self {
        Self {
            engine: Engine::Native(native),
            config,
            client,
        }
    }

    /// Whether this is Sluice's own producer rather than librdkafka's.
    pub fn is_native(&self) -> bool {
        matches!(self.engine, Engine::Native(_))
    }

    /// librdkafka's producer, for transactional call `operation`: transactions live only
    /// there (a native producer refuses them, naming the engine that has them).
    fn rd(&self, operation: &'static str) -> Result<&ThreadedProducer<ProducerCtx>> {
        match &self.engine {
            Engine::Librdkafka(p) => Ok(p),
            Engine::Native(_) => Err(Error::Unsupported {
                operation,
                client: "Sluice's native Kafka producer",
                reason: "it has no transactions: use sluice.producer.engine=librdkafka".into(),
            }),
            Engine::Closed => Err(Error::Closed("producer")),
        }
    }

    /// The config this producer was made with.
    pub fn config(&self) -> &ProducerConfig {
        &self.config
    }

    /// Records sent to librdkafka and not yet acknowledged (or failed); 0 for a native
    /// producer, which counts batches, not records.
    pub fn in_flight(&self) -> u64 {
        match &self.engine {
            Engine::Librdkafka(p) => p.context().deliveries.in_flight(),
            Engine::Native(_) | Engine::Closed => 0,
        }
    }

    /// One attempt to hand `record` to librdkafka as record `seq`.
    fn try_send(
        producer: &ThreadedProducer<ProducerCtx>,
        config: &ProducerConfig,
        record: &ProducerRecord,
        seq: u64,
    ) -> std::result::Result<(), Refused> {
        let mut rd: BaseRecord<'_, [u8], [u8], usize> =
            BaseRecord::with_opaque_to(&record.topic, seq as usize);
        if let Some(p) = record.partition {
            rd = rd.partition(p);
        }
        if let Some(k) = &record.key {
            rd = rd.key(&k[..]);
        }
        if let Some(v) = &record.value {
            rd = rd.payload(&v[..]);
        }
        if let Some(ts) = record.timestamp {
            rd = rd.timestamp(ts);
        }
        if !record.headers.is_empty() {
            let mut headers = OwnedHeaders::new_with_capacity(record.headers.len());
            for h in &record.headers {
                headers = headers.insert(RdHeader {
                    key: &h.key,
                    value: h.value.as_deref(),
                });
            }
            rd = rd.headers(headers);
        }
        match producer.send(rd) {
            Ok(()) => Ok(()),
            Err((KafkaError::MessageProduction(Code::QueueFull), _)) => Err(Refused::QueueFull),
            Err((e, _)) => Err(Refused::Failed(Self::send_error(config, record, e))),
        }
    }

    fn send_error(config: &ProducerConfig, record: &ProducerRecord, e: KafkaError) -> Error {
        match code_of(&e) {
            Some(Code::MessageSizeTooLarge | Code::InvalidMessageSize) => Error::RecordTooLarge {
                size: record_size(record),
                max: config.max_request_size,
            },
            Some(Code::UnknownPartition) => Error::UnknownPartition {
                topic: record.topic.to_string(),
                partition: record.partition.unwrap_or(-1),
            },
            _ => from_kafka("send", e, Subject::topic(&record.topic)),
        }
    }

    /// Waits for queue space and retries until `max.block.ms` passed.
    async fn send_when_space(
        producer: &ThreadedProducer<ProducerCtx>,
        config: &ProducerConfig,
        record: &ProducerRecord,
        seq: u64,
    ) -> Result<()> {
        let ctx = producer.context();
        let deadline = tokio::time::Instant::now() + Duration::from_millis(config.max_block_ms);
        loop {
            let notified = ctx.space.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            ctx.space_waiters.fetch_add(1, Ordering::SeqCst);
            // Try again after registering, so a delivery in between is not missed.
            let attempt = Self::try_send(producer, config, record, seq);
            let waited = match attempt {
                Err(Refused::QueueFull) => {
                    tokio::time::timeout_at(deadline, notified).await.is_ok()
                }
                _ => true,
            };
            ctx.space_waiters.fetch_sub(1, Ordering::SeqCst);
            match attempt {
                Ok(()) => return Ok(()),
                Err(Refused::Failed(e)) => return Err(e),
                Err(Refused::QueueFull) if !waited => {
                    return Err(Error::BufferExhausted {
                        buffer_memory: config.buffer_memory,
                        max_block_ms: config.max_block_ms,
                    });
                }
                Err(Refused::QueueFull) => {}
            }
        }
    }

    /// The `transactional.id`, for transactional call `operation` (a native producer refuses
    /// first, naming the engine).
    fn transactional_id(&self, operation: &'static str) -> Result<&str> {
        self.rd(operation)?;
        self.config
            .transactional_id
            .as_deref()
            .ok_or_else(|| Error::InvalidTxnState("this producer has no transactional.id".into()))
    }

    fn max_block(&self) -> Duration {
        Duration::from_millis(self.config.max_block_ms)
    }

    /// Runs a blocking transactional call of librdkafka (given `max.block.ms`) off the async
    /// workers, its error named by `operation` and the transactional id.
    async fn transaction_call(
        &self,
        operation: &'static str,
        call: impl FnOnce(&ThreadedProducer<ProducerCtx>, Duration) -> KafkaResult<()> + Send + 'static,
    ) -> Result<()> {
        let id = self.transactional_id(operation)?.to_owned();
        let p = self.rd(operation)?.clone();
        let timeout = self.max_block();
        blocking(move || {
            call(&p, timeout).map_err(|e| from_kafka(operation, e, Subject::transaction(Some(&id))))
        })
        .await
    }

    /// librdkafka's metadata object for `group`: the one a librdkafka consumer attached to
    /// its [`ConsumerGroupMetadata`], else (metadata from outside the group) one of a consumer
    /// of the group that never joins it. A member's metadata without the object is refused:
    /// librdkafka builds a member's metadata only in its consumer.
    async fn rd_group_metadata(
        &self,
        group: &ConsumerGroupMetadata,
    ) -> Result<Arc<RdGroupMetadata>> {
        if let Some(handle) = group.handle() {
            return Arc::clone(handle)
                .downcast::<RdGroupMetadata>()
                .map_err(|_| Error::Unsupported {
                    operation: "send_offsets_to_transaction",
                    client: super::CLIENT,
                    reason: "the group metadata comes from another client's consumer: \
                             librdkafka's producer takes only a librdkafka consumer's"
                        .into(),
                });
        }
        if !group.is_outside_group() {
            return Err(Error::Unsupported {
                operation: "send_offsets_to_transaction with a group member's metadata",
                client: super::CLIENT,
                reason: format!(
                    "member {:?} of generation {} was not given by a librdkafka consumer's \
                     group_metadata: librdkafka builds a member's metadata only in its \
                     consumer",
                    group.member_id, group.generation_id
                ),
            });
        }
        let rd = self.client.lookup_config(Some(&group.group_id))?;
        let group_id = group.group_id.clone();
        blocking(move || {
            let consumer: BaseConsumer = rd
                .create()
                .map_err(|e| from_kafka("create consumer", e, Subject::group(&group_id)))?;
            consumer
                .group_metadata()
                .map(Arc::new)
                .ok_or_else(|| Error::InvalidGroupId(group_id.clone()))
        })
        .await
    }

    /// How long a flush may take: every record is complete (delivered or failed) within
    /// `delivery.timeout.ms` of its send.
    fn flush_bound(&self) -> Duration {
        Duration::from_millis(self.config.delivery_timeout_ms) + Duration::from_secs(5)
    }
}

/// A record's size as librdkafka counts it against `message.max.bytes` (near enough).
fn record_size(r: &ProducerRecord) -> usize {
    r.key.as_ref().map_or(0, |k| k.len())
        + r.value.as_ref().map_or(0, |v| v.len())
        + r.headers
            .iter()
            .map(|h| h.key.len() + h.value.as_ref().map_or(0, |v| v.len()))
            .sum::<usize>()
}

impl Drop for KafkaProducer {
    fn drop(&mut self) {
        // Queued records are still sent, as Kafka's close does (librdkafka would purge them).
        // A native producer does so when it drops.
        let Engine::Librdkafka(p) = &self.engine else {
            return;
        };
        if p.context().deliveries.in_flight() > 0 {
            let bound = self.flush_bound();
            if let Err(e) = block_here(|| p.flush(Timeout::After(bound))) {
                tracing::warn!(error = %e, "records still queued when the producer was dropped");
            }
        }
    }
}

impl Producer for KafkaProducer {
    async fn send(&self, record: ProducerRecord) -> Result<DeliveryFuture> {
        let p = match &self.engine {
            Engine::Librdkafka(p) => p,
            Engine::Native(n) => return n.send(record).await,
            Engine::Closed => return Err(Error::Closed("producer")),
        };
        let size = record_size(&record);
        if size > self.config.max_request_size {
            return Err(Error::RecordTooLarge {
                size,
                max: self.config.max_request_size,
            });
        }
        let ctx = p.context();
        let (seq, pending) = ctx.deliveries.start(Arc::clone(&record.topic));
        let sent = match Self::try_send(p, &self.config, &record, seq) {
            Ok(()) => Ok(()),
            Err(Refused::QueueFull) => Self::send_when_space(p, &self.config, &record, seq).await,
            Err(Refused::Failed(e)) => Err(e),
        };
        match sent {
            Ok(()) => Ok(DeliveryFuture::cell(pending)),
            Err(e) => {
                // The record never reached librdkafka: its cell completes here.
                let left = ctx.deliveries.complete(
                    seq,
                    Err(Error::InvalidRequest("the record was not sent".into())),
                );
                if left == 0 {
                    ctx.idle.notify_waiters();
                }
                Err(e)
            }
        }
    }

    async fn flush(&self) -> Result<()> {
        let p = match &self.engine {
            Engine::Librdkafka(p) => p,
            Engine::Native(n) => return n.flush().await,
            Engine::Closed => return Ok(()),
        };
        let ctx = p.context();
        if ctx.deliveries.in_flight() == 0 {
            return Ok(());
        }
        // librdkafka's flush sends at once (ignoring linger.ms) and serves the reports.
        let p = p.clone();
        let bound = self.flush_bound();
        blocking(move || {
            p.flush(Timeout::After(bound))
                .map_err(|e| from_kafka("flush", e, Subject::none()))
        })
        .await?;
        // Reports served by the polling thread may still be completing.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let idle = ctx.idle.notified();
            tokio::pin!(idle);
            idle.as_mut().enable();
            if ctx.deliveries.in_flight() == 0 {
                return Ok(());
            }
            if tokio::time::timeout_at(deadline, idle).await.is_err() {
                return Err(Error::Timeout(format!(
                    "flush: {} records still in flight",
                    ctx.deliveries.in_flight()
                )));
            }
        }
    }

    async fn partition_count(&self, topic: &str) -> Result<i32> {
        let p = match &self.engine {
            Engine::Librdkafka(p) => p.clone(),
            Engine::Native(n) => return n.partition_count_of(&Arc::from(topic), true).await,
            Engine::Closed => return Err(Error::Closed("producer")),
        };
        let timeout = self.client.timeout();
        let topic = topic.to_owned();
        blocking(move || {
            with_topic_metadata(p.client(), &topic, timeout, "partition_count", |t| {
                i32::try_from(t.partitions().len())
                    .map_err(|_| Error::InvalidRequest("too many partitions".into()))
            })
        })
        .await
    }

    async fn init_transactions(&self) -> Result<()> {
        self.transaction_call("init_transactions", |p, timeout| {
            p.init_transactions(timeout)
        })
        .await
    }

    fn begin_transaction(&self) -> Result<()> {
        let id = self.transactional_id("begin_transaction")?;
        self.rd("begin_transaction")?
            .begin_transaction()
            .map_err(|e| from_kafka("begin_transaction", e, Subject::transaction(Some(id))))
    }

    async fn send_offsets_to_transaction(
        &self,
        offsets: Vec<(TopicPartition, i64)>,
        group: &ConsumerGroupMetadata,
    ) -> Result<()> {
        self.transactional_id("send_offsets_to_transaction")?;
        let metadata = self.rd_group_metadata(group).await?;
        let tpl = tpl_of(offsets.iter().map(|(tp, o)| (tp, Offset::Offset(*o))))?;
        self.transaction_call("send_offsets_to_transaction", move |p, timeout| {
            p.send_offsets_to_transaction(&tpl, &metadata, timeout)
        })
        .await
    }

    async fn commit_transaction(&self) -> Result<()> {
        self.transaction_call("commit_transaction", |p, timeout| {
            p.commit_transaction(timeout)
        })
        .await
    }

    async fn abort_transaction(&self) -> Result<()> {
        self.transaction_call("abort_transaction", |p, timeout| {
            p.abort_transaction(timeout)
        })
        .await
    }

    async fn close(mut self) -> Result<()> {
        let engine = std::mem::replace(&mut self.engine, Engine::Closed);
        match engine {
            Engine::Native(n) => n.close().await,
            other => {
                self.engine = other;
                self.flush().await
            }
        }
    }
}
