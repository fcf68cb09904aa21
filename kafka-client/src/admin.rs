//! Admin over the Kafka protocol.
//!
//! | operation | how |
//! |---|---|
//! | create/delete topics, create partitions, delete records, delete groups | rdkafka's `AdminClient` |
//! | alter configs | DescribeConfigs, then AlterConfigs with the topic's dynamic configs plus the changes (rdkafka has no IncrementalAlterConfigs) |
//! | list topics, describe topic | Metadata, ListOffsets (earliest and latest), DescribeConfigs (without configs where the cluster cannot describe them in time); no sizes (DescribeLogDirs is not in rdkafka) |
//! | list offsets | ListOffsets (`offsets_for_times`); the found record's timestamp by fetching it |
//! | list/describe groups | ListGroups + DescribeGroups (`rd_kafka_list_groups`) |
//! | lag, reset offsets | OffsetFetch and OffsetCommit of a consumer of the group that never joins it (generation -1, as kafka-consumer-groups), ListOffsets |
//! | delete offsets, `OffsetSpec::MaxTimestamp`, list/describe transactions | sent directly with kafka-protocol (`wire`): FindCoordinator + OffsetDelete, Metadata + ListOffsets v7+ (-3), ListTransactions, FindCoordinator + DescribeTransactions; rdkafka 0.39 wraps none of them |

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use rdkafka::admin::{
    AdminClient, AdminOptions, ConfigSource, NewPartitions, NewTopic as RdNewTopic,
    ResourceSpecifier, TopicReplication,
};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer as _};
use rdkafka::error::RDKafkaErrorCode as Code;
use rdkafka::message::Message as _;
use rdkafka::topic_partition_list::Offset;

use super::error::{Subject, code_of, from_code, from_kafka};
use super::{KafkaClient, blocking, tpl_of, with_topic_metadata};
use sluice_client::{
    Admin, ConfigEntry, ConsumerGroupDescription, ConsumerGroupMember, GroupListing, GroupState,
    ListedOffset, NewTopic, OffsetSpec, PartitionInfo, PartitionLag, ResetSpec, TopicDescription,
    TransactionDescription, TransactionListing,
};
use sluice_client::{Error, Result, TopicPartition};
use sluice_protocol::consumer_protocol::Assignment;

/// Topic and group administration of a Kafka cluster.
#[derive(Clone)]
pub struct KafkaAdmin {
    client: KafkaClient,
    admin: Arc<AdminClient<DefaultClientContext>>,
    /// A consumer without a group, for metadata, offsets and group listings.
    lookup: Arc<BaseConsumer>,
}

impl std::fmt::Debug for KafkaAdmin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaAdmin")
            .field("bootstrap_servers", &self.client.bootstrap_servers())
            .finish_non_exhaustive()
    }
}

/// A group's state as DescribeGroups spells it.
fn group_state(s: &str) -> GroupState {
    match s {
        "Empty" => GroupState::Empty,
        "PreparingRebalance" => GroupState::PreparingRebalance,
        // "AwaitingSync" is the older spelling; "Assigning" and "Reconciling" are states of
        // KIP-848 groups, between a rebalance and a stable assignment.
        "CompletingRebalance" | "AwaitingSync" | "Assigning" | "Reconciling" => {
            GroupState::CompletingRebalance
        }
        "Stable" => GroupState::Stable,
        "Dead" => GroupState::Dead,
        other => {
            tracing::warn!(
                state = other,
                "unknown group state, taken as PreparingRebalance"
            );
            GroupState::PreparingRebalance
        }
    }
}

impl KafkaAdmin {
    pub(super) fn new(client: KafkaClient) -> Result<Self> {
        let admin: AdminClient<DefaultClientContext> = client
            .rd_config(&[], &[], &[])?
            .create()
            .map_err(|e| from_kafka("create admin client", e, Subject::none()))?;
        let lookup: BaseConsumer = client
            .lookup_config(None)?
            .create()
            .map_err(|e| from_kafka("create admin client", e, Subject::none()))?;
        Ok(Self {
            client,
            admin: Arc::new(admin),
            lookup: Arc::new(lookup),
        })
    }

    fn options(&self) -> AdminOptions {
        AdminOptions::new()
            .request_timeout(Some(self.client.timeout()))
            .operation_timeout(Some(self.client.timeout()))
    }

    fn timeout(&self) -> Duration {
        self.client.timeout()
    }

    /// Offsets of `tps` at ListOffsets "timestamp" `at` (a time, `Beginning` or `End`); `None`
    /// where no record is at or after the time.
    async fn offsets_at(
        &self,
        tps: &[TopicPartition],
        at: Offset,
    ) -> Result<Vec<(TopicPartition, Option<i64>)>> {
        self.offsets_at_each(tps, at)
            .await?
            .into_iter()
            .map(|(tp, r)| r.map(|o| (tp, o)))
            .collect()
    }

    /// [`KafkaAdmin::offsets_at`] with an outcome per partition.
    async fn offsets_at_each(
        &self,
        tps: &[TopicPartition],
        at: Offset,
    ) -> Result<Vec<(TopicPartition, Result<Option<i64>>)>> {
        if tps.is_empty() {
            return Ok(Vec::new());
        }
        let tpl = tpl_of(tps.iter().map(|tp| (tp, at)))?;
        let lookup = Arc::clone(&self.lookup);
        let timeout = self.timeout();
        // A failure of the whole lookup of one partition is that partition's (librdkafka
        // answers a partition the topic lacks with a local UNKNOWN_PARTITION).
        let only = match tps {
            [tp] => Some(tp.clone()),
            _ => None,
        };
        let found = blocking(move || {
            lookup.offsets_for_times(tpl, timeout).map_err(|e| {
                let subject = only.as_ref().map_or(Subject::none(), |tp| {
                    Subject::partition(&tp.topic, tp.partition)
                });
                from_kafka("list_offsets", e, subject)
            })
        })
        .await?;
        Ok(tps
            .iter()
            .map(|tp| {
                let subject = Subject::partition(&tp.topic, tp.partition);
                let outcome = match found.find_partition(&tp.topic, tp.partition) {
                    None => Err(from_code("list_offsets", Code::UnknownPartition, subject)),
                    Some(e) => e
                        .error()
                        .map_err(|err| from_kafka("list_offsets", err, subject))
                        .map(|()| match e.offset() {
                            Offset::Offset(o) => Some(o),
                            _ => None,
                        }),
                };
                (tp.clone(), outcome)
            })
            .collect())
    }

    /// Log start or end offsets of `tps`.
    async fn bounds(
        &self,
        tps: &[TopicPartition],
        at: Offset,
    ) -> Result<BTreeMap<TopicPartition, i64>> {
        self.offsets_at(tps, at)
            .await?
            .into_iter()
            .map(|(tp, o)| match o {
                Some(o) => Ok((tp, o)),
                None => Err(Error::Kafka {
                    operation: "list_offsets",
                    code: Code::NoOffset as i32,
                    message: format!("no offset returned for {tp}"),
                    retriable: true,
                }),
            })
            .collect()
    }

    /// The timestamp of the record at `offset` of `tp` (-1 if none arrives in time).
    async fn timestamp_at(&self, tp: &TopicPartition, offset: i64) -> Result<i64> {
        let rd = self.client.lookup_config(None)?;
        let tp = tp.clone();
        let timeout = self.timeout();
        blocking(move || {
            let subject = Subject::partition(&tp.topic, tp.partition);
            let consumer: BaseConsumer = rd
                .create()
                .map_err(|e| from_kafka("list_offsets", e, Subject::none()))?;
            let tpl = tpl_of([(&tp, Offset::Offset(offset))])?;
            consumer
                .assign(&tpl)
                .map_err(|e| from_kafka("list_offsets", e, subject))?;
            let deadline = std::time::Instant::now() + timeout;
            while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
                match consumer.poll(left.min(Duration::from_millis(200))) {
                    Some(Ok(m)) if m.offset() >= offset => {
                        return Ok(m.timestamp().to_millis().unwrap_or(-1));
                    }
                    Some(Ok(_)) | None => {}
                    Some(Err(e)) => return Err(from_kafka("list_offsets", e, subject)),
                }
            }
            Ok(-1)
        })
        .await
    }

    /// Partitions of every topic in the cluster, internal ones excepted unless `internal`.
    async fn all_partitions(&self, internal: bool) -> Result<Vec<TopicPartition>> {
        let lookup = Arc::clone(&self.lookup);
        let timeout = self.timeout();
        blocking(move || {
            let md = lookup
                .fetch_metadata(None, timeout)
                .map_err(|e| from_kafka("metadata", e, Subject::none()))?;
            Ok(md
                .topics()
                .iter()
                .filter(|t| t.error().is_none() && (internal || !t.name().starts_with("__")))
                .flat_map(|t| {
                    t.partitions()
                        .iter()
                        .map(|p| TopicPartition::new(t.name(), p.id()))
                        .collect::<Vec<_>>()
                })
                .collect())
        })
        .await
    }

    /// The group's committed offsets of `tps` (only those with one), read by a consumer of
    /// the group that never joins it.
    async fn committed(
        &self,
        group: &str,
        tps: Vec<TopicPartition>,
    ) -> Result<BTreeMap<TopicPartition, i64>> {
        if tps.is_empty() {
            return Ok(BTreeMap::new());
        }
        let rd = self.client.lookup_config(Some(group))?;
        let timeout = self.timeout();
        let group = group.to_owned();
        blocking(move || {
            let consumer: BaseConsumer = rd
                .create()
                .map_err(|e| from_kafka("committed offsets", e, Subject::group(&group)))?;
            let tpl = tpl_of(tps.iter().map(|tp| (tp, Offset::Invalid)))?;
            let found = consumer
                .committed_offsets(tpl, timeout)
                .map_err(|e| from_kafka("committed offsets", e, Subject::group(&group)))?;
            Ok(tps
                .into_iter()
                .filter_map(
                    |tp| match found.find_partition(&tp.topic, tp.partition)?.offset() {
                        Offset::Offset(o) => Some((tp, o)),
                        _ => None,
                    },
                )
                .collect())
        })
        .await
    }

    /// DescribeGroups of `group`; `None` if the group is not known.
    async fn describe(&self, group: &str) -> Result<Option<ConsumerGroupDescription>> {
        let lookup = Arc::clone(&self.lookup);
        let timeout = self.timeout();
        let group = group.to_owned();
        blocking(move || {
            let list = lookup
                .fetch_group_list(Some(&group), timeout)
                .map_err(|e| from_kafka("describe_group", e, Subject::group(&group)))?;
            let Some(g) = list.groups().iter().find(|g| g.name() == group) else {
                return Ok(None);
            };
            let state = group_state(g.state());
            if state == GroupState::Dead && g.members().is_empty() {
                return Ok(None);
            }
            let consumer = g.protocol_type() == "consumer";
            Ok(Some(ConsumerGroupDescription {
                group_id: group.clone(),
                state,
                protocol: g.protocol().to_owned(),
                members: g
                    .members()
                    .iter()
                    .map(|m| ConsumerGroupMember {
                        member_id: m.id().to_owned(),
                        // librdkafka's DescribeGroups result does not carry it.
                        group_instance_id: None,
                        client_id: m.client_id().to_owned(),
                        host: m.client_host().to_owned(),
                        assignment: match m.assignment() {
                            Some(a) if consumer && !a.is_empty() => Assignment::decode(a)
                                .map(|a| a.partitions)
                                .unwrap_or_default(),
                            _ => Vec::new(),
                        },
                    })
                    .collect(),
            }))
        })
        .await
    }
}

impl Admin for KafkaAdmin {
    async fn create_topics(&self, topics: Vec<NewTopic>) -> Result<()> {
        let new: Vec<RdNewTopic<'_>> = topics
            .iter()
            .map(|t| {
                // Replication -1: the broker's default.
                let mut n = RdNewTopic::new(&t.name, t.partitions, TopicReplication::Fixed(-1));
                for (k, v) in &t.configs {
                    n = n.set(k, v);
                }
                n
            })
            .collect();
        let results = self
            .admin
            .create_topics(new.iter(), &self.options())
            .await
            .map_err(|e| from_kafka("create_topics", e, Subject::none()))?;
        for r in results {
            if let Err((name, code)) = r {
                let count = topics.iter().find(|t| t.name == name).map(|t| t.partitions);
                let subject = Subject {
                    count,
                    ..Subject::topic(&name)
                };
                return Err(from_code("create_topics", code, subject));
            }
        }
        Ok(())
    }

    async fn delete_topics(&self, names: Vec<String>) -> Result<()> {
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let results = self
            .admin
            .delete_topics(&refs, &self.options())
            .await
            .map_err(|e| from_kafka("delete_topics", e, Subject::none()))?;
        for r in results {
            if let Err((name, code)) = r {
                return Err(from_code("delete_topics", code, Subject::topic(&name)));
            }
        }
        Ok(())
    }

    async fn list_topics(&self) -> Result<Vec<String>> {
        let lookup = Arc::clone(&self.lookup);
        let timeout = self.timeout();
        blocking(move || {
            let md = lookup
                .fetch_metadata(None, timeout)
                .map_err(|e| from_kafka("list_topics", e, Subject::none()))?;
            let mut names: Vec<String> = md
                .topics()
                .iter()
                .filter(|t| t.error().is_none())
                .map(|t| t.name().to_owned())
                .collect();
            names.sort();
            Ok(names)
        })
        .await
    }

    async fn describe_topic(&self, name: &str) -> Result<TopicDescription> {
        let lookup = Arc::clone(&self.lookup);
        let timeout = self.timeout();
        let topic = name.to_owned();
        let partitions: Vec<(i32, i32, Option<String>)> = blocking(move || {
            with_topic_metadata(lookup.client(), &topic, timeout, "describe_topic", |t| {
                let mut ps: Vec<(i32, i32, Option<String>)> = t
                    .partitions()
                    .iter()
                    .map(|p| {
                        let offline = match (p.error(), p.leader()) {
                            (Some(e), _) => Some(Code::from(e).to_string()),
                            (None, l) if l < 0 => Some("no leader".to_owned()),
                            _ => None,
                        };
                        (p.id(), p.leader(), offline)
                    })
                    .collect();
                ps.sort_by_key(|(p, _, _)| *p);
                Ok(ps)
            })
        })
        .await?;
        let tps: Vec<TopicPartition> = partitions
            .iter()
            .map(|(p, _, _)| TopicPartition::new(name, *p))
            .collect();
        let online: Vec<TopicPartition> = tps
            .iter()
            .zip(&partitions)
            .filter(|(_, (_, _, offline))| offline.is_none())
            .map(|(tp, _)| tp.clone())
            .collect();
        let starts = self.bounds(&online, Offset::Beginning).await?;
        let ends = self.bounds(&online, Offset::End).await?;
        let configs = match self
            .admin
            .describe_configs([&ResourceSpecifier::Topic(name)], &self.options())
            .await
        {
            Ok(mut results) => match results.pop() {
                Some(Ok(resource)) => {
                    let mut entries: Vec<ConfigEntry> = resource
                        .entries
                        .into_iter()
                        .map(|e| ConfigEntry {
                            name: e.name,
                            value: e.value.unwrap_or_default(),
                            is_default: e.source != ConfigSource::DynamicTopic,
                        })
                        .collect();
                    entries.sort_by(|a, b| a.name.cmp(&b.name));
                    entries
                }
                Some(Err(code)) => {
                    return Err(from_code("describe_topic", code, Subject::topic(name)));
                }
                None => Vec::new(),
            },
            Err(e)
                if matches!(
                    code_of(&e),
                    Some(Code::UnsupportedFeature | Code::OperationTimedOut)
                ) =>
            {
                // A cluster without DescribeConfigs, or without a controller to ask (as
                // librdkafka's mock cluster): the partitions are still described, without the
                // configs.
                tracing::warn!(topic = name, error = %e, "topic configs are not available");
                Vec::new()
            }
            Err(e) => return Err(from_kafka("describe_topic", e, Subject::topic(name))),
        };
        Ok(TopicDescription {
            name: name.to_owned(),
            internal: name.starts_with("__"),
            partitions: tps
                .iter()
                .zip(partitions)
                .map(|(tp, (partition, leader, offline))| PartitionInfo {
                    partition,
                    leader,
                    log_start_offset: starts.get(tp).copied().unwrap_or(-1),
                    log_end_offset: ends.get(tp).copied().unwrap_or(-1),
                    offline,
                })
                .collect(),
            configs,
        })
    }

    async fn alter_configs(
        &self,
        topic: &str,
        set: Vec<(String, String)>,
        delete: Vec<String>,
    ) -> Result<()> {
        self.client
            .wire("alter_configs")?
            .alter_topic_configs(topic, &set, &delete)
            .await
    }

    async fn create_partitions(&self, topic: &str, total: i32) -> Result<()> {
        let count = usize::try_from(total).map_err(|_| Error::InvalidPartitions {
            count: total,
            reason: "must be positive".into(),
        })?;
        let results = self
            .admin
            .create_partitions([&NewPartitions::new(topic, count)], &self.options())
            .await
            .map_err(|e| from_kafka("create_partitions", e, Subject::topic(topic)))?;
        for r in results {
            if let Err((name, code)) = r {
                let subject = Subject {
                    count: Some(total),
                    ..Subject::topic(&name)
                };
                return Err(from_code("create_partitions", code, subject));
            }
        }
        Ok(())
    }

    async fn delete_records(&self, tp: &TopicPartition, offset: i64) -> Result<i64> {
        let at = if offset < 0 {
            Offset::End
        } else {
            Offset::Offset(offset)
        };
        let tpl = tpl_of([(tp, at)])?;
        let subject = Subject::partition(&tp.topic, tp.partition);
        let result = self
            .admin
            .delete_records(&tpl, &self.options())
            .await
            .map_err(|e| from_kafka("delete_records", e, subject))?;
        let e = result
            .find_partition(&tp.topic, tp.partition)
            .ok_or_else(|| from_code("delete_records", Code::UnknownPartition, subject))?;
        e.error()
            .map_err(|err| from_kafka("delete_records", err, subject))?;
        match e.offset() {
            Offset::Offset(o) => Ok(o),
            other => Err(Error::Kafka {
                operation: "delete_records",
                code: Code::Fail as i32,
                message: format!("the cluster answered no log start offset ({other:?})"),
                retriable: false,
            }),
        }
    }

    async fn list_offsets(&self, tp: &TopicPartition, spec: OffsetSpec) -> Result<ListedOffset> {
        let one = std::slice::from_ref(tp);
        match spec {
            OffsetSpec::Earliest | OffsetSpec::Latest => {
                let at = if spec == OffsetSpec::Earliest {
                    Offset::Beginning
                } else {
                    Offset::End
                };
                let offset = self.bounds(one, at).await?.remove(tp).unwrap_or(-1);
                Ok(ListedOffset {
                    offset,
                    timestamp: -1,
                })
            }
            OffsetSpec::Timestamp(ts) => {
                if ts < 0 {
                    return Err(Error::InvalidRequest(format!(
                        "list_offsets: timestamp {ts} is negative"
                    )));
                }
                let found = self.offsets_at(one, Offset::Offset(ts)).await?;
                match found.first().and_then(|(_, o)| *o) {
                    Some(offset) => Ok(ListedOffset {
                        offset,
                        timestamp: self.timestamp_at(tp, offset).await?,
                    }),
                    None => Ok(ListedOffset {
                        offset: self
                            .bounds(one, Offset::End)
                            .await?
                            .remove(tp)
                            .unwrap_or(-1),
                        timestamp: -1,
                    }),
                }
            }
            OffsetSpec::MaxTimestamp => {
                // rdkafka cannot send the -3 spec: sent directly.
                let (offset, timestamp) =
                    self.client.wire("list_offsets")?.max_timestamp(tp).await?;
                Ok(ListedOffset { offset, timestamp })
            }
        }
    }

    async fn list_groups(&self) -> Result<Vec<GroupListing>> {
        let lookup = Arc::clone(&self.lookup);
        let timeout = self.timeout();
        blocking(move || {
            let list = lookup
                .fetch_group_list(None, timeout)
                .map_err(|e| from_kafka("list_groups", e, Subject::none()))?;
            let mut groups: Vec<GroupListing> = list
                .groups()
                .iter()
                .map(|g| GroupListing {
                    group_id: g.name().to_owned(),
                    protocol_type: g.protocol_type().to_owned(),
                    state: group_state(g.state()),
                })
                .collect();
            groups.sort_by(|a, b| a.group_id.cmp(&b.group_id));
            Ok(groups)
        })
        .await
    }

    async fn describe_group(&self, group: &str) -> Result<ConsumerGroupDescription> {
        self.describe(group)
            .await?
            .ok_or_else(|| Error::GroupIdNotFound(group.to_owned()))
    }

    async fn delete_groups(&self, groups: Vec<String>) -> Result<Vec<Result<()>>> {
        let refs: Vec<&str> = groups.iter().map(String::as_str).collect();
        let results = self
            .admin
            .delete_groups(&refs, &self.options())
            .await
            .map_err(|e| from_kafka("delete_groups", e, Subject::none()))?;
        let by_name: BTreeMap<String, Result<()>> = results
            .into_iter()
            .map(|r| match r {
                Ok(name) => (name, Ok(())),
                Err((name, code)) => {
                    let e = from_code("delete_groups", code, Subject::group(&name));
                    (name, Err(e))
                }
            })
            .collect();
        let mut by_name = by_name;
        Ok(groups
            .iter()
            .map(|g| {
                by_name.remove(g).unwrap_or_else(|| {
                    Err(Error::Kafka {
                        operation: "delete_groups",
                        code: Code::Fail as i32,
                        message: format!("no result for group \"{g}\""),
                        retriable: false,
                    })
                })
            })
            .collect())
    }

    async fn delete_offsets(&self, group: &str, partitions: Vec<TopicPartition>) -> Result<()> {
        // librdkafka's DeleteConsumerGroupOffsets is not wrapped by rdkafka: sent directly.
        self.client
            .wire("delete_offsets")?
            .delete_offsets(group, &partitions)
            .await
    }

    async fn list_transactions(&self) -> Result<Vec<TransactionListing>> {
        self.client
            .wire("list_transactions")?
            .list_transactions()
            .await
    }

    async fn describe_transaction(&self, transactional_id: &str) -> Result<TransactionDescription> {
        self.client
            .wire("describe_transaction")?
            .describe_transaction(transactional_id)
            .await
    }

    async fn reset_offsets(
        &self,
        group: &str,
        partitions: Vec<TopicPartition>,
        spec: ResetSpec,
        dry_run: bool,
    ) -> Result<Vec<(TopicPartition, i64)>> {
        match self.describe(group).await {
            Ok(Some(d)) if d.state != GroupState::Empty && d.state != GroupState::Dead => {
                return Err(Error::NonEmptyGroup(group.to_owned()));
            }
            Ok(_) => {}
            Err(e @ Error::Kafka { .. }) => {
                // A cluster that cannot describe groups still refuses a commit from outside a
                // group with members (UNKNOWN_MEMBER_ID): go on and let it judge.
                tracing::warn!(group, error = %e, "could not check that the group is empty");
            }
            Err(e) => return Err(e),
        }
        let mut seen = BTreeSet::new();
        let partitions: Vec<TopicPartition> = partitions
            .into_iter()
            .filter(|tp| seen.insert(tp.clone()))
            .collect();
        let committed = self.committed(group, partitions.clone()).await?;
        let starts = self.bounds(&partitions, Offset::Beginning).await?;
        let ends = self.bounds(&partitions, Offset::End).await?;
        let by_time = match spec {
            ResetSpec::ToDatetime(ts) => self
                .offsets_at(&partitions, Offset::Offset(ts.max(0)))
                .await?
                .into_iter()
                .collect(),
            _ => BTreeMap::new(),
        };
        let mut out = Vec::with_capacity(partitions.len());
        for tp in partitions {
            let (start, end) = match (starts.get(&tp), ends.get(&tp)) {
                (Some(s), Some(e)) => (*s, *e),
                _ => {
                    return Err(Error::UnknownPartition {
                        topic: tp.topic.to_string(),
                        partition: tp.partition,
                    });
                }
            };
            let target = match spec {
                ResetSpec::Earliest => start,
                ResetSpec::Latest => end,
                ResetSpec::ToDatetime(_) => by_time.get(&tp).copied().flatten().unwrap_or(end),
                ResetSpec::ShiftBy(n) => committed
                    .get(&tp)
                    .copied()
                    .unwrap_or(start)
                    .saturating_add(n)
                    .clamp(start, end),
                ResetSpec::ToOffset(o) => o.clamp(start, end),
            };
            out.push((tp, target));
        }
        if !dry_run && !out.is_empty() {
            let rd = self.client.lookup_config(Some(group))?;
            let tpl = tpl_of(out.iter().map(|(tp, o)| (tp, Offset::Offset(*o))))?;
            let group = group.to_owned();
            blocking(move || {
                let consumer: BaseConsumer = rd
                    .create()
                    .map_err(|e| from_kafka("reset_offsets", e, Subject::group(&group)))?;
                consumer
                    .commit(&tpl, CommitMode::Sync)
                    .map_err(|e| match code_of(&e) {
                        Some(Code::UnknownMemberId | Code::IllegalGeneration) => {
                            Error::NonEmptyGroup(group.clone())
                        }
                        _ => from_kafka("reset_offsets", e, Subject::group(&group)),
                    })
            })
            .await?;
        }
        Ok(out)
    }

    async fn lag(&self, group: &str) -> Result<Vec<PartitionLag>> {
        let desc = match self.describe(group).await {
            Ok(d) => d,
            Err(e @ Error::Kafka { .. }) => {
                tracing::warn!(group, error = %e, "could not describe the group; lag without members");
                None
            }
            Err(e) => return Err(e),
        };
        let owners = desc
            .as_ref()
            .map(ConsumerGroupDescription::owners)
            .unwrap_or_default();
        // OffsetFetch of every partition of the cluster: rdkafka asks for listed partitions
        // only, and the group's are not known in advance.
        let all = self.all_partitions(false).await?;
        let committed = self.committed(group, all).await?;
        if desc.is_none() && committed.is_empty() {
            return Err(Error::GroupIdNotFound(group.to_owned()));
        }
        let rows: BTreeSet<TopicPartition> =
            committed.keys().chain(owners.keys()).cloned().collect();
        let rows: Vec<TopicPartition> = rows.into_iter().collect();
        let ends = self.offsets_at_each(&rows, Offset::End).await?;
        Ok(ends
            .into_iter()
            .filter_map(|(tp, end)| {
                // A partition of a deleted topic has no log end: skipped.
                let log_end = end.ok().flatten()?;
                let committed = committed.get(&tp).copied();
                Some(PartitionLag {
                    member_id: owners.get(&tp).cloned(),
                    lag: committed.map(|o| (log_end - o).max(0)),
                    committed,
                    log_end,
                    tp,
                })
            })
            .collect())
    }
}
