//! Consumer groups through the embedded client: subscriptions, rebalances, commits, admin.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;
use sluice_log::client::assignor::{
    Assignment, ClusterPartitions, MemberSubscription, PartitionAssignor,
};
use sluice_log::client::config::ConsumerConfig;
use sluice_log::client::embedded::{EmbeddedClient, EmbeddedConsumer};
use sluice_log::client::{
    Admin, Client, Consumer, GroupState, NewTopic, Producer, ProducerRecord, RebalanceListener,
    ResetSpec, TopicPattern,
};
use sluice_log::log::{LogManager, LogManagerConfig};
use sluice_log::{Error, MockClock, TopicPartition};

const POLL: Duration = Duration::from_millis(20);

fn client(dir: &std::path::Path, clock: &MockClock) -> EmbeddedClient {
    let mut c = LogManagerConfig::new(dir);
    c.clock = Arc::new(clock.clone());
    c.background = false;
    EmbeddedClient::new(LogManager::open(c).unwrap())
}

fn tp(p: i32) -> TopicPartition {
    TopicPartition::new("t", p)
}

fn consumer(c: &EmbeddedClient, group: &str, props: &[(&str, &str)]) -> EmbeddedConsumer {
    let mut pairs = vec![
        ("group.id", group),
        ("auto.offset.reset", "earliest"),
        ("max.poll.records", "3"),
    ];
    pairs.extend_from_slice(props);
    c.consumer(ConsumerConfig::from_pairs(pairs).unwrap())
        .unwrap()
}

/// A 4-partition topic `t` with `per_partition` records in each.
async fn topic_with_records(c: &EmbeddedClient, per_partition: i32) {
    c.admin()
        .unwrap()
        .create_topics(vec![NewTopic::new("t", 4)])
        .await
        .unwrap();
    let p = c.producer(Default::default()).unwrap();
    for i in 0..per_partition * 4 {
        drop(
            p.send(ProducerRecord::new("t", format!("v{i}")).partition(i % 4))
                .await
                .unwrap(),
        );
    }
    p.flush().await.unwrap();
}

type Seen = Vec<(i32, i64)>;

/// One poll of each consumer, after advancing the clock by a second (heartbeats are due
/// every three).
async fn round(clock: &MockClock, consumers: &mut [&mut EmbeddedConsumer], seen: &mut Seen) {
    clock.advance(1_000);
    for c in consumers.iter_mut() {
        for r in c.poll(POLL).await.unwrap() {
            seen.push((r.partition, r.offset));
        }
    }
}

fn assert_exactly_once(seen: &Seen, per_partition: i64) {
    let distinct: BTreeSet<(i32, i64)> = seen.iter().copied().collect();
    assert_eq!(
        distinct.len(),
        seen.len(),
        "a record was read twice: {seen:?}"
    );
    let want: BTreeSet<(i32, i64)> = (0..4)
        .flat_map(|p| (0..per_partition).map(move |o| (p, o)))
        .collect();
    assert_eq!(distinct, want);
}

#[derive(Clone, Default)]
struct Events(Arc<Mutex<Vec<Event>>>);

/// A callback's name and its partitions.
type Event = (&'static str, Vec<i32>);

impl Events {
    fn of(&self, kind: &str) -> Vec<Vec<i32>> {
        self.0
            .lock()
            .iter()
            .filter(|(k, _)| *k == kind)
            .map(|(_, v)| v.clone())
            .collect()
    }
}

impl RebalanceListener for Events {
    fn on_partitions_revoked(&mut self, partitions: &[TopicPartition]) {
        let v = partitions.iter().map(|t| t.partition).collect();
        self.0.lock().push(("revoked", v));
    }
    fn on_partitions_assigned(&mut self, partitions: &[TopicPartition]) {
        let v = partitions.iter().map(|t| t.partition).collect();
        self.0.lock().push(("assigned", v));
    }
    fn on_partitions_lost(&mut self, partitions: &[TopicPartition]) {
        let v = partitions.iter().map(|t| t.partition).collect();
        self.0.lock().push(("lost", v));
    }
}

#[tokio::test]
async fn two_consumers_split_a_topic_and_read_every_record_once() {
    let dir = tempfile::tempdir().unwrap();
    let clock = MockClock::new(1_000_000);
    let c = client(dir.path(), &clock);
    topic_with_records(&c, 10).await;
    let mut a = consumer(&c, "g", &[]);
    let mut b = consumer(&c, "g", &[]);
    a.subscribe(vec!["t".into()]).unwrap();
    b.subscribe(vec!["t".into()]).unwrap();
    let mut seen = Seen::new();
    let mut split = false;
    for _ in 0..200 {
        round(&clock, &mut [&mut a, &mut b], &mut seen).await;
        split |= a.assignment().len() == 2 && b.assignment().len() == 2;
        if seen.len() >= 40 && split {
            break;
        }
    }
    assert!(split, "a: {:?}, b: {:?}", a.assignment(), b.assignment());
    assert_exactly_once(&seen, 10);
    let d = c.admin().unwrap().describe_group("g").await.unwrap();
    assert_eq!(d.state, GroupState::Stable);
    assert_eq!(d.protocol, "range");
    assert_eq!(d.members.len(), 2);
    assert!(d.members.iter().all(|m| m.assignment.len() == 2));
}

#[tokio::test]
async fn committed_offsets_survive_close_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let clock = MockClock::new(1_000_000);
    let mut seen = Seen::new();
    {
        let c = client(dir.path(), &clock);
        topic_with_records(&c, 10).await;
        let mut a = consumer(&c, "g", &[]);
        a.subscribe(vec!["t".into()]).unwrap();
        for _ in 0..50 {
            round(&clock, &mut [&mut a], &mut seen).await;
            if seen.len() >= 20 {
                break;
            }
        }
        a.close().await.unwrap();
        assert!(a.assignment().is_empty());
        let committed = a.committed(&[tp(0), tp(1), tp(2), tp(3)]).await.unwrap();
        let sum: i64 = committed.iter().map(|o| o.unwrap_or(0)).sum();
        assert_eq!(sum, seen.len() as i64);
        c.log().close().unwrap();
    }
    let c = client(dir.path(), &clock);
    let mut b = consumer(&c, "g", &[]);
    b.subscribe_pattern(TopicPattern::new("t*")).await.unwrap();
    for _ in 0..100 {
        round(&clock, &mut [&mut b], &mut seen).await;
        if seen.len() >= 40 {
            break;
        }
    }
    assert_exactly_once(&seen, 10);
}

#[tokio::test]
async fn a_leaving_member_hands_its_partitions_to_the_other() {
    let dir = tempfile::tempdir().unwrap();
    let clock = MockClock::new(1_000_000);
    let c = client(dir.path(), &clock);
    topic_with_records(&c, 10).await;
    let (ea, eb) = (Events::default(), Events::default());
    let mut a = consumer(&c, "g", &[]);
    let mut b = consumer(&c, "g", &[]);
    a.set_rebalance_listener(Box::new(ea.clone()));
    b.set_rebalance_listener(Box::new(eb.clone()));
    a.subscribe(vec!["t".into()]).unwrap();
    b.subscribe(vec!["t".into()]).unwrap();
    let mut seen = Seen::new();
    for _ in 0..100 {
        round(&clock, &mut [&mut a, &mut b], &mut seen).await;
        if a.assignment().len() == 2 && b.assignment().len() == 2 {
            break;
        }
    }
    assert_eq!(b.assignment().len(), 2);
    let b_had: Vec<i32> = b.assignment().iter().map(|t| t.partition).collect();
    b.close().await.unwrap();
    assert_eq!(eb.of("revoked").last(), Some(&b_had));
    for _ in 0..100 {
        round(&clock, &mut [&mut a], &mut seen).await;
        if a.assignment().len() == 4 && seen.len() >= 40 {
            break;
        }
    }
    assert_eq!(a.assignment().len(), 4);
    assert_exactly_once(&seen, 10);
    assert_eq!(ea.of("assigned").last().map(Vec::len), Some(4));
    assert!(!ea.of("revoked").is_empty());
}

#[tokio::test]
async fn an_expired_session_hands_partitions_over() {
    let dir = tempfile::tempdir().unwrap();
    let clock = MockClock::new(1_000_000);
    let c = client(dir.path(), &clock);
    topic_with_records(&c, 2).await;
    let mut a = consumer(&c, "g", &[]);
    // b stands for a crashed process: its heartbeat thread must not beat during the test.
    let mut b = consumer(&c, "g", &[("heartbeat.interval.ms", "40000")]);
    a.subscribe(vec!["t".into()]).unwrap();
    b.subscribe(vec!["t".into()]).unwrap();
    let mut seen = Seen::new();
    for _ in 0..100 {
        round(&clock, &mut [&mut a, &mut b], &mut seen).await;
        if a.assignment().len() == 2 && b.assignment().len() == 2 {
            break;
        }
    }
    // b stops polling; past its session timeout the coordinator's ticker drops it.
    clock.advance(46_000);
    let coordinator = c.group_coordinator().unwrap();
    coordinator.tick().unwrap();
    for _ in 0..100 {
        round(&clock, &mut [&mut a], &mut seen).await;
        if a.assignment().len() == 4 {
            break;
        }
    }
    assert_eq!(a.assignment().len(), 4);
    // b comes back: its partitions were lost (not revoked), and it rejoins.
    let eb = Events::default();
    b.set_rebalance_listener(Box::new(eb.clone()));
    for _ in 0..100 {
        round(&clock, &mut [&mut a, &mut b], &mut seen).await;
        if a.assignment().len() == 2 && b.assignment().len() == 2 {
            break;
        }
    }
    assert_eq!(eb.of("lost").len(), 1);
    assert_eq!(eb.of("lost")[0].len(), 2);
    assert!(eb.of("revoked").is_empty());
    assert_eq!((a.assignment().len(), b.assignment().len()), (2, 2));
}

#[tokio::test]
async fn cooperative_sticky_keeps_the_remaining_members_partitions() {
    let dir = tempfile::tempdir().unwrap();
    let clock = MockClock::new(1_000_000);
    let c = client(dir.path(), &clock);
    topic_with_records(&c, 10).await;
    let coop = [("partition.assignment.strategy", "cooperative-sticky")];
    let ea = Events::default();
    let mut a = consumer(&c, "g", &coop);
    a.set_rebalance_listener(Box::new(ea.clone()));
    a.subscribe(vec!["t".into()]).unwrap();
    let mut seen = Seen::new();
    for _ in 0..20 {
        round(&clock, &mut [&mut a], &mut seen).await;
        if a.assignment().len() == 4 {
            break;
        }
    }
    assert_eq!(a.assignment().len(), 4);
    let mut b = consumer(&c, "g", &coop);
    b.subscribe(vec!["t".into()]).unwrap();
    for _ in 0..200 {
        round(&clock, &mut [&mut a, &mut b], &mut seen).await;
        assert!(
            a.assignment().len() >= 2,
            "a kept consuming through the rebalance"
        );
        if a.assignment().len() == 2 && b.assignment().len() == 2 && seen.len() >= 40 {
            break;
        }
    }
    assert_eq!(b.assignment().len(), 2);
    assert_exactly_once(&seen, 10);
    // Only what moved was revoked, once.
    let revoked = ea.of("revoked");
    assert_eq!(revoked.len(), 1, "{revoked:?}");
    assert_eq!(revoked[0].len(), 2);
    assert!(ea.of("lost").is_empty());
    let d = c.admin().unwrap().describe_group("g").await.unwrap();
    assert_eq!(d.protocol, "cooperative-sticky");
}

#[tokio::test]
async fn auto_commit_commits_on_the_clock() {
    let dir = tempfile::tempdir().unwrap();
    let clock = MockClock::new(1_000_000);
    let c = client(dir.path(), &clock);
    topic_with_records(&c, 10).await;
    let mut a = consumer(&c, "g", &[("auto.commit.interval.ms", "5000")]);
    a.subscribe(vec!["t".into()]).unwrap();
    let mut got = 0;
    for _ in 0..20 {
        got += a.poll(POLL).await.unwrap().len();
        if got > 0 {
            break;
        }
    }
    assert_eq!(got, 3);
    let all = [tp(0), tp(1), tp(2), tp(3)];
    assert_eq!(a.committed(&all).await.unwrap(), vec![None; 4]);
    clock.advance(4_999);
    got += a.poll(POLL).await.unwrap().len();
    assert_eq!(a.committed(&all).await.unwrap(), vec![None; 4]);
    clock.advance(1);
    // The commit comes before this poll's records: it covers what earlier polls returned.
    let _ = a.poll(POLL).await.unwrap();
    let sum: i64 = a
        .committed(&all)
        .await
        .unwrap()
        .iter()
        .map(|o| o.unwrap_or(0))
        .sum();
    assert_eq!(sum as usize, got);
}

#[tokio::test]
async fn reset_offsets_needs_an_empty_group_and_lag_follows() {
    let dir = tempfile::tempdir().unwrap();
    let clock = MockClock::new(1_000_000);
    let c = client(dir.path(), &clock);
    topic_with_records(&c, 10).await;
    let admin = c.admin().unwrap();
    let all = vec![tp(0), tp(1), tp(2), tp(3)];
    // A group of committed offsets only: Empty.
    let r = admin
        .reset_offsets("g", all.clone(), ResetSpec::ToOffset(4), false)
        .await
        .unwrap();
    assert!(r.iter().all(|(_, o)| *o == 4));
    let dry = admin
        .reset_offsets("g", vec![tp(0)], ResetSpec::ShiftBy(-3), true)
        .await
        .unwrap();
    assert_eq!(dry, vec![(tp(0), 1)]);
    let r = admin
        .reset_offsets("g", vec![tp(1)], ResetSpec::Latest, false)
        .await
        .unwrap();
    assert_eq!(r, vec![(tp(1), 10)]);
    let lag = admin.lag("g").await.unwrap();
    let rows: Vec<(i32, Option<i64>, i64, Option<i64>)> = lag
        .iter()
        .map(|l| (l.tp.partition, l.committed, l.log_end, l.lag))
        .collect();
    assert_eq!(
        rows,
        vec![
            (0, Some(4), 10, Some(6)),
            (1, Some(10), 10, Some(0)),
            (2, Some(4), 10, Some(6)),
            (3, Some(4), 10, Some(6)),
        ]
    );
    let listed = admin.list_groups().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].state, GroupState::Empty);

    // A member starts where the reset put the group, and makes it active.
    let mut a = consumer(&c, "g", &[]);
    a.subscribe(vec!["t".into()]).unwrap();
    let first = a.poll(POLL).await.unwrap();
    assert!(first.iter().all(|r| r.offset >= 4), "{first:?}");
    let err = admin
        .reset_offsets("g", all.clone(), ResetSpec::Earliest, false)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NonEmptyGroup(_)), "{err}");
    assert_eq!(err.error_code(), 68);
    assert!(
        admin
            .lag("g")
            .await
            .unwrap()
            .iter()
            .all(|l| l.member_id.is_some())
    );
    let deleted = admin.delete_groups(vec!["g".into()]).await.unwrap();
    assert!(matches!(deleted[0], Err(Error::NonEmptyGroup(_))));
    a.close().await.unwrap();
    let r = admin
        .reset_offsets("g", vec![tp(0)], ResetSpec::Earliest, false)
        .await
        .unwrap();
    assert_eq!(r, vec![(tp(0), 0)]);
    admin.delete_offsets("g", vec![tp(0)]).await.unwrap();
    assert!(admin.lag("g").await.unwrap().iter().all(|l| l.tp != tp(0)));
    let deleted = admin.delete_groups(vec!["g".into()]).await.unwrap();
    assert!(deleted[0].is_ok());
    assert!(admin.list_groups().await.unwrap().is_empty());
}

#[test]
fn topic_patterns_are_globs() {
    let p = TopicPattern::new("orders-*");
    assert!(p.matches("orders-eu"));
    assert!(!p.matches("order"));
    assert!(TopicPattern::new("*").matches("x"));
    assert!(!TopicPattern::new("*").matches("__consumer_offsets"));
    assert!(TopicPattern::new("a*b*c").matches("aXbYc"));
    assert!(!TopicPattern::new("a*b*c").matches("aXbY"));
}

#[tokio::test]
async fn every_client_of_a_log_shares_one_coordinator() {
    let dir = tempfile::tempdir().unwrap();
    let clock = MockClock::new(1_000_000);
    let c = client(dir.path(), &clock);
    let other = EmbeddedClient::new(c.log().clone());
    let first = c.group_coordinator().unwrap();
    assert!(Arc::ptr_eq(&first, &other.group_coordinator().unwrap()));
    assert!(Arc::ptr_eq(&first, &c.clone().group_coordinator().unwrap()));
    // A group joined through one client is seen through the other.
    topic_with_records(&c, 1).await;
    let mut a = consumer(&other, "g", &[]);
    a.subscribe(vec!["t".into()]).unwrap();
    let _ = a.poll(POLL).await.unwrap();
    let listed = c.admin().unwrap().list_groups().await.unwrap();
    assert_eq!(listed[0].state, GroupState::Stable);
    // Closing the log stops the ticker thread (close joins it) and returns.
    a.close().await.unwrap();
    c.log().close().unwrap();
}

#[tokio::test]
async fn heartbeats_continue_between_polls_until_max_poll_interval() {
    let dir = tempfile::tempdir().unwrap();
    let clock = MockClock::new(1_000_000);
    let c = client(dir.path(), &clock);
    topic_with_records(&c, 2).await;
    let props = [
        ("heartbeat.interval.ms", "10"),
        ("session.timeout.ms", "6000"),
        ("max.poll.interval.ms", "30000"),
    ];
    let mut a = consumer(&c, "g", &props);
    let mut b = consumer(&c, "g", &props);
    a.subscribe(vec!["t".into()]).unwrap();
    b.subscribe(vec!["t".into()]).unwrap();
    let mut seen = Seen::new();
    for _ in 0..100 {
        round(&clock, &mut [&mut a, &mut b], &mut seen).await;
        if a.assignment().len() == 2 && b.assignment().len() == 2 {
            break;
        }
    }
    assert_eq!((a.assignment().len(), b.assignment().len()), (2, 2));
    let coordinator = c.group_coordinator().unwrap();
    // a is busy (no poll) for 20 s of log time, far past its 6 s session timeout, in 500 ms
    // steps; its heartbeat thread keeps it in the group.
    let a_before = a.assignment();
    for _ in 0..40 {
        clock.advance(500);
        // Two heartbeat intervals of real time, for both heartbeat threads to beat.
        tokio::time::sleep(Duration::from_millis(30)).await;
        coordinator.tick().unwrap();
        b.poll(Duration::from_millis(1)).await.unwrap();
    }
    let d = c.admin().unwrap().describe_group("g").await.unwrap();
    assert_eq!(d.members.len(), 2, "a kept its membership by heartbeats");
    assert_eq!(b.assignment().len(), 2);
    // Past max.poll.interval.ms without a poll, a's thread leaves the group: b takes over.
    for _ in 0..200 {
        clock.advance(500);
        tokio::time::sleep(Duration::from_millis(30)).await;
        coordinator.tick().unwrap();
        b.poll(Duration::from_millis(1)).await.unwrap();
        if b.assignment().len() == 4 {
            break;
        }
    }
    assert_eq!(b.assignment().len(), 4, "a left after max.poll.interval.ms");
    // a polls again: its partitions were lost, it rejoins, and the group splits again.
    let ea = Events::default();
    a.set_rebalance_listener(Box::new(ea.clone()));
    for _ in 0..100 {
        round(&clock, &mut [&mut a, &mut b], &mut seen).await;
        if a.assignment().len() == 2 && b.assignment().len() == 2 {
            break;
        }
    }
    assert_eq!(
        ea.of("lost").len(),
        1,
        "a's partitions were lost, not revoked"
    );
    assert_eq!(ea.of("lost")[0].len(), a_before.len());
    assert_eq!((a.assignment().len(), b.assignment().len()), (2, 2));
}

#[tokio::test]
async fn a_pattern_subscription_picks_up_new_matching_topics() {
    let dir = tempfile::tempdir().unwrap();
    let clock = MockClock::new(1_000_000);
    let c = client(dir.path(), &clock);
    topic_with_records(&c, 1).await;
    let mut a = consumer(&c, "g", &[]);
    a.subscribe_pattern(TopicPattern::new("t*")).await.unwrap();
    let mut seen = Seen::new();
    for _ in 0..100 {
        round(&clock, &mut [&mut a], &mut seen).await;
        if a.assignment().len() == 4 {
            break;
        }
    }
    assert_eq!(a.assignment().len(), 4);
    c.admin()
        .unwrap()
        .create_topics(vec![NewTopic::new("t-new", 2), NewTopic::new("other", 1)])
        .await
        .unwrap();
    for _ in 0..100 {
        // `round` moves the clock past the heartbeat interval, when the pattern is re-checked.
        clock.advance(3_000);
        round(&clock, &mut [&mut a], &mut seen).await;
        if a.assignment().len() == 6 {
            break;
        }
    }
    let topics: BTreeSet<String> = a
        .assignment()
        .iter()
        .map(|tp| tp.topic.to_string())
        .collect();
    assert_eq!(topics, BTreeSet::from(["t".to_owned(), "t-new".to_owned()]));
}

/// Polls `c` (advancing the clock) until its assignment is `n` partitions with nothing
/// pending, collecting its rebalance events.
async fn settle(
    clock: &MockClock,
    consumers: &mut [&mut EmbeddedConsumer],
    want: &[usize],
) -> Vec<Vec<sluice_log::client::RebalanceEvent>> {
    let mut events = vec![Vec::new(); consumers.len()];
    for _ in 0..200 {
        clock.advance(1_000);
        for (i, c) in consumers.iter_mut().enumerate() {
            c.poll(POLL).await.unwrap();
            events[i].extend(c.rebalance_events());
        }
        if consumers
            .iter()
            .zip(want)
            .all(|(c, n)| c.assignment().len() == *n)
        {
            break;
        }
    }
    events
}

/// The contract of a revocation (Kafka's onPartitionsRevoked, before the JoinGroup): `poll`
/// returns at once with `Revoked` queued, the consumer still owns the partitions, and a
/// commit made before the next poll counts for the current generation; the next poll gives
/// them up and rejoins. Eager (range) and cooperative (cooperative-sticky) protocols.
#[tokio::test]
async fn a_revocation_waits_for_the_next_poll_so_the_caller_can_commit_first() {
    use sluice_log::client::RebalanceEvent;
    for strategy in ["range", "cooperative-sticky"] {
        let dir = tempfile::tempdir().unwrap();
        let clock = MockClock::new(1_000_000);
        let c = client(dir.path(), &clock);
        topic_with_records(&c, 10).await;
        let props = [
            ("partition.assignment.strategy", strategy),
            ("enable.auto.commit", "false"),
        ];
        let mut a = consumer(&c, "g", &props);
        a.subscribe(vec!["t".into()]).unwrap();
        let events = settle(&clock, &mut [&mut a], &[4]).await;
        let all: Vec<TopicPartition> = (0..4).map(tp).collect();
        assert_eq!(
            events[0],
            [RebalanceEvent::Assigned(all.clone())],
            "{strategy}"
        );
        let generation = a.group_metadata().unwrap().generation_id;

        let mut b = consumer(&c, "g", &props);
        b.subscribe(vec!["t".into()]).unwrap();
        // b's join makes the group rebalance; a learns it at a poll and returns at once.
        let mut revoked = None;
        for _ in 0..50 {
            clock.advance(1_000);
            b.poll(POLL).await.unwrap();
            a.poll(POLL).await.unwrap();
            let found = a.rebalance_events().into_iter().find_map(|e| match e {
                RebalanceEvent::Revoked(tps) => Some(tps),
                _ => None,
            });
            if found.is_some() {
                revoked = found;
                break;
            }
        }
        let revoked = revoked.unwrap_or_else(|| panic!("{strategy}: no revocation"));
        match strategy {
            "range" => assert_eq!(revoked, all, "eager revokes everything"),
            _ => assert_eq!(revoked.len(), 2, "cooperative revokes what moves"),
        }
        // Still owned, in the same generation: the commit counts.
        assert_eq!(a.assignment(), all, "{strategy}");
        // Eager revokes before rejoining, cooperative after the sync of the new generation
        // (what moves is revoked in it, then assigned in a follow-up rebalance).
        let now = a.group_metadata().unwrap().generation_id;
        match strategy {
            "range" => assert_eq!(now, generation),
            _ => assert_eq!(now, generation + 1),
        }
        let done: Vec<(TopicPartition, i64)> = revoked.iter().map(|t| (t.clone(), 7)).collect();
        a.commit_sync(Some(done)).await.unwrap();
        // The next polls give them up and the group settles at two each.
        let events = settle(&clock, &mut [&mut a, &mut b], &[2, 2]).await;
        assert_eq!(a.assignment().len(), 2, "{strategy}: {events:?}");
        if strategy == "cooperative-sticky" {
            assert!(
                revoked.iter().all(|t| !a.assignment().contains(t)),
                "{strategy}"
            );
        }
        assert!(
            events[1]
                .iter()
                .any(|e| matches!(e, RebalanceEvent::Assigned(t) if t.len() == 2)),
            "{strategy}: {events:?}"
        );
        let committed = b.committed(&revoked).await.unwrap();
        assert_eq!(committed, vec![Some(7); revoked.len()], "{strategy}");
        a.close().await.unwrap();
        b.close().await.unwrap();
    }
}

/// What a [`HostAssignor`] saw, shared with the test.
#[derive(Default)]
struct HostLog {
    /// As leader: each member's host, from its subscription's user data, per `assign` call.
    leader_saw: Vec<BTreeMap<String, String>>,
    /// `on_assignment` calls: (user data, partitions, generation).
    assigned: Vec<(String, Vec<i32>, i32)>,
}

/// A custom assignor in the manner of Kafka Streams': each member sends its host in its
/// subscription's user data; the leader gives every partition to the member whose host is
/// "big", and tells every other member, in its assignment's user data, which partitions it
/// stands by for.
struct HostAssignor {
    host: &'static str,
    log: Arc<Mutex<HostLog>>,
}

impl PartitionAssignor for HostAssignor {
    fn name(&self) -> &str {
        "by-host"
    }

    fn subscription_user_data(&self, topics: &[String]) -> Option<Bytes> {
        assert_eq!(topics, ["t"], "called with the subscribed topics");
        Some(Bytes::from(self.host))
    }

    fn assign(
        &self,
        cluster: &ClusterPartitions,
        subscriptions: &BTreeMap<String, MemberSubscription>,
    ) -> sluice_log::Result<BTreeMap<String, Assignment>> {
        let hosts: BTreeMap<String, String> = subscriptions
            .iter()
            .map(|(id, s)| {
                let data = s.subscription.user_data.clone().unwrap_or_default();
                (id.clone(), String::from_utf8_lossy(&data).into_owned())
            })
            .collect();
        self.log.lock().leader_saw.push(hosts.clone());
        let all: Vec<TopicPartition> = (0..cluster["t"]).map(tp).collect();
        Ok(hosts
            .into_iter()
            .map(|(id, host)| {
                let (mine, standby) = if host == "big" {
                    (all.clone(), String::new())
                } else {
                    let list: Vec<String> = all.iter().map(|t| t.to_string()).collect();
                    (Vec::new(), list.join(","))
                };
                let a = Assignment {
                    partitions: mine,
                    user_data: Some(Bytes::from(format!("standby={standby}"))),
                };
                (id, a)
            })
            .collect())
    }

    fn on_assignment(&self, assignment: &Assignment, generation: i32) {
        let data = assignment.user_data.clone().unwrap_or_default();
        let partitions = assignment.partitions.iter().map(|t| t.partition).collect();
        self.log.lock().assigned.push((
            String::from_utf8_lossy(&data).into_owned(),
            partitions,
            generation,
        ));
    }
}

/// A custom assignor on the embedded client: each member's user data reaches the leader's
/// `assign`, which places partitions by it, and each member's `on_assignment` sees the user
/// data the leader gave it.
#[tokio::test]
async fn a_custom_assignor_places_partitions_by_the_members_user_data() {
    let dir = tempfile::tempdir().unwrap();
    let clock = MockClock::new(1_000_000);
    let c = client(dir.path(), &clock);
    topic_with_records(&c, 10).await;
    let with_host = |host: &'static str, log: &Arc<Mutex<HostLog>>| {
        let assignor: Arc<dyn PartitionAssignor> = Arc::new(HostAssignor {
            host,
            log: Arc::clone(log),
        });
        let config = ConsumerConfig::from_pairs([
            ("group.id", "g"),
            ("auto.offset.reset", "earliest"),
            ("max.poll.records", "3"),
        ])
        .unwrap()
        .with_assignors(vec![assignor])
        .unwrap();
        c.consumer(config).unwrap()
    };
    let (big_log, small_log) = (Arc::default(), Arc::default());
    let mut small = with_host("small", &small_log);
    let mut big = with_host("big", &big_log);
    // The small member joins first: alone, it leads and has no "big" member to give to.
    small.subscribe(vec!["t".into()]).unwrap();
    let mut seen = Seen::new();
    round(&clock, &mut [&mut small], &mut seen).await;
    big.subscribe(vec!["t".into()]).unwrap();
    let both_know = |log: &Arc<Mutex<HostLog>>, generation: i32| {
        log.lock()
            .assigned
            .last()
            .is_some_and(|a| a.2 == generation)
    };
    for _ in 0..200 {
        round(&clock, &mut [&mut small, &mut big], &mut seen).await;
        let generation = big.group_metadata().unwrap().generation_id;
        if seen.len() >= 40
            && generation > 0
            && both_know(&big_log, generation)
            && both_know(&small_log, generation)
        {
            break;
        }
    }
    assert_exactly_once(&seen, 10);
    assert_eq!(big.assignment(), (0..4).map(tp).collect::<Vec<_>>());
    assert!(small.assignment().is_empty());
    // The leader of the last generation read both members' user data.
    let member = |c: &EmbeddedConsumer| c.group_metadata().unwrap().member_id;
    let (big_id, small_id) = (member(&big), member(&small));
    let last_saw = |log: &Arc<Mutex<HostLog>>| log.lock().leader_saw.last().cloned();
    let saw = last_saw(&big_log)
        .into_iter()
        .chain(last_saw(&small_log))
        .find(|s| s.len() == 2)
        .expect("a leader assigned both members");
    assert_eq!(
        saw,
        BTreeMap::from([(big_id, "big".into()), (small_id, "small".into())])
    );
    // Each member's on_assignment saw its own user data, in the current generation.
    let generation = big.group_metadata().unwrap().generation_id;
    let last = |log: &Arc<Mutex<HostLog>>| log.lock().assigned.last().cloned().unwrap();
    assert_eq!(
        last(&big_log),
        ("standby=".into(), vec![0, 1, 2, 3], generation)
    );
    assert_eq!(
        last(&small_log),
        ("standby=t-0,t-1,t-2,t-3".into(), vec![], generation)
    );
    // Alone (generation 1), the small member led and was assigned nothing (the assignor gives
    // partitions only to a "big" member), standing by for every partition.
    assert_eq!(
        small_log.lock().assigned.first().cloned().unwrap(),
        ("standby=t-0,t-1,t-2,t-3".into(), vec![], 1)
    );
    assert_eq!(small_log.lock().leader_saw[0].len(), 1);
    let d = c.admin().unwrap().describe_group("g").await.unwrap();
    assert_eq!(d.protocol, "by-host");
    small.close().await.unwrap();
    big.close().await.unwrap();
}
