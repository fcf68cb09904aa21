//! The REST API: Kafka Connect's endpoints, shapes and status codes, with a file source to a
//! topic to a file sink.

use serde_json::json;

use crate::harness::{Harness, running, wait_file};

fn lines(range: std::ops::Range<usize>) -> String {
    range.map(|i| format!("line {i} \u{e9}\n")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_goes_through_a_topic_to_a_file_byte_for_byte_and_the_api_steers_it() {
    let mut h = Harness::start(&[]).await;
    let src = h.dir.join("in.txt");
    let dst = h.dir.join("out.txt");
    std::fs::write(&src, lines(0..500)).unwrap();

    let (code, root) = h.call("GET", "/", None).await;
    assert_eq!(code, 200);
    assert!(
        root["version"].is_string() && root["kafka_cluster_id"].is_string(),
        "{root}"
    );

    let (code, created) = h
        .call(
            "POST",
            "/connectors",
            Some(json!({"name": "src", "config": {
                "connector.class": "FileStreamSource", "tasks.max": "1",
                "file": src.display().to_string(), "topic": "lines"}})),
        )
        .await;
    assert_eq!(code, 201, "{created}");
    assert_eq!(created["type"], "source");
    assert_eq!(created["tasks"], json!([{"connector": "src", "task": 0}]));
    assert_eq!(created["config"]["name"], "src");

    let (code, conflict) = h
        .call("POST", "/connectors", Some(json!({"name": "src", "config": {"connector.class": "FileStreamSource", "topic": "x"}})))
        .await;
    assert_eq!(
        (code, conflict),
        (
            409,
            json!({"error_code": 409, "message": "Connector src already exists"})
        )
    );

    // PUT config creates (201), then updates (200).
    let sink = json!({"connector.class": "org.apache.kafka.connect.file.FileStreamSinkConnector",
        "tasks.max": "1", "file": dst.display().to_string(), "topics": "lines"});
    let (code, body) = h
        .call("PUT", "/connectors/sink/config", Some(sink.clone()))
        .await;
    assert_eq!(code, 201, "{body}");
    let (code, body) = h.call("PUT", "/connectors/sink/config", Some(sink)).await;
    assert_eq!(code, 200, "{body}");

    wait_file(&dst, lines(0..500).as_bytes()).await;
    let s = h.wait_status("src", "running", running(1)).await;
    assert_eq!(s["type"], "source");
    assert_eq!(s["tasks"][0]["id"], 0);
    assert!(
        s["tasks"][0]["worker_id"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:"),
        "{s}"
    );

    let (_, names) = h.call("GET", "/connectors", None).await;
    assert_eq!(names, json!(["sink", "src"]));
    let (_, expanded) = h
        .call("GET", "/connectors?expand=status&expand=info", None)
        .await;
    assert_eq!(expanded["sink"]["status"]["type"], "sink");
    assert_eq!(expanded["src"]["info"]["config"]["topic"], "lines");
    let (_, tasks) = h.call("GET", "/connectors/src/tasks", None).await;
    assert_eq!(tasks[0]["id"], json!({"connector": "src", "task": 0}));
    assert_eq!(tasks[0]["config"]["topic"], "lines");
    let (_, ts) = h.call("GET", "/connectors/sink/tasks/0/status", None).await;
    assert_eq!(ts["state"], "RUNNING");
    let (_, topics) = h.call("GET", "/connectors/sink/topics", None).await;
    assert_eq!(topics, json!({"sink": {"topics": ["lines"]}}));

    // Source offsets: the file's position, committed once acknowledged.
    let size = std::fs::metadata(&src).unwrap().len();
    let start = std::time::Instant::now();
    loop {
        let (_, o) = h.call("GET", "/connectors/src/offsets", None).await;
        if o["offsets"][0]["offset"]["position"] == size {
            assert_eq!(
                o["offsets"][0]["partition"]["filename"],
                src.display().to_string()
            );
            break;
        }
        assert!(
            start.elapsed() < crate::harness::DEADLINE,
            "offsets never reached {size}: {o}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // Sink offsets: the group's, committed after put and flush.
    let start = std::time::Instant::now();
    loop {
        let (_, o) = h.call("GET", "/connectors/sink/offsets", None).await;
        if o["offsets"][0]["offset"]["kafka_offset"] == 500 {
            assert_eq!(
                o["offsets"][0]["partition"],
                json!({"kafka_topic": "lines", "kafka_partition": 0})
            );
            break;
        }
        assert!(
            start.elapsed() < crate::harness::DEADLINE,
            "sink offsets never reached 500: {o}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    // Pause: nothing moves; resume: it goes on.
    assert_eq!(h.call("PUT", "/connectors/src/pause", None).await.0, 202);
    h.wait_status("src", "paused", |s| {
        s["connector"]["state"] == "PAUSED" && s["tasks"][0]["state"] == "PAUSED"
    })
    .await;
    std::fs::OpenOptions::new()
        .append(true)
        .open(&src)
        .and_then(|mut f| std::io::Write::write_all(&mut f, lines(500..600).as_bytes()))
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    assert_eq!(
        std::fs::read(&dst).unwrap(),
        lines(0..500).as_bytes(),
        "paused: nothing new"
    );
    assert_eq!(h.call("PUT", "/connectors/src/resume", None).await.0, 202);
    wait_file(&dst, lines(0..600).as_bytes()).await;

    // Offsets can change only when stopped (KIP-875).
    let (code, e) = h.call("DELETE", "/connectors/src/offsets", None).await;
    assert_eq!(code, 400);
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("must be in the STOPPED state"),
        "{e}"
    );
    assert_eq!(h.call("PUT", "/connectors/src/stop", None).await.0, 202);
    let s = h
        .wait_status("src", "stopped", |s| s["connector"]["state"] == "STOPPED")
        .await;
    assert_eq!(s["tasks"], json!([]));
    let (code, m) = h.call("DELETE", "/connectors/src/offsets", None).await;
    assert_eq!(code, 200, "{m}");
    assert_eq!(
        m["message"],
        "The offsets for this connector have been reset successfully"
    );
    let (_, o) = h.call("GET", "/connectors/src/offsets", None).await;
    assert_eq!(o, json!({"offsets": []}));
    // Reset to line 550's start, then resume: lines 550.. again.
    let at = lines(0..550).len();
    let (code, m) = h
        .call("PATCH", "/connectors/src/offsets", Some(json!({"offsets": [{"partition": {"filename": src.display().to_string()}, "offset": {"position": at}}]})))
        .await;
    assert_eq!(code, 200, "{m}");
    assert_eq!(h.call("PUT", "/connectors/src/resume", None).await.0, 202);
    let mut expected = lines(0..600);
    expected.push_str(&lines(550..600));
    wait_file(&dst, expected.as_bytes()).await;

    // Restart with tasks: 202 with the status; without: 204.
    let (code, s) = h
        .call(
            "POST",
            "/connectors/sink/restart?includeTasks=true&onlyFailed=false",
            None,
        )
        .await;
    assert_eq!(code, 202, "{s}");
    assert_eq!(s["connector"]["state"], "RESTARTING");
    assert_eq!(s["tasks"][0]["state"], "RESTARTING");
    assert_eq!(
        h.call("POST", "/connectors/sink/restart", None).await.0,
        204
    );
    assert_eq!(
        h.call("POST", "/connectors/sink/tasks/0/restart", None)
            .await
            .0,
        204
    );
    h.wait_status("sink", "running", running(1)).await;

    assert_eq!(h.call("DELETE", "/connectors/src", None).await.0, 204);
    let (code, e) = h.call("GET", "/connectors/src", None).await;
    assert_eq!(
        (code, e),
        (
            404,
            json!({"error_code": 404, "message": "Connector src not found"})
        )
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_configs_are_400s_with_every_error_and_validate_lists_them() {
    let mut h = Harness::start(&[]).await;
    let (code, e) = h
        .call("POST", "/connectors", Some(json!({"name": "s", "config": {"connector.class": "FileStreamSink", "batch.size": "x"}})))
        .await;
    assert_eq!(code, 400, "{e}");
    assert_eq!(e["error_code"], 400);
    let msg = e["message"].as_str().unwrap();
    assert!(
        msg.starts_with(
            "Connector configuration is invalid and contains the following 1 error(s):"
        ),
        "{msg}"
    );
    assert!(
        msg.contains("topics: Must configure one of topics or topics.regex"),
        "{msg}"
    );

    let (code, e) = h
        .call(
            "POST",
            "/connectors",
            Some(json!({"name": "s", "config": {"connector.class": "com.acme.Nope"}})),
        )
        .await;
    assert_eq!(code, 400);
    assert!(e["message"].as_str().unwrap().contains("connector class \"com.acme.Nope\" not found; available: org.apache.kafka.connect.file.FileStreamSourceConnector"), "{e}");

    let (code, v) = h
        .call("PUT", "/connector-plugins/FileStreamSource/config/validate", Some(json!({"connector.class": "FileStreamSource", "name": "v", "batch.size": "0", "transforms": "t", "transforms.t.type": "Bogus"})))
        .await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(
        v["name"],
        "org.apache.kafka.connect.file.FileStreamSourceConnector"
    );
    assert_eq!(
        v["error_count"], 3,
        "topic missing, batch.size 0, transform class: {v}"
    );
    let topic = v["configs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["definition"]["name"] == "topic")
        .unwrap();
    assert_eq!(topic["definition"]["importance"], "HIGH");
    assert_eq!(topic["definition"]["required"], true);
    assert_eq!(topic["value"]["errors"].as_array().unwrap().len(), 1);
    assert!(
        v["groups"]
            .as_array()
            .unwrap()
            .contains(&json!("Error Handling"))
    );

    let (code, plugins) = h.call("GET", "/connector-plugins", None).await;
    assert_eq!(code, 200);
    assert!(plugins.as_array().unwrap().contains(&json!({"class": "org.apache.kafka.connect.file.FileStreamSinkConnector", "type": "sink", "version": env!("CARGO_PKG_VERSION")})));
    let (_, all) = h
        .call("GET", "/connector-plugins?connectorsOnly=false", None)
        .await;
    assert!(
        all.as_array()
            .unwrap()
            .iter()
            .any(|p| p["class"] == "org.apache.kafka.connect.transforms.InsertField$Value"),
        "{all}"
    );

    let (code, e) = h
        .call("POST", "/connectors", Some(json!({"config": {}})))
        .await;
    assert_eq!(code, 400, "{e}");
    let (code, e) = h.call("GET", "/connectors/none/status", None).await;
    assert_eq!((code, e["error_code"].clone()), (404, json!(404)));
    h.stop().await;
}
