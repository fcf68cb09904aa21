//! Pluggable partition assignors, as Kafka's `ConsumerPartitionAssignor`: the group leader's
//! code that spreads a group's partitions over its members, with user data each member sends
//! in its JoinGroup subscription and each gets back in its SyncGroup assignment (what Kafka
//! Streams' assignor uses to place tasks and standbys).
//!
//! ```text
//! each member, each join:  subscription_user_data(topics) -> JoinGroup protocol metadata
//! the leader only:         assign(cluster, every member's subscription) -> assignments
//! each member, after sync: on_assignment(its assignment with its user data, generation)
//! ```
//!
//! A consumer announces its assignors in order of preference (JoinGroup's protocols, by
//! [`PartitionAssignor::name`]); the group coordinator picks the one every member supports,
//! and the leader runs it. The built-in `range`, `roundrobin` and `cooperative-sticky` are
//! chosen by name through `partition.assignment.strategy`; custom ones are given with
//! [`ConsumerConfig::with_assignors`](crate::config::ConsumerConfig::with_assignors).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

pub use sluice_protocol::consumer_protocol::{Assignment, Subscription};

use crate::Result;

/// Partition counts per topic: the topics the group's members subscribe to that exist, as the
/// leader sees them when it assigns.
pub type ClusterPartitions = BTreeMap<String, i32>;

/// A rebalance protocol an assignor supports (Kafka's `RebalanceProtocol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RebalanceProtocol {
    /// Every member gives up all its partitions before rejoining.
    Eager,
    /// Members keep their partitions across a rebalance and give up only those the
    /// assignment moves; a moved partition is assigned to its new owner in a follow-up
    /// rebalance (the assignor must leave it out of the round its old owner revokes it in).
    Cooperative,
}

/// One member's subscription, as the group leader sees it (Kafka's
/// `ConsumerPartitionAssignor.Subscription`): its topics, its assignor's user data, the
/// partitions it owns now with their generation, and its rack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberSubscription {
    /// Member id.
    pub member_id: String,
    /// `group.instance.id` of a static member.
    pub group_instance_id: Option<String>,
    /// What it subscribes to and owns, with its user data for the chosen assignor.
    pub subscription: Subscription,
}

impl MemberSubscription {
    /// A dynamic member's subscription.
    pub fn new(member_id: impl Into<String>, subscription: Subscription) -> Self {
        Self {
            member_id: member_id.into(),
            group_instance_id: None,
            subscription,
        }
    }
}

/// A consumer group's partition assignor (Kafka's `ConsumerPartitionAssignor`). `Send +
/// Sync`: a consumer holds it as `Arc<dyn PartitionAssignor>` and calls it from its `poll`.
///
/// # Where the implementations differ
///
/// - The embedded client (`sluice-log`) runs any assignor: it sends each assignor's
///   [`subscription_user_data`](Self::subscription_user_data) in its JoinGroup protocols,
///   runs [`assign`](Self::assign) when it is the leader, and calls
///   [`on_assignment`](Self::on_assignment) after every SyncGroup.
/// - The Kafka-protocol client's librdkafka consumer cannot run a Rust assignor (librdkafka
///   has no custom assignor interface through `rdkafka`): a consumer configured with
///   [`ConsumerConfig::with_assignors`](crate::config::ConsumerConfig::with_assignors) is
///   refused when it is made, with [`Error::Unsupported`](crate::Error::Unsupported); it runs
///   the built-ins of `partition.assignment.strategy` (librdkafka's own).
/// - Sluice's native Kafka consumer (`sluice.consumer.engine=native`) has no group
///   subscriptions at all: `subscribe` is refused, so no assignor ever runs there.
pub trait PartitionAssignor: Send + Sync {
    /// The protocol name announced in JoinGroup (`range`, `cooperative-sticky`, ...); every
    /// member of a group must give the same name to the same algorithm.
    fn name(&self) -> &str;

    /// The rebalance protocols it supports. A consumer rebalances cooperatively only when
    /// every one of its assignors supports [`RebalanceProtocol::Cooperative`] (Kafka's rule).
    /// Default: eager only.
    fn supported_protocols(&self) -> Vec<RebalanceProtocol> {
        vec![RebalanceProtocol::Eager]
    }

    /// The user data this member sends in its subscription for this assignor, computed at
    /// each join from the topics it subscribes to now. Default: none.
    fn subscription_user_data(&self, topics: &[String]) -> Option<bytes::Bytes> {
        let _ = topics;
        None
    }

    /// The group leader's assignment: `subscriptions` maps each member id to its
    /// subscription (with its user data, owned partitions, generation and rack); `cluster`
    /// has the partition count of each subscribed topic that exists. Returns each member's
    /// assignment, with the user data that member will read in
    /// [`on_assignment`](Self::on_assignment). A member left out gets an empty assignment;
    /// a member id not in `subscriptions`, or an error returned here, fails the leader's
    /// `poll` with that error.
    fn assign(
        &self,
        cluster: &ClusterPartitions,
        subscriptions: &BTreeMap<String, MemberSubscription>,
    ) -> Result<BTreeMap<String, Assignment>>;

    /// Called on every member after each completed rebalance with the assignment the leader
    /// gave it (and its user data) and the new generation, before `poll` reports
    /// [`RebalanceEvent::Assigned`](crate::RebalanceEvent::Assigned). Default: nothing.
    fn on_assignment(&self, assignment: &Assignment, generation: i32) {
        let _ = (assignment, generation);
    }
}

/// Custom assignors held by a [`ConsumerConfig`](crate::config::ConsumerConfig), in order of
/// preference. Two lists are equal when they hold the same assignor objects; `Debug` prints
/// their names.
#[derive(Clone, Default)]
pub struct Assignors(Vec<Arc<dyn PartitionAssignor>>);

impl Assignors {
    /// The assignors, in order of preference.
    pub fn as_slice(&self) -> &[Arc<dyn PartitionAssignor>] {
        &self.0
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Their protocol names, in order.
    pub fn names(&self) -> Vec<&str> {
        self.0.iter().map(|a| a.name()).collect()
    }
}

impl From<Vec<Arc<dyn PartitionAssignor>>> for Assignors {
    fn from(v: Vec<Arc<dyn PartitionAssignor>>) -> Self {
        Self(v)
    }
}

impl fmt::Debug for Assignors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

impl PartialEq for Assignors {
    fn eq(&self, other: &Self) -> bool {
        self.0.len() == other.0.len()
            && self
                .0
                .iter()
                .zip(&other.0)
                .all(|(a, b)| std::ptr::addr_eq(Arc::as_ptr(a), Arc::as_ptr(b)))
    }
}

impl Eq for Assignors {}

/// Whether a consumer with these assignors rebalances cooperatively: every one supports it,
/// and there is at least one.
pub fn all_cooperative(assignors: &[Arc<dyn PartitionAssignor>]) -> bool {
    !assignors.is_empty()
        && assignors.iter().all(|a| {
            a.supported_protocols()
                .contains(&RebalanceProtocol::Cooperative)
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConsumerConfig;

    struct Named(&'static str, Vec<RebalanceProtocol>);

    impl PartitionAssignor for Named {
        fn name(&self) -> &str {
            self.0
        }
        fn supported_protocols(&self) -> Vec<RebalanceProtocol> {
            self.1.clone()
        }
        fn assign(
            &self,
            _: &ClusterPartitions,
            subscriptions: &BTreeMap<String, MemberSubscription>,
        ) -> Result<BTreeMap<String, Assignment>> {
            Ok(subscriptions
                .keys()
                .map(|id| (id.clone(), Assignment::default()))
                .collect())
        }
    }

    fn named(name: &'static str, protocols: &[RebalanceProtocol]) -> Arc<dyn PartitionAssignor> {
        Arc::new(Named(name, protocols.to_vec()))
    }

    #[test]
    fn cooperative_only_when_every_assignor_supports_it() {
        use RebalanceProtocol::{Cooperative, Eager};
        let coop = named("c", &[Cooperative, Eager]);
        let eager = named("e", &[Eager]);
        assert!(all_cooperative(&[Arc::clone(&coop)]));
        assert!(!all_cooperative(&[coop, eager]));
        assert!(!all_cooperative(&[]));
    }

    #[test]
    fn with_assignors_keeps_the_order_and_refuses_empty_or_repeated_names() {
        let (a, b) = (named("a", &[]), named("b", &[]));
        let config = ConsumerConfig::default()
            .with_assignors(vec![Arc::clone(&b), Arc::clone(&a)])
            .unwrap();
        let names: Vec<&str> = config.assignors().iter().map(|a| a.name()).collect();
        assert_eq!(names, ["b", "a"]);
        assert!(format!("{config:?}").contains(r#"assignors: ["b", "a"]"#));
        // Equal when they hold the same assignors.
        let same = ConsumerConfig::default()
            .with_assignors(vec![Arc::clone(&b), Arc::clone(&a)])
            .unwrap();
        assert_eq!(config, same);
        let other = ConsumerConfig::default()
            .with_assignors(vec![named("b", &[]), Arc::clone(&a)])
            .unwrap();
        assert_ne!(config, other);
        assert!(ConsumerConfig::default().assignors().is_empty());
        for bad in [vec![Arc::clone(&a), named("a", &[])], vec![named("", &[])]] {
            let err = ConsumerConfig::default().with_assignors(bad).unwrap_err();
            assert!(
                matches!(&err, crate::Error::InvalidConfig { key, .. } if key == "partition.assignment.strategy"),
                "{err}"
            );
        }
    }
}
