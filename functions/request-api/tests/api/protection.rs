//! What keeps one caller, or a backlog, from exhausting compute and the account: a per-request
//! job-start budget, a long retry delay for NO_DATA, re-dispatches that back off and that wait
//! while the queue is backed up. Each test failed on the code before these protections.

use std::time::Duration;

use shared::domain::{ErrorCode, JobError};

use crate::common::*;

#[tokio::test]
async fn one_batch_get_starts_at_most_the_budget_and_defers_the_rest() {
    // Arrange
    let h = Harness::new().await;
    let budget = h.deps.config.max_job_starts;
    let ids: Vec<String> = (0..budget + 5).map(|i| format!("shop-many-{i}")).collect();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();

    // Act
    let reply = h.batch(&refs).await;

    // Assert
    assert_eq!(reply.status, 200);
    let results = reply.body["results"].as_array().unwrap();
    let started = results.iter().filter(|r| r["status"] == "started").count();
    let deferred: Vec<&serde_json::Value> = results
        .iter()
        .filter(|r| r["status"] == "deferred")
        .collect();
    assert_eq!((started, deferred.len()), (budget, 5));
    assert!(deferred
        .iter()
        .all(|r| r["retry_after_seconds"].as_u64() > Some(0)));
    assert_eq!(
        h.published(budget).await.len(),
        budget,
        "only the started jobs are queued"
    );

    // Act: asking again starts the deferred ones.
    let again = h.batch(&refs).await;
    let statuses: Vec<&str> = again.body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses.iter().filter(|s| **s == "started").count(), 5);
}

#[tokio::test]
async fn a_subject_without_data_is_not_recomputed_for_an_hour() {
    // Arrange: a made-up id, computed once: NO_DATA (retryable: data may arrive later).
    let h = Harness::new().await;
    let first = h.get("shop-made-up").await;
    h.published(1).await;
    let no_data = JobError::new(ErrorCode::NoData, "no transactions");
    h.fail_with("shop-made-up", &first.job_id(), no_data).await;

    // Act
    h.clock
        .advance(h.deps.config.failed_retry_after + Duration::from_secs(1));
    let after_a_minute = h.get("shop-made-up").await;
    h.clock.advance(h.deps.config.no_data_retry_after);
    let after_an_hour = h.get("shop-made-up").await;

    // Assert
    assert_eq!(after_a_minute.status, 200);
    assert_eq!(after_a_minute.body["error"]["code"], "NO_DATA");
    assert_eq!(after_an_hour.status, 202);
    assert_ne!(after_an_hour.job_id(), first.job_id());
    assert_eq!(h.published(1).await.len(), 1, "one new job, after the hour");
}

#[tokio::test]
async fn re_dispatches_of_one_job_wait_twice_as_long_each_time() {
    // Arrange: a job whose messages keep getting lost.
    let h = Harness::new().await;
    let first = h.get("shop-unlucky").await;
    h.published(1).await;
    let timeout = h.deps.config.dispatch_timeout;
    let second = Duration::from_secs(1);

    // Act + Assert: re-dispatched after 1, then 2, then 4 timeouts.
    let mut published = Vec::new();
    for (wait, expect) in [
        (timeout + second, 1),
        (timeout, 0),
        (timeout, 1),
        (timeout * 3, 0),
        (timeout + second, 1),
    ] {
        h.clock.advance(wait);
        let reply = h.get("shop-unlucky").await;
        assert_eq!(reply.job_id(), first.job_id());
        let now = h.published(expect).await;
        assert_eq!(now.len(), expect, "after another {wait:?}");
        published.extend(now);
    }
    assert_eq!(h.record("shop-unlucky").await.unwrap().dispatches, 4);
}

#[tokio::test]
async fn nothing_is_re_dispatched_while_the_compute_queue_is_backed_up() {
    // Arrange: the job's message waits in the queue (nobody drains it), and any waiting
    // message counts as a backlog.
    let h = Harness::new().await;
    let mut config = h.deps.config.clone();
    config.redispatch_max_queue_depth = 0;
    let deps = request_api::Deps::new(&config, &h.env.function_sdk("RequestApiFunction"))
        .with_clock(h.clock.clone());
    let first = call(&deps, request(&get_event("shop-queued", ""))).await;

    // Act
    h.clock.advance(config.dispatch_timeout * 10);
    let later = call(&deps, request(&get_event("shop-queued", ""))).await;

    // Assert: still the first message only.
    assert_eq!(later.status, 202);
    assert_eq!(later.job_id(), first.job_id());
    assert_eq!(h.published(1).await.len(), 1);
    assert_eq!(h.record("shop-queued").await.unwrap().dispatches, 1);
}
