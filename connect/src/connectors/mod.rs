//! The built-in connectors: Kafka's FileStreamSource and FileStreamSink, and a datagen source
//! in the manner of Confluent's kafka-connect-datagen.

pub mod datagen;
pub mod file;
