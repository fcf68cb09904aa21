//! The embedded consumer: reads stored batches straight from the partitions, decodes the
//! records from `position` on, skips control batches, and long-polls for new data. With a
//! `group.id` and a subscription, `poll` also drives the group membership against the log's
//! [`GroupCoordinator`] (see [`super::group`]).
//!
//! With `isolation.level=read_committed` it reads only below the last stable offset and drops
//! the records of aborted transactions as Kafka's consumer does (`client::fetched`, shared with
//! the native Kafka consumer).

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use super::group::Membership;
use crate::client::config::{AutoOffsetReset, ConsumerConfig, IsolationLevel};
use crate::client::fetched::{reassign, take_records};
use crate::client::{
    Consumer, ConsumerGroupMetadata, ConsumerRecord, RebalanceEvent, RebalanceListener,
    TopicPattern,
};
use crate::group::{GroupCoordinator, OffsetAndMetadata, OffsetCommitRequest};
use crate::log::LogManager;
use crate::{Error, Result, TopicPartition};

#[derive(Debug, Default, Clone, Copy)]
pub(super) struct PartitionState {
    pub(super) position: Option<i64>,
    paused: bool,
    /// Records between the position and the end a read may reach (high watermark, or the last
    /// stable offset for `read_committed`), as of the last fetch: Kafka's `records-lag`.
    lag: Option<i64>,
}

/// What a consumer measured, under the names of Kafka's consumer fetch metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsumerMetrics {
    /// `records-lag` per assigned partition, as of its last fetch (absent before the first).
    pub records_lag: BTreeMap<TopicPartition, i64>,
    /// `records-lag-max`: the largest of those.
    pub records_lag_max: i64,
    /// `records-consumed-total`: records fetched so far.
    pub records_consumed_total: u64,
    /// `bytes-consumed-total`: bytes of record batches fetched so far.
    pub bytes_consumed_total: u64,
}

/// A consumer of an embedded log: manual assignment, or a subscription through a consumer
/// group.
pub struct EmbeddedConsumer {
    pub(super) log: LogManager,
    pub(super) config: ConsumerConfig,
    pub(super) assignment: BTreeMap<TopicPartition, PartitionState>,
    buffered: VecDeque<ConsumerRecord>,
    /// Where the next fetch round starts, so every partition gets its turn.
    next_start: usize,
    /// The log's coordinator, when `group.id` is set.
    pub(super) coordinator: Option<Arc<GroupCoordinator>>,
    /// Group membership, while subscribed.
    pub(super) membership: Option<Membership>,
    pub(super) listener: Option<Box<dyn RebalanceListener>>,
    /// Rebalance events not yet taken by `rebalance_events`.
    pub(super) events: Vec<RebalanceEvent>,
    /// Log clock time of the last auto-commit.
    pub(super) last_auto_commit_ms: i64,
    records_consumed: u64,
    bytes_consumed: u64,
}

impl std::fmt::Debug for EmbeddedConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedConsumer")
            .field("group_id", &self.config.group_id)
            .field("assignment", &self.assignment.keys().collect::<Vec<_>>())
            .field("membership", &self.membership)
            .finish_non_exhaustive()
    }
}

impl EmbeddedConsumer {
    pub(crate) fn new(
        log: LogManager,
        config: ConsumerConfig,
        coordinator: Option<Arc<GroupCoordinator>>,
    ) -> Self {
        let now = log.clock().now_ms();
        Self {
            log,
            config,
            assignment: BTreeMap::new(),
            buffered: VecDeque::new(),
            next_start: 0,
            coordinator,
            membership: None,
            listener: None,
            events: Vec::new(),
            last_auto_commit_ms: now,
            records_consumed: 0,
            bytes_consumed: 0,
        }
    }

    /// The group id and coordinator, or an error without `group.id`.
    pub(super) fn group(&self) -> Result<(&str, &Arc<GroupCoordinator>)> {
        match (&self.config.group_id, &self.coordinator) {
            (Some(g), Some(c)) => Ok((g, c)),
            _ => Err(Error::InvalidGroupId(String::new())),
        }
    }

    /// The offset to commit for `tp`: the first record not yet returned by `poll`.
    fn consumed(&self, tp: &TopicPartition) -> Option<i64> {
        self.buffered
            .iter()
            .find(|r| r.partition == tp.partition && r.topic == tp.topic)
            .map(|r| r.offset)
            .or_else(|| self.assignment.get(tp).and_then(|s| s.position))
    }

    /// The consumed positions of `tps` (all assigned if `None`).
    pub(super) fn consumed_offsets(
        &self,
        tps: Option<&[TopicPartition]>,
    ) -> Vec<(TopicPartition, i64)> {
        let all: Vec<TopicPartition>;
        let tps = match tps {
            Some(t) => t,
            None => {
                all = self.assignment.keys().cloned().collect();
                &all
            }
        };
        tps.iter()
            .filter_map(|tp| self.consumed(tp).map(|o| (tp.clone(), o)))
            .collect()
    }

    /// The commit request of `offsets`, as this member of the group (or from outside it).
    pub(super) fn commit_request(
        &self,
        offsets: Vec<(TopicPartition, i64)>,
    ) -> Result<OffsetCommitRequest> {
        let (group_id, _) = self.group()?;
        let (generation_id, member_id, group_instance_id) = match &self.membership {
            Some(m) if m.generation >= 0 => (
                m.generation,
                m.member_id.clone(),
                self.config.group_instance_id.clone(),
            ),
            _ => (-1, String::new(), None),
        };
        Ok(OffsetCommitRequest {
            group_id: group_id.to_owned(),
            generation_id,
            member_id,
            group_instance_id,
            offsets: offsets
                .into_iter()
                .map(|(tp, o)| (tp, OffsetAndMetadata::new(o)))
                .collect(),
        })
    }

    /// The commit request for `offsets` (the consumed positions if `None`) and the coordinator
    /// to send it to; `None` when there is nothing to commit.
    fn prepare_commit(
        &self,
        offsets: Option<Vec<(TopicPartition, i64)>>,
    ) -> Result<Option<(OffsetCommitRequest, Arc<GroupCoordinator>)>> {
        let offsets = offsets.unwrap_or_else(|| self.consumed_offsets(None));
        if offsets.is_empty() {
            return Ok(None);
        }
        let req = self.commit_request(offsets)?;
        let (_, c) = self.group()?;
        Ok(Some((req, Arc::clone(c))))
    }

    /// Commits `offsets` (current positions if `None`) and waits.
    pub(super) async fn commit(
        &mut self,
        offsets: Option<Vec<(TopicPartition, i64)>>,
    ) -> Result<()> {
        let Some((req, c)) = self.prepare_commit(offsets)? else {
            return Ok(());
        };
        c.commit_offsets(req).await?;
        self.last_auto_commit_ms = self.log.clock().now_ms();
        Ok(())
    }

    /// Auto-commits when `auto.commit.interval.ms` passed on the log's clock.
    async fn maybe_auto_commit(&mut self) -> Result<()> {
        if !self.config.enable_auto_commit || self.coordinator.is_none() {
            return Ok(());
        }
        let now = self.log.clock().now_ms();
        let every = i64::try_from(self.config.auto_commit_interval_ms).unwrap_or(i64::MAX);
        if now.saturating_sub(self.last_auto_commit_ms) < every {
            return Ok(());
        }
        self.last_auto_commit_ms = now;
        match self.commit(None).await {
            Ok(()) => Ok(()),
            // The group is rebalancing: the commit before revocation covers it.
            Err(e) if super::group::is_rebalance_error(&e) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Replaces the assignment, keeping positions of partitions kept and dropping buffered
    /// records of partitions removed.
    pub(super) fn set_assignment(&mut self, partitions: Vec<TopicPartition>) {
        self.assignment = reassign(&self.assignment, partitions, &mut self.buffered);
    }

    fn state(&mut self, tp: &TopicPartition) -> Result<&mut PartitionState> {
        self.assignment.get_mut(tp).ok_or_else(|| {
            Error::InvalidRequest(format!("partition {tp} is not assigned to this consumer"))
        })
    }

    fn targets(&self, tps: &[TopicPartition]) -> Vec<TopicPartition> {
        if tps.is_empty() {
            self.assignment.keys().cloned().collect()
        } else {
            tps.to_vec()
        }
    }

    /// Resolves a missing or out-of-range position by `auto.offset.reset`.
    fn reset(&self, tp: &TopicPartition) -> Result<i64> {
        let p = self.log.partition(tp)?;
        match self.config.auto_offset_reset {
            AutoOffsetReset::Earliest => Ok(p.log_start_offset()),
            AutoOffsetReset::Latest => Ok(p.high_watermark()),
            AutoOffsetReset::None => Err(Error::NoOffsetForPartition { tp: tp.clone() }),
        }
    }

    /// Where a partition without a position starts: the group's committed offset (as Kafka's
    /// consumer does for assigned partitions too), else `auto.offset.reset`.
    fn initial_position(&self, tp: &TopicPartition) -> Result<i64> {
        if let Ok((group_id, c)) = self.group()
            && let Some((_, Some(o))) = c
                .fetch_offsets(group_id, Some(std::slice::from_ref(tp)))
                .into_iter()
                .next()
        {
            return Ok(o.offset);
        }
        self.reset(tp)
    }
    /// One pass over the assigned partitions; returns whether anything was buffered.
    fn fetch_once(&mut self) -> Result<bool> {
        let tps: Vec<TopicPartition> = self
            .assignment
            .iter()
            .filter(|(_, s)| !s.paused)
            .map(|(tp, _)| tp.clone())
            .collect();
        if tps.is_empty() {
            return Ok(false);
        }
        let mut budget = self.config.fetch_max_bytes;
        let n = tps.len();
        let start = self.next_start % n;
        self.next_start = self.next_start.wrapping_add(1);
        let mut got = false;
        for i in 0..n {
            if budget == 0 {
                break;
            }
            let tp = &tps[(start + i) % n];
            let position = match self.assignment.get(tp).and_then(|s| s.position) {
                Some(p) => p,
                None => {
                    let p = self.initial_position(tp)?;
                    self.state(tp)?.position = Some(p);
                    p
                }
            };
            let partition = self.log.partition(tp)?;
            let max = self.config.max_partition_fetch_bytes.min(budget);
            let committed = self.config.isolation_level == IsolationLevel::ReadCommitted;
            let read = if committed {
                partition.read_committed(position, max)
            } else {
                partition.read(position, max)
            };
            let data = match read {
                Ok(d) => d,
                Err(Error::OffsetOutOfRange { .. }) => {
                    let p = self.reset(tp)?;
                    tracing::info!(%tp, from = position, to = p, "position out of range, reset by auto.offset.reset");
                    self.state(tp)?.position = Some(p);
                    continue;
                }
                Err(e) => return Err(e),
            };
            let end = if committed {
                data.last_stable_offset
            } else {
                data.high_watermark
            };
            if data.records.is_empty() {
                self.state(tp)?.lag = Some((end - position).max(0));
                continue;
            }
            budget = budget.saturating_sub(data.records.len());
            self.bytes_consumed += data.records.len() as u64;
            let topic: Arc<str> = Arc::clone(&tp.topic);
            let max_uncompressed = self.config.fetch_max_bytes.max(64 << 20);
            let taken = take_records(
                &topic,
                tp.partition,
                position,
                &data.records,
                data.aborted_transactions
                    .iter()
                    .map(|a| (a.first_offset, a.producer_id)),
                committed,
                max_uncompressed,
                &mut self.buffered,
            )
            .map_err(|e| match e {
                // Name the partition, the segment file and the byte, as `log verify` does.
                Error::CorruptRecord(_) => partition
                    .locate_corruption(position, data.records.len(), max_uncompressed)
                    .unwrap_or(e),
                e => e,
            })?;
            self.records_consumed += taken.records as u64;
            got |= taken.records > 0;
            let next = taken.next;
            let st = self.state(tp)?;
            st.position = Some(next);
            st.lag = Some((end - next).max(0));
        }
        Ok(got)
    }

    /// The consumer's fetch metrics (Kafka's `records-lag`, `records-lag-max`,
    /// `records-consumed-total`, `bytes-consumed-total`).
    pub fn metrics(&self) -> ConsumerMetrics {
        let records_lag: BTreeMap<TopicPartition, i64> = self
            .assignment
            .iter()
            .filter_map(|(tp, s)| s.lag.map(|l| (tp.clone(), l)))
            .collect();
        ConsumerMetrics {
            records_lag_max: records_lag.values().copied().max().unwrap_or(0),
            records_lag,
            records_consumed_total: self.records_consumed,
            bytes_consumed_total: self.bytes_consumed,
        }
    }

    fn drain(&mut self) -> Vec<ConsumerRecord> {
        let n = (self.config.max_poll_records as usize).min(self.buffered.len());
        self.buffered.drain(..n).collect()
    }
}

impl Consumer for EmbeddedConsumer {
    fn assign(&mut self, partitions: Vec<TopicPartition>) -> Result<()> {
        if self.membership.is_some() {
            return Err(Error::InvalidRequest(
                "subscription to topics and manual assignment are mutually exclusive".into(),
            ));
        }
        for tp in &partitions {
            self.log.partition(tp)?;
        }
        self.set_assignment(partitions);
        Ok(())
    }

    fn assignment(&self) -> Vec<TopicPartition> {
        self.assignment.keys().cloned().collect()
    }

    fn seek(&mut self, tp: &TopicPartition, offset: i64) -> Result<()> {
        if offset < 0 {
            return Err(Error::InvalidRequest(format!(
                "cannot seek {tp} to negative offset {offset}"
            )));
        }
        self.state(tp)?.position = Some(offset);
        let topic = Arc::clone(&tp.topic);
        let partition = tp.partition;
        self.buffered
            .retain(|r| !(r.topic == topic && r.partition == partition));
        Ok(())
    }

    async fn seek_to_beginning(&mut self, tps: &[TopicPartition]) -> Result<()> {
        for tp in self.targets(tps) {
            let off = self.log.partition(&tp)?.log_start_offset();
            self.seek(&tp, off)?;
        }
        Ok(())
    }

    async fn seek_to_end(&mut self, tps: &[TopicPartition]) -> Result<()> {
        for tp in self.targets(tps) {
            let off = self.log.partition(&tp)?.high_watermark();
            self.seek(&tp, off)?;
        }
        Ok(())
    }

    async fn seek_to_timestamp(&mut self, ts: i64) -> Result<()> {
        for tp in self.targets(&[]) {
            let p = self.log.partition(&tp)?;
            let off = p
                .offset_for_timestamp(ts)?
                .map_or(p.high_watermark(), |(o, _)| o);
            self.seek(&tp, off)?;
        }
        Ok(())
    }

    async fn beginning_offsets(
        &mut self,
        tps: &[TopicPartition],
    ) -> Result<Vec<(TopicPartition, i64)>> {
        tps.iter()
            .map(|tp| Ok((tp.clone(), self.log.partition(tp)?.log_start_offset())))
            .collect()
    }

    async fn end_offsets(&mut self, tps: &[TopicPartition]) -> Result<Vec<(TopicPartition, i64)>> {
        let committed = self.config.isolation_level == IsolationLevel::ReadCommitted;
        tps.iter()
            .map(|tp| {
                let p = self.log.partition(tp)?;
                let end = if committed {
                    p.last_stable_offset()
                } else {
                    p.high_watermark()
                };
                Ok((tp.clone(), end))
            })
            .collect()
    }

    fn position(&self, tp: &TopicPartition) -> Option<i64> {
        // The next record `poll` returns: the first buffered one, else the fetch position.
        self.consumed(tp)
    }

    fn pause(&mut self, tps: &[TopicPartition]) {
        for tp in tps {
            if let Some(s) = self.assignment.get_mut(tp) {
                s.paused = true;
            }
        }
    }

    fn resume(&mut self, tps: &[TopicPartition]) {
        for tp in tps {
            if let Some(s) = self.assignment.get_mut(tp) {
                s.paused = false;
            }
        }
    }

    async fn poll(&mut self, timeout: Duration) -> Result<Vec<ConsumerRecord>> {
        let deadline = tokio::time::Instant::now() + timeout;
        if self.membership.is_some() {
            self.drive_group(deadline).await?;
            if self.revocation_pending() {
                // The caller acts on the revocation before the partitions are given up.
                return Ok(Vec::new());
            }
        }
        self.maybe_auto_commit().await?;
        if !self.buffered.is_empty() {
            return Ok(self.drain());
        }
        // Wake up at least every heartbeat interval to keep the membership alive.
        let beat = Duration::from_millis(self.config.heartbeat_interval_ms.max(1));
        let log = self.log.clone();
        loop {
            // Listen before looking, so an append between the two is not missed; only
            // appends to the partitions read wake this poll.
            let arrived = log.next_append_to(
                self.assignment
                    .iter()
                    .filter(|(_, s)| !s.paused)
                    .map(|(tp, _)| tp),
            );
            if self.fetch_once()? {
                return Ok(self.drain());
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Ok(Vec::new());
            }
            let until = now.checked_add(beat).map_or(deadline, |t| deadline.min(t));
            let coordinator = self
                .coordinator
                .clone()
                .filter(|_| self.membership.is_some());
            let rebalance = async {
                match &coordinator {
                    Some(c) => c.rebalance_signal().await,
                    None => std::future::pending().await,
                }
            };
            let woke = tokio::select! {
                r = tokio::time::timeout_at(until, arrived) => r.is_ok(),
                () = rebalance => false,
            };
            if !woke {
                if tokio::time::Instant::now() >= deadline {
                    return Ok(Vec::new());
                }
                if self.membership.is_some() {
                    self.drive_group(deadline).await?;
                    if self.revocation_pending() {
                        return Ok(Vec::new());
                    }
                }
            }
        }
    }

    fn subscribe(&mut self, topics: Vec<String>) -> Result<()> {
        self.subscribe_to(super::group::Topics::Names(topics))
    }

    async fn subscribe_pattern(&mut self, pattern: TopicPattern) -> Result<()> {
        self.subscribe_to(super::group::Topics::Pattern(pattern))
    }

    async fn unsubscribe(&mut self) -> Result<()> {
        self.leave().await
    }

    async fn commit_sync(&mut self, offsets: Option<Vec<(TopicPartition, i64)>>) -> Result<()> {
        self.commit(offsets).await
    }

    fn commit_async(&mut self, offsets: Option<Vec<(TopicPartition, i64)>>) -> Result<()> {
        let Some((req, c)) = self.prepare_commit(offsets)? else {
            return Ok(());
        };
        let rt = tokio::runtime::Handle::try_current()
            .map_err(|_| Error::InvalidRequest("commit_async needs a tokio runtime".into()))?;
        rt.spawn(async move {
            if let Err(e) = c.commit_offsets(req).await {
                tracing::warn!(error = %crate::report(&e), "asynchronous offset commit failed");
            }
        });
        self.last_auto_commit_ms = self.log.clock().now_ms();
        Ok(())
    }

    async fn committed(&mut self, tps: &[TopicPartition]) -> Result<Vec<Option<i64>>> {
        let (group_id, c) = self.group()?;
        Ok(c.fetch_offsets(group_id, Some(tps))
            .into_iter()
            .map(|(_, o)| o.map(|o| o.offset))
            .collect())
    }

    fn group_metadata(&self) -> Option<ConsumerGroupMetadata> {
        let request = self.commit_request(Vec::new()).ok()?;
        Some(ConsumerGroupMetadata::member(
            request.group_id,
            request.generation_id,
            request.member_id,
            request.group_instance_id,
        ))
    }

    fn rebalance_events(&mut self) -> Vec<RebalanceEvent> {
        std::mem::take(&mut self.events)
    }

    fn set_rebalance_listener(&mut self, listener: Box<dyn RebalanceListener>) {
        self.listener = Some(listener);
    }

    async fn close(&mut self) -> Result<()> {
        if self.membership.is_some() {
            return self.leave().await;
        }
        let result = if self.config.enable_auto_commit && self.coordinator.is_some() {
            self.commit(None).await
        } else {
            Ok(())
        };
        self.set_assignment(Vec::new());
        result
    }
}
