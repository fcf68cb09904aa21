//! The one error type of `sluice-connect`.

/// What can go wrong configuring or running connectors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A setting of a connector (or of the worker: `connector` is then `worker`) is missing or
    /// has a value it cannot take.
    #[error("{connector}: config \"{key}\": {message}")]
    Config {
        /// The connector's name, or `worker`.
        connector: String,
        /// The key, as the user gave it.
        key: String,
        /// What is wrong and what would be accepted.
        message: String,
    },
    /// A connector config failed validation: every bad field, as `validate` lists them.
    #[error(
        "Connector configuration is invalid and contains the following {} error(s):\n{}",
        errors.len(),
        errors.join("\n")
    )]
    InvalidConfig {
        /// One line per error, `key: message`.
        errors: Vec<String>,
    },
    /// A class name (connector, converter, transform, predicate) that no plugin answers to.
    #[error("{kind} class \"{name}\" not found; available: {}", available.join(", "))]
    UnknownClass {
        /// `connector`, `converter`, `transformation`, `predicate`.
        kind: &'static str,
        /// The name given.
        name: String,
        /// Every name accepted (class names and aliases).
        available: Vec<String>,
    },
    /// Bytes a converter could not turn into Connect data, or data it could not write.
    #[error("converting {what}: {message}")]
    Data {
        /// Where: `key of topic t`, `value of topic t`, a transform's name...
        what: String,
        /// What was wrong.
        message: String,
    },
    /// No connector (or task) of that name.
    #[error("{0} not found")]
    NotFound(String),
    /// A connector of that name exists already.
    #[error("Connector {0} already exists")]
    AlreadyExists(String),
    /// A request that is not allowed in the connector's present state (offsets of a running
    /// connector, ...).
    #[error("{0}")]
    BadRequest(String),
    /// A connector or task failed (its own error).
    #[error("{0}")]
    Task(String),
    /// A file (offsets, the source or sink file, a config file) could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The client interface refused or failed.
    #[error(transparent)]
    Client(#[from] sluice_client::Error),
}

/// `Result` of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A config error of `connector`'s `key`.
    pub fn config(
        connector: impl Into<String>,
        key: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Error::Config {
            connector: connector.into(),
            key: key.into(),
            message: message.into(),
        }
    }

    /// A data (conversion, transformation) error.
    pub fn data(what: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Data {
            what: what.into(),
            message: message.into(),
        }
    }

    /// An I/O error of `path`.
    pub fn io(path: impl AsRef<std::path::Path>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.as_ref().display().to_string(),
            source,
        }
    }

    /// Whether retrying the same operation may succeed (Kafka Connect's `RetriableException`):
    /// the client's retriable errors and I/O errors.
    pub fn is_retriable(&self) -> bool {
        match self {
            Error::Client(e) => e.is_retriable(),
            Error::Io { .. } => true,
            _ => false,
        }
    }

    /// The HTTP status of this error at the REST API, as Kafka Connect answers it.
    pub fn status_code(&self) -> u16 {
        match self {
            Error::NotFound(_) => 404,
            Error::AlreadyExists(_) => 409,
            Error::Config { .. }
            | Error::InvalidConfig { .. }
            | Error::UnknownClass { .. }
            | Error::BadRequest(_) => 400,
            _ => 500,
        }
    }
}
