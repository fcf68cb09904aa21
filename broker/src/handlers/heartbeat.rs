//! Heartbeat: keeps a member's session alive; REBALANCE_IN_PROGRESS tells it to rejoin.
//! Versions: v3 brings `group.instance.id`.

use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse};
use kafka_protocol::protocol::StrBytes;

use super::RequestContext;
use crate::handlers::codes::INVALID_GROUP_ID;
use crate::state::BrokerState;

pub(crate) fn handle(
    state: &BrokerState,
    _ctx: &RequestContext,
    req: HeartbeatRequest,
) -> HeartbeatResponse {
    if req.group_id.is_empty() {
        return HeartbeatResponse::default().with_error_code(INVALID_GROUP_ID);
    }
    let instance = req.group_instance_id.as_ref().map(StrBytes::as_str);
    let code =
        match state
            .groups
            .heartbeat(&req.group_id, req.generation_id, &req.member_id, instance)
        {
            Ok(()) => 0,
            Err(e) => e.error_code(),
        };
    HeartbeatResponse::default().with_error_code(code)
}

#[cfg(test)]
pub(crate) mod tests {
    use bytes::Bytes;
    use kafka_protocol::messages::GroupId;

    use super::*;
    use crate::handlers::codes::{
        ILLEGAL_GENERATION, MEMBER_ID_REQUIRED, REBALANCE_IN_PROGRESS, UNKNOWN_MEMBER_ID,
    };
    use crate::handlers::join_group::tests::{join, join_request};
    use crate::handlers::join_group::{self};
    use crate::handlers::sync_group::tests::{finish_sync, start_sync, sync_request};
    use crate::handlers::test_util::{ctx, encodes, response, test_state};
    use crate::handlers::{Reply, sb};

    pub(crate) fn beat(
        state: &BrokerState,
        version: i16,
        group: &str,
        generation: i32,
        member: &str,
    ) -> i16 {
        let req = HeartbeatRequest::default()
            .with_group_id(GroupId(sb(group)))
            .with_generation_id(generation)
            .with_member_id(sb(member));
        let r = handle(state, &ctx(version), req);
        encodes(&r, version);
        r.error_code
    }

    /// Starts a join of a known member; the reply comes when the rebalance completes.
    fn start_join(state: &BrokerState, member: &str, topics: &[&str]) -> Reply {
        join_group::handle(state, &ctx(9), join_request("g", member, topics))
    }

    async fn finish_join(reply: Reply) -> kafka_protocol::messages::JoinGroupResponse {
        let kafka_protocol::messages::ResponseKind::JoinGroup(r) = response(reply).await else {
            panic!("not a JoinGroup response");
        };
        r
    }

    /// A member id from the KIP-394 round trip.
    async fn member_id(state: &BrokerState) -> String {
        let r = join(state, 9, join_request("g", "", &["t"])).await;
        assert_eq!(r.error_code, MEMBER_ID_REQUIRED);
        r.member_id.to_string()
    }

    #[tokio::test]
    async fn two_members_sync_then_a_third_joins_and_everyone_rejoins() {
        let t = test_state();
        let (a, b) = (member_id(&t).await, member_id(&t).await);
        // A's join waits for B, who holds a pending member id.
        let join_a = start_join(&t, &a, &["t"]);
        let join_b = start_join(&t, &b, &["u"]);
        let (ra, rb) = (finish_join(join_a).await, finish_join(join_b).await);
        assert_eq!((ra.error_code, rb.error_code), (0, 0));
        assert_eq!(ra.generation_id, 1);
        assert_eq!(rb.generation_id, 1);
        assert_eq!(ra.leader.as_str(), a, "the first to join leads");
        assert_eq!(rb.leader.as_str(), a);
        assert!(rb.members.is_empty(), "only the leader gets the members");
        let subscriptions: Vec<(String, Vec<String>)> = ra
            .members
            .iter()
            .map(|m| {
                let s = sluice_log::group::Subscription::decode(&m.metadata).expect("subscription");
                let topics = s.topics.iter().map(ToString::to_string).collect();
                (m.member_id.to_string(), topics)
            })
            .collect();
        assert_eq!(
            subscriptions,
            vec![
                (a.clone(), vec!["t".to_owned()]),
                (b.clone(), vec!["u".to_owned()])
            ]
        );
        // B's SyncGroup waits for the leader's.
        let sync_b = start_sync(&t, 5, sync_request(5, "g", 1, &b, vec![]));
        let assignments = vec![
            (a.clone(), Bytes::from_static(b"for a")),
            (b.clone(), Bytes::from_static(b"for b")),
        ];
        let sync_a = start_sync(&t, 5, sync_request(5, "g", 1, &a, assignments));
        let (sa, sb_) = (finish_sync(sync_a, 5).await, finish_sync(sync_b, 5).await);
        assert_eq!((sa.error_code, sb_.error_code), (0, 0));
        assert_eq!(sa.assignment.as_ref(), b"for a");
        assert_eq!(sb_.assignment.as_ref(), b"for b");
        assert_eq!(beat(&t, 4, "g", 1, &a), 0);
        assert_eq!(beat(&t, 4, "g", 1, &b), 0);
        // C joins: the group prepares a rebalance and A and B are told to rejoin.
        let c = member_id(&t).await;
        let join_c = start_join(&t, &c, &["t"]);
        assert_eq!(beat(&t, 4, "g", 1, &a), REBALANCE_IN_PROGRESS);
        assert_eq!(beat(&t, 0, "g", 1, &b), REBALANCE_IN_PROGRESS);
        let join_a = start_join(&t, &a, &["t"]);
        let join_b = start_join(&t, &b, &["u"]);
        let (ra, rb, rc) = (
            finish_join(join_a).await,
            finish_join(join_b).await,
            finish_join(join_c).await,
        );
        assert_eq!((ra.error_code, rb.error_code, rc.error_code), (0, 0, 0));
        assert_eq!(ra.generation_id, 2);
        assert_eq!(ra.members.len(), 3);
        assert_eq!(rc.leader.as_str(), a);
        // The old generation is stale now; a stranger is unknown.
        assert_eq!(beat(&t, 4, "g", 1, &a), ILLEGAL_GENERATION);
        assert_eq!(beat(&t, 4, "g", 2, "stranger"), UNKNOWN_MEMBER_ID);
        assert_eq!(beat(&t, 4, "nogroup", 2, &a), UNKNOWN_MEMBER_ID);
        assert_eq!(beat(&t, 4, "", 2, &a), INVALID_GROUP_ID);
        // Waiting for the leader's assignment still counts as alive.
        assert_eq!(beat(&t, 4, "g", 2, &c), 0);
    }

    #[tokio::test]
    async fn every_version_encodes() {
        let t = test_state();
        for v in 0..=4 {
            let _ = beat(&t, v, "g", 1, "m");
            let _ = beat(&t, v, "", 1, "m");
        }
    }
}
