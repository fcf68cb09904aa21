//! DeleteGroups: removes groups without members, and their committed offsets. Each group's
//! removal (and the append of its tombstones) happens when the handler is called; the answer
//! waits for the fsync. Per group: NON_EMPTY_GROUP while it has members, GROUP_ID_NOT_FOUND if
//! there is no such group.

use std::sync::Arc;

use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse, GroupId, ResponseKind};

use super::{Reply, RequestContext, Started, offsets_write_error, start};
use crate::state::BrokerState;

pub(crate) fn handle(
    state: &BrokerState,
    _ctx: &RequestContext,
    req: DeleteGroupsRequest,
) -> Reply {
    // One future per group, each run up to its wait now, so every removal happens in order.
    let deletions: Vec<_> = req
        .groups_names
        .into_iter()
        .map(|group_id| {
            let groups = Arc::clone(&state.groups);
            let id = group_id.to_string();
            let deletion = start(async move {
                let mut results = groups.delete_groups(std::slice::from_ref(&id)).await;
                results.pop().unwrap_or(Ok(()))
            });
            (group_id, deletion)
        })
        .collect();
    let respond = |results: Vec<(GroupId, sluice_log::Result<()>)>| {
        let results = results
            .into_iter()
            .map(|(group_id, r)| {
                let code = match r {
                    Ok(()) => 0,
                    Err(e) => {
                        tracing::debug!(group = %group_id.as_str(), error = %sluice_log::report(&e), "group not deleted");
                        offsets_write_error(&e)
                    }
                };
                DeletableGroupResult::default()
                    .with_group_id(group_id)
                    .with_error_code(code)
            })
            .collect();
        ResponseKind::DeleteGroups(DeleteGroupsResponse::default().with_results(results))
    };
    let mut results = Vec::with_capacity(deletions.len());
    let mut deletions = deletions.into_iter();
    while let Some((group_id, deletion)) = deletions.next() {
        match deletion {
            Started::Done(r) => results.push((group_id, r)),
            Started::Waiting(rest) => {
                return Reply::Later(Box::pin(async move {
                    results.push((group_id, rest.await));
                    for (group_id, deletion) in deletions {
                        results.push((group_id, deletion.finish().await));
                    }
                    respond(results)
                }));
            }
        }
    }
    Reply::Now(respond(results))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handlers::codes::{GROUP_ID_NOT_FOUND, NON_EMPTY_GROUP};
    use crate::handlers::join_group::tests::{join, join_request};
    use crate::handlers::offset_commit::tests::{commit, commit_request};
    use crate::handlers::sb;
    use crate::handlers::test_util::{ctx, encodes, response, test_state};

    async fn delete(state: &BrokerState, version: i16, groups: &[&str]) -> Vec<(String, i16)> {
        let req = DeleteGroupsRequest::default()
            .with_groups_names(groups.iter().map(|g| GroupId(sb(*g))).collect());
        let ResponseKind::DeleteGroups(r) = response(handle(state, &ctx(version), req)).await
        else {
            panic!("not a DeleteGroups response");
        };
        encodes(&r, version);
        r.results
            .iter()
            .map(|r| (r.group_id.to_string(), r.error_code))
            .collect()
    }

    #[tokio::test]
    async fn empty_groups_go_groups_with_members_stay() {
        let t = test_state();
        t.log
            .create_topic("t", 1, std::iter::empty::<(&str, &str)>())
            .unwrap();
        let req = commit_request("offsets", -1, "", &[("t", 0, 1, "")]);
        assert_eq!(commit(&t, 9, req).await[0].2, 0);
        let r = join(&t, 3, join_request("busy", "", &["t"])).await;
        assert_eq!(r.error_code, 0);
        let got = delete(&t, 2, &["offsets", "busy", "nothing"]).await;
        assert_eq!(
            got,
            vec![
                ("offsets".to_owned(), 0),
                ("busy".to_owned(), NON_EMPTY_GROUP),
                ("nothing".to_owned(), GROUP_ID_NOT_FOUND),
            ]
        );
        assert!(t.groups.fetch_offsets("offsets", None).is_empty());
        let listed: Vec<String> = t
            .groups
            .list_groups()
            .into_iter()
            .map(|g| g.group_id)
            .collect();
        assert_eq!(listed, vec!["busy".to_owned()]);
        // Deleted: a second time it is not found.
        assert_eq!(
            delete(&t, 0, &["offsets"]).await,
            vec![("offsets".to_owned(), GROUP_ID_NOT_FOUND)]
        );
    }

    #[tokio::test]
    async fn deletions_are_written_when_handled() {
        let t = test_state();
        t.log
            .create_topic("t", 1, std::iter::empty::<(&str, &str)>())
            .unwrap();
        for g in ["a", "b"] {
            assert_eq!(
                commit(&t, 9, commit_request(g, -1, "", &[("t", 0, 1, "")])).await[0].2,
                0
            );
        }
        let written = || -> i64 {
            ["a", "b"]
                .map(|g| t.groups.offsets().partition_for(g))
                .into_iter()
                .collect::<std::collections::BTreeSet<i32>>()
                .into_iter()
                .map(|p| {
                    let tp = sluice_log::TopicPartition::new(
                        sluice_log::group::CONSUMER_OFFSETS_TOPIC,
                        p,
                    );
                    t.log.partition(&tp).unwrap().log_end_offset()
                })
                .sum()
        };
        let before = written();
        let req = DeleteGroupsRequest::default()
            .with_groups_names(vec![GroupId(sb("a")), GroupId(sb("b"))]);
        let reply = handle(&t, &ctx(2), req);
        // Both groups' tombstones (an offset and the group's, each) are appended before anyone
        // awaits the reply.
        assert_eq!(written(), before + 4);
        let ResponseKind::DeleteGroups(r) = response(reply).await else {
            panic!("not a DeleteGroups response");
        };
        assert!(r.results.iter().all(|r| r.error_code == 0));
    }

    #[tokio::test]
    async fn every_version_encodes() {
        let t = test_state();
        t.log
            .create_topic("t", 1, std::iter::empty::<(&str, &str)>())
            .unwrap();
        for v in 0..=2 {
            let group = format!("g{v}");
            let req = commit_request(&group, -1, "", &[("t", 0, 1, "")]);
            assert_eq!(commit(&t, 9, req).await[0].2, 0);
            let got = delete(&t, v, &[&group, "missing"]).await;
            assert_eq!(got[0].1, 0, "v{v}");
            assert_eq!(got[1].1, GROUP_ID_NOT_FOUND, "v{v}");
        }
    }
}
