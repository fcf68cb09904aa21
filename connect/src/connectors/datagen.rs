//! A datagen source in the manner of Confluent's kafka-connect-datagen: records of a
//! quickstart data set (`quickstart`: `orders`, `users`, `pageviews`) with their schema, into
//! `kafka.topic`, one every `max.interval` ms at most, `iterations` of them in all.
//!
//! Output is reproducible: record `n` of a task is drawn from a generator seeded with
//! `random.seed` and `n`, so a restarted task (resuming at its committed `iteration`) writes
//! the same records a task that never stopped would have.

use std::time::Duration;

use serde_json::Value as Json;

use crate::config::{Config, ConfigDef, ConfigType, Importance, Props, Validator};
use crate::connector::{SourceConnector, SourceTask, SourceTaskContext};
use crate::data::{Field, Schema, SchemaType, SourceMap, SourceRecord, Value};
use crate::error::{Error, Result};

/// The data sets.
pub const QUICKSTARTS: &[&str] = &["orders", "users", "pageviews"];

/// Records per `poll` at most.
const BATCH: usize = 1000;

/// The datagen source connector.
#[derive(Debug, Default)]
pub struct DatagenConnector {
    props: Props,
}

impl SourceConnector for DatagenConnector {
    type Task = DatagenTask;

    fn config_def() -> ConfigDef {
        ConfigDef::new()
            .define(
                "kafka.topic",
                ConfigType::String,
                None,
                Some(Validator::NonEmpty),
                Importance::High,
                "Topic to write to",
                "Datagen",
            )
            .define(
                "quickstart",
                ConfigType::String,
                None,
                Some(Validator::OneOf(
                    QUICKSTARTS.iter().map(|s| (*s).to_owned()).collect(),
                )),
                Importance::High,
                "The data set: orders, users or pageviews",
                "Datagen",
            )
            .define(
                "max.interval",
                ConfigType::Long,
                Some("500"),
                Some(Validator::AtLeast(0)),
                Importance::Low,
                "Longest wait between two records, in ms (each wait is drawn up to it)",
                "Datagen",
            )
            .define(
                "iterations",
                ConfigType::Long,
                Some("1000000"),
                Some(Validator::AtLeast(-1)),
                Importance::Low,
                "Records to write per task; -1 for no end",
                "Datagen",
            )
            .define(
                "random.seed",
                ConfigType::Long,
                Some("0"),
                None,
                Importance::Low,
                "Seed of the generator: the same seed gives the same records",
                "Datagen",
            )
    }

    fn start(&mut self, config: Config) -> Result<()> {
        self.props = config.props().clone();
        for k in ["max.interval", "iterations", "random.seed"] {
            config.long(k)?;
            if let Some(v) = config.get(k) {
                self.props.insert(k.to_owned(), v.to_owned());
            }
        }
        Ok(())
    }

    fn task_configs(&self, max_tasks: usize) -> Result<Vec<Props>> {
        Ok((0..max_tasks.max(1))
            .map(|i| {
                let mut p = self.props.clone();
                p.insert("task.id".into(), i.to_string());
                p
            })
            .collect())
    }
}

/// The task of [`DatagenConnector`].
#[derive(Debug, Default)]
pub struct DatagenTask {
    topic: String,
    quickstart: String,
    max_interval_ms: u64,
    iterations: i64,
    seed: u64,
    task_id: u64,
    next: i64,
    partition: SourceMap,
}

fn long(props: &Props, key: &str, default: i64) -> Result<i64> {
    match props.get(key) {
        None => Ok(default),
        Some(v) => v
            .trim()
            .parse()
            .map_err(|_| Error::config("datagen", key, format!("\"{v}\" is not an integer"))),
    }
}

impl SourceTask for DatagenTask {
    async fn start(&mut self, config: Props, context: SourceTaskContext) -> Result<()> {
        self.topic = config.get("kafka.topic").cloned().unwrap_or_default();
        self.quickstart = config.get("quickstart").cloned().unwrap_or_default();
        if !QUICKSTARTS.contains(&self.quickstart.as_str()) {
            return Err(Error::config(
                "datagen",
                "quickstart",
                format!(
                    "\"{}\" is not one of {}",
                    self.quickstart,
                    QUICKSTARTS.join(", ")
                ),
            ));
        }
        self.max_interval_ms = u64::try_from(long(&config, "max.interval", 500)?).unwrap_or(0);
        self.iterations = long(&config, "iterations", 1_000_000)?;
        self.seed = long(&config, "random.seed", 0)? as u64;
        self.task_id = u64::try_from(long(&config, "task.id", 0)?).unwrap_or(0);
        self.partition
            .insert("task.id".into(), Json::from(self.task_id));
        self.next = context
            .offset(&self.partition)
            .and_then(|o| o.get("iteration"))
            .and_then(Json::as_i64)
            .map_or(0, |i| i + 1);
        Ok(())
    }

    async fn poll(&mut self) -> Result<Vec<SourceRecord>> {
        if self.iterations >= 0 && self.next >= self.iterations {
            // Done: nothing more, ever; wait as an idle source does.
            tokio::time::sleep(Duration::from_millis(500)).await;
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        while out.len() < BATCH && (self.iterations < 0 || self.next < self.iterations) {
            let n = self.next;
            let mut rng = fastrand::Rng::with_seed(
                self.seed
                    ^ (n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
                    ^ self.task_id.wrapping_mul(0xC2B2_AE3D_27D4_EB4F),
            );
            let (key, schema, value) = generate(&self.quickstart, n, &mut rng);
            let mut offset = SourceMap::new();
            offset.insert("iteration".into(), Json::from(n));
            out.push(
                SourceRecord::source(
                    self.partition.clone(),
                    offset,
                    self.topic.clone(),
                    Some(schema),
                    value,
                )
                .with_key(Some(Schema::string()), Value::String(key)),
            );
            self.next += 1;
            if self.max_interval_ms > 0 {
                let wait = rng.u64(0..=self.max_interval_ms);
                tokio::time::sleep(Duration::from_millis(wait)).await;
                break;
            }
        }
        Ok(out)
    }
}

fn field(name: &str, ty: SchemaType) -> Field {
    Field {
        name: name.to_owned(),
        schema: Schema::new(ty),
    }
}

/// Record `n` of a data set: its key, value schema and value.
fn generate(quickstart: &str, n: i64, rng: &mut fastrand::Rng) -> (String, Schema, Value) {
    // 2017-11-01, where Confluent's data sets start.
    let base_ms = 1_509_494_400_000_i64;
    match quickstart {
        "orders" => {
            let address = Schema::structure(vec![
                field("city", SchemaType::String),
                field("state", SchemaType::String),
                field("zipcode", SchemaType::Int64),
            ]);
            let schema = Schema::structure(vec![
                field("ordertime", SchemaType::Int64),
                field("orderid", SchemaType::Int32),
                field("itemid", SchemaType::String),
                field("orderunits", SchemaType::Float64),
                Field {
                    name: "address".into(),
                    schema: address,
                },
            ])
            .named("ksql.orders");
            let city = rng.u32(1..=9);
            let value = Value::Struct(vec![
                (
                    "ordertime".into(),
                    Value::Int(base_ms + rng.i64(0..31_536_000_000)),
                ),
                ("orderid".into(), Value::Int(n)),
                (
                    "itemid".into(),
                    Value::String(format!("Item_{}", rng.u32(1..=999))),
                ),
                (
                    "orderunits".into(),
                    Value::Float((rng.f64() * 1000.0).round() / 100.0),
                ),
                (
                    "address".into(),
                    Value::Struct(vec![
                        ("city".into(), Value::String(format!("City_{city}"))),
                        (
                            "state".into(),
                            Value::String(format!("State_{}", rng.u32(1..=99))),
                        ),
                        ("zipcode".into(), Value::Int(rng.i64(10_000..=99_999))),
                    ]),
                ),
            ]);
            (n.to_string(), schema, value)
        }
        "users" => {
            let schema = Schema::structure(vec![
                field("registertime", SchemaType::Int64),
                field("userid", SchemaType::String),
                field("regionid", SchemaType::String),
                field("gender", SchemaType::String),
            ])
            .named("ksql.users");
            let userid = format!("User_{}", rng.u32(1..=9));
            let gender = ["MALE", "FEMALE", "OTHER"][rng.usize(0..3)];
            let value = Value::Struct(vec![
                (
                    "registertime".into(),
                    Value::Int(base_ms - rng.i64(0..31_536_000_000)),
                ),
                ("userid".into(), Value::String(userid.clone())),
                (
                    "regionid".into(),
                    Value::String(format!("Region_{}", rng.u32(1..=9))),
                ),
                ("gender".into(), Value::String(gender.into())),
            ]);
            (userid, schema, value)
        }
        _ => {
            let schema = Schema::structure(vec![
                field("viewtime", SchemaType::Int64),
                field("userid", SchemaType::String),
                field("pageid", SchemaType::String),
            ])
            .named("ksql.pageviews");
            let viewtime = base_ms + n * 10 + rng.i64(0..10);
            let value = Value::Struct(vec![
                ("viewtime".into(), Value::Int(viewtime)),
                (
                    "userid".into(),
                    Value::String(format!("User_{}", rng.u32(1..=9))),
                ),
                (
                    "pageid".into(),
                    Value::String(format!("Page_{}", rng.u32(1..=99))),
                ),
            ]);
            (viewtime.to_string(), schema, value)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(quickstart: &str, iterations: &str) -> Props {
        [
            ("kafka.topic", "t"),
            ("quickstart", quickstart),
            ("max.interval", "0"),
            ("iterations", iterations),
            ("random.seed", "42"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    #[tokio::test]
    async fn the_same_seed_gives_the_same_records_across_a_restart() {
        let mut a = DatagenTask::default();
        a.start(config("orders", "5"), SourceTaskContext::default())
            .await
            .unwrap();
        let all = a.poll().await.unwrap();
        assert_eq!(all.len(), 5);
        assert_eq!(all[2].value.get("orderid"), Some(&Value::Int(2)));
        let schema = all[0].value_schema.clone().unwrap();
        all[0].value.to_json_with(&schema).unwrap();

        let mut b = DatagenTask::default();
        let p = all[1].source_partition.clone().unwrap();
        let o = all[1].source_offset.clone().unwrap();
        b.start(config("orders", "5"), SourceTaskContext::new(vec![(p, o)]))
            .await
            .unwrap();
        let rest = b.poll().await.unwrap();
        assert_eq!(rest, all[2..], "resumed at iteration 2, same records");

        let mut c = DatagenTask::default();
        let mut other = config("orders", "5");
        other.insert("random.seed".into(), "43".into());
        c.start(other, SourceTaskContext::default()).await.unwrap();
        assert_ne!(c.poll().await.unwrap(), all, "another seed, other records");
    }

    #[tokio::test]
    async fn every_quickstart_matches_its_schema() {
        for q in QUICKSTARTS {
            let mut t = DatagenTask::default();
            t.start(config(q, "3"), SourceTaskContext::default())
                .await
                .unwrap();
            for r in t.poll().await.unwrap() {
                r.value
                    .to_json_with(r.value_schema.as_ref().unwrap())
                    .unwrap();
            }
        }
        let mut t = DatagenTask::default();
        let e = t
            .start(config("stock", "3"), SourceTaskContext::default())
            .await
            .unwrap_err();
        assert!(e.to_string().contains("orders, users, pageviews"), "{e}");
    }
}
