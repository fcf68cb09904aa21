//! PostgreSQL connectors in the manner of Confluent's JDBC connectors (their class names and
//! keys, so their configs work as they are), over `tokio-postgres`.
//!
//! - [`JdbcSourceConnector`]: copies tables (`table.whitelist`/`table.include.list`) or a
//!   `query` into `topic.prefix` + table, as Connect structs with the table's schema; `mode`
//!   `bulk` (the whole table at each poll), `incrementing` (rows whose
//!   `incrementing.column.name` is above the last one), `timestamp` (rows whose
//!   `timestamp.column.name` is after the last one and before now minus
//!   `timestamp.delay.interval.ms`), `timestamp+incrementing` (both: updates too, without
//!   missing rows of the same timestamp). Offsets per table: `{"incrementing": id}`,
//!   `{"timestamp": ms, "timestamp_nanos": nanos of the second}`, so a restarted task goes on
//!   after the last row it stored.
//! - [`JdbcSinkConnector`]: writes struct records into `table.name.format` (`${topic}`):
//!   `insert.mode` insert, upsert (`INSERT ... ON CONFLICT (pk) DO UPDATE`) or update;
//!   `pk.mode` none, kafka, record_key or record_value with `pk.fields`; `auto.create` and
//!   `auto.evolve` of the table; `delete.enabled` turns a tombstone into a DELETE. Each `put`
//!   is one transaction.
//!
//! `connection.url` is a JDBC URL (`jdbc:postgresql://host:port/db?user=u&password=p`), a
//! libpq URL (`postgresql://...`) or libpq's `key=value` form; `connection.user` and
//! `connection.password` override what it says.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::str::FromStr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde_json::Value as Json;
use sluice_client::TopicPartition;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client as PgClient, Config as PgConfig, NoTls, Row, Statement};

use crate::config::{Config, ConfigDef, ConfigType, Importance, Props, Validator, split_list};
use crate::connector::{SinkConnector, SinkTask, SourceConnector, SourceTask, SourceTaskContext};
use crate::data::{
    DATE_LOGICAL, Field, Schema, SchemaType, SinkRecord, SourceMap, SourceRecord,
    TIMESTAMP_LOGICAL, Value,
};
use crate::error::{Error, Result};

/// The source's modes.
pub const MODES: &[&str] = &[
    "bulk",
    "incrementing",
    "timestamp",
    "timestamp+incrementing",
];

fn pg_err(what: &str, e: tokio_postgres::Error) -> Error {
    // The database's own message (with its detail) when it sent one.
    let msg = match e.as_db_error() {
        Some(db) => match db.detail() {
            Some(d) => format!("{}: {} ({d})", db.severity(), db.message()),
            None => format!("{}: {}", db.severity(), db.message()),
        },
        None => e.to_string(),
    };
    Error::Task(format!("PostgreSQL, {what}: {msg}"))
}

/// The client config of `connection.url` with `connection.user`/`connection.password`.
pub fn pg_config(url: &str, user: Option<&str>, password: Option<&str>) -> Result<PgConfig> {
    let bad = |m: String| Error::config("connector", "connection.url", m);
    let url = url.trim();
    let url = url.strip_prefix("jdbc:").unwrap_or(url);
    let mut config = if url.starts_with("postgresql://") || url.starts_with("postgres://") {
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let mut c = PgConfig::from_str(base).map_err(|e| bad(format!("{url}: {e}")))?;
        for kv in query.split('&').filter(|kv| !kv.is_empty()) {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            match k {
                "user" => {
                    c.user(v);
                }
                "password" => {
                    c.password(v);
                }
                "application_name" | "ApplicationName" => {
                    c.application_name(v);
                }
                "options" => {
                    c.options(v);
                }
                "sslmode" if v == "disable" || v == "prefer" || v == "allow" => {}
                "ssl" if v == "false" => {}
                "connectTimeout" | "connect_timeout" => {
                    let secs: u64 = v
                        .parse()
                        .map_err(|_| bad(format!("{k}={v} is not a number of seconds")))?;
                    c.connect_timeout(Duration::from_secs(secs));
                }
                "sslmode" | "ssl" => {
                    return Err(bad(format!(
                        "{k}={v}: Sluice's PostgreSQL connectors connect without TLS"
                    )));
                }
                other => tracing::warn!(
                    "connection.url parameter {other} is not used by Sluice's PostgreSQL connectors; ignored"
                ),
            }
        }
        c
    } else {
        PgConfig::from_str(url).map_err(|e| {
            bad(format!(
                "{url}: {e} (expected jdbc:postgresql://host:port/db, postgresql://... or host=... dbname=...)"
            ))
        })?
    };
    if let Some(u) = user.filter(|u| !u.is_empty()) {
        config.user(u);
    }
    if let Some(p) = password.filter(|p| !p.is_empty()) {
        config.password(p);
    }
    if config.get_hosts().is_empty() {
        config.host("localhost");
    }
    Ok(config)
}

/// Connects, with the session in UTC (timestamps without a zone are UTC).
async fn connect(props: &Props) -> Result<PgClient> {
    let url = props.get("connection.url").cloned().unwrap_or_default();
    let config = pg_config(
        &url,
        props.get("connection.user").map(String::as_str),
        props.get("connection.password").map(String::as_str),
    )?;
    let (client, connection) = config
        .connect(NoTls)
        .await
        .map_err(|e| pg_err("connecting", e))?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(error = %e, "PostgreSQL connection closed");
        }
    });
    client
        .batch_execute("SET TIME ZONE 'UTC'")
        .await
        .map_err(|e| pg_err("setting the time zone", e))?;
    Ok(client)
}

/// `"name"`, a quoted identifier; `schema.table` quotes each part.
pub fn quote_table(name: &str) -> String {
    name.split('.').map(quote).collect::<Vec<_>>().join(".")
}

fn quote(id: &str) -> String {
    format!("\"{}\"", id.replace('"', "\"\""))
}

fn common_def() -> ConfigDef {
    let g = "Database";
    ConfigDef::new()
        .define("connection.url", ConfigType::String, None, Some(Validator::NonEmpty), Importance::High, "JDBC connection URL (jdbc:postgresql://host:port/db), a libpq URL or libpq key=value pairs.", g)
        .define("connection.user", ConfigType::String, Some(""), None, Importance::High, "JDBC connection user.", g)
        .define("connection.password", ConfigType::Password, Some(""), None, Importance::High, "JDBC connection password.", g)
        .define("connection.attempts", ConfigType::Int, Some("3"), None, Importance::Low, "Accepted for Confluent's configs; a failed connection fails the task.", g)
        .define("connection.backoff.ms", ConfigType::Long, Some("10000"), None, Importance::Low, "Accepted for Confluent's configs.", g)
        .define("dialect.name", ConfigType::String, Some(""), None, Importance::Low, "Accepted for Confluent's configs: the dialect is PostgreSQL's.", g)
}

fn long(p: &Props, key: &str, default: i64) -> Result<i64> {
    match p.get(key).map(|v| v.trim()).filter(|v| !v.is_empty()) {
        None => Ok(default),
        Some(v) => v
            .parse()
            .map_err(|_| Error::config("connector", key, format!("\"{v}\" is not a number"))),
    }
}

fn flag(p: &Props, key: &str) -> Result<bool> {
    match p.get(key).map(|v| v.trim().to_ascii_lowercase()).as_deref() {
        None | Some("") | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(v) => Err(Error::config(
            "connector",
            key,
            format!("\"{v}\" is not true or false"),
        )),
    }
}

// ---------------------------------------------------------------------------------------
// Source

/// Confluent's `io.confluent.connect.jdbc.JdbcSourceConnector`, on PostgreSQL.
#[derive(Debug, Default)]
pub struct JdbcSourceConnector {
    props: Props,
    tables: Vec<String>,
}

impl SourceConnector for JdbcSourceConnector {
    type Task = JdbcSourceTask;

    fn config_def() -> ConfigDef {
        let g = "Mode";
        common_def()
            .define(
                "table.whitelist",
                ConfigType::List,
                Some(""),
                None,
                Importance::Medium,
                "Tables to copy.",
                "Database",
            )
            .define(
                "table.include.list",
                ConfigType::List,
                Some(""),
                None,
                Importance::Medium,
                "Tables to copy (the newer name of table.whitelist).",
                "Database",
            )
            .define(
                "query",
                ConfigType::String,
                Some(""),
                None,
                Importance::Medium,
                "A query to run instead of copying tables.",
                "Database",
            )
            .define(
                "mode",
                ConfigType::String,
                None,
                Some(Validator::OneOf(
                    MODES.iter().map(|m| (*m).to_owned()).collect(),
                )),
                Importance::High,
                "bulk, incrementing, timestamp or timestamp+incrementing.",
                g,
            )
            .define(
                "incrementing.column.name",
                ConfigType::String,
                Some(""),
                None,
                Importance::Medium,
                "A strictly increasing column (incrementing modes).",
                g,
            )
            .define(
                "timestamp.column.name",
                ConfigType::String,
                Some(""),
                None,
                Importance::Medium,
                "A column of the last change's time (timestamp modes).",
                g,
            )
            .define(
                "timestamp.delay.interval.ms",
                ConfigType::Long,
                Some("0"),
                Some(Validator::AtLeast(0)),
                Importance::High,
                "How long after a row's timestamp it is copied, for transactions still open.",
                g,
            )
            .define(
                "topic.prefix",
                ConfigType::String,
                None,
                None,
                Importance::High,
                "Prefix of the table's name for its topic (the whole topic with query).",
                "Connector",
            )
            .define(
                "poll.interval.ms",
                ConfigType::Long,
                Some("5000"),
                Some(Validator::AtLeast(1)),
                Importance::High,
                "How often each table is polled.",
                "Connector",
            )
            .define(
                "batch.max.rows",
                ConfigType::Int,
                Some("100"),
                Some(Validator::AtLeast(1)),
                Importance::Low,
                "Rows per poll at most.",
                "Connector",
            )
            .define(
                "validate.non.null",
                ConfigType::Boolean,
                Some("true"),
                None,
                Importance::Low,
                "Accepted for Confluent's configs.",
                g,
            )
            .define(
                "table.types",
                ConfigType::List,
                Some("TABLE"),
                None,
                Importance::Low,
                "Accepted for Confluent's configs.",
                "Database",
            )
            .define(
                "numeric.mapping",
                ConfigType::String,
                Some(""),
                None,
                Importance::Low,
                "Accepted for Confluent's configs: NUMERIC columns are copied as strings.",
                "Database",
            )
    }

    fn start(&mut self, config: Config) -> Result<()> {
        let owner = config.owner().to_owned();
        let mut tables = config.list("table.whitelist");
        tables.extend(config.list("table.include.list"));
        let query = config.optional_string("query");
        match (&query, tables.is_empty()) {
            (None, true) => {
                return Err(Error::config(
                    &owner,
                    "table.whitelist",
                    "list the tables to copy (table.whitelist or table.include.list), or give a query",
                ));
            }
            (Some(_), false) => {
                return Err(Error::config(
                    &owner,
                    "query",
                    "a query copies one result; it cannot be combined with table.whitelist or table.include.list",
                ));
            }
            _ => {}
        }
        let mode = config.string("mode");
        let needs = |key: &str| -> Result<()> {
            if config.optional_string(key).is_none() {
                return Err(Error::config(
                    &owner,
                    key,
                    format!("mode {mode} needs {key}"),
                ));
            }
            Ok(())
        };
        if mode.contains("incrementing") {
            needs("incrementing.column.name")?;
        }
        if mode.contains("timestamp") {
            needs("timestamp.column.name")?;
        }
        pg_config(
            &config.string("connection.url"),
            config.get("connection.user"),
            config.get("connection.password"),
        )?;
        self.props = config.props().clone();
        self.tables = tables;
        Ok(())
    }

    fn task_configs(&self, max_tasks: usize) -> Result<Vec<Props>> {
        if self.tables.is_empty() {
            let mut p = self.props.clone();
            p.insert("tables".into(), String::new());
            return Ok(vec![p]);
        }
        let n = max_tasks.max(1).min(self.tables.len());
        let mut groups: Vec<Vec<String>> = vec![Vec::new(); n];
        for (i, t) in self.tables.iter().enumerate() {
            groups[i % n].push(t.clone());
        }
        Ok(groups
            .into_iter()
            .map(|g| {
                let mut p = self.props.clone();
                p.insert("tables".into(), g.join(","));
                p
            })
            .collect())
    }
}

/// How a column is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Bool,
    I16,
    I32,
    I64,
    F32,
    F64,
    Text,
    Bytes,
    Timestamp,
    /// Anything else, read as its text (`::text`).
    AsText,
}

fn kind_of(ty: &Type) -> Kind {
    match *ty {
        Type::BOOL => Kind::Bool,
        Type::INT2 => Kind::I16,
        Type::INT4 => Kind::I32,
        Type::INT8 => Kind::I64,
        Type::FLOAT4 => Kind::F32,
        Type::FLOAT8 => Kind::F64,
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME => Kind::Text,
        Type::BYTEA => Kind::Bytes,
        Type::TIMESTAMP | Type::TIMESTAMPTZ => Kind::Timestamp,
        _ => Kind::AsText,
    }
}

fn schema_of(kind: Kind, optional: bool) -> Schema {
    let s = match kind {
        Kind::Bool => Schema::new(SchemaType::Boolean),
        Kind::I16 => Schema::new(SchemaType::Int16),
        Kind::I32 => Schema::new(SchemaType::Int32),
        Kind::I64 => Schema::new(SchemaType::Int64),
        Kind::F32 => Schema::new(SchemaType::Float32),
        Kind::F64 => Schema::new(SchemaType::Float64),
        Kind::Text | Kind::AsText => Schema::new(SchemaType::String),
        Kind::Bytes => Schema::new(SchemaType::Bytes),
        Kind::Timestamp => Schema::new(SchemaType::Int64).named(TIMESTAMP_LOGICAL),
    };
    if optional { s.optional() } else { s }
}

/// Microseconds since the epoch (negative before it).
fn micros(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_micros() as i64,
        Err(e) => -(e.duration().as_micros() as i64),
    }
}

fn read(row: &Row, i: usize, kind: Kind) -> std::result::Result<Value, tokio_postgres::Error> {
    Ok(match kind {
        Kind::Bool => row.try_get::<_, Option<bool>>(i)?.map(Value::Boolean),
        Kind::I16 => row
            .try_get::<_, Option<i16>>(i)?
            .map(|v| Value::Int(v.into())),
        Kind::I32 => row
            .try_get::<_, Option<i32>>(i)?
            .map(|v| Value::Int(v.into())),
        Kind::I64 => row.try_get::<_, Option<i64>>(i)?.map(Value::Int),
        Kind::F32 => row
            .try_get::<_, Option<f32>>(i)?
            .map(|v| Value::Float(v.into())),
        Kind::F64 => row.try_get::<_, Option<f64>>(i)?.map(Value::Float),
        Kind::Text | Kind::AsText => row.try_get::<_, Option<String>>(i)?.map(Value::String),
        Kind::Bytes => row
            .try_get::<_, Option<Vec<u8>>>(i)?
            .map(|v| Value::Bytes(Bytes::from(v))),
        Kind::Timestamp => row
            .try_get::<_, Option<SystemTime>>(i)?
            .map(|t| Value::Int(micros(t).div_euclid(1000))),
    }
    .unwrap_or(Value::Null))
}

/// One table (or the query) the task copies, and where it is.
#[derive(Debug)]
struct Source {
    partition: SourceMap,
    topic: String,
    /// `SELECT <columns> FROM <table>` (or the query as a subquery).
    select: String,
    columns: Vec<(String, Kind)>,
    schema: Schema,
    inc_index: Option<usize>,
    ts_index: Option<usize>,
    inc: i64,
    ts_micros: i64,
    due: Option<Instant>,
}

/// The task of [`JdbcSourceConnector`].
#[derive(Default)]
pub struct JdbcSourceTask {
    client: Option<PgClient>,
    sources: Vec<Source>,
    mode: String,
    inc_col: String,
    ts_col: String,
    poll_interval: Duration,
    batch_max_rows: i64,
    delay_ms: i64,
    next: usize,
}

impl std::fmt::Debug for JdbcSourceTask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JdbcSourceTask")
            .field("mode", &self.mode)
            .field("sources", &self.sources.len())
            .finish_non_exhaustive()
    }
}

/// The columns of a table: name, how to read it, whether it may be null.
async fn table_columns(client: &PgClient, table: &str) -> Result<Vec<(String, Type, bool)>> {
    let rows = client
        .query(
            "SELECT a.attname::text, a.atttypid, NOT a.attnotnull FROM pg_attribute a \
             WHERE a.attrelid = $1::text::regclass AND a.attnum > 0 AND NOT a.attisdropped \
             ORDER BY a.attnum",
            &[&quote_table(table)],
        )
        .await
        .map_err(|e| pg_err(&format!("reading the columns of table {table}"), e))?;
    rows.iter()
        .map(|r| {
            let oid: u32 = r.get(1);
            Ok((
                r.get::<_, String>(0),
                Type::from_oid(oid).unwrap_or(Type::TEXT),
                r.get::<_, bool>(2),
            ))
        })
        .collect()
}

impl JdbcSourceTask {
    fn client(&self) -> Result<&PgClient> {
        self.client
            .as_ref()
            .ok_or_else(|| Error::Task("the task is not started".into()))
    }

    /// Builds the source of a table (or the query) from its columns.
    fn source(
        &self,
        name: &str,
        from: String,
        columns: Vec<(String, Type, bool)>,
        partition: SourceMap,
        topic: String,
        context: &SourceTaskContext,
    ) -> Result<Source> {
        let mut cols = Vec::new();
        let mut select = Vec::new();
        let mut fields = Vec::new();
        for (col, ty, nullable) in columns {
            let kind = kind_of(&ty);
            select.push(if kind == Kind::AsText {
                format!("{}::text AS {}", quote(&col), quote(&col))
            } else {
                quote(&col)
            });
            fields.push(Field {
                name: col.clone(),
                schema: schema_of(kind, nullable),
            });
            cols.push((col, kind));
        }
        let find = |c: &str, what: &str| -> Result<Option<usize>> {
            if c.is_empty() {
                return Ok(None);
            }
            cols.iter()
                .position(|(n, _)| n == c)
                .map(Some)
                .ok_or_else(|| {
                    Error::config(
                        "connector",
                        what,
                        format!("{name} has no column {c}; it has {}", {
                            let names: Vec<&str> = cols.iter().map(|(n, _)| n.as_str()).collect();
                            names.join(", ")
                        }),
                    )
                })
        };
        let inc_index = find(&self.inc_col, "incrementing.column.name")?;
        let ts_index = find(&self.ts_col, "timestamp.column.name")?;
        if let Some(i) = inc_index
            && !matches!(cols[i].1, Kind::I16 | Kind::I32 | Kind::I64)
        {
            return Err(Error::config(
                "connector",
                "incrementing.column.name",
                format!("{}.{} is not an integer column", name, cols[i].0),
            ));
        }
        if let Some(i) = ts_index
            && cols[i].1 != Kind::Timestamp
        {
            return Err(Error::config(
                "connector",
                "timestamp.column.name",
                format!("{}.{} is not a timestamp column", name, cols[i].0),
            ));
        }
        let offset = context.offset(&partition);
        let inc = offset
            .and_then(|o| o.get("incrementing"))
            .and_then(Json::as_i64)
            .unwrap_or(-1);
        let ts_micros = offset
            .and_then(|o| o.get("timestamp"))
            .and_then(Json::as_i64)
            .map(|ms| {
                let nanos = offset
                    .and_then(|o| o.get("timestamp_nanos"))
                    .and_then(Json::as_i64)
                    .unwrap_or(ms.rem_euclid(1000) * 1_000_000);
                ms.div_euclid(1000) * 1_000_000 + nanos / 1000
            })
            .unwrap_or(0);
        let schema_name = name.rsplit('.').next().unwrap_or(name).to_owned();
        Ok(Source {
            partition,
            topic,
            select: format!("SELECT {} FROM {from}", select.join(", ")),
            columns: cols,
            schema: Schema::structure(fields).named(schema_name),
            inc_index,
            ts_index,
            inc,
            ts_micros,
            due: None,
        })
    }

    /// The query of one poll of `s` and its parameters.
    fn query(&self, s: &Source) -> (String, Vec<i64>) {
        let ts =
            |p: usize| format!("(TIMESTAMPTZ 'epoch' + ${p}::int8 * INTERVAL '1 microsecond')");
        let upper = format!("(now() - {} * INTERVAL '1 millisecond')", self.delay_ms);
        let limit = self.batch_max_rows;
        let inc = quote(&self.inc_col);
        let tsc = quote(&self.ts_col);
        match self.mode.as_str() {
            "incrementing" => (
                format!(
                    "{} WHERE {inc} > $1::int8 ORDER BY {inc} ASC LIMIT {limit}",
                    s.select
                ),
                vec![s.inc],
            ),
            "timestamp" => (
                format!(
                    "{} WHERE {tsc} > {} AND {tsc} < {upper} ORDER BY {tsc} ASC",
                    s.select,
                    ts(1)
                ),
                vec![s.ts_micros],
            ),
            "timestamp+incrementing" => (
                format!(
                    "{} WHERE {tsc} < {upper} AND (({tsc} = {t} AND {inc} > $2::int8) OR {tsc} > {t}) ORDER BY {tsc}, {inc} ASC LIMIT {limit}",
                    s.select,
                    t = ts(1)
                ),
                vec![s.ts_micros, s.inc],
            ),
            _ => (s.select.clone(), Vec::new()),
        }
    }
}

impl SourceTask for JdbcSourceTask {
    async fn start(&mut self, config: Props, context: SourceTaskContext) -> Result<()> {
        self.mode = config.get("mode").cloned().unwrap_or_else(|| "bulk".into());
        // The mode says which columns count (a config may name both).
        self.inc_col = config
            .get("incrementing.column.name")
            .filter(|_| self.mode.contains("incrementing"))
            .cloned()
            .unwrap_or_default();
        self.ts_col = config
            .get("timestamp.column.name")
            .filter(|_| self.mode.contains("timestamp"))
            .cloned()
            .unwrap_or_default();
        self.poll_interval =
            Duration::from_millis(long(&config, "poll.interval.ms", 5000)?.max(1) as u64);
        self.batch_max_rows = long(&config, "batch.max.rows", 100)?.max(1);
        self.delay_ms = long(&config, "timestamp.delay.interval.ms", 0)?.max(0);
        let prefix = config.get("topic.prefix").cloned().unwrap_or_default();
        let client = connect(&config).await?;
        self.client = Some(client);
        let query = config
            .get("query")
            .map(|q| q.trim().to_owned())
            .filter(|q| !q.is_empty());
        let mut sources = Vec::new();
        match query {
            Some(q) => {
                let stmt = self
                    .client()?
                    .prepare(&q)
                    .await
                    .map_err(|e| pg_err("preparing the query", e))?;
                let columns = stmt
                    .columns()
                    .iter()
                    .map(|c| (c.name().to_owned(), c.type_().clone(), true))
                    .collect();
                let mut partition = SourceMap::new();
                partition.insert("query".into(), Json::from("query"));
                sources.push(self.source(
                    "query",
                    format!("({q}) AS sluice_query"),
                    columns,
                    partition,
                    prefix.clone(),
                    &context,
                )?);
            }
            None => {
                for table in split_list(config.get("tables").map(String::as_str).unwrap_or("")) {
                    let columns = table_columns(self.client()?, &table).await?;
                    let mut partition = SourceMap::new();
                    partition.insert("table".into(), Json::from(table.clone()));
                    sources.push(self.source(
                        &table,
                        quote_table(&table),
                        columns,
                        partition,
                        format!("{prefix}{table}"),
                        &context,
                    )?);
                }
            }
        }
        tracing::info!(mode = %self.mode, sources = sources.len(), "JDBC source started");
        self.sources = sources;
        Ok(())
    }

    async fn poll(&mut self) -> Result<Vec<SourceRecord>> {
        if self.sources.is_empty() {
            tokio::time::sleep(Duration::from_millis(500)).await;
            return Ok(Vec::new());
        }
        // The next source due, in turn; waits (at most 500 ms, so the runtime sees a stop)
        // when none is.
        let now = Instant::now();
        let n = self.sources.len();
        let due = (0..n)
            .map(|k| (self.next + k) % n)
            .find(|i| self.sources[*i].due.is_none_or(|d| d <= now));
        let Some(i) = due else {
            let earliest = self.sources.iter().filter_map(|s| s.due).min();
            let wait = earliest
                .map(|d| d.saturating_duration_since(now))
                .unwrap_or_default()
                .min(Duration::from_millis(500));
            tokio::time::sleep(wait).await;
            return Ok(Vec::new());
        };
        self.next = (i + 1) % n;
        let (sql, params) = self.query(&self.sources[i]);
        let refs: Vec<&(dyn ToSql + Sync)> =
            params.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
        let rows = self
            .client()?
            .query(&sql, &refs)
            .await
            .map_err(|e| pg_err(&format!("polling {}", self.sources[i].topic), e))?;
        let full = self.mode != "bulk"
            && self.mode != "timestamp"
            && rows.len() as i64 >= self.batch_max_rows;
        let s = &mut self.sources[i];
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let mut fields = Vec::with_capacity(s.columns.len());
            for (c, (name, kind)) in s.columns.iter().enumerate() {
                let v = read(row, c, *kind)
                    .map_err(|e| pg_err(&format!("reading column {name}"), e))?;
                fields.push((name.clone(), v));
            }
            if let Some(c) = s.inc_index
                && let Value::Int(v) = fields[c].1
            {
                s.inc = v;
            }
            if let Some(c) = s.ts_index
                && let Some(t) = row
                    .try_get::<_, Option<SystemTime>>(c)
                    .map_err(|e| pg_err("reading the timestamp column", e))?
            {
                s.ts_micros = micros(t);
            }
            let mut offset = SourceMap::new();
            if s.inc_index.is_some() {
                offset.insert("incrementing".into(), Json::from(s.inc));
            }
            if s.ts_index.is_some() {
                offset.insert("timestamp".into(), Json::from(s.ts_micros.div_euclid(1000)));
                offset.insert(
                    "timestamp_nanos".into(),
                    Json::from(s.ts_micros.rem_euclid(1_000_000) * 1000),
                );
            }
            out.push(SourceRecord::source(
                s.partition.clone(),
                offset,
                s.topic.clone(),
                Some(s.schema.clone()),
                Value::Struct(fields),
            ));
        }
        s.due = if full {
            None
        } else {
            Some(Instant::now() + self.poll_interval)
        };
        Ok(out)
    }

    async fn stop(&mut self) {
        self.client = None;
    }
}

// ---------------------------------------------------------------------------------------
// Sink

/// Confluent's `io.confluent.connect.jdbc.JdbcSinkConnector`, on PostgreSQL.
#[derive(Debug, Default)]
pub struct JdbcSinkConnector {
    props: Props,
}

impl SinkConnector for JdbcSinkConnector {
    type Task = JdbcSinkTask;

    fn config_def() -> ConfigDef {
        let g = "Writes";
        let one_of = |v: &[&str]| {
            Some(Validator::OneOf(
                v.iter().map(|s| (*s).to_owned()).collect(),
            ))
        };
        common_def()
            .define(
                "insert.mode",
                ConfigType::String,
                Some("insert"),
                one_of(&["insert", "upsert", "update"]),
                Importance::High,
                "insert, upsert (INSERT ... ON CONFLICT DO UPDATE) or update.",
                g,
            )
            .define(
                "pk.mode",
                ConfigType::String,
                Some("none"),
                one_of(&["none", "kafka", "record_key", "record_value"]),
                Importance::High,
                "Where the primary key comes from.",
                "Data Mapping",
            )
            .define(
                "pk.fields",
                ConfigType::List,
                Some(""),
                None,
                Importance::Medium,
                "The primary key's fields.",
                "Data Mapping",
            )
            .define(
                "fields.whitelist",
                ConfigType::List,
                Some(""),
                None,
                Importance::Medium,
                "The value's fields to write (all when empty).",
                "Data Mapping",
            )
            .define(
                "table.name.format",
                ConfigType::String,
                Some("${topic}"),
                None,
                Importance::Medium,
                "The table of a topic; ${topic} is replaced by the topic.",
                "Data Mapping",
            )
            .define(
                "auto.create",
                ConfigType::Boolean,
                Some("false"),
                None,
                Importance::Medium,
                "Create a missing table from the record's schema.",
                "DDL Support",
            )
            .define(
                "auto.evolve",
                ConfigType::Boolean,
                Some("false"),
                None,
                Importance::Medium,
                "Add missing (optional) columns to the table.",
                "DDL Support",
            )
            .define(
                "delete.enabled",
                ConfigType::Boolean,
                Some("false"),
                None,
                Importance::Medium,
                "Delete the row of a tombstone's key (pk.mode=record_key).",
                g,
            )
            .define(
                "batch.size",
                ConfigType::Int,
                Some("3000"),
                Some(Validator::AtLeast(1)),
                Importance::Medium,
                "Accepted for Confluent's configs: each put is one transaction.",
                g,
            )
            .define(
                "max.retries",
                ConfigType::Int,
                Some("10"),
                None,
                Importance::Medium,
                "Accepted for Confluent's configs: see errors.retry.timeout.ms.",
                "Retries",
            )
            .define(
                "retry.backoff.ms",
                ConfigType::Int,
                Some("3000"),
                None,
                Importance::Medium,
                "Accepted for Confluent's configs.",
                "Retries",
            )
            .define(
                "db.timezone",
                ConfigType::String,
                Some("UTC"),
                None,
                Importance::Medium,
                "Accepted for Confluent's configs: the session is UTC.",
                g,
            )
    }

    fn start(&mut self, config: Config) -> Result<()> {
        let owner = config.owner().to_owned();
        let pk_mode = config.string("pk.mode");
        if config.string("insert.mode") != "insert" && pk_mode == "none" {
            return Err(Error::config(
                &owner,
                "pk.mode",
                "insert.mode upsert and update need a primary key: pk.mode kafka, record_key or record_value",
            ));
        }
        if config.boolean("delete.enabled")? && pk_mode != "record_key" {
            return Err(Error::config(
                &owner,
                "delete.enabled",
                "deletes need pk.mode=record_key (the tombstone's key names the row)",
            ));
        }
        pg_config(
            &config.string("connection.url"),
            config.get("connection.user"),
            config.get("connection.password"),
        )?;
        self.props = config.props().clone();
        Ok(())
    }

    fn task_configs(&self, max_tasks: usize) -> Result<Vec<Props>> {
        Ok(vec![self.props.clone(); max_tasks.max(1)])
    }
}

/// A column to write: its name, schema and value.
type Col = (String, Schema, Value);

/// What a record becomes.
enum Write {
    Row {
        table: String,
        pk: Vec<Col>,
        cols: Vec<Col>,
    },
    Delete {
        table: String,
        pk: Vec<Col>,
    },
}

/// The task of [`JdbcSinkConnector`].
#[derive(Default)]
pub struct JdbcSinkTask {
    client: Option<PgClient>,
    insert_mode: String,
    pk_mode: String,
    pk_fields: Vec<String>,
    fields_whitelist: Vec<String>,
    table_format: String,
    auto_create: bool,
    auto_evolve: bool,
    delete_enabled: bool,
    /// Columns of the tables written to, as last read or made.
    tables: HashMap<String, BTreeSet<String>>,
    statements: HashMap<String, Statement>,
}

impl std::fmt::Debug for JdbcSinkTask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JdbcSinkTask")
            .field("insert_mode", &self.insert_mode)
            .field("pk_mode", &self.pk_mode)
            .finish_non_exhaustive()
    }
}

/// The schema of a value that came without one.
fn infer_schema(v: &Value) -> Schema {
    match v {
        Value::Boolean(_) => Schema::new(SchemaType::Boolean).optional(),
        Value::Int(_) => Schema::new(SchemaType::Int64).optional(),
        Value::Float(_) => Schema::new(SchemaType::Float64).optional(),
        Value::Bytes(_) => Schema::new(SchemaType::Bytes).optional(),
        _ => Schema::new(SchemaType::String).optional(),
    }
}

/// The fields of a struct (or map) value with their schemas.
fn fields_of(schema: Option<&Schema>, v: &Value, what: &str) -> Result<Vec<Col>> {
    if !v.has_fields() {
        return Err(Error::data(
            what,
            format!(
                "the JDBC sink writes structs (or maps) with fields; got {}",
                v.describe()
            ),
        ));
    }
    Ok(v.fields()
        .into_iter()
        .map(|(name, value)| {
            let s = schema
                .and_then(|s| s.field(&name))
                .map(|f| f.schema.clone())
                .unwrap_or_else(|| infer_schema(&value));
            (name, s, value)
        })
        .collect())
}

/// The PostgreSQL type of a column of this schema.
fn sql_type(s: &Schema) -> &'static str {
    match (s.ty, s.name.as_deref()) {
        (SchemaType::Int64, Some(TIMESTAMP_LOGICAL)) => "TIMESTAMP",
        (SchemaType::Int32, Some(DATE_LOGICAL)) => "DATE",
        (SchemaType::Int8 | SchemaType::Int16, _) => "SMALLINT",
        (SchemaType::Int32, _) => "INT",
        (SchemaType::Int64, _) => "BIGINT",
        (SchemaType::Float32, _) => "REAL",
        (SchemaType::Float64, _) => "DOUBLE PRECISION",
        (SchemaType::Boolean, _) => "BOOLEAN",
        (SchemaType::Bytes, _) => "BYTEA",
        _ => "TEXT",
    }
}

/// The placeholder `$n` of a value of this schema, cast to its type, and the value to bind.
fn bind(n: usize, s: &Schema, v: &Value) -> (String, Box<dyn ToSql + Sync + Send>) {
    let int = |v: &Value| match v {
        Value::Int(i) => Some(*i),
        Value::Float(f) => Some(*f as i64),
        Value::String(t) => t.parse().ok(),
        _ => None,
    };
    match (s.ty, s.name.as_deref()) {
        (SchemaType::Int64, Some(TIMESTAMP_LOGICAL)) => (
            format!("${n}::timestamptz"),
            Box::new(int(v).map(|ms| {
                if ms >= 0 {
                    UNIX_EPOCH + Duration::from_millis(ms as u64)
                } else {
                    UNIX_EPOCH - Duration::from_millis(ms.unsigned_abs())
                }
            })),
        ),
        (SchemaType::Int32, Some(DATE_LOGICAL)) => (
            format!("(DATE '1970-01-01' + ${n}::int4)"),
            Box::new(int(v).and_then(|d| i32::try_from(d).ok())),
        ),
        (SchemaType::Int8 | SchemaType::Int16, _) => (
            format!("${n}::int2"),
            Box::new(int(v).and_then(|i| i16::try_from(i).ok())),
        ),
        (SchemaType::Int32, _) => (
            format!("${n}::int4"),
            Box::new(int(v).and_then(|i| i32::try_from(i).ok())),
        ),
        (SchemaType::Int64, _) => (format!("${n}::int8"), Box::new(int(v))),
        (SchemaType::Float32 | SchemaType::Float64, _) => {
            let f = match v {
                Value::Float(f) => Some(*f),
                Value::Int(i) => Some(*i as f64),
                _ => None,
            };
            if s.ty == SchemaType::Float32 {
                (format!("${n}::float4"), Box::new(f.map(|f| f as f32)))
            } else {
                (format!("${n}::float8"), Box::new(f))
            }
        }
        (SchemaType::Boolean, _) => (
            format!("${n}::bool"),
            Box::new(match v {
                Value::Boolean(b) => Some(*b),
                _ => None,
            }),
        ),
        (SchemaType::Bytes, _) => (
            format!("${n}::bytea"),
            Box::new(match v {
                Value::Bytes(b) => Some(b.to_vec()),
                _ => None,
            }),
        ),
        _ => (
            format!("${n}::text"),
            Box::new(match v {
                Value::Null => None,
                Value::String(t) => Some(t.clone()),
                other => Some(
                    other
                        .to_text()
                        .unwrap_or_else(|| other.to_json_schemaless().to_string()),
                ),
            }),
        ),
    }
}

impl JdbcSinkTask {
    fn table_of(&self, topic: &str) -> String {
        self.table_format.replace("${topic}", topic)
    }

    /// What a record becomes: a row (with its key columns) or a delete.
    fn to_write(&self, r: &SinkRecord) -> Result<Option<Write>> {
        let what = format!(
            "{}-{}@{}",
            r.topic,
            r.kafka_partition.unwrap_or(-1),
            r.kafka_offset.unwrap_or(-1)
        );
        let table = self.table_of(&r.topic);
        let pk: Vec<Col> = match self.pk_mode.as_str() {
            "kafka" => {
                let names: Vec<String> = if self.pk_fields.len() == 3 {
                    self.pk_fields.clone()
                } else {
                    vec![
                        "__connect_topic".into(),
                        "__connect_partition".into(),
                        "__connect_offset".into(),
                    ]
                };
                vec![
                    (
                        names[0].clone(),
                        Schema::new(SchemaType::String),
                        Value::String(r.topic.clone()),
                    ),
                    (
                        names[1].clone(),
                        Schema::new(SchemaType::Int32),
                        Value::Int(r.kafka_partition.unwrap_or(0).into()),
                    ),
                    (
                        names[2].clone(),
                        Schema::new(SchemaType::Int64),
                        Value::Int(r.kafka_offset.unwrap_or(0)),
                    ),
                ]
            }
            "record_key" => {
                if r.key.is_null() {
                    return Err(Error::data(&what, "pk.mode=record_key but the key is null"));
                }
                if r.key.has_fields() {
                    let all = fields_of(r.key_schema.as_ref(), &r.key, &what)?;
                    if self.pk_fields.is_empty() {
                        all
                    } else {
                        self.pk_fields
                            .iter()
                            .map(|f| {
                                all.iter().find(|(n, _, _)| n == f).cloned().ok_or_else(|| {
                                    Error::data(&what, format!("the key has no field {f}"))
                                })
                            })
                            .collect::<Result<_>>()?
                    }
                } else {
                    let name = self
                        .pk_fields
                        .first()
                        .cloned()
                        .unwrap_or_else(|| "__connect_key".into());
                    let s = r.key_schema.clone().unwrap_or_else(|| infer_schema(&r.key));
                    vec![(name, s, r.key.clone())]
                }
            }
            _ => Vec::new(),
        };
        if r.value.is_null() {
            if self.delete_enabled {
                return Ok(Some(Write::Delete { table, pk }));
            }
            tracing::debug!(record = %what, "a tombstone without delete.enabled; skipped");
            return Ok(None);
        }
        let mut cols = fields_of(r.value_schema.as_ref(), &r.value, &what)?;
        if !self.fields_whitelist.is_empty() {
            cols.retain(|(n, _, _)| {
                self.fields_whitelist.contains(n) || self.pk_fields.contains(n)
            });
        }
        let pk = if self.pk_mode == "record_value" {
            let names: Vec<String> = if self.pk_fields.is_empty() {
                cols.iter().map(|(n, _, _)| n.clone()).collect()
            } else {
                self.pk_fields.clone()
            };
            let mut pk = Vec::new();
            for n in names {
                let at = cols.iter().position(|(c, _, _)| *c == n).ok_or_else(|| {
                    Error::data(
                        &what,
                        format!("pk.fields names {n}, which the value does not have"),
                    )
                })?;
                pk.push(cols.remove(at));
            }
            pk
        } else {
            pk
        };
        Ok(Some(Write::Row { table, pk, cols }))
    }

    fn client(&self) -> Result<&PgClient> {
        self.client
            .as_ref()
            .ok_or_else(|| Error::Task("the task is not started".into()))
    }

    /// Makes sure the table has the columns: reads them, creates the table (`auto.create`),
    /// adds columns (`auto.evolve`), or says what is missing.
    async fn ensure_table(&mut self, table: &str, pk: &[Col], cols: &[Col]) -> Result<()> {
        let wanted: Vec<&Col> = pk.iter().chain(cols).collect();
        if let Some(have) = self.tables.get(table)
            && wanted.iter().all(|(n, _, _)| have.contains(n))
        {
            return Ok(());
        }
        let (schema, name) = match table.rsplit_once('.') {
            Some((s, t)) => (Some(s.to_owned()), t.to_owned()),
            None => (None, table.to_owned()),
        };
        let rows = self
            .client()?
            .query(
                "SELECT column_name::text FROM information_schema.columns \
                 WHERE table_schema = coalesce($1, current_schema()) AND table_name = $2",
                &[&schema, &name],
            )
            .await
            .map_err(|e| pg_err(&format!("reading the columns of {table}"), e))?;
        let mut have: BTreeSet<String> = rows.iter().map(|r| r.get(0)).collect();
        if have.is_empty() {
            if !self.auto_create {
                return Err(Error::Task(format!(
                    "table {table} does not exist and auto.create is false"
                )));
            }
            let mut defs: Vec<String> = wanted
                .iter()
                .map(|(n, s, _)| {
                    let not_null = if !s.optional || pk.iter().any(|(p, _, _)| p == n) {
                        " NOT NULL"
                    } else {
                        ""
                    };
                    format!("{} {}{not_null}", quote(n), sql_type(s))
                })
                .collect();
            if !pk.is_empty() {
                let keys: Vec<String> = pk.iter().map(|(n, _, _)| quote(n)).collect();
                defs.push(format!("PRIMARY KEY ({})", keys.join(", ")));
            }
            let ddl = format!(
                "CREATE TABLE IF NOT EXISTS {} ({})",
                quote_table(table),
                defs.join(", ")
            );
            tracing::info!(table, ddl, "creating the table (auto.create)");
            self.client()?
                .batch_execute(&ddl)
                .await
                .map_err(|e| pg_err(&format!("creating {table}"), e))?;
            have = wanted.iter().map(|(n, _, _)| n.clone()).collect();
        } else {
            let missing: Vec<&&Col> = wanted
                .iter()
                .filter(|(n, _, _)| !have.contains(n))
                .collect();
            if !missing.is_empty() {
                let names: Vec<&str> = missing.iter().map(|(n, _, _)| n.as_str()).collect();
                if !self.auto_evolve {
                    return Err(Error::Task(format!(
                        "table {table} has no column {} and auto.evolve is false",
                        names.join(", ")
                    )));
                }
                for (n, s, _) in missing.iter().map(|c| &***c) {
                    let ddl = format!(
                        "ALTER TABLE {} ADD COLUMN IF NOT EXISTS {} {}",
                        quote_table(table),
                        quote(n),
                        sql_type(s)
                    );
                    tracing::info!(table, ddl, "adding a column (auto.evolve)");
                    self.client()?
                        .batch_execute(&ddl)
                        .await
                        .map_err(|e| pg_err(&format!("altering {table}"), e))?;
                    have.insert(n.clone());
                }
                self.statements.clear();
            }
        }
        self.tables.insert(table.to_owned(), have);
        Ok(())
    }

    /// The statement of a write, and its parameters.
    fn statement(&self, w: &Write) -> (String, Vec<Box<dyn ToSql + Sync + Send>>) {
        let mut params: Vec<Box<dyn ToSql + Sync + Send>> = Vec::new();
        let next = |s: &Schema, v: &Value, params: &mut Vec<Box<dyn ToSql + Sync + Send>>| {
            let (p, b) = bind(params.len() + 1, s, v);
            params.push(b);
            p
        };
        match w {
            Write::Delete { table, pk } => {
                let conds: Vec<String> = pk
                    .iter()
                    .map(|(n, s, v)| format!("{} = {}", quote(n), next(s, v, &mut params)))
                    .collect();
                (
                    format!(
                        "DELETE FROM {} WHERE {}",
                        quote_table(table),
                        conds.join(" AND ")
                    ),
                    params,
                )
            }
            Write::Row { table, pk, cols } if self.insert_mode == "update" => {
                let sets: Vec<String> = cols
                    .iter()
                    .map(|(n, s, v)| format!("{} = {}", quote(n), next(s, v, &mut params)))
                    .collect();
                let conds: Vec<String> = pk
                    .iter()
                    .map(|(n, s, v)| format!("{} = {}", quote(n), next(s, v, &mut params)))
                    .collect();
                (
                    format!(
                        "UPDATE {} SET {} WHERE {}",
                        quote_table(table),
                        sets.join(", "),
                        conds.join(" AND ")
                    ),
                    params,
                )
            }
            Write::Row { table, pk, cols } => {
                let all: Vec<&Col> = pk.iter().chain(cols).collect();
                let names: Vec<String> = all.iter().map(|(n, _, _)| quote(n)).collect();
                let values: Vec<String> = all
                    .iter()
                    .map(|(_, s, v)| next(s, v, &mut params))
                    .collect();
                let mut sql = format!(
                    "INSERT INTO {} ({}) VALUES ({})",
                    quote_table(table),
                    names.join(", "),
                    values.join(", ")
                );
                if self.insert_mode == "upsert" {
                    let keys: Vec<String> = pk.iter().map(|(n, _, _)| quote(n)).collect();
                    if cols.is_empty() {
                        sql.push_str(&format!(" ON CONFLICT ({}) DO NOTHING", keys.join(", ")));
                    } else {
                        let sets: Vec<String> = cols
                            .iter()
                            .map(|(n, _, _)| format!("{} = EXCLUDED.{}", quote(n), quote(n)))
                            .collect();
                        sql.push_str(&format!(
                            " ON CONFLICT ({}) DO UPDATE SET {}",
                            keys.join(", "),
                            sets.join(", ")
                        ));
                    }
                }
                (sql, params)
            }
        }
    }
}

impl SinkTask for JdbcSinkTask {
    async fn start(&mut self, config: Props) -> Result<()> {
        let get = |k: &str, d: &str| {
            config
                .get(k)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| d.to_owned())
        };
        self.insert_mode = get("insert.mode", "insert");
        self.pk_mode = get("pk.mode", "none");
        self.pk_fields = split_list(&get("pk.fields", ""));
        self.fields_whitelist = split_list(&get("fields.whitelist", ""));
        self.table_format = get("table.name.format", "${topic}");
        self.auto_create = flag(&config, "auto.create")?;
        self.auto_evolve = flag(&config, "auto.evolve")?;
        self.delete_enabled = flag(&config, "delete.enabled")?;
        self.client = Some(connect(&config).await?);
        Ok(())
    }

    async fn put(&mut self, records: Vec<SinkRecord>) -> Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        let mut writes = Vec::with_capacity(records.len());
        for r in &records {
            if let Some(w) = self.to_write(r)? {
                writes.push(w);
            }
        }
        for w in &writes {
            if let Write::Row { table, pk, cols } = w {
                self.ensure_table(table, pk, cols).await?;
            }
        }
        let mut prepared = Vec::with_capacity(writes.len());
        for w in &writes {
            let (sql, params) = self.statement(w);
            if !self.statements.contains_key(&sql) {
                let st = self
                    .client()?
                    .prepare(&sql)
                    .await
                    .map_err(|e| pg_err(&format!("preparing {sql}"), e))?;
                self.statements.insert(sql.clone(), st);
            }
            prepared.push((sql, params));
        }
        let client = self
            .client
            .as_mut()
            .ok_or_else(|| Error::Task("the task is not started".into()))?;
        let tx = client
            .transaction()
            .await
            .map_err(|e| pg_err("beginning a transaction", e))?;
        for (sql, params) in &prepared {
            let Some(st) = self.statements.get(sql) else {
                continue;
            };
            let refs: Vec<&(dyn ToSql + Sync)> = params
                .iter()
                .map(|p| p.as_ref() as &(dyn ToSql + Sync))
                .collect();
            tx.execute(st, &refs)
                .await
                .map_err(|e| pg_err(&format!("executing {sql}"), e))?;
        }
        tx.commit().await.map_err(|e| pg_err("committing", e))?;
        Ok(())
    }

    async fn flush(&mut self, _offsets: &BTreeMap<TopicPartition, i64>) -> Result<()> {
        // Every put committed its transaction.
        Ok(())
    }

    async fn stop(&mut self) {
        self.client = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jdbc_and_libpq_urls_give_the_same_config() {
        let c = pg_config(
            "jdbc:postgresql://127.0.0.1:5433/shop?user=u&password=p&ssl=false",
            None,
            None,
        )
        .unwrap();
        assert_eq!(c.get_dbname(), Some("shop"));
        assert_eq!(c.get_ports(), [5433]);
        assert_eq!(c.get_user(), Some("u"));
        let c = pg_config("postgresql://127.0.0.1/shop", Some("v"), Some("q")).unwrap();
        assert_eq!(c.get_user(), Some("v"));
        assert_eq!(c.get_password(), Some(&b"q"[..]));
        let c = pg_config("host=127.0.0.1 port=5434 dbname=x", Some("w"), None).unwrap();
        assert_eq!(c.get_ports(), [5434]);
        let e = pg_config("jdbc:postgresql://h/db?sslmode=require", None, None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("connection.url") && e.contains("without TLS"),
            "{e}"
        );
        assert!(pg_config("jdbc:mysql://h/db", None, None).is_err());
    }

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(
            quote_table("public.My \"T\""),
            "\"public\".\"My \"\"T\"\"\""
        );
    }

    #[test]
    fn the_sink_writes_upserts_and_deletes_by_key() {
        let mut t = JdbcSinkTask {
            insert_mode: "upsert".into(),
            pk_mode: "record_value".into(),
            pk_fields: vec!["id".into()],
            table_format: "kafka_${topic}".into(),
            ..Default::default()
        };
        let schema = Schema::structure(vec![
            Field {
                name: "id".into(),
                schema: Schema::new(SchemaType::Int32),
            },
            Field {
                name: "name".into(),
                schema: Schema::new(SchemaType::String).optional(),
            },
        ]);
        let mut r = SinkRecord::source(
            SourceMap::new(),
            SourceMap::new(),
            "users",
            Some(schema),
            Value::Struct(vec![
                ("id".into(), Value::Int(7)),
                ("name".into(), Value::String("ann".into())),
            ]),
        );
        let Some(w) = t.to_write(&r).unwrap() else {
            panic!("a row")
        };
        let (sql, params) = t.statement(&w);
        assert_eq!(
            sql,
            "INSERT INTO \"kafka_users\" (\"id\", \"name\") VALUES ($1::int4, $2::text) ON CONFLICT (\"id\") DO UPDATE SET \"name\" = EXCLUDED.\"name\""
        );
        assert_eq!(params.len(), 2);
        r.value = Value::Null;
        assert!(
            t.to_write(&r).unwrap().is_none(),
            "no deletes unless enabled"
        );
        t.pk_mode = "record_key".into();
        t.delete_enabled = true;
        r.key = Value::Int(7);
        let Some(w) = t.to_write(&r).unwrap() else {
            panic!("a delete")
        };
        assert_eq!(
            t.statement(&w).0,
            "DELETE FROM \"kafka_users\" WHERE \"id\" = $1::int8"
        );
        r.value = Value::String("flat".into());
        assert!(t.to_write(&r).is_err(), "a sink of rows needs fields");
    }
}
