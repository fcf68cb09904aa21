//! Sluice's own Kafka producer: the record accumulator of the embedded producer
//! ([`sluice_client::accumulator`]) encoding records straight into Kafka record batches, and a
//! sender thread shipping sealed batches in Produce requests, pipelined on one connection per
//! leader. Chosen with the producer property `sluice.producer.engine=native`; transactional
//! producers always use librdkafka.
//!
//! Why a producer besides librdkafka's: on a small machine librdkafka's per-record cost (a
//! message allocation, three clock reads and a queue hop per record, then a copy into its own
//! batch) is what bounds throughput; here a record costs one encode into the batch that goes
//! on the wire, so the client leaves the cores to the broker. kafka-protocol encodes the
//! requests; the record batches are the log's own format (`record::BatchBuilder`).
//!
//! ```text
//! send() -> Accumulator (open batch per partition)
//!              | sealed
//!              v
//! sender thread: stamp (pid, epoch, sequence), build -> group by leader -> Produce request
//!              -> write (waits while max.in.flight.requests.per.connection are out)
//!                                       |
//! reader thread per broker: response in order -> complete the batches' futures, or hold
//!              a retriable failure for a retry (after retry.backoff, in sequence order)
//! ```
//!
//! Retries keep order: a partition with a batch to retry sends nothing new until every batch
//! of it in flight came back, then its held batches go out in their original order (with
//! idempotence, the batches after a failed one come back OUT_OF_ORDER_SEQUENCE_NUMBER and are
//! retried too). A broken connection or a request with no answer in `request.timeout.ms` fails
//! every request on it over to a retry; leader errors refresh the metadata. What is not retried
//! (fatal codes, `retries` spent, `delivery.timeout.ms` passed) fails the batch's records.
//!
//! An idempotent batch that fails for good leaves a gap in its partition's sequence, which the
//! broker would answer with OUT_OF_ORDER_SEQUENCE_NUMBER for every later batch. As Java's
//! producer does (KIP-360), this one then takes a new producer id: it holds every batch until
//! none is in flight (those coming back out of order are held for a retry), asks
//! InitProducerId naming its current id and epoch, and restamps the held batches from
//! sequence 0 under the new one, in send order. A held batch whose earlier attempt may have
//! been written (its answer was lost) can then be written twice: idempotence covers one
//! producer id, as in Java.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiVersionsRequest, InitProducerIdRequest, MetadataRequest, ProduceRequest, ProduceResponse,
};
use kafka_protocol::protocol::Request;
use parking_lot::{Condvar, Mutex, RwLock};
use rustc_hash::FxHashMap as HashMap;

use super::wire::{
    broker_addr, by_topic, code_error, decode_response, encode_request, io_error, is_leader_moved,
    metadata_request, pick_version, protocol_error, response_size, served_versions,
};
use sluice_client::accumulator::{Accumulator, Pace, Sealed};
use sluice_client::config::{Acks, ProducerConfig};
use sluice_client::{DeliveryFuture, ProducerRecord};
use sluice_client::{Error, ErrorCode, Result, TopicPartition};
use sluice_protocol::record::increment_sequence;

const OPERATION: &str = "send";
/// `batch.size` when not set: librdkafka's default, not Java's 16 KiB.
const DEFAULT_BATCH_SIZE: usize = 1_000_000;
/// Pause before a failed batch is sent again, and between metadata attempts (Kafka's
/// `retry.backoff.ms`).
const RETRY_BACKOFF: Duration = Duration::from_millis(100);
/// How long the sender sleeps at most while batches are held or in flight.
const TICK: Duration = Duration::from_millis(10);
/// Produce versions spoken: record batches (v3) up to topic names (v12; v13 names topics by id).
const PRODUCE_VERSIONS: std::ops::RangeInclusive<i16> = 3..=12;

/// A producer speaking the Kafka protocol itself.
pub(super) struct NativeProducer {
    shared: Arc<Shared>,
    sender: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for NativeProducer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not the batches: their bytes would fill the output.
        f.debug_struct("NativeProducer")
            .field("bootstrap", &self.shared.bootstrap)
            .field("producer_id_and_epoch", &*self.shared.idempotence.lock())
            .field(
                "open_batches",
                &self.shared.open_batches.load(Ordering::Relaxed),
            )
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
struct Shared {
    acc: Accumulator,
    bootstrap: Vec<String>,
    timeout: Duration,
    cluster: RwLock<Cluster>,
    /// Partitions with batches in flight or held for a retry.
    partitions: Mutex<HashMap<TopicPartition, PartState>>,
    /// Producer id and epoch with `enable.idempotence` (replaced when a batch fails for good).
    idempotence: Mutex<Option<(i64, i16)>>,
    /// An idempotent batch failed for good: nothing is sent until a new producer id is taken.
    bump: AtomicBool,
    /// Set when a leader error or a broken connection calls for fresh metadata.
    stale: AtomicBool,
    /// Batches handed to the sender and not complete.
    open_batches: AtomicU64,
}

/// Leaders of the topics sent to, and where the brokers are.
#[derive(Debug, Default)]
struct Cluster {
    brokers: HashMap<i32, String>,
    /// Leader node of each partition (-1: none known).
    topics: HashMap<Arc<str>, Vec<i32>>,
}

#[derive(Debug, Default)]
struct PartState {
    in_flight: u32,
    /// Batches waiting for this partition's in-flight ones (a retry, and what came after it),
    /// in send order.
    held: VecDeque<Batch>,
    /// No retry before this.
    not_before: Option<Instant>,
    /// A batch of it failed and waits to be retried: OUT_OF_ORDER_SEQUENCE_NUMBER of the later
    /// ones is expected.
    retrying: bool,
}

/// A built batch, from its first send until its outcome.
#[derive(Debug)]
struct Batch {
    tp: TopicPartition,
    bytes: Bytes,
    done: Arc<sluice_client::BatchDone>,
    reserved: usize,
    created: Instant,
    /// Send order of the producer, to keep retries in order.
    order: u64,
    attempts: u32,
}

impl NativeProducer {
    pub(super) fn new(bootstrap: Vec<String>, mut config: ProducerConfig) -> Result<Self> {
        if !config.batch_size_is_set() {
            // As the librdkafka engine does (see `ProducerConfig::batch_size_is_set`).
            config.batch_size = DEFAULT_BATCH_SIZE;
        }
        // A batch goes alone in a request at most: one bigger than max.request.size could
        // only be refused (Java's producer splits such a batch after the refusal; this one
        // never builds it).
        config.batch_size = config.batch_size.min(
            config
                .max_request_size
                .saturating_sub(sluice_protocol::record::HEADER_LEN)
                .max(1),
        );
        let timeout = Duration::from_millis(config.request_timeout_ms);
        let idempotence = if config.enable_idempotence {
            Some(init_producer_id(&bootstrap, timeout, None)?)
        } else {
            None
        };
        let shared = Arc::new(Shared {
            acc: Accumulator::new(config),
            bootstrap,
            timeout,
            cluster: RwLock::new(Cluster::default()),
            partitions: Mutex::new(HashMap::default()),
            idempotence: Mutex::new(idempotence),
            bump: AtomicBool::new(false),
            stale: AtomicBool::new(false),
            open_batches: AtomicU64::new(0),
        });
        let s = Arc::clone(&shared);
        let sender = std::thread::Builder::new()
            .name("sluice-native-sender".into())
            .spawn(move || Sender::new(s).run())
            .map_err(|e| Error::io("producer sender thread", e))?;
        Ok(Self {
            shared,
            sender: Some(sender),
        })
    }

    /// Queues a record (see [`sluice_client::Producer::send`]).
    pub(super) async fn send(&self, record: ProducerRecord) -> Result<DeliveryFuture> {
        let count = self.partition_count_of(&record.topic, false).await?;
        let timestamp = record.timestamp.unwrap_or_else(now_ms);
        self.shared.acc.append(record, count, timestamp).await
    }

    pub(super) async fn flush(&self) -> Result<()> {
        self.shared.acc.flush().await
    }

    /// Partitions of `topic`, from the metadata cache unless `refresh`; auto-created by the
    /// cluster if it does so, waited for up to `max.block.ms`.
    pub(super) async fn partition_count_of(&self, topic: &Arc<str>, refresh: bool) -> Result<i32> {
        if !refresh && let Some(leaders) = self.shared.cluster.read().topics.get(topic) {
            return Ok(leaders.len() as i32);
        }
        let shared = Arc::clone(&self.shared);
        let topic = Arc::clone(topic);
        super::blocking(move || {
            let deadline = Instant::now() + Duration::from_millis(shared.acc.config().max_block_ms);
            loop {
                match shared.refresh_metadata(std::slice::from_ref(&topic)) {
                    Ok(()) => {
                        if let Some(l) = shared.cluster.read().topics.get(&topic) {
                            return Ok(l.len() as i32);
                        }
                    }
                    Err(e) if !e.is_retriable() => return Err(e),
                    // Still unknown after max.block.ms: the topic does not exist.
                    Err(e)
                        if Instant::now() >= deadline
                            && e.code() == ErrorCode::UNKNOWN_TOPIC_OR_PARTITION =>
                    {
                        return Err(Error::UnknownTopic(topic.to_string()));
                    }
                    Err(e) if Instant::now() >= deadline => return Err(e),
                    Err(e) => tracing::debug!(%topic, error = %e, "metadata not ready"),
                }
                if Instant::now() >= deadline {
                    return Err(Error::UnknownTopic(topic.to_string()));
                }
                std::thread::sleep(RETRY_BACKOFF);
            }
        })
        .await
    }

    /// Sends what is queued, waits for it, and stops the sender.
    pub(super) async fn close(mut self) -> Result<()> {
        let r = self.flush().await;
        let sender = self.sender.take();
        self.shared.acc.close();
        if let Some(t) = sender {
            super::blocking(move || {
                t.join()
                    .map_err(|_| Error::Closed("producer sender thread"))
            })
            .await?;
        }
        r
    }
}

impl Drop for NativeProducer {
    fn drop(&mut self) {
        // Queued records are still sent, as Kafka's close does without a timeout.
        self.shared.acc.close();
        if let Some(t) = self.sender.take() {
            let _ = super::block_here(|| t.join());
        }
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A blocking connection for one request at a time (metadata, producer ids).
struct SyncConn {
    stream: TcpStream,
    addr: String,
    versions: Vec<(i16, i16, i16)>,
    correlation_id: i32,
}

impl SyncConn {
    fn open(addr: &str, timeout: Duration) -> Result<Self> {
        let sock = addr
            .to_socket_addrs()
            .map_err(|e| io_error(OPERATION, addr, e))?
            .next()
            .ok_or_else(|| io_error(OPERATION, addr, "no address"))?;
        let stream =
            TcpStream::connect_timeout(&sock, timeout).map_err(|e| io_error(OPERATION, addr, e))?;
        let set = || -> std::io::Result<()> {
            stream.set_nodelay(true)?;
            stream.set_read_timeout(Some(timeout))?;
            stream.set_write_timeout(Some(timeout))
        };
        set().map_err(|e| io_error(OPERATION, addr, e))?;
        let mut conn = SyncConn {
            stream,
            addr: addr.to_owned(),
            versions: Vec::new(),
            correlation_id: 0,
        };
        let r = conn.call(&ApiVersionsRequest::default(), 0)?;
        conn.versions = served_versions(&r, OPERATION, addr)?;
        Ok(conn)
    }

    fn version<R: Request>(&self, ours: std::ops::RangeInclusive<i16>) -> Result<i16> {
        pick_version::<R>(&self.versions, &self.addr, OPERATION, ours)
    }

    fn call<R: Request>(&mut self, request: &R, version: i16) -> Result<R::Response> {
        self.correlation_id = self.correlation_id.wrapping_add(1);
        let id = self.correlation_id;
        let frame = encode_request(request, version, id)
            .map_err(|e| protocol_error(OPERATION, &self.addr, e))?;
        self.stream
            .write_all(&frame)
            .map_err(|e| io_error(OPERATION, &self.addr, e))?;
        let body = read_frame(&mut self.stream, &self.addr)?;
        decode_response::<R>(body, version, id, &self.addr)
            .map_err(|e| protocol_error(OPERATION, &self.addr, e))
    }
}

/// One response frame's body.
fn read_frame(stream: &mut TcpStream, addr: &str) -> Result<Bytes> {
    let mut size = [0u8; 4];
    stream
        .read_exact(&mut size)
        .map_err(|e| io_error(OPERATION, addr, e))?;
    let size =
        response_size(i32::from_be_bytes(size)).map_err(|e| protocol_error(OPERATION, addr, e))?;
    let mut body = vec![0u8; size];
    stream
        .read_exact(&mut body)
        .map_err(|e| io_error(OPERATION, addr, e))?;
    Ok(Bytes::from(body))
}

/// The first bootstrap server that answers.
fn bootstrap_conn(bootstrap: &[String], timeout: Duration) -> Result<SyncConn> {
    let mut last = None;
    for addr in bootstrap {
        match SyncConn::open(addr, timeout) {
            Ok(c) => return Ok(c),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| Error::Timeout("no bootstrap server".into())))
}

/// A producer id for an idempotent producer (InitProducerId without a transactional id),
/// naming the `current` one it replaces where the broker takes that (v3+, KIP-360).
fn init_producer_id(
    bootstrap: &[String],
    timeout: Duration,
    current: Option<(i64, i16)>,
) -> Result<(i64, i16)> {
    let deadline = Instant::now() + timeout;
    loop {
        let mut conn = bootstrap_conn(bootstrap, timeout)?;
        let version = conn.version::<InitProducerIdRequest>(0..=4)?;
        let (pid, epoch) = current.filter(|_| version >= 3).unwrap_or((-1, -1));
        let r = conn.call(
            &InitProducerIdRequest::default()
                .with_transactional_id(None)
                .with_transaction_timeout_ms(i32::MAX)
                .with_producer_id(pid.into())
                .with_producer_epoch(epoch),
            version,
        )?;
        if r.error_code == 0 {
            return Ok((r.producer_id.0, r.producer_epoch));
        }
        let e = code_error("init producer id", r.error_code, &conn.addr);
        if !e.is_retriable() || Instant::now() >= deadline {
            return Err(e);
        }
        std::thread::sleep(RETRY_BACKOFF);
    }
}

impl Shared {
    /// Fetches the leaders of `topics` (created if the cluster auto-creates topics) and the
    /// brokers. A topic with an error is left out of the cache; an error naming the first such
    /// topic is returned.
    fn refresh_metadata(&self, topics: &[Arc<str>]) -> Result<()> {
        let mut conn = bootstrap_conn(&self.bootstrap, self.timeout)?;
        let version = conn.version::<MetadataRequest>(4..=12)?;
        let request = metadata_request(topics.iter().map(|t| &**t), true);
        let r = conn.call(&request, version)?;
        let mut first_error = None;
        let mut cluster = self.cluster.write();
        cluster.brokers = r
            .brokers
            .iter()
            .map(|b| (b.node_id.0, broker_addr(b)))
            .collect();
        for t in &r.topics {
            let Some(name) = &t.name else { continue };
            let name: Arc<str> = Arc::from(name.as_str());
            if t.error_code != 0 {
                cluster.topics.remove(&name);
                first_error.get_or_insert_with(|| topic_error(t.error_code, &name));
                continue;
            }
            let mut leaders = vec![-1; t.partitions.len()];
            for p in &t.partitions {
                if let Some(slot) = usize::try_from(p.partition_index)
                    .ok()
                    .and_then(|i| leaders.get_mut(i))
                {
                    *slot = if p.error_code == 0 { p.leader_id.0 } else { -1 };
                }
            }
            cluster.topics.insert(name, leaders);
        }
        first_error.map_or(Ok(()), Err)
    }
}

fn topic_error(code: i16, topic: &str) -> Error {
    match ResponseError::try_from_code(code) {
        Some(ResponseError::UnknownTopicOrPartition) => Error::Kafka {
            operation: OPERATION,
            code: i32::from(code),
            message: format!("{topic}: unknown topic (not created yet, or auto-creation is off)"),
            retriable: true,
        },
        _ => code_error(OPERATION, code, topic),
    }
}

/// A request on the wire, waiting for its response.
#[derive(Debug)]
struct InFlight {
    correlation_id: i32,
    sent: Instant,
    batches: Vec<Batch>,
}

/// A producing connection to one broker: the sender writes, a reader thread reads.
#[derive(Debug)]
struct BrokerConn {
    node: i32,
    stream: TcpStream,
    version: i16,
    correlation_id: i32,
    queue: Arc<Queue>,
    reader: Option<JoinHandle<()>>,
}

#[derive(Debug, Default)]
struct Queue {
    in_flight: Mutex<VecDeque<InFlight>>,
    room: Condvar,
    dead: AtomicBool,
    closing: AtomicBool,
}

impl BrokerConn {
    fn open(node: i32, addr: &str, shared: &Arc<Shared>) -> Result<Self> {
        let conn = SyncConn::open(addr, shared.timeout)?;
        let version = conn.version::<ProduceRequest>(PRODUCE_VERSIONS)?;
        let stream = conn.stream;
        let read_half = stream
            .try_clone()
            .map_err(|e| io_error(OPERATION, addr, e))?;
        // The reader wakes now and then to check for requests with no answer.
        read_half
            .set_read_timeout(Some(Duration::from_millis(500)))
            .map_err(|e| io_error(OPERATION, addr, e))?;
        let queue = Arc::new(Queue::default());
        let reader = {
            let queue = Arc::clone(&queue);
            let shared = Arc::clone(shared);
            let addr = addr.to_owned();
            std::thread::Builder::new()
                .name(format!("sluice-native-reader-{node}"))
                .spawn(move || read_responses(read_half, &addr, version, &queue, &shared))
                .map_err(|e| Error::io("producer reader thread", e))?
        };
        Ok(Self {
            node,
            stream,
            version,
            correlation_id: conn.correlation_id,
            queue,
            reader: Some(reader),
        })
    }

    fn is_dead(&self) -> bool {
        self.queue.dead.load(Ordering::Acquire)
    }

    /// Closes the connection and waits for its reader, which fails over what is still in
    /// flight (called once the producer has nothing in flight, or gives up on it).
    fn close(mut self) {
        self.queue.closing.store(true, Ordering::Release);
        let _ = self.stream.shutdown(Shutdown::Both);
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
    }
}

/// What happens to a batch after a response or a failure.
enum Outcome {
    Done(i64, i64),
    Retry(Arc<Error>),
    Fail(Arc<Error>),
}

fn read_responses(mut stream: TcpStream, addr: &str, version: i16, queue: &Queue, shared: &Shared) {
    let timeout = shared.timeout;
    let error = loop {
        let mut size = [0u8; 4];
        match stream.read(&mut size[..1]) {
            Ok(0) if queue.closing.load(Ordering::Acquire) && queue.in_flight.lock().is_empty() => {
                return;
            }
            Ok(0) => break io_error(OPERATION, addr, "connection closed"),
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                let q = queue.in_flight.lock();
                match q.front() {
                    None if queue.closing.load(Ordering::Acquire) => return,
                    Some(f) if f.sent.elapsed() > timeout => {
                        break Error::Timeout(format!(
                            "{OPERATION}: no answer from {addr} in request.timeout.ms ({} ms)",
                            timeout.as_millis()
                        ));
                    }
                    _ => continue,
                }
            }
            Err(e) => break io_error(OPERATION, addr, e),
        }
        let deadline = Instant::now() + timeout;
        let rest = read_until(&mut stream, &mut size[1..], deadline)
            .map_err(|e| io_error(OPERATION, addr, e))
            .and_then(|()| {
                response_size(i32::from_be_bytes(size))
                    .map_err(|e| protocol_error(OPERATION, addr, e))
            })
            .and_then(|n| {
                let mut body = vec![0u8; n];
                read_until(&mut stream, &mut body, deadline)
                    .map(|()| Bytes::from(body))
                    .map_err(|e| io_error(OPERATION, addr, e))
            });
        let body = match rest {
            Ok(b) => b,
            Err(e) => break e,
        };
        let Some(request) = queue.in_flight.lock().pop_front() else {
            break protocol_error(OPERATION, addr, "a response to no request");
        };
        queue.room.notify_all();
        match decode_response::<ProduceRequest>(body, version, request.correlation_id, addr) {
            Ok(r) => complete(shared, request.batches, &r),
            Err(e) => {
                fail_over(shared, request.batches, protocol_error(OPERATION, addr, &e));
                break protocol_error(OPERATION, addr, e);
            }
        }
    };
    // The connection is unusable: every request on it fails over to a retry.
    tracing::debug!(%addr, error = %error, "producer connection failed");
    queue.dead.store(true, Ordering::Release);
    let _ = stream.shutdown(Shutdown::Both);
    let pending: Vec<InFlight> = queue.in_flight.lock().drain(..).collect();
    queue.room.notify_all();
    let error = Arc::new(error);
    for r in pending {
        for b in r.batches {
            finish(shared, b, Outcome::Retry(Arc::clone(&error)));
        }
    }
    shared.stale.store(true, Ordering::Release);
    shared.acc.nudge();
}

/// Fills `buf`, riding out the socket's short read timeouts until `deadline`.
fn read_until(stream: &mut TcpStream, buf: &mut [u8], deadline: Instant) -> std::io::Result<()> {
    let mut at = 0;
    while at < buf.len() {
        match stream.read(&mut buf[at..]) {
            Ok(0) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => at += n,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::Interrupted
                ) && Instant::now() < deadline => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn fail_over(shared: &Shared, batches: Vec<Batch>, e: Error) {
    let e = Arc::new(e);
    for b in batches {
        finish(shared, b, Outcome::Retry(Arc::clone(&e)));
    }
}

/// Completes the batches of a request from its response.
fn complete(shared: &Shared, batches: Vec<Batch>, r: &ProduceResponse) {
    for b in batches {
        let p = r
            .responses
            .iter()
            .find(|t| t.name.as_str() == &*b.tp.topic)
            .and_then(|t| {
                t.partition_responses
                    .iter()
                    .find(|p| p.index == b.tp.partition)
            });
        let outcome = match p {
            None => Outcome::Retry(Arc::new(protocol_error(
                OPERATION,
                &b.tp.to_string(),
                "the response has no answer for the partition",
            ))),
            Some(p) => outcome_of(
                shared,
                &b.tp,
                p.error_code,
                p.base_offset,
                p.log_append_time_ms,
            ),
        };
        finish(shared, b, outcome);
    }
}

fn outcome_of(shared: &Shared, tp: &TopicPartition, code: i16, base: i64, append: i64) -> Outcome {
    if code == 0 {
        return Outcome::Done(base, append);
    }
    let subject = tp.to_string();
    match ResponseError::try_from_code(code) {
        // A retry of a batch the log already has: written once, as idempotence promises.
        Some(ResponseError::DuplicateSequenceNumber) => Outcome::Done(base, append),
        // Behind a batch to retry, or one that failed for good (retried under a new id).
        Some(ResponseError::OutOfOrderSequenceNumber)
            if shared.bump.load(Ordering::Acquire)
                || shared.partitions.lock().get(tp).is_some_and(|s| s.retrying) =>
        {
            Outcome::Retry(Arc::new(code_error(OPERATION, code, &subject)))
        }
        _ if is_leader_moved(code) => {
            shared.stale.store(true, Ordering::Release);
            Outcome::Retry(Arc::new(code_error(OPERATION, code, &subject)))
        }
        Some(e) if e.is_retriable() => {
            Outcome::Retry(Arc::new(code_error(OPERATION, code, &subject)))
        }
        _ => Outcome::Fail(Arc::new(code_error(OPERATION, code, &subject))),
    }
}

/// Applies an outcome: completes the batch, or holds it for a retry if it may be retried.
fn finish(shared: &Shared, mut b: Batch, outcome: Outcome) {
    let cfg = shared.acc.config();
    let mut parts = shared.partitions.lock();
    let state = parts.entry(b.tp.clone()).or_default();
    state.in_flight = state.in_flight.saturating_sub(1);
    let outcome = match outcome {
        Outcome::Retry(e) if b.attempts > cfg.retries => Outcome::Fail(e),
        Outcome::Retry(_) if expired(cfg, &b) => Outcome::Fail(Arc::new(timed_out(cfg, &b))),
        o => o,
    };
    match outcome {
        Outcome::Retry(e) => {
            tracing::debug!(tp = %b.tp, attempt = b.attempts, error = %e, "batch to retry");
            b.attempts += 1;
            state.retrying = true;
            state.not_before = Some(Instant::now() + RETRY_BACKOFF);
            let at = state.held.partition_point(|h| h.order < b.order);
            state.held.insert(at, b);
            drop(parts);
            shared.acc.nudge();
        }
        Outcome::Done(base, append) => {
            drop(parts);
            done(shared, b, Ok((base, append)));
        }
        Outcome::Fail(e) => {
            drop(parts);
            done(shared, b, Err(e));
        }
    }
}

fn expired(cfg: &ProducerConfig, b: &Batch) -> bool {
    b.created.elapsed() >= Duration::from_millis(cfg.delivery_timeout_ms)
}

fn timed_out(cfg: &ProducerConfig, b: &Batch) -> Error {
    Error::Timeout(format!(
        "{}: not acknowledged within delivery.timeout.ms ({} ms)",
        b.tp, cfg.delivery_timeout_ms
    ))
}

/// Fails batches past `delivery.timeout.ms`.
fn fail_timed_out(shared: &Shared, batches: Vec<Batch>) {
    let cfg = shared.acc.config();
    for b in batches {
        let e = timed_out(cfg, &b);
        done(shared, b, Err(Arc::new(e)));
    }
}

fn done(shared: &Shared, b: Batch, outcome: std::result::Result<(i64, i64), Arc<Error>>) {
    if let Err(e) = &outcome {
        tracing::debug!(tp = %b.tp, error = %e, "batch failed");
        if shared.acc.config().enable_idempotence {
            // Its sequence may never reach the log: the batches after it need a new id.
            shared.bump.store(true, Ordering::Release);
        }
    }
    b.done.complete(outcome);
    shared.acc.release(b.reserved);
    shared.open_batches.fetch_sub(1, Ordering::AcqRel);
}

/// The sender thread's state.
struct Sender {
    shared: Arc<Shared>,
    conns: HashMap<i32, BrokerConn>,
    sequences: HashMap<TopicPartition, i32>,
    order: u64,
    /// No new producer id asked for before this (after a failed InitProducerId).
    bump_not_before: Option<Instant>,
}

impl Sender {
    fn new(shared: Arc<Shared>) -> Self {
        Self {
            shared,
            conns: HashMap::default(),
            sequences: HashMap::default(),
            order: 0,
            bump_not_before: None,
        }
    }

    fn run(mut self) {
        let mut pace = Pace::default();
        let max_age = Duration::from_millis(self.shared.acc.config().metadata_max_age_ms);
        let mut refreshed = Instant::now();
        loop {
            if refreshed.elapsed() >= max_age {
                // metadata.max.age.ms: new partitions and moved leaders are seen without an error.
                refreshed = Instant::now();
                let topics: Vec<Arc<str>> =
                    self.shared.cluster.read().topics.keys().cloned().collect();
                if !topics.is_empty()
                    && let Err(e) = self.shared.refresh_metadata(&topics)
                {
                    tracing::debug!(error = %e, "periodic metadata refresh failed");
                }
            }
            let busy = self.shared.open_batches.load(Ordering::Acquire) > 0;
            let wait = if busy { TICK } else { Duration::from_secs(1) }.min(max_age.max(TICK));
            let Some(sealed) = self.shared.acc.next_ready(&mut pace, wait) else {
                break;
            };
            let fresh: Vec<Batch> = sealed.into_iter().map(|s| self.build(s)).collect();
            self.pump(fresh);
        }
        // Closed: what is held or in flight still goes, until delivery.timeout.ms.
        let deadline =
            Instant::now() + Duration::from_millis(self.shared.acc.config().delivery_timeout_ms);
        while self.shared.open_batches.load(Ordering::Acquire) > 0 && Instant::now() < deadline {
            self.pump(Vec::new());
            std::thread::sleep(TICK);
        }
        for (_, c) in self.conns.drain() {
            c.close();
        }
        // Whatever is left never goes: its records fail rather than wait forever.
        let left: Vec<Batch> = self
            .shared
            .partitions
            .lock()
            .drain()
            .flat_map(|(_, st)| st.held)
            .collect();
        let closed = Arc::new(Error::Closed("producer"));
        for b in left {
            done(&self.shared, b, Err(Arc::clone(&closed)));
        }
    }

    /// Stamps and encodes a sealed batch.
    fn build(&mut self, s: Sealed) -> Batch {
        let Sealed {
            tp,
            builder,
            done,
            reserved,
            created,
        } = s;
        let producer = *self.shared.idempotence.lock();
        let builder = match producer {
            Some((pid, epoch)) => {
                let seq = self.sequences.entry(tp.clone()).or_insert(0);
                let first = *seq;
                *seq = increment_sequence(first, builder.len() as i32);
                builder.producer(pid, epoch, first)
            }
            None => builder,
        };
        self.order += 1;
        self.shared.open_batches.fetch_add(1, Ordering::AcqRel);
        Batch {
            tp,
            bytes: Bytes::from(builder.build()),
            done,
            reserved,
            created,
            order: self.order,
            attempts: 0,
        }
    }

    /// Sends new batches and the held ones whose turn came.
    fn pump(&mut self, mut fresh: Vec<Batch>) {
        if self.shared.bump.load(Ordering::Acquire) {
            self.hold(std::mem::take(&mut fresh));
            if !self.bump_producer_id() {
                self.expire_held();
                return;
            }
        }
        let mut out = Vec::with_capacity(fresh.len());
        {
            let now = Instant::now();
            let cfg = self.shared.acc.config();
            let mut parts = self.shared.partitions.lock();
            let mut expired_batches = Vec::new();
            for (_, st) in parts.iter_mut() {
                if st.in_flight > 0 || st.held.is_empty() || st.not_before.is_some_and(|t| t > now)
                {
                    continue;
                }
                st.retrying = false;
                st.not_before = None;
                for b in st.held.drain(..) {
                    if expired(cfg, &b) {
                        expired_batches.push(b);
                    } else {
                        out.push(b);
                    }
                }
            }
            for b in fresh {
                let st = parts.entry(b.tp.clone()).or_default();
                if st.held.is_empty() && !st.retrying {
                    out.push(b);
                } else {
                    st.held.push_back(b);
                }
            }
            for b in &out {
                parts.entry(b.tp.clone()).or_default().in_flight += 1;
            }
            parts.retain(|_, st| st.in_flight > 0 || !st.held.is_empty());
            drop(parts);
            fail_timed_out(&self.shared, expired_batches);
        }
        if out.is_empty() {
            return;
        }
        if self.shared.stale.swap(false, Ordering::AcqRel) {
            self.refresh(&out);
        }
        // By leader; a partition without a known leader waits for fresh metadata.
        let mut by_node: HashMap<i32, Vec<Batch>> = HashMap::default();
        {
            let cluster = self.shared.cluster.read();
            for b in out {
                let leader = cluster
                    .topics
                    .get(&b.tp.topic)
                    .and_then(|l| usize::try_from(b.tp.partition).ok().and_then(|i| l.get(i)))
                    .copied()
                    .unwrap_or(-1);
                by_node.entry(leader).or_default().push(b);
            }
        }
        for (node, batches) in by_node {
            if node < 0 {
                let e = Error::Kafka {
                    operation: OPERATION,
                    code: i32::from(ResponseError::LeaderNotAvailable.code()),
                    message: "no leader known for the partition".into(),
                    retriable: true,
                };
                self.shared.stale.store(true, Ordering::Release);
                fail_over(&self.shared, batches, e);
                continue;
            }
            self.send_to(node, batches);
        }
    }

    /// Holds batches behind their partitions' held ones, in send order.
    fn hold(&self, batches: Vec<Batch>) {
        let mut parts = self.shared.partitions.lock();
        for b in batches {
            parts.entry(b.tp.clone()).or_default().held.push_back(b);
        }
    }

    /// Fails the held batches past `delivery.timeout.ms`.
    fn expire_held(&self) {
        let cfg = self.shared.acc.config();
        let mut expired_batches = Vec::new();
        {
            let mut parts = self.shared.partitions.lock();
            for st in parts.values_mut() {
                let (old, keep): (VecDeque<Batch>, VecDeque<Batch>) =
                    st.held.drain(..).partition(|b| expired(cfg, b));
                st.held = keep;
                expired_batches.extend(old);
            }
            parts.retain(|_, st| st.in_flight > 0 || !st.held.is_empty());
        }
        fail_timed_out(&self.shared, expired_batches);
    }

    /// Once nothing is in flight, takes a new producer id and restamps every held batch under
    /// it from sequence 0, in send order. Returns whether the producer may send again.
    fn bump_producer_id(&mut self) -> bool {
        if self.bump_not_before.is_some_and(|t| Instant::now() < t)
            || self
                .shared
                .partitions
                .lock()
                .values()
                .any(|st| st.in_flight > 0)
        {
            return false;
        }
        let current = *self.shared.idempotence.lock();
        let (pid, epoch) = match init_producer_id(
            &self.shared.bootstrap,
            self.shared.timeout,
            current,
        ) {
            Ok(new) => new,
            Err(e) => {
                tracing::warn!(error = %e, "no new producer id after a failed batch; trying again");
                self.bump_not_before = Some(Instant::now() + RETRY_BACKOFF);
                return false;
            }
        };
        self.bump_not_before = None;
        self.sequences.clear();
        {
            let mut parts = self.shared.partitions.lock();
            for (tp, st) in parts.iter_mut() {
                let mut seq = 0;
                for b in &mut st.held {
                    let count = sluice_protocol::record::BatchHeader::parse(&b.bytes)
                        .map_or(0, |h| h.record_count);
                    let mut bytes = b.bytes.to_vec();
                    sluice_protocol::record::set_producer(&mut bytes, pid, epoch, seq);
                    b.bytes = Bytes::from(bytes);
                    seq = increment_sequence(seq, count);
                }
                self.sequences.insert(tp.clone(), seq);
                st.retrying = false;
                st.not_before = None;
            }
            // Under the partitions' lock: a batch failing now belongs to the new id's sends.
            *self.shared.idempotence.lock() = Some((pid, epoch));
            self.shared.bump.store(false, Ordering::Release);
        }
        tracing::info!(
            producer_id = pid,
            producer_epoch = epoch,
            previous = ?current,
            "new producer id after a batch failed for good"
        );
        true
    }

    fn refresh(&self, batches: &[Batch]) {
        let mut topics: Vec<Arc<str>> = batches.iter().map(|b| Arc::clone(&b.tp.topic)).collect();
        topics.sort();
        topics.dedup();
        if let Err(e) = self.shared.refresh_metadata(&topics) {
            tracing::debug!(error = %e, "metadata refresh failed");
            self.shared.stale.store(true, Ordering::Release);
        }
    }

    /// Produce requests to `node` (see [`split_requests`]).
    fn send_to(&mut self, node: i32, batches: Vec<Batch>) {
        let limit = self.shared.acc.config().max_request_size;
        for request in split_requests(batches, limit) {
            self.send_request(node, request);
        }
    }

    fn conn(&mut self, node: i32) -> Result<&mut BrokerConn> {
        if self.conns.get(&node).is_some_and(BrokerConn::is_dead)
            && let Some(c) = self.conns.remove(&node)
        {
            c.close();
        }
        if !self.conns.contains_key(&node) {
            let addr = self.shared.cluster.read().brokers.get(&node).cloned();
            let addr = addr.ok_or_else(|| Error::Kafka {
                operation: OPERATION,
                code: super::wire::UNKNOWN_BROKER,
                message: format!("broker {node} is not in the metadata"),
                retriable: true,
            })?;
            let c = BrokerConn::open(node, &addr, &self.shared)?;
            self.conns.insert(node, c);
        }
        self.conns
            .get_mut(&node)
            .ok_or(Error::Closed("producer connection"))
    }

    fn send_request(&mut self, node: i32, batches: Vec<Batch>) {
        let shared = Arc::clone(&self.shared);
        let cfg = shared.acc.config();
        let acks = cfg.acks;
        let max_in_flight = cfg.max_in_flight_requests_per_connection.max(1) as usize;
        let timeout = shared.timeout;
        let request = produce_request(cfg, &batches);
        let conn = match self.conn(node) {
            Ok(c) => c,
            Err(e) => {
                shared.stale.store(true, Ordering::Release);
                fail_over(&shared, batches, e);
                return;
            }
        };
        conn.correlation_id = conn.correlation_id.wrapping_add(1);
        let id = conn.correlation_id;
        let frame = match encode_request(&request, conn.version, id) {
            Ok(f) => f,
            Err(e) => {
                let e = Arc::new(protocol_error(OPERATION, "the request", e));
                for b in batches {
                    finish(&shared, b, Outcome::Fail(Arc::clone(&e)));
                }
                return;
            }
        };
        drop(request);
        if acks == Acks::None {
            // No response comes: the batch is done once written.
            let written = conn
                .stream
                .write_all(&frame)
                .map_err(|e| Arc::new(io_error(OPERATION, &node.to_string(), e)));
            let failed = written.is_err();
            for b in batches {
                let o = match &written {
                    Ok(()) => Outcome::Done(-1, -1),
                    Err(e) => Outcome::Retry(Arc::clone(e)),
                };
                finish(&shared, b, o);
            }
            if failed {
                conn.queue.dead.store(true, Ordering::Release);
            }
            return;
        }
        {
            let mut q = conn.queue.in_flight.lock();
            let deadline = Instant::now() + timeout;
            while q.len() >= max_in_flight && !conn.queue.dead.load(Ordering::Acquire) {
                if conn.queue.room.wait_until(&mut q, deadline).timed_out() {
                    break;
                }
            }
            q.push_back(InFlight {
                correlation_id: id,
                sent: Instant::now(),
                batches,
            });
        }
        if conn.is_dead() {
            // The reader is gone: it will not take this request; fail it over here.
            let pending: Vec<InFlight> = conn.queue.in_flight.lock().drain(..).collect();
            for r in pending {
                let e = io_error(OPERATION, &node.to_string(), "connection lost");
                fail_over(&shared, r.batches, e);
            }
            return;
        }
        if let Err(e) = conn.stream.write_all(&frame) {
            // The reader sees the broken connection and fails what is in flight over.
            tracing::debug!(node = conn.node, error = %e, "write failed");
            let _ = conn.stream.shutdown(Shutdown::Both);
        }
    }
}

/// `batches` (in send order) grouped into Produce requests of at most `limit` bytes of
/// batches (a larger batch goes alone) and one batch per partition (Kafka refuses more), so a
/// partition's batches go out in send order.
fn split_requests(batches: Vec<Batch>, limit: usize) -> Vec<Vec<Batch>> {
    let mut requests = Vec::new();
    let mut request: Vec<Batch> = Vec::new();
    let mut size = 0;
    for b in batches {
        let full = size + b.bytes.len() > limit || request.iter().any(|r| r.tp == b.tp);
        if !request.is_empty() && full {
            requests.push(std::mem::take(&mut request));
            size = 0;
        }
        size += b.bytes.len();
        request.push(b);
    }
    if !request.is_empty() {
        requests.push(request);
    }
    requests
}

/// A Produce request of `batches` (one per partition).
fn produce_request(cfg: &ProducerConfig, batches: &[Batch]) -> ProduceRequest {
    let topics = by_topic(batches.iter().map(|b| {
        let data = PartitionProduceData::default()
            .with_index(b.tp.partition)
            .with_records(Some(b.bytes.clone()));
        (Arc::clone(&b.tp.topic), data)
    }))
    .into_iter()
    .map(|(name, partitions)| {
        TopicProduceData::default()
            .with_name(name)
            .with_partition_data(partitions)
    })
    .collect();
    ProduceRequest::default()
        .with_acks(cfg.acks.as_i16())
        .with_timeout_ms(i32::try_from(cfg.request_timeout_ms).unwrap_or(i32::MAX))
        .with_topic_data(topics)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use kafka_protocol::messages::TopicName;
    use kafka_protocol::messages::api_versions_response::ApiVersion;
    use kafka_protocol::messages::metadata_response::{
        MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
    };
    use kafka_protocol::messages::produce_response::{
        PartitionProduceResponse, TopicProduceResponse,
    };
    use kafka_protocol::messages::{
        ApiKey, ApiVersionsResponse, InitProducerIdResponse, MetadataResponse, RequestHeader,
        ResponseHeader,
    };
    use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
    use sluice_client::config::ProducerConfig;
    use std::net::TcpListener;

    /// What the fake broker answers a Produce with, given every partition batch it got so far
    /// (the last is this request's; `None`: no answer).
    type Script = Box<dyn FnMut(&[Bytes]) -> Option<i16> + Send>;

    /// A one-broker cluster on loopback serving ApiVersions, Metadata (topic `t`, one
    /// partition), InitProducerId (producer ids 7, 8, ...) and Produce as `script` says;
    /// returns its address and the records fields of every Produce it got.
    fn fake_broker(script: Script) -> (String, Arc<Mutex<Vec<Bytes>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let produced = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(script));
        let seen = Arc::clone(&produced);
        let producer_ids = Arc::new(std::sync::atomic::AtomicI64::new(7));
        std::thread::spawn(move || {
            for stream in listener.incoming().take(50) {
                let Ok(s) = stream else { return };
                let seen = Arc::clone(&seen);
                let script = Arc::clone(&script);
                let ids = Arc::clone(&producer_ids);
                std::thread::spawn(move || serve(s, addr, &seen, &script, &ids));
            }
        });
        (addr.to_string(), produced)
    }

    fn serve(
        mut s: TcpStream,
        addr: std::net::SocketAddr,
        seen: &Mutex<Vec<Bytes>>,
        script: &Mutex<Script>,
        producer_ids: &std::sync::atomic::AtomicI64,
    ) {
        {
            {
                while let Ok(mut body) = read_frame(&mut s, "fake") {
                    let key = i16::from_be_bytes([body[0], body[1]]);
                    let version = i16::from_be_bytes([body[2], body[3]]);
                    let api = ApiKey::try_from(key).expect("api key");
                    let header =
                        RequestHeader::decode(&mut body, api.request_header_version(version))
                            .expect("header");
                    let mut out = BytesMut::new();
                    let rh = ResponseHeader::default().with_correlation_id(header.correlation_id);
                    rh.encode(&mut out, api.response_header_version(version))
                        .expect("encode");
                    match api {
                        ApiKey::ApiVersions => ApiVersionsResponse::default()
                            .with_api_keys(
                                [(0, 3, 9), (3, 4, 12), (22, 0, 4)]
                                    .into_iter()
                                    .map(|(k, min, max)| {
                                        ApiVersion::default()
                                            .with_api_key(k)
                                            .with_min_version(min)
                                            .with_max_version(max)
                                    })
                                    .collect(),
                            )
                            .encode(&mut out, version),
                        ApiKey::Metadata => MetadataResponse::default()
                            .with_brokers(vec![
                                MetadataResponseBroker::default()
                                    .with_node_id(1.into())
                                    .with_host(StrBytes::from_string(addr.ip().to_string()))
                                    .with_port(i32::from(addr.port())),
                            ])
                            .with_topics(vec![
                                MetadataResponseTopic::default()
                                    .with_name(Some(TopicName(StrBytes::from_static_str("t"))))
                                    .with_partitions(vec![
                                        MetadataResponsePartition::default()
                                            .with_partition_index(0)
                                            .with_leader_id(1.into()),
                                    ]),
                            ])
                            .encode(&mut out, version),
                        ApiKey::InitProducerId => InitProducerIdResponse::default()
                            .with_producer_id(producer_ids.fetch_add(1, Ordering::AcqRel).into())
                            .with_producer_epoch(0)
                            .encode(&mut out, version),
                        ApiKey::Produce => {
                            let r = ProduceRequest::decode(&mut body, version).expect("produce");
                            for t in r.topic_data {
                                for p in t.partition_data {
                                    seen.lock().push(p.records.unwrap_or_default());
                                }
                            }
                            let all = seen.lock().clone();
                            let Some(code) = (script.lock())(&all) else {
                                continue;
                            };
                            ProduceResponse::default()
                                .with_responses(vec![
                                    TopicProduceResponse::default()
                                        .with_name(TopicName(StrBytes::from_static_str("t")))
                                        .with_partition_responses(vec![
                                            PartitionProduceResponse::default()
                                                .with_index(0)
                                                .with_error_code(code)
                                                .with_base_offset(if code == 0 { 40 } else { -1 }),
                                        ]),
                                ])
                                .encode(&mut out, version)
                        }
                        other => panic!("unexpected {other:?}"),
                    }
                    .expect("encode");
                    let mut frame = (out.len() as i32).to_be_bytes().to_vec();
                    frame.extend_from_slice(&out);
                    if s.write_all(&frame).is_err() {
                        break;
                    }
                }
            }
        }
    }

    fn producer(addr: &str, props: &[(&str, &str)]) -> NativeProducer {
        let config = ProducerConfig::from_pairs(props.iter().copied()).expect("config");
        NativeProducer::new(vec![addr.to_owned()], config).expect("producer")
    }

    /// A producer sending every record in a batch of its own (batch.size 1), acks=all.
    fn one_record_batches(addr: &str) -> NativeProducer {
        producer(
            addr,
            &[("acks", "all"), ("linger.ms", "0"), ("batch.size", "1")],
        )
    }

    /// Sends `values` and awaits each delivery (10 s at most): `Err` holds the error's text.
    async fn deliver(p: &NativeProducer, values: &[&str]) -> Vec<std::result::Result<(), String>> {
        let mut sent = Vec::new();
        for v in values {
            sent.push(p.send(value(v)).await.expect("send"));
        }
        let mut outcomes = Vec::new();
        for d in sent {
            let r = tokio::time::timeout(Duration::from_secs(10), d)
                .await
                .expect("in time");
            outcomes.push(r.map(|_| ()).map_err(|e| e.to_string()));
        }
        outcomes
    }

    fn value(v: &str) -> ProducerRecord {
        ProducerRecord {
            topic: Arc::from("t"),
            partition: None,
            key: None,
            value: Some(Bytes::copy_from_slice(v.as_bytes())),
            headers: Vec::new(),
            timestamp: Some(1),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_leader_error_is_retried_with_the_same_batch_and_sequence() {
        let not_leader = ResponseError::NotLeaderOrFollower.code();
        let (addr, produced) = fake_broker(Box::new(move |all| {
            Some(if all.len() == 1 { not_leader } else { 0 })
        }));
        let p = producer(&addr, &[("acks", "all"), ("linger.ms", "0")]);
        let d = p.send(value("x")).await.expect("send");
        let m = tokio::time::timeout(Duration::from_secs(10), d)
            .await
            .expect("in time")
            .expect("delivered after a retry");
        assert_eq!(m.offset, 40);
        let produced = produced.lock().clone();
        assert_eq!(produced.len(), 2, "sent twice");
        assert_eq!(produced[0], produced[1], "the same batch, sequence and all");
        let h = sluice_protocol::record::BatchHeader::parse(&produced[0]).expect("batch");
        assert_eq!((h.producer_id, h.base_sequence), (7, 0));
        p.close().await.expect("close");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_fatal_error_fails_the_records_naming_the_partition_without_retrying() {
        let denied = ResponseError::TopicAuthorizationFailed.code();
        let (addr, produced) = fake_broker(Box::new(move |_| Some(denied)));
        let p = producer(&addr, &[("acks", "1"), ("linger.ms", "0")]);
        let d = p.send(value("x")).await.expect("send");
        let e = tokio::time::timeout(Duration::from_secs(10), d)
            .await
            .expect("in time")
            .expect_err("refused");
        assert!(e.to_string().contains("t-0"), "{e}");
        assert_eq!(produced.lock().len(), 1, "not retried");
        // The producer goes on: the next record is sent (and refused) too.
        let d = p.send(value("y")).await.expect("send");
        assert!(
            tokio::time::timeout(Duration::from_secs(10), d)
                .await
                .expect("in time")
                .is_err()
        );
        p.close().await.ok();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_request_never_answered_fails_at_the_delivery_timeout() {
        let (addr, produced) = fake_broker(Box::new(|_| None));
        let p = producer(
            &addr,
            &[
                ("acks", "1"),
                ("linger.ms", "0"),
                ("request.timeout.ms", "300"),
                ("delivery.timeout.ms", "1500"),
            ],
        );
        let d = p.send(value("x")).await.expect("send");
        assert!(
            format!("{p:?}").len() < 1000,
            "Debug leaves the batches out"
        );
        let e = tokio::time::timeout(Duration::from_secs(15), d)
            .await
            .expect("bounded by delivery.timeout.ms")
            .expect_err("never acknowledged");
        assert!(
            e.to_string().contains("delivery.timeout.ms")
                || e.to_string().contains("request.timeout.ms"),
            "{e}"
        );
        assert!(
            produced.lock().len() >= 2,
            "retried after each request timeout"
        );
        drop(p);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn batches_after_a_failed_one_are_retried_behind_it_in_sequence_order() {
        // The broker refuses sequence 0 once (a leader error); whatever comes before the
        // sequence it expects is OUT_OF_ORDER_SEQUENCE_NUMBER, as Kafka's would be.
        let not_leader = ResponseError::NotLeaderOrFollower.code();
        let out_of_order = ResponseError::OutOfOrderSequenceNumber.code();
        let mut next = 0;
        let mut refused = false;
        let (addr, produced) = fake_broker(Box::new(move |all| {
            let h = sluice_protocol::record::BatchHeader::parse(all.last()?).ok()?;
            if h.base_sequence == 0 && !refused {
                refused = true;
                return Some(not_leader);
            }
            if h.base_sequence != next {
                return Some(out_of_order);
            }
            next += h.record_count;
            Some(0)
        }));
        let p = one_record_batches(&addr);
        assert_eq!(
            deliver(&p, &["a", "b", "c", "d"]).await,
            [Ok(()), Ok(()), Ok(()), Ok(())],
            "delivered in the end"
        );
        // What the log took, in order: the accepted batches' sequences are 0, 1, 2, 3.
        let mut accepted = Vec::new();
        let mut expect = 0;
        let mut first = true;
        for b in produced.lock().iter() {
            let seq = sluice_protocol::record::BatchHeader::parse(b)
                .expect("batch")
                .base_sequence;
            if seq == 0 && first {
                first = false;
            } else if seq == expect {
                accepted.push(seq);
                expect += 1;
            }
        }
        assert_eq!(accepted, [0, 1, 2, 3]);
        p.close().await.expect("close");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_batch_failed_for_good_is_followed_by_a_new_producer_id_not_a_sequence_gap() {
        // Producer 7's first batch is refused for good; the broker then expects sequence 0
        // from it again, so its later batches come back OUT_OF_ORDER_SEQUENCE_NUMBER.
        let too_large = ResponseError::MessageTooLarge.code();
        let out_of_order = ResponseError::OutOfOrderSequenceNumber.code();
        let mut next: HashMap<i64, i32> = HashMap::default();
        let (addr, produced) = fake_broker(Box::new(move |all| {
            let h = sluice_protocol::record::BatchHeader::parse(all.last()?).ok()?;
            if (h.producer_id, h.base_sequence) == (7, 0) {
                return Some(too_large);
            }
            let expect = next.entry(h.producer_id).or_insert(0);
            if h.base_sequence != *expect {
                return Some(out_of_order);
            }
            *expect += h.record_count;
            Some(0)
        }));
        let p = one_record_batches(&addr);
        let mut outcomes = deliver(&p, &["a", "b", "c", "d"]).await;
        let first = outcomes.remove(0).expect_err("refused for good");
        assert!(first.contains("t-0"), "{first}");
        assert_eq!(outcomes, [Ok(()), Ok(()), Ok(())], "the later records go");
        // Under producer 8, from sequence 0, the three later records in send order.
        let taken: Vec<(i64, i32, Bytes)> = produced
            .lock()
            .iter()
            .filter_map(|b| {
                let h = sluice_protocol::record::BatchHeader::parse(b).ok()?;
                let value = sluice_protocol::record::decode_records(b, 1 << 20)
                    .ok()?
                    .next()?
                    .ok()?
                    .value?;
                (h.producer_id == 8).then_some((h.producer_id, h.base_sequence, value))
            })
            .collect();
        assert_eq!(
            taken,
            [
                (8, 0, Bytes::from_static(b"b")),
                (8, 1, Bytes::from_static(b"c")),
                (8, 2, Bytes::from_static(b"d"))
            ]
        );
        // The producer goes on under the new id.
        let d = p.send(value("e")).await.expect("send");
        tokio::time::timeout(Duration::from_secs(10), d)
            .await
            .expect("in time")
            .expect("delivered");
        p.close().await.expect("close");
    }

    #[test]
    fn requests_hold_one_batch_per_partition_in_send_order() {
        let batch = |topic: &str, partition: i32, order: u64, len: usize| Batch {
            tp: TopicPartition::new(topic, partition),
            bytes: Bytes::from(vec![0u8; len]),
            done: Arc::new(sluice_client::BatchDone::default()),
            reserved: 0,
            created: Instant::now(),
            order,
            attempts: 0,
        };
        let batches = vec![
            batch("a", 0, 1, 10),
            batch("a", 1, 2, 10),
            batch("a", 0, 3, 10),
            batch("b", 0, 4, 10),
            batch("b", 0, 5, 90),
        ];
        let requests: Vec<Vec<u64>> = split_requests(batches, 100)
            .into_iter()
            .map(|r| r.iter().map(|b| b.order).collect())
            .collect();
        assert_eq!(requests, [vec![1, 2], vec![3, 4], vec![5]]);
    }
}
