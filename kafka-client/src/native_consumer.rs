//! Sluice's own Kafka consumer (`sluice.consumer.engine=native`) for manually assigned
//! partitions: Fetch requests to each partition's leader, the stored batches of the response
//! decoded where they lie (`client::fetched`, shared with the embedded consumer), committed
//! offsets of `group.id` through the group coordinator (OffsetCommit/OffsetFetch from outside
//! the membership, as Kafka's consumer commits for an assignment).
//!
//! Group subscriptions (membership, assignors, rebalances) are librdkafka's: `subscribe` on a
//! native consumer is refused, naming the engine that has them.
//!
//! ```text
//! poll() -> buffered records? return up to max.poll.records
//!        -> positions unknown: committed offset (group.id), else auto.offset.reset (ListOffsets)
//!        -> Fetch per leader (fetch.max.wait.ms, fetch.min.bytes, max.partition.fetch.bytes,
//!           isolation.level) -> take_records -> buffered
//! ```
//!
//! Why a consumer besides librdkafka's: on a small machine librdkafka's per-message cost (an
//! op per record, clock reads per poll, a copy of each key and value) bounds throughput near a
//! million records per second; decoding the fetched batches in place costs a fraction of it.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{BrokerId, FetchRequest, MetadataRequest};
use rustc_hash::FxHashMap as HashMap;
use tokio::time::Instant;

use super::wire::{
    Conn, Wire, broker_addr, by_topic, code_error, is_leader_moved, metadata_request,
};
use sluice_client::config::{AutoOffsetReset, ConsumerConfig, IsolationLevel};
use sluice_client::fetched::{reassign, take_records};
use sluice_client::{ConsumerRecord, RebalanceListener, TopicPattern};
use sluice_client::{Error, Result, TopicPartition};

const OPERATION: &str = "poll";
/// The consumer's name in its errors.
const NATIVE: &str = "the native Kafka consumer";
/// Fetch versions spoken: up to the last that names topics (v13 addresses them by id).
const FETCH_VERSIONS: std::ops::RangeInclusive<i16> = 4..=12;
/// Pause after a fetch round that failed (no leader, a lost connection).
const RETRY_BACKOFF: Duration = Duration::from_millis(100);

#[derive(Debug, Default, Clone, Copy)]
struct Part {
    /// The next offset `poll` returns.
    position: Option<i64>,
    /// The next offset to fetch (past what is buffered).
    fetch_offset: Option<i64>,
    paused: bool,
}

/// A consumer of manually assigned partitions speaking the Kafka protocol itself.
pub(super) struct NativeConsumer {
    config: ConsumerConfig,
    wire: Wire,
    timeout: Duration,
    brokers: HashMap<i32, String>,
    leaders: HashMap<TopicPartition, i32>,
    stale: bool,
    conns: HashMap<i32, Conn>,
    parts: BTreeMap<TopicPartition, Part>,
    buffered: VecDeque<ConsumerRecord>,
    listener: Option<Box<dyn RebalanceListener>>,
    last_commit: Instant,
    closed: bool,
}

impl std::fmt::Debug for NativeConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NativeConsumer")
            .field("group_id", &self.config.group_id)
            .field("assignment", &self.parts.keys().collect::<Vec<_>>())
            .field("buffered", &self.buffered.len())
            .finish_non_exhaustive()
    }
}

/// Where `auto.offset.reset` puts a partition without a valid position.
async fn reset_offset(wire: &Wire, reset: AutoOffsetReset, tp: &TopicPartition) -> Result<i64> {
    match reset {
        AutoOffsetReset::Earliest => Ok(wire.list_offset(tp, -2).await?.0),
        AutoOffsetReset::Latest => Ok(wire.list_offset(tp, -1).await?.0),
        AutoOffsetReset::None => Err(Error::NoOffsetForPartition { tp: tp.clone() }),
    }
}

fn unsupported(operation: &'static str) -> Error {
    Error::Unsupported {
        operation,
        client: NATIVE,
        reason: "group subscriptions are librdkafka's: use sluice.consumer.engine=librdkafka"
            .into(),
    }
}

impl NativeConsumer {
    pub(super) fn new(wire: Wire, config: ConsumerConfig, timeout: Duration) -> Self {
        Self {
            config,
            wire,
            timeout,
            brokers: HashMap::default(),
            leaders: HashMap::default(),
            stale: true,
            conns: HashMap::default(),
            parts: BTreeMap::new(),
            buffered: VecDeque::new(),
            listener: None,
            last_commit: Instant::now(),
            closed: false,
        }
    }

    pub(super) fn config(&self) -> &ConsumerConfig {
        &self.config
    }

    fn check_open(&self) -> Result<()> {
        super::consumer::ensure_open(self.closed)
    }

    fn group(&self) -> Result<&str> {
        super::consumer::group_of(&self.config)
    }

    fn part(&mut self, tp: &TopicPartition) -> Result<&mut Part> {
        self.parts
            .get_mut(tp)
            .ok_or_else(|| Error::InvalidRequest(format!("partition {tp} is not assigned")))
    }

    /// Drops the buffered records of `tp`; its next fetch starts at its position.
    fn forget_buffered(&mut self, tp: &TopicPartition) {
        self.buffered
            .retain(|r| r.partition != tp.partition || r.topic != tp.topic);
        if let Some(p) = self.parts.get_mut(tp) {
            p.fetch_offset = p.position;
        }
    }

    fn targets(&self, tps: &[TopicPartition]) -> Vec<TopicPartition> {
        if tps.is_empty() {
            self.parts.keys().cloned().collect()
        } else {
            tps.to_vec()
        }
    }

    /// Moves `tps` to the offsets ListOffsets gives for `timestamp` (-2 earliest, -1 latest;
    /// a time with no later record: the log end).
    async fn seek_by(&mut self, tps: &[TopicPartition], timestamp: i64) -> Result<()> {
        for tp in self.targets(tps) {
            self.part(&tp)?;
            let (mut offset, _) = self.wire.list_offset(&tp, timestamp).await?;
            if offset < 0 {
                offset = self.wire.list_offset(&tp, -1).await?.0;
            }
            self.seek_to(&tp, offset)?;
        }
        Ok(())
    }

    fn seek_to(&mut self, tp: &TopicPartition, offset: i64) -> Result<()> {
        let p = self.part(tp)?;
        p.position = Some(offset);
        p.fetch_offset = Some(offset);
        self.forget_buffered(tp);
        Ok(())
    }

    /// Positions for partitions without one: the group's committed offset, else
    /// `auto.offset.reset`.
    async fn resolve_positions(&mut self) -> Result<()> {
        let unknown: Vec<TopicPartition> = self
            .parts
            .iter()
            .filter(|(_, p)| p.position.is_none())
            .map(|(tp, _)| tp.clone())
            .collect();
        if unknown.is_empty() {
            return Ok(());
        }
        let committed = match &self.config.group_id {
            Some(g) => self.wire.fetch_offsets(g, &unknown).await?,
            None => vec![None; unknown.len()],
        };
        for (tp, committed) in unknown.into_iter().zip(committed) {
            let offset = match committed {
                Some(o) => o,
                None => reset_offset(&self.wire, self.config.auto_offset_reset, &tp).await?,
            };
            self.seek_to(&tp, offset)?;
        }
        Ok(())
    }

    /// Leaders of the assigned partitions.
    async fn refresh_metadata(&mut self) -> Result<()> {
        let mut topics: Vec<Arc<str>> = self.parts.keys().map(|tp| Arc::clone(&tp.topic)).collect();
        topics.dedup();
        let addr = self
            .wire
            .bootstrap_servers()
            .first()
            .cloned()
            .unwrap_or_default();
        let mut last = None;
        for addr in self
            .wire
            .bootstrap_servers()
            .iter()
            .chain(self.brokers.values())
        {
            match Conn::open(addr, self.timeout, OPERATION).await {
                Ok(mut conn) => {
                    let version = conn.version::<MetadataRequest>(OPERATION, 4..=12)?;
                    let request = metadata_request(topics.iter().map(|t| &**t), false);
                    let r = conn.call(&request, version).await?;
                    self.brokers = r
                        .brokers
                        .iter()
                        .map(|b| (b.node_id.0, broker_addr(b)))
                        .collect();
                    self.leaders.clear();
                    for t in &r.topics {
                        let Some(name) = &t.name else { continue };
                        for p in &t.partitions {
                            if p.error_code == 0 {
                                self.leaders.insert(
                                    TopicPartition::new(name.0.as_str(), p.partition_index),
                                    p.leader_id.0,
                                );
                            }
                        }
                    }
                    self.stale = false;
                    return Ok(());
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| Error::Timeout(format!("{OPERATION}: no broker at {addr}"))))
    }

    /// One Fetch to each leader of the fetchable partitions; returns whether records came.
    async fn fetch_round(&mut self, max_wait: Duration) -> Result<bool> {
        if self.stale {
            self.refresh_metadata().await?;
        }
        let mut by_leader: BTreeMap<i32, Vec<(TopicPartition, i64)>> = BTreeMap::new();
        for (tp, p) in &self.parts {
            if p.paused {
                continue;
            }
            let Some(offset) = p.fetch_offset else {
                continue;
            };
            match self.leaders.get(tp) {
                Some(&leader) if leader >= 0 => {
                    by_leader
                        .entry(leader)
                        .or_default()
                        .push((tp.clone(), offset));
                }
                _ => self.stale = true,
            }
        }
        if by_leader.is_empty() {
            return Ok(false);
        }
        // Several leaders share the wait.
        let wait = max_wait / u32::try_from(by_leader.len()).unwrap_or(u32::MAX);
        let mut got = false;
        for (leader, partitions) in by_leader {
            match self.fetch_from(leader, &partitions, wait).await {
                Ok(g) => got |= g,
                Err(e) if e.is_retriable() => {
                    tracing::debug!(leader, error = %e, "fetch failed; will retry");
                    self.conns.remove(&leader);
                    self.stale = true;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(got)
    }

    async fn fetch_from(
        &mut self,
        leader: i32,
        partitions: &[(TopicPartition, i64)],
        wait: Duration,
    ) -> Result<bool> {
        if !self.conns.contains_key(&leader) {
            let addr = self
                .brokers
                .get(&leader)
                .cloned()
                .ok_or_else(|| Error::Kafka {
                    operation: OPERATION,
                    code: i32::from(ResponseError::LeaderNotAvailable.code()),
                    message: format!("broker {leader} is not in the metadata"),
                    retriable: true,
                })?;
            let conn = Conn::open(&addr, self.timeout + wait, OPERATION).await?;
            self.conns.insert(leader, conn);
        }
        let Some(conn) = self.conns.get_mut(&leader) else {
            return Ok(false);
        };
        let version = conn.version::<FetchRequest>(OPERATION, FETCH_VERSIONS)?;
        let cfg = &self.config;
        let topics: Vec<FetchTopic> = by_topic(partitions.iter().map(|(tp, offset)| {
            let p = FetchPartition::default()
                .with_partition(tp.partition)
                .with_current_leader_epoch(-1)
                .with_fetch_offset(*offset)
                .with_last_fetched_epoch(-1)
                .with_log_start_offset(-1)
                .with_partition_max_bytes(
                    i32::try_from(cfg.max_partition_fetch_bytes).unwrap_or(i32::MAX),
                );
            (Arc::clone(&tp.topic), p)
        }))
        .into_iter()
        .map(|(name, partitions)| {
            FetchTopic::default()
                .with_topic(name)
                .with_partitions(partitions)
        })
        .collect();
        let request = FetchRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_max_wait_ms(i32::try_from(wait.as_millis()).unwrap_or(i32::MAX))
            .with_min_bytes(i32::try_from(cfg.fetch_min_bytes).unwrap_or(i32::MAX))
            .with_max_bytes(i32::try_from(cfg.fetch_max_bytes).unwrap_or(i32::MAX))
            .with_isolation_level(cfg.isolation_level.as_i8())
            .with_session_id(0)
            .with_session_epoch(-1)
            .with_topics(topics);
        let r = conn.call(&request, version).await?;
        if r.error_code != 0 {
            return Err(code_error(
                OPERATION,
                r.error_code,
                &format!("broker {leader}"),
            ));
        }
        let read_committed = cfg.isolation_level == IsolationLevel::ReadCommitted;
        let limit = cfg.fetch_max_bytes.max(64 << 20);
        let mut got = false;
        for t in r.responses {
            let topic: Arc<str> = match self
                .parts
                .keys()
                .find(|tp| &*tp.topic == t.topic.0.as_str())
            {
                Some(tp) => Arc::clone(&tp.topic),
                None => continue,
            };
            for p in t.partitions {
                let tp = TopicPartition {
                    topic: Arc::clone(&topic),
                    partition: p.partition_index,
                };
                // What was asked: a partition sought or unassigned meanwhile is not taken.
                let Some(&(_, asked)) = partitions.iter().find(|(x, _)| *x == tp) else {
                    continue;
                };
                if self.parts.get(&tp).and_then(|s| s.fetch_offset) != Some(asked) {
                    continue;
                }
                match ResponseError::try_from_code(p.error_code) {
                    None if p.error_code == 0 => {}
                    Some(ResponseError::OffsetOutOfRange) => {
                        let to = match self.config.auto_offset_reset {
                            AutoOffsetReset::None => {
                                return Err(Error::OffsetOutOfRange {
                                    tp,
                                    offset: asked,
                                    log_start: p.log_start_offset,
                                    log_end: p.high_watermark,
                                });
                            }
                            _ => {
                                reset_offset(&self.wire, self.config.auto_offset_reset, &tp).await?
                            }
                        };
                        tracing::info!(%tp, from = asked, to, "position out of range, reset by auto.offset.reset");
                        self.seek_to(&tp, to)?;
                        continue;
                    }
                    _ if is_leader_moved(p.error_code) => {
                        self.stale = true;
                        continue;
                    }
                    _ => return Err(code_error(OPERATION, p.error_code, &tp.to_string())),
                }
                let records = p.records.unwrap_or_default();
                if records.is_empty() {
                    continue;
                }
                let aborted = p
                    .aborted_transactions
                    .unwrap_or_default()
                    .into_iter()
                    .map(|a| (a.first_offset, a.producer_id.0));
                let taken = take_records(
                    &topic,
                    tp.partition,
                    asked,
                    &records,
                    aborted,
                    read_committed,
                    limit,
                    &mut self.buffered,
                )?;
                got |= taken.records > 0;
                if let Some(s) = self.parts.get_mut(&tp) {
                    s.fetch_offset = Some(taken.next);
                    if taken.records == 0 && s.position == Some(asked) {
                        // Only control or aborted batches: nothing to return, move past them.
                        s.position = Some(taken.next);
                    }
                }
            }
        }
        Ok(got)
    }

    /// Up to `max.poll.records` buffered records; positions follow what is returned.
    fn drain(&mut self) -> Vec<ConsumerRecord> {
        let n = (self.config.max_poll_records as usize)
            .max(1)
            .min(self.buffered.len());
        let out: Vec<ConsumerRecord> = self.buffered.drain(..n).collect();
        // Runs of one partition: one lookup each.
        let mut i = 0;
        while i < out.len() {
            let mut j = i;
            while j + 1 < out.len()
                && out[j + 1].partition == out[i].partition
                && out[j + 1].topic == out[i].topic
            {
                j += 1;
            }
            let tp = TopicPartition {
                topic: Arc::clone(&out[j].topic),
                partition: out[j].partition,
            };
            let drained_all = !self
                .buffered
                .iter()
                .any(|r| r.partition == tp.partition && r.topic == tp.topic);
            if let Some(s) = self.parts.get_mut(&tp) {
                let after = out[j].offset + 1;
                // Past skipped control batches too, once nothing of it is left buffered.
                s.position = Some(match (drained_all, s.fetch_offset) {
                    (true, Some(f)) => f.max(after),
                    _ => after,
                });
            }
            i = j + 1;
        }
        out
    }

    /// Commits the current positions with `enable.auto.commit` every
    /// `auto.commit.interval.ms`.
    async fn maybe_auto_commit(&mut self) -> Result<()> {
        if self.config.group_id.is_none()
            || !self.config.enable_auto_commit
            || self.last_commit.elapsed()
                < Duration::from_millis(self.config.auto_commit_interval_ms)
        {
            return Ok(());
        }
        self.last_commit = Instant::now();
        self.commit(None).await
    }

    fn positions(&self) -> Vec<(TopicPartition, i64)> {
        self.parts
            .iter()
            .filter_map(|(tp, p)| p.position.map(|o| (tp.clone(), o)))
            .collect()
    }

    async fn commit(&mut self, offsets: Option<Vec<(TopicPartition, i64)>>) -> Result<()> {
        let group = self.group()?.to_owned();
        let offsets = offsets.unwrap_or_else(|| self.positions());
        if offsets.is_empty() {
            return Ok(());
        }
        self.wire.commit_offsets(&group, &offsets).await
    }

    pub(super) fn assign(&mut self, partitions: Vec<TopicPartition>) -> Result<()> {
        self.check_open()?;
        self.parts = reassign(&self.parts, partitions, &mut self.buffered);
        self.stale = true;
        Ok(())
    }

    pub(super) fn assignment(&self) -> Vec<TopicPartition> {
        self.parts.keys().cloned().collect()
    }

    pub(super) fn seek(&mut self, tp: &TopicPartition, offset: i64) -> Result<()> {
        self.check_open()?;
        self.seek_to(tp, offset)
    }

    pub(super) async fn seek_to_beginning(&mut self, tps: &[TopicPartition]) -> Result<()> {
        self.check_open()?;
        self.seek_by(tps, -2).await
    }

    pub(super) async fn seek_to_end(&mut self, tps: &[TopicPartition]) -> Result<()> {
        self.check_open()?;
        self.seek_by(tps, -1).await
    }

    pub(super) async fn seek_to_timestamp(&mut self, ts: i64) -> Result<()> {
        self.check_open()?;
        self.seek_by(&[], ts.max(0)).await
    }

    /// ListOffsets of `tps` at `timestamp` (-2 earliest, -1 latest: the last stable offset
    /// with `read_committed`), one request per leader.
    pub(super) async fn offsets_at(
        &mut self,
        tps: &[TopicPartition],
        timestamp: i64,
    ) -> Result<Vec<(TopicPartition, i64)>> {
        self.check_open()?;
        let isolation = self.config.isolation_level.as_i8();
        let found = self.wire.list_offsets(tps, timestamp, isolation).await?;
        Ok(tps
            .iter()
            .cloned()
            .zip(found.into_iter().map(|(o, _)| o))
            .collect())
    }

    pub(super) fn position(&self, tp: &TopicPartition) -> Option<i64> {
        self.parts.get(tp).and_then(|p| p.position)
    }

    pub(super) fn pause(&mut self, tps: &[TopicPartition]) {
        for tp in tps {
            if let Some(p) = self.parts.get_mut(tp) {
                p.paused = true;
            }
            self.forget_buffered(tp);
        }
    }

    pub(super) fn resume(&mut self, tps: &[TopicPartition]) {
        for tp in tps {
            if let Some(p) = self.parts.get_mut(tp) {
                p.paused = false;
            }
        }
    }

    pub(super) async fn poll(&mut self, timeout: Duration) -> Result<Vec<ConsumerRecord>> {
        self.check_open()?;
        if !self.buffered.is_empty() {
            return Ok(self.drain());
        }
        let deadline = Instant::now() + timeout;
        self.maybe_auto_commit().await?;
        if self.parts.is_empty() {
            tokio::time::sleep_until(deadline).await;
            return Ok(Vec::new());
        }
        loop {
            self.resolve_positions().await?;
            let left = deadline.saturating_duration_since(Instant::now());
            let wait = left.min(Duration::from_millis(self.config.fetch_max_wait_ms));
            let got = match self.fetch_round(wait).await {
                Ok(g) => g,
                Err(e) if e.is_retriable() => {
                    tracing::debug!(error = %e, "fetch round failed; will retry");
                    self.stale = true;
                    tokio::time::sleep(RETRY_BACKOFF.min(left)).await;
                    false
                }
                Err(e) => return Err(e),
            };
            if got || !self.buffered.is_empty() {
                return Ok(self.drain());
            }
            if Instant::now() >= deadline {
                return Ok(Vec::new());
            }
            if self.parts.values().all(|p| p.paused) {
                tokio::time::sleep_until(deadline).await;
                return Ok(Vec::new());
            }
        }
    }

    pub(super) fn subscribe(&mut self, _topics: Vec<String>) -> Result<()> {
        Err(unsupported("subscribe"))
    }

    pub(super) fn subscribe_pattern(&mut self, _pattern: TopicPattern) -> Result<()> {
        Err(unsupported("subscribe_pattern"))
    }

    pub(super) async fn commit_sync(
        &mut self,
        offsets: Option<Vec<(TopicPartition, i64)>>,
    ) -> Result<()> {
        self.check_open()?;
        self.commit(offsets).await
    }

    pub(super) fn commit_async(
        &mut self,
        offsets: Option<Vec<(TopicPartition, i64)>>,
    ) -> Result<()> {
        self.check_open()?;
        let group = self.group()?.to_owned();
        let offsets = offsets.unwrap_or_else(|| self.positions());
        let wire = self.wire.clone();
        tokio::spawn(async move {
            if let Err(e) = wire.commit_offsets(&group, &offsets).await {
                tracing::warn!(%group, error = %e, "asynchronous commit failed");
            }
        });
        Ok(())
    }

    /// The group's committed offsets of `tps` (OffsetFetch).
    pub(super) async fn committed(&mut self, tps: &[TopicPartition]) -> Result<Vec<Option<i64>>> {
        self.check_open()?;
        let group = self.group()?;
        self.wire.fetch_offsets(group, tps).await
    }

    pub(super) fn set_rebalance_listener(&mut self, listener: Box<dyn RebalanceListener>) {
        // Kept for the interface: a native consumer has no group membership to rebalance.
        self.listener = Some(listener);
    }

    pub(super) async fn close(&mut self) -> Result<()> {
        if self.closed {
            return Ok(());
        }
        let r = if self.config.group_id.is_some() && self.config.enable_auto_commit {
            self.commit(None).await
        } else {
            Ok(())
        };
        self.closed = true;
        self.conns.clear();
        self.parts.clear();
        self.buffered.clear();
        r
    }
}
