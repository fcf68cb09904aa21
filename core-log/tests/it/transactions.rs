//! Transactions in the log: markers, the last stable offset, the transaction index,
//! read_committed reads and consumers, fencing, recovery.

use std::sync::Arc;
use std::time::Duration;

use sluice_log::client::config::ConsumerConfig;
use sluice_log::client::embedded::EmbeddedClient;
use sluice_log::client::{Client, Consumer};
use sluice_log::log::{AbortedTransaction, AppendOrigin, LogManager, LogManagerConfig, Partition};
use sluice_log::record::{BatchBuilder, BatchIter, ControlRecord, decode_records};
use sluice_log::{Compression, Error, MockClock, TopicPartition};

const NOW: i64 = 1_700_000_000_000;

fn open(dir: &std::path::Path, clock: &MockClock) -> LogManager {
    let mut c = LogManagerConfig::new(dir);
    c.clock = Arc::new(clock.clone());
    c.background = false;
    LogManager::open(c).unwrap()
}

/// A transactional batch of `values` from `pid`/`epoch` starting at sequence `seq`.
fn txn_batch(pid: i64, epoch: i16, seq: i32, values: &[&str]) -> Vec<u8> {
    let mut b = BatchBuilder::new(Compression::None)
        .producer(pid, epoch, seq)
        .transactional();
    for v in values {
        b.append(NOW, None, Some(v.as_bytes()), &[]);
    }
    b.build()
}

fn plain_batch(values: &[&str]) -> Vec<u8> {
    let mut b = BatchBuilder::new(Compression::None);
    for v in values {
        b.append(NOW, None, Some(v.as_bytes()), &[]);
    }
    b.build()
}

/// Values as a read_committed consumer sees them, reading the partition directly with Kafka's
/// consumer rules, from `from` up to the last stable offset.
fn committed_values(p: &Partition, from: i64) -> Vec<String> {
    let mut out = Vec::new();
    let mut at = from;
    while at < p.last_stable_offset() {
        let data = p.read_committed(at, 1 << 20).unwrap();
        assert!(data.last_stable_offset <= data.high_watermark);
        let mut pending: Vec<AbortedTransaction> = data.aborted_transactions.clone();
        pending.sort_by_key(|a| a.first_offset);
        let mut aborted = std::collections::BTreeSet::new();
        let mut progressed = false;
        for (h, range) in BatchIter::new(&data.records) {
            assert!(h.last_offset() < data.last_stable_offset);
            while pending
                .first()
                .is_some_and(|a| a.first_offset <= h.last_offset())
            {
                aborted.insert(pending.remove(0).producer_id);
            }
            let batch = data.records.slice(range);
            let records: Vec<_> = decode_records(&batch, 1 << 24)
                .unwrap()
                .map(|r| r.unwrap())
                .collect();
            if h.is_control() {
                if ControlRecord::parse(records[0].key.as_deref().unwrap())
                    == Some(ControlRecord::Abort)
                {
                    aborted.remove(&h.producer_id);
                }
            } else if !(h.is_transactional() && aborted.contains(&h.producer_id)) {
                for r in records.iter().filter(|r| r.offset >= at) {
                    out.push(String::from_utf8(r.value.clone().unwrap().to_vec()).unwrap());
                }
            }
            at = at.max(h.next_offset());
            progressed = true;
        }
        assert!(progressed, "no progress at {at}");
    }
    out
}

fn setup(dir: &std::path::Path, clock: &MockClock) -> (LogManager, Arc<Partition>) {
    let log = open(dir, clock);
    if log.list_topics().is_empty() {
        log.create_topic("t", 1, [("segment.bytes", "100000")])
            .unwrap();
    }
    let p = log.partition(&TopicPartition::new("t", 0)).unwrap();
    (log, p)
}

#[test]
fn commit_shows_records_to_read_committed_and_abort_never_does() {
    let dir = tempfile::tempdir().unwrap();
    let clock = MockClock::new(NOW);
    let (_log, p) = setup(dir.path(), &clock);
    p.append(txn_batch(1, 0, 0, &["a1", "a2"])).unwrap();
    p.append(txn_batch(2, 0, 0, &["b1"])).unwrap();
    p.append(plain_batch(&["plain"])).unwrap();
    p.append(txn_batch(1, 0, 2, &["a3"])).unwrap();
    assert_eq!(p.last_stable_offset(), 0);
    assert_eq!(p.ongoing_transactions(), [(1, 0), (2, 2)]);
    p.append_marker(1, 0, ControlRecord::Abort, 0).unwrap();
    // Producer 2's transaction still holds the LSO at its first offset.
    assert_eq!(p.last_stable_offset(), 2);
    p.append_marker(2, 0, ControlRecord::Commit, 0).unwrap();
    assert_eq!(p.last_stable_offset(), p.log_end_offset());
    assert_eq!(committed_values(&p, 0), ["b1", "plain"]);
    assert_eq!(
        p.aborted_transactions(0, 100),
        [AbortedTransaction {
            producer_id: 1,
            first_offset: 0
        }]
    );
    // read_uncommitted sees every data record (the markers are control batches).
    let all = p.read(0, 1 << 20).unwrap();
    assert!(all.aborted_transactions.is_empty());
    let data: usize = BatchIter::new(&all.records)
        .filter(|(h, _)| !h.is_control())
        .map(|(h, _)| h.record_count as usize)
        .sum();
    assert_eq!(data, 5);
    // A new transaction of producer 1 after its abort is visible once committed.
    p.append(txn_batch(1, 0, 3, &["a4"])).unwrap();
    p.append_marker(1, 0, ControlRecord::Commit, 0).unwrap();
    assert_eq!(committed_values(&p, 0), ["b1", "plain", "a4"]);
}

#[test]
fn the_last_stable_offset_holds_back_read_committed_readers() {
    let dir = tempfile::tempdir().unwrap();
    let clock = MockClock::new(NOW);
    let (_log, p) = setup(dir.path(), &clock);
    p.append(plain_batch(&["x"])).unwrap();
    p.append(txn_batch(7, 0, 0, &["t1"])).unwrap();
    p.append(plain_batch(&["y"])).unwrap();
    assert_eq!(p.last_stable_offset(), 1);
    let d = p.read_committed(0, 1 << 20).unwrap();
    assert_eq!((d.last_stable_offset, d.high_watermark), (1, 3));
    assert_eq!(BatchIter::new(&d.records).count(), 1);
    assert!(p.read_committed(1, 1 << 20).unwrap().records.is_empty());
    assert_eq!(committed_values(&p, 0), ["x"]);
    p.append_marker(7, 0, ControlRecord::Commit, 3).unwrap();
    assert_eq!(committed_values(&p, 0), ["x", "t1", "y"]);
}

#[test]
fn a_stale_epoch_is_fenced_by_a_newer_marker() {
    let dir = tempfile::tempdir().unwrap();
    let clock = MockClock::new(NOW);
    let (_log, p) = setup(dir.path(), &clock);
    p.append(txn_batch(3, 0, 0, &["zombie-1"])).unwrap();
    // The coordinator aborts with the bumped epoch: epoch 0 is fenced from then on.
    p.append_marker(3, 1, ControlRecord::Abort, 0).unwrap();
    let err = p.append(txn_batch(3, 0, 1, &["zombie-2"])).unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidProducerEpoch {
                current: 1,
                got: 0,
                ..
            }
        ),
        "{err}"
    );
    assert!(matches!(
        p.append_marker(3, 0, ControlRecord::Commit, 0),
        Err(Error::InvalidProducerEpoch { .. })
    ));
    // The new epoch starts at sequence 0.
    p.append(txn_batch(3, 1, 0, &["fresh"])).unwrap();
    p.append_marker(3, 1, ControlRecord::Commit, 0).unwrap();
    assert_eq!(committed_values(&p, 0), ["fresh"]);
    // A non-transactional batch while a transaction is open is refused.
    p.append(txn_batch(3, 1, 1, &["open"])).unwrap();
    let mut b = BatchBuilder::new(Compression::None).producer(3, 1, 2);
    b.append(NOW, None, Some(b"idem"), &[]);
    assert!(matches!(
        p.append(b.build()),
        Err(Error::InvalidTxnState(_))
    ));
}

#[test]
fn transactions_and_the_txnindex_survive_clean_and_unclean_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let clock = MockClock::new(NOW);
    {
        let (log, p) = setup(dir.path(), &clock);
        p.append(txn_batch(1, 0, 0, &["a"])).unwrap();
        p.append(txn_batch(2, 0, 0, &["b"])).unwrap();
        p.append_marker(1, 0, ControlRecord::Abort, 0).unwrap();
        p.append(txn_batch(3, 0, 0, &["c"])).unwrap();
        log.close().unwrap();
    }
    let txnindex = dir.path().join("t-0/00000000000000000000.txnindex");
    assert_eq!(std::fs::metadata(&txnindex).unwrap().len(), 34);
    {
        let (log, p) = setup(dir.path(), &clock);
        assert_eq!(p.ongoing_transactions(), [(2, 1), (3, 3)]);
        assert_eq!(p.last_stable_offset(), 1);
        p.append_marker(2, 0, ControlRecord::Commit, 0).unwrap();
        assert_eq!(committed_values(&p, 0), ["b"]);
        p.append_marker(3, 0, ControlRecord::Abort, 0).unwrap();
        p.flush().unwrap();
        // An unclean shutdown: no snapshot, the txnindex entries get replayed.
        std::mem::forget(log);
    }
    // Remove the snapshots so the replay rebuilds everything from the segment.
    for e in std::fs::read_dir(dir.path().join("t-0")).unwrap() {
        let path = e.unwrap().path();
        if path.extension().is_some_and(|x| x == "snapshot") {
            std::fs::remove_file(path).unwrap();
        }
    }
    std::fs::remove_file(dir.path().join(".lock")).ok();
    let (_log, p) = setup(dir.path(), &clock);
    assert!(p.ongoing_transactions().is_empty());
    assert_eq!(p.last_stable_offset(), p.log_end_offset());
    assert_eq!(p.aborted_transactions(0, 100).len(), 2);
    assert_eq!(std::fs::metadata(&txnindex).unwrap().len(), 68);
    assert_eq!(committed_values(&p, 0), ["b"]);
}

#[tokio::test]
async fn a_read_committed_consumer_skips_aborted_records_and_markers() {
    let dir = tempfile::tempdir().unwrap();
    let clock = MockClock::new(NOW);
    let (log, p) = setup(dir.path(), &clock);
    p.append(txn_batch(1, 0, 0, &["aborted-1"])).unwrap();
    p.append(txn_batch(2, 0, 0, &["committed-1"])).unwrap();
    p.append(txn_batch(1, 0, 1, &["aborted-2"])).unwrap();
    p.append_marker(1, 0, ControlRecord::Abort, 0).unwrap();
    p.append(plain_batch(&["plain"])).unwrap();
    let client = EmbeddedClient::new(log.clone());
    let read = |level: &str| {
        let mut c = client
            .consumer(
                ConsumerConfig::from_pairs([
                    ("isolation.level", level),
                    ("auto.offset.reset", "earliest"),
                ])
                .unwrap(),
            )
            .unwrap();
        c.assign(vec![TopicPartition::new("t", 0)]).unwrap();
        c
    };
    let values = |recs: Vec<sluice_log::client::ConsumerRecord>| -> Vec<String> {
        recs.into_iter()
            .map(|r| String::from_utf8(r.value.unwrap().to_vec()).unwrap())
            .collect()
    };
    let mut committed = read("read_committed");
    // Producer 2's transaction is open: nothing past offset 1 is stable.
    assert!(
        committed
            .poll(Duration::from_millis(10))
            .await
            .unwrap()
            .is_empty()
    );
    p.append_marker(2, 0, ControlRecord::Commit, 0).unwrap();
    let got = values(committed.poll(Duration::from_millis(100)).await.unwrap());
    assert_eq!(got, ["committed-1", "plain"]);
    assert_eq!(committed.position(&TopicPartition::new("t", 0)), Some(6));
    let mut uncommitted = read("read_uncommitted");
    let got = values(uncommitted.poll(Duration::from_millis(100)).await.unwrap());
    assert_eq!(got, ["aborted-1", "committed-1", "aborted-2", "plain"]);
}

mod coordinator {
    use super::*;
    use sluice_log::txn::{
        TRANSACTION_STATE_TOPIC, TransactionCoordinator, TransactionMetadata, TransactionState,
        encode_key, encode_value,
    };

    fn tp() -> TopicPartition {
        TopicPartition::new("t", 0)
    }

    #[test]
    fn commit_and_abort_through_the_coordinator_and_state_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let clock = MockClock::new(NOW);
        {
            let (log, p) = setup(dir.path(), &clock);
            let c = TransactionCoordinator::open(log.clone()).unwrap();
            let (pid, epoch) = c.init_producer_id("tx", 60_000).unwrap();
            c.add_partitions("tx", pid, epoch, &[tp()]).unwrap();
            p.append(txn_batch(pid, epoch, 0, &["c1"])).unwrap();
            assert_eq!(p.last_stable_offset(), 0);
            c.end_transaction("tx", pid, epoch, true).unwrap();
            // A retried commit is answered again; an abort now is not.
            c.end_transaction("tx", pid, epoch, true).unwrap();
            assert!(matches!(
                c.end_transaction("tx", pid, epoch, false),
                Err(Error::InvalidTxnState(_))
            ));
            c.add_partitions("tx", pid, epoch, &[tp()]).unwrap();
            p.append(txn_batch(pid, epoch, 1, &["a1"])).unwrap();
            c.end_transaction("tx", pid, epoch, false).unwrap();
            assert_eq!(committed_values(&p, 0), ["c1"]);
            assert_eq!(
                c.list_transactions(),
                [("tx".to_owned(), TransactionState::CompleteAbort)]
            );
            assert!(matches!(
                c.describe_transaction("nope"),
                Err(Error::TransactionalIdNotFound(_))
            ));
            log.close().unwrap();
        }
        let (log, _p) = setup(dir.path(), &clock);
        let c = TransactionCoordinator::open(log).unwrap();
        let m = c.describe_transaction("tx").unwrap();
        assert_eq!(m.state, TransactionState::CompleteAbort);
        let (pid, epoch) = c.init_producer_id("tx", 60_000).unwrap();
        assert_eq!((pid, epoch), (m.producer_id, m.producer_epoch + 1));
    }

    #[test]
    fn re_init_aborts_the_open_transaction_and_fences_the_zombie() {
        let dir = tempfile::tempdir().unwrap();
        let clock = MockClock::new(NOW);
        let (log, p) = setup(dir.path(), &clock);
        let c = TransactionCoordinator::open(log).unwrap();
        let (pid, old) = c.init_producer_id("tx", 60_000).unwrap();
        c.add_partitions("tx", pid, old, &[tp()]).unwrap();
        p.append(txn_batch(pid, old, 0, &["zombie"])).unwrap();
        let (pid2, new) = c.init_producer_id("tx", 60_000).unwrap();
        assert_eq!(pid2, pid);
        assert!(new > old);
        // The zombie's open transaction was aborted; its writes are refused.
        assert_eq!(p.last_stable_offset(), p.log_end_offset());
        assert!(matches!(
            p.append(txn_batch(pid, old, 1, &["late"])),
            Err(Error::InvalidProducerEpoch { .. })
        ));
        assert!(matches!(
            c.end_transaction("tx", pid, old, true),
            Err(Error::ProducerFenced { .. })
        ));
        assert!(matches!(
            c.add_partitions("tx", pid + 1, new, &[tp()]),
            Err(Error::InvalidProducerIdMapping { .. })
        ));
        c.add_partitions("tx", pid, new, &[tp()]).unwrap();
        p.append(txn_batch(pid, new, 0, &["fresh"])).unwrap();
        c.end_transaction("tx", pid, new, true).unwrap();
        assert_eq!(committed_values(&p, 0), ["fresh"]);
    }

    #[test]
    fn init_naming_the_current_epoch_bumps_it_and_anything_else_is_fenced() {
        let dir = tempfile::tempdir().unwrap();
        let clock = MockClock::new(NOW);
        let (log, p) = setup(dir.path(), &clock);
        let c = TransactionCoordinator::open(log).unwrap();
        // Unknown id: registered whatever the producer names.
        let (pid, e0) = c
            .init_producer_id_checked("tx", 60_000, 60_000, Some((999, 7)))
            .unwrap();
        c.add_partitions("tx", pid, e0, &[tp()]).unwrap();
        p.append(txn_batch(pid, e0, 0, &["open"])).unwrap();
        // KIP-360: the producer names its epoch; the open transaction is aborted, the epoch
        // bumped.
        let (same, e1) = c
            .init_producer_id_checked("tx", 60_000, 60_000, Some((pid, e0)))
            .unwrap();
        assert_eq!(same, pid);
        assert!(e1 > e0);
        assert_eq!(p.last_stable_offset(), p.log_end_offset());
        assert!(committed_values(&p, 0).is_empty());
        // The old epoch, or another producer id, is fenced.
        for stale in [(pid, e0), (pid + 1, e1)] {
            assert!(matches!(
                c.init_producer_id_checked("tx", 60_000, 60_000, Some(stale)),
                Err(Error::ProducerFenced { .. })
            ));
        }
        assert!(matches!(
            c.init_producer_id_checked("tx", 60_001, 60_000, None),
            Err(Error::InvalidTransactionTimeout {
                timeout_ms: 60_001,
                max_ms: 60_000
            })
        ));
        assert_eq!(c.describe_transaction("tx").unwrap().producer_epoch, e1);
    }

    /// KIP-360: a producer whose InitProducerId answer was lost retries naming the epoch it
    /// had; it gets the bumped epoch again, not a second bump and not fenced. Once the
    /// producer has moved on (or another instance initialised), the old epoch is fenced.
    #[test]
    fn a_retried_bump_gets_the_same_epoch_and_only_until_the_next_init() {
        let dir = tempfile::tempdir().unwrap();
        let clock = MockClock::new(NOW);
        let (log, p) = setup(dir.path(), &clock);
        let c = TransactionCoordinator::open(log).unwrap();
        let init = |named| c.init_producer_id_checked("tx", 60_000, 60_000, named);
        let (pid, e0) = init(None).unwrap();
        c.add_partitions("tx", pid, e0, &[tp()]).unwrap();
        p.append(txn_batch(pid, e0, 0, &["done"])).unwrap();
        c.end_transaction("tx", pid, e0, true).unwrap();

        let bumped = init(Some((pid, e0))).unwrap();
        assert_eq!(bumped, (pid, e0 + 1));
        // The answer was lost; the retry names e0 again.
        assert_eq!(
            init(Some((pid, e0))).unwrap(),
            bumped,
            "same answer, no second bump"
        );
        assert_eq!(init(Some((pid, e0))).unwrap(), bumped);
        // The producer moves on with e1 and bumps again: e0 is now fenced.
        let (_, e2) = init(Some(bumped)).unwrap();
        assert_eq!(e2, e0 + 2);
        assert!(matches!(
            init(Some((pid, e0))),
            Err(Error::ProducerFenced { .. })
        ));
        assert_eq!(
            init(Some((pid, e0 + 1))).unwrap(),
            (pid, e2),
            "e1 retries e2's bump"
        );
        // A new instance (naming nothing) ends the retry window.
        let (_, e3) = init(None).unwrap();
        assert!(matches!(
            init(Some((pid, e2))),
            Err(Error::ProducerFenced { .. })
        ));
        // A retry while a transaction of the new epoch is open is no retry: fenced.
        let (_, e4) = init(Some((pid, e3))).unwrap();
        c.add_partitions("tx", pid, e4, &[tp()]).unwrap();
        assert!(matches!(
            init(Some((pid, e3))),
            Err(Error::ProducerFenced { .. })
        ));
        assert_eq!(c.describe_transaction("tx").unwrap().producer_epoch, e4);
    }

    #[test]
    fn partitions_describe_their_producers() {
        let dir = tempfile::tempdir().unwrap();
        let clock = MockClock::new(NOW);
        let (log, p) = setup(dir.path(), &clock);
        let c = TransactionCoordinator::open(log).unwrap();
        let (pid, epoch) = c.init_producer_id("tx", 60_000).unwrap();
        c.add_partitions("tx", pid, epoch, &[tp()]).unwrap();
        p.append(plain_batch(&["x"])).unwrap();
        let first = p.log_end_offset();
        p.append(txn_batch(pid, epoch, 0, &["a", "b"])).unwrap();
        let states = p.producer_states();
        assert_eq!(states.len(), 1);
        let s = &states[0];
        assert_eq!(
            (s.producer_id, s.producer_epoch, s.last_sequence),
            (pid, epoch, 1)
        );
        assert_eq!(s.last_timestamp, NOW);
        assert_eq!(s.current_txn_start_offset, Some(first));
        c.end_transaction("tx", pid, epoch, true).unwrap();
        assert_eq!(p.producer_states()[0].current_txn_start_offset, None);
    }

    #[test]
    fn transactions_open_past_their_timeout_are_aborted_by_tick() {
        let dir = tempfile::tempdir().unwrap();
        let clock = MockClock::new(NOW);
        let (log, p) = setup(dir.path(), &clock);
        let c = TransactionCoordinator::open(log).unwrap();
        let (pid, epoch) = c.init_producer_id("slow", 1_000).unwrap();
        c.add_partitions("slow", pid, epoch, &[tp()]).unwrap();
        p.append(txn_batch(pid, epoch, 0, &["late"])).unwrap();
        clock.advance(1_000);
        assert!(c.tick().unwrap().is_empty());
        clock.advance(1);
        assert_eq!(c.tick().unwrap(), ["slow"]);
        assert_eq!(
            c.describe_transaction("slow").unwrap().state,
            TransactionState::CompleteAbort
        );
        assert_eq!(p.last_stable_offset(), p.log_end_offset());
        assert!(committed_values(&p, 0).is_empty());
        assert!(matches!(
            c.end_transaction("slow", pid, epoch, true),
            Err(Error::ProducerFenced { .. })
        ));
    }

    /// An id whose last state record says Dead (being removed, as Kafka writes before the
    /// tombstone) is neither listed nor described.
    #[test]
    fn a_dead_transactional_id_is_as_good_as_gone() {
        let dir = tempfile::tempdir().unwrap();
        let clock = MockClock::new(NOW);
        {
            let (log, _p) = setup(dir.path(), &clock);
            let c = TransactionCoordinator::open(log.clone()).unwrap();
            c.init_producer_id("alive", 60_000).unwrap();
            c.init_producer_id("dying", 60_000).unwrap();
            let mut m = c.describe_transaction("dying").unwrap();
            m.state = TransactionState::Dead;
            let state = log
                .partition(&TopicPartition::new(TRANSACTION_STATE_TOPIC, 0))
                .unwrap();
            let mut b = BatchBuilder::new(Compression::None);
            b.append(
                NOW,
                Some(&encode_key("dying")),
                Some(&encode_value(&m)),
                &[],
            );
            state
                .append_from(b.build(), AppendOrigin::Coordinator)
                .unwrap();
            drop(c);
            log.close().unwrap();
        }
        let (log, _p) = setup(dir.path(), &clock);
        let c = TransactionCoordinator::open(log).unwrap();
        assert_eq!(
            c.list_transactions(),
            [("alive".to_owned(), TransactionState::Empty)]
        );
        assert!(matches!(
            c.describe_transaction("dying"),
            Err(Error::TransactionalIdNotFound(id)) if id == "dying"
        ));
    }

    #[test]
    fn a_transaction_left_prepared_by_a_crash_completes_on_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let clock = MockClock::new(NOW);
        for commit in [true, false] {
            let id = if commit { "commit-me" } else { "abort-me" };
            let (pid, epoch) = {
                let (log, p) = setup(dir.path(), &clock);
                let c = TransactionCoordinator::open(log.clone()).unwrap();
                let (pid, epoch) = c.init_producer_id(id, 60_000).unwrap();
                c.add_partitions(id, pid, epoch, &[tp()]).unwrap();
                p.append(txn_batch(pid, epoch, 0, &[id])).unwrap();
                // The coordinator made Prepare* durable, then crashed before any marker.
                let mut m = c.describe_transaction(id).unwrap();
                m.state = if commit {
                    TransactionState::PrepareCommit
                } else {
                    TransactionState::PrepareAbort
                };
                let state = log
                    .partition(&TopicPartition::new(TRANSACTION_STATE_TOPIC, 0))
                    .unwrap();
                let mut b = BatchBuilder::new(Compression::None);
                b.append(NOW, Some(&encode_key(id)), Some(&encode_value(&m)), &[]);
                state
                    .append_from(b.build(), AppendOrigin::Coordinator)
                    .unwrap();
                log.flush_all().unwrap();
                std::mem::forget(c);
                std::mem::forget(log);
                (pid, epoch)
            };
            std::fs::remove_file(dir.path().join(".lock")).ok();
            let (log, p) = setup(dir.path(), &clock);
            let open = p.ongoing_transactions();
            assert_eq!(open.len(), 1);
            assert_eq!(open[0].0, pid);
            let c = TransactionCoordinator::open(log.clone()).unwrap();
            let m: TransactionMetadata = c.describe_transaction(id).unwrap();
            assert_eq!(
                m.state,
                if commit {
                    TransactionState::CompleteCommit
                } else {
                    TransactionState::CompleteAbort
                }
            );
            assert_eq!(m.producer_epoch, epoch);
            assert!(p.ongoing_transactions().is_empty());
            let got = committed_values(&p, 0);
            assert!(got.contains(&"commit-me".to_owned()));
            assert!(!got.contains(&"abort-me".to_owned()));
            log.close().unwrap();
            drop(log);
        }
    }
}

mod model {
    use proptest::prelude::*;

    use super::*;

    #[derive(Debug, Clone)]
    enum Op {
        Append(usize),
        Commit(usize),
        Abort(usize),
        Reopen,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => (0..3usize).prop_map(Op::Append),
            2 => (0..3usize).prop_map(Op::Commit),
            2 => (0..3usize).prop_map(Op::Abort),
            1 => Just(Op::Reopen),
        ]
    }

    #[derive(Clone, Copy, PartialEq, Debug)]
    enum Fate {
        Open,
        Committed,
        Aborted,
    }

    fn open_partition(dir: &std::path::Path, clock: &MockClock) -> (LogManager, Arc<Partition>) {
        let log = open(dir, clock);
        if log.list_topics().is_empty() {
            log.create_topic("t", 1, [("segment.bytes", "400")])
                .unwrap();
        }
        let p = log.partition(&TopicPartition::new("t", 0)).unwrap();
        (log, p)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn read_committed_matches_a_model_of_interleaved_transactions(
            ops in proptest::collection::vec(op(), 1..60)
        ) {
            let dir = tempfile::tempdir().unwrap();
            let clock = MockClock::new(NOW);
            let (mut log, mut p) = open_partition(dir.path(), &clock);
            // Per record, in offset order: (value, transaction number); per transaction its fate.
            let mut records: Vec<(String, usize)> = Vec::new();
            let mut fates: Vec<Fate> = Vec::new();
            let mut current: [Option<usize>; 3] = [None; 3];
            let mut seq = [0i32; 3];
            for (i, op) in ops.into_iter().enumerate() {
                match op {
                    Op::Append(k) => {
                        let txn = *current[k].get_or_insert_with(|| {
                            fates.push(Fate::Open);
                            fates.len() - 1
                        });
                        let v = format!("p{k}-{i}");
                        p.append(txn_batch(k as i64 + 1, 0, seq[k], &[v.as_str()])).unwrap();
                        seq[k] += 1;
                        records.push((v, txn));
                    }
                    Op::Commit(k) | Op::Abort(k) => {
                        let commit = matches!(op, Op::Commit(_));
                        let marker = if commit { ControlRecord::Commit } else { ControlRecord::Abort };
                        p.append_marker(k as i64 + 1, 0, marker, 0).unwrap();
                        if let Some(t) = current[k].take() {
                            fates[t] = if commit { Fate::Committed } else { Fate::Aborted };
                        }
                    }
                    Op::Reopen => {
                        log.close().unwrap();
                        drop(p);
                        drop(log);
                        (log, p) = open_partition(dir.path(), &clock);
                    }
                }
                let mut expected = Vec::new();
                for (v, t) in &records {
                    match fates[*t] {
                        Fate::Open => break,
                        Fate::Committed => expected.push(v.clone()),
                        Fate::Aborted => {}
                    }
                }
                prop_assert_eq!(committed_values(&p, 0), expected);
                let open_count = current.iter().filter(|c| c.is_some()).count();
                prop_assert_eq!(p.ongoing_transactions().len(), open_count);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// kill -9 at any step of a transactional commit: after restart each transaction is all visible
// to read_committed or none of it, and every commit that returned is visible.

const TXN_CHILD_ENV: &str = "SLUICE_TXN_CRASH_CHILD";
const TXN_CRASH_TEST: &str =
    "transactions::kill_9_during_commits_leaves_each_transaction_all_or_nothing";
const TXN_TOPIC: &str = "txn-out";
const TXN_RECORDS: usize = 6;

#[test]
fn kill_9_during_commits_leaves_each_transaction_all_or_nothing() {
    use std::time::Instant;

    if let Ok(dir) = std::env::var(TXN_CHILD_ENV) {
        txn_crash_child(std::path::Path::new(&dir));
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut committed: Vec<String> = Vec::new();
    // Kill after different numbers of commits, so the kill lands at different steps.
    for (round, kill_after) in [3usize, 7, 12].into_iter().enumerate() {
        let child = crate::child::spawn(
            TXN_CRASH_TEST,
            &[
                (TXN_CHILD_ENV, dir.path().display().to_string()),
                ("SLUICE_TXN_ROUND", round.to_string()),
            ],
        );
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut seen = 0;
        while seen < kill_after {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(line) = child.lines.recv_timeout(left) else {
                child.kill();
                panic!("round {round}: child stopped after {seen} commits");
            };
            if let Some(id) = line.strip_prefix("committed ") {
                committed.push(id.to_owned());
                seen += 1;
            }
        }
        // SIGKILL, wherever the next transaction is.
        let rest = child.kill();
        committed.extend(
            rest.iter()
                .filter_map(|l| l.strip_prefix("committed ").map(str::to_owned)),
        );
    }
    // Reopen: loading the coordinator completes what the crash left in Prepare*; the restarted
    // application's init_transactions fences the old epoch, aborting a transaction the kill
    // caught Ongoing (records sent, no commit yet), which would otherwise stay open until
    // transaction.timeout.ms, as in Kafka.
    let log = LogManager::open(LogManagerConfig::new(dir.path())).unwrap();
    let client = EmbeddedClient::new(log.clone());
    let coordinator = client.transaction_coordinator().unwrap();
    coordinator.init_producer_id("crash-app", 60_000).unwrap();
    let mut by_txn: std::collections::BTreeMap<String, usize> = std::collections::BTreeMap::new();
    for p in 0..3 {
        let part = log.partition(&TopicPartition::new(TXN_TOPIC, p)).unwrap();
        // Nothing is left open: the last stable offset reaches the log end.
        assert_eq!(
            part.last_stable_offset(),
            part.log_end_offset(),
            "partition {p}"
        );
        let mut consumer = client
            .consumer(
                ConsumerConfig::from_pairs([
                    ("auto.offset.reset", "earliest"),
                    ("isolation.level", "read_committed"),
                ])
                .unwrap(),
            )
            .unwrap();
        consumer
            .assign(vec![TopicPartition::new(TXN_TOPIC, p)])
            .unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        for _ in 0..1000 {
            let batch = rt
                .block_on(consumer.poll(Duration::from_millis(50)))
                .unwrap();
            if batch.is_empty() {
                break;
            }
            for r in batch {
                let v = String::from_utf8(r.value.unwrap().to_vec()).unwrap();
                let txn = v.split('/').next().unwrap().to_owned();
                *by_txn.entry(txn).or_default() += 1;
            }
        }
    }
    for (txn, n) in &by_txn {
        assert_eq!(*n, TXN_RECORDS, "transaction {txn} is partly visible");
    }
    for id in &committed {
        assert_eq!(
            by_txn.get(id),
            Some(&TXN_RECORDS),
            "acknowledged commit {id} lost"
        );
    }
    // At most the one transaction in flight at each kill is visible without its ack.
    assert!(
        by_txn.len() <= committed.len() + 3,
        "{} visible, {} acked",
        by_txn.len(),
        committed.len()
    );
}

/// The child: transactions of TXN_RECORDS records over 3 partitions, committed one after
/// another, printing `committed <round>-<n>` after each commit returns, until killed.
fn txn_crash_child(dir: &std::path::Path) {
    use std::io::Write;

    use sluice_log::client::config::ProducerConfig;
    use sluice_log::client::{Admin, NewTopic, Producer, ProducerRecord};

    let round: usize = std::env::var("SLUICE_TXN_ROUND").unwrap().parse().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap();
    rt.block_on(async {
        let log = LogManager::open(LogManagerConfig::new(dir)).unwrap();
        let client = EmbeddedClient::new(log);
        if round == 0 {
            client
                .admin()
                .unwrap()
                .create_topics(vec![NewTopic::new(TXN_TOPIC, 3)])
                .await
                .unwrap();
        }
        let p = client
            .producer(
                ProducerConfig::from_pairs([("transactional.id", "crash-app"), ("linger.ms", "0")])
                    .unwrap(),
            )
            .unwrap();
        p.init_transactions().await.unwrap();
        for n in 0..100_000 {
            let id = format!("{round}-{n}");
            p.begin_transaction().unwrap();
            for i in 0..TXN_RECORDS {
                let rec =
                    ProducerRecord::new(TXN_TOPIC, format!("{id}/{i}")).partition((i % 3) as i32);
                p.send(rec).await.unwrap();
            }
            p.commit_transaction().await.unwrap();
            let mut out = std::io::stdout().lock();
            writeln!(out, "committed {id}").unwrap();
            out.flush().unwrap();
        }
    });
}
