//! Offset checkpoint files in Kafka's text format (`recovery-point-offset-checkpoint`,
//! `log-start-offset-checkpoint`): a version line `0`, a count line, then `topic partition offset`.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use crate::{Error, Result, TopicPartition};

/// Reads a checkpoint; a missing file is empty, a malformed one is logged and treated as empty
/// (which only means more recovery work).
pub(crate) fn read(path: &Path) -> HashMap<TopicPartition, i64> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return HashMap::new(),
        Err(e) => {
            tracing::warn!(file = %path.display(), error = %e, "unreadable checkpoint, ignoring it");
            return HashMap::new();
        }
    };
    match parse(&text) {
        Some(m) => m,
        None => {
            tracing::warn!(file = %path.display(), "malformed checkpoint, ignoring it");
            HashMap::new()
        }
    }
}

fn parse(text: &str) -> Option<HashMap<TopicPartition, i64>> {
    let mut lines = text.lines();
    if lines.next()?.trim() != "0" {
        return None;
    }
    let count: usize = lines.next()?.trim().parse().ok()?;
    let mut out = HashMap::with_capacity(count);
    for line in lines.take(count) {
        let mut f = line.split_whitespace();
        let (topic, partition, offset) =
            (f.next()?, f.next()?.parse().ok()?, f.next()?.parse().ok()?);
        out.insert(TopicPartition::new(topic, partition), offset);
    }
    (out.len() == count).then_some(out)
}

/// Writes a checkpoint atomically: temporary file, fsync, rename, fsync of the directory.
pub(crate) fn write(path: &Path, entries: &[(TopicPartition, i64)]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let mut text = format!("0\n{}\n", entries.len());
    for (tp, off) in entries {
        text.push_str(&format!("{} {} {off}\n", tp.topic, tp.partition));
    }
    let mut f = std::fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
    f.write_all(text.as_bytes())
        .map_err(|e| Error::io(&tmp, e))?;
    f.sync_all().map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))?;
    if let Some(dir) = path.parent() {
        sync_dir(dir)?;
    }
    Ok(())
}

/// fsyncs a directory, so renames and new files in it survive a crash.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrips_and_ignores_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("recovery-point-offset-checkpoint");
        let entries = vec![
            (TopicPartition::new("a", 0), 5),
            (TopicPartition::new("b-c", 3), 77),
        ];
        write(&p, &entries).unwrap();
        let m = read(&p);
        assert_eq!(m.len(), 2);
        assert_eq!(m[&TopicPartition::new("b-c", 3)], 77);
        std::fs::write(&p, "0\n3\na 0 1\n").unwrap();
        assert!(read(&p).is_empty());
        assert!(read(&dir.path().join("missing")).is_empty());
    }
}
