//! The `sluice` binary end to end: topics, produce, consume, log tools and perf, run as a user
//! would, against a fresh data directory per test.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Longest any one command may take before the test fails.
const COMMAND_DEADLINE: Duration = Duration::from_secs(120);

/// The `sluice` binary of this build. Cargo builds only library targets of dependencies, so the
/// binary is built here, once, into the target directory these tests run from.
pub(crate) fn sluice_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let exe = std::env::current_exe().expect("test executable path");
        // target/<profile>/deps/e2e-<hash> -> target/<profile>
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("test executable lives in target/<profile>/deps");
        let target_dir = profile_dir.parent().expect("target dir");
        let mut build = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
        build
            .args(["build", "--quiet", "-p", "sluice"])
            .env("CARGO_TARGET_DIR", target_dir)
            .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
        if profile_dir.file_name().is_some_and(|n| n == "release") {
            build.arg("--release");
        }
        let out = build.output().expect("run cargo build -p sluice");
        assert!(
            out.status.success(),
            "cargo build -p sluice failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let bin = profile_dir.join("sluice");
        assert!(bin.is_file(), "{} was not built", bin.display());
        bin
    })
}

#[derive(Debug)]
pub(crate) struct Output {
    pub(crate) code: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

/// Runs `sluice --data-dir <dir> <args>` with `stdin`, within [`COMMAND_DEADLINE`]; `sluice log
/// <args>` without `--data-dir` (the log tools take the files they read as arguments).
fn sluice(dir: &Path, args: &[&str], stdin: &str) -> Output {
    let mut command = Command::new(sluice_bin());
    if args.first() != Some(&"log") {
        command.arg("--data-dir").arg(dir);
    }
    command
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("SLUICE_DATA_DIR");
    run(command, stdin, COMMAND_DEADLINE)
}

/// Runs `command` with `stdin` fed to it, collecting its output; fails the test if it takes
/// longer than `deadline` (the child is killed first).
pub(crate) fn run(mut command: Command, stdin: &str, deadline: Duration) -> Output {
    let what = format!("{command:?}");
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {what}: {e}"));
    let mut input = child.stdin.take().expect("stdin");
    let stdin = stdin.to_owned();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(stdin.as_bytes());
    });
    let reader = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = r.read_to_string(&mut s);
            s
        })
    };
    let out = reader(Box::new(child.stdout.take().expect("stdout")));
    let err = reader(Box::new(child.stderr.take().expect("stderr")));
    let ends = Instant::now() + deadline;
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait for the child") {
            break s;
        }
        if Instant::now() > ends {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not finish within {deadline:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    writer.join().expect("stdin writer");
    Output {
        code: status.code().unwrap_or(-1),
        stdout: out.join().expect("stdout reader"),
        stderr: err.join().expect("stderr reader"),
    }
}

/// Runs a command that must succeed; returns its stdout.
fn ok(dir: &Path, args: &[&str], stdin: &str) -> String {
    let o = sluice(dir, args, stdin);
    assert_eq!(o.code, 0, "sluice {args:?} failed: {o:?}");
    o.stdout
}

fn segment(dir: &Path, topic_partition: &str) -> PathBuf {
    dir.join(topic_partition).join("00000000000000000000.log")
}

#[test]
fn records_round_trip_through_produce_consume_describe_and_dump() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    assert_eq!(
        ok(dir, &["topics", "create", "--topic", "orders"], ""),
        "Created topic orders.\n"
    );
    let sent = ok(
        dir,
        &[
            "produce",
            "orders",
            "--key-separator",
            ":",
            "--header",
            "source=e2e",
            "--header",
            "n=1",
            "--verbose",
        ],
        "k1:v1\nk2:v2:with colon\nk3:v3\n",
    );
    assert_eq!(sent, "orders-0@0\norders-0@1\norders-0@2\n");

    let lines = ok(
        dir,
        &[
            "consume",
            "orders",
            "--from-beginning",
            "--timeout-ms",
            "2000",
            "--format",
            "%k=%v",
        ],
        "",
    );
    assert_eq!(lines, "k1=v1\nk2=v2:with colon\nk3=v3\n");

    let json = ok(
        dir,
        &[
            "consume",
            "orders",
            "--from-beginning",
            "--timeout-ms",
            "2000",
            "--json",
        ],
        "",
    );
    let records: Vec<serde_json::Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert_eq!(records.len(), 3, "{json}");
    assert_eq!(records[1]["key"], "k2");
    assert_eq!(records[1]["value"], "v2:with colon");
    assert_eq!(records[1]["offset"], 1);
    assert_eq!(records[1]["partition"], 0);
    assert_eq!(records[1]["topic"], "orders");
    assert_eq!(
        records[1]["headers"],
        serde_json::json!([{"key": "source", "value": "e2e"}, {"key": "n", "value": "1"}])
    );

    let two = ok(
        dir,
        &[
            "consume",
            "orders",
            "--partition",
            "0",
            "--offset",
            "1",
            "--max-messages",
            "1",
            "--format",
            "%o %h",
        ],
        "",
    );
    assert_eq!(two, "1 source=e2e,n=1\n");

    let described = ok(dir, &["topics", "describe", "--topic", "orders"], "");
    assert!(
        described.contains("Partition: 0\tLeader: -1\tLogStartOffset: 0\tLogEndOffset: 3"),
        "{described}"
    );
    assert_eq!(ok(dir, &["topics", "list"], ""), "orders\n");

    let seg = segment(dir, "orders-0");
    let dump = ok(
        dir,
        &[
            "log",
            "dump",
            seg.to_str().expect("utf-8 path"),
            "--print-data",
        ],
        "",
    );
    assert!(
        dump.contains("baseOffset: 0 lastOffset: 2 count: 3"),
        "{dump}"
    );
    assert!(dump.contains("isvalid: true"), "{dump}");
    assert!(
        dump.contains("headerKeys: [source,n] key: k2 payload: v2:with colon"),
        "{dump}"
    );
}

#[test]
fn errors_are_one_line_with_exit_code_1_and_usage_errors_exit_2() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let o = sluice(
        dir,
        &[
            "topics",
            "create",
            "--topic",
            "t",
            "--config",
            "no.such.key=1",
        ],
        "",
    );
    assert_eq!(o.code, 1, "{o:?}");
    assert_eq!(o.stderr.lines().count(), 1, "{o:?}");
    assert!(o.stderr.starts_with("error: "), "{o:?}");
    assert!(o.stderr.contains("\"no.such.key\""), "{o:?}");

    ok(dir, &["topics", "create", "--topic", "t"], "");
    let o = sluice(
        dir,
        &["produce", "t", "--producer-property", "linger.ms=soon"],
        "x\n",
    );
    assert_eq!(o.code, 1, "{o:?}");
    assert!(
        o.stderr.starts_with("error: ") && o.stderr.contains("linger.ms"),
        "{o:?}"
    );

    // Nothing listens on port 1: one line naming what failed.
    let o = sluice(dir, &["--bootstrap", "127.0.0.1:1", "topics", "list"], "");
    assert_eq!(o.code, 1, "{o:?}");
    assert_eq!(o.stderr.lines().count(), 1, "{o:?}");
    assert!(o.stderr.starts_with("error: list_topics: "), "{o:?}");

    let o = sluice(dir, &["topics", "create"], "");
    assert_eq!(o.code, 2, "{o:?}");
}

#[test]
fn log_verify_passes_a_good_dir_and_names_the_byte_of_a_flipped_one() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    ok(
        dir,
        &["topics", "create", "--topic", "v", "--partitions", "2"],
        "",
    );
    // Two runs, two batches in partition 0.
    for value in ["first", "second"] {
        ok(
            dir,
            &["produce", "v", "--partition", "0"],
            &format!("{value}\n"),
        );
    }
    let data = dir.to_str().expect("utf-8 path");
    let report = ok(dir, &["log", "verify", data], "");
    assert!(
        report.contains("v-0/00000000000000000000.log: ok (2 batches, offsets 0..1)"),
        "{report}"
    );
    assert!(
        report.contains("v-1/00000000000000000000.log: ok (empty)"),
        "{report}"
    );

    let seg = segment(dir, "v-0");
    let mut bytes = std::fs::read(&seg).expect("read segment");
    let dump = ok(dir, &["log", "dump", seg.to_str().expect("utf-8 path")], "");
    let second: usize = dump
        .lines()
        .filter_map(|l| l.split(" position: ").nth(1))
        .filter_map(|rest| rest.split(' ').next()?.parse().ok())
        .nth(1)
        .expect("position of the second batch");
    let last = bytes.len() - 1;
    bytes[last] ^= 0x40;
    std::fs::write(&seg, &bytes).expect("write segment");

    let o = sluice(dir, &["log", "verify", data], "");
    assert_eq!(o.code, 1, "{o:?}");
    assert!(
        o.stdout.contains(&format!(
            "corrupt in the batch at byte {second} (offsets 1..1)"
        )),
        "{o:?}"
    );
    assert!(o.stdout.contains("CRC"), "{o:?}");
    assert!(o.stderr.starts_with("error: 1 of 2 segments"), "{o:?}");

    // A torn tail: the dump names where the bad bytes start.
    std::fs::write(&seg, &bytes[..last - 10]).expect("truncate segment");
    let o = sluice(dir, &["log", "dump", seg.to_str().expect("utf-8 path")], "");
    assert_eq!(o.code, 1, "{o:?}");
    assert!(
        o.stderr
            .contains(&format!("bad bytes at byte {second}: torn tail")),
        "{o:?}"
    );
}

#[test]
fn consuming_a_corrupt_batch_names_the_partition_the_file_and_the_byte() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    ok(dir, &["topics", "create", "--topic", "c"], "");
    for value in ["first", "second", "third"] {
        ok(dir, &["produce", "c"], &format!("{value}\n"));
    }
    let seg = segment(dir, "c-0");
    let seg_path = seg.to_str().expect("utf-8 path");
    let dump = ok(dir, &["log", "dump", seg_path], "");
    let positions: Vec<usize> = dump
        .lines()
        .filter_map(|l| l.split(" position: ").nth(1))
        .filter_map(|rest| rest.split(' ').next()?.parse().ok())
        .collect();
    let [_, second, third] = positions[..] else {
        panic!("three batches: {dump}");
    };
    // The last byte of the middle batch: a batch below the log end, which a read finds (or,
    // if the recovery point was not checkpointed, the recovery scan; both name the same).
    let mut bytes = std::fs::read(&seg).expect("read segment");
    bytes[third - 1] ^= 0x40;
    std::fs::write(&seg, &bytes).expect("write segment");

    let o = sluice(
        dir,
        &["consume", "c", "--from-beginning", "--timeout-ms", "2000"],
        "",
    );
    assert_eq!(o.code, 1, "{o:?}");
    assert_eq!(o.stderr.lines().count(), 1, "{o:?}");
    assert!(o.stderr.starts_with("error: "), "{o:?}");
    for part in [
        "partition c-0",
        seg_path,
        &format!("at byte {second}"),
        "CRC",
    ] {
        assert!(o.stderr.contains(part), "{part:?} not in {o:?}");
    }
}

#[test]
fn log_takes_no_data_dir_or_bootstrap() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    for args in [&["log", "--help"][..], &["log", "verify", "--help"]] {
        let help = ok(dir, args, "");
        assert!(
            !help.contains("--data-dir") && !help.contains("--bootstrap"),
            "{help}"
        );
    }
    let help = ok(dir, &["consume", "--help"], "");
    assert!(
        help.contains("--data-dir") && help.contains("--bootstrap"),
        "{help}"
    );
    let data = dir.to_str().expect("utf-8 path");
    let o = sluice(dir, &["log", "verify", data, "--data-dir", data], "");
    assert_eq!(o.code, 2, "an unknown flag of log: {o:?}");
    let mut command = Command::new(sluice_bin());
    command.args(["--data-dir", data, "log", "verify", data]);
    let o = run(command, "", COMMAND_DEADLINE);
    assert_eq!(o.code, 1, "{o:?}");
    assert!(
        o.stderr
            .contains("--data-dir is for client commands: log reads the segment files"),
        "{o:?}"
    );
}

#[test]
fn perf_produce_and_consume_print_their_final_lines() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let produced = ok(
        dir,
        &[
            "perf",
            "produce",
            "--topic",
            "perf",
            "--num-records",
            "20000",
            "--record-size",
            "100",
            "--partitions",
            "2",
            "--producers",
            "2",
        ],
        "",
    );
    let last = produced.lines().last().unwrap_or_default();
    assert!(last.starts_with("20000 records sent, "), "{produced}");
    assert!(
        last.contains(" ms 50th, ") && last.ends_with(" ms 99.9th."),
        "{produced}"
    );

    let consumed = ok(
        dir,
        &[
            "perf",
            "consume",
            "--topic",
            "perf",
            "--messages",
            "20000",
            "--timeout-ms",
            "10000",
        ],
        "",
    );
    let lines: Vec<&str> = consumed.lines().collect();
    assert_eq!(
        lines[0],
        "start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec",
        "{consumed}"
    );
    assert_eq!(lines[1].split(", ").nth(4), Some("20000"), "{consumed}");
    assert!(lines[2].starts_with("20000 records in "), "{consumed}");
}

#[test]
fn consume_with_a_group_commits_and_groups_describe_shows_the_lag() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    ok(
        dir,
        &["topics", "create", "--topic", "t", "--partitions", "2"],
        "",
    );
    ok(dir, &["produce", "t"], "a\nb\nc\nd\ne\nf\n");
    let consume = [
        "consume",
        "t",
        "--group",
        "g",
        "--from-beginning",
        "--max-messages",
        "4",
        "--timeout-ms",
        "1500",
    ];
    assert_eq!(ok(dir, &consume, "").lines().count(), 4);

    let described = ok(dir, &["groups", "describe", "--group", "g"], "");
    let mut lines = described.lines();
    let header: Vec<&str> = lines.next().expect("header").split_whitespace().collect();
    assert_eq!(
        header,
        [
            "GROUP",
            "TOPIC",
            "PARTITION",
            "CURRENT-OFFSET",
            "LOG-END-OFFSET",
            "LAG",
            "CONSUMER-ID"
        ]
    );
    let (mut committed, mut end, mut lag) = (0, 0, 0);
    for line in lines {
        let cells: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(cells[..2], ["g", "t"], "{described}");
        assert_eq!(cells[6], "-", "no member is left: {described}");
        committed += cells[3].parse::<i64>().unwrap_or(0);
        end += cells[4].parse::<i64>().expect("log end");
        lag += cells[5].parse::<i64>().unwrap_or(0);
    }
    assert_eq!((committed, end), (4, 6), "{described}");
    assert_eq!(lag, end - committed, "{described}");
    assert!(ok(dir, &["groups", "list"], "").starts_with("g\tEmpty"));

    // The group resumes where it committed: the 2 records left.
    assert_eq!(ok(dir, &consume, "").lines().count(), 2);

    let plan = ok(
        dir,
        &[
            "groups",
            "reset-offsets",
            "--group",
            "g",
            "--topic",
            "t",
            "--to-earliest",
        ],
        "",
    );
    assert!(plan.starts_with("GROUP"), "{plan}");
    assert_eq!(
        ok(dir, &consume, "").lines().count(),
        0,
        "a dry run changes nothing"
    );
    ok(
        dir,
        &[
            "groups",
            "reset-offsets",
            "--group",
            "g",
            "--topic",
            "t",
            "--to-earliest",
            "--execute",
        ],
        "",
    );
    assert_eq!(ok(dir, &consume, "").lines().count(), 4);

    let deleted = ok(
        dir,
        &[
            "groups",
            "delete-offsets",
            "--group",
            "g",
            "--topic",
            "t",
            "--partitions",
            "0",
        ],
        "",
    );
    let rows: Vec<Vec<&str>> = deleted
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows,
        [
            vec!["TOPIC", "PARTITION", "STATUS"],
            vec!["t", "0", "Successful"]
        ]
    );
    let described = ok(dir, &["groups", "describe", "--group", "g"], "");
    let partitions: Vec<&str> = described
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().nth(2))
        .collect();
    assert_eq!(
        partitions,
        ["1"],
        "only partition 1 keeps an offset: {described}"
    );
    ok(dir, &["groups", "delete", "--group", "g"], "");
    assert_eq!(ok(dir, &["groups", "list"], ""), "");
}

#[test]
fn transactions_list_and_describe_show_what_the_coordinator_knows() {
    use sluice_log::client::config::ProducerConfig;
    use sluice_log::client::embedded::EmbeddedClient;
    use sluice_log::client::{Admin, Client, NewTopic, Producer, ProducerRecord};
    use sluice_log::log::{LogManager, LogManagerConfig};

    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let client =
            EmbeddedClient::new(LogManager::open(LogManagerConfig::new(dir.path())).unwrap());
        client
            .admin()
            .unwrap()
            .create_topics(vec![NewTopic::new("ledger", 1)])
            .await
            .unwrap();
        let p = client
            .producer(
                ProducerConfig::from_pairs([
                    ("transactional.id", "ledger-writer"),
                    ("linger.ms", "0"),
                ])
                .unwrap(),
            )
            .unwrap();
        p.init_transactions().await.unwrap();
        p.begin_transaction().unwrap();
        p.send(ProducerRecord::new("ledger", "debit"))
            .await
            .unwrap();
        p.commit_transaction().await.unwrap();
        p.begin_transaction().unwrap();
        p.send(ProducerRecord::new("ledger", "credit"))
            .await
            .unwrap()
            .await
            .unwrap();
        // Left open: the coordinator shows it Ongoing with its partition.
        drop(p);
        client.log().close().unwrap();
    });
    let list = ok(dir.path(), &["transactions", "list"], "");
    assert!(list.contains("ledger-writer"), "{list}");
    let describe = ok(
        dir.path(),
        &[
            "transactions",
            "describe",
            "--transactional-id",
            "ledger-writer",
        ],
        "",
    );
    assert!(describe.contains("TransactionState: Ongoing"), "{describe}");
    assert!(describe.contains("TopicPartitions: ledger-0"), "{describe}");
    let missing = sluice(
        dir.path(),
        &["transactions", "describe", "--transactional-id", "nope"],
        "",
    );
    assert_eq!(missing.code, 1);
    assert!(missing.stderr.contains("nope"), "{missing:?}");
}

/// `--bootstrap` against librdkafka's mock cluster, in this process on loopback: produce,
/// consume (by partition, and in a group), topics list and perf produce with a librdkafka
/// property. (The mock has no controller, DescribeConfigs or group listing, so commands that
/// describe topics or groups are left to the integration tests of the client.)
#[test]
fn produce_consume_and_perf_over_the_kafka_protocol() {
    let mock = rdkafka::mocking::MockCluster::new(1).expect("mock cluster");
    mock.create_topic("orders", 2, 1).expect("create topic");
    let servers = mock.bootstrap_servers();
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let kafka = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["--bootstrap".to_owned(), servers.clone()];
        all.extend(args.iter().map(|a| (*a).to_owned()));
        all
    };
    let run = |args: &[&str], stdin: &str| {
        let all = kafka(args);
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        ok(dir, &refs, stdin)
    };

    assert!(run(&["topics", "list"], "").lines().any(|t| t == "orders"));
    let sent = run(
        &[
            "produce",
            "orders",
            "--partition",
            "1",
            "--key-separator",
            ":",
            "--header",
            "source=e2e",
            "--verbose",
            "--producer-property",
            "acks=1",
            "--producer-property",
            "queue.buffering.max.ms=1",
        ],
        "k1:v1\nk2:v2\nk3:v3\n",
    );
    assert_eq!(sent, "orders-1@0\norders-1@1\norders-1@2\n");
    let read = run(
        &[
            "consume",
            "orders",
            "--partition",
            "1",
            "--offset",
            "earliest",
            "--max-messages",
            "3",
            "--timeout-ms",
            "20000",
            "--format",
            "%p@%o %k=%v [%h]",
        ],
        "",
    );
    assert_eq!(
        read,
        "1@0 k1=v1 [source=e2e]\n1@1 k2=v2 [source=e2e]\n1@2 k3=v3 [source=e2e]\n"
    );
    let in_group = [
        "consume",
        "orders",
        "--group",
        "readers",
        "--from-beginning",
        "--max-messages",
        "2",
        "--timeout-ms",
        "20000",
        // The mock makes a rejoining group wait out the last session timeout.
        "--consumer-property",
        "session.timeout.ms=6000",
    ];
    assert_eq!(run(&in_group, "").lines().count(), 2);
    // The group committed what it printed: it resumes at the third record (not at the end,
    // where a group without offsets starts without --from-beginning).
    let rest = [
        "consume",
        "orders",
        "--group",
        "readers",
        "--max-messages",
        "1",
        "--timeout-ms",
        "20000",
        "--consumer-property",
        "session.timeout.ms=6000",
        "--format",
        "%v",
    ];
    assert_eq!(run(&rest, ""), "v3\n");

    let produced = run(
        &[
            "perf",
            "produce",
            "--topic",
            "orders",
            "--num-records",
            "20000",
            "--record-size",
            "100",
            "--acks",
            "1",
            "--producer-props",
            "linger.ms=5",
            "queue.buffering.max.messages=50000",
        ],
        "",
    );
    let last = produced.lines().last().unwrap_or_default();
    assert!(last.starts_with("20000 records sent, "), "{produced}");
    // Without librdkafka properties perf runs Sluice's own producer: against librdkafka's
    // mock broker too.
    let native = run(
        &[
            "perf",
            "produce",
            "--topic",
            "orders",
            "--num-records",
            "20000",
            "--record-size",
            "100",
            "--acks",
            "all",
            "--producer-props",
            "linger.ms=5",
        ],
        "",
    );
    let last = native.lines().last().unwrap_or_default();
    assert!(last.starts_with("20000 records sent, "), "{native}");
    // Refused, naming the key: a librdkafka property given to the native producer, and a
    // librdkafka property that does not exist.
    let refused: [(&[&str], &[&str]); 2] = [
        (
            &[
                "sluice.producer.engine=native",
                "queue.buffering.max.messages=5",
            ],
            &["queue.buffering.max.messages", "librdkafka"],
        ),
        (&["no.such.property=1"], &["no.such.property"]),
    ];
    for (props, named) in refused {
        let mut args = vec![
            "perf",
            "produce",
            "--topic",
            "orders",
            "--num-records",
            "1",
            "--record-size",
            "1",
            "--producer-props",
        ];
        args.extend_from_slice(props);
        let all = kafka(&args);
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        let o = sluice(dir, &refs, "");
        assert_eq!(o.code, 1, "{o:?}");
        for n in named {
            assert!(o.stderr.contains(n), "{n}: {o:?}");
        }
    }
}
