//! Produce and consume: values, null values, keys, headers, timestamps (CreateTime as sent,
//! LogAppendTime as the log stamps it).

use sluice_log::TimestampType;
use sluice_log::client::{Client, Header, NewTopic, ProducerRecord};

use super::{Harness, assigned, now_ms, take, tp};

pub(crate) async fn values_null_values_headers_and_timestamps<C: Client>(h: &Harness<C>) {
    h.create_topic("events", 1).await;
    let ts = 1_700_000_000_000;
    let sent = h
        .send_all(vec![
            ProducerRecord::new("events", "v0")
                .key("k0")
                .header("source", "web")
                .header("trace", "")
                .timestamp(ts),
            ProducerRecord::new("events", "ignored")
                .key("gone")
                .tombstone()
                .timestamp(ts + 1),
            ProducerRecord::new("events", "").timestamp(ts + 2),
        ])
        .await;
    let offsets: Vec<(i32, i64, i64)> = sent
        .iter()
        .map(|m| (m.partition, m.offset, m.timestamp))
        .collect();
    assert_eq!(
        offsets,
        [(0, 0, ts), (0, 1, ts + 1), (0, 2, ts + 2)],
        "metadata: partition, offset and the CreateTime sent"
    );
    assert!(sent.iter().all(|m| &*m.topic == "events"));

    let mut c = assigned(h, &[tp("events", 0)], &[]);
    let got = take(&mut c, 3, "the three records").await;
    let r = &got[0];
    assert_eq!(
        (r.offset, r.key.as_deref(), r.value.as_deref()),
        (0, Some(&b"k0"[..]), Some(&b"v0"[..]))
    );
    assert_eq!(
        r.headers,
        [Header::new("source", "web"), Header::new("trace", "")],
        "headers in order, an empty value kept"
    );
    assert_eq!(
        (r.timestamp, r.timestamp_type),
        (ts, TimestampType::CreateTime)
    );
    assert_eq!(
        (got[1].key.as_deref(), got[1].value.as_deref()),
        (Some(&b"gone"[..]), None),
        "a null value reads back null"
    );
    assert!(got[1].headers.is_empty());
    assert_eq!(
        (got[2].key.as_deref(), got[2].value.as_deref()),
        (None, Some(&b""[..])),
        "a null key and an empty value are not the same as null"
    );
    assert_eq!(got[2].timestamp, ts + 2);
    assert!(
        got.iter()
            .all(|r| &*r.topic == "events" && r.partition == 0)
    );
}

pub(crate) async fn log_append_time_topics_stamp_the_log_time<C: Client>(h: &Harness<C>) {
    h.create(NewTopic::new("stamped", 1).config("message.timestamp.type", "LogAppendTime"))
        .await;
    let before = now_ms();
    let sent = h
        .send_all(vec![ProducerRecord::new("stamped", "x").timestamp(1_000)])
        .await;
    let after = now_ms();
    let stamped = sent[0].timestamp;
    assert!(
        (before..=after).contains(&stamped),
        "the metadata carries the log's append time: {stamped} not in [{before}, {after}]"
    );
    let mut c = assigned(h, &[tp("stamped", 0)], &[]);
    let got = take(&mut c, 1, "the stamped record").await;
    assert_eq!(
        (got[0].timestamp, got[0].timestamp_type),
        (stamped, TimestampType::LogAppendTime),
        "the consumer reads the log's time, as the producer was told"
    );
}
