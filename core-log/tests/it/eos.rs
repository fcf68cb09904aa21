//! Exactly once consume-transform-produce: offsets committed in the producer's transaction
//! (`send_offsets_to_transaction`), applied only with its commit, also after a crash.

use std::sync::Arc;
use std::time::Duration;

use sluice_log::client::config::{ConsumerConfig, ProducerConfig};
use sluice_log::client::embedded::{EmbeddedClient, EmbeddedConsumer, EmbeddedProducer};
use sluice_log::client::{
    Admin, Client, Consumer, ConsumerGroupMetadata, ConsumerRecord, NewTopic, Producer,
    ProducerRecord,
};
use sluice_log::log::{LogManager, LogManagerConfig};
use sluice_log::{Error, MockClock, TopicPartition};

const GROUP: &str = "app";
const POLL: Duration = Duration::from_millis(20);

fn client(dir: &std::path::Path, clock: &MockClock) -> EmbeddedClient {
    let mut c = LogManagerConfig::new(dir);
    c.clock = Arc::new(clock.clone());
    c.background = false;
    EmbeddedClient::new(LogManager::open(c).unwrap())
}

fn input() -> TopicPartition {
    TopicPartition::new("input", 0)
}

fn producer(c: &EmbeddedClient) -> EmbeddedProducer {
    let pairs = [("transactional.id", "app-tx"), ("linger.ms", "0")];
    c.producer(ProducerConfig::from_pairs(pairs).unwrap())
        .unwrap()
}

fn consumer(c: &EmbeddedClient) -> EmbeddedConsumer {
    let pairs = [
        ("group.id", GROUP),
        ("auto.offset.reset", "earliest"),
        ("enable.auto.commit", "false"),
        ("isolation.level", "read_committed"),
        ("max.poll.records", "3"),
    ];
    let mut consumer = c
        .consumer(ConsumerConfig::from_pairs(pairs).unwrap())
        .unwrap();
    consumer.subscribe(vec!["input".into()]).unwrap();
    consumer
}

/// `input` with `v0..v{n}` and an empty `output`, one partition each.
async fn topics(c: &EmbeddedClient, n: usize) {
    c.admin()
        .unwrap()
        .create_topics(vec![NewTopic::new("input", 1), NewTopic::new("output", 1)])
        .await
        .unwrap();
    let p = c.producer(ProducerConfig::default()).unwrap();
    for i in 0..n {
        drop(
            p.send(ProducerRecord::new("input", format!("v{i}")))
                .await
                .unwrap(),
        );
    }
    p.flush().await.unwrap();
}

/// Polls until records come (advancing the clock so the group forms).
async fn poll(clock: &MockClock, consumer: &mut EmbeddedConsumer) -> Vec<ConsumerRecord> {
    for _ in 0..50 {
        clock.advance(1_000);
        let records = consumer.poll(POLL).await.unwrap();
        if !records.is_empty() {
            return records;
        }
    }
    Vec::new()
}

/// One transaction of the loop: transforms `records` to `output` and commits their offsets
/// in it; left open.
async fn transform(
    p: &EmbeddedProducer,
    consumer: &EmbeddedConsumer,
    records: &[ConsumerRecord],
) -> i64 {
    p.begin_transaction().unwrap();
    for r in records {
        let v = String::from_utf8(r.value.clone().unwrap().to_vec()).unwrap();
        drop(
            p.send(ProducerRecord::new("output", v.to_uppercase()))
                .await
                .unwrap(),
        );
    }
    let next = records.last().unwrap().offset + 1;
    let meta = consumer.group_metadata().unwrap();
    assert!(meta.generation_id >= 1, "{meta:?}");
    p.send_offsets_to_transaction(vec![(input(), next)], &meta)
        .await
        .unwrap();
    next
}

fn committed(c: &EmbeddedClient) -> Option<i64> {
    let groups = c.group_coordinator().unwrap();
    groups.fetch_offsets(GROUP, Some(&[input()]))[0]
        .1
        .as_ref()
        .map(|o| o.offset)
}

/// `output` as a read_committed consumer outside any group sees it.
async fn output(c: &EmbeddedClient) -> Vec<String> {
    let pairs = [("isolation.level", "read_committed")];
    let mut reader = c
        .consumer(ConsumerConfig::from_pairs(pairs).unwrap())
        .unwrap();
    let out = TopicPartition::new("output", 0);
    reader.assign(vec![out.clone()]).unwrap();
    reader.seek(&out, 0).unwrap();
    let mut values = Vec::new();
    for _ in 0..5 {
        for r in reader.poll(POLL).await.unwrap() {
            values.push(String::from_utf8(r.value.unwrap().to_vec()).unwrap());
        }
    }
    values
}

fn upper(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("V{i}")).collect()
}

#[tokio::test]
async fn offsets_commit_with_the_transaction_and_not_with_an_abort() {
    let dir = tempfile::tempdir().unwrap();
    let clock = MockClock::new(1_700_000_000_000);
    let c = client(dir.path(), &clock);
    topics(&c, 9).await;
    let p = producer(&c);
    p.init_transactions().await.unwrap();
    let mut consumer = consumer(&c);
    let groups = c.group_coordinator().unwrap();

    // Committed: the offsets advance with the commit only.
    let records = poll(&clock, &mut consumer).await;
    let next = transform(&p, &consumer, &records).await;
    assert_eq!(committed(&c), None, "pending until the commit");
    assert_eq!(groups.offsets().pending_count(GROUP), 1);
    p.commit_transaction().await.unwrap();
    assert_eq!(committed(&c), Some(next));
    assert_eq!(groups.offsets().pending_count(GROUP), 0);

    // Aborted: the offsets stay, the output is invisible; the loop rewinds and redoes it.
    let records = poll(&clock, &mut consumer).await;
    transform(&p, &consumer, &records).await;
    p.abort_transaction().await.unwrap();
    assert_eq!(committed(&c), Some(next));
    assert_eq!(groups.offsets().pending_count(GROUP), 0);
    consumer.seek(&input(), next).unwrap();

    let mut end = next;
    while end < 9 {
        let records = poll(&clock, &mut consumer).await;
        end = transform(&p, &consumer, &records).await;
        p.commit_transaction().await.unwrap();
        assert_eq!(committed(&c), Some(end));
    }
    assert_eq!(output(&c).await, upper(0..9), "every input exactly once");

    // A stale generation or an unknown member is refused as an OffsetCommit would be.
    p.begin_transaction().unwrap();
    let mut stale = consumer.group_metadata().unwrap();
    stale.generation_id += 1;
    let err = p
        .send_offsets_to_transaction(vec![(input(), 1)], &stale)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::IllegalGeneration { .. }), "{err}");
    let mut unknown = consumer.group_metadata().unwrap();
    unknown.member_id = "nobody".into();
    let err = p
        .send_offsets_to_transaction(vec![(input(), 1)], &unknown)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::UnknownMemberId { .. }), "{err}");
    p.abort_transaction().await.unwrap();
    assert_eq!(committed(&c), Some(9));
}

#[tokio::test]
async fn a_crash_mid_transaction_resumes_from_the_last_committed_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let clock = MockClock::new(1_700_000_000_000);
    let first_committed;
    {
        let c = client(dir.path(), &clock);
        topics(&c, 10).await;
        let p = producer(&c);
        p.init_transactions().await.unwrap();
        let mut consumer = consumer(&c);
        let records = poll(&clock, &mut consumer).await;
        first_committed = transform(&p, &consumer, &records).await;
        p.commit_transaction().await.unwrap();
        // The next transaction is written (output and offsets) but never completed.
        let records = poll(&clock, &mut consumer).await;
        transform(&p, &consumer, &records).await;
        drop(p);
        drop(consumer);
        c.log().close().unwrap();
    }
    let c = client(dir.path(), &clock);
    assert_eq!(
        committed(&c),
        Some(first_committed),
        "reload keeps it pending"
    );
    assert_eq!(
        c.group_coordinator()
            .unwrap()
            .offsets()
            .pending_count(GROUP),
        1
    );
    // The new instance fences the old one: its transaction aborts, its offsets are dropped.
    let p = producer(&c);
    p.init_transactions().await.unwrap();
    let groups = c.group_coordinator().unwrap();
    assert_eq!(groups.offsets().pending_count(GROUP), 0);
    assert_eq!(committed(&c), Some(first_committed));

    let mut consumer = consumer(&c);
    let mut end = first_committed;
    let records = poll(&clock, &mut consumer).await;
    assert_eq!(
        records[0].offset, first_committed,
        "resumes where committed"
    );
    end = end.max(transform(&p, &consumer, &records).await);
    p.commit_transaction().await.unwrap();
    while end < 10 {
        let records = poll(&clock, &mut consumer).await;
        end = transform(&p, &consumer, &records).await;
        p.commit_transaction().await.unwrap();
    }
    assert_eq!(committed(&c), Some(10));
    assert_eq!(output(&c).await, upper(0..10), "every input exactly once");
}

#[tokio::test]
async fn reload_keeps_committed_transactional_offsets_and_drops_aborted_ones() {
    let dir = tempfile::tempdir().unwrap();
    let clock = MockClock::new(1_700_000_000_000);
    let outside = ConsumerGroupMetadata::new(GROUP);
    {
        let c = client(dir.path(), &clock);
        topics(&c, 1).await;
        let p = producer(&c);
        p.init_transactions().await.unwrap();
        for (offset, commit) in [(3, true), (7, false)] {
            p.begin_transaction().unwrap();
            p.send_offsets_to_transaction(vec![(input(), offset)], &outside)
                .await
                .unwrap();
            if commit {
                p.commit_transaction().await.unwrap();
            } else {
                p.abort_transaction().await.unwrap();
            }
        }
        // Left open by a crash.
        p.begin_transaction().unwrap();
        p.send_offsets_to_transaction(vec![(input(), 9)], &outside)
            .await
            .unwrap();
        assert_eq!(committed(&c), Some(3));
        drop(p);
        c.log().close().unwrap();
    }
    let c = client(dir.path(), &clock);
    let groups = c.group_coordinator().unwrap();
    assert_eq!(committed(&c), Some(3));
    assert_eq!(groups.offsets().pending_count(GROUP), 1);
    let p = producer(&c);
    p.init_transactions().await.unwrap();
    assert_eq!(groups.offsets().pending_count(GROUP), 0);
    assert_eq!(committed(&c), Some(3));
    drop(groups);
    drop(p);
    c.log().close().unwrap();
    drop(c);
    let c = client(dir.path(), &clock);
    assert_eq!(committed(&c), Some(3), "the abort marker is replayed too");
    assert_eq!(
        c.group_coordinator()
            .unwrap()
            .offsets()
            .pending_count(GROUP),
        0
    );
}

#[tokio::test]
async fn compaction_keeps_an_offset_that_an_aborted_transaction_overwrote() {
    let dir = tempfile::tempdir().unwrap();
    let clock = MockClock::new(1_700_000_000_000);
    let outside = ConsumerGroupMetadata::new(GROUP);
    {
        let c = client(dir.path(), &clock);
        topics(&c, 1).await;
        let groups = c.group_coordinator().unwrap();
        c.log()
            .alter_topic_config(
                "__consumer_offsets",
                [("segment.bytes", "200")],
                Vec::<&str>::new(),
            )
            .unwrap();
        let p = producer(&c);
        p.init_transactions().await.unwrap();
        let other = TopicPartition::new("other", 0);
        for (tp, offset, commit) in [
            (input(), 3, true),
            (input(), 7, false),
            (other.clone(), 1, true),
            (other, 2, true),
        ] {
            p.begin_transaction().unwrap();
            p.send_offsets_to_transaction(vec![(tp, offset)], &outside)
                .await
                .unwrap();
            if commit {
                p.commit_transaction().await.unwrap();
            } else {
                p.abort_transaction().await.unwrap();
            }
        }
        let stats = c.log().run_cleaner_forced().unwrap();
        assert!(stats.partitions_cleaned >= 1, "{stats:?}");
        assert_eq!(committed(&c), Some(3));
        drop((p, groups));
        c.log().close().unwrap();
    }
    let c = client(dir.path(), &clock);
    assert_eq!(
        committed(&c),
        Some(3),
        "the aborted offset superseded nothing"
    );
}

/// Kafka's rule, as the `Producer` trait states it: a record of the transaction that failed
/// fails its commit (even when its failure was already reported), and nothing of it becomes
/// visible; the transaction can then be aborted and the next one commits.
#[tokio::test]
async fn a_failed_record_fails_the_commit_of_its_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let clock = MockClock::new(1_700_000_000_000);
    let c = client(dir.path(), &clock);
    c.admin()
        .unwrap()
        .create_topics(vec![
            NewTopic::new("small", 1).config("max.message.bytes", "200"),
        ])
        .await
        .unwrap();
    let p = producer(&c);
    p.init_transactions().await.unwrap();
    p.begin_transaction().unwrap();
    let big = p
        .send(ProducerRecord::new("small", vec![b'x'; 1_000]))
        .await
        .unwrap();
    assert!(
        big.await.is_err(),
        "the batch is larger than the topic allows"
    );
    let e = p.commit_transaction().await.unwrap_err();
    assert!(matches!(e, Error::InvalidTxnState(_)), "{e}");
    p.abort_transaction().await.unwrap();
    p.begin_transaction().unwrap();
    let ok = p.send(ProducerRecord::new("small", "ok")).await.unwrap();
    p.commit_transaction().await.unwrap();
    // After the abort marker (the failed batch's partition had joined the transaction).
    assert_eq!(ok.await.unwrap().offset, 1);
}

/// Without `transactional.id` every transactional call is a state error.
#[tokio::test]
async fn a_producer_without_a_transactional_id_refuses_transactions() {
    let dir = tempfile::tempdir().unwrap();
    let clock = MockClock::new(1_700_000_000_000);
    let c = client(dir.path(), &clock);
    let p = c.producer(ProducerConfig::default()).unwrap();
    assert!(matches!(
        p.init_transactions().await,
        Err(Error::InvalidTxnState(_))
    ));
    assert!(matches!(
        p.begin_transaction(),
        Err(Error::InvalidTxnState(_))
    ));
    assert!(matches!(
        p.send_offsets_to_transaction(vec![], &ConsumerGroupMetadata::new(GROUP))
            .await,
        Err(Error::InvalidTxnState(_))
    ));
    assert!(matches!(
        p.commit_transaction().await,
        Err(Error::InvalidTxnState(_))
    ));
    assert!(matches!(
        p.abort_transaction().await,
        Err(Error::InvalidTxnState(_))
    ));
    p.close().await.unwrap();
}

/// `end_offsets` is the high watermark for read_uncommitted and the last stable offset for
/// read_committed (held at an open transaction's first offset), as Kafka's `endOffsets`;
/// `beginning_offsets` the log start. Neither needs the partitions assigned.
#[tokio::test]
async fn end_offsets_follow_the_isolation_level() {
    let dir = tempfile::tempdir().unwrap();
    let clock = MockClock::new(1_700_000_000_000);
    let c = client(dir.path(), &clock);
    topics(&c, 3).await;
    let p = producer(&c);
    p.init_transactions().await.unwrap();
    p.begin_transaction().unwrap();
    let open = p.send(ProducerRecord::new("input", "open")).await.unwrap();
    p.flush().await.unwrap();
    open.await.unwrap();
    let read = |level: &str| {
        c.consumer(ConsumerConfig::from_pairs([("isolation.level", level)]).unwrap())
            .unwrap()
    };
    let (mut uncommitted, mut committed) = (read("read_uncommitted"), read("read_committed"));
    let tps = [input(), TopicPartition::new("output", 0)];
    let ends = uncommitted.end_offsets(&tps).await.unwrap();
    assert_eq!(ends, [(input(), 4), (TopicPartition::new("output", 0), 0)]);
    let ends = committed.end_offsets(&tps).await.unwrap();
    assert_eq!(ends[0], (input(), 3), "held at the open transaction");
    assert_eq!(
        committed.beginning_offsets(&tps).await.unwrap(),
        [(input(), 0), (TopicPartition::new("output", 0), 0)]
    );
    p.commit_transaction().await.unwrap();
    let ends = committed.end_offsets(&tps[..1]).await.unwrap();
    assert_eq!(ends, [(input(), 5)], "past the commit marker");
    assert!(matches!(
        committed
            .end_offsets(&[TopicPartition::new("nope", 0)])
            .await,
        Err(Error::UnknownTopic(_) | Error::UnknownPartition { .. })
    ));
}
