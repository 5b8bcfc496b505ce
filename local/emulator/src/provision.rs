//! Creates template.yaml's resources in the emulator and describes what Lambda would wire up
//! (functions, their environment and event sources) for the local runner.
//!
//! Every resource type of the template is either created here or listed in [`NOT_EMULATED`]
//! with the reason; an unknown type is an error, so the template and the local system cannot
//! drift apart silently.

use std::collections::{BTreeMap, HashMap};

use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    StreamSpecification, StreamViewType, TimeToLiveSpecification,
};
use aws_sdk_s3::types::{
    Event, FilterRule, FilterRuleName, NotificationConfiguration, NotificationConfigurationFilter,
    QueueConfiguration, S3KeyFilter,
};
use aws_sdk_sqs::types::QueueAttributeName;
use serde_json::Value as Json;

use crate::iam::{create_principal, function_policy, FunctionCredentials};
use crate::template::{Resource, Symbols, Template};

/// Template resource types the emulator does not create, and why that is fine locally.
pub const NOT_EMULATED: &[(&str, &str)] = &[
    (
        "AWS::Serverless::Function",
        "played by the local runner, which calls the same handlers",
    ),
    (
        "AWS::Serverless::HttpApi",
        "played by the local runner's HTTP server",
    ),
    (
        "AWS::SQS::QueuePolicy",
        "moto does not enforce resource policies",
    ),
    (
        "AWS::S3::BucketPolicy",
        "moto does not enforce resource policies",
    ),
    (
        "AWS::SNS::TopicPolicy",
        "moto does not enforce resource policies (the template's only deny plain-HTTP requests)",
    ),
    ("AWS::CloudWatch::Alarm", "no metrics locally"),
    ("AWS::CloudWatch::Dashboard", "no metrics locally"),
    (
        "AWS::IAM::Role",
        "the template has none of its own; each function's role is an IAM user (emulator::iam)",
    ),
    ("AWS::Logs::LogGroup", "the local runner logs to stderr"),
];

/// The account id moto uses by default (a documentation placeholder, not a real account).
pub const EMULATOR_ACCOUNT: &str = "123456789012";
pub const EMULATOR_REGION: &str = "us-east-1";

#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error("resource {logical_id} has type {kind}, which the local emulator neither creates nor lists as not emulated")]
    Unsupported { logical_id: String, kind: String },
    #[error("resource {logical_id}: {message}")]
    Invalid { logical_id: String, message: String },
    #[error("creating {logical_id} in the emulator failed")]
    Aws {
        logical_id: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

fn aws_err<E: std::error::Error + Send + Sync + 'static>(
    logical_id: &str,
) -> impl FnOnce(E) -> ProvisionError + '_ {
    move |e| ProvisionError::Aws {
        logical_id: logical_id.to_owned(),
        source: Box::new(e),
    }
}

fn invalid(logical_id: &str, message: impl Into<String>) -> ProvisionError {
    ProvisionError::Invalid {
        logical_id: logical_id.to_owned(),
        message: message.into(),
    }
}

#[derive(Debug, Clone)]
pub struct TableInfo {
    pub name: String,
    pub arn: String,
    pub stream_arn: Option<String>,
}

#[derive(Debug, Clone)]
pub struct QueueInfo {
    pub name: String,
    pub url: String,
    pub arn: String,
    pub visibility_timeout_seconds: u32,
    /// From the RedrivePolicy, when there is one.
    pub max_receive_count: Option<u32>,
    pub dead_letter_queue: Option<String>,
}

/// One event source mapping (or API route) of a function, with the template's settings.
#[derive(Debug, Clone, PartialEq)]
pub enum EventSource {
    Sqs {
        name: String,
        queue_arn: String,
        batch_size: u32,
        batching_window_seconds: u32,
        maximum_concurrency: Option<u32>,
        report_batch_item_failures: bool,
    },
    DynamoDb {
        name: String,
        stream_arn: String,
        starting_position: String,
        batch_size: u32,
        /// `FilterCriteria.Filters[].Pattern`, parsed.
        filter_patterns: Vec<Json>,
        bisect_batch_on_function_error: bool,
        maximum_retry_attempts: Option<i64>,
        maximum_record_age_seconds: Option<i64>,
        on_failure_destination_arn: Option<String>,
        report_batch_item_failures: bool,
    },
    HttpApi {
        name: String,
        method: String,
        path: String,
        /// Who may call the route: what API Gateway checks before invoking the function.
        authorization: RouteAuthorization,
    },
}

/// A route's authorization, from the API's OpenAPI `DefinitionBody` (the operation's `security`
/// naming a `x-amazon-apigateway-authtype: awsSigv4` scheme), SAM's `Auth.DefaultAuthorizer`
/// or the event's `Auth.Authorizer` (`AWS_IAM`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteAuthorization {
    /// Anyone may call it.
    None,
    /// SigV4-signed requests only (`execute-api`).
    AwsIam,
}

#[derive(Debug, Clone)]
pub struct FunctionInfo {
    pub logical_id: String,
    /// The cargo binary (`Metadata.BuildProperties.Binary`).
    pub binary: String,
    pub timeout_seconds: u64,
    pub reserved_concurrency: Option<u32>,
    /// Globals and the function's own variables, resolved.
    pub environment: BTreeMap<String, String>,
    pub events: Vec<EventSource>,
    /// Its execution role's policy document (see [`crate::iam::function_policy`]).
    pub policy: Json,
    /// The principal the function's code runs as locally, with exactly `policy`.
    pub credentials: Option<FunctionCredentials>,
}

/// The names of the template's resources in one provisioned copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceNames {
    pub scores_table: String,
    pub catalog_table: String,
    pub compute_topic_arn: String,
    pub score_events_topic_arn: String,
    pub data_bucket: String,
}

/// What was created, by logical id.
#[derive(Debug, Clone, Default)]
pub struct Provisioned {
    pub prefix: String,
    pub tables: BTreeMap<String, TableInfo>,
    pub topics: BTreeMap<String, String>,
    pub queues: BTreeMap<String, QueueInfo>,
    pub buckets: BTreeMap<String, String>,
    pub subscriptions: BTreeMap<String, String>,
    pub functions: BTreeMap<String, FunctionInfo>,
    /// ARNs of queues that receive S3 event notifications (their bodies need
    /// [`crate::s3_events`]' fill-ins before a Lambda-format parser sees them).
    pub s3_notification_queues: std::collections::BTreeSet<String>,
    /// Resources deliberately not created, with the reason.
    pub not_emulated: BTreeMap<String, &'static str>,
}

impl Provisioned {
    /// The function's environment, exactly as Lambda would give it (empty for an unknown one),
    /// for the function's own `Config::from_env` / `Deps::from_env`.
    pub fn function_env(&self, function: &str) -> shared::config::Env {
        shared::config::Env::from_map(
            self.functions
                .get(function)
                .map(|f| f.environment.clone())
                .unwrap_or_default(),
        )
    }

    /// The names of the resources the functions use, for arranging and asserting in tests.
    pub fn names(&self) -> ResourceNames {
        ResourceNames {
            scores_table: self.tables["ScoresTable"].name.clone(),
            catalog_table: self.tables["CatalogTable"].name.clone(),
            compute_topic_arn: self.topics["ComputeTopic"].clone(),
            score_events_topic_arn: self.topics["ScoreEventsTopic"].clone(),
            data_bucket: self.buckets["DataBucket"].clone(),
        }
    }

    /// `base` (the emulator's endpoint and region) signed as `function`'s own principal, so its
    /// code gets exactly the permissions the template gives it.
    pub fn function_sdk(&self, base: &SdkConfig, function: &str) -> Option<SdkConfig> {
        let credentials = self.functions.get(function)?.credentials.as_ref()?;
        Some(credentials.sdk_config(base))
    }

    pub fn queue_by_arn(&self, arn: &str) -> Option<&QueueInfo> {
        self.queues.values().find(|q| q.arn == arn)
    }

    pub fn table(&self, logical_id: &str) -> &TableInfo {
        &self.tables[logical_id]
    }

    pub fn queue(&self, logical_id: &str) -> &QueueInfo {
        &self.queues[logical_id]
    }
}

/// Creates every emulated resource of `template` under `prefix`. `overrides` replace
/// Parameter defaults (as `sam deploy --parameter-overrides` would).
pub async fn provision(
    sdk: &SdkConfig,
    template: &Template,
    prefix: &str,
    overrides: &HashMap<String, String>,
) -> Result<Provisioned, ProvisionError> {
    let mut p = Provisioner::new(sdk, template, prefix, overrides);
    p.check_resource_types()?;
    p.create_tables().await?;
    p.create_topics().await?;
    p.create_queues().await?;
    p.set_redrive_policies().await?;
    p.create_buckets().await?;
    p.create_subscriptions().await?;
    p.describe_functions().await?;
    Ok(p.out)
}

/// One run of [`provision`]: the clients, what the intrinsic functions resolve to so far, and
/// what was created.
struct Provisioner<'a> {
    template: &'a Template,
    prefix: &'a str,
    dynamodb: aws_sdk_dynamodb::Client,
    sns: aws_sdk_sns::Client,
    sqs: aws_sdk_sqs::Client,
    s3: aws_sdk_s3::Client,
    iam: aws_sdk_iam::Client,
    symbols: Symbols,
    out: Provisioned,
}

impl<'a> Provisioner<'a> {
    fn new(
        sdk: &SdkConfig,
        template: &'a Template,
        prefix: &'a str,
        overrides: &HashMap<String, String>,
    ) -> Self {
        let mut symbols = Symbols {
            conditions: template.conditions.clone(),
            ..Symbols::default()
        };
        for (name, default) in &template.parameters {
            if let Some(value) = overrides.get(name).cloned().or_else(|| default.clone()) {
                symbols.parameters.insert(name.clone(), value);
            }
        }
        for (name, value) in [
            ("AWS::Region", EMULATOR_REGION),
            ("AWS::AccountId", EMULATOR_ACCOUNT),
            ("AWS::Partition", "aws"),
            ("AWS::URLSuffix", "amazonaws.com"),
            ("AWS::StackName", prefix),
        ] {
            symbols.parameters.insert(name.to_owned(), value.to_owned());
        }
        Self {
            template,
            prefix,
            dynamodb: aws_sdk_dynamodb::Client::new(sdk),
            sns: aws_sdk_sns::Client::new(sdk),
            sqs: aws_sdk_sqs::Client::new(sdk),
            s3: aws_sdk_s3::Client::from_conf(
                aws_sdk_s3::config::Builder::from(sdk)
                    .force_path_style(true)
                    .build(),
            ),
            iam: aws_sdk_iam::Client::new(sdk),
            symbols,
            out: Provisioned {
                prefix: prefix.to_owned(),
                ..Default::default()
            },
        }
    }

    /// Every resource type is created below or deliberately not emulated; anything else is an
    /// error, so the template and the local system cannot drift apart silently.
    fn check_resource_types(&mut self) -> Result<(), ProvisionError> {
        for resource in &self.template.resources {
            let known = matches!(
                resource.kind.as_str(),
                "AWS::DynamoDB::Table"
                    | "AWS::SNS::Topic"
                    | "AWS::SQS::Queue"
                    | "AWS::SNS::Subscription"
                    | "AWS::S3::Bucket"
            );
            if known {
                continue;
            }
            match NOT_EMULATED.iter().find(|(kind, _)| *kind == resource.kind) {
                Some((_, why)) => {
                    self.out
                        .not_emulated
                        .insert(resource.logical_id.clone(), why);
                }
                None => {
                    return Err(ProvisionError::Unsupported {
                        logical_id: resource.logical_id.clone(),
                        kind: resource.kind.clone(),
                    })
                }
            }
        }
        Ok(())
    }

    async fn create_tables(&mut self) -> Result<(), ProvisionError> {
        for resource in self.template.of_kind("AWS::DynamoDB::Table") {
            let info = create_table(&self.dynamodb, &self.symbols, resource, self.prefix).await?;
            let id = &resource.logical_id;
            self.symbols.refs.insert(id.clone(), info.name.clone());
            self.symbols
                .attributes
                .insert(format!("{id}.Arn"), info.arn.clone());
            if let Some(stream) = &info.stream_arn {
                self.symbols
                    .attributes
                    .insert(format!("{id}.StreamArn"), stream.clone());
            }
            self.out.tables.insert(id.clone(), info);
        }
        Ok(())
    }

    async fn create_topics(&mut self) -> Result<(), ProvisionError> {
        for resource in self.template.of_kind("AWS::SNS::Topic") {
            let id = &resource.logical_id;
            let name = format!("{}-{id}", self.prefix);
            let arn = self
                .sns
                .create_topic()
                .name(&name)
                .send()
                .await
                .map_err(aws_err(id))?
                .topic_arn
                .ok_or_else(|| invalid(id, "no topic ARN returned"))?;
            self.symbols.refs.insert(id.clone(), arn.clone());
            self.symbols
                .attributes
                .insert(format!("{id}.TopicArn"), arn.clone());
            self.symbols
                .attributes
                .insert(format!("{id}.TopicName"), name);
            self.out.topics.insert(id.clone(), arn);
        }
        Ok(())
    }

    /// Queues without their redrive policies first: a redrive policy names another queue's ARN.
    async fn create_queues(&mut self) -> Result<(), ProvisionError> {
        for resource in self.template.of_kind("AWS::SQS::Queue") {
            let id = &resource.logical_id;
            let props = self.symbols.resolve(&resource.properties);
            let name = format!("{}-{id}", self.prefix);
            let mut request = self.sqs.create_queue().queue_name(&name);
            for (prop, attribute) in [
                ("VisibilityTimeout", QueueAttributeName::VisibilityTimeout),
                (
                    "MessageRetentionPeriod",
                    QueueAttributeName::MessageRetentionPeriod,
                ),
                ("DelaySeconds", QueueAttributeName::DelaySeconds),
                (
                    "ReceiveMessageWaitTimeSeconds",
                    QueueAttributeName::ReceiveMessageWaitTimeSeconds,
                ),
            ] {
                if let Some(value) = text(&props[prop]) {
                    request = request.attributes(attribute, value);
                }
            }
            let url = request
                .send()
                .await
                .map_err(aws_err(id))?
                .queue_url
                .ok_or_else(|| invalid(id, "no queue URL returned"))?;
            let arn = format!("arn:aws:sqs:{EMULATOR_REGION}:{EMULATOR_ACCOUNT}:{name}");
            self.symbols.refs.insert(id.clone(), url.clone());
            for (attribute, value) in [("Arn", &arn), ("QueueUrl", &url), ("QueueName", &name)] {
                self.symbols
                    .attributes
                    .insert(format!("{id}.{attribute}"), value.clone());
            }
            let visibility_timeout_seconds =
                number(&props["VisibilityTimeout"]).unwrap_or(30) as u32;
            self.out.queues.insert(
                id.clone(),
                QueueInfo {
                    name,
                    url,
                    arn,
                    visibility_timeout_seconds,
                    max_receive_count: None,
                    dead_letter_queue: None,
                },
            );
        }
        Ok(())
    }

    async fn set_redrive_policies(&mut self) -> Result<(), ProvisionError> {
        for resource in self.template.of_kind("AWS::SQS::Queue") {
            let id = &resource.logical_id;
            let props = self.symbols.resolve(&resource.properties);
            let redrive = &props["RedrivePolicy"];
            if redrive.is_null() {
                continue;
            }
            let target = text(&redrive["deadLetterTargetArn"])
                .ok_or_else(|| invalid(id, "RedrivePolicy without deadLetterTargetArn"))?;
            let max = number(&redrive["maxReceiveCount"])
                .ok_or_else(|| invalid(id, "RedrivePolicy without maxReceiveCount"))?;
            let policy = serde_json::json!({"deadLetterTargetArn": target, "maxReceiveCount": max.to_string()});
            let queue = self.out.queues.get_mut(id).expect("created above");
            self.sqs
                .set_queue_attributes()
                .queue_url(&queue.url)
                .attributes(QueueAttributeName::RedrivePolicy, policy.to_string())
                .send()
                .await
                .map_err(aws_err(id))?;
            queue.max_receive_count = Some(max as u32);
            queue.dead_letter_queue = Some(target);
        }
        Ok(())
    }

    async fn create_buckets(&mut self) -> Result<(), ProvisionError> {
        for resource in self.template.of_kind("AWS::S3::Bucket") {
            let id = &resource.logical_id;
            let props = self.symbols.resolve(&resource.properties);
            let name = text(&props["BucketName"])
                .unwrap_or_else(|| format!("{}-{id}", self.prefix))
                .to_ascii_lowercase();
            self.s3
                .create_bucket()
                .bucket(&name)
                .send()
                .await
                .map_err(aws_err(id))?;
            // Deliberately not versioned locally, although VersioningConfiguration enables it
            // in AWS: moto 5.2.5 sends no notification for a delete on a versioned bucket (no
            // ObjectRemoved:DeleteMarkerCreated), so the catalog would never learn of deletes.
            // Unversioned, a delete notifies ObjectRemoved:Delete, which metadata-sync treats
            // as it treats a delete marker (tests cover both shapes). The LifecycleConfiguration
            // (old versions, incomplete uploads) is not applied either: moto runs no lifecycle.
            self.symbols.refs.insert(id.clone(), name.clone());
            self.symbols
                .attributes
                .insert(format!("{id}.Arn"), format!("arn:aws:s3:::{name}"));
            self.out.buckets.insert(id.clone(), name.clone());
            self.set_bucket_notifications(id, &name, &props).await?;
        }
        Ok(())
    }

    async fn set_bucket_notifications(
        &mut self,
        id: &str,
        bucket: &str,
        props: &Json,
    ) -> Result<(), ProvisionError> {
        let configs = props["NotificationConfiguration"]["QueueConfigurations"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if configs.is_empty() {
            return Ok(());
        }
        let mut notification = NotificationConfiguration::builder();
        for config in configs {
            let queue = text(&config["Queue"])
                .ok_or_else(|| invalid(id, "queue notification without Queue"))?;
            self.out.s3_notification_queues.insert(queue.clone());
            notification =
                notification.queue_configurations(queue_notification(id, &queue, &config)?);
        }
        self.s3
            .put_bucket_notification_configuration()
            .bucket(bucket)
            .notification_configuration(notification.build())
            .send()
            .await
            .map_err(aws_err(id))?;
        Ok(())
    }

    async fn create_subscriptions(&mut self) -> Result<(), ProvisionError> {
        for resource in self.template.of_kind("AWS::SNS::Subscription") {
            let id = &resource.logical_id;
            let props = self.symbols.resolve(&resource.properties);
            let mut request = self
                .sns
                .subscribe()
                .topic_arn(text(&props["TopicArn"]).ok_or_else(|| invalid(id, "no TopicArn"))?)
                .protocol(text(&props["Protocol"]).ok_or_else(|| invalid(id, "no Protocol"))?)
                .endpoint(text(&props["Endpoint"]).ok_or_else(|| invalid(id, "no Endpoint"))?)
                .return_subscription_arn(true);
            if let Some(raw) = text(&props["RawMessageDelivery"]) {
                request = request.attributes("RawMessageDelivery", raw);
            }
            if !props["FilterPolicy"].is_null() {
                request = request.attributes("FilterPolicy", props["FilterPolicy"].to_string());
                if let Some(scope) = text(&props["FilterPolicyScope"]) {
                    request = request.attributes("FilterPolicyScope", scope);
                }
            }
            let arn = request
                .send()
                .await
                .map_err(aws_err(id))?
                .subscription_arn
                .unwrap_or_default();
            self.out.subscriptions.insert(id.clone(), arn);
        }
        Ok(())
    }

    /// What Lambda would run for each function, and its principal (see [`crate::iam`]).
    async fn describe_functions(&mut self) -> Result<(), ProvisionError> {
        // An HttpApi is not created, but its routes' authorization is played: its `!Ref` (an
        // event's ApiId) names it by logical id, and its properties are resolved once here.
        let mut http_apis = HashMap::new();
        for resource in self.template.of_kind("AWS::Serverless::HttpApi") {
            let id = &resource.logical_id;
            self.symbols.refs.insert(id.clone(), id.clone());
            http_apis.insert(id.clone(), self.symbols.resolve(&resource.properties));
        }
        for resource in self.template.of_kind("AWS::Serverless::Function") {
            let mut info = function_info(self.template, &self.symbols, &http_apis, resource)?;
            let user = format!("{}-{}", self.prefix, resource.logical_id);
            info.credentials =
                Some(create_principal(&self.iam, &resource.logical_id, &user, &info.policy).await?);
            self.out.functions.insert(resource.logical_id.clone(), info);
        }
        Ok(())
    }
}

/// One queue target of a bucket's notification configuration, with its key filter.
fn queue_notification(
    id: &str,
    queue: &str,
    config: &Json,
) -> Result<QueueConfiguration, ProvisionError> {
    let event =
        text(&config["Event"]).ok_or_else(|| invalid(id, "queue notification without Event"))?;
    let mut qc = QueueConfiguration::builder()
        .queue_arn(queue)
        .events(Event::from(event.as_str()));
    if let Some(rules) = config["Filter"]["S3Key"]["Rules"].as_array() {
        let mut key = S3KeyFilter::builder();
        for rule in rules {
            key = key.filter_rules(
                FilterRule::builder()
                    .name(FilterRuleName::from(
                        text(&rule["Name"])
                            .unwrap_or_default()
                            .to_ascii_lowercase()
                            .as_str(),
                    ))
                    .value(text(&rule["Value"]).unwrap_or_default())
                    .build(),
            );
        }
        qc = qc.filter(
            NotificationConfigurationFilter::builder()
                .key(key.build())
                .build(),
        );
    }
    qc.build().map_err(aws_err(id))
}

async fn create_table(
    dynamodb: &aws_sdk_dynamodb::Client,
    symbols: &Symbols,
    resource: &Resource,
    prefix: &str,
) -> Result<TableInfo, ProvisionError> {
    let id = &resource.logical_id;
    let props = symbols.resolve(&resource.properties);
    let name = format!("{prefix}-{id}");
    let mut request = dynamodb
        .create_table()
        .table_name(&name)
        .billing_mode(BillingMode::PayPerRequest);
    for def in props["AttributeDefinitions"]
        .as_array()
        .into_iter()
        .flatten()
    {
        request = request.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(text(&def["AttributeName"]).unwrap_or_default())
                .attribute_type(ScalarAttributeType::from(
                    text(&def["AttributeType"]).unwrap_or_default().as_str(),
                ))
                .build()
                .map_err(aws_err(id))?,
        );
    }
    for key in props["KeySchema"].as_array().into_iter().flatten() {
        request = request.key_schema(
            KeySchemaElement::builder()
                .attribute_name(text(&key["AttributeName"]).unwrap_or_default())
                .key_type(KeyType::from(
                    text(&key["KeyType"]).unwrap_or_default().as_str(),
                ))
                .build()
                .map_err(aws_err(id))?,
        );
    }
    if let Some(view) = text(&props["StreamSpecification"]["StreamViewType"]) {
        request = request.stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::from(view.as_str()))
                .build()
                .map_err(aws_err(id))?,
        );
    }
    let description = request
        .send()
        .await
        .map_err(aws_err(id))?
        .table_description
        .ok_or_else(|| invalid(id, "no table description returned"))?;
    let ttl = &props["TimeToLiveSpecification"];
    if let (Some(attribute), Some(true)) = (
        text(&ttl["AttributeName"]),
        ttl["Enabled"]
            .as_bool()
            .or(text(&ttl["Enabled"]).map(|t| t == "true")),
    ) {
        dynamodb
            .update_time_to_live()
            .table_name(&name)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .attribute_name(attribute)
                    .enabled(true)
                    .build()
                    .map_err(aws_err(id))?,
            )
            .send()
            .await
            .map_err(aws_err(id))?;
    }
    Ok(TableInfo {
        arn: description.table_arn.unwrap_or_default(),
        stream_arn: description.latest_stream_arn,
        name,
    })
}

fn function_info(
    template: &Template,
    symbols: &Symbols,
    http_apis: &HashMap<String, Json>,
    resource: &Resource,
) -> Result<FunctionInfo, ProvisionError> {
    let id = &resource.logical_id;
    let globals = symbols.resolve(&template.function_globals);
    let props = symbols.resolve(&resource.properties);
    let metadata = symbols.resolve(&resource.metadata);
    let binary = text(&metadata["BuildProperties"]["Binary"])
        .ok_or_else(|| invalid(id, "no Metadata.BuildProperties.Binary"))?;
    let mut environment = BTreeMap::new();
    for source in [&globals, &props] {
        if let Some(vars) = source["Environment"]["Variables"].as_object() {
            for (k, v) in vars {
                environment.insert(k.clone(), text(v).unwrap_or_default());
            }
        }
    }
    let timeout_seconds = number(&props["Timeout"])
        .or_else(|| number(&globals["Timeout"]))
        .unwrap_or(3) as u64;
    let reserved_concurrency = number(&props["ReservedConcurrentExecutions"]).map(|n| n as u32);
    let events = props["Events"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(name, event)| event_source(id, name, event, http_apis))
        .collect::<Result<Vec<_>, _>>()?;
    let policy = function_policy(id, &props["Policies"], &events)?;
    Ok(FunctionInfo {
        logical_id: id.clone(),
        binary,
        timeout_seconds,
        reserved_concurrency,
        environment,
        events,
        policy,
        credentials: None,
    })
}

/// One `Events` entry of a function, with the settings the local runner plays.
fn event_source(
    id: &str,
    name: &str,
    event: &Json,
    http_apis: &HashMap<String, Json>,
) -> Result<EventSource, ProvisionError> {
    let p = &event["Properties"];
    let reports = p["FunctionResponseTypes"]
        .as_array()
        .is_some_and(|types| types.iter().any(|t| t == "ReportBatchItemFailures"));
    Ok(match event["Type"].as_str().unwrap_or_default() {
        "SQS" => EventSource::Sqs {
            name: name.to_owned(),
            queue_arn: text(&p["Queue"])
                .ok_or_else(|| invalid(id, format!("event {name} has no Queue")))?,
            batch_size: number(&p["BatchSize"]).unwrap_or(10) as u32,
            batching_window_seconds: number(&p["MaximumBatchingWindowInSeconds"]).unwrap_or(0)
                as u32,
            maximum_concurrency: number(&p["ScalingConfig"]["MaximumConcurrency"])
                .map(|n| n as u32),
            report_batch_item_failures: reports,
        },
        "DynamoDB" => EventSource::DynamoDb {
            name: name.to_owned(),
            stream_arn: text(&p["Stream"])
                .ok_or_else(|| invalid(id, format!("event {name} has no Stream")))?,
            starting_position: text(&p["StartingPosition"])
                .unwrap_or_else(|| "TRIM_HORIZON".into()),
            batch_size: number(&p["BatchSize"]).unwrap_or(100) as u32,
            filter_patterns: filter_patterns(id, name, &p["FilterCriteria"])?,
            bisect_batch_on_function_error: p["BisectBatchOnFunctionError"]
                .as_bool()
                .unwrap_or(false),
            maximum_retry_attempts: number(&p["MaximumRetryAttempts"]),
            maximum_record_age_seconds: number(&p["MaximumRecordAgeInSeconds"]),
            on_failure_destination_arn: text(&p["DestinationConfig"]["OnFailure"]["Destination"]),
            report_batch_item_failures: reports,
        },
        "HttpApi" => {
            let method = text(&p["Method"]).unwrap_or_else(|| "ANY".into());
            let path = text(&p["Path"]).unwrap_or_else(|| "$default".into());
            // Without ApiId the event is on SAM's implicit API, which has no authorizer here.
            let api = text(&p["ApiId"]).and_then(|api| http_apis.get(&api));
            let authorization = route_authorization(api, &method, &path, &p["Auth"]);
            EventSource::HttpApi {
                name: name.to_owned(),
                method,
                path,
                authorization,
            }
        }
        other => {
            return Err(invalid(
                id,
                format!("event {name} has type {other}, which the local runner does not play"),
            ))
        }
    })
}

/// What API Gateway checks for one route (see [`RouteAuthorization`]): the event's own
/// `Auth.Authorizer` first, then the operation's `security` in the API's `DefinitionBody`
/// (conditions already resolved: under `ApiAuth=NONE` it is gone), then the API's
/// `Auth.DefaultAuthorizer`.
fn route_authorization(
    api: Option<&Json>,
    method: &str,
    path: &str,
    event_auth: &Json,
) -> RouteAuthorization {
    let iam = |yes: bool| match yes {
        true => RouteAuthorization::AwsIam,
        false => RouteAuthorization::None,
    };
    if let Some(authorizer) = text(&event_auth["Authorizer"]) {
        return iam(authorizer == "AWS_IAM");
    }
    let Some(api) = api else {
        return RouteAuthorization::None;
    };
    let definition = &api["DefinitionBody"];
    let operation_key = match method.to_ascii_uppercase().as_str() {
        "ANY" => "x-amazon-apigateway-any-method".to_owned(),
        other => other.to_ascii_lowercase(),
    };
    let operation = &definition["paths"][path][operation_key.as_str()];
    if let Some(requirements) = operation["security"].as_array() {
        let schemes = &definition["components"]["securitySchemes"];
        let sigv4 = requirements
            .iter()
            .filter_map(Json::as_object)
            .flat_map(|requirement| requirement.keys())
            .any(|scheme| schemes[scheme]["x-amazon-apigateway-authtype"] == "awsSigv4");
        return iam(sigv4);
    }
    iam(text(&api["Auth"]["DefaultAuthorizer"]).as_deref() == Some("AWS_IAM"))
}

/// `FilterCriteria.Filters[].Pattern`, parsed (a pattern is JSON in a string, or inline).
fn filter_patterns(id: &str, name: &str, criteria: &Json) -> Result<Vec<Json>, ProvisionError> {
    criteria["Filters"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|filter| match &filter["Pattern"] {
            Json::String(s) => serde_json::from_str(s)
                .map_err(|e| invalid(id, format!("event {name}: filter pattern is not JSON: {e}"))),
            other => Ok(other.clone()),
        })
        .collect()
}

fn text(value: &Json) -> Option<String> {
    match value {
        Json::String(s) => Some(s.clone()),
        Json::Number(n) => Some(n.to_string()),
        Json::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn number(value: &Json) -> Option<i64> {
    match value {
        Json::Number(n) => n.as_i64(),
        Json::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each `HttpApi` event of template.yaml's functions with its route's authorization, under
    /// the template's defaults with `overrides` applied (no emulator needed: nothing is created).
    fn routes(overrides: &[(&str, &str)]) -> Vec<(String, RouteAuthorization)> {
        let template = Template::load(&crate::template_path()).unwrap();
        let mut symbols = Symbols {
            conditions: template.conditions.clone(),
            ..Symbols::default()
        };
        for (name, default) in &template.parameters {
            if let Some(value) = default {
                symbols.parameters.insert(name.clone(), value.clone());
            }
        }
        for (name, value) in overrides {
            symbols
                .parameters
                .insert(name.to_string(), value.to_string());
        }
        let mut apis = HashMap::new();
        for api in template.of_kind("AWS::Serverless::HttpApi") {
            symbols
                .refs
                .insert(api.logical_id.clone(), api.logical_id.clone());
            apis.insert(api.logical_id.clone(), symbols.resolve(&api.properties));
        }
        let mut routes = Vec::new();
        for function in template.of_kind("AWS::Serverless::Function") {
            let props = symbols.resolve(&function.properties);
            let events = props["Events"].as_object().into_iter().flatten();
            // The other event types need provisioned queues and streams to resolve.
            for (name, event) in events.filter(|(_, e)| e["Type"] == "HttpApi") {
                if let EventSource::HttpApi {
                    authorization,
                    method,
                    path,
                    ..
                } = event_source(&function.logical_id, name, event, &apis).unwrap()
                {
                    routes.push((format!("{method} {path}"), authorization));
                }
            }
        }
        routes
    }

    #[test]
    fn the_template_routes_require_iam_unless_api_auth_is_none() {
        let default = routes(&[]);
        let open = routes(&[("ApiAuth", "NONE")]);

        assert_eq!(default.len(), 4, "{default:?}");
        assert!(default.iter().any(|(route, _)| route == "ANY $default"));
        assert!(
            default
                .iter()
                .all(|(_, auth)| *auth == RouteAuthorization::AwsIam),
            "{default:?}"
        );
        assert_eq!(open.len(), 4);
        assert!(
            open.iter()
                .all(|(_, auth)| *auth == RouteAuthorization::None),
            "{open:?}"
        );
    }

    #[test]
    fn event_auth_and_the_default_authorizer_count_too() {
        let api = serde_json::json!({"Auth": {"DefaultAuthorizer": "AWS_IAM"}});
        let none = Json::Null;
        let iam = serde_json::json!({"Authorizer": "AWS_IAM"});
        let open = serde_json::json!({"Authorizer": "NONE"});

        assert_eq!(
            route_authorization(Some(&api), "GET", "/x", &none),
            RouteAuthorization::AwsIam
        );
        assert_eq!(
            route_authorization(Some(&api), "GET", "/x", &open),
            RouteAuthorization::None
        );
        assert_eq!(
            route_authorization(None, "GET", "/x", &iam),
            RouteAuthorization::AwsIam
        );
        assert_eq!(
            route_authorization(None, "GET", "/x", &none),
            RouteAuthorization::None
        );
    }
}
