//! The harness: a private copy of the template's resources in moto, the handler's `Deps` on a
//! manual clock, requests built from `events/request-api/*.json`, and a check of every response
//! against docs/openapi.yaml.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use emulator::TestEnv;
use lambda_http::{Body, Request, Response};
use request_api::{handle, Clock, Deps, RequestMeta, RouteKey};
use serde_json::Value;
use shared::domain::{
    Band, ClaimId, FeatureSummary, JobError, JobId, Reason, ScoreRecord, ScoreResult, SubjectId,
};
use shared::events::ComputeRequested;

pub fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `events/request-api/<name>.json` as JSON.
pub fn event(name: &str) -> Value {
    emulator::fixtures::load("request-api", name)
}

/// Turns an API Gateway HTTP API (v2) event into the request lambda_http hands the handler.
pub fn request(event: &Value) -> Request {
    lambda_http::request::from_str(&event.to_string()).expect("a valid HTTP API v2 event")
}

/// An event like `get-score.json` for another method, path, query and body.
pub fn event_for(method: &str, raw_path: &str, query: &str, body: Option<&str>) -> Value {
    let mut e = event("get-score");
    e["rawPath"] = raw_path.into();
    e["rawQueryString"] = query.into();
    e["routeKey"] = "$default".into();
    e["requestContext"]["routeKey"] = "$default".into();
    e["requestContext"]["http"]["method"] = method.into();
    e["requestContext"]["http"]["path"] = raw_path.into();
    e.as_object_mut().unwrap().remove("pathParameters");
    if let Some(body) = body {
        e["body"] = body.into();
        e["headers"]["content-type"] = "application/json".into();
    }
    e
}

pub fn get_event(subject: &str, query: &str) -> Value {
    event_for("GET", &format!("/v1/scores/{subject}"), query, None)
}

pub fn refresh_event(subject: &str) -> Value {
    event_for("POST", &format!("/v1/scores/{subject}/refresh"), "", None)
}

pub fn batch_event(ids: &[&str]) -> Value {
    let body = serde_json::json!({ "subject_ids": ids }).to_string();
    event_for("POST", "/v1/scores/batch-get", "", Some(&body))
}

/// A response, decoded.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Value,
    pub route: Option<request_api::RouteKey>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn content_type(&self) -> &str {
        self.header("content-type").unwrap_or_default()
    }

    pub fn job_id(&self) -> String {
        self.body["job_id"].as_str().expect("a job_id").to_owned()
    }

    pub fn status_field(&self) -> &str {
        self.body["status"].as_str().unwrap_or_default()
    }

    /// Asserts an RFC 9457 problem with this status, and returns its `detail`.
    pub fn assert_problem(&self, status: u16) -> String {
        assert_eq!(self.status, status, "{self:#?}");
        assert_eq!(self.content_type(), "application/problem+json");
        assert_eq!(self.body["status"], status);
        for member in ["type", "title", "detail", "instance"] {
            assert!(self.body[member].is_string(), "{member} in {}", self.body);
        }
        self.body["detail"].as_str().unwrap().to_owned()
    }
}

/// The answer, with the operation that served it (`None`: no route matched).
pub fn decode(response: Response<Body>, route: Option<RouteKey>) -> Reply {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes: &[u8] = response.body().as_ref();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(bytes).expect("every body is JSON")
    };
    let reply = Reply {
        status,
        headers,
        body,
        route,
    };
    openapi().check(&reply);
    reply
}

/// Calls the handler as Lambda would and checks the response against docs/openapi.yaml.
pub async fn call(deps: &Deps, request: Request) -> Reply {
    let meta = RequestMeta::of(&request);
    let route = request_api::routes::route(&meta.method, &meta.path)
        .ok()
        .map(|matched| matched.key);
    let response = handle(request, deps).await.expect("infallible");
    decode(response, route)
}

/// A clock that only moves when told to, so that expiry, the dispatch timeout and
/// `failed_retry_after` can be seen at work without sleeping.
#[derive(Debug)]
pub struct ManualClock(Mutex<DateTime<Utc>>);

impl ManualClock {
    pub fn starting_now() -> Self {
        Self(Mutex::new(Utc::now()))
    }

    pub fn advance(&self, by: Duration) {
        *self.0.lock().unwrap() += chrono::Duration::from_std(by).unwrap();
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

pub struct Harness {
    pub env: TestEnv,
    pub clock: Arc<ManualClock>,
    pub deps: Deps,
    pub compute_queue: String,
}

/// The lease a compute worker's claim holds in these tests (compute's default).
pub const COMPUTE_LEASE: Duration = Duration::from_secs(150);

impl Harness {
    pub async fn new() -> Self {
        let env = TestEnv::new().await;
        let clock = Arc::new(ManualClock::starting_now());
        let deps = Deps::from_env(
            &env.function_env("RequestApiFunction"),
            &env.function_sdk("RequestApiFunction"),
        )
        .expect("request-api's template environment is complete")
        .with_clock(clock.clone());
        let compute_queue = env.resources.queue("ComputeQueue").url.clone();
        Self {
            env,
            clock,
            deps,
            compute_queue,
        }
    }

    /// The same handler with a compute topic that does not exist: every publish fails.
    pub fn deps_with_broken_topic(&self) -> Deps {
        let mut config = self.deps.config.clone();
        config.compute_topic_arn = format!("{}-missing", config.compute_topic_arn);
        Deps::new(&config, &self.env.function_sdk("RequestApiFunction"))
            .with_clock(self.clock.clone())
    }

    pub async fn call(&self, event: &Value) -> Reply {
        call(&self.deps, request(event)).await
    }

    pub async fn get(&self, subject: &str) -> Reply {
        self.call(&get_event(subject, "")).await
    }

    pub async fn refresh(&self, subject: &str) -> Reply {
        self.call(&refresh_event(subject)).await
    }

    pub async fn batch(&self, ids: &[&str]) -> Reply {
        self.call(&batch_event(ids)).await
    }

    /// The `compute.requested` messages published since the last call.
    pub async fn published(&self, at_least: usize) -> Vec<ComputeRequested> {
        let wait = Duration::from_secs(if at_least > 0 { 10 } else { 0 });
        self.env
            .drain_queue(&self.compute_queue, at_least, wait)
            .await
            .into_iter()
            .map(|m| ComputeRequested::from_json(m.body().unwrap_or_default()).unwrap())
            .collect()
    }

    pub async fn record(&self, subject: &str) -> Option<ScoreRecord> {
        self.deps
            .store
            .get(&SubjectId::parse(subject).unwrap(), self.clock.now())
            .await
            .unwrap()
    }

    /// A worker claims the job and completes it.
    pub async fn complete(&self, subject: &str, job_id: &str) -> ScoreRecord {
        complete(&self.deps, &self.clock, subject, job_id).await
    }

    /// A worker claims the job and fails it.
    pub async fn fail(&self, subject: &str, job_id: &str, retryable: bool) -> ScoreRecord {
        let error = JobError {
            code: shared::domain::ErrorCode::ModelError,
            message: "the model could not score".into(),
            retryable,
        };
        self.fail_with(subject, job_id, error).await
    }

    /// A worker claims the job and fails it with `error`.
    pub async fn fail_with(&self, subject: &str, job_id: &str, error: JobError) -> ScoreRecord {
        let subject = SubjectId::parse(subject).unwrap();
        let claim = self.claim(&subject, job_id).await;
        let now = self.clock.now();
        self.deps
            .store
            .fail(
                &subject,
                job_id.parse().unwrap(),
                Some(&claim),
                &error,
                now,
                self.deps.config.result_ttl,
            )
            .await
            .unwrap()
            .expect("the claim holder fails the job")
    }

    /// A worker claims the job (and then dies, if the test says so).
    pub async fn claim(&self, subject: &SubjectId, job_id: &str) -> ClaimId {
        claim(&self.deps, &self.clock, subject, job_id).await
    }
}

pub async fn claim(deps: &Deps, clock: &ManualClock, subject: &SubjectId, job_id: &str) -> ClaimId {
    let claim = ClaimId::new();
    let job: JobId = job_id.parse().unwrap();
    let outcome = deps
        .store
        .claim(subject, job, &claim, clock.now(), COMPUTE_LEASE, 5)
        .await
        .unwrap();
    assert!(
        matches!(outcome, shared::score_store::ClaimOutcome::Claimed(_)),
        "{outcome:?}"
    );
    claim
}

pub fn sample_result() -> ScoreResult {
    ScoreResult {
        score: 0.83,
        band: Band::High,
        reasons: vec![Reason {
            feature: "chargeback_rate".into(),
            value: 0.12,
            contribution: 1.9,
        }],
        model_version: "test-model-1".into(),
        feature_summary: FeatureSummary {
            objects: 1,
            bytes: 100,
            rows: 10,
            malformed_lines: 0,
            features: [("chargeback_rate".to_owned(), 0.12)].into(),
        },
    }
}

pub async fn complete(
    deps: &Deps,
    clock: &ManualClock,
    subject: &str,
    job_id: &str,
) -> ScoreRecord {
    let subject = SubjectId::parse(subject).unwrap();
    let claim = claim(deps, clock, &subject, job_id).await;
    deps.store
        .complete(
            &subject,
            &claim,
            &sample_result(),
            clock.now(),
            deps.config.result_ttl,
        )
        .await
        .unwrap()
        .expect("the claim holder completes the job")
}

/// docs/openapi.yaml, parsed once per test binary.
pub fn openapi() -> &'static OpenApi {
    static DOC: OnceLock<OpenApi> = OnceLock::new();
    DOC.get_or_init(OpenApi::load)
}

pub struct OpenApi {
    /// The document, as JSON.
    pub doc: Value,
    /// `components`, with undocumented members refused (see [`strict`]): what schemas resolve
    /// their `#/components/...` references against.
    strict_components: Value,
    /// Compiled validators by schema (their JSON text).
    validators: Mutex<HashMap<String, Arc<jsonschema::Validator>>>,
}

impl OpenApi {
    fn load() -> Self {
        let path = crate_dir().join("../../docs/openapi.yaml");
        let text = std::fs::read_to_string(&path).expect("docs/openapi.yaml exists");
        let doc: Value = serde_norway::from_str(&text).expect("docs/openapi.yaml parses");
        assert_eq!(doc["openapi"].as_str(), Some("3.1.0"));
        let mut strict_components = doc["components"].clone();
        strict(&mut strict_components);
        Self {
            doc,
            strict_components,
            validators: Mutex::default(),
        }
    }

    /// Follows a local `$ref` (`#/components/...`), once or more.
    pub fn resolve<'a>(&'a self, mut node: &'a Value) -> &'a Value {
        while let Some(reference) = node.get("$ref").and_then(|r| r.as_str()) {
            let pointer = reference.strip_prefix('#').expect("local refs only");
            node = self
                .doc
                .pointer(pointer)
                .unwrap_or_else(|| panic!("dangling $ref {reference}"));
        }
        node
    }

    pub fn paths(&self) -> Vec<String> {
        self.doc["paths"]
            .as_object()
            .expect("paths")
            .keys()
            .cloned()
            .collect()
    }

    /// The documented methods of a path template, upper case.
    pub fn methods(&self, template: &str) -> BTreeSet<String> {
        self.doc["paths"][template]
            .as_object()
            .map(|m| {
                m.keys()
                    .filter(|k| {
                        [
                            "get", "put", "post", "delete", "patch", "head", "options", "trace",
                        ]
                        .contains(&k.as_str())
                    })
                    .map(|k| k.to_ascii_uppercase())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The documented response of an operation for a status, resolved.
    pub fn response(&self, template: &str, method: &str, status: u16) -> Option<&Value> {
        let node = &self.doc["paths"][template][method.to_ascii_lowercase()]["responses"]
            [status.to_string().as_str()];
        (!node.is_null()).then(|| self.resolve(node))
    }

    /// Every response must be documented: its operation and status, its content type, and the
    /// headers the document promises. 404 and 405 outside any operation are documented as the
    /// `NotFound` and `MethodNotAllowed` components; a 405's `Allow` lists exactly the path's
    /// documented methods.
    pub fn check(&self, reply: &Reply) {
        let documented = match reply.route {
            Some(route) => self
                .response(route.template(), route.method().as_str(), reply.status)
                .unwrap_or_else(|| {
                    panic!(
                        "{} answered {} but docs/openapi.yaml does not document it",
                        route.name(),
                        reply.status
                    )
                }),
            None => match reply.status {
                404 => self.resolve(&self.doc["components"]["responses"]["NotFound"]),
                405 => {
                    let allow = reply.header("allow").expect("405 has Allow");
                    let allowed: BTreeSet<String> =
                        allow.split(',').map(|m| m.trim().to_owned()).collect();
                    let instance = reply.body["instance"].as_str().unwrap_or_default();
                    let template = self
                        .template_of(instance)
                        .unwrap_or_else(|| panic!("405 for undocumented path {instance}"));
                    assert_eq!(allowed, self.methods(&template), "Allow of {template}");
                    self.resolve(&self.doc["components"]["responses"]["MethodNotAllowed"])
                }
                other => panic!("an unrouted request answered {other}: {reply:#?}"),
            },
        };
        assert!(!documented.is_null());
        let content = documented["content"]
            .as_object()
            .expect("documented content");
        let content_type = reply.content_type();
        assert!(
            content.contains_key(content_type),
            "content type {content_type} of a {} is not documented",
            reply.status
        );
        let schema = &documented["content"][content_type]["schema"];
        if !schema.is_null() {
            self.validate(&reply.body, schema, "body");
        }
        if let Some(headers) = documented["headers"].as_object() {
            for (name, header) in headers {
                let value = reply.header(name).unwrap_or_else(|| {
                    panic!(
                        "documented header {name} missing from a {} response",
                        reply.status
                    )
                });
                // Header values are strings; an integer header is checked as the number.
                let header = self.resolve(header);
                let value = match header["schema"]["type"].as_str() {
                    Some("integer") => serde_json::from_str(value)
                        .unwrap_or_else(|_| panic!("header {name}: {value:?} is not an integer")),
                    _ => Value::String(value.to_owned()),
                };
                self.validate(&value, &header["schema"], &format!("header {name}"));
            }
        }
    }

    /// The documented path template a concrete path matches (concrete paths first, as in
    /// OpenAPI).
    pub fn template_of(&self, path: &str) -> Option<String> {
        let segments: Vec<&str> = path.split('/').collect();
        let mut templates = self.paths();
        templates.sort_by_key(|t| t.contains('{'));
        templates.into_iter().find(|template| {
            let parts: Vec<&str> = template.split('/').collect();
            parts.len() == segments.len()
                && parts
                    .iter()
                    .zip(&segments)
                    .all(|(t, s)| (t.starts_with('{') && !s.is_empty()) || t == s)
        })
    }

    /// Panics, naming every violation, unless `value` matches `schema` (a schema of the document,
    /// as JSON Schema 2020-12: every keyword, `format` included; references resolved within the
    /// document only). Objects may not have members their schema does not document (see
    /// [`strict`]).
    pub fn validate(&self, value: &Value, schema: &Value, at: &str) {
        let errors = self.violations(value, schema);
        assert!(
            errors.is_empty(),
            "{at} does not match docs/openapi.yaml:\n  {}\nvalue: {value:#}",
            errors.join("\n  ")
        );
    }

    /// Where and how `value` breaks `schema` (empty when it matches).
    pub fn violations(&self, value: &Value, schema: &Value) -> Vec<String> {
        self.validator(schema)
            .iter_errors(value)
            .map(|e| format!("at {:?}: {e}", e.instance_path().to_string()))
            .collect()
    }

    fn validator(&self, schema: &Value) -> Arc<jsonschema::Validator> {
        let key = schema.to_string();
        let mut cache = self.validators.lock().unwrap();
        cache
            .entry(key)
            .or_insert_with(|| {
                // The schema at the root of a document that also holds `components`, so its
                // `#/components/...` references resolve as they do in docs/openapi.yaml, and
                // nothing is fetched from anywhere else.
                let mut root = schema.clone();
                strict(&mut root);
                let object = root.as_object_mut().expect("a schema is an object");
                object.insert("components".into(), self.strict_components.clone());
                let validator = jsonschema::draft202012::options()
                    .should_validate_formats(true)
                    .build(&root)
                    .unwrap_or_else(|e| panic!("a schema of docs/openapi.yaml: {e}\n{schema}"));
                Arc::new(validator)
            })
            .clone()
    }
}

/// Makes every object schema with `properties` and no `additionalProperties` refuse other
/// members (`additionalProperties: false`). The document leaves them open, as a client should
/// ignore members it does not know; the tests hold the handler to the stricter rule, so a new
/// member in a response cannot go undocumented.
fn strict(node: &mut Value) {
    match node {
        Value::Object(map) => {
            if map.get("type").and_then(Value::as_str) == Some("object")
                && map.get("properties").is_some_and(Value::is_object)
                && !map.contains_key("additionalProperties")
            {
                map.insert("additionalProperties".into(), Value::Bool(false));
            }
            map.values_mut().for_each(strict);
        }
        Value::Array(items) => items.iter_mut().for_each(strict),
        _ => {}
    }
}
