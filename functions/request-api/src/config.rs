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
    /// worker's lease passed) is published again by the next request; each further re-dispatch
    /// of the same job waits twice as long (up to 32 times this).
    pub dispatch_timeout: Duration,
    /// `NO_DATA_RETRY_AFTER_SECONDS` (default 1 hour): how long a `NO_DATA` failure is served
    /// before a plain GET tries again (made-up subject ids must not start a job a minute).
    pub no_data_retry_after: Duration,
    /// `REQUEST_MAX_JOB_STARTS` (default 10): the most jobs one batch-get starts; the other
    /// subjects that need one are answered `deferred`, to ask again.
    pub max_job_starts: usize,
    /// `COMPUTE_QUEUE_URL`: its depth is read before a re-dispatch.
    pub compute_queue_url: String,
    /// `REDISPATCH_MAX_QUEUE_DEPTH` (default 100): while ComputeQueue holds more messages than
    /// this, nothing is re-dispatched (the job's message is most likely waiting in the queue).
    pub redispatch_max_queue_depth: u64,
}

impl Config {
    /// Reads and checks the variables; settings that contradict each other are refused at cold
    /// start, naming both.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let config = Self {
            scores_table: env.required("SCORES_TABLE")?,
            compute_topic_arn: env.required("COMPUTE_TOPIC_ARN")?,
            result_ttl: env.seconds("RESULT_TTL_SECONDS", 86_400)?,
            failed_retry_after: env.seconds("FAILED_RETRY_AFTER_SECONDS", 60)?,
            dispatch_timeout: env.seconds("DISPATCH_TIMEOUT_SECONDS", 30)?,
            no_data_retry_after: env.seconds("NO_DATA_RETRY_AFTER_SECONDS", 3_600)?,
            max_job_starts: env.positive("REQUEST_MAX_JOB_STARTS", 10)? as usize,
            compute_queue_url: env.required("COMPUTE_QUEUE_URL")?,
            redispatch_max_queue_depth: env.number("REDISPATCH_MAX_QUEUE_DEPTH", 100)?,
        };
        for (name, value) in [
            ("DISPATCH_TIMEOUT_SECONDS", config.dispatch_timeout),
            ("FAILED_RETRY_AFTER_SECONDS", config.failed_retry_after),
            ("NO_DATA_RETRY_AFTER_SECONDS", config.no_data_retry_after),
        ] {
            if value >= config.result_ttl {
                return Err(ConfigError::Inconsistent(format!(
                    "{name} ({}) must be shorter than RESULT_TTL_SECONDS ({}): a job's item \
                     expires before it would take effect",
                    value.as_secs(),
                    config.result_ttl.as_secs()
                )));
            }
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env {
        let required = [
            ("SCORES_TABLE", "s"),
            ("COMPUTE_TOPIC_ARN", "arn:t"),
            ("COMPUTE_QUEUE_URL", "http://queue"),
        ];
        Env::from_pairs(required.into_iter().chain(pairs.iter().copied()))
    }

    #[test]
    fn the_defaults_are_consistent() {
        let config = Config::from_env(&env(&[])).unwrap();
        assert_eq!(config.max_job_starts, 10);
        assert!(config.dispatch_timeout < config.result_ttl);
    }

    #[test]
    fn settings_that_contradict_each_other_are_refused_at_cold_start() {
        let err = Config::from_env(&env(&[
            ("RESULT_TTL_SECONDS", "60"),
            ("DISPATCH_TIMEOUT_SECONDS", "600"),
        ]))
        .unwrap_err();
        assert!(
            err.to_string().contains("DISPATCH_TIMEOUT_SECONDS"),
            "{err}"
        );
        let err = Config::from_env(&env(&[("REQUEST_MAX_JOB_STARTS", "0")])).unwrap_err();
        assert!(err.to_string().contains("REQUEST_MAX_JOB_STARTS"), "{err}");
    }
}
