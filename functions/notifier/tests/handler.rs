//! The notifier against moto: records read from the real ScoresTable stream after real
//! transitions, narrowed by the template's FilterCriteria as the event source mapping would,
//! and the events/notifier payloads. Messages are read back from probe queues subscribed to
//! ScoreEventsTopic (raw delivery).
//!
//! moto delivers SNS -> SQS inside the Publish call, so once `handle` has returned every message
//! it published is already in the probe queues: counting them (including "none arrived") is not
//! a race.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aws_lambda_events::dynamodb::{Event, EventRecord};
use chrono::Utc;
use emulator::filter_criteria;
use emulator::streams::{lambda_json, StartingPosition, StreamReader};
use emulator::{EventSource, TestEnv};
use lambda_runtime::{Context, LambdaEvent};
use notifier::{decide, handle, Decision, Deps, PublishBatch, SkipReason};
use serde_json::Value;
use shared::domain::{
    Band, ClaimId, ErrorCode, FeatureSummary, JobError, RequestReason, ScoreResult, ScoreStatus,
    SubjectId,
};
use shared::events::{EventType, ScoreEvent};

const SCORE_COMPLETED: EventType = EventType::ScoreCompleted;
const SCORE_FAILED: EventType = EventType::ScoreFailed;
use shared::publisher::{BatchFailure, OutgoingMessage, Publisher};
use shared::score_store::{ClaimOutcome, StartMode, StartOutcome};

/// `events/notifier/<name>.json`, as JSON and as the stream event.
fn payload(name: &str) -> (Value, Event) {
    let raw = emulator::fixtures::load("notifier", name);
    let event: Event =
        serde_json::from_value(raw.clone()).expect("payload is a DynamoDB stream event");
    (raw, event)
}

fn invocation(records: Vec<EventRecord>) -> LambdaEvent<Event> {
    let mut event = Event::default();
    event.records = records;
    LambdaEvent::new(event, Context::default())
}

/// The NotifierFunction stream event source of template.yaml.
fn stream_source(env: &TestEnv) -> (String, Vec<Value>) {
    let function = &env.resources.functions["NotifierFunction"];
    function
        .events
        .iter()
        .find_map(|e| match e {
            EventSource::DynamoDb {
                stream_arn,
                filter_patterns,
                ..
            } => Some((stream_arn.clone(), filter_patterns.clone())),
            _ => None,
        })
        .expect("NotifierFunction has a DynamoDB stream event source")
}

fn topic(env: &TestEnv) -> String {
    env.resources.topics["ScoreEventsTopic"].clone()
}

/// A message as a subscriber sees it: the event and its message attributes.
#[derive(Debug)]
struct Received {
    event: ScoreEvent,
    attributes: BTreeMap<String, String>,
}

async fn received(env: &TestEnv, queue_url: &str, at_least: usize) -> Vec<Received> {
    let wait = Duration::from_secs(if at_least > 0 { 20 } else { 0 });
    env.drain_queue(queue_url, at_least, wait)
        .await
        .into_iter()
        .map(|m| Received {
            event: serde_json::from_str(m.body().unwrap_or_default()).expect("a ScoreEvent body"),
            attributes: m
                .message_attributes
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, v.string_value.unwrap_or_default()))
                .collect(),
        })
        .collect()
}

fn subjects(messages: &[Received]) -> Vec<String> {
    let mut s: Vec<String> = messages
        .iter()
        .map(|m| m.event.subject_id.to_string())
        .collect();
    s.sort();
    s
}

fn sequence_number(record: &EventRecord) -> String {
    record
        .change
        .sequence_number
        .clone()
        .expect("sequence number")
}

fn failures(response: &aws_lambda_events::streams::DynamoDbEventResponse) -> Vec<String> {
    response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone().unwrap_or_default())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The handler's decision and the template's filter

#[derive(Debug, PartialEq)]
enum Expect {
    Completed,
    Failed,
    Skip(SkipReason),
    Undecodable,
}

fn kind(decision: &Decision) -> Expect {
    match decision {
        Decision::Publish(e) if e.kind == SCORE_COMPLETED => Expect::Completed,
        Decision::Publish(e) if e.kind == SCORE_FAILED => Expect::Failed,
        Decision::Publish(e) => panic!("unexpected event type {}", e.kind),
        Decision::Skip(reason) => Expect::Skip(*reason),
        Decision::Undecodable(_) => Expect::Undecodable,
    }
}

#[tokio::test]
async fn decisions_on_the_payloads_agree_with_the_template_filter() {
    // Arrange
    let env = TestEnv::new().await;
    let (_, patterns) = stream_source(&env);
    assert!(!patterns.is_empty(), "the stream event source is filtered");
    for p in &patterns {
        filter_criteria::validate(p).expect("the template's filter is valid");
    }
    use Expect::*;
    use SkipReason::*;
    let expected: &[(&str, &[Expect])] = &[
        ("completed", &[Completed]),
        ("failed", &[Failed]),
        ("rewritten-done", &[Skip(AlreadyFinished)]),
        ("ttl-remove", &[Skip(NoNewImage)]),
        ("stale-flip", &[Skip(AlreadyFinished)]),
        ("undecodable", &[Undecodable]),
        (
            "mixed-batch",
            &[
                Skip(NotFinished),
                Completed,
                Failed,
                Completed,
                Skip(AlreadyFinished),
                Completed,
                Skip(NoNewImage),
                Undecodable,
                Completed,
                Completed,
                Completed,
                Completed,
                Failed,
                Completed,
                Completed,
                Completed,
            ],
        ),
    ];

    for (name, expected) in expected {
        let (raw, event) = payload(name);
        assert_eq!(event.records.len(), expected.len(), "{name}: record count");
        for (i, (record, want)) in event.records.iter().zip(expected.iter()).enumerate() {
            // Act
            let decision = decide(record);
            let passes = filter_criteria::matches_any(&patterns, &raw["Records"][i]);

            // Assert
            assert_eq!(&kind(&decision), want, "{name}[{i}]: decision");
            if matches!(decision, Decision::Publish(_)) {
                assert!(passes, "{name}[{i}]: publishable but the filter drops it");
            }
            if !passes {
                assert!(
                    matches!(decision, Decision::Skip(_)),
                    "{name}[{i}]: filtered out, but the handler would not skip it"
                );
            }
            // The local runner filters the record it re-serializes; that must agree with the
            // payload Lambda would have filtered.
            assert_eq!(
                filter_criteria::matches_any(&patterns, &lambda_json(record)),
                passes,
                "{name}[{i}]: filter on the re-serialized record"
            );
        }
    }
}

#[tokio::test]
async fn payloads_publish_exactly_their_transitions_with_filterable_attributes() {
    // Arrange
    let env = TestEnv::new().await;
    let deps = Deps::from_env(
        &env.function_env("NotifierFunction"),
        &env.function_sdk("NotifierFunction"),
    )
    .unwrap();
    let high = env
        .subscribe_queue(&topic(&env), Some(r#"{"band":["high"]}"#))
        .await;
    let all = env.subscribe_queue(&topic(&env), None).await;

    for (name, want) in [
        ("completed", 1),
        ("failed", 1),
        ("rewritten-done", 0),
        ("ttl-remove", 0),
        ("stale-flip", 0),
        ("undecodable", 0),
    ] {
        // Act
        let (_, event) = payload(name);
        let response = handle(invocation(event.records), &deps).await.unwrap();

        // Assert
        assert!(failures(&response).is_empty(), "{name}: no failures");
        let got = received(&env, &all, want).await;
        assert_eq!(got.len(), want, "{name}: messages published");
        if name == "completed" {
            let m = &got[0];
            assert_eq!(m.event.kind, SCORE_COMPLETED);
            assert_eq!(m.event.subject_id.as_str(), "shop-42");
            assert_eq!(m.event.job_id.to_string(), "01JBQ4Y2C8D5F7H9K1M3N5P7R0");
            assert_eq!(m.event.score, Some(0.91));
            assert_eq!(m.event.band, Some(Band::High));
            assert_eq!(m.event.duration_ms, Some(8000));
            assert_eq!(m.attributes["type"], SCORE_COMPLETED.as_str());
            assert_eq!(m.attributes["band"], "high");
            assert!(m.attributes.len() <= 10);
        }
        if name == "failed" {
            let m = &got[0];
            assert_eq!(m.event.kind, SCORE_FAILED);
            assert_eq!(m.event.status, ScoreStatus::Failed);
            let error = m.event.error.as_ref().expect("the error");
            assert_eq!(error.code, ErrorCode::Unavailable);
            assert!(error.retryable);
            assert_eq!(m.attributes["type"], SCORE_FAILED.as_str());
            assert!(!m.attributes.contains_key("band"));
        }
    }
    let high_band = received(&env, &high, 1).await;
    assert_eq!(subjects(&high_band), vec!["shop-42"]);
}

// ---------------------------------------------------------------------------------------------
// Real transitions, read from the real table stream

fn result(score: f64, band: Band) -> ScoreResult {
    ScoreResult {
        score,
        band,
        reasons: vec![],
        model_version: "test-1".into(),
        feature_summary: FeatureSummary::default(),
    }
}

struct Store {
    store: shared::score_store::ScoreStore,
    ttl: Duration,
}

impl Store {
    async fn start(&self, subject: &SubjectId) -> shared::domain::ScoreRecord {
        match self
            .store
            .start_job(
                subject,
                RequestReason::Miss,
                StartMode::Refresh,
                Utc::now(),
                self.ttl,
            )
            .await
            .unwrap()
        {
            StartOutcome::Started(r) => r,
            other => panic!("job not started: {other:?}"),
        }
    }

    async fn run(&self, subject: &SubjectId) -> ClaimId {
        let job = self.start(subject).await;
        let claim = ClaimId::new();
        let outcome = self
            .store
            .claim(
                subject,
                job.job_id,
                &claim,
                Utc::now(),
                Duration::from_secs(60),
                5,
            )
            .await
            .unwrap();
        assert!(matches!(outcome, ClaimOutcome::Claimed(_)), "{outcome:?}");
        claim
    }

    async fn complete(&self, subject: &SubjectId, band: Band, score: f64) {
        let claim = self.run(subject).await;
        let done = self
            .store
            .complete(subject, &claim, &result(score, band), Utc::now(), self.ttl)
            .await
            .unwrap();
        assert!(done.is_some());
    }

    async fn fail(&self, subject: &SubjectId) {
        let claim = self.run(subject).await;
        let record = self.store.get(subject, Utc::now()).await.unwrap().unwrap();
        let error = JobError {
            code: ErrorCode::ModelError,
            message: "x".repeat(10_000),
            retryable: true,
        };
        let failed = self
            .store
            .fail(
                subject,
                record.job_id,
                Some(&claim),
                &error,
                Utc::now(),
                self.ttl,
            )
            .await
            .unwrap();
        assert!(failed.is_some());
    }
}

fn subject(s: &str) -> SubjectId {
    SubjectId::parse(s).unwrap()
}

/// Everything on the stream, in order.
async fn read_all(reader: &mut StreamReader) -> Vec<EventRecord> {
    let mut records = Vec::new();
    loop {
        let batch = reader.poll(1000).await.expect("GetRecords");
        if batch.is_empty() {
            return records;
        }
        records.extend(batch);
    }
}

#[tokio::test]
async fn real_transitions_publish_exactly_the_finished_jobs_once() {
    // Arrange
    let env = TestEnv::new().await;
    let (stream_arn, patterns) = stream_source(&env);
    let deps = Deps::from_env(
        &env.function_env("NotifierFunction"),
        &env.function_sdk("NotifierFunction"),
    )
    .unwrap();
    let high = env
        .subscribe_queue(&topic(&env), Some(r#"{"band":["high"]}"#))
        .await;
    let all = env.subscribe_queue(&topic(&env), None).await;
    let store = Store {
        store: env.score_store(),
        ttl: Duration::from_secs(3600),
    };
    let (risky, safe, broken, busy) = (
        subject("shop-risky"),
        subject("shop-safe"),
        subject("shop-broken"),
        subject("shop-busy"),
    );
    let mut reader = StreamReader::new(&env.sdk, &stream_arn, StartingPosition::TrimHorizon)
        .await
        .expect("the ScoresTable stream");

    store.complete(&risky, Band::High, 0.93).await; // pending, running, done
    store.complete(&safe, Band::Low, 0.04).await;
    store.fail(&broken).await; // pending, running, failed
    store.run(&busy).await; // pending, running: not finished
                            // a stale flip of a finished item
    assert!(env.score_store().mark_stale(&risky).await.unwrap());
    // a re-write of a finished item, unchanged
    let current = env
        .score_store()
        .get(&safe, Utc::now())
        .await
        .unwrap()
        .unwrap();
    env.dynamodb()
        .put_item()
        .table_name(&env.names.scores_table)
        .set_item(Some(serde_dynamo::to_item(&current).unwrap()))
        .send()
        .await
        .unwrap();
    // the deletion TTL would make (moto never expires items; a DeleteItem makes the same REMOVE)
    env.dynamodb()
        .delete_item()
        .table_name(&env.names.scores_table)
        .key(
            "subject_id",
            aws_sdk_dynamodb::types::AttributeValue::S(safe.to_string()),
        )
        .send()
        .await
        .unwrap();

    let records = read_all(&mut reader).await;
    assert_eq!(
        records.len(),
        14,
        "3 + 3 + 3 + 2 writes, a flip, a re-write, a delete"
    );
    let delivered: Vec<EventRecord> = records
        .into_iter()
        .filter(|r| filter_criteria::matches_any(&patterns, &lambda_json(r)))
        .collect();
    // done x2, failed, the stale flip and the re-write pass the filter; the handler tells them apart
    assert_eq!(delivered.len(), 5);

    // Act
    let response = handle(invocation(delivered), &deps).await.unwrap();

    // Assert
    assert!(failures(&response).is_empty());
    let everything = received(&env, &all, 3).await;
    assert_eq!(
        subjects(&everything),
        vec!["shop-broken", "shop-risky", "shop-safe"]
    );
    for m in &everything {
        match m.event.subject_id.as_str() {
            "shop-risky" => {
                assert_eq!(m.event.kind, SCORE_COMPLETED);
                assert_eq!(m.event.band, Some(Band::High));
                assert_eq!(m.event.score, Some(0.93));
                assert_eq!(m.attributes["band"], "high");
            }
            "shop-safe" => assert_eq!(m.attributes["band"], "low"),
            "shop-broken" => {
                assert_eq!(m.event.kind, SCORE_FAILED);
                let error = m.event.error.as_ref().unwrap();
                assert_eq!(error.message.len(), notifier::MAX_ERROR_MESSAGE_BYTES);
                assert_eq!(m.attributes["type"], SCORE_FAILED.as_str());
            }
            other => panic!("unexpected subject {other}"),
        }
    }
    let high_band = received(&env, &high, 1).await;
    assert_eq!(subjects(&high_band), vec!["shop-risky"]);
}

#[tokio::test]
async fn stream_reader_remembers_its_position_and_seeks_back() {
    // Arrange
    let env = TestEnv::new().await;
    let (stream_arn, _) = stream_source(&env);
    let store = Store {
        store: env.score_store(),
        ttl: Duration::from_secs(3600),
    };
    store.complete(&subject("shop-1"), Band::Medium, 0.5).await; // 3 records
    let mut reader = StreamReader::new(&env.sdk, &stream_arn, StartingPosition::TrimHorizon)
        .await
        .unwrap();

    // Act
    let first = reader.poll(2).await.unwrap();
    let rest = reader.poll(100).await.unwrap();
    let nothing = reader.poll(100).await.unwrap();
    store.run(&subject("shop-2")).await; // 2 more
    let later = reader.poll(100).await.unwrap();
    reader
        .seek(StartingPosition::AtSequenceNumber(sequence_number(
            &first[1],
        )))
        .await
        .unwrap();
    let again = reader.poll(100).await.unwrap();

    // Assert
    let names = |rs: &[EventRecord]| rs.iter().map(|r| r.event_name.clone()).collect::<Vec<_>>();
    assert_eq!(names(&first), ["INSERT", "MODIFY"]);
    assert_eq!(names(&rest), ["MODIFY"]);
    assert!(nothing.is_empty());
    assert_eq!(names(&later), ["INSERT", "MODIFY"]);
    assert_eq!(again.len(), 4, "from the second record on");
    assert_eq!(sequence_number(&again[0]), sequence_number(&first[1]));
    assert_eq!(
        reader.last_sequence_number(),
        Some(sequence_number(&later[1]).as_str())
    );
    let record = &rest[0];
    assert_eq!(
        record.event_source_arn.as_deref(),
        Some(stream_arn.as_str())
    );
    assert_eq!(record.aws_region, "us-east-1");
    let done: shared::domain::ScoreRecord =
        serde_dynamo::from_item(record.change.new_image.clone()).unwrap();
    assert_eq!(done.status, ScoreStatus::Done);
    let running: shared::domain::ScoreRecord =
        serde_dynamo::from_item(record.change.old_image.clone()).unwrap();
    assert_eq!(running.status, ScoreStatus::Running);
    assert_eq!(running.job_id, done.job_id);
}

// ---------------------------------------------------------------------------------------------
// Publish failures

/// SNS accepting some entries of a PublishBatch and rejecting others: the rejected ids are not
/// sent and come back as failures; every other entry goes to the real topic through the real
/// Publisher. moto rejects no well-formed entry by itself, hence this seam.
struct RejectEntries {
    inner: Publisher,
    reject: HashSet<String>,
}

impl PublishBatch for RejectEntries {
    async fn publish_batch(
        &self,
        topic_arn: &str,
        messages: &[OutgoingMessage],
    ) -> Result<Vec<BatchFailure>, shared::Error> {
        let (rejected, accepted): (Vec<_>, Vec<_>) = messages
            .iter()
            .cloned()
            .partition(|m| self.reject.contains(&m.id));
        let mut failures = if accepted.is_empty() {
            Vec::new()
        } else {
            self.inner.publish_batch(topic_arn, &accepted).await?
        };
        failures.extend(rejected.into_iter().map(|m| BatchFailure {
            id: m.id,
            code: "InternalError".into(),
            sender_fault: false,
        }));
        Ok(failures)
    }
}

/// The first `ok_calls` PublishBatch calls go to the topic; later ones to a topic that does not
/// exist, so moto fails them as a whole (NotFound).
struct FailCallsAfter {
    inner: Publisher,
    ok_calls: usize,
    calls: AtomicUsize,
    missing_topic: String,
}

impl PublishBatch for FailCallsAfter {
    async fn publish_batch(
        &self,
        topic_arn: &str,
        messages: &[OutgoingMessage],
    ) -> Result<Vec<BatchFailure>, shared::Error> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst);
        let topic = if call < self.ok_calls {
            topic_arn
        } else {
            &self.missing_topic
        };
        self.inner.publish_batch(topic, messages).await
    }
}

fn missing_topic(env: &TestEnv) -> String {
    format!("{}-does-not-exist", topic(env))
}

/// mixed-batch.json: 16 records, 12 publishable, so two PublishBatch calls (10 + 2).
fn mixed() -> Vec<EventRecord> {
    payload("mixed-batch").1.records
}

#[tokio::test]
async fn a_rejected_entry_is_reported_and_nothing_after_its_chunk_is_published() {
    // Arrange
    let env = TestEnv::new().await;
    let all = env.subscribe_queue(&topic(&env), None).await;
    let records = mixed();
    let rejected = sequence_number(&records[3]); // shop-4, the third publishable record
    let deps = Deps::with_publisher(
        RejectEntries {
            inner: Publisher::new(shared::aws::sns(&env.function_sdk("NotifierFunction"))),
            reject: HashSet::from([rejected.clone()]),
        },
        topic(&env),
    );

    // Act
    let response = handle(invocation(records), &deps).await.unwrap();

    // Assert
    assert_eq!(failures(&response), vec![rejected]);
    let got = received(&env, &all, 9).await;
    // the first chunk but the rejected entry; not the second chunk (shop-13, shop-14)
    assert_eq!(
        subjects(&got),
        vec![
            "shop-10", "shop-11", "shop-12", "shop-2", "shop-3", "shop-5", "shop-6", "shop-7",
            "shop-9"
        ]
    );
}

#[tokio::test]
async fn a_rejected_entry_in_the_second_chunk_is_reported_after_the_first_chunk_is_published() {
    // Arrange
    let env = TestEnv::new().await;
    let all = env.subscribe_queue(&topic(&env), None).await;
    let records = mixed();
    let rejected = sequence_number(&records[15]); // shop-14, the last record
    let deps = Deps::with_publisher(
        RejectEntries {
            inner: Publisher::new(shared::aws::sns(&env.function_sdk("NotifierFunction"))),
            reject: HashSet::from([rejected.clone()]),
        },
        topic(&env),
    );

    // Act
    let response = handle(invocation(records), &deps).await.unwrap();

    // Assert
    assert_eq!(failures(&response), vec![rejected]);
    let got = received(&env, &all, 11).await;
    assert_eq!(got.len(), 11);
    assert!(!subjects(&got).contains(&"shop-14".to_owned()));
}

#[tokio::test]
async fn a_publish_call_failing_as_a_whole_reports_the_first_record_of_its_chunk() {
    // Arrange
    let env = TestEnv::new().await;
    let all = env.subscribe_queue(&topic(&env), None).await;
    let records = mixed();

    // Act: the topic does not exist (moto answers NotFound for the whole call)
    let config = notifier::Config {
        score_events_topic_arn: missing_topic(&env),
    };
    let response = handle(invocation(records.clone()), &Deps::new(&config, &env.sdk))
        .await
        .unwrap();

    // Assert: the first publishable record (records[0] is a pending INSERT, skipped)
    assert_eq!(failures(&response), vec![sequence_number(&records[1])]);
    assert!(received(&env, &all, 0).await.is_empty());

    // Act: the first call succeeds, the second fails as a whole
    let deps = Deps::with_publisher(
        FailCallsAfter {
            inner: Publisher::new(shared::aws::sns(&env.function_sdk("NotifierFunction"))),
            ok_calls: 1,
            calls: AtomicUsize::new(0),
            missing_topic: missing_topic(&env),
        },
        topic(&env),
    );
    let response = handle(invocation(records.clone()), &deps).await.unwrap();

    // Assert: the first chunk is published once, the second chunk starts at shop-13
    assert_eq!(failures(&response), vec![sequence_number(&records[14])]);
    let got = received(&env, &all, 10).await;
    assert_eq!(got.len(), 10);
    let unique: HashSet<String> = subjects(&got).into_iter().collect();
    assert_eq!(unique.len(), 10, "no message twice");
}

/// The EMF metrics notifier writes. The only test of this binary that flushes metrics (the
/// recorder is per process; other tests only add to it, so these are lower bounds).
#[tokio::test]
async fn published_failed_and_undecodable_records_are_metrics() {
    emulator::emf::record("deferred-notifier");
    let env = TestEnv::new().await;
    let records = mixed();
    let rejected = sequence_number(&records[3]);
    let rejecting = Deps::with_publisher(
        RejectEntries {
            inner: Publisher::new(shared::aws::sns(&env.function_sdk("NotifierFunction"))),
            reject: HashSet::from([rejected]),
        },
        topic(&env),
    );
    let deps = Deps::from_env(
        &env.function_env("NotifierFunction"),
        &env.function_sdk("NotifierFunction"),
    )
    .unwrap();

    handle(invocation(records), &rejecting).await.unwrap();
    for name in ["completed", "failed", "undecodable"] {
        handle(invocation(payload(name).1.records), &deps)
            .await
            .unwrap();
    }

    let emf = emulator::emf::flush();
    let total = |metric: &str, labels: &[(&str, &str)]| emf.total(metric, labels);
    assert!(
        total("EventsPublished", &[("type", "score.completed")]) >= Some(1.0),
        "{emf:#?}"
    );
    assert!(total("EventsPublished", &[("type", "score.failed")]) >= Some(1.0));
    // The rejected entry and every one after it in its chunk.
    assert!(total("EventsFailed", &[]) >= Some(1.0));
    assert!(total("RecordsUndecodable", &[]) >= Some(1.0));
}
