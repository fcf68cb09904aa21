//! Single message transforms and predicates with Kafka's class names and config keys.
//!
//! A connector's `transforms=a,b` names a chain; `transforms.a.type` is the class
//! (`org.apache.kafka.connect.transforms.InsertField$Value`, or the alias `InsertField$Value`),
//! `transforms.a.*` its config, `transforms.a.predicate` a predicate of `predicates=...`
//! (`predicates.p.type`, `predicates.p.*`) and `transforms.a.negate` inverts it. A transform
//! returning `None` drops the record (Filter).
//!
//! Transforms: InsertField, ReplaceField, MaskField, Cast, TimestampConverter, ExtractField,
//! HoistField, Flatten (each `$Key` or `$Value`), ValueToKey, RegexRouter, TimestampRouter,
//! Filter. Predicates: TopicNameMatches, HasHeaderKey, RecordIsTombstone. Each works on
//! structs with a schema (updating it) and on schemaless maps.

use regex::Regex;

use crate::config::{Props, split_list};
use crate::data::{ConnectRecord, Field, Schema, SchemaType, Value};
use crate::error::{Error, Result};

/// A transformation of records.
pub trait Transformation: Send + Sync + std::fmt::Debug {
    /// The record transformed, or `None` to drop it.
    fn apply(&self, record: ConnectRecord) -> Result<Option<ConnectRecord>>;
}

/// A condition on records.
pub trait Predicate: Send + Sync + std::fmt::Debug {
    /// Whether `record` matches.
    fn test(&self, record: &ConnectRecord) -> bool;
}

const PKG: &str = "org.apache.kafka.connect.transforms.";
const PRED_PKG: &str = "org.apache.kafka.connect.transforms.predicates.";

/// Class names of the transforms (without `$Key`/`$Value`), and whether they have both.
const TRANSFORMS: &[(&str, bool)] = &[
    ("InsertField", true),
    ("ReplaceField", true),
    ("MaskField", true),
    ("Cast", true),
    ("TimestampConverter", true),
    ("ExtractField", true),
    ("HoistField", true),
    ("Flatten", true),
    ("ValueToKey", false),
    ("RegexRouter", false),
    ("TimestampRouter", false),
    ("Filter", false),
];

const PREDICATES: &[&str] = &["TopicNameMatches", "HasHeaderKey", "RecordIsTombstone"];

/// Every transform class name and alias (for errors and `connector-plugins`).
pub fn transform_classes() -> Vec<String> {
    let mut out = Vec::new();
    for (name, both) in TRANSFORMS {
        if *both {
            for side in ["$Key", "$Value"] {
                out.push(format!("{PKG}{name}{side}"));
            }
        } else {
            out.push(format!("{PKG}{name}"));
        }
    }
    out
}

/// Every predicate class name.
pub fn predicate_classes() -> Vec<String> {
    PREDICATES
        .iter()
        .map(|p| format!("{PRED_PKG}{p}"))
        .collect()
}

/// Which part of a record a `$Key`/`$Value` transform works on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Key,
    Value,
}

/// A step of a chain.
#[derive(Debug)]
struct Step {
    name: String,
    transform: Box<dyn Transformation>,
    predicate: Option<(Box<dyn Predicate>, bool)>,
}

/// A connector's chain of transforms.
#[derive(Debug, Default)]
pub struct TransformChain {
    steps: Vec<Step>,
}

impl TransformChain {
    /// The chain of a connector config (`transforms`, `predicates` and their keys).
    pub fn from_config(connector: &str, props: &Props) -> Result<Self> {
        let mut steps = Vec::new();
        let names = props
            .get("transforms")
            .map(|t| split_list(t))
            .unwrap_or_default();
        for name in names {
            let prefix = format!("transforms.{name}.");
            let sub: Props = props
                .iter()
                .filter_map(|(k, v)| k.strip_prefix(&prefix).map(|s| (s.to_owned(), v.clone())))
                .collect();
            let owner = format!("{connector}: transforms.{name}");
            let class = sub.get("type").ok_or_else(|| {
                Error::config(
                    connector,
                    format!("{prefix}type"),
                    "missing: the transform's class",
                )
            })?;
            let transform = make_transform(&owner, class, &sub)?;
            let predicate = match sub
                .get("predicate")
                .map(|p| p.trim())
                .filter(|p| !p.is_empty())
            {
                None => None,
                Some(p) => {
                    let declared = props
                        .get("predicates")
                        .map(|d| split_list(d))
                        .unwrap_or_default();
                    if !declared.iter().any(|d| d == p) {
                        return Err(Error::config(
                            connector,
                            format!("{prefix}predicate"),
                            format!(
                                "predicate \"{p}\" is not in predicates ({})",
                                declared.join(", ")
                            ),
                        ));
                    }
                    let pprefix = format!("predicates.{p}.");
                    let psub: Props = props
                        .iter()
                        .filter_map(|(k, v)| {
                            k.strip_prefix(&pprefix).map(|s| (s.to_owned(), v.clone()))
                        })
                        .collect();
                    let pclass = psub.get("type").ok_or_else(|| {
                        Error::config(
                            connector,
                            format!("{pprefix}type"),
                            "missing: the predicate's class",
                        )
                    })?;
                    let negate = match sub.get("negate").map(|n| n.trim().to_ascii_lowercase()) {
                        None => false,
                        Some(n) if n == "true" => true,
                        Some(n) if n == "false" => false,
                        Some(n) => {
                            return Err(Error::config(
                                connector,
                                format!("{prefix}negate"),
                                format!("\"{n}\" is not true or false"),
                            ));
                        }
                    };
                    Some((
                        make_predicate(&format!("{connector}: predicates.{p}"), pclass, &psub)?,
                        negate,
                    ))
                }
            };
            steps.push(Step {
                name,
                transform,
                predicate,
            });
        }
        Ok(TransformChain { steps })
    }

    /// Whether the chain has no steps.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// Runs the chain; `None` once a step drops the record. An error names the step.
    pub fn apply(&self, mut record: ConnectRecord) -> Result<Option<ConnectRecord>> {
        for step in &self.steps {
            if let Some((p, negate)) = &step.predicate
                && p.test(&record) == *negate
            {
                continue;
            }
            record = match step.transform.apply(record) {
                Ok(Some(r)) => r,
                Ok(None) => return Ok(None),
                Err(e) => {
                    return Err(Error::data(
                        format!("transform {}", step.name),
                        e.to_string(),
                    ));
                }
            };
        }
        Ok(Some(record))
    }
}

fn unknown_transform(name: &str) -> Error {
    let mut available = transform_classes();
    available.extend(TRANSFORMS.iter().flat_map(|(n, both)| {
        if *both {
            vec![format!("{n}$Key"), format!("{n}$Value")]
        } else {
            vec![(*n).to_owned()]
        }
    }));
    Error::UnknownClass {
        kind: "transformation",
        name: name.to_owned(),
        available,
    }
}

/// The transform of a class name or alias with its config.
fn make_transform(owner: &str, class: &str, c: &Props) -> Result<Box<dyn Transformation>> {
    let class = class.trim();
    let short = class.strip_prefix(PKG).unwrap_or(class);
    let (base, side) = match short.split_once('$') {
        Some((b, "Key")) => (b, Some(Side::Key)),
        Some((b, "Value")) => (b, Some(Side::Value)),
        Some(_) => return Err(unknown_transform(class)),
        None => (short, None),
    };
    let Some((_, both)) = TRANSFORMS.iter().find(|(n, _)| *n == base) else {
        return Err(unknown_transform(class));
    };
    if *both != side.is_some() {
        return Err(unknown_transform(class));
    }
    let side = side.unwrap_or(Side::Value);
    let get = |k: &str| {
        c.get(k)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let need =
        |k: &str| get(k).ok_or_else(|| Error::config(owner, k, "missing required configuration"));
    Ok(match base {
        "InsertField" => Box::new(InsertField {
            side,
            topic: get("topic.field").map(|f| FieldSpec::parse(&f)),
            partition: get("partition.field").map(|f| FieldSpec::parse(&f)),
            offset: get("offset.field").map(|f| FieldSpec::parse(&f)),
            timestamp: get("timestamp.field").map(|f| FieldSpec::parse(&f)),
            static_field: get("static.field").map(|f| FieldSpec::parse(&f)),
            static_value: get("static.value").unwrap_or_default(),
        }),
        "ReplaceField" => {
            let mut renames = Vec::new();
            for r in get("renames").map(|r| split_list(&r)).unwrap_or_default() {
                let (a, b) = r.split_once(':').ok_or_else(|| {
                    Error::config(owner, "renames", format!("\"{r}\" is not old:new"))
                })?;
                renames.push((a.to_owned(), b.to_owned()));
            }
            Box::new(ReplaceField {
                side,
                exclude: get("exclude")
                    .or_else(|| get("blacklist"))
                    .map(|v| split_list(&v))
                    .unwrap_or_default(),
                include: get("include")
                    .or_else(|| get("whitelist"))
                    .map(|v| split_list(&v))
                    .unwrap_or_default(),
                renames,
            })
        }
        "MaskField" => Box::new(MaskField {
            side,
            fields: split_list(&need("fields")?),
            replacement: get("replacement"),
        }),
        "Cast" => {
            let spec = need("spec")?;
            let mut whole = None;
            let mut fields = Vec::new();
            for item in split_list(&spec) {
                match item.split_once(':') {
                    Some((f, t)) => fields.push((f.trim().to_owned(), cast_type(owner, t.trim())?)),
                    None => whole = Some(cast_type(owner, &item)?),
                }
            }
            if whole.is_some() && !fields.is_empty() {
                return Err(Error::config(
                    owner,
                    "spec",
                    "cast either the whole value (type) or fields (field:type), not both",
                ));
            }
            Box::new(Cast {
                side,
                whole,
                fields,
            })
        }
        "TimestampConverter" => {
            let target = need("target.type")?;
            let target = match target.to_ascii_lowercase().as_str() {
                "string" => TsType::String,
                "unix" => TsType::Unix,
                "date" => TsType::Date,
                "time" => TsType::Time,
                "timestamp" => TsType::Timestamp,
                _ => {
                    return Err(Error::config(
                        owner,
                        "target.type",
                        format!("\"{target}\" is not one of string, unix, Date, Time, Timestamp"),
                    ));
                }
            };
            let format = get("format");
            if target == TsType::String && format.is_none() {
                return Err(Error::config(
                    owner,
                    "format",
                    "TimestampConverter requires format option to be specified when using string timestamps",
                ));
            }
            let precision = match get("unix.precision").as_deref().unwrap_or("milliseconds") {
                "seconds" => 1_000_000_000,
                "milliseconds" => 1_000_000,
                "microseconds" => 1_000,
                "nanoseconds" => 1,
                p => {
                    return Err(Error::config(
                        owner,
                        "unix.precision",
                        format!(
                            "\"{p}\" is not seconds, milliseconds, microseconds or nanoseconds"
                        ),
                    ));
                }
            };
            Box::new(TimestampConverter {
                side,
                field: get("field"),
                target,
                format: format.map(|f| DateFormat::parse(owner, &f)).transpose()?,
                unix_nanos: precision,
            })
        }
        "ExtractField" => Box::new(ExtractField {
            side,
            field: need("field")?,
        }),
        "HoistField" => Box::new(HoistField {
            side,
            field: need("field")?,
        }),
        "Flatten" => Box::new(Flatten {
            side,
            delimiter: c.get("delimiter").cloned().unwrap_or_else(|| ".".into()),
        }),
        "ValueToKey" => Box::new(ValueToKey {
            fields: split_list(&need("fields")?),
        }),
        "RegexRouter" => {
            let re = need("regex")?;
            let regex = Regex::new(&format!("^(?:{re})$"))
                .map_err(|e| Error::config(owner, "regex", format!("does not compile: {e}")))?;
            let replacement = need("replacement")?;
            // Java's $1 is Rust's ${1} (Rust would read "$1a" as a group named "1a").
            let digits = Regex::new(r"\$(\d+)").map_err(|e| Error::Task(e.to_string()))?;
            let replacement = digits.replace_all(&replacement, "$${$1}").into_owned();
            Box::new(RegexRouter { regex, replacement })
        }
        "TimestampRouter" => Box::new(TimestampRouter {
            topic_format: get("topic.format").unwrap_or_else(|| "${topic}-${timestamp}".into()),
            timestamp_format: DateFormat::parse(
                owner,
                &get("timestamp.format").unwrap_or_else(|| "yyyyMMdd".into()),
            )?,
        }),
        _ => Box::new(Filter),
    })
}

/// The predicate of a class name or alias with its config.
fn make_predicate(owner: &str, class: &str, c: &Props) -> Result<Box<dyn Predicate>> {
    let class = class.trim();
    let short = class.strip_prefix(PRED_PKG).unwrap_or(class);
    Ok(match short {
        "TopicNameMatches" => {
            let p = c
                .get("pattern")
                .map(|p| p.trim())
                .filter(|p| !p.is_empty())
                .ok_or_else(|| Error::config(owner, "pattern", "missing required configuration"))?;
            Box::new(TopicNameMatches(
                Regex::new(&format!("^(?:{p})$")).map_err(|e| {
                    Error::config(owner, "pattern", format!("does not compile: {e}"))
                })?,
            ))
        }
        "HasHeaderKey" => Box::new(HasHeaderKey(
            c.get("name")
                .map(|p| p.trim().to_owned())
                .filter(|p| !p.is_empty())
                .ok_or_else(|| Error::config(owner, "name", "missing required configuration"))?,
        )),
        "RecordIsTombstone" => Box::new(RecordIsTombstone),
        _ => {
            let mut available = predicate_classes();
            available.extend(PREDICATES.iter().map(|p| (*p).to_owned()));
            return Err(Error::UnknownClass {
                kind: "predicate",
                name: class.to_owned(),
                available,
            });
        }
    })
}

/// A field name of InsertField: `name!` required, `name?` (or plain) optional.
#[derive(Debug, Clone)]
struct FieldSpec {
    name: String,
    optional: bool,
}

impl FieldSpec {
    fn parse(s: &str) -> Self {
        if let Some(n) = s.strip_suffix('!') {
            FieldSpec {
                name: n.to_owned(),
                optional: false,
            }
        } else {
            FieldSpec {
                name: s.strip_suffix('?').unwrap_or(s).to_owned(),
                optional: true,
            }
        }
    }
}

/// The (schema, value) of one side of a record.
fn part(r: &mut ConnectRecord, side: Side) -> (&mut Option<Schema>, &mut Value) {
    match side {
        Side::Key => (&mut r.key_schema, &mut r.key),
        Side::Value => (&mut r.value_schema, &mut r.value),
    }
}

/// Requires a struct (with a schema) or a map (without): the record's fields.
fn fields_of(what: &str, schema: &Option<Schema>, value: &Value) -> Result<Vec<(String, Value)>> {
    match schema {
        Some(s) if s.ty != SchemaType::Struct => Err(Error::data(
            what,
            format!(
                "Only Struct objects supported for [{what}], found: {}",
                s.ty.as_str()
            ),
        )),
        _ if !value.has_fields() => Err(Error::data(
            what,
            format!(
                "Only Map objects supported in absence of schema for [{what}], found: {}",
                value.describe()
            ),
        )),
        _ => Ok(value.fields()),
    }
}

#[derive(Debug)]
struct InsertField {
    side: Side,
    topic: Option<FieldSpec>,
    partition: Option<FieldSpec>,
    offset: Option<FieldSpec>,
    timestamp: Option<FieldSpec>,
    static_field: Option<FieldSpec>,
    static_value: String,
}

impl Transformation for InsertField {
    fn apply(&self, mut r: ConnectRecord) -> Result<Option<ConnectRecord>> {
        let mut adds: Vec<(&FieldSpec, Schema, Value)> = Vec::new();
        let ts_schema = Schema::new(SchemaType::Int64).named(crate::data::TIMESTAMP_LOGICAL);
        if let Some(f) = &self.topic {
            adds.push((f, Schema::string(), Value::String(r.topic.clone())));
        }
        if let Some(f) = &self.partition {
            adds.push((
                f,
                Schema::new(SchemaType::Int32),
                r.kafka_partition
                    .map_or(Value::Null, |p| Value::Int(p.into())),
            ));
        }
        if let Some(f) = &self.offset {
            adds.push((
                f,
                Schema::new(SchemaType::Int64),
                r.kafka_offset.map_or(Value::Null, Value::Int),
            ));
        }
        if let Some(f) = &self.timestamp {
            adds.push((f, ts_schema, r.timestamp.map_or(Value::Null, Value::Int)));
        }
        if let Some(f) = &self.static_field {
            adds.push((
                f,
                Schema::string(),
                Value::String(self.static_value.clone()),
            ));
        }
        let (schema, value) = part(&mut r, self.side);
        if value.is_null() {
            return Ok(Some(r)); // tombstones pass
        }
        let mut fields = fields_of("field insertion", schema, value)?;
        for (spec, s, v) in &adds {
            fields.retain(|(k, _)| *k != spec.name);
            fields.push((spec.name.clone(), v.clone()));
            if let Some(sch) = schema.as_mut() {
                sch.fields.retain(|f| f.name != spec.name);
                let s = if spec.optional {
                    s.clone().optional()
                } else {
                    s.clone()
                };
                sch.fields.push(Field {
                    name: spec.name.clone(),
                    schema: s,
                });
            }
        }
        *value = value.with_fields(fields);
        Ok(Some(r))
    }
}

#[derive(Debug)]
struct ReplaceField {
    side: Side,
    exclude: Vec<String>,
    include: Vec<String>,
    renames: Vec<(String, String)>,
}

impl ReplaceField {
    fn keep(&self, name: &str) -> bool {
        !self.exclude.iter().any(|e| e == name)
            && (self.include.is_empty() || self.include.iter().any(|i| i == name))
    }
    fn renamed(&self, name: &str) -> String {
        self.renames
            .iter()
            .find(|(a, _)| a == name)
            .map_or_else(|| name.to_owned(), |(_, b)| b.clone())
    }
}

impl Transformation for ReplaceField {
    fn apply(&self, mut r: ConnectRecord) -> Result<Option<ConnectRecord>> {
        let (schema, value) = part(&mut r, self.side);
        if value.is_null() {
            return Ok(Some(r));
        }
        let fields = fields_of("field replacement", schema, value)?
            .into_iter()
            .filter(|(k, _)| self.keep(k))
            .map(|(k, v)| (self.renamed(&k), v))
            .collect();
        if let Some(s) = schema.as_mut() {
            s.fields = std::mem::take(&mut s.fields)
                .into_iter()
                .filter(|f| self.keep(&f.name))
                .map(|f| Field {
                    name: self.renamed(&f.name),
                    schema: f.schema,
                })
                .collect();
        }
        *value = value.with_fields(fields);
        Ok(Some(r))
    }
}

#[derive(Debug)]
struct MaskField {
    side: Side,
    fields: Vec<String>,
    replacement: Option<String>,
}

/// The "empty" value Kafka's MaskField puts in place of a value.
fn masked(v: &Value, replacement: Option<&str>) -> Result<Value> {
    Ok(match (v, replacement) {
        (Value::Null, _) => Value::Null,
        (Value::String(_), Some(r)) => Value::String(r.to_owned()),
        (Value::Int(_), Some(r)) => Value::Int(
            r.parse()
                .map_err(|_| Error::data("mask", format!("replacement \"{r}\" is not a number")))?,
        ),
        (Value::Float(_), Some(r)) => Value::Float(
            r.parse()
                .map_err(|_| Error::data("mask", format!("replacement \"{r}\" is not a number")))?,
        ),
        (Value::String(_), None) => Value::String(String::new()),
        (Value::Int(_), None) => Value::Int(0),
        (Value::Float(_), None) => Value::Float(0.0),
        (Value::Boolean(_), _) => Value::Boolean(false),
        (Value::Bytes(_), _) => Value::Bytes(bytes::Bytes::new()),
        (Value::Array(_), _) => Value::Array(Vec::new()),
        (Value::Map(_), _) => Value::Map(Vec::new()),
        (Value::Struct(_), _) => return Err(Error::data("mask", "cannot mask a struct")),
    })
}

impl Transformation for MaskField {
    fn apply(&self, mut r: ConnectRecord) -> Result<Option<ConnectRecord>> {
        let (schema, value) = part(&mut r, self.side);
        if value.is_null() {
            return Ok(Some(r));
        }
        let fields = fields_of("masking", schema, value)?
            .into_iter()
            .map(|(k, v)| {
                if self.fields.contains(&k) {
                    Ok((k, masked(&v, self.replacement.as_deref())?))
                } else {
                    Ok((k, v))
                }
            })
            .collect::<Result<_>>()?;
        *value = value.with_fields(fields);
        Ok(Some(r))
    }
}

fn cast_type(owner: &str, t: &str) -> Result<SchemaType> {
    SchemaType::parse(t).filter(|t| t.is_primitive() && *t != SchemaType::Bytes).ok_or_else(|| {
        Error::config(owner, "spec", format!("type \"{t}\" is not one of int8, int16, int32, int64, float32, float64, boolean, string"))
    })
}

fn cast_value(v: &Value, to: SchemaType) -> Result<Value> {
    let fail = || {
        Error::data(
            "cast",
            format!("cannot cast {} to {}", v.describe(), to.as_str()),
        )
    };
    Ok(match (v, to) {
        (Value::Null, _) => Value::Null,
        (_, SchemaType::String) => Value::String(v.to_text().unwrap_or_default()),
        (Value::Int(i), SchemaType::Boolean) => Value::Boolean(*i != 0),
        (Value::Float(f), SchemaType::Boolean) => Value::Boolean(*f != 0.0),
        (Value::Boolean(b), SchemaType::Boolean) => Value::Boolean(*b),
        (Value::String(s), SchemaType::Boolean) => {
            Value::Boolean(s.trim().eq_ignore_ascii_case("true"))
        }
        (Value::Int(i), SchemaType::Float32 | SchemaType::Float64) => Value::Float(*i as f64),
        (Value::Float(f), SchemaType::Float32 | SchemaType::Float64) => Value::Float(*f),
        (Value::Boolean(b), SchemaType::Float32 | SchemaType::Float64) => {
            Value::Float(if *b { 1.0 } else { 0.0 })
        }
        (Value::String(s), SchemaType::Float32 | SchemaType::Float64) => {
            Value::Float(s.trim().parse().map_err(|_| fail())?)
        }
        (Value::Int(i), _) => Value::Int(narrow(*i, to)),
        (Value::Float(f), _) => Value::Int(narrow(*f as i64, to)),
        (Value::Boolean(b), _) => Value::Int(i64::from(*b)),
        (Value::String(s), _) => Value::Int(narrow(s.trim().parse().map_err(|_| fail())?, to)),
        _ => return Err(fail()),
    })
}

/// Java's narrowing of a long to a smaller integer type.
fn narrow(i: i64, to: SchemaType) -> i64 {
    match to {
        SchemaType::Int8 => i64::from(i as i8),
        SchemaType::Int16 => i64::from(i as i16),
        SchemaType::Int32 => i64::from(i as i32),
        _ => i,
    }
}

#[derive(Debug)]
struct Cast {
    side: Side,
    whole: Option<SchemaType>,
    fields: Vec<(String, SchemaType)>,
}

impl Transformation for Cast {
    fn apply(&self, mut r: ConnectRecord) -> Result<Option<ConnectRecord>> {
        let (schema, value) = part(&mut r, self.side);
        if let Some(to) = self.whole {
            *value = cast_value(value, to)?;
            if let Some(s) = schema.as_mut() {
                s.ty = to;
            }
            return Ok(Some(r));
        }
        if value.is_null() {
            return Ok(Some(r));
        }
        let fields = fields_of("cast types", schema, value)?
            .into_iter()
            .map(|(k, v)| match self.fields.iter().find(|(f, _)| *f == k) {
                Some((_, to)) => Ok((k, cast_value(&v, *to)?)),
                None => Ok((k, v)),
            })
            .collect::<Result<_>>()?;
        if let Some(s) = schema.as_mut() {
            for f in &mut s.fields {
                if let Some((_, to)) = self.fields.iter().find(|(n, _)| *n == f.name) {
                    f.schema.ty = *to;
                    f.schema.name = None;
                }
            }
        }
        *value = value.with_fields(fields);
        Ok(Some(r))
    }
}

#[derive(Debug)]
struct ExtractField {
    side: Side,
    field: String,
}

impl Transformation for ExtractField {
    fn apply(&self, mut r: ConnectRecord) -> Result<Option<ConnectRecord>> {
        let (schema, value) = part(&mut r, self.side);
        if value.is_null() {
            return Ok(Some(r));
        }
        fields_of("field extraction", schema, value)?;
        let v = value.get(&self.field).cloned().unwrap_or_default();
        if let Some(s) = schema.as_mut() {
            let f = s.field(&self.field).ok_or_else(|| {
                Error::data("field extraction", format!("Unknown field: {}", self.field))
            })?;
            *s = f.schema.clone();
        }
        *value = v;
        Ok(Some(r))
    }
}

#[derive(Debug)]
struct HoistField {
    side: Side,
    field: String,
}

impl Transformation for HoistField {
    fn apply(&self, mut r: ConnectRecord) -> Result<Option<ConnectRecord>> {
        let (schema, value) = part(&mut r, self.side);
        let v = std::mem::take(value);
        match schema.take() {
            Some(s) => {
                *schema = Some(Schema::structure(vec![Field {
                    name: self.field.clone(),
                    schema: s,
                }]));
                *value = Value::Struct(vec![(self.field.clone(), v)]);
            }
            None => *value = Value::Map(vec![(Value::String(self.field.clone()), v)]),
        }
        Ok(Some(r))
    }
}

#[derive(Debug)]
struct Flatten {
    side: Side,
    delimiter: String,
}

impl Flatten {
    fn flatten_value(&self, prefix: &str, v: &Value, out: &mut Vec<(String, Value)>) {
        for (k, v) in v.fields() {
            let name = if prefix.is_empty() {
                k
            } else {
                format!("{prefix}{}{k}", self.delimiter)
            };
            if v.has_fields() {
                self.flatten_value(&name, &v, out);
            } else {
                out.push((name, v));
            }
        }
    }
    fn flatten_schema(&self, prefix: &str, s: &Schema, optional: bool, out: &mut Vec<Field>) {
        for f in &s.fields {
            let name = if prefix.is_empty() {
                f.name.clone()
            } else {
                format!("{prefix}{}{}", self.delimiter, f.name)
            };
            if f.schema.ty == SchemaType::Struct {
                self.flatten_schema(&name, &f.schema, optional || f.schema.optional, out);
            } else {
                let mut fs = f.schema.clone();
                fs.optional |= optional;
                out.push(Field { name, schema: fs });
            }
        }
    }
}

impl Transformation for Flatten {
    fn apply(&self, mut r: ConnectRecord) -> Result<Option<ConnectRecord>> {
        let (schema, value) = part(&mut r, self.side);
        if value.is_null() {
            return Ok(Some(r));
        }
        fields_of("flattening", schema, value)?;
        let mut fields = Vec::new();
        self.flatten_value("", value, &mut fields);
        if let Some(s) = schema.as_mut() {
            let mut out = Vec::new();
            self.flatten_schema("", s, false, &mut out);
            s.fields = out;
        }
        *value = value.with_fields(fields);
        Ok(Some(r))
    }
}

#[derive(Debug)]
struct ValueToKey {
    fields: Vec<String>,
}

impl Transformation for ValueToKey {
    fn apply(&self, mut r: ConnectRecord) -> Result<Option<ConnectRecord>> {
        fields_of(
            "copying fields from value to key",
            &r.value_schema,
            &r.value,
        )?;
        let mut key = Vec::new();
        for f in &self.fields {
            key.push((f.clone(), r.value.get(f).cloned().unwrap_or_default()));
        }
        match &r.value_schema {
            Some(vs) => {
                let mut ks = Vec::new();
                for f in &self.fields {
                    let field = vs
                        .field(f)
                        .ok_or_else(|| Error::data("ValueToKey", format!("Unknown field: {f}")))?;
                    ks.push(field.clone());
                }
                r.key_schema = Some(Schema::structure(ks));
                r.key = Value::Struct(key);
            }
            None => {
                r.key_schema = None;
                r.key = Value::Map(
                    key.into_iter()
                        .map(|(k, v)| (Value::String(k), v))
                        .collect(),
                );
            }
        }
        Ok(Some(r))
    }
}

#[derive(Debug)]
struct RegexRouter {
    regex: Regex,
    replacement: String,
}

impl Transformation for RegexRouter {
    fn apply(&self, mut r: ConnectRecord) -> Result<Option<ConnectRecord>> {
        if self.regex.is_match(&r.topic) {
            r.topic = self
                .regex
                .replace(&r.topic, self.replacement.as_str())
                .into_owned();
        }
        Ok(Some(r))
    }
}

#[derive(Debug)]
struct TimestampRouter {
    topic_format: String,
    timestamp_format: DateFormat,
}

impl Transformation for TimestampRouter {
    fn apply(&self, mut r: ConnectRecord) -> Result<Option<ConnectRecord>> {
        let ts = r.timestamp.ok_or_else(|| {
            Error::data(
                "TimestampRouter",
                format!("Timestamp missing on record: topic {}", r.topic),
            )
        })?;
        r.topic = self
            .topic_format
            .replace("${topic}", &r.topic)
            .replace("${timestamp}", &self.timestamp_format.format(ts));
        Ok(Some(r))
    }
}

#[derive(Debug)]
struct Filter;

impl Transformation for Filter {
    fn apply(&self, _: ConnectRecord) -> Result<Option<ConnectRecord>> {
        Ok(None)
    }
}

#[derive(Debug)]
struct TopicNameMatches(Regex);

impl Predicate for TopicNameMatches {
    fn test(&self, r: &ConnectRecord) -> bool {
        self.0.is_match(&r.topic)
    }
}

#[derive(Debug)]
struct HasHeaderKey(String);

impl Predicate for HasHeaderKey {
    fn test(&self, r: &ConnectRecord) -> bool {
        r.headers.iter().any(|h| h.key == self.0)
    }
}

#[derive(Debug)]
struct RecordIsTombstone;

impl Predicate for RecordIsTombstone {
    fn test(&self, r: &ConnectRecord) -> bool {
        r.value.is_null()
    }
}

/// TimestampConverter's target types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TsType {
    String,
    Unix,
    Date,
    Time,
    Timestamp,
}

#[derive(Debug)]
struct TimestampConverter {
    side: Side,
    field: Option<String>,
    target: TsType,
    format: Option<DateFormat>,
    /// Nanoseconds per unit of `unix` values.
    unix_nanos: i64,
}

const DAY_MS: i64 = 86_400_000;

impl TimestampConverter {
    /// Milliseconds since the epoch of a value of `schema`.
    fn to_ms(&self, schema: Option<&Schema>, v: &Value) -> Result<i64> {
        let logical = schema.and_then(|s| s.name.as_deref());
        match (v, logical) {
            (Value::Int(d), Some(crate::data::DATE_LOGICAL)) => Ok(d * DAY_MS),
            (Value::Int(i), Some(crate::data::TIMESTAMP_LOGICAL | crate::data::TIME_LOGICAL)) => {
                Ok(*i)
            }
            (Value::Int(i), _) => Ok(i.saturating_mul(self.unix_nanos) / 1_000_000),
            (Value::String(s), _) => {
                let f = self.format.as_ref().ok_or_else(|| {
                    Error::data("TimestampConverter", "a string timestamp needs format")
                })?;
                f.parse_ms(s)
            }
            _ => Err(Error::data(
                "TimestampConverter",
                format!("cannot convert {} to a timestamp", v.describe()),
            )),
        }
    }

    fn ms_to_target(&self, ms: i64) -> (Schema, Value) {
        match self.target {
            TsType::String => (
                Schema::string(),
                Value::String(
                    self.format
                        .as_ref()
                        .map(|f| f.format(ms))
                        .unwrap_or_default(),
                ),
            ),
            TsType::Unix => (
                Schema::new(SchemaType::Int64),
                Value::Int(ms.saturating_mul(1_000_000) / self.unix_nanos),
            ),
            TsType::Date => (
                Schema::new(SchemaType::Int32).named(crate::data::DATE_LOGICAL),
                Value::Int(ms.div_euclid(DAY_MS)),
            ),
            TsType::Time => (
                Schema::new(SchemaType::Int32).named(crate::data::TIME_LOGICAL),
                Value::Int(ms.rem_euclid(DAY_MS)),
            ),
            TsType::Timestamp => (
                Schema::new(SchemaType::Int64).named(crate::data::TIMESTAMP_LOGICAL),
                Value::Int(ms),
            ),
        }
    }
}

impl Transformation for TimestampConverter {
    fn apply(&self, mut r: ConnectRecord) -> Result<Option<ConnectRecord>> {
        let (schema, value) = part(&mut r, self.side);
        match &self.field {
            None => {
                if value.is_null() {
                    return Ok(Some(r));
                }
                let ms = self.to_ms(schema.as_ref(), value)?;
                let (s, v) = self.ms_to_target(ms);
                if schema.is_some() {
                    *schema = Some(s);
                }
                *value = v;
            }
            Some(field) => {
                if value.is_null() {
                    return Ok(Some(r));
                }
                let mut fields = fields_of("converting timestamp formats", schema, value)?;
                let field_schema = schema
                    .as_ref()
                    .and_then(|s| s.field(field))
                    .map(|f| f.schema.clone());
                let mut new_schema = None;
                for (k, v) in &mut fields {
                    if k == field && !v.is_null() {
                        let ms = self.to_ms(field_schema.as_ref(), v)?;
                        let (s, nv) = self.ms_to_target(ms);
                        new_schema = Some(s);
                        *v = nv;
                    }
                }
                if let (Some(s), Some(ns)) = (schema.as_mut(), new_schema) {
                    for f in &mut s.fields {
                        if f.name == *field {
                            let optional = f.schema.optional;
                            f.schema = ns.clone();
                            f.schema.optional = optional;
                        }
                    }
                }
                *value = value.with_fields(fields);
            }
        }
        Ok(Some(r))
    }
}

/// A `java.text.SimpleDateFormat` pattern, in UTC (as Kafka's transforms use it): `yyyy`,
/// `yy`, `MM`, `dd`, `HH`, `mm`, `ss`, `SSS`, `'literal'` and other characters as they are.
#[derive(Debug, Clone)]
struct DateFormat {
    parts: Vec<DatePart>,
}

#[derive(Debug, Clone, PartialEq)]
enum DatePart {
    Year(usize),
    Month,
    Day,
    Hour,
    Minute,
    Second,
    Millis,
    Literal(String),
}

impl DateFormat {
    fn parse(owner: &str, pattern: &str) -> Result<Self> {
        let chars: Vec<char> = pattern.chars().collect();
        let mut parts = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            let run = chars[i..].iter().take_while(|&&x| x == c).count();
            match c {
                '\'' => {
                    let end = chars[i + 1..]
                        .iter()
                        .position(|&x| x == '\'')
                        .ok_or_else(|| {
                            Error::config(
                                owner,
                                "format",
                                format!("unterminated quote in \"{pattern}\""),
                            )
                        })?;
                    let lit: String = chars[i + 1..i + 1 + end].iter().collect();
                    parts.push(DatePart::Literal(if lit.is_empty() {
                        "'".into()
                    } else {
                        lit
                    }));
                    i += end + 2;
                    continue;
                }
                'y' => parts.push(DatePart::Year(if run == 2 { 2 } else { 4 })),
                'M' => parts.push(DatePart::Month),
                'd' => parts.push(DatePart::Day),
                'H' => parts.push(DatePart::Hour),
                'm' => parts.push(DatePart::Minute),
                's' => parts.push(DatePart::Second),
                'S' => parts.push(DatePart::Millis),
                c if c.is_ascii_alphabetic() => {
                    return Err(Error::config(
                        owner,
                        "format",
                        format!(
                            "pattern letter '{c}' of \"{pattern}\" is not supported (y M d H m s S are)"
                        ),
                    ));
                }
                _ => parts.push(DatePart::Literal(chars[i..i + run].iter().collect())),
            }
            i += run;
        }
        Ok(DateFormat { parts })
    }

    fn format(&self, ms: i64) -> String {
        let days = ms.div_euclid(DAY_MS);
        let in_day = ms.rem_euclid(DAY_MS);
        let (y, m, d) = civil_from_days(days);
        let mut s = String::new();
        for p in &self.parts {
            match p {
                DatePart::Year(2) => s.push_str(&format!("{:02}", y.rem_euclid(100))),
                DatePart::Year(_) => s.push_str(&format!("{y:04}")),
                DatePart::Month => s.push_str(&format!("{m:02}")),
                DatePart::Day => s.push_str(&format!("{d:02}")),
                DatePart::Hour => s.push_str(&format!("{:02}", in_day / 3_600_000)),
                DatePart::Minute => s.push_str(&format!("{:02}", in_day / 60_000 % 60)),
                DatePart::Second => s.push_str(&format!("{:02}", in_day / 1000 % 60)),
                DatePart::Millis => s.push_str(&format!("{:03}", in_day % 1000)),
                DatePart::Literal(l) => s.push_str(l),
            }
        }
        s
    }

    fn parse_ms(&self, text: &str) -> Result<i64> {
        let bad = || {
            Error::data(
                "TimestampConverter",
                format!("could not parse timestamp \"{text}\" with the configured format"),
            )
        };
        let (mut y, mut mo, mut d, mut h, mut mi, mut s, mut ms) = (1970, 1, 1, 0, 0, 0, 0);
        let mut rest = text;
        for p in &self.parts {
            if let DatePart::Literal(l) = p {
                rest = rest.strip_prefix(l.as_str()).ok_or_else(bad)?;
                continue;
            }
            let width = match p {
                DatePart::Year(n) => *n,
                DatePart::Millis => 3,
                _ => 2,
            };
            let digits = rest
                .get(..width)
                .filter(|d| d.bytes().all(|b| b.is_ascii_digit()))
                .ok_or_else(bad)?;
            let n: i64 = digits.parse().map_err(|_| bad())?;
            rest = &rest[width..];
            match p {
                DatePart::Year(2) => y = 2000 + n,
                DatePart::Year(_) => y = n,
                DatePart::Month => mo = n,
                DatePart::Day => d = n,
                DatePart::Hour => h = n,
                DatePart::Minute => mi = n,
                DatePart::Second => s = n,
                _ => ms = n,
            }
        }
        if !rest.is_empty() || !(1..=12).contains(&mo) || !(1..=31).contains(&d) {
            return Err(bad());
        }
        Ok(days_from_civil(y, mo, d) * DAY_MS + h * 3_600_000 + mi * 60_000 + s * 1000 + ms)
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day count since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{ConnectHeader, SourceMap};
    use serde_json::json;

    fn props(pairs: &[(&str, &str)]) -> Props {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn record(value: serde_json::Value) -> ConnectRecord {
        let mut r = ConnectRecord::source(
            SourceMap::new(),
            SourceMap::new(),
            "orders",
            None,
            Value::from_json_schemaless(&value),
        );
        r.timestamp = Some(1_700_000_000_123);
        r.kafka_partition = Some(2);
        r
    }

    fn chain(pairs: &[(&str, &str)]) -> TransformChain {
        TransformChain::from_config("c", &props(pairs)).unwrap()
    }

    fn out(c: &TransformChain, r: ConnectRecord) -> serde_json::Value {
        c.apply(r).unwrap().unwrap().value.to_json_schemaless()
    }

    #[test]
    fn field_transforms_on_schemaless_values() {
        let c = chain(&[
            ("transforms", "ins,rep,mask,cast,flat"),
            (
                "transforms.ins.type",
                "org.apache.kafka.connect.transforms.InsertField$Value",
            ),
            ("transforms.ins.topic.field", "t"),
            ("transforms.ins.static.field", "src"),
            ("transforms.ins.static.value", "web"),
            ("transforms.rep.type", "ReplaceField$Value"),
            ("transforms.rep.exclude", "junk"),
            ("transforms.rep.renames", "id:order_id"),
            ("transforms.mask.type", "MaskField$Value"),
            ("transforms.mask.fields", "card"),
            ("transforms.cast.type", "Cast$Value"),
            ("transforms.cast.spec", "price:float64,qty:string"),
            ("transforms.flat.type", "Flatten$Value"),
            ("transforms.flat.delimiter", "_"),
        ]);
        let v = out(
            &c,
            record(
                json!({"id": 1, "junk": true, "card": "1234", "price": 3, "qty": 2, "addr": {"city": "X"}}),
            ),
        );
        assert_eq!(
            v,
            json!({"order_id": 1, "card": "", "price": 3.0, "qty": "2", "addr_city": "X", "t": "orders", "src": "web"})
        );
    }

    #[test]
    fn struct_transforms_update_the_schema() {
        let schema = Schema::structure(vec![
            Field {
                name: "id".into(),
                schema: Schema::new(SchemaType::Int32),
            },
            Field {
                name: "name".into(),
                schema: Schema::string(),
            },
        ]);
        let mut r = record(json!(null));
        r.value = Value::Struct(vec![
            ("id".into(), Value::Int(7)),
            ("name".into(), Value::from("a")),
        ]);
        r.value_schema = Some(schema);
        let c = chain(&[
            ("transforms", "key,ext,hoist"),
            ("transforms.key.type", "ValueToKey"),
            ("transforms.key.fields", "id"),
            ("transforms.ext.type", "ExtractField$Key"),
            ("transforms.ext.field", "id"),
            ("transforms.hoist.type", "HoistField$Value"),
            ("transforms.hoist.field", "row"),
        ]);
        let r = c.apply(r).unwrap().unwrap();
        assert_eq!(r.key, Value::Int(7));
        assert_eq!(r.key_schema.unwrap().ty, SchemaType::Int32);
        let vs = r.value_schema.unwrap();
        assert_eq!(vs.fields[0].name, "row");
        r.value.to_json_with(&vs).unwrap();
    }

    #[test]
    fn routers_and_filters_with_predicates() {
        let c = chain(&[
            ("transforms", "drop,route,ts"),
            ("transforms.drop.type", "Filter"),
            ("transforms.drop.predicate", "tomb"),
            (
                "transforms.route.type",
                "org.apache.kafka.connect.transforms.RegexRouter",
            ),
            ("transforms.route.regex", "(.*)ers"),
            ("transforms.route.replacement", "$1_v2"),
            ("transforms.ts.type", "TimestampRouter"),
            ("transforms.ts.predicate", "hdr"),
            ("transforms.ts.negate", "true"),
            ("predicates", "tomb,hdr"),
            (
                "predicates.tomb.type",
                "org.apache.kafka.connect.transforms.predicates.RecordIsTombstone",
            ),
            ("predicates.hdr.type", "HasHeaderKey"),
            ("predicates.hdr.name", "keep-topic"),
        ]);
        assert!(
            c.apply(record(json!(null))).unwrap().is_none(),
            "tombstone filtered"
        );
        let r = c.apply(record(json!({"a": 1}))).unwrap().unwrap();
        assert_eq!(r.topic, "ord_v2-20231114");
        let mut with_header = record(json!({"a": 1}));
        with_header.headers.push(ConnectHeader {
            key: "keep-topic".into(),
            value: Value::Null,
        });
        assert_eq!(c.apply(with_header).unwrap().unwrap().topic, "ord_v2");
        let e = TransformChain::from_config(
            "c",
            &props(&[("transforms", "x"), ("transforms.x.type", "Nope")]),
        )
        .unwrap_err();
        assert!(e.to_string().contains("transformation class \"Nope\" not found; available: org.apache.kafka.connect.transforms.InsertField$Key"), "{e}");
        let e = TransformChain::from_config(
            "c",
            &props(&[
                ("transforms", "x"),
                ("transforms.x.type", "Filter"),
                ("transforms.x.predicate", "p"),
            ]),
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("predicate \"p\" is not in predicates"),
            "{e}"
        );
    }

    #[test]
    fn timestamps_convert_between_forms() {
        let c = chain(&[
            ("transforms", "tc"),
            ("transforms.tc.type", "TimestampConverter$Value"),
            ("transforms.tc.field", "at"),
            ("transforms.tc.target.type", "string"),
            ("transforms.tc.format", "yyyy-MM-dd'T'HH:mm:ss.SSS"),
        ]);
        assert_eq!(
            out(&c, record(json!({"at": 1_700_000_000_123_i64}))),
            json!({"at": "2023-11-14T22:13:20.123"})
        );
        let back = chain(&[
            ("transforms", "tc"),
            ("transforms.tc.type", "TimestampConverter$Value"),
            ("transforms.tc.field", "at"),
            ("transforms.tc.target.type", "unix"),
            ("transforms.tc.format", "yyyy-MM-dd'T'HH:mm:ss.SSS"),
        ]);
        assert_eq!(
            out(&back, record(json!({"at": "2023-11-14T22:13:20.123"}))),
            json!({"at": 1_700_000_000_123_i64})
        );
        assert!(back.apply(record(json!({"at": "14/11/2023"}))).is_err());
        assert_eq!(civil_from_days(days_from_civil(2000, 2, 29)), (2000, 2, 29));
        assert_eq!(days_from_civil(1970, 1, 1), 0);
    }
}
