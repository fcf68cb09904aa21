//! Consumer groups: committed offsets in `__consumer_offsets`, the group coordinator, assignors.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use sluice_log::group::{
    CONSUMER_OFFSETS_TOPIC, GroupCoordinator, GroupCoordinatorConfig, GroupState, JoinGroupRequest,
    JoinResult, MemberIdentity, OffsetAndMetadata, OffsetCommitRequest, OffsetStore,
    OffsetStoreConfig, SyncGroupRequest,
};
use sluice_log::record::{BatchIter, decode_records};
use sluice_log::{MockClock, TopicPartition};

use crate::log::open;

const BOUND: Duration = Duration::from_secs(10);

fn tp(topic: &str, p: i32) -> TopicPartition {
    TopicPartition::new(topic, p)
}

fn small_config() -> OffsetStoreConfig {
    OffsetStoreConfig {
        num_partitions: 4,
        ..OffsetStoreConfig::default()
    }
}

fn offset(o: i64, metadata: &str) -> OffsetAndMetadata {
    OffsetAndMetadata {
        offset: o,
        leader_epoch: Some(1),
        metadata: Some(metadata.to_owned()),
    }
}

async fn bounded<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(BOUND, f).await.expect("bounded wait")
}

#[tokio::test]
async fn offsets_survive_a_reopen_and_tombstones_delete() {
    let dir = tempfile::tempdir().unwrap();
    let clock = MockClock::new(1_000_000);
    {
        let log = open(dir.path(), &clock);
        let store = OffsetStore::open(log.clone(), small_config()).unwrap();
        assert_eq!(log.partition_count(CONSUMER_OFFSETS_TOPIC).unwrap(), 4);
        assert!(
            log.topic_config(CONSUMER_OFFSETS_TOPIC)
                .unwrap()
                .cleanup_policy
                .compact
        );
        bounded(store.commit(
            "g",
            vec![(tp("t", 0), offset(5, "a")), (tp("t", 1), offset(7, ""))],
        ))
        .await
        .unwrap();
        bounded(store.commit("g", vec![(tp("t", 0), offset(9, "b"))]))
            .await
            .unwrap();
        bounded(store.commit("other", vec![(tp("t", 0), OffsetAndMetadata::new(1))]))
            .await
            .unwrap();
        bounded(store.delete_offsets("g", &[tp("t", 1)]))
            .await
            .unwrap();
        let got = store.fetch("g", Some(&[tp("t", 0), tp("t", 1), tp("u", 0)]));
        let o = got[0].1.as_ref().unwrap();
        assert_eq!(
            (o.offset, o.metadata.as_str(), o.leader_epoch),
            (9, "b", Some(1))
        );
        assert_eq!(o.commit_timestamp, 1_000_000);
        assert!(got[1].1.is_none() && got[2].1.is_none());
        log.close().unwrap();
    }
    let log = open(dir.path(), &clock);
    let store = OffsetStore::open(log, small_config()).unwrap();
    let all = store.fetch("g", None);
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0].0, tp("t", 0));
    assert_eq!(all[0].1.as_ref().unwrap().offset, 9);
    assert_eq!(store.fetch("other", None)[0].1.as_ref().unwrap().offset, 1);
    assert_eq!(store.groups(), ["g", "other"]);
}

#[tokio::test]
async fn records_use_kafkas_key_and_value_schemas_in_the_groups_partition() {
    let dir = tempfile::tempdir().unwrap();
    let clock = MockClock::new(1_000);
    let log = open(dir.path(), &clock);
    let store = OffsetStore::open(log.clone(), OffsetStoreConfig::default()).unwrap();
    assert_eq!(log.partition_count(CONSUMER_OFFSETS_TOPIC).unwrap(), 50);
    // "group".hashCode() == 98629247 in Java.
    assert_eq!(store.partition_for("group"), 98_629_247 % 50);
    bounded(store.commit("group", vec![(tp("t", 3), offset(42, "m"))]))
        .await
        .unwrap();
    let p = log
        .partition(&tp(CONSUMER_OFFSETS_TOPIC, 98_629_247 % 50))
        .unwrap();
    let data = p.read(0, 1 << 20).unwrap();
    let (_, range) = BatchIter::new(&data.records).next().unwrap();
    let r = decode_records(&data.records.slice(range), 1 << 20)
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    let key = r.key.unwrap();
    assert_eq!(
        &key[..],
        &[
            0, 1, 0, 5, b'g', b'r', b'o', b'u', b'p', 0, 1, b't', 0, 0, 0, 3
        ]
    );
    let value = r.value.unwrap();
    let mut expect = vec![0, 3];
    expect.extend_from_slice(&42i64.to_be_bytes());
    expect.extend_from_slice(&1i32.to_be_bytes());
    expect.extend_from_slice(&[0, 1, b'm']);
    expect.extend_from_slice(&1_000i64.to_be_bytes());
    assert_eq!(&value[..], &expect[..]);
}

#[tokio::test]
async fn bad_commits_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let clock = MockClock::new(1_000);
    let store = OffsetStore::open(open(dir.path(), &clock), small_config()).unwrap();
    let big = OffsetAndMetadata {
        metadata: Some("x".repeat(5000)),
        ..OffsetAndMetadata::new(1)
    };
    let err = bounded(store.commit("g", vec![(tp("t", 0), big)]))
        .await
        .unwrap_err();
    assert_eq!(err.error_code(), 12, "{err}");
    assert!(store.fetch("g", None).is_empty());
    // The empty group id is accepted, as Kafka accepts it from old clients.
    bounded(store.commit("", vec![(tp("t", 0), OffsetAndMetadata::new(1))]))
        .await
        .unwrap();
    assert_eq!(store.fetch("", None).len(), 1);
}

#[tokio::test]
async fn offsets_of_empty_groups_expire_after_the_retention() {
    let dir = tempfile::tempdir().unwrap();
    let clock = MockClock::new(1_000);
    let config = OffsetStoreConfig {
        retention_ms: 60_000,
        ..small_config()
    };
    {
        let log = open(dir.path(), &clock);
        let store = OffsetStore::open(log.clone(), config.clone()).unwrap();
        bounded(store.commit("idle", vec![(tp("t", 0), OffsetAndMetadata::new(3))]))
            .await
            .unwrap();
        bounded(store.commit("busy", vec![(tp("t", 0), OffsetAndMetadata::new(4))]))
            .await
            .unwrap();
        clock.advance(30_000);
        let empty_since = |g: &str| (g == "idle").then_some(i64::MIN);
        assert_eq!(store.expire_offsets(empty_since).unwrap(), 0);
        clock.advance(30_000);
        assert_eq!(store.expire_offsets(empty_since).unwrap(), 1);
        assert!(store.fetch("idle", None).is_empty());
        assert_eq!(store.fetch("busy", None).len(), 1);
        log.close().unwrap();
    }
    let store = OffsetStore::open(open(dir.path(), &clock), config).unwrap();
    assert_eq!(store.groups(), ["busy"], "the expiry tombstone is replayed");
}

// ---- the group coordinator ----

const SESSION_MS: i32 = 10_000;

struct Fixture {
    _dir: tempfile::TempDir,
    clock: MockClock,
    coord: GroupCoordinator,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let clock = MockClock::new(1_000_000);
    let log = open(dir.path(), &clock);
    let store = OffsetStore::open(log, small_config()).unwrap();
    let coord = GroupCoordinator::new(
        store,
        Arc::new(clock.clone()),
        GroupCoordinatorConfig::default(),
    );
    Fixture {
        _dir: dir,
        clock,
        coord,
    }
}

fn join_req(group: &str, client: &str, instance: Option<&str>) -> JoinGroupRequest {
    let mut r = JoinGroupRequest::new(
        group,
        "consumer",
        vec![("range".to_owned(), Bytes::from(format!("sub-{client}")))],
    );
    r.client_id = client.to_owned();
    r.group_instance_id = instance.map(str::to_owned);
    r.session_timeout_ms = SESSION_MS;
    r.rebalance_timeout_ms = 20_000;
    r
}

/// A first join as a Java client does it: without a member id, which KIP-394 answers with
/// MEMBER_ID_REQUIRED and an id, then again with that id. Static members skip the first step.
async fn first_join(
    coord: &GroupCoordinator,
    mut req: JoinGroupRequest,
) -> sluice_log::group::Pending<JoinResult> {
    if req.group_instance_id.is_none() {
        let err = bounded(coord.join_group(req.clone())).await.unwrap_err();
        assert_eq!(err.error_code(), 79, "{err}");
        let sluice_log::Error::MemberIdRequired { member_id, .. } = err else {
            panic!("{err}")
        };
        assert!(member_id.starts_with(&req.client_id), "{member_id}");
        req.member_id = member_id;
    }
    coord.join_group(req)
}

fn sync_req(group: &str, r: &JoinResult, assignments: Vec<(String, Bytes)>) -> SyncGroupRequest {
    SyncGroupRequest {
        group_id: group.to_owned(),
        generation_id: r.generation_id,
        member_id: r.member_id.clone(),
        assignments,
        ..SyncGroupRequest::default()
    }
}

/// Syncs every member (the leader last, so the others wait on it); each member's assignment
/// is `assignment-<member id>`. Returns what each got.
async fn sync_all(coord: &GroupCoordinator, group: &str, joined: &[JoinResult]) -> Vec<Bytes> {
    let leader = joined.iter().find(|r| r.member_id == r.leader).unwrap();
    let assignments: Vec<(String, Bytes)> = leader
        .members
        .iter()
        .map(|m| {
            (
                m.member_id.clone(),
                Bytes::from(format!("assignment-{}", m.member_id)),
            )
        })
        .collect();
    let mut pending = Vec::new();
    for r in joined.iter().filter(|r| r.member_id != r.leader) {
        pending.push(coord.sync_group(sync_req(group, r, Vec::new())));
    }
    let lead = coord.sync_group(sync_req(group, leader, assignments));
    let mut out = Vec::new();
    for (r, p) in joined
        .iter()
        .filter(|r| r.member_id != r.leader)
        .zip(pending)
    {
        let got = bounded(p).await.unwrap().assignment;
        assert_eq!(got, Bytes::from(format!("assignment-{}", r.member_id)));
        out.push(got);
    }
    out.push(bounded(lead).await.unwrap().assignment);
    out
}

/// Three members join an empty group; the initial rebalance delay passes; all get generation 1.
async fn stable_group_of_three(f: &Fixture, instances: [Option<&str>; 3]) -> Vec<JoinResult> {
    let mut pending = Vec::new();
    for (i, instance) in instances.into_iter().enumerate() {
        pending.push(first_join(&f.coord, join_req("g", &format!("c{i}"), instance)).await);
    }
    assert_eq!(
        f.coord.describe_group("g").unwrap().state,
        GroupState::PreparingRebalance
    );
    // group.initial.rebalance.delay.ms (3 s) waits for more members.
    f.clock.advance(2_999);
    f.coord.tick().unwrap();
    assert_eq!(
        f.coord.describe_group("g").unwrap().state,
        GroupState::PreparingRebalance
    );
    f.clock.advance(1);
    f.coord.tick().unwrap();
    let mut joined = Vec::new();
    for p in pending {
        joined.push(bounded(p).await.unwrap());
    }
    sync_all(&f.coord, "g", &joined).await;
    assert_eq!(
        f.coord.describe_group("g").unwrap().state,
        GroupState::Stable
    );
    joined
}

#[tokio::test]
async fn three_members_join_one_generation_and_the_leader_assigns() {
    let f = fixture();
    let joined = stable_group_of_three(&f, [None, None, None]).await;
    assert!(joined.iter().all(|r| r.generation_id == 1));
    assert!(
        joined
            .iter()
            .all(|r| r.protocol_name.as_deref() == Some("range"))
    );
    let leader = &joined[0].leader;
    assert!(joined.iter().all(|r| &r.leader == leader));
    let leaders: Vec<_> = joined.iter().filter(|r| !r.members.is_empty()).collect();
    assert_eq!(leaders.len(), 1);
    assert_eq!(&leaders[0].member_id, leader);
    assert_eq!(leaders[0].members.len(), 3);
    assert_eq!(leaders[0].members[1].metadata, Bytes::from("sub-c1"));
    let d = f.coord.describe_group("g").unwrap();
    assert_eq!(
        (d.protocol_type.as_str(), d.protocol.as_str()),
        ("consumer", "range")
    );
    assert_eq!(d.members.len(), 3);
    assert_eq!(d.members[2].client_id, "c2");
    assert_eq!(
        d.members[2].assignment,
        Bytes::from(format!("assignment-{}", d.members[2].member_id))
    );
    for r in &joined {
        f.coord.heartbeat("g", 1, &r.member_id, None).unwrap();
    }
    let listed = f.coord.list_groups();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0].group_id.as_str(), listed[0].state),
        ("g", GroupState::Stable)
    );
}

#[tokio::test]
async fn a_member_leaving_triggers_a_rebalance() {
    let f = fixture();
    let joined = stable_group_of_three(&f, [None, None, None]).await;
    let gone = &joined[2];
    let res = f
        .coord
        .leave_group("g", &[MemberIdentity::new(gone.member_id.clone())]);
    assert!(res[0].is_ok());
    let err = f
        .coord
        .heartbeat("g", 1, &joined[0].member_id, None)
        .unwrap_err();
    assert_eq!(err.error_code(), 27, "{err}");
    assert_eq!(
        f.coord
            .heartbeat("g", 1, &gone.member_id, None)
            .unwrap_err()
            .error_code(),
        25
    );
    // The two left rejoin; the rebalance completes when both are in, without waiting.
    let mut pending = Vec::new();
    for r in &joined[..2] {
        let mut req = join_req("g", "c", None);
        req.member_id = r.member_id.clone();
        pending.push(f.coord.join_group(req));
    }
    let mut rejoined = Vec::new();
    for p in pending {
        rejoined.push(bounded(p).await.unwrap());
    }
    assert!(rejoined.iter().all(|r| r.generation_id == 2));
    let leader = rejoined.iter().find(|r| r.member_id == r.leader).unwrap();
    assert_eq!(leader.members.len(), 2);
    sync_all(&f.coord, "g", &rejoined).await;
    assert_eq!(f.coord.describe_group("g").unwrap().members.len(), 2);
}

#[tokio::test]
async fn a_member_missing_heartbeats_is_expired_and_the_others_rebalance() {
    let f = fixture();
    let joined = stable_group_of_three(&f, [None, None, None]).await;
    f.clock.advance(i64::from(SESSION_MS) - 1_000);
    f.coord
        .heartbeat("g", 1, &joined[0].member_id, None)
        .unwrap();
    f.coord
        .heartbeat("g", 1, &joined[1].member_id, None)
        .unwrap();
    f.coord.tick().unwrap();
    assert_eq!(
        f.coord.describe_group("g").unwrap().state,
        GroupState::Stable
    );
    f.clock.advance(1_000);
    f.coord.tick().unwrap();
    let d = f.coord.describe_group("g").unwrap();
    assert_eq!(d.state, GroupState::PreparingRebalance);
    assert_eq!(d.members.len(), 2, "the silent member is gone");
    let err = f
        .coord
        .heartbeat("g", 1, &joined[2].member_id, None)
        .unwrap_err();
    assert_eq!(err.error_code(), 25);
    // Only the first rejoins; the second misses the rebalance timeout (20 s) and is dropped.
    let mut req = join_req("g", "c0", None);
    req.member_id = joined[0].member_id.clone();
    let mut p = f.coord.join_group(req);
    assert!(
        futures_poll_once(&mut p).is_none(),
        "waits for the other member"
    );
    // The second keeps heartbeating (told to rejoin) but never rejoins.
    for step in [5_000, 5_000, 5_000, 4_999] {
        f.clock.advance(step);
        let err = f
            .coord
            .heartbeat("g", 1, &joined[1].member_id, None)
            .unwrap_err();
        assert_eq!(err.error_code(), 27);
        f.coord.tick().unwrap();
        assert!(futures_poll_once(&mut p).is_none());
    }
    f.clock.advance(1);
    f.coord.tick().unwrap();
    let r = bounded(p).await.unwrap();
    assert_eq!((r.generation_id, r.members.len()), (2, 1));
    assert_eq!(r.leader, joined[0].member_id);
    let d = f.coord.describe_group("g").unwrap();
    assert_eq!(
        (d.state, d.members.len()),
        (GroupState::CompletingRebalance, 1)
    );
}

/// Polls a future once without blocking: `Some` if it is ready.
fn futures_poll_once<F: std::future::Future + Unpin>(f: &mut F) -> Option<F::Output> {
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    match std::pin::Pin::new(f).poll(&mut cx) {
        std::task::Poll::Ready(v) => Some(v),
        std::task::Poll::Pending => None,
    }
}

#[tokio::test]
async fn a_static_member_rejoins_without_a_rebalance_and_fences_its_old_id() {
    let f = fixture();
    let joined = stable_group_of_three(&f, [Some("i-a"), Some("i-b"), Some("i-c")]).await;
    let old = joined.iter().find(|r| r.member_id != r.leader).unwrap();
    let members = f.coord.describe_group("g").unwrap().members;
    let i = members
        .iter()
        .position(|m| m.member_id == old.member_id)
        .unwrap();
    let instance = members[i].group_instance_id.clone().unwrap();
    // The process restarts: same group.instance.id and subscription, no member id.
    let client = format!("c{i}");
    let r = bounded(f.coord.join_group(join_req("g", &client, Some(&instance))))
        .await
        .unwrap();
    assert_ne!(r.member_id, old.member_id);
    assert!(r.member_id.starts_with(&instance), "{}", r.member_id);
    assert_eq!(r.generation_id, 1, "no new generation");
    assert_eq!(
        f.coord.describe_group("g").unwrap().state,
        GroupState::Stable
    );
    let got = bounded(f.coord.sync_group(sync_req("g", &r, Vec::new())))
        .await
        .unwrap();
    assert_eq!(
        got.assignment,
        Bytes::from(format!("assignment-{}", old.member_id)),
        "keeps its assignment"
    );
    let err = f
        .coord
        .heartbeat("g", 1, &old.member_id, Some(&instance))
        .unwrap_err();
    assert_eq!(err.error_code(), 82, "{err}");
    f.coord
        .heartbeat("g", 1, &r.member_id, Some(&instance))
        .unwrap();
    for other in joined.iter().filter(|j| j.member_id != old.member_id) {
        f.coord.heartbeat("g", 1, &other.member_id, None).unwrap();
    }
    // Leaving by instance id.
    let res = f.coord.leave_group(
        "g",
        &[MemberIdentity {
            member_id: String::new(),
            group_instance_id: Some(instance.clone()),
        }],
    );
    assert!(res[0].is_ok());
    assert_eq!(f.coord.describe_group("g").unwrap().members.len(), 2);
}

#[tokio::test]
async fn a_stale_generation_gets_illegal_generation() {
    let f = fixture();
    let joined = stable_group_of_three(&f, [None, None, None]).await;
    let m = &joined[1].member_id;
    assert_eq!(
        f.coord.heartbeat("g", 0, m, None).unwrap_err().error_code(),
        22
    );
    let mut stale = sync_req("g", &joined[1], Vec::new());
    stale.generation_id = 7;
    assert_eq!(
        bounded(f.coord.sync_group(stale))
            .await
            .unwrap_err()
            .error_code(),
        22
    );
    let commit = |generation| OffsetCommitRequest {
        group_id: "g".into(),
        generation_id: generation,
        member_id: m.clone(),
        offsets: vec![(tp("t", 0), OffsetAndMetadata::new(10))],
        ..OffsetCommitRequest::default()
    };
    let err = bounded(f.coord.commit_offsets(commit(0)))
        .await
        .unwrap_err();
    assert_eq!(err.error_code(), 22);
    bounded(f.coord.commit_offsets(commit(1))).await.unwrap();
    assert_eq!(
        f.coord.fetch_offsets("g", None)[0]
            .1
            .as_ref()
            .unwrap()
            .offset,
        10
    );
    // A commit from outside the group while it has members.
    let mut outside = commit(-1);
    outside.member_id = String::new();
    assert_eq!(
        bounded(f.coord.commit_offsets(outside))
            .await
            .unwrap_err()
            .error_code(),
        25
    );
}

#[tokio::test]
async fn bad_input_gets_kafkas_errors() {
    let f = fixture();
    let c = &f.coord;
    assert_eq!(
        c.heartbeat("nope", 1, "m", None).unwrap_err().error_code(),
        25
    );
    assert_eq!(c.describe_group("nope").unwrap_err().error_code(), 69);
    let leave = c.leave_group("nope", &[MemberIdentity::new("m")]);
    assert_eq!(leave[0].as_ref().unwrap_err().error_code(), 25);
    let mut known = join_req("nope", "c", None);
    known.member_id = "made-up".into();
    assert_eq!(
        bounded(c.join_group(known)).await.unwrap_err().error_code(),
        25
    );
    assert_eq!(
        bounded(c.join_group(join_req("", "c", None)))
            .await
            .unwrap_err()
            .error_code(),
        24
    );
    let mut short = join_req("g", "c", None);
    short.session_timeout_ms = 10;
    assert_eq!(
        bounded(c.join_group(short)).await.unwrap_err().error_code(),
        26
    );
    let mut no_protocols = join_req("g", "c", None);
    no_protocols.protocols.clear();
    assert_eq!(
        bounded(c.join_group(no_protocols))
            .await
            .unwrap_err()
            .error_code(),
        23
    );
    let sync = SyncGroupRequest {
        group_id: "nope".into(),
        member_id: "m".into(),
        ..SyncGroupRequest::default()
    };
    assert_eq!(
        bounded(c.sync_group(sync)).await.unwrap_err().error_code(),
        25
    );
    let del = bounded(c.delete_groups(&["nope".to_owned()])).await;
    assert_eq!(del[0].as_ref().unwrap_err().error_code(), 69);

    let joined = stable_group_of_three(&f, [None, None, None]).await;
    assert_eq!(
        c.heartbeat("g", 1, "stranger", None)
            .unwrap_err()
            .error_code(),
        25
    );
    // Another protocol type, or no common protocol.
    let mut other_type = join_req("g", "x", None);
    other_type.protocol_type = "connect".into();
    assert_eq!(
        bounded(c.join_group(other_type))
            .await
            .unwrap_err()
            .error_code(),
        23
    );
    let mut other_protocol = join_req("g", "x", None);
    other_protocol.protocols = vec![("roundrobin".into(), Bytes::new())];
    assert_eq!(
        bounded(c.join_group(other_protocol))
            .await
            .unwrap_err()
            .error_code(),
        23
    );
    let del = bounded(c.delete_groups(&["g".to_owned()])).await;
    assert_eq!(del[0].as_ref().unwrap_err().error_code(), 68);
    // Everyone leaves: the group rebalances to Empty and can be deleted with its offsets.
    let mut commit = OffsetCommitRequest {
        group_id: "g".into(),
        generation_id: 1,
        member_id: joined[0].member_id.clone(),
        offsets: vec![(tp("t", 0), OffsetAndMetadata::new(3))],
        ..OffsetCommitRequest::default()
    };
    bounded(c.commit_offsets(commit.clone())).await.unwrap();
    let all: Vec<_> = joined
        .iter()
        .map(|r| MemberIdentity::new(r.member_id.clone()))
        .collect();
    assert!(c.leave_group("g", &all).iter().all(Result::is_ok));
    assert_eq!(c.describe_group("g").unwrap().state, GroupState::Empty);
    // An admin commit (generation -1) is fine on an empty group.
    commit.generation_id = -1;
    commit.member_id = String::new();
    bounded(c.commit_offsets(commit)).await.unwrap();
    let del = bounded(c.delete_groups(&["g".to_owned()])).await;
    assert!(del[0].is_ok(), "{:?}", del[0]);
    assert!(c.fetch_offsets("g", None).is_empty());
    assert_eq!(c.describe_group("g").unwrap_err().error_code(), 69);
}

#[tokio::test]
async fn pending_member_ids_expire_and_offsets_of_empty_groups_expire() {
    let f = fixture();
    let err = bounded(f.coord.join_group(join_req("g", "c", None)))
        .await
        .unwrap_err();
    assert_eq!(err.error_code(), 79);
    f.clock.advance(i64::from(SESSION_MS));
    f.coord.tick().unwrap();
    assert_eq!(
        f.coord.describe_group("g").unwrap_err().error_code(),
        69,
        "forgotten"
    );
    let commit = OffsetCommitRequest {
        group_id: "standalone".into(),
        generation_id: -1,
        offsets: vec![(tp("t", 0), OffsetAndMetadata::new(3))],
        ..OffsetCommitRequest::default()
    };
    bounded(f.coord.commit_offsets(commit)).await.unwrap();
    assert_eq!(f.coord.list_groups()[0].state, GroupState::Empty);
    f.clock.advance(OffsetStoreConfig::default().retention_ms);
    f.coord.tick().unwrap();
    assert!(f.coord.fetch_offsets("standalone", None).is_empty());
    assert!(f.coord.list_groups().is_empty());
}

// ---- assignors and the consumer protocol through the coordinator ----

#[test]
fn consumer_protocol_bytes_are_what_kafka_protocol_reads_and_writes() {
    use kafka_protocol::messages::{
        ConsumerProtocolAssignment, ConsumerProtocolSubscription, TopicName,
        consumer_protocol_assignment,
    };
    use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
    use sluice_log::group::{Assignment, Subscription};

    let ours = Subscription {
        user_data: Some(Bytes::from_static(b"ud")),
        owned_partitions: vec![tp("a", 1), tp("a", 4), tp("b", 0)],
        ..Subscription::new(["a", "b"])
    };
    let mut bytes = ours.encode();
    assert_eq!(&bytes[..2], &[0, 1], "version 1");
    let _ = bytes.split_to(2);
    let theirs = ConsumerProtocolSubscription::decode(&mut bytes, 1).unwrap();
    assert_eq!(theirs.topics.len(), 2);
    assert_eq!(theirs.topics[1].as_str(), "b");
    assert_eq!(theirs.user_data.as_deref(), Some(&b"ud"[..]));
    assert_eq!(theirs.owned_partitions[0].topic.as_str(), "a");
    assert_eq!(theirs.owned_partitions[0].partitions, [1, 4]);
    assert_eq!(theirs.owned_partitions[1].partitions, [0]);

    let theirs = ConsumerProtocolAssignment::default().with_assigned_partitions(vec![
        consumer_protocol_assignment::TopicPartition::default()
            .with_topic(TopicName(StrBytes::from_static_str("t")))
            .with_partitions(vec![0, 2]),
    ]);
    let mut buf = bytes::BytesMut::new();
    buf.extend_from_slice(&1i16.to_be_bytes());
    theirs.encode(&mut buf, 1).unwrap();
    let ours = Assignment::decode(&buf).unwrap();
    assert_eq!(ours.partitions, [tp("t", 0), tp("t", 2)]);
    assert_eq!(ours.user_data, None);
}

/// One cooperative-sticky member: joins with its subscription and owned partitions.
fn sticky_join(
    f: &Fixture,
    client: &str,
    member_id: &str,
    owned: &[TopicPartition],
) -> sluice_log::group::Pending<JoinResult> {
    use sluice_log::group::Subscription;
    let sub = Subscription {
        owned_partitions: owned.to_vec(),
        ..Subscription::new(["t"])
    };
    let mut req = join_req("g", client, None);
    req.protocols = vec![("cooperative-sticky".into(), sub.encode())];
    req.member_id = member_id.to_owned();
    req.require_known_member_id = false;
    f.coord.join_group(req)
}

/// The leader assigns with the protocol the group chose; everyone syncs. Returns each member's
/// partitions.
async fn assign_and_sync(
    f: &Fixture,
    joined: &[JoinResult],
) -> std::collections::BTreeMap<String, Vec<TopicPartition>> {
    use sluice_log::group::{Assignment, assign_members, strategy_for_protocol};
    let leader = joined.iter().find(|r| r.member_id == r.leader).unwrap();
    let strategy = strategy_for_protocol(leader.protocol_name.as_deref().unwrap()).unwrap();
    let topics = std::collections::BTreeMap::from([("t".to_owned(), 6)]);
    let assignments = assign_members(strategy, &topics, &leader.members).unwrap();
    let pending: Vec<_> = joined
        .iter()
        .map(|r| {
            let a = if r.member_id == r.leader {
                assignments.clone()
            } else {
                Vec::new()
            };
            (r.member_id.clone(), f.coord.sync_group(sync_req("g", r, a)))
        })
        .collect();
    let mut out = std::collections::BTreeMap::new();
    for (id, p) in pending {
        let got = bounded(p).await.unwrap();
        out.insert(id, Assignment::decode(&got.assignment).unwrap().partitions);
    }
    out
}

#[tokio::test]
async fn cooperative_sticky_keeps_partitions_when_a_member_joins_and_moves_them_in_two_rebalances()
{
    let f = fixture();
    let a = sticky_join(&f, "a", "", &[]);
    let b = sticky_join(&f, "b", "", &[]);
    f.clock.advance(3_000);
    f.coord.tick().unwrap();
    let joined = vec![bounded(a).await.unwrap(), bounded(b).await.unwrap()];
    assert_eq!(
        joined[0].protocol_name.as_deref(),
        Some("cooperative-sticky")
    );
    let gen1 = assign_and_sync(&f, &joined).await;
    assert!(gen1.values().all(|ps| ps.len() == 3), "{gen1:?}");
    let (ida, idb) = (joined[0].member_id.clone(), joined[1].member_id.clone());

    // c joins: a and b are told to rejoin, with what they own.
    let c = sticky_join(&f, "c", "", &[]);
    assert_eq!(
        f.coord
            .heartbeat("g", 1, &ida, None)
            .unwrap_err()
            .error_code(),
        27
    );
    let a = sticky_join(&f, "a", &ida, &gen1[&ida]);
    let b = sticky_join(&f, "b", &idb, &gen1[&idb]);
    let joined = vec![
        bounded(a).await.unwrap(),
        bounded(b).await.unwrap(),
        bounded(c).await.unwrap(),
    ];
    let idc = joined[2].member_id.clone();
    let gen2 = assign_and_sync(&f, &joined).await;
    // First rebalance: a and b each give one up; c gets nothing yet.
    assert_eq!(gen2[&ida].len(), 2);
    assert_eq!(gen2[&idb].len(), 2);
    assert!(gen2[&idc].is_empty());
    assert!(
        gen2[&ida].iter().all(|tp| gen1[&ida].contains(tp)),
        "kept with its owner"
    );
    assert!(gen2[&idb].iter().all(|tp| gen1[&idb].contains(tp)));

    // Having revoked partitions, a and b rejoin at once (the follow-up rebalance).
    let a = sticky_join(&f, "a", &ida, &gen2[&ida]);
    let b = sticky_join(&f, "b", &idb, &gen2[&idb]);
    let c = sticky_join(&f, "c", &idc, &[]);
    let joined = vec![
        bounded(a).await.unwrap(),
        bounded(b).await.unwrap(),
        bounded(c).await.unwrap(),
    ];
    assert_eq!(joined[0].generation_id, 3);
    let gen3 = assign_and_sync(&f, &joined).await;
    assert_eq!(gen3[&ida], gen2[&ida]);
    assert_eq!(gen3[&idb], gen2[&idb]);
    assert_eq!(gen3[&idc].len(), 2);
    let mut all: Vec<_> = gen3.values().flatten().cloned().collect();
    all.sort();
    assert_eq!(all, (0..6).map(|p| tp("t", p)).collect::<Vec<_>>());
}
