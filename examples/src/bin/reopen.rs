//! Reopen after kill -9: a child process writes a log of `--gb` GiB in 20 segments (acks=1, so
//! the active segment is not fsynced), is killed with SIGKILL, and the parent times the reopen.
//!
//! ```text
//! cargo run --release -p sluice-examples --bin reopen [-- --gb 2]
//! ```

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::Context;
use sluice_log::TopicPartition;
use sluice_log::log::{LogManager, LogManagerConfig};
use sluice_log::record::BatchBuilder;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--child") {
        return child(
            args.get(2).context("child needs a dir")?,
            args.get(3).context("child needs a size")?.parse()?,
        );
    }
    let gb: f64 = match args.get(1).map(String::as_str) {
        Some("--gb") => args.get(2).context("--gb needs a number")?.parse()?,
        _ => 2.0,
    };
    let dir = std::env::temp_dir().join(format!("sluice-reopen-{}", std::process::id()));
    let bytes = (gb * (1u64 << 30) as f64) as u64;
    let mut child = Command::new(std::env::current_exe()?)
        .args([
            "--child",
            dir.to_str().context("utf-8 path")?,
            &bytes.to_string(),
        ])
        .stdout(Stdio::piped())
        .spawn()?;
    let out = child.stdout.take().context("child stdout")?;
    let mut lines = BufReader::new(out).lines();
    let written = lines.next().context("child ended early")??;
    child.kill()?; // SIGKILL
    child.wait()?;
    println!("child wrote {written}, killed with SIGKILL");
    let t = Instant::now();
    let log = LogManager::open(LogManagerConfig::new(&dir))?;
    let took = t.elapsed();
    let p = log.partition(&TopicPartition::new("big", 0))?;
    println!(
        "reopened in {:.3} s: {} segments, {:.2} GB, log end offset {}",
        took.as_secs_f64(),
        p.segment_count(),
        p.size_bytes() as f64 / 1e9,
        p.log_end_offset()
    );
    drop(p);
    log.close()?;
    drop(log);
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

fn child(dir: &str, bytes: u64) -> anyhow::Result<()> {
    let log = LogManager::open(LogManagerConfig::new(dir))?;
    let segment = (bytes / 20).to_string();
    log.create_topic("big", 1, [("segment.bytes", segment.as_str())])?;
    let p = log.partition(&TopicPartition::new("big", 0))?;
    let value = [b'x'; 1000];
    let mut b = BatchBuilder::new(sluice_log::Compression::None);
    for i in 0..1000 {
        b.append(1_700_000_000_000 + i, None, Some(&value), &[]);
    }
    let batch = b.build();
    let mut written = 0u64;
    while written < bytes {
        p.append(batch.clone())?;
        written += batch.len() as u64;
    }
    println!(
        "{:.2} GB in {} segments",
        written as f64 / 1e9,
        p.segment_count()
    );
    // Wait to be killed, holding the lock, with the active segment unflushed.
    std::thread::sleep(std::time::Duration::from_secs(600));
    Ok(())
}
