//! request-api: the HTTP API (API Gateway HTTP API, payload format 2.0, through `lambda_http`).
//!
//! It answers from ScoresTable and never waits for a computation: a fresh result (or a
//! finished failure) is a `200`; otherwise the job is created with a conditional write,
//! `compute.requested` is published on ComputeTopic, and the caller gets `202` with `Location`
//! and `Retry-After` at once. `?wait=N` (N <= 20 s) long-polls the store before answering.
//!
//! | route | answers |
//! |---|---|
//! | `GET /v1/scores/{subject_id}[?wait=N]` | 200 done/failed, 202 started/pending/running |
//! | `POST /v1/scores/{subject_id}/refresh` | 202 (a new job unless one is pending/running) |
//! | `POST /v1/scores/batch-get` `{"subject_ids": [...]}` | 200 `{"results": [...]}` in request order |
//!
//! Errors are RFC 9457 problem details (`application/problem+json`), mapped from [`ApiError`]
//! in one place ([`ApiError::problem`]). docs/openapi.yaml documents every route and status;
//! the handler tests check each response they see against it.
//!
//! **Publish failure after the job was written**: `503` with `Retry-After` equal to the
//! dispatch timeout. The job stays `pending`; the first request after the dispatch timeout
//! publishes it again (reason `redispatch`), so no job is stranded while someone asks for it.
//!
//! Routing uses the raw path (HTTP APIs deliver `rawPath` percent-decoded, with a named
//! stage's segment in front), so explicit routes and the `$default` catch-all behave alike.
//! A request built without the `lambda_http` extensions (a plain `http::Request`) is routed on
//! its percent-decoded URI path instead.

pub mod api;
pub mod backlog;
pub mod clock;
pub mod config;
pub mod error;
pub mod routes;
pub mod scores;
pub mod view;

use std::convert::Infallible;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use futures::FutureExt;
use lambda_http::{Body, Request, Response};
use shared::config::Env;
use shared::publisher::Publisher;
use shared::score_store::ScoreStore;
use tracing::Instrument;

pub use api::RequestMeta;
pub use clock::{Clock, SystemClock};
pub use config::Config;
pub use error::ApiError;
pub use routes::RouteKey;

/// Everything the handler uses, built once per container.
#[derive(Clone)]
pub struct Deps {
    pub config: Config,
    pub store: ScoreStore,
    pub publisher: Publisher,
    /// ComputeQueue's depth, asked before a re-dispatch.
    pub backlog: Arc<backlog::Backlog>,
    clock: Arc<dyn Clock>,
}

impl Deps {
    /// The function's configuration read from `env` and its clients built from `sdk`: how the
    /// Lambda binary (process environment), the local runner and the tests (the template's
    /// environment of RequestApiFunction) all wire it.
    pub fn from_env(
        env: &Env,
        sdk: &aws_config::SdkConfig,
    ) -> Result<Self, shared::config::ConfigError> {
        Ok(Self::new(&Config::from_env(env)?, sdk))
    }

    pub fn new(config: &Config, sdk: &aws_config::SdkConfig) -> Self {
        Self {
            config: config.clone(),
            store: ScoreStore::new(shared::aws::dynamodb(sdk), &config.scores_table),
            publisher: Publisher::new(shared::aws::sns(sdk)),
            backlog: Arc::new(backlog::Backlog::new(
                aws_sdk_sqs::Client::new(sdk),
                &config.compute_queue_url,
                config.redispatch_max_queue_depth,
            )),
            clock: Arc::new(SystemClock),
        }
    }

    /// Replaces the wall clock (tests move time with a clock of their own).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }
}

/// The Lambda handler. Never fails: every error is a problem+json response.
pub async fn handle(request: Request, deps: &Deps) -> Result<Response<Body>, Infallible> {
    let started = Instant::now();
    let meta = RequestMeta::of(&request);
    let span = tracing::info_span!(
        "request",
        api_request_id = meta.request_id.as_deref(),
        trace_id = meta.trace_id.as_deref()
    );
    let mut served = Served::default();
    let outcome = AssertUnwindSafe(serve(request, deps, &meta, &mut served))
        .catch_unwind()
        .instrument(span.clone())
        .await;
    let result = outcome.unwrap_or_else(|panic| {
        let message = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        Err(ApiError::Panic(message))
    });
    let (response, error) = match result {
        Ok(response) => (response, None),
        Err(err) => (api::problem_response(err.problem(), &meta), Some(err)),
    };
    log_request(&meta, &served, &response, error.as_ref(), started, &span);
    Ok(response)
}

/// What the log line says about the request besides method and status.
#[derive(Debug, Default)]
struct Served {
    route: Option<RouteKey>,
    subject: Option<String>,
    subjects: Option<usize>,
}

async fn serve(
    request: Request,
    deps: &Deps,
    meta: &RequestMeta,
    served: &mut Served,
) -> Result<Response<Body>, ApiError> {
    let matched = routes::route(&meta.method, &meta.path)?;
    served.route = Some(matched.key);
    served.subject = matched.subject.map(str::to_owned);
    let trace_id = meta.trace_id.as_deref();
    match matched.key {
        RouteKey::GetScore => {
            let subject = api::subject_from_path(matched.subject.unwrap_or_default())?;
            let wait = api::cap_wait(api::wait_from_query(request.uri().query())?, meta.deadline);
            let answer = scores::get(deps, &subject, wait, trace_id).await?;
            Ok(api::answer_response(&answer, meta))
        }
        RouteKey::RefreshScore => {
            let subject = api::subject_from_path(matched.subject.unwrap_or_default())?;
            let answer = scores::refresh(deps, &subject, trace_id).await?;
            Ok(api::answer_response(&answer, meta))
        }
        RouteKey::BatchGet => {
            let subjects = api::batch_subjects(&request)?;
            served.subjects = Some(subjects.len());
            let answers = scores::batch_get(deps, &subjects, trace_id).await?;
            Ok(api::batch_response(&answers))
        }
    }
}

/// The one log line per request.
fn log_request(
    meta: &RequestMeta,
    served: &Served,
    response: &Response<Body>,
    error: Option<&ApiError>,
    started: Instant,
    span: &tracing::Span,
) {
    let _entered = span.enter();
    let status = response.status().as_u16();
    let latency_ms = started.elapsed().as_millis() as u64;
    let route = served.route.map(RouteKey::name).unwrap_or("unmatched");
    let method = meta.method.as_str();
    let subject_id = served.subject.as_deref();
    let subjects = served.subjects;
    let status_label = status.to_string();
    metrics::counter!("Requests", "route" => route, "status" => status_label.clone()).increment(1);
    metrics::histogram!("RequestLatency", "route" => route, "status" => status_label)
        .record(started.elapsed().as_secs_f64() * 1000.0);
    if status >= 500 {
        let error = error.map(|e| shared::error::chain(e));
        tracing::error!(
            method,
            route,
            status,
            latency_ms,
            subject_id,
            subjects,
            error,
            "request failed"
        );
    } else {
        let error = error.map(ToString::to_string);
        tracing::info!(
            method,
            route,
            status,
            latency_ms,
            subject_id,
            subjects,
            error,
            "request served"
        );
    }
}
