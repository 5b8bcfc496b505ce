//! compute's configuration: exactly the variables template.yaml gives ComputeFunction.

use std::time::Duration;

use shared::config::{ConfigError, Env};

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `SCORES_TABLE`: jobs are claimed and finished there.
    pub scores_table: String,
    /// `CATALOG_TABLE`: lists a subject's data lake objects.
    pub catalog_table: String,
    /// `RESULT_TTL_SECONDS` (default 1 day): how long a finished result is served.
    pub result_ttl: Duration,
    /// `COMPUTE_LEASE_SECONDS` (default 150, above the function timeout): how long a claim holds.
    pub lease: Duration,
    /// `COMPUTE_MAX_RECEIVE_COUNT` (default 5): the queue's maxReceiveCount; the attempt that
    /// reaches it marks the job failed.
    pub max_receive_count: u32,
    /// `MODEL_URI` (optional, `s3://bucket/models/name/version.json`): replaces the embedded model.
    pub model_uri: Option<String>,
    /// `MODEL_CACHE_TTL_SECONDS` (default 300): how long a loaded model is kept before it is
    /// loaded again (with random jitter on top).
    pub model_cache_ttl: Duration,
}

impl Config {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            scores_table: env.required("SCORES_TABLE")?,
            catalog_table: env.required("CATALOG_TABLE")?,
            result_ttl: env.seconds("RESULT_TTL_SECONDS", 86_400)?,
            lease: env.seconds("COMPUTE_LEASE_SECONDS", 150)?,
            max_receive_count: env.number("COMPUTE_MAX_RECEIVE_COUNT", 5)?,
            model_uri: env.optional("MODEL_URI"),
            model_cache_ttl: env.seconds("MODEL_CACHE_TTL_SECONDS", 300)?,
        })
    }
}
