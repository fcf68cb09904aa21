//! Admin over the embedded log.

use std::collections::BTreeMap;

use super::EmbeddedClient;
use crate::client::{
    Admin, ConsumerGroupDescription, ConsumerGroupMember, GroupListing, GroupState, ListedOffset,
    NewTopic, OffsetSpec, PartitionInfo, PartitionLag, ResetSpec, TopicDescription,
    TransactionDescription, TransactionListing,
};
use crate::group::{Assignment, OffsetAndMetadata, OffsetCommitRequest};
use crate::log::LogManager;
use crate::{Error, Result, TopicPartition};

/// Topic and group administration of an embedded log.
#[derive(Debug, Clone)]
pub struct EmbeddedAdmin {
    client: EmbeddedClient,
    log: LogManager,
}

impl EmbeddedAdmin {
    pub(crate) fn new(client: EmbeddedClient) -> Self {
        let log = client.log().clone();
        Self { client, log }
    }

    fn reset_target(
        &self,
        tp: &TopicPartition,
        spec: ResetSpec,
        committed: Option<i64>,
    ) -> Result<i64> {
        let p = self.log.partition(tp)?;
        let (start, end) = (p.log_start_offset(), p.high_watermark());
        Ok(match spec {
            ResetSpec::Earliest => start,
            ResetSpec::Latest => end,
            ResetSpec::ToDatetime(ts) => p.offset_for_timestamp(ts)?.map_or(end, |(o, _)| o),
            ResetSpec::ShiftBy(n) => committed
                .unwrap_or(start)
                .saturating_add(n)
                .clamp(start, end),
            ResetSpec::ToOffset(o) => o.clamp(start, end),
        })
    }
}

impl Admin for EmbeddedAdmin {
    async fn create_topics(&self, topics: Vec<NewTopic>) -> Result<()> {
        for t in topics {
            self.log.create_topic(&t.name, t.partitions, t.configs)?;
        }
        Ok(())
    }

    async fn delete_topics(&self, names: Vec<String>) -> Result<()> {
        for n in names {
            self.log.delete_topic(&n)?;
        }
        Ok(())
    }

    async fn list_topics(&self) -> Result<Vec<String>> {
        Ok(self.log.list_topics())
    }

    async fn describe_topic(&self, name: &str) -> Result<TopicDescription> {
        let d = self.log.describe_topic(name)?;
        Ok(TopicDescription {
            name: d.name,
            internal: d.internal,
            partitions: d
                .partitions
                .into_iter()
                .map(|p| PartitionInfo {
                    partition: p.partition,
                    leader: -1,
                    log_start_offset: p.log_start_offset,
                    log_end_offset: p.log_end_offset,
                    offline: p.offline,
                })
                .collect(),
            configs: d.configs,
        })
    }

    async fn alter_configs(
        &self,
        topic: &str,
        set: Vec<(String, String)>,
        delete: Vec<String>,
    ) -> Result<()> {
        self.log.alter_topic_config(topic, set, delete)
    }

    async fn create_partitions(&self, topic: &str, total: i32) -> Result<()> {
        self.log.create_partitions(topic, total)
    }

    async fn delete_records(&self, tp: &TopicPartition, offset: i64) -> Result<i64> {
        self.log.partition(tp)?.delete_records(offset)
    }

    async fn list_offsets(&self, tp: &TopicPartition, spec: OffsetSpec) -> Result<ListedOffset> {
        let p = self.log.partition(tp)?;
        Ok(match spec {
            OffsetSpec::Earliest => ListedOffset {
                offset: p.log_start_offset(),
                timestamp: -1,
            },
            OffsetSpec::Latest => ListedOffset {
                offset: p.high_watermark(),
                timestamp: -1,
            },
            OffsetSpec::Timestamp(ts) => match p.offset_for_timestamp(ts)? {
                Some((offset, timestamp)) => ListedOffset { offset, timestamp },
                None => ListedOffset {
                    offset: p.high_watermark(),
                    timestamp: -1,
                },
            },
            OffsetSpec::MaxTimestamp => {
                let (timestamp, _) = p.max_timestamp();
                if timestamp < 0 {
                    ListedOffset {
                        offset: -1,
                        timestamp: -1,
                    }
                } else {
                    match p.offset_for_timestamp(timestamp)? {
                        Some((offset, timestamp)) => ListedOffset { offset, timestamp },
                        None => ListedOffset {
                            offset: -1,
                            timestamp: -1,
                        },
                    }
                }
            }
        })
    }

    async fn list_groups(&self) -> Result<Vec<GroupListing>> {
        Ok(self.client.group_coordinator()?.list_groups())
    }

    async fn describe_group(&self, group: &str) -> Result<ConsumerGroupDescription> {
        let d = self.client.group_coordinator()?.describe_group(group)?;
        let consumer = d.protocol_type == "consumer";
        Ok(ConsumerGroupDescription {
            group_id: d.group_id,
            state: d.state,
            protocol: d.protocol,
            members: d
                .members
                .into_iter()
                .map(|m| ConsumerGroupMember {
                    assignment: if consumer && !m.assignment.is_empty() {
                        Assignment::decode(&m.assignment)
                            .map(|a| a.partitions)
                            .unwrap_or_default()
                    } else {
                        Vec::new()
                    },
                    member_id: m.member_id,
                    group_instance_id: m.group_instance_id,
                    client_id: m.client_id,
                    host: m.client_host,
                })
                .collect(),
        })
    }

    async fn delete_groups(&self, groups: Vec<String>) -> Result<Vec<Result<()>>> {
        Ok(self
            .client
            .group_coordinator()?
            .delete_groups(&groups)
            .await)
    }

    async fn delete_offsets(&self, group: &str, partitions: Vec<TopicPartition>) -> Result<()> {
        let c = self.client.group_coordinator()?;
        let d = self.describe_group(group).await?;
        let owners = d.owners();
        if let Some(tp) = partitions.iter().find(|tp| owners.contains_key(*tp)) {
            // Kafka's GROUP_SUBSCRIBED_TO_TOPIC, as close as our errors get.
            return Err(Error::InvalidRequest(format!(
                "partition {tp} is assigned to a member of group \"{group}\""
            )));
        }
        c.offsets().delete_offsets(group, &partitions).await
    }

    async fn list_transactions(&self) -> Result<Vec<TransactionListing>> {
        let coordinator = self.client.transaction_coordinator()?;
        Ok(coordinator
            .list_transactions()
            .into_iter()
            .filter_map(|(id, _)| {
                // Described one by one: a transaction may have moved on since the list.
                let m = coordinator.describe_transaction(&id).ok()?;
                Some(TransactionListing {
                    transactional_id: id,
                    producer_id: m.producer_id,
                    state: m.state.as_str().to_owned(),
                })
            })
            .collect())
    }

    async fn describe_transaction(&self, transactional_id: &str) -> Result<TransactionDescription> {
        let m = self
            .client
            .transaction_coordinator()?
            .describe_transaction(transactional_id)?;
        Ok(TransactionDescription {
            transactional_id: transactional_id.to_owned(),
            coordinator_id: -1,
            state: m.state.as_str().to_owned(),
            producer_id: m.producer_id,
            producer_epoch: m.producer_epoch,
            transaction_timeout_ms: m.timeout_ms,
            transaction_start_time_ms: m.start_ms,
            partitions: m.partitions.into_iter().collect(),
        })
    }

    async fn reset_offsets(
        &self,
        group: &str,
        partitions: Vec<TopicPartition>,
        spec: ResetSpec,
        dry_run: bool,
    ) -> Result<Vec<(TopicPartition, i64)>> {
        let c = self.client.group_coordinator()?;
        match c.describe_group(group) {
            Ok(d) if d.state != GroupState::Empty => {
                return Err(Error::NonEmptyGroup(group.to_owned()));
            }
            Ok(_) | Err(Error::GroupIdNotFound(_)) => {}
            Err(e) => return Err(e),
        }
        let committed = c.fetch_offsets(group, Some(&partitions));
        let mut out = Vec::with_capacity(committed.len());
        for (tp, o) in committed {
            let target = self.reset_target(&tp, spec, o.map(|o| o.offset))?;
            out.push((tp, target));
        }
        if !dry_run {
            c.commit_offsets(OffsetCommitRequest {
                group_id: group.to_owned(),
                generation_id: -1,
                member_id: String::new(),
                group_instance_id: None,
                offsets: out
                    .iter()
                    .map(|(tp, o)| (tp.clone(), OffsetAndMetadata::new(*o)))
                    .collect(),
            })
            .await?;
        }
        Ok(out)
    }

    async fn lag(&self, group: &str) -> Result<Vec<PartitionLag>> {
        let c = self.client.group_coordinator()?;
        let d = self.describe_group(group).await?;
        let owners = d.owners();
        let mut rows: BTreeMap<TopicPartition, Option<i64>> = c
            .fetch_offsets(group, None)
            .into_iter()
            .map(|(tp, o)| (tp, o.map(|o| o.offset)))
            .collect();
        for tp in owners.keys() {
            rows.entry(tp.clone()).or_insert(None);
        }
        let mut out = Vec::with_capacity(rows.len());
        for (tp, committed) in rows {
            // A partition of a deleted topic has no log end: skip it.
            let Ok(p) = self.log.partition(&tp) else {
                continue;
            };
            let log_end = p.high_watermark();
            out.push(PartitionLag {
                member_id: owners.get(&tp).cloned(),
                lag: committed.map(|o| (log_end - o).max(0)),
                committed,
                log_end,
                tp,
            });
        }
        Ok(out)
    }
}
