//! Publisher against the emulator, with SNS behaviours moto never shows injected.

use emulator::faults::PartialBatches;
use emulator::TestEnv;
use shared::domain::{Band, JobError, JobId, RequestReason, ScoreRecord, ScoreResult, ScoreStatus};
use shared::domain::{FeatureSummary, SubjectId};
use shared::events::{ComputeRequested, ScoreEvent};
use shared::publisher::{OutgoingMessage, Publisher, MAX_PAYLOAD_BYTES};

fn message(i: usize) -> OutgoingMessage {
    OutgoingMessage {
        id: format!("m{i}"),
        body: format!("{{\"n\":{i}}}"),
        attributes: vec![("type", "test".into())],
    }
}

#[tokio::test]
async fn entries_sns_fails_are_reported_in_order_and_the_rest_are_delivered() {
    // Arrange: SNS accepts the call but fails two entries (one per call of 10), as it may.
    let env = TestEnv::new().await;
    let topic = &env.names.score_events_topic_arn;
    let queue = env.subscribe_queue(topic, None).await;
    let faults = PartialBatches::failed_publish_entries(["m11", "m3"]);
    let publisher = Publisher::new(aws_sdk_sns::Client::from_conf(
        aws_sdk_sns::config::Builder::from(&env.sdk)
            .interceptor(faults.clone())
            .build(),
    ));
    let messages: Vec<_> = (0..12).map(message).collect();

    // Act
    let failures = publisher.publish_batch(topic, &messages).await.unwrap();

    // Assert
    let failed: Vec<&str> = failures.iter().map(|f| f.id.as_str()).collect();
    assert_eq!(failed, ["m3", "m11"]);
    assert!(failures
        .iter()
        .all(|f| f.code == "InternalError" && !f.sender_fault));
    let delivered = env
        .drain_queue(&queue, 10, std::time::Duration::from_secs(5))
        .await;
    let mut bodies: Vec<String> = delivered.into_iter().filter_map(|m| m.body).collect();
    bodies.sort();
    let mut expected: Vec<String> = (0..12)
        .filter(|i| *i != 3 && *i != 11)
        .map(|i| format!("{{\"n\":{i}}}"))
        .collect();
    expected.sort();
    assert_eq!(
        bodies, expected,
        "exactly the accepted entries were delivered"
    );
}

/// The largest events the system publishes: a 128-character subject, a model version of two
/// 64-character names, the longest failure message, a trace id at its limit. SNS (and raw
/// delivery to SQS) refuse messages over 256 KiB.
#[tokio::test]
async fn the_largest_events_are_far_below_the_sns_and_sqs_limit_and_publish() {
    // Arrange
    let env = TestEnv::new().await;
    let subject = SubjectId::parse(&"s".repeat(SubjectId::MAX_LEN)).unwrap();
    let now = chrono::Utc::now();
    let requested = ComputeRequested::new(
        subject.clone(),
        JobId::new(),
        RequestReason::Redispatch,
        now,
        Some("t".repeat(shared::events::TRACE_ID_MAX_LEN)),
    );
    let record = |status, result, error| ScoreRecord {
        subject_id: subject.clone(),
        status,
        job_id: JobId::new(),
        reason: RequestReason::Miss,
        attempts: 5,
        requested_at: now,
        dispatched_at: now,
        dispatches: 1,
        started_at: Some(now),
        lease_until: None,
        claim_id: None,
        completed_at: Some(now),
        expires_at: 0,
        stale: false,
        result,
        error,
        trace_id: None,
    };
    let done = record(
        ScoreStatus::Done,
        Some(ScoreResult {
            score: 0.5,
            band: Band::High,
            reasons: vec![],
            model_version: format!("{}/{}", "n".repeat(64), "v".repeat(64)),
            feature_summary: FeatureSummary::default(),
        }),
        None,
    );
    let failed = record(
        ScoreStatus::Failed,
        None,
        Some(JobError::new(
            shared::domain::ErrorCode::CorruptObject,
            "x".repeat(1_000_000),
        )),
    );
    let messages = vec![
        OutgoingMessage::compute_requested(&requested).unwrap(),
        OutgoingMessage::score_event("done", &ScoreEvent::from_record(&done).unwrap()).unwrap(),
        OutgoingMessage::score_event("failed", &ScoreEvent::from_record(&failed).unwrap()).unwrap(),
    ];

    // Act
    let failures = env
        .publisher()
        .publish_batch(&env.names.score_events_topic_arn, &messages)
        .await;

    // Assert
    for m in &messages {
        assert!(
            m.payload_bytes() < 4_096,
            "{} is {} bytes",
            m.id,
            m.payload_bytes()
        );
        assert!(m.payload_bytes() < MAX_PAYLOAD_BYTES);
    }
    assert_eq!(failures.unwrap(), vec![]);
}
