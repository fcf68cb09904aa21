//! Where source offsets are kept: [`OffsetStore`], a file for standalone workers
//! (`offset.storage.file.filename`), in memory without one, the offset topic for distributed
//! workers (`offset.storage.topic`, [`crate::topic_log::TopicOffsetStore`]).
//!
//! An offset is stored under its connector and source partition, as Kafka's offset store keys
//! them (`["connector", {partition}]`); a `None` offset removes the partition (a tombstone).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use parking_lot::Mutex;
use serde_json::{Value as Json, json};

use crate::connector::BoxFuture;
use crate::data::SourceMap;
use crate::error::{Error, Result};

/// Source offsets of connectors.
pub trait OffsetStore: Send + Sync + std::fmt::Debug {
    /// Every (source partition, offset) of a connector: the latest stored (a topic-backed
    /// store reads its topic to the end first, so offsets another worker stored are seen).
    fn get<'a>(&'a self, connector: &'a str) -> BoxFuture<'a, Result<Vec<(SourceMap, SourceMap)>>>;
    /// Stores offsets of a connector (a `None` offset removes its partition), durably before
    /// returning.
    fn put<'a>(
        &'a self,
        connector: &'a str,
        offsets: Vec<(SourceMap, Option<SourceMap>)>,
    ) -> BoxFuture<'a, Result<()>>;
}

pub(crate) type Offsets = BTreeMap<String, Vec<(SourceMap, SourceMap)>>;

pub(crate) fn apply(
    all: &mut Offsets,
    connector: &str,
    offsets: Vec<(SourceMap, Option<SourceMap>)>,
) {
    let entry = all.entry(connector.to_owned()).or_default();
    for (partition, offset) in offsets {
        let at = entry.iter().position(|(p, _)| *p == partition);
        match (at, offset) {
            (Some(i), Some(o)) => entry[i].1 = o,
            (None, Some(o)) => entry.push((partition, o)),
            (Some(i), None) => {
                entry.remove(i);
            }
            (None, None) => {}
        }
    }
    if entry.is_empty() {
        all.remove(connector);
    }
}

/// Offsets in memory only (lost with the worker).
#[derive(Debug, Default)]
pub struct MemoryOffsetStore {
    offsets: Mutex<Offsets>,
}

impl OffsetStore for MemoryOffsetStore {
    fn get<'a>(&'a self, connector: &'a str) -> BoxFuture<'a, Result<Vec<(SourceMap, SourceMap)>>> {
        let got = self
            .offsets
            .lock()
            .get(connector)
            .cloned()
            .unwrap_or_default();
        Box::pin(std::future::ready(Ok(got)))
    }

    fn put<'a>(
        &'a self,
        connector: &'a str,
        offsets: Vec<(SourceMap, Option<SourceMap>)>,
    ) -> BoxFuture<'a, Result<()>> {
        apply(&mut self.offsets.lock(), connector, offsets);
        Box::pin(std::future::ready(Ok(())))
    }
}

/// Offsets in a file: JSON lines `{"key": ["connector", {partition}], "value": {offset}}`,
/// rewritten whole (to a temporary file, fsynced, renamed over) at each `put`.
#[derive(Debug)]
pub struct FileOffsetStore {
    path: PathBuf,
    offsets: Mutex<Offsets>,
}

impl FileOffsetStore {
    /// Opens (reads) the file; a missing file is empty. A line that does not parse is an
    /// error naming the file and line.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_owned();
        let mut offsets = Offsets::new();
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                for (i, line) in text.lines().enumerate() {
                    if line.trim().is_empty() {
                        continue;
                    }
                    let bad = |m: &str| {
                        Error::config(
                            "worker",
                            "offset.storage.file.filename",
                            format!("{} line {}: {m}", path.display(), i + 1),
                        )
                    };
                    let j: Json = serde_json::from_str(line).map_err(|e| bad(&e.to_string()))?;
                    let (Some(name), Some(Json::Object(partition)), Json::Object(offset)) =
                        (j["key"][0].as_str(), j["key"].get(1), &j["value"])
                    else {
                        return Err(bad("not an offset entry"));
                    };
                    apply(
                        &mut offsets,
                        name,
                        vec![(partition.clone(), Some(offset.clone()))],
                    );
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(&path, e)),
        }
        Ok(FileOffsetStore {
            path,
            offsets: Mutex::new(offsets),
        })
    }

    fn write(&self, all: &Offsets) -> Result<()> {
        let mut text = String::new();
        for (name, entries) in all {
            for (p, o) in entries {
                text.push_str(&json!({"key": [name, p], "value": o}).to_string());
                text.push('\n');
            }
        }
        let tmp = self.path.with_extension("tmp");
        let write = || -> std::io::Result<()> {
            use std::io::Write as _;
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(text.as_bytes())?;
            f.sync_all()?;
            std::fs::rename(&tmp, &self.path)
        };
        write().map_err(|e| Error::io(&self.path, e))
    }
}

impl OffsetStore for FileOffsetStore {
    fn get<'a>(&'a self, connector: &'a str) -> BoxFuture<'a, Result<Vec<(SourceMap, SourceMap)>>> {
        let got = self
            .offsets
            .lock()
            .get(connector)
            .cloned()
            .unwrap_or_default();
        Box::pin(std::future::ready(Ok(got)))
    }

    fn put<'a>(
        &'a self,
        connector: &'a str,
        offsets: Vec<(SourceMap, Option<SourceMap>)>,
    ) -> BoxFuture<'a, Result<()>> {
        let mut all = self.offsets.lock();
        let mut next = all.clone();
        apply(&mut next, connector, offsets);
        let written = self.write(&next);
        if written.is_ok() {
            *all = next;
        }
        Box::pin(std::future::ready(written))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(k: &str, v: Json) -> SourceMap {
        [(k.to_owned(), v)].into_iter().collect()
    }

    #[tokio::test]
    async fn the_file_keeps_offsets_across_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("connect.offsets");
        let s = FileOffsetStore::open(&path).unwrap();
        assert!(s.get("a").await.unwrap().is_empty());
        let p = map("filename", json!("x.txt"));
        s.put("a", vec![(p.clone(), Some(map("position", json!(5))))])
            .await
            .unwrap();
        s.put("a", vec![(p.clone(), Some(map("position", json!(9))))])
            .await
            .unwrap();
        s.put("b", vec![(p.clone(), Some(map("position", json!(1))))])
            .await
            .unwrap();
        let again = FileOffsetStore::open(&path).unwrap();
        assert_eq!(
            again.get("a").await.unwrap(),
            [(p.clone(), map("position", json!(9)))]
        );
        again.put("b", vec![(p.clone(), None)]).await.unwrap();
        assert!(
            FileOffsetStore::open(&path)
                .unwrap()
                .get("b")
                .await
                .unwrap()
                .is_empty()
        );
        std::fs::write(&path, "{\"key\": 1}\n").unwrap();
        let e = FileOffsetStore::open(&path).unwrap_err().to_string();
        assert!(e.contains("line 1: not an offset entry"), "{e}");
    }
}
