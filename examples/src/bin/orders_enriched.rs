//! Orders enriched with their customer: orders (JSON, keyed by order id, with `customer_id`)
//! joined with a table of customers (JSON, keyed by customer id); the output is each order
//! with its customer's fields added, keyed by order id.
//!
//! `cargo run --release -p sluice-examples --bin orders_enriched -- --max-idle-ms 2000`
//! (`--input` names the orders topic; customers are read from `customers`.)

use clap::Parser;
use serde_json::{Map, Value};
use sluice_examples::{Example, StreamsArgs, text};
use sluice_streams::serdes;
use sluice_streams::{Consumed, Joined, Materialized, Produced, StreamsBuilder, Topology};

const CUSTOMERS: &str = "customers";

fn topology(input: &str, output: &str) -> anyhow::Result<Topology> {
    let b = StreamsBuilder::new();
    let customers = b.table::<String, Value>(
        CUSTOMERS,
        Consumed::with(serdes::string(), serdes::json()),
        Materialized::as_("customers-store"),
    );
    b.stream::<String, Value>(input, Consumed::with(serdes::string(), serdes::json()))
        // Keyed by customer for the join (a repartition), the order id kept in the value.
        .map(|order_id: String, mut order: Value| {
            if let Value::Object(m) = &mut order {
                m.insert("order_id".into(), Value::String(order_id));
            }
            let customer = order
                .get("customer_id")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            (customer, order)
        })
        .join(
            &customers,
            |order: &Value, customer: &Value| {
                let mut out: Map<String, Value> = order.as_object().cloned().unwrap_or_default();
                if let Some(c) = customer.as_object() {
                    for (k, v) in c {
                        out.insert(format!("customer_{k}"), v.clone());
                    }
                }
                Value::Object(out)
            },
            Joined::with(serdes::string(), serdes::json(), serdes::json())
                .with_name("orders-by-customer"),
        )
        .select_key(|_, v: &Value| {
            v.get("order_id")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        })
        .to(output, Produced::with(serdes::string(), serdes::json()));
    Ok(b.build()?)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = StreamsArgs::parse();
    sluice_examples::run(
        Example {
            application_id: "orders-enriched",
            input: "orders",
            output: "orders-enriched",
            topology,
            generate: || {
                let mut out = Vec::new();
                for (id, name, city) in [
                    ("c1", "Ada", "London"),
                    ("c2", "Grace", "Arlington"),
                    ("c3", "Linus", "Helsinki"),
                ] {
                    out.push((
                        Some(CUSTOMERS),
                        Some(id.to_owned()),
                        serde_json::json!({"name": name, "city": city}).to_string(),
                        0,
                    ));
                }
                for i in 0..9i64 {
                    let customer = format!("c{}", i % 3 + 1);
                    out.push((
                        None,
                        Some(format!("o{i}")),
                        serde_json::json!({"customer_id": customer, "amount": 10 * (i + 1)})
                            .to_string(),
                        1_000 + i,
                    ));
                }
                out
            },
            show: |k, v| format!("{} {}", text(k), text(v)),
        },
        args,
    )
    .await
}
