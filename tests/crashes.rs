//! Crashes at the worst moments, each recovered without help: the function's process dies in
//! the middle of an AWS call (emulator::faults::Fault::Kill: the runner drops the invocation on
//! the spot, as Lambda does with a process that ran out of memory). Each test prints its time to
//! recovery.

use std::sync::Arc;
use std::time::{Duration, Instant};

use datagen::{Profile, SubjectSpec};
use e2e_tests::System;
use emulator::faults::{Fault, FaultPlan, Rule};
use shared::domain::SubjectId;

const WITHIN: Duration = Duration::from_secs(180);

/// Short timeouts so recovery happens within the test.
const FAST: [(&str, &str); 6] = [
    ("MetadataBatchingWindowSeconds", "1"),
    ("ComputeTimeout", "8"),
    ("ComputeLeaseSeconds", "10"),
    ("ComputeQueueVisibilityTimeout", "12"),
    ("DispatchTimeoutSeconds", "3"),
    ("NotifierMaximumRetryAttempts", "3"),
];

/// A system whose functions' first call of `operation` kills the function.
async fn system_crashing_at(operation: &str, subject: &str) -> (System, Arc<FaultPlan>) {
    let plan = Arc::new(FaultPlan::new(
        vec![Rule::new(operation, 0, 1, Fault::Kill)],
        0.0,
        1,
    ));
    let system = System::start_with_faults(&FAST, Some(plan.clone())).await;
    let names = system.names();
    let catalog = system.catalog();
    let spec = SubjectSpec::new(SubjectId::parse(subject).unwrap(), 300, Profile::Normal);
    datagen::seed(&system.s3(), &catalog, &names.data_bucket, &[spec], 3)
        .await
        .expect("seeding");
    system.wait_for_empty_queue("MetadataQueue", WITHIN).await;
    (system, plan)
}

async fn assert_clean_end(system: &System, subject: &str, events_queue: &str) {
    let done = system.wait_for_done(subject, WITHIN).await;
    let job = done.body["job_id"].as_str().unwrap().to_owned();
    let events = emulator::drain_queue(&system.runner.sdk, events_queue, 1, WITHIN).await;
    let jobs: Vec<String> = events
        .iter()
        .filter_map(|m| m.body.as_deref())
        .map(|b| {
            serde_json::from_str::<serde_json::Value>(b).unwrap()["job_id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        jobs,
        [job],
        "one completion event, for the job that finished"
    );
    for queue in ["ComputeDeadLetterQueue", "NotifierFailureQueue"] {
        assert_eq!(system.queue_depth(queue).await, 0, "{queue} is not empty");
    }
}

async fn events_queue(system: &System) -> String {
    system.subscribe_score_events(None).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn compute_killed_after_its_claim_is_recovered_when_the_lease_passes() {
    // Arrange: compute dies during its first catalog listing, right after it claimed the job.
    let (system, plan) = system_crashing_at("dynamodb:Query", "shop-c1").await;
    let events = events_queue(&system).await;
    let started = Instant::now();

    // Act
    let first = system.get("/v1/scores/shop-c1").await;

    // Assert: the claim's lease passes, the redelivered message claims the job again.
    assert_eq!(first.status, 202);
    assert_clean_end(&system, "shop-c1", &events).await;
    assert_eq!(plan.injected().get("dynamodb:Query Kill"), Some(&1));
    println!(
        "compute killed after its claim: recovered in {:.1?}",
        started.elapsed()
    );
    system.runner.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn request_api_killed_between_the_job_write_and_the_publish_is_recovered_by_the_next_request()
{
    // Arrange: request-api dies during its first publish (the job is written, not announced).
    let (system, plan) = system_crashing_at("sns:Publish", "shop-c2").await;
    let events = events_queue(&system).await;
    let started = Instant::now();

    // Act: the first request dies; the caller asks again, as callers do.
    let first = system.get("/v1/scores/shop-c2").await;

    // Assert: the pending job is re-dispatched by a later request and finishes.
    assert!(
        first.status >= 500,
        "the killed request is an error: {}",
        first.status
    );
    assert_clean_end(&system, "shop-c2", &events).await;
    assert_eq!(plan.injected().get("sns:Publish Kill"), Some(&1));
    println!(
        "request-api killed before its publish: recovered in {:.1?}",
        started.elapsed()
    );
    system.runner.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn notifier_killed_mid_batch_publishes_the_event_once_on_the_retry() {
    // Arrange: the notifier dies during its first PublishBatch.
    let (system, plan) = system_crashing_at("sns:PublishBatch", "shop-c3").await;
    let events = events_queue(&system).await;
    let started = Instant::now();

    // Act
    let first = system.get("/v1/scores/shop-c3").await;

    // Assert: the stream batch is retried after the timeout; exactly one event.
    assert_eq!(first.status, 202);
    assert_clean_end(&system, "shop-c3", &events).await;
    assert_eq!(plan.injected().get("sns:PublishBatch Kill"), Some(&1));
    println!(
        "notifier killed mid-batch: recovered in {:.1?}",
        started.elapsed()
    );
    system.runner.shutdown().await;
}
