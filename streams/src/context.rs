//! What a processor sees while a task runs: stream time, the task's stores (typed handles over
//! the byte stores, writing their changelogs), the output of its sinks, and metrics.

use std::marker::PhantomData;
use std::sync::Arc;

use bytes::Bytes;

use crate::state::changelog::{
    session_key as session_changelog_key, window_key as window_changelog_key,
};
use sluice_client::ProducerRecord;

use crate::error::{Error, Result};
use crate::serdes::SerdeRef;
use crate::state::{KeyValueStore, SessionStore, WindowStore};

/// A task: a sub-topology over one partition of its input topics (`<subtopology>_<partition>`,
/// as Kafka Streams names them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TaskId {
    /// The sub-topology.
    pub subtopology: u32,
    /// The partition of its input topics.
    pub partition: i32,
}

impl std::fmt::Display for TaskId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}_{}", self.subtopology, self.partition)
    }
}

/// One store of a task, with the writes not yet sent to its changelog.
pub(crate) struct StoreSlot {
    pub(crate) name: Arc<str>,
    pub(crate) store: AnyStore,
    /// The changelog topic, when the store is logged.
    pub(crate) changelog: Option<Arc<str>>,
    /// Writes since the last flush, as changelog records (key, value; `None` = tombstone).
    pub(crate) changes: Vec<(Bytes, Option<Bytes>)>,
    /// Sequence number of the next duplicate kept by a window store that retains them.
    pub(crate) seqnum: u32,
}

/// A store of one of the three kinds.
pub(crate) enum AnyStore {
    KeyValue(Box<dyn KeyValueStore>),
    Window(Box<dyn WindowStore>),
    Session(Box<dyn SessionStore>),
}

impl StoreSlot {
    fn log(&mut self, key: Bytes, value: Option<Bytes>) {
        if self.changelog.is_some() {
            self.changes.push((key, value));
        }
    }
}

/// Metrics of a task (Kafka Streams' task-level metrics).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskMetrics {
    /// Records processed (taken from the source topics).
    pub process_total: u64,
    /// Records dropped because they arrived after their window's grace period.
    pub dropped_late_records: u64,
    /// Records dropped because they could not be deserialized (with the log-and-continue
    /// handler) or had no key where one was needed.
    pub dropped_records: u64,
}

/// The state of a running task that its processors share.
pub struct TaskContext {
    pub(crate) task: TaskId,
    pub(crate) application_id: Arc<str>,
    /// The largest timestamp the task has seen (`i64::MIN` before the first record).
    pub(crate) stream_time: i64,
    /// The wall-clock time of the current processing, in ms.
    pub(crate) wall_clock: i64,
    pub(crate) stores: Vec<StoreSlot>,
    /// Records the sinks produced, not yet handed to the producer.
    pub(crate) output: Vec<ProducerRecord>,
    /// The task's source topics, by the index records carry.
    pub(crate) source_topics: Vec<Arc<str>>,
    pub(crate) metrics: TaskMetrics,
    /// What a record that cannot be deserialized does.
    pub(crate) on_deserialization_error: DeserializationHandler,
    /// Partition counts of the topics sinks write, for partitioners of the user's.
    pub(crate) partition_counts: std::collections::HashMap<Arc<str>, i32>,
}

/// What to do with a record whose key or value cannot be deserialized
/// (`default.deserialization.exception.handler`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeserializationHandler {
    /// Stop the application with an error naming the record (Kafka's
    /// `LogAndFailExceptionHandler`, the default).
    #[default]
    LogAndFail,
    /// Log it, count it in `dropped_records` and go on (`LogAndContinueExceptionHandler`).
    LogAndContinue,
}

impl std::fmt::Debug for TaskContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskContext")
            .field("task", &self.task)
            .field("stream_time", &self.stream_time)
            .finish_non_exhaustive()
    }
}

impl TaskContext {
    /// The task.
    pub fn task_id(&self) -> TaskId {
        self.task
    }

    /// The application id.
    pub fn application_id(&self) -> &str {
        &self.application_id
    }

    /// The task's stream time: the largest record timestamp it has seen.
    pub fn stream_time(&self) -> i64 {
        self.stream_time
    }

    /// The wall-clock time of the current processing, in ms (injected by the test driver).
    pub fn wall_clock_time(&self) -> i64 {
        self.wall_clock
    }

    /// The topic of the input record with this origin.
    pub(crate) fn topic_of(&self, index: u32) -> Option<&str> {
        self.source_topics.get(index as usize).map(|t| &**t)
    }

    /// The task's metrics so far.
    pub fn metrics(&self) -> &TaskMetrics {
        &self.metrics
    }

    pub(crate) fn slot_index(&self, name: &str) -> Result<usize> {
        self.stores
            .iter()
            .position(|s| &*s.name == name)
            .ok_or_else(|| {
                Error::Topology(format!(
                    "store \"{name}\" is not connected to this processor's task"
                ))
            })
    }

    /// A record could not be deserialized: an error, or a warning and a count, per the
    /// handler.
    pub(crate) fn deserialization_failed(
        &mut self,
        topic: u32,
        r: &crate::topology::RawRecord,
        what: &'static str,
        message: String,
    ) -> Result<()> {
        let name = self.topic_of(topic).unwrap_or("?").to_owned();
        match self.on_deserialization_error {
            DeserializationHandler::LogAndFail => Err(Error::Deserialize {
                what,
                topic: format!("{name}-{}@{}", r.partition, r.offset),
                message,
            }),
            DeserializationHandler::LogAndContinue => {
                self.metrics.dropped_records += 1;
                tracing::warn!(
                    topic = %name,
                    partition = r.partition,
                    offset = r.offset,
                    what,
                    error = %message,
                    "skipping a record that cannot be deserialized"
                );
                Ok(())
            }
        }
    }

    /// The partition count of `topic` as the runtime knows it (1 when unknown).
    pub(crate) fn partition_count(&self, topic: &str) -> i32 {
        self.partition_counts.get(topic).copied().unwrap_or(1)
    }

    pub(crate) fn emit(&mut self, record: ProducerRecord) {
        self.output.push(record);
    }
}

fn ser_key<K: 'static>(serde: &SerdeRef<K>, store: &str, key: &K) -> Result<Bytes> {
    match serde.serialize(key) {
        Ok(Some(b)) => Ok(b),
        Ok(None) => Err(Error::Serialize {
            what: "key",
            topic: store.to_owned(),
            message: "a store key cannot be null".into(),
        }),
        Err(message) => Err(Error::Serialize {
            what: "key",
            topic: store.to_owned(),
            message,
        }),
    }
}

fn ser_value<V: 'static>(serde: &SerdeRef<V>, store: &str, value: &V) -> Result<Bytes> {
    match serde.serialize(value) {
        Ok(Some(b)) => Ok(b),
        Ok(None) => Ok(Bytes::new()),
        Err(message) => Err(Error::Serialize {
            what: "value",
            topic: store.to_owned(),
            message,
        }),
    }
}

fn de_value<V: 'static>(serde: &SerdeRef<V>, store: &str, bytes: &[u8]) -> Result<V> {
    serde
        .deserialize(Some(bytes))
        .map_err(|message| Error::Deserialize {
            what: "value",
            topic: store.to_owned(),
            message,
        })
}

fn de_key<K: 'static>(serde: &SerdeRef<K>, store: &str, bytes: &[u8]) -> Result<K> {
    serde
        .deserialize(Some(bytes))
        .map_err(|message| Error::Deserialize {
            what: "key",
            topic: store.to_owned(),
            message,
        })
}

/// A typed view of a task's key-value store: keys and values through their serdes, every write
/// also recorded for the changelog.
pub struct KeyValueHandle<K, V> {
    pub(crate) index: usize,
    pub(crate) name: Arc<str>,
    pub(crate) keys: SerdeRef<K>,
    pub(crate) values: SerdeRef<V>,
}

impl<K, V> Clone for KeyValueHandle<K, V> {
    fn clone(&self) -> Self {
        Self {
            index: self.index,
            name: self.name.clone(),
            keys: self.keys.clone(),
            values: self.values.clone(),
        }
    }
}

impl<K, V> std::fmt::Debug for KeyValueHandle<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyValueHandle({})", self.name)
    }
}

impl<K: 'static, V: 'static> KeyValueHandle<K, V> {
    /// The handle of the key-value store `name` of this task.
    pub fn of(
        ctx: &TaskContext,
        name: &str,
        keys: SerdeRef<K>,
        values: SerdeRef<V>,
    ) -> Result<Self> {
        let index = ctx.slot_index(name)?;
        if !matches!(ctx.stores[index].store, AnyStore::KeyValue(_)) {
            return Err(Error::Topology(format!(
                "store \"{name}\" is not a key-value store"
            )));
        }
        Ok(Self {
            index,
            name: ctx.stores[index].name.clone(),
            keys,
            values,
        })
    }

    fn store<'a>(&self, ctx: &'a TaskContext) -> &'a dyn KeyValueStore {
        match &ctx.stores[self.index].store {
            AnyStore::KeyValue(s) => s.as_ref(),
            _ => unreachable!("checked when the handle was made"),
        }
    }

    /// The value of `key`.
    pub fn get(&self, ctx: &TaskContext, key: &K) -> Result<Option<V>> {
        let k = ser_key(&self.keys, &self.name, key)?;
        self.get_raw(ctx, &k)
    }

    pub(crate) fn get_raw(&self, ctx: &TaskContext, key: &[u8]) -> Result<Option<V>> {
        match self.store(ctx).get(key)? {
            Some(b) => Ok(Some(de_value(&self.values, &self.name, &b)?)),
            None => Ok(None),
        }
    }

    /// Sets `key` to `value`.
    pub fn put(&self, ctx: &mut TaskContext, key: &K, value: &V) -> Result<()> {
        let k = ser_key(&self.keys, &self.name, key)?;
        let v = ser_value(&self.values, &self.name, value)?;
        self.put_raw(ctx, k, v)
    }

    pub(crate) fn put_raw(&self, ctx: &mut TaskContext, k: Bytes, v: Bytes) -> Result<()> {
        let slot = &mut ctx.stores[self.index];
        if let AnyStore::KeyValue(s) = &mut slot.store {
            s.put(&k, &v)?;
        }
        slot.log(k, Some(v));
        Ok(())
    }

    /// Removes `key`, returning its value.
    pub fn delete(&self, ctx: &mut TaskContext, key: &K) -> Result<Option<V>> {
        let k = ser_key(&self.keys, &self.name, key)?;
        self.delete_raw(ctx, k)
    }

    pub(crate) fn delete_raw(&self, ctx: &mut TaskContext, k: Bytes) -> Result<Option<V>> {
        let slot = &mut ctx.stores[self.index];
        let old = match &mut slot.store {
            AnyStore::KeyValue(s) => s.delete(&k)?,
            _ => None,
        };
        slot.log(k, None);
        old.map(|b| de_value(&self.values, &self.name, &b))
            .transpose()
    }

    /// Every entry, in key byte order.
    pub fn all(&self, ctx: &TaskContext) -> Result<Vec<(K, V)>> {
        let mut out = Vec::new();
        for e in self.store(ctx).all()? {
            let (k, v) = e?;
            out.push((
                de_key(&self.keys, &self.name, &k)?,
                de_value(&self.values, &self.name, &v)?,
            ));
        }
        Ok(out)
    }

    /// Entries with keys in `[from, to]` (by their serialized bytes), in key byte order.
    pub fn range(&self, ctx: &TaskContext, from: &K, to: &K) -> Result<Vec<(K, V)>> {
        let f = ser_key(&self.keys, &self.name, from)?;
        let t = ser_key(&self.keys, &self.name, to)?;
        let mut out = Vec::new();
        for e in self.store(ctx).range(&f, &t)? {
            let (k, v) = e?;
            out.push((
                de_key(&self.keys, &self.name, &k)?,
                de_value(&self.values, &self.name, &v)?,
            ));
        }
        Ok(out)
    }
}

/// A typed view of a task's window store.
pub struct WindowHandle<K, V> {
    pub(crate) index: usize,
    pub(crate) name: Arc<str>,
    pub(crate) keys: SerdeRef<K>,
    pub(crate) values: SerdeRef<V>,
    pub(crate) retain_duplicates: bool,
}

impl<K, V> std::fmt::Debug for WindowHandle<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WindowHandle({})", self.name)
    }
}

impl<K: 'static, V: 'static> WindowHandle<K, V> {
    /// The handle of the window store `name` of this task.
    pub fn of(
        ctx: &TaskContext,
        name: &str,
        keys: SerdeRef<K>,
        values: SerdeRef<V>,
        retain_duplicates: bool,
    ) -> Result<Self> {
        let index = ctx.slot_index(name)?;
        if !matches!(ctx.stores[index].store, AnyStore::Window(_)) {
            return Err(Error::Topology(format!(
                "store \"{name}\" is not a window store"
            )));
        }
        Ok(Self {
            index,
            name: ctx.stores[index].name.clone(),
            keys,
            values,
            retain_duplicates,
        })
    }

    fn store<'a>(&self, ctx: &'a TaskContext) -> &'a dyn WindowStore {
        match &ctx.stores[self.index].store {
            AnyStore::Window(s) => s.as_ref(),
            _ => unreachable!("checked when the handle was made"),
        }
    }

    /// The serialized key, for repeated calls with one key.
    pub(crate) fn key_bytes(&self, key: &K) -> Result<Bytes> {
        ser_key(&self.keys, &self.name, key)
    }

    /// The value of `key` in the window starting at `start`.
    pub fn fetch(&self, ctx: &TaskContext, key: &K, start: i64) -> Result<Option<V>> {
        let k = self.key_bytes(key)?;
        self.fetch_raw(ctx, &k, start)
    }

    pub(crate) fn fetch_raw(&self, ctx: &TaskContext, k: &[u8], start: i64) -> Result<Option<V>> {
        self.store(ctx)
            .fetch(k, start)?
            .map(|b| de_value(&self.values, &self.name, &b))
            .transpose()
    }

    /// Windows of `key` starting in `[from, to]`, by start.
    pub fn fetch_range(
        &self,
        ctx: &TaskContext,
        key: &K,
        from: i64,
        to: i64,
    ) -> Result<Vec<(i64, V)>> {
        let k = self.key_bytes(key)?;
        self.fetch_range_raw(ctx, &k, from, to)
    }

    pub(crate) fn fetch_range_raw(
        &self,
        ctx: &TaskContext,
        k: &[u8],
        from: i64,
        to: i64,
    ) -> Result<Vec<(i64, V)>> {
        let mut out = Vec::new();
        for e in self.store(ctx).fetch_range(k, from, to)? {
            let (_, start, v) = e?;
            out.push((start, de_value(&self.values, &self.name, &v)?));
        }
        Ok(out)
    }

    /// Every window starting in `[from, to]`, of every key.
    pub fn fetch_all(&self, ctx: &TaskContext, from: i64, to: i64) -> Result<Vec<(K, i64, V)>> {
        let mut out = Vec::new();
        for e in self.store(ctx).fetch_all(from, to)? {
            let (k, start, v) = e?;
            out.push((
                de_key(&self.keys, &self.name, &k)?,
                start,
                de_value(&self.values, &self.name, &v)?,
            ));
        }
        Ok(out)
    }

    /// Sets (or with `None` removes) the value of `key` in the window starting at `start`.
    pub fn put(&self, ctx: &mut TaskContext, key: &K, start: i64, value: Option<&V>) -> Result<()> {
        let k = self.key_bytes(key)?;
        let v = value
            .map(|v| ser_value(&self.values, &self.name, v))
            .transpose()?;
        self.put_raw(ctx, &k, start, v)
    }

    pub(crate) fn put_raw(
        &self,
        ctx: &mut TaskContext,
        k: &[u8],
        start: i64,
        v: Option<Bytes>,
    ) -> Result<()> {
        let slot = &mut ctx.stores[self.index];
        if let AnyStore::Window(s) = &mut slot.store {
            s.put(k, start, v.as_deref())?;
        }
        let seq = if self.retain_duplicates {
            slot.seqnum = slot.seqnum.wrapping_add(1);
            slot.seqnum
        } else {
            0
        };
        slot.log(window_changelog_key(k, start, seq), v);
        Ok(())
    }

    /// Tells the store how far stream time has come (drops expired windows).
    pub(crate) fn observe(&self, ctx: &mut TaskContext, stream_time: i64) -> Result<()> {
        if let AnyStore::Window(s) = &mut ctx.stores[self.index].store {
            s.observe_stream_time(stream_time)?;
        }
        Ok(())
    }
}

/// A typed view of a task's session store.
pub struct SessionHandle<K, V> {
    pub(crate) index: usize,
    pub(crate) name: Arc<str>,
    pub(crate) keys: SerdeRef<K>,
    pub(crate) values: SerdeRef<V>,
    _p: PhantomData<fn() -> (K, V)>,
}

impl<K, V> std::fmt::Debug for SessionHandle<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SessionHandle({})", self.name)
    }
}

impl<K: 'static, V: 'static> SessionHandle<K, V> {
    /// The handle of the session store `name` of this task.
    pub fn of(
        ctx: &TaskContext,
        name: &str,
        keys: SerdeRef<K>,
        values: SerdeRef<V>,
    ) -> Result<Self> {
        let index = ctx.slot_index(name)?;
        if !matches!(ctx.stores[index].store, AnyStore::Session(_)) {
            return Err(Error::Topology(format!(
                "store \"{name}\" is not a session store"
            )));
        }
        Ok(Self {
            index,
            name: ctx.stores[index].name.clone(),
            keys,
            values,
            _p: PhantomData,
        })
    }

    fn store<'a>(&self, ctx: &'a TaskContext) -> &'a dyn SessionStore {
        match &ctx.stores[self.index].store {
            AnyStore::Session(s) => s.as_ref(),
            _ => unreachable!("checked when the handle was made"),
        }
    }

    pub(crate) fn key_bytes(&self, key: &K) -> Result<Bytes> {
        ser_key(&self.keys, &self.name, key)
    }

    /// Sessions of the key overlapping `[earliest_end, latest_start]` (see
    /// [`SessionStore::find_sessions`]).
    pub fn find_sessions(
        &self,
        ctx: &TaskContext,
        key: &K,
        earliest_end: i64,
        latest_start: i64,
    ) -> Result<Vec<(i64, i64, V)>> {
        let k = self.key_bytes(key)?;
        self.find_raw(ctx, &k, earliest_end, latest_start)
    }

    pub(crate) fn find_raw(
        &self,
        ctx: &TaskContext,
        k: &[u8],
        earliest_end: i64,
        latest_start: i64,
    ) -> Result<Vec<(i64, i64, V)>> {
        let mut out = Vec::new();
        for e in self
            .store(ctx)
            .find_sessions(k, earliest_end, latest_start)?
        {
            let (_, s, en, v) = e?;
            out.push((s, en, de_value(&self.values, &self.name, &v)?));
        }
        Ok(out)
    }

    /// Every session of every key.
    pub fn all(&self, ctx: &TaskContext) -> Result<Vec<(K, i64, i64, V)>> {
        let mut out = Vec::new();
        for e in self.store(ctx).all()? {
            let (k, s, en, v) = e?;
            out.push((
                de_key(&self.keys, &self.name, &k)?,
                s,
                en,
                de_value(&self.values, &self.name, &v)?,
            ));
        }
        Ok(out)
    }

    pub(crate) fn put_raw(
        &self,
        ctx: &mut TaskContext,
        k: &[u8],
        start: i64,
        end: i64,
        value: &V,
    ) -> Result<()> {
        let v = ser_value(&self.values, &self.name, value)?;
        let slot = &mut ctx.stores[self.index];
        if let AnyStore::Session(s) = &mut slot.store {
            s.put(k, start, end, &v)?;
        }
        slot.log(session_changelog_key(k, start, end), Some(v));
        Ok(())
    }

    pub(crate) fn remove_raw(
        &self,
        ctx: &mut TaskContext,
        k: &[u8],
        start: i64,
        end: i64,
    ) -> Result<()> {
        let slot = &mut ctx.stores[self.index];
        if let AnyStore::Session(s) = &mut slot.store {
            s.remove(k, start, end)?;
        }
        slot.log(session_changelog_key(k, start, end), None);
        Ok(())
    }

    pub(crate) fn observe(&self, ctx: &mut TaskContext, stream_time: i64) -> Result<()> {
        if let AnyStore::Session(s) = &mut ctx.stores[self.index].store {
            s.observe_stream_time(stream_time)?;
        }
        Ok(())
    }
}
