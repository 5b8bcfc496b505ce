//! Problem details for client mistakes and failing dependencies; every event file answers.

use std::time::Duration;

use request_api::Deps;

use crate::common::*;

#[tokio::test]
async fn an_invalid_subject_id_is_400_with_the_reason() {
    let h = Harness::new().await;

    let reply = h.call(&event("invalid-subject")).await;

    let detail = reply.assert_problem(400);
    assert_eq!(reply.body["type"], "/problems/invalid-subject-id");
    assert_eq!(reply.body["title"], "Invalid subject id");
    assert_eq!(
        detail,
        "subject id contains ' '; only letters, digits and . _ : - are allowed"
    );
    assert_eq!(reply.body["instance"], "/v1/scores/shop 42!");
    assert_eq!(reply.body["request_id"], "Xk3bTn4yoAMEVhD=");
    assert!(h.published(0).await.is_empty());
}

#[tokio::test]
async fn a_too_long_subject_id_is_400() {
    let h = Harness::new().await;

    let reply = h.get(&"x".repeat(129)).await;

    let detail = reply.assert_problem(400);
    assert!(detail.contains("129"), "{detail}");
}

#[tokio::test]
async fn an_unknown_route_is_404() {
    let h = Harness::new().await;

    let reply = h.call(&event("unknown-route")).await;

    reply.assert_problem(404);
    assert_eq!(reply.body["type"], "about:blank");
    assert_eq!(reply.body["title"], "Not Found");
    assert_eq!(reply.route, None);
}

#[tokio::test]
async fn a_wrong_method_is_405_with_allow() {
    let h = Harness::new().await;

    let reply = h.call(&event("wrong-method")).await;
    let batch_get = h
        .call(&event_for("GET", "/v1/scores/batch-get", "", None))
        .await;
    let refresh = h
        .call(&event_for("GET", "/v1/scores/shop-1/refresh", "", None))
        .await;

    reply.assert_problem(405);
    assert_eq!(reply.header("allow"), Some("GET"));
    batch_get.assert_problem(405);
    assert_eq!(batch_get.header("allow"), Some("POST"));
    refresh.assert_problem(405);
    assert_eq!(refresh.header("allow"), Some("POST"));
}

#[tokio::test]
async fn an_invalid_wait_is_400() {
    let h = Harness::new().await;
    for query in ["wait=21", "wait=-1", "wait=soon"] {
        let reply = h.call(&get_event("shop-1", query)).await;
        let detail = reply.assert_problem(400);
        assert!(detail.contains("wait"), "{detail}");
    }
    assert!(h.published(0).await.is_empty());
}

#[tokio::test]
async fn every_event_file_gets_a_documented_answer() {
    let h = Harness::new().await;
    let names = emulator::fixtures::cases("request-api");
    assert!(names.len() >= 8, "{names:?}");

    for name in &names {
        let e = event(name);
        assert_eq!(e["version"], "2.0", "{name} is an HTTP API v2 payload");
        // `call` checks the answer against docs/openapi.yaml.
        let reply = h.call(&e).await;
        assert!(reply.status < 500, "{name}: {reply:#?}");
    }
}

#[tokio::test]
async fn a_missing_table_is_500_without_internal_detail() {
    let h = Harness::new().await;
    let mut config = h.deps.config.clone();
    config.scores_table = format!("{}-missing", config.scores_table);
    let deps = Deps::new(&config, &h.env.function_sdk("RequestApiFunction"));

    let reply = call(&deps, request(&get_event("shop-1", ""))).await;

    let detail = reply.assert_problem(500);
    let body = reply.body.to_string();
    for secret in [
        config.scores_table.as_str(),
        "DynamoDB",
        "ResourceNotFound",
        "arn:",
    ] {
        assert!(!body.contains(secret), "{secret} leaked: {body}");
    }
    assert!(detail.contains("request_id"), "{detail}");
    assert_eq!(reply.body["request_id"], "Xk3bTj0yoAMEVdQ=");
}

#[tokio::test]
async fn an_unreachable_dependency_is_503_with_retry_after() {
    let h = Harness::new().await;
    // Nothing listens on port 9 (discard) here: connections are refused at once.
    let unreachable = emulator::sdk_config("http://127.0.0.1:9")
        .into_builder()
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(2))
                .build(),
        )
        .build();
    let deps = Deps::new(&h.deps.config, &unreachable);

    let reply = call(&deps, request(&get_event("shop-1", ""))).await;

    reply.assert_problem(503);
    assert_eq!(reply.header("retry-after"), Some("1"));
    assert!(!reply.body.to_string().contains("127.0.0.1"));
}
