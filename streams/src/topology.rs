//! `StreamsBuilder` and `Topology`: the graph of processor nodes the DSL builds, cut into
//! sub-topologies at repartition topics, with the stores and internal topics it needs.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;

use crate::context::TaskContext;
use crate::error::{Error, Result};
use crate::kstream::KStream;
use crate::ktable::KTable;
use crate::node::{Children, Downstream, Instantiator, Lifecycle, Node};
use crate::params::{Consumed, Materialized, StoreEngineChoice, TimestampExtractor};
use crate::record::{Origin, Record};
use crate::serdes::SerdeRef;

/// What kind of node, for `describe()`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NodeKind {
    Source { topics: Vec<String> },
    Processor,
    Sink { topic: String },
}

#[derive(Debug, Clone)]
pub(crate) struct NodeInfo {
    pub(crate) name: String,
    pub(crate) kind: NodeKind,
    pub(crate) parents: Vec<usize>,
    pub(crate) stores: Vec<String>,
}

/// The kind of a store and what its engine needs to know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreType {
    /// A key-value store.
    KeyValue,
    /// A window store.
    Window {
        /// Window size in ms.
        size_ms: i64,
        /// How long windows are kept behind stream time.
        retention_ms: i64,
        /// Keeps every put of a key and window (stream-stream joins).
        retain_duplicates: bool,
    },
    /// A session store.
    Session {
        /// How long sessions are kept behind stream time.
        retention_ms: i64,
    },
}

/// A store of the topology.
#[derive(Debug, Clone)]
pub struct StoreDef {
    /// Its name.
    pub name: String,
    /// Its kind.
    pub kind: StoreType,
    /// RocksDB or memory.
    pub engine: StoreEngineChoice,
    /// Whether it has a changelog topic.
    pub logged: bool,
    /// Whether a record cache sits in front of it.
    pub cached: bool,
}

/// A source node's entry point for raw records.
pub(crate) trait SourceNode: Send {
    fn process_raw(&mut self, ctx: &mut TaskContext, topic: u32, batch: &[RawRecord])
    -> Result<()>;
    fn event(&mut self, ctx: &mut TaskContext, event: Lifecycle) -> Result<()>;
}

/// A record as it arrives from a topic, before the source's serdes.
#[derive(Debug, Clone)]
pub struct RawRecord {
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Timestamp.
    pub timestamp: i64,
    /// Key bytes.
    pub key: Option<Bytes>,
    /// Value bytes.
    pub value: Option<Bytes>,
    /// Headers.
    pub headers: Vec<sluice_client::Header>,
}

pub(crate) type SourceFactory =
    Arc<dyn Fn(&mut Instantiator<'_>) -> Result<Box<dyn SourceNode>> + Send + Sync>;

#[derive(Clone)]
pub(crate) struct SourceDef {
    pub(crate) node: usize,
    pub(crate) topics: Vec<String>,
    pub(crate) factory: SourceFactory,
}

/// A repartition topic the topology writes and reads itself.
#[derive(Debug, Clone)]
pub(crate) struct RepartitionDef {
    /// The topic's name without the application id prefix (`<name>-repartition`).
    pub(crate) suffix: String,
    pub(crate) partitions: Option<i32>,
    /// The sink node writing it (its sub-topology's sources decide the partition count).
    pub(crate) writer: usize,
}

/// The graph under construction.
#[derive(Default)]
pub(crate) struct Graph {
    pub(crate) nodes: Vec<NodeInfo>,
    pub(crate) sources: Vec<SourceDef>,
    pub(crate) stores: Vec<StoreDef>,
    pub(crate) repartitions: Vec<RepartitionDef>,
    /// The counter Kafka Streams numbers generated names with.
    pub(crate) counter: usize,
    pub(crate) errors: Vec<String>,
    /// Pairs of nodes whose inputs must be co-partitioned (joins): checked against the
    /// topics' partition counts when the application starts.
    pub(crate) copartition: Vec<(usize, usize)>,
}

impl Graph {
    /// A generated name: `PREFIX-0000000007`.
    pub(crate) fn next_name(&mut self, prefix: &str) -> String {
        let n = self.counter;
        self.counter += 1;
        format!("{prefix}-{n:010}")
    }

    /// Adds a node; a name used twice is an error reported at `build()`.
    pub(crate) fn add_node(&mut self, name: String, kind: NodeKind, parents: Vec<usize>) -> usize {
        if self.nodes.iter().any(|n| n.name == name) {
            self.errors.push(format!(
                "the name \"{name}\" is used by two processor nodes"
            ));
        }
        self.nodes.push(NodeInfo {
            name,
            kind,
            parents,
            stores: Vec::new(),
        });
        self.nodes.len() - 1
    }

    pub(crate) fn add_store(&mut self, def: StoreDef, node: usize) {
        if self.stores.iter().any(|s| s.name == def.name) {
            self.errors
                .push(format!("the store name \"{}\" is used twice", def.name));
        }
        self.nodes[node].stores.push(def.name.clone());
        self.stores.push(def);
    }

    /// Connects an existing store to another node (a join reading a table's store).
    pub(crate) fn connect_store(&mut self, store: &str, node: usize) {
        self.nodes[node].stores.push(store.to_owned());
    }
}

pub(crate) type GraphRef = Arc<Mutex<Graph>>;

/// Builds a [`Topology`] with Kafka Streams' DSL.
#[derive(Clone, Default)]
pub struct StreamsBuilder {
    pub(crate) graph: GraphRef,
}

impl std::fmt::Debug for StreamsBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamsBuilder")
            .field("nodes", &self.graph.lock().nodes.len())
            .finish()
    }
}

impl StreamsBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// A stream of the records of `topic`.
    pub fn stream<K, V>(&self, topic: &str, consumed: Consumed<K, V>) -> KStream<K, V>
    where
        K: Clone + Send + 'static,
        V: Clone + Send + 'static,
    {
        self.stream_of(vec![topic.to_owned()], consumed)
    }

    /// A stream of the records of several topics.
    pub fn stream_of<K, V>(&self, topics: Vec<String>, consumed: Consumed<K, V>) -> KStream<K, V>
    where
        K: Clone + Send + 'static,
        V: Clone + Send + 'static,
    {
        let down = Downstream::new();
        let node = add_source(&self.graph, topics, None, &consumed, down.clone());
        KStream::new(
            self.graph.clone(),
            node,
            down,
            Some(consumed.keys),
            Some(consumed.values),
            false,
        )
    }

    /// A table of the latest value per key of `topic` (a null value deletes the key),
    /// materialized in a store.
    pub fn table<K, V>(
        &self,
        topic: &str,
        consumed: Consumed<K, V>,
        materialized: Materialized<K, V>,
    ) -> KTable<K, V>
    where
        K: Clone + Send + 'static,
        V: Clone + Send + 'static,
    {
        let keys = materialized.keys.clone().unwrap_or(consumed.keys.clone());
        let values = materialized
            .values
            .clone()
            .unwrap_or(consumed.values.clone());
        let down = Downstream::new();
        let source = add_source(
            &self.graph,
            vec![topic.to_owned()],
            None,
            &Consumed::with(keys.clone(), crate::serdes::option(values.clone()))
                .with_timestamp_extractor(consumed.timestamps.clone()),
            down.clone(),
        );
        let source_stream: KStream<K, Option<V>> = KStream::new(
            self.graph.clone(),
            source,
            down,
            Some(keys.clone()),
            None,
            false,
        );
        crate::ktable::table_from_changes(
            source_stream,
            materialized,
            keys,
            values,
            "KTABLE-SOURCE",
        )
    }

    /// Builds the topology; a mistake in the graph (a name used twice...) is an error here.
    pub fn build(&self) -> Result<Topology> {
        let g = self.graph.lock();
        if !g.errors.is_empty() {
            return Err(Error::Topology(g.errors.join("; ")));
        }
        if g.sources.is_empty() {
            return Err(Error::Topology("the topology has no source".into()));
        }
        Ok(Topology::from_graph(&g))
    }
}

fn add_source<K, V>(
    graph: &GraphRef,
    topics: Vec<String>,
    name: Option<String>,
    consumed: &Consumed<K, V>,
    down: Downstream<K, V>,
) -> usize
where
    K: Clone + Send + 'static,
    V: Clone + Send + 'static,
{
    let mut g = graph.lock();
    let name = name
        .or_else(|| consumed.name.clone())
        .unwrap_or_else(|| g.next_name("KSTREAM-SOURCE"));
    let node = g.add_node(
        name,
        NodeKind::Source {
            topics: topics.clone(),
        },
        vec![],
    );
    let keys = consumed.keys.clone();
    let values = consumed.values.clone();
    let timestamps = consumed.timestamps.clone();
    let factory: SourceFactory = Arc::new(move |inst| {
        let children = down.build(inst)?;
        Ok(Box::new(Source {
            keys: keys.clone(),
            values: values.clone(),
            timestamps: timestamps.clone(),
            children,
        }) as Box<dyn SourceNode>)
    });
    g.sources.push(SourceDef {
        node,
        topics,
        factory,
    });
    node
}

/// Adds a source reading a repartition topic the topology writes itself (the topic's full
/// name is known only with the application id: it is resolved when the task is built).
pub(crate) fn add_internal_source<K, V>(
    graph: &GraphRef,
    suffix: &str,
    name: Option<String>,
    keys: SerdeRef<K>,
    values: SerdeRef<V>,
    down: Downstream<K, V>,
) -> usize
where
    K: Clone + Send + 'static,
    V: Clone + Send + 'static,
{
    add_source(
        graph,
        vec![internal_marker(suffix)],
        name,
        &Consumed::with(keys, values),
        down,
    )
}

/// How an internal topic's name is kept until the application id is known.
pub(crate) fn internal_marker(suffix: &str) -> String {
    format!("${{app}}-{suffix}")
}

/// Resolves an internal topic's marker with the application id.
pub(crate) fn resolve_topic(topic: &str, application_id: &str) -> String {
    match topic.strip_prefix("${app}") {
        Some(rest) => format!("{application_id}{rest}"),
        None => topic.to_owned(),
    }
}

struct Source<K, V> {
    keys: SerdeRef<K>,
    values: SerdeRef<V>,
    timestamps: TimestampExtractor,
    children: Children<K, V>,
}

impl<K, V> SourceNode for Source<K, V>
where
    K: Clone + Send + 'static,
    V: Clone + Send + 'static,
{
    fn process_raw(
        &mut self,
        ctx: &mut TaskContext,
        topic: u32,
        batch: &[RawRecord],
    ) -> Result<()> {
        let mut out = Vec::with_capacity(batch.len());
        for r in batch {
            let key = match self.keys.deserialize(r.key.as_deref()) {
                Ok(k) => k,
                Err(message) => {
                    ctx.deserialization_failed(topic, r, "key", message)?;
                    continue;
                }
            };
            let value = match self.values.deserialize(r.value.as_deref()) {
                Ok(v) => v,
                Err(message) => {
                    ctx.deserialization_failed(topic, r, "value", message)?;
                    continue;
                }
            };
            let timestamp = match &self.timestamps {
                TimestampExtractor::RecordTime => r.timestamp,
                TimestampExtractor::WallClock => ctx.wall_clock,
                TimestampExtractor::Custom(f) => {
                    f(r.key.as_deref(), r.value.as_deref(), r.timestamp)
                }
            };
            if timestamp < 0 {
                // Kafka Streams skips records with an invalid (negative) timestamp.
                ctx.metrics.dropped_records += 1;
                tracing::warn!(
                    topic = ctx.topic_of(topic).unwrap_or("?"),
                    partition = r.partition,
                    offset = r.offset,
                    timestamp,
                    "skipping a record with a negative timestamp"
                );
                continue;
            }
            if timestamp > ctx.stream_time {
                ctx.stream_time = timestamp;
            }
            ctx.metrics.process_total += 1;
            out.push(Record {
                key,
                value,
                timestamp,
                headers: r.headers.clone(),
                origin: Origin {
                    topic,
                    partition: r.partition,
                    offset: r.offset,
                },
            });
        }
        self.children.forward(ctx, out)
    }

    fn event(&mut self, ctx: &mut TaskContext, event: Lifecycle) -> Result<()> {
        self.children.event(ctx, event)
    }
}

/// A sub-topology: nodes connected to each other, read from its source topics.
#[derive(Debug, Clone)]
pub struct Subtopology {
    /// Its number.
    pub id: u32,
    /// Its nodes, in the order they were added.
    pub(crate) nodes: Vec<usize>,
    /// Indexes into the topology's sources.
    pub(crate) sources: Vec<usize>,
    /// Its source topics (internal ones as markers until resolved).
    pub(crate) topics: Vec<String>,
    /// Its stores.
    pub(crate) stores: Vec<String>,
}

/// A built topology: what runs, and what `describe()` prints.
#[derive(Clone)]
pub struct Topology {
    pub(crate) nodes: Vec<NodeInfo>,
    pub(crate) sources: Vec<SourceDef>,
    pub(crate) stores: Vec<StoreDef>,
    pub(crate) repartitions: Vec<RepartitionDef>,
    pub(crate) subtopologies: Vec<Subtopology>,
    pub(crate) copartition: Vec<(usize, usize)>,
}

impl std::fmt::Debug for Topology {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl Topology {
    fn from_graph(g: &Graph) -> Self {
        // Union-find over parent edges: a sink to a repartition topic and the source reading
        // it are not connected, so the graph falls apart into sub-topologies there.
        let n = g.nodes.len();
        let mut parent: Vec<usize> = (0..n).collect();
        fn find(p: &mut [usize], mut x: usize) -> usize {
            while p[x] != x {
                p[x] = p[p[x]];
                x = p[x];
            }
            x
        }
        for (i, node) in g.nodes.iter().enumerate() {
            for &q in &node.parents {
                let (a, b) = (find(&mut parent, i), find(&mut parent, q));
                if a != b {
                    parent[a.max(b)] = a.min(b);
                }
            }
        }
        // Nodes sharing a store belong together too (a join reading a table's store).
        let mut by_store: BTreeMap<&str, usize> = BTreeMap::new();
        for (i, node) in g.nodes.iter().enumerate() {
            for s in &node.stores {
                if let Some(&other) = by_store.get(s.as_str()) {
                    let (a, b) = (find(&mut parent, i), find(&mut parent, other));
                    if a != b {
                        parent[a.max(b)] = a.min(b);
                    }
                } else {
                    by_store.insert(s, i);
                }
            }
        }
        let mut groups: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for i in 0..n {
            let root = find(&mut parent, i);
            groups.entry(root).or_default().push(i);
        }
        let subtopologies = groups
            .into_values()
            .enumerate()
            .map(|(id, nodes)| {
                let sources: Vec<usize> = g
                    .sources
                    .iter()
                    .enumerate()
                    .filter(|(_, s)| nodes.contains(&s.node))
                    .map(|(i, _)| i)
                    .collect();
                let topics: BTreeSet<String> = sources
                    .iter()
                    .flat_map(|&s| g.sources[s].topics.iter().cloned())
                    .collect();
                let stores: BTreeSet<String> = nodes
                    .iter()
                    .flat_map(|&i| g.nodes[i].stores.iter().cloned())
                    .collect();
                Subtopology {
                    id: u32::try_from(id).unwrap_or(u32::MAX),
                    nodes,
                    sources,
                    topics: topics.into_iter().collect(),
                    stores: stores.into_iter().collect(),
                }
            })
            .collect();
        Topology {
            nodes: g.nodes.clone(),
            sources: g.sources.clone(),
            stores: g.stores.clone(),
            repartitions: g.repartitions.clone(),
            subtopologies,
            copartition: g.copartition.clone(),
        }
    }

    /// Whether `st` joins inputs that must be co-partitioned.
    pub(crate) fn copartitioned(&self, st: &Subtopology) -> bool {
        self.copartition
            .iter()
            .any(|(a, b)| st.nodes.contains(a) || st.nodes.contains(b))
    }

    /// The sub-topologies.
    pub fn subtopologies(&self) -> &[Subtopology] {
        &self.subtopologies
    }

    /// The stores.
    pub fn stores(&self) -> &[StoreDef] {
        &self.stores
    }

    /// The user topics the topology reads (not its repartition topics).
    pub fn source_topics(&self) -> Vec<String> {
        let mut t: BTreeSet<String> = BTreeSet::new();
        for s in &self.sources {
            for topic in &s.topics {
                if !topic.starts_with("${app}") {
                    t.insert(topic.clone());
                }
            }
        }
        t.into_iter().collect()
    }

    /// The topology as Kafka Streams' `TopologyDescription` prints it.
    pub fn describe(&self) -> String {
        let mut out = String::from("Topologies:\n");
        let children_of = |i: usize| -> Vec<&str> {
            self.nodes
                .iter()
                .filter(|n| n.parents.contains(&i))
                .map(|n| n.name.as_str())
                .collect()
        };
        for st in &self.subtopologies {
            let _ = writeln!(out, "   Sub-topology: {}", st.id);
            for &i in &st.nodes {
                let node = &self.nodes[i];
                let shown = |t: &String| match t.strip_prefix("${app}-") {
                    Some(rest) => rest.to_owned(),
                    None => t.clone(),
                };
                match &node.kind {
                    NodeKind::Source { topics } => {
                        let topics: Vec<String> = topics.iter().map(shown).collect();
                        let _ = writeln!(
                            out,
                            "    Source: {} (topics: [{}])",
                            node.name,
                            topics.join(", ")
                        );
                    }
                    NodeKind::Processor => {
                        let _ = writeln!(
                            out,
                            "    Processor: {} (stores: [{}])",
                            node.name,
                            node.stores.join(", ")
                        );
                    }
                    NodeKind::Sink { topic } => {
                        let _ = writeln!(out, "    Sink: {} (topic: {})", node.name, shown(topic));
                    }
                }
                let children = children_of(i);
                if !children.is_empty() {
                    let _ = writeln!(out, "      --> {}", children.join(", "));
                } else if !matches!(node.kind, NodeKind::Sink { .. }) {
                    let _ = writeln!(out, "      --> none");
                }
                if !node.parents.is_empty() {
                    let parents: Vec<&str> = node
                        .parents
                        .iter()
                        .map(|&p| self.nodes[p].name.as_str())
                        .collect();
                    let _ = writeln!(out, "      <-- {}", parents.join(", "));
                }
            }
            out.push('\n');
        }
        out
    }

    /// Builds the source nodes of sub-topology `st` for a task whose context is `ctx`, keyed
    /// by the index of the topic in `ctx.source_topics`.
    pub(crate) fn instantiate(
        &self,
        st: &Subtopology,
        ctx: &TaskContext,
    ) -> Result<Vec<(Vec<u32>, Box<dyn SourceNode>)>> {
        let mut inst = Instantiator {
            ctx,
            shared: Default::default(),
        };
        let mut out = Vec::new();
        for &s in &st.sources {
            let def = &self.sources[s];
            let node = (def.factory)(&mut inst)?;
            let topics = def
                .topics
                .iter()
                .filter_map(|t| {
                    let resolved = resolve_topic(t, &ctx.application_id);
                    ctx.source_topics
                        .iter()
                        .position(|x| **x == *resolved)
                        .and_then(|i| u32::try_from(i).ok())
                })
                .collect();
            out.push((topics, node));
        }
        Ok(out)
    }
}

/// The sink node: serializes and hands records to the task's output.
pub(crate) struct Sink<K, V> {
    pub(crate) topic: SinkTopic<K, V>,
    pub(crate) keys: SerdeRef<K>,
    pub(crate) values: SerdeRef<V>,
    pub(crate) partitioner: Option<Arc<dyn Fn(&K, &V, i32) -> Option<i32> + Send + Sync>>,
}

/// Where a sink writes.
pub(crate) enum SinkTopic<K, V> {
    Fixed(Arc<str>),
    PerRecord(Arc<dyn Fn(&K, &V) -> String + Send + Sync>),
}

impl<K: Clone + Send + 'static, V: Clone + Send + 'static> Node<K, V> for Sink<K, V> {
    fn process(&mut self, ctx: &mut TaskContext, batch: Vec<Record<K, V>>) -> Result<()> {
        for r in batch {
            let topic: Arc<str> = match &self.topic {
                SinkTopic::Fixed(t) => t.clone(),
                SinkTopic::PerRecord(f) => Arc::from(f(&r.key, &r.value)),
            };
            let key = self
                .keys
                .serialize(&r.key)
                .map_err(|message| Error::Serialize {
                    what: "key",
                    topic: topic.to_string(),
                    message,
                })?;
            let value = self
                .values
                .serialize(&r.value)
                .map_err(|message| Error::Serialize {
                    what: "value",
                    topic: topic.to_string(),
                    message,
                })?;
            let partition = match &self.partitioner {
                Some(p) => p(&r.key, &r.value, ctx.partition_count(&topic)),
                None => None,
            };
            ctx.emit(sluice_client::ProducerRecord {
                topic,
                partition,
                key,
                value,
                headers: r.headers,
                timestamp: Some(r.timestamp),
            });
        }
        Ok(())
    }

    fn event(&mut self, _: &mut TaskContext, _: Lifecycle) -> Result<()> {
        Ok(())
    }
}
