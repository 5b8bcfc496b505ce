//! The whole system started in-process for a test: the local runner over the emulator, with its
//! own resources, and the few helpers the end-to-end tests share.
//!
//! Requests to the HTTP API are SigV4-signed as a deployed stack's callers sign them
//! (`ApiAuth=AWS_IAM`, the template's default, which the runner checks): with the smoke test's
//! signer and the emulator's credentials, the one key the local API knows.

use std::time::Duration;

use local_runner::{Runner, RunnerOptions};
use serde_json::Value;

pub struct System {
    pub runner: Runner,
    pub http: reqwest::Client,
    /// Signs for `execute-api` with the credentials and region the runner knows.
    pub signer: deferred_smoke::Signer,
}

pub struct Answer {
    pub status: u16,
    pub body: Value,
    pub headers: reqwest::header::HeaderMap,
}

impl System {
    /// Provisions a private copy of template.yaml (with Parameter overrides) and starts
    /// playing every event source, with the HTTP API on a free port.
    pub async fn start(overrides: &[(&str, &str)]) -> Self {
        Self::launch(overrides, None, false).await
    }

    /// [`System::start`], with `faults` injected into every AWS call the functions make.
    pub async fn start_with_faults(
        overrides: &[(&str, &str)],
        faults: Option<std::sync::Arc<emulator::faults::FaultPlan>>,
    ) -> Self {
        Self::launch(overrides, faults, false).await
    }

    /// [`System::start`], optionally with every SQS event source played as if its
    /// `ScalingConfig.MaximumConcurrency` were removed (the incident; see `tests/incident.rs`).
    pub async fn start_with(overrides: &[(&str, &str)], without_maximum_concurrency: bool) -> Self {
        Self::launch(overrides, None, without_maximum_concurrency).await
    }

    async fn launch(
        overrides: &[(&str, &str)],
        faults: Option<std::sync::Arc<emulator::faults::FaultPlan>>,
        without_maximum_concurrency: bool,
    ) -> Self {
        let runner = Runner::start(
            emulator::test_sdk_config(),
            RunnerOptions {
                port: 0,
                prefix: emulator::unique_prefix(),
                parameter_overrides: overrides
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                tail_score_events: false,
                faults,
                without_maximum_concurrency,
            },
        )
        .await
        .expect("the local runner starts");
        let signer = deferred_smoke::Signer::from_sdk_config(
            &runner.sdk,
            &runner.base_url().parse().expect("the runner's URL"),
        )
        .expect("the emulator's credentials and region");
        Self {
            runner,
            // Not reqwest::Client::new(): with deferred-smoke in the build, reqwest's TLS is rustls
            // without a default crypto provider (see the workspace Cargo.toml).
            http: deferred_smoke::http_client(),
            signer,
        }
    }

    /// A request to the local HTTP API (`path` under its base URL), not yet signed.
    pub fn build(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.runner.base_url()))
    }

    /// Signs `request` (its headers and body are final) as callers of the API must.
    pub async fn sign(&self, request: &mut reqwest::Request) {
        self.signer
            .sign(request)
            .await
            .expect("signing with the emulator's credentials");
    }

    /// Sends `request` as it is (signed or not) and reads the whole answer.
    pub async fn send(&self, request: reqwest::Request) -> Answer {
        let response = self
            .http
            .execute(request)
            .await
            .expect("the local HTTP API answers");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.expect("a body");
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Answer {
            status,
            body,
            headers,
        }
    }

    pub fn names(&self) -> emulator::ResourceNames {
        self.runner.names()
    }

    pub fn s3(&self) -> aws_sdk_s3::Client {
        shared::aws::s3(&self.runner.sdk)
    }

    /// The catalog, as the runner's own (admin) principal writes it: for seeding data.
    pub fn catalog(&self) -> shared::catalog_store::CatalogStore {
        shared::catalog_store::CatalogStore::new(
            shared::aws::dynamodb(&self.runner.sdk),
            &self.names().catalog_table,
        )
    }

    /// A new queue subscribed to ScoreEventsTopic (raw delivery, with an optional filter
    /// policy), as any subscriber's; returns its URL.
    pub async fn subscribe_score_events(&self, filter_policy: Option<&str>) -> String {
        emulator::subscribe_queue(
            &self.runner.sdk,
            &self.runner.resources.prefix,
            &self.names().score_events_topic_arn,
            filter_policy,
        )
        .await
    }

    pub fn sqs(&self) -> aws_sdk_sqs::Client {
        aws_sdk_sqs::Client::new(&self.runner.sdk)
    }

    /// A signed request (JSON body when given), sent, its answer read.
    pub async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Answer {
        let mut request = self.build(method, path);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let mut request = request.build().expect("a valid request");
        self.sign(&mut request).await;
        self.send(request).await
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.request(reqwest::Method::GET, path, None).await
    }

    /// GETs the score until it is finished (200), or panics after `within`.
    pub async fn wait_for_result(&self, subject: &str, within: Duration) -> Answer {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let answer = self.get(&format!("/v1/scores/{subject}")).await;
            if answer.status == 200 {
                return answer;
            }
            assert_eq!(
                answer.status, 202,
                "unexpected answer for {subject}: {}",
                answer.body
            );
            assert!(
                tokio::time::Instant::now() < deadline,
                "{subject} not finished within {within:?}: {}",
                answer.body
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// GETs the score until it is `done`, or panics after `within`. Unlike
    /// [`System::wait_for_result`], it rides out what faults cause: a `503` (a throttled
    /// dependency) and a retryable failure (a later GET starts the job again).
    pub async fn wait_for_done(&self, subject: &str, within: Duration) -> Answer {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let answer = self.get(&format!("/v1/scores/{subject}")).await;
            if answer.status == 200 && answer.body["status"] == "done" {
                return answer;
            }
            let retryable_failure =
                answer.status == 200 && answer.body["error"]["retryable"] == true;
            assert!(
                answer.status == 202 || answer.status == 503 || retryable_failure,
                "{subject} ended in a way no request can recover: {} {}",
                answer.status,
                answer.body
            );
            assert!(
                tokio::time::Instant::now() < deadline,
                "{subject} not done within {within:?}: {}",
                answer.body
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    /// Number of messages waiting in a queue of the template (by logical id).
    pub async fn queue_depth(&self, logical_id: &str) -> usize {
        let attributes = self
            .sqs()
            .get_queue_attributes()
            .queue_url(&self.runner.resources.queue(logical_id).url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(
                aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
            )
            .send()
            .await
            .expect("queue attributes")
            .attributes
            .unwrap_or_default();
        attributes
            .values()
            .map(|v| v.parse::<usize>().unwrap_or(0))
            .sum()
    }

    /// Waits until a queue of the template has nothing visible or in flight (its consumer has
    /// caught up), or panics after `within`.
    pub async fn wait_for_empty_queue(&self, logical_id: &str, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        while self.queue_depth(logical_id).await > 0 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{logical_id} not drained within {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}
