//! Where "now" comes from. Every store call takes the time as an argument, so a test that wants
//! to see expiry, the dispatch timeout or `failed_retry_after` at work supplies a [`Clock`] of
//! its own that it moves instead of sleeping.
//!
//! Only the *domain* time comes from here; the `?wait=N` long-poll measures its own deadline
//! with tokio's monotonic clock.

use chrono::{DateTime, Utc};

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;
}

/// The wall clock (production).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}
