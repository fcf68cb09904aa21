//! Sluice's partitioned log: topics of partitions of segments, in Kafka's on-disk format.
//!
//! ```text
//! client::{Admin, Producer, Consumer}      (one interface: embedded, or Kafka protocol: feature kafka)
//!        |
//! log::LogManager   topics -> partitions, configs, flusher (group commit), retention, cleaner
//!        |
//! log::Partition    segments, recovery point, log start / log end / high watermark
//!        |
//! log::Segment      NNNNNNNNNNNNNNNNNNNN.log (RecordBatch v2) + .index + .timeindex
//! ```
//!
//! [`group`] is Kafka's group coordinator (classic protocol) with committed offsets kept in the
//! compacted `__consumer_offsets` topic, and the consumer assignors; sans-IO, on the log's clock.
//! The embedded consumer (`subscribe`) drives it from `poll`, one coordinator per log.
//! [`record`] is the RecordBatch v2 codec; the bytes a producer builds are the bytes on disk and
//! the bytes a fetch returns. **Not** replicated (single node), and not a wire-protocol server:
//! the broker sits on top of this crate.

pub mod client;
pub mod clock;
pub mod config;
pub mod group;
pub mod log;
pub mod node;
pub mod txn;

pub use clock::{Clock, MockClock, SharedClock, SystemClock};
pub use node::Node;
pub use sluice_protocol::{Compression, TimestampType, TopicPartition};
pub use sluice_protocol::{Error, ErrorCode, Result, report};
pub use sluice_protocol::{error, names, record, types};
