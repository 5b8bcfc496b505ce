//! One request's story in the logs: its trace id (the caller's `X-Amzn-Trace-Id`) is on
//! request-api's line and every line compute writes for the job, and the job id leads from there
//! to notifier's line for the completion event. Every line is one flat JSON object with a
//! timestamp, a level and the invocation's `requestId`. The only test of this binary: it owns
//! the process's log subscriber.

use std::time::Duration;

use datagen::{Profile, SubjectSpec};
use e2e_tests::System;
use emulator::capture::CapturedLogs;
use serde_json::Value;
use shared::domain::SubjectId;

const WITHIN: Duration = Duration::from_secs(120);
const TRACE: &str = "Root=1-674a3b2c-0123456789abcdef01234567;Sampled=1";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_requests_trace_and_job_id_lead_through_every_functions_logs() {
    let captured = CapturedLogs::default();
    tracing::subscriber::set_global_default(shared::telemetry::json_subscriber(
        None,
        captured.clone(),
    ))
    .unwrap();
    let system = System::start(&[("MetadataBatchingWindowSeconds", "1")]).await;
    let subject = SubjectId::parse("shop-logs").unwrap();
    let catalog = system.catalog();
    let spec = SubjectSpec::new(subject.clone(), 50, Profile::Normal);
    datagen::seed(
        &system.s3(),
        &catalog,
        &system.names().data_bucket,
        &[spec],
        7,
    )
    .await
    .unwrap();
    system.wait_for_empty_queue("MetadataQueue", WITHIN).await;

    let mut request = system
        .build(reqwest::Method::GET, "/v1/scores/shop-logs")
        .header("x-amzn-trace-id", TRACE)
        .build()
        .unwrap();
    system.sign(&mut request).await;
    let first = system.send(request).await;
    assert_eq!(first.status, 202);
    let done = system.wait_for_result("shop-logs", WITHIN).await;
    let job_id = done.body["job_id"].as_str().unwrap().to_owned();
    // notifier runs after the result is stored: wait for its line.
    let deadline = std::time::Instant::now() + WITHIN;
    let notified = |lines: &[Value]| {
        lines
            .iter()
            .any(|l| l["function"] == "notifier" && l["job_id"] == job_id.as_str())
    };
    while !notified(&captured.lines()) {
        assert!(
            std::time::Instant::now() < deadline,
            "no notifier line for {job_id}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    system.runner.shutdown().await;

    let lines = captured.lines();
    let traced: Vec<&Value> = lines.iter().filter(|l| l["trace_id"] == TRACE).collect();
    let served = traced
        .iter()
        .find(|l| l["function"] == "request-api" && l["message"] == "request served")
        .expect("request-api's line carries the trace id");
    assert_eq!(served["status"], 202);
    assert!(served["requestId"].is_string());
    let computed: Vec<&&Value> = traced
        .iter()
        .filter(|l| l["function"] == "compute")
        .collect();
    assert!(
        computed.iter().any(|l| l["message"] == "scored"),
        "compute's lines carry the trace id: {computed:#?}"
    );
    for line in &computed {
        assert_eq!(line["job_id"], job_id.as_str());
        assert_eq!(line["subject_id"], "shop-logs");
    }
    let notified = lines
        .iter()
        .find(|l| l["function"] == "notifier" && l["job_id"] == job_id.as_str())
        .unwrap();
    assert_eq!(
        notified["trace_id"], TRACE,
        "the completion event carries the trace id"
    );
    for line in lines.iter().filter(|l| l["requestId"].is_string()) {
        assert!(
            line["timestamp"].is_string() && line["level"].is_string(),
            "{line}"
        );
        assert!(
            line.get("span").is_none() && line.get("fields").is_none(),
            "flat: {line}"
        );
    }
}
