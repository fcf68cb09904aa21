//! The running form of a topology's processors: typed nodes, each holding its children, built
//! per task from the factories the DSL registered.

use std::any::Any;
use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::context::TaskContext;
use crate::error::Result;
use crate::record::Record;

/// What the task tells every node besides records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lifecycle {
    /// The task is built: processors look up stores and schedule punctuations.
    Init,
    /// Stream time reached this (after records were processed).
    StreamTime(i64),
    /// Wall-clock time is this.
    WallClock(i64),
    /// A commit is coming: flush what is buffered (caches) downstream.
    Flush,
}

/// A processor node taking records of `(K, V)`.
pub(crate) trait Node<K, V>: Send {
    /// Processes a batch of records, in order.
    fn process(&mut self, ctx: &mut TaskContext, batch: Vec<Record<K, V>>) -> Result<()>;
    /// Reacts to a lifecycle event, then passes it on to its children.
    fn event(&mut self, ctx: &mut TaskContext, event: Lifecycle) -> Result<()>;
}

/// The children of a node, with their names (for `forward_to`).
pub(crate) struct Children<K, V> {
    pub(crate) nodes: Vec<(Arc<str>, Box<dyn Node<K, V>>)>,
}

impl<K: Clone, V: Clone> Children<K, V> {
    /// Sends `batch` to every child (clones for all but the last).
    pub(crate) fn forward(
        &mut self,
        ctx: &mut TaskContext,
        batch: Vec<Record<K, V>>,
    ) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let n = self.nodes.len();
        if n == 0 {
            return Ok(());
        }
        for (_, child) in &mut self.nodes[..n - 1] {
            child.process(ctx, batch.clone())?;
        }
        self.nodes[n - 1].1.process(ctx, batch)
    }

    /// Sends one record to every child.
    pub(crate) fn forward_one(
        &mut self,
        ctx: &mut TaskContext,
        record: Record<K, V>,
    ) -> Result<()> {
        self.forward(ctx, vec![record])
    }

    /// Sends `batch` to the child named `name` only.
    pub(crate) fn forward_to(
        &mut self,
        ctx: &mut TaskContext,
        name: &str,
        batch: Vec<Record<K, V>>,
    ) -> Result<bool> {
        match self.nodes.iter_mut().find(|(n, _)| &**n == name) {
            Some((_, child)) => {
                if !batch.is_empty() {
                    child.process(ctx, batch)?;
                }
                Ok(true)
            }
            None => Ok(false),
        }
    }
}

impl<K, V> Children<K, V> {
    pub(crate) fn event(&mut self, ctx: &mut TaskContext, event: Lifecycle) -> Result<()> {
        for (_, child) in &mut self.nodes {
            child.event(ctx, event)?;
        }
        Ok(())
    }
}

/// Builds the node a parent sends records to, for one task.
pub(crate) type ChildFactory<K, V> =
    Arc<dyn Fn(&mut Instantiator<'_>) -> Result<Box<dyn Node<K, V>>> + Send + Sync>;

/// The children a stream's operators registered, shared by the DSL handle and the parent's
/// factory (children added after the parent are seen when a task is built).
pub(crate) struct Downstream<K, V> {
    pub(crate) list: Arc<Mutex<Vec<(Arc<str>, ChildFactory<K, V>)>>>,
}

impl<K, V> Clone for Downstream<K, V> {
    fn clone(&self) -> Self {
        Self {
            list: self.list.clone(),
        }
    }
}

impl<K: 'static, V: 'static> Downstream<K, V> {
    pub(crate) fn new() -> Self {
        Self {
            list: Arc::new(Mutex::new(Vec::new())),
        }
    }

    pub(crate) fn push(&self, name: Arc<str>, factory: ChildFactory<K, V>) {
        self.list.lock().push((name, factory));
    }

    /// Builds the children for one task.
    pub(crate) fn build(&self, inst: &mut Instantiator<'_>) -> Result<Children<K, V>> {
        let factories: Vec<_> = self.list.lock().clone();
        let mut nodes = Vec::with_capacity(factories.len());
        for (name, f) in factories {
            nodes.push((name, f(inst)?));
        }
        Ok(Children { nodes })
    }
}

/// Builds a task's nodes: gives them its context (to find their stores) and builds a node with
/// several parents (a merge) once, shared by them.
pub(crate) struct Instantiator<'a> {
    pub(crate) ctx: &'a TaskContext,
    pub(crate) shared: HashMap<usize, Box<dyn Any + Send>>,
}

/// A node with several parents: one instance behind a lock, each parent holding a handle.
pub(crate) struct SharedNode<K, V> {
    pub(crate) inner: Arc<Mutex<Children<K, V>>>,
    /// The last lifecycle event passed on, so that it reaches the children once, not once per
    /// parent.
    pub(crate) last_event: Arc<Mutex<Option<Lifecycle>>>,
}

impl<K: Clone + Send + 'static, V: Clone + Send + 'static> Node<K, V> for SharedNode<K, V> {
    fn process(&mut self, ctx: &mut TaskContext, batch: Vec<Record<K, V>>) -> Result<()> {
        self.inner.lock().forward(ctx, batch)
    }

    fn event(&mut self, ctx: &mut TaskContext, event: Lifecycle) -> Result<()> {
        {
            let mut last = self.last_event.lock();
            if *last == Some(event) {
                return Ok(());
            }
            *last = Some(event);
        }
        self.inner.lock().event(ctx, event)
    }
}

/// A node from closures: `process` maps a batch to the batch forwarded (stateless operators).
pub(crate) struct MapBatch<K, V, K2, V2, F> {
    pub(crate) f: F,
    pub(crate) children: Children<K2, V2>,
    pub(crate) _p: std::marker::PhantomData<fn(K, V)>,
}

impl<K, V, K2, V2, F> Node<K, V> for MapBatch<K, V, K2, V2, F>
where
    K: Send + 'static,
    V: Send + 'static,
    K2: Clone + Send + 'static,
    V2: Clone + Send + 'static,
    F: FnMut(&mut TaskContext, Vec<Record<K, V>>) -> Result<Vec<Record<K2, V2>>> + Send,
{
    fn process(&mut self, ctx: &mut TaskContext, batch: Vec<Record<K, V>>) -> Result<()> {
        let out = (self.f)(ctx, batch)?;
        self.children.forward(ctx, out)
    }
    fn event(&mut self, ctx: &mut TaskContext, event: Lifecycle) -> Result<()> {
        self.children.event(ctx, event)
    }
}
