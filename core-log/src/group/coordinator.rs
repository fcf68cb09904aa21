//! The group coordinator of Kafka's classic group protocol: JoinGroup, SyncGroup, Heartbeat,
//! LeaveGroup, OffsetCommit checks, and the admin calls (list, describe, delete).
//!
//! ```text
//!            join (first member)          all joined / rebalance timeout
//!   Empty ------------------------> PreparingRebalance ---------------------> CompletingRebalance
//!     ^                                 ^      |  (no member left: Empty)            |
//!     |                                 |      v                                     | leader's
//!     |      member joins, leaves, or   +------+---------------------------------+   | SyncGroup
//!     +---- expires (Stable and         |                                        |   v
//!           CompletingRebalance)        +--------------------------------------- Stable
//!   Dead: deleted.
//! ```
//!
//! Calls change the state at once and return either a result or a [`Pending`] future that
//! resolves when the rebalance gets there (a oneshot channel per waiting member). Timeouts
//! (session, rebalance, the initial rebalance delay, pending KIP-394 members) and offset
//! expiry fire in [`GroupCoordinator::tick`], driven by the log's clock; the owner calls it
//! periodically, or runs [`GroupCoordinator::spawn_ticker`].

pub use sluice_client::{GroupListing, GroupState};
use std::collections::HashMap;
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::oneshot;

use super::offsets::{CommittedOffset, OffsetAndMetadata, OffsetStore};
use crate::{Error, Result, SharedClock, TopicPartition};

/// Configs of the coordinator, under Kafka's broker config names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupCoordinatorConfig {
    /// `group.min.session.timeout.ms` (default 6000).
    pub min_session_timeout_ms: i32,
    /// `group.max.session.timeout.ms` (default 1800000).
    pub max_session_timeout_ms: i32,
    /// `group.initial.rebalance.delay.ms` (default 3000): how long the first rebalance of an
    /// empty group waits for more members.
    pub initial_rebalance_delay_ms: i32,
    /// `offsets.retention.check.interval.ms` (default 600000): how often `tick` expires offsets.
    pub offsets_retention_check_interval_ms: i64,
}

impl Default for GroupCoordinatorConfig {
    fn default() -> Self {
        Self {
            min_session_timeout_ms: 6_000,
            max_session_timeout_ms: 1_800_000,
            initial_rebalance_delay_ms: 3_000,
            offsets_retention_check_interval_ms: 600_000,
        }
    }
}

/// A JoinGroup request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinGroupRequest {
    /// The group.
    pub group_id: String,
    /// The member's id; empty for a member joining for the first time.
    pub member_id: String,
    /// `group.instance.id` of a static member.
    pub group_instance_id: Option<String>,
    /// The client's `client.id`.
    pub client_id: String,
    /// The client's host, as the broker saw it.
    pub client_host: String,
    /// `consumer` for consumers, `connect` for Connect workers.
    pub protocol_type: String,
    /// Supported protocols (assignors) in order of preference, with their metadata (for
    /// consumers, an encoded `ConsumerProtocolSubscription`).
    pub protocols: Vec<(String, Bytes)>,
    /// `session.timeout.ms`.
    pub session_timeout_ms: i32,
    /// `max.poll.interval.ms` for consumers: how long a rebalance waits for the member.
    pub rebalance_timeout_ms: i32,
    /// KIP-394 (JoinGroup v4 and later): a first join without a member id gets one back with
    /// MEMBER_ID_REQUIRED and must join again with it.
    pub require_known_member_id: bool,
}

impl JoinGroupRequest {
    /// A first join of `group_id` with Kafka's consumer defaults (session 45 s, rebalance 5 min).
    pub fn new(
        group_id: impl Into<String>,
        protocol_type: impl Into<String>,
        protocols: Vec<(String, Bytes)>,
    ) -> Self {
        Self {
            group_id: group_id.into(),
            member_id: String::new(),
            group_instance_id: None,
            client_id: "sluice".into(),
            client_host: "/127.0.0.1".into(),
            protocol_type: protocol_type.into(),
            protocols,
            session_timeout_ms: 45_000,
            rebalance_timeout_ms: 300_000,
            require_known_member_id: true,
        }
    }
}

/// One member as the leader sees it in its JoinGroup response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinGroupMember {
    /// Member id.
    pub member_id: String,
    /// `group.instance.id` of a static member.
    pub group_instance_id: Option<String>,
    /// The member's metadata for the chosen protocol.
    pub metadata: Bytes,
}

/// A JoinGroup response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinResult {
    /// The new generation.
    pub generation_id: i32,
    /// The group's protocol type.
    pub protocol_type: Option<String>,
    /// The chosen protocol (assignor).
    pub protocol_name: Option<String>,
    /// The leader's member id.
    pub leader: String,
    /// This member's id.
    pub member_id: String,
    /// Every member with its metadata, for the leader; empty for the others.
    pub members: Vec<JoinGroupMember>,
    /// The leader must not compute a new assignment (a static leader rejoined without a
    /// rebalance).
    pub skip_assignment: bool,
    /// With `skip_assignment`: the member id the static leader had before it rejoined. Kafka
    /// answers JoinGroup before v9 (which has no `skip_assignment`) with this id as the leader,
    /// so the rejoined leader acts as a follower instead of computing an assignment the Stable
    /// group would ignore.
    pub replaced_member_id: Option<String>,
}

/// A SyncGroup request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SyncGroupRequest {
    /// The group.
    pub group_id: String,
    /// The generation from the JoinGroup response.
    pub generation_id: i32,
    /// The member's id.
    pub member_id: String,
    /// `group.instance.id` of a static member.
    pub group_instance_id: Option<String>,
    /// If given, must match the group's protocol type.
    pub protocol_type: Option<String>,
    /// If given, must match the chosen protocol.
    pub protocol_name: Option<String>,
    /// The leader's assignment: member id -> assignment bytes. Empty for the others.
    pub assignments: Vec<(String, Bytes)>,
}

/// A SyncGroup response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncResult {
    /// The group's protocol type.
    pub protocol_type: Option<String>,
    /// The chosen protocol.
    pub protocol_name: Option<String>,
    /// This member's assignment (for consumers, an encoded `ConsumerProtocolAssignment`).
    pub assignment: Bytes,
}

/// A member named in LeaveGroup: by member id, or a static member by `group.instance.id`
/// (with an empty member id).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MemberIdentity {
    /// Member id; may be empty for a static member.
    pub member_id: String,
    /// `group.instance.id` of a static member.
    pub group_instance_id: Option<String>,
}

impl MemberIdentity {
    /// A dynamic member.
    pub fn new(member_id: impl Into<String>) -> Self {
        Self {
            member_id: member_id.into(),
            group_instance_id: None,
        }
    }
}

/// An OffsetCommit request (the offsets go to the [`OffsetStore`] once the checks pass).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OffsetCommitRequest {
    /// The group.
    pub group_id: String,
    /// The member's generation; -1 for a commit from outside the group (admin, standalone
    /// consumers), accepted only while the group has no members.
    pub generation_id: i32,
    /// The member's id; empty for a commit from outside the group.
    pub member_id: String,
    /// `group.instance.id` of a static member.
    pub group_instance_id: Option<String>,
    /// What to commit.
    pub offsets: Vec<(TopicPartition, OffsetAndMetadata)>,
}

/// One member in DescribeGroups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberDescription {
    /// Member id.
    pub member_id: String,
    /// `group.instance.id` of a static member.
    pub group_instance_id: Option<String>,
    /// The client's `client.id`.
    pub client_id: String,
    /// The client's host.
    pub client_host: String,
    /// Metadata for the chosen protocol (empty while none is chosen).
    pub metadata: Bytes,
    /// The member's current assignment.
    pub assignment: Bytes,
}

/// DescribeGroups of one group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    /// The group.
    pub group_id: String,
    /// Its state.
    pub state: GroupState,
    /// Its protocol type (empty if none).
    pub protocol_type: String,
    /// The chosen protocol (empty unless CompletingRebalance or Stable).
    pub protocol: String,
    /// Its generation.
    pub generation_id: i32,
    /// Its leader, if any.
    pub leader: Option<String>,
    /// Members, ordered by when they joined.
    pub members: Vec<MemberDescription>,
}

/// A response still to come: resolves when the group's rebalance reaches this member.
#[derive(Debug)]
#[must_use = "the response comes through this future"]
pub struct Pending<T> {
    group_id: String,
    state: PendingState<T>,
}

#[derive(Debug)]
enum PendingState<T> {
    Ready(Option<Result<T>>),
    Waiting(oneshot::Receiver<Result<T>>),
}

impl<T> Pending<T> {
    fn ready(group_id: &str, result: Result<T>) -> Self {
        Self {
            group_id: group_id.to_owned(),
            state: PendingState::Ready(Some(result)),
        }
    }

    fn waiting(group_id: &str) -> (oneshot::Sender<Result<T>>, Self) {
        let (tx, rx) = oneshot::channel();
        let p = Self {
            group_id: group_id.to_owned(),
            state: PendingState::Waiting(rx),
        };
        (tx, p)
    }
}

// Only the receiver is polled, never a `T` in place: moving a `Pending` is always fine.
impl<T> Unpin for Pending<T> {}

impl<T> Future for Pending<T> {
    type Output = Result<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        match &mut this.state {
            PendingState::Ready(r) => Poll::Ready(
                r.take()
                    .unwrap_or_else(|| Err(Error::Closed("group response"))),
            ),
            PendingState::Waiting(rx) => match Pin::new(rx).poll(cx) {
                Poll::Ready(Ok(r)) => Poll::Ready(r),
                Poll::Ready(Err(_)) => {
                    Poll::Ready(Err(Error::CoordinatorNotAvailable(this.group_id.clone())))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

type JoinTx = oneshot::Sender<Result<JoinResult>>;
type SyncTx = oneshot::Sender<Result<SyncResult>>;

#[derive(Debug)]
struct Member {
    id: String,
    instance_id: Option<String>,
    client_id: String,
    client_host: String,
    protocol_type: String,
    protocols: Vec<(String, Bytes)>,
    session_timeout_ms: i64,
    rebalance_timeout_ms: i64,
    assignment: Bytes,
    last_heartbeat_ms: i64,
    join_waiter: Option<JoinTx>,
    sync_waiter: Option<SyncTx>,
    /// Join order: the oldest member becomes leader when one must be chosen.
    seq: u64,
}

impl Member {
    fn metadata(&self, protocol: Option<&str>) -> Bytes {
        protocol
            .and_then(|p| self.protocols.iter().find(|(n, _)| n == p))
            .map(|(_, m)| m.clone())
            .unwrap_or_default()
    }

    fn supports(&self, protocol: &str) -> bool {
        self.protocols.iter().any(|(n, _)| n == protocol)
    }

    /// Waiting on a response whose receiver is still there (the client did not go away).
    fn awaiting_response(&self) -> bool {
        self.join_waiter.as_ref().is_some_and(|t| !t.is_closed())
            || self.sync_waiter.as_ref().is_some_and(|t| !t.is_closed())
    }

    fn fail_waiters(&mut self, err: impl Fn() -> Error) {
        if let Some(tx) = self.join_waiter.take() {
            let _ = tx.send(Err(err()));
        }
        if let Some(tx) = self.sync_waiter.take() {
            let _ = tx.send(Err(err()));
        }
    }
}

#[derive(Debug)]
struct Group {
    id: String,
    state: GroupState,
    state_since_ms: i64,
    generation: i32,
    protocol_type: Option<String>,
    protocol: Option<String>,
    leader: Option<String>,
    members: HashMap<String, Member>,
    /// `group.instance.id` -> member id.
    static_members: HashMap<String, String>,
    /// KIP-394: member ids handed out with MEMBER_ID_REQUIRED -> when they expire.
    pending_members: HashMap<String, i64>,
    rebalance_deadline_ms: i64,
    /// In the initial rebalance delay of an empty group: the join completes only at the
    /// deadline, so more members can come.
    initial_delay: bool,
    next_seq: u64,
}

impl Group {
    fn new(id: &str, now: i64) -> Self {
        Self {
            id: id.to_owned(),
            state: GroupState::Empty,
            state_since_ms: now,
            generation: 0,
            protocol_type: None,
            protocol: None,
            leader: None,
            members: HashMap::new(),
            static_members: HashMap::new(),
            pending_members: HashMap::new(),
            rebalance_deadline_ms: 0,
            initial_delay: false,
            next_seq: 0,
        }
    }

    fn transition(&mut self, state: GroupState, now: i64) {
        tracing::debug!(group = %self.id, from = self.state.as_str(), to = state.as_str(), "group state");
        self.state = state;
        self.state_since_ms = now;
    }

    fn unknown_member(&self, member_id: &str) -> Error {
        Error::UnknownMemberId {
            group_id: self.id.clone(),
            member_id: member_id.to_owned(),
        }
    }

    fn rebalancing(&self) -> Error {
        Error::RebalanceInProgress {
            group_id: self.id.clone(),
        }
    }

    /// Whether a member with these protocols may be in the group (`except` is the member's own
    /// id when it is already in).
    fn supports_protocols(
        &self,
        protocol_type: &str,
        protocols: &[(String, Bytes)],
        except: Option<&str>,
    ) -> std::result::Result<(), String> {
        if protocol_type.is_empty() || protocols.is_empty() {
            return Err("a member needs a protocol type and at least one protocol".into());
        }
        let others: Vec<&Member> = self
            .members
            .values()
            .filter(|m| Some(m.id.as_str()) != except)
            .collect();
        if others.is_empty() {
            return Ok(());
        }
        if self.protocol_type.as_deref() != Some(protocol_type) {
            return Err(format!(
                "protocol type \"{protocol_type}\" differs from the group's \"{}\"",
                self.protocol_type.as_deref().unwrap_or_default()
            ));
        }
        if protocols
            .iter()
            .any(|(p, _)| others.iter().all(|m| m.supports(p)))
        {
            Ok(())
        } else {
            Err("no protocol is supported by every member".into())
        }
    }

    /// Checks a member id against a static member's `group.instance.id`.
    fn check_fenced(&self, member_id: &str, instance_id: Option<&str>) -> Result<()> {
        if let Some(instance) = instance_id
            && let Some(current) = self.static_members.get(instance)
            && current != member_id
        {
            return Err(Error::FencedInstanceId {
                group_id: self.id.clone(),
                instance_id: instance.to_owned(),
                member_id: member_id.to_owned(),
            });
        }
        Ok(())
    }

    /// The member a request names, after the static fencing check.
    fn member(&self, member_id: &str, instance_id: Option<&str>) -> Result<&Member> {
        self.check_fenced(member_id, instance_id)?;
        self.members
            .get(member_id)
            .ok_or_else(|| self.unknown_member(member_id))
    }

    fn max_rebalance_timeout(&self) -> i64 {
        self.members
            .values()
            .map(|m| m.rebalance_timeout_ms)
            .max()
            .unwrap_or(0)
    }

    fn all_joined(&self) -> bool {
        self.pending_members.is_empty() && self.members.values().all(|m| m.join_waiter.is_some())
    }

    fn add_member(&mut self, mut member: Member) {
        if self.members.is_empty() {
            self.protocol_type = Some(member.protocol_type.clone());
        }
        member.seq = self.next_seq;
        self.next_seq += 1;
        if self.leader.is_none() {
            self.leader = Some(member.id.clone());
        }
        if let Some(instance) = &member.instance_id {
            self.static_members
                .insert(instance.clone(), member.id.clone());
        }
        self.members.insert(member.id.clone(), member);
    }

    /// Removes a member, failing its waiters with `err`; returns whether it was there.
    fn remove_member(&mut self, member_id: &str, err: impl Fn() -> Error) -> bool {
        let Some(mut m) = self.members.remove(member_id) else {
            return false;
        };
        m.fail_waiters(err);
        if let Some(instance) = &m.instance_id
            && self.static_members.get(instance).map(String::as_str) == Some(member_id)
        {
            self.static_members.remove(instance);
        }
        if self.leader.as_deref() == Some(member_id) {
            self.leader = self
                .members
                .values()
                .min_by_key(|m| m.seq)
                .map(|m| m.id.clone());
        }
        true
    }

    /// After a member left or expired.
    fn member_removed(&mut self, now: i64, initial_delay_ms: i64) {
        match self.state {
            GroupState::Stable | GroupState::CompletingRebalance => {
                self.prepare_rebalance(now, initial_delay_ms)
            }
            GroupState::PreparingRebalance => self.try_complete_join(now),
            GroupState::Empty | GroupState::Dead => {}
        }
    }

    fn maybe_prepare_rebalance(&mut self, now: i64, initial_delay_ms: i64) {
        match self.state {
            GroupState::Stable | GroupState::CompletingRebalance | GroupState::Empty => {
                self.prepare_rebalance(now, initial_delay_ms)
            }
            GroupState::PreparingRebalance => self.try_complete_join(now),
            GroupState::Dead => {}
        }
    }

    fn prepare_rebalance(&mut self, now: i64, initial_delay_ms: i64) {
        if self.state == GroupState::CompletingRebalance {
            // The assignment being synced is void: everyone rejoins.
            let err = self.rebalancing();
            for m in self.members.values_mut() {
                m.assignment = Bytes::new();
                if let Some(tx) = m.sync_waiter.take() {
                    let _ = tx.send(Err(err_clone(&err)));
                }
            }
        }
        let timeout = self.max_rebalance_timeout();
        if self.state == GroupState::Empty && initial_delay_ms > 0 {
            self.initial_delay = true;
            self.rebalance_deadline_ms = now.saturating_add(initial_delay_ms.min(timeout.max(1)));
        } else {
            self.initial_delay = false;
            self.rebalance_deadline_ms = now.saturating_add(timeout);
        }
        self.transition(GroupState::PreparingRebalance, now);
        tracing::info!(group = %self.id, generation = self.generation, members = self.members.len(), "preparing to rebalance");
        self.try_complete_join(now);
    }

    fn try_complete_join(&mut self, now: i64) {
        if self.state == GroupState::PreparingRebalance && !self.initial_delay && self.all_joined()
        {
            self.complete_join(now);
        }
    }

    /// Ends the join phase: drops dynamic members that did not rejoin, starts the next
    /// generation and answers every waiting member.
    fn complete_join(&mut self, now: i64) {
        self.initial_delay = false;
        let gone: Vec<String> = self
            .members
            .values()
            .filter(|m| m.join_waiter.is_none() && m.instance_id.is_none())
            .map(|m| m.id.clone())
            .collect();
        for id in gone {
            tracing::info!(group = %self.id, member = %id, "member did not rejoin in time; removed");
            let e = self.unknown_member(&id);
            self.remove_member(&id, || err_clone(&e));
        }
        self.pending_members.clear();
        self.generation = self.generation.wrapping_add(1).max(1);
        if self.members.is_empty() {
            self.protocol = None;
            self.protocol_type = None;
            self.leader = None;
            self.transition(GroupState::Empty, now);
            return;
        }
        self.protocol = self.select_protocol();
        // The leader must be a member that rejoined, if any did.
        let leader_joined = self
            .leader
            .as_ref()
            .and_then(|l| self.members.get(l))
            .is_some_and(|m| m.join_waiter.is_some());
        if !leader_joined {
            let joined = self
                .members
                .values()
                .filter(|m| m.join_waiter.is_some())
                .min_by_key(|m| m.seq)
                .or_else(|| self.members.values().min_by_key(|m| m.seq));
            self.leader = joined.map(|m| m.id.clone());
        }
        self.transition(GroupState::CompletingRebalance, now);
        let leader = self.leader.clone().unwrap_or_default();
        let mut ordered: Vec<&Member> = self.members.values().collect();
        ordered.sort_by_key(|m| m.seq);
        let all: Vec<JoinGroupMember> = ordered
            .iter()
            .map(|m| JoinGroupMember {
                member_id: m.id.clone(),
                group_instance_id: m.instance_id.clone(),
                metadata: m.metadata(self.protocol.as_deref()),
            })
            .collect();
        tracing::info!(group = %self.id, generation = self.generation, protocol = self.protocol.as_deref().unwrap_or_default(), members = all.len(), "rebalance: members joined");
        for m in self.members.values_mut() {
            m.last_heartbeat_ms = now;
            if let Some(tx) = m.join_waiter.take() {
                let _ = tx.send(Ok(JoinResult {
                    generation_id: self.generation,
                    protocol_type: self.protocol_type.clone(),
                    protocol_name: self.protocol.clone(),
                    leader: leader.clone(),
                    member_id: m.id.clone(),
                    members: if m.id == leader {
                        all.clone()
                    } else {
                        Vec::new()
                    },
                    skip_assignment: false,
                    replaced_member_id: None,
                }));
            }
        }
    }

    /// Kafka's vote: among protocols every member supports, each member votes for its most
    /// preferred; most votes wins, ties going to the oldest member's preference.
    fn select_protocol(&self) -> Option<String> {
        let mut ordered: Vec<&Member> = self.members.values().collect();
        ordered.sort_by_key(|m| m.seq);
        let first = ordered.first()?;
        let candidates: Vec<&str> = first
            .protocols
            .iter()
            .map(|(n, _)| n.as_str())
            .filter(|p| ordered.iter().all(|m| m.supports(p)))
            .collect();
        let mut votes: Vec<(usize, &str)> = candidates.iter().map(|c| (0, *c)).collect();
        for m in &ordered {
            if let Some((n, _)) = m
                .protocols
                .iter()
                .find(|(n, _)| candidates.contains(&n.as_str()))
                && let Some(v) = votes.iter_mut().find(|(_, c)| c == n)
            {
                v.0 += 1;
            }
        }
        let best = votes.iter().map(|(n, _)| *n).max()?;
        votes
            .iter()
            .find(|(n, _)| *n == best)
            .map(|(_, c)| (*c).to_owned())
    }

    fn join_result_now(&self, member_id: &str) -> JoinResult {
        let is_leader = self.leader.as_deref() == Some(member_id);
        let mut ordered: Vec<&Member> = self.members.values().collect();
        ordered.sort_by_key(|m| m.seq);
        JoinResult {
            generation_id: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol.clone(),
            leader: self.leader.clone().unwrap_or_default(),
            member_id: member_id.to_owned(),
            members: if is_leader {
                ordered
                    .iter()
                    .map(|m| JoinGroupMember {
                        member_id: m.id.clone(),
                        group_instance_id: m.instance_id.clone(),
                        metadata: m.metadata(self.protocol.as_deref()),
                    })
                    .collect()
            } else {
                Vec::new()
            },
            skip_assignment: false,
            replaced_member_id: None,
        }
    }
}

/// Errors are not `Clone` (they may hold an `io::Error`); the group errors are rebuilt.
fn err_clone(e: &Error) -> Error {
    match e {
        Error::UnknownMemberId {
            group_id,
            member_id,
        } => Error::UnknownMemberId {
            group_id: group_id.clone(),
            member_id: member_id.clone(),
        },
        Error::RebalanceInProgress { group_id } => Error::RebalanceInProgress {
            group_id: group_id.clone(),
        },
        Error::FencedInstanceId {
            group_id,
            instance_id,
            member_id,
        } => Error::FencedInstanceId {
            group_id: group_id.clone(),
            instance_id: instance_id.clone(),
            member_id: member_id.clone(),
        },
        other => Error::CoordinatorNotAvailable(other.to_string()),
    }
}

/// The group coordinator: every group of this node. Cheap to clone; clones share the groups.
#[derive(Debug, Clone)]
pub struct GroupCoordinator {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: GroupCoordinatorConfig,
    offsets: OffsetStore,
    clock: SharedClock,
    groups: Mutex<HashMap<String, Group>>,
    /// Notified after every call that can start a rebalance, so embedded members rejoin at
    /// once instead of at their next heartbeat.
    rebalance: tokio::sync::Notify,
    ids: AtomicU64,
    last_offset_expiry_ms: AtomicI64,
}

impl GroupCoordinator {
    /// A coordinator keeping offsets in `offsets`, on `clock` (usually the log's).
    pub fn new(offsets: OffsetStore, clock: SharedClock, config: GroupCoordinatorConfig) -> Self {
        let now = clock.now_ms();
        Self {
            inner: Arc::new(Inner {
                config,
                offsets,
                clock,
                groups: Mutex::new(HashMap::new()),
                rebalance: tokio::sync::Notify::new(),
                ids: AtomicU64::new(0),
                last_offset_expiry_ms: AtomicI64::new(now),
            }),
        }
    }

    /// The offset store.
    pub fn offsets(&self) -> &OffsetStore {
        &self.inner.offsets
    }

    fn now(&self) -> i64 {
        self.inner.clock.now_ms()
    }

    fn initial_delay(&self) -> i64 {
        i64::from(self.inner.config.initial_rebalance_delay_ms.max(0))
    }

    /// A fresh member id: `<group.instance.id or client.id>-<32 hex digits>`, as Kafka's.
    fn new_member_id(&self, prefix: &str) -> String {
        let n = self.inner.ids.fetch_add(1, Ordering::Relaxed);
        let hash = |salt: u64| {
            let mut h = std::hash::RandomState::new().build_hasher();
            h.write_u64(n);
            h.write_u64(salt);
            h.write_i64(self.now());
            h.finish()
        };
        format!("{prefix}-{:016x}{:016x}", hash(1), hash(2))
    }

    /// JoinGroup. Changes the group at once; the returned future resolves when the rebalance
    /// completes (all members rejoined, or the rebalance timeout passed in [`Self::tick`]), or
    /// right away for errors and for members that need no rebalance.
    pub fn join_group(&self, req: JoinGroupRequest) -> Pending<JoinResult> {
        let group_id = req.group_id.clone();
        let pending = match self.join_inner(req) {
            Ok(p) => p,
            Err(e) => Pending::ready(&group_id, Err(e)),
        };
        self.inner.rebalance.notify_waiters();
        pending
    }

    /// A future completing at the next call that may have started a rebalance (a join, a
    /// leave, an expiry). Create it before checking [`GroupCoordinator::rebalance_pending`].
    pub fn rebalance_signal(&self) -> tokio::sync::futures::Notified<'_> {
        self.inner.rebalance.notified()
    }

    /// Whether a member of `group_id` at `generation` must rejoin now: the group is preparing
    /// a rebalance or has moved to another generation. A cheap check, no heartbeat.
    pub fn rebalance_pending(&self, group_id: &str, generation: i32) -> bool {
        self.inner.groups.lock().get(group_id).is_some_and(|g| {
            g.state == GroupState::PreparingRebalance || g.generation != generation
        })
    }

    fn join_inner(&self, req: JoinGroupRequest) -> Result<Pending<JoinResult>> {
        if req.group_id.is_empty() {
            return Err(Error::InvalidGroupId(req.group_id));
        }
        let c = &self.inner.config;
        if req.session_timeout_ms < c.min_session_timeout_ms
            || req.session_timeout_ms > c.max_session_timeout_ms
        {
            return Err(Error::InvalidSessionTimeout {
                timeout_ms: req.session_timeout_ms,
                min_ms: c.min_session_timeout_ms,
                max_ms: c.max_session_timeout_ms,
            });
        }
        let now = self.now();
        let delay = self.initial_delay();
        let mut groups = self.inner.groups.lock();
        let known_member = !req.member_id.is_empty();
        if known_member && !groups.contains_key(&req.group_id) {
            return Err(Error::UnknownMemberId {
                group_id: req.group_id,
                member_id: req.member_id,
            });
        }
        let group = groups
            .entry(req.group_id.clone())
            .or_insert_with(|| Group::new(&req.group_id, now));
        if group.state == GroupState::Dead {
            return Err(Error::CoordinatorNotAvailable(req.group_id));
        }
        let except = known_member.then_some(req.member_id.as_str());
        if let Err(reason) = group.supports_protocols(&req.protocol_type, &req.protocols, except) {
            return Err(Error::InconsistentGroupProtocol {
                group_id: req.group_id,
                reason,
            });
        }
        if known_member {
            return self.join_known(group, req, now, delay);
        }
        // A new member, or a static member coming back with a new id.
        let prefix = req.group_instance_id.as_deref().unwrap_or(&req.client_id);
        let member_id = self.new_member_id(prefix);
        if let Some(instance) = req.group_instance_id.clone()
            && let Some(old_id) = group.static_members.get(&instance).cloned()
        {
            return Ok(self.replace_static_member(group, req, old_id, member_id, now, delay));
        }
        if req.require_known_member_id && req.group_instance_id.is_none() {
            let deadline = now.saturating_add(i64::from(req.session_timeout_ms));
            group.pending_members.insert(member_id.clone(), deadline);
            return Err(Error::MemberIdRequired {
                group_id: req.group_id,
                member_id,
            });
        }
        Ok(self.add_and_rebalance(group, req, member_id, now, delay))
    }

    fn add_and_rebalance(
        &self,
        group: &mut Group,
        req: JoinGroupRequest,
        member_id: String,
        now: i64,
        delay: i64,
    ) -> Pending<JoinResult> {
        let (tx, pending) = Pending::waiting(&group.id);
        group.pending_members.remove(&member_id);
        group.add_member(Member {
            id: member_id,
            instance_id: req.group_instance_id,
            client_id: req.client_id,
            client_host: req.client_host,
            protocol_type: req.protocol_type,
            protocols: req.protocols,
            session_timeout_ms: i64::from(req.session_timeout_ms),
            rebalance_timeout_ms: i64::from(req.rebalance_timeout_ms.max(0)),
            assignment: Bytes::new(),
            last_heartbeat_ms: now,
            join_waiter: Some(tx),
            sync_waiter: None,
            seq: 0,
        });
        group.maybe_prepare_rebalance(now, delay);
        pending
    }

    fn join_known(
        &self,
        group: &mut Group,
        req: JoinGroupRequest,
        now: i64,
        delay: i64,
    ) -> Result<Pending<JoinResult>> {
        let member_id = req.member_id.clone();
        if group.pending_members.contains_key(&member_id) {
            return Ok(self.add_and_rebalance(group, req, member_id, now, delay));
        }
        group.check_fenced(&member_id, req.group_instance_id.as_deref())?;
        let state = group.state;
        let Some(member) = group.members.get_mut(&member_id) else {
            return Err(group.unknown_member(&member_id));
        };
        let unchanged = member.protocols == req.protocols;
        let is_leader = group.leader.as_deref() == Some(member_id.as_str());
        let respond_now = match state {
            GroupState::Empty | GroupState::Dead => return Err(group.unknown_member(&member_id)),
            GroupState::PreparingRebalance => false,
            GroupState::CompletingRebalance => unchanged,
            GroupState::Stable => unchanged && !is_leader,
        };
        member.last_heartbeat_ms = now;
        if respond_now {
            let r = group.join_result_now(&member_id);
            return Ok(Pending::ready(&group.id, Ok(r)));
        }
        let (tx, pending) = Pending::waiting(&group.id);
        if let Some(old) = member.join_waiter.replace(tx) {
            let _ = old.send(Err(Error::RebalanceInProgress {
                group_id: group.id.clone(),
            }));
        }
        member.protocols = req.protocols;
        member.session_timeout_ms = i64::from(req.session_timeout_ms);
        member.rebalance_timeout_ms = i64::from(req.rebalance_timeout_ms.max(0));
        member.client_id = req.client_id;
        member.client_host = req.client_host;
        group.maybe_prepare_rebalance(now, delay);
        Ok(pending)
    }

    /// A static member rejoining with an unknown member id takes over its old id's place; the
    /// old id is fenced. Without a protocol change in a Stable group there is no rebalance:
    /// the member keeps its assignment.
    fn replace_static_member(
        &self,
        group: &mut Group,
        req: JoinGroupRequest,
        old_id: String,
        new_id: String,
        now: i64,
        delay: i64,
    ) -> Pending<JoinResult> {
        let Some(mut member) = group.members.remove(&old_id) else {
            group
                .static_members
                .remove(req.group_instance_id.as_deref().unwrap_or_default());
            return self.add_and_rebalance(group, req, new_id, now, delay);
        };
        let instance = req.group_instance_id.clone().unwrap_or_default();
        let fenced = Error::FencedInstanceId {
            group_id: group.id.clone(),
            instance_id: instance.clone(),
            member_id: old_id.clone(),
        };
        member.fail_waiters(|| err_clone(&fenced));
        let unchanged = member.protocols == req.protocols;
        member.id = new_id.clone();
        member.client_id = req.client_id;
        member.client_host = req.client_host;
        member.session_timeout_ms = i64::from(req.session_timeout_ms);
        member.rebalance_timeout_ms = i64::from(req.rebalance_timeout_ms.max(0));
        member.last_heartbeat_ms = now;
        member.protocols = req.protocols;
        let was_leader = group.leader.as_deref() == Some(old_id.as_str());
        if was_leader {
            group.leader = Some(new_id.clone());
        }
        group
            .static_members
            .insert(instance.clone(), new_id.clone());
        tracing::info!(group = %group.id, instance, old = %old_id, new = %new_id, "static member replaced");
        if group.state == GroupState::Stable && unchanged {
            group.members.insert(new_id.clone(), member);
            let mut r = group.join_result_now(&new_id);
            r.skip_assignment = was_leader;
            if was_leader {
                r.replaced_member_id = Some(old_id);
            }
            return Pending::ready(&group.id, Ok(r));
        }
        let (tx, pending) = Pending::waiting(&group.id);
        member.join_waiter = Some(tx);
        group.members.insert(new_id, member);
        group.maybe_prepare_rebalance(now, delay);
        pending
    }

    /// SyncGroup. The leader's call carries every member's assignment and completes the
    /// rebalance; the others' futures resolve then.
    pub fn sync_group(&self, req: SyncGroupRequest) -> Pending<SyncResult> {
        let group_id = req.group_id.clone();
        match self.sync_inner(req) {
            Ok(p) => p,
            Err(e) => Pending::ready(&group_id, Err(e)),
        }
    }

    fn sync_inner(&self, req: SyncGroupRequest) -> Result<Pending<SyncResult>> {
        let now = self.now();
        let mut groups = self.inner.groups.lock();
        let Some(group) = groups.get_mut(&req.group_id) else {
            return Err(Error::UnknownMemberId {
                group_id: req.group_id,
                member_id: req.member_id,
            });
        };
        if group.state == GroupState::Dead {
            return Err(Error::CoordinatorNotAvailable(req.group_id));
        }
        group.member(&req.member_id, req.group_instance_id.as_deref())?;
        if req.generation_id != group.generation {
            return Err(Error::IllegalGeneration {
                group_id: req.group_id,
                generation: req.generation_id,
                current: group.generation,
            });
        }
        let mismatch = |given: &Option<String>, have: &Option<String>| {
            given.is_some() && have.is_some() && given != have
        };
        if mismatch(&req.protocol_type, &group.protocol_type)
            || mismatch(&req.protocol_name, &group.protocol)
        {
            return Err(Error::InconsistentGroupProtocol {
                group_id: req.group_id,
                reason: "SyncGroup names another protocol than the group's".into(),
            });
        }
        let result = |g: &Group, assignment: Bytes| SyncResult {
            protocol_type: g.protocol_type.clone(),
            protocol_name: g.protocol.clone(),
            assignment,
        };
        match group.state {
            GroupState::Empty | GroupState::Dead => Err(group.unknown_member(&req.member_id)),
            GroupState::PreparingRebalance => Err(group.rebalancing()),
            GroupState::Stable => {
                let m = group.member(&req.member_id, None)?;
                let assignment = m.assignment.clone();
                if let Some(m) = group.members.get_mut(&req.member_id) {
                    m.last_heartbeat_ms = now;
                }
                Ok(Pending::ready(&group.id, Ok(result(group, assignment))))
            }
            GroupState::CompletingRebalance => {
                let (tx, pending) = Pending::waiting(&group.id);
                if let Some(m) = group.members.get_mut(&req.member_id) {
                    m.last_heartbeat_ms = now;
                    if let Some(old) = m.sync_waiter.replace(tx) {
                        let _ = old.send(Err(Error::RebalanceInProgress {
                            group_id: req.group_id.clone(),
                        }));
                    }
                }
                if group.leader.as_deref() == Some(req.member_id.as_str()) {
                    let mut by_member: HashMap<String, Bytes> =
                        req.assignments.into_iter().collect();
                    let (pt, pn) = (group.protocol_type.clone(), group.protocol.clone());
                    for m in group.members.values_mut() {
                        m.assignment = by_member.remove(&m.id).unwrap_or_default();
                        if let Some(tx) = m.sync_waiter.take() {
                            let _ = tx.send(Ok(SyncResult {
                                protocol_type: pt.clone(),
                                protocol_name: pn.clone(),
                                assignment: m.assignment.clone(),
                            }));
                        }
                    }
                    group.transition(GroupState::Stable, now);
                    tracing::info!(group = %group.id, generation = group.generation, "group stable");
                }
                Ok(pending)
            }
        }
    }

    /// Heartbeat: keeps the member's session alive. REBALANCE_IN_PROGRESS tells it to rejoin.
    pub fn heartbeat(
        &self,
        group_id: &str,
        generation_id: i32,
        member_id: &str,
        group_instance_id: Option<&str>,
    ) -> Result<()> {
        let now = self.now();
        let mut groups = self.inner.groups.lock();
        let Some(group) = groups.get_mut(group_id) else {
            return Err(Error::UnknownMemberId {
                group_id: group_id.to_owned(),
                member_id: member_id.to_owned(),
            });
        };
        match group.state {
            GroupState::Dead => return Err(Error::CoordinatorNotAvailable(group_id.to_owned())),
            GroupState::Empty => return Err(group.unknown_member(member_id)),
            _ => {}
        }
        group.member(member_id, group_instance_id)?;
        if generation_id != group.generation {
            return Err(Error::IllegalGeneration {
                group_id: group_id.to_owned(),
                generation: generation_id,
                current: group.generation,
            });
        }
        if let Some(m) = group.members.get_mut(member_id) {
            m.last_heartbeat_ms = now;
        }
        if group.state == GroupState::PreparingRebalance {
            return Err(group.rebalancing());
        }
        Ok(())
    }

    /// LeaveGroup of one or more members; one result per member, in order. The group
    /// rebalances without them. A member id handed out with MEMBER_ID_REQUIRED and not yet
    /// joined with may leave too (a rebalance no longer waits for it), as in Kafka.
    pub fn leave_group(&self, group_id: &str, members: &[MemberIdentity]) -> Vec<Result<()>> {
        let now = self.now();
        let delay = self.initial_delay();
        let mut groups = self.inner.groups.lock();
        let Some(group) = groups.get_mut(group_id) else {
            return members
                .iter()
                .map(|m| {
                    Err(Error::UnknownMemberId {
                        group_id: group_id.to_owned(),
                        member_id: m.member_id.clone(),
                    })
                })
                .collect();
        };
        let results = members
            .iter()
            .map(|who| {
                if group.state == GroupState::Dead {
                    return Err(Error::CoordinatorNotAvailable(group_id.to_owned()));
                }
                let id = match (&who.group_instance_id, who.member_id.is_empty()) {
                    (Some(instance), true) => group
                        .static_members
                        .get(instance)
                        .cloned()
                        .ok_or_else(|| group.unknown_member(&who.member_id))?,
                    _ => who.member_id.clone(),
                };
                // A KIP-394 member that got its id but never joined with it.
                if group.pending_members.remove(&id).is_some() {
                    tracing::info!(group = %group_id, member = %id, "pending member left");
                    group.try_complete_join(now);
                    return Ok(());
                }
                group.member(&id, who.group_instance_id.as_deref())?;
                let e = group.unknown_member(&id);
                group.remove_member(&id, || err_clone(&e));
                tracing::info!(group = %group_id, member = %id, "member left");
                group.member_removed(now, delay);
                Ok(())
            })
            .collect();
        drop(groups);
        self.inner.rebalance.notify_waiters();
        results
    }

    /// OffsetCommit: checks the member and generation as Kafka does, then commits and waits
    /// until the offsets are durable.
    pub async fn commit_offsets(&self, req: OffsetCommitRequest) -> Result<()> {
        self.check_commit(&req)?;
        self.inner.offsets.commit(&req.group_id, req.offsets).await
    }

    /// The group checks of Kafka's `TxnOffsetCommit`, as for an OffsetCommit: a stale
    /// generation gives [`Error::IllegalGeneration`], an unknown member
    /// [`Error::UnknownMemberId`] (the offsets themselves go in the producer's transaction).
    pub fn check_txn_offset_commit(
        &self,
        group_id: &str,
        generation_id: i32,
        member_id: &str,
        group_instance_id: Option<&str>,
    ) -> Result<()> {
        self.check_commit(&OffsetCommitRequest {
            group_id: group_id.to_owned(),
            generation_id,
            member_id: member_id.to_owned(),
            group_instance_id: group_instance_id.map(str::to_owned),
            offsets: Vec::new(),
        })
    }

    fn check_commit(&self, req: &OffsetCommitRequest) -> Result<()> {
        // The empty group id is a group of committed offsets like any other here: Kafka keeps
        // accepting commits to it for old clients (its coordinator refuses only a null id).
        let now = self.now();
        let mut groups = self.inner.groups.lock();
        let Some(group) = groups.get_mut(&req.group_id) else {
            if req.generation_id < 0 {
                return Ok(()); // a group of committed offsets only (admin, manual assignment)
            }
            return Err(Error::IllegalGeneration {
                group_id: req.group_id.clone(),
                generation: req.generation_id,
                current: -1,
            });
        };
        group.check_fenced(&req.member_id, req.group_instance_id.as_deref())?;
        if group.state == GroupState::Dead {
            return Err(Error::CoordinatorNotAvailable(req.group_id.clone()));
        }
        if req.generation_id < 0 && group.state == GroupState::Empty {
            return Ok(());
        }
        if group.pending_members.contains_key(&req.member_id) {
            return Err(group.rebalancing());
        }
        if !group.members.contains_key(&req.member_id) {
            return Err(group.unknown_member(&req.member_id));
        }
        if req.generation_id != group.generation {
            return Err(Error::IllegalGeneration {
                group_id: req.group_id.clone(),
                generation: req.generation_id,
                current: group.generation,
            });
        }
        if group.state == GroupState::CompletingRebalance {
            return Err(group.rebalancing());
        }
        if let Some(m) = group.members.get_mut(&req.member_id) {
            m.last_heartbeat_ms = now;
        }
        Ok(())
    }

    /// OffsetFetch: the committed offsets of `partitions`, or of every partition with `None`.
    pub fn fetch_offsets(
        &self,
        group_id: &str,
        partitions: Option<&[TopicPartition]>,
    ) -> Vec<(TopicPartition, Option<CommittedOffset>)> {
        self.inner.offsets.fetch(group_id, partitions)
    }

    /// ListGroups: groups with members or committed offsets.
    pub fn list_groups(&self) -> Vec<GroupListing> {
        let with_offsets = self.inner.offsets.groups();
        let groups = self.inner.groups.lock();
        let mut out: Vec<GroupListing> = groups
            .values()
            .filter(|g| g.state != GroupState::Dead)
            .map(|g| GroupListing {
                group_id: g.id.clone(),
                protocol_type: g.protocol_type.clone().unwrap_or_default(),
                state: g.state,
            })
            .collect();
        for g in with_offsets {
            if !groups.contains_key(&g) {
                out.push(GroupListing {
                    group_id: g,
                    protocol_type: String::new(),
                    state: GroupState::Empty,
                });
            }
        }
        out.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        out
    }

    /// DescribeGroups of one group; GROUP_ID_NOT_FOUND if it has neither members nor offsets
    /// (a DescribeGroups handler answers that with state `Dead`, as Kafka does).
    pub fn describe_group(&self, group_id: &str) -> Result<GroupDescription> {
        let has_offsets = self.inner.offsets.has_offsets(group_id);
        let groups = self.inner.groups.lock();
        let Some(g) = groups.get(group_id).filter(|g| g.state != GroupState::Dead) else {
            if has_offsets {
                return Ok(GroupDescription {
                    group_id: group_id.to_owned(),
                    state: GroupState::Empty,
                    protocol_type: String::new(),
                    protocol: String::new(),
                    generation_id: 0,
                    leader: None,
                    members: Vec::new(),
                });
            }
            return Err(Error::GroupIdNotFound(group_id.to_owned()));
        };
        let mut ordered: Vec<&Member> = g.members.values().collect();
        ordered.sort_by_key(|m| m.seq);
        let settled = matches!(
            g.state,
            GroupState::CompletingRebalance | GroupState::Stable
        );
        Ok(GroupDescription {
            group_id: g.id.clone(),
            state: g.state,
            protocol_type: g.protocol_type.clone().unwrap_or_default(),
            protocol: if settled {
                g.protocol.clone().unwrap_or_default()
            } else {
                String::new()
            },
            generation_id: g.generation,
            leader: g.leader.clone(),
            members: ordered
                .into_iter()
                .map(|m| MemberDescription {
                    member_id: m.id.clone(),
                    group_instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    metadata: if settled {
                        m.metadata(g.protocol.as_deref())
                    } else {
                        Bytes::new()
                    },
                    assignment: if g.state == GroupState::Stable {
                        m.assignment.clone()
                    } else {
                        Bytes::new()
                    },
                })
                .collect(),
        })
    }

    /// DeleteGroups: removes empty groups and their offsets. One result per group, in order:
    /// NON_EMPTY_GROUP while it has members, GROUP_ID_NOT_FOUND if it does not exist.
    pub async fn delete_groups(&self, group_ids: &[String]) -> Vec<Result<()>> {
        let mut out = Vec::with_capacity(group_ids.len());
        for id in group_ids {
            out.push(self.delete_group(id).await);
        }
        out
    }

    async fn delete_group(&self, group_id: &str) -> Result<()> {
        let has_offsets = self.inner.offsets.has_offsets(group_id);
        {
            let mut groups = self.inner.groups.lock();
            match groups.get(group_id) {
                Some(g) if g.state != GroupState::Empty || !g.members.is_empty() => {
                    return Err(Error::NonEmptyGroup(group_id.to_owned()));
                }
                Some(_) => {
                    groups.remove(group_id);
                }
                None if !has_offsets => {
                    return Err(Error::GroupIdNotFound(group_id.to_owned()));
                }
                None => {}
            }
        }
        self.inner.offsets.delete_group(group_id).await?;
        tracing::info!(group = group_id, "group deleted");
        Ok(())
    }

    /// Fires what the clock says is due: expires members whose session timed out and pending
    /// (KIP-394) member ids, completes rebalances whose timeout or initial delay passed
    /// (dropping members that did not rejoin), forgets empty groups without offsets, and every
    /// `offsets.retention.check.interval.ms` expires offsets of empty groups.
    pub fn tick(&self) -> Result<()> {
        let now = self.now();
        let delay = self.initial_delay();
        let mut empty_since: HashMap<String, Option<i64>> = HashMap::new();
        {
            let with_offsets: std::collections::HashSet<String> =
                self.inner.offsets.groups().into_iter().collect();
            let mut groups = self.inner.groups.lock();
            for group in groups.values_mut() {
                expire_in(group, now, delay);
                let since = (group.state == GroupState::Empty).then_some(group.state_since_ms);
                empty_since.insert(group.id.clone(), since);
            }
            groups.retain(|id, g| {
                g.state != GroupState::Dead
                    && !(g.state == GroupState::Empty
                        && g.members.is_empty()
                        && g.pending_members.is_empty()
                        && !with_offsets.contains(id))
            });
        }
        let last = self.inner.last_offset_expiry_ms.load(Ordering::Acquire);
        if now.saturating_sub(last) >= self.inner.config.offsets_retention_check_interval_ms {
            self.inner
                .last_offset_expiry_ms
                .store(now, Ordering::Release);
            self.expire_offsets_with(&empty_since)?;
        }
        self.inner.rebalance.notify_waiters();
        Ok(())
    }

    /// Expires offsets of empty groups now (what `tick` does every
    /// `offsets.retention.check.interval.ms`). Returns offsets expired.
    pub fn expire_offsets(&self) -> Result<usize> {
        let snapshot: HashMap<String, Option<i64>> = self
            .inner
            .groups
            .lock()
            .values()
            .map(|g| {
                let since = (g.state == GroupState::Empty).then_some(g.state_since_ms);
                (g.id.clone(), since)
            })
            .collect();
        self.expire_offsets_with(&snapshot)
    }

    fn expire_offsets_with(&self, empty_since: &HashMap<String, Option<i64>>) -> Result<usize> {
        self.inner
            .offsets
            .expire_offsets(|g| empty_since.get(g).copied().unwrap_or(Some(i64::MIN)))
    }

    /// Runs [`Self::tick`] every `every` on the current tokio runtime until the last clone of
    /// this coordinator is dropped.
    pub fn spawn_ticker(&self, every: Duration) -> tokio::task::JoinHandle<()> {
        let weak: Weak<Inner> = Arc::downgrade(&self.inner);
        let every = every.max(Duration::from_millis(1));
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(every);
            loop {
                interval.tick().await;
                let Some(inner) = weak.upgrade() else { return };
                if let Err(e) = (GroupCoordinator { inner }).tick() {
                    tracing::warn!(error = %crate::report(&e), "group coordinator tick failed");
                }
            }
        })
    }
}

/// Session and rebalance timeouts of one group.
fn expire_in(group: &mut Group, now: i64, delay: i64) {
    let before = group.pending_members.len();
    group.pending_members.retain(|_, deadline| *deadline > now);
    let pending_expired = group.pending_members.len() != before;
    let expired: Vec<String> = group
        .members
        .values()
        .filter(|m| {
            !m.awaiting_response()
                && now.saturating_sub(m.last_heartbeat_ms) >= m.session_timeout_ms
        })
        .map(|m| m.id.clone())
        .collect();
    for id in &expired {
        tracing::info!(group = %group.id, member = %id, "member session expired");
        let e = group.unknown_member(id);
        group.remove_member(id, || err_clone(&e));
    }
    if !expired.is_empty() {
        group.member_removed(now, delay);
    } else if pending_expired {
        group.try_complete_join(now);
    }
    if group.state == GroupState::PreparingRebalance && now >= group.rebalance_deadline_ms {
        group.complete_join(now);
    }
}
