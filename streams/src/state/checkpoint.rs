//! The checkpoint file of a task: the changelog offset each of its stores holds, so a restart
//! restores from there instead of from the beginning. Kafka Streams' `.checkpoint` format
//! (`OffsetCheckpoint`), UTF-8 text:
//!
//! ```text
//! 0
//! 2
//! app-counts-changelog 3 1042
//! app-totals-changelog 3 77
//! ```
//!
//! the version (0), the number of entries, then one `topic partition offset` line each.
//! Written atomically: a temporary file beside it, synced, renamed over it, then the directory
//! synced. A file that cannot be parsed, or has another version, is an error naming the file:
//! the caller then restores from the beginning (and deletes it).

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use sluice_client::TopicPartition;

use crate::error::{Error, Result};

/// The checkpoint file's name in a task directory, as Kafka Streams'.
pub const CHECKPOINT_FILE_NAME: &str = ".checkpoint";

/// The format version written and read.
pub const VERSION: u32 = 0;

/// Changelog offsets by partition.
pub type Offsets = BTreeMap<TopicPartition, i64>;

/// A checkpoint file at a path.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    path: PathBuf,
}

fn state_dir(path: &Path) -> impl FnOnce(io::Error) -> Error + '_ {
    move |source| Error::StateDir {
        path: path.to_owned(),
        source,
    }
}

fn corrupt(path: &Path, message: String) -> Error {
    Error::StateDir {
        path: path.to_owned(),
        source: io::Error::new(io::ErrorKind::InvalidData, message),
    }
}

impl Checkpoint {
    /// The checkpoint file at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// The checkpoint file of the task directory `dir` (`<dir>/.checkpoint`).
    pub fn in_dir(dir: &Path) -> Self {
        Self::new(dir.join(CHECKPOINT_FILE_NAME))
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Replaces the file with `offsets`, atomically. As Kafka, an empty map writes nothing
    /// (the file, if any, stays as it was). A topic with whitespace in its name cannot be
    /// written (Kafka's topic names have none).
    pub fn write(&self, offsets: &Offsets) -> Result<()> {
        if offsets.is_empty() {
            return Ok(());
        }
        let mut text = String::with_capacity(16 + offsets.len() * 48);
        text.push_str(&format!("{VERSION}\n{}\n", offsets.len()));
        for (tp, offset) in offsets {
            if tp.topic.is_empty() || tp.topic.contains(char::is_whitespace) {
                return Err(corrupt(
                    &self.path,
                    format!(
                        "cannot checkpoint the topic {:?}: empty or with whitespace",
                        tp.topic
                    ),
                ));
            }
            text.push_str(&format!("{} {} {offset}\n", tp.topic, tp.partition));
        }
        let mut temp = self.path.clone().into_os_string();
        temp.push(".tmp");
        let temp = PathBuf::from(temp);
        {
            let mut file = File::create(&temp).map_err(state_dir(&temp))?;
            file.write_all(text.as_bytes()).map_err(state_dir(&temp))?;
            file.sync_all().map_err(state_dir(&temp))?;
        }
        fs::rename(&temp, &self.path).map_err(state_dir(&self.path))?;
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(state_dir(dir))?;
        }
        Ok(())
    }

    /// The offsets in the file; none when there is no file. A file that is not a checkpoint
    /// of version 0 (a malformed line, a count that does not match, another version) is an
    /// error naming it.
    pub fn read(&self) -> Result<Offsets> {
        let text = match fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Offsets::new()),
            Err(e) => return Err(state_dir(&self.path)(e)),
        };
        let mut lines = text.lines();
        let mut header = |what: &str| -> Result<u64> {
            let line = lines
                .next()
                .ok_or_else(|| corrupt(&self.path, format!("the file ends before its {what}")))?;
            line.trim()
                .parse::<u64>()
                .map_err(|_| corrupt(&self.path, format!("the {what} {line:?} is not a number")))
        };
        let version = header("version")?;
        if version != u64::from(VERSION) {
            return Err(corrupt(
                &self.path,
                format!("unknown checkpoint version {version} (this reads version {VERSION})"),
            ));
        }
        let expected = header("entry count")?;
        let mut offsets = Offsets::new();
        for line in lines {
            let mut fields = line.split_whitespace();
            let (Some(topic), Some(partition), Some(offset), None) =
                (fields.next(), fields.next(), fields.next(), fields.next())
            else {
                return Err(corrupt(
                    &self.path,
                    format!("malformed line {line:?}: not `topic partition offset`"),
                ));
            };
            let (Ok(partition), Ok(offset)) = (partition.parse::<i32>(), offset.parse::<i64>())
            else {
                return Err(corrupt(
                    &self.path,
                    format!("malformed line {line:?}: partition or offset not a number"),
                ));
            };
            offsets.insert(TopicPartition::new(topic, partition), offset);
        }
        if offsets.len() as u64 != expected {
            return Err(corrupt(
                &self.path,
                format!("expected {expected} entries but found {}", offsets.len()),
            ));
        }
        Ok(offsets)
    }

    /// Removes the file, if there is one.
    pub fn delete(&self) -> Result<()> {
        match fs::remove_file(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(state_dir(&self.path)(e)),
        }
    }
}
