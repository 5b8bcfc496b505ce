//! What the runner measured per function: invocations, outcomes, throttles and peak concurrency
//! (the end-to-end tests check MaximumConcurrency against it).

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
    /// Invocations refused because the function was at its reserved concurrency (not counted in
    /// `invocations`): Lambda's `Throttles` metric.
    pub throttles: AtomicU64,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

impl FunctionStats {
    /// Counts an invocation as running until the guard is dropped, unless `limit` invocations
    /// are running already (then `None`, counted as a throttle).
    fn enter(self: &Arc<Self>, limit: Option<usize>) -> Option<InFlight> {
        let limit = limit.unwrap_or(usize::MAX);
        let Ok(before) = self
            .in_flight
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < limit).then_some(n + 1)
            })
        else {
            self.throttles.fetch_add(1, Ordering::SeqCst);
            return None;
        };
        self.invocations.fetch_add(1, Ordering::SeqCst);
        self.max_in_flight.fetch_max(before + 1, Ordering::SeqCst);
        Some(InFlight(self.clone()))
    }

    /// Runs one invocation as Lambda would: counted as in flight while it runs, and cut off
    /// at the function's timeout.
    pub async fn invoke<F: std::future::Future>(
        self: &Arc<Self>,
        timeout: std::time::Duration,
        invocation: F,
    ) -> Result<F::Output, tokio::time::error::Elapsed> {
        let _running = self.enter(None).expect("no limit, never throttled");
        tokio::time::timeout(timeout, invocation).await
    }

    /// [`invoke`](Self::invoke) for a function with a reserved concurrency: throttled (`None`,
    /// not run) when `reserved` invocations are already in flight, as Lambda refuses it.
    pub async fn invoke_within<F: std::future::Future>(
        self: &Arc<Self>,
        reserved: Option<usize>,
        timeout: std::time::Duration,
        invocation: F,
    ) -> Option<Result<F::Output, tokio::time::error::Elapsed>> {
        let _running = self.enter(reserved)?;
        Some(tokio::time::timeout(timeout, invocation).await)
    }

    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight.load(Ordering::SeqCst)
    }

    pub fn invocations(&self) -> u64 {
        self.invocations.load(Ordering::SeqCst)
    }

    pub fn throttles(&self) -> u64 {
        self.throttles.load(Ordering::SeqCst)
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn an_invocation_beyond_the_reserved_concurrency_is_throttled_not_run() {
        let stats = Arc::new(FunctionStats::default());
        let (release, hold) = tokio::sync::oneshot::channel::<()>();
        let first = {
            let stats = stats.clone();
            tokio::spawn(async move {
                stats
                    .invoke_within(Some(1), Duration::from_secs(5), hold)
                    .await
            })
        };
        while stats.in_flight.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }

        let refused = stats
            .invoke_within(Some(1), Duration::from_secs(5), async { unreachable!() })
            .await;
        release.send(()).unwrap();
        let ran = first.await.unwrap();
        let after = stats
            .invoke_within(Some(1), Duration::from_secs(5), async { 7 })
            .await;

        assert!(refused.is_none(), "throttled, and its future never ran");
        assert!(ran.is_some());
        assert_eq!(after.map(Result::unwrap), Some(7), "a slot is free again");
        assert_eq!(stats.throttles(), 1);
        assert_eq!(stats.invocations(), 2);
        assert_eq!(stats.max_in_flight(), 1);
    }
}
