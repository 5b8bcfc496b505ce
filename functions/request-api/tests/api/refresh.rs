//! `POST /v1/scores/{subject_id}/refresh`.

use shared::domain::{RequestReason, SubjectId};

use crate::common::*;

#[tokio::test]
async fn refresh_replaces_a_done_result_with_a_new_job() {
    let h = Harness::new().await;
    let first = h.get("shop-42").await;
    h.complete("shop-42", &first.job_id()).await;
    h.published(1).await;

    let reply = h.call(&event("refresh")).await;

    assert_eq!(reply.status, 202, "{reply:#?}");
    assert_eq!(reply.status_field(), "started");
    assert_eq!(reply.body["reason"], "refresh");
    assert_ne!(reply.job_id(), first.job_id());
    assert_eq!(reply.header("location"), Some("/v1/scores/shop-42"));
    assert!(reply.header("retry-after").is_some());
    let published = h.published(1).await;
    assert_eq!(published.len(), 1);
    assert_eq!(published[0].reason, RequestReason::Refresh);
    assert_eq!(published[0].job_id.to_string(), reply.job_id());
}

#[tokio::test]
async fn refresh_of_a_new_subject_starts_it() {
    let h = Harness::new().await;

    let reply = h.refresh("shop-new").await;

    assert_eq!(reply.status, 202);
    assert_eq!(reply.status_field(), "started");
    assert_eq!(h.published(1).await[0].reason, RequestReason::Refresh);
}

#[tokio::test]
async fn refresh_is_a_no_op_while_a_job_is_pending_or_running() {
    let h = Harness::new().await;
    let first = h.get("shop-busy").await;
    h.published(1).await;

    let while_pending = h.refresh("shop-busy").await;
    h.claim(&SubjectId::parse("shop-busy").unwrap(), &first.job_id())
        .await;
    let while_running = h.refresh("shop-busy").await;

    assert_eq!(while_pending.status, 202);
    assert_eq!(while_pending.status_field(), "pending");
    assert_eq!(while_pending.job_id(), first.job_id());
    assert_eq!(while_running.status, 202);
    assert_eq!(while_running.status_field(), "running");
    assert_eq!(while_running.job_id(), first.job_id());
    assert!(h.published(0).await.is_empty());
}

#[tokio::test]
async fn refresh_retries_a_retryable_failure_at_once() {
    let h = Harness::new().await;
    let first = h.get("shop-rf").await;
    h.published(1).await;
    h.fail("shop-rf", &first.job_id(), true).await;
    assert_eq!(h.get("shop-rf").await.status, 200, "a plain GET reports it");

    let reply = h.refresh("shop-rf").await;

    assert_eq!(reply.status, 202);
    assert_eq!(reply.status_field(), "started");
    assert_ne!(reply.job_id(), first.job_id());
    assert_eq!(h.published(1).await.len(), 1);
}

#[tokio::test]
async fn concurrent_refreshes_start_one_job() {
    let h = Harness::new().await;
    let first = h.get("shop-cr").await;
    h.complete("shop-cr", &first.job_id()).await;
    h.published(1).await;

    let replies = futures::future::join_all((0..8).map(|_| h.refresh("shop-cr"))).await;

    let jobs: std::collections::BTreeSet<String> = replies.iter().map(|r| r.job_id()).collect();
    assert_eq!(jobs.len(), 1, "{replies:#?}");
    assert_eq!(h.published(1).await.len(), 1);
}

#[tokio::test]
async fn refresh_with_a_failed_publish_is_503() {
    let h = Harness::new().await;
    let broken = h.deps_with_broken_topic();

    let reply = call(&broken, request(&refresh_event("shop-rp"))).await;

    reply.assert_problem(503);
    assert!(reply.header("retry-after").is_some());
    assert_eq!(
        h.record("shop-rp").await.unwrap().status.as_str(),
        "pending"
    );
}

#[tokio::test]
async fn refresh_with_an_invalid_subject_is_400() {
    let h = Harness::new().await;

    let reply = h.call(&refresh_event("a%2Fb")).await;

    let detail = reply.assert_problem(400);
    assert_eq!(reply.body["type"], "/problems/invalid-subject-id");
    assert!(detail.contains('%'), "{detail}");
}
