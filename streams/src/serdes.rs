//! Serdes: how keys and values become bytes and back, at the edges of a topology (sources,
//! sinks, stores, repartition topics).
//!
//! A [`Serde`] of `T` turns a `T` into Kafka's nullable bytes and back. The provided ones match
//! Kafka's own serializers byte for byte where Kafka has one (`i64` is `LongSerializer`'s 8
//! big-endian bytes, `string` is UTF-8), so a Java application reading Sluice's output (or
//! writing its input) agrees with it. A value that may be null is an `Option<T>`, with
//! [`option`]; a plain `T` refuses null with an error naming it.

use std::marker::PhantomData;
use std::sync::Arc;

use bytes::Bytes;

/// Turns values of `T` into nullable bytes and back.
pub trait Serde<T>: Send + Sync {
    /// The bytes of `value`; `None` is Kafka's null.
    fn serialize(&self, value: &T) -> Result<Option<Bytes>, String>;
    /// The value of `bytes` (`None`: Kafka's null).
    fn deserialize(&self, bytes: Option<&[u8]>) -> Result<T, String>;
    /// A short name for `topology.describe()` and errors.
    fn name(&self) -> &'static str {
        std::any::type_name::<Self>()
    }
}

impl<T> std::fmt::Debug for dyn Serde<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A shared serde, as the builder's parameter objects hold them.
pub type SerdeRef<T> = Arc<dyn Serde<T>>;

fn not_null<'a>(bytes: Option<&'a [u8]>, what: &str) -> Result<&'a [u8], String> {
    bytes.ok_or_else(|| format!("null where a {what} was expected (use an Option serde)"))
}

/// Raw bytes, as they are.
#[derive(Debug, Clone, Copy, Default)]
pub struct BytesSerde;

impl Serde<Bytes> for BytesSerde {
    fn serialize(&self, value: &Bytes) -> Result<Option<Bytes>, String> {
        Ok(Some(value.clone()))
    }
    fn deserialize(&self, bytes: Option<&[u8]>) -> Result<Bytes, String> {
        Ok(Bytes::copy_from_slice(not_null(bytes, "byte value")?))
    }
    fn name(&self) -> &'static str {
        "bytes"
    }
}

/// UTF-8 strings (Kafka's `StringSerializer`).
#[derive(Debug, Clone, Copy, Default)]
pub struct StringSerde;

impl Serde<String> for StringSerde {
    fn serialize(&self, value: &String) -> Result<Option<Bytes>, String> {
        Ok(Some(Bytes::copy_from_slice(value.as_bytes())))
    }
    fn deserialize(&self, bytes: Option<&[u8]>) -> Result<String, String> {
        let b = not_null(bytes, "string")?;
        std::str::from_utf8(b)
            .map(str::to_owned)
            .map_err(|e| format!("not UTF-8: {e}"))
    }
    fn name(&self) -> &'static str {
        "string"
    }
}

macro_rules! fixed_int_serde {
    ($name:ident, $t:ty, $len:expr, $label:expr, $kafka:expr) => {
        #[doc = concat!("`", stringify!($t), "` as ", stringify!($len), " big-endian bytes (Kafka's `", $kafka, "`).")]
        #[derive(Debug, Clone, Copy, Default)]
        pub struct $name;

        impl Serde<$t> for $name {
            fn serialize(&self, value: &$t) -> Result<Option<Bytes>, String> {
                Ok(Some(Bytes::copy_from_slice(&value.to_be_bytes())))
            }
            fn deserialize(&self, bytes: Option<&[u8]>) -> Result<$t, String> {
                let b = not_null(bytes, $label)?;
                let arr: [u8; $len] = b.try_into().map_err(|_| {
                    format!("{} bytes where a {} of {} bytes was expected", b.len(), $label, $len)
                })?;
                Ok(<$t>::from_be_bytes(arr))
            }
            fn name(&self) -> &'static str {
                $label
            }
        }
    };
}

fixed_int_serde!(I64Serde, i64, 8, "i64", "LongSerializer");
fixed_int_serde!(I32Serde, i32, 4, "i32", "IntegerSerializer");
fixed_int_serde!(F64Serde, f64, 8, "f64", "DoubleSerializer");

/// An `i64` written as its decimal string (what `kafka-console-consumer` shows as is).
#[derive(Debug, Clone, Copy, Default)]
pub struct I64AsStringSerde;

impl Serde<i64> for I64AsStringSerde {
    fn serialize(&self, value: &i64) -> Result<Option<Bytes>, String> {
        Ok(Some(Bytes::from(value.to_string())))
    }
    fn deserialize(&self, bytes: Option<&[u8]>) -> Result<i64, String> {
        let b = not_null(bytes, "decimal number")?;
        std::str::from_utf8(b)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .ok_or_else(|| format!("not a decimal i64: {:?}", String::from_utf8_lossy(b)))
    }
    fn name(&self) -> &'static str {
        "i64-as-string"
    }
}

/// The unit type: always null (Kafka's `Void`), for keyless streams.
#[derive(Debug, Clone, Copy, Default)]
pub struct UnitSerde;

impl Serde<()> for UnitSerde {
    fn serialize(&self, _: &()) -> Result<Option<Bytes>, String> {
        Ok(None)
    }
    fn deserialize(&self, _: Option<&[u8]>) -> Result<(), String> {
        Ok(())
    }
    fn name(&self) -> &'static str {
        "unit"
    }
}

/// JSON through serde.
pub struct JsonSerde<T>(PhantomData<fn() -> T>);

impl<T> std::fmt::Debug for JsonSerde<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JsonSerde")
    }
}

impl<T> Serde<T> for JsonSerde<T>
where
    T: serde::Serialize + serde::de::DeserializeOwned + 'static,
{
    fn serialize(&self, value: &T) -> Result<Option<Bytes>, String> {
        serde_json::to_vec(value)
            .map(|v| Some(Bytes::from(v)))
            .map_err(|e| e.to_string())
    }
    fn deserialize(&self, bytes: Option<&[u8]>) -> Result<T, String> {
        let b = not_null(bytes, "JSON document")?;
        serde_json::from_slice(b).map_err(|e| format!("not the expected JSON: {e}"))
    }
    fn name(&self) -> &'static str {
        "json"
    }
}

/// Makes a serde of `T` a serde of `Option<T>`: `None` is null.
pub struct OptionSerde<T>(SerdeRef<T>);

impl<T> std::fmt::Debug for OptionSerde<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "OptionSerde({})", self.0.name())
    }
}

impl<T: 'static> Serde<Option<T>> for OptionSerde<T> {
    fn serialize(&self, value: &Option<T>) -> Result<Option<Bytes>, String> {
        match value {
            Some(v) => self.0.serialize(v),
            None => Ok(None),
        }
    }
    fn deserialize(&self, bytes: Option<&[u8]>) -> Result<Option<T>, String> {
        bytes.map(|b| self.0.deserialize(Some(b))).transpose()
    }
    fn name(&self) -> &'static str {
        self.0.name()
    }
}

/// A serde from two functions, for types of your own.
pub struct FnSerde<T> {
    ser: Box<dyn Fn(&T) -> Result<Option<Bytes>, String> + Send + Sync>,
    de: Box<dyn Fn(Option<&[u8]>) -> Result<T, String> + Send + Sync>,
}

impl<T> std::fmt::Debug for FnSerde<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FnSerde")
    }
}

impl<T: 'static> Serde<T> for FnSerde<T> {
    fn serialize(&self, value: &T) -> Result<Option<Bytes>, String> {
        (self.ser)(value)
    }
    fn deserialize(&self, bytes: Option<&[u8]>) -> Result<T, String> {
        (self.de)(bytes)
    }
    fn name(&self) -> &'static str {
        "custom"
    }
}

/// Raw bytes.
pub fn bytes() -> SerdeRef<Bytes> {
    Arc::new(BytesSerde)
}

/// UTF-8 strings.
pub fn string() -> SerdeRef<String> {
    Arc::new(StringSerde)
}

/// `i64`, 8 bytes big-endian (Kafka's `Serdes.Long()`).
pub fn i64() -> SerdeRef<i64> {
    Arc::new(I64Serde)
}

/// `i32`, 4 bytes big-endian (Kafka's `Serdes.Integer()`).
pub fn i32() -> SerdeRef<i32> {
    Arc::new(I32Serde)
}

/// `f64`, 8 bytes big-endian (Kafka's `Serdes.Double()`).
pub fn f64() -> SerdeRef<f64> {
    Arc::new(F64Serde)
}

/// `i64` as a decimal string.
pub fn i64_as_string() -> SerdeRef<i64> {
    Arc::new(I64AsStringSerde)
}

/// `()`, always null: keyless streams.
pub fn unit() -> SerdeRef<()> {
    Arc::new(UnitSerde)
}

/// JSON through serde.
pub fn json<T>() -> SerdeRef<T>
where
    T: serde::Serialize + serde::de::DeserializeOwned + 'static,
{
    Arc::new(JsonSerde(PhantomData))
}

/// `inner`, with null as `None`.
pub fn option<T: 'static>(inner: SerdeRef<T>) -> SerdeRef<Option<T>> {
    Arc::new(OptionSerde(inner))
}

/// A serde of your own from two functions.
pub fn from_fns<T: 'static>(
    ser: impl Fn(&T) -> Result<Option<Bytes>, String> + Send + Sync + 'static,
    de: impl Fn(Option<&[u8]>) -> Result<T, String> + Send + Sync + 'static,
) -> SerdeRef<T> {
    Arc::new(FnSerde {
        ser: Box::new(ser),
        de: Box::new(de),
    })
}

/// The serde a type has by default, so that `Consumed::default()` and friends need no serde
/// spelled out for the common types.
pub trait DefaultSerde: Sized + 'static {
    /// The serde of `Self`.
    fn default_serde() -> SerdeRef<Self>;
}

impl DefaultSerde for String {
    fn default_serde() -> SerdeRef<Self> {
        string()
    }
}
impl DefaultSerde for Bytes {
    fn default_serde() -> SerdeRef<Self> {
        bytes()
    }
}
impl DefaultSerde for i64 {
    fn default_serde() -> SerdeRef<Self> {
        i64()
    }
}
impl DefaultSerde for i32 {
    fn default_serde() -> SerdeRef<Self> {
        i32()
    }
}
impl DefaultSerde for f64 {
    fn default_serde() -> SerdeRef<Self> {
        f64()
    }
}
impl DefaultSerde for () {
    fn default_serde() -> SerdeRef<Self> {
        unit()
    }
}
impl<T: DefaultSerde> DefaultSerde for Option<T> {
    fn default_serde() -> SerdeRef<Self> {
        option(T::default_serde())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_byte_layouts() {
        assert_eq!(
            i64().serialize(&258).unwrap().unwrap().as_ref(),
            &[0, 0, 0, 0, 0, 0, 1, 2]
        );
        assert_eq!(i32().deserialize(Some(&[0, 0, 1, 0])).unwrap(), 256);
        assert_eq!(string().deserialize(Some(b"hi")).unwrap(), "hi");
        assert_eq!(i64_as_string().serialize(&-7).unwrap().unwrap(), "-7");
    }

    #[test]
    fn bad_bytes_are_errors_naming_the_problem() {
        let e = i64().deserialize(Some(&[1, 2, 3])).unwrap_err();
        assert!(e.contains("3 bytes") && e.contains("8 bytes"), "{e}");
        let e = string().deserialize(None).unwrap_err();
        assert!(e.contains("null"), "{e}");
        let e = string().deserialize(Some(&[0xff])).unwrap_err();
        assert!(e.contains("UTF-8"), "{e}");
        let e = json::<Vec<u32>>().deserialize(Some(b"{")).unwrap_err();
        assert!(e.contains("JSON"), "{e}");
    }

    #[test]
    fn option_maps_null_both_ways() {
        let s = option(string());
        assert_eq!(s.serialize(&None).unwrap(), None);
        assert_eq!(s.deserialize(None).unwrap(), None);
        assert_eq!(s.deserialize(Some(b"x")).unwrap(), Some("x".to_owned()));
    }
}
