//! `sluice produce`: lines of stdin become records (kafka-console-producer).

use std::collections::VecDeque;
use std::io::{BufRead, Write};
use std::sync::Arc;

use anyhow::{Context, bail};
use bytes::Bytes;
use clap::Args;
use sluice_log::client::config::ProducerConfig;
use sluice_log::client::{
    Client, DeliveryFuture, Header, Producer, ProducerRecord, RecordMetadata,
};

use crate::parse_key_value;

/// Deliveries awaited before reading on, so memory stays bounded on huge inputs.
const MAX_PENDING: usize = 100_000;

/// Read lines from stdin and send each as a record.
#[derive(Debug, Args)]
pub(crate) struct ProduceArgs {
    /// Where the log is (`--data-dir`, `--bootstrap`), when given after the subcommand.
    #[command(flatten)]
    pub(crate) target: crate::Target,
    /// Topic to send to.
    topic: String,
    /// Split each line into key and value at the first SEP (implies --parse-key).
    #[arg(long, value_name = "SEP")]
    key_separator: Option<String>,
    /// Read a key from each line, before the key separator (default: a tab).
    #[arg(long)]
    parse_key: bool,
    /// Acknowledgements to wait for.
    #[arg(long, value_parser = ["0", "1", "all", "-1"])]
    acks: Option<String>,
    /// Send every record to this partition (default: by key, else sticky).
    #[arg(long)]
    partition: Option<i32>,
    /// Header KEY=VALUE added to every record (repeatable).
    #[arg(long = "header", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    headers: Vec<(String, String)>,
    /// Producer config KEY=VALUE under Kafka's name (repeatable), e.g. linger.ms=10; with
    /// --bootstrap also librdkafka's properties, passed as they are.
    #[arg(long = "producer-property", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    producer_properties: Vec<(String, String)>,
    /// Compression codec of the batches.
    #[arg(long, value_parser = ["none", "gzip", "snappy", "lz4", "zstd"])]
    compression: Option<String>,
    /// Print topic-partition@offset of every record sent.
    #[arg(long, short)]
    verbose: bool,
}

/// How lines become records.
#[derive(Debug)]
struct LineParser {
    topic: Arc<str>,
    separator: Option<Vec<u8>>,
    partition: Option<i32>,
    headers: Vec<Header>,
}

impl LineParser {
    fn record(&self, line: Bytes, number: u64) -> anyhow::Result<ProducerRecord> {
        let (key, value) = match &self.separator {
            None => (None, line),
            Some(sep) => match find(&line, sep) {
                Some(at) => (Some(line.slice(..at)), line.slice(at + sep.len()..)),
                None => bail!("no key separator found on line number {number}"),
            },
        };
        Ok(ProducerRecord {
            topic: Arc::clone(&self.topic),
            partition: self.partition,
            key,
            value: Some(value),
            headers: self.headers.clone(),
            timestamp: None,
        })
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return None;
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Reads stdin line by line on a thread (without the line terminator, as Java's `readLine`).
fn spawn_line_reader() -> tokio::sync::mpsc::Receiver<std::io::Result<Bytes>> {
    let (tx, rx) = tokio::sync::mpsc::channel(1024);
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        loop {
            let mut buf = Vec::new();
            match stdin.read_until(b'\n', &mut buf) {
                Ok(0) => return,
                Ok(_) => {
                    if buf.last() == Some(&b'\n') {
                        buf.pop();
                    }
                    if buf.last() == Some(&b'\r') {
                        buf.pop();
                    }
                    if tx.blocking_send(Ok(Bytes::from(buf))).is_err() {
                        return;
                    }
                }
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    return;
                }
            }
        }
    });
    rx
}

/// Outcomes of the records sent so far.
#[derive(Debug, Default)]
struct Outcomes {
    sent: u64,
    failed: u64,
    first_error: Option<String>,
    verbose: bool,
}

impl Outcomes {
    fn note(&mut self, result: sluice_log::Result<RecordMetadata>) -> std::io::Result<()> {
        self.sent += 1;
        match result {
            Ok(md) => {
                if self.verbose {
                    let mut out = std::io::stdout().lock();
                    writeln!(out, "{}-{}@{}", md.topic, md.partition, md.offset)?;
                }
            }
            Err(e) => {
                self.failed += 1;
                self.first_error
                    .get_or_insert_with(|| sluice_log::report(&e));
            }
        }
        Ok(())
    }
}

enum Event {
    Line(Option<std::io::Result<Bytes>>),
    Delivered(sluice_log::Result<RecordMetadata>),
}

impl ProduceArgs {
    /// The `--producer-property` keys Sluice's producer config does not know (librdkafka's).
    pub(crate) fn raw_properties(&mut self) -> crate::RawProperties {
        crate::RawProperties {
            producer: crate::take_unknown(&mut self.producer_properties, true),
            consumer: Vec::new(),
        }
    }
}

pub(crate) async fn run<C: Client>(client: C, args: ProduceArgs) -> anyhow::Result<()> {
    let mut pairs = args.producer_properties.clone();
    if let Some(acks) = &args.acks {
        pairs.push(("acks".into(), acks.clone()));
    }
    if let Some(c) = &args.compression {
        pairs.push(("compression.type".into(), c.clone()));
    }
    let config = ProducerConfig::from_pairs(pairs)?;
    let producer = client.producer(config)?;
    // Fail before reading stdin if the topic or partition does not exist.
    let count = producer.partition_count(&args.topic).await?;
    if let Some(p) = args.partition
        && !(0..count).contains(&p)
    {
        bail!(
            "partition {p} of topic \"{}\" does not exist (it has {count})",
            args.topic
        );
    }
    let separator = match (&args.key_separator, args.parse_key) {
        (Some(sep), _) if sep.is_empty() => bail!("--key-separator must not be empty"),
        (Some(sep), _) => Some(sep.as_bytes().to_vec()),
        (None, true) => Some(b"\t".to_vec()),
        (None, false) => None,
    };
    let parser = LineParser {
        topic: Arc::from(args.topic.as_str()),
        separator,
        partition: args.partition,
        headers: args
            .headers
            .iter()
            .map(|(k, v)| Header::new(k.clone(), Bytes::from(v.clone())))
            .collect(),
    };
    let mut lines = spawn_line_reader();
    let mut pending: VecDeque<DeliveryFuture> = VecDeque::new();
    let mut outcomes = Outcomes {
        verbose: args.verbose,
        ..Outcomes::default()
    };
    let mut number = 0u64;
    let mut stop: Option<anyhow::Error> = None;
    loop {
        let event = if pending.len() >= MAX_PENDING {
            match pending.front_mut() {
                Some(f) => Event::Delivered(f.await),
                None => continue,
            }
        } else {
            let front = async {
                match pending.front_mut() {
                    Some(f) => f.await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                r = front => Event::Delivered(r),
                l = lines.recv() => Event::Line(l),
            }
        };
        match event {
            Event::Delivered(r) => {
                pending.pop_front();
                outcomes.note(r)?;
            }
            Event::Line(None) => break,
            Event::Line(Some(Err(e))) => {
                stop = Some(anyhow::Error::new(e).context("could not read stdin"));
                break;
            }
            Event::Line(Some(Ok(line))) => {
                number += 1;
                let sent = match parser.record(line, number) {
                    Ok(record) => producer.send(record).await.map_err(anyhow::Error::from),
                    Err(e) => Err(e),
                };
                match sent {
                    Ok(f) => pending.push_back(f),
                    Err(e) => {
                        stop = Some(e);
                        break;
                    }
                }
            }
        }
    }
    // Whatever happened, what was sent gets flushed and accounted for.
    let flushed = producer.flush().await;
    while let Some(f) = pending.pop_front() {
        outcomes.note(f.await)?;
    }
    std::io::stdout().flush()?;
    if let Some(e) = stop {
        return Err(e);
    }
    if outcomes.failed > 0 {
        bail!(
            "{} of {} records failed; the first: {}",
            outcomes.failed,
            outcomes.sent,
            outcomes.first_error.unwrap_or_default()
        );
    }
    flushed.context("flush failed")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parser(sep: Option<&str>) -> LineParser {
        LineParser {
            topic: Arc::from("t"),
            separator: sep.map(|s| s.as_bytes().to_vec()),
            partition: None,
            headers: vec![Header::new("h", "v")],
        }
    }

    #[test]
    fn lines_split_at_the_first_separator() {
        let r = parser(Some("::"))
            .record(Bytes::from_static(b"k::v::w"), 1)
            .unwrap();
        assert_eq!(r.key.as_deref(), Some(&b"k"[..]));
        assert_eq!(r.value.as_deref(), Some(&b"v::w"[..]));
        assert_eq!(r.headers, [Header::new("h", "v")]);
        let r = parser(None).record(Bytes::from_static(b"k::v"), 1).unwrap();
        assert_eq!((r.key, r.value.as_deref()), (None, Some(&b"k::v"[..])));
        let err = parser(Some("\t"))
            .record(Bytes::from_static(b"nokey"), 7)
            .unwrap_err();
        assert!(err.to_string().contains("line number 7"), "{err}");
    }
}
