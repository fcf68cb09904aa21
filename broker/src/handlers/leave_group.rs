//! LeaveGroup: members leave, and the group rebalances without them.
//!
//! Versions: before v3 one member by id, its error as the response's; from v3 a batch of
//! members, by id or (a static member, removed by an admin) by `group.instance.id` with an
//! empty id, each with its own error, the top-level error kept for the group's
//! (COORDINATOR_NOT_AVAILABLE while it is being deleted) as Kafka has it.

use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse};
use kafka_protocol::protocol::StrBytes;
use sluice_log::group::MemberIdentity;

use super::RequestContext;
use crate::handlers::codes::INVALID_GROUP_ID;
use crate::state::BrokerState;

pub(crate) fn handle(
    state: &BrokerState,
    ctx: &RequestContext,
    req: LeaveGroupRequest,
) -> LeaveGroupResponse {
    let version = ctx.api_version;
    if req.group_id.is_empty() {
        return LeaveGroupResponse::default().with_error_code(INVALID_GROUP_ID);
    }
    let members: Vec<MemberIdentity> = if version >= 3 {
        req.members
            .iter()
            .map(|m| MemberIdentity {
                member_id: m.member_id.to_string(),
                group_instance_id: m.group_instance_id.as_ref().map(StrBytes::to_string),
            })
            .collect()
    } else {
        vec![MemberIdentity::new(req.member_id.as_str())]
    };
    for m in req.members.iter().filter(|m| m.reason.is_some()) {
        tracing::debug!(group = %req.group_id.as_str(), member = %m.member_id, reason = ?m.reason, "leave");
    }
    let results = state.groups.leave_group(&req.group_id, &members);
    // A group being deleted answers for the whole request.
    if let Some(Err(e)) = results
        .iter()
        .find(|r| matches!(r, Err(sluice_log::Error::CoordinatorNotAvailable(_))))
    {
        return LeaveGroupResponse::default().with_error_code(e.error_code());
    }
    let codes: Vec<i16> = results
        .iter()
        .map(|r| {
            r.as_ref()
                .map_or_else(sluice_log::Error::error_code, |()| 0)
        })
        .collect();
    if version < 3 {
        let code = codes.iter().copied().find(|c| *c != 0).unwrap_or(0);
        return LeaveGroupResponse::default().with_error_code(code);
    }
    let responses = req
        .members
        .into_iter()
        .zip(codes)
        .map(|(m, code)| {
            MemberResponse::default()
                .with_member_id(m.member_id)
                .with_group_instance_id(m.group_instance_id)
                .with_error_code(code)
        })
        .collect();
    LeaveGroupResponse::default().with_members(responses)
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::leave_group_request::MemberIdentity as WireMember;
    use kafka_protocol::messages::{GroupId, ResponseKind};

    use super::*;
    use crate::handlers::codes::{REBALANCE_IN_PROGRESS, UNKNOWN_MEMBER_ID};
    use crate::handlers::heartbeat::tests::beat;
    use crate::handlers::join_group::tests::{join, join_request};
    use crate::handlers::test_util::{ctx, encodes, response, test_state};
    use crate::handlers::{join_group, sb};

    fn leave(state: &BrokerState, version: i16, req: LeaveGroupRequest) -> LeaveGroupResponse {
        let r = handle(state, &ctx(version), req);
        encodes(&r, version);
        r
    }

    fn wire(member: &str, instance: Option<&str>) -> WireMember {
        WireMember::default()
            .with_member_id(sb(member))
            .with_group_instance_id(instance.map(sb))
    }

    #[tokio::test]
    async fn one_member_before_v3_a_batch_after() {
        let t = test_state();
        let a = join(&t, 3, join_request("g", "", &["t"])).await;
        let a = a.member_id.to_string();
        let r = leave(
            &t,
            1,
            LeaveGroupRequest::default()
                .with_group_id(GroupId(sb("g")))
                .with_member_id(sb(&a)),
        );
        assert_eq!(r.error_code, 0);
        assert!(r.members.is_empty());
        // The group is empty now: the member is unknown.
        assert_eq!(beat(&t, 3, "g", 1, &a), UNKNOWN_MEMBER_ID);
        let r = leave(
            &t,
            0,
            LeaveGroupRequest::default()
                .with_group_id(GroupId(sb("g")))
                .with_member_id(sb(&a)),
        );
        assert_eq!(r.error_code, UNKNOWN_MEMBER_ID);

        // v5: a dynamic member by id, a static one by instance id alone, and a stranger.
        let b = join(&t, 3, join_request("g", "", &["t"])).await;
        let (b, generation) = (b.member_id.to_string(), b.generation_id);
        // A static member joins: the group waits for B to rejoin.
        let s = join_group::handle(
            &t,
            &ctx(5),
            join_request("g", "", &["t"]).with_group_instance_id(Some(sb("static-1"))),
        );
        assert_eq!(beat(&t, 4, "g", generation, &b), REBALANCE_IN_PROGRESS);
        let r = leave(
            &t,
            5,
            LeaveGroupRequest::default()
                .with_group_id(GroupId(sb("g")))
                .with_members(vec![
                    wire(&b, None),
                    wire("", Some("static-1")),
                    wire("stranger", None),
                ]),
        );
        assert_eq!(r.error_code, 0);
        let got: Vec<(String, Option<String>, i16)> = r
            .members
            .iter()
            .map(|m| {
                (
                    m.member_id.to_string(),
                    m.group_instance_id.as_ref().map(ToString::to_string),
                    m.error_code,
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (b.clone(), None, 0),
                (String::new(), Some("static-1".to_owned()), 0),
                ("stranger".to_owned(), None, UNKNOWN_MEMBER_ID),
            ]
        );
        // B's leaving completed the static member's join.
        let ResponseKind::JoinGroup(s) = response(s).await else {
            panic!("not a JoinGroup response");
        };
        assert_eq!(s.error_code, 0);
        let r = leave(&t, 5, LeaveGroupRequest::default());
        assert_eq!(r.error_code, INVALID_GROUP_ID);
    }

    #[tokio::test]
    async fn a_pending_kip_394_member_may_leave() {
        let t = test_state();
        let r = join(&t, 4, join_request("g", "", &["t"])).await;
        assert_eq!(r.error_code, 79);
        let r = leave(
            &t,
            4,
            LeaveGroupRequest::default()
                .with_group_id(GroupId(sb("g")))
                .with_members(vec![wire(r.member_id.as_str(), None)]),
        );
        assert_eq!(r.members[0].error_code, 0);
    }

    #[tokio::test]
    async fn every_version_encodes() {
        let t = test_state();
        for v in 0..=5 {
            let req = LeaveGroupRequest::default().with_group_id(GroupId(sb("g")));
            let req = if v >= 3 {
                req.with_members(vec![wire("m", None), wire("", Some("i"))])
            } else {
                req.with_member_id(sb("m"))
            };
            let _ = leave(&t, v, req);
        }
    }
}
