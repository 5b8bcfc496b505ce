//! What one job costs in AWS calls, end to end through the local runner: the first GET, the
//! publish, the claim, the catalog query, the object read, the result write, the completion
//! event and the second GET. Deterministic, so it is a test: a new call shows up here.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use datagen::{Profile, SubjectSpec};
use e2e_tests::System;
use emulator::faults::FaultPlan;
use shared::domain::SubjectId;

const WITHIN: Duration = Duration::from_secs(120);

fn diff(
    after: &BTreeMap<String, usize>,
    before: &BTreeMap<String, usize>,
) -> BTreeMap<String, usize> {
    after
        .iter()
        .map(|(op, n)| (op.clone(), n - before.get(op).copied().unwrap_or(0)))
        .filter(|(_, n)| *n > 0)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_job_of_a_single_file_subject_costs_nine_aws_calls() {
    // Arrange: one subject with one file, cataloged (metadata-sync done with it).
    let plan = Arc::new(FaultPlan::observe_only());
    let system = System::start_with_faults(
        &[("MetadataBatchingWindowSeconds", "1")],
        Some(plan.clone()),
    )
    .await;
    let names = system.names();
    let events = system.subscribe_score_events(None).await;
    let catalog = system.catalog();
    let spec = SubjectSpec::new(
        SubjectId::parse("shop-calls").unwrap(),
        500,
        Profile::Normal,
    );
    datagen::seed(&system.s3(), &catalog, &names.data_bucket, &[spec], 5)
        .await
        .unwrap();
    system.wait_for_empty_queue("MetadataQueue", WITHIN).await;
    let before = plan.calls();

    // Act: ask, wait for the completion event (not by polling the API), ask again.
    let first = system.get("/v1/scores/shop-calls").await;
    let event = emulator::drain_queue(&system.runner.sdk, &events, 1, WITHIN).await;
    let second = system.get("/v1/scores/shop-calls").await;
    let calls = diff(&plan.calls(), &before);

    // Assert
    assert_eq!((first.status, second.status, event.len()), (202, 200, 1));
    let expected: BTreeMap<String, usize> = [
        ("dynamodb:GetItem", 2),    // both GETs read the record
        ("dynamodb:PutItem", 1),    // the first creates the job
        ("sns:Publish", 1),         // compute.requested
        ("dynamodb:UpdateItem", 2), // compute claims, then completes
        ("dynamodb:Query", 1),      // the subject's objects in the catalog
        ("s3:GetObject", 1),        // its one file
        ("sns:PublishBatch", 1),    // score.completed
    ]
    .into_iter()
    .map(|(op, n)| (op.to_owned(), n))
    .collect();
    assert_eq!(calls, expected);
    assert_eq!(calls.values().sum::<usize>(), 9);
    system.runner.shutdown().await;
}
