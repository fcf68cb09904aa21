//! FindCoordinator: this broker coordinates every group and every transactional id.

use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};

use super::{RequestContext, sb};
use crate::handlers::codes::INVALID_REQUEST;
use crate::state::BrokerState;

pub(crate) fn handle(
    state: &BrokerState,
    ctx: &RequestContext,
    req: FindCoordinatorRequest,
) -> FindCoordinatorResponse {
    let node = BrokerId(state.config.node_id);
    let host = sb(state.advertised.host.clone());
    let port = i32::from(state.advertised.port);
    // key_type 0 = group, 1 = transaction; anything else is not a coordinator this knows.
    let error = if (0..=1).contains(&req.key_type) {
        0
    } else {
        INVALID_REQUEST
    };
    if ctx.api_version >= 4 {
        let coordinators = req
            .coordinator_keys
            .into_iter()
            .map(|key| {
                let c = Coordinator::default().with_key(key).with_error_code(error);
                if error == 0 {
                    c.with_node_id(node).with_host(host.clone()).with_port(port)
                } else {
                    c.with_node_id(BrokerId(-1))
                        .with_error_message(Some(sb(format!("unknown key type {}", req.key_type))))
                }
            })
            .collect();
        return FindCoordinatorResponse::default().with_coordinators(coordinators);
    }
    let r = FindCoordinatorResponse::default().with_error_code(error);
    if error != 0 {
        let r = r.with_node_id(BrokerId(-1));
        return if ctx.api_version >= 1 {
            r.with_error_message(Some(sb(format!("unknown key type {}", req.key_type))))
        } else {
            r
        };
    }
    r.with_node_id(node).with_host(host).with_port(port)
}
