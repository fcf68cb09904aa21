//! The built-in connectors: Kafka's FileStreamSource and FileStreamSink, a datagen source
//! in the manner of Confluent's kafka-connect-datagen, and PostgreSQL source and sink
//! connectors in the manner of Confluent's JDBC connectors.

pub mod datagen;
pub mod file;
pub mod postgres;
