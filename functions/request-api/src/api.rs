//! The HTTP side: what is read from an API Gateway request (path, stage, query, body, request
//! context) and how answers and problems become responses.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::header::{HeaderName, HeaderValue, ALLOW, CONTENT_TYPE, LOCATION, RETRY_AFTER};
use http::{Method, StatusCode};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use serde::{Deserialize, Serialize};
use shared::domain::SubjectId;
use shared::error::shorten;
use shared::score_store::BATCH_GET_MAX;

use crate::error::{ApiError, Problem, QUOTED_INPUT_CHARS};
use crate::scores::BatchAnswer;
use crate::view::{Answer, ScoreView};

/// The largest request body accepted (batch-get): 100 ids of 128 characters take about
/// 13 KiB as compact JSON; 64 KiB leaves room for any formatting. Larger bodies get `413`.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The longest `?wait=N` (seconds); the function's timeout (25 s) covers it.
pub const MAX_WAIT_SECONDS: u64 = 20;

/// `Retry-After` of a `202`: when a client should look again.
pub const IN_PROGRESS_RETRY_AFTER: Duration = Duration::from_secs(2);

/// What the handler needs from the request besides the route's inputs.
#[derive(Debug, Clone)]
pub struct RequestMeta {
    pub method: Method,
    /// The path as API Gateway delivered it (`rawPath`, already percent-decoded by HTTP APIs).
    pub raw_path: String,
    /// The named stage's leading segment (`/prod`), empty for `$default`.
    pub stage_prefix: String,
    /// The path without the stage prefix: what routing sees.
    pub path: String,
    /// API Gateway's request id (the Lambda request id when there is no API Gateway context).
    pub request_id: Option<String>,
    /// The X-Ray trace header, carried into `compute.requested`.
    pub trace_id: Option<String>,
    /// When the Lambda invocation times out, if known.
    pub deadline: Option<SystemTime>,
}

impl RequestMeta {
    pub fn of(request: &Request) -> Self {
        let (api_request_id, stage) = match request.request_context_ref() {
            Some(RequestContext::ApiGatewayV2(ctx)) => (ctx.request_id.clone(), ctx.stage.clone()),
            _ => (None, None),
        };
        let lambda = request.lambda_context_ref();
        let raw_path = match request.raw_http_path() {
            "" => percent_encoding::percent_decode_str(request.uri().path())
                .decode_utf8_lossy()
                .into_owned(),
            raw => raw.to_owned(),
        };
        let (stage_prefix, path) = crate::routes::strip_stage(&raw_path, stage.as_deref());
        let (stage_prefix, path) = (stage_prefix.to_owned(), path.to_owned());
        let trace_id = request
            .headers()
            .get("x-amzn-trace-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .or_else(|| lambda.and_then(|c| c.xray_trace_id.clone()));
        Self {
            method: request.method().clone(),
            stage_prefix,
            path,
            raw_path,
            request_id: api_request_id.filter(|id| !id.is_empty()).or_else(|| {
                lambda
                    .map(|c| c.request_id.clone())
                    .filter(|id| !id.is_empty())
            }),
            trace_id,
            deadline: lambda
                .map(|c| c.deadline)
                .filter(|ms| *ms > 0)
                .map(|ms| UNIX_EPOCH + Duration::from_millis(ms)),
        }
    }

    /// The public path of a subject's score (`Location`).
    pub fn score_location(&self, subject: &SubjectId) -> String {
        format!("{}/v1/scores/{subject}", self.stage_prefix)
    }
}

/// A path segment as a subject id.
pub fn subject_from_path(segment: &str) -> Result<SubjectId, ApiError> {
    SubjectId::parse(segment).map_err(|source| ApiError::InvalidSubjectId {
        location: None,
        source,
    })
}

/// `?wait=N`: 0 (or absent) means answer at once. Other parameters are ignored.
pub fn wait_from_query(query: Option<&str>) -> Result<Duration, ApiError> {
    let Some(value) = query.and_then(|q| {
        form_urlencoded::parse(q.as_bytes())
            .find(|(name, _)| name == "wait")
            .map(|(_, value)| value.into_owned())
    }) else {
        return Ok(Duration::ZERO);
    };
    match value.trim().parse::<u64>() {
        Ok(seconds) if seconds <= MAX_WAIT_SECONDS => Ok(Duration::from_secs(seconds)),
        _ => Err(ApiError::InvalidQuery(format!(
            "wait must be a whole number of seconds from 0 to {MAX_WAIT_SECONDS}, got {:?}",
            shorten(&value, QUOTED_INPUT_CHARS)
        ))),
    }
}

/// Caps a long-poll so that the answer goes out before the invocation times out.
pub fn cap_wait(wait: Duration, deadline: Option<SystemTime>) -> Duration {
    const MARGIN: Duration = Duration::from_secs(2);
    match deadline {
        Some(deadline) => {
            let left = deadline
                .duration_since(SystemTime::now())
                .unwrap_or_default();
            wait.min(left.saturating_sub(MARGIN))
        }
        None => wait,
    }
}

#[derive(Debug, Deserialize)]
struct BatchGetRequest {
    subject_ids: Vec<String>,
}

/// The batch-get body: checked content type and size, valid ids, duplicates dropped (the
/// first place of each id kept), in request order.
pub fn batch_subjects(request: &Request) -> Result<Vec<SubjectId>, ApiError> {
    if let Some(content_type) = request.headers().get(CONTENT_TYPE) {
        let text = String::from_utf8_lossy(content_type.as_bytes());
        let essence = text
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if essence != "application/json" && !essence.ends_with("+json") {
            return Err(ApiError::UnsupportedMediaType(shorten(
                &text,
                QUOTED_INPUT_CHARS,
            )));
        }
    }
    let body: &[u8] = request.body().as_ref();
    if body.len() > MAX_BODY_BYTES {
        return Err(ApiError::PayloadTooLarge {
            size: body.len(),
            limit: MAX_BODY_BYTES,
        });
    }
    let parsed: BatchGetRequest = serde_json::from_slice(body).map_err(ApiError::MalformedJson)?;
    let count = parsed.subject_ids.len();
    if count == 0 {
        return Err(ApiError::InvalidBody(
            "subject_ids must name at least one subject".to_owned(),
        ));
    }
    if count > BATCH_GET_MAX {
        return Err(ApiError::InvalidBody(format!(
            "subject_ids has {count} entries; at most {BATCH_GET_MAX} are allowed"
        )));
    }
    let mut seen = std::collections::HashSet::with_capacity(count);
    let mut subjects = Vec::with_capacity(count);
    for (index, id) in parsed.subject_ids.iter().enumerate() {
        let subject = SubjectId::parse(id).map_err(|source| ApiError::InvalidSubjectId {
            location: Some(format!("subject_ids[{index}]")),
            source,
        })?;
        if seen.insert(subject.clone()) {
            subjects.push(subject);
        }
    }
    Ok(subjects)
}

fn header(value: &str) -> Option<HeaderValue> {
    HeaderValue::from_str(value).ok()
}

fn seconds(d: Duration) -> HeaderValue {
    HeaderValue::from(d.as_secs().max(1))
}

fn json_response(
    status: StatusCode,
    content_type: &'static str,
    body: &impl Serialize,
    headers: Vec<(HeaderName, HeaderValue)>,
) -> Response<Body> {
    // Serializing our own types cannot fail (no non-string map keys); keep a body regardless.
    let body = serde_json::to_string(body).unwrap_or_else(|_| "{}".to_owned());
    let mut response = Response::new(Body::Text(body));
    *response.status_mut() = status;
    let map = response.headers_mut();
    map.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    for (name, value) in headers {
        map.insert(name, value);
    }
    response
}

/// `200` for a finished state, `202` with `Location` and `Retry-After` otherwise.
pub fn answer_response(answer: &Answer, meta: &RequestMeta) -> Response<Body> {
    let view = ScoreView::from(answer);
    if answer.is_finished() {
        return json_response(StatusCode::OK, "application/json", &view, Vec::new());
    }
    let mut headers = vec![(RETRY_AFTER, seconds(IN_PROGRESS_RETRY_AFTER))];
    if let Some(location) = header(&meta.score_location(&answer.record().subject_id)) {
        headers.push((LOCATION, location));
    }
    json_response(StatusCode::ACCEPTED, "application/json", &view, headers)
}

#[derive(Serialize)]
struct BatchGetResponse {
    results: Vec<BatchItemView>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum BatchItemView {
    Score(Box<ScoreView>),
    Deferred {
        subject_id: String,
        status: &'static str,
        retry_after_seconds: u64,
    },
}

pub fn batch_response(answers: &[BatchAnswer]) -> Response<Body> {
    let body = BatchGetResponse {
        results: answers
            .iter()
            .map(|answer| match answer {
                BatchAnswer::Answer(answer) => {
                    BatchItemView::Score(Box::new(ScoreView::from(answer.as_ref())))
                }
                BatchAnswer::Deferred(subject) => BatchItemView::Deferred {
                    subject_id: subject.to_string(),
                    status: "deferred",
                    retry_after_seconds: IN_PROGRESS_RETRY_AFTER.as_secs(),
                },
            })
            .collect(),
    };
    json_response(StatusCode::OK, "application/json", &body, Vec::new())
}

pub fn problem_response(mut problem: Problem, meta: &RequestMeta) -> Response<Body> {
    problem.instance = Some(meta.raw_path.clone());
    problem.request_id = meta.request_id.clone();
    let mut headers = Vec::new();
    if let Some(allow) = problem.allow {
        headers.push((ALLOW, HeaderValue::from_static(allow)));
    }
    if let Some(retry_after) = problem.retry_after {
        headers.push((RETRY_AFTER, seconds(retry_after)));
    }
    json_response(
        problem.status,
        "application/problem+json",
        &problem,
        headers,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_accepts_0_to_20_seconds() {
        assert_eq!(wait_from_query(None).unwrap(), Duration::ZERO);
        assert_eq!(wait_from_query(Some("x=1")).unwrap(), Duration::ZERO);
        assert_eq!(
            wait_from_query(Some("x=1&wait=20")).unwrap(),
            Duration::from_secs(20)
        );
        assert_eq!(wait_from_query(Some("wait=0")).unwrap(), Duration::ZERO);
        for bad in [
            "wait=21", "wait=-1", "wait=", "wait=1.5", "wait=abc", "wait=%FF",
        ] {
            assert!(
                matches!(wait_from_query(Some(bad)), Err(ApiError::InvalidQuery(_))),
                "{bad}"
            );
        }
        // The refused value is quoted in part only.
        let long = format!("wait={}", "9".repeat(10_000));
        match wait_from_query(Some(&long)) {
            Err(ApiError::InvalidQuery(detail)) => assert!(detail.len() < 400, "{detail}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn wait_is_capped_by_the_invocation_deadline() {
        let wait = Duration::from_secs(20);
        assert_eq!(cap_wait(wait, None), wait);
        let soon = SystemTime::now() + Duration::from_secs(7);
        let capped = cap_wait(wait, Some(soon));
        assert!(capped <= Duration::from_secs(5) && capped > Duration::from_secs(3));
        let past = SystemTime::now() - Duration::from_secs(1);
        assert_eq!(cap_wait(wait, Some(past)), Duration::ZERO);
    }
}
