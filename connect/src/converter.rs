//! Converters between Connect data and the bytes of records: Kafka Connect's JsonConverter
//! (with or without the `schemas.enable` envelope), StringConverter and ByteArrayConverter,
//! chosen by class name or alias (`key.converter`, `value.converter`) and configured with
//! their prefixed keys (`value.converter.schemas.enable`).
//!
//! [`Converter`] is an object-safe trait taking the topic, so a schema-registry converter
//! (which registers and looks up schemas per subject `<topic>-key`/`<topic>-value`, caching
//! them) fits beside these.

use std::sync::Arc;

use bytes::Bytes;
use serde_json::Value as Json;

use crate::config::Props;
use crate::data::{ConnectHeader, Schema, SchemaType, Value};
use crate::error::{Error, Result};

/// Turns Connect data into record bytes and back.
pub trait Converter: Send + Sync + std::fmt::Debug {
    /// The bytes of a key or value of `topic` (`None`: a null).
    fn to_bytes(
        &self,
        topic: &str,
        schema: Option<&Schema>,
        value: &Value,
    ) -> Result<Option<Bytes>>;
    /// The schema (if the format has one) and value of record bytes of `topic`.
    fn to_data(&self, topic: &str, bytes: Option<&[u8]>) -> Result<(Option<Schema>, Value)>;
}

/// Class names of the converters, the full name first, then its aliases.
pub const CONVERTERS: &[&[&str]] = &[
    &[
        "org.apache.kafka.connect.json.JsonConverter",
        "JsonConverter",
        "Json",
    ],
    &[
        "org.apache.kafka.connect.storage.StringConverter",
        "StringConverter",
        "String",
    ],
    &[
        "org.apache.kafka.connect.converters.ByteArrayConverter",
        "ByteArrayConverter",
        "ByteArray",
    ],
];

/// The converter of `class` (a class name or alias), configured with `props` (its keys
/// without the `key.converter.`/`value.converter.` prefix).
pub fn converter(class: &str, props: &Props, is_key: bool) -> Result<Arc<dyn Converter>> {
    let class = class.trim();
    let which = CONVERTERS
        .iter()
        .position(|names| names.contains(&class))
        .ok_or_else(|| Error::UnknownClass {
            kind: "converter",
            name: class.to_owned(),
            available: CONVERTERS
                .iter()
                .flat_map(|n| n.iter().map(|s| (*s).to_owned()))
                .collect(),
        })?;
    Ok(match which {
        0 => {
            let schemas_enable = match props.get("schemas.enable").map(|s| s.trim()) {
                None => true,
                Some(v) if v.eq_ignore_ascii_case("true") => true,
                Some(v) if v.eq_ignore_ascii_case("false") => false,
                Some(v) => {
                    return Err(Error::config(
                        if is_key {
                            "key.converter"
                        } else {
                            "value.converter"
                        },
                        "schemas.enable",
                        format!("\"{v}\" is not true or false"),
                    ));
                }
            };
            Arc::new(JsonConverter { schemas_enable })
        }
        1 => Arc::new(StringConverter),
        _ => Arc::new(ByteArrayConverter),
    })
}

/// Kafka Connect's JsonConverter.
#[derive(Debug, Clone, Copy)]
pub struct JsonConverter {
    /// Whether records carry `{"schema": ..., "payload": ...}` (default true).
    pub schemas_enable: bool,
}

impl Converter for JsonConverter {
    fn to_bytes(
        &self,
        topic: &str,
        schema: Option<&Schema>,
        value: &Value,
    ) -> Result<Option<Bytes>> {
        if schema.is_none() && value.is_null() {
            return Ok(None);
        }
        let payload = match schema {
            Some(s) => value
                .to_json_with(s)
                .map_err(|e| Error::data(format!("data of topic {topic}"), e.to_string()))?,
            None => value.to_json_schemaless(),
        };
        let fail =
            |e: serde_json::Error| Error::data(format!("data of topic {topic}"), e.to_string());
        if !self.schemas_enable {
            return serde_json::to_vec(&payload)
                .map(|v| Some(Bytes::from(v)))
                .map_err(fail);
        }
        // Kafka's field order: the schema, then the payload.
        let mut out = Vec::with_capacity(64);
        out.extend_from_slice(b"{\"schema\":");
        serde_json::to_writer(&mut out, &schema.map_or(Json::Null, Schema::to_json))
            .map_err(fail)?;
        out.extend_from_slice(b",\"payload\":");
        serde_json::to_writer(&mut out, &payload).map_err(fail)?;
        out.push(b'}');
        Ok(Some(Bytes::from(out)))
    }

    fn to_data(&self, topic: &str, bytes: Option<&[u8]>) -> Result<(Option<Schema>, Value)> {
        let Some(bytes) = bytes else {
            return Ok((None, Value::Null));
        };
        let j: Json = serde_json::from_slice(bytes).map_err(|e| {
            Error::data(
                format!("data of topic {topic}"),
                format!(
                    "Converting byte[] to Kafka Connect data failed due to serialization error: {e}"
                ),
            )
        })?;
        if !self.schemas_enable {
            return Ok((None, Value::from_json_schemaless(&j)));
        }
        let envelope = j
            .as_object()
            .filter(|o| o.len() == 2 && o.contains_key("schema") && o.contains_key("payload"));
        let Some(o) = envelope else {
            return Err(Error::data(
                format!("data of topic {topic}"),
                "JsonConverter with schemas.enable requires \"schema\" and \"payload\" fields and \
                 may not contain additional fields. If you are trying to deserialize plain JSON \
                 data, set schemas.enable=false in your converter configuration.",
            ));
        };
        match &o["schema"] {
            Json::Null => Ok((None, Value::from_json_schemaless(&o["payload"]))),
            s => {
                let schema = Schema::from_json(s)?;
                let value = Value::from_json_with(&o["payload"], &schema)?;
                Ok((Some(schema), value))
            }
        }
    }
}

/// Kafka Connect's StringConverter (UTF-8).
#[derive(Debug, Clone, Copy)]
pub struct StringConverter;

impl Converter for StringConverter {
    fn to_bytes(&self, _: &str, _: Option<&Schema>, value: &Value) -> Result<Option<Bytes>> {
        Ok(match value {
            Value::String(s) => Some(Bytes::copy_from_slice(s.as_bytes())),
            v => v.to_text().map(Bytes::from),
        })
    }

    fn to_data(&self, topic: &str, bytes: Option<&[u8]>) -> Result<(Option<Schema>, Value)> {
        let schema = Some(Schema::string().optional());
        match bytes {
            None => Ok((schema, Value::Null)),
            Some(b) => {
                let s = std::str::from_utf8(b).map_err(|e| {
                    Error::data(format!("data of topic {topic}"), format!("not UTF-8: {e}"))
                })?;
                Ok((schema, Value::String(s.to_owned())))
            }
        }
    }
}

/// Kafka Connect's ByteArrayConverter: bytes as they are.
#[derive(Debug, Clone, Copy)]
pub struct ByteArrayConverter;

impl Converter for ByteArrayConverter {
    fn to_bytes(
        &self,
        topic: &str,
        schema: Option<&Schema>,
        value: &Value,
    ) -> Result<Option<Bytes>> {
        if let Some(s) = schema
            && s.ty != SchemaType::Bytes
        {
            return Err(Error::data(
                format!("data of topic {topic}"),
                format!(
                    "Invalid schema type for ByteArrayConverter: {}",
                    s.ty.as_str()
                ),
            ));
        }
        match value {
            Value::Null => Ok(None),
            Value::Bytes(b) => Ok(Some(b.clone())),
            other => Err(Error::data(
                format!("data of topic {topic}"),
                format!(
                    "ByteArrayConverter is not compatible with objects of type {}",
                    other.describe()
                ),
            )),
        }
    }

    fn to_data(&self, _: &str, bytes: Option<&[u8]>) -> Result<(Option<Schema>, Value)> {
        let schema = Some(Schema::new(SchemaType::Bytes).optional());
        Ok((
            schema,
            bytes.map_or(Value::Null, |b| Value::Bytes(Bytes::copy_from_slice(b))),
        ))
    }
}

/// A header's bytes, as Kafka Connect's SimpleHeaderConverter writes them: strings as UTF-8,
/// bytes as they are, other values as JSON.
pub fn header_to_bytes(h: &ConnectHeader) -> Option<Bytes> {
    match &h.value {
        Value::Null => None,
        Value::String(s) => Some(Bytes::copy_from_slice(s.as_bytes())),
        Value::Bytes(b) => Some(b.clone()),
        v => Some(Bytes::from(v.to_json_schemaless().to_string())),
    }
}

/// A header's value from its bytes: UTF-8 text as a string, anything else as bytes.
pub fn header_from_bytes(key: &str, bytes: Option<&[u8]>) -> ConnectHeader {
    let value = match bytes {
        None => Value::Null,
        Some(b) => match std::str::from_utf8(b) {
            Ok(s) => Value::String(s.to_owned()),
            Err(_) => Value::Bytes(Bytes::copy_from_slice(b)),
        },
    };
    ConnectHeader {
        key: key.to_owned(),
        value,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schemas(enable: &str) -> Props {
        [("schemas.enable".to_owned(), enable.to_owned())].into()
    }

    #[test]
    fn json_with_schemas_writes_and_reads_the_envelope() {
        let c = converter(
            "org.apache.kafka.connect.json.JsonConverter",
            &Props::new(),
            false,
        )
        .unwrap();
        let b = c
            .to_bytes("t", Some(&Schema::string()), &Value::from("hello"))
            .unwrap()
            .unwrap();
        assert_eq!(
            &b[..],
            br#"{"schema":{"optional":false,"type":"string"},"payload":"hello"}"#
        );
        let (s, v) = c.to_data("t", Some(&b)).unwrap();
        assert_eq!((s, v), (Some(Schema::string()), Value::from("hello")));
        let e = c.to_data("t", Some(br#"{"a":1}"#)).unwrap_err();
        assert!(e.to_string().contains("set schemas.enable=false"), "{e}");
        let (s, v) = c
            .to_data("t", Some(br#"{"schema":null,"payload":{"a":1}}"#))
            .unwrap();
        assert!(s.is_none());
        assert_eq!(v.get("a"), Some(&Value::Int(1)));
        assert_eq!(c.to_bytes("t", None, &Value::Null).unwrap(), None);
        assert_eq!(c.to_data("t", None).unwrap(), (None, Value::Null));
    }

    #[test]
    fn json_without_schemas_is_plain_json() {
        let c = converter("JsonConverter", &schemas("false"), false).unwrap();
        let (s, v) = c.to_data("t", Some(br#"{"a":[1,"x"]}"#)).unwrap();
        assert!(s.is_none());
        assert_eq!(
            c.to_bytes("t", None, &v).unwrap().unwrap(),
            &br#"{"a":[1,"x"]}"#[..]
        );
        let e = c.to_data("t", Some(b"{nope")).unwrap_err();
        assert!(e.to_string().contains("serialization error"), "{e}");
        let e = converter("Json", &schemas("maybe"), true).unwrap_err();
        assert!(
            e.to_string()
                .contains("key.converter: config \"schemas.enable\""),
            "{e}"
        );
    }

    #[test]
    fn string_and_bytes_converters() {
        let s = converter(
            "org.apache.kafka.connect.storage.StringConverter",
            &Props::new(),
            false,
        )
        .unwrap();
        assert_eq!(
            s.to_bytes("t", None, &Value::Int(5)).unwrap().unwrap(),
            &b"5"[..]
        );
        assert!(s.to_data("t", Some(&[0xff])).is_err());
        let b = converter("ByteArrayConverter", &Props::new(), false).unwrap();
        let (_, v) = b.to_data("t", Some(&[0xff, 0])).unwrap();
        assert_eq!(b.to_bytes("t", None, &v).unwrap().unwrap(), &[0xff, 0][..]);
        assert!(b.to_bytes("t", None, &Value::from("x")).is_err());
        let e = converter("AvroConverter", &Props::new(), false).unwrap_err();
        assert!(
            e.to_string().contains("converter class \"AvroConverter\" not found; available: org.apache.kafka.connect.json.JsonConverter"),
            "{e}"
        );
    }
}
