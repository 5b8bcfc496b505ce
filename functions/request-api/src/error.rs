//! The crate's one error type, and the one place where errors become HTTP answers
//! ([`ApiError::problem`]): RFC 9457 problem details, `application/problem+json`.
//!
//! Client mistakes are 4xx with a `detail` that says what to fix. Dependency failures never
//! show their cause: throttling and transient failures are `503` with `Retry-After`, anything
//! else is a bare `500`; the cause goes to the log line of the request.

use std::time::Duration;

use http::{Method, StatusCode};
use serde::Serialize;
use shared::domain::{InvalidSubjectId, SubjectId};
use shared::error::shorten;
use shared::Retry;

/// Where a throttled or failing dependency tells the caller to come back.
pub const DEPENDENCY_RETRY_AFTER: Duration = Duration::from_secs(1);

/// How much of the caller's input a problem's `detail` quotes (JSON errors name the value they
/// refuse, whole): enough to recognise it, and a 64 KiB body never makes a 64 KiB answer.
pub const QUOTED_INPUT_CHARS: usize = 200;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("no such route")]
    NotFound,

    #[error("method {method} is not allowed here (allowed: {allow})")]
    MethodNotAllowed { method: Method, allow: &'static str },

    /// `location` says where the id was found, e.g. `subject_ids[3]`; `None` for the path.
    #[error("invalid subject id{}", location.as_deref().map(|l| format!(" at {l}")).unwrap_or_default())]
    InvalidSubjectId {
        location: Option<String>,
        #[source]
        source: InvalidSubjectId,
    },

    #[error("invalid query: {0}")]
    InvalidQuery(String),

    #[error("request body is not the expected JSON")]
    MalformedJson(#[source] serde_json::Error),

    #[error("invalid request body: {0}")]
    InvalidBody(String),

    #[error("request body is {size} bytes; at most {limit} are accepted")]
    PayloadTooLarge { size: usize, limit: usize },

    #[error("unsupported content type {0:?}")]
    UnsupportedMediaType(String),

    /// The job was written but `compute.requested` could not be published. The job stays
    /// `pending`; the first request after the dispatch timeout publishes it again.
    #[error("the computation of {subject} was recorded but could not be dispatched")]
    DispatchFailed {
        subject: SubjectId,
        retry_after: Duration,
        #[source]
        source: shared::Error,
    },

    /// Concurrent requests kept changing the subject's record under this one.
    #[error("the record of {subject} kept changing under concurrent requests")]
    Contended { subject: SubjectId },

    #[error("a dependency failed")]
    Dependency(#[from] shared::Error),

    #[error("the handler panicked: {0}")]
    Panic(String),
}

/// An RFC 9457 problem details object, plus the response headers that go with it.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub title: &'static str,
    #[serde(serialize_with = "status_code")]
    pub status: StatusCode,
    pub detail: String,
    /// The request path this occurrence is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// API Gateway's request id: quote it when reporting a problem.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    #[serde(skip)]
    pub allow: Option<&'static str>,
    #[serde(skip)]
    pub retry_after: Option<Duration>,
}

fn status_code<S: serde::Serializer>(status: &StatusCode, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u16(status.as_u16())
}

/// Problem types (relative URI references; documented in docs/openapi.yaml). Plain HTTP
/// conditions use `about:blank`, whose title is the status phrase (RFC 9457 section 4.2.1).
pub mod types {
    pub const BLANK: &str = "about:blank";
    pub const INVALID_SUBJECT_ID: &str = "/problems/invalid-subject-id";
    pub const INVALID_REQUEST: &str = "/problems/invalid-request";
    pub const DISPATCH_FAILED: &str = "/problems/dispatch-failed";
}

impl ApiError {
    /// The one mapping from errors to status codes and problem bodies.
    pub fn problem(&self) -> Problem {
        if self.is_internal() {
            return internal();
        }
        let status = self.status();
        debug_assert!(status.is_client_error() || status == StatusCode::SERVICE_UNAVAILABLE);
        let (kind, title) = self.kind_and_title(status);
        Problem {
            kind,
            title,
            status,
            detail: self.detail(),
            instance: None,
            request_id: None,
            allow: self.allow(),
            retry_after: self.retry_after(),
        }
    }

    /// A failure of ours (a bug, a permanent dependency error): 500, with no detail.
    fn is_internal(&self) -> bool {
        match self {
            ApiError::Dependency(err) => err.retry() == Retry::Permanent,
            ApiError::Panic(_) => true,
            _ => false,
        }
    }

    pub fn status(&self) -> StatusCode {
        if self.is_internal() {
            return StatusCode::INTERNAL_SERVER_ERROR;
        }
        match self {
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::InvalidSubjectId { .. }
            | ApiError::InvalidQuery(_)
            | ApiError::InvalidBody(_)
            | ApiError::MalformedJson(_) => StatusCode::BAD_REQUEST,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::DispatchFailed { .. }
            | ApiError::Contended { .. }
            | ApiError::Dependency(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Panic(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The problem type and its title; `about:blank` takes the status's own reason phrase.
    fn kind_and_title(&self, status: StatusCode) -> (&'static str, &'static str) {
        match self {
            ApiError::InvalidSubjectId { .. } => (types::INVALID_SUBJECT_ID, "Invalid subject id"),
            ApiError::InvalidQuery(_) | ApiError::InvalidBody(_) | ApiError::MalformedJson(_) => {
                (types::INVALID_REQUEST, "Invalid request")
            }
            ApiError::DispatchFailed { .. } => {
                (types::DISPATCH_FAILED, "Computation not dispatched")
            }
            _ => (types::BLANK, status.canonical_reason().unwrap_or("Error")),
        }
    }

    /// What happened and what to do, for the caller (never internal names or ARNs).
    fn detail(&self) -> String {
        match self {
            ApiError::NotFound => "No such resource. The API serves GET /v1/scores/{subject_id}, \
                 POST /v1/scores/{subject_id}/refresh and POST /v1/scores/batch-get."
                .to_owned(),
            ApiError::MethodNotAllowed { method, allow } => {
                format!("{method} is not allowed on this resource; use {allow}.")
            }
            ApiError::InvalidSubjectId { location, source } => match location {
                Some(location) => format!("{location}: {source}"),
                None => source.to_string(),
            },
            ApiError::InvalidQuery(detail) | ApiError::InvalidBody(detail) => detail.clone(),
            ApiError::MalformedJson(source) => {
                let source = shorten(&source.to_string(), QUOTED_INPUT_CHARS);
                format!("The body must be a JSON object {{\"subject_ids\": [\"...\"]}}: {source}.")
            }
            ApiError::PayloadTooLarge { size, limit } => {
                format!("The body is {size} bytes; at most {limit} bytes are accepted.")
            }
            ApiError::UnsupportedMediaType(content_type) => {
                format!("Content-Type {content_type:?} is not accepted; send application/json.")
            }
            ApiError::DispatchFailed {
                subject,
                retry_after,
                ..
            } => format!(
                "The computation of {subject} was recorded but could not be started \
                 yet; ask again after {} seconds and it will be dispatched.",
                retry_after.as_secs()
            ),
            ApiError::Contended { .. } => "Concurrent requests changed this score while it was \
                 being read; try again."
                .to_owned(),
            ApiError::Dependency(_) => "The service is busy or a dependency is briefly \
                 unavailable; try again shortly."
                .to_owned(),
            ApiError::Panic(_) => String::new(),
        }
    }

    fn allow(&self) -> Option<&'static str> {
        match self {
            ApiError::MethodNotAllowed { allow, .. } => Some(allow),
            _ => None,
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            ApiError::DispatchFailed { retry_after, .. } => Some(*retry_after),
            ApiError::Contended { .. } | ApiError::Dependency(_) => Some(DEPENDENCY_RETRY_AFTER),
            _ => None,
        }
    }
}

fn internal() -> Problem {
    Problem {
        kind: types::BLANK,
        title: "Internal Server Error",
        status: StatusCode::INTERNAL_SERVER_ERROR,
        detail: "The request could not be completed; quote the request_id when reporting this."
            .to_owned(),
        instance: None,
        request_id: None,
        allow: None,
        retry_after: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aws(retry: Retry) -> ApiError {
        ApiError::Dependency(shared::Error::Aws {
            service: "DynamoDB",
            operation: "GetItem",
            retry,
            source: "ProvisionedThroughputExceededException: table my-secret-table".into(),
        })
    }

    #[test]
    fn a_throttled_or_transient_dependency_is_503_with_retry_after() {
        for retry in [Retry::Throttled, Retry::Transient] {
            let problem = aws(retry).problem();
            assert_eq!(problem.status, StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(problem.retry_after, Some(DEPENDENCY_RETRY_AFTER));
            assert!(!problem.detail.contains("my-secret-table"));
        }
        let unprocessed = ApiError::Dependency(shared::Error::Unprocessed {
            service: "DynamoDB",
            count: 3,
        });
        assert_eq!(unprocessed.status(), StatusCode::SERVICE_UNAVAILABLE);
    }

    #[test]
    fn a_permanent_dependency_failure_is_a_bare_500() {
        let problem = aws(Retry::Permanent).problem();
        assert_eq!(problem.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(problem.retry_after, None);
        let body = serde_json::to_string(&problem).unwrap();
        for secret in ["DynamoDB", "GetItem", "my-secret-table", "Provisioned"] {
            assert!(!body.contains(secret), "{body}");
        }
        assert_eq!(
            ApiError::Panic("index out of bounds".into())
                .problem()
                .detail,
            problem.detail
        );
    }

    #[test]
    fn client_mistakes_are_4xx() {
        let invalid_id = ApiError::InvalidSubjectId {
            location: Some("subject_ids[2]".into()),
            source: InvalidSubjectId::Empty,
        };
        let malformed = ApiError::MalformedJson(serde_json::from_str::<u8>("x").unwrap_err());
        let cases = [
            (ApiError::NotFound, 404),
            (
                ApiError::MethodNotAllowed {
                    method: Method::PUT,
                    allow: "GET",
                },
                405,
            ),
            (invalid_id, 400),
            (ApiError::InvalidQuery("wait".into()), 400),
            (ApiError::InvalidBody("empty".into()), 400),
            (malformed, 400),
            (ApiError::PayloadTooLarge { size: 2, limit: 1 }, 413),
            (ApiError::UnsupportedMediaType("text/plain".into()), 415),
        ];
        for (error, status) in cases {
            let problem = error.problem();
            assert_eq!(problem.status.as_u16(), status, "{error:?}");
            assert!(!problem.detail.is_empty());
        }
    }

    /// Regression: serde's error quotes the refused value whole, and the detail quoted it.
    #[test]
    fn a_malformed_body_is_quoted_in_part() {
        let long = format!("{{\"subject_ids\":\"{}\"}}", "x".repeat(60_000));
        let error = serde_json::from_str::<Vec<String>>(&long[15..]).unwrap_err();
        let detail = ApiError::MalformedJson(error).problem().detail;
        assert!(detail.contains("invalid type: string \"xxx"), "{detail}");
        assert!(detail.chars().count() < 300, "{detail}");
    }

    #[test]
    fn the_problem_body_is_rfc_9457() {
        let problem = ApiError::MethodNotAllowed {
            method: Method::DELETE,
            allow: "GET",
        }
        .problem();
        let body = serde_json::to_value(&problem).unwrap();
        assert_eq!(body["type"], "about:blank");
        assert_eq!(body["title"], "Method Not Allowed");
        assert_eq!(body["status"], 405);
        assert!(body["detail"].as_str().unwrap().contains("DELETE"));
        assert!(body.get("allow").is_none(), "headers stay out of the body");
        assert_eq!(problem.allow, Some("GET"));
    }
}
