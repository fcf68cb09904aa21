//! The README's `sluice` commands as a newcomer runs them: installed the way the README says
//! (`cargo install --locked --path cli`, here into a temporary root, as a debug build that
//! reuses this build's artifacts), then every line of its `sluice` block that runs offline, in
//! order, from a fresh directory, with the installed binary first on PATH.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::cli::{run, sluice_bin};

/// Longest the install (mostly a link of what the build already compiled) may take.
const INSTALL_DEADLINE: Duration = Duration::from_secs(900);
/// Longest any one README line may take.
const LINE_DEADLINE: Duration = Duration::from_secs(120);

fn workspace() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// The lines of the fenced block that follows `marker`, continuations (`\`) joined and
/// trailing comments (`  # ...`) removed.
fn block_after(readme: &str, marker: &str) -> Vec<String> {
    let rest = &readme[readme.find(marker).expect("README has the marker")..];
    let body = rest
        .split("```bash\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("a bash block after the marker");
    let mut lines = Vec::new();
    let mut pending = String::new();
    for line in body.lines() {
        if let Some(head) = line.strip_suffix('\\') {
            pending.push_str(head);
            continue;
        }
        pending.push_str(line);
        let code = match pending.find("  #") {
            Some(at) => &pending[..at],
            None => &pending,
        };
        lines.push(code.trim().to_owned());
        pending.clear();
    }
    lines
}

#[test]
fn the_readme_install_line_and_sluice_commands_work_offline() {
    let readme = std::fs::read_to_string(workspace().join("README.md")).expect("read README.md");
    assert!(
        !readme.contains("alias sluice="),
        "the README points an alias at a target directory a plain build does not write"
    );
    let lines = block_after(&readme, "The `sluice` command:");
    let install = &lines[0];
    assert_eq!(install, "cargo install --locked --path cli", "{lines:?}");

    // The install line as written, into a temporary root, in debug (this build's artifacts).
    let root = tempfile::tempdir().expect("tempdir");
    let target_dir = sluice_bin()
        .parent()
        .and_then(Path::parent)
        .expect("target dir");
    let mut cargo = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cargo
        .args(install.split_whitespace().skip(1))
        .args(["--debug", "--offline", "--quiet", "--root"])
        .arg(root.path())
        .env("CARGO_TARGET_DIR", target_dir)
        .current_dir(workspace());
    let o = run(cargo, "", INSTALL_DEADLINE);
    assert_eq!(o.code, 0, "{install}: {o:?}");
    let bin_dir = root.path().join("bin");
    assert!(
        bin_dir.join("sluice").is_file(),
        "{install} put no sluice in {}",
        bin_dir.display()
    );

    // The other lines, from a fresh directory (the default --data-dir is ./sluice-data).
    let cwd = tempfile::tempdir().expect("tempdir");
    let path = std::env::join_paths(
        std::iter::once(bin_dir.clone()).chain(std::env::split_paths(
            &std::env::var_os("PATH").unwrap_or_default(),
        )),
    )
    .expect("PATH");
    let mut ran = 0;
    for line in &lines[1..] {
        // A Kafka cluster is not here; a 10M-record perf run is a benchmark, not a check.
        if line.is_empty() || line.contains("--bootstrap") || line.starts_with("sluice perf") {
            continue;
        }
        let mut bash = Command::new("bash");
        bash.args(["-euo", "pipefail", "-c", line])
            .current_dir(cwd.path())
            .env("PATH", &path)
            .env_remove("SLUICE_DATA_DIR")
            .env_remove("RUST_LOG");
        let o = run(bash, "", LINE_DEADLINE);
        assert_eq!(o.code, 0, "README line `{line}`: {o:?}");
        ran += 1;
    }
    assert!(ran >= 10, "only {ran} README lines ran: {lines:?}");
}
