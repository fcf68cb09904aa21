//! Connect's data model: [`Schema`], [`Value`] and the [`ConnectRecord`] that source tasks
//! produce and sink tasks receive, between the converters and the connectors.
//!
//! As in Kafka Connect, a value may come with a schema (a struct with typed fields, from a
//! JsonConverter with `schemas.enable`, or a connector that declares one) or without one
//! (schemaless JSON: objects are maps with string keys).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use base64::Engine as _;
use bytes::Bytes;
use serde_json::{Map as JsonMap, Value as Json, json};

use crate::error::{Error, Result};

/// The type of a [`Schema`], with Connect's names (`int8` ... `struct`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SchemaType {
    /// `int8`.
    Int8,
    /// `int16`.
    Int16,
    /// `int32`.
    Int32,
    /// `int64`.
    Int64,
    /// `float` (Connect's FLOAT32).
    Float32,
    /// `double` (Connect's FLOAT64).
    Float64,
    /// `boolean`.
    Boolean,
    /// `string`.
    String,
    /// `bytes`.
    Bytes,
    /// `array`, of `items`.
    Array,
    /// `map`, of `keys` to `values`.
    Map,
    /// `struct`, of `fields`.
    Struct,
}

impl SchemaType {
    /// The name in Connect's schema JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            SchemaType::Int8 => "int8",
            SchemaType::Int16 => "int16",
            SchemaType::Int32 => "int32",
            SchemaType::Int64 => "int64",
            SchemaType::Float32 => "float",
            SchemaType::Float64 => "double",
            SchemaType::Boolean => "boolean",
            SchemaType::String => "string",
            SchemaType::Bytes => "bytes",
            SchemaType::Array => "array",
            SchemaType::Map => "map",
            SchemaType::Struct => "struct",
        }
    }

    /// The type of a name of Connect's schema JSON, or of Cast's type names (`float32`,
    /// `float64` also accepted).
    pub fn parse(name: &str) -> Option<SchemaType> {
        Some(match name.to_ascii_lowercase().as_str() {
            "int8" => SchemaType::Int8,
            "int16" => SchemaType::Int16,
            "int32" => SchemaType::Int32,
            "int64" => SchemaType::Int64,
            "float" | "float32" => SchemaType::Float32,
            "double" | "float64" => SchemaType::Float64,
            "boolean" => SchemaType::Boolean,
            "string" => SchemaType::String,
            "bytes" => SchemaType::Bytes,
            "array" => SchemaType::Array,
            "map" => SchemaType::Map,
            "struct" => SchemaType::Struct,
            _ => return None,
        })
    }

    /// Whether this is a primitive (not array, map or struct).
    pub fn is_primitive(self) -> bool {
        !matches!(
            self,
            SchemaType::Array | SchemaType::Map | SchemaType::Struct
        )
    }
}

/// A field of a struct [`Schema`].
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    /// Its name.
    pub name: String,
    /// Its schema.
    pub schema: Schema,
}

/// A Connect schema.
#[derive(Debug, Clone, PartialEq)]
pub struct Schema {
    /// The type.
    pub ty: SchemaType,
    /// Whether null is allowed.
    pub optional: bool,
    /// A name (logical types: `org.apache.kafka.connect.data.Timestamp`, ...).
    pub name: Option<String>,
    /// A version.
    pub version: Option<i32>,
    /// Documentation.
    pub doc: Option<String>,
    /// Parameters (a Decimal's `scale`, ...).
    pub parameters: BTreeMap<String, String>,
    /// The default value, as JSON.
    pub default: Option<Json>,
    /// A struct's fields, in order.
    pub fields: Vec<Field>,
    /// An array's items; a map's keys.
    pub keys: Option<Box<Schema>>,
    /// A map's values.
    pub values: Option<Box<Schema>>,
}

/// The name of Connect's Timestamp logical type (int64 ms since the epoch).
pub const TIMESTAMP_LOGICAL: &str = "org.apache.kafka.connect.data.Timestamp";
/// The name of Connect's Date logical type (int32 days since the epoch).
pub const DATE_LOGICAL: &str = "org.apache.kafka.connect.data.Date";
/// The name of Connect's Time logical type (int32 ms since midnight).
pub const TIME_LOGICAL: &str = "org.apache.kafka.connect.data.Time";

impl Schema {
    /// A schema of a type, required, without a name.
    pub fn new(ty: SchemaType) -> Self {
        Schema {
            ty,
            optional: false,
            name: None,
            version: None,
            doc: None,
            parameters: BTreeMap::new(),
            default: None,
            fields: Vec::new(),
            keys: None,
            values: None,
        }
    }

    /// A required string (Connect's `STRING_SCHEMA`).
    pub fn string() -> Self {
        Schema::new(SchemaType::String)
    }

    /// An optional copy.
    pub fn optional(mut self) -> Self {
        self.optional = true;
        self
    }

    /// A named copy.
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// A struct of these fields.
    pub fn structure(fields: Vec<Field>) -> Self {
        let mut s = Schema::new(SchemaType::Struct);
        s.fields = fields;
        s
    }

    /// An array of `items`.
    pub fn array(items: Schema) -> Self {
        let mut s = Schema::new(SchemaType::Array);
        s.keys = Some(Box::new(items));
        s
    }

    /// A field of a struct schema.
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// Connect's schema JSON (what JsonConverter writes in its envelope).
    pub fn to_json(&self) -> Json {
        let mut o = JsonMap::new();
        o.insert("type".into(), Json::from(self.ty.as_str()));
        match self.ty {
            SchemaType::Struct => {
                let fields = self
                    .fields
                    .iter()
                    .map(|f| {
                        let mut j = f.schema.to_json();
                        if let Json::Object(m) = &mut j {
                            m.insert("field".into(), Json::from(f.name.clone()));
                        }
                        j
                    })
                    .collect();
                o.insert("fields".into(), Json::Array(fields));
            }
            SchemaType::Array => {
                if let Some(items) = &self.keys {
                    o.insert("items".into(), items.to_json());
                }
            }
            SchemaType::Map => {
                if let Some(k) = &self.keys {
                    o.insert("keys".into(), k.to_json());
                }
                if let Some(v) = &self.values {
                    o.insert("values".into(), v.to_json());
                }
            }
            _ => {}
        }
        o.insert("optional".into(), Json::Bool(self.optional));
        if let Some(name) = &self.name {
            o.insert("name".into(), Json::from(name.clone()));
        }
        if let Some(v) = self.version {
            o.insert("version".into(), Json::from(v));
        }
        if let Some(d) = &self.doc {
            o.insert("doc".into(), Json::from(d.clone()));
        }
        if !self.parameters.is_empty() {
            o.insert(
                "parameters".into(),
                Json::Object(
                    self.parameters
                        .iter()
                        .map(|(k, v)| (k.clone(), Json::from(v.clone())))
                        .collect(),
                ),
            );
        }
        if let Some(d) = &self.default {
            o.insert("default".into(), d.clone());
        }
        Json::Object(o)
    }

    /// Reads Connect's schema JSON.
    pub fn from_json(j: &Json) -> Result<Schema> {
        let bad = |m: String| Error::data("schema", m);
        let o = j
            .as_object()
            .ok_or_else(|| bad(format!("a schema must be a JSON object, found {j}")))?;
        let ty_name = o
            .get("type")
            .and_then(Json::as_str)
            .ok_or_else(|| bad("schema must contain 'type' field".into()))?;
        let ty = SchemaType::parse(ty_name)
            .filter(|_| ty_name != "float32" && ty_name != "float64")
            .ok_or_else(|| bad(format!("unknown schema type: {ty_name}")))?;
        let mut s = Schema::new(ty);
        s.optional = o.get("optional").and_then(Json::as_bool).unwrap_or(false);
        s.name = o.get("name").and_then(Json::as_str).map(str::to_owned);
        s.version = o
            .get("version")
            .and_then(Json::as_i64)
            .and_then(|v| i32::try_from(v).ok());
        s.doc = o.get("doc").and_then(Json::as_str).map(str::to_owned);
        if let Some(Json::Object(p)) = o.get("parameters") {
            for (k, v) in p {
                let v = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
                s.parameters.insert(k.clone(), v);
            }
        }
        s.default = o.get("default").filter(|d| !d.is_null()).cloned();
        match ty {
            SchemaType::Struct => {
                let fields = o.get("fields").and_then(Json::as_array).ok_or_else(|| {
                    bad("struct schema's \"fields\" argument is not an array".into())
                })?;
                for f in fields {
                    let name = f.get("field").and_then(Json::as_str).ok_or_else(|| {
                        bad("struct schema's field name not specified properly".into())
                    })?;
                    s.fields.push(Field {
                        name: name.to_owned(),
                        schema: Schema::from_json(f)?,
                    });
                }
            }
            SchemaType::Array => {
                let items = o
                    .get("items")
                    .ok_or_else(|| bad("array schema did not specify the element type".into()))?;
                s.keys = Some(Box::new(Schema::from_json(items)?));
            }
            SchemaType::Map => {
                let k = o
                    .get("keys")
                    .ok_or_else(|| bad("map schema did not specify the key type".into()))?;
                let v = o
                    .get("values")
                    .ok_or_else(|| bad("map schema did not specify the value type".into()))?;
                s.keys = Some(Box::new(Schema::from_json(k)?));
                s.values = Some(Box::new(Schema::from_json(v)?));
            }
            _ => {}
        }
        Ok(s)
    }
}

/// A Connect value. Struct fields and schemaless maps keep their order.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Value {
    /// Null.
    #[default]
    Null,
    /// A boolean.
    Boolean(bool),
    /// Any integer type (the schema says which).
    Int(i64),
    /// `float` or `double`.
    Float(f64),
    /// A string.
    String(String),
    /// Bytes.
    Bytes(Bytes),
    /// An array.
    Array(Vec<Value>),
    /// A map (schemaless JSON objects are maps with string keys).
    Map(Vec<(Value, Value)>),
    /// A struct's fields, in its schema's order.
    Struct(Vec<(String, Value)>),
}

impl Value {
    /// Whether this is null.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// A named field of a struct, or the value of a string key of a map.
    pub fn get(&self, name: &str) -> Option<&Value> {
        match self {
            Value::Struct(fields) => fields.iter().find(|(k, _)| k == name).map(|(_, v)| v),
            Value::Map(entries) => entries
                .iter()
                .find(|(k, _)| matches!(k, Value::String(s) if s == name))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// Whether this is a struct or a map (something with fields).
    pub fn has_fields(&self) -> bool {
        matches!(self, Value::Struct(_) | Value::Map(_))
    }

    /// Fields of a struct or a map with string keys (other keys are skipped).
    pub fn fields(&self) -> Vec<(String, Value)> {
        match self {
            Value::Struct(f) => f.clone(),
            Value::Map(e) => e
                .iter()
                .filter_map(|(k, v)| match k {
                    Value::String(s) => Some((s.clone(), v.clone())),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        }
    }

    /// Builds a value of the same kind (struct or map) as `self` from fields.
    pub fn with_fields(&self, fields: Vec<(String, Value)>) -> Value {
        match self {
            Value::Struct(_) => Value::Struct(fields),
            _ => Value::Map(
                fields
                    .into_iter()
                    .map(|(k, v)| (Value::String(k), v))
                    .collect(),
            ),
        }
    }

    /// The value as text, as Connect's StringConverter writes it (`toString` of the value):
    /// strings as they are, numbers and booleans in decimal, others as JSON.
    pub fn to_text(&self) -> Option<String> {
        match self {
            Value::Null => None,
            Value::String(s) => Some(s.clone()),
            Value::Boolean(b) => Some(b.to_string()),
            Value::Int(i) => Some(i.to_string()),
            Value::Float(f) => Some(f.to_string()),
            other => Some(other.to_json_schemaless().to_string()),
        }
    }

    /// Schemaless JSON: bytes as base64, structs and string-keyed maps as objects, other maps
    /// as arrays of `[key, value]` pairs.
    pub fn to_json_schemaless(&self) -> Json {
        match self {
            Value::Null => Json::Null,
            Value::Boolean(b) => Json::Bool(*b),
            Value::Int(i) => Json::from(*i),
            Value::Float(f) => serde_json::Number::from_f64(*f).map_or(Json::Null, Json::Number),
            Value::String(s) => Json::String(s.clone()),
            Value::Bytes(b) => Json::String(base64::engine::general_purpose::STANDARD.encode(b)),
            Value::Array(a) => Json::Array(a.iter().map(Value::to_json_schemaless).collect()),
            Value::Struct(f) => Json::Object(
                f.iter()
                    .map(|(k, v)| (k.clone(), v.to_json_schemaless()))
                    .collect(),
            ),
            Value::Map(e) => {
                if e.iter().all(|(k, _)| matches!(k, Value::String(_))) {
                    Json::Object(
                        e.iter()
                            .filter_map(|(k, v)| match k {
                                Value::String(s) => Some((s.clone(), v.to_json_schemaless())),
                                _ => None,
                            })
                            .collect(),
                    )
                } else {
                    Json::Array(
                        e.iter()
                            .map(|(k, v)| json!([k.to_json_schemaless(), v.to_json_schemaless()]))
                            .collect(),
                    )
                }
            }
        }
    }

    /// Schemaless JSON to a value: objects become maps with string keys.
    pub fn from_json_schemaless(j: &Json) -> Value {
        match j {
            Json::Null => Value::Null,
            Json::Bool(b) => Value::Boolean(*b),
            Json::Number(n) => n
                .as_i64()
                .map(Value::Int)
                .unwrap_or_else(|| Value::Float(n.as_f64().unwrap_or(f64::NAN))),
            Json::String(s) => Value::String(s.clone()),
            Json::Array(a) => Value::Array(a.iter().map(Value::from_json_schemaless).collect()),
            Json::Object(o) => Value::Map(
                o.iter()
                    .map(|(k, v)| (Value::String(k.clone()), Value::from_json_schemaless(v)))
                    .collect(),
            ),
        }
    }

    /// JSON of a value of `schema` (the envelope's `payload`). Checks the value against the
    /// schema: a null in a required schema, or a value of another type, is an error.
    pub fn to_json_with(&self, schema: &Schema) -> Result<Json> {
        if self.is_null() {
            if let Some(d) = &schema.default {
                return Ok(d.clone());
            }
            if schema.optional {
                return Ok(Json::Null);
            }
            return Err(Error::data(
                "value",
                "conversion error: null value for field that is required and has no default value",
            ));
        }
        let mismatch = || {
            Error::data(
                "value",
                format!(
                    "invalid value {} for schema type {}",
                    self.to_json_schemaless(),
                    schema.ty.as_str()
                ),
            )
        };
        Ok(match (schema.ty, self) {
            (
                SchemaType::Int8 | SchemaType::Int16 | SchemaType::Int32 | SchemaType::Int64,
                Value::Int(i),
            ) => Json::from(*i),
            (SchemaType::Float32 | SchemaType::Float64, Value::Float(f)) => {
                serde_json::Number::from_f64(*f).map_or(Json::Null, Json::Number)
            }
            (SchemaType::Float32 | SchemaType::Float64, Value::Int(i)) => Json::from(*i as f64),
            (SchemaType::Boolean, Value::Boolean(b)) => Json::Bool(*b),
            (SchemaType::String, Value::String(s)) => Json::String(s.clone()),
            (SchemaType::Bytes, Value::Bytes(b)) => {
                Json::String(base64::engine::general_purpose::STANDARD.encode(b))
            }
            (SchemaType::Array, Value::Array(items)) => {
                let item = schema.keys.as_deref().ok_or_else(mismatch)?;
                Json::Array(
                    items
                        .iter()
                        .map(|v| v.to_json_with(item))
                        .collect::<Result<_>>()?,
                )
            }
            (SchemaType::Map, Value::Map(entries)) => {
                let (ks, vs) = schema
                    .keys
                    .as_deref()
                    .zip(schema.values.as_deref())
                    .ok_or_else(mismatch)?;
                if ks.ty == SchemaType::String {
                    let mut o = JsonMap::new();
                    for (k, v) in entries {
                        let Value::String(k) = k else {
                            return Err(mismatch());
                        };
                        o.insert(k.clone(), v.to_json_with(vs)?);
                    }
                    Json::Object(o)
                } else {
                    Json::Array(
                        entries
                            .iter()
                            .map(|(k, v)| Ok(json!([k.to_json_with(ks)?, v.to_json_with(vs)?])))
                            .collect::<Result<_>>()?,
                    )
                }
            }
            (SchemaType::Struct, Value::Struct(_) | Value::Map(_)) => {
                let mut o = JsonMap::new();
                for f in &schema.fields {
                    let v = self.get(&f.name).cloned().unwrap_or_default();
                    o.insert(f.name.clone(), v.to_json_with(&f.schema)?);
                }
                Json::Object(o)
            }
            _ => return Err(mismatch()),
        })
    }

    /// A value of `schema` from its JSON (the envelope's `payload`).
    pub fn from_json_with(j: &Json, schema: &Schema) -> Result<Value> {
        if j.is_null() {
            if let Some(d) = &schema.default {
                return Value::from_json_with(d, schema);
            }
            if schema.optional {
                return Ok(Value::Null);
            }
            return Err(Error::data(
                "value",
                format!(
                    "invalid null value for required {} field",
                    schema.ty.as_str()
                ),
            ));
        }
        let mismatch = || {
            Error::data(
                "value",
                format!(
                    "JSON value {j} does not match schema type {}",
                    schema.ty.as_str()
                ),
            )
        };
        Ok(match schema.ty {
            SchemaType::Int8 | SchemaType::Int16 | SchemaType::Int32 | SchemaType::Int64 => {
                Value::Int(j.as_i64().ok_or_else(mismatch)?)
            }
            SchemaType::Float32 | SchemaType::Float64 => {
                Value::Float(j.as_f64().ok_or_else(mismatch)?)
            }
            SchemaType::Boolean => Value::Boolean(j.as_bool().ok_or_else(mismatch)?),
            SchemaType::String => Value::String(j.as_str().ok_or_else(mismatch)?.to_owned()),
            SchemaType::Bytes => {
                let s = j.as_str().ok_or_else(mismatch)?;
                Value::Bytes(Bytes::from(
                    base64::engine::general_purpose::STANDARD
                        .decode(s)
                        .map_err(|e| Error::data("value", format!("invalid base64 bytes: {e}")))?,
                ))
            }
            SchemaType::Array => {
                let item = schema.keys.as_deref().ok_or_else(mismatch)?;
                Value::Array(
                    j.as_array()
                        .ok_or_else(mismatch)?
                        .iter()
                        .map(|v| Value::from_json_with(v, item))
                        .collect::<Result<_>>()?,
                )
            }
            SchemaType::Map => {
                let (ks, vs) = schema
                    .keys
                    .as_deref()
                    .zip(schema.values.as_deref())
                    .ok_or_else(mismatch)?;
                match j {
                    Json::Object(o) if ks.ty == SchemaType::String => Value::Map(
                        o.iter()
                            .map(|(k, v)| {
                                Ok((Value::String(k.clone()), Value::from_json_with(v, vs)?))
                            })
                            .collect::<Result<_>>()?,
                    ),
                    Json::Array(pairs) => Value::Map(
                        pairs
                            .iter()
                            .map(|p| match p.as_array().map(Vec::as_slice) {
                                Some([k, v]) => Ok((
                                    Value::from_json_with(k, ks)?,
                                    Value::from_json_with(v, vs)?,
                                )),
                                _ => Err(mismatch()),
                            })
                            .collect::<Result<_>>()?,
                    ),
                    _ => return Err(mismatch()),
                }
            }
            SchemaType::Struct => {
                let o = j.as_object().ok_or_else(mismatch)?;
                Value::Struct(
                    schema
                        .fields
                        .iter()
                        .map(|f| {
                            let v = o.get(&f.name).unwrap_or(&Json::Null);
                            Ok((f.name.clone(), Value::from_json_with(v, &f.schema)?))
                        })
                        .collect::<Result<_>>()?,
                )
            }
        })
    }

    /// A short rendering for error messages and logs.
    pub fn describe(&self) -> String {
        let mut s = String::new();
        let _ = write!(s, "{}", self.to_json_schemaless());
        if s.len() > 200 {
            let mut cut = 200;
            while !s.is_char_boundary(cut) {
                cut -= 1;
            }
            s.truncate(cut);
            s.push_str("...");
        }
        s
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(s.to_owned())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::String(s)
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Int(i)
    }
}

/// A header of a [`ConnectRecord`]: its value as Connect data (the worker's header
/// converter writes strings as UTF-8, bytes as they are, others as JSON).
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectHeader {
    /// The key.
    pub key: String,
    /// The value.
    pub value: Value,
}

/// A source partition or offset: a JSON object, as Kafka Connect's maps (`{"filename":
/// "test.txt"}`, `{"position": 42}`).
pub type SourceMap = JsonMap<String, Json>;

/// A record between a connector and the log, through the transforms and the converters:
/// what a source task returns from `poll` (with its source partition and offset) and what a
/// sink task receives in `put` (with its Kafka partition and offset).
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectRecord {
    /// The topic.
    pub topic: String,
    /// The Kafka partition: where a sink record came from; where a source record goes
    /// (`None`: the partitioner chooses).
    pub kafka_partition: Option<i32>,
    /// The key's schema, if any.
    pub key_schema: Option<Schema>,
    /// The key.
    pub key: Value,
    /// The value's schema, if any.
    pub value_schema: Option<Schema>,
    /// The value.
    pub value: Value,
    /// Timestamp in ms since the epoch.
    pub timestamp: Option<i64>,
    /// Headers.
    pub headers: Vec<ConnectHeader>,
    /// A source record's partition (which file, table...).
    pub source_partition: Option<SourceMap>,
    /// A source record's offset within its partition.
    pub source_offset: Option<SourceMap>,
    /// A sink record's offset in its Kafka partition.
    pub kafka_offset: Option<i64>,
}

/// What a source task returns from `poll`.
pub type SourceRecord = ConnectRecord;
/// What a sink task receives in `put`.
pub type SinkRecord = ConnectRecord;

impl ConnectRecord {
    /// A source record of `topic` at `partition`/`offset` with a value (and no key).
    pub fn source(
        source_partition: SourceMap,
        source_offset: SourceMap,
        topic: impl Into<String>,
        value_schema: Option<Schema>,
        value: Value,
    ) -> Self {
        ConnectRecord {
            topic: topic.into(),
            kafka_partition: None,
            key_schema: None,
            key: Value::Null,
            value_schema,
            value,
            timestamp: None,
            headers: Vec::new(),
            source_partition: Some(source_partition),
            source_offset: Some(source_offset),
            kafka_offset: None,
        }
    }

    /// Sets the key.
    pub fn with_key(mut self, schema: Option<Schema>, key: Value) -> Self {
        self.key_schema = schema;
        self.key = key;
        self
    }

    /// Sets the timestamp.
    pub fn with_timestamp(mut self, ts: i64) -> Self {
        self.timestamp = Some(ts);
        self
    }
}

/// `{key: value}` as a [`SourceMap`].
pub fn source_map(pairs: impl IntoIterator<Item = (&'static str, Json)>) -> SourceMap {
    pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_json_round_trips() {
        let s = Schema::structure(vec![
            Field {
                name: "id".into(),
                schema: Schema::new(SchemaType::Int32),
            },
            Field {
                name: "tags".into(),
                schema: Schema::array(Schema::string()).optional(),
            },
        ])
        .named("order");
        let j = s.to_json();
        assert_eq!(j["type"], "struct");
        assert_eq!(j["fields"][0]["field"], "id");
        assert_eq!(j["fields"][1]["items"]["type"], "string");
        assert_eq!(Schema::from_json(&j).unwrap(), s);
        let e = Schema::from_json(&json!({"type": "decimal"})).unwrap_err();
        assert!(
            e.to_string().contains("unknown schema type: decimal"),
            "{e}"
        );
    }

    #[test]
    fn values_follow_their_schema() {
        let s = Schema::from_json(&json!({"type":"struct","fields":[
            {"field":"id","type":"int64","optional":false},
            {"field":"name","type":"string","optional":true},
            {"field":"raw","type":"bytes","optional":true}]}))
        .unwrap();
        let j = json!({"id": 7, "name": null, "raw": "AAE="});
        let v = Value::from_json_with(&j, &s).unwrap();
        assert_eq!(v.get("id"), Some(&Value::Int(7)));
        assert_eq!(
            v.get("raw"),
            Some(&Value::Bytes(Bytes::from_static(&[0, 1])))
        );
        assert_eq!(v.to_json_with(&s).unwrap(), j);
        let e = Value::from_json_with(&json!({"name": "x"}), &s).unwrap_err();
        assert!(e.to_string().contains("required int64"), "{e}");
        let e = Value::from_json_with(&json!({"id": "x"}), &s).unwrap_err();
        assert!(e.to_string().contains("does not match"), "{e}");
    }

    #[test]
    fn schemaless_json_round_trips() {
        let j: Json = serde_json::from_str(r#"{"b":1,"a":[true,null,1.5]}"#).unwrap();
        let v = Value::from_json_schemaless(&j);
        assert_eq!(v.get("b"), Some(&Value::Int(1)));
        assert_eq!(v.to_json_schemaless(), j);
        assert_eq!(Value::Int(3).to_text().as_deref(), Some("3"));
        assert_eq!(Value::Null.to_text(), None);
    }
}
