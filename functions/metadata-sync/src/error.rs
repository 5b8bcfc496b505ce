//! metadata-sync's one error type. Each failure is about one SQS message (it fails that message
//! only); [`Error::is_retryable`] tells a transient cause from a poison message in the logs.

use shared::Retry;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the SQS message has no body")]
    NoBody,

    #[error("the message body is neither an S3 event notification nor an s3:TestEvent")]
    Body(#[source] serde_json::Error),

    #[error("an S3 event record has no {0}")]
    MissingField(&'static str),

    /// `encoded` is the key as the event carries it, cut to its first 1024 bytes.
    #[error("object key {encoded:?} does not decode to UTF-8")]
    Key {
        encoded: String,
        #[source]
        source: std::str::Utf8Error,
    },

    #[error("object key is {bytes} bytes long once decoded; S3 keys are at most {limit}")]
    KeyTooLong { bytes: usize, limit: usize },

    #[error("HeadObject s3://{bucket}/{key} failed")]
    Head {
        bucket: String,
        key: String,
        #[source]
        source: shared::Error,
    },

    #[error("writing the catalog failed")]
    Catalog(#[source] shared::Error),

    #[error("marking the score of {subject} stale failed")]
    MarkStale {
        subject: String,
        #[source]
        source: shared::Error,
    },
}

impl Error {
    /// Whether a redelivery may succeed (a throttled or transient dependency); a permanent
    /// failure is a poison message that will reach the dead-letter queue.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Head { source, .. }
            | Error::Catalog(source)
            | Error::MarkStale { source, .. } => source.retry() != Retry::Permanent,
            _ => false,
        }
    }
}

impl From<Error> for lambda_runtime::Diagnostic {
    fn from(error: Error) -> Self {
        lambda_runtime::Diagnostic {
            error_type: "metadata_sync::Error".to_owned(),
            error_message: error.to_string(),
        }
    }
}
