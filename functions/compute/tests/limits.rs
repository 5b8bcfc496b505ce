//! The largest result and failure compute can store, through the strict emulator.

use std::time::Duration;

use chrono::{DateTime, Utc};
use emulator::TestEnv;
use shared::domain::{
    Band, ClaimId, FeatureSummary, JobError, RequestReason, ScoreResult, SubjectId,
};
use shared::score_store::{ClaimOutcome, ScoreStore, StartMode, StartOutcome};

const TTL: Duration = Duration::from_secs(3600);

fn at(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_790_000_000 + seconds, 0).unwrap()
}

fn subject(name: &str) -> SubjectId {
    SubjectId::parse(name).unwrap()
}

async fn start_and_claim(
    store: &ScoreStore,
    s: &SubjectId,
) -> (shared::domain::ScoreRecord, ClaimId) {
    let mode = StartMode::Missing {
        failed_retry_after: Duration::from_secs(60),
        no_data_retry_after: Duration::from_secs(3600),
    };
    let StartOutcome::Started(job) = store
        .start_job(s, RequestReason::Miss, mode, at(0), TTL)
        .await
        .unwrap()
    else {
        panic!("a new subject starts a job")
    };
    let claim = ClaimId::new();
    let outcome = store
        .claim(s, job.job_id, &claim, at(1), Duration::from_secs(150), 5)
        .await
        .unwrap();
    assert!(matches!(outcome, ClaimOutcome::Claimed(_)), "{outcome:?}");
    (job, claim)
}

/// The largest result and failure the system can store: the model's bounds (64 terms, 16
/// reasons, 64-character names), numbers at the ends of f64's range, and a failure message of
/// any length. DynamoDB refuses items over 400 KB and numbers beyond 1e126 or below 1e-130 (the
/// strict emulator checks both); the store keeps a record far below the one and inside the other.
#[tokio::test]
async fn the_largest_result_and_failure_fit_a_dynamodb_item_with_room_to_spare() {
    // Arrange
    let env = TestEnv::new().await;
    let store = env.score_store();
    let name = |i: usize| format!("{i:0>64}");
    let largest = ScoreResult {
        score: 0.123_456_789_012_345_68,
        band: Band::High,
        reasons: (0..compute::model::MAX_REASONS)
            .map(|i| shared::domain::Reason {
                feature: name(i),
                value: f64::MAX,
                contribution: -f64::MIN_POSITIVE,
            })
            .collect(),
        model_version: format!("{}/{}", name(1), name(2)),
        feature_summary: FeatureSummary {
            objects: u64::MAX,
            bytes: u64::MAX,
            rows: u64::MAX,
            malformed_lines: u64::MAX,
            features: (0..compute::model::MAX_TERMS)
                .map(|i| (name(i), f64::MAX))
                .collect(),
        },
    };
    let long_failure = JobError::new(
        shared::domain::ErrorCode::CorruptObject,
        "é".repeat(1_000_000),
    );
    let (done, failed) = (subject(&"d".repeat(128)), subject(&"f".repeat(128)));

    // Act
    let (_, claim) = start_and_claim(&store, &done).await;
    let stored = store.complete(&done, &claim, &largest, at(2), TTL).await;
    let (job, failing_claim) = start_and_claim(&store, &failed).await;
    let stored_failure = store
        .fail(
            &failed,
            job.job_id,
            Some(&failing_claim),
            &long_failure,
            at(2),
            TTL,
        )
        .await;

    // Assert
    let record = stored.unwrap().expect("stored");
    let failure = stored_failure.unwrap().expect("stored");
    for record in [&record, &failure] {
        // DynamoDB counts names and values; the record's JSON is a little larger than that.
        let size = serde_json::to_string(record).unwrap().len();
        assert!(size < 40_000, "{} is {size} bytes", record.subject_id);
    }
    let stored_result = record.result.unwrap();
    assert_eq!(stored_result.reasons.len(), compute::model::MAX_REASONS);
    assert_eq!(
        stored_result,
        largest.storable(),
        "stored with numbers clamped"
    );
    assert_eq!(
        stored_result.reasons[0].value,
        shared::domain::DYNAMODB_MAX_NUMBER
    );
    assert_eq!(stored_result.reasons[0].contribution, 0.0);
    assert_eq!(
        failure.error.unwrap().message.chars().count(),
        JobError::MAX_MESSAGE_CHARS
    );
}
