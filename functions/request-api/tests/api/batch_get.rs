//! `POST /v1/scores/batch-get`.

use shared::domain::RequestReason;

use crate::common::*;

#[tokio::test]
async fn answers_each_distinct_subject_once_in_request_order() {
    let h = Harness::new().await;
    // shop-7 done, shop-99 pending, shop-42 new.
    let seven = h.get("shop-7").await;
    h.complete("shop-7", &seven.job_id()).await;
    let pending = h.get("shop-99").await;
    h.published(2).await;

    let reply = h.call(&event("batch-get")).await;

    assert_eq!(reply.status, 200, "{reply:#?}");
    let results = reply.body["results"].as_array().expect("results");
    let ids: Vec<&str> = results
        .iter()
        .map(|r| r["subject_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        ["shop-42", "shop-7", "shop-99"],
        "request order, once each"
    );
    assert_eq!(results[0]["status"], "started");
    assert_eq!(results[1]["status"], "done");
    assert_eq!(results[1]["score"], 0.83);
    assert_eq!(results[2]["status"], "pending");
    assert_eq!(results[2]["job_id"], pending.job_id().as_str());
    let published = h.published(1).await;
    assert_eq!(published.len(), 1, "only the missing subject is started");
    assert_eq!(published[0].subject_id.as_str(), "shop-42");
    assert_eq!(published[0].reason, RequestReason::Miss);
    assert_eq!(published[0].job_id.to_string(), results[0]["job_id"]);
}

#[tokio::test]
async fn a_hundred_subjects_are_answered_and_started_when_the_budget_allows() {
    let h = Harness::new().await;
    let mut config = h.deps.config.clone();
    config.max_job_starts = 100;
    let deps = request_api::Deps::new(&config, &h.env.function_sdk("RequestApiFunction"))
        .with_clock(h.clock.clone());
    let ids: Vec<String> = (0..100).map(|i| format!("shop-b{i:03}")).collect();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();

    let reply = call(&deps, request(&batch_event(&refs))).await;

    assert_eq!(reply.status, 200, "{reply:#?}");
    let results = reply.body["results"].as_array().unwrap();
    assert_eq!(results.len(), 100);
    for (result, id) in results.iter().zip(&ids) {
        assert_eq!(result["subject_id"], id.as_str());
        assert_eq!(result["status"], "started");
    }
    assert_eq!(h.published(100).await.len(), 100);

    let again = call(&deps, request(&batch_event(&refs))).await;
    assert!(again.body["results"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["status"] == "pending"));
    assert!(h.published(0).await.is_empty());
}

#[tokio::test]
async fn duplicates_count_toward_the_limit_but_are_answered_once() {
    let h = Harness::new().await;

    let reply = h.batch(&["a", "b", "a", "a", "c", "b"]).await;

    let ids: Vec<&str> = reply.body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["subject_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["a", "b", "c"]);
    assert_eq!(h.published(3).await.len(), 3);
}

#[tokio::test]
async fn more_than_100_subjects_is_400() {
    let h = Harness::new().await;

    let reply = h.call(&event("too-many-subjects")).await;

    let detail = reply.assert_problem(400);
    assert!(detail.contains("101") && detail.contains("100"), "{detail}");
    assert!(h.published(0).await.is_empty());
}

#[tokio::test]
async fn an_empty_list_is_400() {
    let h = Harness::new().await;

    let reply = h.batch(&[]).await;

    let detail = reply.assert_problem(400);
    assert!(detail.contains("at least one"), "{detail}");
}

#[tokio::test]
async fn malformed_json_is_400() {
    let h = Harness::new().await;

    let reply = h.call(&event("malformed-json")).await;

    reply.assert_problem(400);
    assert_eq!(reply.body["type"], "/problems/invalid-request");
}

#[tokio::test]
async fn wrong_shapes_are_400() {
    let h = Harness::new().await;
    for body in [
        "",
        "null",
        "[]",
        "{}",
        r#"{"subject_ids": "shop-1"}"#,
        r#"{"subject_ids": [1, 2]}"#,
        r#"{"subjectIds": ["shop-1"]}"#,
    ] {
        let reply = h
            .call(&event_for("POST", "/v1/scores/batch-get", "", Some(body)))
            .await;
        reply.assert_problem(400);
    }
}

#[tokio::test]
async fn an_invalid_id_is_400_naming_its_place() {
    let h = Harness::new().await;

    let reply = h.batch(&["ok-1", "not ok"]).await;

    let detail = reply.assert_problem(400);
    assert_eq!(reply.body["type"], "/problems/invalid-subject-id");
    assert!(detail.starts_with("subject_ids[1]"), "{detail}");
    assert!(h.published(0).await.is_empty(), "nothing started");
}

#[tokio::test]
async fn a_body_above_the_limit_is_413() {
    let h = Harness::new().await;
    let padding = " ".repeat(request_api::api::MAX_BODY_BYTES);
    let body = format!(r#"{{"subject_ids": ["shop-1"]{padding}}}"#);

    let reply = h
        .call(&event_for("POST", "/v1/scores/batch-get", "", Some(&body)))
        .await;

    let detail = reply.assert_problem(413);
    assert!(detail.contains("65536"), "{detail}");
}

#[tokio::test]
async fn a_base64_encoded_body_is_decoded() {
    let h = Harness::new().await;
    let mut e = batch_event(&["shop-1"]);
    // {"subject_ids":["shop-1"]}
    e["body"] = "eyJzdWJqZWN0X2lkcyI6WyJzaG9wLTEiXX0=".into();
    e["isBase64Encoded"] = true.into();

    let reply = h.call(&e).await;

    assert_eq!(reply.status, 200, "{reply:#?}");
    assert_eq!(reply.body["results"][0]["subject_id"], "shop-1");
}

#[tokio::test]
async fn a_non_json_content_type_is_415_and_json_variants_are_accepted() {
    let h = Harness::new().await;

    let form = h.call(&event("wrong-content-type")).await;
    let mut charset = batch_event(&["shop-1"]);
    charset["headers"]["content-type"] = "Application/JSON; charset=utf-8".into();
    let with_charset = h.call(&charset).await;
    let mut none = batch_event(&["shop-2"]);
    none["headers"]
        .as_object_mut()
        .unwrap()
        .remove("content-type");
    let without = h.call(&none).await;

    form.assert_problem(415);
    assert_eq!(with_charset.status, 200);
    assert_eq!(without.status, 200);
}

#[tokio::test]
async fn a_failed_publish_fails_the_batch_with_503() {
    let h = Harness::new().await;
    let broken = h.deps_with_broken_topic();

    let reply = call(&broken, request(&batch_event(&["x1", "x2"]))).await;

    reply.assert_problem(503);
    assert!(reply.header("retry-after").is_some());
}
