//! `sluice transactions list|describe`: what the transaction coordinator knows, like
//! kafka-transactions.

use anyhow::Context;
use clap::{Args, Subcommand};
use sluice_log::client::{Admin, Client, TransactionDescription, TransactionListing};

/// Arguments of `sluice transactions`.
#[derive(Debug, Args)]
pub(crate) struct TransactionsArgs {
    /// Where the log is (`--data-dir`, `--bootstrap`), when given after the subcommand.
    #[command(flatten)]
    pub(crate) target: crate::Target,
    #[command(subcommand)]
    command: TransactionsCommand,
}

#[derive(Debug, Subcommand)]
enum TransactionsCommand {
    /// List transactional ids with their producer id, epoch and state.
    List,
    /// Show one transactional id: producer, state, timeout, partitions of the open transaction.
    Describe {
        /// The transactional.id.
        #[arg(long = "transactional-id")]
        transactional_id: String,
    },
}

/// Runs against the embedded log or, with `--bootstrap`, a cluster (ListTransactions and
/// DescribeTransactions over the Kafka protocol).
pub(crate) async fn run<C: Client>(client: C, args: TransactionsArgs) -> anyhow::Result<()> {
    let admin = client
        .admin()
        .context("could not create the admin client")?;
    match args.command {
        TransactionsCommand::List => {
            let listed = admin
                .list_transactions()
                .await
                .context("could not list transactions")?;
            print!("{}", list_table(&listed));
        }
        TransactionsCommand::Describe { transactional_id } => {
            let d = admin
                .describe_transaction(&transactional_id)
                .await
                .with_context(|| format!("could not describe transaction {transactional_id:?}"))?;
            print!("{}", describe_text(&d, now_ms()));
        }
    }
    Ok(())
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// kafka-transactions' `list` table.
fn list_table(listed: &[TransactionListing]) -> String {
    let mut out = format!(
        "{:<32} {:>12} {}\n",
        "TransactionalId", "ProducerId", "TransactionState"
    );
    for t in listed {
        out.push_str(&format!(
            "{:<32} {:>12} {}\n",
            t.transactional_id, t.producer_id, t.state
        ));
    }
    out
}

/// kafka-transactions' `describe` fields, one per line.
fn describe_text(d: &TransactionDescription, now_ms: i64) -> String {
    let started = d.transaction_start_time_ms >= 0;
    let parts: Vec<String> = d.partitions.iter().map(ToString::to_string).collect();
    let mut out = String::new();
    let mut line = |k: &str, v: String| out.push_str(&format!("{k}: {v}\n"));
    line("CoordinatorId", d.coordinator_id.to_string());
    line("TransactionalId", d.transactional_id.clone());
    line("ProducerId", d.producer_id.to_string());
    line("ProducerEpoch", d.producer_epoch.to_string());
    line("TransactionState", d.state.clone());
    line("TransactionTimeoutMs", d.transaction_timeout_ms.to_string());
    line(
        "CurrentTransactionStartTimeMs",
        if started {
            d.transaction_start_time_ms.to_string()
        } else {
            "None".into()
        },
    );
    line(
        "TransactionDurationMs",
        if started {
            (now_ms - d.transaction_start_time_ms).max(0).to_string()
        } else {
            "None".into()
        },
    );
    line("TopicPartitions", parts.join(","));
    out
}

#[cfg(test)]
mod tests {
    use sluice_log::TopicPartition;

    use super::*;

    #[test]
    fn describe_prints_kafka_transactions_fields() {
        let mut d = TransactionDescription {
            transactional_id: "tx".into(),
            coordinator_id: 1,
            state: "Ongoing".into(),
            producer_id: 7,
            producer_epoch: 2,
            transaction_timeout_ms: 60_000,
            transaction_start_time_ms: 1_000,
            partitions: vec![TopicPartition::new("t", 0), TopicPartition::new("t", 3)],
        };
        let text = describe_text(&d, 1_250);
        assert!(text.contains("CoordinatorId: 1\n"), "{text}");
        assert!(text.contains("TransactionState: Ongoing\n"), "{text}");
        assert!(text.contains("TransactionDurationMs: 250\n"), "{text}");
        assert!(text.contains("TopicPartitions: t-0,t-3\n"), "{text}");
        d.transaction_start_time_ms = -1;
        d.partitions.clear();
        let text = describe_text(&d, 1_250);
        assert!(
            text.contains("CurrentTransactionStartTimeMs: None\n"),
            "{text}"
        );
        assert!(text.contains("TransactionDurationMs: None\n"), "{text}");
    }

    #[test]
    fn list_is_a_table_with_kafkas_headers() {
        let t = list_table(&[TransactionListing {
            transactional_id: "tx".into(),
            producer_id: 3,
            state: "CompleteCommit".into(),
        }]);
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].starts_with("TransactionalId"), "{t}");
        assert!(lines[0].ends_with("TransactionState"), "{t}");
        assert!(
            lines[1].starts_with("tx ") && lines[1].ends_with(" 3 CompleteCommit"),
            "{t}"
        );
    }
}
