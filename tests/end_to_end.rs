//! The whole system through the local runner: HTTP API, SNS -> SQS -> compute, the table stream
//! -> notifier -> SNS, S3 -> SQS -> metadata-sync, each played with template.yaml's settings.

use std::time::Duration;

use datagen::{Profile, SubjectSpec};
use e2e_tests::System;
use shared::domain::SubjectId;

const SEED: u64 = 7;
/// Generous: these wait on pollers and a 2-core machine, never assert on speed.
const WITHIN: Duration = Duration::from_secs(120);

/// Faster batching for metadata-sync than the 5 s production window; everything else as deployed.
const FAST_CATALOG: (&str, &str) = ("MetadataBatchingWindowSeconds", "1");

fn spec(subject: &str, rows: usize, profile: Profile) -> SubjectSpec {
    SubjectSpec::new(SubjectId::parse(subject).unwrap(), rows, profile)
}

async fn seed(system: &System, specs: &[SubjectSpec]) {
    let config = system.names();
    let catalog = system.catalog();
    datagen::seed(&system.s3(), &catalog, &config.data_bucket, specs, SEED)
        .await
        .expect("seeding");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_first_request_is_accepted_at_once_and_a_later_one_gets_the_score() {
    let system = System::start(&[FAST_CATALOG]).await;
    seed(&system, &[spec("shop-e2e", 500, Profile::Normal)]).await;
    system.wait_for_empty_queue("MetadataQueue", WITHIN).await;

    let first = system.get("/v1/scores/shop-e2e").await;
    let done = system.wait_for_result("shop-e2e", WITHIN).await;

    assert_eq!(first.status, 202, "{}", first.body);
    assert_eq!(first.body["status"], "started");
    assert_eq!(first.headers["location"], "/v1/scores/shop-e2e");
    assert!(first.headers.contains_key("retry-after"));
    assert_eq!(done.body["status"], "done", "{}", done.body);
    assert_eq!(
        done.body["job_id"], first.body["job_id"],
        "one job from request to result"
    );
    let score = done.body["score"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&score));
    assert_eq!(done.body["feature_summary"]["rows"], 500);
    system.runner.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_finished_score_is_published_to_subscribers_with_filterable_attributes() {
    let system = System::start(&[FAST_CATALOG]).await;
    let all = system.subscribe_score_events(None).await;
    let completed_only = system
        .subscribe_score_events(Some(r#"{"type":["score.completed"]}"#))
        .await;
    seed(&system, &[spec("shop-events", 300, Profile::Chargebacks)]).await;
    system.wait_for_empty_queue("MetadataQueue", WITHIN).await;

    system.get("/v1/scores/shop-events").await;
    let done = system.wait_for_result("shop-events", WITHIN).await;
    let events = emulator::drain_queue(&system.runner.sdk, &all, 1, WITHIN).await;
    let filtered = emulator::drain_queue(&system.runner.sdk, &completed_only, 1, WITHIN).await;

    assert_eq!(events.len(), 1, "exactly one event per finished job");
    let event: serde_json::Value =
        serde_json::from_str(events[0].body.as_deref().unwrap()).unwrap();
    assert_eq!(event["type"], "score.completed");
    assert_eq!(event["version"], 1);
    assert_eq!(event["subject_id"], "shop-events");
    assert_eq!(event["job_id"], done.body["job_id"]);
    assert_eq!(event["band"], done.body["band"]);
    let attributes = events[0].message_attributes.clone().unwrap_or_default();
    assert_eq!(
        attributes["band"].string_value.as_deref(),
        done.body["band"].as_str()
    );
    assert_eq!(filtered.len(), 1);
    system.runner.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn new_data_in_the_lake_makes_the_score_stale_and_the_next_request_recomputes() {
    let system = System::start(&[FAST_CATALOG]).await;
    seed(&system, &[spec("shop-fresh", 400, Profile::Normal)]).await;
    // The seed's own upload events must not be what makes the score stale below.
    system.wait_for_empty_queue("MetadataQueue", WITHIN).await;
    system.get("/v1/scores/shop-fresh").await;
    let before = system.wait_for_result("shop-fresh", WITHIN).await;
    let extra: String = datagen::lines(&spec("shop-fresh", 250, Profile::RefundAbuse), SEED + 1)
        .map(|line| line + "\n")
        .collect();

    // Through the real path: S3 -> notification -> MetadataQueue -> metadata-sync.
    system
        .s3()
        .put_object()
        .bucket(system.names().data_bucket)
        .key("datasets/shop-fresh/late-arrivals.ndjson")
        .body(extra.into_bytes().into())
        .send()
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + WITHIN;
    let restarted = loop {
        let answer = system.get("/v1/scores/shop-fresh").await;
        if answer.status == 202 {
            break answer;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the score never went stale: {}",
            answer.body
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let after = system.wait_for_result("shop-fresh", WITHIN).await;

    assert_eq!(restarted.body["reason"], "stale");
    assert_ne!(after.body["job_id"], before.body["job_id"]);
    assert_eq!(before.body["feature_summary"]["rows"], 400);
    assert_eq!(
        after.body["feature_summary"]["rows"], 650,
        "the new file is part of the new score"
    );
    system.runner.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_first_requests_are_all_computed_within_the_concurrency_cap_and_nothing_is_lost() {
    let system = System::start(&[FAST_CATALOG]).await;
    let specs: Vec<SubjectSpec> = (0..50)
        .map(|i| spec(&format!("shop-load-{i}"), 50 + 7 * i, Profile::Normal))
        .collect();
    seed(&system, &specs).await;
    system.wait_for_empty_queue("MetadataQueue", WITHIN).await;

    // 200 first requests: four for each of 50 subjects, 25 in flight at a time.
    let paths: Vec<String> = (0..200)
        .map(|i| format!("/v1/scores/shop-load-{}", i % 50))
        .collect();
    let answers: Vec<(String, u16, serde_json::Value)> = futures::stream::iter(paths)
        .map(|path| {
            let system = &system;
            async move {
                let answer = system.get(&path).await;
                (path, answer.status, answer.body)
            }
        })
        .buffer_unordered(25)
        .collect()
        .await;
    let mut finished = Vec::new();
    for i in 0..50 {
        finished.push(
            system
                .wait_for_result(&format!("shop-load-{i}"), WITHIN)
                .await,
        );
    }

    assert!(
        answers
            .iter()
            .all(|(_, status, _)| *status == 202 || *status == 200),
        "{answers:?}"
    );
    for (i, done) in finished.iter().enumerate() {
        assert_eq!(done.body["status"], "done", "shop-load-{i}: {}", done.body);
        let path = format!("/v1/scores/shop-load-{i}");
        let job_ids: std::collections::HashSet<&str> = answers
            .iter()
            .filter(|(p, _, _)| *p == path)
            .filter_map(|(_, _, body)| body["job_id"].as_str())
            .collect();
        assert_eq!(
            job_ids.len(),
            1,
            "one job per subject, however many requests: {path}"
        );
        assert_eq!(job_ids.into_iter().next(), done.body["job_id"].as_str());
    }
    let compute = system.runner.stats.function("ComputeFunction");
    assert!(
        compute.max_in_flight() <= 2,
        "MaximumConcurrency 2 was exceeded: {}",
        compute.max_in_flight()
    );
    assert!(compute.invocations() >= 50);
    for dlq in [
        "ComputeDeadLetterQueue",
        "MetadataDeadLetterQueue",
        "NotifierFailureQueue",
    ] {
        assert_eq!(system.queue_depth(dlq).await, 0, "{dlq} is not empty");
    }
    system.runner.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn work_that_can_never_finish_ends_in_the_dead_letter_queue_and_the_api_reports_it() {
    // A compute timeout below compute's deadline margin: no attempt can ever do the work, as
    // with a subject too large for the function. Redeliveries come after 1 s instead of 720 s.
    let system = System::start(&[
        FAST_CATALOG,
        ("ComputeTimeout", "3"),
        ("ComputeQueueVisibilityTimeout", "1"),
    ])
    .await;
    seed(&system, &[spec("shop-poison", 100, Profile::Normal)]).await;
    system.wait_for_empty_queue("MetadataQueue", WITHIN).await;

    let first = system.get("/v1/scores/shop-poison").await;
    let reported = system.wait_for_result("shop-poison", WITHIN).await;
    let deadline = tokio::time::Instant::now() + WITHIN;
    while system.queue_depth("ComputeDeadLetterQueue").await == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the message never reached the DLQ"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    assert_eq!(first.status, 202);
    assert_eq!(reported.body["status"], "failed", "{}", reported.body);
    assert_eq!(reported.body["job_id"], first.body["job_id"]);
    assert_eq!(reported.body["error"]["code"], "DEADLINE_EXCEEDED");
    assert_eq!(reported.body["error"]["retryable"], true);
    assert_eq!(system.queue_depth("ComputeDeadLetterQueue").await, 1);
    assert_eq!(system.queue_depth("ComputeQueue").await, 0);
    system.runner.shutdown().await;
}

use futures::StreamExt;
