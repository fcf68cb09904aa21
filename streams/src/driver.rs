//! `TopologyTestDriver`: runs a topology without a broker and without sleeping. Records piped
//! into input topics are processed at once; repartition topics are fed back internally; each
//! piped record is followed by a commit (caches flushed), as Kafka's test driver does; time is
//! the records' and an injected wall clock.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use sluice_client::ProducerRecord;

use crate::context::{AnyStore, DeserializationHandler, KeyValueHandle, TaskMetrics};
use crate::error::{Error, Result};
use crate::grouped::timestamped;
use crate::serdes::SerdeRef;
use crate::task::{Task, TaskSetup};
use crate::topology::{RawRecord, Topology};

struct Inner {
    tasks: Vec<Task>,
    /// Topic -> (task index, topic index in that task).
    readers: HashMap<String, Vec<(usize, u32)>>,
    outputs: HashMap<String, VecDeque<ProducerRecord>>,
    offsets: HashMap<String, i64>,
    wall_clock: i64,
}

/// Runs a topology in the test's thread: pipe records in, read what it produced.
#[derive(Clone)]
pub struct TopologyTestDriver {
    inner: Rc<RefCell<Inner>>,
}

impl std::fmt::Debug for TopologyTestDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TopologyTestDriver")
    }
}

impl TopologyTestDriver {
    /// A driver for `topology`; `props` as the application's (`application.id` names internal
    /// topics, default `test-driver`; `default.deserialization.exception.handler`).
    pub fn new(topology: Topology, props: &[(&str, &str)]) -> Result<Self> {
        let mut app = "test-driver".to_owned();
        let mut handler = DeserializationHandler::LogAndFail;
        for (k, v) in props {
            match *k {
                "application.id" => app = (*v).to_owned(),
                "default.deserialization.exception.handler" => {
                    handler = crate::config::deserialization_handler(v)?;
                }
                _ => {}
            }
        }
        let app: Arc<str> = Arc::from(app);
        let mut tasks = Vec::new();
        let mut readers: HashMap<String, Vec<(usize, u32)>> = HashMap::new();
        for st in &topology.subtopologies {
            let mut task = Task::new(TaskSetup {
                topology: &topology,
                subtopology: st.id,
                partition: 0,
                application_id: app.clone(),
                state_dir: None,
                on_deserialization_error: handler,
                partition_counts: HashMap::new(),
                wall_clock: 0,
            })?;
            task.init()?;
            for (i, t) in task.ctx.source_topics.iter().enumerate() {
                readers
                    .entry(t.to_string())
                    .or_default()
                    .push((tasks.len(), u32::try_from(i).unwrap_or(u32::MAX)));
            }
            tasks.push(task);
        }
        Ok(Self {
            inner: Rc::new(RefCell::new(Inner {
                tasks,
                readers,
                outputs: HashMap::new(),
                offsets: HashMap::new(),
                wall_clock: 0,
            })),
        })
    }

    /// A typed handle to pipe records into `topic`.
    pub fn input_topic<K, V>(
        &self,
        topic: &str,
        keys: SerdeRef<K>,
        values: SerdeRef<V>,
    ) -> TestInputTopic<K, V> {
        TestInputTopic {
            driver: self.clone(),
            topic: topic.to_owned(),
            keys,
            values,
        }
    }

    /// A typed handle to read what the topology wrote to `topic`.
    pub fn output_topic<K, V>(
        &self,
        topic: &str,
        keys: SerdeRef<K>,
        values: SerdeRef<V>,
    ) -> TestOutputTopic<K, V> {
        TestOutputTopic {
            driver: self.clone(),
            topic: topic.to_owned(),
            keys,
            values,
        }
    }

    /// Pipes one raw record into `topic` and processes everything it causes, then commits.
    pub fn pipe_raw(
        &self,
        topic: &str,
        key: Option<Bytes>,
        value: Option<Bytes>,
        timestamp: i64,
    ) -> Result<()> {
        let mut inner = self.inner.borrow_mut();
        if !inner.readers.contains_key(topic) {
            return Err(Error::Topology(format!(
                "the topology does not read topic \"{topic}\""
            )));
        }
        let mut queue = VecDeque::new();
        queue.push_back(ProducerRecord {
            topic: Arc::from(topic),
            partition: Some(0),
            key,
            value,
            headers: Vec::new(),
            timestamp: Some(timestamp),
        });
        inner.run(queue)?;
        // Commit after every record: processors flush, output goes out.
        let mut queue = VecDeque::new();
        for t in &mut inner.tasks {
            t.flush()?;
            queue.extend(t.take_output());
        }
        inner.run(queue)
    }

    /// Moves the wall clock forward by `by`, running wall-clock punctuations.
    pub fn advance_wall_clock_time(&self, by: Duration) -> Result<()> {
        let mut inner = self.inner.borrow_mut();
        inner.wall_clock += i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        let now = inner.wall_clock;
        let mut queue = VecDeque::new();
        for t in &mut inner.tasks {
            t.wall_clock(now)?;
            queue.extend(t.take_output());
        }
        inner.run(queue)
    }

    /// The raw records written to `topic` and not read yet.
    pub fn read_raw(&self, topic: &str) -> Vec<ProducerRecord> {
        self.inner
            .borrow_mut()
            .outputs
            .get_mut(topic)
            .map(|q| q.drain(..).collect())
            .unwrap_or_default()
    }

    /// The entries of the key-value store `name` (a table's or an aggregation's), values as
    /// the topology stores them (with their timestamps).
    pub fn key_value_store<K: 'static, V: 'static>(
        &self,
        name: &str,
        keys: SerdeRef<K>,
        values: SerdeRef<V>,
    ) -> Result<Vec<(K, V)>> {
        let inner = self.inner.borrow();
        for t in &inner.tasks {
            if t.ctx.stores.iter().any(|s| &*s.name == name) {
                let h = KeyValueHandle::of(&t.ctx, name, keys, timestamped(values))?;
                return Ok(h
                    .all(&t.ctx)?
                    .into_iter()
                    .map(|(k, (_, v))| (k, v))
                    .collect());
            }
        }
        Err(Error::Topology(format!(
            "no store \"{name}\" in the topology"
        )))
    }

    /// The number of entries of store `name`.
    pub fn store_len(&self, name: &str) -> Result<u64> {
        let inner = self.inner.borrow();
        for t in &inner.tasks {
            if let Some(s) = t.ctx.stores.iter().find(|s| &*s.name == name) {
                return match &s.store {
                    AnyStore::KeyValue(s) => s.approximate_num_entries(),
                    AnyStore::Window(s) => Ok(s.all()?.count() as u64),
                    AnyStore::Session(s) => Ok(s.all()?.count() as u64),
                };
            }
        }
        Err(Error::Topology(format!(
            "no store \"{name}\" in the topology"
        )))
    }

    /// The metrics of all tasks, summed.
    pub fn metrics(&self) -> TaskMetrics {
        let inner = self.inner.borrow();
        let mut m = TaskMetrics::default();
        for t in &inner.tasks {
            let tm = t.metrics();
            m.process_total += tm.process_total;
            m.dropped_late_records += tm.dropped_late_records;
            m.dropped_records += tm.dropped_records;
        }
        m
    }
}

impl Inner {
    /// Delivers records to the tasks reading their topics (repartition topics included) until
    /// nothing is left; the rest is output.
    fn run(&mut self, mut queue: VecDeque<ProducerRecord>) -> Result<()> {
        // Bounded: a topology that feeds itself forever is a mistake reported as such.
        let mut budget = 10_000_000usize;
        while let Some(r) = queue.pop_front() {
            budget = budget.checked_sub(1).ok_or_else(|| {
                Error::Topology("the topology keeps producing into its own inputs".into())
            })?;
            let topic = r.topic.to_string();
            let offset = {
                let o = self.offsets.entry(topic.clone()).or_insert(0);
                *o += 1;
                *o - 1
            };
            let readers = self.readers.get(&topic).cloned().unwrap_or_default();
            if topic.ends_with("-changelog") && readers.is_empty() {
                continue;
            }
            if readers.is_empty() {
                self.outputs.entry(topic).or_default().push_back(r);
                continue;
            }
            let raw = RawRecord {
                partition: 0,
                offset,
                timestamp: r.timestamp.unwrap_or(self.wall_clock),
                key: r.key,
                value: r.value,
                headers: r.headers,
            };
            for (task, idx) in readers {
                let t = &mut self.tasks[task];
                t.process(idx, std::slice::from_ref(&raw))?;
                queue.extend(t.take_output());
            }
        }
        Ok(())
    }
}

/// Pipes typed records into an input topic of a [`TopologyTestDriver`].
pub struct TestInputTopic<K, V> {
    driver: TopologyTestDriver,
    topic: String,
    keys: SerdeRef<K>,
    values: SerdeRef<V>,
}

impl<K, V> std::fmt::Debug for TestInputTopic<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TestInputTopic({})", self.topic)
    }
}

impl<K, V> TestInputTopic<K, V> {
    /// Pipes `(key, value)` with timestamp `timestamp` (ms).
    pub fn pipe_at(&self, key: K, value: V, timestamp: i64) -> Result<()> {
        let k = self
            .keys
            .serialize(&key)
            .map_err(|message| Error::Serialize {
                what: "key",
                topic: self.topic.clone(),
                message,
            })?;
        let v = self
            .values
            .serialize(&value)
            .map_err(|message| Error::Serialize {
                what: "value",
                topic: self.topic.clone(),
                message,
            })?;
        self.driver.pipe_raw(&self.topic, k, v, timestamp)
    }
}

/// Reads typed records from an output topic of a [`TopologyTestDriver`].
pub struct TestOutputTopic<K, V> {
    driver: TopologyTestDriver,
    topic: String,
    keys: SerdeRef<K>,
    values: SerdeRef<V>,
}

impl<K, V> std::fmt::Debug for TestOutputTopic<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TestOutputTopic({})", self.topic)
    }
}

impl<K, V> TestOutputTopic<K, V> {
    /// The records written since the last read: key, value, timestamp.
    pub fn read_records(&self) -> Result<Vec<(K, V, i64)>> {
        self.driver
            .read_raw(&self.topic)
            .into_iter()
            .map(|r| {
                let k = self.keys.deserialize(r.key.as_deref()).map_err(|message| {
                    Error::Deserialize {
                        what: "key",
                        topic: self.topic.clone(),
                        message,
                    }
                })?;
                let v = self
                    .values
                    .deserialize(r.value.as_deref())
                    .map_err(|message| Error::Deserialize {
                        what: "value",
                        topic: self.topic.clone(),
                        message,
                    })?;
                Ok((k, v, r.timestamp.unwrap_or(0)))
            })
            .collect()
    }

    /// The keys and values written since the last read.
    pub fn read_key_values(&self) -> Result<Vec<(K, V)>> {
        Ok(self
            .read_records()?
            .into_iter()
            .map(|(k, v, _)| (k, v))
            .collect())
    }

    /// The values written since the last read.
    pub fn read_values(&self) -> Result<Vec<V>> {
        Ok(self
            .read_records()?
            .into_iter()
            .map(|(_, v, _)| v)
            .collect())
    }
}
