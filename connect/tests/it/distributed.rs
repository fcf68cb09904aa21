//! Distributed workers on one embedded log: two workers of a group share a connector's tasks,
//! REST calls on either act on the cluster, one stopping hands its tasks to the other with no
//! record lost, and a restarted worker resumes its connectors from the config and offset
//! topics.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value as Json, json};
use sluice_connect::config::WorkerConfig;
use sluice_connect::connector::Plugins;
use sluice_connect::distributed::DistributedWorker;
use sluice_log::client::config::ConsumerConfig;
use sluice_log::client::embedded::EmbeddedClient;
use sluice_log::client::{Admin, Client, Consumer, OffsetSpec, TopicPartition};
use sluice_log::log::{LogManager, LogManagerConfig};

use crate::harness::{DEADLINE, props};

fn open_log(dir: &Path) -> EmbeddedClient {
    EmbeddedClient::new(LogManager::open(LogManagerConfig::new(dir.join("log"))).unwrap())
}

async fn start(client: &EmbeddedClient) -> DistributedWorker<EmbeddedClient> {
    let p = props(&[
        ("listeners", "http://127.0.0.1:0"),
        ("group.id", "connect-cluster"),
        ("config.storage.topic", "connect-configs"),
        ("offset.storage.topic", "connect-offsets"),
        ("status.storage.topic", "connect-status"),
        ("offset.storage.partitions", "5"),
        ("status.storage.partitions", "3"),
        ("offset.flush.interval.ms", "100"),
        ("session.timeout.ms", "6000"),
        ("heartbeat.interval.ms", "500"),
        ("value.converter.schemas.enable", "false"),
        (
            "key.converter",
            "org.apache.kafka.connect.storage.StringConverter",
        ),
    ]);
    DistributedWorker::start(
        client.clone(),
        WorkerConfig::from_props(p).unwrap(),
        Plugins::builtin(),
    )
    .await
    .unwrap()
}

async fn call(
    w: &DistributedWorker<EmbeddedClient>,
    method: &str,
    path: &str,
    body: Option<Json>,
) -> (u16, Json) {
    let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = reqwest::Client::new().request(m, format!("{}{path}", w.rest_url()));
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = tokio::time::timeout(DEADLINE, req.send())
        .await
        .unwrap()
        .unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Json::String(text)),
    )
}

/// Waits until the connector's status (asked of `w`) satisfies `check`.
async fn wait_status(
    w: &DistributedWorker<EmbeddedClient>,
    name: &str,
    what: &str,
    check: impl Fn(&Json) -> bool,
) -> Json {
    let start = Instant::now();
    loop {
        let (code, s) = call(w, "GET", &format!("/connectors/{name}/status"), None).await;
        if code == 200 && check(&s) {
            return s;
        }
        assert!(start.elapsed() < DEADLINE, "{name} never {what}: {s}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The values of every record in `topic` so far.
async fn values(client: &EmbeddedClient, topic: &str) -> Vec<Json> {
    let tp = TopicPartition::new(topic, 0);
    let admin = client.admin().unwrap();
    let end = match admin.list_offsets(&tp, OffsetSpec::Latest).await {
        Ok(o) => o.offset,
        Err(_) => return Vec::new(),
    };
    let mut c = client.consumer(ConsumerConfig::default()).unwrap();
    c.assign(vec![tp.clone()]).unwrap();
    c.seek_to_beginning(&[]).await.unwrap();
    let mut out = Vec::new();
    let start = Instant::now();
    while (out.len() as i64) < end {
        assert!(
            start.elapsed() < DEADLINE,
            "{topic}: only {} of {end}",
            out.len()
        );
        for r in c.poll(Duration::from_millis(100)).await.unwrap() {
            out.push(serde_json::from_slice(r.value.as_deref().unwrap_or(b"null")).unwrap());
        }
    }
    out
}

/// Waits until `topic` holds at least `n` records.
async fn wait_records(client: &EmbeddedClient, topic: &str, n: usize) -> Vec<Json> {
    let start = Instant::now();
    loop {
        let v = values(client, topic).await;
        if v.len() >= n {
            return v;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "{topic} holds {} records, not {n}",
            v.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn datagen(iterations: i64, tasks: usize) -> Json {
    json!({
        "connector.class": "DatagenConnector",
        "kafka.topic": "orders",
        "quickstart": "orders",
        "iterations": iterations.to_string(),
        "max.interval": "10",
        "random.seed": "7",
        "tasks.max": tasks.to_string(),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_share_tasks_and_one_takes_over_when_the_other_stops() {
    let tmp = tempfile::tempdir().unwrap();
    let client = open_log(tmp.path());
    let a = start(&client).await;
    let b = start(&client).await;
    let (ida, idb) = (
        a.herder().worker_id().to_owned(),
        b.herder().worker_id().to_owned(),
    );
    assert_ne!(ida, idb);

    // Created on A: B knows it too, and the two share its tasks.
    let (code, info) = call(
        &a,
        "POST",
        "/connectors",
        Some(json!({"name": "gen", "config": datagen(600, 2)})),
    )
    .await;
    assert_eq!(code, 201, "{info}");
    let (code, _) = call(
        &b,
        "POST",
        "/connectors",
        Some(json!({"name": "gen", "config": datagen(600, 2)})),
    )
    .await;
    assert_eq!(code, 409, "the connector exists in the cluster");
    let s = wait_status(&b, "gen", "ran on both workers", |s| {
        let t = s["tasks"].as_array().cloned().unwrap_or_default();
        let owners: BTreeSet<&str> = t.iter().filter_map(|t| t["worker_id"].as_str()).collect();
        t.len() == 2
            && t.iter().all(|t| t["state"] == "RUNNING")
            && owners.len() == 2
            && s["connector"]["state"] == "RUNNING"
    })
    .await;
    let owners: BTreeSet<String> = s["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["worker_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(owners, BTreeSet::from([ida.clone(), idb.clone()]), "{s}");
    let (_, cfg) = call(&b, "GET", "/connectors/gen/config", None).await;
    assert_eq!(cfg["iterations"], "600");
    let (_, tasks) = call(&b, "GET", "/connectors/gen/tasks", None).await;
    assert_eq!(tasks.as_array().map(Vec::len), Some(2), "{tasks}");

    // Mid-stream, B stops: A takes both tasks and they go on where B's left off.
    let before = wait_records(&client, "orders", 100).await;
    assert!(before.len() < 1200, "the stream ended before B stopped");
    b.shutdown().await;
    wait_status(&a, "gen", "moved to A", |s| {
        let t = s["tasks"].as_array().cloned().unwrap_or_default();
        t.len() == 2
            && t.iter()
                .all(|t| t["state"] == "RUNNING" && t["worker_id"] == ida.as_str())
    })
    .await;
    let all = wait_records(&client, "orders", 1200).await;
    // Each task writes orderids 0..600 with its own random fields: 1200 distinct records.
    let distinct: BTreeSet<String> = all.iter().map(|v| v.to_string()).collect();
    let mut per_id: BTreeMap<i64, usize> = BTreeMap::new();
    for v in &all {
        *per_id.entry(v["orderid"].as_i64().unwrap()).or_default() += 1;
    }
    assert_eq!(per_id.len(), 600, "every orderid is there");
    assert!(
        per_id.values().all(|n| *n >= 2),
        "no record of either task lost"
    );
    assert_eq!(distinct.len(), 1200, "no record lost");
    assert_eq!(
        all.len(),
        1200,
        "a clean handover commits before it lets go: no duplicates either"
    );
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_worker_resumes_its_connectors_from_the_topics() {
    let tmp = tempfile::tempdir().unwrap();
    let client = open_log(tmp.path());
    let a = start(&client).await;
    let (code, _) = call(
        &a,
        "PUT",
        "/connectors/gen/config",
        Some(datagen(1_000_000, 1)),
    )
    .await;
    assert_eq!(code, 201);
    wait_status(&a, "gen", "ran", |s| s["tasks"][0]["state"] == "RUNNING").await;
    wait_records(&client, "orders", 50).await;
    // Paused through the config topic, then stopped with the worker.
    let (code, _) = call(&a, "PUT", "/connectors/gen/pause", None).await;
    assert_eq!(code, 202);
    wait_status(&a, "gen", "paused", |s| {
        s["connector"]["state"] == "PAUSED" && s["tasks"][0]["state"] == "PAUSED"
    })
    .await;
    a.shutdown().await;
    let written = values(&client, "orders").await.len();

    // A new worker of the group: the connector comes back from the config topic, paused.
    let a2 = start(&client).await;
    let (_, names) = call(&a2, "GET", "/connectors", None).await;
    assert_eq!(names, json!(["gen"]));
    wait_status(&a2, "gen", "paused again", |s| {
        s["tasks"][0]["state"] == "PAUSED" && s["tasks"][0]["worker_id"] == a2.herder().worker_id()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        values(&client, "orders").await.len(),
        written,
        "paused: nothing written"
    );
    let (code, _) = call(&a2, "PUT", "/connectors/gen/resume", None).await;
    assert_eq!(code, 202);
    let all = wait_records(&client, "orders", written + 50).await;
    // It resumed at the iteration after the last stored one: orderids 0, 1, 2, ... without a
    // gap or a repeat.
    for (i, v) in all.iter().enumerate() {
        assert_eq!(v["orderid"].as_i64(), Some(i as i64), "record {i}: {v}");
    }
    let (_, offsets) = call(&a2, "GET", "/connectors/gen/offsets", None).await;
    assert_eq!(
        offsets["offsets"][0]["partition"],
        json!({"task.id": 0}),
        "{offsets}"
    );
    let (code, _) = call(&a2, "DELETE", "/connectors/gen", None).await;
    assert_eq!(code, 204);
    let (code, _) = call(&a2, "GET", "/connectors/gen/status", None).await;
    assert_eq!(code, 404);
    a2.shutdown().await;
}
