//! A broker state over a temporary log, for handler tests that call `handle` directly.

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::protocol::Encodable;
use sluice_log::client::embedded::EmbeddedClient;
use sluice_log::group::GroupCoordinatorConfig;
use sluice_log::log::{LogManager, LogManagerConfig};

use super::{Reply, RequestContext};
use crate::Principal;
use crate::config::BrokerConfig;
use crate::handlers::fetch_session::FetchSessions;
use crate::state::BrokerState;

/// A state and the directory its log lives in; closes the log when dropped.
pub(crate) struct TestBroker {
    pub(crate) state: Arc<BrokerState>,
    _dir: tempfile::TempDir,
}

impl std::ops::Deref for TestBroker {
    type Target = Arc<BrokerState>;

    fn deref(&self) -> &Arc<BrokerState> {
        &self.state
    }
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        // Ignored error: a test that broke the log has already failed on it.
        let _ = self.state.log.close();
    }
}

/// A `BrokerState` built as `Broker::bind` builds it (no listener), over a temporary log,
/// with no initial rebalance delay so a group's first join completes at once.
pub(crate) fn test_state() -> TestBroker {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = BrokerConfig::default();
    config.log_dir = dir.path().to_path_buf();
    config.group_initial_rebalance_delay_ms = 0;
    let mut log_config = LogManagerConfig::new(&config.log_dir);
    log_config.defaults = config.topic_defaults().expect("topic defaults");
    let log = LogManager::open(log_config).expect("open log");
    let client = EmbeddedClient::new(log.clone());
    let groups = client
        .group_coordinator_with(GroupCoordinatorConfig {
            min_session_timeout_ms: config.group_min_session_timeout_ms,
            max_session_timeout_ms: config.group_max_session_timeout_ms,
            initial_rebalance_delay_ms: config.group_initial_rebalance_delay_ms,
            ..GroupCoordinatorConfig::default()
        })
        .expect("group coordinator");
    let txns = client.transaction_coordinator().expect("txn coordinator");
    let advertised = config.listener.clone();
    TestBroker {
        state: Arc::new(BrokerState {
            config,
            advertised,
            log,
            groups,
            txns,
            client,
            fetch_sessions: FetchSessions::default(),
        }),
        _dir: dir,
    }
}

/// A request context at `version`.
pub(crate) fn ctx(version: i16) -> RequestContext {
    RequestContext {
        principal: Arc::new(Principal::anonymous()),
        client_id: "test-client".into(),
        client_host: "/127.0.0.1".into(),
        api_version: version,
    }
}

/// How long a test waits for any response.
pub(crate) const WAIT: Duration = Duration::from_secs(10);

/// The response of a reply, waiting (bounded) for a `Later` one.
pub(crate) async fn response(reply: Reply) -> kafka_protocol::messages::ResponseKind {
    match reply {
        Reply::Now(r) => r,
        Reply::Later(f) => tokio::time::timeout(WAIT, f)
            .await
            .expect("response within the wait"),
        other => panic!("expected a response, got {other:?}"),
    }
}

/// Encodes `message` at `version`: a field set that the version does not have fails here.
pub(crate) fn encodes<M: Encodable>(message: &M, version: i16) {
    let mut buf = bytes::BytesMut::new();
    if let Err(e) = message.encode(&mut buf, version) {
        panic!("v{version}: {e:#}");
    }
}
