//! A broker state over a temporary log, for handler tests that call `handle` directly.

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::protocol::{Encodable, StrBytes};
use sluice_log::record::BatchBuilder;
use sluice_log::{Compression, TopicPartition};

use super::{Reply, RequestContext};
use crate::Principal;
use crate::config::BrokerConfig;
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

/// A `BrokerState` as `Broker::bind` opens it (no listener), over a temporary log, with no
/// initial rebalance delay so a group's first join completes at once.
pub(crate) fn test_state() -> TestBroker {
    broker_with(BrokerConfig::default())
}

/// As [`test_state`], with `config` (its `log.dirs` replaced by a temporary directory, its
/// initial rebalance delay by 0).
pub(crate) fn broker_with(mut config: BrokerConfig) -> TestBroker {
    let dir = tempfile::tempdir().expect("temp dir");
    config.log_dir = dir.path().to_path_buf();
    config.group_initial_rebalance_delay_ms = 0;
    TestBroker {
        state: Arc::new(BrokerState::open(config).expect("open the broker state")),
        _dir: dir,
    }
}

/// A request context at `version`.
pub(crate) fn ctx(version: i16) -> RequestContext {
    RequestContext {
        principal: Arc::new(Principal::anonymous()),
        client_id: StrBytes::from_static_str("test-client"),
        client_host: Arc::from("/127.0.0.1"),
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
