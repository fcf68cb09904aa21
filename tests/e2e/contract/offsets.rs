//! Offsets: list_offsets by every spec, delete_records moving the log start, and where a
//! consumer without a position starts (`auto.offset.reset` earliest, latest, none).

use std::time::Duration;

use sluice_log::Error;
use sluice_log::client::{Admin, Client, Consumer, ListedOffset, OffsetSpec, ProducerRecord};

use super::{Harness, Impl, assigned, drain, take, tp, values};

const T0: i64 = 1_700_000_000_000;

pub(crate) async fn list_offsets_by_spec<C: Client>(h: &Harness<C>) {
    h.create_topic("listed", 1).await;
    let t = tp("listed", 0);
    let admin = h.admin();
    // An empty partition: start and end are 0; no timestamp finds a record.
    let empty = admin
        .list_offsets(&t, OffsetSpec::Earliest)
        .await
        .expect("earliest");
    assert_eq!(empty.offset, 0);
    assert_eq!(
        admin
            .list_offsets(&t, OffsetSpec::Latest)
            .await
            .expect("latest")
            .offset,
        0
    );
    // Timestamps out of order: the largest is in the middle.
    let stamps = [T0, T0 + 50, T0 + 20, T0 + 30];
    h.send_all(
        stamps
            .iter()
            .enumerate()
            .map(|(i, ts)| ProducerRecord::new("listed", format!("v{i}")).timestamp(*ts))
            .collect(),
    )
    .await;
    let at = |spec| {
        let admin = &admin;
        let t = &t;
        async move { admin.list_offsets(t, spec).await.expect("list_offsets") }
    };
    assert_eq!(at(OffsetSpec::Earliest).await.offset, 0);
    assert_eq!(at(OffsetSpec::Latest).await.offset, 4);
    assert_eq!(
        at(OffsetSpec::Timestamp(T0 + 10)).await,
        ListedOffset {
            offset: 1,
            timestamp: T0 + 50
        },
        "the first offset whose timestamp is >= the one asked, with its timestamp"
    );
    assert_eq!(
        at(OffsetSpec::MaxTimestamp).await,
        ListedOffset {
            offset: 1,
            timestamp: T0 + 50
        },
        "the record with the largest timestamp"
    );
    assert_eq!(
        at(OffsetSpec::Timestamp(T0 + 60)).await.offset,
        4,
        "no record that late: the log end"
    );
    // A partition that does not exist.
    assert_refused!(
        admin
            .list_offsets(&tp("listed", 3), OffsetSpec::Latest)
            .await,
        Error::UnknownPartition { .. } | Error::UnknownTopic(_),
        "list_offsets of a missing partition"
    );
}

pub(crate) async fn delete_records_moves_the_log_start<C: Client>(h: &Harness<C>) {
    h.create_topic("trimmed", 1).await;
    let t = tp("trimmed", 0);
    h.send_all(
        (0..6)
            .map(|i| ProducerRecord::new("trimmed", format!("v{i}")))
            .collect(),
    )
    .await;
    let admin = h.admin();
    assert_eq!(admin.delete_records(&t, 4).await.expect("delete"), 4);
    assert_eq!(
        admin
            .list_offsets(&t, OffsetSpec::Earliest)
            .await
            .expect("earliest")
            .offset,
        4
    );
    let d = admin.describe_topic("trimmed").await.expect("describe");
    assert_eq!(
        (
            d.partitions[0].log_start_offset,
            d.partitions[0].log_end_offset
        ),
        (4, 6)
    );
    // A consumer from the beginning starts at the new log start.
    let mut c = assigned(h, std::slice::from_ref(&t), &[]);
    c.seek_to_beginning(&[]).await.expect("seek");
    assert_eq!(
        values(&take(&mut c, 2, "after the log start").await),
        ["v4", "v5"]
    );
    // -1: everything.
    assert_eq!(admin.delete_records(&t, -1).await.expect("delete all"), 6);
    // Past the end is refused: the embedded log says where the log is; the Kafka-protocol
    // client has only OFFSET_OUT_OF_RANGE (1) from librdkafka (see `Admin::delete_records`).
    let past = admin.delete_records(&t, 100).await;
    match h.imp {
        Impl::Embedded => assert_refused!(
            past,
            Error::OffsetOutOfRange {
                offset: 100,
                log_start: 6,
                log_end: 6,
                ..
            },
            "delete_records past the log end"
        ),
        Impl::Librdkafka | Impl::Native => {
            assert_refused!(
                past,
                Error::Kafka { code: 1, .. },
                "delete_records past the log end"
            );
        }
    }
}

pub(crate) async fn auto_offset_reset_earliest_latest_none<C: Client>(h: &Harness<C>) {
    h.create_topic("reset", 1).await;
    let t = tp("reset", 0);
    h.send_all(vec![
        ProducerRecord::new("reset", "old0"),
        ProducerRecord::new("reset", "old1"),
    ])
    .await;

    let mut earliest = assigned(h, std::slice::from_ref(&t), &[]);
    assert_eq!(
        values(&take(&mut earliest, 2, "earliest").await),
        ["old0", "old1"]
    );

    let mut latest = h.consumer(&[("auto.offset.reset", "latest")]);
    latest.assign(vec![t.clone()]).expect("assign");
    // The first poll settles the position at the end; then a new record arrives.
    let before = drain(&mut latest, Duration::from_millis(300)).await;
    assert!(before.is_empty(), "latest reads no old records: {before:?}");
    h.send_all(vec![ProducerRecord::new("reset", "new")]).await;
    assert_eq!(values(&take(&mut latest, 1, "latest").await), ["new"]);

    // none: no committed offset and no position is an error naming the partition.
    let mut none = h.consumer(&[("auto.offset.reset", "none")]);
    none.assign(vec![t.clone()]).expect("assign");
    let mut refused = None;
    for _ in 0..20 {
        match none.poll(Duration::from_millis(100)).await {
            Ok(r) => assert!(r.is_empty(), "none read records: {r:?}"),
            Err(e) => {
                refused = Some(e);
                break;
            }
        }
    }
    match refused {
        Some(Error::NoOffsetForPartition { tp }) => assert_eq!(tp, t),
        other => panic!("auto.offset.reset=none: {other:?}"),
    }
    // A position set by a seek needs no reset.
    none.seek(&t, 1).expect("seek");
    assert_eq!(
        values(&take(&mut none, 2, "none after a seek").await),
        ["old1", "new"]
    );
}
