//! Page views per region in 1-minute tumbling windows with 10 s grace, final results only
//! (suppressed until each window closes). Input: JSON `{"user","page","region"}` keyed by
//! user, the record timestamp as event time. Output: key the region, value JSON
//! `{"region","window_start","window_end","count"}` (ms).
//!
//! `cargo run --release -p sluice-examples --bin pageviews_per_region -- --max-idle-ms 2000`

use std::time::Duration;

use clap::Parser;
use serde::{Deserialize, Serialize};
use sluice_examples::{Example, Rng, StreamsArgs, text};
use sluice_streams::serdes;
use sluice_streams::{
    Consumed, Grouped, Materialized, Produced, StreamsBuilder, Suppressed, TimeWindows, Topology,
};

#[derive(Debug, Clone, Serialize, Deserialize)]
struct PageView {
    user: String,
    page: String,
    region: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct RegionCount {
    region: String,
    window_start: i64,
    window_end: i64,
    count: i64,
}

fn topology(input: &str, output: &str) -> anyhow::Result<Topology> {
    let b = StreamsBuilder::new();
    b.stream::<Option<String>, PageView>(
        input,
        Consumed::with(serdes::option(serdes::string()), serdes::json()),
    )
    .group_by(
        |_, v: &PageView| v.region.clone(),
        Grouped::with(serdes::string(), serdes::json()),
    )
    .windowed_by(TimeWindows::of_size_and_grace(
        Duration::from_secs(60),
        Duration::from_secs(10),
    ))
    .count(Materialized::as_("views-per-region"))
    .suppress(Suppressed::until_window_closes())
    .to_stream()
    .filter_map_final()
    .to(output, Produced::with(serdes::string(), serdes::json()));
    Ok(b.build()?)
}

/// Windowed counts to the output's shape.
trait FinalShape {
    fn filter_map_final(&self) -> sluice_streams::KStream<String, RegionCount>;
}

impl FinalShape for sluice_streams::KStream<sluice_streams::Windowed<String>, Option<i64>> {
    fn filter_map_final(&self) -> sluice_streams::KStream<String, RegionCount> {
        self.filter(|_, v| v.is_some()).map(|w, v| {
            (
                w.key.clone(),
                RegionCount {
                    region: w.key,
                    window_start: w.start,
                    window_end: w.end,
                    count: v.unwrap_or(0),
                },
            )
        })
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = StreamsArgs::parse();
    sluice_examples::run(
        Example {
            application_id: "pageviews-per-region",
            input: "pageviews",
            output: "pageviews-per-region",
            topology,
            generate: || {
                // Five minutes of views, one every 2 s, then one at 10 minutes that closes the
                // last window.
                let regions = ["eu", "us", "apac"];
                let mut rng = Rng::new(42);
                let mut out = Vec::new();
                for i in 0..150i64 {
                    let user = format!("user-{}", rng.below(20));
                    let v = PageView {
                        user: user.clone(),
                        page: format!("/page/{}", rng.below(10)),
                        region: regions[rng.below(3) as usize].to_owned(),
                    };
                    out.push((
                        None,
                        Some(user),
                        serde_json::to_string(&v).unwrap_or_default(),
                        i * 2_000,
                    ));
                }
                let v = PageView {
                    user: "user-0".into(),
                    page: "/".into(),
                    region: "eu".into(),
                };
                out.push((
                    None,
                    Some("user-0".into()),
                    serde_json::to_string(&v).unwrap_or_default(),
                    600_000,
                ));
                out
            },
            show: |k, v| format!("{} {}", text(k), text(v)),
        },
        args,
    )
    .await
}
