//! The one error type of `sluice-streams`.

/// What can go wrong building or running a topology.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The topology is not well formed (a name used twice, a store nobody connects, a join of
    /// streams that are not co-partitioned...). Found when it is built, before anything runs.
    #[error("topology: {0}")]
    Topology(String),
    /// A setting is missing, unknown or has a value it cannot take.
    #[error("config \"{key}\": {message}")]
    Config {
        /// The setting's name, as the user gave it.
        key: String,
        /// What is wrong and what would be accepted.
        message: String,
    },
    /// Bytes a serde could not turn into a value.
    #[error("deserializing {what} of {topic}: {message}")]
    Deserialize {
        /// `key` or `value`.
        what: &'static str,
        /// The topic (or store) the bytes came from.
        topic: String,
        /// What was wrong with them.
        message: String,
    },
    /// A value a serde could not turn into bytes.
    #[error("serializing {what} for {topic}: {message}")]
    Serialize {
        /// `key` or `value`.
        what: &'static str,
        /// The topic (or store) the bytes were for.
        topic: String,
        /// What went wrong.
        message: String,
    },
    /// A state store failed (its engine's error, or a store used wrongly).
    #[error("state store \"{store}\": {message}")]
    Store {
        /// The store's name.
        store: String,
        /// The engine's error.
        message: String,
    },
    /// A file of the state directory (a checkpoint, a lock) could not be read or written.
    #[error("state directory {path}: {source}")]
    StateDir {
        /// The file or directory.
        path: std::path::PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The client interface refused or failed.
    #[error(transparent)]
    Client(#[from] sluice_client::Error),
    /// A processor failed on a record; the application stops with it.
    #[error("processing {topic}-{partition}@{offset} in {processor}: {message}")]
    Processing {
        /// The processor node that failed.
        processor: String,
        /// Where the record came from.
        topic: String,
        /// Its partition.
        partition: i32,
        /// Its offset.
        offset: i64,
        /// What went wrong.
        message: String,
    },
    /// The application was closed, or is not running.
    #[error("the streams application is {0}")]
    NotRunning(&'static str),
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A store error naming `store`.
    pub fn store(store: &str, message: impl std::fmt::Display) -> Self {
        Error::Store {
            store: store.to_owned(),
            message: message.to_string(),
        }
    }

    /// A config error naming `key`.
    pub fn config(key: &str, message: impl std::fmt::Display) -> Self {
        Error::Config {
            key: key.to_owned(),
            message: message.to_string(),
        }
    }
}
