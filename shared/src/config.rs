//! Typed configuration, read from the environment once per cold start.

use std::time::Duration;

/// Everything environment-specific. Built once (`Config::from_env()`), never read inside handlers.
///
/// Fields are public so tests and the local runner can build one for their own resources.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `SCORES_TABLE`: the ScoresTable name.
    pub scores_table: String,
    /// `CATALOG_TABLE`: the CatalogTable name.
    pub catalog_table: String,
    /// `COMPUTE_TOPIC_ARN`: where `compute.requested` is published.
    pub compute_topic_arn: String,
    /// `SCORE_EVENTS_TOPIC_ARN`: where `score.completed` / `score.failed` are published.
    pub score_events_topic_arn: String,
    /// `DATA_BUCKET`: the data lake bucket.
    pub data_bucket: String,
    /// `RESULT_TTL_SECONDS` (default 1 day): how long a finished result is served.
    pub result_ttl: Duration,
    /// `FAILED_RETRY_AFTER_SECONDS` (default 60): a retryable failure is reported for this long
    /// before a plain GET starts the computation again (a refresh retries at once).
    pub failed_retry_after: Duration,
    /// `DISPATCH_TIMEOUT_SECONDS` (default 30): a pending job nobody claimed within this time is
    /// published again by the next request.
    pub dispatch_timeout: Duration,
    /// `COMPUTE_LEASE_SECONDS` (default 150, above the compute timeout): how long a claim holds.
    pub compute_lease: Duration,
    /// `COMPUTE_MAX_RECEIVE_COUNT` (default 5): the queue's maxReceiveCount; the attempt that
    /// reaches it marks the job failed instead of failing the message.
    pub compute_max_receive_count: u32,
    /// `MODEL_URI` (optional, `s3://bucket/models/name/version.json`): replaces the embedded model.
    pub model_uri: Option<String>,
    /// `MODEL_CACHE_TTL_SECONDS` (default 300): how long a loaded model is kept before reloading
    /// (with random jitter on top).
    pub model_cache_ttl: Duration,
    /// `CATALOG_TOMBSTONE_TTL_SECONDS` (default 7 days): how long a deleted object's tombstone is
    /// kept in the catalog to reject older, late events for the same key.
    pub catalog_tombstone_ttl: Duration,
}

/// A missing or unparsable variable, named.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("environment variable {0} is required but not set")]
    Missing(&'static str),
    #[error("environment variable {name} has an invalid value {value:?}: {expected}")]
    Invalid {
        name: &'static str,
        value: String,
        expected: &'static str,
    },
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads from any lookup (tests use a map).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let required = |name: &'static str| -> Result<String, ConfigError> {
            lookup(name)
                .filter(|v| !v.trim().is_empty())
                .ok_or(ConfigError::Missing(name))
        };
        let seconds = |name: &'static str, default: u64| -> Result<Duration, ConfigError> {
            parse_number(name, lookup(name), default).map(Duration::from_secs)
        };
        Ok(Self {
            scores_table: required("SCORES_TABLE")?,
            catalog_table: required("CATALOG_TABLE")?,
            compute_topic_arn: required("COMPUTE_TOPIC_ARN")?,
            score_events_topic_arn: required("SCORE_EVENTS_TOPIC_ARN")?,
            data_bucket: required("DATA_BUCKET")?,
            result_ttl: seconds("RESULT_TTL_SECONDS", 86_400)?,
            failed_retry_after: seconds("FAILED_RETRY_AFTER_SECONDS", 60)?,
            dispatch_timeout: seconds("DISPATCH_TIMEOUT_SECONDS", 30)?,
            compute_lease: seconds("COMPUTE_LEASE_SECONDS", 150)?,
            compute_max_receive_count: parse_number(
                "COMPUTE_MAX_RECEIVE_COUNT",
                lookup("COMPUTE_MAX_RECEIVE_COUNT"),
                5,
            )?,
            model_uri: lookup("MODEL_URI").filter(|v| !v.trim().is_empty()),
            model_cache_ttl: seconds("MODEL_CACHE_TTL_SECONDS", 300)?,
            catalog_tombstone_ttl: seconds("CATALOG_TOMBSTONE_TTL_SECONDS", 7 * 86_400)?,
        })
    }

    /// A config for the given resources with every tunable at its default (tests, local runner).
    pub fn with_resources(
        scores_table: impl Into<String>,
        catalog_table: impl Into<String>,
        compute_topic_arn: impl Into<String>,
        score_events_topic_arn: impl Into<String>,
        data_bucket: impl Into<String>,
    ) -> Self {
        let (a, b, c, d, e) = (
            scores_table.into(),
            catalog_table.into(),
            compute_topic_arn.into(),
            score_events_topic_arn.into(),
            data_bucket.into(),
        );
        Self::from_lookup(|name| match name {
            "SCORES_TABLE" => Some(a.clone()),
            "CATALOG_TABLE" => Some(b.clone()),
            "COMPUTE_TOPIC_ARN" => Some(c.clone()),
            "SCORE_EVENTS_TOPIC_ARN" => Some(d.clone()),
            "DATA_BUCKET" => Some(e.clone()),
            _ => None,
        })
        .expect("defaults are valid")
    }
}

fn parse_number<T: std::str::FromStr>(
    name: &'static str,
    value: Option<String>,
    default: T,
) -> Result<T, ConfigError> {
    match value.filter(|v| !v.trim().is_empty()) {
        None => Ok(default),
        Some(v) => v.trim().parse().map_err(|_| ConfigError::Invalid {
            name,
            value: v,
            expected: "a non-negative integer",
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    const REQUIRED: [(&str, &str); 5] = [
        ("SCORES_TABLE", "scores"),
        ("CATALOG_TABLE", "catalog"),
        (
            "COMPUTE_TOPIC_ARN",
            "arn:aws:sns:us-east-1:000000000000:compute",
        ),
        (
            "SCORE_EVENTS_TOPIC_ARN",
            "arn:aws:sns:us-east-1:000000000000:events",
        ),
        ("DATA_BUCKET", "data"),
    ];

    #[test]
    fn missing_variable_is_named() {
        let err = Config::from_lookup(env(&REQUIRED[1..])).unwrap_err();
        assert_eq!(err, ConfigError::Missing("SCORES_TABLE"));
        assert!(err.to_string().contains("SCORES_TABLE"));
    }

    #[test]
    fn defaults_apply_and_overrides_parse() {
        let config = Config::from_lookup(env(&REQUIRED)).unwrap();
        assert_eq!(config.result_ttl, Duration::from_secs(86_400));
        assert_eq!(config.compute_max_receive_count, 5);
        assert_eq!(config.model_uri, None);

        let mut pairs = REQUIRED.to_vec();
        pairs.push(("COMPUTE_MAX_RECEIVE_COUNT", "7"));
        pairs.push(("MODEL_URI", "s3://b/models/fraud/2.json"));
        let config = Config::from_lookup(env(&pairs)).unwrap();
        assert_eq!(config.compute_max_receive_count, 7);
        assert_eq!(
            config.model_uri.as_deref(),
            Some("s3://b/models/fraud/2.json")
        );
    }

    #[test]
    fn invalid_number_is_reported() {
        let mut pairs = REQUIRED.to_vec();
        pairs.push(("RESULT_TTL_SECONDS", "a day"));
        let err = Config::from_lookup(env(&pairs)).unwrap_err();
        assert!(matches!(
            err,
            ConfigError::Invalid {
                name: "RESULT_TTL_SECONDS",
                ..
            }
        ));
    }
}
