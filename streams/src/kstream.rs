//! `KStream`: an unbounded sequence of records, and its operators.

use std::sync::Arc;

use crate::context::TaskContext;
use crate::error::Result;
use crate::grouped::KGroupedStream;
use crate::ktable::KTable;
use crate::node::{Children, Downstream, Lifecycle, MapBatch, Node, SharedNode};
use crate::params::{Grouped, Materialized, Named, Produced, Repartitioned};
use crate::processor::{Processor, ProcessorNode};
use crate::record::Record;
use crate::serdes::SerdeRef;
use crate::topology::{
    GraphRef, NodeKind, RepartitionDef, Sink, SinkTopic, internal_marker, resolve_topic,
};

/// A stream of records keyed by `K` with values `V`.
pub struct KStream<K, V> {
    pub(crate) graph: GraphRef,
    pub(crate) node: usize,
    pub(crate) down: Downstream<K, V>,
    pub(crate) keys: Option<SerdeRef<K>>,
    pub(crate) values: Option<SerdeRef<V>>,
    /// The key changed since the source (or the last repartition): a grouping or join must
    /// repartition first.
    pub(crate) repartition_required: bool,
}

impl<K, V> Clone for KStream<K, V> {
    fn clone(&self) -> Self {
        Self {
            graph: self.graph.clone(),
            node: self.node,
            down: self.down.clone(),
            keys: self.keys.clone(),
            values: self.values.clone(),
            repartition_required: self.repartition_required,
        }
    }
}

impl<K, V> std::fmt::Debug for KStream<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KStream({})", self.graph.lock().nodes[self.node].name)
    }
}

impl<K, V> KStream<K, V>
where
    K: Clone + Send + 'static,
    V: Clone + Send + 'static,
{
    pub(crate) fn new(
        graph: GraphRef,
        node: usize,
        down: Downstream<K, V>,
        keys: Option<SerdeRef<K>>,
        values: Option<SerdeRef<V>>,
        repartition_required: bool,
    ) -> Self {
        Self {
            graph,
            node,
            down,
            keys,
            values,
            repartition_required,
        }
    }

    /// Adds a processor node under this one; `make` builds, per task, what it does to a
    /// batch.
    pub(crate) fn add_batch_op<K2, V2, F>(
        &self,
        prefix: &str,
        named: Option<Named>,
        key_changed: bool,
        keys: Option<SerdeRef<K2>>,
        values: Option<SerdeRef<V2>>,
        make: impl Fn() -> F + Send + Sync + 'static,
    ) -> KStream<K2, V2>
    where
        K2: Clone + Send + 'static,
        V2: Clone + Send + 'static,
        F: FnMut(&mut TaskContext, Vec<Record<K, V>>) -> Result<Vec<Record<K2, V2>>>
            + Send
            + 'static,
    {
        let down2: Downstream<K2, V2> = Downstream::new();
        let node = self.add_node(prefix, named, down2.clone(), move |_, children| {
            Ok(Box::new(MapBatch {
                f: make(),
                children,
                _p: std::marker::PhantomData,
            }))
        });
        KStream::new(
            self.graph.clone(),
            node,
            down2,
            keys,
            values,
            self.repartition_required || key_changed,
        )
    }

    /// Adds a node of any kind under this one; returns its index in the graph.
    pub(crate) fn add_node<K2, V2>(
        &self,
        prefix: &str,
        named: Option<Named>,
        down2: Downstream<K2, V2>,
        make: impl Fn(
            &mut crate::node::Instantiator<'_>,
            Children<K2, V2>,
        ) -> Result<Box<dyn Node<K, V>>>
        + Send
        + Sync
        + 'static,
    ) -> usize
    where
        K2: Clone + Send + 'static,
        V2: Clone + Send + 'static,
    {
        let mut g = self.graph.lock();
        let name = named.map(|n| n.0).unwrap_or_else(|| g.next_name(prefix));
        let node = g.add_node(name.clone(), NodeKind::Processor, vec![self.node]);
        drop(g);
        self.down.push(
            Arc::from(name),
            Arc::new(move |inst| {
                let children = down2.build(inst)?;
                make(inst, children)
            }),
        );
        node
    }

    /// Keeps the records for which `pred` holds.
    pub fn filter(&self, pred: impl Fn(&K, &V) -> bool + Send + Sync + 'static) -> KStream<K, V> {
        let pred = Arc::new(pred);
        self.add_batch_op(
            "KSTREAM-FILTER",
            None,
            false,
            self.keys.clone(),
            self.values.clone(),
            move || {
                let pred = pred.clone();
                move |_: &mut TaskContext, mut batch: Vec<Record<K, V>>| {
                    batch.retain(|r| pred(&r.key, &r.value));
                    Ok(batch)
                }
            },
        )
    }

    /// Keeps the records for which `pred` does not hold.
    pub fn filter_not(
        &self,
        pred: impl Fn(&K, &V) -> bool + Send + Sync + 'static,
    ) -> KStream<K, V> {
        self.filter(move |k, v| !pred(k, v))
    }

    /// A new key and value for each record (the key changes: a later grouping or join
    /// repartitions).
    pub fn map<K2, V2>(
        &self,
        f: impl Fn(K, V) -> (K2, V2) + Send + Sync + 'static,
    ) -> KStream<K2, V2>
    where
        K2: Clone + Send + 'static,
        V2: Clone + Send + 'static,
    {
        let f = Arc::new(f);
        self.add_batch_op("KSTREAM-MAP", None, true, None, None, move || {
            let f = f.clone();
            move |_: &mut TaskContext, batch: Vec<Record<K, V>>| {
                Ok(batch
                    .into_iter()
                    .map(|r| {
                        let (k, v) = f(r.key.clone(), r.value.clone());
                        r.into_with(k, v)
                    })
                    .collect())
            }
        })
    }

    /// A new value for each record; the key stays.
    pub fn map_values<V2>(&self, f: impl Fn(V) -> V2 + Send + Sync + 'static) -> KStream<K, V2>
    where
        V2: Clone + Send + 'static,
    {
        self.map_values_with_key(move |_, v| f(v))
    }

    /// A new value for each record from its key and value; the key stays.
    pub fn map_values_with_key<V2>(
        &self,
        f: impl Fn(&K, V) -> V2 + Send + Sync + 'static,
    ) -> KStream<K, V2>
    where
        V2: Clone + Send + 'static,
    {
        let f = Arc::new(f);
        self.add_batch_op(
            "KSTREAM-MAPVALUES",
            None,
            false,
            self.keys.clone(),
            None,
            move || {
                let f = f.clone();
                move |_: &mut TaskContext, batch: Vec<Record<K, V>>| {
                    Ok(batch
                        .into_iter()
                        .map(|r| {
                            let v = f(&r.key, r.value.clone());
                            let k = r.key.clone();
                            r.into_with(k, v)
                        })
                        .collect())
                }
            },
        )
    }

    /// Zero or more records for each record (the key changes).
    pub fn flat_map<K2, V2, I>(
        &self,
        f: impl Fn(K, V) -> I + Send + Sync + 'static,
    ) -> KStream<K2, V2>
    where
        K2: Clone + Send + 'static,
        V2: Clone + Send + 'static,
        I: IntoIterator<Item = (K2, V2)>,
    {
        let f = Arc::new(f);
        self.add_batch_op("KSTREAM-FLATMAP", None, true, None, None, move || {
            let f = f.clone();
            move |_: &mut TaskContext, batch: Vec<Record<K, V>>| {
                let mut out = Vec::with_capacity(batch.len());
                for r in batch {
                    for (k, v) in f(r.key.clone(), r.value.clone()) {
                        out.push(r.with(k, v));
                    }
                }
                Ok(out)
            }
        })
    }

    /// Zero or more values for each record, under its key.
    pub fn flat_map_values<V2, I>(
        &self,
        f: impl Fn(V) -> I + Send + Sync + 'static,
    ) -> KStream<K, V2>
    where
        V2: Clone + Send + 'static,
        I: IntoIterator<Item = V2>,
    {
        let f = Arc::new(f);
        self.add_batch_op(
            "KSTREAM-FLATMAPVALUES",
            None,
            false,
            self.keys.clone(),
            None,
            move || {
                let f = f.clone();
                move |_: &mut TaskContext, batch: Vec<Record<K, V>>| {
                    let mut out = Vec::with_capacity(batch.len());
                    for r in batch {
                        for v in f(r.value.clone()) {
                            out.push(r.with(r.key.clone(), v));
                        }
                    }
                    Ok(out)
                }
            },
        )
    }

    /// A new key for each record from its key and value (the key changes).
    pub fn select_key<K2>(&self, f: impl Fn(&K, &V) -> K2 + Send + Sync + 'static) -> KStream<K2, V>
    where
        K2: Clone + Send + 'static,
    {
        let f = Arc::new(f);
        self.add_batch_op(
            "KSTREAM-KEY-SELECT",
            None,
            true,
            None,
            self.values.clone(),
            move || {
                let f = f.clone();
                move |_: &mut TaskContext, batch: Vec<Record<K, V>>| {
                    Ok(batch
                        .into_iter()
                        .map(|r| {
                            let k = f(&r.key, &r.value);
                            let v = r.value.clone();
                            r.into_with(k, v)
                        })
                        .collect())
                }
            },
        )
    }

    /// Calls `f` on each record and passes it on unchanged.
    pub fn peek(&self, f: impl Fn(&K, &V) + Send + Sync + 'static) -> KStream<K, V> {
        let f = Arc::new(f);
        self.add_batch_op(
            "KSTREAM-PEEK",
            None,
            false,
            self.keys.clone(),
            self.values.clone(),
            move || {
                let f = f.clone();
                move |_: &mut TaskContext, batch: Vec<Record<K, V>>| {
                    for r in &batch {
                        f(&r.key, &r.value);
                    }
                    Ok(batch)
                }
            },
        )
    }

    /// Calls `f` on each record; a terminal operation.
    pub fn foreach(&self, f: impl Fn(&K, &V) + Send + Sync + 'static) {
        let f = Arc::new(f);
        let _: KStream<K, V> =
            self.add_batch_op("KSTREAM-FOREACH", None, false, None, None, move || {
                let f = f.clone();
                move |_: &mut TaskContext, batch: Vec<Record<K, V>>| {
                    for r in &batch {
                        f(&r.key, &r.value);
                    }
                    Ok(Vec::new())
                }
            });
    }

    /// Splits the stream into branches: each record goes to the first branch whose predicate
    /// holds (Kafka's `split().branch(...)`); with `default_branch`, the rest go to the last.
    pub fn split(&self) -> BranchedKStream<K, V> {
        BranchedKStream {
            stream: self.clone(),
            predicates: Vec::new(),
        }
    }

    /// The records of this stream and `other`, interleaved as they are processed.
    pub fn merge(&self, other: &KStream<K, V>) -> KStream<K, V> {
        let down2: Downstream<K, V> = Downstream::new();
        let mut g = self.graph.lock();
        let name = g.next_name("KSTREAM-MERGE");
        let node = g.add_node(
            name.clone(),
            NodeKind::Processor,
            vec![self.node, other.node],
        );
        drop(g);
        let name: Arc<str> = Arc::from(name);
        for parent in [self, other] {
            let down2 = down2.clone();
            parent.down.push(
                name.clone(),
                Arc::new(move |inst| {
                    // Built once per task and shared by both parents.
                    if let Some(shared) = inst.shared.get(&node)
                        && let Some(s) = shared.downcast_ref::<SharedNode<K, V>>()
                    {
                        return Ok(Box::new(SharedNode {
                            inner: s.inner.clone(),
                            last_event: s.last_event.clone(),
                        }) as Box<dyn Node<K, V>>);
                    }
                    let children = down2.build(inst)?;
                    let s = SharedNode {
                        inner: Arc::new(parking_lot::Mutex::new(children)),
                        last_event: Arc::new(parking_lot::Mutex::new(None)),
                    };
                    let handle = SharedNode {
                        inner: s.inner.clone(),
                        last_event: s.last_event.clone(),
                    };
                    inst.shared.insert(node, Box::new(s));
                    Ok(Box::new(handle) as Box<dyn Node<K, V>>)
                }),
            );
        }
        KStream::new(
            self.graph.clone(),
            node,
            down2,
            self.keys.clone(),
            self.values.clone(),
            self.repartition_required || other.repartition_required,
        )
    }

    /// Writes the stream to `topic`.
    pub fn to(&self, topic: &str, produced: Produced<K, V>) {
        self.add_sink(SinkTopicSpec::Fixed(topic.to_owned()), produced);
    }

    /// Writes each record to the topic `f` chooses for it (Kafka's `TopicNameExtractor`).
    pub fn to_dynamic(
        &self,
        f: impl Fn(&K, &V) -> String + Send + Sync + 'static,
        produced: Produced<K, V>,
    ) {
        self.add_sink(SinkTopicSpec::PerRecord(Arc::new(f)), produced);
    }

    pub(crate) fn add_sink(&self, topic: SinkTopicSpec<K, V>, produced: Produced<K, V>) -> usize {
        let mut g = self.graph.lock();
        let name = produced
            .name
            .clone()
            .unwrap_or_else(|| g.next_name("KSTREAM-SINK"));
        let shown = match &topic {
            SinkTopicSpec::Fixed(t) => t.clone(),
            SinkTopicSpec::PerRecord(_) => "<chosen per record>".into(),
        };
        let node = g.add_node(
            name.clone(),
            NodeKind::Sink { topic: shown },
            vec![self.node],
        );
        drop(g);
        let keys = produced.keys;
        let values = produced.values;
        let partitioner = produced.partitioner;
        self.down.push(
            Arc::from(name),
            Arc::new(move |inst| {
                let topic = match &topic {
                    SinkTopicSpec::Fixed(t) => {
                        SinkTopic::Fixed(Arc::from(resolve_topic(t, &inst.ctx.application_id)))
                    }
                    SinkTopicSpec::PerRecord(f) => SinkTopic::PerRecord(f.clone()),
                };
                Ok(Box::new(Sink {
                    topic,
                    keys: keys.clone(),
                    values: values.clone(),
                    partitioner: partitioner.clone(),
                }) as Box<dyn Node<K, V>>)
            }),
        );
        node
    }

    /// Writes the stream through a repartition topic `<application.id>-<name>-repartition` and
    /// reads it back: records are spread by their (new) key.
    pub fn repartition(&self, repartitioned: Repartitioned<K, V>) -> KStream<K, V> {
        let name = match &repartitioned.name {
            Some(n) => n.clone(),
            None => self.graph.lock().next_name("KSTREAM-REPARTITION"),
        };
        self.through_repartition(
            &name,
            repartitioned.keys,
            repartitioned.values,
            repartitioned.partitions,
        )
    }

    /// Sends the stream through the repartition topic `<app>-<name>-repartition`.
    pub(crate) fn through_repartition(
        &self,
        name: &str,
        keys: SerdeRef<K>,
        values: SerdeRef<V>,
        partitions: Option<i32>,
    ) -> KStream<K, V> {
        let suffix = format!("{name}-repartition");
        // Records without a key cannot be placed by key: dropped, as Kafka Streams does.
        let key_serde = keys.clone();
        let filtered = self.add_batch_op(
            "KSTREAM-FILTER",
            Some(Named(format!("{name}-repartition-filter"))),
            false,
            Some(keys.clone()),
            Some(values.clone()),
            move || {
                let key_serde = key_serde.clone();
                move |ctx: &mut TaskContext, mut batch: Vec<Record<K, V>>| {
                    let before = batch.len();
                    batch.retain(|r| matches!(key_serde.serialize(&r.key), Ok(Some(_))));
                    ctx.metrics.dropped_records += (before - batch.len()) as u64;
                    Ok(batch)
                }
            },
        );
        let sink = filtered.add_sink(
            SinkTopicSpec::Fixed(internal_marker(&suffix)),
            Produced::with(keys.clone(), values.clone())
                .with_name(format!("{name}-repartition-sink")),
        );
        {
            let mut g = self.graph.lock();
            g.repartitions.push(RepartitionDef {
                suffix: suffix.clone(),
                partitions,
                writer: sink,
            });
        }
        let down: Downstream<K, V> = Downstream::new();
        let source = crate::topology::add_internal_source(
            &self.graph,
            &suffix,
            Some(format!("{name}-repartition-source")),
            keys.clone(),
            values.clone(),
            down.clone(),
        );
        KStream::new(
            self.graph.clone(),
            source,
            down,
            Some(keys),
            Some(values),
            false,
        )
    }

    /// Groups the records by their key, for an aggregation.
    pub fn group_by_key(&self, grouped: Grouped<K, V>) -> KGroupedStream<K, V> {
        KGroupedStream {
            stream: self.clone(),
            grouped,
        }
    }

    /// Groups the records by a new key, for an aggregation (through a repartition topic).
    pub fn group_by<K2>(
        &self,
        f: impl Fn(&K, &V) -> K2 + Send + Sync + 'static,
        grouped: Grouped<K2, V>,
    ) -> KGroupedStream<K2, V>
    where
        K2: Clone + Send + 'static,
    {
        let mut s = self.select_key(f);
        s.repartition_required = true;
        KGroupedStream { stream: s, grouped }
    }

    /// Runs a processor of your own (the Processor API) on each record.
    pub fn process<K2, V2, P>(
        &self,
        make: impl Fn() -> P + Send + Sync + 'static,
        named: Option<Named>,
        stores: &[&str],
    ) -> KStream<K2, V2>
    where
        K2: Clone + Send + 'static,
        V2: Clone + Send + 'static,
        P: Processor<K, V, K2, V2> + 'static,
    {
        let down2: Downstream<K2, V2> = Downstream::new();
        let node = self.add_node(
            "KSTREAM-PROCESSOR",
            named,
            down2.clone(),
            move |inst, children| ProcessorNode::boxed(make(), inst.ctx, children),
        );
        {
            let mut g = self.graph.lock();
            for s in stores {
                g.connect_store(s, node);
            }
        }
        KStream::new(self.graph.clone(), node, down2, None, None, true)
    }

    /// The stream as a table: the latest value per key (a `None` value deletes the key).
    pub fn to_table(&self, materialized: Materialized<K, V>) -> KTable<K, V>
    where
        V: 'static,
    {
        let keys = materialized
            .keys
            .clone()
            .or_else(|| self.keys.clone())
            .unwrap_or_else(|| missing_serde::<K>());
        let values = materialized
            .values
            .clone()
            .or_else(|| self.values.clone())
            .unwrap_or_else(|| missing_serde::<V>());
        let as_changes = self.map_values(Some);
        crate::ktable::table_from_changes(as_changes, materialized, keys, values, "KSTREAM-TOTABLE")
    }

    /// Joins each record with the table's value for its key (inner: records whose key the
    /// table does not have are dropped). The stream is repartitioned first when its key
    /// changed.
    pub fn join<VT, VR>(
        &self,
        table: &KTable<K, VT>,
        joiner: impl Fn(&V, &VT) -> VR + Send + Sync + 'static,
        joined: crate::params::Joined<K, V, VT>,
    ) -> KStream<K, VR>
    where
        VT: Clone + Send + 'static,
        VR: Clone + Send + 'static,
    {
        crate::ktable::stream_table_join(
            self,
            table,
            move |v, t| t.map(|t| joiner(v, t)),
            joined,
            false,
        )
    }

    /// Joins each record with the table's value for its key, `None` when the table has none.
    pub fn left_join<VT, VR>(
        &self,
        table: &KTable<K, VT>,
        joiner: impl Fn(&V, Option<&VT>) -> VR + Send + Sync + 'static,
        joined: crate::params::Joined<K, V, VT>,
    ) -> KStream<K, VR>
    where
        VT: Clone + Send + 'static,
        VR: Clone + Send + 'static,
    {
        crate::ktable::stream_table_join(self, table, move |v, t| Some(joiner(v, t)), joined, true)
    }
}

/// A serde standing in where none was given and none can be inferred: using it is an error
/// naming what to do.
pub(crate) fn missing_serde<T: 'static>() -> SerdeRef<T> {
    let name = std::any::type_name::<T>();
    crate::serdes::from_fns(
        move |_: &T| {
            Err(format!(
                "no serde for {name}: give one (Grouped::with, Materialized::with, Produced::with)"
            ))
        },
        move |_| {
            Err(format!(
                "no serde for {name}: give one (Grouped::with, Materialized::with, Consumed::with)"
            ))
        },
    )
}

/// Where a sink writes, before the application id is known.
pub(crate) enum SinkTopicSpec<K, V> {
    Fixed(String),
    PerRecord(Arc<dyn Fn(&K, &V) -> String + Send + Sync>),
}

/// The branches of a split stream.
pub struct BranchedKStream<K, V> {
    stream: KStream<K, V>,
    predicates: Vec<Arc<dyn Fn(&K, &V) -> bool + Send + Sync>>,
}

impl<K, V> std::fmt::Debug for BranchedKStream<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BranchedKStream({} branches)", self.predicates.len())
    }
}

impl<K, V> BranchedKStream<K, V>
where
    K: Clone + Send + 'static,
    V: Clone + Send + 'static,
{
    /// Adds a branch taking the records for which `pred` holds (and no earlier one did).
    pub fn branch(mut self, pred: impl Fn(&K, &V) -> bool + Send + Sync + 'static) -> Self {
        self.predicates.push(Arc::new(pred));
        self
    }

    /// The branches, in order; with `default_branch`, one more for the records no predicate
    /// took (otherwise those are dropped).
    pub fn branches(self, default_branch: bool) -> Vec<KStream<K, V>> {
        let preds = Arc::new(self.predicates);
        let n = preds.len() + usize::from(default_branch);
        // One node routes each record to the branch it belongs to.
        let branch_downs: Vec<Downstream<K, V>> = (0..n).map(|_| Downstream::new()).collect();
        let mut g = self.stream.graph.lock();
        let split_name = g.next_name("KSTREAM-BRANCH");
        let split = g.add_node(
            split_name.clone(),
            NodeKind::Processor,
            vec![self.stream.node],
        );
        let branch_nodes: Vec<usize> = (0..n)
            .map(|i| {
                let name = format!("{split_name}-{}", i + 1);
                g.add_node(name, NodeKind::Processor, vec![split])
            })
            .collect();
        drop(g);
        let downs = branch_downs.clone();
        self.stream.down.push(
            Arc::from(split_name),
            Arc::new(move |inst| {
                let mut children = Vec::with_capacity(downs.len());
                for d in &downs {
                    children.push(d.build(inst)?);
                }
                Ok(Box::new(Branch {
                    preds: preds.clone(),
                    default_branch,
                    children,
                }) as Box<dyn Node<K, V>>)
            }),
        );
        branch_nodes
            .into_iter()
            .zip(branch_downs)
            .map(|(node, down)| {
                KStream::new(
                    self.stream.graph.clone(),
                    node,
                    down,
                    self.stream.keys.clone(),
                    self.stream.values.clone(),
                    self.stream.repartition_required,
                )
            })
            .collect()
    }
}

struct Branch<K, V> {
    preds: Arc<Vec<Arc<dyn Fn(&K, &V) -> bool + Send + Sync>>>,
    default_branch: bool,
    children: Vec<Children<K, V>>,
}

impl<K: Clone + Send + 'static, V: Clone + Send + 'static> Node<K, V> for Branch<K, V> {
    fn process(&mut self, ctx: &mut TaskContext, batch: Vec<Record<K, V>>) -> Result<()> {
        let mut per: Vec<Vec<Record<K, V>>> =
            (0..self.children.len()).map(|_| Vec::new()).collect();
        for r in batch {
            match self.preds.iter().position(|p| p(&r.key, &r.value)) {
                Some(i) => per[i].push(r),
                None if self.default_branch => per[self.preds.len()].push(r),
                None => {}
            }
        }
        for (child, recs) in self.children.iter_mut().zip(per) {
            child.forward(ctx, recs)?;
        }
        Ok(())
    }

    fn event(&mut self, ctx: &mut TaskContext, event: Lifecycle) -> Result<()> {
        for c in &mut self.children {
            c.event(ctx, event)?;
        }
        Ok(())
    }
}
