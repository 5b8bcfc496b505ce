//! notifier's configuration: exactly the variables template.yaml gives NotifierFunction.

use shared::config::{ConfigError, Env};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `SCORE_EVENTS_TOPIC_ARN`: where `score.completed` / `score.failed` are published.
    pub score_events_topic_arn: String,
}

impl Config {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            score_events_topic_arn: env.required("SCORE_EVENTS_TOPIC_ARN")?,
        })
    }
}
