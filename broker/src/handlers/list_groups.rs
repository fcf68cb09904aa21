//! ListGroups: every group with members or committed offsets.
//!
//! Versions: v4 brings the state of each group and a filter on it, v5 the group's type
//! (always `classic` here: this broker serves Kafka's classic group protocol) and a filter on
//! it. Filters match case-insensitively, as Kafka's do; an empty filter matches everything.

use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{GroupId, ListGroupsRequest, ListGroupsResponse};

use super::{RequestContext, sb};
use crate::state::BrokerState;

/// The type of every group of the classic protocol (KIP-848's `GroupType.CLASSIC`).
const CLASSIC: &str = "classic";

pub(crate) fn handle(
    state: &BrokerState,
    ctx: &RequestContext,
    req: ListGroupsRequest,
) -> ListGroupsResponse {
    let version = ctx.api_version;
    let matches = |filter: &[kafka_protocol::protocol::StrBytes], value: &str| {
        filter.is_empty() || filter.iter().any(|f| f.eq_ignore_ascii_case(value))
    };
    let groups = state
        .groups
        .list_groups()
        .into_iter()
        .filter(|g| version < 4 || matches(&req.states_filter, g.state.as_str()))
        .filter(|_| version < 5 || matches(&req.types_filter, CLASSIC))
        .map(|g| {
            let mut listed = ListedGroup::default()
                .with_group_id(GroupId(sb(g.group_id)))
                .with_protocol_type(sb(g.protocol_type));
            if version >= 4 {
                listed = listed.with_group_state(sb(g.state.as_str()));
            }
            if version >= 5 {
                listed = listed.with_group_type(sb(CLASSIC));
            }
            listed
        })
        .collect();
    ListGroupsResponse::default().with_groups(groups)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handlers::join_group::tests::{join, join_request};
    use crate::handlers::offset_commit::tests::{commit, commit_request};
    use crate::handlers::test_util::{ctx, encodes, test_state};

    fn list(
        state: &BrokerState,
        version: i16,
        req: ListGroupsRequest,
    ) -> Vec<(String, String, String)> {
        let r = handle(state, &ctx(version), req);
        encodes(&r, version);
        assert_eq!(r.error_code, 0);
        r.groups
            .iter()
            .map(|g| {
                (
                    g.group_id.to_string(),
                    g.protocol_type.to_string(),
                    g.group_state.to_string(),
                )
            })
            .collect()
    }

    #[tokio::test]
    async fn groups_with_members_or_offsets_filtered_by_state_and_type() {
        let t = test_state();
        t.log
            .create_topic("t", 1, std::iter::empty::<(&str, &str)>())
            .unwrap();
        let r = join(&t, 3, join_request("members", "", &["t"])).await;
        assert_eq!(r.error_code, 0);
        let req = commit_request("offsets-only", -1, "", &[("t", 0, 1, "")]);
        assert_eq!(commit(&t, 9, req).await[0].2, 0);
        assert_eq!(
            list(&t, 0, ListGroupsRequest::default()),
            vec![
                ("members".to_owned(), "consumer".to_owned(), String::new()),
                ("offsets-only".to_owned(), String::new(), String::new()),
            ]
        );
        let all = list(&t, 4, ListGroupsRequest::default());
        assert_eq!(all[0].2, "CompletingRebalance");
        assert_eq!(all[1].2, "Empty");
        let empty_only = ListGroupsRequest::default().with_states_filter(vec![sb("empty")]);
        let got = list(&t, 4, empty_only);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, "offsets-only");
        let stable = ListGroupsRequest::default().with_states_filter(vec![sb("Stable")]);
        assert!(list(&t, 5, stable).is_empty());
        let classic = ListGroupsRequest::default().with_types_filter(vec![sb("Classic")]);
        assert_eq!(list(&t, 5, classic).len(), 2);
        let consumer = ListGroupsRequest::default().with_types_filter(vec![sb("consumer")]);
        assert!(list(&t, 5, consumer).is_empty());
        let r = handle(&t, &ctx(5), ListGroupsRequest::default());
        assert!(r.groups.iter().all(|g| g.group_type.as_str() == CLASSIC));
    }

    #[tokio::test]
    async fn every_version_encodes() {
        let t = test_state();
        let r = join(&t, 3, join_request("g", "", &["t"])).await;
        assert_eq!(r.error_code, 0);
        for v in 0..=5 {
            assert_eq!(list(&t, v, ListGroupsRequest::default()).len(), 1, "v{v}");
        }
    }
}
