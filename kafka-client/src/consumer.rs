//! The Kafka consumer: librdkafka's consumer (`StreamConsumer`, woken by librdkafka when its
//! queue fills), with Kafka's consumer semantics kept here:
//!
//! - `poll` returns up to `max.poll.records`; positions (the next offset to read) follow what
//!   `poll` returned, and with `enable.auto.commit` they are what librdkafka commits (the
//!   consumer stores them itself after each `poll`).
//! - A manual assignment is librdkafka's assignment with explicit offsets: `seek`,
//!   `seek_to_*` and `resume` reassign with the positions, so a seek is never overtaken by a
//!   committed-offset lookup.
//! - Records of a paused partition that were already fetched are dropped, and the partition
//!   is sought back to its position on `resume`.
//! - A pattern subscription matches [`TopicPattern`] against the cluster's topics here (as
//!   Kafka's Java consumer does, and with its internal-topic rule), subscribing to the matching
//!   names, and again every five minutes (Kafka's `metadata.max.age.ms`).
//! - Rebalances queue [`RebalanceEvent`]s and call the [`RebalanceListener`] from `poll`, on
//!   the consumer's task; a revocation is announced by one `poll` and carried out (unassign,
//!   after which librdkafka rejoins) by the next, so the caller can commit in between.
//! - The keys and values of one `poll` are copied out of librdkafka into one buffer that the
//!   records slice (as the embedded consumer's records slice the fetched batch): a record kept
//!   keeps that poll's buffer alive; copy it (`Bytes::copy_from_slice`) to keep it alone.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_core::Stream as _;
use parking_lot::Mutex;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer as _, ConsumerContext, MessageStream, RebalanceProtocol,
    StreamConsumer,
};
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode as Code};
use rdkafka::message::{BorrowedMessage, Headers as _, Message as _, Timestamp};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientConfig, ClientContext};

use super::error::{Subject, code_of, from_kafka};
use super::native_consumer::NativeConsumer;
use super::{KafkaClient, blocking, tpl_of, tps_of};
use sluice_client::config::ConsumerConfig;
use sluice_client::{
    Consumer, ConsumerGroupMetadata, ConsumerRecord, Header, RebalanceEvent, RebalanceListener,
    TopicPattern,
};
use sluice_client::{Error, Result, TimestampType, TopicPartition};

/// How often a pattern subscription looks for new matching topics (Kafka's
/// `metadata.max.age.ms`).
const PATTERN_REFRESH: Duration = Duration::from_secs(300);
/// How long `unsubscribe` and `close` wait for the revocation and the group leave.
const LEAVE_BOUND: Duration = Duration::from_secs(10);

/// What librdkafka's rebalance callbacks share with the consumer.
#[derive(Default)]
pub(super) struct ConsumerCtx {
    listener: Mutex<Option<Box<dyn RebalanceListener>>>,
    /// Partitions given up since the consumer last looked.
    revoked: Mutex<Vec<TopicPartition>>,
    /// Rebalance events not yet taken by `rebalance_events`.
    events: Mutex<Vec<RebalanceEvent>>,
    /// A revocation announced and not yet carried out (partitions, and whether the protocol
    /// is cooperative): the next `poll` unassigns them, so librdkafka rejoins only then.
    deferred: Mutex<Option<(Vec<TopicPartition>, bool)>>,
    /// Set once the consumer is closing or dropped: a revocation is carried out at once, as
    /// nobody polls any more to do it (librdkafka's close waits for it, without a bound).
    closing: AtomicBool,
}

impl std::fmt::Debug for ConsumerCtx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsumerCtx")
            .field("listener", &self.listener.lock().is_some())
            .finish_non_exhaustive()
    }
}

impl ClientContext for ConsumerCtx {}

impl ConsumerCtx {
    /// Queues `event` and calls the listener with it.
    fn event(&self, event: RebalanceEvent) {
        if let Some(l) = self.listener.lock().as_mut() {
            match &event {
                RebalanceEvent::Revoked(tps) => l.on_partitions_revoked(tps),
                RebalanceEvent::Assigned(tps) => l.on_partitions_assigned(tps),
                RebalanceEvent::Lost(tps) => l.on_partitions_lost(tps),
            }
        }
        self.events.lock().push(event);
    }

    fn revocation_deferred(&self) -> bool {
        self.deferred.lock().is_some()
    }

    /// Carries out the deferred revocation, if any: librdkafka then rejoins.
    fn give_up_revoked<C: rdkafka::consumer::Consumer<Self>>(&self, consumer: &C) {
        let Some((tps, cooperative)) = self.deferred.lock().take() else {
            return;
        };
        Self::unassign(consumer, &tps, cooperative);
        self.revoked.lock().extend(tps);
    }

    fn unassign<C: rdkafka::consumer::Consumer<Self>>(
        consumer: &C,
        tps: &[TopicPartition],
        cooperative: bool,
    ) {
        let r = if cooperative {
            tpl_of(tps.iter().map(|tp| (tp, Offset::Invalid))).and_then(|tpl| {
                consumer
                    .incremental_unassign(&tpl)
                    .map_err(|e| from_kafka("unassign", e, Subject::none()))
            })
        } else {
            consumer
                .unassign()
                .map_err(|e| from_kafka("unassign", e, Subject::none()))
        };
        if let Err(e) = r {
            tracing::warn!(error = %e, "could not give up revoked partitions");
        }
    }
}

impl ConsumerContext for ConsumerCtx {
    /// rdkafka's default rebalance, but a clean revocation is only announced here (a
    /// `Revoked` event) and carried out by the next `poll`: librdkafka waits for the unassign
    /// before it rejoins, so commits made in between count for the current generation (Kafka's
    /// `onPartitionsRevoked`, which runs before the JoinGroup).
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        let cooperative = matches!(
            consumer.rebalance_protocol(),
            RebalanceProtocol::Cooperative
        );
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                // An assignment comes after the revocation was carried out; if one is still
                // deferred (a rebalance in between), it goes first.
                self.give_up_revoked(consumer);
                let r = if cooperative {
                    consumer.incremental_assign(tpl)
                } else {
                    consumer.assign(tpl)
                };
                if let Err(e) = r {
                    tracing::warn!(error = %e, "could not take the assignment");
                }
                let tps = tps_of(tpl);
                tracing::debug!(partitions = tps.len(), "partitions assigned");
                self.event(RebalanceEvent::Assigned(tps));
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                self.give_up_revoked(consumer);
                let tps = tps_of(tpl);
                if consumer.assignment_lost() {
                    // Nothing can be committed for them any more: given up at once.
                    self.event(RebalanceEvent::Lost(tps.clone()));
                    Self::unassign(consumer, &tps, cooperative);
                    self.revoked.lock().extend(tps);
                } else if self.closing.load(Ordering::Acquire) {
                    // Closing: nobody polls again to carry it out.
                    self.event(RebalanceEvent::Revoked(tps.clone()));
                    Self::unassign(consumer, &tps, cooperative);
                    self.revoked.lock().extend(tps);
                } else {
                    self.event(RebalanceEvent::Revoked(tps.clone()));
                    *self.deferred.lock() = Some((tps, cooperative));
                }
            }
            other => {
                // As rdkafka's default: an error unassigns everything.
                tracing::warn!(error = ?other, "rebalance failed");
                self.give_up_revoked(consumer);
                Self::unassign(consumer, &tps_of(tpl), cooperative);
            }
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, offsets: &TopicPartitionList) {
        if let Err(e) = result {
            // NoOffset: nothing was stored to commit, not a failure.
            if code_of(&e) != Some(Code::NoOffset) {
                tracing::warn!(error = %e, partitions = offsets.count(), "offset commit failed");
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Idle,
    Manual,
    Subscribed,
}

/// A consumer of a Kafka cluster: manual assignment, or a subscription through a consumer
/// group.
pub(super) struct RdConsumer {
    inner: Arc<StreamConsumer<ConsumerCtx>>,
    client: KafkaClient,
    config: ConsumerConfig,
    mode: Mode,
    /// The manual assignment, in the order given.
    manual: Vec<TopicPartition>,
    /// Next offset to read, of partitions with a known one.
    positions: BTreeMap<TopicPartition, i64>,
    /// Positions changed since they were last stored for auto-commit.
    unstored: BTreeSet<TopicPartition>,
    paused: BTreeSet<TopicPartition>,
    /// Paused partitions whose fetched records were dropped: sought back on resume.
    dropped: BTreeSet<TopicPartition>,
    /// A pattern subscription, with when its topics were last resolved.
    pattern: Option<(TopicPattern, tokio::time::Instant, Vec<String>)>,
    /// An error met after records were collected, returned by the next `poll`.
    deferred: Option<Error>,
    last_topic: Option<Arc<str>>,
    closed: bool,
    /// The manual assignment (or a position of it) changed and is given to librdkafka at the
    /// next `poll`, once, however many `assign`s and seeks came before it.
    pending_apply: bool,
    /// librdkafka fetches the manual assignment as last applied: a poll ran since, without a
    /// consumption error. Only then is a seek a seek; otherwise it is a reassignment.
    fetching: bool,
}

impl Drop for RdConsumer {
    /// librdkafka's consumer close (run by rdkafka's drop) waits for the revocation of what is
    /// assigned, polling without a bound: a revocation still deferred, or one announced while it
    /// closes, is carried out at once so that the drop ends.
    fn drop(&mut self) {
        let ctx = self.inner.context();
        ctx.closing.store(true, Ordering::Release);
        ctx.give_up_revoked(&*self.inner);
    }
}

impl std::fmt::Debug for RdConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RdConsumer")
            .field("group_id", &self.config.group_id)
            .field("mode", &self.mode)
            .field("positions", &self.positions)
            .finish_non_exhaustive()
    }
}

impl RdConsumer {
    pub(super) fn new(
        client: KafkaClient,
        rd: ClientConfig,
        config: ConsumerConfig,
    ) -> Result<Self> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(Error::InvalidRequest(
                "a Kafka consumer must be created inside a Tokio runtime".into(),
            ));
        }
        let inner: StreamConsumer<ConsumerCtx> = rd
            .create_with_context(ConsumerCtx::default())
            .map_err(|e| from_kafka("create consumer", e, Subject::none()))?;
        Ok(Self {
            inner: Arc::new(inner),
            client,
            config,
            mode: Mode::Idle,
            manual: Vec::new(),
            positions: BTreeMap::new(),
            unstored: BTreeSet::new(),
            paused: BTreeSet::new(),
            dropped: BTreeSet::new(),
            pattern: None,
            deferred: None,
            last_topic: None,
            closed: false,
            pending_apply: false,
            fetching: false,
        })
    }

    /// The config this consumer was made with.
    pub(super) fn config(&self) -> &ConsumerConfig {
        &self.config
    }

    fn check_open(&self) -> Result<()> {
        ensure_open(self.closed)
    }

    fn group(&self) -> Result<&str> {
        group_of(&self.config)
    }

    fn current_assignment(&self) -> Vec<TopicPartition> {
        match self.mode {
            Mode::Idle => Vec::new(),
            Mode::Manual => self.manual.clone(),
            Mode::Subscribed => match self.inner.assignment() {
                Ok(tpl) => tps_of(&tpl),
                Err(e) => {
                    tracing::warn!(error = %e, "could not read the assignment");
                    Vec::new()
                }
            },
        }
    }

    fn check_assigned(&self, op: &str, tps: &[TopicPartition]) -> Result<()> {
        let assigned = self.current_assignment();
        match tps.iter().find(|tp| !assigned.contains(tp)) {
            Some(tp) => Err(Error::InvalidRequest(format!("{op}: {tp} is not assigned"))),
            None => Ok(()),
        }
    }

    /// Gives librdkafka the manual assignment, at the known positions (else the committed
    /// offset, else `auto.offset.reset`), and pauses what is paused.
    fn apply_manual(&mut self) -> Result<()> {
        if self.manual.is_empty() {
            return self
                .inner
                .unassign()
                .map_err(|e| from_kafka("assign", e, Subject::none()));
        }
        let tpl = tpl_of(self.manual.iter().map(|tp| {
            let at = self
                .positions
                .get(tp)
                .map_or(Offset::Invalid, |o| Offset::Offset(*o));
            (tp, at)
        }))?;
        self.inner
            .assign(&tpl)
            .map_err(|e| from_kafka("assign", e, Subject::none()))?;
        if !self.paused.is_empty() {
            let tpl = tpl_of(self.paused.iter().map(|tp| (tp, Offset::Invalid)))?;
            self.inner
                .pause(&tpl)
                .map_err(|e| from_kafka("pause", e, Subject::none()))?;
        }
        // A partition resumed while the assignment was pending may still carry librdkafka's
        // pause from before.
        let running: Vec<&TopicPartition> = self
            .manual
            .iter()
            .filter(|tp| !self.paused.contains(*tp))
            .collect();
        let tpl = tpl_of(running.into_iter().map(|tp| (tp, Offset::Invalid)))?;
        self.inner
            .resume(&tpl)
            .map_err(|e| from_kafka("resume", e, Subject::none()))?;
        Ok(())
    }

    /// Moves `targets` to `offsets` (numbers): a reassignment when manual, seeks when
    /// subscribed.
    fn move_to(&mut self, offsets: Vec<(TopicPartition, i64)>) -> Result<()> {
        for (tp, o) in &offsets {
            self.positions.insert(tp.clone(), *o);
            self.unstored.insert(tp.clone());
            self.dropped.remove(tp);
        }
        match self.mode {
            // A seek, not a reassignment, where librdkafka is fetching the partition:
            // reassigning stops and restarts every fetcher, and librdkafka (2.12) can assert
            // on a stop still pending from the previous one (confluentinc/librdkafka#5573)
            // when assignments change in quick succession. Before the assignment runs (or
            // after a consumption error stopped a fetcher) a seek could be overtaken by the
            // assignment's own start, so the position goes with the next reassignment.
            Mode::Manual => {
                if self.pending_apply || !self.fetching {
                    self.pending_apply = true;
                    return Ok(());
                }
                for (tp, o) in &offsets {
                    let sought = self.inner.seek(
                        &tp.topic,
                        tp.partition,
                        Offset::Offset(*o),
                        Duration::ZERO,
                    );
                    if let Err(e) = sought {
                        tracing::debug!(%tp, error = %e, "seek refused; reassigning at the position");
                        self.pending_apply = true;
                        self.fetching = false;
                        return Ok(());
                    }
                }
                Ok(())
            }
            Mode::Subscribed => {
                for (tp, o) in offsets {
                    self.inner
                        .seek(&tp.topic, tp.partition, Offset::Offset(o), Duration::ZERO)
                        .map_err(|e| {
                            from_kafka("seek", e, Subject::partition(&tp.topic, tp.partition))
                        })?;
                }
                Ok(())
            }
            Mode::Idle => Ok(()),
        }
    }

    /// Offsets of `tps` by `ListOffsets` "timestamps": a time, or `Beginning`/`End`. `None`
    /// where there is no record at or after the time.
    async fn lookup(
        &self,
        tps: &[TopicPartition],
        at: Offset,
    ) -> Result<Vec<(TopicPartition, Option<i64>)>> {
        if tps.is_empty() {
            return Ok(Vec::new());
        }
        let tpl = tpl_of(tps.iter().map(|tp| (tp, at)))?;
        let inner = Arc::clone(&self.inner);
        let timeout = self.client.timeout();
        let found = blocking(move || {
            inner
                .offsets_for_times(tpl, timeout)
                .map_err(|e| from_kafka("list offsets", e, Subject::none()))
        })
        .await?;
        tps.iter()
            .map(|tp| {
                let e = found
                    .find_partition(&tp.topic, tp.partition)
                    .ok_or_else(|| Error::UnknownPartition {
                        topic: tp.topic.to_string(),
                        partition: tp.partition,
                    })?;
                e.error().map_err(|err| {
                    from_kafka(
                        "list offsets",
                        err,
                        Subject::partition(&tp.topic, tp.partition),
                    )
                })?;
                Ok((
                    tp.clone(),
                    match e.offset() {
                        Offset::Offset(o) => Some(o),
                        _ => None,
                    },
                ))
            })
            .collect()
    }

    /// The log start (`Beginning`) or end (`End`) of `tps`.
    async fn log_bounds(
        &self,
        tps: &[TopicPartition],
        at: Offset,
    ) -> Result<Vec<(TopicPartition, i64)>> {
        self.lookup(tps, at)
            .await?
            .into_iter()
            .map(|(tp, o)| match o {
                Some(o) => Ok((tp, o)),
                None => Err(Error::Kafka {
                    operation: "list offsets",
                    code: Code::NoOffset as i32,
                    message: format!("no offset returned for {tp}"),
                    retriable: true,
                }),
            })
            .collect()
    }

    fn targets(&self, tps: &[TopicPartition]) -> Vec<TopicPartition> {
        if tps.is_empty() {
            self.current_assignment()
        } else {
            tps.to_vec()
        }
    }

    fn topic(&mut self, name: &str) -> Arc<str> {
        match &self.last_topic {
            Some(t) if &**t == name => Arc::clone(t),
            _ => {
                let t: Arc<str> = Arc::from(name);
                self.last_topic = Some(Arc::clone(&t));
                t
            }
        }
    }

    /// Takes a fetched record into `batch`, or drops it if its partition is paused.
    fn accept(&mut self, m: &BorrowedMessage<'_>, batch: &mut PollBatch) {
        // Records come in runs of one partition (a fetched batch): its state is looked up once
        // per run, not per record.
        let same = batch
            .run
            .as_ref()
            .is_some_and(|r| r.tp.partition == m.partition() && &*r.tp.topic == m.topic());
        if !same {
            self.end_run(batch.run.take());
            let tp = TopicPartition {
                topic: self.topic(m.topic()),
                partition: m.partition(),
            };
            let paused = self.paused.contains(&tp);
            if paused {
                self.dropped.insert(tp.clone());
            }
            batch.run = Some(Run {
                tp,
                paused,
                next: None,
            });
        }
        let Some((topic, partition)) = batch
            .run
            .as_ref()
            .filter(|r| !r.paused)
            .map(|r| (Arc::clone(&r.tp.topic), r.tp.partition))
        else {
            return;
        };
        let (timestamp, timestamp_type) = match m.timestamp() {
            Timestamp::CreateTime(t) => (t, TimestampType::CreateTime),
            Timestamp::LogAppendTime(t) => (t, TimestampType::LogAppendTime),
            Timestamp::NotAvailable => (-1, TimestampType::CreateTime),
        };
        let headers = m
            .headers()
            .map(|hs| {
                hs.iter()
                    .map(|h| Header {
                        key: h.key.to_owned(),
                        value: h.value.map(Bytes::copy_from_slice),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let offset = m.offset();
        let key = batch.keep(m.key());
        let value = batch.keep(m.payload());
        batch.spans.push((key, value));
        batch.records.push(ConsumerRecord {
            topic,
            partition,
            offset,
            timestamp,
            timestamp_type,
            key: None,
            value: None,
            headers,
        });
        if let Some(run) = batch.run.as_mut() {
            run.next = Some(offset + 1);
        }
    }

    /// Records where a run of one partition's records ended: its position (and that it is
    /// to be stored for auto-commit).
    fn end_run(&mut self, run: Option<Run>) {
        let Some(Run {
            tp,
            next: Some(next),
            ..
        }) = run
        else {
            return;
        };
        if self.config.enable_auto_commit {
            self.unstored.insert(tp.clone());
        }
        self.positions.insert(tp, next);
    }

    /// The records of a poll, with keys and values sliced from one buffer.
    fn finish(&mut self, mut batch: PollBatch) -> Vec<ConsumerRecord> {
        self.end_run(batch.run.take());
        let bytes = batch.bytes.freeze();
        for (r, (k, v)) in batch.records.iter_mut().zip(batch.spans) {
            r.key = k.map(|k| bytes.slice(k));
            r.value = v.map(|v| bytes.slice(v));
        }
        batch.records
    }

    /// What to do with an error from the queue: `Ok` to go on, `Err` to return it.
    fn consumption_error(&self, e: KafkaError) -> Result<()> {
        let code = code_of(&e);
        let fatal = matches!(e, KafkaError::MessageConsumptionFatal(_));
        match code {
            Some(Code::PartitionEOF) => Ok(()),
            Some(Code::UnknownTopicOrPartition | Code::UnknownTopic | Code::UnknownPartition)
                if self.mode == Mode::Subscribed && !fatal =>
            {
                // Kafka's consumer waits for subscribed topics to appear.
                tracing::warn!(error = %e, "subscribed topic not available");
                Ok(())
            }
            // librdkafka's error names no partition: the first assigned one without a
            // position is the one it could not place.
            Some(Code::AutoOffsetReset) => match self
                .current_assignment()
                .into_iter()
                .find(|tp| self.position(tp).is_none())
            {
                Some(tp) => Err(Error::NoOffsetForPartition { tp }),
                None => Err(Error::Kafka {
                    operation: "poll",
                    code: Code::AutoOffsetReset as i32,
                    message: "a partition has no valid offset and auto.offset.reset is none".into(),
                    retriable: false,
                }),
            },
            Some(c) if !fatal && is_transient(c) => {
                tracing::warn!(error = %e, "consumer error, retrying");
                Ok(())
            }
            _ => Err(from_kafka("poll", e, Subject::none())),
        }
    }

    /// After a poll: forgets revoked partitions, stores positions for auto-commit.
    fn after_poll(&mut self) {
        let revoked = std::mem::take(&mut *self.inner.context().revoked.lock());
        for tp in &revoked {
            self.positions.remove(tp);
            self.unstored.remove(tp);
            self.paused.remove(tp);
            self.dropped.remove(tp);
        }
        if self.config.enable_auto_commit
            && self.config.group_id.is_some()
            && !self.unstored.is_empty()
        {
            let unstored = std::mem::take(&mut self.unstored);
            let stored = tpl_of(
                unstored
                    .iter()
                    .filter_map(|tp| self.positions.get(tp).map(|o| (tp, Offset::Offset(*o)))),
            )
            .and_then(|tpl| {
                self.inner
                    .store_offsets(&tpl)
                    .map_err(|e| from_kafka("store offsets", e, Subject::none()))
            });
            if let Err(e) = stored {
                // A partition revoked meanwhile cannot be stored; the rest may have been.
                tracing::debug!(error = %e, "could not store offsets for auto-commit");
            }
        }
    }

    /// Resolves a pattern subscription to topic names (blocking: metadata).
    fn resolve_pattern(
        inner: &StreamConsumer<ConsumerCtx>,
        pattern: &TopicPattern,
        timeout: Duration,
    ) -> Result<Vec<String>> {
        let md = inner
            .fetch_metadata(None, timeout)
            .map_err(|e| from_kafka("subscribe_pattern", e, Subject::none()))?;
        let mut topics: Vec<String> = md
            .topics()
            .iter()
            .map(|t| t.name())
            .filter(|t| pattern.matches(t))
            .map(str::to_owned)
            .collect();
        topics.sort();
        Ok(topics)
    }

    fn subscribe_names(&self, topics: &[String]) -> Result<()> {
        if topics.is_empty() {
            self.inner.unsubscribe();
            return Ok(());
        }
        let names: Vec<&str> = topics.iter().map(String::as_str).collect();
        self.inner
            .subscribe(&names)
            .map_err(|e| from_kafka("subscribe", e, Subject::none()))
    }

    /// Re-resolves a pattern subscription when it is due.
    async fn refresh_pattern(&mut self) -> Result<()> {
        let Some((pattern, at, _)) = &self.pattern else {
            return Ok(());
        };
        if at.elapsed() < PATTERN_REFRESH {
            return Ok(());
        }
        let (inner, pattern, timeout) = (
            Arc::clone(&self.inner),
            pattern.clone(),
            self.client.timeout(),
        );
        let resolved = {
            let pattern = pattern.clone();
            blocking(move || Self::resolve_pattern(&inner, &pattern, timeout)).await?
        };
        let changed = self
            .pattern
            .as_ref()
            .is_some_and(|(_, _, old)| *old != resolved);
        if changed {
            tracing::info!(
                pattern = pattern.as_str(),
                topics = resolved.len(),
                "pattern subscription changed"
            );
            self.subscribe_names(&resolved)?;
        }
        self.pattern = Some((pattern, tokio::time::Instant::now(), resolved));
        Ok(())
    }

    /// Serves librdkafka's queue (rebalance callbacks) until nothing is assigned any more,
    /// dropping records, for up to [`LEAVE_BOUND`].
    async fn serve_until_unassigned(&mut self) {
        let deadline = tokio::time::Instant::now() + LEAVE_BOUND;
        let inner = Arc::clone(&self.inner);
        loop {
            let assigned = inner.assignment().map(|a| a.count()).unwrap_or(0);
            if assigned == 0 || tokio::time::Instant::now() >= deadline {
                break;
            }
            let wait = tokio::time::Instant::now() + Duration::from_millis(100);
            if let Ok(Err(e)) = tokio::time::timeout_at(wait.min(deadline), inner.recv()).await {
                tracing::debug!(error = %e, "error while leaving the group");
            }
            // Leaving: a revocation is carried out at once.
            inner.context().give_up_revoked(&*inner);
        }
        self.after_poll();
    }

    /// Closes librdkafka's consumer, which leaves the group and waits for the coordinator's
    /// answer, as Kafka's `close` does: a describe right after sees the member gone. It runs on
    /// a thread of its own, waited for up to [`LEAVE_BOUND`]: librdkafka's close has no bound
    /// of its own, and a runtime's blocking pool would wait for it at shutdown.
    ///
    /// rdkafka wraps no blocking close for a `StreamConsumer` (only its drop closes, polling
    /// without a bound), hence the one call into librdkafka's C API in this crate.
    #[allow(unsafe_code)]
    async fn leave_group(&self) {
        let inner = Arc::clone(&self.inner);
        let (tx, rx) = tokio::sync::oneshot::channel();
        let spawned = std::thread::Builder::new()
            .name("sluice-consumer-close".into())
            .spawn(move || {
                // SAFETY: the pointer is the live handle `inner` owns, kept alive by this
                // closure; rd_kafka_consumer_close is thread-safe and only closes the consumer
                // (rdkafka's drop later finds it closed and destroys it).
                let err = unsafe {
                    rdkafka::bindings::rd_kafka_consumer_close(inner.client().native_ptr())
                };
                let _ = tx.send(err);
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "could not start the consumer's close");
            return;
        }
        match tokio::time::timeout(LEAVE_BOUND, rx).await {
            Ok(Ok(RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR)) => {}
            Ok(Ok(err)) => tracing::debug!(error = ?err, "closing the consumer"),
            Ok(Err(_)) => {}
            Err(_) => tracing::warn!(
                bound_ms = LEAVE_BOUND.as_millis(),
                "the consumer did not close in time; its group leave goes on in the background"
            ),
        }
    }

    /// The group and the offsets a commit sends: `offsets`, or the position of every assigned
    /// partition; `None` when there is nothing to commit.
    fn commit_list(
        &self,
        offsets: Option<Vec<(TopicPartition, i64)>>,
    ) -> Result<Option<(String, TopicPartitionList)>> {
        self.check_open()?;
        let group = self.group()?.to_owned();
        let offsets = match offsets {
            Some(o) => o,
            None => self
                .current_assignment()
                .into_iter()
                .filter_map(|tp| self.positions.get(&tp).map(|o| (tp, *o)))
                .collect(),
        };
        if offsets.is_empty() {
            return Ok(None);
        }
        let tpl = tpl_of(offsets.iter().map(|(tp, o)| (tp, Offset::Offset(*o))))?;
        Ok(Some((group, tpl)))
    }

    /// Commits and waits for the coordinator's answer, off the async workers.
    async fn commit(&mut self, offsets: Option<Vec<(TopicPartition, i64)>>) -> Result<()> {
        let Some((group, tpl)) = self.commit_list(offsets)? else {
            return Ok(());
        };
        let inner = Arc::clone(&self.inner);
        blocking(move || {
            inner
                .commit(&tpl, CommitMode::Sync)
                .map_err(|e| from_kafka("commit_sync", e, Subject::group(&group)))
        })
        .await
    }
}

/// Errors librdkafka recovers from by itself.
fn is_transient(code: Code) -> bool {
    matches!(
        code,
        Code::BrokerTransportFailure
            | Code::AllBrokersDown
            | Code::Resolve
            | Code::TimedOutQueue
            | Code::OperationTimedOut
            | Code::RequestTimedOut
            | Code::NetworkException
            | Code::LeaderNotAvailable
            | Code::NotLeaderForPartition
            | Code::CoordinatorNotAvailable
            | Code::NotCoordinator
            | Code::CoordinatorLoadInProgress
            | Code::WaitingForCoordinator
            | Code::Retry
            | Code::PollExceeded
    )
}

/// A run of records of one partition within a poll.
struct Run {
    tp: TopicPartition,
    paused: bool,
    /// The offset after the run's last record taken.
    next: Option<i64>,
}

/// Where a key or value is in [`PollBatch::bytes`] (`None`: null).
type Span = Option<Range<usize>>;

/// What one `poll` collects: records whose keys and values are copied out of librdkafka's
/// buffers into one buffer, sliced at the end (one allocation per poll, not two per record).
#[derive(Default)]
struct PollBatch {
    records: Vec<ConsumerRecord>,
    bytes: BytesMut,
    /// Where each record's key and value are in `bytes`.
    spans: Vec<(Span, Span)>,
    run: Option<Run>,
}

impl PollBatch {
    fn keep(&mut self, data: Option<&[u8]>) -> Span {
        let data = data?;
        let start = self.bytes.len();
        self.bytes.extend_from_slice(data);
        Some(start..self.bytes.len())
    }
}

/// One record (or error) if librdkafka's queue has one ready now.
fn ready_now<'a>(
    stream: &mut MessageStream<'a, ConsumerCtx>,
) -> Option<KafkaResult<BorrowedMessage<'a>>> {
    match Pin::new(stream).poll_next(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(r) => r,
        Poll::Pending => None,
    }
}

/// The next record (or error), waiting for one; `None` once a rebalance served meanwhile
/// announced a revocation (the poll returns for the caller to act on it). The stream never
/// ends while the consumer lives; if it did, that reads as the consumer being closed.
async fn next<'a>(
    stream: &mut MessageStream<'a, ConsumerCtx>,
    ctx: &ConsumerCtx,
) -> Option<KafkaResult<BorrowedMessage<'a>>> {
    std::future::poll_fn(|cx| match Pin::new(&mut *stream).poll_next(cx) {
        Poll::Ready(r) => Poll::Ready(Some(r.unwrap_or(Err(KafkaError::Canceled)))),
        // A rebalance event was served (the stream wakes itself after one).
        Poll::Pending if ctx.revocation_deferred() => Poll::Ready(None),
        Poll::Pending => Poll::Pending,
    })
    .await
}

impl Consumer for RdConsumer {
    fn assign(&mut self, partitions: Vec<TopicPartition>) -> Result<()> {
        self.check_open()?;
        if self.mode == Mode::Subscribed {
            return Err(Error::InvalidRequest(
                "assign: the consumer is subscribed; unsubscribe first".into(),
            ));
        }
        let mut seen = BTreeSet::new();
        let partitions: Vec<TopicPartition> = partitions
            .into_iter()
            .filter(|tp| seen.insert(tp.clone()))
            .collect();
        self.positions.retain(|tp, _| seen.contains(tp));
        self.unstored.retain(|tp| seen.contains(tp));
        self.paused.retain(|tp| seen.contains(tp));
        self.dropped.retain(|tp| seen.contains(tp));
        self.mode = if partitions.is_empty() {
            Mode::Idle
        } else {
            Mode::Manual
        };
        self.manual = partitions;
        if self.manual.is_empty() {
            // Giving partitions up happens now (nothing fetches them after assign returns).
            self.pending_apply = false;
            return self.apply_manual();
        }
        self.pending_apply = true;
        self.fetching = false;
        Ok(())
    }

    fn assignment(&self) -> Vec<TopicPartition> {
        self.current_assignment()
    }

    fn seek(&mut self, tp: &TopicPartition, offset: i64) -> Result<()> {
        self.check_open()?;
        if offset < 0 {
            return Err(Error::InvalidRequest(format!(
                "seek: offset {offset} of {tp} is negative"
            )));
        }
        self.check_assigned("seek", std::slice::from_ref(tp))?;
        self.move_to(vec![(tp.clone(), offset)])
    }

    async fn seek_to_beginning(&mut self, tps: &[TopicPartition]) -> Result<()> {
        self.check_open()?;
        let targets = self.targets(tps);
        self.check_assigned("seek_to_beginning", &targets)?;
        let offsets = self.log_bounds(&targets, Offset::Beginning).await?;
        self.move_to(offsets)
    }

    async fn seek_to_end(&mut self, tps: &[TopicPartition]) -> Result<()> {
        self.check_open()?;
        let targets = self.targets(tps);
        self.check_assigned("seek_to_end", &targets)?;
        let offsets = self.log_bounds(&targets, Offset::End).await?;
        self.move_to(offsets)
    }

    async fn seek_to_timestamp(&mut self, ts: i64) -> Result<()> {
        self.check_open()?;
        if ts < 0 {
            return Err(Error::InvalidRequest(format!(
                "seek_to_timestamp: {ts} is negative"
            )));
        }
        let targets = self.current_assignment();
        let found = self.lookup(&targets, Offset::Offset(ts)).await?;
        let past: Vec<TopicPartition> = found
            .iter()
            .filter(|(_, o)| o.is_none())
            .map(|(tp, _)| tp.clone())
            .collect();
        let ends: BTreeMap<TopicPartition, i64> = self
            .log_bounds(&past, Offset::End)
            .await?
            .into_iter()
            .collect();
        let offsets = found
            .into_iter()
            .filter_map(|(tp, o)| {
                let o = o.or_else(|| ends.get(&tp).copied())?;
                Some((tp, o))
            })
            .collect();
        self.move_to(offsets)
    }

    /// librdkafka's offsets_for_times: one ListOffsets per leader, with the consumer's
    /// `isolation.level`.
    async fn beginning_offsets(
        &mut self,
        tps: &[TopicPartition],
    ) -> Result<Vec<(TopicPartition, i64)>> {
        self.check_open()?;
        self.log_bounds(tps, Offset::Beginning).await
    }

    async fn end_offsets(&mut self, tps: &[TopicPartition]) -> Result<Vec<(TopicPartition, i64)>> {
        self.check_open()?;
        self.log_bounds(tps, Offset::End).await
    }

    fn position(&self, tp: &TopicPartition) -> Option<i64> {
        if let Some(o) = self.positions.get(tp) {
            return Some(*o);
        }
        if self.mode != Mode::Subscribed {
            return None;
        }
        let tpl = self.inner.position().ok()?;
        match tpl.find_partition(&tp.topic, tp.partition)?.offset() {
            Offset::Offset(o) => Some(o),
            _ => None,
        }
    }

    fn pause(&mut self, tps: &[TopicPartition]) {
        let assigned = self.current_assignment();
        let tps: Vec<&TopicPartition> = tps.iter().filter(|tp| assigned.contains(tp)).collect();
        if tps.is_empty() {
            return;
        }
        if self.pending_apply {
            // Paused when the assignment is given to librdkafka.
            self.paused.extend(tps.into_iter().cloned());
            return;
        }
        match tpl_of(tps.iter().map(|tp| (*tp, Offset::Invalid))).and_then(|tpl| {
            self.inner
                .pause(&tpl)
                .map_err(|e| from_kafka("pause", e, Subject::none()))
        }) {
            Ok(()) => self.paused.extend(tps.into_iter().cloned()),
            Err(e) => tracing::warn!(error = %e, "could not pause partitions"),
        }
    }

    fn resume(&mut self, tps: &[TopicPartition]) {
        let tps: Vec<TopicPartition> = tps
            .iter()
            .filter(|tp| self.paused.contains(*tp))
            .cloned()
            .collect();
        if tps.is_empty() {
            return;
        }
        for tp in &tps {
            self.paused.remove(tp);
        }
        if self.pending_apply {
            for tp in &tps {
                self.dropped.remove(tp);
            }
            return;
        }
        let resumed = tpl_of(tps.iter().map(|tp| (tp, Offset::Invalid))).and_then(|tpl| {
            self.inner
                .resume(&tpl)
                .map_err(|e| from_kafka("resume", e, Subject::none()))
        });
        if let Err(e) = resumed {
            tracing::warn!(error = %e, "could not resume partitions");
        }
        // Records dropped while paused are fetched again from the position.
        let back: Vec<(TopicPartition, i64)> = tps
            .iter()
            .filter(|tp| self.dropped.contains(*tp))
            .filter_map(|tp| self.positions.get(tp).map(|o| (tp.clone(), *o)))
            .collect();
        if !back.is_empty()
            && let Err(e) = self.move_to(back)
        {
            tracing::warn!(error = %e, "could not seek resumed partitions back");
        }
        for tp in &tps {
            self.dropped.remove(tp);
        }
    }

    async fn poll(&mut self, timeout: Duration) -> Result<Vec<ConsumerRecord>> {
        self.check_open()?;
        if let Some(e) = self.deferred.take() {
            return Err(e);
        }
        if self.pending_apply && self.mode == Mode::Manual {
            self.apply_manual()?;
        }
        self.pending_apply = false;
        // A revocation announced by the last poll is carried out now.
        self.inner.context().give_up_revoked(&*self.inner);
        self.refresh_pattern().await?;
        let deadline = tokio::time::Instant::now() + timeout;
        let max = usize::try_from(self.config.max_poll_records)
            .unwrap_or(usize::MAX)
            .max(1);
        let inner = Arc::clone(&self.inner);
        // One stream for the whole poll: its waker slot is registered once, not per record.
        let mut stream = inner.stream();
        let mut batch = PollBatch::default();
        let mut failed = None;
        let ctx = Arc::clone(inner.context());
        'poll: loop {
            while batch.records.len() < max {
                match ready_now(&mut stream) {
                    Some(Ok(m)) => self.accept(&m, &mut batch),
                    Some(Err(e)) => {
                        if let Err(e) = self.consumption_error(e) {
                            failed = Some(e);
                            break 'poll;
                        }
                    }
                    None => break,
                }
                if ctx.revocation_deferred() {
                    break 'poll;
                }
            }
            if !batch.records.is_empty()
                || ctx.revocation_deferred()
                || tokio::time::Instant::now() >= deadline
            {
                break;
            }
            match tokio::time::timeout_at(deadline, next(&mut stream, &ctx)).await {
                Err(_) | Ok(None) => break,
                Ok(Some(Ok(m))) => self.accept(&m, &mut batch),
                Ok(Some(Err(e))) => {
                    if let Err(e) = self.consumption_error(e) {
                        failed = Some(e);
                        break;
                    }
                }
            }
        }
        let out = self.finish(batch);
        self.after_poll();
        // A consumption error (auto.offset.reset=none, say) may have stopped a fetcher: the
        // next seek reassigns.
        self.fetching = self.mode == Mode::Manual && failed.is_none();
        match failed {
            Some(e) if out.is_empty() => Err(e),
            Some(e) => {
                self.deferred = Some(e);
                Ok(out)
            }
            None => Ok(out),
        }
    }

    fn subscribe(&mut self, topics: Vec<String>) -> Result<()> {
        self.check_open()?;
        self.group()?;
        if self.mode == Mode::Manual {
            return Err(Error::InvalidRequest(
                "subscribe: the consumer has a manual assignment; assign nothing first".into(),
            ));
        }
        let mut topics = topics;
        topics.sort();
        topics.dedup();
        self.subscribe_names(&topics)?;
        self.pattern = None;
        self.mode = if topics.is_empty() {
            Mode::Idle
        } else {
            Mode::Subscribed
        };
        Ok(())
    }

    async fn subscribe_pattern(&mut self, pattern: TopicPattern) -> Result<()> {
        self.check_open()?;
        self.group()?;
        if self.mode == Mode::Manual {
            return Err(Error::InvalidRequest(
                "subscribe_pattern: the consumer has a manual assignment; assign nothing first"
                    .into(),
            ));
        }
        let (inner, timeout) = (Arc::clone(&self.inner), self.client.timeout());
        let resolve = pattern.clone();
        let topics = blocking(move || Self::resolve_pattern(&inner, &resolve, timeout)).await?;
        self.subscribe_names(&topics)?;
        self.pattern = Some((pattern, tokio::time::Instant::now(), topics));
        self.mode = Mode::Subscribed;
        Ok(())
    }

    async fn unsubscribe(&mut self) -> Result<()> {
        self.check_open()?;
        match self.mode {
            Mode::Subscribed => {
                self.inner.unsubscribe();
                self.serve_until_unassigned().await;
            }
            Mode::Manual => {
                self.manual.clear();
                self.apply_manual()?;
            }
            Mode::Idle => {}
        }
        self.mode = Mode::Idle;
        self.pattern = None;
        self.positions.clear();
        self.unstored.clear();
        self.paused.clear();
        self.dropped.clear();
        Ok(())
    }

    async fn commit_sync(&mut self, offsets: Option<Vec<(TopicPartition, i64)>>) -> Result<()> {
        self.commit(offsets).await
    }

    fn commit_async(&mut self, offsets: Option<Vec<(TopicPartition, i64)>>) -> Result<()> {
        let Some((group, tpl)) = self.commit_list(offsets)? else {
            return Ok(());
        };
        self.inner
            .commit(&tpl, CommitMode::Async)
            .map_err(|e| from_kafka("commit_async", e, Subject::group(&group)))
    }

    async fn committed(&mut self, tps: &[TopicPartition]) -> Result<Vec<Option<i64>>> {
        self.check_open()?;
        let group = self.group()?.to_owned();
        if tps.is_empty() {
            return Ok(Vec::new());
        }
        let tpl = tpl_of(tps.iter().map(|tp| (tp, Offset::Invalid)))?;
        let (inner, timeout) = (Arc::clone(&self.inner), self.client.timeout());
        let found = blocking(move || {
            inner
                .committed_offsets(tpl, timeout)
                .map_err(|e| from_kafka("committed", e, Subject::group(&group)))
        })
        .await?;
        Ok(tps
            .iter()
            .map(|tp| {
                match found
                    .find_partition(&tp.topic, tp.partition)
                    .map(|e| e.offset())
                {
                    Some(Offset::Offset(o)) => Some(o),
                    _ => None,
                }
            })
            .collect())
    }

    /// The group and librdkafka's own metadata object (which holds the generation and member
    /// id; librdkafka does not report them otherwise, so the public fields say -1 and "").
    fn group_metadata(&self) -> Option<ConsumerGroupMetadata> {
        let group = self.config.group_id.as_ref()?;
        let metadata = ConsumerGroupMetadata::new(group.clone());
        match self.inner.group_metadata() {
            Some(rd) => Some(metadata.with_handle(Arc::new(rd))),
            None => Some(metadata),
        }
    }

    fn rebalance_events(&mut self) -> Vec<RebalanceEvent> {
        std::mem::take(&mut *self.inner.context().events.lock())
    }

    fn set_rebalance_listener(&mut self, listener: Box<dyn RebalanceListener>) {
        *self.inner.context().listener.lock() = Some(listener);
    }

    async fn close(&mut self) -> Result<()> {
        if self.closed {
            return Ok(());
        }
        self.inner.context().closing.store(true, Ordering::Release);
        let mut result = Ok(());
        if self.mode == Mode::Manual
            && self.config.enable_auto_commit
            && self.config.group_id.is_some()
        {
            result = self.commit(None).await;
        }
        // Subscribed: librdkafka commits the stored positions on revocation (auto-commit).
        let left = self.unsubscribe().await;
        if self.config.group_id.is_some() {
            self.leave_group().await;
        }
        self.closed = true;
        result.and(left)
    }
}

/// `Closed` once a consumer engine was closed (both engines check it first).
pub(super) fn ensure_open(closed: bool) -> Result<()> {
    if closed {
        Err(Error::Closed("consumer"))
    } else {
        Ok(())
    }
}

/// The `group.id` of `config`, or [`Error::InvalidGroupId`] without one (what group calls of
/// both consumers need).
pub(super) fn group_of(config: &ConsumerConfig) -> Result<&str> {
    config
        .group_id
        .as_deref()
        .ok_or_else(|| Error::InvalidGroupId(String::new()))
}

/// A consumer of a Kafka cluster: librdkafka's, or with `sluice.consumer.engine=native`
/// Sluice's own for manually assigned partitions (see [`super::CONSUMER_ENGINE_PROPERTY`]).
#[derive(Debug)]
pub struct KafkaConsumer(Engine);

#[derive(Debug)]
enum Engine {
    Librdkafka(Box<RdConsumer>),
    Native(Box<NativeConsumer>),
}

impl KafkaConsumer {
    pub(super) fn librdkafka(c: RdConsumer) -> Self {
        Self(Engine::Librdkafka(Box::new(c)))
    }

    pub(super) fn native(c: NativeConsumer) -> Self {
        Self(Engine::Native(Box::new(c)))
    }

    /// Whether this is Sluice's own consumer rather than librdkafka's.
    pub fn is_native(&self) -> bool {
        matches!(self.0, Engine::Native(_))
    }

    /// The config this consumer was made with.
    pub fn config(&self) -> &ConsumerConfig {
        match &self.0 {
            Engine::Librdkafka(c) => c.config(),
            Engine::Native(c) => c.config(),
        }
    }
}

impl Consumer for KafkaConsumer {
    fn assign(&mut self, partitions: Vec<TopicPartition>) -> Result<()> {
        match &mut self.0 {
            Engine::Librdkafka(c) => c.assign(partitions),
            Engine::Native(c) => c.assign(partitions),
        }
    }

    fn assignment(&self) -> Vec<TopicPartition> {
        match &self.0 {
            Engine::Librdkafka(c) => c.assignment(),
            Engine::Native(c) => c.assignment(),
        }
    }

    fn seek(&mut self, tp: &TopicPartition, offset: i64) -> Result<()> {
        match &mut self.0 {
            Engine::Librdkafka(c) => c.seek(tp, offset),
            Engine::Native(c) => c.seek(tp, offset),
        }
    }

    async fn seek_to_beginning(&mut self, tps: &[TopicPartition]) -> Result<()> {
        match &mut self.0 {
            Engine::Librdkafka(c) => c.seek_to_beginning(tps).await,
            Engine::Native(c) => c.seek_to_beginning(tps).await,
        }
    }

    async fn seek_to_end(&mut self, tps: &[TopicPartition]) -> Result<()> {
        match &mut self.0 {
            Engine::Librdkafka(c) => c.seek_to_end(tps).await,
            Engine::Native(c) => c.seek_to_end(tps).await,
        }
    }

    async fn seek_to_timestamp(&mut self, ts: i64) -> Result<()> {
        match &mut self.0 {
            Engine::Librdkafka(c) => c.seek_to_timestamp(ts).await,
            Engine::Native(c) => c.seek_to_timestamp(ts).await,
        }
    }

    async fn beginning_offsets(
        &mut self,
        tps: &[TopicPartition],
    ) -> Result<Vec<(TopicPartition, i64)>> {
        match &mut self.0 {
            Engine::Librdkafka(c) => c.beginning_offsets(tps).await,
            Engine::Native(c) => c.offsets_at(tps, -2).await,
        }
    }

    async fn end_offsets(&mut self, tps: &[TopicPartition]) -> Result<Vec<(TopicPartition, i64)>> {
        match &mut self.0 {
            Engine::Librdkafka(c) => c.end_offsets(tps).await,
            Engine::Native(c) => c.offsets_at(tps, -1).await,
        }
    }

    fn position(&self, tp: &TopicPartition) -> Option<i64> {
        match &self.0 {
            Engine::Librdkafka(c) => c.position(tp),
            Engine::Native(c) => c.position(tp),
        }
    }

    fn pause(&mut self, tps: &[TopicPartition]) {
        match &mut self.0 {
            Engine::Librdkafka(c) => c.pause(tps),
            Engine::Native(c) => c.pause(tps),
        }
    }

    fn resume(&mut self, tps: &[TopicPartition]) {
        match &mut self.0 {
            Engine::Librdkafka(c) => c.resume(tps),
            Engine::Native(c) => c.resume(tps),
        }
    }

    async fn poll(&mut self, timeout: Duration) -> Result<Vec<ConsumerRecord>> {
        match &mut self.0 {
            Engine::Librdkafka(c) => c.poll(timeout).await,
            Engine::Native(c) => c.poll(timeout).await,
        }
    }

    fn subscribe(&mut self, topics: Vec<String>) -> Result<()> {
        match &mut self.0 {
            Engine::Librdkafka(c) => c.subscribe(topics),
            Engine::Native(c) => c.subscribe(topics),
        }
    }

    async fn subscribe_pattern(&mut self, pattern: TopicPattern) -> Result<()> {
        match &mut self.0 {
            Engine::Librdkafka(c) => c.subscribe_pattern(pattern).await,
            Engine::Native(c) => c.subscribe_pattern(pattern),
        }
    }

    async fn unsubscribe(&mut self) -> Result<()> {
        match &mut self.0 {
            Engine::Librdkafka(c) => c.unsubscribe().await,
            // Never subscribed: nothing to leave.
            Engine::Native(_) => Ok(()),
        }
    }

    async fn commit_sync(&mut self, offsets: Option<Vec<(TopicPartition, i64)>>) -> Result<()> {
        match &mut self.0 {
            Engine::Librdkafka(c) => c.commit_sync(offsets).await,
            Engine::Native(c) => c.commit_sync(offsets).await,
        }
    }

    fn commit_async(&mut self, offsets: Option<Vec<(TopicPartition, i64)>>) -> Result<()> {
        match &mut self.0 {
            Engine::Librdkafka(c) => c.commit_async(offsets),
            Engine::Native(c) => c.commit_async(offsets),
        }
    }

    async fn committed(&mut self, tps: &[TopicPartition]) -> Result<Vec<Option<i64>>> {
        match &mut self.0 {
            Engine::Librdkafka(c) => c.committed(tps).await,
            Engine::Native(c) => c.committed(tps).await,
        }
    }

    fn group_metadata(&self) -> Option<ConsumerGroupMetadata> {
        match &self.0 {
            Engine::Librdkafka(c) => c.group_metadata(),
            // No membership: the metadata from outside the group.
            Engine::Native(c) => c.config().group_id.clone().map(ConsumerGroupMetadata::new),
        }
    }

    fn rebalance_events(&mut self) -> Vec<RebalanceEvent> {
        match &mut self.0 {
            Engine::Librdkafka(c) => c.rebalance_events(),
            // No membership, no rebalances.
            Engine::Native(_) => Vec::new(),
        }
    }

    fn set_rebalance_listener(&mut self, listener: Box<dyn RebalanceListener>) {
        match &mut self.0 {
            Engine::Librdkafka(c) => c.set_rebalance_listener(listener),
            Engine::Native(c) => c.set_rebalance_listener(listener),
        }
    }

    async fn close(&mut self) -> Result<()> {
        match &mut self.0 {
            Engine::Librdkafka(c) => c.close().await,
            Engine::Native(c) => c.close().await,
        }
    }
}
