//! `sluice connect standalone` with Kafka Connect's own quickstart files, run as a user would:
//! a file to a topic to a file, byte for byte; the REST API driven with curl as Kafka
//! Connect's documentation drives it; a worker killed mid-stream (SIGKILL) resuming from its
//! committed offsets with nothing lost.

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::cli::sluice_bin;

/// Longest a test waits for anything.
const DEADLINE: Duration = Duration::from_secs(120);

/// The keys of Kafka's `config/connect-standalone.properties` as shipped (Kafka 3.x/4.x),
/// `bootstrap.servers` included: `--data-dir` puts the worker on the embedded log.
const STANDALONE: &str = "\
bootstrap.servers=localhost:9092
key.converter=org.apache.kafka.connect.json.JsonConverter
value.converter=org.apache.kafka.connect.json.JsonConverter
key.converter.schemas.enable=true
value.converter.schemas.enable=true
offset.storage.file.filename=/tmp/connect.offsets
offset.flush.interval.ms=10000
#plugin.path=
";

/// Kafka's `config/connect-file-source.properties`.
const FILE_SOURCE: &str = "\
name=local-file-source
connector.class=FileStreamSource
tasks.max=1
file=test.txt
topic=connect-test
";

/// Kafka's `config/connect-file-sink.properties`.
const FILE_SINK: &str = "\
name=local-file-sink
connector.class=FileStreamSink
tasks.max=1
file=test.sink.txt
topics=connect-test
";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// Starts `sluice connect standalone` with the quickstart files in `dir`; the offsets go to
/// `dir` (not Kafka's shared /tmp/connect.offsets) and the REST API to `port`, both by
/// `--override`, the files staying as shipped.
fn start_worker(dir: &Path, port: u16) -> Child {
    Command::new(sluice_bin())
        .current_dir(dir)
        .args([
            "connect",
            "standalone",
            "connect-standalone.properties",
            "connect-file-source.properties",
            "connect-file-sink.properties",
            "--data-dir",
            "data",
            "--override",
            "offset.storage.file.filename=connect.offsets",
            "--override",
        ])
        .arg(format!("listeners=http://127.0.0.1:{port}"))
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("worker.log")).expect("worker log"))
        .spawn()
        .expect("spawn sluice connect")
}

fn quickstart_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, text) in [
        ("connect-standalone.properties", STANDALONE),
        ("connect-file-source.properties", FILE_SOURCE),
        ("connect-file-sink.properties", FILE_SINK),
    ] {
        std::fs::write(dir.path().join(name), text).expect("write config");
    }
    dir
}

/// Waits until `check` of the sink file's bytes holds; fails with the worker's log otherwise.
fn wait_sink(dir: &Path, what: &str, check: impl Fn(&[u8]) -> bool) {
    let start = Instant::now();
    loop {
        let got = std::fs::read(dir.join("test.sink.txt")).unwrap_or_default();
        if check(&got) {
            return;
        }
        if start.elapsed() > DEADLINE {
            let log = std::fs::read_to_string(dir.join("worker.log")).unwrap_or_default();
            panic!(
                "the sink file never {what} ({} bytes); worker log:\n{log}",
                got.len()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `curl -s [-X METHOD] http://127.0.0.1:PORT/PATH`, retried until the worker answers.
fn curl(port: u16, method: &str, path: &str) -> String {
    let start = Instant::now();
    loop {
        let out = Command::new("curl")
            .args(["-s", "-X", method])
            .arg(format!("http://127.0.0.1:{port}{path}"))
            .output()
            .expect("run curl");
        if out.status.success() {
            return String::from_utf8_lossy(&out.stdout).into_owned();
        }
        assert!(
            start.elapsed() < DEADLINE,
            "curl {method} {path} failed: {out:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn stop(mut child: Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let start = Instant::now();
    while child.try_wait().ok().flatten().is_none() {
        if start.elapsed() > DEADLINE {
            let _ = child.kill();
            panic!("the worker did not stop on SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn kafkas_file_quickstart_runs_unchanged_and_curl_drives_the_rest_api() {
    let dir = quickstart_dir();
    let lines: String = (0..1000)
        .map(|i| format!("line {i}: {}\n", "x".repeat(i % 50)))
        .collect();
    std::fs::write(dir.path().join("test.txt"), &lines).expect("test.txt");
    let port = free_port();
    let worker = start_worker(dir.path(), port);
    wait_sink(dir.path(), "matched test.txt", |got| {
        got == lines.as_bytes()
    });

    assert_eq!(
        curl(port, "GET", "/connectors"),
        r#"["local-file-sink","local-file-source"]"#
    );
    let status = curl(port, "GET", "/connectors/local-file-source/status");
    let status: serde_json::Value = serde_json::from_str(&status).expect("status JSON");
    assert_eq!(status["connector"]["state"], "RUNNING", "{status}");
    assert_eq!(status["tasks"][0]["state"], "RUNNING", "{status}");

    // Kafka's quickstart: more lines appended show up in the sink.
    std::fs::OpenOptions::new()
        .append(true)
        .open(dir.path().join("test.txt"))
        .and_then(|mut f| f.write_all(b"Another line\n"))
        .expect("append");
    let more = format!("{lines}Another line\n");
    wait_sink(dir.path(), "got the appended line", |got| {
        got == more.as_bytes()
    });

    assert_eq!(curl(port, "PUT", "/connectors/local-file-source/pause"), "");
    let s = curl(port, "GET", "/connectors/local-file-source/status");
    assert!(s.contains(r#""state":"PAUSED""#), "{s}");
    assert_eq!(curl(port, "DELETE", "/connectors/local-file-source"), "");
    let e = curl(port, "GET", "/connectors/local-file-source");
    assert_eq!(
        e,
        r#"{"error_code":404,"message":"Connector local-file-source not found"}"#
    );
    stop(worker);
    // The records are JSON with the schema envelope, as Kafka's JsonConverter writes them.
    let records = Command::new(sluice_bin())
        .current_dir(dir.path())
        .args([
            "consume",
            "connect-test",
            "--data-dir",
            "data",
            "--from-beginning",
            "--timeout-ms",
            "1000",
        ])
        .output()
        .expect("run sluice consume");
    let text = String::from_utf8_lossy(&records.stdout);
    assert_eq!(
        text.lines().next(),
        Some(r#"{"schema":{"optional":false,"type":"string"},"payload":"line 0: "}"#),
        "{}",
        String::from_utf8_lossy(&records.stderr)
    );
}

#[test]
fn a_worker_killed_mid_stream_resumes_from_its_committed_offsets() {
    let dir = quickstart_dir();
    let total = 200_000;
    let expected: Vec<String> = (0..total).map(|i| format!("record {i}")).collect();
    let mut text = expected.join("\n");
    text.push('\n');
    std::fs::write(dir.path().join("test.txt"), &text).expect("test.txt");
    // Commit often so the kill lands between commits.
    let port = free_port();
    std::fs::write(
        dir.path().join("connect-standalone.properties"),
        STANDALONE.replace(
            "offset.flush.interval.ms=10000",
            "offset.flush.interval.ms=200",
        ),
    )
    .expect("worker config");
    let mut worker = start_worker(dir.path(), port);
    wait_sink(dir.path(), "got a part of the file", |got| {
        got.len() > text.len() / 10
    });
    worker.kill().expect("SIGKILL the worker");
    let _ = worker.wait();
    let at_kill = std::fs::read(dir.path().join("test.sink.txt"))
        .unwrap_or_default()
        .len();
    assert!(at_kill < text.len(), "killed mid-stream");

    let worker = start_worker(dir.path(), free_port());
    wait_sink(dir.path(), "held every line", |got| {
        got.ends_with(format!("record {}\n", total - 1).as_bytes())
    });
    stop(worker);
    let got = std::fs::read_to_string(dir.path().join("test.sink.txt")).expect("sink file");
    let lines: Vec<&str> = got.lines().collect();
    let mut seen = vec![0u32; total];
    for l in &lines {
        let n: usize = l
            .strip_prefix("record ")
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("a line that was never written: {l:?}"));
        seen[n] += 1;
    }
    let lost: Vec<usize> = (0..total).filter(|i| seen[*i] == 0).collect();
    assert!(
        lost.is_empty(),
        "lost {} lines, first {:?}",
        lost.len(),
        &lost[..lost.len().min(5)]
    );
    let duplicates = lines.len() - total;
    eprintln!(
        "killed after {at_kill} bytes of the sink file; {duplicates} duplicate lines after the restart"
    );
    // At least once: a duplicate is a line read again after the kill, so at most what had
    // been written before it.
    assert!(
        duplicates * "record 199999\n".len() <= at_kill + (1 << 20),
        "{duplicates} duplicates exceed what was written before the kill ({at_kill} bytes)"
    );
}
