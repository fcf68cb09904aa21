//! `sluice consume`: records of a topic to stdout (kafka-console-consumer).

use std::collections::BTreeMap;
use std::io::{BufWriter, Write};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use sluice_log::TopicPartition;
use sluice_log::client::config::{AutoOffsetReset, ConsumerConfig};
use sluice_log::client::{Admin, Client, Consumer, ConsumerRecord};

use crate::{is_broken_pipe, parse_key_value};

/// Print records of a topic, one per line.
#[derive(Debug, Args)]
pub(crate) struct ConsumeArgs {
    /// Where the log is (`--data-dir`, `--bootstrap`), when given after the subcommand.
    #[command(flatten)]
    pub(crate) target: crate::Target,
    /// Topic to read.
    topic: String,
    /// Start at the log start of each partition (default: only new records).
    #[arg(long, conflicts_with = "offset")]
    from_beginning: bool,
    /// Start at this offset of --partition: a number, earliest or latest.
    #[arg(long, requires = "partition", value_parser = parse_start)]
    offset: Option<Start>,
    /// Read only this partition (default: all partitions).
    #[arg(long, conflicts_with = "group")]
    partition: Option<i32>,
    /// Join this consumer group: read the partitions it assigns, from its committed offsets
    /// (else from the start with --from-beginning, or the end), committing what is printed.
    #[arg(long, conflicts_with = "offset")]
    group: Option<String>,
    /// Exit after this many records.
    #[arg(long)]
    max_messages: Option<u64>,
    /// Exit (successfully) when no record arrives for this long (default: run until Ctrl-C).
    #[arg(long, value_name = "MS")]
    timeout_ms: Option<u64>,
    /// Output per record: %k key, %v value, %h headers (k=v,...), %t timestamp, %o offset,
    /// %p partition, %T topic, %% a percent sign; \t and \n escapes. A newline follows each record.
    #[arg(long, default_value = "%v", conflicts_with_all = ["json", "print_key"])]
    format: String,
    /// Print each record as one JSON object (bytes as lossy UTF-8 strings).
    #[arg(long, conflicts_with = "print_key")]
    json: bool,
    /// Shortcut for --format '%k\t%v'.
    #[arg(long)]
    print_key: bool,
    /// Consumer config KEY=VALUE under Kafka's name (repeatable), e.g. max.poll.records=100;
    /// with --bootstrap also librdkafka's properties, passed as they are.
    #[arg(long = "consumer-property", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    consumer_properties: Vec<(String, String)>,
}

/// Where to start reading one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Start {
    Offset(i64),
    Earliest,
    Latest,
}

fn parse_start(s: &str) -> Result<Start, String> {
    match s {
        "earliest" => Ok(Start::Earliest),
        "latest" => Ok(Start::Latest),
        n => match n.parse::<i64>() {
            Ok(o) if o >= 0 => Ok(Start::Offset(o)),
            _ => Err(format!(
                "expected a non-negative offset, earliest or latest, found \"{s}\""
            )),
        },
    }
}

/// One piece of a parsed `--format`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Literal(Vec<u8>),
    Key,
    Value,
    Headers,
    Timestamp,
    Offset,
    Partition,
    Topic,
}

/// A parsed `--format` string.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Format(Vec<Piece>);

impl Format {
    fn parse(s: &str) -> Format {
        let mut pieces = Vec::new();
        let mut lit = Vec::new();
        let mut chars = s.chars();
        while let Some(c) = chars.next() {
            let piece = match c {
                '%' => match chars.next() {
                    Some('k') => Piece::Key,
                    Some('v') => Piece::Value,
                    Some('h') => Piece::Headers,
                    Some('t') => Piece::Timestamp,
                    Some('o') => Piece::Offset,
                    Some('p') => Piece::Partition,
                    Some('T') => Piece::Topic,
                    Some('%') => {
                        lit.push(b'%');
                        continue;
                    }
                    other => {
                        lit.push(b'%');
                        if let Some(o) = other {
                            lit.extend_from_slice(o.encode_utf8(&mut [0; 4]).as_bytes());
                        }
                        continue;
                    }
                },
                '\\' => {
                    match chars.next() {
                        Some('t') => lit.push(b'\t'),
                        Some('n') => lit.push(b'\n'),
                        Some('r') => lit.push(b'\r'),
                        Some('\\') => lit.push(b'\\'),
                        other => {
                            lit.push(b'\\');
                            if let Some(o) = other {
                                lit.extend_from_slice(o.encode_utf8(&mut [0; 4]).as_bytes());
                            }
                        }
                    }
                    continue;
                }
                c => {
                    lit.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                    continue;
                }
            };
            if !lit.is_empty() {
                pieces.push(Piece::Literal(std::mem::take(&mut lit)));
            }
            pieces.push(piece);
        }
        if !lit.is_empty() {
            pieces.push(Piece::Literal(lit));
        }
        Format(pieces)
    }

    fn write(&self, out: &mut impl Write, r: &ConsumerRecord) -> std::io::Result<()> {
        fn nullable(out: &mut impl Write, b: Option<&[u8]>) -> std::io::Result<()> {
            out.write_all(b.unwrap_or(b"null"))
        }
        for p in &self.0 {
            match p {
                Piece::Literal(l) => out.write_all(l)?,
                Piece::Key => nullable(out, r.key.as_deref())?,
                Piece::Value => nullable(out, r.value.as_deref())?,
                Piece::Headers => {
                    for (i, h) in r.headers.iter().enumerate() {
                        if i > 0 {
                            out.write_all(b",")?;
                        }
                        out.write_all(h.key.as_bytes())?;
                        out.write_all(b"=")?;
                        nullable(out, h.value.as_deref())?;
                    }
                }
                Piece::Timestamp => write!(out, "{}", r.timestamp)?,
                Piece::Offset => write!(out, "{}", r.offset)?,
                Piece::Partition => write!(out, "{}", r.partition)?,
                Piece::Topic => out.write_all(r.topic.as_bytes())?,
            }
        }
        out.write_all(b"\n")
    }
}

fn lossy(b: Option<&[u8]>) -> serde_json::Value {
    match b {
        Some(b) => serde_json::Value::String(String::from_utf8_lossy(b).into_owned()),
        None => serde_json::Value::Null,
    }
}

fn to_json(r: &ConsumerRecord) -> serde_json::Value {
    let headers: Vec<serde_json::Value> = r
        .headers
        .iter()
        .map(|h| serde_json::json!({ "key": h.key, "value": lossy(h.value.as_deref()) }))
        .collect();
    serde_json::json!({
        "topic": &*r.topic,
        "partition": r.partition,
        "offset": r.offset,
        "timestamp": r.timestamp,
        "timestampType": r.timestamp_type.as_str(),
        "key": lossy(r.key.as_deref()),
        "value": lossy(r.value.as_deref()),
        "headers": headers,
    })
}

impl ConsumeArgs {
    /// The `--consumer-property` keys Sluice's consumer config does not know (librdkafka's).
    pub(crate) fn raw_properties(&mut self) -> crate::RawProperties {
        crate::RawProperties {
            producer: Vec::new(),
            consumer: crate::take_unknown(&mut self.consumer_properties, false),
        }
    }
}

pub(crate) async fn run<C: Client>(client: C, args: ConsumeArgs) -> anyhow::Result<()> {
    let mut config =
        ConsumerConfig::from_pairs(args.consumer_properties.iter().map(|(k, v)| (k, v)))?;
    let mut consumer = match &args.group {
        Some(group) => {
            config.group_id = Some(group.clone());
            if args.from_beginning {
                config.auto_offset_reset = AutoOffsetReset::Earliest;
            }
            // Commits follow what is printed (below), not what poll returned.
            config.enable_auto_commit = false;
            let mut consumer = client.consumer(config)?;
            consumer.subscribe(vec![args.topic.clone()])?;
            consumer
        }
        None => {
            let partitions = match args.partition {
                Some(p) => vec![TopicPartition::new(args.topic.as_str(), p)],
                None => {
                    let d = client.admin()?.describe_topic(&args.topic).await?;
                    d.partitions
                        .iter()
                        .map(|p| TopicPartition::new(args.topic.as_str(), p.partition))
                        .collect()
                }
            };
            let mut consumer = client.consumer(config)?;
            consumer.assign(partitions.clone())?;
            match args.offset {
                Some(Start::Offset(o)) => consumer.seek(&partitions[0], o)?,
                Some(Start::Earliest) => consumer.seek_to_beginning(&[]).await?,
                Some(Start::Latest) => consumer.seek_to_end(&[]).await?,
                None if args.from_beginning => consumer.seek_to_beginning(&[]).await?,
                None => consumer.seek_to_end(&[]).await?,
            }
            consumer
        }
    };
    let mut printed_up_to: BTreeMap<TopicPartition, i64> = BTreeMap::new();
    let format = if args.print_key {
        Format::parse("%k\t%v")
    } else {
        Format::parse(&args.format)
    };
    let idle_limit = args.timeout_ms.map(Duration::from_millis);
    let mut out = BufWriter::with_capacity(64 << 10, std::io::stdout().lock());
    let mut printed = 0u64;
    let mut last_record = tokio::time::Instant::now();
    'outer: loop {
        if args.max_messages.is_some_and(|m| printed >= m) {
            break;
        }
        let wait = match idle_limit {
            Some(limit) => {
                let idle = last_record.elapsed();
                if idle >= limit {
                    break;
                }
                (limit - idle).min(Duration::from_secs(1))
            }
            None => Duration::from_secs(1),
        };
        let records = consumer.poll(wait).await?;
        if records.is_empty() {
            continue;
        }
        last_record = tokio::time::Instant::now();
        for r in &records {
            if args.max_messages.is_some_and(|m| printed >= m) {
                break;
            }
            let written = if args.json {
                serde_json::to_writer(&mut out, &to_json(r))
                    .map_err(std::io::Error::from)
                    .and_then(|()| out.write_all(b"\n"))
            } else {
                format.write(&mut out, r)
            };
            match written {
                Ok(()) => {
                    printed += 1;
                    printed_up_to.insert(
                        TopicPartition {
                            topic: Arc::clone(&r.topic),
                            partition: r.partition,
                        },
                        r.offset + 1,
                    );
                }
                Err(e) if is_broken_pipe(&e) => break 'outer,
                Err(e) => return Err(e).context("could not write to stdout"),
            }
        }
        match out.flush() {
            Ok(()) => {}
            Err(e) if is_broken_pipe(&e) => break,
            Err(e) => return Err(e).context("could not write to stdout"),
        }
        if args.group.is_some() && !printed_up_to.is_empty() {
            // The final commit_sync covers these too, should the process end first.
            let offsets = printed_up_to.iter().map(|(tp, o)| (tp.clone(), *o));
            consumer.commit_async(Some(offsets.collect()))?;
        }
    }
    if args.group.is_some() {
        consumer
            .commit_sync(Some(printed_up_to.into_iter().collect()))
            .await?;
        consumer.close().await?;
    }
    match out.flush() {
        Err(e) if !is_broken_pipe(&e) => bail!("could not write to stdout: {e}"),
        _ => {}
    }
    eprintln!("Processed a total of {printed} messages");
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bytes::Bytes;
    use sluice_log::TimestampType;
    use sluice_log::client::Header;

    use super::*;

    fn record(key: Option<&'static str>, value: Option<&'static str>) -> ConsumerRecord {
        ConsumerRecord {
            topic: Arc::from("t"),
            partition: 2,
            offset: 7,
            timestamp: 1000,
            timestamp_type: TimestampType::CreateTime,
            key: key.map(Bytes::from),
            value: value.map(Bytes::from),
            headers: vec![Header::new("a", "1"), Header::new("b", "2")],
        }
    }

    fn render(format: &str, r: &ConsumerRecord) -> String {
        let mut out = Vec::new();
        Format::parse(format).write(&mut out, r).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn format_placeholders_and_escapes() {
        let r = record(Some("k"), Some("v"));
        assert_eq!(
            render(r"%T/%p@%o %t %k=%v [%h]\t100%%\n", &r),
            "t/2@7 1000 k=v [a=1,b=2]\t100%\n\n"
        );
        assert_eq!(render("%v", &record(None, None)), "null\n");
        assert_eq!(render("%x \\q", &r), "%x \\q\n");
    }

    #[test]
    fn json_has_every_field() {
        let j = to_json(&record(None, Some("v")));
        assert_eq!(j["key"], serde_json::Value::Null);
        assert_eq!(j["value"], "v");
        assert_eq!(j["offset"], 7);
        assert_eq!(j["headers"][1]["key"], "b");
    }

    #[test]
    fn start_parses_offsets_and_names() {
        assert_eq!(parse_start("5"), Ok(Start::Offset(5)));
        assert_eq!(parse_start("earliest"), Ok(Start::Earliest));
        assert!(parse_start("-1").is_err());
    }
}
