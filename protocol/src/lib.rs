//! Kafka's formats and vocabulary, as Sluice's log, its clients and its broker all speak them.
//!
//! ```text
//! sluice-broker   sluice-kafka (Kafka-protocol client)   sluice-log (engine + embedded client)
//!        \                      |                          /
//!         +------------- sluice-client (the traits) ------+
//!                               |
//!                        sluice-protocol (this crate)
//! ```
//!
//! - [`record`]: RecordBatch v2, byte for byte (the bytes a producer builds are the bytes on disk
//!   and the bytes a fetch returns);
//! - [`consumer_protocol`]: the consumer's JoinGroup subscription and SyncGroup assignment;
//! - [`codec`]: Kafka's primitive types, for the records of the internal topics;
//! - [`error`]: the one error type of the log and its clients, and [`ErrorCode`], Kafka's wire
//!   error codes, with one mapping each way;
//! - [`names`]: Kafka's rules for topic names; [`config`]: parsing shared by every config.
//!
//! **Not** a wire-protocol codec for requests and responses (the `kafka-protocol` crate is), and
//! no I/O at all.
//!
//! ```
//! use sluice_protocol::record::{BatchBuilder, decode_records};
//! use sluice_protocol::Compression;
//!
//! let mut b = BatchBuilder::new(Compression::None);
//! b.append(1_000, Some(b"k"), Some(b"v"), &[]);
//! let batch = bytes::Bytes::from(b.build());
//! let records: Vec<_> = decode_records(&batch, 1 << 20)?.collect::<Result<_, _>>()?;
//! assert_eq!(records[0].value.as_deref(), Some(&b"v"[..]));
//! # Ok::<(), sluice_protocol::Error>(())
//! ```

pub mod codec;
pub mod config;
pub mod consumer_protocol;
pub mod error;
mod error_code;
pub mod names;
pub mod record;
pub mod types;

pub use error::{Error, ErrorCode, Result, report};
pub use types::{Compression, TimestampType, TopicPartition};
