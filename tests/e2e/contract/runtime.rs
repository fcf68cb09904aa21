//! What a Kafka-Streams-like runtime needs of the clients: batched beginning and end offsets
//! (restoring a changelog reads up to the end, the last stable offset under `read_committed`),
//! a producer's `close` completing what was sent, a consumer's group metadata, and a revocation
//! announced by `poll` before the partitions are given up, so a commit made in between counts.

use sluice_log::client::{Admin, Client, Consumer, Producer, ProducerRecord, RebalanceEvent};

use super::groups::{all, assert_no_subscriptions, settle, sizes};
use super::{Harness, Impl, send, tp};

pub(crate) async fn beginning_and_end_offsets_in_one_call<C: Client>(h: &Harness<C>) {
    h.create_topic("changelog", 2).await;
    for v in ["a", "b", "c"] {
        send(
            &h.producer(&[]),
            ProducerRecord::new("changelog", v).partition(0),
        )
        .await;
    }
    send(
        &h.producer(&[]),
        ProducerRecord::new("changelog", "d").partition(1),
    )
    .await;
    h.admin()
        .delete_records(&tp("changelog", 0), 1)
        .await
        .expect("delete_records");
    let tps = [tp("changelog", 0), tp("changelog", 1)];
    // The partitions need not be assigned.
    let mut c = h.consumer(&[]);
    assert_eq!(
        c.beginning_offsets(&tps).await.expect("beginning_offsets"),
        [(tps[0].clone(), 1), (tps[1].clone(), 0)]
    );
    assert_eq!(
        c.end_offsets(&tps).await.expect("end_offsets"),
        [(tps[0].clone(), 3), (tps[1].clone(), 1)]
    );
    // Under read_committed the end is the last stable offset: an open transaction holds it.
    let txn = match h.imp {
        Impl::Native => None,
        _ => Some(h.producer(&[("transactional.id", "restore")])),
    };
    let txn_librdkafka = match h.imp {
        Impl::Native => Some(h.librdkafka_producer(&[("transactional.id", "restore")])),
        _ => None,
    };
    macro_rules! open_txn {
        ($p:expr) => {{
            let p = $p;
            p.init_transactions().await.expect("init");
            p.begin_transaction().expect("begin");
            send(p, ProducerRecord::new("changelog", "open").partition(1)).await;
            p.flush().await.expect("flush");
        }};
    }
    if let Some(p) = &txn {
        open_txn!(p);
    }
    if let Some(p) = &txn_librdkafka {
        open_txn!(p);
    }
    let mut committed = h.consumer(&[("isolation.level", "read_committed")]);
    let mut uncommitted = h.consumer(&[("isolation.level", "read_uncommitted")]);
    let one = [tps[1].clone()];
    assert_eq!(
        committed.end_offsets(&one).await.expect("end_offsets"),
        [(tps[1].clone(), 1)],
        "read_committed: the open transaction's first offset"
    );
    assert_eq!(
        uncommitted.end_offsets(&one).await.expect("end_offsets"),
        [(tps[1].clone(), 2)],
        "read_uncommitted: the high watermark"
    );
    if let Some(p) = &txn {
        p.abort_transaction().await.expect("abort");
    }
    if let Some(p) = &txn_librdkafka {
        p.abort_transaction().await.expect("abort");
    }
    // The abort marker ends the transaction: both ends agree again.
    let end = committed.end_offsets(&one).await.expect("end_offsets");
    assert_eq!(
        end,
        uncommitted.end_offsets(&one).await.expect("end_offsets")
    );
}

pub(crate) async fn close_completes_what_was_sent<C: Client>(h: &Harness<C>) {
    h.create_topic("closing", 1).await;
    let p = h.producer(&[("linger.ms", "50")]);
    let mut sent = Vec::new();
    for i in 0..200 {
        sent.push(
            p.send(ProducerRecord::new("closing", format!("v{i}")))
                .await
                .expect("send"),
        );
    }
    p.close().await.expect("close");
    let mut offsets = Vec::new();
    for d in sent {
        offsets.push(
            d.await
                .expect("a record sent before close is delivered")
                .offset,
        );
    }
    assert_eq!(offsets, (0..200).collect::<Vec<i64>>());
    let mut c = h.consumer(&[]);
    assert_eq!(
        c.end_offsets(&[tp("closing", 0)]).await.expect("end"),
        [(tp("closing", 0), 200)]
    );
}

pub(crate) async fn group_metadata_and_a_commit_during_revocation<C: Client>(h: &Harness<C>) {
    h.create_topic("tasks", 2).await;
    assert!(
        h.consumer(&[]).group_metadata().is_none(),
        "no group.id, no group metadata"
    );
    let mut a = h.group_consumer("runtime", &[]);
    if h.imp == Impl::Native {
        assert_no_subscriptions(&mut a);
        return;
    }
    for (i, v) in ["x", "y", "z", "w"].iter().enumerate() {
        let partition = i32::try_from(i % 2).expect("small");
        send(
            &h.producer(&[]),
            ProducerRecord::new("tasks", *v).partition(partition),
        )
        .await;
    }
    a.subscribe(vec!["tasks".into()]).expect("subscribe");
    settle(&mut [&mut a], "a alone", |s| sizes(s) == [2]).await;
    let meta = a.group_metadata().expect("a member has group metadata");
    assert_eq!(meta.group_id, "runtime");
    let events = a.rebalance_events();
    assert!(
        events.contains(&RebalanceEvent::Assigned(all("tasks", 2))),
        "{events:?}"
    );
    // A second member joins: a's next polls announce the revocation and keep the partitions
    // until the poll after; a commit in between is accepted for the generation a still has.
    let mut b = h.group_consumer("runtime", &[]);
    b.subscribe(vec!["tasks".into()]).expect("subscribe b");
    let mut revoked = None;
    let start = std::time::Instant::now();
    while revoked.is_none() {
        assert!(
            start.elapsed() < super::DEADLINE,
            "no revocation announced to a"
        );
        b.poll(super::POLL).await.expect("poll b");
        a.poll(super::POLL).await.expect("poll a");
        revoked = a.rebalance_events().into_iter().find_map(|e| match e {
            RebalanceEvent::Revoked(tps) if !tps.is_empty() => Some(tps),
            _ => None,
        });
    }
    let revoked = revoked.unwrap_or_default();
    for t in &revoked {
        assert!(
            a.assignment().contains(t),
            "{t} is still a's until its next poll"
        );
    }
    let offsets: Vec<_> = revoked.iter().map(|t| (t.clone(), 1)).collect();
    a.commit_sync(Some(offsets.clone()))
        .await
        .expect("a commit during the revocation counts");
    settle(&mut [&mut a, &mut b], "a 1+1 split", |s| sizes(s) == [1, 1]).await;
    let committed = b.committed(&revoked).await.expect("committed");
    assert!(
        committed.iter().all(|o| *o == Some(1)),
        "the offsets committed during the revocation: {committed:?}"
    );
    a.close().await.expect("close a");
    b.close().await.expect("close b");
}
