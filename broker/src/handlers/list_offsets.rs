//! ListOffsets: earliest, latest (the last stable offset for read_committed), by timestamp, the
//! record with the largest timestamp, and (v9+) the last tiered offset, which without tiered
//! storage is none, as Kafka answers it. v10's timeout is for remote-storage lookups: none here.

use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};
use sluice_log::TopicPartition;
use sluice_log::log::Partition;

use super::RequestContext;
use crate::state::BrokerState;

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
/// KIP-405's earliest offset still on local disk: with no tiered storage, the earliest.
const EARLIEST_LOCAL: i64 = -4;
/// KIP-1005's last offset moved to remote storage: with no tiered storage, none (-1).
const LATEST_TIERED: i64 = -5;
const READ_COMMITTED: i8 = 1;

pub(crate) fn handle(
    state: &BrokerState,
    ctx: &RequestContext,
    req: ListOffsetsRequest,
) -> ListOffsetsResponse {
    let committed = ctx.api_version >= 2 && req.isolation_level == READ_COMMITTED;
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let tp = TopicPartition::new(t.name.as_str(), p.partition_index);
                    let r = ListOffsetsPartitionResponse::default()
                        .with_partition_index(p.partition_index);
                    let found = state
                        .log
                        .partition(&tp)
                        .and_then(|part| lookup(&part, p.timestamp, committed));
                    match found {
                        Ok((offset, timestamp)) => {
                            let r = r.with_offset(offset).with_timestamp(timestamp);
                            // Kafka leaves the epoch at -1 where it found no offset.
                            if ctx.api_version >= 4 && offset >= 0 {
                                r.with_leader_epoch(0)
                            } else {
                                r
                            }
                        }
                        Err(e) => r
                            .with_error_code(e.error_code())
                            .with_offset(-1)
                            .with_timestamp(-1),
                    }
                })
                .collect();
            ListOffsetsTopicResponse::default()
                .with_name(t.name)
                .with_partitions(partitions)
        })
        .collect();
    ListOffsetsResponse::default().with_topics(topics)
}

/// (offset, timestamp) for one partition; -1s where Kafka answers "none".
fn lookup(p: &Partition, spec: i64, committed: bool) -> sluice_log::Result<(i64, i64)> {
    Ok(match spec {
        LATEST if committed => (p.last_stable_offset(), -1),
        LATEST => (p.high_watermark(), -1),
        EARLIEST | EARLIEST_LOCAL => (p.log_start_offset(), -1),
        LATEST_TIERED => (-1, -1),
        MAX_TIMESTAMP => {
            let (max_ts, _) = p.max_timestamp();
            match (max_ts >= 0)
                .then(|| p.offset_for_timestamp(max_ts))
                .transpose()?
            {
                Some(Some((offset, ts))) => (offset, ts),
                _ => (-1, -1),
            }
        }
        ts if ts >= 0 => match p.offset_for_timestamp(ts)? {
            // A read_committed reader is not told of offsets past the last stable offset.
            Some((offset, _)) if committed && offset >= p.last_stable_offset() => (-1, -1),
            Some((offset, ts)) => (offset, ts),
            None => (-1, -1),
        },
        other => {
            return Err(sluice_log::Error::InvalidRequest(format!(
                "ListOffsets timestamp {other} is neither a time nor -1/-2/-3/-4/-5"
            )));
        }
    })
}
