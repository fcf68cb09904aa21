//! A worker on a fresh embedded log, a REST client, and bounded waits.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value as Json;
use sluice_connect::config::{Props, WorkerConfig};
use sluice_connect::connector::Plugins;
use sluice_connect::standalone::ConnectWorker;
use sluice_log::client::embedded::EmbeddedClient;
use sluice_log::log::{LogManager, LogManagerConfig};

/// Longest any wait of a test may take.
pub(crate) const DEADLINE: Duration = Duration::from_secs(30);

/// A worker and its directory.
pub(crate) struct Harness {
    pub(crate) worker: Option<ConnectWorker<EmbeddedClient>>,
    pub(crate) client: EmbeddedClient,
    pub(crate) dir: PathBuf,
    pub(crate) http: reqwest::Client,
    _tmp: Option<tempfile::TempDir>,
}

pub(crate) fn props(pairs: &[(&str, &str)]) -> Props {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

impl Harness {
    /// A worker on a new log in a new temporary directory.
    pub(crate) async fn start(extra: &[(&str, &str)]) -> Harness {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_owned();
        let mut h = Harness::start_in(&dir, extra).await;
        h._tmp = Some(tmp);
        h
    }

    /// A worker on the log (and offset file) of `dir`.
    pub(crate) async fn start_in(dir: &Path, extra: &[(&str, &str)]) -> Harness {
        let log = LogManager::open(LogManagerConfig::new(dir.join("log"))).unwrap();
        let client = EmbeddedClient::new(log);
        let offsets = dir.join("connect.offsets").display().to_string();
        let mut p = props(&[
            ("listeners", "http://127.0.0.1:0"),
            ("offset.storage.file.filename", &offsets),
            ("offset.flush.interval.ms", "100"),
            (
                "key.converter",
                "org.apache.kafka.connect.json.JsonConverter",
            ),
            (
                "value.converter",
                "org.apache.kafka.connect.json.JsonConverter",
            ),
        ]);
        for (k, v) in extra {
            p.insert((*k).to_owned(), (*v).to_owned());
        }
        let config = WorkerConfig::from_props(p).unwrap();
        let worker = ConnectWorker::standalone(client.clone(), config, Plugins::builtin())
            .await
            .unwrap();
        Harness {
            worker: Some(worker),
            client,
            dir: dir.to_owned(),
            http: reqwest::Client::new(),
            _tmp: None,
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.worker.as_ref().unwrap().rest_url())
    }

    /// A request with an optional JSON body: (status, body as JSON or Null).
    pub(crate) async fn call(&self, method: &str, path: &str, body: Option<Json>) -> (u16, Json) {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self.http.request(m, self.url(path));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = tokio::time::timeout(DEADLINE, req.send())
            .await
            .unwrap()
            .unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        let json = if text.is_empty() {
            Json::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Json::String(text))
        };
        (status, json)
    }

    /// Waits until `check` holds of the connector's status, failing after [`DEADLINE`].
    pub(crate) async fn wait_status(
        &self,
        name: &str,
        what: &str,
        check: impl Fn(&Json) -> bool,
    ) -> Json {
        let start = Instant::now();
        loop {
            let (code, s) = self
                .call("GET", &format!("/connectors/{name}/status"), None)
                .await;
            if code == 200 && check(&s) {
                return s;
            }
            assert!(
                start.elapsed() < DEADLINE,
                "{name} never became {what}: {s}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops the worker (its tasks commit first).
    pub(crate) async fn stop(&mut self) {
        if let Some(w) = self.worker.take() {
            w.shutdown().await;
        }
    }
}

/// Waits until `path` holds `expected` bytes exactly, failing after [`DEADLINE`].
pub(crate) async fn wait_file(path: &Path, expected: &[u8]) {
    let start = Instant::now();
    loop {
        let got = std::fs::read(path).unwrap_or_default();
        if got == expected {
            return;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "{} never held the expected {} bytes; it has {}: {:?}",
            path.display(),
            expected.len(),
            got.len(),
            String::from_utf8_lossy(&got[..got.len().min(300)])
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every state of a status is RUNNING, with `tasks` tasks.
pub(crate) fn running(tasks: usize) -> impl Fn(&Json) -> bool {
    move |s: &Json| {
        s["connector"]["state"] == "RUNNING"
            && s["tasks"]
                .as_array()
                .is_some_and(|t| t.len() == tasks && t.iter().all(|t| t["state"] == "RUNNING"))
    }
}
