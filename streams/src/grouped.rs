//! Grouped streams and their aggregations: by key, by time window, by session.

use std::sync::Arc;

use bytes::Bytes;

use crate::context::{KeyValueHandle, SessionHandle, TaskContext, WindowHandle};
use crate::error::{Error, Result};
use crate::kstream::{KStream, missing_serde};
use crate::ktable::{Change, KTable};
use crate::node::{Children, Downstream, Lifecycle, Node};
use crate::params::{Grouped, Materialized};
use crate::record::Record;
use crate::serdes::{Serde, SerdeRef};
use crate::topology::{StoreDef, StoreType};
use crate::windows::{SessionWindows, TimeWindows, Windowed};

/// A value with the timestamp of the record that last changed it, as Kafka's timestamped
/// stores keep them: 8 big-endian bytes of timestamp, then the value's bytes.
pub(crate) struct Timestamped<V>(pub(crate) SerdeRef<V>);

impl<V: 'static> Serde<(i64, V)> for Timestamped<V> {
    fn serialize(&self, value: &(i64, V)) -> std::result::Result<Option<Bytes>, String> {
        let inner = self.0.serialize(&value.1)?.unwrap_or_default();
        let mut b = Vec::with_capacity(inner.len() + 8);
        b.extend_from_slice(&value.0.to_be_bytes());
        b.extend_from_slice(&inner);
        Ok(Some(Bytes::from(b)))
    }
    fn deserialize(&self, bytes: Option<&[u8]>) -> std::result::Result<(i64, V), String> {
        let b = bytes.ok_or("null where a timestamped value was expected")?;
        if b.len() < 8 {
            return Err(format!(
                "{} bytes are too few for a timestamped value",
                b.len()
            ));
        }
        let (t, v) = b.split_at(8);
        let ts = i64::from_be_bytes(t.try_into().unwrap_or([0; 8]));
        Ok((ts, self.0.deserialize(Some(v))?))
    }
    fn name(&self) -> &'static str {
        "timestamped"
    }
}

pub(crate) fn timestamped<V: 'static>(inner: SerdeRef<V>) -> SerdeRef<(i64, V)> {
    Arc::new(Timestamped(inner))
}

/// A stream grouped by key, ready for an aggregation.
pub struct KGroupedStream<K, V> {
    pub(crate) stream: KStream<K, V>,
    pub(crate) grouped: Grouped<K, V>,
}

impl<K, V> std::fmt::Debug for KGroupedStream<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KGroupedStream({:?})", self.stream)
    }
}

impl<K, V> KGroupedStream<K, V>
where
    K: Clone + Send + 'static,
    V: Clone + Send + 'static,
{
    /// The store name (given, or generated) and the stream to aggregate (repartitioned when its
    /// key changed).
    fn prepare<VA: 'static>(
        &self,
        materialized: &Materialized<K, VA>,
        prefix: &str,
    ) -> (String, KStream<K, V>) {
        let store = materialized
            .name
            .clone()
            .unwrap_or_else(|| self.stream.graph.lock().next_name(prefix));
        let stream = if self.stream.repartition_required {
            let name = self.grouped.name.clone().unwrap_or_else(|| store.clone());
            self.stream.through_repartition(
                &name,
                self.grouped.keys.clone(),
                self.grouped.values.clone(),
                None,
            )
        } else {
            self.stream.clone()
        };
        (store, stream)
    }

    /// Counts the records per key.
    pub fn count(&self, materialized: Materialized<K, i64>) -> KTable<K, i64> {
        let materialized = Materialized {
            values: Some(
                materialized
                    .values
                    .clone()
                    .unwrap_or_else(crate::serdes::i64),
            ),
            ..materialized
        };
        self.aggregate(|| 0, |_, _, c| c + 1, materialized)
    }

    /// Combines the values per key with `reducer` (the first value as it is).
    pub fn reduce(
        &self,
        reducer: impl Fn(V, &V) -> V + Send + Sync + 'static,
        materialized: Materialized<K, V>,
    ) -> KTable<K, V> {
        let values = materialized
            .values
            .clone()
            .unwrap_or_else(|| self.grouped.values.clone());
        let materialized = Materialized {
            values: Some(values),
            ..materialized
        };
        let reducer = Arc::new(reducer);
        self.aggregate_inner(
            Arc::new(|| None),
            Arc::new(move |_, v: &V, acc: Option<V>| match acc {
                None => Some(v.clone()),
                Some(a) => Some(reducer(a, v)),
            }),
            materialized,
            "KSTREAM-REDUCE-STATE-STORE",
            "KSTREAM-REDUCE",
        )
    }

    /// Folds the values per key into an aggregate, starting from `init()`.
    pub fn aggregate<VA>(
        &self,
        init: impl Fn() -> VA + Send + Sync + 'static,
        aggregator: impl Fn(&K, &V, VA) -> VA + Send + Sync + 'static,
        materialized: Materialized<K, VA>,
    ) -> KTable<K, VA>
    where
        VA: Clone + Send + 'static,
    {
        let init = Arc::new(init);
        let aggregator = Arc::new(aggregator);
        let init2 = init.clone();
        self.aggregate_inner(
            Arc::new(move || Some(init2())),
            Arc::new(move |k, v, acc: Option<VA>| {
                let acc = acc.unwrap_or_else(|| init());
                Some(aggregator(k, v, acc))
            }),
            materialized,
            "KSTREAM-AGGREGATE-STATE-STORE",
            "KSTREAM-AGGREGATE",
        )
    }

    fn aggregate_inner<VA>(
        &self,
        _init: Arc<dyn Fn() -> Option<VA> + Send + Sync>,
        step: Arc<dyn Fn(&K, &V, Option<VA>) -> Option<VA> + Send + Sync>,
        materialized: Materialized<K, VA>,
        store_prefix: &str,
        node_prefix: &str,
    ) -> KTable<K, VA>
    where
        VA: Clone + Send + 'static,
    {
        let (store, stream) = self.prepare(&materialized, store_prefix);
        let keys = materialized
            .keys
            .clone()
            .unwrap_or_else(|| self.grouped.keys.clone());
        let values = materialized
            .values
            .clone()
            .unwrap_or_else(missing_serde::<VA>);
        let down: Downstream<K, Change<VA>> = Downstream::new();
        let store_name = store.clone();
        let (k2, v2) = (keys.clone(), values.clone());
        let node = stream.add_node(node_prefix, None, down.clone(), move |inst, children| {
            let handle =
                KeyValueHandle::of(inst.ctx, &store_name, k2.clone(), timestamped(v2.clone()))?;
            Ok(Box::new(AggregateNode {
                store: handle,
                step: step.clone(),
                children,
            }) as Box<dyn Node<K, V>>)
        });
        self.stream.graph.lock().add_store(
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

    /// Windows the grouped stream by time, for a windowed aggregation.
    pub fn windowed_by(&self, windows: TimeWindows) -> TimeWindowedKStream<K, V> {
        TimeWindowedKStream {
            grouped: KGroupedStream {
                stream: self.stream.clone(),
                grouped: self.grouped.clone(),
            },
            windows,
        }
    }

    /// Windows the grouped stream by sessions of activity.
    pub fn windowed_by_session(&self, windows: SessionWindows) -> SessionWindowedKStream<K, V> {
        SessionWindowedKStream {
            grouped: KGroupedStream {
                stream: self.stream.clone(),
                grouped: self.grouped.clone(),
            },
            windows,
        }
    }
}

struct AggregateNode<K, V, VA> {
    store: KeyValueHandle<K, (i64, VA)>,
    step: Arc<dyn Fn(&K, &V, Option<VA>) -> Option<VA> + Send + Sync>,
    children: Children<K, Change<VA>>,
}

impl<K, V, VA> Node<K, V> for AggregateNode<K, V, VA>
where
    K: Clone + Send + 'static,
    V: Clone + Send + 'static,
    VA: Clone + Send + 'static,
{
    fn process(&mut self, ctx: &mut TaskContext, batch: Vec<Record<K, V>>) -> Result<()> {
        let mut out = Vec::with_capacity(batch.len());
        for r in batch {
            let Ok(Some(k)) = self.store.keys.serialize(&r.key) else {
                // A null key cannot be aggregated (Kafka Streams skips it too).
                ctx.metrics.dropped_records += 1;
                continue;
            };
            let old = self.store.get_raw(ctx, &k)?;
            let (old_ts, old_v) = match old {
                Some((t, v)) => (t, Some(v)),
                None => (i64::MIN, None),
            };
            let Some(new) = (self.step)(&r.key, &r.value, old_v.clone()) else {
                continue;
            };
            let ts = r.timestamp.max(old_ts);
            let bytes = self
                .store
                .values
                .serialize(&(ts, new.clone()))
                .map_err(|m| Error::store(&self.store.name, m))?
                .unwrap_or_default();
            self.store.put_raw(ctx, k, bytes)?;
            let key = r.key.clone();
            let mut rec = r.into_with(
                key,
                Change {
                    new: Some(new),
                    old: old_v,
                },
            );
            rec.timestamp = ts;
            out.push(rec);
        }
        self.children.forward(ctx, out)
    }

    fn event(&mut self, ctx: &mut TaskContext, event: Lifecycle) -> Result<()> {
        self.children.event(ctx, event)
    }
}

/// A grouped stream windowed by time.
pub struct TimeWindowedKStream<K, V> {
    grouped: KGroupedStream<K, V>,
    windows: TimeWindows,
}

impl<K, V> std::fmt::Debug for TimeWindowedKStream<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TimeWindowedKStream({:?})", self.windows)
    }
}

impl<K, V> TimeWindowedKStream<K, V>
where
    K: Clone + Send + 'static,
    V: Clone + Send + 'static,
{
    /// Counts the records per key and window.
    pub fn count(&self, materialized: Materialized<K, i64>) -> KTable<Windowed<K>, i64> {
        let materialized = Materialized {
            values: Some(
                materialized
                    .values
                    .clone()
                    .unwrap_or_else(crate::serdes::i64),
            ),
            ..materialized
        };
        self.aggregate(|| 0, |_, _, c| c + 1, materialized)
    }

    /// Combines the values per key and window with `reducer`.
    pub fn reduce(
        &self,
        reducer: impl Fn(V, &V) -> V + Send + Sync + 'static,
        materialized: Materialized<K, V>,
    ) -> KTable<Windowed<K>, V> {
        let values = materialized
            .values
            .clone()
            .unwrap_or_else(|| self.grouped.grouped.values.clone());
        let reducer = Arc::new(reducer);
        self.aggregate_inner(
            Arc::new(move |_, v: &V, acc: Option<V>| match acc {
                None => v.clone(),
                Some(a) => reducer(a, v),
            }),
            Materialized {
                values: Some(values),
                ..materialized
            },
            "KSTREAM-REDUCE-STATE-STORE",
            "KSTREAM-REDUCE",
        )
    }

    /// Folds the values per key and window into an aggregate, starting from `init()`.
    pub fn aggregate<VA>(
        &self,
        init: impl Fn() -> VA + Send + Sync + 'static,
        aggregator: impl Fn(&K, &V, VA) -> VA + Send + Sync + 'static,
        materialized: Materialized<K, VA>,
    ) -> KTable<Windowed<K>, VA>
    where
        VA: Clone + Send + 'static,
    {
        let init = Arc::new(init);
        let aggregator = Arc::new(aggregator);
        self.aggregate_inner(
            Arc::new(move |k, v, acc: Option<VA>| aggregator(k, v, acc.unwrap_or_else(|| init()))),
            materialized,
            "KSTREAM-AGGREGATE-STATE-STORE",
            "KSTREAM-AGGREGATE",
        )
    }

    fn aggregate_inner<VA>(
        &self,
        step: Arc<dyn Fn(&K, &V, Option<VA>) -> VA + Send + Sync>,
        materialized: Materialized<K, VA>,
        store_prefix: &str,
        node_prefix: &str,
    ) -> KTable<Windowed<K>, VA>
    where
        VA: Clone + Send + 'static,
    {
        let (store, stream) = self.grouped.prepare(&materialized, store_prefix);
        let keys = materialized
            .keys
            .clone()
            .unwrap_or_else(|| self.grouped.grouped.keys.clone());
        let values = materialized
            .values
            .clone()
            .unwrap_or_else(missing_serde::<VA>);
        let windows = self.windows;
        let retention = materialized
            .retention_ms
            .unwrap_or(windows.size_ms + windows.grace_ms)
            .max(windows.size_ms + windows.grace_ms);
        let down: Downstream<Windowed<K>, Change<VA>> = Downstream::new();
        let store_name = store.clone();
        let (k2, v2) = (keys.clone(), values.clone());
        let node = stream.add_node(node_prefix, None, down.clone(), move |inst, children| {
            let handle = WindowHandle::of(
                inst.ctx,
                &store_name,
                k2.clone(),
                timestamped(v2.clone()),
                false,
            )?;
            Ok(Box::new(WindowAggregateNode {
                store: handle,
                windows,
                step: step.clone(),
                observed: i64::MIN,
                children,
            }) as Box<dyn Node<K, V>>)
        });
        self.grouped.stream.graph.lock().add_store(
            StoreDef {
                name: store.clone(),
                kind: StoreType::Window {
                    size_ms: windows.size_ms,
                    retention_ms: retention,
                    retain_duplicates: false,
                },
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
            Some(crate::windows::time_windowed_serde(keys, windows.size_ms)),
            Some(values),
            Some(store),
        )
        .windowed(windows.grace_ms)
    }
}

struct WindowAggregateNode<K, V, VA> {
    store: WindowHandle<K, (i64, VA)>,
    windows: TimeWindows,
    step: Aggregator2<K, V, VA>,
    /// The largest timestamp this processor has seen (Kafka's `observedStreamTime`).
    observed: i64,
    children: Children<Windowed<K>, Change<VA>>,
}

type Aggregator2<K, V, VA> = Arc<dyn Fn(&K, &V, Option<VA>) -> VA + Send + Sync>;

impl<K, V, VA> Node<K, V> for WindowAggregateNode<K, V, VA>
where
    K: Clone + Send + 'static,
    V: Clone + Send + 'static,
    VA: Clone + Send + 'static,
{
    fn process(&mut self, ctx: &mut TaskContext, batch: Vec<Record<K, V>>) -> Result<()> {
        let mut out = Vec::with_capacity(batch.len());
        for r in batch {
            let Ok(k) = self.store.key_bytes(&r.key) else {
                ctx.metrics.dropped_records += 1;
                continue;
            };
            self.observed = self.observed.max(r.timestamp);
            let close = self.observed - self.windows.grace_ms;
            for start in self.windows.window_starts(r.timestamp) {
                let end = start + self.windows.size_ms;
                if end <= close {
                    // Later than the grace period: dropped and counted, as Kafka does.
                    ctx.metrics.dropped_late_records += 1;
                    tracing::debug!(
                        start,
                        end,
                        timestamp = r.timestamp,
                        "skipping a record for an expired window"
                    );
                    continue;
                }
                let old = self.store.fetch_raw(ctx, &k, start)?;
                let (old_ts, old_v) = match old {
                    Some((t, v)) => (t, Some(v)),
                    None => (i64::MIN, None),
                };
                let new = (self.step)(&r.key, &r.value, old_v.clone());
                let ts = r.timestamp.max(old_ts);
                let bytes = self
                    .store
                    .values
                    .serialize(&(ts, new.clone()))
                    .map_err(|m| Error::store(&self.store.name, m))?;
                self.store.put_raw(ctx, &k, start, bytes)?;
                let mut rec = r.with(
                    Windowed {
                        key: r.key.clone(),
                        start,
                        end,
                    },
                    Change {
                        new: Some(new),
                        old: old_v,
                    },
                );
                rec.timestamp = ts;
                out.push(rec);
            }
        }
        self.store.observe(ctx, self.observed)?;
        self.children.forward(ctx, out)
    }

    fn event(&mut self, ctx: &mut TaskContext, event: Lifecycle) -> Result<()> {
        self.children.event(ctx, event)
    }
}

/// A grouped stream windowed by sessions.
pub struct SessionWindowedKStream<K, V> {
    grouped: KGroupedStream<K, V>,
    windows: SessionWindows,
}

impl<K, V> std::fmt::Debug for SessionWindowedKStream<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SessionWindowedKStream({:?})", self.windows)
    }
}

impl<K, V> SessionWindowedKStream<K, V>
where
    K: Clone + Send + 'static,
    V: Clone + Send + 'static,
{
    /// Counts the records per key and session.
    pub fn count(&self, materialized: Materialized<K, i64>) -> KTable<Windowed<K>, i64> {
        let materialized = Materialized {
            values: Some(
                materialized
                    .values
                    .clone()
                    .unwrap_or_else(crate::serdes::i64),
            ),
            ..materialized
        };
        self.aggregate(|| 0, |_, _, c| c + 1, |_, a, b| a + b, materialized)
    }

    /// Folds the values per key and session; `merger` combines the aggregates of two sessions
    /// a record joins together.
    pub fn aggregate<VA>(
        &self,
        init: impl Fn() -> VA + Send + Sync + 'static,
        aggregator: impl Fn(&K, &V, VA) -> VA + Send + Sync + 'static,
        merger: impl Fn(&K, VA, VA) -> VA + Send + Sync + 'static,
        materialized: Materialized<K, VA>,
    ) -> KTable<Windowed<K>, VA>
    where
        VA: Clone + Send + 'static,
    {
        let (store, stream) = self
            .grouped
            .prepare(&materialized, "KSTREAM-AGGREGATE-STATE-STORE");
        let keys = materialized
            .keys
            .clone()
            .unwrap_or_else(|| self.grouped.grouped.keys.clone());
        let values = materialized
            .values
            .clone()
            .unwrap_or_else(missing_serde::<VA>);
        let windows = self.windows;
        let retention = materialized
            .retention_ms
            .unwrap_or(windows.gap_ms + windows.grace_ms)
            .max(windows.gap_ms + windows.grace_ms);
        let down: Downstream<Windowed<K>, Change<VA>> = Downstream::new();
        let store_name = store.clone();
        let (k2, v2) = (keys.clone(), values.clone());
        let init = Arc::new(init);
        let aggregator = Arc::new(aggregator);
        let merger = Arc::new(merger);
        let node = stream.add_node(
            "KSTREAM-SESSION-AGGREGATE",
            None,
            down.clone(),
            move |inst, children| {
                let handle = SessionHandle::of(inst.ctx, &store_name, k2.clone(), v2.clone())?;
                Ok(Box::new(SessionAggregateNode {
                    store: handle,
                    windows,
                    init: init.clone(),
                    aggregator: aggregator.clone(),
                    merger: merger.clone(),
                    observed: i64::MIN,
                    children,
                }) as Box<dyn Node<K, V>>)
            },
        );
        self.grouped.stream.graph.lock().add_store(
            StoreDef {
                name: store.clone(),
                kind: StoreType::Session {
                    retention_ms: retention,
                },
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
            Some(crate::windows::session_windowed_serde(keys)),
            Some(values),
            Some(store),
        )
        .windowed(windows.grace_ms)
    }
}

type Init<VA> = Arc<dyn Fn() -> VA + Send + Sync>;
type Agg<K, V, VA> = Arc<dyn Fn(&K, &V, VA) -> VA + Send + Sync>;
type Merger<K, VA> = Arc<dyn Fn(&K, VA, VA) -> VA + Send + Sync>;

struct SessionAggregateNode<K, V, VA> {
    store: SessionHandle<K, VA>,
    windows: SessionWindows,
    init: Init<VA>,
    aggregator: Agg<K, V, VA>,
    merger: Merger<K, VA>,
    observed: i64,
    children: Children<Windowed<K>, Change<VA>>,
}

impl<K, V, VA> Node<K, V> for SessionAggregateNode<K, V, VA>
where
    K: Clone + Send + 'static,
    V: Clone + Send + 'static,
    VA: Clone + Send + 'static,
{
    fn process(&mut self, ctx: &mut TaskContext, batch: Vec<Record<K, V>>) -> Result<()> {
        let mut out = Vec::new();
        for r in batch {
            let Ok(k) = self.store.key_bytes(&r.key) else {
                ctx.metrics.dropped_records += 1;
                continue;
            };
            let ts = r.timestamp;
            self.observed = self.observed.max(ts);
            let close = self.observed - self.windows.grace_ms;
            // Sessions this record touches: those ending at or after ts - gap and starting at or
            // before ts + gap (Kafka's KStreamSessionWindowAggregate).
            let found =
                self.store
                    .find_raw(ctx, &k, ts - self.windows.gap_ms, ts + self.windows.gap_ms)?;
            let mut start = ts;
            let mut end = ts;
            let mut agg = (self.init)();
            for (s, e, v) in &found {
                start = start.min(*s);
                end = end.max(*e);
                agg = (self.merger)(&r.key, agg, v.clone());
            }
            if end < close {
                ctx.metrics.dropped_late_records += 1;
                tracing::debug!(
                    start,
                    end,
                    timestamp = ts,
                    "skipping a record for an expired session"
                );
                continue;
            }
            agg = (self.aggregator)(&r.key, &r.value, agg);
            for (s, e, old) in found {
                if s == start && e == end {
                    continue;
                }
                self.store.remove_raw(ctx, &k, s, e)?;
                out.push(r.with(
                    Windowed {
                        key: r.key.clone(),
                        start: s,
                        end: e,
                    },
                    Change {
                        new: None,
                        old: Some(old),
                    },
                ));
            }
            self.store.put_raw(ctx, &k, start, end, &agg)?;
            out.push(r.with(
                Windowed {
                    key: r.key.clone(),
                    start,
                    end,
                },
                Change {
                    new: Some(agg),
                    old: None,
                },
            ));
        }
        self.store.observe(ctx, self.observed)?;
        self.children.forward(ctx, out)
    }

    fn event(&mut self, ctx: &mut TaskContext, event: Lifecycle) -> Result<()> {
        self.children.event(ctx, event)
    }
}
