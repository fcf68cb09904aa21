//! `KTable`: the latest value per key, its operators, suppression and joins.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::context::{KeyValueHandle, TaskContext};
use crate::error::{Error, Result};
use crate::grouped::timestamped;
use crate::kstream::{KStream, missing_serde};
use crate::node::{Children, Downstream, Lifecycle, Node};
use crate::params::{Joined, Materialized, Named};
use crate::record::Record;
use crate::serdes::SerdeRef;
use crate::topology::{GraphRef, StoreDef, StoreType};
use crate::windows::Windowed;

/// An update of a table: the new value (`None`: the key was deleted) and the old one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change<V> {
    /// The value now.
    pub new: Option<V>,
    /// The value before.
    pub old: Option<V>,
}

/// A table: the latest value per key.
pub struct KTable<K, V> {
    pub(crate) graph: GraphRef,
    pub(crate) node: usize,
    pub(crate) down: Downstream<K, Change<V>>,
    pub(crate) keys: Option<SerdeRef<K>>,
    pub(crate) values: Option<SerdeRef<V>>,
    /// The store holding the table, when materialized (joins and queries read it).
    pub(crate) store: Option<String>,
    /// For a windowed table: the grace period and each key's window end, for suppression.
    pub(crate) window: Option<(i64, WindowEnd<K>)>,
}

impl<K, V> Clone for KTable<K, V> {
    fn clone(&self) -> Self {
        Self {
            graph: self.graph.clone(),
            node: self.node,
            down: self.down.clone(),
            keys: self.keys.clone(),
            values: self.values.clone(),
            store: self.store.clone(),
            window: self.window.clone(),
        }
    }
}

impl<K, V> std::fmt::Debug for KTable<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KTable({})", self.graph.lock().nodes[self.node].name)
    }
}

impl<K, V> KTable<K, V>
where
    K: Clone + Send + 'static,
    V: Clone + Send + 'static,
{
    pub(crate) fn new(
        graph: GraphRef,
        node: usize,
        down: Downstream<K, Change<V>>,
        keys: Option<SerdeRef<K>>,
        values: Option<SerdeRef<V>>,
        store: Option<String>,
    ) -> Self {
        Self {
            graph,
            node,
            down,
            keys,
            values,
            store,
            window: None,
        }
    }

    /// The name of the store holding the table, when it has one (for interactive queries).
    pub fn queryable_store_name(&self) -> Option<&str> {
        self.store.as_deref()
    }

    fn as_stream(&self) -> KStream<K, Change<V>> {
        KStream::new(
            self.graph.clone(),
            self.node,
            self.down.clone(),
            self.keys.clone(),
            None,
            false,
        )
    }

    fn derive<V2: Clone + Send + 'static>(
        &self,
        s: KStream<K, Change<V2>>,
        values: Option<SerdeRef<V2>>,
    ) -> KTable<K, V2> {
        KTable {
            graph: s.graph,
            node: s.node,
            down: s.down,
            keys: self.keys.clone(),
            values,
            store: None,
            window: self.window.clone(),
        }
    }

    /// The changes of the table as a stream: each update's new value, `None` for a deletion.
    pub fn to_stream(&self) -> KStream<K, Option<V>> {
        let s = self.as_stream();
        let values = self.values.clone().map(crate::serdes::option);
        s.add_batch_op(
            "KTABLE-TOSTREAM",
            None,
            false,
            self.keys.clone(),
            values,
            || {
                |_: &mut TaskContext, batch: Vec<Record<K, Change<V>>>| {
                    Ok(batch.into_iter().map(|r| r.map_value(|c| c.new)).collect())
                }
            },
        )
    }

    /// Keeps the keys whose value satisfies `pred`; a key that stops satisfying it is
    /// deleted downstream (a `None` update), as Kafka's `KTable#filter`.
    pub fn filter(&self, pred: impl Fn(&K, &V) -> bool + Send + Sync + 'static) -> KTable<K, V> {
        let pred = Arc::new(pred);
        let s = self.as_stream().add_batch_op(
            "KTABLE-FILTER",
            None,
            false,
            self.keys.clone(),
            None,
            move || {
                let pred = pred.clone();
                move |_: &mut TaskContext, batch: Vec<Record<K, Change<V>>>| {
                    let mut out = Vec::with_capacity(batch.len());
                    for r in batch {
                        let keep = |v: &Option<V>| v.as_ref().filter(|v| pred(&r.key, v)).cloned();
                        let new = keep(&r.value.new);
                        let old = keep(&r.value.old);
                        if new.is_none() && old.is_none() {
                            continue;
                        }
                        let key = r.key.clone();
                        out.push(r.into_with(key, Change { new, old }));
                    }
                    Ok(out)
                }
            },
        );
        self.derive(s, self.values.clone())
    }

    /// Maps each value.
    pub fn map_values<V2>(&self, f: impl Fn(&V) -> V2 + Send + Sync + 'static) -> KTable<K, V2>
    where
        V2: Clone + Send + 'static,
    {
        let f = Arc::new(f);
        let s = self.as_stream().add_batch_op(
            "KTABLE-MAPVALUES",
            None,
            false,
            self.keys.clone(),
            None,
            move || {
                let f = f.clone();
                move |_: &mut TaskContext, batch: Vec<Record<K, Change<V>>>| {
                    Ok(batch
                        .into_iter()
                        .map(|r| {
                            r.map_value(|c| Change {
                                new: c.new.as_ref().map(|v| f(v)),
                                old: c.old.as_ref().map(|v| f(v)),
                            })
                        })
                        .collect())
                }
            },
        );
        self.derive(s, None)
    }

    /// Holds back updates of a windowed table until its window closes (stream time passes
    /// window end + grace), then emits each window's final value once
    /// (`Suppressed.untilWindowCloses`); or holds each key's updates for a time limit
    /// (`Suppressed.untilTimeLimit`).
    pub fn suppress(&self, suppressed: Suppressed) -> KTable<K, V> {
        let window = self.window.clone();
        let keys = self.keys.clone().unwrap_or_else(missing_serde::<K>);
        let values = self.values.clone().unwrap_or_else(missing_serde::<V>);
        let store = {
            let mut g = self.graph.lock();
            suppressed
                .name
                .clone()
                .map(|n| format!("{n}-store"))
                .unwrap_or_else(|| g.next_name("KTABLE-SUPPRESS-STATE-STORE"))
        };
        let down: Downstream<K, Change<V>> = Downstream::new();
        let store_name = store.clone();
        let kind = suppressed.kind;
        let max_records = suppressed.max_records;
        let node = self.as_stream().add_node(
            "KTABLE-SUPPRESS",
            suppressed.name.clone().map(Named),
            down.clone(),
            move |inst, children| {
                let (delay, window_end) = match (kind, &window) {
                    (SuppressKind::UntilWindowCloses, Some((grace, end))) => {
                        (*grace, Some(end.clone()))
                    }
                    (SuppressKind::UntilWindowCloses, None) => {
                        return Err(Error::Topology(
                            "suppress(until_window_closes) needs a windowed table".into(),
                        ));
                    }
                    (SuppressKind::UntilTimeLimit(ms), _) => (ms, None),
                };
                let handle = KeyValueHandle::of(
                    inst.ctx,
                    &store_name,
                    keys.clone(),
                    timestamped(crate::serdes::option(values.clone())),
                )?;
                Ok(Box::new(SuppressNode {
                    store: handle,
                    by_time: BTreeMap::new(),
                    held: Default::default(),
                    window_end,
                    delay,
                    max_records,
                    observed: i64::MIN,
                    children,
                }) as Box<dyn Node<K, Change<V>>>)
            },
        );
        self.graph.lock().add_store(
            StoreDef {
                name: store,
                kind: StoreType::KeyValue,
                engine: crate::params::StoreEngineChoice::InMemory,
                logged: true,
                cached: false,
            },
            node,
        );
        KTable {
            graph: self.graph.clone(),
            node,
            down,
            keys: self.keys.clone(),
            values: self.values.clone(),
            store: None,
            window: self.window.clone(),
        }
    }

    /// Joins with another table on the key: an update on either side emits the joined value
    /// (inner: only where both have the key).
    pub fn join<VO, VR>(
        &self,
        other: &KTable<K, VO>,
        joiner: impl Fn(&V, &VO) -> VR + Send + Sync + 'static,
    ) -> Result<KTable<K, VR>>
    where
        VO: Clone + Send + 'static,
        VR: Clone + Send + 'static,
    {
        let j = Arc::new(joiner);
        table_table_join(self, other, move |a, b| match (a, b) {
            (Some(a), Some(b)) => Some(j(a, b)),
            _ => None,
        })
    }

    /// Left join with another table: every key of this table, with the other's value or
    /// `None`.
    pub fn left_join<VO, VR>(
        &self,
        other: &KTable<K, VO>,
        joiner: impl Fn(&V, Option<&VO>) -> VR + Send + Sync + 'static,
    ) -> Result<KTable<K, VR>>
    where
        VO: Clone + Send + 'static,
        VR: Clone + Send + 'static,
    {
        let j = Arc::new(joiner);
        table_table_join(self, other, move |a, b| a.map(|a| j(a, b)))
    }

    /// Outer join with another table: every key of either table.
    pub fn outer_join<VO, VR>(
        &self,
        other: &KTable<K, VO>,
        joiner: impl Fn(Option<&V>, Option<&VO>) -> VR + Send + Sync + 'static,
    ) -> Result<KTable<K, VR>>
    where
        VO: Clone + Send + 'static,
        VR: Clone + Send + 'static,
    {
        let j = Arc::new(joiner);
        table_table_join(self, other, move |a, b| {
            if a.is_none() && b.is_none() {
                None
            } else {
                Some(j(a, b))
            }
        })
    }
}

impl<K, V> KTable<Windowed<K>, V>
where
    K: Clone + Send + 'static,
    V: Clone + Send + 'static,
{
    /// Marks a windowed table (an aggregation's) with its grace period, for suppression.
    pub(crate) fn windowed(mut self, grace_ms: i64) -> Self {
        self.window = Some((grace_ms, Arc::new(|w: &Windowed<K>| w.end)));
        self
    }
}

/// How a suppression holds updates back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SuppressKind {
    UntilWindowCloses,
    UntilTimeLimit(i64),
}

/// What `KTable::suppress` holds back, and for how long (Kafka's `Suppressed`).
#[derive(Debug, Clone)]
pub struct Suppressed {
    kind: SuppressKind,
    max_records: Option<usize>,
    name: Option<String>,
}

impl Suppressed {
    /// Final results only: each window's value once, when stream time passes its end plus
    /// the grace period. The buffer is unbounded.
    pub fn until_window_closes() -> Self {
        Self {
            kind: SuppressKind::UntilWindowCloses,
            max_records: None,
            name: None,
        }
    }

    /// Each key's latest value, emitted `limit` of stream time after its first held update;
    /// with a record bound, the oldest are emitted early when the buffer is full.
    pub fn until_time_limit(limit: std::time::Duration, max_records: Option<usize>) -> Self {
        Self {
            kind: SuppressKind::UntilTimeLimit(
                i64::try_from(limit.as_millis()).unwrap_or(i64::MAX),
            ),
            max_records,
            name: None,
        }
    }

    /// Names the suppression node (its buffer's store is `<name>-store`).
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
}

/// Holds updates in a logged store (so a restart loses none) and emits them when their time
/// comes. The in-memory index orders them by the time they are due; it is rebuilt from the
/// store when the task starts.
struct SuppressNode<K, V> {
    store: KeyValueHandle<K, (i64, Option<V>)>,
    /// (buffer time, key bytes) of what is held, and each held key's buffer time.
    by_time: BTreeMap<(i64, bytes::Bytes), ()>,
    held: std::collections::HashMap<bytes::Bytes, i64>,
    /// The window end of a key, for final results; `None`: the record's timestamp decides.
    window_end: Option<WindowEnd<K>>,
    delay: i64,
    max_records: Option<usize>,
    observed: i64,
    children: Children<K, Change<V>>,
}

/// The end of a windowed key's window.
pub(crate) type WindowEnd<K> = Arc<dyn Fn(&K) -> i64 + Send + Sync>;

impl<K, V> SuppressNode<K, V>
where
    K: Clone + Send + 'static,
    V: Clone + Send + 'static,
{
    fn buffer_time(&self, key: &K, ts: i64) -> i64 {
        match &self.window_end {
            Some(end) => end(key),
            None => ts,
        }
    }

    /// Rebuilds the index from the (restored) store.
    fn load(&mut self, ctx: &TaskContext) -> Result<()> {
        for (key, (ts, _)) in self.store.all(ctx)? {
            let k = self
                .store
                .keys
                .serialize(&key)
                .map_err(|m| Error::store(&self.store.name, m))?
                .unwrap_or_default();
            let t = self.buffer_time(&key, ts);
            self.observed = self.observed.max(ts);
            self.by_time.insert((t, k.clone()), ());
            self.held.insert(k, t);
        }
        Ok(())
    }

    fn emit_due(&mut self, ctx: &mut TaskContext) -> Result<()> {
        let expiry = self.observed.saturating_sub(self.delay);
        let mut out = Vec::new();
        loop {
            let over_bound = self.max_records.is_some_and(|m| self.by_time.len() > m);
            let Some((t, k)) = self.by_time.keys().next().cloned() else {
                break;
            };
            if t > expiry && !over_bound {
                break;
            }
            self.by_time.remove(&(t, k.clone()));
            self.held.remove(&k);
            if let Some((ts, value)) = self.store.get_raw(ctx, &k)? {
                let key = self
                    .store
                    .keys
                    .deserialize(Some(&k))
                    .map_err(|m| Error::store(&self.store.name, m))?;
                self.store.delete_raw(ctx, k)?;
                out.push(Record::new(
                    key,
                    Change {
                        new: value,
                        old: None,
                    },
                    ts,
                ));
            }
        }
        self.children.forward(ctx, out)
    }
}

impl<K, V> Node<K, Change<V>> for SuppressNode<K, V>
where
    K: Clone + Send + 'static,
    V: Clone + Send + 'static,
{
    fn process(&mut self, ctx: &mut TaskContext, batch: Vec<Record<K, Change<V>>>) -> Result<()> {
        for r in batch {
            self.observed = self.observed.max(r.timestamp);
            let k = self
                .store
                .keys
                .serialize(&r.key)
                .map_err(|m| Error::store(&self.store.name, m))?
                .ok_or_else(|| Error::store(&self.store.name, "a null key cannot be suppressed"))?;
            if self.window_end.is_some() && r.value.new.is_none() {
                // A window's deletion (a merged-away session) is not a final result.
                if let Some(t) = self.held.remove(&k) {
                    self.by_time.remove(&(t, k.clone()));
                    self.store.delete_raw(ctx, k)?;
                }
                continue;
            }
            // A key held already keeps its place in time (its first update decides).
            let t = match self.held.get(&k) {
                Some(&t) => t,
                None => self.buffer_time(&r.key, r.timestamp),
            };
            let bytes = self
                .store
                .values
                .serialize(&(r.timestamp, r.value.new.clone()))
                .map_err(|m| Error::store(&self.store.name, m))?
                .unwrap_or_default();
            self.store.put_raw(ctx, k.clone(), bytes)?;
            self.held.insert(k.clone(), t);
            self.by_time.insert((t, k), ());
        }
        self.emit_due(ctx)
    }

    fn event(&mut self, ctx: &mut TaskContext, event: Lifecycle) -> Result<()> {
        if event == Lifecycle::Init {
            self.load(ctx)?;
        }
        self.children.event(ctx, event)
    }
}

/// A table from a stream of `(key, Option<value>)` (a `None` deletes): materialized into a
/// store, forwarding `(new, old)` per update.
pub(crate) fn table_from_changes<K, V>(
    stream: KStream<K, Option<V>>,
    materialized: Materialized<K, V>,
    keys: SerdeRef<K>,
    values: SerdeRef<V>,
    prefix: &str,
) -> KTable<K, V>
where
    K: Clone + Send + 'static,
    V: Clone + Send + 'static,
{
    let store = materialized.name.clone().unwrap_or_else(|| {
        stream
            .graph
            .lock()
            .next_name(&format!("{prefix}-STATE-STORE"))
    });
    let down: Downstream<K, Change<V>> = Downstream::new();
    let store_name = store.clone();
    let (k2, v2) = (keys.clone(), values.clone());
    let node = stream.add_node(prefix, None, down.clone(), move |inst, children| {
        let handle =
            KeyValueHandle::of(inst.ctx, &store_name, k2.clone(), timestamped(v2.clone()))?;
        Ok(Box::new(TableSourceNode {
            store: handle,
            children,
        }) as Box<dyn Node<K, Option<V>>>)
    });
    stream.graph.lock().add_store(
        StoreDef {
            name: store.clone(),
            kind: StoreType::KeyValue,
            engine: materialized.engine,
            logged: materialized.logging,
            cached: materialized.caching,
        },
        node,
    );
    KTable::new(
        stream.graph.clone(),
        node,
        down,
        Some(keys),
        Some(values),
        Some(store),
    )
}

struct TableSourceNode<K, V> {
    store: KeyValueHandle<K, (i64, V)>,
    children: Children<K, Change<V>>,
}

impl<K, V> Node<K, Option<V>> for TableSourceNode<K, V>
where
    K: Clone + Send + 'static,
    V: Clone + Send + 'static,
{
    fn process(&mut self, ctx: &mut TaskContext, batch: Vec<Record<K, Option<V>>>) -> Result<()> {
        let mut out = Vec::with_capacity(batch.len());
        for r in batch {
            let Ok(Some(k)) = self.store.keys.serialize(&r.key) else {
                ctx.metrics.dropped_records += 1;
                continue;
            };
            let old = self.store.get_raw(ctx, &k)?.map(|(_, v)| v);
            match &r.value {
                Some(v) => {
                    let bytes = self
                        .store
                        .values
                        .serialize(&(r.timestamp, v.clone()))
                        .map_err(|m| Error::store(&self.store.name, m))?
                        .unwrap_or_default();
                    self.store.put_raw(ctx, k, bytes)?;
                }
                None => {
                    if old.is_none() {
                        continue;
                    }
                    self.store.delete_raw(ctx, k)?;
                }
            }
            let key = r.key.clone();
            let new = r.value.clone();
            out.push(r.into_with(key, Change { new, old }));
        }
        self.children.forward(ctx, out)
    }

    fn event(&mut self, ctx: &mut TaskContext, event: Lifecycle) -> Result<()> {
        self.children.event(ctx, event)
    }
}

/// A stream-table join: each stream record looks up the table's store.
pub(crate) fn stream_table_join<K, V, VT, VR>(
    stream: &KStream<K, V>,
    table: &KTable<K, VT>,
    joiner: impl Fn(&V, Option<&VT>) -> Option<VR> + Send + Sync + 'static,
    joined: Joined<K, V, VT>,
    left: bool,
) -> KStream<K, VR>
where
    K: Clone + Send + 'static,
    V: Clone + Send + 'static,
    VT: Clone + Send + 'static,
    VR: Clone + Send + 'static,
{
    let store = table
        .store
        .clone()
        .unwrap_or_else(|| "<the table is not materialized>".to_owned());
    let stream = if stream.repartition_required {
        let name = joined
            .name
            .clone()
            .unwrap_or_else(|| stream.graph.lock().next_name("KSTREAM-JOIN"));
        stream.through_repartition(&name, joined.keys.clone(), joined.values.clone(), None)
    } else {
        stream.clone()
    };
    let joiner = Arc::new(joiner);
    let down: Downstream<K, VR> = Downstream::new();
    let store_name = store.clone();
    let keys = joined.keys.clone();
    let others = joined.other.clone();
    let prefix = if left {
        "KSTREAM-LEFTJOIN"
    } else {
        "KSTREAM-JOIN"
    };
    let node = stream.add_node(
        prefix,
        joined.name.clone().map(Named),
        down.clone(),
        move |inst, children| {
            let handle = KeyValueHandle::of(
                inst.ctx,
                &store_name,
                keys.clone(),
                timestamped(others.clone()),
            )?;
            Ok(Box::new(StreamTableJoinNode {
                table: handle,
                joiner: joiner.clone(),
                children,
            }) as Box<dyn Node<K, V>>)
        },
    );
    {
        let mut g = stream.graph.lock();
        g.connect_store(&store, node);
        g.copartition.push((stream.node, table.node));
    }
    KStream::new(
        stream.graph.clone(),
        node,
        down,
        Some(joined.keys),
        None,
        false,
    )
}

type Joiner<V, VT, VR> = Arc<dyn Fn(&V, Option<&VT>) -> Option<VR> + Send + Sync>;

struct StreamTableJoinNode<K, V, VT, VR> {
    table: KeyValueHandle<K, (i64, VT)>,
    joiner: Joiner<V, VT, VR>,
    children: Children<K, VR>,
}

impl<K, V, VT, VR> Node<K, V> for StreamTableJoinNode<K, V, VT, VR>
where
    K: Clone + Send + 'static,
    V: Clone + Send + 'static,
    VT: Clone + Send + 'static,
    VR: Clone + Send + 'static,
{
    fn process(&mut self, ctx: &mut TaskContext, batch: Vec<Record<K, V>>) -> Result<()> {
        let mut out = Vec::with_capacity(batch.len());
        for r in batch {
            // A record without a key joins nothing (Kafka drops it).
            let Ok(Some(k)) = self.table.keys.serialize(&r.key) else {
                ctx.metrics.dropped_records += 1;
                continue;
            };
            let t = self.table.get_raw(ctx, &k)?;
            if let Some(v) = (self.joiner)(&r.value, t.as_ref().map(|(_, v)| v)) {
                let key = r.key.clone();
                out.push(r.into_with(key, v));
            }
        }
        self.children.forward(ctx, out)
    }

    fn event(&mut self, ctx: &mut TaskContext, event: Lifecycle) -> Result<()> {
        self.children.event(ctx, event)
    }
}

/// A table-table join: each side's update looks up the other side's store and emits the
/// joined value (or a deletion where the join no longer holds).
fn table_table_join<K, V, VO, VR>(
    left: &KTable<K, V>,
    right: &KTable<K, VO>,
    joiner: impl Fn(Option<&V>, Option<&VO>) -> Option<VR> + Send + Sync + 'static,
) -> Result<KTable<K, VR>>
where
    K: Clone + Send + 'static,
    V: Clone + Send + 'static,
    VO: Clone + Send + 'static,
    VR: Clone + Send + 'static,
{
    let (Some(ls), Some(rs)) = (left.store.clone(), right.store.clone()) else {
        return Err(Error::Topology(
            "a table-table join needs both tables materialized (a source table, an aggregation, or to_table)".into(),
        ));
    };
    let keys = left.keys.clone().unwrap_or_else(missing_serde::<K>);
    let lv = left.values.clone().unwrap_or_else(missing_serde::<V>);
    let rv = right.values.clone().unwrap_or_else(missing_serde::<VO>);
    let joiner = Arc::new(joiner);
    let down: Downstream<K, Change<VR>> = Downstream::new();
    let merged_down = down.clone();
    // The left side's updates look up the right store, and the other way round; both feed
    // one downstream.
    let mut g = left.graph.lock();
    let lname = g.next_name("KTABLE-JOINTHIS");
    let rname = g.next_name("KTABLE-JOINOTHER");
    let mname = g.next_name("KTABLE-MERGE");
    let ln = g.add_node(
        lname.clone(),
        crate::topology::NodeKind::Processor,
        vec![left.node],
    );
    let rn = g.add_node(
        rname.clone(),
        crate::topology::NodeKind::Processor,
        vec![right.node],
    );
    let mn = g.add_node(mname, crate::topology::NodeKind::Processor, vec![ln, rn]);
    g.connect_store(&rs, ln);
    g.connect_store(&ls, rn);
    g.copartition.push((left.node, right.node));
    drop(g);
    {
        let (j, keys, rv, rs, down) = (
            joiner.clone(),
            keys.clone(),
            rv.clone(),
            rs.clone(),
            merged_down.clone(),
        );
        left.down.push(
            Arc::from(lname),
            Arc::new(move |inst| {
                let other =
                    KeyValueHandle::of(inst.ctx, &rs, keys.clone(), timestamped(rv.clone()))?;
                let j = j.clone();
                Ok(Box::new(TableJoinSide {
                    other,
                    join: Arc::new(move |mine: Option<&V>, theirs: Option<&VO>| j(mine, theirs)),
                    children: down.build(inst)?,
                }) as Box<dyn Node<K, Change<V>>>)
            }),
        );
    }
    {
        let (j, keys, lv, ls, down) = (
            joiner.clone(),
            keys.clone(),
            lv.clone(),
            ls.clone(),
            merged_down.clone(),
        );
        right.down.push(
            Arc::from(rname),
            Arc::new(move |inst| {
                let other =
                    KeyValueHandle::of(inst.ctx, &ls, keys.clone(), timestamped(lv.clone()))?;
                let j = j.clone();
                Ok(Box::new(TableJoinSide {
                    other,
                    join: Arc::new(move |mine: Option<&VO>, theirs: Option<&V>| j(theirs, mine)),
                    children: down.build(inst)?,
                }) as Box<dyn Node<K, Change<VO>>>)
            }),
        );
    }
    Ok(KTable {
        graph: left.graph.clone(),
        node: mn,
        down,
        keys: Some(keys),
        values: None,
        store: None,
        window: None,
    })
}

type SideJoin<A, B, VR> = Arc<dyn Fn(Option<&A>, Option<&B>) -> Option<VR> + Send + Sync>;

struct TableJoinSide<K, A, B, VR> {
    other: KeyValueHandle<K, (i64, B)>,
    join: SideJoin<A, B, VR>,
    children: Children<K, Change<VR>>,
}

impl<K, A, B, VR> Node<K, Change<A>> for TableJoinSide<K, A, B, VR>
where
    K: Clone + Send + 'static,
    A: Clone + Send + 'static,
    B: Clone + Send + 'static,
    VR: Clone + Send + 'static,
{
    fn process(&mut self, ctx: &mut TaskContext, batch: Vec<Record<K, Change<A>>>) -> Result<()> {
        let mut out = Vec::with_capacity(batch.len());
        for r in batch {
            let other = self.other.get(ctx, &r.key)?;
            let theirs = other.as_ref().map(|(_, v)| v);
            let new = (self.join)(r.value.new.as_ref(), theirs);
            let old = (self.join)(r.value.old.as_ref(), theirs);
            if new.is_none() && old.is_none() {
                continue;
            }
            let ts = other
                .as_ref()
                .map_or(r.timestamp, |(t, _)| r.timestamp.max(*t));
            let key = r.key.clone();
            let mut rec = r.into_with(key, Change { new, old });
            rec.timestamp = ts;
            out.push(rec);
        }
        self.children.forward(ctx, out)
    }

    fn event(&mut self, ctx: &mut TaskContext, event: Lifecycle) -> Result<()> {
        self.children.event(ctx, event)
    }
}
