//! The changelog of a store: every write, as the record Kafka Streams would send to the
//! store's changelog topic (`<application.id>-<store>-changelog`), so a changelog written by one
//! engine (or by Kafka Streams itself) restores into the other.
//!
//! - key-value: the changelog key is the key, the value the value; a delete is a tombstone.
//! - window: the key is `[key][window start: 8 bytes BE][seqnum: 4 bytes BE]` (Kafka's
//!   `WindowKeySchema.toStoreKeyBinary`); the seqnum is 0 unless the store retains duplicates,
//!   then it counts the store's puts from 1 (wrapping within 31 bits, as Kafka's).
//! - session: the key is `[key][session end: 8 bytes BE][session start: 8 bytes BE]` (Kafka's
//!   `SessionKeySchema.toBinary`); a removed session is a tombstone.
//!
//! [`Changelogged`] wraps a store, forwards every call to it and keeps each write as a
//! [`Change`] until the runtime takes them ([`Changelogged::take_changes`]) to send them.
//! Restoring applies changelog records to the inner store directly (not through the wrapper,
//! which would log them again): [`restore_key_value`], [`restore_window`],
//! [`restore_session`], and [`restore_key_value_batch`] for a run of records at once.

use bytes::{BufMut, Bytes, BytesMut};

use super::{
    KeyValueIter, KeyValueStore, SessionIter, SessionStore, StateStore, WindowIter, WindowStore,
};
use crate::error::{Error, Result};

/// One changelog record: its key, and its value (`None`: a tombstone).
pub type Change = (Bytes, Option<Bytes>);

/// The bytes after the key in a window changelog key: start and seqnum.
pub const WINDOW_SUFFIX_LEN: usize = 12;
/// The bytes after the key in a session changelog key: end and start.
pub const SESSION_SUFFIX_LEN: usize = 16;

/// The changelog topic of `store` in the application `application_id`, as Kafka Streams names
/// it.
pub fn changelog_topic(application_id: &str, store: &str) -> String {
    format!("{application_id}-{store}-changelog")
}

/// The changelog key of `key`'s window starting at `start`: `[key][start][seqnum]`.
pub fn window_key(key: &[u8], start: i64, seqnum: u32) -> Bytes {
    let mut buf = BytesMut::with_capacity(key.len() + WINDOW_SUFFIX_LEN);
    buf.put_slice(key);
    buf.put_i64(start);
    buf.put_u32(seqnum);
    buf.freeze()
}

/// Splits a window changelog key into `(key, start, seqnum)`; `None` when it is shorter than
/// the 12 bytes of start and seqnum.
pub fn split_window_key(changelog_key: &[u8]) -> Option<(&[u8], i64, u32)> {
    let at = changelog_key.len().checked_sub(WINDOW_SUFFIX_LEN)?;
    let (key, suffix) = changelog_key.split_at(at);
    let start = i64::from_be_bytes(suffix[..8].try_into().ok()?);
    let seqnum = u32::from_be_bytes(suffix[8..].try_into().ok()?);
    Some((key, start, seqnum))
}

/// The changelog key of `key`'s session `[start, end]`: `[key][end][start]`.
pub fn session_key(key: &[u8], start: i64, end: i64) -> Bytes {
    let mut buf = BytesMut::with_capacity(key.len() + SESSION_SUFFIX_LEN);
    buf.put_slice(key);
    buf.put_i64(end);
    buf.put_i64(start);
    buf.freeze()
}

/// Splits a session changelog key into `(key, start, end)`; `None` when it is shorter than
/// the 16 bytes of end and start.
pub fn split_session_key(changelog_key: &[u8]) -> Option<(&[u8], i64, i64)> {
    let at = changelog_key.len().checked_sub(SESSION_SUFFIX_LEN)?;
    let (key, suffix) = changelog_key.split_at(at);
    let end = i64::from_be_bytes(suffix[..8].try_into().ok()?);
    let start = i64::from_be_bytes(suffix[8..].try_into().ok()?);
    Some((key, start, end))
}

/// A store whose writes are kept, as changelog records, for the runtime to send.
///
/// It implements the trait of the store it wraps: `Changelogged<MemoryKeyValueStore>` is a
/// [`KeyValueStore`], `Changelogged<Box<dyn WindowStore>>` a [`WindowStore`]. A window store
/// that retains duplicates must be wrapped with [`Changelogged::retaining_duplicates`], so its
/// changelog keys carry increasing seqnums.
#[derive(Debug)]
pub struct Changelogged<S> {
    inner: S,
    changes: Vec<Change>,
    /// The last seqnum logged, when duplicates are retained.
    seqnum: Option<u32>,
}

impl<S> Changelogged<S> {
    /// Logs the writes of `inner` (a key-value or session store, or a window store that does
    /// not retain duplicates).
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            changes: Vec::new(),
            seqnum: None,
        }
    }

    /// Logs the writes of `inner`, a window store that retains duplicates: each put's
    /// changelog key has the next seqnum (from 1).
    pub fn retaining_duplicates(inner: S) -> Self {
        Self {
            inner,
            changes: Vec::new(),
            seqnum: Some(0),
        }
    }

    /// The writes since the last call, in order, for the changelog topic.
    pub fn take_changes(&mut self) -> Vec<Change> {
        std::mem::take(&mut self.changes)
    }

    /// The writes not yet taken.
    pub fn pending_changes(&self) -> &[Change] {
        &self.changes
    }

    /// The wrapped store.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// The wrapped store, to restore into (its writes are not logged).
    pub fn inner_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The wrapped store, unwrapped.
    pub fn into_inner(self) -> S {
        self.inner
    }

    fn next_seqnum(&mut self) -> u32 {
        match &mut self.seqnum {
            Some(seqnum) => {
                // Kafka: (seqnum + 1) & 0x7FFFFFFF.
                *seqnum = seqnum.wrapping_add(1) & 0x7fff_ffff;
                *seqnum
            }
            None => 0,
        }
    }
}

impl<S: StateStore> StateStore for Changelogged<S> {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn persistent(&self) -> bool {
        self.inner.persistent()
    }
    fn flush(&mut self) -> Result<()> {
        self.inner.flush()
    }
}

impl<S: KeyValueStore> KeyValueStore for Changelogged<S> {
    fn get(&self, key: &[u8]) -> Result<Option<Bytes>> {
        self.inner.get(key)
    }

    fn put(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        self.inner.put(key, value)?;
        self.changes.push((
            Bytes::copy_from_slice(key),
            Some(Bytes::copy_from_slice(value)),
        ));
        Ok(())
    }

    fn delete(&mut self, key: &[u8]) -> Result<Option<Bytes>> {
        let old = self.inner.delete(key)?;
        // As Kafka: a tombstone whether or not the key was there.
        self.changes.push((Bytes::copy_from_slice(key), None));
        Ok(old)
    }

    fn range(&self, from: &[u8], to: &[u8]) -> Result<KeyValueIter<'_>> {
        self.inner.range(from, to)
    }

    fn prefix_scan(&self, prefix: &[u8]) -> Result<KeyValueIter<'_>> {
        self.inner.prefix_scan(prefix)
    }

    fn all(&self) -> Result<KeyValueIter<'_>> {
        self.inner.all()
    }

    fn approximate_num_entries(&self) -> Result<u64> {
        self.inner.approximate_num_entries()
    }

    fn write_batch(&mut self, entries: &[(Bytes, Option<Bytes>)]) -> Result<()> {
        self.inner.write_batch(entries)?;
        self.changes.extend_from_slice(entries);
        Ok(())
    }
}

impl<S: WindowStore> WindowStore for Changelogged<S> {
    fn put(&mut self, key: &[u8], window_start: i64, value: Option<&[u8]>) -> Result<()> {
        if value.is_none() && self.seqnum.is_some() {
            // A store retaining duplicates ignores it: nothing to log.
            return self.inner.put(key, window_start, value);
        }
        self.inner.put(key, window_start, value)?;
        let seqnum = self.next_seqnum();
        self.changes.push((
            window_key(key, window_start, seqnum),
            value.map(Bytes::copy_from_slice),
        ));
        Ok(())
    }

    fn fetch(&self, key: &[u8], window_start: i64) -> Result<Option<Bytes>> {
        self.inner.fetch(key, window_start)
    }

    fn fetch_range(&self, key: &[u8], time_from: i64, time_to: i64) -> Result<WindowIter<'_>> {
        self.inner.fetch_range(key, time_from, time_to)
    }

    fn fetch_keys(
        &self,
        key_from: &[u8],
        key_to: &[u8],
        time_from: i64,
        time_to: i64,
    ) -> Result<WindowIter<'_>> {
        self.inner.fetch_keys(key_from, key_to, time_from, time_to)
    }

    fn fetch_all(&self, time_from: i64, time_to: i64) -> Result<WindowIter<'_>> {
        self.inner.fetch_all(time_from, time_to)
    }

    fn all(&self) -> Result<WindowIter<'_>> {
        self.inner.all()
    }

    fn observe_stream_time(&mut self, stream_time: i64) -> Result<()> {
        self.inner.observe_stream_time(stream_time)
    }

    fn retention_ms(&self) -> i64 {
        self.inner.retention_ms()
    }
}

impl<S: SessionStore> SessionStore for Changelogged<S> {
    fn put(&mut self, key: &[u8], start: i64, end: i64, value: &[u8]) -> Result<()> {
        self.inner.put(key, start, end, value)?;
        self.changes.push((
            session_key(key, start, end),
            Some(Bytes::copy_from_slice(value)),
        ));
        Ok(())
    }

    fn remove(&mut self, key: &[u8], start: i64, end: i64) -> Result<()> {
        self.inner.remove(key, start, end)?;
        self.changes.push((session_key(key, start, end), None));
        Ok(())
    }

    fn fetch_session(&self, key: &[u8], start: i64, end: i64) -> Result<Option<Bytes>> {
        self.inner.fetch_session(key, start, end)
    }

    fn find_sessions(
        &self,
        key: &[u8],
        earliest_session_end: i64,
        latest_session_start: i64,
    ) -> Result<SessionIter<'_>> {
        self.inner
            .find_sessions(key, earliest_session_end, latest_session_start)
    }

    fn fetch(&self, key: &[u8]) -> Result<SessionIter<'_>> {
        self.inner.fetch(key)
    }

    fn all(&self) -> Result<SessionIter<'_>> {
        self.inner.all()
    }

    fn observe_stream_time(&mut self, stream_time: i64) -> Result<()> {
        self.inner.observe_stream_time(stream_time)
    }

    fn retention_ms(&self) -> i64 {
        self.inner.retention_ms()
    }
}

/// Applies one changelog record of a key-value store: a put, or a delete for a tombstone.
pub fn restore_key_value(
    store: &mut dyn KeyValueStore,
    changelog_key: &[u8],
    value: Option<&[u8]>,
) -> Result<()> {
    match value {
        Some(value) => store.put(changelog_key, value),
        None => store.delete(changelog_key).map(drop),
    }
}

/// Applies a run of changelog records of a key-value store at once (RocksDB: one write
/// batch), in order.
pub fn restore_key_value_batch(
    store: &mut dyn KeyValueStore,
    records: &[(Bytes, Option<Bytes>)],
) -> Result<()> {
    store.write_batch(records)
}

/// Applies one changelog record of a window store. A window already expired (behind the
/// stream time the store has seen) is dropped, as by a put; the seqnum of a store retaining
/// duplicates is the store's own, so the records' order is kept.
pub fn restore_window(
    store: &mut dyn WindowStore,
    changelog_key: &[u8],
    value: Option<&[u8]>,
) -> Result<()> {
    let (key, start, _) = split_window_key(changelog_key).ok_or_else(|| {
        Error::store(
            store.name(),
            format!(
                "a changelog key of {} bytes, shorter than a window key's {WINDOW_SUFFIX_LEN} \
                 bytes of start and seqnum",
                changelog_key.len()
            ),
        )
    })?;
    store.put(key, start, value)
}

/// Applies one changelog record of a session store: a put, or a removal for a tombstone.
pub fn restore_session(
    store: &mut dyn SessionStore,
    changelog_key: &[u8],
    value: Option<&[u8]>,
) -> Result<()> {
    let (key, start, end) = split_session_key(changelog_key).ok_or_else(|| {
        Error::store(
            store.name(),
            format!(
                "a changelog key of {} bytes, shorter than a session key's {SESSION_SUFFIX_LEN} \
                 bytes of end and start",
                changelog_key.len()
            ),
        )
    })?;
    match value {
        Some(value) => store.put(key, start, end, value),
        None => store.remove(key, start, end),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_keys_are_kafkas() {
        let key = window_key(b"k", 0x0102, 7);
        assert_eq!(&key[..], b"k\0\0\0\0\0\0\x01\x02\0\0\0\x07");
        assert_eq!(split_window_key(&key), Some((&b"k"[..], 0x0102, 7)));
        let negative = window_key(b"", -1, 0);
        assert_eq!(split_window_key(&negative), Some((&b""[..], -1, 0)));
        assert_eq!(split_window_key(&[0; 11]), None);
    }

    #[test]
    fn session_keys_are_kafkas() {
        let key = session_key(b"k", 1, 2);
        assert_eq!(
            &key[..],
            b"k\0\0\0\0\0\0\0\x02\0\0\0\0\0\0\0\x01",
            "end first, then start"
        );
        assert_eq!(split_session_key(&key), Some((&b"k"[..], 1, 2)));
        assert_eq!(split_session_key(&[0; 15]), None);
    }

    #[test]
    fn topics_are_named_as_kafka_streams() {
        assert_eq!(changelog_topic("app", "counts"), "app-counts-changelog");
    }
}
