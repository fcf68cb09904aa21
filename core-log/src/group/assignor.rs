//! The consumer group leader's partition assignors, as Kafka's: `range`, `roundrobin` and
//! `cooperative-sticky`.
//!
//! - **range**: per topic, the members subscribed to it (sorted) get consecutive ranges; the
//!   first `partitions % members` get one more.
//! - **roundrobin**: every subscribed partition, sorted, dealt out to the sorted members in
//!   turn, skipping members not subscribed to its topic.
//! - **cooperative-sticky**: balanced (counts differ by at most one when subscriptions are
//!   equal), keeps every partition with its current owner where balance allows, and moves a
//!   partition in two rebalances: this one leaves it out (its owner revokes it), the follow-up
//!   rebalance the owner's client asks for assigns it to its new member.
//!
//! Members sort as Kafka's `MemberInfo`: static members first by `group.instance.id`, then the
//! others by member id.
//!
//! Each is a [`PartitionAssignor`] ([`BuiltinAssignor`]), the interface a custom assignor
//! implements too; [`assign_members_with`] is the leader's job with any of them.
//!
//! ```
//! use std::collections::BTreeMap;
//! use sluice_log::client::config::AssignmentStrategy;
//! use sluice_log::group::{MemberSubscription, Subscription, assign};
//!
//! let topics = BTreeMap::from([("t".to_owned(), 3)]);
//! let members = vec![
//!     MemberSubscription::new("a", Subscription::new(["t"])),
//!     MemberSubscription::new("b", Subscription::new(["t"])),
//! ];
//! let out = assign(AssignmentStrategy::Range, &topics, &members);
//! assert_eq!(out["a"].len(), 2);
//! assert_eq!(out["b"].len(), 1);
//! ```

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use bytes::Bytes;

use sluice_client::assignor::{ClusterPartitions, PartitionAssignor, RebalanceProtocol};

use super::JoinGroupMember;
use super::consumer_protocol::{Assignment, Subscription};
use crate::client::config::AssignmentStrategy;
use crate::{Error, Result, TopicPartition};

pub use sluice_client::assignor::MemberSubscription;

/// A built-in assignor (`range`, `roundrobin` or `cooperative-sticky`) as a
/// [`PartitionAssignor`]: what `partition.assignment.strategy` names. No user data; eager
/// (`range`, `roundrobin`), or cooperative and eager (`cooperative-sticky`, as Kafka's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BuiltinAssignor(pub AssignmentStrategy);

impl BuiltinAssignor {
    /// The built-in assignor of `strategy`, shared.
    pub fn shared(strategy: AssignmentStrategy) -> Arc<dyn PartitionAssignor> {
        Arc::new(Self(strategy))
    }
}

impl PartitionAssignor for BuiltinAssignor {
    fn name(&self) -> &str {
        self.0.as_str()
    }

    fn supported_protocols(&self) -> Vec<RebalanceProtocol> {
        match self.0 {
            AssignmentStrategy::Range | AssignmentStrategy::RoundRobin => {
                vec![RebalanceProtocol::Eager]
            }
            AssignmentStrategy::CooperativeSticky => {
                vec![RebalanceProtocol::Cooperative, RebalanceProtocol::Eager]
            }
        }
    }

    fn assign(
        &self,
        cluster: &ClusterPartitions,
        subscriptions: &BTreeMap<String, MemberSubscription>,
    ) -> Result<BTreeMap<String, Assignment>> {
        let members: Vec<MemberSubscription> = subscriptions.values().cloned().collect();
        Ok(assign(self.0, cluster, &members)
            .into_iter()
            .map(|(id, tps)| (id, Assignment::new(tps)))
            .collect())
    }
}

/// The strategy a JoinGroup protocol name stands for (`range`, `roundrobin`,
/// `cooperative-sticky`).
pub fn strategy_for_protocol(name: &str) -> Option<AssignmentStrategy> {
    [
        AssignmentStrategy::Range,
        AssignmentStrategy::RoundRobin,
        AssignmentStrategy::CooperativeSticky,
    ]
    .into_iter()
    .find(|s| s.as_str() == name)
}

/// Assigns the partitions of `partitions_per_topic` (topic -> partition count) to `members`.
/// Every member gets an entry, maybe empty; topics no member subscribes to, and subscribed
/// topics missing from `partitions_per_topic`, are not assigned.
pub fn assign(
    strategy: AssignmentStrategy,
    partitions_per_topic: &BTreeMap<String, i32>,
    members: &[MemberSubscription],
) -> BTreeMap<String, Vec<TopicPartition>> {
    let mut sorted: Vec<&MemberSubscription> = members.iter().collect();
    sorted.sort_by(|a, b| member_key(a).cmp(&member_key(b)));
    sorted.dedup_by(|a, b| a.member_id == b.member_id);
    match strategy {
        AssignmentStrategy::Range => range(partitions_per_topic, &sorted),
        AssignmentStrategy::RoundRobin => round_robin(partitions_per_topic, &sorted),
        AssignmentStrategy::CooperativeSticky => cooperative_sticky(partitions_per_topic, &sorted),
    }
}

/// The leader's whole job with a built-in assignor: see [`assign_members_with`].
pub fn assign_members(
    strategy: AssignmentStrategy,
    partitions_per_topic: &BTreeMap<String, i32>,
    members: &[JoinGroupMember],
) -> Result<Vec<(String, Bytes)>> {
    let cooperative = strategy == AssignmentStrategy::CooperativeSticky;
    assign_members_with(
        &BuiltinAssignor(strategy),
        cooperative,
        partitions_per_topic,
        members,
    )
}

/// The leader's whole job: decodes the members' JoinGroup metadata (with their user data),
/// runs `assignor`, and encodes each member's assignment (with its user data) for SyncGroup,
/// one per member (empty for a member the assignor left out). A member whose metadata does
/// not decode, or an assignment for a member id that is not in the group, fails the call; so
/// does, when the group rebalances `cooperative`ly, one that moves a partition between members
/// in one round (see [`validate_cooperative`]).
pub fn assign_members_with(
    assignor: &dyn PartitionAssignor,
    cooperative: bool,
    partitions_per_topic: &BTreeMap<String, i32>,
    members: &[JoinGroupMember],
) -> Result<Vec<(String, Bytes)>> {
    let subs = member_subscriptions(members)?;
    let mut out = assignor.assign(partitions_per_topic, &subs)?;
    if let Some(stranger) = out.keys().find(|id| !subs.contains_key(*id)) {
        return Err(Error::InvalidRequest(format!(
            "assignor {} assigned partitions to {stranger:?}, which is not a member of the group",
            assignor.name()
        )));
    }
    if cooperative {
        validate_cooperative(assignor.name(), &subs, &out)?;
    }
    Ok(subs
        .keys()
        .map(|id| {
            let a = out.remove(id).unwrap_or_default();
            (id.clone(), a.encode())
        })
        .collect())
}

/// Each member's decoded subscription, by member id (the first of a repeated id).
fn member_subscriptions(
    members: &[JoinGroupMember],
) -> Result<BTreeMap<String, MemberSubscription>> {
    let mut subs = BTreeMap::new();
    for m in members {
        let subscription = Subscription::decode(&m.metadata)?;
        subs.entry(m.member_id.clone())
            .or_insert_with(|| MemberSubscription {
                member_id: m.member_id.clone(),
                group_instance_id: m.group_instance_id.clone(),
                subscription,
            });
    }
    Ok(subs)
}

/// Kafka's check of a cooperative assignment (`validateCooperativeAssignment`): a partition
/// may change owner only through a round that leaves it unassigned (its owner revokes it),
/// so no partition a member owns may go to another member in the same round.
pub fn validate_cooperative(
    assignor: &str,
    subscriptions: &BTreeMap<String, MemberSubscription>,
    assignments: &BTreeMap<String, Assignment>,
) -> Result<()> {
    let mut owner: HashMap<&TopicPartition, &str> = HashMap::new();
    for (id, s) in subscriptions {
        for tp in &s.subscription.owned_partitions {
            owner.insert(tp, id);
        }
    }
    for (id, a) in assignments {
        for tp in &a.partitions {
            if let Some(&o) = owner.get(tp)
                && o != id
            {
                return Err(Error::InvalidRequest(format!(
                    "assignor {assignor} moved {tp} from {o:?} to {id:?} in one cooperative \
                     rebalance: it must leave it unassigned until its owner revoked it"
                )));
            }
        }
    }
    Ok(())
}

fn member_key(m: &MemberSubscription) -> (bool, &str, &str) {
    match &m.group_instance_id {
        Some(i) => (false, i.as_str(), m.member_id.as_str()),
        None => (true, m.member_id.as_str(), ""),
    }
}

fn empty_result(members: &[&MemberSubscription]) -> BTreeMap<String, Vec<TopicPartition>> {
    members
        .iter()
        .map(|m| (m.member_id.clone(), Vec::new()))
        .collect()
}

fn subscribes(m: &MemberSubscription, topic: &str) -> bool {
    m.subscription.topics.iter().any(|t| t == topic)
}

/// Partitions of subscribed topics that exist, sorted by topic then partition.
fn subscribed_partitions(
    partitions_per_topic: &BTreeMap<String, i32>,
    members: &[&MemberSubscription],
) -> Vec<TopicPartition> {
    partitions_per_topic
        .iter()
        .filter(|(t, _)| members.iter().any(|m| subscribes(m, t)))
        .flat_map(|(t, &n)| {
            let t: Arc<str> = t.as_str().into();
            (0..n.max(0)).map(move |p| TopicPartition::new(t.clone(), p))
        })
        .collect()
}

fn range(
    partitions_per_topic: &BTreeMap<String, i32>,
    members: &[&MemberSubscription],
) -> BTreeMap<String, Vec<TopicPartition>> {
    let mut out = empty_result(members);
    for (topic, &n) in partitions_per_topic {
        let consumers: Vec<&&MemberSubscription> =
            members.iter().filter(|m| subscribes(m, topic)).collect();
        if consumers.is_empty() || n <= 0 {
            continue;
        }
        let c = consumers.len() as i32;
        let (per, extra) = (n / c, n % c);
        let t: Arc<str> = topic.as_str().into();
        for (i, m) in consumers.iter().enumerate() {
            let i = i as i32;
            let start = per * i + i.min(extra);
            let len = per + i32::from(i < extra);
            if let Some(v) = out.get_mut(&m.member_id) {
                v.extend((start..start + len).map(|p| TopicPartition::new(t.clone(), p)));
            }
        }
    }
    out
}

fn round_robin(
    partitions_per_topic: &BTreeMap<String, i32>,
    members: &[&MemberSubscription],
) -> BTreeMap<String, Vec<TopicPartition>> {
    let mut out = empty_result(members);
    if members.is_empty() {
        return out;
    }
    let mut next = 0usize;
    for tp in subscribed_partitions(partitions_per_topic, members) {
        for k in 0..members.len() {
            let m = members[(next + k) % members.len()];
            if subscribes(m, &tp.topic) {
                if let Some(v) = out.get_mut(&m.member_id) {
                    v.push(tp);
                }
                next = (next + k + 1) % members.len();
                break;
            }
        }
    }
    out
}

/// Balanced, sticky, and cooperative: see the module docs.
fn cooperative_sticky(
    partitions_per_topic: &BTreeMap<String, i32>,
    members: &[&MemberSubscription],
) -> BTreeMap<String, Vec<TopicPartition>> {
    let all = subscribed_partitions(partitions_per_topic, members);
    let exists: BTreeSet<&TopicPartition> = all.iter().collect();
    // Current owners: a partition claimed twice goes to the claim of the highest generation
    // (the first member on a tie); claims of partitions that no longer exist or are no longer
    // subscribed to are dropped.
    let mut owner: HashMap<TopicPartition, (usize, i32)> = HashMap::new();
    for (i, m) in members.iter().enumerate() {
        let generation = m.subscription.generation_id;
        for tp in &m.subscription.owned_partitions {
            if !exists.contains(tp) || !subscribes(m, &tp.topic) {
                continue;
            }
            match owner.get(tp) {
                Some(&(_, g)) if g >= generation => {}
                _ => {
                    owner.insert(tp.clone(), (i, generation));
                }
            }
        }
    }
    let mut assigned: Vec<BTreeSet<TopicPartition>> = vec![BTreeSet::new(); members.len()];
    for (tp, &(i, _)) in &owner {
        assigned[i].insert(tp.clone());
    }
    // Unowned partitions go to the eligible member with the fewest, on a tie to the one that
    // owned fewer before (a member that just revoked partitions for others does not take
    // them back).
    let owned_before: Vec<usize> = assigned.iter().map(BTreeSet::len).collect();
    for tp in all.iter().filter(|tp| !owner.contains_key(*tp)) {
        let best = (0..members.len())
            .filter(|&i| subscribes(members[i], &tp.topic))
            .min_by_key(|&i| (assigned[i].len(), owned_before[i], i));
        if let Some(i) = best {
            assigned[i].insert(tp.clone());
        }
    }
    // Balance: move one partition at a time from a member with the most to an eligible member
    // with at least two fewer. Each move lowers the sum of squared counts, so this ends.
    let max_moves = all.len().saturating_mul(all.len()) + 1;
    for _ in 0..max_moves {
        let Some((from, to, tp)) = find_move(members, &assigned, &owner) else {
            break;
        };
        assigned[from].remove(&tp);
        assigned[to].insert(tp);
    }
    // Cooperative: a partition changing hands is only revoked in this round.
    let mut out = empty_result(members);
    for (i, m) in members.iter().enumerate() {
        let keep: Vec<TopicPartition> = assigned[i]
            .iter()
            .filter(|tp| owner.get(*tp).is_none_or(|&(o, _)| o == i))
            .cloned()
            .collect();
        out.insert(m.member_id.clone(), keep);
    }
    out
}

fn find_move(
    members: &[&MemberSubscription],
    assigned: &[BTreeSet<TopicPartition>],
    owner: &HashMap<TopicPartition, (usize, i32)>,
) -> Option<(usize, usize, TopicPartition)> {
    let mut by_count: Vec<usize> = (0..members.len()).collect();
    by_count.sort_by_key(|&i| (std::cmp::Reverse(assigned[i].len()), i));
    for &from in &by_count {
        let mut takers: Vec<usize> = (0..members.len())
            .filter(|&to| assigned[to].len() + 1 < assigned[from].len())
            .collect();
        takers.sort_by_key(|&to| (assigned[to].len(), to));
        for to in takers {
            let movable = |tp: &&TopicPartition| subscribes(members[to], &tp.topic);
            // Prefer a partition `from` did not own before (moving it revokes nothing), then a
            // partition `to` owned before, then the last one.
            let not_owned = assigned[from]
                .iter()
                .filter(movable)
                .find(|tp| owner.get(*tp).is_none_or(|&(o, _)| o != from));
            let pick = not_owned.or_else(|| assigned[from].iter().rev().find(movable));
            if let Some(tp) = pick {
                return Some((from, to, tp.clone()));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn tps(topic: &str, ps: &[i32]) -> Vec<TopicPartition> {
        ps.iter().map(|&p| TopicPartition::new(topic, p)).collect()
    }

    fn member(id: &str, topics: &[&str]) -> MemberSubscription {
        MemberSubscription::new(id, Subscription::new(topics.iter().copied()))
    }

    #[test]
    fn range_gives_consecutive_ranges_per_topic() {
        let topics = BTreeMap::from([("t0".to_owned(), 3), ("t1".to_owned(), 3)]);
        let ms = [member("c1", &["t0", "t1"]), member("c0", &["t0", "t1"])];
        let out = assign(AssignmentStrategy::Range, &topics, &ms);
        let mut c0 = tps("t0", &[0, 1]);
        c0.extend(tps("t1", &[0, 1]));
        let mut c1 = tps("t0", &[2]);
        c1.extend(tps("t1", &[2]));
        assert_eq!(out["c0"], c0);
        assert_eq!(out["c1"], c1);
    }

    #[test]
    fn round_robin_deals_in_turn_skipping_unsubscribed_members() {
        let topics = BTreeMap::from([
            ("t0".to_owned(), 1),
            ("t1".to_owned(), 2),
            ("t2".to_owned(), 3),
        ]);
        // Kafka's RoundRobinAssignor javadoc example.
        let ms = [
            member("c0", &["t0"]),
            member("c1", &["t0", "t1"]),
            member("c2", &["t0", "t1", "t2"]),
        ];
        let out = assign(AssignmentStrategy::RoundRobin, &topics, &ms);
        assert_eq!(out["c0"], tps("t0", &[0]));
        assert_eq!(out["c1"], tps("t1", &[0]));
        let mut c2 = tps("t1", &[1]);
        c2.extend(tps("t2", &[0, 1, 2]));
        assert_eq!(out["c2"], c2);
    }

    #[test]
    fn static_members_sort_by_instance_id() {
        let topics = BTreeMap::from([("t".to_owned(), 2)]);
        let mut a = member("zzz", &["t"]);
        a.group_instance_id = Some("a".into());
        let b = member("aaa", &["t"]);
        let out = assign(AssignmentStrategy::Range, &topics, &[b, a]);
        assert_eq!(out["zzz"], tps("t", &[0]));
        assert_eq!(out["aaa"], tps("t", &[1]));
    }

    #[test]
    fn cooperative_sticky_revokes_first_then_assigns() {
        let topics = BTreeMap::from([("t".to_owned(), 4)]);
        let owning = |id: &str, ps: &[i32]| {
            let mut m = member(id, &["t"]);
            m.subscription.owned_partitions = tps("t", ps);
            m
        };
        // a owns everything; b joins.
        let round1 = assign(
            AssignmentStrategy::CooperativeSticky,
            &topics,
            &[owning("a", &[0, 1, 2, 3]), owning("b", &[])],
        );
        assert_eq!(round1["a"].len(), 2, "{round1:?}");
        assert!(
            round1["b"].is_empty(),
            "moving partitions are revoked first"
        );
        // a revoked two; the follow-up rebalance gives them to b.
        let round2 = assign(
            AssignmentStrategy::CooperativeSticky,
            &topics,
            &[owning("a", &partitions(&round1["a"])), owning("b", &[])],
        );
        assert_eq!(round2["a"], round1["a"]);
        assert_eq!(round2["b"].len(), 2);
    }

    fn by_id(ms: &[MemberSubscription]) -> BTreeMap<String, MemberSubscription> {
        ms.iter()
            .map(|m| (m.member_id.clone(), m.clone()))
            .collect()
    }

    #[test]
    fn built_ins_through_the_trait_match_assign_and_keep_their_names() {
        let topics = BTreeMap::from([("t0".to_owned(), 5), ("t1".to_owned(), 3)]);
        let mut c = member("c", &["t0"]);
        c.subscription.owned_partitions = tps("t0", &[4]);
        let ms = [member("a", &["t0", "t1"]), member("b", &["t0", "t1"]), c];
        for (strategy, name, cooperative) in [
            (AssignmentStrategy::Range, "range", false),
            (AssignmentStrategy::RoundRobin, "roundrobin", false),
            (
                AssignmentStrategy::CooperativeSticky,
                "cooperative-sticky",
                true,
            ),
        ] {
            let assignor = BuiltinAssignor::shared(strategy);
            assert_eq!(assignor.name(), name);
            assert_eq!(strategy_for_protocol(name), Some(strategy));
            let protocols = assignor.supported_protocols();
            assert!(protocols.contains(&RebalanceProtocol::Eager), "{name}");
            assert_eq!(
                protocols.contains(&RebalanceProtocol::Cooperative),
                cooperative,
                "{name}"
            );
            assert_eq!(assignor.subscription_user_data(&["t0".into()]), None);
            let out = assignor.assign(&topics, &by_id(&ms)).unwrap();
            let direct = assign(strategy, &topics, &ms);
            let partitions: BTreeMap<String, Vec<TopicPartition>> = out
                .iter()
                .map(|(id, a)| (id.clone(), a.partitions.clone()))
                .collect();
            assert_eq!(partitions, direct, "{name}");
            assert!(out.values().all(|a| a.user_data.is_none()), "{name}");
        }
    }

    /// An assignor returning a fixed answer.
    struct Fixed(BTreeMap<String, Assignment>);

    impl PartitionAssignor for Fixed {
        fn name(&self) -> &str {
            "fixed"
        }
        fn assign(
            &self,
            _: &ClusterPartitions,
            _: &BTreeMap<String, MemberSubscription>,
        ) -> Result<BTreeMap<String, Assignment>> {
            Ok(self.0.clone())
        }
    }

    fn join_member(id: &str, owned: &[i32]) -> JoinGroupMember {
        let mut s = Subscription::new(["t"]);
        s.owned_partitions = tps("t", owned);
        s.user_data = Some(Bytes::from(id.to_owned()));
        JoinGroupMember {
            member_id: id.into(),
            group_instance_id: None,
            metadata: s.encode(),
        }
    }

    #[test]
    fn assign_members_with_encodes_user_data_fills_in_the_left_out_and_refuses_strangers() {
        let topics = BTreeMap::from([("t".to_owned(), 2)]);
        let members = [join_member("a", &[]), join_member("b", &[])];
        let given = Assignment {
            partitions: tps("t", &[0, 1]),
            user_data: Some(Bytes::from_static(b"for a")),
        };
        let fixed = Fixed(BTreeMap::from([("a".to_owned(), given.clone())]));
        let out = assign_members_with(&fixed, false, &topics, &members).unwrap();
        assert_eq!(out.len(), 2);
        assert_eq!(Assignment::decode(&out[0].1).unwrap(), given);
        assert_eq!(out[1].0, "b");
        assert_eq!(
            Assignment::decode(&out[1].1).unwrap(),
            Assignment::default()
        );

        let stranger = Fixed(BTreeMap::from([("z".to_owned(), given)]));
        let err = assign_members_with(&stranger, false, &topics, &members).unwrap_err();
        assert!(err.to_string().contains("\"z\""), "{err}");
    }

    #[test]
    fn a_cooperative_round_may_not_move_an_owned_partition() {
        let topics = BTreeMap::from([("t".to_owned(), 2)]);
        let members = [join_member("a", &[0, 1]), join_member("b", &[])];
        let moved = Fixed(BTreeMap::from([
            ("a".to_owned(), Assignment::new(tps("t", &[0]))),
            ("b".to_owned(), Assignment::new(tps("t", &[1]))),
        ]));
        // Eager: every member revoked everything before joining; fine.
        assign_members_with(&moved, false, &topics, &members).unwrap();
        let err = assign_members_with(&moved, true, &topics, &members).unwrap_err();
        assert!(err.to_string().contains("moved t-1"), "{err}");
        // Leaving it out for a round is how it moves.
        let revoking = Fixed(BTreeMap::from([(
            "a".to_owned(),
            Assignment::new(tps("t", &[0])),
        )]));
        assign_members_with(&revoking, true, &topics, &members).unwrap();
    }

    fn partitions(tps: &[TopicPartition]) -> Vec<i32> {
        tps.iter().map(|tp| tp.partition).collect()
    }

    /// Runs cooperative-sticky rounds until nothing is revoked (at most 3), as clients would.
    fn settle(
        topics: &BTreeMap<String, i32>,
        members: &[String],
        mut owned: BTreeMap<String, Vec<TopicPartition>>,
    ) -> (BTreeMap<String, Vec<TopicPartition>>, usize) {
        for round in 1..=3 {
            let ms: Vec<_> = members
                .iter()
                .map(|id| {
                    let mut m = member(id, &["t0", "t1"]);
                    m.subscription.owned_partitions = owned.get(id).cloned().unwrap_or_default();
                    m
                })
                .collect();
            let out = assign(AssignmentStrategy::CooperativeSticky, topics, &ms);
            let revoked = members.iter().any(|id| {
                owned
                    .get(id)
                    .is_some_and(|o| o.iter().any(|tp| !out[id].contains(tp)))
            });
            owned = out;
            if !revoked {
                return (owned, round);
            }
        }
        (owned, 4)
    }

    proptest! {
        #[test]
        fn cooperative_sticky_is_balanced_complete_and_moves_the_minimum(
            p0 in 0i32..20, p1 in 0i32..20, n in 1usize..6,
        ) {
            let topics = BTreeMap::from([("t0".to_owned(), p0), ("t1".to_owned(), p1)]);
            let total = (p0 + p1) as usize;
            let ids: Vec<String> = (0..n).map(|i| format!("m{i}")).collect();
            let (before, _) = settle(&topics, &ids, BTreeMap::new());
            check_complete(&before, total)?;
            // A member joins.
            let mut more = ids.clone();
            more.push("new".into());
            let (after, rounds) = settle(&topics, &more, before.clone());
            prop_assert!(rounds <= 2, "settles in the follow-up rebalance");
            check_complete(&after, total)?;
            let old_owner: HashMap<&TopicPartition, &String> =
                before.iter().flat_map(|(m, ps)| ps.iter().map(move |tp| (tp, m))).collect();
            let mut moved = 0;
            for (m, ps) in &after {
                for tp in ps {
                    if old_owner.get(tp) != Some(&m) {
                        moved += 1;
                        prop_assert_eq!(m.as_str(), "new", "{} moved between old members", tp);
                    }
                }
            }
            let floor = total / (n + 1);
            let ceil = total.div_ceil(n + 1);
            let excess: usize = before.values().map(|ps| ps.len().saturating_sub(ceil)).sum();
            prop_assert_eq!(moved, floor.max(excess));
        }
    }

    fn check_complete(
        a: &BTreeMap<String, Vec<TopicPartition>>,
        total: usize,
    ) -> std::result::Result<(), TestCaseError> {
        let mut seen = BTreeSet::new();
        for ps in a.values() {
            for tp in ps {
                prop_assert!(seen.insert(tp.clone()), "{} assigned twice", tp);
            }
        }
        prop_assert_eq!(seen.len(), total, "every partition assigned");
        let counts: Vec<usize> = a.values().map(Vec::len).collect();
        let (min, max) = (counts.iter().min(), counts.iter().max());
        prop_assert!(
            max.zip(min).is_none_or(|(x, y)| x - y <= 1),
            "balanced: {:?}",
            counts
        );
        Ok(())
    }
}
