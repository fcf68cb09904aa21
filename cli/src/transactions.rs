//! `sluice transactions list|describe`: what the transaction coordinator knows, like
//! kafka-transactions.

use anyhow::Context;
use clap::{Args, Subcommand};
use sluice_log::client::embedded::EmbeddedClient;

/// Arguments of `sluice transactions`.
#[derive(Debug, Args)]
pub(crate) struct TransactionsArgs {
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

/// Runs on the embedded log (the coordinator lives beside it).
pub(crate) fn run(client: &EmbeddedClient, args: TransactionsArgs) -> anyhow::Result<()> {
    let coordinator = client
        .transaction_coordinator()
        .context("could not open the transaction coordinator")?;
    match args.command {
        TransactionsCommand::List => {
            println!(
                "{:<32} {:>12} {:>6} STATE",
                "TRANSACTIONAL-ID", "PRODUCER-ID", "EPOCH"
            );
            for (id, _) in coordinator.list_transactions() {
                let m = coordinator.describe_transaction(&id)?;
                println!(
                    "{id:<32} {:>12} {:>6} {}",
                    m.producer_id,
                    m.producer_epoch,
                    m.state.as_str()
                );
            }
        }
        TransactionsCommand::Describe { transactional_id } => {
            let m = coordinator.describe_transaction(&transactional_id)?;
            println!("TransactionalId: {transactional_id}");
            println!("ProducerId: {}", m.producer_id);
            println!("ProducerEpoch: {}", m.producer_epoch);
            println!("State: {}", m.state.as_str());
            println!("TransactionTimeoutMs: {}", m.timeout_ms);
            println!("TransactionStartTimeMs: {}", m.start_ms);
            println!("LastUpdateTimeMs: {}", m.last_update_ms);
            let parts: Vec<String> = m.partitions.iter().map(ToString::to_string).collect();
            println!("TopicPartitions: {}", parts.join(","));
        }
    }
    Ok(())
}
