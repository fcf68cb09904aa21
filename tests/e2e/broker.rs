//! `sluice broker` as a process, with Debian's `kcat` (librdkafka) as the client: produce and
//! consume through it, kill -9 it under acks=all, stop it with SIGTERM.

use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::cli::{run, sluice_bin};

const DEADLINE: Duration = Duration::from_secs(60);

/// A broker process on a free loopback port.
struct BrokerProc {
    child: Child,
    bootstrap: String,
    log: PathBuf,
}

impl BrokerProc {
    fn start(data: &Path, port: Option<u16>) -> BrokerProc {
        let port = port.unwrap_or_else(|| {
            // A port the OS just handed out; released again before the broker binds it.
            let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind a free port");
            l.local_addr().expect("local addr").port()
        });
        let log = data.with_extension("broker.log");
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("broker log file");
        let child = Command::new(sluice_bin())
            .args(["broker", "--listeners"])
            .arg(format!("PLAINTEXT://127.0.0.1:{port}"))
            .arg("--log-dirs")
            .arg(data)
            .args(["--override", "group.initial.rebalance.delay.ms=0"])
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("spawn sluice broker");
        let b = BrokerProc {
            child,
            bootstrap: format!("127.0.0.1:{port}"),
            log,
        };
        b.wait_ready();
        b
    }

    fn port(&self) -> u16 {
        self.bootstrap
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("port")
    }

    fn wait_ready(&self) {
        for _ in 0..400 {
            if TcpStream::connect(&self.bootstrap).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "broker not listening within 20 s; log:\n{}",
            self.log_text()
        );
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{sig} failed");
    }

    /// Waits for the process to exit; returns its exit code (None if killed by a signal).
    fn wait_exit(&mut self, within: Duration) -> Option<i32> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(s) = self.child.try_wait().expect("wait for broker") {
                return s.code();
            }
            assert!(
                Instant::now() < deadline,
                "broker still running after {within:?}; log:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for BrokerProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs kcat with `args` and `stdin`, within [`DEADLINE`]; returns (exit code, stdout, stderr).
fn kcat(args: &[&str], stdin: &str) -> (i32, String, String) {
    // Debian's kcat; scripts/test.sh installs it.
    let mut command = Command::new("kcat");
    command.args(args);
    let o = run(command, stdin, DEADLINE);
    (o.code, o.stdout, o.stderr)
}

fn consume_all(bootstrap: &str, topic: &str, format: &str) -> Vec<String> {
    let (code, out, err) = kcat(
        &[
            "-b",
            bootstrap,
            "-C",
            "-t",
            topic,
            "-o",
            "beginning",
            "-e",
            "-q",
            "-f",
            format,
        ],
        "",
    );
    assert_eq!(code, 0, "kcat consume failed: {err}");
    out.lines().map(str::to_owned).collect()
}

#[test]
fn kcat_produces_and_consumes_through_the_broker() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let b = BrokerProc::start(&data, None);
    let lines: String = (0..100).map(|i| format!("k{i}:value {i}\n")).collect();
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
        let topic = format!("kcat-{codec}");
        let (code, _, err) = kcat(
            &[
                "-b",
                &b.bootstrap,
                "-P",
                "-t",
                &topic,
                "-K:",
                "-z",
                codec,
                "-X",
                "acks=all",
            ],
            &lines,
        );
        assert_eq!(code, 0, "kcat produce ({codec}) failed: {err}");
        let got = consume_all(&b.bootstrap, &topic, "%k=%s@%o\n");
        let want: Vec<String> = (0..100).map(|i| format!("k{i}=value {i}@{i}")).collect();
        assert_eq!(got, want, "{codec}");
    }
    // Metadata lists the auto-created topics with this broker as leader.
    let (code, out, _) = kcat(&["-b", &b.bootstrap, "-L"], "");
    assert_eq!(code, 0);
    assert!(
        out.contains("topic \"kcat-zstd\" with 1 partitions"),
        "{out}"
    );
    assert!(
        out.contains(&format!("broker 1 at 127.0.0.1:{}", b.port())),
        "{out}"
    );
}

#[test]
fn acks_all_records_survive_kill_9_and_restart() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let mut b = BrokerProc::start(&data, None);
    let mut acked = Vec::new();
    for round in 0..3 {
        let lines: Vec<String> = (0..200).map(|i| format!("r{round}-{i}")).collect();
        let (code, _, err) = kcat(
            &[
                "-b",
                &b.bootstrap,
                "-P",
                "-t",
                "durable",
                "-X",
                "acks=all",
                "-X",
                "linger.ms=0",
            ],
            &(lines.join("\n") + "\n"),
        );
        // kcat exits 0 only once every message is acknowledged.
        assert_eq!(code, 0, "kcat produce failed: {err}");
        acked.extend(lines);
        if round == 1 {
            // An abrupt end mid-run: everything acknowledged so far must come back.
            b.signal("KILL");
            assert_eq!(b.wait_exit(DEADLINE), None, "killed by a signal");
            let port = b.port();
            drop(b);
            b = BrokerProc::start(&data, Some(port));
        }
    }
    b.signal("KILL");
    b.wait_exit(DEADLINE);
    let port = b.port();
    drop(b);
    let b = BrokerProc::start(&data, Some(port));
    let got = consume_all(&b.bootstrap, "durable", "%s\n");
    assert_eq!(got, acked, "every acknowledged record, once, in order");
}

#[test]
fn sigterm_stops_the_broker_cleanly() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let mut b = BrokerProc::start(&data, None);
    let (code, _, err) = kcat(
        &["-b", &b.bootstrap, "-P", "-t", "t", "-X", "acks=1"],
        "a\nb\nc\n",
    );
    assert_eq!(code, 0, "{err}");
    b.signal("TERM");
    assert_eq!(
        b.wait_exit(Duration::from_secs(40)),
        Some(0),
        "log:\n{}",
        b.log_text()
    );
    let log = b.log_text();
    assert!(
        log.contains("sluice broker started") && log.contains("listening=127.0.0.1:"),
        "{log}"
    );
    assert!(
        log.contains("stopped; log flushed and checkpointed"),
        "{log}"
    );
    // The checkpoint covers everything: reopening recovers nothing.
    let rp =
        std::fs::read_to_string(data.join("recovery-point-offset-checkpoint")).expect("checkpoint");
    assert!(rp.lines().any(|l| l == "t 0 3"), "{rp}");
}
