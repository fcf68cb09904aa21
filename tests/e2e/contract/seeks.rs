//! Seeks and positions: seek, seek_to_beginning, seek_to_end, seek_to_timestamp, the position
//! after a poll, pause and resume.

use std::time::Duration;

use sluice_log::client::{Client, Consumer, ProducerRecord};

use super::{Harness, Impl, assigned, drain, take, tp, values};

const T0: i64 = 1_700_000_000_000;

/// `n` records `v0..` to partition `partition` of `topic`, with timestamps T0, T0+10, ...
async fn fill<C: Client>(h: &Harness<C>, topic: &str, partition: i32, n: i64) {
    h.send_all(
        (0..n)
            .map(|i| {
                ProducerRecord::new(topic.to_owned(), format!("v{i}"))
                    .partition(partition)
                    .timestamp(T0 + 10 * i)
            })
            .collect(),
    )
    .await;
}

pub(crate) async fn seek_and_position_after_poll<C: Client>(h: &Harness<C>) {
    h.create_topic("pos", 1).await;
    fill(h, "pos", 0, 10).await;
    let t = tp("pos", 0);
    let mut c = assigned(h, std::slice::from_ref(&t), &[("max.poll.records", "4")]);
    let got = take(&mut c, 4, "the first four").await;
    // A poll returns at most max.poll.records; the position is past what it returned.
    let last = got.last().expect("records").offset;
    assert_eq!(
        c.position(&t),
        Some(last + 1),
        "position after a poll is the next offset to return"
    );
    c.seek(&t, 7).expect("seek");
    assert_eq!(c.position(&t), Some(7), "position after a seek");
    let got = take(&mut c, 3, "from offset 7").await;
    assert_eq!(
        values(&got),
        ["v7", "v8", "v9"],
        "records from the seeked offset"
    );
    assert_eq!(c.position(&t), Some(10));
    // Back to an earlier offset: records are read again.
    c.seek(&t, 2).expect("seek back");
    assert_eq!(values(&take(&mut c, 1, "offset 2").await)[0], "v2");

    // Seeking a partition that is not assigned is refused.
    assert_refused!(
        c.seek(&tp("pos", 5), 0),
        sluice_log::Error::InvalidRequest(_),
        "seek of an unassigned partition"
    );
}

pub(crate) async fn seek_to_beginning_and_end<C: Client>(h: &Harness<C>) {
    h.create_topic("ends", 2).await;
    fill(h, "ends", 0, 5).await;
    fill(h, "ends", 1, 3).await;
    let (t0, t1) = (tp("ends", 0), tp("ends", 1));
    let mut c = assigned(h, &[t0.clone(), t1.clone()], &[]);
    c.seek_to_end(&[]).await.expect("seek_to_end of all");
    assert_eq!((c.position(&t0), c.position(&t1)), (Some(5), Some(3)));
    assert!(
        drain(&mut c, Duration::from_millis(300)).await.is_empty(),
        "nothing past the end"
    );
    c.seek_to_beginning(std::slice::from_ref(&t1))
        .await
        .expect("seek_to_beginning of one");
    assert_eq!((c.position(&t0), c.position(&t1)), (Some(5), Some(0)));
    let got = take(&mut c, 3, "partition 1 again").await;
    assert!(got.iter().all(|r| r.partition == 1));
    assert_eq!(values(&got), ["v0", "v1", "v2"]);
    // A record sent after seek_to_end is read.
    h.send_all(vec![ProducerRecord::new("ends", "late").partition(0)])
        .await;
    assert_eq!(values(&take(&mut c, 1, "the late record").await), ["late"]);
}

pub(crate) async fn seek_to_timestamp<C: Client>(h: &Harness<C>) {
    h.create_topic("times", 2).await;
    fill(h, "times", 0, 10).await;
    fill(h, "times", 1, 2).await;
    let (t0, t1) = (tp("times", 0), tp("times", 1));
    let mut c = assigned(h, &[t0.clone(), t1.clone()], &[]);
    // T0+35 falls between v3 (T0+30) and v4 (T0+40): the first at or after it is v4; partition
    // 1's records are all older, so it goes to its end.
    c.seek_to_timestamp(T0 + 35)
        .await
        .expect("seek_to_timestamp");
    assert_eq!((c.position(&t0), c.position(&t1)), (Some(4), Some(2)));
    let got = take(&mut c, 6, "from v4").await;
    assert_eq!(values(&got), ["v4", "v5", "v6", "v7", "v8", "v9"]);
    // An exact timestamp finds its own record.
    c.seek_to_timestamp(T0 + 10).await.expect("seek exact");
    assert_eq!((c.position(&t0), c.position(&t1)), (Some(1), Some(1)));
}

pub(crate) async fn pause_and_resume<C: Client>(h: &Harness<C>) {
    h.create_topic("paused", 2).await;
    fill(h, "paused", 0, 3).await;
    fill(h, "paused", 1, 3).await;
    let (t0, t1) = (tp("paused", 0), tp("paused", 1));
    let mut c = assigned(h, &[t0.clone(), t1.clone()], &[]);
    c.pause(std::slice::from_ref(&t0));
    let got = take(&mut c, 3, "the unpaused partition").await;
    assert!(got.iter().all(|r| r.partition == 1), "only partition 1");
    assert!(
        drain(&mut c, Duration::from_millis(300)).await.is_empty(),
        "a paused partition returns nothing"
    );
    // A partition paused before its first fetch has no position yet, except on the native
    // consumer, which places every assigned partition at its first poll (see
    // `Consumer::position`).
    let unfetched = match h.imp {
        Impl::Native => Some(0),
        Impl::Embedded | Impl::Librdkafka => None,
    };
    assert_eq!(
        c.position(&t0),
        unfetched,
        "a paused partition does not move"
    );
    c.resume(std::slice::from_ref(&t0));
    let got = take(&mut c, 3, "the resumed partition").await;
    assert!(got.iter().all(|r| r.partition == 0));
    assert_eq!(values(&got), ["v0", "v1", "v2"]);
}
