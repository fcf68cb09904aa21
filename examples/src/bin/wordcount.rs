//! Word count: lines of text in, each word's running count out (key the word, lower-cased and
//! split on non-alphanumerics; value the count as a decimal string).
//!
//! `cargo run --release -p sluice-examples --bin wordcount -- --max-idle-ms 2000`

use clap::Parser;
use sluice_examples::{Example, StreamsArgs, text};
use sluice_streams::serdes;
use sluice_streams::{Consumed, Grouped, Materialized, Produced, StreamsBuilder, Topology};

fn topology(input: &str, output: &str) -> anyhow::Result<Topology> {
    let b = StreamsBuilder::new();
    b.stream::<Option<String>, String>(
        input,
        Consumed::with(serdes::option(serdes::string()), serdes::string()),
    )
    .flat_map_values(|line: String| {
        line.to_lowercase()
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_owned)
            .collect::<Vec<_>>()
    })
    .group_by(
        |_, word: &String| word.clone(),
        Grouped::with(serdes::string(), serdes::string()),
    )
    .count(Materialized::as_("counts"))
    .to_stream()
    .to(
        output,
        Produced::with(serdes::string(), serdes::option(serdes::i64_as_string())),
    );
    Ok(b.build()?)
}

const LINES: &[&str] = &[
    "All streams flow to the sea",
    "yet the sea is not full",
    "To the place the streams come from",
    "there they return again",
];

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = StreamsArgs::parse();
    sluice_examples::run(
        Example {
            application_id: "wordcount",
            input: "text-lines",
            output: "word-counts",
            topology,
            generate: || {
                LINES
                    .iter()
                    .enumerate()
                    .map(|(i, l)| (None, None, (*l).to_owned(), 1_000 * i as i64))
                    .collect()
            },
            show: |k, v| format!("{} = {}", text(k), text(v)),
        },
        args,
    )
    .await
}
