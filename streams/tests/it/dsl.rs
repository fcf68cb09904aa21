//! Every operator through the `TopologyTestDriver`, checked against results worked out by
//! hand (and against what Kafka Streams emits for the same input).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use sluice_streams::serdes::{self, SerdeRef};
use sluice_streams::windows::time_windowed_serde;
use sluice_streams::{
    Consumed, Grouped, Joined, Materialized, Processor, ProcessorContext, Produced,
    PunctuationType, Record, SessionWindows, StreamsBuilder, Suppressed, TimeWindows,
    TopologyTestDriver, Windowed,
};

fn s() -> SerdeRef<String> {
    serdes::string()
}

fn wordcount() -> StreamsBuilder {
    let b = StreamsBuilder::new();
    b.stream::<Option<String>, String>("text-lines", Consumed::with(serdes::option(s()), s()))
        .flat_map_values(|line: String| {
            line.to_lowercase()
                .split(|c: char| !c.is_alphanumeric())
                .filter(|w| !w.is_empty())
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .group_by(|_, w: &String| w.clone(), Grouped::with(s(), s()))
        .count(Materialized::as_("counts"))
        .to_stream()
        .to(
            "word-counts",
            Produced::with(s(), serdes::option(serdes::i64_as_string())),
        );
    b
}

#[test]
fn word_count_counts_every_word_through_a_repartition() -> anyhow::Result<()> {
    let t = wordcount().build()?;
    let d = TopologyTestDriver::new(t, &[("application.id", "wc")])?;
    let input = d.input_topic("text-lines", serdes::option(s()), s());
    let output = d.output_topic("word-counts", s(), serdes::option(serdes::i64_as_string()));
    input.pipe_at(None, "Hello Kafka hello".into(), 1)?;
    input.pipe_at(None, "streams, kafka!".into(), 2)?;
    let got = output.read_key_values()?;
    let want: Vec<(String, Option<i64>)> = vec![
        ("hello".into(), Some(1)),
        ("kafka".into(), Some(1)),
        ("hello".into(), Some(2)),
        ("streams".into(), Some(1)),
        ("kafka".into(), Some(2)),
    ];
    assert_eq!(got, want);
    let mut store = d.key_value_store("counts", s(), serdes::i64())?;
    store.sort();
    assert_eq!(
        store,
        vec![
            ("hello".into(), 2),
            ("kafka".into(), 2),
            ("streams".into(), 1)
        ]
    );
    Ok(())
}

#[test]
fn describe_prints_sub_topologies_split_at_the_repartition_topic() -> anyhow::Result<()> {
    let t = wordcount().build()?;
    let text = t.describe();
    assert_eq!(t.subtopologies().len(), 2, "{text}");
    assert!(
        text.starts_with("Topologies:\n   Sub-topology: 0\n"),
        "{text}"
    );
    assert!(text.contains("    Source: KSTREAM-SOURCE-0000000000 (topics: [text-lines])\n      --> KSTREAM-FLATMAPVALUES-0000000001\n"), "{text}");
    assert!(
        text.contains("Sink: counts-repartition-sink (topic: counts-repartition)"),
        "{text}"
    );
    assert!(text.contains("   Sub-topology: 1\n    Source: counts-repartition-source (topics: [counts-repartition])"), "{text}");
    assert!(text.contains("(stores: [counts])"), "{text}");
    assert!(text.contains("Sink: KSTREAM-SINK-"), "{text}");
    Ok(())
}

#[test]
fn stateless_operators_filter_map_branch_merge() -> anyhow::Result<()> {
    let b = StreamsBuilder::new();
    let src = b.stream::<String, String>("in", Consumed::with(s(), s()));
    let branches = src
        .filter_not(|_, v| v.is_empty())
        .map_values(|v: String| v.to_uppercase())
        .split()
        .branch(|_, v| v.starts_with('A'))
        .branch(|_, v| v.starts_with('B'))
        .branches(true);
    assert_eq!(branches.len(), 3);
    branches[0].to("a", Produced::with(s(), s()));
    branches[1]
        .merge(&branches[2])
        .select_key(|k, v| format!("{k}:{v}"))
        .flat_map(|k: String, v: String| vec![(k.clone(), v.clone()), (k, format!("{v}!"))])
        .to("rest", Produced::with(s(), s()));
    let d = TopologyTestDriver::new(b.build()?, &[])?;
    let input = d.input_topic("in", s(), s());
    for (k, v) in [("1", "apple"), ("2", ""), ("3", "banana"), ("4", "cherry")] {
        input.pipe_at(k.into(), v.into(), 10)?;
    }
    let a = d.output_topic("a", s(), s()).read_key_values()?;
    assert_eq!(a, vec![("1".to_owned(), "APPLE".to_owned())]);
    let rest = d.output_topic("rest", s(), s()).read_key_values()?;
    assert_eq!(
        rest,
        vec![
            ("3:BANANA".to_owned(), "BANANA".to_owned()),
            ("3:BANANA".to_owned(), "BANANA!".to_owned()),
            ("4:CHERRY".to_owned(), "CHERRY".to_owned()),
            ("4:CHERRY".to_owned(), "CHERRY!".to_owned()),
        ]
    );
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct View {
    user: String,
    region: String,
}

fn views_per_region(suppress: bool) -> anyhow::Result<TopologyTestDriver> {
    let b = StreamsBuilder::new();
    let counts = b
        .stream::<String, View>("page-views", Consumed::with(s(), serdes::json()))
        .group_by(
            |_, v: &View| v.region.clone(),
            Grouped::with(s(), serdes::json()),
        )
        .windowed_by(TimeWindows::of_size_and_grace(
            Duration::from_secs(60),
            Duration::from_secs(10),
        ))
        .count(Materialized::as_("views"));
    let counts = if suppress {
        counts.suppress(Suppressed::until_window_closes())
    } else {
        counts
    };
    counts.to_stream().to(
        "out",
        Produced::with(
            time_windowed_serde(s(), 60_000),
            serdes::option(serdes::i64()),
        ),
    );
    Ok(TopologyTestDriver::new(b.build()?, &[])?)
}

fn view(region: &str) -> View {
    View {
        user: "u".into(),
        region: region.into(),
    }
}

type WinOut = Vec<(Windowed<String>, Option<i64>, i64)>;

fn read_windowed(d: &TopologyTestDriver) -> anyhow::Result<WinOut> {
    Ok(d.output_topic(
        "out",
        time_windowed_serde(s(), 60_000),
        serdes::option(serdes::i64()),
    )
    .read_records()?)
}

fn w(key: &str, start: i64) -> Windowed<String> {
    Windowed {
        key: key.into(),
        start,
        end: start + 60_000,
    }
}

#[test]
fn tumbling_windows_emit_every_update_and_drop_records_after_the_grace_period() -> anyhow::Result<()>
{
    let d = views_per_region(false)?;
    let input = d.input_topic("page-views", s(), serdes::json());
    input.pipe_at("u1".into(), view("eu"), 0)?;
    input.pipe_at("u2".into(), view("eu"), 30_000)?;
    input.pipe_at("u3".into(), view("us"), 75_000)?;
    // Stream time 75 s: window [0, 60 s) closed at 70 s; a record for it is late.
    input.pipe_at("u4".into(), view("eu"), 59_000)?;
    // Still in grace for [60 s, 120 s).
    input.pipe_at("u5".into(), view("eu"), 61_000)?;
    assert_eq!(
        read_windowed(&d)?,
        vec![
            (w("eu", 0), Some(1), 0),
            (w("eu", 0), Some(2), 30_000),
            (w("us", 60_000), Some(1), 75_000),
            (w("eu", 60_000), Some(1), 61_000),
        ]
    );
    assert_eq!(d.metrics().dropped_late_records, 1);
    Ok(())
}

#[test]
fn suppression_emits_each_window_once_when_it_closes() -> anyhow::Result<()> {
    let d = views_per_region(true)?;
    let input = d.input_topic("page-views", s(), serdes::json());
    input.pipe_at("u1".into(), view("eu"), 0)?;
    input.pipe_at("u2".into(), view("eu"), 30_000)?;
    assert_eq!(read_windowed(&d)?, vec![]);
    // Stream time 75 s passes 60 s + 10 s grace: the first window's final count.
    input.pipe_at("u3".into(), view("us"), 75_000)?;
    assert_eq!(read_windowed(&d)?, vec![(w("eu", 0), Some(2), 30_000)]);
    input.pipe_at("u4".into(), view("us"), 100_000)?;
    assert_eq!(read_windowed(&d)?, vec![]);
    input.pipe_at("u5".into(), view("eu"), 130_000)?;
    assert_eq!(
        read_windowed(&d)?,
        vec![(w("us", 60_000), Some(2), 100_000)]
    );
    Ok(())
}

#[test]
fn hopping_windows_count_a_record_in_every_window_it_falls_in() -> anyhow::Result<()> {
    let b = StreamsBuilder::new();
    b.stream::<String, String>("in", Consumed::with(s(), s()))
        .group_by_key(Grouped::with(s(), s()))
        .windowed_by(
            TimeWindows::of_size_with_no_grace(Duration::from_secs(10))
                .advance_by(Duration::from_secs(5)),
        )
        .count(Materialized::unnamed())
        .to_stream()
        .to(
            "out",
            Produced::with(
                time_windowed_serde(s(), 10_000),
                serdes::option(serdes::i64()),
            ),
        );
    let d = TopologyTestDriver::new(b.build()?, &[])?;
    d.input_topic("in", s(), s())
        .pipe_at("k".into(), "x".into(), 7_000)?;
    let out = d
        .output_topic(
            "out",
            time_windowed_serde(s(), 10_000),
            serdes::option(serdes::i64()),
        )
        .read_key_values()?;
    let starts: Vec<i64> = out.iter().map(|(w, _)| w.start).collect();
    assert_eq!(starts, vec![0, 5_000]);
    Ok(())
}

#[test]
fn session_windows_merge_sessions_a_record_bridges() -> anyhow::Result<()> {
    let b = StreamsBuilder::new();
    b.stream::<String, String>("clicks", Consumed::with(s(), s()))
        .group_by_key(Grouped::with(s(), s()))
        // A grace period long enough that no session expires from the store meanwhile.
        .windowed_by_session(SessionWindows::of_inactivity_gap_and_grace(
            Duration::from_secs(300),
            Duration::from_secs(600),
        ))
        .count(Materialized::as_("sessions"))
        .to_stream()
        .to(
            "out",
            Produced::with(
                sluice_streams::windows::session_windowed_serde(s()),
                serdes::option(serdes::i64()),
            ),
        );
    let d = TopologyTestDriver::new(b.build()?, &[])?;
    let input = d.input_topic("clicks", s(), s());
    input.pipe_at("a".into(), "c".into(), 0)?;
    input.pipe_at("a".into(), "c".into(), 400_000)?;
    // 200 s is within 300 s of both: the two sessions become one.
    input.pipe_at("a".into(), "c".into(), 200_000)?;
    let out = d
        .output_topic(
            "out",
            sluice_streams::windows::session_windowed_serde(s()),
            serdes::option(serdes::i64()),
        )
        .read_key_values()?;
    let sw = |start, end| Windowed {
        key: "a".to_owned(),
        start,
        end,
    };
    assert_eq!(
        out,
        vec![
            (sw(0, 0), Some(1)),
            (sw(400_000, 400_000), Some(1)),
            (sw(0, 0), None),
            (sw(400_000, 400_000), None),
            (sw(0, 400_000), Some(3)),
        ]
    );
    assert_eq!(d.store_len("sessions")?, 1);
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Order {
    customer_id: String,
    amount: i64,
}

#[test]
fn stream_table_join_inner_and_left() -> anyhow::Result<()> {
    let b = StreamsBuilder::new();
    let customers = b.table::<String, String>(
        "customers",
        Consumed::with(s(), s()),
        Materialized::as_("customers-store"),
    );
    let orders = b
        .stream::<String, Order>("orders", Consumed::with(s(), serdes::json()))
        .select_key(|_, o: &Order| o.customer_id.clone());
    orders
        .join(
            &customers,
            |o: &Order, c: &String| format!("{c} paid {}", o.amount),
            Joined::with(s(), serdes::json(), s()),
        )
        .to("inner", Produced::with(s(), s()));
    orders
        .left_join(
            &customers,
            |o: &Order, c: Option<&String>| {
                format!("{} paid {}", c.map_or("?", |c| c.as_str()), o.amount)
            },
            Joined::with(s(), serdes::json(), s()).with_name("orders-by-customer-left"),
        )
        .to("left", Produced::with(s(), s()));
    let t = b.build()?;
    let d = TopologyTestDriver::new(t, &[])?;
    d.input_topic("customers", s(), s())
        .pipe_at("c1".into(), "Ada".into(), 1)?;
    let orders = d.input_topic("orders", s(), serdes::json());
    orders.pipe_at(
        "o1".into(),
        Order {
            customer_id: "c1".into(),
            amount: 5,
        },
        2,
    )?;
    orders.pipe_at(
        "o2".into(),
        Order {
            customer_id: "c2".into(),
            amount: 7,
        },
        3,
    )?;
    assert_eq!(
        d.output_topic("inner", s(), s()).read_key_values()?,
        vec![("c1".to_owned(), "Ada paid 5".to_owned())]
    );
    assert_eq!(
        d.output_topic("left", s(), s()).read_key_values()?,
        vec![
            ("c1".to_owned(), "Ada paid 5".to_owned()),
            ("c2".to_owned(), "? paid 7".to_owned())
        ]
    );
    Ok(())
}

#[test]
fn table_table_joins_follow_updates_and_deletes_on_both_sides() -> anyhow::Result<()> {
    let b = StreamsBuilder::new();
    let left = b.table::<String, String>("l", Consumed::with(s(), s()), Materialized::as_("ls"));
    let right = b.table::<String, String>("r", Consumed::with(s(), s()), Materialized::as_("rs"));
    left.join(&right, |a: &String, b: &String| format!("{a}+{b}"))?
        .to_stream()
        .to("inner", Produced::with(s(), serdes::option(s())));
    left.outer_join(&right, |a: Option<&String>, b: Option<&String>| {
        format!("{}+{}", a.map_or("-", |x| x), b.map_or("-", |x| x))
    })?
    .to_stream()
    .to("outer", Produced::with(s(), serdes::option(s())));
    let d = TopologyTestDriver::new(b.build()?, &[])?;
    let l = d.input_topic("l", s(), serdes::option(s()));
    let r = d.input_topic("r", s(), serdes::option(s()));
    l.pipe_at("k".into(), Some("a".into()), 1)?;
    r.pipe_at("k".into(), Some("b".into()), 2)?;
    l.pipe_at("k".into(), None, 3)?;
    let inner = d
        .output_topic("inner", s(), serdes::option(s()))
        .read_key_values()?;
    assert_eq!(
        inner,
        vec![
            ("k".to_owned(), Some("a+b".to_owned())),
            ("k".to_owned(), None)
        ]
    );
    let outer = d
        .output_topic("outer", s(), serdes::option(s()))
        .read_key_values()?;
    assert_eq!(
        outer,
        vec![
            ("k".to_owned(), Some("a+-".to_owned())),
            ("k".to_owned(), Some("a+b".to_owned())),
            ("k".to_owned(), Some("-+b".to_owned())),
        ]
    );
    Ok(())
}

struct EveryTen {
    seen: i64,
}

impl Processor<String, String, String, i64> for EveryTen {
    fn init(&mut self, ctx: &mut ProcessorContext<'_, String, i64>) -> sluice_streams::Result<()> {
        ctx.schedule(10, PunctuationType::StreamTime);
        Ok(())
    }
    fn process(
        &mut self,
        ctx: &mut ProcessorContext<'_, String, i64>,
        r: Record<String, String>,
    ) -> sluice_streams::Result<()> {
        self.seen += 1;
        if r.value == "urgent" {
            ctx.forward_to("urgent-sink", r.with(r.key.clone(), -1));
        }
        Ok(())
    }
    fn punctuate(
        &mut self,
        ctx: &mut ProcessorContext<'_, String, i64>,
        _: PunctuationType,
        t: i64,
    ) -> sluice_streams::Result<()> {
        ctx.forward(Record::new("seen".into(), self.seen, t));
        Ok(())
    }
}

#[test]
fn processor_api_punctuates_on_stream_time_and_forwards_to_named_children() -> anyhow::Result<()> {
    let b = StreamsBuilder::new();
    let p = b
        .stream::<String, String>("in", Consumed::with(s(), s()))
        .process(|| EveryTen { seen: 0 }, None, &[]);
    p.to(
        "all",
        Produced::with(s(), serdes::i64()).with_name("all-sink"),
    );
    p.to(
        "urgent",
        Produced::with(s(), serdes::i64()).with_name("urgent-sink"),
    );
    let d = TopologyTestDriver::new(b.build()?, &[])?;
    let input = d.input_topic("in", s(), s());
    input.pipe_at("a".into(), "x".into(), 0)?;
    input.pipe_at("a".into(), "urgent".into(), 5)?;
    input.pipe_at("a".into(), "x".into(), 12)?;
    input.pipe_at("a".into(), "x".into(), 35)?;
    let all = d.output_topic("all", s(), serdes::i64()).read_records()?;
    // First due at 0 + 10; at 35 one punctuation (missed ones are skipped), next due at 40.
    assert_eq!(all, vec![("seen".into(), 3, 12), ("seen".into(), 4, 35)]);
    // `forward` reaches every child, `forward_to` only the one named.
    assert_eq!(
        d.output_topic("urgent", s(), serdes::i64())
            .read_key_values()?,
        vec![
            ("a".to_owned(), -1),
            ("seen".to_owned(), 3),
            ("seen".to_owned(), 4)
        ]
    );
    Ok(())
}

#[test]
fn a_bad_record_stops_or_is_skipped_per_the_deserialization_handler() -> anyhow::Result<()> {
    let build = || {
        let b = StreamsBuilder::new();
        b.stream::<String, i64>("in", Consumed::with(s(), serdes::i64()))
            .to("out", Produced::with(s(), serdes::i64()));
        b.build()
    };
    let d = TopologyTestDriver::new(build()?, &[])?;
    let err = d
        .pipe_raw(
            "in",
            Some("k".into()),
            Some(bytes::Bytes::from_static(b"abc")),
            1,
        )
        .expect_err("3 bytes are no i64");
    let msg = err.to_string();
    assert!(msg.contains("in-0@0") && msg.contains("8 bytes"), "{msg}");
    let d = TopologyTestDriver::new(
        build()?,
        &[(
            "default.deserialization.exception.handler",
            "org.apache.kafka.streams.errors.LogAndContinueExceptionHandler",
        )],
    )?;
    d.pipe_raw(
        "in",
        Some("k".into()),
        Some(bytes::Bytes::from_static(b"abc")),
        1,
    )?;
    d.input_topic("in", s(), serdes::i64())
        .pipe_at("k".into(), 7, 2)?;
    assert_eq!(
        d.output_topic("out", s(), serdes::i64())
            .read_key_values()?,
        vec![("k".to_owned(), 7)]
    );
    assert_eq!(d.metrics().dropped_records, 1);
    let bad = TopologyTestDriver::new(
        build()?,
        &[("default.deserialization.exception.handler", "ignore")],
    )
    .expect_err("unknown handler");
    assert!(
        bad.to_string().contains("LogAndContinueExceptionHandler"),
        "{bad}"
    );
    Ok(())
}

#[test]
fn aggregate_and_reduce_keep_a_running_value() -> anyhow::Result<()> {
    let b = StreamsBuilder::new();
    let g = b
        .stream::<String, i64>("in", Consumed::with(s(), serdes::i64()))
        .group_by_key(Grouped::with(s(), serdes::i64()));
    g.reduce(|a, b| a.max(*b), Materialized::as_("max"))
        .to_stream()
        .to("max", Produced::with(s(), serdes::option(serdes::i64())));
    g.aggregate(
        String::new,
        |_, v, acc: String| format!("{acc}{v}"),
        Materialized::as_("concat").with_value_serde(s()),
    )
    .to_stream()
    .to("concat", Produced::with(s(), serdes::option(s())));
    let d = TopologyTestDriver::new(b.build()?, &[])?;
    let input = d.input_topic("in", s(), serdes::i64());
    for v in [3, 9, 4] {
        input.pipe_at("k".into(), v, 1)?;
    }
    let max: Vec<Option<i64>> = d
        .output_topic("max", s(), serdes::option(serdes::i64()))
        .read_values()?;
    assert_eq!(max, vec![Some(3), Some(9), Some(9)]);
    let concat: Vec<Option<String>> = d
        .output_topic("concat", s(), serdes::option(s()))
        .read_values()?;
    assert_eq!(
        concat,
        vec![Some("3".into()), Some("39".into()), Some("394".into())]
    );
    Ok(())
}
