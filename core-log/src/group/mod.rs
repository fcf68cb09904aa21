//! Kafka's consumer groups (the classic protocol): committed offsets in `__consumer_offsets`,
//! the group coordinator's membership state machine, and the partition assignors.
//!
//! ```text
//! JoinGroup / SyncGroup / Heartbeat / LeaveGroup --> GroupCoordinator --> assignments (bytes)
//! OffsetCommit / OffsetFetch ----------------------> OffsetStore --> __consumer_offsets (compacted)
//! ```
//!
//! Everything here is sans-IO: calls take requests and return results or futures of them, time
//! comes from the log's [`Clock`](crate::Clock), and timeouts fire when the owner calls
//! [`GroupCoordinator::tick`]. The broker and the embedded consumer call the same functions.

mod assignor;
mod coordinator;
mod offsets;
/// The record formats of `__consumer_offsets`. Public for the fuzz targets (`fuzz/`) only: not
/// part of the crate's API.
#[doc(hidden)]
pub mod schema;

pub use assignor::{
    BuiltinAssignor, MemberSubscription, assign, assign_members, assign_members_with,
    strategy_for_protocol, validate_cooperative,
};
pub use coordinator::{
    GroupCoordinator, GroupCoordinatorConfig, GroupDescription, GroupListing, GroupState,
    JoinGroupMember, JoinGroupRequest, JoinResult, MemberDescription, MemberIdentity,
    OffsetCommitRequest, Pending, SyncGroupRequest, SyncResult,
};
pub use offsets::{
    CONSUMER_OFFSETS_TOPIC, CommittedOffset, OffsetAndMetadata, OffsetStore, OffsetStoreConfig,
    TxnOffsetRecord,
};
pub use sluice_protocol::consumer_protocol::{self, Assignment, Subscription};
