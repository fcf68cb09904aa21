//! The Processor API: processors of your own, with state stores, punctuation and forwarding
//! to named children.

use std::marker::PhantomData;

use crate::context::TaskContext;
use crate::error::Result;
use crate::node::{Children, Lifecycle, Node};
use crate::record::Record;

/// When a punctuation fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PunctuationType {
    /// On stream time (advanced by records' timestamps): never fires without input.
    StreamTime,
    /// On the wall clock.
    WallClockTime,
}

/// A processor of your own: takes records of `(KIn, VIn)`, forwards records of
/// `(KOut, VOut)`.
pub trait Processor<KIn, VIn, KOut, VOut>: Send {
    /// Called once per task before the first record: look up stores, schedule punctuations.
    fn init(&mut self, _ctx: &mut ProcessorContext<'_, KOut, VOut>) -> Result<()> {
        Ok(())
    }
    /// Processes one record.
    fn process(
        &mut self,
        ctx: &mut ProcessorContext<'_, KOut, VOut>,
        record: Record<KIn, VIn>,
    ) -> Result<()>;
    /// A punctuation scheduled with [`ProcessorContext::schedule`] fired at `timestamp`.
    fn punctuate(
        &mut self,
        _ctx: &mut ProcessorContext<'_, KOut, VOut>,
        _kind: PunctuationType,
        _timestamp: i64,
    ) -> Result<()> {
        Ok(())
    }
}

/// What a processor sees: the task (stores, stream time), and where its output goes.
pub struct ProcessorContext<'a, K, V> {
    /// The task's context: stores, stream time, wall clock.
    pub task: &'a mut TaskContext,
    out: Vec<(Option<String>, Record<K, V>)>,
    schedules: Vec<(PunctuationType, i64)>,
}

impl<K, V> std::fmt::Debug for ProcessorContext<'_, K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessorContext")
            .field("task", &self.task)
            .finish_non_exhaustive()
    }
}

impl<K, V> ProcessorContext<'_, K, V> {
    /// Sends `record` to every child.
    pub fn forward(&mut self, record: Record<K, V>) {
        self.out.push((None, record));
    }

    /// Sends `record` to the child named `child` only.
    pub fn forward_to(&mut self, child: &str, record: Record<K, V>) {
        self.out.push((Some(child.to_owned()), record));
    }

    /// Calls `punctuate` every `interval_ms` of stream time or wall-clock time (from
    /// `init`).
    pub fn schedule(&mut self, interval_ms: i64, kind: PunctuationType) {
        self.schedules.push((kind, interval_ms.max(1)));
    }

    /// The topic of the record being processed, when it came from a source.
    pub fn topic_of(&self, record: &Record<impl Sized, impl Sized>) -> Option<&str> {
        self.task.topic_of(record.origin.topic)
    }
}

/// The node running a [`Processor`].
pub(crate) struct ProcessorNode<KIn, VIn, KOut, VOut, P> {
    processor: P,
    children: Children<KOut, VOut>,
    /// Scheduled punctuations: kind, interval, next time due.
    schedules: Vec<(PunctuationType, i64, Option<i64>)>,
    _p: PhantomData<fn(KIn, VIn)>,
}

impl<KIn, VIn, KOut, VOut, P> ProcessorNode<KIn, VIn, KOut, VOut, P>
where
    KIn: Send + 'static,
    VIn: Send + 'static,
    KOut: Clone + Send + 'static,
    VOut: Clone + Send + 'static,
    P: Processor<KIn, VIn, KOut, VOut> + 'static,
{
    pub(crate) fn boxed(
        processor: P,
        _ctx: &TaskContext,
        children: Children<KOut, VOut>,
    ) -> Result<Box<dyn Node<KIn, VIn>>> {
        Ok(Box::new(Self {
            processor,
            children,
            schedules: Vec::new(),
            _p: PhantomData,
        }) as Box<dyn Node<KIn, VIn>>)
    }

    fn drain(
        &mut self,
        task: &mut TaskContext,
        out: Vec<(Option<String>, Record<KOut, VOut>)>,
    ) -> Result<()> {
        for (to, r) in out {
            match to {
                None => self.children.forward_one(task, r)?,
                Some(name) => {
                    if !self.children.forward_to(task, &name, vec![r])? {
                        return Err(crate::Error::Topology(format!(
                            "forward_to(\"{name}\"): the processor has no child of that name"
                        )));
                    }
                }
            }
        }
        Ok(())
    }

    fn run(
        &mut self,
        task: &mut TaskContext,
        f: impl FnOnce(&mut P, &mut ProcessorContext<'_, KOut, VOut>) -> Result<()>,
    ) -> Result<()> {
        let mut pc = ProcessorContext {
            task,
            out: Vec::new(),
            schedules: Vec::new(),
        };
        f(&mut self.processor, &mut pc)?;
        let ProcessorContext {
            task,
            out,
            schedules,
        } = pc;
        for (kind, interval) in schedules {
            self.schedules.push((kind, interval, None));
        }
        self.drain(task, out)
    }
}

impl<KIn, VIn, KOut, VOut, P> Node<KIn, VIn> for ProcessorNode<KIn, VIn, KOut, VOut, P>
where
    KIn: Send + 'static,
    VIn: Send + 'static,
    KOut: Clone + Send + 'static,
    VOut: Clone + Send + 'static,
    P: Processor<KIn, VIn, KOut, VOut> + 'static,
{
    fn process(&mut self, ctx: &mut TaskContext, batch: Vec<Record<KIn, VIn>>) -> Result<()> {
        for r in batch {
            self.run(ctx, |p, pc| p.process(pc, r))?;
        }
        Ok(())
    }

    fn event(&mut self, ctx: &mut TaskContext, event: Lifecycle) -> Result<()> {
        match event {
            Lifecycle::Init => self.run(ctx, |p, pc| p.init(pc))?,
            Lifecycle::StreamTime(t) | Lifecycle::WallClock(t) => {
                let kind = if matches!(event, Lifecycle::StreamTime(_)) {
                    PunctuationType::StreamTime
                } else {
                    PunctuationType::WallClockTime
                };
                for i in 0..self.schedules.len() {
                    let (k, interval, next) = self.schedules[i];
                    if k != kind {
                        continue;
                    }
                    // The first punctuation is due one interval after the time first seen.
                    let due = next.unwrap_or(t + interval);
                    if t >= due {
                        self.run(ctx, |p, pc| p.punctuate(pc, kind, t))?;
                        // Next due: the first multiple of the interval after `t`, as Kafka
                        // skips missed punctuations.
                        let missed = (t - due) / interval;
                        self.schedules[i].2 = Some(due + (missed + 1) * interval);
                    } else {
                        self.schedules[i].2 = Some(due);
                    }
                }
            }
            Lifecycle::Flush => {}
        }
        self.children.event(ctx, event)
    }
}
