//! The log manager: one data directory of topics, their partitions and configs, the lock file,
//! checkpoints, the flusher, and background retention and compaction.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::{Condvar, Mutex, RwLock};

use super::cleaner::{self, CleanerOptions, CleanerStats};
use super::files::FileCache;
use super::flusher::FlusherHandle;
use super::page_cache::PageCacheWindow;
use super::partition::Partition;
use super::topic_id::{self, TopicId};
use super::{LogContext, checkpoint, loader};
use crate::config::{ConfigEntry, TopicConfig};
use crate::txn::ProducerIdManager;
use crate::{Error, Result, SharedClock, SystemClock, TopicPartition, names};

const RECOVERY_CHECKPOINT: &str = "recovery-point-offset-checkpoint";
const LOG_START_CHECKPOINT: &str = "log-start-offset-checkpoint";
const CLEANER_CHECKPOINT: &str = "cleaner-offset-checkpoint";
/// Where topic configs lived before they moved into partition 0's directory: read (as
/// `<topic>.properties`) when a topic has no [`TOPIC_CONFIG_FILE`] yet, never written.
const LEGACY_CONFIG_DIR: &str = "topic-configs";
/// A topic's config overrides, in its partition 0's directory (`<topic>-0/topic.properties`):
/// a name of fixed length, so every valid topic name fits (`topic-configs/<topic>.properties`
/// made a 249-character name 260 bytes long, over the file system's 255), and the config goes
/// with the topic's data when it is deleted.
const TOPIC_CONFIG_FILE: &str = "topic.properties";
/// The file a new [`TOPIC_CONFIG_FILE`] is written to before it is renamed into place.
const TOPIC_CONFIG_TMP: &str = "topic.properties.tmp";
const LOCK_FILE: &str = ".lock";

/// How to open a data directory.
#[derive(Debug, Clone)]
pub struct LogManagerConfig {
    /// The data directory (Kafka's `log.dirs`, one directory).
    pub dir: PathBuf,
    /// Topic config defaults (broker-level `log.*` settings), overridden per topic.
    pub defaults: TopicConfig,
    /// Where time comes from.
    pub clock: SharedClock,
    /// Most segment files kept open at once.
    pub max_open_files: usize,
    /// Run retention, checkpoints and `flush.ms` in a background thread.
    pub background: bool,
    /// How often the background thread checks retention (`log.retention.check.interval.ms`).
    pub retention_check_interval: Duration,
    /// How often recovery points are checkpointed (`log.flush.offset.checkpoint.interval.ms`).
    pub checkpoint_interval: Duration,
    /// How often the background cleaner looks for partitions to compact (Kafka's
    /// `log.cleaner.backoff.ms` between passes; default 15 s).
    pub cleaner_interval: Duration,
    /// Memory the cleaner's offset map may use (`log.cleaner.dedupe.buffer.size`, default
    /// 128 MiB); a pass cleans fewer segments when it fills.
    pub cleaner_dedupe_buffer_size: usize,
    /// `producer.id.expiration.ms`: how long a partition remembers an idempotent producer that
    /// stopped writing (default one day, [`super::DEFAULT_PRODUCER_ID_EXPIRATION_MS`]).
    pub producer_id_expiration_ms: i64,
    /// The page-cache window (`log.page.cache.window.bytes`, see [`PageCacheWindow`]): bytes
    /// behind each partition's log end kept in the page cache; older data is written back and
    /// dropped from it, so new writes reuse recently freed pages. The default, `Auto`, bounds
    /// it only where the host reclaims free memory; readers of dropped data read the disk.
    pub page_cache_window: PageCacheWindow,
}

impl LogManagerConfig {
    /// Defaults for a data directory: Kafka's topic defaults, the system clock, background on.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            defaults: TopicConfig::default(),
            clock: Arc::new(SystemClock),
            max_open_files: default_max_open_files(),
            background: true,
            retention_check_interval: Duration::from_secs(300),
            checkpoint_interval: Duration::from_secs(5),
            cleaner_interval: Duration::from_secs(15),
            cleaner_dedupe_buffer_size: cleaner::DEFAULT_DEDUPE_BUFFER_SIZE,
            producer_id_expiration_ms: super::DEFAULT_PRODUCER_ID_EXPIRATION_MS,
            page_cache_window: PageCacheWindow::Auto,
        }
    }
}

/// Half the process's soft limit on open files (read from `/proc/self/limits`), between 64 and
/// 8192: segment handles beyond it are closed, least recently used first.
fn default_max_open_files() -> usize {
    let soft = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3))
                .and_then(|v| v.parse::<usize>().ok())
        });
    soft.map_or(1024, |n| n / 2).clamp(64, 8192)
}

/// One topic as the manager holds it.
#[derive(Debug)]
struct Topic {
    /// Its id, as every partition directory's `partition.metadata` has it.
    id: TopicId,
    config: RwLock<Arc<TopicConfig>>,
    partitions: RwLock<Arc<Vec<Arc<Partition>>>>,
}

/// What `describe` tells of a topic.
#[derive(Debug, Clone)]
pub struct TopicDescription {
    /// Topic name.
    pub name: String,
    /// Internal topics start with `__`.
    pub internal: bool,
    /// Per partition: (partition, log start offset, log end offset, bytes, segments).
    pub partitions: Vec<PartitionDescription>,
    /// Every config with its value and whether it is the default.
    pub configs: Vec<ConfigEntry>,
}

/// One partition in a [`TopicDescription`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionDescription {
    /// Partition number.
    pub partition: i32,
    /// First offset held.
    pub log_start_offset: i64,
    /// Next offset to be written (= high watermark).
    pub log_end_offset: i64,
    /// Bytes on disk.
    pub size_bytes: u64,
    /// Segment count.
    pub segments: usize,
    /// Why it is offline, if it is.
    pub offline: Option<String>,
}

#[derive(Debug)]
struct Inner {
    dir: PathBuf,
    ctx: Arc<LogContext>,
    defaults: TopicConfig,
    topics: RwLock<BTreeMap<String, Arc<Topic>>>,
    /// Topic names by id; changed with `topics`, under `admin`.
    topic_ids: RwLock<HashMap<TopicId, String>>,
    /// Serializes create/delete/alter of topics.
    admin: Mutex<()>,
    /// The directory's lock file, held until the log closes (not until the last handle goes:
    /// a thread may still hold one for a moment after `close`, and the directory must be
    /// free to reopen by then).
    lock: Mutex<Option<File>>,
    closed: AtomicBool,
    stop: Arc<(Mutex<bool>, Condvar)>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    /// How far each partition has been cleaned (`cleaner-offset-checkpoint`).
    cleaner_offsets: Mutex<HashMap<TopicPartition, i64>>,
    /// Held for a whole cleaner pass: one pass at a time, and close waits for it.
    cleaner_pass: Mutex<()>,
    dedupe_buffer_size: usize,
    producer_ids: ProducerIdManager,
    /// The node of this log (its coordinators: [`crate::node::Node`]), held weakly (its
    /// coordinators hold the log, so a strong reference would keep the log from closing on its
    /// last drop): at most one is alive per log, and every client of the log finds it here.
    node: Mutex<crate::node::NodeSlot>,
}

/// A data directory of topics. Cheap to clone; the last clone's drop closes it cleanly.
#[derive(Debug, Clone)]
pub struct LogManager {
    inner: Arc<Inner>,
}

impl LogManager {
    /// Opens (creating if needed) the data directory, locking it against other processes and
    /// recovering every partition.
    pub fn open(config: LogManagerConfig) -> Result<Self> {
        let dir = config.dir.clone();
        if std::fs::metadata(&dir).is_ok_and(|m| !m.is_dir()) {
            // create_dir_all would say "File exists".
            return Err(Error::io(
                &dir,
                std::io::Error::new(
                    std::io::ErrorKind::NotADirectory,
                    format!("log directory {} is not a directory", dir.display()),
                ),
            ));
        }
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let lock = lock_dir(&dir)?;
        let (flusher, flusher_thread) = FlusherHandle::start().map_err(|e| Error::io(&dir, e))?;
        let ctx = Arc::new(LogContext {
            dir: dir.clone(),
            files: FileCache::new(config.max_open_files),
            clock: Arc::clone(&config.clock),
            producer_id_expiration_ms: config.producer_id_expiration_ms.max(1),
            offline: AtomicBool::new(false),
            flusher: flusher.clone(),
            data_arrived: Arc::new(tokio::sync::Notify::new()),
        });
        let producer_ids = ProducerIdManager::open(&dir)?;
        let recovery = checkpoint::read(&dir.join(RECOVERY_CHECKPOINT));
        let starts = checkpoint::read(&dir.join(LOG_START_CHECKPOINT));
        let cleaned = checkpoint::read(&dir.join(CLEANER_CHECKPOINT));
        let topics = load_topics(&dir, &ctx, &config.defaults, &recovery, &starts)?;
        let topic_ids = topics.iter().map(|(n, t)| (t.id, n.clone())).collect();
        let inner = Arc::new(Inner {
            dir,
            ctx,
            defaults: config.defaults.clone(),
            topics: RwLock::new(topics),
            topic_ids: RwLock::new(topic_ids),
            admin: Mutex::new(()),
            lock: Mutex::new(Some(lock)),
            closed: AtomicBool::new(false),
            stop: Arc::new((Mutex::new(false), Condvar::new())),
            threads: Mutex::new(vec![flusher_thread]),
            cleaner_offsets: Mutex::new(cleaned),
            cleaner_pass: Mutex::new(()),
            dedupe_buffer_size: config.cleaner_dedupe_buffer_size,
            producer_ids,
            node: Mutex::new(crate::node::NodeSlot::default()),
        });
        let weak = Arc::downgrade(&inner);
        flusher.set_resolver(Box::new(move |tp| {
            weak.upgrade().and_then(|i| partition_of(&i, tp).ok())
        }));
        let mgr = LogManager { inner };
        // What was recovered is now known to be on disk: checkpoint it.
        mgr.checkpoint()?;
        if config.background {
            mgr.start_background(&config)?;
            mgr.start_cleaner(config.cleaner_interval)?;
            let window = config.page_cache_window.resolve();
            tracing::info!(
                setting = %config.page_cache_window,
                window_bytes = window.map_or(-1, |w| i64::try_from(w).unwrap_or(i64::MAX)),
                "page-cache window"
            );
            if let Some(window) = window {
                mgr.start_page_cache_window(window)?;
            }
        }
        tracing::info!(dir = %mgr.inner.dir.display(), topics = mgr.inner.topics.read().len(), "log opened");
        Ok(mgr)
    }

    fn start_background(&self, config: &LogManagerConfig) -> Result<()> {
        let retention_every = config.retention_check_interval;
        let checkpoint_every = config.checkpoint_interval;
        let tick = checkpoint_every
            .min(retention_every)
            .min(Duration::from_millis(1000));
        let mut since_retention = Duration::ZERO;
        let mut since_checkpoint = Duration::ZERO;
        self.spawn_periodic("sluice-log-scheduler", tick, move |mgr| {
            since_retention += tick;
            since_checkpoint += tick;
            mgr.flush_due();
            if since_retention >= retention_every {
                since_retention = Duration::ZERO;
                if let Err(e) = mgr.run_retention() {
                    tracing::warn!(error = %crate::report(&e), "retention pass failed");
                }
            }
            if since_checkpoint >= checkpoint_every {
                since_checkpoint = Duration::ZERO;
                if let Err(e) = mgr.checkpoint() {
                    tracing::warn!(error = %crate::report(&e), "checkpoint failed");
                }
            }
        })
    }

    /// The page-cache window's thread: every partition checked every 100 ms.
    fn start_page_cache_window(&self, window: u64) -> Result<()> {
        self.spawn_periodic(
            "sluice-log-page-cache",
            Duration::from_millis(100),
            move |mgr| {
                for p in mgr.all_partitions() {
                    if let Err(e) = p.drop_cache_behind(window) {
                        tracing::warn!(tp = %p.topic_partition(), error = %crate::report(&e), "page-cache window failed");
                    }
                }
            },
        )
    }

    /// The cleaner thread: a pass every `every`, until the log closes.
    fn start_cleaner(&self, every: Duration) -> Result<()> {
        self.spawn_periodic("sluice-log-cleaner", every, |mgr| {
            if let Err(e) = mgr.run_cleaner() {
                tracing::warn!(error = %crate::report(&e), "cleaner pass failed");
            }
        })
    }

    /// A background thread running `work` every `every` until the log closes. Between runs it
    /// holds only the stop signal, not the log, so dropping the last handle closes the log.
    pub(crate) fn spawn_periodic(
        &self,
        name: &str,
        every: Duration,
        mut work: impl FnMut(&LogManager) + Send + 'static,
    ) -> Result<()> {
        let weak: Weak<Inner> = Arc::downgrade(&self.inner);
        let stop = Arc::clone(&self.inner.stop);
        let t = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                loop {
                    {
                        let (m, c) = &*stop;
                        let mut stopped = m.lock();
                        if !*stopped {
                            c.wait_for(&mut stopped, every);
                        }
                        if *stopped {
                            return;
                        }
                    }
                    let Some(inner) = weak.upgrade() else { return };
                    work(&LogManager { inner });
                }
            })
            .map_err(|e| Error::io(&self.inner.dir, e))?;
        self.inner.threads.lock().push(t);
        Ok(())
    }

    /// The log's reference to its node (see [`crate::node::Node::of`]).
    pub(crate) fn node_slot(&self) -> &Mutex<crate::node::NodeSlot> {
        &self.inner.node
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// The clock this log runs on.
    pub fn clock(&self) -> &SharedClock {
        &self.inner.ctx.clock
    }

    /// Broker-level topic defaults.
    pub fn defaults(&self) -> &TopicConfig {
        &self.inner.defaults
    }

    /// Creates a topic of `partitions` partitions with config overrides.
    pub fn create_topic<K: AsRef<str>, V: AsRef<str>>(
        &self,
        name: &str,
        partitions: i32,
        overrides: impl IntoIterator<Item = (K, V)>,
    ) -> Result<()> {
        names::validate_topic_name(name)?;
        if partitions < 1 {
            return Err(Error::InvalidPartitions {
                count: partitions,
                reason: "a topic needs at least one partition".into(),
            });
        }
        let config = Arc::new(TopicConfig::with_overrides(
            &self.inner.defaults,
            overrides,
        )?);
        let _admin = self.inner.admin.lock();
        self.inner.ctx.check_writable()?;
        if self.inner.topics.read().contains_key(name) {
            return Err(Error::TopicExists(name.to_owned()));
        }
        // Kafka refuses names that collide once '.' and '_' are treated alike (metric names).
        if names::has_collision_chars(name) {
            let norm = |s: &str| s.replace('.', "_");
            if let Some(other) = self
                .inner
                .topics
                .read()
                .keys()
                .find(|t| norm(t) == norm(name))
            {
                return Err(Error::InvalidTopicName {
                    name: name.to_owned(),
                    reason: format!(
                        "collides with existing topic \"{other}\" ('.' and '_' collide)"
                    ),
                });
            }
        }
        let id = loop {
            let id = TopicId::random()?;
            if !self.inner.topic_ids.read().contains_key(&id) {
                break id;
            }
        };
        write_topic_config(&self.inner.dir, name, &config)?;
        // Partition 0's directory holds the config: it exists now.
        let mut parts = Vec::with_capacity(partitions as usize);
        for p in 0..partitions {
            parts.push(self.create_partition(name, id, p, &config)?);
        }
        checkpoint::sync_dir(&self.inner.dir)?;
        self.inner.topics.write().insert(
            name.to_owned(),
            Arc::new(Topic {
                id,
                config: RwLock::new(config),
                partitions: RwLock::new(Arc::new(parts)),
            }),
        );
        self.inner.topic_ids.write().insert(id, name.to_owned());
        tracing::info!(topic = name, topic_id = %id, partitions, "topic created");
        Ok(())
    }

    fn create_partition(
        &self,
        topic: &str,
        id: TopicId,
        p: i32,
        config: &Arc<TopicConfig>,
    ) -> Result<Arc<Partition>> {
        let tp = TopicPartition::new(topic, p);
        let pdir = self.inner.dir.join(tp.dir_name());
        std::fs::create_dir_all(&pdir).map_err(|e| Error::io(&pdir, e))?;
        topic_id::write(&pdir, id)?;
        let part = loader::open_partition(
            &pdir,
            tp,
            &self.inner.ctx,
            Arc::clone(config),
            Some(0),
            Some(0),
        )?;
        checkpoint::sync_dir(&pdir)?;
        Ok(Arc::new(part))
    }

    /// Adds partitions to a topic, up to `total` (Kafka's CreatePartitions: never fewer).
    pub fn create_partitions(&self, name: &str, total: i32) -> Result<()> {
        let _admin = self.inner.admin.lock();
        let topic = self.topic(name)?;
        let current = topic.partitions.read().len() as i32;
        if total <= current {
            return Err(Error::InvalidPartitions {
                count: total,
                reason: format!(
                    "topic \"{name}\" already has {current} partitions; partitions can only be added"
                ),
            });
        }
        let config = Arc::clone(&topic.config.read());
        let mut parts = Vec::clone(&topic.partitions.read());
        for p in current..total {
            parts.push(self.create_partition(name, topic.id, p, &config)?);
        }
        *topic.partitions.write() = Arc::new(parts);
        Ok(())
    }

    /// Deletes a topic and its data.
    pub fn delete_topic(&self, name: &str) -> Result<()> {
        let _admin = self.inner.admin.lock();
        let topic = self
            .inner
            .topics
            .write()
            .remove(name)
            .ok_or_else(|| Error::UnknownTopic(name.to_owned()))?;
        self.inner.topic_ids.write().remove(&topic.id);
        for p in topic.partitions.read().iter() {
            p.close();
            // Rename first so a crash mid-delete leaves no half partition behind.
            let doomed = self.inner.dir.join(doomed_dir_name(p.topic_partition()));
            let target = match std::fs::rename(p.dir(), &doomed) {
                Ok(()) => doomed,
                Err(_) => p.dir().to_path_buf(),
            };
            if let Err(e) = std::fs::remove_dir_all(&target) {
                tracing::warn!(dir = %target.display(), error = %e, "could not remove deleted partition");
            }
        }
        self.inner
            .cleaner_offsets
            .lock()
            .retain(|tp, _| &*tp.topic != name);
        remove_legacy_topic_config(&self.inner.dir, name);
        tracing::info!(topic = name, "topic deleted");
        Ok(())
    }

    /// Topic names, sorted.
    pub fn list_topics(&self) -> Vec<String> {
        self.inner.topics.read().keys().cloned().collect()
    }

    fn topic(&self, name: &str) -> Result<Arc<Topic>> {
        self.inner
            .topics
            .read()
            .get(name)
            .cloned()
            .ok_or_else(|| Error::UnknownTopic(name.to_owned()))
    }

    /// A topic's id (Kafka's KIP-516 topic id, kept in each partition's `partition.metadata`).
    pub fn topic_id(&self, name: &str) -> Result<TopicId> {
        Ok(self.topic(name)?.id)
    }

    /// The name of the topic with id `id`, if there is one.
    pub fn topic_name(&self, id: TopicId) -> Option<String> {
        self.inner.topic_ids.read().get(&id).cloned()
    }

    /// Number of partitions of a topic.
    pub fn partition_count(&self, name: &str) -> Result<i32> {
        Ok(self.topic(name)?.partitions.read().len() as i32)
    }

    /// One partition.
    pub fn partition(&self, tp: &TopicPartition) -> Result<Arc<Partition>> {
        partition_of(&self.inner, tp)
    }

    /// Every partition of a topic.
    pub fn partitions(&self, name: &str) -> Result<Arc<Vec<Arc<Partition>>>> {
        Ok(Arc::clone(&self.topic(name)?.partitions.read()))
    }

    /// A topic's config.
    pub fn topic_config(&self, name: &str) -> Result<Arc<TopicConfig>> {
        Ok(Arc::clone(&self.topic(name)?.config.read()))
    }

    /// Describes a topic: partitions with their offsets and sizes, and every config.
    pub fn describe_topic(&self, name: &str) -> Result<TopicDescription> {
        let topic = self.topic(name)?;
        let partitions = topic
            .partitions
            .read()
            .iter()
            .map(|p| PartitionDescription {
                partition: p.topic_partition().partition,
                log_start_offset: p.log_start_offset(),
                log_end_offset: p.log_end_offset(),
                size_bytes: p.size_bytes(),
                segments: p.segment_count(),
                offline: p.read(p.log_end_offset(), 0).err().map(|e| e.to_string()),
            })
            .collect();
        let configs = topic.config.read().describe();
        Ok(TopicDescription {
            name: name.to_owned(),
            internal: names::is_internal(name),
            partitions,
            configs,
        })
    }

    /// Alters a topic's configs incrementally: sets `set`, returns `delete` to defaults. All
    /// are validated before any applies.
    pub fn alter_topic_config<K: AsRef<str>, V: AsRef<str>, D: AsRef<str>>(
        &self,
        name: &str,
        set: impl IntoIterator<Item = (K, V)>,
        delete: impl IntoIterator<Item = D>,
    ) -> Result<()> {
        let _admin = self.inner.admin.lock();
        let topic = self.topic(name)?;
        let mut cfg = TopicConfig::clone(&topic.config.read());
        cfg.apply(set, delete)?;
        write_topic_config(&self.inner.dir, name, &cfg)?;
        let cfg = Arc::new(cfg);
        for p in topic.partitions.read().iter() {
            p.set_config(Arc::clone(&cfg));
        }
        *topic.config.write() = cfg;
        Ok(())
    }

    /// Runs retention over every partition now. Returns segments deleted.
    pub fn run_retention(&self) -> Result<usize> {
        let mut n = 0;
        for p in self.all_partitions() {
            match p.apply_retention() {
                Ok(k) => n += k,
                Err(e) => {
                    tracing::warn!(tp = %p.topic_partition(), error = %crate::report(&e), "retention failed")
                }
            }
        }
        Ok(n)
    }

    /// Runs one cleaner pass now over every partition whose `cleanup.policy` includes
    /// `compact` and whose dirty ratio reached `min.cleanable.dirty.ratio` (or whose dirty
    /// records passed `max.compaction.lag.ms`). Never blocks appends or reads for long; one pass
    /// runs at a time. See the `cleaner` module docs for what is kept.
    pub fn run_cleaner(&self) -> Result<CleanerStats> {
        self.clean(false)
    }

    /// Like [`LogManager::run_cleaner`], but cleans every compacted partition that has a
    /// cleanable segment whatever its dirty ratio (tests, admin tools).
    pub fn run_cleaner_forced(&self) -> Result<CleanerStats> {
        self.clean(true)
    }

    fn clean(&self, force: bool) -> Result<CleanerStats> {
        let inner = &self.inner;
        let closed = || inner.closed.load(Ordering::Acquire);
        if closed() {
            return Err(Error::Closed("log"));
        }
        let _pass = inner.cleaner_pass.lock();
        let opts = CleanerOptions {
            force,
            dedupe_buffer_size: inner.dedupe_buffer_size,
        };
        let mut total = CleanerStats::default();
        let mut moved = false;
        for p in self.all_partitions() {
            if closed() {
                break;
            }
            if !p.config().cleanup_policy.compact {
                continue;
            }
            let tp = p.topic_partition();
            let first_dirty = inner.cleaner_offsets.lock().get(tp).copied();
            match cleaner::clean_partition(&p, first_dirty, &opts, &closed) {
                Ok(Some(outcome)) => {
                    total.add(&outcome.stats);
                    if let Some(offset) = outcome.checkpoint {
                        inner.cleaner_offsets.lock().insert(tp.clone(), offset);
                        moved = true;
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    total.partitions_failed += 1;
                    tracing::warn!(tp = %tp, error = %crate::report(&e), "cleaning failed");
                }
            }
        }
        if moved {
            self.write_cleaner_checkpoint()?;
        }
        Ok(total)
    }

    /// Writes `cleaner-offset-checkpoint` for the partitions that exist now.
    fn write_cleaner_checkpoint(&self) -> Result<()> {
        let entries: Vec<_> = {
            let offsets = self.inner.cleaner_offsets.lock();
            let mut v: Vec<_> = self
                .all_partitions()
                .iter()
                .filter_map(|p| {
                    let tp = p.topic_partition();
                    offsets.get(tp).map(|&o| (tp.clone(), o))
                })
                .collect();
            v.sort();
            v
        };
        checkpoint::write(&self.inner.dir.join(CLEANER_CHECKPOINT), &entries)
    }

    fn flush_due(&self) {
        let now = self.inner.ctx.clock.now_ms();
        for p in self.all_partitions() {
            let c = p.config();
            if c.flush_ms < i64::MAX
                && p.log_end_offset() > p.recovery_point()
                && now - p.last_flush_ms() >= c.flush_ms
                && let Err(e) = p.flush()
            {
                tracing::warn!(tp = %p.topic_partition(), error = %crate::report(&e), "flush failed");
            }
        }
    }

    pub(crate) fn all_partitions(&self) -> Vec<Arc<Partition>> {
        self.inner
            .topics
            .read()
            .values()
            .flat_map(|t| t.partitions.read().iter().cloned().collect::<Vec<_>>())
            .collect()
    }

    /// Writes the recovery-point and log-start checkpoints.
    pub fn checkpoint(&self) -> Result<()> {
        write_checkpoints(&self.inner.dir, &self.all_partitions())
    }

    /// fsyncs every partition.
    pub fn flush_all(&self) -> Result<()> {
        for p in self.all_partitions() {
            p.flush()?;
        }
        Ok(())
    }

    /// A wake-up at the next append to any of `tps` (or the deletion of one), registered now:
    /// make it, then read, then await it. While one of them does not exist, any append to
    /// the log wakes it too, so a partition created meanwhile is noticed.
    pub fn next_append_to<'a>(
        &self,
        tps: impl IntoIterator<Item = &'a TopicPartition>,
    ) -> super::AppendSignal {
        let mut parts = Vec::new();
        let mut missing = false;
        for tp in tps {
            match self.partition(tp) {
                Ok(p) => parts.push(p),
                Err(_) => missing = true,
            }
        }
        let global = missing.then_some(&self.inner.ctx.data_arrived);
        super::AppendSignal::new(parts.iter().map(|p| p.new_data()).chain(global))
    }

    /// A new idempotent producer's id and epoch (Kafka's `InitProducerId` without a
    /// `transactional.id`): an id never handed out before by this data directory, epoch 0.
    ///
    /// Transactional ids will get their own entry point that maps the id to a stable producer
    /// id and bumps its epoch on every call (see [`crate::txn`]).
    pub fn init_producer_id(&self) -> Result<(i64, i16)> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(Error::Closed("log"));
        }
        let id = self.inner.producer_ids.next_id()?;
        tracing::debug!(producer_id = id, "producer id handed out");
        Ok((id, 0))
    }

    /// Segment files open right now (bounded by `max_open_files`).
    pub fn open_file_count(&self) -> usize {
        self.inner.ctx.files.open_count()
    }

    /// Flushes everything, checkpoints, and stops the background threads. Idempotent; also
    /// done when the last handle drops.
    pub fn close(&self) -> Result<()> {
        close_inner(&self.inner)
    }
}

fn close_inner(inner: &Inner) -> Result<()> {
    if inner.closed.swap(true, Ordering::AcqRel) {
        return Ok(());
    }
    {
        let (m, c) = &*inner.stop;
        *m.lock() = true;
        c.notify_all();
    }
    inner.ctx.flusher.shutdown();
    // Wait for a cleaner pass in progress (it stops at its next segment once `closed` is set).
    drop(inner.cleaner_pass.lock());
    let parts: Vec<Arc<Partition>> = inner
        .topics
        .read()
        .values()
        .flat_map(|t| t.partitions.read().iter().cloned().collect::<Vec<_>>())
        .collect();
    let mut result = Ok(());
    if !inner.ctx.is_offline() {
        // fsyncs are I/O-bound: run them side by side (thousands of partitions close in
        // seconds, not minutes).
        let flushed = super::parallel_map(&parts, 16, |p| {
            p.flush()?;
            if let Err(e) = p.write_producer_snapshot() {
                // Costs only a longer replay at the next open.
                tracing::warn!(tp = %p.topic_partition(), error = %crate::report(&e), "producer state snapshot failed");
            }
            Ok(())
        });
        if let Some(e) = flushed.into_iter().filter_map(Result::err).last() {
            result = Err(e);
        }
        if let Err(e) = write_checkpoints(&inner.dir, &parts) {
            result = Err(e);
        }
    }
    for p in &parts {
        p.close();
    }
    let threads: Vec<_> = std::mem::take(&mut *inner.threads.lock());
    let me = std::thread::current().id();
    for t in threads {
        if t.thread().id() != me {
            let _ = t.join();
        }
    }
    // Everything is flushed and checkpointed: the directory is free for the next open.
    drop(inner.lock.lock().take());
    tracing::info!(dir = %inner.dir.display(), "log closed");
    result
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Err(e) = close_inner(self) {
            tracing::error!(error = %crate::report(&e), "closing the log failed");
        }
    }
}

/// Writes the recovery-point and log-start checkpoints of `parts`.
fn write_checkpoints(dir: &Path, parts: &[Arc<Partition>]) -> Result<()> {
    let rps: Vec<_> = parts
        .iter()
        .map(|p| (p.topic_partition().clone(), p.recovery_point()))
        .collect();
    let starts: Vec<_> = parts
        .iter()
        .map(|p| (p.topic_partition().clone(), p.log_start_offset()))
        .collect();
    checkpoint::write(&dir.join(RECOVERY_CHECKPOINT), &rps)?;
    checkpoint::write(&dir.join(LOG_START_CHECKPOINT), &starts)
}

fn partition_of(inner: &Inner, tp: &TopicPartition) -> Result<Arc<Partition>> {
    let topics = inner.topics.read();
    let topic = topics
        .get(&*tp.topic)
        .ok_or_else(|| Error::UnknownTopic(tp.topic.to_string()))?;
    let parts = topic.partitions.read();
    usize::try_from(tp.partition)
        .ok()
        .and_then(|i| parts.get(i))
        .cloned()
        .ok_or_else(|| Error::UnknownPartition {
            topic: tp.topic.to_string(),
            partition: tp.partition,
        })
}

/// The name a partition's directory is renamed to while it is deleted: `<topic>-<p>` (cut to
/// fit 255 bytes with the suffix; topic names are ASCII) `.<p>.<pid>-delete`, unique per
/// partition, which the loader removes if a crash interrupts the deletion.
fn doomed_dir_name(tp: &TopicPartition) -> String {
    let suffix = format!(".{}.{}-delete", tp.partition, std::process::id());
    let name = tp.dir_name();
    let keep = name.len().min(255usize.saturating_sub(suffix.len()));
    format!("{}{suffix}", name.get(..keep).unwrap_or(&name))
}

fn partition0_dir(dir: &Path, topic: &str) -> PathBuf {
    dir.join(TopicPartition::new(topic, 0).dir_name())
}

fn legacy_config_path(dir: &Path, topic: &str) -> PathBuf {
    dir.join(LEGACY_CONFIG_DIR)
        .join(format!("{topic}.properties"))
}

/// The topic's config file as written, from partition 0's directory or, for a topic written
/// by an older Sluice, `topic-configs/<topic>.properties`; `None` if it has neither.
fn read_topic_config(dir: &Path, topic: &str) -> Result<Option<String>> {
    let p0 = partition0_dir(dir, topic);
    // A temporary file left by a crash between writing and renaming: never the config.
    let _ = std::fs::remove_file(p0.join(TOPIC_CONFIG_TMP));
    for path in [p0.join(TOPIC_CONFIG_FILE), legacy_config_path(dir, topic)] {
        match std::fs::read_to_string(&path) {
            Ok(text) => return Ok(Some(text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(&path, e)),
        }
    }
    Ok(None)
}

/// Writes the topic's config into partition 0's directory (created if needed) through a
/// temporary file, fsynced and renamed; a failed write removes the temporary file. A config
/// of the old layout is removed once the new one is in place.
fn write_topic_config(dir: &Path, topic: &str, config: &TopicConfig) -> Result<()> {
    let p0 = partition0_dir(dir, topic);
    std::fs::create_dir_all(&p0).map_err(|e| Error::io(&p0, e))?;
    let tmp = p0.join(TOPIC_CONFIG_TMP);
    let path = p0.join(TOPIC_CONFIG_FILE);
    let written = std::fs::write(&tmp, config.to_properties())
        .and_then(|()| File::open(&tmp)?.sync_all())
        .map_err(|e| Error::io(&tmp, e))
        .and_then(|()| std::fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e)));
    if let Err(e) = written {
        if let Err(rm) = std::fs::remove_file(&tmp)
            && rm.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(file = %tmp.display(), error = %rm, "could not remove a temporary topic config");
        }
        return Err(e);
    }
    checkpoint::sync_dir(&p0)?;
    remove_legacy_topic_config(dir, topic);
    Ok(())
}

/// Removes `topic-configs/<topic>.properties` if an older Sluice wrote one.
fn remove_legacy_topic_config(dir: &Path, topic: &str) {
    let legacy = legacy_config_path(dir, topic);
    match std::fs::remove_file(&legacy) {
        Ok(()) => {
            if let Err(e) = checkpoint::sync_dir(&dir.join(LEGACY_CONFIG_DIR)) {
                tracing::warn!(error = %crate::report(&e), "could not sync topic-configs");
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            tracing::warn!(file = %legacy.display(), error = %e, "could not remove an old topic config");
        }
    }
}

/// Takes the directory's lock file, or names the process holding it.
fn lock_dir(dir: &Path) -> Result<File> {
    let path = dir.join(LOCK_FILE);
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| Error::io(&path, e))?;
    match f.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = f.read_to_string(&mut holder);
            let holder = holder.trim();
            return Err(Error::DirectoryLocked {
                dir: dir.to_path_buf(),
                holder: if holder.is_empty() {
                    "unknown holder".into()
                } else {
                    holder.to_owned()
                },
            });
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(Error::io(&path, e)),
    }
    let me = format!("pid {} on {}", std::process::id(), hostname());
    f.set_len(0)
        .and_then(|()| f.rewind())
        .and_then(|()| f.write_all(me.as_bytes()))
        .map_err(|e| Error::io(&path, e))?;
    Ok(f)
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "this host".into())
}

/// Finds `topic-N` partition directories and opens them, two at a time.
fn load_topics(
    dir: &Path,
    ctx: &Arc<LogContext>,
    defaults: &TopicConfig,
    recovery: &std::collections::HashMap<TopicPartition, i64>,
    starts: &std::collections::HashMap<TopicPartition, i64>,
) -> Result<BTreeMap<String, Arc<Topic>>> {
    let mut found: BTreeMap<String, Vec<(i32, PathBuf)>> = BTreeMap::new();
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            continue;
        }
        if name.ends_with("-delete") {
            // A deletion interrupted by a crash.
            let _ = std::fs::remove_dir_all(entry.path());
            continue;
        }
        let Some((topic, p)) = name.rsplit_once('-') else {
            continue;
        };
        let Ok(p) = p.parse::<i32>() else { continue };
        if names::validate_topic_name(topic).is_err() || p < 0 {
            continue;
        }
        found
            .entry(topic.to_owned())
            .or_default()
            .push((p, entry.path()));
    }
    let mut jobs = Vec::new();
    let mut configs = BTreeMap::new();
    for (topic, mut parts) in found {
        parts.sort();
        if parts.iter().enumerate().any(|(i, (p, _))| *p != i as i32) {
            tracing::error!(
                topic,
                "partition directories are not numbered 0..n; skipping topic"
            );
            continue;
        }
        let config = match read_topic_config(dir, &topic)? {
            Some(text) => TopicConfig::parse_properties_with_base(defaults, &text)?,
            None => defaults.clone(),
        };
        let config = Arc::new(config);
        configs.insert(topic.clone(), (Arc::clone(&config), parts.len()));
        for (p, path) in parts {
            jobs.push((
                TopicPartition::new(topic.as_str(), p),
                path,
                Arc::clone(&config),
            ));
        }
    }
    let threads = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(1, 4);
    let opened = super::parallel_map(&jobs, threads, |(tp, path, config)| {
        loader::open_partition(
            path,
            tp.clone(),
            ctx,
            Arc::clone(config),
            recovery.get(tp).copied(),
            starts.get(tp).copied(),
        )
    });
    let results: Vec<_> = jobs
        .iter()
        .map(|(tp, _, _)| tp.clone())
        .zip(opened)
        .collect();
    let mut by_topic: BTreeMap<String, Vec<Arc<Partition>>> = BTreeMap::new();
    for (tp, r) in results {
        by_topic
            .entry(tp.topic.to_string())
            .or_default()
            .push(Arc::new(r?));
    }
    let mut topics = BTreeMap::new();
    let mut seen: HashMap<TopicId, String> = HashMap::new();
    for (name, parts) in by_topic {
        let Some((config, _)) = configs.remove(&name) else {
            continue;
        };
        let id = load_topic_id(&name, &parts, &seen)?;
        seen.insert(id, name.clone());
        topics.insert(
            name,
            Arc::new(Topic {
                id,
                config: RwLock::new(config),
                partitions: RwLock::new(Arc::new(parts)),
            }),
        );
    }
    Ok(topics)
}

/// The id of topic `name` from its partitions' `partition.metadata`: every partition that has
/// the file must agree (as Kafka refuses a partition whose id is not its topic's), and the
/// partitions without it (written before topic ids, or a crash between creating a partition's
/// directory and its file) get it. A topic none of whose partitions has one gets a new id.
fn load_topic_id(
    name: &str,
    parts: &[Arc<Partition>],
    taken: &HashMap<TopicId, String>,
) -> Result<TopicId> {
    let mut found: Option<(TopicId, &Path)> = None;
    let mut missing = Vec::new();
    for p in parts {
        match topic_id::read(p.dir())? {
            None => missing.push(p.dir()),
            Some(id) => match found {
                None => found = Some((id, p.dir())),
                Some((first, first_dir)) if first != id => {
                    return Err(Error::Io {
                        path: p.dir().join(topic_id::PARTITION_METADATA),
                        source: std::io::Error::new(
                            std::io::ErrorKind::InvalidData,
                            format!(
                                "topic id {id} of topic \"{name}\" differs from {first} in {}",
                                first_dir.join(topic_id::PARTITION_METADATA).display()
                            ),
                        ),
                    });
                }
                Some(_) => {}
            },
        }
    }
    let id = match found {
        Some((id, dir)) => {
            if let Some(other) = taken.get(&id) {
                return Err(Error::Io {
                    path: dir.join(topic_id::PARTITION_METADATA),
                    source: std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("topic id {id} of topic \"{name}\" is also topic \"{other}\"'s"),
                    ),
                });
            }
            id
        }
        None => loop {
            let id = TopicId::random()?;
            if !taken.contains_key(&id) {
                break id;
            }
        },
    };
    if !missing.is_empty() {
        tracing::info!(topic = name, topic_id = %id, partitions = missing.len(), "topic id written to partitions without one");
    }
    for dir in missing {
        topic_id::write(dir, id)?;
    }
    Ok(id)
}
