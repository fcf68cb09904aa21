//! In-memory engines of the three store kinds, on `BTreeMap`s (Kafka Streams'
//! `InMemoryKeyValueStore`, `InMemoryWindowStore`, `InMemorySessionStore`).
//!
//! Their contents live only as long as the process: a restart restores them from the
//! changelog. Keys are held as [`Bytes`] and looked up by `&[u8]` (no allocation to read).
//!
//! Window and session stores keep a second index by time (window start, session end) so that
//! expiring what stream time left behind touches only what expires.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;

use bytes::Bytes;

use super::{
    KeyValueIter, KeyValueStore, NO_STREAM_TIME, SessionIter, SessionStore, StateStore, WindowIter,
    WindowStore, check_retention, empty_iter, min_live_time,
};
use crate::error::{Error, Result};

/// The bounds `[from, to]` over keys held as `Bytes`, looked up by slice.
fn inclusive<'k>(from: &'k [u8], to: &'k [u8]) -> (Bound<&'k [u8]>, Bound<&'k [u8]>) {
    (Bound::Included(from), Bound::Included(to))
}

/// A key-value store in a `BTreeMap`.
#[derive(Debug)]
pub struct MemoryKeyValueStore {
    name: String,
    map: BTreeMap<Bytes, Bytes>,
}

impl MemoryKeyValueStore {
    /// An empty store called `name`.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            map: BTreeMap::new(),
        }
    }
}

impl StateStore for MemoryKeyValueStore {
    fn name(&self) -> &str {
        &self.name
    }
    fn persistent(&self) -> bool {
        false
    }
    fn flush(&mut self) -> Result<()> {
        Ok(())
    }
}

impl KeyValueStore for MemoryKeyValueStore {
    fn get(&self, key: &[u8]) -> Result<Option<Bytes>> {
        Ok(self.map.get(key).cloned())
    }

    fn put(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        let value = Bytes::copy_from_slice(value);
        match self.map.get_mut(key) {
            Some(slot) => *slot = value,
            None => {
                self.map.insert(Bytes::copy_from_slice(key), value);
            }
        }
        Ok(())
    }

    fn delete(&mut self, key: &[u8]) -> Result<Option<Bytes>> {
        Ok(self.map.remove(key))
    }

    fn range(&self, from: &[u8], to: &[u8]) -> Result<KeyValueIter<'_>> {
        if from > to {
            return Ok(empty_iter());
        }
        Ok(Box::new(
            self.map
                .range::<[u8], _>(inclusive(from, to))
                .map(|(k, v)| Ok((k.clone(), v.clone()))),
        ))
    }

    fn prefix_scan(&self, prefix: &[u8]) -> Result<KeyValueIter<'_>> {
        let prefix = Bytes::copy_from_slice(prefix);
        Ok(Box::new(
            self.map
                .range::<[u8], _>((Bound::Included(&prefix[..]), Bound::Unbounded))
                .take_while(move |(k, _)| k.starts_with(&prefix))
                .map(|(k, v)| Ok((k.clone(), v.clone()))),
        ))
    }

    fn all(&self) -> Result<KeyValueIter<'_>> {
        Ok(Box::new(
            self.map.iter().map(|(k, v)| Ok((k.clone(), v.clone()))),
        ))
    }

    fn approximate_num_entries(&self) -> Result<u64> {
        Ok(self.map.len() as u64)
    }
}

/// The windows of one key: `(window start, sequence number) -> value`.
type KeyWindows = BTreeMap<(i64, u32), Bytes>;

/// A window store in memory: per key, its windows by start (and sequence number when
/// duplicates are retained), plus an index of `(start, key)` to expire by time.
#[derive(Debug)]
pub struct MemoryWindowStore {
    name: String,
    retention_ms: i64,
    retain_duplicates: bool,
    /// The next sequence number of a duplicate (wraps, as Kafka's `seqnum`).
    seqnum: u32,
    observed: i64,
    windows: BTreeMap<Bytes, KeyWindows>,
    by_start: BTreeSet<(i64, Bytes)>,
}

impl MemoryWindowStore {
    /// An empty store called `name` keeping windows `retention_ms` behind stream time; with
    /// `retain_duplicates` every put of the same key and window is kept (a stream-stream
    /// join's store). A negative retention is an error.
    pub fn new(
        name: impl Into<String>,
        retention_ms: i64,
        retain_duplicates: bool,
    ) -> Result<Self> {
        let name = name.into();
        check_retention(&name, retention_ms)?;
        Ok(Self {
            name,
            retention_ms,
            retain_duplicates,
            seqnum: 0,
            observed: NO_STREAM_TIME,
            windows: BTreeMap::new(),
            by_start: BTreeSet::new(),
        })
    }

    /// Whether every put of the same key and window is kept.
    pub fn retains_duplicates(&self) -> bool {
        self.retain_duplicates
    }

    fn advance(&mut self, stream_time: i64) {
        if stream_time <= self.observed {
            return;
        }
        self.observed = stream_time;
        let min_live = min_live_time(self.observed, self.retention_ms);
        if self
            .by_start
            .first()
            .is_none_or(|(start, _)| *start >= min_live)
        {
            return;
        }
        let live = self.by_start.split_off(&(min_live, Bytes::new()));
        let expired = std::mem::replace(&mut self.by_start, live);
        for (_, key) in expired {
            if let Some(windows) = self.windows.get_mut(&key) {
                let keep = windows.split_off(&(min_live, 0));
                if keep.is_empty() {
                    self.windows.remove(&key);
                } else {
                    *windows = keep;
                }
            }
        }
    }

    fn windows_of<'s>(
        (key, windows): (&'s Bytes, &'s KeyWindows),
        time_from: i64,
        time_to: i64,
    ) -> impl Iterator<Item = Result<(Bytes, i64, Bytes)>> + 's {
        windows
            .range((time_from, 0)..=(time_to, u32::MAX))
            .map(move |(&(start, _), value)| Ok((key.clone(), start, value.clone())))
    }
}

impl StateStore for MemoryWindowStore {
    fn name(&self) -> &str {
        &self.name
    }
    fn persistent(&self) -> bool {
        false
    }
    fn flush(&mut self) -> Result<()> {
        Ok(())
    }
}

impl WindowStore for MemoryWindowStore {
    fn put(&mut self, key: &[u8], window_start: i64, value: Option<&[u8]>) -> Result<()> {
        self.advance(window_start);
        if window_start < min_live_time(self.observed, self.retention_ms) {
            tracing::debug!(store = %self.name, window_start, "skipping a put for an expired window");
            return Ok(());
        }
        let Some(value) = value else {
            if self.retain_duplicates {
                return Ok(());
            }
            let Some((stored, windows)) = self
                .windows
                .range_mut::<[u8], _>(inclusive(key, key))
                .next()
            else {
                return Ok(());
            };
            if windows.remove(&(window_start, 0)).is_some() {
                let stored = stored.clone();
                self.by_start.remove(&(window_start, stored.clone()));
                if windows.is_empty() {
                    self.windows.remove(&stored);
                }
            }
            return Ok(());
        };
        let value = Bytes::copy_from_slice(value);
        let seqnum = if self.retain_duplicates {
            let seqnum = self.seqnum;
            self.seqnum = self.seqnum.wrapping_add(1);
            seqnum
        } else {
            0
        };
        let stored = match self
            .windows
            .range_mut::<[u8], _>(inclusive(key, key))
            .next()
        {
            Some((stored, windows)) => {
                let first_of_start = if self.retain_duplicates {
                    let first = windows
                        .range((window_start, 0)..=(window_start, u32::MAX))
                        .next()
                        .is_none();
                    windows.insert((window_start, seqnum), value);
                    first
                } else {
                    // One entry per window: a replaced value is not the window's first.
                    windows.insert((window_start, 0), value).is_none()
                };
                if !first_of_start {
                    return Ok(());
                }
                stored.clone()
            }
            None => {
                let stored = Bytes::copy_from_slice(key);
                self.windows.insert(
                    stored.clone(),
                    BTreeMap::from([((window_start, seqnum), value)]),
                );
                stored
            }
        };
        self.by_start.insert((window_start, stored));
        Ok(())
    }

    fn fetch(&self, key: &[u8], window_start: i64) -> Result<Option<Bytes>> {
        Ok(self.windows.get(key).and_then(|windows| {
            windows
                .range((window_start, 0)..=(window_start, u32::MAX))
                .next()
                .map(|(_, value)| value.clone())
        }))
    }

    fn fetch_range(&self, key: &[u8], time_from: i64, time_to: i64) -> Result<WindowIter<'_>> {
        if time_from > time_to {
            return Ok(empty_iter());
        }
        match self.windows.get_key_value(key) {
            Some(entry) => Ok(Box::new(Self::windows_of(entry, time_from, time_to))),
            None => Ok(empty_iter()),
        }
    }

    fn fetch_keys(
        &self,
        key_from: &[u8],
        key_to: &[u8],
        time_from: i64,
        time_to: i64,
    ) -> Result<WindowIter<'_>> {
        if key_from > key_to || time_from > time_to {
            return Ok(empty_iter());
        }
        Ok(Box::new(
            self.windows
                .range::<[u8], _>(inclusive(key_from, key_to))
                .flat_map(move |entry| Self::windows_of(entry, time_from, time_to)),
        ))
    }

    fn fetch_all(&self, time_from: i64, time_to: i64) -> Result<WindowIter<'_>> {
        if time_from > time_to {
            return Ok(empty_iter());
        }
        Ok(Box::new(self.windows.iter().flat_map(move |entry| {
            Self::windows_of(entry, time_from, time_to)
        })))
    }

    fn all(&self) -> Result<WindowIter<'_>> {
        self.fetch_all(i64::MIN, i64::MAX)
    }

    fn observe_stream_time(&mut self, stream_time: i64) -> Result<()> {
        self.advance(stream_time);
        Ok(())
    }

    fn retention_ms(&self) -> i64 {
        self.retention_ms
    }
}

/// The sessions of one key: `(end, start) -> value`.
type KeySessions = BTreeMap<(i64, i64), Bytes>;

/// A session store in memory: per key, its sessions by end then start, plus an index of
/// `(end, key, start)` to expire by time.
#[derive(Debug)]
pub struct MemorySessionStore {
    name: String,
    retention_ms: i64,
    observed: i64,
    sessions: BTreeMap<Bytes, KeySessions>,
    by_end: BTreeSet<(i64, Bytes, i64)>,
}

impl MemorySessionStore {
    /// An empty store called `name` keeping sessions `retention_ms` behind stream time (by
    /// their end). A negative retention is an error.
    pub fn new(name: impl Into<String>, retention_ms: i64) -> Result<Self> {
        let name = name.into();
        check_retention(&name, retention_ms)?;
        Ok(Self {
            name,
            retention_ms,
            observed: NO_STREAM_TIME,
            sessions: BTreeMap::new(),
            by_end: BTreeSet::new(),
        })
    }

    fn advance(&mut self, stream_time: i64) {
        if stream_time <= self.observed {
            return;
        }
        self.observed = stream_time;
        let min_live = min_live_time(self.observed, self.retention_ms);
        if self
            .by_end
            .first()
            .is_none_or(|(end, _, _)| *end >= min_live)
        {
            return;
        }
        let live = self.by_end.split_off(&(min_live, Bytes::new(), i64::MIN));
        let expired = std::mem::replace(&mut self.by_end, live);
        for (_, key, _) in expired {
            if let Some(sessions) = self.sessions.get_mut(&key) {
                let keep = sessions.split_off(&(min_live, i64::MIN));
                if keep.is_empty() {
                    self.sessions.remove(&key);
                } else {
                    *sessions = keep;
                }
            }
        }
    }

    fn sessions_of<'s>(
        key: &'s Bytes,
        sessions: impl Iterator<Item = (&'s (i64, i64), &'s Bytes)> + 's,
    ) -> impl Iterator<Item = Result<(Bytes, i64, i64, Bytes)>> + 's {
        sessions.map(move |(&(end, start), value)| Ok((key.clone(), start, end, value.clone())))
    }
}

/// A session that ends before it starts, as a store error.
pub(crate) fn check_session(store: &str, start: i64, end: i64) -> Result<()> {
    if end < start {
        return Err(Error::store(
            store,
            format!("session [{start}, {end}] ends before it starts"),
        ));
    }
    Ok(())
}

impl StateStore for MemorySessionStore {
    fn name(&self) -> &str {
        &self.name
    }
    fn persistent(&self) -> bool {
        false
    }
    fn flush(&mut self) -> Result<()> {
        Ok(())
    }
}

impl SessionStore for MemorySessionStore {
    fn put(&mut self, key: &[u8], start: i64, end: i64, value: &[u8]) -> Result<()> {
        check_session(&self.name, start, end)?;
        self.advance(end);
        if end < min_live_time(self.observed, self.retention_ms) {
            tracing::debug!(store = %self.name, start, end, "skipping a put for an expired session");
            return Ok(());
        }
        let value = Bytes::copy_from_slice(value);
        let stored = match self
            .sessions
            .range_mut::<[u8], _>(inclusive(key, key))
            .next()
        {
            Some((stored, sessions)) => {
                if sessions.insert((end, start), value).is_some() {
                    return Ok(());
                }
                stored.clone()
            }
            None => {
                let stored = Bytes::copy_from_slice(key);
                self.sessions
                    .insert(stored.clone(), BTreeMap::from([((end, start), value)]));
                stored
            }
        };
        self.by_end.insert((end, stored, start));
        Ok(())
    }

    fn remove(&mut self, key: &[u8], start: i64, end: i64) -> Result<()> {
        let Some((stored, sessions)) = self
            .sessions
            .range_mut::<[u8], _>(inclusive(key, key))
            .next()
        else {
            return Ok(());
        };
        if sessions.remove(&(end, start)).is_some() {
            let stored = stored.clone();
            if sessions.is_empty() {
                self.sessions.remove(&stored);
            }
            self.by_end.remove(&(end, stored, start));
        }
        Ok(())
    }

    fn fetch_session(&self, key: &[u8], start: i64, end: i64) -> Result<Option<Bytes>> {
        Ok(self
            .sessions
            .get(key)
            .and_then(|sessions| sessions.get(&(end, start)).cloned()))
    }

    fn find_sessions(
        &self,
        key: &[u8],
        earliest_session_end: i64,
        latest_session_start: i64,
    ) -> Result<SessionIter<'_>> {
        let Some((key, sessions)) = self.sessions.get_key_value(key) else {
            return Ok(empty_iter());
        };
        let found = sessions
            .range((earliest_session_end, i64::MIN)..)
            .filter(move |((_, start), _)| *start <= latest_session_start);
        Ok(Box::new(Self::sessions_of(key, found)))
    }

    fn fetch(&self, key: &[u8]) -> Result<SessionIter<'_>> {
        match self.sessions.get_key_value(key) {
            Some((key, sessions)) => Ok(Box::new(Self::sessions_of(key, sessions.iter()))),
            None => Ok(empty_iter()),
        }
    }

    fn all(&self) -> Result<SessionIter<'_>> {
        Ok(Box::new(self.sessions.iter().flat_map(
            |(key, sessions)| Self::sessions_of(key, sessions.iter()),
        )))
    }

    fn observe_stream_time(&mut self, stream_time: i64) -> Result<()> {
        self.advance(stream_time);
        Ok(())
    }

    fn retention_ms(&self) -> i64 {
        self.retention_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(iter: WindowIter<'_>) -> Vec<(Vec<u8>, i64, Vec<u8>)> {
        iter.map(|e| e.map(|(k, s, v)| (k.to_vec(), s, v.to_vec())))
            .collect::<Result<_>>()
            .unwrap_or_default()
    }

    #[test]
    fn expiry_cleans_the_time_index_with_the_windows() -> Result<()> {
        let mut store = MemoryWindowStore::new("w", 100, false)?;
        store.put(b"a", 0, Some(b"1"))?;
        store.put(b"a", 50, Some(b"2"))?;
        store.put(b"b", 10, Some(b"3"))?;
        store.observe_stream_time(149)?;
        assert_eq!(keys(store.all()?), vec![(b"a".to_vec(), 50, b"2".to_vec())]);
        assert_eq!(store.by_start.len(), 1);
        assert!(!store.windows.contains_key(&b"b"[..]));
        Ok(())
    }

    #[test]
    fn a_removed_window_leaves_no_index_entry() -> Result<()> {
        let mut store = MemoryWindowStore::new("w", 100, false)?;
        store.put(b"a", 0, Some(b"1"))?;
        store.put(b"a", 0, None)?;
        assert!(store.by_start.is_empty());
        assert!(store.windows.is_empty());
        Ok(())
    }

    #[test]
    fn a_removed_session_leaves_no_index_entry() -> Result<()> {
        let mut store = MemorySessionStore::new("s", 100)?;
        store.put(b"a", 0, 10, b"1")?;
        store.put(b"a", 0, 10, b"2")?;
        assert_eq!(store.by_end.len(), 1);
        store.remove(b"a", 0, 10)?;
        assert!(store.by_end.is_empty());
        assert!(store.sessions.is_empty());
        Ok(())
    }

    #[test]
    fn a_session_ending_before_it_starts_is_refused() -> Result<()> {
        let mut store = MemorySessionStore::new("s", 100)?;
        let err = store.put(b"a", 10, 5, b"1").err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("state store \"s\": session [10, 5] ends before it starts")
        );
        Ok(())
    }
}
