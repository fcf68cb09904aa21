//! DescribeCluster: the cluster id, this broker as the only broker and the controller, and
//! (when asked) the cluster operations allowed. A broker answers for the brokers endpoint only:
//! asked for the controllers, it answers MISMATCHED_ENDPOINT_TYPE, as Kafka's brokers do.
//! v2 (KIP-1073) may ask for fenced brokers too and tells which are: this one never is.

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};

use super::metadata::CLUSTER_OPERATIONS;
use super::{RequestContext, sb};
use crate::handlers::codes::{MISMATCHED_ENDPOINT_TYPE, UNSUPPORTED_ENDPOINT_TYPE};
use crate::state::BrokerState;

const BROKERS: i8 = 1;
const CONTROLLERS: i8 = 2;

pub(crate) fn handle(
    state: &BrokerState,
    _ctx: &RequestContext,
    req: DescribeClusterRequest,
) -> DescribeClusterResponse {
    let node = BrokerId(state.config.node_id);
    // v0 has no endpoint type: it is the brokers'.
    let refused = match req.endpoint_type {
        BROKERS => None,
        CONTROLLERS => Some((
            MISMATCHED_ENDPOINT_TYPE,
            "The request was sent to an endpoint of type BROKER, but we wanted an endpoint of type CONTROLLER".to_owned(),
        )),
        other => Some((
            UNSUPPORTED_ENDPOINT_TYPE,
            format!("Unsupported endpoint type {other}"),
        )),
    };
    if let Some((code, message)) = refused {
        return DescribeClusterResponse::default()
            .with_error_code(code)
            .with_error_message(Some(sb(message)));
    }
    let r = DescribeClusterResponse::default()
        .with_cluster_id(sb(state.config.cluster_id.clone()))
        .with_controller_id(node)
        .with_brokers(vec![
            DescribeClusterBroker::default()
                .with_broker_id(node)
                .with_host(sb(state.advertised.host.clone()))
                .with_port(i32::from(state.advertised.port)),
        ]);
    if req.include_cluster_authorized_operations {
        // No ACLs yet: every cluster operation is allowed.
        r.with_cluster_authorized_operations(CLUSTER_OPERATIONS)
    } else {
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handlers::test_util::{ctx, encodes, test_state};

    #[test]
    fn describes_the_one_broker() {
        let b = test_state();
        for v in 0..=1 {
            let r = handle(&b, &ctx(v), DescribeClusterRequest::default());
            encodes(&r, v);
            assert_eq!(r.error_code, 0);
            assert_eq!(r.cluster_id.as_str(), b.config.cluster_id);
            assert_eq!(r.controller_id.0, b.config.node_id);
            assert_eq!(r.brokers.len(), 1);
            assert_eq!(r.brokers[0].port, 9092);
            assert_eq!(r.cluster_authorized_operations, i32::MIN);
            let r = handle(
                &b,
                &ctx(v),
                DescribeClusterRequest::default().with_include_cluster_authorized_operations(true),
            );
            assert_eq!(r.cluster_authorized_operations, CLUSTER_OPERATIONS);
            encodes(&r, v);
        }
        for (endpoint, code) in [
            (2, MISMATCHED_ENDPOINT_TYPE),
            (7, UNSUPPORTED_ENDPOINT_TYPE),
        ] {
            let r = handle(
                &b,
                &ctx(1),
                DescribeClusterRequest::default().with_endpoint_type(endpoint),
            );
            assert_eq!(r.error_code, code);
            assert!(r.brokers.is_empty());
            encodes(&r, 1);
        }
    }
}
