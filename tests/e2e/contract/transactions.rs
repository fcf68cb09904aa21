//! Transactions: commits and aborts as `read_committed` and `read_uncommitted` consumers see
//! them (the last stable offset holding back an open one), offsets committed in a transaction
//! with its output, fencing by a newer producer of the same `transactional.id`, and calls out
//! of order refused.
//!
//! The native producer has no transactions: its harness asserts the refusal, then writes the
//! transactions with librdkafka's producer so the native consumer's `read_committed` is still
//! exercised.

use std::time::Duration;

use sluice_log::Error;
use sluice_log::client::{
    Admin, Client, Consumer, ConsumerGroupMetadata, OffsetSpec, Producer, ProducerRecord,
};

use super::{Harness, Impl, assigned, drain, send, take, tp, values};

/// The native producer's name in its refusals.
const NATIVE_PRODUCER: &str = "Sluice's native Kafka producer";

/// Asserts the native producer's refusal of a `transactional.id`.
fn assert_native_refuses<C: Client>(h: &Harness<C>, id: &str) {
    assert_refused!(
        h.try_producer(&[("transactional.id", id)]),
        Error::Unsupported { client, .. } if client == NATIVE_PRODUCER,
        "a transactional native producer"
    );
}

/// Runs `f` with a transactional producer of `id`: the harness's own, or for the native
/// harness (after asserting its refusal) librdkafka's against the same broker.
macro_rules! with_txn_producer {
    ($h:expr, $id:expr, |$p:ident| $body:expr) => {
        match $h.imp {
            Impl::Native => {
                assert_native_refuses($h, $id);
                let $p = $h.librdkafka_producer(&[("transactional.id", $id)]);
                $body
            }
            _ => {
                let $p = $h.producer(&[("transactional.id", $id)]);
                $body
            }
        }
    };
}

async fn write_ledger<P: Producer>(p: &P) {
    p.init_transactions().await.expect("init");
    p.begin_transaction().expect("begin");
    for v in ["a1", "a2"] {
        send(p, ProducerRecord::new("ledger", v)).await;
    }
    p.commit_transaction().await.expect("commit");
    p.begin_transaction().expect("begin");
    send(p, ProducerRecord::new("ledger", "aborted")).await;
    p.abort_transaction().await.expect("abort");
    p.begin_transaction().expect("begin");
    send(p, ProducerRecord::new("ledger", "b1")).await;
    p.commit_transaction().await.expect("commit");
    // One left open.
    p.begin_transaction().expect("begin");
    send(p, ProducerRecord::new("ledger", "open")).await;
}

pub(crate) async fn commit_and_abort_as_read_committed_sees_them<C: Client>(h: &Harness<C>) {
    h.create_topic("ledger", 1).await;
    let t = tp("ledger", 0);
    let admin = h.admin();
    let check = async |open_done: bool| {
        let mut committed = assigned(
            h,
            std::slice::from_ref(&t),
            &[("isolation.level", "read_committed")],
        );
        let want: &[&str] = if open_done {
            &["a1", "a2", "b1", "open"]
        } else {
            &["a1", "a2", "b1"]
        };
        let got = take(&mut committed, want.len(), "read_committed").await;
        assert_eq!(
            values(&got),
            want,
            "read_committed sees committed records only"
        );
        assert!(
            drain(&mut committed, Duration::from_millis(300))
                .await
                .is_empty(),
            "nothing more for read_committed"
        );
    };
    with_txn_producer!(h, "ledger-writer", |p| {
        write_ledger(&p).await;
        // a1 a2 (commit) aborted (abort) b1 (commit) open: offsets 0..=7, markers at 2, 4, 6.
        assert_eq!(
            admin
                .list_offsets(&t, OffsetSpec::Latest)
                .await
                .expect("latest")
                .offset,
            8,
            "the high watermark counts markers and the open transaction"
        );
        check(false).await;
        let mut uncommitted = assigned(h, std::slice::from_ref(&t), &[]);
        let got = take(&mut uncommitted, 5, "read_uncommitted").await;
        assert_eq!(values(&got), ["a1", "a2", "aborted", "b1", "open"]);
        let offsets: Vec<i64> = got.iter().map(|r| r.offset).collect();
        assert_eq!(offsets, [0, 1, 3, 5, 7], "markers take offsets");
        p.commit_transaction().await.expect("commit the open one");
    });
    check(true).await;
}

pub(crate) async fn send_offsets_commits_with_the_output<C: Client>(h: &Harness<C>) {
    let admin = h.admin();
    h.create_topic("in", 1).await;
    h.create_topic("out", 1).await;
    h.send_all(
        (0..3)
            .map(|i| ProducerRecord::new("in", format!("m{i}")))
            .collect(),
    )
    .await;
    let input = tp("in", 0);
    let group = ConsumerGroupMetadata::new("transformers");
    let mut reader = h.group_consumer("transformers", &[("isolation.level", "read_committed")]);
    with_txn_producer!(h, "transformer", |p| {
        p.init_transactions().await.expect("init");
        // Aborted: neither the output nor the offsets.
        p.begin_transaction().expect("begin");
        send(&p, ProducerRecord::new("out", "M0")).await;
        p.send_offsets_to_transaction(vec![(input.clone(), 3)], &group)
            .await
            .expect("send offsets");
        p.abort_transaction().await.expect("abort");
        assert_eq!(
            reader
                .committed(std::slice::from_ref(&input))
                .await
                .expect("committed"),
            [None],
            "an aborted transaction commits no offsets"
        );
        // Committed: both.
        p.begin_transaction().expect("begin");
        for v in ["M0", "M1", "M2"] {
            send(&p, ProducerRecord::new("out", v)).await;
        }
        p.send_offsets_to_transaction(vec![(input.clone(), 3)], &group)
            .await
            .expect("send offsets");
        p.commit_transaction().await.expect("commit");
    });
    assert_eq!(
        reader
            .committed(std::slice::from_ref(&input))
            .await
            .expect("committed"),
        [Some(3)],
        "the offsets committed with the transaction"
    );
    let mut out = assigned(h, &[tp("out", 0)], &[("isolation.level", "read_committed")]);
    assert_eq!(
        values(&take(&mut out, 3, "the output").await),
        ["M0", "M1", "M2"]
    );
    let lag = admin.lag("transformers").await.expect("lag");
    assert_eq!(lag.len(), 1);
    assert_eq!((lag[0].committed, lag[0].lag), (Some(3), Some(0)));
}

pub(crate) async fn a_second_producer_fences_the_first<C: Client>(h: &Harness<C>) {
    h.create_topic("fenced", 1).await;
    with_txn_producer!(h, "zombie", |first| {
        first.init_transactions().await.expect("init");
        first.begin_transaction().expect("begin");
        send(&first, ProducerRecord::new("fenced", "one")).await;
        first.commit_transaction().await.expect("commit");

        let second = match h.imp {
            Impl::Native => None,
            _ => Some(h.producer(&[("transactional.id", "zombie")])),
        };
        let rd_second;
        let second: &dyn FenceBy = match &second {
            Some(p) => p,
            None => {
                rd_second = h.librdkafka_producer(&[("transactional.id", "zombie")]);
                &rd_second
            }
        };
        second.init().await;

        // The first finds out at its next contact with the coordinator or a partition: its
        // record is not delivered and its commit is refused as fenced.
        first.begin_transaction().expect("begin (local)");
        let delivered = match first.send(ProducerRecord::new("fenced", "zombie")).await {
            Ok(d) => d.await,
            Err(e) => Err(e),
        };
        assert!(
            delivered.is_err(),
            "a fenced producer's record: {delivered:?}"
        );
        match first.commit_transaction().await {
            Err(Error::ProducerFenced {
                transactional_id, ..
            }) => {
                assert_eq!(transactional_id, "zombie");
            }
            other => panic!("the commit of the fenced producer: {other:?}"),
        }
    });
    let mut c = assigned(
        h,
        &[tp("fenced", 0)],
        &[("isolation.level", "read_committed")],
    );
    assert_eq!(values(&take(&mut c, 1, "committed").await), ["one"]);
    assert!(
        drain(&mut c, Duration::from_millis(300)).await.is_empty(),
        "no zombie record"
    );
}

/// A second producer's `init_transactions`, whatever its type.
trait FenceBy {
    fn init(&self) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + '_>>;
}

impl<P: Producer> FenceBy for P {
    fn init(&self) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + '_>> {
        Box::pin(async move { self.init_transactions().await.expect("init the second") })
    }
}

pub(crate) async fn refusals_out_of_order<C: Client>(h: &Harness<C>) {
    h.create_topic("strict", 1).await;
    // A producer without transactional.id has no transactions.
    // The native producer, which has none at all, refuses them as Unsupported.
    let plain = h.producer(&[]);
    match h.imp {
        Impl::Native => {
            assert_refused!(
                plain.init_transactions().await,
                Error::Unsupported { client, .. } if client == NATIVE_PRODUCER,
                "init_transactions on the native producer"
            );
            assert_refused!(
                plain.begin_transaction(),
                Error::Unsupported { client, .. } if client == NATIVE_PRODUCER,
                "begin_transaction on the native producer"
            );
        }
        Impl::Embedded | Impl::Librdkafka => {
            assert_refused!(
                plain.init_transactions().await,
                Error::InvalidTxnState(_),
                "init_transactions without transactional.id"
            );
            assert_refused!(
                plain.begin_transaction(),
                Error::InvalidTxnState(_),
                "begin_transaction without transactional.id"
            );
        }
    }
    with_txn_producer!(h, "strict-writer", |p| {
        assert_refused!(
            p.begin_transaction(),
            Error::InvalidTxnState(_),
            "begin before init"
        );
        assert_refused!(
            p.commit_transaction().await,
            Error::InvalidTxnState(_),
            "commit before init"
        );
        p.init_transactions().await.expect("init");
        assert_refused!(
            p.commit_transaction().await,
            Error::InvalidTxnState(_),
            "commit without begin"
        );
        assert_refused!(
            p.abort_transaction().await,
            Error::InvalidTxnState(_),
            "abort without begin"
        );
        assert_refused!(
            p.send_offsets_to_transaction(
                vec![(tp("strict", 0), 1)],
                &ConsumerGroupMetadata::new("g")
            )
            .await,
            Error::InvalidTxnState(_),
            "send_offsets_to_transaction without begin"
        );
        p.begin_transaction().expect("begin");
        assert_refused!(
            p.begin_transaction(),
            Error::InvalidTxnState(_),
            "begin twice"
        );
        send(&p, ProducerRecord::new("strict", "x")).await;
        p.commit_transaction().await.expect("commit");
    });
}
