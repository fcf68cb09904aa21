//! Keys and partitioning: a keyed record goes where Kafka's partitioner puts it (murmur2 of
//! the key, positive, modulo the partition count), an explicit partition is kept, and
//! `partition_count` sees the topic's partitions.

use sluice_log::Error;
use sluice_log::client::{Client, Producer, ProducerRecord};

use super::{Harness, assigned, send, take, tp};

/// Kafka's `Utils.murmur2` of these keys, as Kafka's own tests (`UtilsTest`) state them.
const MURMUR2: [(&str, i32); 6] = [
    ("21", -973_932_308),
    ("foobar", -790_332_482),
    ("a-little-bit-long-string", -985_981_536),
    ("a-little-bit-longer-string", -1_486_304_829),
    ("abc", 479_470_107),
    ("kafka", -798_503_068),
];

/// Kafka's `partition = toPositive(murmur2(key)) % numPartitions`.
fn kafka_partition(hash: i32, partitions: i32) -> i32 {
    (hash & 0x7fff_ffff) % partitions
}

pub(crate) async fn same_key_same_partition_as_kafkas_murmur2<C: Client>(h: &Harness<C>) {
    h.create_topic("keyed", 5).await;
    let p = h.producer(&[]);
    for round in 0..2 {
        for (key, hash) in MURMUR2 {
            let m = send(
                &p,
                ProducerRecord::new("keyed", format!("{key}-{round}")).key(key),
            )
            .await;
            assert_eq!(
                m.partition,
                kafka_partition(hash, 5),
                "key {key:?} (round {round}) lands where Kafka's partitioner puts it"
            );
        }
    }
    // Every partition holds the same keys twice, in order.
    for part in 0..5 {
        let want: Vec<&str> = MURMUR2
            .iter()
            .filter(|(_, hash)| kafka_partition(*hash, 5) == part)
            .map(|(k, _)| *k)
            .collect();
        if want.is_empty() {
            continue;
        }
        let mut c = assigned(h, &[tp("keyed", part)], &[]);
        let got = take(&mut c, want.len() * 2, "keyed records of one partition").await;
        let keys: Vec<String> = got
            .iter()
            .map(|r| String::from_utf8_lossy(r.key.as_deref().unwrap_or_default()).into_owned())
            .collect();
        let twice: Vec<String> = want.iter().chain(&want).map(|k| (*k).to_owned()).collect();
        assert_eq!(keys, twice, "partition {part}");
    }
}

pub(crate) async fn explicit_partitions_and_partition_count<C: Client>(h: &Harness<C>) {
    h.create_topic("spread", 3).await;
    let p = h.producer(&[]);
    assert_eq!(p.partition_count("spread").await.expect("count"), 3);
    for part in [2, 0, 1, 2] {
        // A key whose hash says otherwise does not move an explicit partition.
        let m = send(
            &p,
            ProducerRecord::new("spread", "x")
                .key("abc")
                .partition(part),
        )
        .await;
        assert_eq!(m.partition, part);
    }
    let mut c = assigned(h, &[tp("spread", 2)], &[]);
    assert_eq!(take(&mut c, 2, "partition 2's records").await.len(), 2);

    // A topic that does not exist has no partitions (the Kafka-protocol producers wait up to
    // max.block.ms for it to appear, as Kafka's do).
    let p = h.producer(&[("max.block.ms", "1000")]);
    match p.partition_count("nowhere").await {
        Err(Error::UnknownTopic(t)) => assert_eq!(t, "nowhere"),
        other => panic!("partition_count of a missing topic: {other:?}"),
    }
}
