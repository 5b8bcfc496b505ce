//! Each function runs locally as its own IAM principal, with exactly the permissions its Lambda
//! execution role has in AWS: the template's inline policy statements (ARNs resolved to the
//! emulator's resources) and what SAM attaches for the function's event sources. The emulator
//! enforces IAM (local/moto_server.py), so a call the template does not allow fails here with
//! AccessDenied, as it would in AWS.
//!
//! Lambda's execution role is assumed by the service; locally it is an IAM user with the same
//! policy and an access key, because moto evaluates a user's policies the same way and the
//! runner needs long-lived keys.

use aws_config::SdkConfig;
use aws_sdk_dynamodb::config::{Credentials, SharedCredentialsProvider};
use serde_json::{json, Value as Json};

use crate::provision::{EventSource, ProvisionError};

/// The access key of a function's principal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionCredentials {
    pub user_name: String,
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl FunctionCredentials {
    /// `base` (endpoint, region) signed as this function.
    pub fn sdk_config(&self, base: &SdkConfig) -> SdkConfig {
        base.to_builder()
            .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
                &self.access_key_id,
                &self.secret_access_key,
                None,
                None,
                "emulator-function-principal",
            )))
            .build()
    }
}

/// AWS managed policies SAM attaches to every function's role, and per event source type, as
/// their documents read (AWS managed policy reference). Resource `*`, as in AWS.
const BASIC_EXECUTION: &[&str] = &[
    "logs:CreateLogGroup",
    "logs:CreateLogStream",
    "logs:PutLogEvents",
];
const SQS_QUEUE_EXECUTION: &[&str] = &[
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:GetQueueAttributes",
];
const DYNAMODB_EXECUTION: &[&str] = &[
    "dynamodb:DescribeStream",
    "dynamodb:GetRecords",
    "dynamodb:GetShardIterator",
    "dynamodb:ListStreams",
];

/// The function's execution-role policy document: the `Policies` of its (resolved) properties,
/// which must be inline policy documents, plus SAM's additions for `events`.
pub fn function_policy(
    logical_id: &str,
    resolved_policies: &Json,
    events: &[EventSource],
) -> Result<Json, ProvisionError> {
    let mut statements = Vec::new();
    for policy in resolved_policies.as_array().into_iter().flatten() {
        match &policy["Statement"] {
            Json::Array(list) => statements.extend(list.iter().cloned()),
            Json::Object(_) => statements.push(policy["Statement"].clone()),
            _ => {
                return Err(ProvisionError::Invalid {
                    logical_id: logical_id.to_owned(),
                    message: format!(
                        "policy {policy} is not an inline policy document; the local emulator \
                         grants only inline statements (write SAM policy templates and managed \
                         policies out as statements)"
                    ),
                })
            }
        }
    }
    statements.push(allow("SamBasicExecution", BASIC_EXECUTION, json!("*")));
    for event in events {
        match event {
            EventSource::Sqs { .. } => {
                statements.push(allow("SamSqsPoller", SQS_QUEUE_EXECUTION, json!("*")))
            }
            EventSource::DynamoDb {
                on_failure_destination_arn,
                ..
            } => {
                statements.push(allow("SamStreamReader", DYNAMODB_EXECUTION, json!("*")));
                if let Some(destination) = on_failure_destination_arn {
                    statements.push(allow(
                        "SamOnFailureDestination",
                        &["sqs:SendMessage"],
                        json!(destination),
                    ));
                }
            }
            EventSource::HttpApi { .. } => {}
        }
    }
    Ok(json!({"Version": "2012-10-17", "Statement": statements}))
}

fn allow(sid: &str, actions: &[&str], resource: Json) -> Json {
    json!({"Sid": sid, "Effect": "Allow", "Action": actions, "Resource": resource})
}

/// Creates the IAM user `user_name` with `policy` as its only permissions, and an access key.
pub async fn create_principal(
    iam: &aws_sdk_iam::Client,
    logical_id: &str,
    user_name: &str,
    policy: &Json,
) -> Result<FunctionCredentials, ProvisionError> {
    let failed = |e: aws_sdk_iam::Error| ProvisionError::Aws {
        logical_id: logical_id.to_owned(),
        source: Box::new(e),
    };
    iam.create_user()
        .user_name(user_name)
        .send()
        .await
        .map_err(|e| failed(e.into()))?;
    iam.put_user_policy()
        .user_name(user_name)
        .policy_name("execution-role")
        .policy_document(policy.to_string())
        .send()
        .await
        .map_err(|e| failed(e.into()))?;
    let key = iam
        .create_access_key()
        .user_name(user_name)
        .send()
        .await
        .map_err(|e| failed(e.into()))?
        .access_key
        .ok_or_else(|| ProvisionError::Invalid {
            logical_id: logical_id.to_owned(),
            message: "IAM returned no access key".into(),
        })?;
    Ok(FunctionCredentials {
        user_name: user_name.to_owned(),
        access_key_id: key.access_key_id,
        secret_access_key: key.secret_access_key,
    })
}
