//! The compute crate's one error type, and how each error is reported on a failed job.

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
            Error::Corrupt { .. } | Error::Task(_) => false,
        }
    }

    /// The `JobError.code` a job gets when this error ends it.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Shared(shared::Error::Model(_)) => codes::MODEL_ERROR,
            Error::Corrupt { .. } => codes::CORRUPT_OBJECT,
            e if e.is_retryable() => codes::UNAVAILABLE,
            _ => codes::INTERNAL,
        }
    }
}

/// `JobError.code` values written by compute, with their `retryable` flag.
///
/// | code | retryable | when |
/// |---|---|---|
/// | `NO_DATA` | true | the subject has no objects, or no valid transaction in them (data may arrive later) |
/// | `CORRUPT_OBJECT` | false | an object cannot be decoded; a replaced object marks the score stale, which restarts it |
/// | `MODEL_ERROR` | true | the model rejects the features or its artifact is invalid (an operator fix makes a retry succeed) |
/// | `UNAVAILABLE` | true | S3/DynamoDB kept failing transiently until the message's last attempt |
/// | `DEADLINE_EXCEEDED` | true | the last attempt ran out of function time |
/// | `INTERNAL` | true | anything else (a bug); the message says what |
pub mod codes {
    pub const NO_DATA: &str = "NO_DATA";
    pub const CORRUPT_OBJECT: &str = "CORRUPT_OBJECT";
    pub const MODEL_ERROR: &str = "MODEL_ERROR";
    pub const UNAVAILABLE: &str = "UNAVAILABLE";
    pub const DEADLINE_EXCEEDED: &str = "DEADLINE_EXCEEDED";
    pub const INTERNAL: &str = "INTERNAL";

    /// Whether a job failed with `code` may be retried by a later request.
    pub fn retryable(code: &str) -> bool {
        code != CORRUPT_OBJECT
    }
}

impl From<Error> for lambda_runtime::Diagnostic {
    fn from(error: Error) -> Self {
        lambda_runtime::Diagnostic {
            error_type: "compute::Error".to_owned(),
            error_message: report(&error),
        }
    }
}

/// The error and its sources, `: `-separated, for logs and job error messages.
pub fn report(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
