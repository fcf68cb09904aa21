//! The embedded consumer: reads stored batches straight from the partitions, decodes the
//! records from `position` on, skips control batches, and long-polls for new data.
//!
//! With `isolation.level=read_committed` it reads only below the last stable offset and drops
//! the records of aborted transactions as Kafka's consumer does: an aborted transaction
//! (producer id, first offset) of the fetch marks its producer aborted from the first batch
//! reaching that offset until the producer's abort marker.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use crate::client::config::{AutoOffsetReset, ConsumerConfig, IsolationLevel};
use crate::client::{Consumer, ConsumerRecord};
use crate::log::LogManager;
use crate::record::{BatchIter, ControlRecord, decode_records};
use crate::{Error, Result, TopicPartition};

#[derive(Debug, Default, Clone, Copy)]
struct PartitionState {
    position: Option<i64>,
    paused: bool,
}

/// A consumer of an embedded log (manual assignment; groups come with the group coordinator).
#[derive(Debug)]
pub struct EmbeddedConsumer {
    log: LogManager,
    config: ConsumerConfig,
    assignment: BTreeMap<TopicPartition, PartitionState>,
    buffered: VecDeque<ConsumerRecord>,
    /// Where the next fetch round starts, so every partition gets its turn.
    next_start: usize,
}

impl EmbeddedConsumer {
    pub(crate) fn new(log: LogManager, config: ConsumerConfig) -> Self {
        Self {
            log,
            config,
            assignment: BTreeMap::new(),
            buffered: VecDeque::new(),
            next_start: 0,
        }
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
                    let p = self.reset(tp)?;
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
            if data.records.is_empty() {
                continue;
            }
            budget = budget.saturating_sub(data.records.len());
            let mut next = position;
            let topic: Arc<str> = Arc::clone(&tp.topic);
            let limit = self.config.fetch_max_bytes.max(64 << 20);
            // (first offset, producer id) of the aborted transactions not yet reached.
            let mut pending: BTreeSet<(i64, i64)> = data
                .aborted_transactions
                .iter()
                .map(|a| (a.first_offset, a.producer_id))
                .collect();
            let mut aborted_producers = BTreeSet::new();
            for (h, range) in BatchIter::new(&data.records) {
                let batch = data.records.slice(range);
                if committed && h.producer_id >= 0 {
                    while let Some(&(first, pid)) = pending.first()
                        && first <= h.last_offset()
                    {
                        pending.pop_first();
                        aborted_producers.insert(pid);
                    }
                    if h.is_control() {
                        let marker = decode_records(&batch, limit)?
                            .next()
                            .transpose()?
                            .and_then(|r| r.key.as_deref().and_then(ControlRecord::parse));
                        if marker == Some(ControlRecord::Abort) {
                            aborted_producers.remove(&h.producer_id);
                        }
                    } else if h.is_transactional() && aborted_producers.contains(&h.producer_id) {
                        next = next.max(h.next_offset());
                        continue;
                    }
                }
                if h.is_control() {
                    next = next.max(h.next_offset());
                    continue;
                }
                for r in decode_records(&batch, limit)? {
                    let r = r?;
                    if r.offset < position {
                        continue;
                    }
                    self.buffered.push_back(ConsumerRecord {
                        topic: Arc::clone(&topic),
                        partition: tp.partition,
                        offset: r.offset,
                        timestamp: r.timestamp,
                        timestamp_type: h.timestamp_type(),
                        key: r.key,
                        value: r.value,
                        headers: r.headers,
                    });
                    got = true;
                }
                next = next.max(h.next_offset());
            }
            self.state(tp)?.position = Some(next);
        }
        Ok(got)
    }

    fn drain(&mut self) -> Vec<ConsumerRecord> {
        let n = (self.config.max_poll_records as usize).min(self.buffered.len());
        self.buffered.drain(..n).collect()
    }
}

impl Consumer for EmbeddedConsumer {
    fn assign(&mut self, partitions: Vec<TopicPartition>) -> Result<()> {
        for tp in &partitions {
            self.log.partition(tp)?;
        }
        let mut next = BTreeMap::new();
        for tp in partitions {
            let st = self.assignment.get(&tp).copied().unwrap_or_default();
            next.insert(tp, st);
        }
        self.buffered.retain(|r| {
            next.contains_key(&TopicPartition {
                topic: Arc::clone(&r.topic),
                partition: r.partition,
            })
        });
        self.assignment = next;
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

    fn position(&self, tp: &TopicPartition) -> Option<i64> {
        self.assignment.get(tp).and_then(|s| s.position)
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
        if !self.buffered.is_empty() {
            return Ok(self.drain());
        }
        let deadline = tokio::time::Instant::now() + timeout;
        let log = self.log.clone();
        loop {
            // Listen before looking, so an append between the two is not missed.
            let arrived = log.data_arrived();
            tokio::pin!(arrived);
            arrived.as_mut().enable();
            if self.fetch_once()? {
                return Ok(self.drain());
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                return Ok(Vec::new());
            }
        }
    }
}
