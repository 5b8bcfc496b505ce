//! The whole system under faults: every AWS call the functions' code makes may be throttled,
//! answered 500, dropped, timed out or delayed (10%, seeded), while a workload of a few hundred
//! requests over tens of subjects runs, with refreshes and new uploads in the middle of it.
//!
//! What must hold at the end: every subject's latest job done, exactly one result write and one
//! completion event per finished job, the catalog equal to the bucket, nothing in any
//! dead-letter or failure queue.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use datagen::{Profile, SubjectSpec};
use e2e_tests::System;
use emulator::faults::FaultPlan;
use emulator::streams::{StartingPosition, StreamReader};
use shared::domain::SubjectId;

const SUBJECTS: usize = 40;
/// GETs spread over the subjects, in rounds, with refreshes and uploads between rounds.
const ROUNDS: usize = 8;
const WITHIN: Duration = Duration::from_secs(240);

/// Short timeouts so that retries and re-dispatches happen within the test (production keeps
/// visibility >= 6 x timeout; here a redelivery just comes sooner).
const FAST: [(&str, &str); 9] = [
    ("MetadataBatchingWindowSeconds", "1"),
    // A metadata message failed by an injected fault comes back after the visibility timeout:
    // the default (360 s) is longer than the whole test may wait.
    ("MetadataTimeout", "10"),
    ("MetadataQueueVisibilityTimeout", "15"),
    ("ComputeTimeout", "10"),
    ("ComputeLeaseSeconds", "12"),
    ("ComputeQueueVisibilityTimeout", "15"),
    ("DispatchTimeoutSeconds", "5"),
    ("FailedRetryAfterSeconds", "1"),
    ("ComputeMaximumConcurrency", "2"),
];

fn subject(i: usize) -> String {
    format!("shop-f{i:02}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_workload_under_ten_percent_faults_ends_with_every_job_done_exactly_once() {
    // Arrange
    let plan = Arc::new(FaultPlan::new(Vec::new(), 0.10, 20261130));
    let system = System::start_with_faults(&FAST, Some(plan.clone())).await;
    let names = system.names();
    let events = system.subscribe_score_events(None).await;
    let catalog = system.catalog();
    let specs: Vec<SubjectSpec> = (0..SUBJECTS)
        .map(|i| {
            let profile = if i % 5 == 0 {
                Profile::Chargebacks
            } else {
                Profile::Normal
            };
            SubjectSpec::new(SubjectId::parse(&subject(i)).unwrap(), 200, profile)
        })
        .collect();
    datagen::seed(&system.s3(), &catalog, &names.data_bucket, &specs, 11)
        .await
        .expect("seeding");
    let started = Instant::now();

    // Act: rounds of GETs over every subject; between rounds, refreshes and new uploads.
    let mut requests = 0;
    for round in 0..ROUNDS {
        let gets = (0..SUBJECTS).map(|i| {
            let system = &system;
            async move { system.get(&format!("/v1/scores/{}", subject(i))).await }
        });
        for answer in futures::future::join_all(gets).await {
            assert!(
                answer.status == 200 || answer.status == 202 || answer.status == 503,
                "unexpected {}: {}",
                answer.status,
                answer.body
            );
            requests += 1;
        }
        if round > 0 {
            for i in (0..SUBJECTS).filter(|i| (i + round) % 3 == 0) {
                let path = format!("/v1/scores/{}/refresh", subject(i));
                let answer = system.request(reqwest::Method::POST, &path, None).await;
                assert!(
                    answer.status == 202 || answer.status == 503,
                    "{}",
                    answer.body
                );
                requests += 1;
            }
        }
        if round % 3 == 2 {
            for i in (round..SUBJECTS).step_by(9) {
                let key = format!("datasets/{}/late-{round}.ndjson", subject(i));
                let line = r#"{"ts":"2026-11-20T10:00:00Z","amount":990,"currency":"JPY","status":"paid","buyer":"b-late","card_country":"JP","ip_country":"JP"}"#;
                system
                    .s3()
                    .put_object()
                    .bucket(&names.data_bucket)
                    .key(key)
                    .body(format!("{line}\n").into_bytes().into())
                    .send()
                    .await
                    .expect("upload");
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    system.wait_for_empty_queue("MetadataQueue", WITHIN).await;
    let mut finished = BTreeMap::new();
    for i in 0..SUBJECTS {
        let answer = system.wait_for_done(&subject(i), WITHIN).await;
        finished.insert(
            subject(i),
            answer.body["job_id"].as_str().unwrap().to_owned(),
        );
    }
    system.wait_for_empty_queue("ComputeQueue", WITHIN).await;
    let recovery = started.elapsed();

    // Assert: every subject done (checked above), each finished job written and announced once.
    let done_writes = done_transitions(&system).await;
    let mut announced: BTreeMap<String, usize> = BTreeMap::new();
    let expected_events: usize = done_writes.len();
    for message in system_events(&system, &events, expected_events).await {
        let event: serde_json::Value = serde_json::from_str(&message).unwrap();
        *announced
            .entry(event["job_id"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    for (job, writes) in &done_writes {
        assert_eq!(*writes, 1, "job {job} written done {writes} times");
        assert_eq!(
            announced.get(job),
            Some(&1),
            "job {job} announced {:?} times",
            announced.get(job)
        );
    }
    for job in finished.values() {
        assert!(
            done_writes.contains_key(job),
            "{job} finished without a done write"
        );
    }
    assert_eq!(
        announced.len(),
        done_writes.len(),
        "no event without a finished job"
    );

    // Assert: the catalog is the bucket.
    let mut in_bucket = BTreeSet::new();
    let mut pages = system
        .s3()
        .list_objects_v2()
        .bucket(&names.data_bucket)
        .prefix("datasets/")
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        for object in page.unwrap().contents.unwrap_or_default() {
            in_bucket.insert((object.key.unwrap(), object.size.unwrap_or(0)));
        }
    }
    let mut in_catalog = BTreeSet::new();
    for i in 0..SUBJECTS {
        let dir = format!("datasets/{}", subject(i));
        for entry in catalog.list_dir(&dir).await.unwrap() {
            in_catalog.insert((entry.key(), entry.size));
        }
    }
    assert_eq!(in_catalog, in_bucket);

    // Assert: nothing dead-lettered.
    for queue in [
        "ComputeDeadLetterQueue",
        "MetadataDeadLetterQueue",
        "NotifierFailureQueue",
    ] {
        assert_eq!(system.queue_depth(queue).await, 0, "{queue} is not empty");
    }
    let injected = plan.injected();
    let total: usize = injected.values().sum();
    assert!(total > 50, "faults were injected: {injected:?}");
    println!(
        "fault workload: {requests} requests, {} jobs finished, {total} faults injected, all done in {:.1?}: {injected:?}",
        done_writes.len(),
        recovery
    );
    system.runner.shutdown().await;
}

/// Per job id, how many stream records show its transition into `done`.
async fn done_transitions(system: &System) -> BTreeMap<String, usize> {
    let stream = system.runner.resources.tables["ScoresTable"]
        .stream_arn
        .clone()
        .expect("the table has a stream");
    let mut reader = StreamReader::new(&system.runner.sdk, &stream, StartingPosition::TrimHorizon)
        .await
        .expect("the stream");
    let mut writes: BTreeMap<String, usize> = BTreeMap::new();
    loop {
        let records = reader.poll(1000).await.expect("stream records");
        if records.is_empty() {
            break;
        }
        for record in records {
            let json = emulator::streams::lambda_json(&record);
            let field = |image: &str, name: &str| {
                json.pointer(&format!("/dynamodb/{image}/{name}/S"))
                    .and_then(|v| v.as_str())
                    .map(str::to_owned)
            };
            let into_done = field("NewImage", "status").as_deref() == Some("done")
                && (field("OldImage", "status").as_deref() != Some("done")
                    || field("OldImage", "job_id") != field("NewImage", "job_id"));
            if into_done {
                *writes
                    .entry(field("NewImage", "job_id").unwrap())
                    .or_default() += 1;
            }
        }
    }
    writes
}

/// The completion events on the probe queue (at least `expected`, then whatever else comes).
async fn system_events(system: &System, queue: &str, expected: usize) -> Vec<String> {
    emulator::drain_queue(&system.runner.sdk, queue, expected, WITHIN)
        .await
        .into_iter()
        .filter_map(|m| m.body)
        .collect()
}
