//! The shared crate's one error type, and how AWS failures are classified for retry decisions.

use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_smithy_types::error::operation::BuildError;

type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// How a failed call should be treated by whoever decides about retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// The service asked us to slow down (HTTP: 503 with Retry-After; SQS: retry later).
    Throttled,
    /// A timeout, a dropped connection or a 5xx: the same call may succeed later.
    Transient,
    /// Retrying the same call cannot help.
    Permanent,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),

    /// A call to an AWS service failed; `retry` says whether trying again can help.
    #[error("{service} {operation} failed ({retry:?})")]
    Aws {
        service: &'static str,
        operation: &'static str,
        retry: Retry,
        #[source]
        source: BoxError,
    },

    #[error("a request to {service} could not be built")]
    Build {
        service: &'static str,
        #[source]
        source: BuildError,
    },

    /// A request's expressions would be rejected by DynamoDB: a bug in the code that built them.
    #[error("a DynamoDB request's expressions are invalid")]
    Expression(#[from] crate::expression::ExpressionError),

    #[error("a DynamoDB item does not match its type")]
    Item(#[from] serde_dynamo::Error),

    #[error("JSON (de)serialization failed")]
    Json(#[from] serde_json::Error),

    #[error("invalid event: {0}")]
    InvalidEvent(String),

    /// BatchWriteItem / BatchGetItem / PublishBatch left work undone after every retry.
    #[error("{service} left {count} entries unprocessed after retries")]
    Unprocessed { service: &'static str, count: usize },

    /// A message or item over an AWS size limit: sending it cannot succeed.
    #[error("{what} is {bytes} bytes, over the limit of {limit}")]
    TooLarge {
        what: String,
        bytes: usize,
        limit: usize,
    },
}

impl Error {
    /// Classifies an SDK error at the point where the raw response is still at hand.
    pub fn aws<E>(
        service: &'static str,
        operation: &'static str,
        err: aws_smithy_runtime_api::client::result::SdkError<
            E,
            aws_smithy_runtime_api::http::Response,
        >,
    ) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let retry = classify(&err);
        Error::Aws {
            service,
            operation,
            retry,
            source: Box::new(err),
        }
    }

    /// Whether the failure may go away by itself (throttling or transient).
    pub fn retry(&self) -> Retry {
        match self {
            Error::Aws { retry, .. } => *retry,
            Error::Unprocessed { .. } => Retry::Throttled,
            _ => Retry::Permanent,
        }
    }

    pub fn is_retryable(&self) -> bool {
        self.retry() != Retry::Permanent
    }
}

const THROTTLING_CODES: &[&str] = &[
    "ThrottlingException",
    "Throttling",
    "ThrottledException",
    "RequestThrottled",
    "RequestThrottledException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "SlowDown",
    "LimitExceededException",
];

fn classify<E: ProvideErrorMetadata>(
    err: &aws_smithy_runtime_api::client::result::SdkError<
        E,
        aws_smithy_runtime_api::http::Response,
    >,
) -> Retry {
    use aws_smithy_runtime_api::client::result::SdkError;
    match err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            Retry::Transient
        }
        SdkError::ServiceError(ctx) => {
            let code = ctx.err().code().unwrap_or_default();
            let status = ctx.raw().status().as_u16();
            if THROTTLING_CODES.contains(&code) || status == 429 {
                Retry::Throttled
            } else if status >= 500 {
                Retry::Transient
            } else {
                Retry::Permanent
            }
        }
        _ => Retry::Permanent,
    }
}

/// The longest error text, in characters, that a log line or a response carries. Parsers quote
/// the input they refuse (serde names an unexpected value whole), so without a bound an input
/// of 256 KiB would make an error, and every log line that carries it, as long.
pub const MAX_ERROR_CHARS: usize = 1024;

/// An error and its sources, `outer: inner: innermost`, for logs (never for a response: it may
/// name tables, ARNs and keys). A cause whose text the chain already holds is left out (the
/// SDK's errors repeat their source's message). At most [`MAX_ERROR_CHARS`] characters.
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    shorten(&text, MAX_ERROR_CHARS)
}

/// `text` cut to at most `max` characters (`max` >= 1), the last one a `…` where it was cut.
pub fn shorten(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_owned(),
        Some(_) => {
            let (cut, _) = text.char_indices().nth(max - 1).unwrap_or((0, ' '));
            format!("{}…", &text[..cut])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("{0}")]
    struct Layer(&'static str, #[source] Option<Box<Layer>>);

    #[test]
    fn the_chain_names_every_cause_once() {
        let inner = Layer("connection reset", None);
        let middle = Layer("dispatch failure: connection reset", Some(Box::new(inner)));
        let outer = Layer("DynamoDB PutItem failed", Some(Box::new(middle)));
        assert_eq!(
            chain(&outer),
            "DynamoDB PutItem failed: dispatch failure: connection reset"
        );
    }

    #[test]
    fn texts_are_shortened_at_a_character_boundary() {
        assert_eq!(shorten("abc", 3), "abc");
        assert_eq!(shorten("abcd", 3), "ab…");
        assert_eq!(shorten("ééé", 2), "é…");
        assert_eq!(shorten("", 1), "");
        let long = Layer(Box::leak("日".repeat(5000).into_boxed_str()), None);
        assert_eq!(chain(&long).chars().count(), MAX_ERROR_CHARS);
    }
}
