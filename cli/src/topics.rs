//! `sluice topics`: create, list, describe, alter and delete topics (kafka-topics).

use std::ffi::OsString;
use std::io::Write;

use anyhow::Context;
use clap::{Args, Subcommand};
use sluice_log::client::{Admin, Client, NewTopic, TopicDescription};

use crate::parse_key_value;

/// Manage topics.
#[derive(Debug, Args)]
pub(crate) struct TopicsArgs {
    /// Where the log is (`--data-dir`, `--bootstrap`), when given after the subcommand.
    #[command(flatten)]
    pub(crate) target: crate::Target,
    #[command(subcommand)]
    command: TopicsCommand,
}

#[derive(Debug, Subcommand)]
enum TopicsCommand {
    /// Create a topic.
    Create {
        /// Topic name.
        #[arg(long)]
        topic: String,
        /// Partition count.
        #[arg(long, default_value_t = 1)]
        partitions: i32,
        /// Config override KEY=VALUE under Kafka's name (repeatable), e.g. retention.ms=60000.
        #[arg(long = "config", value_name = "KEY=VALUE", value_parser = parse_key_value)]
        configs: Vec<(String, String)>,
    },
    /// List topic names.
    List,
    /// Show partitions (offsets, sizes, segments) and configs of one topic or all.
    Describe {
        /// Topic name (default: every topic).
        #[arg(long)]
        topic: Option<String>,
        /// Show every config, not only the overridden ones.
        #[arg(long)]
        all_configs: bool,
    },
    /// Change configs or add partitions.
    #[command(group(clap::ArgGroup::new("change").required(true).multiple(true)
        .args(["configs", "delete_configs", "partitions"])))]
    Alter {
        /// Topic name.
        #[arg(long)]
        topic: String,
        /// Config to set, KEY=VALUE (repeatable).
        #[arg(long = "config", value_name = "KEY=VALUE", value_parser = parse_key_value)]
        configs: Vec<(String, String)>,
        /// Config to return to its default (repeatable).
        #[arg(long = "delete-config", value_name = "KEY")]
        delete_configs: Vec<String>,
        /// New total partition count (partitions can only be added).
        #[arg(long)]
        partitions: Option<i32>,
    },
    /// Delete a topic and its data.
    Delete {
        /// Topic name.
        #[arg(long)]
        topic: String,
    },
}

const KAFKA_ACTIONS: [(&str, &str); 5] = [
    ("--create", "create"),
    ("--list", "list"),
    ("--describe", "describe"),
    ("--alter", "alter"),
    ("--delete", "delete"),
];

/// Turns `sluice topics ... --create ...` (kafka-topics' spelling) into `sluice topics create ...`.
/// Anything else passes through untouched.
pub(crate) fn rewrite_kafka_topics_args(args: impl IntoIterator<Item = OsString>) -> Vec<OsString> {
    let mut args: Vec<OsString> = args.into_iter().collect();
    let Some(at) = args.iter().position(|a| a == "topics") else {
        return args;
    };
    let action = args[at + 1..].iter().enumerate().find_map(|(i, a)| {
        KAFKA_ACTIONS
            .iter()
            .find(|(flag, _)| a == flag)
            .map(|(_, sub)| (at + 1 + i, *sub))
    });
    let has_subcommand = args
        .get(at + 1)
        .is_some_and(|a| KAFKA_ACTIONS.iter().any(|(_, sub)| a == sub));
    if let (Some((i, sub)), false) = (action, has_subcommand) {
        args.remove(i);
        args.insert(at + 1, sub.into());
    }
    args
}

pub(crate) async fn run<C: Client>(client: C, args: TopicsArgs) -> anyhow::Result<()> {
    let admin = client.admin()?;
    let mut out = std::io::stdout().lock();
    match args.command {
        TopicsCommand::Create {
            topic,
            partitions,
            configs,
        } => {
            admin
                .create_topics(vec![NewTopic {
                    name: topic.clone(),
                    partitions,
                    configs,
                }])
                .await?;
            writeln!(out, "Created topic {topic}.")?;
        }
        TopicsCommand::List => {
            for t in admin.list_topics().await? {
                writeln!(out, "{t}")?;
            }
        }
        TopicsCommand::Describe { topic, all_configs } => {
            let names = match topic {
                Some(t) => vec![t],
                None => admin.list_topics().await?,
            };
            for name in names {
                let d = admin.describe_topic(&name).await?;
                out.write_all(format_description(&d, all_configs).as_bytes())?;
            }
        }
        TopicsCommand::Alter {
            topic,
            configs,
            delete_configs,
            partitions,
        } => {
            if !configs.is_empty() || !delete_configs.is_empty() {
                admin
                    .alter_configs(&topic, configs, delete_configs)
                    .await
                    .with_context(|| format!("could not alter configs of topic \"{topic}\""))?;
            }
            if let Some(total) = partitions {
                admin
                    .create_partitions(&topic, total)
                    .await
                    .with_context(|| format!("could not add partitions to topic \"{topic}\""))?;
            }
        }
        TopicsCommand::Delete { topic } => admin.delete_topics(vec![topic]).await?,
    }
    out.flush()?;
    Ok(())
}

/// kafka-topics' describe layout (leader; -1 on the embedded log), with the partition's offsets
/// in place of replicas.
fn format_description(d: &TopicDescription, all_configs: bool) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "Topic: {}\tPartitionCount: {}\tInternal: {}",
        d.name,
        d.partitions.len(),
        d.internal
    );
    for p in &d.partitions {
        let _ = write!(
            s,
            "\tPartition: {}\tLeader: {}\tLogStartOffset: {}\tLogEndOffset: {}",
            p.partition, p.leader, p.log_start_offset, p.log_end_offset
        );
        if let Some(why) = &p.offline {
            let _ = write!(s, "\tOffline: {why}");
        }
        s.push('\n');
    }
    let shown: Vec<_> = d
        .configs
        .iter()
        .filter(|c| all_configs || !c.is_default)
        .collect();
    if shown.is_empty() {
        s.push_str("\tConfigs: (none overridden)\n");
    } else {
        s.push_str("\tConfigs:\n");
        for c in shown {
            let default = if all_configs && c.is_default {
                " (default)"
            } else {
                ""
            };
            let _ = writeln!(s, "\t\t{}={}{default}", c.name, c.value);
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewrite(args: &[&str]) -> Vec<String> {
        rewrite_kafka_topics_args(args.iter().map(OsString::from))
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect()
    }

    #[test]
    fn kafka_topics_flags_become_subcommands() {
        assert_eq!(
            rewrite(&["sluice", "topics", "--topic", "t", "--create"]),
            ["sluice", "topics", "create", "--topic", "t"]
        );
        assert_eq!(
            rewrite(&["sluice", "--data-dir", "d", "topics", "--list"]),
            ["sluice", "--data-dir", "d", "topics", "list"]
        );
        // --delete-config is not --delete; a real subcommand is left alone.
        assert_eq!(
            rewrite(&["sluice", "topics", "alter", "--delete-config", "x"]),
            ["sluice", "topics", "alter", "--delete-config", "x"]
        );
        assert_eq!(
            rewrite(&["sluice", "produce", "t"]),
            ["sluice", "produce", "t"]
        );
    }
}
