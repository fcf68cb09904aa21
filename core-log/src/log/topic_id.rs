//! Topic ids (Kafka's KIP-516): a random 128-bit id per topic, kept in `partition.metadata` in
//! each partition directory in Kafka's own format, so the id outlives restarts and Kafka's tools
//! read it:
//!
//! ```text
//! version: 0
//! topic_id: <the id in URL-safe base64, no padding>
//! ```

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// The file in each partition directory that holds the topic's id.
pub(crate) const PARTITION_METADATA: &str = "partition.metadata";

/// A topic's id: 16 bytes, shown as Kafka shows them (22 characters of URL-safe base64).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicId([u8; 16]);

impl TopicId {
    /// Kafka's ZERO_UUID: "no id" on the wire (never a topic's id).
    pub const ZERO: TopicId = TopicId([0; 16]);

    /// Kafka's METADATA_TOPIC_ID (`AAAAAAAAAAAAAAAAAAAAAQ`), reserved for the KRaft log.
    const RESERVED: TopicId = TopicId([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);

    /// A new random (version 4) id, as Kafka's `Uuid.randomUuid`: never the zero or the
    /// reserved id, and never one whose text starts with '-' (it would read as a command-line
    /// option).
    pub fn random() -> Result<TopicId> {
        loop {
            let mut bytes = [0u8; 16];
            getrandom::fill(&mut bytes).map_err(|e| Error::Io {
                path: PathBuf::from("getrandom"),
                source: std::io::Error::other(format!("no randomness for a topic id: {e}")),
            })?;
            bytes[6] = (bytes[6] & 0x0f) | 0x40;
            bytes[8] = (bytes[8] & 0x3f) | 0x80;
            let id = TopicId(bytes);
            if id != Self::ZERO && id != Self::RESERVED && !id.to_string().starts_with('-') {
                return Ok(id);
            }
        }
    }

    /// The id of these 16 bytes (big-endian, as on the wire).
    pub const fn from_bytes(bytes: [u8; 16]) -> TopicId {
        TopicId(bytes)
    }

    /// The 16 bytes, as on the wire.
    pub const fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// Parses Kafka's text form (22 characters of URL-safe base64 without padding).
    pub fn parse(text: &str) -> Option<TopicId> {
        let text = text.as_bytes();
        if text.len() != 22 {
            return None;
        }
        let mut bits: u32 = 0;
        let mut nbits = 0;
        let mut out = [0u8; 16];
        let mut n = 0;
        for &c in text {
            bits = (bits << 6) | u32::from(sextet(c)?);
            nbits += 6;
            if nbits >= 8 {
                nbits -= 8;
                *out.get_mut(n)? = (bits >> nbits) as u8;
                n += 1;
                bits &= (1 << nbits) - 1;
            }
        }
        // 22 characters carry 132 bits: the last 4 must be zero, as an encoder leaves them.
        (n == 16 && bits == 0).then_some(TopicId(out))
    }
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn sextet(c: u8) -> Option<u8> {
    Some(match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'-' => 62,
        b'_' => 63,
        _ => return None,
    })
}

impl std::fmt::Display for TopicId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut bits: u32 = 0;
        let mut nbits = 0;
        let mut out = [0u8; 22];
        let mut n = 0;
        for &b in &self.0 {
            bits = (bits << 8) | u32::from(b);
            nbits += 8;
            while nbits >= 6 {
                nbits -= 6;
                out[n] = ALPHABET[((bits >> nbits) & 0x3f) as usize];
                n += 1;
            }
            bits &= (1 << nbits) - 1;
        }
        // 128 bits leave 2 over: the last character, padded with zero bits.
        out[n] = ALPHABET[((bits << (6 - nbits)) & 0x3f) as usize];
        f.write_str(std::str::from_utf8(&out).map_err(|_| std::fmt::Error)?)
    }
}

impl std::fmt::Debug for TopicId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TopicId({self})")
    }
}

/// The topic id in `dir`'s `partition.metadata`, or None if the directory has none (a
/// partition written before topic ids). A file that is there but not Kafka's format is an
/// error naming the file.
pub(crate) fn read(dir: &Path) -> Result<Option<TopicId>> {
    let path = dir.join(PARTITION_METADATA);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(&path, e)),
    };
    let bad = |what: String| Error::Io {
        path: path.clone(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, what),
    };
    let mut lines = text.lines();
    match lines.next().map(str::trim) {
        Some("version: 0") => {}
        other => {
            return Err(bad(format!(
                "expected \"version: 0\" on the first line, found {other:?}"
            )));
        }
    }
    let id_text = lines
        .next()
        .and_then(|l| l.trim().strip_prefix("topic_id: "))
        .ok_or_else(|| bad("expected \"topic_id: <id>\" on the second line".into()))?;
    let id = TopicId::parse(id_text.trim()).ok_or_else(|| {
        bad(format!(
            "{id_text:?} is not a topic id (22 characters of base64)"
        ))
    })?;
    if id == TopicId::ZERO {
        return Err(bad("the zero topic id is not a topic's id".into()));
    }
    Ok(Some(id))
}

/// Writes `id` to `dir`'s `partition.metadata` (through a temporary file, fsynced, renamed),
/// as Kafka's `PartitionMetadataFile` does.
pub(crate) fn write(dir: &Path, id: TopicId) -> Result<()> {
    let path = dir.join(PARTITION_METADATA);
    let tmp = dir.join(format!("{PARTITION_METADATA}.tmp"));
    let mut f = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
    f.write_all(format!("version: 0\ntopic_id: {id}\n").as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))?;
    super::checkpoint::sync_dir(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_form_is_kafkas() {
        // Kafka's own examples: the zero uuid and METADATA_TOPIC_ID.
        assert_eq!(TopicId::ZERO.to_string(), "AAAAAAAAAAAAAAAAAAAAAA");
        assert_eq!(TopicId::RESERVED.to_string(), "AAAAAAAAAAAAAAAAAAAAAQ");
        let id = TopicId::from_bytes([
            0xfb, 0x7f, 0x3e, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0xff, 0x00, 0x10,
            0x83, 0x10,
        ]);
        assert_eq!(id.to_string(), "-38-ASNFZ4mrze__ABCDEA");
        assert_eq!(TopicId::parse(&id.to_string()), Some(id));
        for bad in [
            "",
            "AAAA",
            "AAAAAAAAAAAAAAAAAAAAA=",
            "AAAAAAAAAAAAAAAAAAAAAB",
        ] {
            assert_eq!(TopicId::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn random_ids_differ_and_round_trip() {
        let a = TopicId::random().expect("random");
        let b = TopicId::random().expect("random");
        assert_ne!(a, b);
        assert_eq!(a.as_bytes()[6] >> 4, 4, "version 4");
        assert!(!a.to_string().starts_with('-'));
        assert_eq!(TopicId::parse(&a.to_string()), Some(a));
    }

    #[test]
    fn the_file_is_kafkas_format() {
        let dir = tempfile::tempdir().expect("dir");
        assert_eq!(read(dir.path()).expect("read"), None);
        let id = TopicId::random().expect("random");
        write(dir.path(), id).expect("write");
        let text = std::fs::read_to_string(dir.path().join(PARTITION_METADATA)).expect("file");
        assert_eq!(text, format!("version: 0\ntopic_id: {id}\n"));
        assert_eq!(read(dir.path()).expect("read"), Some(id));
        std::fs::write(dir.path().join(PARTITION_METADATA), "version: 1\n").expect("write");
        let e = read(dir.path()).expect_err("a version Sluice does not know");
        assert!(
            crate::report(&e).to_string().contains("version: 0"),
            "{}",
            crate::report(&e)
        );
    }
}
