//! JoinGroup: a member joins or rejoins a group. The coordinator takes the join at once; the
//! answer comes when the rebalance completes (every member rejoined, or the rebalance timeout
//! passed), so the reply is `Later`.
//!
//! Versions: v0 has no rebalance timeout (the session timeout serves), v4 brings KIP-394 (a
//! first join without a member id is answered MEMBER_ID_REQUIRED with the id to rejoin with),
//! v5 static membership (`group.instance.id`), v7 the protocol type in the response and a null
//! protocol name, v9 `skip_assignment` for a static leader that rejoined a Stable group.

use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{JoinGroupRequest, JoinGroupResponse, ResponseKind};
use kafka_protocol::protocol::StrBytes;
use sluice_log::group::{self, JoinResult};

use super::{Reply, RequestContext, sb};
use crate::handlers::codes::INVALID_GROUP_ID;
use crate::state::BrokerState;

pub(crate) fn handle(state: &BrokerState, ctx: &RequestContext, req: JoinGroupRequest) -> Reply {
    let version = ctx.api_version;
    let member_id = req.member_id.to_string();
    if req.group_id.is_empty() {
        let r = failure(version, INVALID_GROUP_ID, member_id);
        return Reply::Now(ResponseKind::JoinGroup(r));
    }
    let instance = req.group_instance_id.as_ref().map(StrBytes::to_string);
    if let Some(reason) = &req.reason {
        tracing::debug!(group = %req.group_id.as_str(), member = %member_id, %reason, "join");
    }
    let pending = state.groups.join_group(group::JoinGroupRequest {
        group_id: req.group_id.to_string(),
        member_id: member_id.clone(),
        group_instance_id: instance.clone(),
        client_id: ctx.client_id.to_string(),
        client_host: ctx.client_host.to_string(),
        protocol_type: req.protocol_type.to_string(),
        protocols: req
            .protocols
            .into_iter()
            .map(|p| (p.name.to_string(), p.metadata))
            .collect(),
        session_timeout_ms: req.session_timeout_ms,
        rebalance_timeout_ms: if version == 0 {
            req.session_timeout_ms
        } else {
            req.rebalance_timeout_ms
        },
        // KIP-394 asks for the round trip only of dynamic members from v4 on.
        require_known_member_id: version >= 4 && instance.is_none(),
    });
    Reply::Later(Box::pin(async move {
        let r = match pending.await {
            Ok(joined) => response(version, joined),
            Err(e) => {
                let member_id = match &e {
                    sluice_log::Error::MemberIdRequired { member_id, .. } => member_id.clone(),
                    _ => member_id,
                };
                failure(version, e.error_code(), member_id)
            }
        };
        ResponseKind::JoinGroup(r)
    }))
}

/// The protocol name as the version spells "none": empty before v7, null from v7 on.
fn protocol_name(version: i16, name: Option<String>) -> Option<StrBytes> {
    match name.filter(|n| !n.is_empty()) {
        Some(n) => Some(sb(n)),
        None if version < 7 => Some(StrBytes::default()),
        None => None,
    }
}

fn failure(version: i16, code: i16, member_id: String) -> JoinGroupResponse {
    JoinGroupResponse::default()
        .with_error_code(code)
        .with_generation_id(-1)
        .with_member_id(sb(member_id))
        .with_protocol_name(protocol_name(version, None))
}

fn response(version: i16, r: JoinResult) -> JoinGroupResponse {
    // Before v9 a static leader that rejoined a Stable group is told its old id is the leader
    // (as Kafka does), so it does not compute an assignment the group would ignore.
    let demoted = r.skip_assignment && version < 9;
    let (leader, members) = if demoted {
        (r.replaced_member_id.unwrap_or_default(), Vec::new())
    } else {
        (r.leader, r.members)
    };
    let members = members
        .into_iter()
        .map(|m| {
            let member = JoinGroupResponseMember::default()
                .with_member_id(sb(m.member_id))
                .with_metadata(m.metadata);
            if version >= 5 {
                member.with_group_instance_id(m.group_instance_id.map(sb))
            } else {
                member
            }
        })
        .collect();
    let mut out = JoinGroupResponse::default()
        .with_generation_id(r.generation_id)
        .with_protocol_name(protocol_name(version, r.protocol_name))
        .with_leader(sb(leader))
        .with_member_id(sb(r.member_id))
        .with_members(members);
    if version >= 7 {
        out = out.with_protocol_type(r.protocol_type.filter(|t| !t.is_empty()).map(sb));
    }
    if version >= 9 {
        out = out.with_skip_assignment(r.skip_assignment);
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use bytes::Bytes;
    use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
    use kafka_protocol::messages::{GroupId, JoinGroupRequest, ResponseKind};

    use super::*;
    use crate::handlers::codes::MEMBER_ID_REQUIRED;
    use crate::handlers::test_util::{ctx, encodes, response as wait, test_state};

    pub(crate) fn join_request(group: &str, member: &str, topics: &[&str]) -> JoinGroupRequest {
        let sub = sluice_log::group::Subscription::new(topics.iter().copied()).encode();
        JoinGroupRequest::default()
            .with_group_id(GroupId(sb(group)))
            .with_member_id(sb(member))
            .with_session_timeout_ms(10_000)
            .with_rebalance_timeout_ms(10_000)
            .with_protocol_type(sb("consumer"))
            .with_protocols(vec![
                JoinGroupRequestProtocol::default()
                    .with_name(sb("range"))
                    .with_metadata(sub),
            ])
    }

    pub(crate) async fn join(
        state: &BrokerState,
        version: i16,
        req: JoinGroupRequest,
    ) -> JoinGroupResponse {
        let ResponseKind::JoinGroup(r) = wait(handle(state, &ctx(version), req)).await else {
            panic!("not a JoinGroup response");
        };
        encodes(&r, version);
        r
    }

    #[tokio::test]
    async fn kip_394_member_id_round_trip_then_a_lone_member_leads() {
        let t = test_state();
        let first = join(&t, 9, join_request("g", "", &["t"])).await;
        assert_eq!(first.error_code, MEMBER_ID_REQUIRED);
        assert!(first.member_id.starts_with("test-client-"));
        assert_eq!(first.generation_id, -1);
        assert_eq!(first.protocol_name, None, "null from v7 on");
        let id = first.member_id.to_string();
        let joined = join(&t, 9, join_request("g", &id, &["t"])).await;
        assert_eq!(joined.error_code, 0);
        assert_eq!(joined.generation_id, 1);
        assert_eq!(joined.leader.as_str(), id);
        assert_eq!(joined.protocol_type.as_deref(), Some("consumer"));
        assert_eq!(joined.protocol_name.as_deref(), Some("range"));
        assert_eq!(joined.members.len(), 1);
    }

    #[tokio::test]
    async fn before_v4_a_member_gets_its_id_in_one_join() {
        let t = test_state();
        let r = join(&t, 3, join_request("g", "", &["t"])).await;
        assert_eq!(r.error_code, 0);
        assert!(!r.member_id.is_empty());
        assert_eq!(r.leader, r.member_id);
    }

    #[tokio::test]
    async fn errors_keep_the_member_id_and_no_generation() {
        let t = test_state();
        let r = join(&t, 5, join_request("", "m", &["t"])).await;
        assert_eq!(r.error_code, INVALID_GROUP_ID);
        assert_eq!(r.member_id.as_str(), "m");
        assert_eq!(r.protocol_name.as_deref(), Some(""), "empty before v7");
        // A member id the group does not know.
        let r = join(&t, 5, join_request("g", "nobody", &["t"])).await;
        assert_eq!(r.error_code, 25);
        // A session timeout below group.min.session.timeout.ms.
        let r = join(
            &t,
            5,
            join_request("g", "", &["t"]).with_session_timeout_ms(1),
        )
        .await;
        assert_eq!(r.error_code, 26);
    }

    #[tokio::test]
    async fn a_static_leader_rejoining_a_stable_group_skips_the_assignment() {
        let t = test_state();
        let static_join = |member: &str| {
            join_request("g", member, &["t"]).with_group_instance_id(Some(sb("instance-1")))
        };
        // Static members join without the KIP-394 round trip.
        let first = join(&t, 9, static_join("")).await;
        assert_eq!(first.error_code, 0);
        let old_id = first.member_id.to_string();
        assert_eq!(first.leader.as_str(), old_id);
        let sync = crate::handlers::sync_group::tests::sync(
            &t,
            5,
            "g",
            first.generation_id,
            &old_id,
            vec![(old_id.clone(), Bytes::from_static(b"a"))],
        )
        .await;
        assert_eq!(sync.error_code, 0);
        // v9: the new id leads, with the members, but must not assign.
        let again = join(&t, 9, static_join("")).await;
        assert_eq!(again.error_code, 0);
        assert_ne!(again.member_id.as_str(), old_id);
        assert_eq!(again.leader, again.member_id);
        assert!(again.skip_assignment);
        assert_eq!(again.generation_id, first.generation_id, "no rebalance");
        assert_eq!(again.members.len(), 1);
        // Before v9: the replaced id is named leader and no members are given.
        let newest_old = again.member_id.to_string();
        let old_style = join(&t, 8, static_join("")).await;
        assert_eq!(old_style.error_code, 0);
        assert_eq!(old_style.leader.as_str(), newest_old);
        assert!(old_style.members.is_empty());
        assert!(!old_style.skip_assignment);
        // The fenced old id is refused.
        let fenced = join(&t, 9, static_join(&old_id)).await;
        assert_eq!(fenced.error_code, 82);
    }

    #[tokio::test]
    async fn every_version_encodes() {
        let t = test_state();
        for v in 0..=9 {
            let group = format!("g{v}");
            let mut r = join(&t, v, join_request(&group, "", &["t"])).await;
            if r.error_code == MEMBER_ID_REQUIRED {
                let id = r.member_id.to_string();
                r = join(&t, v, join_request(&group, &id, &["t"])).await;
            }
            assert_eq!(r.error_code, 0, "v{v}");
            assert_eq!(r.members.len(), 1, "v{v}");
            let _ = join(&t, v, join_request("", "", &["t"])).await;
        }
    }
}
