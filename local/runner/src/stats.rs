//! What the runner measured per function: invocations, outcomes, and peak concurrency (the
//! end-to-end tests check MaximumConcurrency against it).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

#[derive(Debug, Default)]
pub struct FunctionStats {
    pub invocations: AtomicU64,
    /// Invocations that returned an error (the whole batch is retried).
    pub errors: AtomicU64,
    /// Messages/records reported in partial batch responses.
    pub item_failures: AtomicU64,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

impl FunctionStats {
    /// Counts an invocation as running until the guard is dropped.
    fn enter(self: &Arc<Self>) -> InFlight {
        self.invocations.fetch_add(1, Ordering::SeqCst);
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        InFlight(self.clone())
    }

    /// Runs one invocation as Lambda would: counted as in flight while it runs, and cut off
    /// at the function's timeout.
    pub async fn invoke<F: std::future::Future>(
        self: &Arc<Self>,
        timeout: std::time::Duration,
        invocation: F,
    ) -> Result<F::Output, tokio::time::error::Elapsed> {
        let _running = self.enter();
        tokio::time::timeout(timeout, invocation).await
    }

    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight.load(Ordering::SeqCst)
    }

    pub fn invocations(&self) -> u64 {
        self.invocations.load(Ordering::SeqCst)
    }
}

struct InFlight(Arc<FunctionStats>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Stats of every function, by logical id.
#[derive(Debug, Default, Clone)]
pub struct Stats(pub BTreeMap<String, Arc<FunctionStats>>);

impl Stats {
    pub fn function(&self, logical_id: &str) -> Arc<FunctionStats> {
        self.0.get(logical_id).cloned().unwrap_or_default()
    }
}
