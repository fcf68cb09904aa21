//! Handler tests without sockets: a [`BrokerState`] over a temporary log, built as
//! `Broker::bind` builds it, and the little things every test needs.

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use kafka_protocol::protocol::Encodable;
use sluice_log::client::embedded::EmbeddedClient;
use sluice_log::group::GroupCoordinatorConfig;
use sluice_log::log::{LogManager, LogManagerConfig};
use sluice_log::record::BatchBuilder;
use sluice_log::{Compression, TopicPartition};

use super::fetch_session::FetchSessions;
use super::{Reply, RequestContext};
use crate::Principal;
use crate::config::{BrokerConfig, Listener};
use crate::state::BrokerState;

/// A broker state and the directory its log lives in (removed on drop).
pub(crate) struct TestBroker {
    pub(crate) state: Arc<BrokerState>,
    _dir: tempfile::TempDir,
}

impl std::ops::Deref for TestBroker {
    type Target = BrokerState;
    fn deref(&self) -> &BrokerState {
        &self.state
    }
}

/// A broker with the default settings.
pub(crate) fn broker() -> TestBroker {
    broker_with(BrokerConfig::default())
}

/// A broker with `config` (its `log.dirs` replaced by a temporary directory).
pub(crate) fn broker_with(mut config: BrokerConfig) -> TestBroker {
    let dir = tempfile::tempdir().expect("temporary directory");
    config.log_dir = dir.path().to_path_buf();
    let mut log_config = LogManagerConfig::new(&config.log_dir);
    log_config.defaults = config.topic_defaults().expect("topic defaults");
    let log = LogManager::open(log_config).expect("open the log");
    let client = EmbeddedClient::new(log.clone());
    let groups = client
        .group_coordinator_with(GroupCoordinatorConfig {
            min_session_timeout_ms: config.group_min_session_timeout_ms,
            max_session_timeout_ms: config.group_max_session_timeout_ms,
            initial_rebalance_delay_ms: 0,
            ..GroupCoordinatorConfig::default()
        })
        .expect("group coordinator");
    let txns = client
        .transaction_coordinator()
        .expect("transaction coordinator");
    let advertised = Listener {
        name: "PLAINTEXT".into(),
        host: "127.0.0.1".into(),
        port: 9092,
    };
    let state = Arc::new(BrokerState {
        config,
        advertised,
        log,
        groups,
        txns,
        client,
        fetch_sessions: FetchSessions::default(),
    });
    TestBroker { state, _dir: dir }
}

/// A request context of `version`.
pub(crate) fn ctx(version: i16) -> RequestContext {
    RequestContext {
        principal: Arc::new(Principal::anonymous()),
        client_id: "test".into(),
        client_host: "/127.0.0.1".into(),
        api_version: version,
    }
}

/// Encodes `response` at `version`, failing the test if the encoder refuses (a field set that
/// the version does not have).
pub(crate) fn encodes(response: &impl Encodable, version: i16) {
    let mut buf = BytesMut::new();
    if let Err(e) = response.encode(&mut buf, version) {
        panic!("encoding at v{version}: {e:#}");
    }
}

/// The response of a `Reply`, waiting (at most 10 s) for a deferred one.
pub(crate) async fn resolve(reply: Reply) -> kafka_protocol::messages::ResponseKind {
    match reply {
        Reply::Now(r) => r,
        Reply::Later(f) => tokio::time::timeout(Duration::from_secs(10), f)
            .await
            .expect("deferred response within 10 s"),
        other => panic!("expected a response, got {other:?}"),
    }
}

/// A transactional batch of `values` from `producer_id`/`epoch` starting at `sequence`.
pub(crate) fn txn_batch(producer_id: i64, epoch: i16, sequence: i32, values: &[&str]) -> Vec<u8> {
    let mut b = BatchBuilder::new(Compression::None)
        .producer(producer_id, epoch, sequence)
        .transactional();
    for v in values {
        b.append(1_700_000_000_000, None, Some(v.as_bytes()), &[]);
    }
    b.build()
}

/// A plain batch of `values`.
pub(crate) fn plain_batch(values: &[&str]) -> Vec<u8> {
    let mut b = BatchBuilder::new(Compression::None);
    for v in values {
        b.append(1_700_000_000_000, None, Some(v.as_bytes()), &[]);
    }
    b.build()
}

/// Record values of `tp` a read_committed consumer sees from offset 0 (aborted transactions
/// and markers skipped).
pub(crate) fn committed_values(state: &BrokerState, tp: &TopicPartition) -> Vec<String> {
    use sluice_log::record::{BatchIter, ControlRecord, decode_records};
    let p = state.log.partition(tp).expect("partition");
    let data = p.read_committed(0, 1 << 20).expect("read");
    let aborted: Vec<(i64, i64)> = data
        .aborted_transactions
        .iter()
        .map(|a| (a.producer_id, a.first_offset))
        .collect();
    let mut skipping = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    for (h, range) in BatchIter::new(&data.records) {
        for &(pid, first) in &aborted {
            if first <= h.last_offset() && first >= h.base_offset {
                skipping.insert(pid);
            }
        }
        let records: Vec<_> = decode_records(&data.records.slice(range), 1 << 20)
            .expect("decode")
            .map(|r| r.expect("record"))
            .collect();
        if h.is_control() {
            let abort = records
                .first()
                .and_then(|r| r.key.as_deref())
                .and_then(ControlRecord::parse)
                == Some(ControlRecord::Abort);
            if abort {
                skipping.remove(&h.producer_id);
            }
            continue;
        }
        if h.is_transactional() && skipping.contains(&h.producer_id) {
            continue;
        }
        for r in records {
            out.push(String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned());
        }
    }
    out
}

/// Creates `name` with `partitions` partitions and the defaults.
pub(crate) fn create_topic(state: &BrokerState, name: &str, partitions: i32) {
    state
        .log
        .create_topic(name, partitions, std::iter::empty::<(&str, &str)>())
        .expect("create the topic");
}
