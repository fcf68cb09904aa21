//! `sluice groups`: list, describe, delete consumer groups and reset their offsets
//! (kafka-consumer-groups).

use std::io::Write;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use sluice_log::TopicPartition;
use sluice_log::client::{Admin, Client, ResetSpec};

/// Manage consumer groups.
#[derive(Debug, Args)]
pub(crate) struct GroupsArgs {
    /// Where the log is (`--data-dir`, `--bootstrap`), when given after the subcommand.
    #[command(flatten)]
    pub(crate) target: crate::Target,
    #[command(subcommand)]
    command: GroupsCommand,
}

#[derive(Debug, Subcommand)]
enum GroupsCommand {
    /// List groups with their state.
    List,
    /// Show each partition's committed offset, log end, lag and consumer.
    Describe {
        /// The group.
        #[arg(long)]
        group: String,
    },
    /// Delete a group without members, with its committed offsets.
    Delete {
        /// The group.
        #[arg(long)]
        group: String,
    },
    /// Delete a group's committed offsets of a topic (all its partitions, or those given),
    /// like kafka-consumer-groups --delete-offsets; refused for partitions of a topic the
    /// group's members are subscribed to.
    DeleteOffsets {
        /// The group.
        #[arg(long)]
        group: String,
        /// The topic.
        #[arg(long)]
        topic: String,
        /// Only these partitions (comma-separated; default: every partition of the topic).
        #[arg(long, value_delimiter = ',')]
        partitions: Vec<i32>,
    },
    /// Move a group's committed offsets (the group must have no members). Prints the plan;
    /// commits it only with --execute.
    #[command(group(clap::ArgGroup::new("spec").required(true)
        .args(["to_earliest", "to_latest", "to_datetime", "shift_by", "to_offset"])))]
    ResetOffsets {
        /// The group.
        #[arg(long)]
        group: String,
        /// The topic whose partitions to reset.
        #[arg(long)]
        topic: String,
        /// To the log start.
        #[arg(long)]
        to_earliest: bool,
        /// To the log end.
        #[arg(long)]
        to_latest: bool,
        /// To the first record at or after this UTC time, YYYY-MM-DDTHH:MM:SS[.SSS].
        #[arg(long, value_name = "DATETIME", value_parser = parse_datetime)]
        to_datetime: Option<i64>,
        /// By this many records from the committed offset (negative: back).
        #[arg(long, value_name = "N", allow_hyphen_values = true)]
        shift_by: Option<i64>,
        /// To this offset.
        #[arg(long, value_name = "N")]
        to_offset: Option<i64>,
        /// Commit the new offsets (default: dry run).
        #[arg(long)]
        execute: bool,
    },
}

pub(crate) async fn run<C: Client>(client: C, args: GroupsArgs) -> anyhow::Result<()> {
    let admin = client.admin()?;
    let mut out = std::io::stdout().lock();
    match args.command {
        GroupsCommand::List => {
            for g in admin.list_groups().await? {
                writeln!(out, "{}\t{}", g.group_id, g.state.as_str())?;
            }
        }
        GroupsCommand::Describe { group } => {
            let d = admin
                .describe_group(&group)
                .await
                .with_context(|| format!("could not describe group \"{group}\""))?;
            if d.members.is_empty() {
                eprintln!("Consumer group '{group}' has no active members.");
            }
            let lag = admin.lag(&group).await?;
            let mut rows = vec![[
                "GROUP".to_owned(),
                "TOPIC".into(),
                "PARTITION".into(),
                "CURRENT-OFFSET".into(),
                "LOG-END-OFFSET".into(),
                "LAG".into(),
                "CONSUMER-ID".into(),
            ]];
            let dash = |o: Option<i64>| o.map_or_else(|| "-".to_owned(), |o| o.to_string());
            for l in lag {
                rows.push([
                    group.clone(),
                    l.tp.topic.to_string(),
                    l.tp.partition.to_string(),
                    dash(l.committed),
                    l.log_end.to_string(),
                    dash(l.lag),
                    l.member_id.unwrap_or_else(|| "-".into()),
                ]);
            }
            write_table(&mut out, &rows)?;
        }
        GroupsCommand::Delete { group } => {
            let results = admin.delete_groups(vec![group.clone()]).await?;
            for r in results {
                r.with_context(|| format!("could not delete group \"{group}\""))?;
            }
            writeln!(
                out,
                "Deletion of requested consumer groups ('{group}') was successful."
            )?;
        }
        GroupsCommand::DeleteOffsets {
            group,
            topic,
            partitions,
        } => {
            let partitions = if partitions.is_empty() {
                admin
                    .describe_topic(&topic)
                    .await
                    .with_context(|| format!("could not describe topic \"{topic}\""))?
                    .partitions
                    .iter()
                    .map(|p| p.partition)
                    .collect()
            } else {
                partitions
            };
            let tps: Vec<TopicPartition> = partitions
                .iter()
                .map(|&p| TopicPartition::new(topic.as_str(), p))
                .collect();
            admin
                .delete_offsets(&group, tps.clone())
                .await
                .with_context(|| format!("could not delete the offsets of group \"{group}\""))?;
            let mut rows = vec![["TOPIC".to_owned(), "PARTITION".into(), "STATUS".into()]];
            for tp in tps {
                rows.push([
                    tp.topic.to_string(),
                    tp.partition.to_string(),
                    "Successful".into(),
                ]);
            }
            write_table(&mut out, &rows)?;
        }
        GroupsCommand::ResetOffsets {
            group,
            topic,
            to_earliest,
            to_latest,
            to_datetime,
            shift_by,
            to_offset,
            execute,
        } => {
            let spec = match (to_earliest, to_latest, to_datetime, shift_by, to_offset) {
                (true, ..) => ResetSpec::Earliest,
                (_, true, ..) => ResetSpec::Latest,
                (_, _, Some(ts), ..) => ResetSpec::ToDatetime(ts),
                (_, _, _, Some(n), _) => ResetSpec::ShiftBy(n),
                (.., Some(o)) => ResetSpec::ToOffset(o),
                _ => bail!(
                    "one of --to-earliest, --to-latest, --to-datetime, --shift-by, --to-offset is required"
                ),
            };
            let d = admin.describe_topic(&topic).await?;
            let tps = d
                .partitions
                .iter()
                .map(|p| TopicPartition::new(topic.as_str(), p.partition))
                .collect();
            let planned = admin
                .reset_offsets(&group, tps, spec, !execute)
                .await
                .with_context(|| format!("could not reset the offsets of group \"{group}\""))?;
            let mut rows = vec![[
                "GROUP".to_owned(),
                "TOPIC".into(),
                "PARTITION".into(),
                "NEW-OFFSET".into(),
            ]];
            for (tp, o) in planned {
                rows.push([
                    group.clone(),
                    tp.topic.to_string(),
                    tp.partition.to_string(),
                    o.to_string(),
                ]);
            }
            write_table(&mut out, &rows)?;
            if !execute {
                eprintln!("Dry run: add --execute to commit these offsets.");
            }
        }
    }
    Ok(())
}

/// Left-aligned columns separated by two spaces, as kafka-consumer-groups prints them.
fn write_table<const N: usize>(out: &mut impl Write, rows: &[[String; N]]) -> std::io::Result<()> {
    let mut widths = [0; N];
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    for row in rows {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        writeln!(out, "{}", line.join("  ").trim_end())?;
    }
    Ok(())
}

/// `YYYY-MM-DDTHH:MM:SS[.SSS]` in UTC to ms since the epoch.
fn parse_datetime(s: &str) -> Result<i64, String> {
    let bad = || format!("expected YYYY-MM-DDTHH:MM:SS[.SSS], found \"{s}\"");
    let (date, time) = s.split_once('T').ok_or_else(bad)?;
    let num = |x: &str| x.parse::<i64>().map_err(|_| bad());
    let d: Vec<&str> = date.split('-').collect();
    let (time, millis) = match time.split_once('.') {
        Some((t, ms)) if ms.len() == 3 => (t, num(ms)?),
        Some(_) => return Err(bad()),
        None => (time, 0),
    };
    let t: Vec<&str> = time.split(':').collect();
    let ([y, mo, da], [h, mi, se]) = (d.as_slice(), t.as_slice()) else {
        return Err(bad());
    };
    let (y, mo, da, h, mi, se) = (num(y)?, num(mo)?, num(da)?, num(h)?, num(mi)?, num(se)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&da) || h > 23 || mi > 59 || se > 59 {
        return Err(bad());
    }
    if h < 0 || mi < 0 || se < 0 {
        return Err(bad());
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + da - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Ok(((days * 24 + h) * 60 + mi) * 60_000 + se * 1000 + millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetimes_are_utc_millis() {
        assert_eq!(parse_datetime("1970-01-01T00:00:00"), Ok(0));
        assert_eq!(
            parse_datetime("2024-02-29T12:34:56.789"),
            Ok(1_709_210_096_789)
        );
        assert!(parse_datetime("2024-13-01T00:00:00").is_err());
        assert!(parse_datetime("yesterday").is_err());
    }
}
