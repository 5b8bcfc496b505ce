//! `GET /v1/scores/{subject_id}`: every state of the record, races, lost messages, publish
//! failure, expiry, staleness, failures and the `?wait=N` long-poll.

use std::time::Duration;

use request_api::Clock;
use shared::domain::{RequestReason, SubjectId};

use crate::common::*;

#[tokio::test]
async fn a_new_subject_starts_a_job_and_answers_202_at_once() {
    let h = Harness::new().await;

    let reply = h.call(&event("get-score")).await;

    assert_eq!(reply.status, 202, "{reply:#?}");
    assert_eq!(reply.status_field(), "started");
    assert_eq!(reply.body["subject_id"], "shop-42");
    assert_eq!(reply.body["reason"], "miss");
    assert_eq!(reply.header("location"), Some("/v1/scores/shop-42"));
    assert_eq!(reply.header("retry-after"), Some("2"));
    let record = h.record("shop-42").await.expect("the job is recorded");
    assert_eq!(record.job_id.to_string(), reply.job_id());
    assert_eq!(record.status.as_str(), "pending");
    let published = h.published(1).await;
    assert_eq!(published.len(), 1);
    assert_eq!(published[0].job_id.to_string(), reply.job_id());
    assert_eq!(published[0].subject_id.as_str(), "shop-42");
    assert_eq!(published[0].reason, RequestReason::Miss);
    assert_eq!(
        published[0].trace_id.as_deref(),
        Some("Root=1-67a1b2c3-0123456789abcdef01234567"),
        "the API Gateway trace header travels with the job"
    );
}

#[tokio::test]
async fn a_pending_or_running_job_is_reported_without_a_second_publish() {
    let h = Harness::new().await;
    let first = h.get("shop-1").await;
    assert_eq!(h.published(1).await.len(), 1);

    let again = h.get("shop-1").await;
    h.claim(&SubjectId::parse("shop-1").unwrap(), &first.job_id())
        .await;
    let running = h.get("shop-1").await;

    assert_eq!(again.status, 202);
    assert_eq!(again.status_field(), "pending");
    assert_eq!(again.job_id(), first.job_id());
    assert_eq!(running.status, 202);
    assert_eq!(running.status_field(), "running");
    assert_eq!(running.job_id(), first.job_id());
    assert!(running.body["started_at"].is_string());
    assert!(
        h.published(0).await.is_empty(),
        "no second compute.requested"
    );
}

#[tokio::test]
async fn a_done_result_is_200_with_the_result() {
    let h = Harness::new().await;
    let started = h.get("shop-2").await;
    h.complete("shop-2", &started.job_id()).await;

    let reply = h.get("shop-2").await;

    assert_eq!(reply.status, 200, "{reply:#?}");
    assert_eq!(reply.content_type(), "application/json");
    let body = &reply.body;
    assert_eq!(body["status"], "done");
    assert_eq!(body["job_id"], started.job_id().as_str());
    assert_eq!(body["score"], 0.83);
    assert_eq!(body["band"], "high");
    assert_eq!(body["reasons"][0]["feature"], "chargeback_rate");
    assert_eq!(body["model_version"], "test-model-1");
    assert!(body["computed_at"].is_string());
    assert!(body["expires_at"].is_string());
    assert!(reply.header("location").is_none());
    assert!(reply.header("retry-after").is_none());
}

#[tokio::test]
async fn concurrent_first_requests_create_exactly_one_job_and_one_message() {
    let h = Harness::new().await;
    const N: usize = 12;

    let replies = futures::future::join_all((0..N).map(|_| h.get("shop-race"))).await;

    assert!(replies.iter().all(|r| r.status == 202), "{replies:#?}");
    let job_ids: std::collections::BTreeSet<String> = replies.iter().map(|r| r.job_id()).collect();
    assert_eq!(job_ids.len(), 1, "one job for all: {job_ids:?}");
    let started = replies
        .iter()
        .filter(|r| r.status_field() == "started")
        .count();
    assert_eq!(started, 1, "exactly one request created the job");
    let published = h.published(1).await;
    assert_eq!(published.len(), 1, "{published:?}");
    assert_eq!(
        published[0].job_id.to_string(),
        *job_ids.iter().next().unwrap()
    );
}

#[tokio::test]
async fn a_lost_message_is_published_again_after_the_dispatch_timeout() {
    let h = Harness::new().await;
    let first = h.get("shop-lost").await;
    assert_eq!(h.published(1).await.len(), 1);
    // The message is lost: nobody claims the job.

    h.clock
        .advance(h.deps.config.dispatch_timeout - Duration::from_secs(1));
    let early = h.get("shop-lost").await;
    assert!(h.published(0).await.is_empty(), "not before the timeout");
    h.clock.advance(Duration::from_secs(1));
    let replies = futures::future::join_all((0..4).map(|_| h.get("shop-lost"))).await;

    assert_eq!(early.status_field(), "pending");
    for reply in &replies {
        assert_eq!(reply.status, 202);
        assert_eq!(reply.status_field(), "pending");
        assert_eq!(reply.job_id(), first.job_id(), "still one job");
    }
    let published = h.published(1).await;
    assert_eq!(
        published.len(),
        1,
        "one re-dispatch among concurrent requests"
    );
    assert_eq!(published[0].reason, RequestReason::Redispatch);
    assert_eq!(published[0].job_id.to_string(), first.job_id());
}

#[tokio::test]
async fn a_running_job_whose_worker_died_is_published_again_after_its_lease() {
    let h = Harness::new().await;
    let first = h.get("shop-died").await;
    h.published(1).await;
    h.claim(&SubjectId::parse("shop-died").unwrap(), &first.job_id())
        .await;

    h.clock.advance(COMPUTE_LEASE - Duration::from_secs(1));
    let within_lease = h.get("shop-died").await;
    assert!(h.published(0).await.is_empty());
    h.clock.advance(Duration::from_secs(2));
    let after_lease = h.get("shop-died").await;

    assert_eq!(within_lease.status_field(), "running");
    assert_eq!(after_lease.status, 202);
    assert_eq!(after_lease.job_id(), first.job_id());
    let published = h.published(1).await;
    assert_eq!(published.len(), 1);
    assert_eq!(published[0].reason, RequestReason::Redispatch);
}

#[tokio::test]
async fn a_failed_publish_is_503_and_the_job_is_dispatched_by_a_later_request() {
    let h = Harness::new().await;
    let broken = h.deps_with_broken_topic();

    let failed = call(&broken, request(&get_event("shop-pub", ""))).await;

    let detail = failed.assert_problem(503);
    assert_eq!(failed.body["type"], "/problems/dispatch-failed");
    let retry_after = h.deps.config.dispatch_timeout.as_secs().to_string();
    assert_eq!(failed.header("retry-after"), Some(retry_after.as_str()));
    assert!(!detail.contains("arn:"), "no internal detail: {detail}");
    let record = h.record("shop-pub").await.expect("the job stays recorded");
    assert_eq!(record.status.as_str(), "pending");
    assert!(h.published(0).await.is_empty());

    // Asking again at once: the job is there, not yet due for re-dispatch.
    let soon = h.get("shop-pub").await;
    assert_eq!(soon.status, 202);
    assert_eq!(soon.job_id(), record.job_id.to_string());
    assert!(h.published(0).await.is_empty());

    // After the dispatch timeout the next request publishes it.
    h.clock.advance(h.deps.config.dispatch_timeout);
    let later = h.get("shop-pub").await;
    assert_eq!(later.status, 202);
    assert_eq!(later.job_id(), record.job_id.to_string());
    let published = h.published(1).await;
    assert_eq!(published.len(), 1);
    assert_eq!(published[0].job_id, record.job_id);
    assert_eq!(published[0].reason, RequestReason::Redispatch);
}

#[tokio::test]
async fn an_expired_result_counts_as_absent() {
    let h = Harness::new().await;
    let first = h.get("shop-exp").await;
    h.complete("shop-exp", &first.job_id()).await;
    h.published(1).await;
    assert_eq!(h.get("shop-exp").await.status, 200);

    h.clock
        .advance(h.deps.config.result_ttl + Duration::from_secs(1));
    let reply = h.get("shop-exp").await;

    assert_eq!(reply.status, 202);
    assert_eq!(reply.status_field(), "started");
    assert_ne!(reply.job_id(), first.job_id(), "a new job");
    assert_eq!(reply.body["reason"], "miss");
    let published = h.published(1).await;
    assert_eq!(published.len(), 1);
    assert_eq!(published[0].reason, RequestReason::Miss);
}

#[tokio::test]
async fn a_stale_result_starts_a_new_job_with_reason_stale() {
    let h = Harness::new().await;
    let first = h.get("shop-stale").await;
    h.complete("shop-stale", &first.job_id()).await;
    h.published(1).await;
    assert!(h
        .deps
        .store
        .mark_stale(&SubjectId::parse("shop-stale").unwrap())
        .await
        .unwrap());

    let reply = h.get("shop-stale").await;

    assert_eq!(reply.status, 202);
    assert_eq!(reply.status_field(), "started");
    assert_ne!(reply.job_id(), first.job_id());
    assert_eq!(reply.body["reason"], "stale");
    let published = h.published(1).await;
    assert_eq!(published.len(), 1);
    assert_eq!(published[0].reason, RequestReason::Stale);
}

#[tokio::test]
async fn a_retryable_failure_is_reported_then_retried_after_failed_retry_after() {
    let h = Harness::new().await;
    let first = h.get("shop-fail").await;
    h.published(1).await;
    h.fail("shop-fail", &first.job_id(), true).await;

    let reported = h.get("shop-fail").await;
    h.clock
        .advance(h.deps.config.failed_retry_after + Duration::from_secs(1));
    let retried = h.get("shop-fail").await;

    assert_eq!(reported.status, 200, "a finished state is a 200");
    assert_eq!(reported.status_field(), "failed");
    assert_eq!(reported.body["error"]["code"], "MODEL_ERROR");
    assert_eq!(reported.body["error"]["retryable"], true);
    assert!(reported.body["failed_at"].is_string());
    assert!(reported.body.get("score").is_none());
    assert_eq!(retried.status, 202);
    assert_eq!(retried.status_field(), "started");
    assert_ne!(retried.job_id(), first.job_id());
    assert_eq!(h.published(1).await.len(), 1);
}

#[tokio::test]
async fn a_non_retryable_failure_is_reported_until_it_expires() {
    let h = Harness::new().await;
    let first = h.get("shop-perm").await;
    h.published(1).await;
    h.fail("shop-perm", &first.job_id(), false).await;

    h.clock.advance(h.deps.config.failed_retry_after * 10);
    let reply = h.get("shop-perm").await;

    assert_eq!(reply.status, 200);
    assert_eq!(reply.status_field(), "failed");
    assert_eq!(reply.body["error"]["retryable"], false);
    assert_eq!(reply.job_id(), first.job_id());
    assert!(h.published(0).await.is_empty());
}

#[tokio::test]
async fn wait_returns_200_when_the_job_completes_meanwhile() {
    let h = Harness::new().await;
    let deps = h.deps.clone();
    let clock = h.clock.clone();
    let worker = tokio::spawn(async move {
        // A worker picks the job up once it exists, and completes it.
        let subject = SubjectId::parse("shop-42").unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(record) = deps.store.get(&subject, clock.now()).await.unwrap() {
                return complete(&deps, &clock, "shop-42", &record.job_id.to_string()).await;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the job never appeared"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });

    let reply = h.call(&event("get-score-wait")).await;

    let completed = worker.await.unwrap();
    assert_eq!(reply.status, 200, "{reply:#?}");
    assert_eq!(reply.status_field(), "done");
    assert_eq!(reply.job_id(), completed.job_id.to_string());
    assert_eq!(h.published(1).await.len(), 1);
}

#[tokio::test]
async fn wait_answers_202_when_nothing_finishes_in_time() {
    let h = Harness::new().await;

    let reply = h.call(&get_event("shop-slow", "wait=1")).await;

    assert_eq!(reply.status, 202);
    assert_eq!(reply.status_field(), "started");
    assert_eq!(reply.header("location"), Some("/v1/scores/shop-slow"));
}

#[tokio::test]
async fn wait_on_a_finished_result_answers_at_once() {
    let h = Harness::new().await;
    let first = h.get("shop-w").await;
    h.complete("shop-w", &first.job_id()).await;

    let started = std::time::Instant::now();
    let reply = h.call(&get_event("shop-w", "wait=20")).await;

    assert_eq!(reply.status, 200);
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "did not sit out the wait"
    );
}

#[tokio::test]
async fn a_named_stage_is_routed_and_kept_in_location() {
    let h = Harness::new().await;
    let mut e = get_event("shop-st", "");
    e["rawPath"] = "/prod/v1/scores/shop-st".into();
    e["requestContext"]["stage"] = "prod".into();

    let reply = h.call(&e).await;

    assert_eq!(reply.status, 202);
    assert_eq!(reply.header("location"), Some("/prod/v1/scores/shop-st"));
}

#[tokio::test]
async fn a_plain_http_request_without_lambda_extensions_is_served() {
    let h = Harness::new().await;
    let request = http::Request::builder()
        .method("GET")
        .uri("/v1/scores/shop%2D9?wait=0")
        .body(lambda_http::Body::Empty)
        .unwrap();

    let reply = call(&h.deps, request).await;

    assert_eq!(reply.status, 202, "{reply:#?}");
    assert_eq!(
        reply.body["subject_id"], "shop-9",
        "the URI path is percent-decoded"
    );
    assert_eq!(h.published(1).await.len(), 1);
}
