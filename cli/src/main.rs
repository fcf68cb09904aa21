//! The `sluice` command: topics, console produce and consume, segment tools, perf tests.
//!
//! ```text
//! main (clap) -> topics | produce | consume | groups | log | perf -> sluice_log::client::{Admin, Producer, Consumer}
//! ```
//!
//! Every command that touches topics is written once over the [`Client`] trait and runs on
//! either backend: the embedded log under `--data-dir`, or a Kafka cluster (or `sluice broker`)
//! at `--bootstrap`, through the Kafka-protocol client. With `--bootstrap`, client properties
//! Sluice's configs do not know (`--producer-props`, `--consumer-property`, ...) go to
//! librdkafka as they are. The `log` tools read segment files directly and never open (lock,
//! recover) the data directory. **Not** a broker, and no logic of its own beyond parsing flags
//! and formatting output.

/// `println!` that returns the write's `io::Result` instead of panicking on a closed pipe.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)
    }};
}

mod broker;
mod connect;
mod consume;
mod groups;
mod logtool;
mod perf;
mod produce;
mod topics;
mod transactions;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use sluice_kafka::KafkaClient;
use sluice_log::client::Client;
use sluice_log::client::config::{ConsumerConfig, ProducerConfig};
use sluice_log::client::embedded::EmbeddedClient;
use sluice_log::log::{LogManager, LogManagerConfig, PageCacheWindow};

/// Sluice: a Kafka-compatible streaming platform.
#[derive(Debug, Parser)]
#[command(name = "sluice", version, propagate_version = true)]
struct Cli {
    #[command(flatten)]
    target: TargetFirst,
    #[command(subcommand)]
    command: Command,
}

/// Default of `--data-dir`.
const DEFAULT_DATA_DIR: &str = "./sluice-data";

/// Where a client command's log is, given after the subcommand (global in its subtree, so
/// `sluice topics create --data-dir D` works). `log` and `broker` have no such flags: they
/// name their files and directories themselves.
#[derive(Debug, Clone, Default, clap::Args)]
pub(crate) struct Target {
    /// Data directory of the embedded log [env: SLUICE_DATA_DIR] [default: ./sluice-data].
    #[arg(long, global = true, value_name = "DIR", display_order = 100)]
    data_dir: Option<PathBuf>,
    /// Reach a Kafka cluster (or `sluice broker`) at these servers, HOST:PORT[,HOST:PORT...],
    /// instead of the embedded log under --data-dir.
    #[arg(long, global = true, value_name = "HOST:PORT", display_order = 101)]
    bootstrap: Option<String>,
    /// Bytes behind each partition's end the embedded log keeps in the page cache: auto, -1
    /// (everything, as Kafka) or a number (the broker's log.page.cache.window.bytes)
    /// [env: SLUICE_PAGE_CACHE_WINDOW] [default: auto].
    #[arg(
        long,
        global = true,
        value_name = "auto|-1|BYTES",
        allow_negative_numbers = true,
        display_order = 102
    )]
    page_cache_window: Option<PageCacheWindow>,
}

/// [`Target`] given before the subcommand (`sluice --data-dir D topics list`); not global, so
/// `sluice log --help` does not list it.
#[derive(Debug, Clone, Default, clap::Args)]
struct TargetFirst {
    /// Data directory of the embedded log, for client commands [env: SLUICE_DATA_DIR]
    /// [default: ./sluice-data].
    #[arg(long, value_name = "DIR", display_order = 100)]
    data_dir: Option<PathBuf>,
    /// Reach a Kafka cluster (or `sluice broker`) at these servers, HOST:PORT[,HOST:PORT...],
    /// instead of the embedded log under --data-dir; for client commands.
    #[arg(long, value_name = "HOST:PORT", display_order = 101)]
    bootstrap: Option<String>,
    /// The embedded log's page-cache window (see the client commands' --page-cache-window).
    #[arg(
        long,
        value_name = "auto|-1|BYTES",
        allow_negative_numbers = true,
        display_order = 102
    )]
    page_cache_window: Option<PageCacheWindow>,
}

/// Where a client command runs: the embedded log in a directory, or a Kafka cluster.
#[derive(Debug, PartialEq)]
enum Backend {
    Embedded(PathBuf, PageCacheWindow),
    Kafka(String),
}

impl Command {
    /// The flags of a client command given after it; `None` for `log` and `broker`.
    fn target(&self) -> Option<&Target> {
        match self {
            Command::Topics(a) => Some(&a.target),
            Command::Produce(a) => Some(&a.target),
            Command::Consume(a) => Some(&a.target),
            Command::Groups(a) => Some(&a.target),
            Command::Perf(a) => Some(&a.target),
            Command::Transactions(a) => Some(&a.target),
            Command::Broker(_) | Command::Log(_) | Command::Connect(_) => None,
        }
    }
}

/// The backend of a client command: flags after the subcommand win over flags before it,
/// then `SLUICE_DATA_DIR`, then `./sluice-data`.
fn backend(first: TargetFirst, after: &Target) -> anyhow::Result<Backend> {
    if let Some(servers) = after.bootstrap.clone().or(first.bootstrap) {
        return Ok(Backend::Kafka(servers));
    }
    let window = match after.page_cache_window.or(first.page_cache_window) {
        Some(w) => w,
        None => match std::env::var("SLUICE_PAGE_CACHE_WINDOW") {
            Ok(v) => v
                .parse()
                .map_err(|e| anyhow::anyhow!("SLUICE_PAGE_CACHE_WINDOW: {e}"))?,
            Err(_) => PageCacheWindow::Auto,
        },
    };
    Ok(Backend::Embedded(
        after
            .data_dir
            .clone()
            .or(first.data_dir)
            .or_else(|| std::env::var_os("SLUICE_DATA_DIR").map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR)),
        window,
    ))
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the Kafka protocol (clients such as kcat, librdkafka, kafka-python, Java).
    ///
    /// Settings come from a server.properties file, then --override and the shorthand flags.
    Broker(broker::BrokerArgs),
    /// Create, list, describe, alter and delete topics.
    ///
    /// kafka-topics' --create, --list, --describe, --alter and --delete are accepted in place of
    /// the subcommand: `sluice topics --create --topic t` is `sluice topics create --topic t`.
    Topics(topics::TopicsArgs),
    /// Send lines of stdin as records to a topic.
    Produce(produce::ProduceArgs),
    /// Print records of a topic to stdout.
    Consume(consume::ConsumeArgs),
    /// List, describe and delete consumer groups; reset or delete their offsets.
    Groups(groups::GroupsArgs),
    /// Inspect and verify segment files without opening the log.
    Log(logtool::LogArgs),
    /// Measure producer and consumer throughput and latency.
    Perf(perf::PerfArgs),
    /// List and describe transactions, like kafka-transactions.
    Transactions(transactions::TransactionsArgs),
    /// Run Kafka Connect workers: connectors from config files and a REST API.
    Connect(connect::ConnectArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse_from(topics::rewrite_kafka_topics_args(std::env::args_os()));
    init_logging(
        if matches!(cli.command, Command::Broker(_) | Command::Connect(_)) {
            "info"
        } else {
            // librdkafka logs every failed connection attempt as an error; a client command ends
            // with one line naming the failure (and the last connection error) instead.
            // RUST_LOG=librdkafka=debug shows them.
            "warn,librdkafka=off,rdkafka::client=off"
        },
    );
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        // Output cut short by the reader (`| head`) is not a failure.
        Err(err)
            if err
                .chain()
                .any(|c| c.downcast_ref().is_some_and(is_broken_pipe)) =>
        {
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("error: {}", sluice_log::report(err.as_ref()));
            ExitCode::FAILURE
        }
    }
}

fn init_logging(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .try_init();
}

fn run(cli: Cli) -> anyhow::Result<()> {
    if let Command::Connect(args) = cli.command {
        return connect::run(args, cli.target.data_dir, cli.target.bootstrap);
    }
    let Some(after) = cli.command.target().cloned() else {
        if let Some(flag) = [
            cli.target.data_dir.as_ref().map(|_| "--data-dir"),
            cli.target.bootstrap.as_ref().map(|_| "--bootstrap"),
        ]
        .into_iter()
        .flatten()
        .next()
        {
            let name = if matches!(cli.command, Command::Log(_)) {
                "log reads the segment files it is given"
            } else {
                "broker takes its log directories from --log-dirs or server.properties"
            };
            bail!("{flag} is for client commands: {name}");
        }
        return match cli.command {
            // The log tools read files directly: no client, no runtime.
            Command::Log(args) => logtool::run(args),
            Command::Broker(args) => broker::run(args),
            _ => bail!("a client command without client flags"),
        };
    };
    let mut command = cli.command;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_io()
        .enable_time()
        .build()
        .context("could not start the async runtime")?;
    match backend(cli.target, &after)? {
        Backend::Kafka(servers) => {
            let client = kafka_client(&servers, &mut command)?;
            runtime.block_on(dispatch(client, command))
        }
        Backend::Embedded(dir, window) => {
            let client = open_client(&dir, window)?;
            runtime.block_on(dispatch(client, command))
        }
    }
}

/// Runs a client command; generic so a Kafka-protocol client plugs in beside the embedded one.
async fn dispatch<C: Client>(client: C, command: Command) -> anyhow::Result<()> {
    match command {
        Command::Topics(args) => topics::run(client, args).await,
        Command::Produce(args) => produce::run(client, args).await,
        Command::Consume(args) => consume::run(client, args).await,
        Command::Groups(args) => groups::run(client, args).await,
        Command::Perf(args) => perf::run(client, args).await,
        Command::Log(args) => logtool::run(args),
        Command::Broker(_) => anyhow::bail!("sluice broker is not a client command"),
        Command::Transactions(args) => transactions::run(client, args).await,
        Command::Connect(_) => anyhow::bail!("sluice connect runs its own worker"),
    }
}

/// The Kafka-protocol client of `servers`, taking from `command` the client properties
/// Sluice's configs do not know, for librdkafka.
fn kafka_client(servers: &str, command: &mut Command) -> anyhow::Result<KafkaClient> {
    if servers.trim().is_empty() {
        bail!("--bootstrap needs HOST:PORT");
    }
    let mut client = KafkaClient::new(servers);
    let raw = match command {
        Command::Produce(a) => a.raw_properties(),
        Command::Consume(a) => a.raw_properties(),
        Command::Perf(a) => a.raw_properties(),
        _ => RawProperties::default(),
    };
    for (k, v) in raw.producer {
        tracing::debug!(key = %k, "passing a producer property to librdkafka as it is");
        client = client.with_producer_property(k, v);
    }
    for (k, v) in raw.consumer {
        tracing::debug!(key = %k, "passing a consumer property to librdkafka as it is");
        client = client.with_consumer_property(k, v);
    }
    Ok(client)
}

/// Client properties Sluice's configs do not know: librdkafka's, for the Kafka client.
#[derive(Debug, Default)]
struct RawProperties {
    producer: Vec<(String, String)>,
    consumer: Vec<(String, String)>,
}

/// Removes from `props` the keys of neither `ProducerConfig` nor `ConsumerConfig`
/// (`producer`: which one `props` are for), returning them.
fn take_unknown(props: &mut Vec<(String, String)>, producer: bool) -> Vec<(String, String)> {
    let known = if producer {
        ProducerConfig::known_keys()
    } else {
        ConsumerConfig::known_keys()
    };
    let (raw, kept): (Vec<_>, Vec<_>) = std::mem::take(props)
        .into_iter()
        .partition(|(k, _)| !known.contains(&k.as_str()));
    *props = kept;
    raw
}

fn open_client(
    data_dir: &std::path::Path,
    window: PageCacheWindow,
) -> anyhow::Result<EmbeddedClient> {
    let mut config = LogManagerConfig::new(data_dir);
    config.page_cache_window = window;
    let log = LogManager::open(config)
        .with_context(|| format!("could not open data directory {}", data_dir.display()))?;
    Ok(EmbeddedClient::new(log))
}

/// Parses `key=value` (the value may contain `=`).
fn parse_key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("expected KEY=VALUE, found \"{s}\"")),
    }
}

/// Writes to stdout, treating a closed pipe (`| head`) as a reason to stop, not an error.
fn is_broken_pipe(err: &std::io::Error) -> bool {
    err.kind() == std::io::ErrorKind::BrokenPipe
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn unknown_properties_are_taken_for_librdkafka() {
        let mut props = vec![
            ("linger.ms".to_owned(), "10".to_owned()),
            ("queue.buffering.max.messages".to_owned(), "5".to_owned()),
        ];
        let raw = take_unknown(&mut props, true);
        assert_eq!(props, [("linger.ms".to_owned(), "10".to_owned())]);
        assert_eq!(
            raw,
            [("queue.buffering.max.messages".to_owned(), "5".to_owned())]
        );
        let mut props = vec![("linger.ms".to_owned(), "10".to_owned())];
        assert_eq!(
            take_unknown(&mut props, false).len(),
            1,
            "not a consumer key"
        );
    }

    #[test]
    fn the_page_cache_window_is_auto_unless_set() {
        let window = |args: &[&str]| -> anyhow::Result<PageCacheWindow> {
            let argv = ["sluice"].iter().chain(args);
            let cli = Cli::try_parse_from(argv)?;
            let after = cli.command.target().cloned().unwrap_or_default();
            match backend(cli.target, &after)? {
                Backend::Embedded(_, w) => Ok(w),
                Backend::Kafka(_) => anyhow::bail!("not embedded"),
            }
        };
        assert_eq!(window(&["topics", "list"]).unwrap(), PageCacheWindow::Auto);
        assert_eq!(
            window(&["--page-cache-window", "-1", "topics", "list"]).unwrap(),
            PageCacheWindow::Unbounded
        );
        assert_eq!(
            window(&["topics", "list", "--page-cache-window", "1048576"]).unwrap(),
            PageCacheWindow::Bytes(1 << 20)
        );
        let e = window(&["--page-cache-window", "lots", "topics", "list"]).unwrap_err();
        assert!(e.to_string().contains("\"lots\" is not auto, -1"), "{e}");
    }

    #[test]
    fn key_value_splits_at_the_first_equals() {
        assert_eq!(
            parse_key_value("a=b=c").unwrap(),
            ("a".to_owned(), "b=c".to_owned())
        );
        assert!(parse_key_value("novalue").is_err());
        assert!(parse_key_value("=x").is_err());
    }
}
