//! The consumer side of Kafka's classic group protocol, driven from `poll`: join (rejoining
//! with the id MEMBER_ID_REQUIRED hands out), the leader's assignment, sync, heartbeats on the
//! log's clock, and rebalances, eager (revoke everything before rejoining) or cooperative
//! (revoke only what moves and keep consuming the rest).

use std::collections::{BTreeMap, BTreeSet};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use tokio::time::Instant;

use super::consumer::EmbeddedConsumer;
use crate::client::assignor::{PartitionAssignor, all_cooperative};
use crate::client::{RebalanceEvent, TopicPattern};
use crate::group::{
    Assignment, BuiltinAssignor, JoinGroupRequest, JoinResult, MemberIdentity, Pending,
    Subscription, SyncGroupRequest, SyncResult, assign_members_with,
};
use crate::{Error, Result, TopicPartition};

/// What a consumer subscribes to.
#[derive(Debug, Clone)]
pub(super) enum Topics {
    Names(Vec<String>),
    Pattern(TopicPattern),
}

#[derive(Debug)]
enum Phase {
    /// Must (re)join.
    Join,
    Joining(Pending<JoinResult>),
    Syncing(Pending<SyncResult>),
    Stable,
}

/// What one step of [`EmbeddedConsumer::drive_group`] leaves it to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Return to the caller (Stable, or waiting past the deadline).
    Return,
    /// Take the next step, unless the deadline passed while the consumer has partitions.
    Again,
    /// Take the next step at once (a rejoin decided without waiting).
    AgainNow,
}

/// A consumer's membership of its group.
#[derive(Debug)]
pub(super) struct Membership {
    topics: Topics,
    pub(super) member_id: String,
    pub(super) generation: i32,
    phase: Phase,
    /// Log clock time of the last heartbeat.
    last_heartbeat_ms: i64,
    /// Heartbeats between polls; stops when the membership is dropped.
    heartbeat: Heartbeat,
    /// For a pattern: the topics it matched at the last join (a new match rejoins).
    matched: Vec<String>,
    /// Partitions announced as revoked (a `Revoked` event) and still owned: given up at the
    /// next `poll`, so the caller can commit them in this generation first.
    revoking: Option<Vec<TopicPartition>>,
}

/// Kafka's heartbeat thread: while the member is Stable it heartbeats every
/// `heartbeat.interval.ms` between polls, so processing that takes longer than
/// `session.timeout.ms` keeps the membership; and when no `poll` came for
/// `max.poll.interval.ms` it leaves the group, so the partitions go to live members. The next
/// poll then rejoins (the partitions are lost, nothing is committed).
#[derive(Debug)]
struct Heartbeat {
    shared: Arc<HeartbeatShared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

#[derive(Debug, Default)]
struct HeartbeatShared {
    state: parking_lot::Mutex<HeartbeatState>,
    cond: parking_lot::Condvar,
}

#[derive(Debug, Default)]
struct HeartbeatState {
    /// (member id, generation) while Stable.
    stable: Option<(String, i32)>,
    /// Log clock time of the last poll.
    last_poll_ms: i64,
    /// Set when the thread left the group after `max.poll.interval.ms` without a poll.
    left_for_poll_timeout: bool,
    stop: bool,
}

impl Heartbeat {
    fn start(consumer: &EmbeddedConsumer) -> Result<Self> {
        let shared = Arc::new(HeartbeatShared::default());
        shared.state.lock().last_poll_ms = consumer.log.clock().now_ms();
        let (group_id, c) = consumer.group()?;
        let (group_id, c) = (group_id.to_owned(), Arc::clone(c));
        let instance = consumer.config.group_instance_id.clone();
        let clock = Arc::clone(consumer.log.clock());
        let every = std::time::Duration::from_millis(consumer.config.heartbeat_interval_ms.max(1));
        let max_poll = i64::try_from(consumer.config.max_poll_interval_ms).unwrap_or(i64::MAX);
        let s = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("sluice-consumer-heartbeat".into())
            .spawn(move || {
                loop {
                    let (member, generation) = {
                        let mut st = s.state.lock();
                        if !st.stop {
                            s.cond.wait_for(&mut st, every);
                        }
                        if st.stop {
                            return;
                        }
                        let Some((member, generation)) = st.stable.clone() else {
                            continue;
                        };
                        if clock.now_ms().saturating_sub(st.last_poll_ms) > max_poll {
                            tracing::warn!(group = %group_id, member = %member, "no poll for max.poll.interval.ms: leaving the group");
                            st.stable = None;
                            st.left_for_poll_timeout = true;
                            drop(st);
                            let who = MemberIdentity {
                                member_id: member,
                                group_instance_id: instance.clone(),
                            };
                            let _ = c.leave_group(&group_id, &[who]);
                            continue;
                        }
                        (member, generation)
                    };
                    if let Err(e) = c.heartbeat(&group_id, generation, &member, instance.as_deref()) {
                        // The next poll finds out and rejoins; stop beating for a stale member.
                        tracing::debug!(error = %crate::report(&e), "background heartbeat refused");
                        s.state.lock().stable = None;
                    }
                }
            })
            .map_err(|e| Error::io("consumer heartbeat thread", e))?;
        Ok(Self {
            shared,
            thread: Some(thread),
        })
    }

    fn set_stable(&self, stable: Option<(String, i32)>) {
        self.shared.state.lock().stable = stable;
    }

    /// Notes a poll; returns whether the thread left the group since the last one.
    fn polled(&self, now_ms: i64) -> bool {
        let mut st = self.shared.state.lock();
        st.last_poll_ms = now_ms;
        std::mem::take(&mut st.left_for_poll_timeout)
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.shared.state.lock().stop = true;
        self.shared.cond.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Errors that mean "rejoin", not failure.
pub(super) fn is_rebalance_error(e: &Error) -> bool {
    matches!(
        e,
        Error::RebalanceInProgress { .. }
            | Error::IllegalGeneration { .. }
            | Error::UnknownMemberId { .. }
            | Error::CoordinatorNotAvailable(_)
    )
}

/// Polls `p` until `until`, or once without waiting if `None`.
async fn wait<T>(p: &mut Pending<T>, until: Option<Instant>) -> Option<Result<T>> {
    match until {
        Some(t) => tokio::time::timeout_at(t, p).await.ok(),
        None => match Pin::new(p).poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(r) => Some(r),
            Poll::Pending => None,
        },
    }
}

impl EmbeddedConsumer {
    pub(super) fn subscribe_to(&mut self, topics: Topics) -> Result<()> {
        self.group()?;
        if self.membership.is_none() && !self.assignment.is_empty() {
            return Err(Error::InvalidRequest(
                "subscription to topics and manual assignment are mutually exclusive".into(),
            ));
        }
        match &mut self.membership {
            Some(m) => {
                m.topics = topics;
                if matches!(m.phase, Phase::Stable) {
                    m.phase = Phase::Join;
                }
            }
            None => {
                let heartbeat = Heartbeat::start(self)?;
                self.membership = Some(Membership {
                    topics,
                    member_id: String::new(),
                    generation: -1,
                    phase: Phase::Join,
                    last_heartbeat_ms: self.log.clock().now_ms(),
                    heartbeat,
                    matched: Vec::new(),
                    revoking: None,
                })
            }
        }
        Ok(())
    }

    /// The consumer's assignors in order of preference: those given with
    /// `ConsumerConfig::with_assignors`, else the built-ins `partition.assignment.strategy`
    /// names.
    fn assignors(&self) -> Vec<Arc<dyn PartitionAssignor>> {
        if self.config.assignors().is_empty() {
            self.config
                .partition_assignment_strategy
                .iter()
                .map(|s| BuiltinAssignor::shared(*s))
                .collect()
        } else {
            self.config.assignors().to_vec()
        }
    }

    /// The assignor of a protocol name the coordinator chose.
    fn assignor_named(&self, name: Option<&str>) -> Result<Arc<dyn PartitionAssignor>> {
        self.assignors()
            .into_iter()
            .find(|a| Some(a.name()) == name)
            .ok_or_else(|| {
                Error::InvalidRequest(format!(
                    "the group chose assignor {name:?}, which this consumer does not have"
                ))
            })
    }

    /// Cooperative when every configured assignor supports it (Kafka's rule).
    fn cooperative(&self) -> bool {
        all_cooperative(&self.assignors())
    }

    fn subscribed_topics(&self, topics: &Topics) -> Vec<String> {
        match topics {
            Topics::Names(n) => n.clone(),
            Topics::Pattern(p) => self
                .log
                .list_topics()
                .into_iter()
                .filter(|t| p.matches(t))
                .collect(),
        }
    }

    fn join_request(&self, m: &Membership) -> Result<JoinGroupRequest> {
        let (group_id, _) = self.group()?;
        let mut sub = Subscription::new(self.subscribed_topics(&m.topics));
        sub.owned_partitions = self.assignment.keys().cloned().collect();
        sub.generation_id = m.generation;
        // One subscription per assignor, each with that assignor's user data.
        let protocols = self
            .assignors()
            .iter()
            .map(|a| {
                let mut sub = sub.clone();
                sub.user_data = a.subscription_user_data(&sub.topics);
                (a.name().to_owned(), sub.encode())
            })
            .collect();
        let mut req = JoinGroupRequest::new(group_id, "consumer", protocols);
        req.member_id = m.member_id.clone();
        req.group_instance_id = self.config.group_instance_id.clone();
        if !self.config.client_id.is_empty() {
            req.client_id = self.config.client_id.clone();
        }
        req.session_timeout_ms = i32::try_from(self.config.session_timeout_ms).unwrap_or(i32::MAX);
        req.rebalance_timeout_ms =
            i32::try_from(self.config.max_poll_interval_ms).unwrap_or(i32::MAX);
        Ok(req)
    }

    /// The leader's assignment for SyncGroup.
    fn leader_assignment(&self, jr: &JoinResult) -> Result<Vec<(String, Bytes)>> {
        let assignor = self.assignor_named(jr.protocol_name.as_deref())?;
        let mut topics = BTreeMap::new();
        for member in &jr.members {
            for t in Subscription::decode(&member.metadata)?.topics {
                if let Ok(n) = self.log.partition_count(&t) {
                    topics.insert(t, n);
                }
            }
        }
        assign_members_with(assignor.as_ref(), self.cooperative(), &topics, &jr.members)
    }

    /// Queues `event` and calls the listener with it.
    fn rebalance_event(&mut self, event: RebalanceEvent) {
        if let Some(l) = self.listener.as_deref_mut() {
            match &event {
                RebalanceEvent::Revoked(tps) => l.on_partitions_revoked(tps),
                RebalanceEvent::Assigned(tps) => l.on_partitions_assigned(tps),
                RebalanceEvent::Lost(tps) => l.on_partitions_lost(tps),
            }
        }
        self.events.push(event);
    }

    /// Whether a revocation was announced that the next `poll` carries out.
    pub(super) fn revocation_pending(&self) -> bool {
        self.membership
            .as_ref()
            .is_some_and(|m| m.revoking.is_some())
    }

    /// Commits (with auto-commit) and announces the revocation of `tps`; they stay assigned
    /// (and committable in this generation) until [`Self::give_up_revoked`] at the next poll.
    async fn announce_revoke(&mut self, tps: Vec<TopicPartition>) {
        if tps.is_empty() {
            return;
        }
        if self.config.enable_auto_commit {
            let offsets = self.consumed_offsets(Some(&tps));
            if let Err(e) = self.commit(Some(offsets)).await {
                tracing::warn!(error = %crate::report(&e), "commit before revocation failed");
            }
        }
        tracing::info!(partitions = tps.len(), "partitions revoked");
        self.rebalance_event(RebalanceEvent::Revoked(tps.clone()));
        if let Some(m) = self.membership.as_mut() {
            m.revoking = Some(tps);
        }
    }

    /// Gives up the partitions announced as revoked at the last poll.
    fn give_up_revoked(&mut self) {
        let Some(tps) = self.membership.as_mut().and_then(|m| m.revoking.take()) else {
            return;
        };
        let keep: Vec<TopicPartition> = self
            .assignment
            .keys()
            .filter(|tp| !tps.contains(tp))
            .cloned()
            .collect();
        self.set_assignment(keep);
    }

    /// Drops the whole assignment without committing (the generation is gone).
    fn lose_all(&mut self) {
        if let Some(m) = self.membership.as_mut() {
            m.revoking = None;
        }
        let lost: Vec<TopicPartition> = self.assignment.keys().cloned().collect();
        if !lost.is_empty() {
            tracing::warn!(partitions = lost.len(), "partitions lost");
            self.rebalance_event(RebalanceEvent::Lost(lost));
        }
        self.set_assignment(Vec::new());
    }

    /// Reacts to an error of the group protocol: rejoin where Kafka's consumer would.
    fn on_group_error(&mut self, e: Error) -> Result<()> {
        let Some(m) = self.membership.as_mut() else {
            return Err(e);
        };
        m.phase = Phase::Join;
        m.heartbeat.set_stable(None);
        match e {
            Error::MemberIdRequired { member_id, .. } => {
                m.member_id = member_id;
                Ok(())
            }
            Error::RebalanceInProgress { .. } => Ok(()),
            Error::UnknownMemberId { .. } | Error::CoordinatorNotAvailable(_) => {
                m.member_id.clear();
                m.generation = -1;
                self.lose_all();
                Ok(())
            }
            Error::IllegalGeneration { .. } => {
                m.generation = -1;
                self.lose_all();
                Ok(())
            }
            e => Err(e),
        }
    }

    /// Applies a SyncGroup assignment, first handing it (with its user data) to the chosen
    /// assignor's `on_assignment`.
    async fn apply_assignment(&mut self, sr: &SyncResult) -> Result<()> {
        let assignment = Assignment::decode(&sr.assignment)?;
        let generation = self.membership.as_ref().map_or(-1, |m| m.generation);
        self.assignor_named(sr.protocol_name.as_deref())?
            .on_assignment(&assignment, generation);
        let new: BTreeSet<TopicPartition> = assignment.partitions.into_iter().collect();
        let old: BTreeSet<TopicPartition> = self.assignment.keys().cloned().collect();
        let revoked: Vec<TopicPartition> = old.difference(&new).cloned().collect();
        let added: Vec<TopicPartition> = new.difference(&old).cloned().collect();
        // Kept until the next poll gives them up.
        self.announce_revoke(revoked.clone()).await;
        let mut all: Vec<TopicPartition> = self.assignment.keys().cloned().collect();
        all.extend(added.iter().cloned());
        self.set_assignment(all);
        if let Ok((group_id, c)) = self.group() {
            let committed = c.fetch_offsets(group_id, Some(&added));
            for (tp, o) in committed {
                if let (Some(o), Some(st)) = (o, self.assignment.get_mut(&tp)) {
                    st.position = Some(o.offset);
                }
            }
        }
        tracing::info!(partitions = added.len(), "partitions assigned");
        self.rebalance_event(RebalanceEvent::Assigned(added));
        if self.cooperative()
            && !revoked.is_empty()
            && let Some(m) = self.membership.as_mut()
        {
            // The partitions given up can go to their new owners in a follow-up rebalance.
            m.phase = Phase::Join;
        }
        Ok(())
    }

    /// Runs the membership until the consumer is Stable in its group, or `deadline` passes.
    /// While it has partitions (cooperative rebalances keep them), it does not wait at all.
    ///
    /// Partitions announced as revoked at the last poll are given up first; when this one
    /// announces a revocation it returns at once, before rejoining (see
    /// [`Self::revocation_pending`]).
    pub(super) async fn drive_group(&mut self, deadline: Instant) -> Result<()> {
        self.give_up_revoked();
        let now = self.log.clock().now_ms();
        if let Some(m) = self.membership.as_ref()
            && m.heartbeat.polled(now)
        {
            // The heartbeat thread left the group for us: rejoin as a new member.
            self.on_group_error(Error::UnknownMemberId {
                group_id: self.config.group_id.clone().unwrap_or_default(),
                member_id: m.member_id.clone(),
            })?;
        }
        for _ in 0..16 {
            let Some(m) = self.membership.as_mut() else {
                return Ok(());
            };
            let phase = std::mem::replace(&mut m.phase, Phase::Join);
            let until = if self.assignment.is_empty() {
                Some(deadline)
            } else {
                None
            };
            let step = match phase {
                Phase::Stable => self.stable_step()?,
                Phase::Join => self.join_step().await?,
                Phase::Joining(p) => self.joining_step(p, until).await?,
                Phase::Syncing(p) => self.syncing_step(p, until).await?,
            };
            match step {
                Step::Return => return Ok(()),
                Step::AgainNow => continue,
                Step::Again => {}
            }
            if tokio::time::Instant::now() >= deadline && !self.assignment.is_empty() {
                return Ok(());
            }
        }
        Ok(())
    }

    /// Stable: rejoins if a pattern subscription matches other topics now, else heartbeats
    /// when one is due or the group is rebalancing.
    fn stable_step(&mut self) -> Result<Step> {
        let now = self.log.clock().now_ms();
        let beat = i64::try_from(self.config.heartbeat_interval_ms).unwrap_or(i64::MAX);
        let Some(m) = self.membership.as_mut() else {
            return Ok(Step::Return);
        };
        m.phase = Phase::Stable;
        let (generation, due) = (
            m.generation,
            now.saturating_sub(m.last_heartbeat_ms) >= beat,
        );
        // A pattern that matches a new (or lost) topic rejoins, checked when a
        // heartbeat is due (Kafka checks on its metadata refresh).
        if due && let Topics::Pattern(p) = &m.topics {
            let p = p.clone();
            let now_matched = self.subscribed_topics(&Topics::Pattern(p));
            if let Some(m) = self.membership.as_mut()
                && now_matched != m.matched
            {
                tracing::info!(
                    topics = now_matched.len(),
                    "pattern subscription changed: rejoining"
                );
                m.matched = now_matched;
                m.phase = Phase::Join;
                m.heartbeat.set_stable(None);
                return Ok(Step::AgainNow);
            }
        }
        // Heartbeat when due, or at once when the group is rebalancing (the
        // coordinator is in this process: no need to wait for the next beat).
        let (group_id, c) = self.group()?;
        if !due && !c.rebalance_pending(group_id, generation) {
            return Ok(Step::Return);
        }
        let Some(m) = self.membership.as_mut() else {
            return Ok(Step::Return);
        };
        m.last_heartbeat_ms = now;
        let (member, generation) = (m.member_id.clone(), m.generation);
        let (group_id, c) = self.group()?;
        let r = c.heartbeat(
            group_id,
            generation,
            &member,
            self.config.group_instance_id.as_deref(),
        );
        match r {
            Ok(()) => Ok(Step::Return),
            Err(e) => self.on_group_error(e).map(|()| Step::Again),
        }
    }

    /// Join: with the eager protocol, announces the revocation of everything first (carried
    /// out at the next poll, before the JoinGroup); then sends JoinGroup.
    async fn join_step(&mut self) -> Result<Step> {
        if !self.cooperative() && !self.assignment.is_empty() {
            let all: Vec<TopicPartition> = self.assignment.keys().cloned().collect();
            self.announce_revoke(all).await;
            return Ok(Step::Return);
        }
        let Some(m) = self.membership.as_ref() else {
            return Ok(Step::Return);
        };
        let req = self.join_request(m)?;
        let (_, c) = self.group()?;
        let pending = c.join_group(req);
        if let Some(m) = self.membership.as_mut() {
            m.phase = Phase::Joining(pending);
        }
        Ok(Step::Again)
    }

    /// Joining: waits (until `until`) for the JoinGroup answer, then sends SyncGroup, with
    /// the assignment if this member leads.
    async fn joining_step(
        &mut self,
        mut p: Pending<JoinResult>,
        until: Option<Instant>,
    ) -> Result<Step> {
        match wait(&mut p, until).await {
            None => {
                if let Some(m) = self.membership.as_mut() {
                    m.phase = Phase::Joining(p);
                }
                Ok(Step::Return)
            }
            Some(Err(e)) => self.on_group_error(e).map(|()| Step::Again),
            Some(Ok(jr)) => {
                let assignments = if jr.leader == jr.member_id && !jr.skip_assignment {
                    self.leader_assignment(&jr)?
                } else {
                    Vec::new()
                };
                let (group_id, c) = self.group()?;
                let req = SyncGroupRequest {
                    group_id: group_id.to_owned(),
                    generation_id: jr.generation_id,
                    member_id: jr.member_id.clone(),
                    group_instance_id: self.config.group_instance_id.clone(),
                    protocol_type: jr.protocol_type.clone(),
                    protocol_name: jr.protocol_name.clone(),
                    assignments,
                };
                let pending = Arc::clone(c).sync_group(req);
                if let Some(m) = self.membership.as_mut() {
                    m.member_id = jr.member_id;
                    m.generation = jr.generation_id;
                    m.phase = Phase::Syncing(pending);
                }
                Ok(Step::Again)
            }
        }
    }

    /// Syncing: waits (until `until`) for the SyncGroup answer, then is Stable and applies
    /// the assignment (returning at once if that announced a revocation).
    async fn syncing_step(
        &mut self,
        mut p: Pending<SyncResult>,
        until: Option<Instant>,
    ) -> Result<Step> {
        match wait(&mut p, until).await {
            None => {
                if let Some(m) = self.membership.as_mut() {
                    m.phase = Phase::Syncing(p);
                }
                Ok(Step::Return)
            }
            Some(Err(e)) => self.on_group_error(e).map(|()| Step::Again),
            Some(Ok(sr)) => {
                let now = self.log.clock().now_ms();
                if let Some(m) = self.membership.as_mut() {
                    m.phase = Phase::Stable;
                    m.last_heartbeat_ms = now;
                    m.heartbeat
                        .set_stable(Some((m.member_id.clone(), m.generation)));
                    if let Topics::Pattern(p) = &m.topics {
                        let p = p.clone();
                        let matched = self.subscribed_topics(&Topics::Pattern(p));
                        if let Some(m) = self.membership.as_mut() {
                            m.matched = matched;
                        }
                    }
                }
                self.apply_assignment(&sr).await?;
                if self.revocation_pending() {
                    return Ok(Step::Return);
                }
                Ok(Step::Again)
            }
        }
    }

    /// Commits (with auto-commit), revokes everything and leaves the group.
    pub(super) async fn leave(&mut self) -> Result<()> {
        let all: Vec<TopicPartition> = self.assignment.keys().cloned().collect();
        let committed = if self.config.enable_auto_commit && !all.is_empty() {
            let offsets = self.consumed_offsets(Some(&all));
            self.commit(Some(offsets)).await
        } else {
            Ok(())
        };
        // Partitions announced as revoked already are not announced again.
        let announced = self
            .membership
            .as_mut()
            .and_then(|m| m.revoking.take())
            .unwrap_or_default();
        let revoked: Vec<TopicPartition> = all
            .into_iter()
            .filter(|tp| !announced.contains(tp))
            .collect();
        if !revoked.is_empty() {
            self.rebalance_event(RebalanceEvent::Revoked(revoked));
        }
        self.set_assignment(Vec::new());
        if let Some(m) = self.membership.take()
            && !m.member_id.is_empty()
            && let Ok((group_id, c)) = self.group()
        {
            let who = MemberIdentity {
                member_id: m.member_id,
                group_instance_id: self.config.group_instance_id.clone(),
            };
            for r in c.leave_group(group_id, &[who]) {
                if let Err(e) = r {
                    tracing::debug!(error = %crate::report(&e), "leave group failed");
                }
            }
        }
        committed
    }
}
