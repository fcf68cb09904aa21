//! Consumer groups: subscriptions splitting a topic between members and giving partitions
//! back when one leaves, the rebalance listener, commits and committed offsets, and the group
//! admin (describe, list, lag, reset, delete offsets, delete groups with its refusal).
//!
//! The native consumer has no group subscriptions: its cases assert the refusal and run the
//! rest (commits of an assignment, the admin of a group with offsets only).

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use sluice_log::client::{
    Admin, Client, Consumer, GroupState, ProducerRecord, RebalanceListener, ResetSpec,
};
use sluice_log::{Error, TopicPartition};

use super::{DEADLINE, Harness, Impl, POLL, take, tp};

/// The refusal of a subscription by the native consumer.
pub(crate) fn assert_no_subscriptions<K: Consumer>(c: &mut K) {
    assert_refused!(
        c.subscribe(vec!["any".into()]),
        Error::Unsupported { client, .. } if client == "the native Kafka consumer",
        "subscribe on the native consumer"
    );
    assert!(c.assignment().is_empty());
}

/// Polls every consumer in turn until `done` holds of their assignments.
pub(crate) async fn settle<K: Consumer>(
    consumers: &mut [&mut K],
    what: &str,
    done: impl Fn(&[Vec<TopicPartition>]) -> bool,
) {
    let start = Instant::now();
    loop {
        let assignments: Vec<Vec<TopicPartition>> =
            consumers.iter().map(|c| c.assignment()).collect();
        if done(&assignments) {
            return;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "{what}: assignments still {assignments:?} after {DEADLINE:?}"
        );
        for c in consumers.iter_mut() {
            c.poll(POLL).await.expect("poll");
        }
    }
}

pub(crate) fn sizes(a: &[Vec<TopicPartition>]) -> Vec<usize> {
    a.iter().map(Vec::len).collect()
}

pub(crate) fn all(topic: &str, n: i32) -> Vec<TopicPartition> {
    (0..n).map(|p| tp(topic, p)).collect()
}

pub(crate) async fn two_members_split_and_one_leaving_gives_back<C: Client>(h: &Harness<C>) {
    h.create_topic("jobs", 4).await;
    let mut a = h.group_consumer("workers", &[]);
    let mut b = h.group_consumer("workers", &[]);
    if h.imp == Impl::Native {
        assert_no_subscriptions(&mut a);
        return;
    }
    a.subscribe(vec!["jobs".into()]).expect("subscribe a");
    b.subscribe(vec!["jobs".into()]).expect("subscribe b");
    settle(&mut [&mut a, &mut b], "a 2+2 split", |s| sizes(s) == [2, 2]).await;
    let mut owned: Vec<TopicPartition> = a.assignment().into_iter().chain(b.assignment()).collect();
    owned.sort();
    assert_eq!(owned, all("jobs", 4), "every partition has one owner");

    h.send_all(
        (0..20)
            .map(|i| ProducerRecord::new("jobs", format!("job-{i}")).partition(i % 4))
            .collect(),
    )
    .await;
    let (mut from_a, mut from_b) = (Vec::new(), Vec::new());
    let start = Instant::now();
    while from_a.len() + from_b.len() < 20 {
        assert!(
            start.elapsed() < DEADLINE,
            "the members read {} of 20",
            from_a.len() + from_b.len()
        );
        from_a.extend(a.poll(POLL).await.expect("poll a"));
        from_b.extend(b.poll(POLL).await.expect("poll b"));
    }
    assert!(
        from_a
            .iter()
            .all(|r| a.assignment().contains(&tp("jobs", r.partition)))
    );
    assert!(
        from_b
            .iter()
            .all(|r| b.assignment().contains(&tp("jobs", r.partition)))
    );
    assert_eq!(
        (from_a.len(), from_b.len()),
        (10, 10),
        "each reads its own partitions"
    );

    b.close().await.expect("close b");
    assert!(
        b.assignment().is_empty(),
        "a closed consumer keeps no assignment"
    );
    settle(&mut [&mut a], "the remaining member takes all", |s| {
        sizes(s) == [4]
    })
    .await;
    a.close().await.expect("close a");
}

/// Records the listener's calls.
#[derive(Default, Clone)]
struct Calls(Arc<Mutex<Vec<Call>>>);

/// One listener call: its kind and partitions (sorted).
type Call = (&'static str, Vec<TopicPartition>);

impl Calls {
    fn lock(&self) -> MutexGuard<'_, Vec<Call>> {
        self.0.lock().expect("listener calls")
    }
}

impl RebalanceListener for Calls {
    fn on_partitions_revoked(&mut self, partitions: &[TopicPartition]) {
        let mut p = partitions.to_vec();
        p.sort();
        self.lock().push(("revoked", p));
    }
    fn on_partitions_assigned(&mut self, partitions: &[TopicPartition]) {
        let mut p = partitions.to_vec();
        p.sort();
        self.lock().push(("assigned", p));
    }
    fn on_partitions_lost(&mut self, partitions: &[TopicPartition]) {
        let mut p = partitions.to_vec();
        p.sort();
        self.lock().push(("lost", p));
    }
}

pub(crate) async fn rebalance_listener_sees_revoked_and_assigned<C: Client>(h: &Harness<C>) {
    h.create_topic("moves", 2).await;
    let calls = Calls::default();
    let mut a = h.group_consumer("movers", &[]);
    a.set_rebalance_listener(Box::new(calls.clone()));
    if h.imp == Impl::Native {
        assert_no_subscriptions(&mut a);
        assert!(calls.lock().is_empty(), "no rebalance without a group");
        return;
    }
    a.subscribe(vec!["moves".into()]).expect("subscribe");
    settle(&mut [&mut a], "a alone", |s| sizes(s) == [2]).await;
    assert_eq!(
        calls.lock().last().cloned(),
        Some(("assigned", all("moves", 2))),
        "the first assignment: {:?}",
        calls.lock()
    );
    calls.lock().clear();
    let mut b = h.group_consumer("movers", &[]);
    b.subscribe(vec!["moves".into()]).expect("subscribe b");
    settle(&mut [&mut a, &mut b], "a 1+1 split", |s| sizes(s) == [1, 1]).await;
    let seen = calls.lock().clone();
    let kept = a.assignment();
    // Eager (range): everything is revoked, then the new share assigned.
    assert_eq!(
        seen,
        [("revoked", all("moves", 2)), ("assigned", kept.clone())],
        "a's listener during the rebalance"
    );
    calls.lock().clear();
    a.close().await.expect("close a");
    let seen = calls.lock().clone();
    assert_eq!(seen, [("revoked", kept)], "closing revokes what a held");
    b.close().await.expect("close b");
}

pub(crate) async fn commits_and_committed<C: Client>(h: &Harness<C>) {
    h.create_topic("ledger", 2).await;
    h.send_all(
        (0..6)
            .map(|i| ProducerRecord::new("ledger", format!("v{i}")).partition(i % 2))
            .collect(),
    )
    .await;
    let (t0, t1) = (tp("ledger", 0), tp("ledger", 1));
    let mut c = h.group_consumer("accountants", &[]);
    c.assign(vec![t0.clone(), t1.clone()]).expect("assign");
    assert_eq!(
        c.committed(&[t0.clone(), t1.clone()])
            .await
            .expect("committed"),
        [None, None],
        "nothing committed yet"
    );
    take(&mut c, 6, "every record").await;
    c.commit_sync(None).await.expect("commit positions");
    assert_eq!(
        c.committed(&[t0.clone(), t1.clone()])
            .await
            .expect("committed"),
        [Some(3), Some(3)],
        "commit_sync(None) commits the positions"
    );
    c.commit_sync(Some(vec![(t0.clone(), 1)]))
        .await
        .expect("commit one");
    assert_eq!(
        c.committed(&[t0.clone(), t1.clone()])
            .await
            .expect("committed"),
        [Some(1), Some(3)]
    );
    c.commit_async(Some(vec![(t1.clone(), 2)]))
        .expect("commit_async");
    let start = Instant::now();
    loop {
        c.poll(Duration::from_millis(50)).await.expect("poll");
        if c.committed(std::slice::from_ref(&t1))
            .await
            .expect("committed")
            == [Some(2)]
        {
            break;
        }
        assert!(start.elapsed() < DEADLINE, "commit_async never landed");
    }
    c.close().await.expect("close");

    // A new consumer of the group starts where it committed.
    let mut next = h.group_consumer("accountants", &[]);
    next.assign(vec![t0.clone(), t1.clone()]).expect("assign");
    let mut got: Vec<(i32, i64)> = take(&mut next, 3, "from the committed offsets")
        .await
        .iter()
        .map(|r| (r.partition, r.offset))
        .collect();
    got.sort();
    assert_eq!(got, [(0, 1), (0, 2), (1, 2)]);

    // Without group.id there is nothing to commit to.
    let mut loner = h.consumer(&[("auto.offset.reset", "earliest")]);
    loner.assign(vec![t0.clone()]).expect("assign");
    assert_refused!(
        loner.commit_sync(Some(vec![(t0.clone(), 1)])).await,
        Error::InvalidGroupId(_),
        "commit without group.id"
    );
    assert_refused!(
        loner.committed(std::slice::from_ref(&t0)).await,
        Error::InvalidGroupId(_),
        "committed without group.id"
    );
}

pub(crate) async fn describe_list_lag_reset_delete<C: Client>(h: &Harness<C>) {
    h.create_topic("audit", 2).await;
    h.send_all(
        (0..6)
            .map(|i| ProducerRecord::new("audit", format!("v{i}")).partition(i % 2))
            .collect(),
    )
    .await;
    let (t0, t1) = (tp("audit", 0), tp("audit", 1));
    let admin = h.admin();
    let mut c = h.group_consumer("auditors", &[]);
    if h.imp == Impl::Native {
        assert_no_subscriptions(&mut c);
        c.assign(vec![t0.clone(), t1.clone()]).expect("assign");
    } else {
        c.subscribe(vec!["audit".into()]).expect("subscribe");
    }
    take(&mut c, 6, "every record").await;
    c.commit_sync(Some(vec![(t0.clone(), 2), (t1.clone(), 3)]))
        .await
        .expect("commit");

    if h.imp != Impl::Native {
        // A member: Stable, with its assignment; what needs an empty group is refused.
        let d = admin.describe_group("auditors").await.expect("describe");
        assert_eq!(
            (d.state, d.protocol.as_str()),
            (GroupState::Stable, "range")
        );
        assert_eq!(d.members.len(), 1);
        let mut assigned = d.members[0].assignment.clone();
        assigned.sort();
        assert_eq!(assigned, all("audit", 2));
        let listed = admin.list_groups().await.expect("list");
        let g = listed
            .iter()
            .find(|g| g.group_id == "auditors")
            .expect("listed");
        assert_eq!(
            (g.protocol_type.as_str(), g.state),
            ("consumer", GroupState::Stable)
        );
        assert_refused!(
            admin
                .reset_offsets("auditors", vec![t0.clone()], ResetSpec::Earliest, false)
                .await,
            Error::NonEmptyGroup(g) if g == "auditors",
            "reset_offsets of a group with members"
        );
        let deleted = admin
            .delete_groups(vec!["auditors".into()])
            .await
            .expect("delete_groups");
        assert_refused!(
            deleted.into_iter().next().expect("one result"),
            Error::NonEmptyGroup(g) if g == "auditors",
            "delete_groups of a group with members"
        );
        let lag = admin.lag("auditors").await.expect("lag");
        assert!(
            lag.iter()
                .all(|r| r.member_id.as_deref() == Some(d.members[0].member_id.as_str())),
            "every partition's owner: {lag:?}"
        );
    }
    c.close().await.expect("close");

    // Empty: offsets only.
    let d = admin.describe_group("auditors").await.expect("describe");
    assert_eq!(d.state, GroupState::Empty);
    assert!(d.members.is_empty());
    let lag: Vec<(TopicPartition, Option<i64>, i64, Option<i64>)> = admin
        .lag("auditors")
        .await
        .expect("lag")
        .into_iter()
        .map(|r| (r.tp, r.committed, r.log_end, r.lag))
        .collect();
    assert_eq!(
        lag,
        [
            (t0.clone(), Some(2), 3, Some(1)),
            (t1.clone(), Some(3), 3, Some(0))
        ]
    );
    let planned = admin
        .reset_offsets(
            "auditors",
            vec![t0.clone(), t1.clone()],
            ResetSpec::ShiftBy(-1),
            true,
        )
        .await
        .expect("dry run");
    assert_eq!(planned, [(t0.clone(), 1), (t1.clone(), 2)]);
    let mut c = h.group_consumer("auditors", &[]);
    assert_eq!(
        c.committed(&[t0.clone(), t1.clone()])
            .await
            .expect("committed"),
        [Some(2), Some(3)],
        "a dry run commits nothing"
    );
    let done = admin
        .reset_offsets("auditors", vec![t0.clone()], ResetSpec::Earliest, false)
        .await
        .expect("reset");
    assert_eq!(done, [(t0.clone(), 0)]);
    assert_eq!(
        c.committed(std::slice::from_ref(&t0))
            .await
            .expect("committed"),
        [Some(0)]
    );
    admin
        .delete_offsets("auditors", vec![t1.clone()])
        .await
        .expect("delete_offsets");
    assert_eq!(
        c.committed(&[t0.clone(), t1.clone()])
            .await
            .expect("committed"),
        [Some(0), None]
    );
    let deleted = admin
        .delete_groups(vec!["auditors".into()])
        .await
        .expect("delete_groups");
    assert!(matches!(deleted.as_slice(), [Ok(())]), "{deleted:?}");
    let listed = admin.list_groups().await.expect("list");
    assert!(
        !listed.iter().any(|g| g.group_id == "auditors"),
        "{listed:?}"
    );
    assert_refused!(
        admin
            .delete_groups(vec!["auditors".into()])
            .await
            .expect("delete_groups")
            .into_iter()
            .next()
            .expect("one result"),
        Error::GroupIdNotFound(g) if g == "auditors",
        "delete of a deleted group"
    );
}
