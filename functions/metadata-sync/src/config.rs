//! metadata-sync's configuration: exactly the variables template.yaml gives MetadataSyncFunction.

use std::time::Duration;

use shared::config::{ConfigError, Env};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `CATALOG_TABLE`: where object metadata is written.
    pub catalog_table: String,
    /// `SCORES_TABLE`: scores of subjects whose data changed are marked stale there.
    pub scores_table: String,
    /// `DATA_BUCKET`: events of other buckets are ignored.
    pub data_bucket: String,
    /// `CATALOG_TOMBSTONE_TTL_SECONDS` (default 7 days): how long a deleted object's tombstone
    /// is kept to reject older, late events for the same key.
    pub tombstone_ttl: Duration,
}

impl Config {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            catalog_table: env.required("CATALOG_TABLE")?,
            scores_table: env.required("SCORES_TABLE")?,
            data_bucket: env.required("DATA_BUCKET")?,
            tombstone_ttl: env.seconds("CATALOG_TOMBSTONE_TTL_SECONDS", 7 * 86_400)?,
        })
    }
}
