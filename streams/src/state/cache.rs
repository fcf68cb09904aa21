//! A write-back record cache in front of a key-value store (Kafka Streams'
//! `statestore.cache.max.bytes`, its `CachingKeyValueStore` over a `NamedCache`).
//!
//! Puts and deletes stay in the cache, dirty, until [`CachingKeyValueStore::flush_entries`]
//! writes them to the inner store (one [`KeyValueStore::write_batch`]) and returns them as
//! [`Flushed`] records: the key, its new value and the value the inner store had before. A
//! KTable forwards `(new, old)` downstream only then, so a key updated a thousand times between
//! two commits is forwarded once: that is how Kafka Streams deduplicates updates.
//!
//! Reads see the cache first; ranges merge the cache and the store in key order, a cached
//! delete hiding the store's entry. Reads do not bring entries into the cache (Kafka's cache
//! keeps what a read found, clean): the cache holds what was written, dirty until flushed and
//! clean after, so a key read again after a flush is still found in it.
//!
//! The cache counts its bytes as keys plus values plus [`ENTRY_OVERHEAD`] per entry. When a
//! write takes it past its maximum, the least recently written entries leave it until it is
//! back under: a clean one is dropped, a dirty one is written to the inner store and kept for
//! [`CachingKeyValueStore::take_evicted`]. A maximum of 0 writes every write through at once.

use std::collections::BTreeMap;
use std::collections::btree_map;
use std::iter::Peekable;
use std::ops::Bound;

use bytes::Bytes;

use super::{KeyValueIter, KeyValueStore, StateStore, empty_iter};
use crate::error::Result;

/// Bytes counted per cached entry besides its key and value (Kafka counts its entry's fields
/// the same way): the map node, the order index, the entry's flags.
pub const ENTRY_OVERHEAD: usize = 64;

/// An entry written from the cache to the inner store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flushed {
    /// The key.
    pub key: Bytes,
    /// Its value now (`None`: deleted).
    pub new: Option<Bytes>,
    /// Its value in the inner store before this write.
    pub old: Option<Bytes>,
}

#[derive(Debug)]
struct Entry {
    /// `None`: a delete.
    value: Option<Bytes>,
    dirty: bool,
    /// Its place in the order of writes (the key of `order`).
    written: u64,
}

fn entry_bytes(key: &[u8], value: Option<&Bytes>) -> usize {
    key.len() + value.map_or(0, |v| v.len()) + ENTRY_OVERHEAD
}

/// A key-value store with a write-back record cache in front of `S`.
#[derive(Debug)]
pub struct CachingKeyValueStore<S> {
    inner: S,
    max_bytes: usize,
    bytes: usize,
    entries: BTreeMap<Bytes, Entry>,
    /// Keys by their latest write, oldest first: the order of eviction and of flushing.
    order: BTreeMap<u64, Bytes>,
    next_write: u64,
    dirty: usize,
    evicted: Vec<Flushed>,
}

impl<S: KeyValueStore> CachingKeyValueStore<S> {
    /// A cache of at most `max_bytes` in front of `inner`.
    pub fn new(inner: S, max_bytes: usize) -> Self {
        Self {
            inner,
            max_bytes,
            bytes: 0,
            entries: BTreeMap::new(),
            order: BTreeMap::new(),
            next_write: 0,
            dirty: 0,
            evicted: Vec::new(),
        }
    }

    /// The store behind the cache (what it holds lags the cache's dirty entries).
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// The bytes the cache counts now (at most its maximum once a write returns).
    pub fn cached_bytes(&self) -> usize {
        self.bytes
    }

    /// The cache's maximum in bytes.
    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    /// The entries in the cache, dirty or clean.
    pub fn cached_entries(&self) -> usize {
        self.entries.len()
    }

    /// The entries not yet written to the inner store.
    pub fn dirty_entries(&self) -> usize {
        self.dirty
    }

    /// Writes every dirty entry to the inner store, in the order of their latest write (oldest
    /// first, as Kafka's `NamedCache` flushes its dirty keys), as one batch, and returns them
    /// with the values they replace. They stay in the cache, clean.
    pub fn flush_entries(&mut self) -> Result<Vec<Flushed>> {
        if self.dirty == 0 {
            return Ok(Vec::new());
        }
        let mut flushed = Vec::with_capacity(self.dirty);
        let mut batch = Vec::with_capacity(self.dirty);
        for key in self.order.values() {
            let Some(entry) = self.entries.get(key) else {
                continue;
            };
            if !entry.dirty {
                continue;
            }
            let old = self.inner.get(key)?;
            batch.push((key.clone(), entry.value.clone()));
            flushed.push(Flushed {
                key: key.clone(),
                new: entry.value.clone(),
                old,
            });
        }
        self.inner.write_batch(&batch)?;
        for (key, _) in &batch {
            if let Some(entry) = self.entries.get_mut(key) {
                entry.dirty = false;
            }
        }
        self.dirty = 0;
        Ok(flushed)
    }

    /// The dirty entries written to the inner store because the cache was full (and by
    /// [`StateStore::flush`]) since the last call, in the order they were written.
    pub fn take_evicted(&mut self) -> Vec<Flushed> {
        std::mem::take(&mut self.evicted)
    }

    /// Records a write of `key` in the cache, dirty, then evicts what the cache cannot hold.
    fn write(&mut self, key: &[u8], value: Option<Bytes>) -> Result<()> {
        let written = self.next_write;
        self.next_write += 1;
        let added = entry_bytes(key, value.as_ref());
        let found = self
            .entries
            .range_mut::<[u8], _>((Bound::Included(key), Bound::Included(key)))
            .next();
        match found {
            Some((stored, entry)) => {
                self.bytes -= entry_bytes(key, entry.value.as_ref());
                self.order.remove(&entry.written);
                if !entry.dirty {
                    self.dirty += 1;
                }
                entry.value = value;
                entry.dirty = true;
                entry.written = written;
                self.order.insert(written, stored.clone());
            }
            None => {
                let key = Bytes::copy_from_slice(key);
                self.entries.insert(
                    key.clone(),
                    Entry {
                        value,
                        dirty: true,
                        written,
                    },
                );
                self.order.insert(written, key);
                self.dirty += 1;
            }
        }
        self.bytes += added;
        self.evict()
    }

    /// Evicts the least recently written entries until the cache is within its maximum,
    /// writing the dirty ones to the inner store (one batch).
    fn evict(&mut self) -> Result<()> {
        if self.bytes <= self.max_bytes {
            return Ok(());
        }
        let mut batch = Vec::new();
        while self.bytes > self.max_bytes {
            let Some((_, key)) = self.order.pop_first() else {
                break;
            };
            let Some(entry) = self.entries.remove(&key) else {
                continue;
            };
            self.bytes -= entry_bytes(&key, entry.value.as_ref());
            if entry.dirty {
                self.dirty -= 1;
                let old = self.inner.get(&key)?;
                self.evicted.push(Flushed {
                    key: key.clone(),
                    new: entry.value.clone(),
                    old,
                });
                batch.push((key, entry.value));
            }
        }
        if !batch.is_empty() {
            self.inner.write_batch(&batch)?;
        }
        Ok(())
    }

    /// Merges cached entries with the store's, in key order.
    fn merged<'a>(
        &'a self,
        cached: Box<dyn Iterator<Item = (&'a Bytes, &'a Entry)> + 'a>,
        stored: KeyValueIter<'a>,
    ) -> KeyValueIter<'a> {
        Box::new(Merge {
            cached: cached.peekable(),
            stored: stored.peekable(),
        })
    }
}

/// Cached entries over stored ones, in key order; a cached delete hides the stored entry.
struct Merge<'a> {
    cached: Peekable<Box<dyn Iterator<Item = (&'a Bytes, &'a Entry)> + 'a>>,
    stored: Peekable<KeyValueIter<'a>>,
}

impl Iterator for Merge<'_> {
    type Item = Result<(Bytes, Bytes)>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            match (self.cached.peek(), self.stored.peek()) {
                (None, None) => return None,
                (None, Some(_)) | (Some(_), Some(Err(_))) => return self.stored.next(),
                (Some(_), None) => {}
                (Some((cached, _)), Some(Ok((stored, _)))) => {
                    match cached[..].cmp(&stored[..]) {
                        std::cmp::Ordering::Less => {}
                        // The cached entry replaces (or, deleted, hides) the stored one.
                        std::cmp::Ordering::Equal => {
                            self.stored.next();
                        }
                        std::cmp::Ordering::Greater => return self.stored.next(),
                    }
                }
            }
            if let Some((key, entry)) = self.cached.next()
                && let Some(value) = &entry.value
            {
                return Some(Ok((key.clone(), value.clone())));
            }
        }
    }
}

impl<S: KeyValueStore> StateStore for CachingKeyValueStore<S> {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn persistent(&self) -> bool {
        self.inner.persistent()
    }
    /// Writes every dirty entry to the inner store as [`CachingKeyValueStore::flush_entries`]
    /// does, keeping what it wrote for [`CachingKeyValueStore::take_evicted`] (so no update
    /// is lost to the caller), then flushes the inner store.
    fn flush(&mut self) -> Result<()> {
        let flushed = self.flush_entries()?;
        self.evicted.extend(flushed);
        self.inner.flush()
    }
}

impl<S: KeyValueStore> KeyValueStore for CachingKeyValueStore<S> {
    fn get(&self, key: &[u8]) -> Result<Option<Bytes>> {
        match self.entries.get(key) {
            Some(entry) => Ok(entry.value.clone()),
            None => self.inner.get(key),
        }
    }

    fn put(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        self.write(key, Some(Bytes::copy_from_slice(value)))
    }

    fn delete(&mut self, key: &[u8]) -> Result<Option<Bytes>> {
        let old = self.get(key)?;
        self.write(key, None)?;
        Ok(old)
    }

    fn range(&self, from: &[u8], to: &[u8]) -> Result<KeyValueIter<'_>> {
        if from > to {
            return Ok(empty_iter());
        }
        let cached = self
            .entries
            .range::<[u8], _>((Bound::Included(from), Bound::Included(to)));
        Ok(self.merged(Box::new(cached), self.inner.range(from, to)?))
    }

    fn prefix_scan(&self, prefix: &[u8]) -> Result<KeyValueIter<'_>> {
        let owned = Bytes::copy_from_slice(prefix);
        let cached = self
            .entries
            .range::<[u8], _>((Bound::Included(prefix), Bound::Unbounded))
            .take_while(move |(k, _)| k.starts_with(&owned));
        Ok(self.merged(Box::new(cached), self.inner.prefix_scan(prefix)?))
    }

    fn all(&self) -> Result<KeyValueIter<'_>> {
        let cached: btree_map::Iter<'_, Bytes, Entry> = self.entries.iter();
        Ok(self.merged(Box::new(cached), self.inner.all()?))
    }

    /// The inner store's count (as Kafka's caching store): entries only in the cache are not
    /// counted until written.
    fn approximate_num_entries(&self) -> Result<u64> {
        self.inner.approximate_num_entries()
    }

    fn write_batch(&mut self, entries: &[(Bytes, Option<Bytes>)]) -> Result<()> {
        for (key, value) in entries {
            self.write(key, value.clone())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::memory::MemoryKeyValueStore;

    #[test]
    fn bytes_are_counted_per_entry_and_released() -> Result<()> {
        let mut cache = CachingKeyValueStore::new(MemoryKeyValueStore::new("c"), 10_000);
        cache.put(b"ab", b"xyz")?;
        assert_eq!(cache.cached_bytes(), 2 + 3 + ENTRY_OVERHEAD);
        cache.put(b"ab", b"x")?;
        assert_eq!(cache.cached_bytes(), 2 + 1 + ENTRY_OVERHEAD);
        cache.delete(b"ab")?;
        assert_eq!(cache.cached_bytes(), 2 + ENTRY_OVERHEAD);
        assert_eq!((cache.order.len(), cache.dirty_entries()), (1, 1));
        Ok(())
    }
}
