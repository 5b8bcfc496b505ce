//! request-api's configuration: exactly the variables template.yaml gives RequestApiFunction.

use std::time::Duration;

use shared::config::{ConfigError, Env};

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `SCORES_TABLE`: results are read and jobs created there.
    pub scores_table: String,
    /// `COMPUTE_TOPIC_ARN`: where `compute.requested` is published.
    pub compute_topic_arn: String,
    /// `RESULT_TTL_SECONDS` (default 1 day): the TTL a new job's item starts with.
    pub result_ttl: Duration,
    /// `FAILED_RETRY_AFTER_SECONDS` (default 60): a retryable failure is reported for this long
    /// before a plain GET starts the computation again (a refresh retries at once).
    pub failed_retry_after: Duration,
    /// `DISPATCH_TIMEOUT_SECONDS` (default 30): a job nobody claimed within this time (or whose
    /// worker's lease passed) is published again by the next request.
    pub dispatch_timeout: Duration,
}

impl Config {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            scores_table: env.required("SCORES_TABLE")?,
            compute_topic_arn: env.required("COMPUTE_TOPIC_ARN")?,
            result_ttl: env.seconds("RESULT_TTL_SECONDS", 86_400)?,
            failed_retry_after: env.seconds("FAILED_RETRY_AFTER_SECONDS", 60)?,
            dispatch_timeout: env.seconds("DISPATCH_TIMEOUT_SECONDS", 30)?,
        })
    }
}
