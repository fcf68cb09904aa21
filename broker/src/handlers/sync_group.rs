//! SyncGroup: after a join, the leader sends every member's assignment and each member gets
//! its own. A follower's answer waits for the leader's SyncGroup, so the reply is `Later`.
//!
//! Versions: v3 brings `group.instance.id`; v5 makes the protocol type and name mandatory
//! (INCONSISTENT_GROUP_PROTOCOL without them, or when they differ from the group's) and
//! returns them.

use kafka_protocol::messages::{ResponseKind, SyncGroupRequest, SyncGroupResponse};
use kafka_protocol::protocol::StrBytes;
use sluice_log::group;

use super::{Reply, RequestContext, sb};
use crate::handlers::codes::{INCONSISTENT_GROUP_PROTOCOL, INVALID_GROUP_ID};
use crate::state::BrokerState;

pub(crate) fn handle(state: &BrokerState, ctx: &RequestContext, req: SyncGroupRequest) -> Reply {
    let version = ctx.api_version;
    let fail = |code: i16| Reply::Now(ResponseKind::SyncGroup(failure(code)));
    if req.group_id.is_empty() {
        return fail(INVALID_GROUP_ID);
    }
    if version >= 5 && (req.protocol_type.is_none() || req.protocol_name.is_none()) {
        return fail(INCONSISTENT_GROUP_PROTOCOL);
    }
    let pending = state.groups.sync_group(group::SyncGroupRequest {
        group_id: req.group_id.to_string(),
        generation_id: req.generation_id,
        member_id: req.member_id.to_string(),
        group_instance_id: req.group_instance_id.as_ref().map(StrBytes::to_string),
        protocol_type: req.protocol_type.as_ref().map(StrBytes::to_string),
        protocol_name: req.protocol_name.as_ref().map(StrBytes::to_string),
        assignments: req
            .assignments
            .into_iter()
            .map(|a| (a.member_id.to_string(), a.assignment))
            .collect(),
    });
    Reply::Later(Box::pin(async move {
        let r = match pending.await {
            Ok(synced) => {
                let r = SyncGroupResponse::default().with_assignment(synced.assignment);
                if version >= 5 {
                    r.with_protocol_type(synced.protocol_type.map(sb))
                        .with_protocol_name(synced.protocol_name.map(sb))
                } else {
                    r
                }
            }
            Err(e) => failure(e.error_code()),
        };
        ResponseKind::SyncGroup(r)
    }))
}

fn failure(code: i16) -> SyncGroupResponse {
    SyncGroupResponse::default().with_error_code(code)
}

#[cfg(test)]
pub(crate) mod tests {
    use bytes::Bytes;
    use kafka_protocol::messages::GroupId;
    use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;

    use super::*;
    use crate::handlers::join_group::tests::{join, join_request};
    use crate::handlers::test_util::{ctx, encodes, response, test_state};

    /// A SyncGroup request, with the protocol of `join_request` from v5 on.
    pub(crate) fn sync_request(
        version: i16,
        group: &str,
        generation: i32,
        member: &str,
        assignments: Vec<(String, Bytes)>,
    ) -> SyncGroupRequest {
        let r = SyncGroupRequest::default()
            .with_group_id(GroupId(sb(group)))
            .with_generation_id(generation)
            .with_member_id(sb(member))
            .with_assignments(
                assignments
                    .into_iter()
                    .map(|(m, a)| {
                        SyncGroupRequestAssignment::default()
                            .with_member_id(sb(m))
                            .with_assignment(a)
                    })
                    .collect(),
            );
        if version >= 5 {
            r.with_protocol_type(Some(sb("consumer")))
                .with_protocol_name(Some(sb("range")))
        } else {
            r
        }
    }

    /// Starts a SyncGroup (its effects happen now) and returns the reply to await.
    pub(crate) fn start_sync(state: &BrokerState, version: i16, req: SyncGroupRequest) -> Reply {
        handle(state, &ctx(version), req)
    }

    /// Waits for a SyncGroup reply and checks it encodes at `version`.
    pub(crate) async fn finish_sync(reply: Reply, version: i16) -> SyncGroupResponse {
        let ResponseKind::SyncGroup(r) = response(reply).await else {
            panic!("not a SyncGroup response");
        };
        encodes(&r, version);
        r
    }

    pub(crate) async fn sync(
        state: &BrokerState,
        version: i16,
        group: &str,
        generation: i32,
        member: &str,
        assignments: Vec<(String, Bytes)>,
    ) -> SyncGroupResponse {
        let req = sync_request(version, group, generation, member, assignments);
        finish_sync(start_sync(state, version, req), version).await
    }

    #[tokio::test]
    async fn v5_needs_the_protocol_and_checks_it() {
        let t = test_state();
        let r = join(&t, 3, join_request("g", "", &["t"])).await;
        let id = r.member_id.to_string();
        let missing = sync_request(5, "g", 1, &id, vec![]).with_protocol_name(None);
        let r = finish_sync(start_sync(&t, 5, missing), 5).await;
        assert_eq!(r.error_code, INCONSISTENT_GROUP_PROTOCOL);
        let other = sync_request(5, "g", 1, &id, vec![]).with_protocol_name(Some(sb("roundrobin")));
        let r = finish_sync(start_sync(&t, 5, other), 5).await;
        assert_eq!(r.error_code, INCONSISTENT_GROUP_PROTOCOL);
        let r = sync(
            &t,
            5,
            "g",
            1,
            &id,
            vec![(id.clone(), Bytes::from_static(b"x"))],
        )
        .await;
        assert_eq!(r.error_code, 0);
        assert_eq!(r.assignment.as_ref(), b"x");
        assert_eq!(r.protocol_type.as_deref(), Some("consumer"));
        assert_eq!(r.protocol_name.as_deref(), Some("range"));
    }

    #[tokio::test]
    async fn stale_generation_and_unknown_member() {
        let t = test_state();
        let r = join(&t, 3, join_request("g", "", &["t"])).await;
        let id = r.member_id.to_string();
        let r = sync(&t, 4, "g", 7, &id, vec![]).await;
        assert_eq!(r.error_code, 22, "ILLEGAL_GENERATION");
        let r = sync(&t, 4, "g", 1, "nobody", vec![]).await;
        assert_eq!(r.error_code, 25, "UNKNOWN_MEMBER_ID");
        let r = sync(&t, 4, "", 1, &id, vec![]).await;
        assert_eq!(r.error_code, INVALID_GROUP_ID);
    }

    #[tokio::test]
    async fn every_version_encodes() {
        let t = test_state();
        for v in 0..=5 {
            let group = format!("g{v}");
            let r = join(&t, 3, join_request(&group, "", &["t"])).await;
            let id = r.member_id.to_string();
            let ok = sync(
                &t,
                v,
                &group,
                1,
                &id,
                vec![(id.clone(), Bytes::from_static(b"a"))],
            )
            .await;
            assert_eq!(ok.error_code, 0, "v{v}");
            let _ = sync(&t, v, &group, 9, &id, vec![]).await;
        }
    }
}
