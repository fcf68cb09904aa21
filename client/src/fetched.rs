//! Records of fetched batches, as Kafka's consumer takes them: the embedded consumer's reads
//! and the native Kafka consumer's Fetch responses hold the same stored batches.
//!
//! From `position` on, control batches skipped; with `read_committed`, the records of aborted
//! transactions dropped: an aborted transaction (first offset, producer id) of the fetch marks
//! its producer aborted from the first batch reaching that offset until the producer's abort
//! marker. Also the reassignment both consumers make of their partition states and buffer.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use bytes::Bytes;

use crate::ConsumerRecord;
use crate::{Result, TopicPartition};
use sluice_protocol::record::{BatchIter, ControlRecord, decode_records};

/// What one partition's fetched batches gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Taken {
    /// The offset after the last batch read: the next to fetch.
    pub next: i64,
    /// Records appended to the output.
    pub records: usize,
}

/// Appends the records of `batches` (of `topic`-`partition`, fetched at `position`) to `out`.
/// `aborted` holds (first offset, producer id) of the fetch's aborted transactions (used only
/// with `read_committed`); `limit` bounds a decompressed batch.
#[allow(clippy::too_many_arguments)]
pub fn take_records(
    topic: &Arc<str>,
    partition: i32,
    position: i64,
    batches: &Bytes,
    aborted: impl IntoIterator<Item = (i64, i64)>,
    read_committed: bool,
    limit: usize,
    out: &mut VecDeque<ConsumerRecord>,
) -> Result<Taken> {
    let mut next = position;
    let mut records = 0;
    let mut pending: BTreeSet<(i64, i64)> = if read_committed {
        aborted.into_iter().collect()
    } else {
        BTreeSet::new()
    };
    let mut aborted_producers = BTreeSet::new();
    for (h, range) in BatchIter::new(batches) {
        let batch = batches.slice(range);
        if read_committed && h.producer_id >= 0 {
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
            records += 1;
            out.push_back(ConsumerRecord {
                topic: Arc::clone(topic),
                partition,
                offset: r.offset,
                timestamp: r.timestamp,
                timestamp_type: h.timestamp_type(),
                key: r.key,
                value: r.value,
                headers: r.headers,
            });
        }
        next = next.max(h.next_offset());
    }
    Ok(Taken { next, records })
}

/// A new assignment of `partitions`, each keeping its state in `old` (default if new), and
/// `buffered` without the records of partitions no longer assigned.
pub fn reassign<S: Copy + Default>(
    old: &BTreeMap<TopicPartition, S>,
    partitions: Vec<TopicPartition>,
    buffered: &mut VecDeque<ConsumerRecord>,
) -> BTreeMap<TopicPartition, S> {
    let next: BTreeMap<TopicPartition, S> = partitions
        .into_iter()
        .map(|tp| {
            let st = old.get(&tp).copied().unwrap_or_default();
            (tp, st)
        })
        .collect();
    buffered.retain(|r| {
        next.contains_key(&TopicPartition {
            topic: Arc::clone(&r.topic),
            partition: r.partition,
        })
    });
    next
}
