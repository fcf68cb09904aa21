//! The runtime: failures and their handling, transforms, resuming from committed offsets.

use std::time::{Duration, Instant};

use serde_json::json;
use sluice_log::client::config::ConsumerConfig;
use sluice_log::client::{
    Admin, Client, Consumer, NewTopic, Producer, ProducerRecord, TopicPartition,
};

use crate::harness::{DEADLINE, Harness, running, wait_file};

async fn produce(h: &Harness, topic: &str, values: &[&str]) {
    let admin = h.client.admin().unwrap();
    if !admin
        .list_topics()
        .await
        .unwrap()
        .iter()
        .any(|t| t == topic)
    {
        admin
            .create_topics(vec![NewTopic::new(topic, 1)])
            .await
            .unwrap();
    }
    let p = h.client.producer(Default::default()).unwrap();
    for v in values {
        p.send(ProducerRecord::new(topic, v.to_string()))
            .await
            .unwrap()
            .await
            .unwrap();
    }
}

async fn read_all(h: &Harness, topic: &str, n: usize) -> Vec<sluice_log::client::ConsumerRecord> {
    let admin = h.client.admin().unwrap();
    let start = Instant::now();
    while !admin
        .list_topics()
        .await
        .unwrap()
        .iter()
        .any(|t| t == topic)
    {
        assert!(start.elapsed() < DEADLINE, "{topic} was never created");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut c = h.client.consumer(ConsumerConfig::default()).unwrap();
    c.assign(vec![TopicPartition::new(topic, 0)]).unwrap();
    c.seek_to_beginning(&[]).await.unwrap();
    let start = Instant::now();
    let mut out = Vec::new();
    while out.len() < n {
        assert!(
            start.elapsed() < DEADLINE,
            "{topic}: only {} of {n} records",
            out.len()
        );
        out.extend(c.poll(Duration::from_millis(100)).await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_task_is_failed_with_its_trace_and_the_worker_stays_up() {
    let mut h = Harness::start(&[]).await;
    produce(&h, "plain", &["not json"]).await;
    let dst = h.dir.join("out.txt");
    let (code, _) = h
        .call("POST", "/connectors", Some(json!({"name": "strict", "config": {
            "connector.class": "FileStreamSink", "topics": "plain", "file": dst.display().to_string()}})))
        .await;
    assert_eq!(code, 201);
    let s = h
        .wait_status("strict", "failed", |s| s["tasks"][0]["state"] == "FAILED")
        .await;
    let trace = s["tasks"][0]["trace"].as_str().unwrap();
    assert!(
        trace.contains("Tolerance exceeded") && trace.contains("serialization error"),
        "{trace}"
    );
    assert_eq!(
        s["connector"]["state"], "RUNNING",
        "the connector itself runs"
    );
    assert_eq!(h.call("GET", "/", None).await.0, 200, "the worker is up");

    // The same records with errors tolerated: bad ones to the DLQ with their context, the
    // good ones written, through a transform.
    produce(&h, "plain", &[r#"{"schema":null,"payload":{"id":1}}"#]).await;
    let (code, body) = h
        .call("POST", "/connectors", Some(json!({"name": "lenient", "config": {
            "connector.class": "FileStreamSink", "topics": "plain", "file": dst.display().to_string(),
            "errors.tolerance": "all", "errors.log.enable": "true",
            "errors.deadletterqueue.topic.name": "dlq", "errors.deadletterqueue.context.headers.enable": "true",
            "transforms": "add", "transforms.add.type": "org.apache.kafka.connect.transforms.InsertField$Value",
            "transforms.add.static.field": "via", "transforms.add.static.value": "connect"}})))
        .await;
    assert_eq!(code, 201, "{body}");
    wait_file(&dst, b"{\"id\":1,\"via\":\"connect\"}\n").await;
    let dlq = read_all(&h, "dlq", 1).await;
    assert_eq!(dlq[0].value.as_deref(), Some(&b"not json"[..]));
    let header = |k: &str| {
        dlq[0]
            .headers
            .iter()
            .find(|x| x.key == k)
            .and_then(|x| x.value.clone())
            .map(|v| String::from_utf8_lossy(&v).into_owned())
    };
    assert_eq!(header("__connect.errors.topic").as_deref(), Some("plain"));
    assert_eq!(header("__connect.errors.offset").as_deref(), Some("0"));
    assert_eq!(
        header("__connect.errors.connector.name").as_deref(),
        Some("lenient")
    );
    assert!(
        header("__connect.errors.exception.message")
            .unwrap()
            .contains("serialization error")
    );
    let (_, m) = h.call("GET", "/connectors/lenient/metrics", None).await;
    assert_eq!(m[0]["records_skipped"], 1, "{m}");

    // A restart of the failed task alone, with onlyFailed, fails it again (same record).
    let (code, s) = h
        .call(
            "POST",
            "/connectors/strict/restart?includeTasks=true&onlyFailed=true",
            None,
        )
        .await;
    assert_eq!(code, 202);
    assert_eq!(
        s["connector"]["state"], "RUNNING",
        "only what failed restarts"
    );
    assert_eq!(s["tasks"][0]["state"], "RESTARTING");
    h.wait_status("strict", "failed", |s| s["tasks"][0]["state"] == "FAILED")
        .await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_worker_resumes_from_its_committed_offsets() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("in.txt");
    let dst = tmp.path().join("out.txt");
    let text: String = (0..2000).map(|i| format!("{i}\n")).collect();
    std::fs::write(&src, &text).unwrap();
    let source = json!({"connector.class": "FileStreamSource", "file": src.display().to_string(), "topic": "nums", "batch.size": "100"});
    let sink = json!({"connector.class": "FileStreamSink", "file": dst.display().to_string(), "topics": "nums"});
    let mut h = Harness::start_in(tmp.path(), &[]).await;
    assert_eq!(
        h.call("PUT", "/connectors/src/config", Some(source.clone()))
            .await
            .0,
        201
    );
    assert_eq!(
        h.call("PUT", "/connectors/sink/config", Some(sink.clone()))
            .await
            .0,
        201
    );
    wait_file(&dst, text.as_bytes()).await;
    h.stop().await;

    // More lines while it is down; the new worker reads only those, the sink writes only those.
    let more: String = (2000..2500).map(|i| format!("{i}\n")).collect();
    std::fs::OpenOptions::new()
        .append(true)
        .open(&src)
        .and_then(|mut f| std::io::Write::write_all(&mut f, more.as_bytes()))
        .unwrap();
    drop(h);
    let mut h = Harness::start_in(tmp.path(), &[]).await;
    assert_eq!(
        h.call("PUT", "/connectors/src/config", Some(source))
            .await
            .0,
        201
    );
    assert_eq!(
        h.call("PUT", "/connectors/sink/config", Some(sink)).await.0,
        201
    );
    wait_file(&dst, format!("{text}{more}").as_bytes()).await;
    h.wait_status("src", "running", running(1)).await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn datagen_writes_its_schema_and_values_as_json() {
    let mut h = Harness::start(&[]).await;
    let (code, body) = h
        .call("POST", "/connectors", Some(json!({"name": "gen", "config": {
            "connector.class": "io.confluent.kafka.connect.datagen.DatagenConnector",
            "kafka.topic": "users", "quickstart": "users", "max.interval": "0", "iterations": "20",
            "random.seed": "7", "value.converter.schemas.enable": "false", "value.converter": "JsonConverter",
            "key.converter": "org.apache.kafka.connect.storage.StringConverter"}})))
        .await;
    assert_eq!(code, 201, "{body}");
    let recs = read_all(&h, "users", 20).await;
    let v: serde_json::Value = serde_json::from_slice(recs[0].value.as_deref().unwrap()).unwrap();
    assert!(v["userid"].as_str().unwrap().starts_with("User_"), "{v}");
    assert_eq!(
        recs[0].key.as_deref(),
        v["userid"].as_str().map(str::as_bytes)
    );
    h.stop().await;
}
