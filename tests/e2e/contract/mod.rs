//! The client contract: one suite of cases, each generic over `C: Client`, run against every
//! implementation of the traits, so a case's failure names the case and the implementation
//! (`contract::embedded::seek_to_timestamp`, `contract::librdkafka::...`, `contract::native::...`):
//!
//! - `embedded`: [`EmbeddedClient`] over a fresh `LogManager` in a temporary directory;
//! - `librdkafka`: [`KafkaClient`] (librdkafka's producer and consumer) against a `sluice broker`
//!   in this process;
//! - `native`: [`KafkaClient`] with Sluice's native producer and consumer engines against the
//!   same kind of broker.
//!
//! Where an implementation cannot do something the case asserts its refusal (the exact
//! `Error` variant), never a skip; where Kafka's own clients differ, the trait documents the
//! difference and the case asserts each side of it (see [`Impl`]).

/// Asserts `r` failed with the variant `pat`, naming the case's step in the message.
macro_rules! assert_refused {
    ($r:expr, $pat:pat $(if $guard:expr)?, $what:expr) => {
        match $r {
            Err($pat) $(if $guard)? => {}
            Err(e) => panic!("{}: refused with the wrong error: {e:?}", $what),
            Ok(_) => panic!("{}: accepted", $what),
        }
    };
}

mod admin;
mod groups;
mod offsets;
mod partitioning;
mod produce;
mod runtime;
mod seeks;
mod transactions;

use std::time::{Duration, Instant};

use sluice_kafka::{CONSUMER_ENGINE_PROPERTY, ENGINE_PROPERTY, KafkaClient, KafkaProducer};
use sluice_log::client::config::{ConsumerConfig, ProducerConfig};
use sluice_log::client::embedded::EmbeddedClient;
use sluice_log::client::{
    Admin, Client, Consumer, ConsumerRecord, NewTopic, Producer, ProducerRecord, RecordMetadata,
};
use sluice_log::log::{LogManager, LogManagerConfig};
use sluice_log::{Result, TopicPartition};

use crate::kafka_client::{Running, broker_at};

/// Bound of every wait of the suite: a case that waits longer has failed.
pub(crate) const DEADLINE: Duration = Duration::from_secs(20);
/// One poll of a wait loop.
pub(crate) const POLL: Duration = Duration::from_millis(100);

/// Which implementation a harness runs, for the refusals and documented differences a case
/// asserts per implementation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Impl {
    /// The embedded client over a log in this process.
    Embedded,
    /// The Kafka-protocol client with librdkafka's producer and consumer.
    Librdkafka,
    /// The Kafka-protocol client with Sluice's native producer and consumer.
    Native,
}

/// One implementation under test, with what keeps it alive (its log's directory, its broker).
pub(crate) struct Harness<C: Client> {
    pub(crate) client: C,
    pub(crate) imp: Impl,
    /// librdkafka's client of the same broker, for what the native engines refuse (a case
    /// asserts the refusal, then does the step with librdkafka to go on).
    librdkafka: Option<KafkaClient>,
    broker: Option<Running>,
    _dir: tempfile::TempDir,
}

impl Harness<EmbeddedClient> {
    /// The embedded client over a fresh log.
    pub(crate) fn embedded() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = LogManager::open(LogManagerConfig::new(dir.path())).expect("open log");
        Self {
            client: EmbeddedClient::new(log),
            imp: Impl::Embedded,
            librdkafka: None,
            broker: None,
            _dir: dir,
        }
    }
}

impl Harness<KafkaClient> {
    /// The Kafka-protocol client (with the engines of `imp`) against a fresh in-process broker.
    pub(crate) async fn kafka(imp: Impl) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let running = broker_at(
            dir.path(),
            "127.0.0.1:0",
            &[
                ("group.min.session.timeout.ms", "1000"),
                ("auto.create.topics.enable", "false"),
            ],
        )
        .await;
        let client = match imp {
            Impl::Librdkafka => KafkaClient::new(running.addr.to_string()),
            Impl::Native => KafkaClient::new(running.addr.to_string())
                .with_producer_property(ENGINE_PROPERTY, "native")
                .with_consumer_property(CONSUMER_ENGINE_PROPERTY, "native"),
            Impl::Embedded => panic!("the embedded client has no broker"),
        };
        Self {
            librdkafka: Some(KafkaClient::new(running.addr.to_string())),
            client,
            imp,
            broker: Some(running),
            _dir: dir,
        }
    }
}

impl<C: Client> Harness<C> {
    /// Stops the broker, if any, cleanly (after a case passed).
    pub(crate) async fn finish(mut self) {
        if let Some(b) = self.broker.take() {
            b.stop().await;
        }
    }

    pub(crate) fn admin(&self) -> C::Admin {
        self.client.admin().expect("admin")
    }

    pub(crate) fn try_producer(&self, props: &[(&str, &str)]) -> Result<C::Producer> {
        self.client
            .producer(ProducerConfig::from_pairs(props.iter().copied()).expect("producer config"))
    }

    /// A producer sending at once (`linger.ms=0`) with these configs besides.
    pub(crate) fn producer(&self, props: &[(&str, &str)]) -> C::Producer {
        let mut all = vec![("linger.ms", "0")];
        all.extend_from_slice(props);
        self.try_producer(&all).expect("producer")
    }

    /// A producer of librdkafka's engine against the harness's broker (`linger.ms=0`).
    pub(crate) fn librdkafka_producer(&self, props: &[(&str, &str)]) -> KafkaProducer {
        let mut all = vec![("linger.ms", "0")];
        all.extend_from_slice(props);
        self.librdkafka
            .as_ref()
            .expect("a broker")
            .producer(ProducerConfig::from_pairs(all).expect("producer config"))
            .expect("librdkafka producer")
    }

    pub(crate) fn consumer(&self, props: &[(&str, &str)]) -> C::Consumer {
        self.client
            .consumer(ConsumerConfig::from_pairs(props.iter().copied()).expect("consumer config"))
            .expect("consumer")
    }

    /// A consumer of `group` with short sessions, reading from the start, committing by hand.
    pub(crate) fn group_consumer(&self, group: &str, props: &[(&str, &str)]) -> C::Consumer {
        let mut all = vec![
            ("group.id", group),
            ("auto.offset.reset", "earliest"),
            ("enable.auto.commit", "false"),
            ("session.timeout.ms", "6000"),
            ("heartbeat.interval.ms", "200"),
            ("partition.assignment.strategy", "range"),
        ];
        all.extend_from_slice(props);
        self.consumer(&all)
    }

    pub(crate) async fn create_topic(&self, name: &str, partitions: i32) {
        self.create(NewTopic::new(name, partitions)).await;
    }

    pub(crate) async fn create(&self, topic: NewTopic) {
        let name = topic.name.clone();
        self.admin()
            .create_topics(vec![topic])
            .await
            .unwrap_or_else(|e| panic!("create topic {name}: {e}"));
    }

    /// Sends `records` through a fresh producer, one at a time, each acknowledged.
    pub(crate) async fn send_all(&self, records: Vec<ProducerRecord>) -> Vec<RecordMetadata> {
        let p = self.producer(&[]);
        let mut out = Vec::with_capacity(records.len());
        for r in records {
            out.push(send(&p, r).await);
        }
        p.flush().await.expect("flush");
        out
    }
}

/// Sends one record and waits for its acknowledgement.
pub(crate) async fn send<P: Producer>(p: &P, r: ProducerRecord) -> RecordMetadata {
    p.send(r).await.expect("send").await.expect("delivered")
}

/// Polls until `want` records arrived; fails the case at the deadline, naming `what`.
pub(crate) async fn take<K: Consumer>(c: &mut K, want: usize, what: &str) -> Vec<ConsumerRecord> {
    let start = Instant::now();
    let mut out = Vec::new();
    while out.len() < want {
        assert!(
            start.elapsed() < DEADLINE,
            "{what}: {} of {want} records after {DEADLINE:?}: {:?}",
            out.len(),
            values(&out)
        );
        out.extend(c.poll(POLL).await.expect("poll"));
    }
    out
}

/// Polls for `quiet` and returns what arrived (to check that nothing more does).
pub(crate) async fn drain<K: Consumer>(c: &mut K, quiet: Duration) -> Vec<ConsumerRecord> {
    let start = Instant::now();
    let mut out = Vec::new();
    while start.elapsed() < quiet {
        out.extend(c.poll(POLL).await.expect("poll"));
    }
    out
}

/// An assigned consumer of `tps`, from their beginning.
pub(crate) fn assigned<C: Client>(
    h: &Harness<C>,
    tps: &[TopicPartition],
    props: &[(&str, &str)],
) -> C::Consumer {
    let mut all = vec![("auto.offset.reset", "earliest")];
    all.extend_from_slice(props);
    let mut c = h.consumer(&all);
    c.assign(tps.to_vec()).expect("assign");
    c
}

pub(crate) fn values(records: &[ConsumerRecord]) -> Vec<String> {
    records
        .iter()
        .map(|r| match &r.value {
            Some(v) => String::from_utf8_lossy(v).into_owned(),
            None => "<null>".to_owned(),
        })
        .collect()
}

pub(crate) fn tp(topic: &str, partition: i32) -> TopicPartition {
    TopicPartition::new(topic, partition)
}

/// Now on the wall clock, in ms since the epoch.
pub(crate) fn now_ms() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock after 1970")
            .as_millis(),
    )
    .expect("ms fit i64")
}

/// One `#[tokio::test]` per case and implementation: `contract::<implementation>::<case>`.
macro_rules! contract_cases {
    ($($module:ident :: $case:ident),* $(,)?) => {
        mod embedded {
            use super::Harness;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let h = Harness::embedded();
                    super::$module::$case(&h).await;
                    h.finish().await;
                }
            )*
        }
        mod librdkafka {
            use super::{Harness, Impl};
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let h = Harness::kafka(Impl::Librdkafka).await;
                    super::$module::$case(&h).await;
                    h.finish().await;
                }
            )*
        }
        mod native {
            use super::{Harness, Impl};
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let h = Harness::kafka(Impl::Native).await;
                    super::$module::$case(&h).await;
                    h.finish().await;
                }
            )*
        }
    };
}

contract_cases! {
    produce::values_null_values_headers_and_timestamps,
    produce::log_append_time_topics_stamp_the_log_time,
    partitioning::same_key_same_partition_as_kafkas_murmur2,
    partitioning::explicit_partitions_and_partition_count,
    seeks::seek_and_position_after_poll,
    seeks::seek_to_beginning_and_end,
    seeks::seek_to_timestamp,
    seeks::pause_and_resume,
    offsets::list_offsets_by_spec,
    offsets::delete_records_moves_the_log_start,
    offsets::auto_offset_reset_earliest_latest_none,
    admin::create_describe_list_delete_topics,
    admin::alter_configs_and_create_partitions,
    admin::refusals_name_the_problem,
    groups::two_members_split_and_one_leaving_gives_back,
    groups::rebalance_listener_sees_revoked_and_assigned,
    groups::commits_and_committed,
    groups::describe_list_lag_reset_delete,
    transactions::commit_and_abort_as_read_committed_sees_them,
    transactions::send_offsets_commits_with_the_output,
    transactions::a_second_producer_fences_the_first,
    transactions::refusals_out_of_order,
    runtime::beginning_and_end_offsets_in_one_call,
    runtime::close_completes_what_was_sent,
    runtime::group_metadata_and_a_commit_during_revocation,
}
