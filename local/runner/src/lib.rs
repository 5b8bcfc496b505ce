//! The local runner: what Lambda and API Gateway do in AWS, played over the moto emulator.
//!
//! It provisions template.yaml's resources ([`emulator::provision`]), then for every function of
//! the template plays its event sources with the template's settings and calls the same handler
//! the Lambda binary calls ([`functions`]):
//! - `HttpApi` events: an HTTP server on 127.0.0.1 ([`http_api`]), with the routes' IAM
//!   authorization (SigV4) checked as API Gateway does ([`api_auth`]);
//! - `SQS` events: pollers honouring BatchSize, the batching window, MaximumConcurrency (or,
//!   without it, throttled at the reserved concurrency as in Lambda) and partial batch responses
//!   ([`sqs_source`]);
//! - `DynamoDB` stream events: a poller applying FilterCriteria, batch size, partial batch
//!   responses, retries, bisection and the on-failure destination ([`stream_source`]).
//!
//! What it adds to moto's payloads to make them Lambda-shaped lives in `emulator::s3_events`
//! (S3 notifications) and `emulator::streams` (stream records); nothing else is rewritten.

pub mod api_auth;
pub mod cli;
pub mod demo;
pub mod functions;
pub mod http_api;
pub mod sqs_source;
pub mod stats;
pub mod stream_source;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use aws_config::SdkConfig;
use emulator::{EventSource, FunctionInfo, Provisioned, Template};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::functions::Handler;
use crate::stats::Stats;

/// Without a ScalingConfig, Lambda starts an SQS event source with five pollers and scales them
/// up to 1,000; locally we stop at five (more pollers would only be throttled more).
pub const DEFAULT_LOCAL_SQS_CONCURRENCY: usize = 5;

#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    #[error("template.yaml could not be read")]
    Template(#[from] emulator::template::TemplateError),
    #[error("provisioning the emulator failed")]
    Provision(#[from] emulator::provision::ProvisionError),
    #[error("the {binary} handler could not be set up")]
    Init {
        binary: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("no handler is known for the binary {0}")]
    UnknownBinary(String),
    #[error("event source {event} of {function}: {message}")]
    EventSource {
        function: String,
        event: String,
        message: String,
    },
    #[error("the emulator's credentials, which callers of the local API sign with, could not be resolved: {0}")]
    Credentials(String),
    #[error("cannot listen on {addr}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

#[derive(Debug, Clone)]
pub struct RunnerOptions {
    /// 0 picks a free port.
    pub port: u16,
    /// Names the resources (`{prefix}-ScoresTable`, ...).
    pub prefix: String,
    /// Template Parameter overrides, as `sam deploy --parameter-overrides`.
    pub parameter_overrides: HashMap<String, String>,
    /// Subscribe a queue to ScoreEventsTopic and log every completion event (for `make dev`).
    pub tail_score_events: bool,
    /// Faults injected into every AWS call the functions' code makes (not the runner's own
    /// pollers): throttling, 5xx, dropped connections, timeouts, latency, hangs.
    pub faults: Option<Arc<emulator::faults::FaultPlan>>,
    /// Play every SQS event source as if its `ScalingConfig.MaximumConcurrency` were removed
    /// ([`sqs_source::Polling::Uncapped`]): the incident of docs/RELIABILITY.md. Off by default.
    pub without_maximum_concurrency: bool,
}

pub struct Runner {
    pub resources: Provisioned,
    pub http_addr: SocketAddr,
    /// Whether the HTTP API has routes that take SigV4-signed requests only (`ApiAuth=AWS_IAM`),
    /// and what callers sign with.
    pub http_auth: HttpAuth,
    pub stats: Stats,
    pub sdk: SdkConfig,
    /// The queue copying ScoreEventsTopic, when `tail_score_events` was asked for.
    pub score_events_tail: Option<String>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

/// How the local HTTP API authorizes its callers.
#[derive(Debug, Clone)]
pub struct HttpAuth {
    /// Some route requires IAM (SigV4); with `ApiAuth=AWS_IAM`, every route does.
    pub iam_required: bool,
    /// The signature checker: the emulator's credentials and region.
    pub iam: api_auth::IamAuth,
}

/// The Lambda context of one invocation: a request id and the deadline the function's
/// timeout gives.
pub fn invocation_context(function: &str, timeout: Duration) -> lambda_runtime::Context {
    let mut context = lambda_runtime::Context::default();
    context.request_id = ulid::Ulid::new().to_string();
    context.deadline = (chrono::Utc::now() + timeout).timestamp_millis() as u64;
    context.invoked_function_arn = format!(
        "arn:aws:lambda:{}:{}:function:{function}",
        emulator::provision::EMULATOR_REGION,
        emulator::provision::EMULATOR_ACCOUNT
    );
    context
}

impl Runner {
    /// Provisions the template and starts playing every event source.
    pub async fn start(sdk: SdkConfig, options: RunnerOptions) -> Result<Self, RunnerError> {
        let template = Template::load(&emulator::template_path())?;
        let resources = emulator::provision(
            &sdk,
            &template,
            &options.prefix,
            &options.parameter_overrides,
        )
        .await?;
        let iam = known_caller(&sdk).await?;
        let (shutdown, shutdown_rx) = watch::channel(false);
        let addr = SocketAddr::from(([127, 0, 0, 1], options.port));
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| RunnerError::Listen { addr, source })?;
        let http_addr = listener
            .local_addr()
            .map_err(|source| RunnerError::Listen { addr, source })?;
        let mut startup = Startup {
            sdk: &sdk,
            faults: options.faults.clone(),
            resources: &resources,
            sqs: aws_sdk_sqs::Client::new(&sdk),
            shutdown: shutdown_rx,
            listener: Some(listener),
            stats: Stats::default(),
            tasks: Vec::new(),
            without_maximum_concurrency: options.without_maximum_concurrency,
            iam: iam.clone(),
            iam_required: false,
        };
        for (id, function) in &resources.functions {
            startup.play(id, function)?;
        }
        let score_events_tail = match options.tail_score_events {
            true => startup.tail_score_events(&options.prefix).await,
            false => None,
        };
        let Startup {
            stats,
            tasks,
            iam_required,
            ..
        } = startup;
        tracing::info!(prefix = %options.prefix, http = %http_addr, iam_auth = iam_required, "local runner started");
        Ok(Self {
            resources,
            http_addr,
            http_auth: HttpAuth { iam_required, iam },
            stats,
            sdk,
            score_events_tail,
            shutdown,
            tasks,
        })
    }

    /// The names of the resources the functions use.
    pub fn names(&self) -> emulator::ResourceNames {
        self.resources.names()
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.http_addr)
    }

    /// Stops polling and serving; invocations in flight finish first.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

/// What [`Runner::start`] sets going: one task per event source and the HTTP API.
struct Startup<'a> {
    sdk: &'a SdkConfig,
    faults: Option<Arc<emulator::faults::FaultPlan>>,
    resources: &'a Provisioned,
    sqs: aws_sdk_sqs::Client,
    shutdown: watch::Receiver<bool>,
    /// Taken by the function that serves the HTTP API (there can be one).
    listener: Option<TcpListener>,
    stats: Stats,
    tasks: Vec<JoinHandle<()>>,
    /// [`RunnerOptions::without_maximum_concurrency`].
    without_maximum_concurrency: bool,
    /// Checks the signatures of requests to IAM-authorized routes.
    iam: api_auth::IamAuth,
    /// Set when a route requires IAM.
    iam_required: bool,
}

impl Startup<'_> {
    /// Builds the function's handler as its binary does, and plays each of its event sources.
    fn play(&mut self, id: &str, function: &FunctionInfo) -> Result<(), RunnerError> {
        let stats = Arc::new(stats::FunctionStats::default());
        self.stats.0.insert(id.to_owned(), stats.clone());
        // The function's code runs as its own principal (the template's policy); the runner's
        // pollers, like Lambda's, use the emulator's administrator.
        let function_sdk = self
            .resources
            .function_sdk(self.sdk, id)
            .expect("provisioning creates a principal for every function");
        let function_sdk = match &self.faults {
            Some(plan) => emulator::faults::FaultyHttp::apply(&function_sdk, plan.clone()),
            None => function_sdk,
        };
        let handler = functions::by_binary(
            &function.binary,
            &self.resources.function_env(id),
            &function_sdk,
        )?;
        let mut routes = Vec::new();
        for event in &function.events {
            match (event, &handler) {
                (
                    EventSource::HttpApi {
                        method,
                        path,
                        authorization,
                        ..
                    },
                    Handler::Http(_),
                ) => {
                    self.iam_required |= *authorization == emulator::RouteAuthorization::AwsIam;
                    routes.push(http_api::Route {
                        method: method.clone(),
                        path: path.clone(),
                        authorization: *authorization,
                    })
                }
                (EventSource::Sqs { .. }, Handler::Sqs(handler)) => {
                    let source = self.sqs_source(id, function, event)?;
                    let task = source.run(
                        self.sqs.clone(),
                        handler.clone(),
                        stats.clone(),
                        self.shutdown.clone(),
                    );
                    self.tasks.push(tokio::spawn(task));
                }
                (EventSource::DynamoDb { .. }, Handler::Stream(handler)) => {
                    let timeout = Duration::from_secs(function.timeout_seconds);
                    let source =
                        stream_source::StreamSource::from_event(id, event, timeout, self.resources)
                            .ok_or_else(|| event_error(id, event, "not a stream source"))?;
                    let task = source.run(
                        self.sdk.clone(),
                        handler.clone(),
                        stats.clone(),
                        self.shutdown.clone(),
                    );
                    self.tasks.push(tokio::spawn(task));
                }
                (other, _) => {
                    return Err(event_error(
                        id,
                        other,
                        "its type does not fit the function's handler",
                    ))
                }
            }
        }
        if let (false, Handler::Http(handler)) = (routes.is_empty(), &handler) {
            self.serve_http(id, function, routes, handler, stats)?;
        }
        Ok(())
    }

    /// An SQS event source mapping with the template's settings.
    fn sqs_source(
        &self,
        id: &str,
        function: &FunctionInfo,
        event: &EventSource,
    ) -> Result<sqs_source::SqsSource, RunnerError> {
        let EventSource::Sqs {
            queue_arn,
            batch_size,
            batching_window_seconds,
            maximum_concurrency,
            report_batch_item_failures,
            ..
        } = event
        else {
            return Err(event_error(id, event, "not an SQS source"));
        };
        let queue = self
            .resources
            .queue_by_arn(queue_arn)
            .ok_or_else(|| event_error(id, event, "its queue was not provisioned"))?;
        let reserved_concurrency = function.reserved_concurrency.map(|n| n as usize);
        let maximum_concurrency = maximum_concurrency.filter(|_| !self.without_maximum_concurrency);
        let polling = match maximum_concurrency {
            // The mapping's MaximumConcurrency, never above the reserved concurrency.
            Some(n) => sqs_source::Polling::Capped {
                slots: (n as usize).min(reserved_concurrency.unwrap_or(usize::MAX)),
            },
            // Lambda's pollers, blind to the reserved concurrency: the incident.
            None => sqs_source::Polling::Uncapped {
                pollers: DEFAULT_LOCAL_SQS_CONCURRENCY,
                reserved_concurrency,
            },
        };
        Ok(sqs_source::SqsSource {
            function: id.to_owned(),
            queue_url: queue.url.clone(),
            queue_arn: queue.arn.clone(),
            batch_size: *batch_size,
            batching_window: Duration::from_secs(u64::from(*batching_window_seconds)),
            polling,
            report_batch_item_failures: *report_batch_item_failures,
            timeout: Duration::from_secs(function.timeout_seconds),
            rewrite: self
                .resources
                .s3_notification_queues
                .contains(queue_arn)
                .then_some(emulator::s3_events::to_lambda_shape as sqs_source::BodyRewrite),
        })
    }

    fn serve_http(
        &mut self,
        id: &str,
        function: &FunctionInfo,
        routes: Vec<http_api::Route>,
        handler: &http_api::HttpHandler,
        stats: Arc<stats::FunctionStats>,
    ) -> Result<(), RunnerError> {
        let listener = self
            .listener
            .take()
            .ok_or_else(|| RunnerError::EventSource {
                function: id.to_owned(),
                event: "HttpApi".to_owned(),
                message: "only one function can serve the HTTP API locally".to_owned(),
            })?;
        let api = http_api::HttpApi {
            function: id.to_owned(),
            routes,
            timeout: Duration::from_secs(function.timeout_seconds),
            iam: self.iam.clone(),
        };
        let task = api.serve(listener, handler.clone(), stats, self.shutdown.clone());
        self.tasks.push(tokio::spawn(task));
        Ok(())
    }

    /// A queue subscribed to ScoreEventsTopic whose messages are logged (`make dev` shows every
    /// completion event).
    async fn tail_score_events(&mut self, prefix: &str) -> Option<String> {
        let topic = self.resources.topics.get("ScoreEventsTopic")?;
        let url = emulator::subscribe_queue(self.sdk, prefix, topic, None).await;
        let task = tail_events(self.sqs.clone(), url.clone(), self.shutdown.clone());
        self.tasks.push(tokio::spawn(task));
        Some(url)
    }
}

/// The one caller the local API knows under IAM authorization: whoever holds the credentials the
/// runner itself reaches the emulator with (`make dev`'s shell and the tests share them), in the
/// emulator's region.
async fn known_caller(sdk: &SdkConfig) -> Result<api_auth::IamAuth, RunnerError> {
    use aws_credential_types::provider::ProvideCredentials;
    let provider = sdk
        .credentials_provider()
        .ok_or_else(|| RunnerError::Credentials("no credentials provider is configured".into()))?;
    let credentials = provider
        .provide_credentials()
        .await
        .map_err(|e| RunnerError::Credentials(shared::error::chain(&e)))?;
    let region = sdk
        .region()
        .map(|r| r.as_ref().to_owned())
        .unwrap_or_else(|| emulator::provision::EMULATOR_REGION.to_owned());
    Ok(api_auth::IamAuth::new(credentials, &region))
}

fn event_error(function: &str, event: &EventSource, message: &str) -> RunnerError {
    let name = match event {
        EventSource::HttpApi { name, .. }
        | EventSource::Sqs { name, .. }
        | EventSource::DynamoDb { name, .. } => name,
    };
    RunnerError::EventSource {
        function: function.to_owned(),
        event: name.clone(),
        message: message.to_owned(),
    }
}

/// Logs every event that reaches the tail queue: what a subscriber of ScoreEventsTopic sees.
async fn tail_events(
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
    mut shutdown: watch::Receiver<bool>,
) {
    while !*shutdown.borrow() {
        let received = tokio::select! {
            received = sqs.receive_message().queue_url(&queue_url).max_number_of_messages(10).message_attribute_names("All").send() => received,
            _ = shutdown.changed() => break,
        };
        let messages = match received {
            Ok(output) => output.messages.unwrap_or_default(),
            Err(e) => {
                tracing::warn!(error = %e, "reading the score events tail failed");
                Vec::new()
            }
        };
        if messages.is_empty() {
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        for message in messages {
            let body = message.body.clone().unwrap_or_default();
            let event: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            tracing::info!(
                r#type = event["type"].as_str().unwrap_or_default(),
                subject_id = event["subject_id"].as_str().unwrap_or_default(),
                band = event["band"].as_str().unwrap_or_default(),
                score = event["score"].as_f64().unwrap_or_default(),
                "score event published on ScoreEventsTopic"
            );
            if let Some(handle) = message.receipt_handle {
                let _ = sqs
                    .delete_message()
                    .queue_url(&queue_url)
                    .receipt_handle(handle)
                    .send()
                    .await;
            }
        }
    }
}
