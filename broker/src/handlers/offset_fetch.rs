//! OffsetFetch: a group's committed offsets, of the partitions asked for (offset -1 and empty
//! metadata where nothing is committed) or, with null topics, of every partition the group
//! has an offset for.
//!
//! Versions: v1 puts errors on the partitions, v2 brings the top-level error, v5 the leader
//! epoch, v7 `require_stable` (a partition with offsets pending in an open transaction is
//! answered UNSTABLE_OFFSET_COMMIT, which the client retries), v8 several groups per request.

use std::collections::BTreeSet;

use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{OffsetFetchRequest, OffsetFetchResponse, TopicName};
use sluice_log::TopicPartition;
use sluice_log::group::CommittedOffset;

use super::{RequestContext, sb};
use crate::handlers::codes::UNSTABLE_OFFSET_COMMIT;
use crate::state::BrokerState;

/// One partition's answer.
struct Fetched {
    partition: i32,
    offset: i64,
    leader_epoch: i32,
    metadata: String,
    error: i16,
}

pub(crate) fn handle(
    state: &BrokerState,
    ctx: &RequestContext,
    req: OffsetFetchRequest,
) -> OffsetFetchResponse {
    let version = ctx.api_version;
    let require_stable = version >= 7 && req.require_stable;
    if version >= 8 {
        let groups = req
            .groups
            .into_iter()
            .map(|g| {
                let asked = g.topics.map(|ts| {
                    ts.into_iter()
                        .map(|t| (t.name, t.partition_indexes))
                        .collect()
                });
                let topics = fetch(state, &g.group_id, asked, require_stable)
                    .into_iter()
                    .map(|(name, partitions)| {
                        let partitions = partitions
                            .into_iter()
                            .map(|f| {
                                OffsetFetchResponsePartitions::default()
                                    .with_partition_index(f.partition)
                                    .with_committed_offset(f.offset)
                                    .with_committed_leader_epoch(f.leader_epoch)
                                    .with_metadata(Some(sb(f.metadata)))
                                    .with_error_code(f.error)
                            })
                            .collect();
                        OffsetFetchResponseTopics::default()
                            .with_name(name)
                            .with_partitions(partitions)
                    })
                    .collect();
                OffsetFetchResponseGroup::default()
                    .with_group_id(g.group_id)
                    .with_topics(topics)
            })
            .collect();
        return OffsetFetchResponse::default().with_groups(groups);
    }
    let asked = req.topics.map(|ts| {
        ts.into_iter()
            .map(|t| (t.name, t.partition_indexes))
            .collect()
    });
    let topics = fetch(state, &req.group_id, asked, require_stable)
        .into_iter()
        .map(|(name, partitions)| {
            let partitions = partitions
                .into_iter()
                .map(|f| {
                    let p = OffsetFetchResponsePartition::default()
                        .with_partition_index(f.partition)
                        .with_committed_offset(f.offset)
                        .with_metadata(Some(sb(f.metadata)))
                        .with_error_code(f.error);
                    if version >= 5 {
                        p.with_committed_leader_epoch(f.leader_epoch)
                    } else {
                        p
                    }
                })
                .collect();
            OffsetFetchResponseTopic::default()
                .with_name(name)
                .with_partitions(partitions)
        })
        .collect();
    OffsetFetchResponse::default().with_topics(topics)
}

/// The offsets of `group`: of `asked` (topic, partitions) in request order, or of every
/// partition with an offset, by topic.
fn fetch(
    state: &BrokerState,
    group: &str,
    asked: Option<Vec<(TopicName, Vec<i32>)>>,
    require_stable: bool,
) -> Vec<(TopicName, Vec<Fetched>)> {
    let unstable: BTreeSet<TopicPartition> = if require_stable {
        state.groups.offsets().pending_partitions(group)
    } else {
        BTreeSet::new()
    };
    let answer = |tp: &TopicPartition, committed: Option<CommittedOffset>| {
        let none = Fetched {
            partition: tp.partition,
            offset: -1,
            leader_epoch: -1,
            metadata: String::new(),
            error: 0,
        };
        if unstable.contains(tp) {
            return Fetched {
                error: UNSTABLE_OFFSET_COMMIT,
                ..none
            };
        }
        match committed {
            Some(c) => Fetched {
                offset: c.offset,
                leader_epoch: c.leader_epoch.unwrap_or(-1),
                metadata: c.metadata,
                ..none
            },
            None => none,
        }
    };
    match asked {
        Some(topics) => {
            let tps: Vec<TopicPartition> = topics
                .iter()
                .flat_map(|(name, ps)| ps.iter().map(|p| TopicPartition::new(name.as_str(), *p)))
                .collect();
            // One answer per partition asked, in the order asked.
            let mut committed = state.groups.fetch_offsets(group, Some(&tps)).into_iter();
            topics
                .into_iter()
                .map(|(name, ps)| {
                    let partitions = committed
                        .by_ref()
                        .take(ps.len())
                        .map(|(tp, c)| answer(&tp, c))
                        .collect();
                    (name, partitions)
                })
                .collect()
        }
        None => {
            let mut out: Vec<(TopicName, Vec<Fetched>)> = Vec::new();
            for (tp, c) in state.groups.fetch_offsets(group, None) {
                let f = answer(&tp, c);
                match out.last_mut() {
                    Some((name, partitions)) if name.as_str() == &*tp.topic => partitions.push(f),
                    _ => out.push((TopicName(sb(tp.topic.to_string())), vec![f])),
                }
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::GroupId;
    use kafka_protocol::messages::offset_fetch_request::{
        OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
    };

    use super::*;
    use crate::handlers::offset_commit::tests::{commit, commit_request};
    use crate::handlers::test_util::{ctx, encodes, test_state};

    /// (topic, partition, offset, error) of every partition of a response, whatever its
    /// version; and the groups' ids from v8.
    fn flatten(r: &OffsetFetchResponse) -> Vec<(String, String, i32, i64, i16)> {
        let mut out = Vec::new();
        for t in &r.topics {
            for p in &t.partitions {
                let entry = (String::new(), t.name.to_string(), p.partition_index);
                out.push((entry.0, entry.1, entry.2, p.committed_offset, p.error_code));
            }
        }
        for g in &r.groups {
            for t in &g.topics {
                for p in &t.partitions {
                    out.push((
                        g.group_id.to_string(),
                        t.name.to_string(),
                        p.partition_index,
                        p.committed_offset,
                        p.error_code,
                    ));
                }
            }
        }
        out
    }

    fn fetch_request(
        version: i16,
        group: &str,
        topics: Option<&[(&str, &[i32])]>,
    ) -> OffsetFetchRequest {
        if version >= 8 {
            let topics = topics.map(|ts| {
                ts.iter()
                    .map(|(n, ps)| {
                        OffsetFetchRequestTopics::default()
                            .with_name(TopicName(sb(*n)))
                            .with_partition_indexes(ps.to_vec())
                    })
                    .collect()
            });
            OffsetFetchRequest::default().with_groups(vec![
                OffsetFetchRequestGroup::default()
                    .with_group_id(GroupId(sb(group)))
                    .with_topics(topics),
            ])
        } else {
            let topics = topics.map(|ts| {
                ts.iter()
                    .map(|(n, ps)| {
                        OffsetFetchRequestTopic::default()
                            .with_name(TopicName(sb(*n)))
                            .with_partition_indexes(ps.to_vec())
                    })
                    .collect()
            });
            OffsetFetchRequest::default()
                .with_group_id(GroupId(sb(group)))
                .with_topics(topics)
        }
    }

    fn fetch_at(state: &BrokerState, version: i16, req: OffsetFetchRequest) -> OffsetFetchResponse {
        let r = handle(state, &ctx(version), req);
        encodes(&r, version);
        r
    }

    #[tokio::test]
    async fn asked_partitions_and_all_of_them() {
        let t = test_state();
        t.log
            .create_topic("a", 2, std::iter::empty::<(&str, &str)>())
            .unwrap();
        t.log
            .create_topic("b", 1, std::iter::empty::<(&str, &str)>())
            .unwrap();
        let req = commit_request(
            "g",
            -1,
            "",
            &[("a", 0, 10, "x"), ("a", 1, 11, ""), ("b", 0, 12, "")],
        );
        assert!(commit(&t, 9, req).await.iter().all(|e| e.2 == 0));
        let r = fetch_at(
            &t,
            6,
            fetch_request(6, "g", Some(&[("b", &[0]), ("a", &[1, 5])])),
        );
        assert_eq!(
            flatten(&r),
            vec![
                (String::new(), "b".to_owned(), 0, 12, 0),
                (String::new(), "a".to_owned(), 1, 11, 0),
                (String::new(), "a".to_owned(), 5, -1, 0),
            ]
        );
        assert_eq!(r.topics[1].partitions[1].metadata.as_deref(), Some(""));
        // Null topics: everything the group committed, by topic.
        let r = fetch_at(&t, 7, fetch_request(7, "g", None));
        let all: Vec<(String, i32, i64)> =
            flatten(&r).into_iter().map(|e| (e.1, e.2, e.3)).collect();
        assert_eq!(
            all,
            vec![
                ("a".to_owned(), 0, 10),
                ("a".to_owned(), 1, 11),
                ("b".to_owned(), 0, 12)
            ]
        );
        assert_eq!(r.topics[0].partitions[0].metadata.as_deref(), Some("x"));
        // v8: several groups at once, an unknown one answered with nothing committed.
        let req = OffsetFetchRequest::default().with_groups(vec![
            OffsetFetchRequestGroup::default()
                .with_group_id(GroupId(sb("g")))
                .with_topics(None),
            OffsetFetchRequestGroup::default()
                .with_group_id(GroupId(sb("other")))
                .with_topics(Some(vec![
                    OffsetFetchRequestTopics::default()
                        .with_name(TopicName(sb("a")))
                        .with_partition_indexes(vec![0]),
                ])),
        ]);
        let r = fetch_at(&t, 8, req);
        assert_eq!(r.groups.len(), 2);
        assert_eq!(flatten(&r).len(), 4);
        assert_eq!(
            flatten(&r)[3],
            ("other".to_owned(), "a".to_owned(), 0, -1, 0)
        );
    }

    #[tokio::test]
    async fn require_stable_reports_offsets_pending_in_a_transaction() {
        let t = test_state();
        t.log
            .create_topic("a", 2, std::iter::empty::<(&str, &str)>())
            .unwrap();
        let req = commit_request("g", -1, "", &[("a", 0, 3, ""), ("a", 1, 4, "")]);
        assert!(commit(&t, 9, req).await.iter().all(|e| e.2 == 0));
        // A transactional producer's offset for a-1, not yet committed.
        let store = t.groups.offsets();
        let pending = CommittedOffset {
            offset: 9,
            leader_epoch: None,
            metadata: String::new(),
            commit_timestamp: 0,
        };
        let partition = store.partition_for("g");
        store.add_pending(
            partition,
            7,
            0,
            "g",
            vec![(TopicPartition::new("a", 1), pending, 0)],
        );
        for v in [7, 9] {
            let asked = fetch_request(v, "g", Some(&[("a", &[0, 1])]));
            let got: Vec<(i64, i16)> = flatten(&fetch_at(&t, v, asked.with_require_stable(true)))
                .into_iter()
                .map(|e| (e.3, e.4))
                .collect();
            assert_eq!(got, vec![(3, 0), (-1, UNSTABLE_OFFSET_COMMIT)], "v{v}");
            let all = fetch_request(v, "g", None).with_require_stable(true);
            let got: Vec<i16> = flatten(&fetch_at(&t, v, all))
                .into_iter()
                .map(|e| e.4)
                .collect();
            assert_eq!(got, vec![0, UNSTABLE_OFFSET_COMMIT], "v{v}");
            // Without require_stable, the last committed offset.
            let asked = fetch_request(v, "g", Some(&[("a", &[1])]));
            assert_eq!(flatten(&fetch_at(&t, v, asked))[0].3, 4);
        }
        // The transaction aborts: stable again.
        store.complete_transaction(partition, 7, 0, false);
        let asked = fetch_request(9, "g", Some(&[("a", &[1])])).with_require_stable(true);
        assert_eq!(flatten(&fetch_at(&t, 9, asked))[0].3, 4);
    }

    #[tokio::test]
    async fn every_version_encodes() {
        let t = test_state();
        t.log
            .create_topic("a", 1, std::iter::empty::<(&str, &str)>())
            .unwrap();
        let req = commit_request("g", -1, "", &[("a", 0, 3, "m")]);
        assert_eq!(commit(&t, 9, req).await[0].2, 0);
        for v in 1..=9 {
            let r = fetch_at(&t, v, fetch_request(v, "g", Some(&[("a", &[0, 1])])));
            assert_eq!(flatten(&r).len(), 2, "v{v}");
            if v >= 2 {
                let r = fetch_at(
                    &t,
                    v,
                    fetch_request(v, "g", None).with_require_stable(v >= 7),
                );
                assert_eq!(flatten(&r).len(), 1, "v{v}");
            }
        }
    }
}
