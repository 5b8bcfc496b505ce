//! AWS behaviours the emulator never shows, injected into real calls with an SDK interceptor.
//!
//! moto processes every key of a BatchGetItem and every entry of an SNS PublishBatch. AWS may
//! not: under load DynamoDB returns `UnprocessedKeys`, and SNS reports entries in `Failed` while
//! the call as a whole succeeds. [`PartialBatches`]
//! makes a real call behave that way: it takes the chosen items out of the request before it is
//! sent (so the emulator really does not process them) and puts them into the response where
//! AWS would, so the code under test meets exactly AWS's shapes.
//!
//! Attach it to a client with `Builder::from(&sdk).interceptor(faults.clone())`.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::operation::batch_get_item::{BatchGetItemInput, BatchGetItemOutput};
use aws_sdk_dynamodb::types::KeysAndAttributes;
use aws_sdk_sns::operation::publish_batch::{PublishBatchInput, PublishBatchOutput};
use aws_sdk_sns::types::BatchResultErrorEntry;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeSerializationInterceptorContextMut, FinalizerInterceptorContextMut,
};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};

/// Which batch calls leave work undone, and which part of it.
#[derive(Debug, Clone)]
pub struct PartialBatches {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// DynamoDB batch calls that may still be made partial; later calls pass untouched.
    dynamodb_calls_left: AtomicUsize,
    /// SNS PublishBatch entry ids to fail (every time they are sent).
    failing_entries: HashSet<String>,
    /// What was left undone so far: DynamoDB keys (debug form), SNS entry ids.
    undone: Mutex<Vec<String>>,
}

/// The part taken out of one request, carried from the request to its response.
#[derive(Debug, Clone)]
enum Removed {
    Keys(HashMap<String, KeysAndAttributes>),
    Entries(Vec<String>),
}

impl Storable for Removed {
    type Storer = StoreReplace<Self>;
}

impl PartialBatches {
    /// The first `calls` BatchGetItem calls read only their first key per table and return the
    /// rest as unprocessed, as DynamoDB does when a partition runs out of read capacity.
    pub fn unprocessed_dynamodb_items(calls: usize) -> Self {
        Self::new(calls, HashSet::new())
    }

    /// SNS PublishBatch entries with these ids are not published and come back in `Failed`
    /// (`InternalError`, not the sender's fault), however often they are sent.
    pub fn failed_publish_entries<I: IntoIterator<Item = S>, S: Into<String>>(ids: I) -> Self {
        Self::new(0, ids.into_iter().map(Into::into).collect())
    }

    fn new(dynamodb_calls: usize, failing_entries: HashSet<String>) -> Self {
        Self {
            inner: Arc::new(Inner {
                dynamodb_calls_left: AtomicUsize::new(dynamodb_calls),
                failing_entries,
                undone: Mutex::new(Vec::new()),
            }),
        }
    }

    /// Everything left undone so far, in order.
    pub fn undone(&self) -> Vec<String> {
        self.inner.undone.lock().expect("not poisoned").clone()
    }

    fn take_dynamodb_call(&self) -> bool {
        self.inner
            .dynamodb_calls_left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }

    fn record<T: std::fmt::Debug>(&self, items: impl IntoIterator<Item = T>) {
        let mut undone = self.inner.undone.lock().expect("not poisoned");
        undone.extend(items.into_iter().map(|i| format!("{i:?}")));
    }

    fn split_keys(&self, input: &mut BatchGetItemInput) -> Option<Removed> {
        let mut removed = HashMap::new();
        for (table, request) in input.request_items.iter_mut().flatten() {
            if request.keys.len() > 1 {
                let rest: Vec<_> = request.keys.drain(1..).collect();
                self.record(&rest);
                // The keys come back with the request's projection, as DynamoDB returns them.
                let mut unprocessed = request.clone();
                unprocessed.keys = rest;
                removed.insert(table.clone(), unprocessed);
            }
        }
        (!removed.is_empty()).then_some(Removed::Keys(removed))
    }

    fn split_entries(&self, input: &mut PublishBatchInput) -> Result<Option<Removed>, BoxError> {
        let Some(entries) = input.publish_batch_request_entries.as_mut() else {
            return Ok(None);
        };
        let failing: Vec<String> = entries
            .iter()
            .map(|e| e.id.clone())
            .filter(|id| self.inner.failing_entries.contains(id))
            .collect();
        if failing.is_empty() {
            return Ok(None);
        }
        if failing.len() == entries.len() {
            // SNS rejects an empty batch, so such a call cannot be sent.
            return Err("PartialBatches: every entry of this PublishBatch is set to fail".into());
        }
        entries.retain(|e| !failing.contains(&e.id));
        self.record(&failing);
        Ok(Some(Removed::Entries(failing)))
    }
}

impl Intercept for PartialBatches {
    fn name(&self) -> &'static str {
        "PartialBatches"
    }

    fn modify_before_serialization(
        &self,
        context: &mut BeforeSerializationInterceptorContextMut<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let input = context.input_mut();
        let removed = if let Some(reads) = input.downcast_mut::<BatchGetItemInput>() {
            self.take_dynamodb_call()
                .then(|| self.split_keys(reads))
                .flatten()
        } else if let Some(publish) = input.downcast_mut::<PublishBatchInput>() {
            self.split_entries(publish)?
        } else {
            None
        };
        if let Some(removed) = removed {
            cfg.interceptor_state().store_put(removed);
        }
        Ok(())
    }

    fn modify_before_attempt_completion(
        &self,
        context: &mut FinalizerInterceptorContextMut<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(removed) = cfg.load::<Removed>().cloned() else {
            return Ok(());
        };
        let Some(Ok(output)) = context.output_or_error_mut() else {
            return Ok(());
        };
        match removed {
            Removed::Keys(rest) => {
                if let Some(output) = output.downcast_mut::<BatchGetItemOutput>() {
                    output
                        .unprocessed_keys
                        .get_or_insert_with(HashMap::new)
                        .extend(rest);
                }
            }
            Removed::Entries(ids) => {
                if let Some(output) = output.downcast_mut::<PublishBatchOutput>() {
                    let failed = output.failed.get_or_insert_with(Vec::new);
                    for id in ids {
                        failed.push(
                            BatchResultErrorEntry::builder()
                                .id(id)
                                .code("InternalError")
                                .message("injected: not published")
                                .sender_fault(false)
                                .build()?,
                        );
                    }
                }
            }
        }
        Ok(())
    }
}

/// What happens to one request under a [`FaultPlan`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The service answers "slow down" (DynamoDB/SQS `ThrottlingException`, SNS `Throttling`,
    /// S3 `SlowDown`); the request is not processed.
    Throttle,
    /// The service answers 500; the request is not processed.
    ServerError,
    /// The connection breaks before the request reaches the service.
    Drop,
    /// No answer in time: a timeout error, the request not processed.
    Timeout,
    /// The request is served, but after this long.
    Delay(std::time::Duration),
    /// The call never returns (the process was killed while waiting): the caller's own
    /// deadline decides what happens. (The SDK gives up on a silent connection after a few
    /// seconds and tries again.)
    Hang,
    /// The function's process dies during this call: the invocation is dropped on the spot,
    /// with whatever it did so far, as Lambda drops a function that ran out of memory. Only
    /// invocations run under [`until_killed`] (the local runner's) can be killed; elsewhere it
    /// is a [`Fault::Hang`].
    Kill,
}

tokio::task_local! {
    /// The kill switch of the invocation running on this task.
    static KILL: Arc<tokio::sync::Notify>;
}

/// Runs one invocation that a [`Fault::Kill`] can stop: `Err(Killed)` when one of its calls
/// killed it, whatever it was doing.
pub async fn until_killed<F: std::future::Future>(invocation: F) -> Result<F::Output, Killed> {
    let kill = Arc::new(tokio::sync::Notify::new());
    let run = KILL.scope(kill.clone(), invocation);
    tokio::select! {
        output = run => Ok(output),
        () = kill.notified() => Err(Killed),
    }
}

/// An invocation stopped by [`Fault::Kill`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the function's process was killed (injected)")]
pub struct Killed;

/// A fault applied to requests of one operation: after `skip` matching requests, the next
/// `times` ones (`usize::MAX`: all).
#[derive(Debug, Clone)]
pub struct Rule {
    /// `dynamodb:UpdateItem`, `sns:Publish`, `s3:GetObject`, ... (see [`operation_of`]).
    pub operation: String,
    pub skip: usize,
    pub times: usize,
    pub fault: Fault,
    seen: Arc<AtomicUsize>,
}

impl Rule {
    pub fn new(operation: &str, skip: usize, times: usize, fault: Fault) -> Self {
        Self {
            operation: operation.to_owned(),
            skip,
            times,
            fault,
            seen: Arc::default(),
        }
    }
}

/// Which requests fail, and how: scripted [`Rule`]s first, then, for every other request, a
/// random fault with probability `rate` (seeded, so a run can be repeated).
#[derive(Debug)]
pub struct FaultPlan {
    rules: Vec<Rule>,
    rate: f64,
    rng: Mutex<rand::rngs::StdRng>,
    injected: Mutex<std::collections::BTreeMap<String, usize>>,
    calls: Mutex<std::collections::BTreeMap<String, usize>>,
}

impl FaultPlan {
    pub fn new(rules: Vec<Rule>, rate: f64, seed: u64) -> Self {
        use rand::SeedableRng;
        Self {
            rules,
            rate,
            rng: Mutex::new(rand::rngs::StdRng::seed_from_u64(seed)),
            injected: Mutex::default(),
            calls: Mutex::default(),
        }
    }

    /// No faults: only counts the calls (see [`FaultPlan::calls`]).
    pub fn observe_only() -> Self {
        Self::new(Vec::new(), 0.0, 0)
    }

    /// Every call made so far (faulted or not), by operation.
    pub fn calls(&self) -> std::collections::BTreeMap<String, usize> {
        self.calls.lock().expect("not poisoned").clone()
    }

    /// Faults injected so far, by `operation fault` (for the test's report).
    pub fn injected(&self) -> std::collections::BTreeMap<String, usize> {
        self.injected.lock().expect("not poisoned").clone()
    }

    fn decide(&self, operation: &str) -> Option<Fault> {
        *self
            .calls
            .lock()
            .expect("not poisoned")
            .entry(operation.to_owned())
            .or_default() += 1;
        let scripted = self.rules.iter().find_map(|rule| {
            if rule.operation != operation {
                return None;
            }
            let n = rule.seen.fetch_add(1, Ordering::SeqCst);
            (n >= rule.skip && n - rule.skip < rule.times).then_some(rule.fault)
        });
        let fault = scripted.or_else(|| {
            use rand::Rng;
            let mut rng = self.rng.lock().expect("not poisoned");
            rng.random_bool(self.rate.clamp(0.0, 1.0))
                .then(|| match rng.random_range(0..5) {
                    0 => Fault::Throttle,
                    1 => Fault::ServerError,
                    2 => Fault::Drop,
                    3 => Fault::Timeout,
                    _ => Fault::Delay(std::time::Duration::from_millis(rng.random_range(50..500))),
                })
        })?;
        let kind = match fault {
            Fault::Delay(_) => "Delay".to_owned(),
            other => format!("{other:?}"),
        };
        *self
            .injected
            .lock()
            .expect("not poisoned")
            .entry(format!("{operation} {kind}"))
            .or_default() += 1;
        Some(fault)
    }
}

/// The operation a request calls, as `service:Operation`: from `X-Amz-Target` (DynamoDB,
/// SQS), the form body's `Action` (SNS), or the method and path (S3).
pub fn operation_of(request: &aws_smithy_runtime_api::http::Request) -> String {
    if let Some(target) = request.headers().get("x-amz-target") {
        let (prefix, operation) = target.split_once('.').unwrap_or(("", target));
        let service = if prefix.starts_with("DynamoDBStreams") {
            "dynamodbstreams"
        } else if prefix.starts_with("DynamoDB") {
            "dynamodb"
        } else if prefix.starts_with("AmazonSQS") {
            "sqs"
        } else {
            prefix
        };
        return format!("{service}:{operation}");
    }
    if let Some(action) = request
        .body()
        .bytes()
        .and_then(|body| form_action(body).filter(|_| request.method() == "POST"))
    {
        return format!("sns:{action}");
    }
    let method = request.method();
    let path = request.uri().split('?').next().unwrap_or_default();
    let is_object = path
        .trim_start_matches("http://")
        .splitn(3, '/')
        .nth(2)
        .is_some_and(|p| p.contains('/'));
    let operation = match (method, is_object) {
        ("GET", true) => "GetObject",
        ("HEAD", true) => "HeadObject",
        ("PUT", true) => "PutObject",
        ("DELETE", true) => "DeleteObject",
        ("GET", false) => "ListObjectsV2",
        (other, _) => other,
    };
    format!("s3:{operation}")
}

fn form_action(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    text.split('&')
        .find_map(|pair| pair.strip_prefix("Action="))
        .map(str::to_owned)
}

/// An HTTP client that applies a [`FaultPlan`] to every request before (or instead of) sending
/// it with the SDK's own client. Set it on an `SdkConfig` (`.http_client(...)`) and every
/// client built from that config meets the faults: the SDK's retries, the code's error
/// classification and its recovery paths all run as they would against AWS.
#[derive(Debug, Clone)]
pub struct FaultyHttp {
    inner: aws_smithy_runtime_api::client::http::SharedHttpClient,
    plan: Arc<FaultPlan>,
}

impl FaultyHttp {
    pub fn new(plan: Arc<FaultPlan>) -> Self {
        Self {
            inner: aws_smithy_http_client::Builder::new().build_http(),
            plan,
        }
    }

    /// `sdk` with every request going through `plan`.
    pub fn apply(sdk: &aws_config::SdkConfig, plan: Arc<FaultPlan>) -> aws_config::SdkConfig {
        sdk.to_builder()
            .http_client(aws_smithy_runtime_api::client::http::SharedHttpClient::new(
                Self::new(plan),
            ))
            .build()
    }
}

impl aws_smithy_runtime_api::client::http::HttpClient for FaultyHttp {
    fn http_connector(
        &self,
        settings: &aws_smithy_runtime_api::client::http::HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> aws_smithy_runtime_api::client::http::SharedHttpConnector {
        aws_smithy_runtime_api::client::http::SharedHttpConnector::new(FaultyConnector {
            inner: self.inner.http_connector(settings, components),
            plan: self.plan.clone(),
        })
    }
}

#[derive(Debug)]
struct FaultyConnector {
    inner: aws_smithy_runtime_api::client::http::SharedHttpConnector,
    plan: Arc<FaultPlan>,
}

impl aws_smithy_runtime_api::client::http::HttpConnector for FaultyConnector {
    fn call(
        &self,
        request: aws_smithy_runtime_api::http::Request,
    ) -> aws_smithy_runtime_api::client::http::HttpConnectorFuture {
        use aws_smithy_runtime_api::client::http::HttpConnectorFuture;
        use aws_smithy_runtime_api::client::result::ConnectorError;
        let operation = operation_of(&request);
        let Some(fault) = self.plan.decide(&operation) else {
            return self.inner.call(request);
        };
        match fault {
            Fault::Throttle => HttpConnectorFuture::ready(Ok(throttled(&operation))),
            Fault::ServerError => HttpConnectorFuture::ready(Ok(server_error(&operation))),
            Fault::Drop => HttpConnectorFuture::ready(Err(ConnectorError::io(
                "injected: the connection was reset before the request was sent".into(),
            ))),
            Fault::Timeout => HttpConnectorFuture::ready(Err(ConnectorError::timeout(
                "injected: no answer in time".into(),
            ))),
            Fault::Delay(delay) => {
                let inner = self.inner.clone();
                HttpConnectorFuture::new(async move {
                    tokio::time::sleep(delay).await;
                    inner.call(request).await
                })
            }
            Fault::Hang => HttpConnectorFuture::new(std::future::pending()),
            Fault::Kill => {
                let _ = KILL.try_with(|kill| kill.notify_one());
                HttpConnectorFuture::new(std::future::pending())
            }
        }
    }
}

fn response(
    status: u16,
    content_type: &str,
    body: String,
) -> aws_smithy_runtime_api::http::Response {
    let mut response = aws_smithy_runtime_api::http::Response::new(
        aws_smithy_runtime_api::http::StatusCode::try_from(status).expect("a status"),
        SdkBody::from(body),
    );
    response
        .headers_mut()
        .insert("content-type", content_type.to_owned());
    response
}

/// The "slow down" answer of the operation's service, in its protocol.
fn throttled(operation: &str) -> aws_smithy_runtime_api::http::Response {
    match operation.split(':').next().unwrap_or_default() {
        "dynamodb" | "dynamodbstreams" => response(
            400,
            "application/x-amz-json-1.0",
            r#"{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException","message":"injected: rate exceeded"}"#.to_owned(),
        ),
        "sqs" => response(
            400,
            "application/x-amz-json-1.0",
            r#"{"__type":"com.amazonaws.sqs#ThrottlingException","message":"injected: rate exceeded"}"#.to_owned(),
        ),
        "sns" => response(
            400,
            "text/xml",
            "<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>injected: rate exceeded</Message></Error><RequestId>injected</RequestId></ErrorResponse>".to_owned(),
        ),
        _ => response(
            503,
            "application/xml",
            "<Error><Code>SlowDown</Code><Message>injected: reduce your request rate</Message></Error>".to_owned(),
        ),
    }
}

fn server_error(operation: &str) -> aws_smithy_runtime_api::http::Response {
    match operation.split(':').next().unwrap_or_default() {
        "dynamodb" | "dynamodbstreams" | "sqs" => response(
            500,
            "application/x-amz-json-1.0",
            r#"{"__type":"com.amazon.coral.service#InternalServerError","message":"injected"}"#.to_owned(),
        ),
        "sns" => response(
            500,
            "text/xml",
            "<ErrorResponse><Error><Type>Receiver</Type><Code>InternalError</Code><Message>injected</Message></Error></ErrorResponse>".to_owned(),
        ),
        _ => response(
            500,
            "application/xml",
            "<Error><Code>InternalError</Code><Message>injected</Message></Error>".to_owned(),
        ),
    }
}
