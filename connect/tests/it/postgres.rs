//! The PostgreSQL (JDBC-style) connectors against a real server: `SLUICE_TEST_POSTGRES_URL`
//! (scripts/test.sh starts one on 127.0.0.1); without it each test says it is skipped.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value as Json, json};
use sluice_log::client::config::ConsumerConfig;
use sluice_log::client::{Admin, Client, Consumer, NewTopic, Producer, ProducerRecord};
use sluice_log::client::{OffsetSpec, TopicPartition};

use crate::harness::{DEADLINE, Harness, running};

fn url() -> Option<String> {
    match std::env::var("SLUICE_TEST_POSTGRES_URL") {
        Ok(u) if !u.trim().is_empty() => Some(u),
        _ => {
            println!("skipped: SLUICE_TEST_POSTGRES_URL not set");
            None
        }
    }
}

async fn pg(url: &str) -> tokio_postgres::Client {
    let (c, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    c
}

/// A table name no other run uses.
fn unique(prefix: &str) -> String {
    let n = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}_{}_{n}", std::process::id())
}

/// Every record value of `topic` (JSON), once it holds at least `n`.
async fn wait_values(h: &Harness, topic: &str, n: usize) -> Vec<Json> {
    let admin = h.client.admin().unwrap();
    let tp = TopicPartition::new(topic, 0);
    let start = Instant::now();
    loop {
        let end = admin
            .list_offsets(&tp, OffsetSpec::Latest)
            .await
            .map(|o| o.offset)
            .unwrap_or(0);
        if end as usize >= n {
            let mut c = h.client.consumer(ConsumerConfig::default()).unwrap();
            c.assign(vec![tp.clone()]).unwrap();
            c.seek_to_beginning(&[]).await.unwrap();
            let mut out = Vec::new();
            while (out.len() as i64) < end {
                assert!(start.elapsed() < DEADLINE, "{topic}: reading timed out");
                for r in c.poll(Duration::from_millis(100)).await.unwrap() {
                    out.push(serde_json::from_slice(r.value.as_deref().unwrap()).unwrap());
                }
            }
            return out;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "{topic} holds {end} records, not {n}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn source_config(url: &str, table: &str, mode: &str) -> Json {
    json!({
        "connector.class": "io.confluent.connect.jdbc.JdbcSourceConnector",
        "connection.url": format!("jdbc:{url}"),
        "mode": mode,
        "incrementing.column.name": "id",
        "timestamp.column.name": "updated_at",
        "table.whitelist": table,
        "topic.prefix": "pg-",
        "poll.interval.ms": "100",
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tables_rows_arrive_as_structs_and_a_restart_resumes_after_the_stored_offset() {
    let Some(url) = url() else { return };
    let db = pg(&url).await;
    let table = unique("src");
    db.batch_execute(&format!(
        "CREATE TABLE {table} (id SERIAL PRIMARY KEY, name TEXT NOT NULL, score DOUBLE PRECISION, \
         price NUMERIC(10,2), updated_at TIMESTAMP NOT NULL DEFAULT now()); \
         INSERT INTO {table} (name, score, price) VALUES ('ann', 1.5, 9.99), ('bob', NULL, 1), ('cy', 3, NULL);"
    ))
    .await
    .unwrap();
    let topic = format!("pg-{table}");
    let tmp = tempfile::tempdir().unwrap();
    let mut h = Harness::start_in(tmp.path(), &[]).await;
    let config = source_config(&url, &table, "incrementing");
    let (code, body) = h
        .call("PUT", "/connectors/pg/config", Some(config.clone()))
        .await;
    assert_eq!(code, 201, "{body}");
    h.wait_status("pg", "running", running(1)).await;
    let v = wait_values(&h, &topic, 3).await;
    assert_eq!(v.len(), 3);
    let fields: Vec<(&str, &str, bool)> = v[0]["schema"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["field"].as_str().unwrap(),
                f["type"].as_str().unwrap(),
                f["optional"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        fields,
        [
            ("id", "int32", false),
            ("name", "string", false),
            ("score", "double", true),
            ("price", "string", true),
            ("updated_at", "int64", false),
        ]
    );
    assert_eq!(v[0]["schema"]["name"], table.as_str());
    assert_eq!(v[0]["payload"]["name"], "ann");
    assert_eq!(v[0]["payload"]["price"], "9.99");
    assert_eq!(v[1]["payload"]["score"], Json::Null);

    // Later inserts follow.
    db.batch_execute(&format!(
        "INSERT INTO {table} (name) VALUES ('dee'), ('eve')"
    ))
    .await
    .unwrap();
    wait_values(&h, &topic, 5).await;
    h.stop().await;
    drop(h);

    // Inserted while no worker runs; the restarted one goes on after id 5.
    db.batch_execute(&format!("INSERT INTO {table} (name) VALUES ('fay')"))
        .await
        .unwrap();
    let h = Harness::start_in(tmp.path(), &[]).await;
    let (code, _) = h.call("PUT", "/connectors/pg/config", Some(config)).await;
    assert_eq!(code, 201);
    let v = wait_values(&h, &topic, 6).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let v2 = wait_values(&h, &topic, 6).await;
    assert_eq!(v.len(), v2.len(), "nothing more came");
    let ids: Vec<i64> = v2
        .iter()
        .map(|r| r["payload"]["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [1, 2, 3, 4, 5, 6], "each row once, in order");
    let (_, offsets) = h.call("GET", "/connectors/pg/offsets", None).await;
    assert_eq!(
        offsets["offsets"][0],
        json!({"partition": {"table": table}, "offset": {"incrementing": 6}})
    );
    db.batch_execute(&format!("DROP TABLE {table}"))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timestamp_and_incrementing_mode_picks_up_updates() {
    let Some(url) = url() else { return };
    let db = pg(&url).await;
    let table = unique("upd");
    db.batch_execute(&format!(
        "CREATE TABLE {table} (id SERIAL PRIMARY KEY, name TEXT, \
         updated_at TIMESTAMP NOT NULL DEFAULT now() - INTERVAL '1 minute'); \
         INSERT INTO {table} (name) VALUES ('a'), ('b');"
    ))
    .await
    .unwrap();
    let topic = format!("pg-{table}");
    let h = Harness::start(&[]).await;
    let (code, body) = h
        .call(
            "PUT",
            "/connectors/upd/config",
            Some(source_config(&url, &table, "timestamp+incrementing")),
        )
        .await;
    assert_eq!(code, 201, "{body}");
    let v = wait_values(&h, &topic, 2).await;
    assert_eq!(v.len(), 2);
    db.batch_execute(&format!(
        "UPDATE {table} SET name = 'a2', updated_at = now() WHERE id = 1"
    ))
    .await
    .unwrap();
    let v = wait_values(&h, &topic, 3).await;
    assert_eq!(v[2]["payload"]["id"], 1);
    assert_eq!(v[2]["payload"]["name"], "a2");
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        wait_values(&h, &topic, 3).await.len(),
        3,
        "each change once"
    );
    db.batch_execute(&format!("DROP TABLE {table}"))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sink_creates_its_table_and_upserts_into_it() {
    let Some(url) = url() else { return };
    let db = pg(&url).await;
    let table = unique("dst");
    let topic = format!("t-{table}");
    let h = Harness::start(&[]).await;
    h.client
        .admin()
        .unwrap()
        .create_topics(vec![NewTopic::new(&topic, 1)])
        .await
        .unwrap();
    let producer = h.client.producer(Default::default()).unwrap();
    let send = |id: i32, name: &str| {
        let v = json!({
            "schema": {"type": "struct", "name": "user", "optional": false, "fields": [
                {"field": "id", "type": "int32", "optional": false},
                {"field": "name", "type": "string", "optional": true},
                {"field": "at", "type": "int64", "optional": true, "name": "org.apache.kafka.connect.data.Timestamp"}
            ]},
            "payload": {"id": id, "name": name, "at": 1_700_000_000_000_i64}
        });
        ProducerRecord::new(topic.clone(), v.to_string())
    };
    for (id, name) in [(1, "ann"), (2, "bob")] {
        producer.send(send(id, name)).await.unwrap().await.unwrap();
    }
    let (code, body) = h
        .call(
            "PUT",
            "/connectors/sink/config",
            Some(json!({
                "connector.class": "io.confluent.connect.jdbc.JdbcSinkConnector",
                "connection.url": url,
                "topics": topic,
                "insert.mode": "upsert",
                "pk.mode": "record_value",
                "pk.fields": "id",
                "auto.create": "true",
                "table.name.format": table,
            })),
        )
        .await;
    assert_eq!(code, 201, "{body}");
    let start = Instant::now();
    while rows(&db, &table).await.len() < 2 {
        assert!(start.elapsed() < DEADLINE, "the sink never wrote 2 rows");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    producer.send(send(1, "ann2")).await.unwrap().await.unwrap();
    let start = Instant::now();
    loop {
        let r = rows(&db, &table).await;
        if r.first().and_then(|r| r.1.as_deref()) == Some("ann2") {
            assert_eq!(r.len(), 2, "an upsert, not a second row");
            assert_eq!(r[1].1.as_deref(), Some("bob"));
            assert_eq!(
                r[0].2,
                Some(UNIX_EPOCH + Duration::from_millis(1_700_000_000_000))
            );
            break;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "the update never arrived: {r:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let pk = db
        .query_one(
            "SELECT count(*) FROM information_schema.table_constraints \
             WHERE table_name = $1 AND constraint_type = 'PRIMARY KEY'",
            &[&table],
        )
        .await
        .unwrap()
        .get::<_, i64>(0);
    assert_eq!(pk, 1, "auto.create made id the primary key");
    db.batch_execute(&format!("DROP TABLE {table}"))
        .await
        .unwrap();
}

type Row = (i32, Option<String>, Option<SystemTime>);

/// The sink table's rows by id (none while it does not exist).
async fn rows(db: &tokio_postgres::Client, table: &str) -> Vec<Row> {
    let sql = format!("SELECT id, name, at FROM {table} ORDER BY id");
    match db.query(&sql, &[]).await {
        Ok(rows) => rows
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect(),
        Err(_) => Vec::new(),
    }
}
