//! The broker's errors. Errors of a request become Kafka error codes in its response (through
//! [`sluice_log::Error::error_code`]); these are the errors of the broker itself.

/// What can go wrong starting or running the broker.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// A setting has a bad value or an unknown key.
    #[error("setting `{key}`: {message}")]
    Config {
        /// The key, as written.
        key: String,
        /// What is wrong and what is accepted.
        message: String,
    },
    /// The log could not be opened or failed.
    #[error(transparent)]
    Log(#[from] sluice_log::Error),
    /// Binding or accepting failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A request frame could not be decoded; the connection is closed.
    #[error("malformed request: {0}")]
    Malformed(String),
    /// A request frame is larger than `socket.request.max.bytes`; the connection is closed.
    #[error("request of {size} bytes is over socket.request.max.bytes ({max})")]
    RequestTooLarge {
        /// The frame's declared size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// A response could not be encoded (a handler filled a field the version lacks).
    #[error("encoding the response to {api} v{version}: {message}")]
    Encode {
        /// The API's name.
        api: String,
        /// The version.
        version: i16,
        /// The encoder's reason.
        message: String,
    },
}

/// The broker's result type.
pub type Result<T, E = BrokerError> = std::result::Result<T, E>;
