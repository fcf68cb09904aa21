//! DescribeCluster: the cluster id, this broker as the only broker and the controller, and
//! (when asked) the cluster operations allowed. A broker answers for the brokers endpoint only,
//! as Kafka's brokers do.

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};

use super::metadata::CLUSTER_OPERATIONS;
use super::{RequestContext, sb};
use crate::state::BrokerState;

const UNSUPPORTED_ENDPOINT_TYPE: i16 = 115;
const BROKERS: i8 = 1;

pub(crate) fn handle(
    state: &BrokerState,
    ctx: &RequestContext,
    req: DescribeClusterRequest,
) -> DescribeClusterResponse {
    let node = BrokerId(state.config.node_id);
    if ctx.api_version >= 1 && req.endpoint_type != BROKERS {
        return DescribeClusterResponse::default()
            .with_error_code(UNSUPPORTED_ENDPOINT_TYPE)
            .with_error_message(Some(sb(format!(
                "The request was sent to an endpoint of type BROKER, but endpoint type {} was asked for",
                req.endpoint_type
            ))));
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
    use crate::handlers::txn_test_util::{broker, ctx, encodes};

    #[test]
    fn describes_the_one_broker() {
        let b = broker();
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
        let r = handle(
            &b,
            &ctx(1),
            DescribeClusterRequest::default().with_endpoint_type(2),
        );
        assert_eq!(r.error_code, UNSUPPORTED_ENDPOINT_TYPE);
        assert!(r.brokers.is_empty());
        encodes(&r, 1);
    }
}
