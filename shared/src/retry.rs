//! The one backoff policy for in-process retries of partially processed batch calls.

use std::time::Duration;

use backon::ExponentialBuilder;

/// Exponential backoff with full jitter, as AWS recommends for BatchWriteItem/BatchGetItem
/// unprocessed items: 50 ms doubling to 2 s, at most 8 retries.
pub fn batch_backoff() -> ExponentialBuilder {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(50))
        .with_max_delay(Duration::from_secs(2))
        .with_max_times(8)
        .with_jitter()
}
