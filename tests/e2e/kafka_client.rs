//! Sluice's Kafka-protocol client (`client::kafka`, librdkafka) against `sluice broker` in this
//! process: a consumer group of two members rebalancing, and transactions committed and aborted
//! as read_committed consumers see them.

use std::time::{Duration, Instant};

use sluice_broker::{Broker, BrokerConfig};
use sluice_kafka::{KafkaClient, KafkaConsumer, KafkaProducer};
use sluice_log::TopicPartition;
use sluice_log::client::config::{ConsumerConfig, ProducerConfig};
use sluice_log::client::{
    Admin, Client, Consumer, ConsumerRecord, NewTopic, OffsetSpec, Producer, ProducerRecord,
    ResetSpec,
};
use tokio::sync::oneshot;

const DEADLINE: Duration = Duration::from_secs(30);

pub(crate) struct Running {
    pub(crate) client: KafkaClient,
    pub(crate) addr: std::net::SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<sluice_broker::Result<()>>,
    _dir: Option<tempfile::TempDir>,
}

pub(crate) async fn broker() -> Running {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut running = broker_at(dir.path(), "127.0.0.1:0", &[]).await;
    running._dir = Some(dir);
    running
}

/// A broker over `dir` listening on `addr`, with these settings besides.
pub(crate) async fn broker_at(
    dir: &std::path::Path,
    addr: &str,
    settings: &[(&str, &str)],
) -> Running {
    let mut config = BrokerConfig::default();
    config
        .set("listeners", &format!("PLAINTEXT://{addr}"))
        .expect("listeners");
    config
        .set("log.dirs", dir.to_str().expect("utf-8 path"))
        .expect("log.dirs");
    config
        .set("group.initial.rebalance.delay.ms", "0")
        .expect("delay");
    for (k, v) in settings {
        config.set(k, v).expect("broker setting");
    }
    let broker = Broker::bind(config).await.expect("bind");
    let addr = broker.local_addr();
    let client = KafkaClient::new(addr.to_string());
    let (tx, rx) = oneshot::channel();
    let task = tokio::spawn(broker.run(async move {
        let _ = rx.await;
    }));
    Running {
        client,
        addr,
        stop: Some(tx),
        task,
        _dir: None,
    }
}

impl Running {
    /// Creates `name` with `partitions` partitions through the admin client.
    pub(crate) async fn create_topic(&self, name: &str, partitions: i32) {
        self.client
            .admin()
            .expect("admin")
            .create_topics(vec![NewTopic::new(name, partitions)])
            .await
            .expect("create");
    }

    pub(crate) async fn stop(mut self) {
        let _ = self.stop.take().expect("running").send(());
        tokio::time::timeout(Duration::from_secs(40), &mut self.task)
            .await
            .expect("broker stops")
            .expect("broker task")
            .expect("broker run");
    }
}

fn producer(c: &KafkaClient, props: &[(&str, &str)]) -> KafkaProducer {
    c.producer(ProducerConfig::from_pairs(props.iter().copied()).expect("producer config"))
        .expect("producer")
}

pub(crate) fn consumer(c: &KafkaClient, props: &[(&str, &str)]) -> KafkaConsumer {
    c.consumer(ConsumerConfig::from_pairs(props.iter().copied()).expect("consumer config"))
        .expect("consumer")
}

/// Polls until `want` records arrived or the deadline passed.
pub(crate) async fn consume(c: &mut KafkaConsumer, want: usize) -> Vec<ConsumerRecord> {
    let start = Instant::now();
    let mut out = Vec::new();
    while out.len() < want && start.elapsed() < DEADLINE {
        out.extend(c.poll(Duration::from_millis(200)).await.expect("poll"));
    }
    out
}

pub(crate) fn values(records: &[ConsumerRecord]) -> Vec<String> {
    records
        .iter()
        .map(|r| String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_rdkafka_consumers_share_a_topic_and_rebalance_when_one_leaves() {
    let b = broker().await;
    b.create_topic("jobs", 4).await;
    let group = [
        ("group.id", "workers"),
        ("auto.offset.reset", "earliest"),
        ("session.timeout.ms", "6000"),
        ("heartbeat.interval.ms", "200"),
        ("partition.assignment.strategy", "range"),
    ];
    let mut a = consumer(&b.client, &group);
    let mut c = consumer(&b.client, &group);
    a.subscribe(vec!["jobs".into()]).expect("subscribe a");
    c.subscribe(vec!["jobs".into()]).expect("subscribe c");
    // Both poll until the group settles with two partitions each.
    let start = Instant::now();
    while (a.assignment().len(), c.assignment().len()) != (2, 2) {
        assert!(
            start.elapsed() < DEADLINE,
            "no 2+2 split: {:?} / {:?}",
            a.assignment(),
            c.assignment()
        );
        a.poll(Duration::from_millis(100)).await.expect("poll a");
        c.poll(Duration::from_millis(100)).await.expect("poll c");
    }
    let mut all: Vec<TopicPartition> = a.assignment().into_iter().chain(c.assignment()).collect();
    all.sort();
    assert_eq!(
        all,
        (0..4)
            .map(|p| TopicPartition::new("jobs", p))
            .collect::<Vec<_>>()
    );
    // Records to every partition reach the member that owns it.
    let p = producer(&b.client, &[("linger.ms", "0")]);
    for i in 0..40 {
        p.send(ProducerRecord::new("jobs", format!("job-{i}")).partition(i % 4))
            .await
            .expect("send")
            .await
            .expect("delivered");
    }
    let mut got = Vec::new();
    let start = Instant::now();
    while got.len() < 40 && start.elapsed() < DEADLINE {
        got.extend(a.poll(Duration::from_millis(100)).await.expect("poll a"));
        got.extend(c.poll(Duration::from_millis(100)).await.expect("poll c"));
    }
    assert_eq!(got.len(), 40);
    // One member leaves (LeaveGroup): the other takes all four partitions.
    c.close().await.expect("close c");
    let start = Instant::now();
    while a.assignment().len() != 4 {
        assert!(
            start.elapsed() < DEADLINE,
            "the remaining member never got all 4: {:?}",
            a.assignment()
        );
        a.poll(Duration::from_millis(100)).await.expect("poll a");
    }
    a.close().await.expect("close a");
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transactional_round_trip_commits_and_aborts() {
    let b = broker().await;
    b.create_topic("ledger", 1).await;
    let p = producer(
        &b.client,
        &[("transactional.id", "ledger-writer"), ("linger.ms", "0")],
    );
    p.init_transactions().await.expect("init");
    p.begin_transaction().expect("begin");
    for v in ["a1", "a2"] {
        p.send(ProducerRecord::new("ledger", v))
            .await
            .expect("send");
    }
    p.commit_transaction().await.expect("commit");
    p.begin_transaction().expect("begin");
    p.send(ProducerRecord::new("ledger", "aborted"))
        .await
        .expect("send");
    p.flush().await.expect("flush");
    p.abort_transaction().await.expect("abort");
    p.begin_transaction().expect("begin");
    p.send(ProducerRecord::new("ledger", "b1"))
        .await
        .expect("send");
    p.commit_transaction().await.expect("commit");

    let tp = TopicPartition::new("ledger", 0);
    let mut committed = consumer(
        &b.client,
        &[
            ("isolation.level", "read_committed"),
            ("auto.offset.reset", "earliest"),
        ],
    );
    committed.assign(vec![tp.clone()]).expect("assign");
    committed
        .seek_to_beginning(std::slice::from_ref(&tp))
        .await
        .expect("seek");
    assert_eq!(
        values(&consume(&mut committed, 3).await),
        ["a1", "a2", "b1"]
    );
    let mut uncommitted = consumer(
        &b.client,
        &[
            ("isolation.level", "read_uncommitted"),
            ("auto.offset.reset", "earliest"),
        ],
    );
    uncommitted.assign(vec![tp.clone()]).expect("assign");
    uncommitted.seek_to_beginning(&[tp]).await.expect("seek");
    assert_eq!(
        values(&consume(&mut uncommitted, 4).await),
        ["a1", "a2", "aborted", "b1"]
    );
    // A second producer with the same transactional.id fences the first.
    let zombie_killer = producer(&b.client, &[("transactional.id", "ledger-writer")]);
    zombie_killer.init_transactions().await.expect("init again");
    // The first one finds out at its next contact with the broker (an empty transaction
    // never reaches it, so this one carries a record).
    let fenced = async {
        p.begin_transaction()?;
        p.send(ProducerRecord::new("ledger", "zombie"))
            .await?
            .await?;
        p.commit_transaction().await
    }
    .await;
    assert!(fenced.is_err(), "the first producer is fenced");
    let mut check = consumer(
        &b.client,
        &[
            ("isolation.level", "read_committed"),
            ("auto.offset.reset", "earliest"),
        ],
    );
    let tp = TopicPartition::new("ledger", 0);
    check.assign(vec![tp.clone()]).expect("assign");
    check.seek_to_beginning(&[tp]).await.expect("seek");
    assert_eq!(
        values(&consume(&mut check, 3).await),
        ["a1", "a2", "b1"],
        "the committed records, in order, after fencing"
    );
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consume_transform_produce_commits_the_group_offsets_in_the_transaction() {
    let b = broker().await;
    let admin = b.client.admin().expect("admin");
    admin
        .create_topics(vec![NewTopic::new("in", 1), NewTopic::new("out", 1)])
        .await
        .expect("create");
    let p = producer(&b.client, &[("linger.ms", "0")]);
    for i in 0..5 {
        p.send(ProducerRecord::new("in", format!("m{i}")))
            .await
            .expect("send")
            .await
            .expect("delivered");
    }
    let mut c = consumer(
        &b.client,
        &[
            ("group.id", "transformers"),
            ("auto.offset.reset", "earliest"),
            ("enable.auto.commit", "false"),
            ("isolation.level", "read_committed"),
        ],
    );
    c.subscribe(vec!["in".into()]).expect("subscribe");
    let read = consume(&mut c, 5).await;
    assert_eq!(values(&read), ["m0", "m1", "m2", "m3", "m4"]);
    let t = producer(
        &b.client,
        &[("transactional.id", "transformer"), ("linger.ms", "0")],
    );
    t.init_transactions().await.expect("init");
    t.begin_transaction().expect("begin");
    for r in &read {
        let v = String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).to_uppercase();
        t.send(ProducerRecord::new("out", v)).await.expect("send");
    }
    let tp = TopicPartition::new("in", 0);
    let metadata = c.group_metadata().expect("group metadata");
    t.send_offsets_to_transaction(vec![(tp.clone(), 5)], &metadata)
        .await
        .expect("offsets in the transaction");
    t.commit_transaction().await.expect("commit");
    // The group's offset came with the commit marker.
    let start = Instant::now();
    while c
        .committed(std::slice::from_ref(&tp))
        .await
        .expect("committed")
        != [Some(5)]
    {
        assert!(
            start.elapsed() < DEADLINE,
            "the transactional offset never became committed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut out = consumer(
        &b.client,
        &[
            ("isolation.level", "read_committed"),
            ("auto.offset.reset", "earliest"),
        ],
    );
    let out_tp = TopicPartition::new("out", 0);
    out.assign(vec![out_tp.clone()]).expect("assign");
    out.seek_to_beginning(&[out_tp]).await.expect("seek");
    assert_eq!(
        values(&consume(&mut out, 5).await),
        ["M0", "M1", "M2", "M3", "M4"]
    );
    c.close().await.expect("close");
    b.stop().await;
}

/// Transactions listed and described over the Kafka protocol (ListTransactions,
/// FindCoordinator, DescribeTransactions, which librdkafka does not offer), through the admin
/// and through `sluice --bootstrap transactions`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_are_listed_and_described_over_the_protocol() {
    let b = broker().await;
    let admin = b.client.admin().expect("admin");
    b.create_topic("ledger", 2).await;
    let done = producer(
        &b.client,
        &[("transactional.id", "tx-done"), ("linger.ms", "0")],
    );
    done.init_transactions().await.expect("init");
    done.begin_transaction().expect("begin");
    done.send(ProducerRecord::new("ledger", "x").partition(0))
        .await
        .expect("send");
    done.commit_transaction().await.expect("commit");
    let open = producer(
        &b.client,
        &[("transactional.id", "tx-open"), ("linger.ms", "0")],
    );
    open.init_transactions().await.expect("init");
    open.begin_transaction().expect("begin");
    open.send(ProducerRecord::new("ledger", "y").partition(1))
        .await
        .expect("send")
        .await
        .expect("delivered");

    let listed = admin.list_transactions().await.expect("list");
    let states: Vec<(&str, &str)> = listed
        .iter()
        .map(|t| (t.transactional_id.as_str(), t.state.as_str()))
        .collect();
    assert_eq!(
        states,
        [("tx-done", "CompleteCommit"), ("tx-open", "Ongoing")]
    );
    let d = admin
        .describe_transaction("tx-open")
        .await
        .expect("describe");
    assert_eq!(d.coordinator_id, 1, "the broker's node.id");
    assert_eq!(d.state, "Ongoing");
    assert_eq!(d.partitions, [TopicPartition::new("ledger", 1)]);
    assert!(d.transaction_start_time_ms > 0, "{d:?}");
    assert_eq!(d.producer_id, listed[1].producer_id);
    match admin.describe_transaction("nope").await {
        Err(sluice_log::Error::TransactionalIdNotFound(id)) => assert_eq!(id, "nope"),
        other => panic!("{other:?}"),
    }

    // The CLI, in a child process, against the same broker.
    let servers = b.client.bootstrap_servers().to_owned();
    let cli = |args: &'static [&'static str]| {
        let servers = servers.clone();
        tokio::task::spawn_blocking(move || {
            let mut c = std::process::Command::new(crate::cli::sluice_bin());
            c.arg("--bootstrap").arg(&servers).args(args);
            crate::cli::run(c, "", DEADLINE)
        })
    };
    let list = cli(&["transactions", "list"]).await.expect("cli");
    assert_eq!(list.code, 0, "{list:?}");
    assert!(
        list.stdout
            .lines()
            .any(|l| l.starts_with("tx-open") && l.ends_with("Ongoing")),
        "{list:?}"
    );
    let describe = cli(&["transactions", "describe", "--transactional-id", "tx-open"])
        .await
        .expect("cli");
    assert_eq!(describe.code, 0, "{describe:?}");
    assert!(
        describe.stdout.contains("TopicPartitions: ledger-1\n"),
        "{describe:?}"
    );
    assert!(
        describe.stdout.contains("CoordinatorId: 1\n"),
        "{describe:?}"
    );
    let missing = cli(&["transactions", "describe", "--transactional-id", "nope"])
        .await
        .expect("cli");
    assert_eq!(missing.code, 1, "{missing:?}");
    assert!(missing.stderr.contains("nope"), "{missing:?}");

    open.abort_transaction().await.expect("abort");
    b.stop().await;
}

/// What rdkafka does not wrap, sent by the client itself: ListOffsets' max-timestamp spec and
/// OffsetDelete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_timestamp_offsets_and_deleting_a_groups_offsets() {
    let b = broker().await;
    let admin = b.client.admin().expect("admin");
    b.create_topic("ts", 2).await;
    let p = producer(&b.client, &[("linger.ms", "0")]);
    for ts in [100, 300, 200] {
        p.send(ProducerRecord::new("ts", "v").partition(0).timestamp(ts))
            .await
            .expect("send");
    }
    p.flush().await.expect("flush");
    let tp0 = TopicPartition::new("ts", 0);
    let tp1 = TopicPartition::new("ts", 1);
    let max = admin
        .list_offsets(&tp0, OffsetSpec::MaxTimestamp)
        .await
        .expect("max timestamp");
    assert_eq!((max.offset, max.timestamp), (1, 300));
    let empty = admin
        .list_offsets(&tp1, OffsetSpec::MaxTimestamp)
        .await
        .expect("max timestamp of an empty partition");
    assert_eq!((empty.offset, empty.timestamp), (-1, -1));
    match admin
        .list_offsets(&TopicPartition::new("ts", 9), OffsetSpec::MaxTimestamp)
        .await
    {
        Err(sluice_log::Error::UnknownPartition { partition: 9, .. }) => {}
        other => panic!("{other:?}"),
    }

    // Offsets committed for a group without members, then one partition's deleted.
    admin
        .reset_offsets(
            "g",
            vec![tp0.clone(), tp1.clone()],
            ResetSpec::ToOffset(2),
            false,
        )
        .await
        .expect("commit");
    let committed = |lag: Vec<sluice_log::client::PartitionLag>| {
        lag.into_iter()
            .filter_map(|l| Some((l.tp.partition, l.committed?)))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        committed(admin.lag("g").await.expect("lag")),
        [(0, 2), (1, 0)],
        "partition 1 is empty: 2 is clamped to its end"
    );
    admin
        .delete_offsets("g", vec![tp0.clone()])
        .await
        .expect("delete offsets");
    assert_eq!(committed(admin.lag("g").await.expect("lag")), [(1, 0)]);
    match admin.delete_offsets("nobody", vec![tp0]).await {
        Err(sluice_log::Error::GroupIdNotFound(g)) => assert_eq!(g, "nobody"),
        other => panic!("{other:?}"),
    }
    b.stop().await;
}
