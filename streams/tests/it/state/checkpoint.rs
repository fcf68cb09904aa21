//! The checkpoint file of changelog offsets.

use anyhow::Result;
use sluice_client::TopicPartition;
use sluice_streams::Error;
use sluice_streams::state::checkpoint::{Checkpoint, Offsets};

fn offsets(entries: &[(&str, i32, i64)]) -> Offsets {
    entries
        .iter()
        .map(|&(t, p, o)| (TopicPartition::new(t, p), o))
        .collect()
}

#[test]
fn written_offsets_read_back_in_kafkas_format() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let checkpoint = Checkpoint::in_dir(dir.path());
    assert_eq!(checkpoint.path(), dir.path().join(".checkpoint"));
    assert_eq!(checkpoint.read()?, Offsets::new(), "no file: no offsets");
    let written = offsets(&[
        ("app-counts-changelog", 3, 1042),
        ("app-totals-changelog", 0, 77),
    ]);
    checkpoint.write(&written)?;
    assert_eq!(
        std::fs::read_to_string(checkpoint.path())?,
        "0\n2\napp-counts-changelog 3 1042\napp-totals-changelog 0 77\n"
    );
    assert_eq!(checkpoint.read()?, written);
    assert!(
        !dir.path().join(".checkpoint.tmp").exists(),
        "the temporary file was renamed"
    );
    let replaced = offsets(&[("app-counts-changelog", 3, 2000)]);
    checkpoint.write(&replaced)?;
    assert_eq!(
        checkpoint.read()?,
        replaced,
        "a write replaces the whole file"
    );
    checkpoint.write(&Offsets::new())?;
    assert_eq!(
        checkpoint.read()?,
        replaced,
        "as Kafka, nothing to write writes nothing"
    );
    checkpoint.delete()?;
    checkpoint.delete()?;
    assert_eq!(checkpoint.read()?, Offsets::new());
    Ok(())
}

#[test]
fn kafkas_files_are_read() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let checkpoint = Checkpoint::in_dir(dir.path());
    // Kafka's reader splits on any whitespace.
    std::fs::write(checkpoint.path(), "0\n2\nt  1\t5\nu 0 -1\n")?;
    assert_eq!(checkpoint.read()?, offsets(&[("t", 1, 5), ("u", 0, -1)]));
    Ok(())
}

fn refusal(content: &str) -> Result<String> {
    let dir = tempfile::tempdir()?;
    let checkpoint = Checkpoint::in_dir(dir.path());
    std::fs::write(checkpoint.path(), content)?;
    match checkpoint.read() {
        Ok(read) => anyhow::bail!("{content:?} read as {read:?}"),
        Err(e @ Error::StateDir { .. }) => {
            let message = e.to_string();
            let named = format!("state directory {}: ", checkpoint.path().display());
            anyhow::ensure!(
                message.starts_with(&named),
                "{message} does not name the file"
            );
            Ok(message[named.len()..].to_owned())
        }
        Err(e) => anyhow::bail!("{content:?} refused with {e:?}"),
    }
}

#[test]
fn corrupt_and_unknown_files_are_errors_naming_them() -> Result<()> {
    assert_eq!(refusal("")?, "the file ends before its version");
    assert_eq!(
        refusal("1\n1\nt 0 5\n")?,
        "unknown checkpoint version 1 (this reads version 0)"
    );
    assert_eq!(refusal("x\n")?, "the version \"x\" is not a number");
    assert_eq!(refusal("0\n")?, "the file ends before its entry count");
    assert_eq!(refusal("0\n2\nt 0 5\n")?, "expected 2 entries but found 1");
    assert_eq!(
        refusal("0\n1\nt 0\n")?,
        "malformed line \"t 0\": not `topic partition offset`"
    );
    assert_eq!(
        refusal("0\n1\nt 0 5 6\n")?,
        "malformed line \"t 0 5 6\": not `topic partition offset`"
    );
    assert_eq!(
        refusal("0\n1\nt zero 5\n")?,
        "malformed line \"t zero 5\": partition or offset not a number"
    );
    Ok(())
}

#[test]
fn a_topic_that_cannot_be_written_is_refused() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let checkpoint = Checkpoint::in_dir(dir.path());
    let err = checkpoint
        .write(&offsets(&[("a b", 0, 1)]))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("cannot checkpoint the topic \"a b\""), "{err}");
    assert!(!checkpoint.path().exists());
    Ok(())
}
