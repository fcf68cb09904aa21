//! The direction of the workspace's dependencies, checked from `cargo metadata` (as
//! DataFusion's `dev/depcheck` does): each crate may depend only on the Sluice crates below it.
//!
//! ```text
//! sluice (cli), sluice-examples, sluice-e2e       anything
//! sluice-streams  (topologies, stores, runtime)   sluice-client, sluice-protocol
//! sluice-connect  (workers, REST, connectors)     sluice-client, sluice-protocol
//! sluice-broker                                   sluice-log, sluice-client, sluice-protocol
//! sluice-log      (engine + embedded client)      sluice-client, sluice-protocol
//! sluice-kafka    (Kafka-protocol client)         sluice-client, sluice-protocol
//! sluice-client   (the traits)                    sluice-protocol
//! sluice-protocol (formats, errors)               nothing of Sluice's
//! ```
//!
//! So an edit in the storage engine rebuilds neither the Kafka client nor the interface, and an
//! upper layer can depend on `sluice-client` without the engine. A new crate must be given its
//! place here.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

/// Which Sluice crates each crate may depend on (normal and build dependencies; tests and
/// benchmarks may use more).
const ALLOWED: &[(&str, &[&str])] = &[
    ("sluice-protocol", &[]),
    ("sluice-client", &["sluice-protocol"]),
    ("sluice-log", &["sluice-client", "sluice-protocol"]),
    ("sluice-kafka", &["sluice-client", "sluice-protocol"]),
    (
        "sluice-broker",
        &["sluice-log", "sluice-client", "sluice-protocol"],
    ),
    ("sluice-streams", &["sluice-client", "sluice-protocol"]),
    ("sluice-connect", &["sluice-client", "sluice-protocol"]),
    ("sluice", &["*"]),
    ("sluice-examples", &["*"]),
    ("sluice-e2e", &["*"]),
];

/// Sluice crates of the workspace -> their Sluice dependencies outside dev-dependencies.
fn workspace_edges() -> anyhow::Result<BTreeMap<String, BTreeSet<String>>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .ok_or_else(|| anyhow::anyhow!("tests/ has no parent"))?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(root)
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let packages = meta["packages"]
        .as_array()
        .ok_or_else(|| anyhow::anyhow!("cargo metadata lists no packages"))?;
    let mut edges = BTreeMap::new();
    for p in packages {
        let name = p["name"].as_str().unwrap_or_default().to_owned();
        let deps = p["dependencies"]
            .as_array()
            .map(|d| d.as_slice())
            .unwrap_or_default()
            .iter()
            .filter(|d| d["kind"].as_str() != Some("dev"))
            .filter_map(|d| d["name"].as_str())
            .filter(|n| n.starts_with("sluice"))
            .map(str::to_owned)
            .collect();
        edges.insert(name, deps);
    }
    Ok(edges)
}

/// Every edge that `ALLOWED` does not allow, and every crate it does not place.
fn violations(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    let mut out = Vec::new();
    for (krate, deps) in edges {
        let Some(ok) = allowed.get(krate.as_str()) else {
            out.push(format!(
                "{krate} has no place in ALLOWED (tests/e2e/depcheck.rs)"
            ));
            continue;
        };
        if ok.contains(&"*") {
            continue;
        }
        for d in deps {
            if !ok.contains(&d.as_str()) {
                out.push(format!("{krate} must not depend on {d}"));
            }
        }
    }
    out
}

#[test]
fn dependencies_run_one_way() -> anyhow::Result<()> {
    let edges = workspace_edges()?;
    for krate in [
        "sluice-protocol",
        "sluice-client",
        "sluice-log",
        "sluice-kafka",
    ] {
        anyhow::ensure!(edges.contains_key(krate), "{krate} is not in the workspace");
    }
    let bad = violations(&edges);
    anyhow::ensure!(
        bad.is_empty(),
        "dependency direction broken:\n{}",
        bad.join("\n")
    );
    Ok(())
}

#[test]
fn an_edge_against_the_direction_is_reported() {
    let mut edges = BTreeMap::new();
    edges.insert(
        "sluice-kafka".to_owned(),
        BTreeSet::from(["sluice-log".to_owned(), "sluice-client".to_owned()]),
    );
    edges.insert("sluice-unplaced".to_owned(), BTreeSet::new());
    assert_eq!(
        violations(&edges),
        [
            "sluice-kafka must not depend on sluice-log",
            "sluice-unplaced has no place in ALLOWED (tests/e2e/depcheck.rs)",
        ]
    );
}
