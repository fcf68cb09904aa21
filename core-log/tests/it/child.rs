//! Crash tests re-run this test binary as a child process (selected by an environment
//! variable), read its stdout line by line, and kill it with SIGKILL.

use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::thread::JoinHandle;

/// A running child and the lines it prints.
pub(crate) struct ChildLines {
    child: Child,
    /// Lines of the child's stdout, as they come.
    pub(crate) lines: Receiver<String>,
    reader: JoinHandle<()>,
}

/// Runs the test `test` (its full path, e.g. `recovery::kill_9_...`) alone in a child process
/// with `env` set.
pub(crate) fn spawn(test: &str, env: &[(&str, String)]) -> ChildLines {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", test, "--nocapture", "--test-threads=1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, lines) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    ChildLines {
        child,
        lines,
        reader,
    }
}

impl ChildLines {
    /// Kills the child with SIGKILL, waits for it, and returns the lines it printed that were
    /// not read yet.
    pub(crate) fn kill(mut self) -> Vec<String> {
        let _ = self.child.kill(); // SIGKILL on Unix
        let _ = self.child.wait();
        let _ = self.reader.join();
        self.lines.try_iter().collect()
    }
}
