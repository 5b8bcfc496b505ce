//! The local AWS emulator: moto in server mode, started by `scripts/moto.sh`, reached through the
//! same AWS SDK clients as production with an endpoint override.
//!
//! [`template`] reads template.yaml and [`provision`] creates its resources in the emulator, so
//! the local system and the tests never depend on a second, hand-kept list of resources.

pub mod capture;
pub mod emf;
pub mod faults;
pub mod filter_criteria;
pub mod fixtures;
pub mod hostile;
pub mod iam;
pub mod provision;
pub mod runtime_api;
pub mod s3_events;
pub mod streams;
pub mod template;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::Credentials;

pub use provision::{
    provision, EventSource, FunctionInfo, Provisioned, ResourceNames, RouteAuthorization,
};
pub use template::Template;

/// Where the emulator listens, taken from `AWS_ENDPOINT_URL` (set by `scripts/moto.sh` and
/// `make test`).
pub fn endpoint_from_env() -> Option<String> {
    std::env::var("AWS_ENDPOINT_URL")
        .ok()
        .filter(|v| !v.is_empty())
}

/// SDK config pointing at the emulator, with the dummy credentials and region moto expects.
pub fn sdk_config(endpoint: &str) -> SdkConfig {
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_dynamodb::config::SharedCredentialsProvider::new(
            Credentials::new("test", "test", None, None, "emulator"),
        ))
        .build()
}

/// The SDK config for tests: the running emulator, or a clear instruction when there is none.
pub fn test_sdk_config() -> SdkConfig {
    let endpoint = endpoint_from_env().expect(
        "AWS_ENDPOINT_URL is not set: run the tests with `make test` \
         (or `scripts/moto.sh run cargo test ...`), which starts the emulator",
    );
    sdk_config(&endpoint)
}

/// A short, unique, lowercase prefix for one test's (or one runner's) resources.
pub fn unique_prefix() -> String {
    let id = ulid::Ulid::new().to_string().to_ascii_lowercase();
    // The random tail, not the timestamp head: prefixes made in the same millisecond differ.
    format!("t{}", &id[id.len() - 9..])
}

/// The path of the repository's template.yaml (this crate lives two levels below the root).
pub fn template_path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../template.yaml")
}

/// One test's (or one runner's) private copy of the template's resources in the emulator.
pub struct TestEnv {
    pub sdk: SdkConfig,
    pub resources: Provisioned,
    /// The resources' names, for arranging and asserting.
    pub names: ResourceNames,
}

impl TestEnv {
    /// Provisions template.yaml under a fresh prefix, with the template's defaults.
    pub async fn new() -> Self {
        Self::with_overrides(&std::collections::HashMap::new()).await
    }

    /// Provisions with some Parameter defaults replaced.
    pub async fn with_overrides(overrides: &std::collections::HashMap<String, String>) -> Self {
        let sdk = test_sdk_config();
        let template = Template::load(&template_path()).expect("template.yaml loads");
        let resources = provision(&sdk, &template, &unique_prefix(), overrides)
            .await
            .expect("template.yaml provisions in the emulator");
        Self {
            sdk,
            names: resources.names(),
            resources,
        }
    }

    /// `function`'s environment from the template, for its `Config::from_env`/`Deps::from_env`.
    pub fn function_env(&self, function: &str) -> shared::config::Env {
        self.resources.function_env(function)
    }

    /// The emulator as `function` (a template logical id) sees it: signed with that function's
    /// own principal, which has exactly the permissions the template gives the function. Handler
    /// tests build the function's dependencies from this; arranging and asserting use `sdk`.
    pub fn function_sdk(&self, function: &str) -> SdkConfig {
        self.resources
            .function_sdk(&self.sdk, function)
            .unwrap_or_else(|| panic!("template.yaml has no function {function}"))
    }

    /// The process environment Lambda would give `function`'s binary: the template's variables,
    /// the function's own principal as its execution role's credentials, the emulator's
    /// endpoint, and JSON logs (the template's `LogFormat`).
    pub fn lambda_process_env(&self, function: &str) -> std::collections::HashMap<String, String> {
        let definition = &self.resources.functions[function];
        let mut vars: std::collections::HashMap<String, String> =
            definition.environment.clone().into_iter().collect();
        let credentials = definition
            .credentials
            .clone()
            .expect("a principal per function");
        for (k, v) in [
            (
                "AWS_ENDPOINT_URL",
                endpoint_from_env().expect("the emulator's endpoint"),
            ),
            ("AWS_ACCESS_KEY_ID", credentials.access_key_id),
            ("AWS_SECRET_ACCESS_KEY", credentials.secret_access_key),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_LAMBDA_LOG_FORMAT", "JSON".into()),
        ] {
            vars.insert(k.to_owned(), v);
        }
        vars
    }

    pub fn dynamodb(&self) -> aws_sdk_dynamodb::Client {
        shared::aws::dynamodb(&self.sdk)
    }

    pub fn s3(&self) -> aws_sdk_s3::Client {
        shared::aws::s3(&self.sdk)
    }

    pub fn sns(&self) -> aws_sdk_sns::Client {
        shared::aws::sns(&self.sdk)
    }

    pub fn sqs(&self) -> aws_sdk_sqs::Client {
        aws_sdk_sqs::Client::new(&self.sdk)
    }

    pub fn score_store(&self) -> shared::score_store::ScoreStore {
        shared::score_store::ScoreStore::new(self.dynamodb(), &self.names.scores_table)
    }

    pub fn catalog_store(&self) -> shared::catalog_store::CatalogStore {
        shared::catalog_store::CatalogStore::new(self.dynamodb(), &self.names.catalog_table)
    }

    pub fn publisher(&self) -> shared::publisher::Publisher {
        shared::publisher::Publisher::new(self.sns())
    }

    /// Subscribes a fresh queue to `topic_arn` (see [`subscribe_queue`]).
    pub async fn subscribe_queue(&self, topic_arn: &str, filter_policy: Option<&str>) -> String {
        subscribe_queue(&self.sdk, &self.resources.prefix, topic_arn, filter_policy).await
    }

    /// Receives everything on a queue (see [`drain_queue`]).
    pub async fn drain_queue(
        &self,
        queue_url: &str,
        at_least: usize,
        wait: std::time::Duration,
    ) -> Vec<aws_sdk_sqs::types::Message> {
        drain_queue(&self.sdk, queue_url, at_least, wait).await
    }
}

/// Subscribes a fresh queue to `topic_arn` (raw delivery, optional filter policy) so a test can
/// read what was published. Returns the queue URL.
pub async fn subscribe_queue(
    sdk: &SdkConfig,
    prefix: &str,
    topic_arn: &str,
    filter_policy: Option<&str>,
) -> String {
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let name = format!("{prefix}-probe-{}", &unique_prefix()[1..]);
    let url = sqs
        .create_queue()
        .queue_name(&name)
        .send()
        .await
        .expect("create probe queue")
        .queue_url
        .expect("queue url");
    let arn = format!(
        "arn:aws:sqs:{}:{}:{name}",
        provision::EMULATOR_REGION,
        provision::EMULATOR_ACCOUNT
    );
    let mut request = aws_sdk_sns::Client::new(sdk)
        .subscribe()
        .topic_arn(topic_arn)
        .protocol("sqs")
        .endpoint(arn)
        .attributes("RawMessageDelivery", "true");
    if let Some(policy) = filter_policy {
        request = request.attributes("FilterPolicy", policy);
    }
    request.send().await.expect("subscribe probe queue");
    url
}

/// Receives everything currently on a queue (deleting it), waiting up to `wait` for at least
/// `at_least` messages.
pub async fn drain_queue(
    sdk: &SdkConfig,
    queue_url: &str,
    at_least: usize,
    wait: std::time::Duration,
) -> Vec<aws_sdk_sqs::types::Message> {
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let deadline = tokio::time::Instant::now() + wait;
    let mut messages = Vec::new();
    loop {
        let output = sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .message_attribute_names("All")
            .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
            .send()
            .await
            .expect("receive");
        let batch = output.messages.unwrap_or_default();
        let got = batch.len();
        for m in &batch {
            if let Some(handle) = &m.receipt_handle {
                sqs.delete_message()
                    .queue_url(queue_url)
                    .receipt_handle(handle)
                    .send()
                    .await
                    .expect("delete");
            }
        }
        messages.extend(batch);
        if got == 0 && (messages.len() >= at_least || tokio::time::Instant::now() >= deadline) {
            return messages;
        }
        if got == 0 {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}
