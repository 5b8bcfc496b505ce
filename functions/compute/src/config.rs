//! compute's configuration: exactly the variables template.yaml gives ComputeFunction.

use std::time::Duration;

use shared::config::{ConfigError, Env};

use crate::source::{SubjectLimits, OBJECTS_IN_FLIGHT};

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
    /// `COMPUTE_TIMEOUT_SECONDS` (default 120): the function's timeout, which the lease must
    /// outlast.
    pub timeout: Duration,
    /// `COMPUTE_MAX_OBJECTS` (10 000), `COMPUTE_MAX_BYTES` (5 GiB), `COMPUTE_MAX_DISTINCT_BUYERS`
    /// (5 000 000): a subject over one of these fails with `TOO_LARGE`.
    pub limits: SubjectLimits,
    /// `COMPUTE_OBJECTS_IN_FLIGHT` (default [`OBJECTS_IN_FLIGHT`]): a subject's objects downloaded
    /// and parsed at once.
    pub objects_in_flight: usize,
}

impl Config {
    /// Reads and checks the variables: a lease that does not outlast the timeout would let two
    /// workers run one job, so it is refused at cold start.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let defaults = SubjectLimits::default();
        let config = Self {
            scores_table: env.required("SCORES_TABLE")?,
            catalog_table: env.required("CATALOG_TABLE")?,
            result_ttl: env.seconds("RESULT_TTL_SECONDS", 86_400)?,
            lease: env.seconds("COMPUTE_LEASE_SECONDS", 150)?,
            max_receive_count: env.number("COMPUTE_MAX_RECEIVE_COUNT", 5)?,
            model_uri: env.optional("MODEL_URI"),
            model_cache_ttl: env.seconds("MODEL_CACHE_TTL_SECONDS", 300)?,
            timeout: env.seconds("COMPUTE_TIMEOUT_SECONDS", 120)?,
            limits: SubjectLimits {
                max_objects: env.positive("COMPUTE_MAX_OBJECTS", defaults.max_objects)?,
                max_bytes: env.positive("COMPUTE_MAX_BYTES", defaults.max_bytes)?,
                max_distinct_buyers: env
                    .positive("COMPUTE_MAX_DISTINCT_BUYERS", defaults.max_distinct_buyers)?,
            },
            objects_in_flight: env
                .positive("COMPUTE_OBJECTS_IN_FLIGHT", OBJECTS_IN_FLIGHT as u64)?
                as usize,
        };
        if config.lease <= config.timeout {
            return Err(ConfigError::Inconsistent(format!(
                "COMPUTE_LEASE_SECONDS ({}) must exceed COMPUTE_TIMEOUT_SECONDS ({}), or a live \
                 job could be claimed by a second worker",
                config.lease.as_secs(),
                config.timeout.as_secs()
            )));
        }
        if config.max_receive_count == 0 {
            return Err(ConfigError::Inconsistent(
                "COMPUTE_MAX_RECEIVE_COUNT must be at least 1".to_owned(),
            ));
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env {
        let required = [("SCORES_TABLE", "s"), ("CATALOG_TABLE", "c")];
        Env::from_pairs(required.into_iter().chain(pairs.iter().copied()))
    }

    #[test]
    fn the_defaults_are_consistent() {
        let config = Config::from_env(&env(&[])).unwrap();
        assert!(config.lease > config.timeout);
        assert_eq!(config.limits, SubjectLimits::default());
    }

    #[test]
    fn a_lease_that_does_not_outlast_the_timeout_is_refused_at_cold_start() {
        let err = Config::from_env(&env(&[
            ("COMPUTE_TIMEOUT_SECONDS", "300"),
            ("COMPUTE_LEASE_SECONDS", "150"),
        ]))
        .unwrap_err();
        assert!(matches!(err, ConfigError::Inconsistent(_)), "{err}");
        assert!(err.to_string().contains("COMPUTE_LEASE_SECONDS"), "{err}");
    }

    #[test]
    fn extreme_values_are_refused_with_the_variable_named() {
        for (name, value) in [
            ("COMPUTE_LEASE_SECONDS", "99999999999999"),
            ("COMPUTE_MAX_OBJECTS", "0"),
            ("COMPUTE_OBJECTS_IN_FLIGHT", "0"),
            ("RESULT_TTL_SECONDS", "-1"),
        ] {
            let err = Config::from_env(&env(&[(name, value)])).unwrap_err();
            assert!(err.to_string().contains(name), "{name}: {err}");
        }
    }
}
