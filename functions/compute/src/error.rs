//! The compute crate's one error type, and how each error is reported on a failed job.

use shared::domain::ErrorCode;

type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A store, S3 or model call (classified by `shared::Error::retry`).
    #[error(transparent)]
    Shared(#[from] shared::Error),

    /// The download of an object broke off midway (connection reset, timeout): transient.
    #[error("reading s3://{bucket}/{key} broke off")]
    Read {
        bucket: String,
        key: String,
        #[source]
        source: BoxError,
    },

    /// An object cannot be decoded (corrupt gzip): retrying cannot help until it is replaced.
    #[error("s3://{bucket}/{key} cannot be decoded")]
    Corrupt {
        bucket: String,
        key: String,
        #[source]
        source: std::io::Error,
    },

    /// The subject's data is over a limit of this deployment: retrying cannot help.
    #[error("{what} is {found}, over the limit of {limit}")]
    TooLarge {
        what: &'static str,
        found: u64,
        limit: u64,
    },

    /// The model rejects the features, or its artifact is invalid (an operator's fix helps).
    #[error("model: {0}")]
    Model(String),

    /// A blocking task (feature extraction, scoring) panicked or was cancelled.
    #[error("a blocking task did not finish")]
    Task(#[from] tokio::task::JoinError),
}

impl Error {
    /// Whether the same work may succeed later (throttling, 5xx, a broken-off download).
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Shared(e) => e.is_retryable(),
            Error::Read { .. } => true,
            Error::Corrupt { .. } | Error::Task(_) | Error::Model(_) | Error::TooLarge { .. } => {
                false
            }
        }
    }

    /// The code a job gets when this error ends it.
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::Model(_) => ErrorCode::ModelError,
            Error::Corrupt { .. } => ErrorCode::CorruptObject,
            Error::TooLarge { .. } => ErrorCode::TooLarge,
            e if e.is_retryable() => ErrorCode::Unavailable,
            _ => ErrorCode::Internal,
        }
    }
}

impl From<Error> for lambda_runtime::Diagnostic {
    fn from(error: Error) -> Self {
        lambda_runtime::Diagnostic {
            error_type: "compute::Error".to_owned(),
            error_message: shared::error::chain(&error),
        }
    }
}
