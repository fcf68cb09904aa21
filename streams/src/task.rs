//! A task: one sub-topology over one partition of its input topics, with its stores. It does
//! no I/O: records go in, records to produce (sink output and changelog writes) come out, so
//! that the runtime and the test driver run the same code.

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use sluice_client::ProducerRecord;

use crate::context::{
    AnyStore, DeserializationHandler, StoreSlot, TaskContext, TaskId, TaskMetrics,
};
use crate::error::{Error, Result};
use crate::node::Lifecycle;
use crate::params::StoreEngineChoice;
use crate::state::changelog::{split_session_key, split_window_key};
use crate::state::{Engine, StoreKind, StoreSpec, open_key_value, open_session, open_window};
use crate::topology::{RawRecord, SourceNode, StoreDef, StoreType, Topology, resolve_topic};

pub use crate::state::changelog::changelog_topic;

/// Opens the engine of `def`; RocksDB stores live under `dir` (`None`: in memory, as the test
/// driver keeps everything).
pub(crate) fn open_store(def: &StoreDef, dir: Option<&Path>) -> Result<AnyStore> {
    let engine = match (def.engine, dir) {
        (StoreEngineChoice::RocksDb, Some(_)) => Engine::RocksDb,
        _ => Engine::InMemory,
    };
    let path = dir.map(|d| d.join(&def.name)).unwrap_or_default();
    let spec = |kind| StoreSpec {
        name: def.name.clone(),
        kind,
        engine,
    };
    Ok(match def.kind {
        StoreType::KeyValue => {
            AnyStore::KeyValue(open_key_value(&spec(StoreKind::KeyValue), &path)?)
        }
        StoreType::Window {
            retention_ms,
            retain_duplicates,
            ..
        } => AnyStore::Window(open_window(
            &spec(StoreKind::Window {
                retention_ms,
                retain_duplicates,
            }),
            &path,
        )?),
        StoreType::Session { retention_ms } => AnyStore::Session(open_session(
            &spec(StoreKind::Session { retention_ms }),
            &path,
        )?),
    })
}

/// A running task.
pub(crate) struct Task {
    pub(crate) ctx: TaskContext,
    /// The task's directory under `state.dir` (its RocksDB stores and checkpoint file).
    pub(crate) dir: Option<std::path::PathBuf>,
    sources: Vec<Box<dyn SourceNode>>,
    /// For each of `ctx.source_topics`, the source node reading it.
    by_topic: Vec<Option<usize>>,
}

impl std::fmt::Debug for Task {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Task")
            .field("id", &self.ctx.task)
            .finish_non_exhaustive()
    }
}

/// How a task is set up.
pub(crate) struct TaskSetup<'a> {
    pub(crate) topology: &'a Topology,
    pub(crate) subtopology: u32,
    pub(crate) partition: i32,
    pub(crate) application_id: Arc<str>,
    /// Where its RocksDB stores live (`None`: in memory).
    pub(crate) state_dir: Option<&'a Path>,
    pub(crate) on_deserialization_error: DeserializationHandler,
    pub(crate) partition_counts: std::collections::HashMap<Arc<str>, i32>,
    pub(crate) wall_clock: i64,
}

impl Task {
    pub(crate) fn new(setup: TaskSetup<'_>) -> Result<Task> {
        let st = setup
            .topology
            .subtopologies
            .iter()
            .find(|s| s.id == setup.subtopology)
            .ok_or_else(|| Error::Topology(format!("no sub-topology {}", setup.subtopology)))?;
        let task = TaskId {
            subtopology: setup.subtopology,
            partition: setup.partition,
        };
        let source_topics: Vec<Arc<str>> = st
            .topics
            .iter()
            .map(|t| Arc::from(resolve_topic(t, &setup.application_id)))
            .collect();
        let mut stores = Vec::new();
        for name in &st.stores {
            let def = setup
                .topology
                .stores
                .iter()
                .find(|d| &d.name == name)
                .ok_or_else(|| {
                    Error::Topology(format!("store \"{name}\" is used but never defined"))
                })?;
            let dir = setup
                .state_dir
                .map(|d| d.join(task.to_string()).join("rocksdb"));
            stores.push(StoreSlot {
                name: Arc::from(name.as_str()),
                store: open_store(def, dir.as_deref())?,
                changelog: def
                    .logged
                    .then(|| Arc::from(changelog_topic(&setup.application_id, name))),
                changes: Vec::new(),
                seqnum: 0,
            });
        }
        let ctx = TaskContext {
            task,
            application_id: setup.application_id.clone(),
            stream_time: i64::MIN,
            wall_clock: setup.wall_clock,
            stores,
            output: Vec::new(),
            source_topics,
            metrics: TaskMetrics::default(),
            on_deserialization_error: setup.on_deserialization_error,
            partition_counts: setup.partition_counts,
        };
        let built = setup.topology.instantiate(st, &ctx)?;
        let mut by_topic = vec![None; ctx.source_topics.len()];
        let mut sources = Vec::with_capacity(built.len());
        for (i, (topics, node)) in built.into_iter().enumerate() {
            for t in topics {
                if let Some(slot) = by_topic.get_mut(t as usize) {
                    *slot = Some(i);
                }
            }
            sources.push(node);
        }
        Ok(Task {
            ctx,
            dir: setup.state_dir.map(|d| d.join(task.to_string())),
            sources,
            by_topic,
        })
    }

    /// Tells the processors the task is built (after its stores are restored).
    pub(crate) fn init(&mut self) -> Result<()> {
        self.event(Lifecycle::Init)
    }

    pub(crate) fn id(&self) -> TaskId {
        self.ctx.task
    }

    /// The index of `topic` among the task's source topics.
    pub(crate) fn topic_index(&self, topic: &str) -> Option<u32> {
        self.ctx
            .source_topics
            .iter()
            .position(|t| &**t == topic)
            .and_then(|i| u32::try_from(i).ok())
    }

    /// Processes records of one source topic, in offset order.
    pub(crate) fn process(&mut self, topic: u32, batch: &[RawRecord]) -> Result<()> {
        let Some(Some(source)) = self.by_topic.get(topic as usize).copied() else {
            return Err(Error::Topology(format!(
                "task {} has no source for topic #{topic}",
                self.ctx.task
            )));
        };
        self.sources[source].process_raw(&mut self.ctx, topic, batch)?;
        let t = self.ctx.stream_time;
        self.event(Lifecycle::StreamTime(t))
    }

    /// Runs wall-clock punctuations due at `now`.
    pub(crate) fn wall_clock(&mut self, now: i64) -> Result<()> {
        self.ctx.wall_clock = now;
        self.event(Lifecycle::WallClock(now))
    }

    fn event(&mut self, event: Lifecycle) -> Result<()> {
        for s in &mut self.sources {
            s.event(&mut self.ctx, event)?;
        }
        Ok(())
    }

    /// Before a commit: processors flush what they hold, stores flush their engines.
    pub(crate) fn flush(&mut self) -> Result<()> {
        self.event(Lifecycle::Flush)?;
        for slot in &mut self.ctx.stores {
            match &mut slot.store {
                AnyStore::KeyValue(s) => s.flush()?,
                AnyStore::Window(s) => s.flush()?,
                AnyStore::Session(s) => s.flush()?,
            }
        }
        Ok(())
    }

    /// What the task has to produce: its sinks' records, then its stores' changelog writes.
    pub(crate) fn take_output(&mut self) -> Vec<ProducerRecord> {
        let mut out = std::mem::take(&mut self.ctx.output);
        let ts = self.ctx.stream_time.max(0);
        let partition = self.ctx.task.partition;
        for slot in &mut self.ctx.stores {
            let Some(topic) = &slot.changelog else {
                continue;
            };
            for (key, value) in slot.changes.drain(..) {
                out.push(ProducerRecord {
                    topic: topic.clone(),
                    partition: Some(partition),
                    key: Some(key),
                    value,
                    headers: Vec::new(),
                    timestamp: Some(ts),
                });
            }
        }
        out
    }

    /// The changelog topics of the task's logged stores, with the store names and whether
    /// the store keeps its data across a restart (RocksDB).
    pub(crate) fn changelogs(&self) -> Vec<(Arc<str>, Arc<str>, bool)> {
        self.ctx
            .stores
            .iter()
            .filter_map(|s| {
                let persistent = match &s.store {
                    AnyStore::KeyValue(x) => x.persistent(),
                    AnyStore::Window(x) => x.persistent(),
                    AnyStore::Session(x) => x.persistent(),
                };
                s.changelog.clone().map(|c| (s.name.clone(), c, persistent))
            })
            .collect()
    }

    /// Applies changelog records to the store `store` (restoration).
    pub(crate) fn restore(
        &mut self,
        store: &str,
        records: &[(Bytes, Option<Bytes>)],
    ) -> Result<()> {
        let slot = self
            .ctx
            .stores
            .iter_mut()
            .find(|s| &*s.name == store)
            .ok_or_else(|| Error::store(store, "no such store in this task"))?;
        let bad = |what: &str| {
            Error::store(
                store,
                format!("a changelog key too short for a {what} store"),
            )
        };
        match &mut slot.store {
            AnyStore::KeyValue(s) => s.write_batch(records)?,
            AnyStore::Window(s) => {
                for (k, v) in records {
                    let (key, start, _) = split_window_key(k).ok_or_else(|| bad("window"))?;
                    s.put(key, start, v.as_deref())?;
                }
            }
            AnyStore::Session(s) => {
                for (k, v) in records {
                    let (key, start, end) = split_session_key(k).ok_or_else(|| bad("session"))?;
                    match v {
                        Some(v) => s.put(key, start, end, v)?,
                        None => s.remove(key, start, end)?,
                    }
                }
            }
        }
        Ok(())
    }

    /// The task's metrics.
    pub(crate) fn metrics(&self) -> &TaskMetrics {
        &self.ctx.metrics
    }
}
