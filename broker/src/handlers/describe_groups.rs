//! DescribeGroups: each group's state, protocol type and members; in a Stable group also the
//! chosen protocol and each member's metadata and assignment (Kafka leaves them empty in the
//! other states). A group that does not exist is described, without error, as `Dead` with
//! nothing in it, as Kafka does before v6.
//!
//! Versions: v3 brings the authorized operations, v4 the members' `group.instance.id`.

use bytes::Bytes;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse};
use sluice_log::ErrorCode;
use sluice_log::group::GroupState;

use super::{RequestContext, sb};
use crate::state::BrokerState;

/// READ, DELETE, DESCRIBE (Kafka's AclOperation codes 3, 6, 8 as bits): every operation on a
/// group, all allowed without ACLs.
const GROUP_OPERATIONS: i32 = (1 << 3) | (1 << 6) | (1 << 8);

pub(crate) fn handle(
    state: &BrokerState,
    ctx: &RequestContext,
    req: DescribeGroupsRequest,
) -> DescribeGroupsResponse {
    let version = ctx.api_version;
    let groups = req
        .groups
        .into_iter()
        .map(|group_id| {
            let described = match state.groups.describe_group(&group_id) {
                Ok(d) => {
                    let stable = d.state == GroupState::Stable;
                    let members = d
                        .members
                        .into_iter()
                        .map(|m| {
                            let member = DescribedGroupMember::default()
                                .with_member_id(sb(m.member_id))
                                .with_client_id(sb(m.client_id))
                                .with_client_host(sb(m.client_host))
                                .with_member_metadata(if stable {
                                    m.metadata
                                } else {
                                    Bytes::new()
                                })
                                .with_member_assignment(m.assignment);
                            if version >= 4 {
                                member.with_group_instance_id(m.group_instance_id.map(sb))
                            } else {
                                member
                            }
                        })
                        .collect();
                    DescribedGroup::default()
                        .with_group_id(group_id)
                        .with_group_state(sb(d.state.as_str()))
                        .with_protocol_type(sb(d.protocol_type))
                        .with_protocol_data(sb(if stable { d.protocol } else { String::new() }))
                        .with_members(members)
                }
                // v6 (KIP-1043) answers GROUP_ID_NOT_FOUND; earlier versions a Dead group.
                Err(sluice_log::Error::GroupIdNotFound(_)) if version >= 6 => {
                    let message = format!("Group {} not found.", group_id.as_str());
                    DescribedGroup::default()
                        .with_group_id(group_id)
                        .with_error_code(ErrorCode::GROUP_ID_NOT_FOUND.code())
                        .with_error_message(Some(sb(message)))
                }
                Err(sluice_log::Error::GroupIdNotFound(_)) => DescribedGroup::default()
                    .with_group_id(group_id)
                    .with_group_state(sb(GroupState::Dead.as_str())),
                Err(e) => {
                    let described = DescribedGroup::default()
                        .with_group_id(group_id)
                        .with_error_code(e.error_code());
                    if version >= 6 {
                        described.with_error_message(Some(sb(sluice_log::report(&e))))
                    } else {
                        described
                    }
                }
            };
            if version >= 3 && req.include_authorized_operations {
                described.with_authorized_operations(GROUP_OPERATIONS)
            } else {
                described
            }
        })
        .collect();
    DescribeGroupsResponse::default().with_groups(groups)
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::GroupId;

    use super::*;
    use crate::handlers::join_group::tests::{join, join_request};
    use crate::handlers::sync_group::tests::sync;
    use crate::handlers::test_util::{ctx, encodes, test_state};

    fn describe(state: &BrokerState, version: i16, groups: &[&str]) -> DescribeGroupsResponse {
        let req = DescribeGroupsRequest::default()
            .with_groups(groups.iter().map(|g| GroupId(sb(*g))).collect())
            .with_include_authorized_operations(version >= 3);
        let r = handle(state, &ctx(version), req);
        encodes(&r, version);
        r
    }

    #[tokio::test]
    async fn a_stable_group_and_a_missing_one() {
        let t = test_state();
        let r = join(
            &t,
            5,
            join_request("g", "", &["t"]).with_group_instance_id(Some(sb("i-1"))),
        )
        .await;
        let id = r.member_id.to_string();
        let s = sync(
            &t,
            3,
            "g",
            r.generation_id,
            &id,
            vec![(id.clone(), Bytes::from_static(b"asg"))],
        )
        .await;
        assert_eq!(s.error_code, 0);
        let r = describe(&t, 5, &["g", "missing"]);
        let g = &r.groups[0];
        assert_eq!(g.error_code, 0);
        assert_eq!(g.group_state.as_str(), "Stable");
        assert_eq!(g.protocol_type.as_str(), "consumer");
        assert_eq!(g.protocol_data.as_str(), "range");
        assert_eq!(g.authorized_operations, GROUP_OPERATIONS);
        assert_eq!(g.members.len(), 1);
        let m = &g.members[0];
        assert_eq!(m.member_id.as_str(), id);
        assert_eq!(m.group_instance_id.as_deref(), Some("i-1"));
        assert_eq!(m.client_id.as_str(), "test-client");
        assert_eq!(m.client_host.as_str(), "/127.0.0.1");
        assert_eq!(m.member_assignment.as_ref(), b"asg");
        let sub = sluice_log::group::Subscription::decode(&m.member_metadata).unwrap();
        assert_eq!(sub.topics, vec!["t".to_owned()]);
        let missing = &r.groups[1];
        assert_eq!(
            (missing.error_code, missing.group_state.as_str()),
            (0, "Dead")
        );
        assert!(missing.members.is_empty());
    }

    #[tokio::test]
    async fn version_6_answers_a_missing_group_with_group_id_not_found() {
        let t = test_state();
        let r = describe(&t, 6, &["missing"]);
        let g = &r.groups[0];
        assert_eq!(g.error_code, ErrorCode::GROUP_ID_NOT_FOUND.code());
        assert_eq!(g.error_message.as_deref(), Some("Group missing not found."));
        assert!(g.members.is_empty());
        // Version 5 still answers a Dead group without an error.
        let g = &describe(&t, 5, &["missing"]).groups[0];
        assert_eq!((g.error_code, g.group_state.as_str()), (0, "Dead"));
    }

    #[tokio::test]
    async fn only_a_stable_group_shows_its_protocol_and_metadata() {
        let t = test_state();
        let r = join(&t, 3, join_request("g", "", &["t"])).await;
        assert_eq!(r.error_code, 0);
        let r = describe(&t, 5, &["g"]);
        let g = &r.groups[0];
        assert_eq!(g.group_state.as_str(), "CompletingRebalance");
        assert_eq!(g.protocol_type.as_str(), "consumer");
        assert_eq!(g.protocol_data.as_str(), "");
        assert!(g.members[0].member_metadata.is_empty());
    }

    #[tokio::test]
    async fn every_version_encodes() {
        let t = test_state();
        let r = join(
            &t,
            5,
            join_request("g", "", &["t"]).with_group_instance_id(Some(sb("i-1"))),
        )
        .await;
        assert_eq!(r.error_code, 0);
        for v in 0..=6 {
            let r = describe(&t, v, &["g", "missing"]);
            assert_eq!(r.groups.len(), 2, "v{v}");
            assert_eq!(r.groups[0].members.len(), 1, "v{v}");
        }
    }
}
