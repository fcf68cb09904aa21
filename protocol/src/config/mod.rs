//! What the topic, broker and client configs share: [`ConfigEntry`], and [`parse`], Kafka's
//! value types with its error wording.

pub mod parse;

/// One key of a config as `kafka-configs --describe --all` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigEntry {
    /// Kafka's name of the key, e.g. `retention.ms`.
    pub name: String,
    /// The value in effect, in the form the key accepts.
    pub value: String,
    /// Whether the value comes from the defaults rather than being set explicitly.
    pub is_default: bool,
}
