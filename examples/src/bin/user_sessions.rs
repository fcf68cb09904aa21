//! User sessions: clicks keyed by user, session windows with a 5-minute inactivity gap; the
//! output per session is `{"user","start","end","clicks"}` (ms), keyed by user. A session that
//! merges into a longer one is replaced: its earlier record is followed by the merged one.
//!
//! `cargo run --release -p sluice-examples --bin user_sessions -- --max-idle-ms 2000`

use std::time::Duration;

use clap::Parser;
use serde::Serialize;
use sluice_examples::{Example, StreamsArgs, text};
use sluice_streams::serdes;
use sluice_streams::{
    Consumed, Grouped, Materialized, Produced, SessionWindows, StreamsBuilder, Topology,
};

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
struct Session {
    user: String,
    start: i64,
    end: i64,
    clicks: i64,
}

fn topology(input: &str, output: &str) -> anyhow::Result<Topology> {
    let b = StreamsBuilder::new();
    b.stream::<String, String>(input, Consumed::with(serdes::string(), serdes::string()))
        .group_by_key(Grouped::with(serdes::string(), serdes::string()))
        .windowed_by_session(SessionWindows::of_inactivity_gap_with_no_grace(
            Duration::from_secs(300),
        ))
        .count(Materialized::as_("sessions"))
        .to_stream()
        // A merged-away session's deletion is not a session.
        .filter(|_, clicks| clicks.is_some())
        .map(|w, clicks| {
            (
                w.key.clone(),
                Session {
                    user: w.key,
                    start: w.start,
                    end: w.end,
                    clicks: clicks.unwrap_or(0),
                },
            )
        })
        .to(output, Produced::with(serdes::string(), serdes::json()));
    Ok(b.build()?)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = StreamsArgs::parse();
    sluice_examples::run(
        Example {
            application_id: "user-sessions",
            input: "clicks",
            output: "user-sessions",
            topology,
            generate: || {
                // alice: two bursts 20 minutes apart; bob: one burst.
                let mut out = Vec::new();
                for t in [0, 60_000, 120_000, 1_320_000, 1_380_000] {
                    out.push((None, Some("alice".to_owned()), "/page".to_owned(), t));
                }
                for t in [30_000, 90_000] {
                    out.push((None, Some("bob".to_owned()), "/page".to_owned(), t));
                }
                out
            },
            show: |k, v| format!("{} {}", text(k), text(v)),
        },
        args,
    )
    .await
}
