//! ScoreStore against the emulator: every transition of docs/ARCHITECTURE.md, and the races.

use std::time::Duration;

use chrono::{DateTime, Utc};
use emulator::faults::PartialBatches;
use emulator::TestEnv;
use shared::domain::{
    Band, ClaimId, ErrorCode, FeatureSummary, JobError, RequestReason, ScoreResult, ScoreStatus,
    SubjectId,
};
use shared::score_store::{ClaimOutcome, ScoreStore, StartMode, StartOutcome};

const TTL: Duration = Duration::from_secs(3600);
const LEASE: Duration = Duration::from_secs(150);
const MAX_ATTEMPTS: u32 = 5;
const MISSING: StartMode = StartMode::Missing {
    failed_retry_after: Duration::from_secs(60),
    no_data_retry_after: Duration::from_secs(3600),
};

fn subject(name: &str) -> SubjectId {
    SubjectId::parse(name).unwrap()
}

fn at(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_790_000_000 + seconds, 0).unwrap()
}

fn result(score: f64) -> ScoreResult {
    ScoreResult {
        score,
        band: Band::Low,
        reasons: vec![],
        model_version: "test-1".into(),
        feature_summary: FeatureSummary::default(),
    }
}

async fn started(
    store: &ScoreStore,
    s: &SubjectId,
    mode: StartMode,
    now: DateTime<Utc>,
) -> shared::domain::ScoreRecord {
    match store
        .start_job(s, RequestReason::Miss, mode, now, TTL)
        .await
        .unwrap()
    {
        StartOutcome::Started(record) => record,
        other => panic!("expected a new job, got {other:?}"),
    }
}

async fn claimed(
    store: &ScoreStore,
    r: &shared::domain::ScoreRecord,
    claim: &ClaimId,
    now: DateTime<Utc>,
) -> shared::domain::ScoreRecord {
    match store
        .claim(&r.subject_id, r.job_id, claim, now, LEASE, MAX_ATTEMPTS)
        .await
        .unwrap()
    {
        ClaimOutcome::Claimed(record) => record,
        other => panic!("expected the claim, got {other:?}"),
    }
}

#[tokio::test]
async fn first_request_creates_a_pending_job_and_the_next_sees_it() {
    let env = TestEnv::new().await;
    let store = env.score_store();
    let s = subject("shop-1");

    let job = started(&store, &s, MISSING, at(0)).await;
    let again = store
        .start_job(&s, RequestReason::Miss, MISSING, at(1), TTL)
        .await
        .unwrap();

    assert_eq!(job.status, ScoreStatus::Pending);
    match again {
        StartOutcome::Existing(Some(existing)) => assert_eq!(existing.job_id, job.job_id),
        other => panic!("expected the existing job, got {other:?}"),
    }
    assert_eq!(
        store.get(&s, at(2)).await.unwrap().unwrap().job_id,
        job.job_id
    );
}

/// Regression: `start_job` in `Missing` mode (every GET that has to start a job) once bound
/// `:pending` and `:running`, which only the `Refresh` condition uses. DynamoDB rejects such a
/// PutItem with ValidationException; moto accepted it. The emulator checks every DynamoDB request
/// against a strict DynamoDB, so this test failed on the old code.
#[tokio::test]
async fn every_kind_of_job_start_is_a_request_dynamodb_accepts() {
    let env = TestEnv::new().await;
    let store = env.score_store();
    let (absent, stale, failed) = (
        subject("shop-new"),
        subject("shop-stale"),
        subject("shop-failed"),
    );
    let retryable = JobError {
        code: ErrorCode::Unavailable,
        message: "try later".into(),
        retryable: true,
    };

    // absent -> pending (Missing), and a refresh of a pending job (Refresh, refused)
    let first = started(&store, &absent, MISSING, at(0)).await;
    assert!(matches!(
        store
            .start_job(&absent, RequestReason::Refresh, StartMode::Refresh, at(1), TTL)
            .await
            .unwrap(),
        StartOutcome::Existing(Some(ref r)) if r.job_id == first.job_id
    ));
    // stale -> pending (Missing)
    let done = started(&store, &stale, MISSING, at(0)).await;
    let claim = ClaimId::new();
    claimed(&store, &done, &claim, at(1)).await;
    store
        .complete(&stale, &claim, &result(0.1), at(2), TTL)
        .await
        .unwrap()
        .unwrap();
    assert!(store.mark_stale(&stale).await.unwrap());
    assert_ne!(
        started(&store, &stale, MISSING, at(3)).await.job_id,
        done.job_id
    );
    // retryable failure past the retry delay -> pending (Missing), and a refresh of a finished job
    let job = started(&store, &failed, MISSING, at(0)).await;
    store
        .fail(&failed, job.job_id, None, &retryable, at(1), TTL)
        .await
        .unwrap()
        .unwrap();
    let retried = started(&store, &failed, MISSING, at(120)).await;
    assert_ne!(retried.job_id, job.job_id);
    let claim = ClaimId::new();
    claimed(&store, &retried, &claim, at(121)).await;
    store
        .complete(&failed, &claim, &result(0.2), at(122), TTL)
        .await
        .unwrap()
        .unwrap();
    started(&store, &failed, StartMode::Refresh, at(123)).await;
}

#[tokio::test]
async fn concurrent_first_requests_create_exactly_one_job() {
    let env = TestEnv::new().await;
    let store = env.score_store();
    let s = subject("shop-race");

    let attempts = (0..8).map(|_| {
        let (store, s) = (store.clone(), s.clone());
        tokio::spawn(async move {
            store
                .start_job(&s, RequestReason::Miss, MISSING, at(0), TTL)
                .await
                .unwrap()
        })
    });
    let outcomes: Vec<StartOutcome> = futures::future::join_all(attempts)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();

    let winners: Vec<_> = outcomes
        .iter()
        .filter_map(|o| match o {
            StartOutcome::Started(r) => Some(r.job_id),
            _ => None,
        })
        .collect();
    assert_eq!(winners.len(), 1, "{outcomes:?}");
    for outcome in &outcomes {
        if let StartOutcome::Existing(existing) = outcome {
            assert_eq!(existing.as_ref().unwrap().job_id, winners[0]);
        }
    }
}

#[tokio::test]
async fn concurrent_claims_have_exactly_one_winner() {
    let env = TestEnv::new().await;
    let store = env.score_store();
    let job = started(&store, &subject("shop-claims"), MISSING, at(0)).await;

    let claims = (0..6).map(|_| {
        let (store, job) = (store.clone(), job.clone());
        tokio::spawn(async move {
            store
                .claim(
                    &job.subject_id,
                    job.job_id,
                    &ClaimId::new(),
                    at(1),
                    LEASE,
                    MAX_ATTEMPTS,
                )
                .await
                .unwrap()
        })
    });
    let outcomes: Vec<ClaimOutcome> = futures::future::join_all(claims)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();

    let won = outcomes
        .iter()
        .filter(|o| matches!(o, ClaimOutcome::Claimed(_)))
        .count();
    assert_eq!(won, 1, "{outcomes:?}");
}

#[tokio::test]
async fn a_claim_needs_the_same_job() {
    let env = TestEnv::new().await;
    let store = env.score_store();
    let job = started(&store, &subject("shop-other-job"), MISSING, at(0)).await;

    let outcome = store
        .claim(
            &job.subject_id,
            shared::domain::JobId::new(),
            &ClaimId::new(),
            at(1),
            LEASE,
            MAX_ATTEMPTS,
        )
        .await
        .unwrap();

    assert!(
        matches!(outcome, ClaimOutcome::NotClaimable(Some(ref r)) if r.status == ScoreStatus::Pending),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn an_expired_lease_is_reclaimed_and_the_late_completion_rejected() {
    let env = TestEnv::new().await;
    let store = env.score_store();
    let job = started(&store, &subject("shop-lease"), MISSING, at(0)).await;
    let (first, second) = (ClaimId::new(), ClaimId::new());
    claimed(&store, &job, &first, at(1)).await;

    let while_live = store
        .claim(
            &job.subject_id,
            job.job_id,
            &second,
            at(100),
            LEASE,
            MAX_ATTEMPTS,
        )
        .await
        .unwrap();
    let after_lease = claimed(&store, &job, &second, at(1 + 151)).await;
    let late = store
        .complete(&job.subject_id, &first, &result(0.9), at(200), TTL)
        .await
        .unwrap();
    let holder = store
        .complete(&job.subject_id, &second, &result(0.2), at(201), TTL)
        .await
        .unwrap();

    assert!(matches!(while_live, ClaimOutcome::NotClaimable(_)));
    assert_eq!(after_lease.attempts, 2);
    assert!(late.is_none(), "a lost claim must not complete the job");
    let done = holder.expect("the holder completes");
    assert_eq!(done.status, ScoreStatus::Done);
    assert_eq!(done.result.unwrap().score, 0.2);
    assert!(done.lease_until.is_none());
}

#[tokio::test]
async fn completion_is_served_and_not_recomputed() {
    let env = TestEnv::new().await;
    let store = env.score_store();
    let s = subject("shop-done");
    let job = started(&store, &s, MISSING, at(0)).await;
    let claim = ClaimId::new();
    claimed(&store, &job, &claim, at(1)).await;

    store
        .complete(&s, &claim, &result(0.5), at(5), TTL)
        .await
        .unwrap()
        .unwrap();
    let again = store
        .start_job(&s, RequestReason::Miss, MISSING, at(6), TTL)
        .await
        .unwrap();
    let reclaim = store
        .claim(&s, job.job_id, &ClaimId::new(), at(7), LEASE, MAX_ATTEMPTS)
        .await
        .unwrap();

    let record = store.get(&s, at(6)).await.unwrap().unwrap();
    assert_eq!(record.status, ScoreStatus::Done);
    assert_eq!(record.completed_at, Some(at(5)));
    assert_eq!(record.expires_at, at(5).timestamp() + TTL.as_secs() as i64);
    assert!(matches!(again, StartOutcome::Existing(Some(ref r)) if r.status == ScoreStatus::Done));
    assert!(
        matches!(reclaim, ClaimOutcome::NotClaimable(Some(_))),
        "a duplicate delivery must not claim a done job"
    );
}

#[tokio::test]
async fn an_expired_item_counts_as_absent() {
    let env = TestEnv::new().await;
    let store = env.score_store();
    let s = subject("shop-expired");
    let job = started(&store, &s, MISSING, at(0)).await;
    let expiry = at(TTL.as_secs() as i64);

    let before = store
        .get(&s, expiry - chrono::Duration::seconds(1))
        .await
        .unwrap();
    let after = store.get(&s, expiry).await.unwrap();
    let restarted = started(&store, &s, MISSING, expiry).await;
    let claim_old = store
        .claim(&s, job.job_id, &ClaimId::new(), expiry, LEASE, MAX_ATTEMPTS)
        .await
        .unwrap();

    assert!(before.is_some());
    assert!(after.is_none(), "moto never expires items; the store must");
    assert_ne!(restarted.job_id, job.job_id);
    assert!(matches!(claim_old, ClaimOutcome::NotClaimable(_)));
}

#[tokio::test]
async fn stale_results_are_recomputed() {
    let env = TestEnv::new().await;
    let store = env.score_store();
    let s = subject("shop-stale");
    let job = started(&store, &s, MISSING, at(0)).await;
    let claim = ClaimId::new();
    claimed(&store, &job, &claim, at(1)).await;
    store
        .complete(&s, &claim, &result(0.1), at(2), TTL)
        .await
        .unwrap()
        .unwrap();

    let marked = store.mark_stale(&s).await.unwrap();
    let marked_absent = store.mark_stale(&subject("shop-nobody")).await.unwrap();
    let next = started(&store, &s, MISSING, at(3)).await;

    assert!(marked);
    assert!(!marked_absent);
    assert!(
        store
            .get(&subject("shop-nobody"), at(3))
            .await
            .unwrap()
            .is_none(),
        "marking must not create items"
    );
    assert_ne!(next.job_id, job.job_id);
    assert!(!store.get(&s, at(4)).await.unwrap().unwrap().stale);
}

#[tokio::test]
async fn failures_are_reported_then_retried_when_retryable() {
    let env = TestEnv::new().await;
    let store = env.score_store();
    let (retryable, permanent) = (subject("shop-fail-r"), subject("shop-fail-p"));
    for (s, is_retryable) in [(&retryable, true), (&permanent, false)] {
        let job = started(&store, s, MISSING, at(0)).await;
        let claim = ClaimId::new();
        claimed(&store, &job, &claim, at(1)).await;
        let error = JobError {
            code: ErrorCode::Internal,
            message: "boom".into(),
            retryable: is_retryable,
        };
        let failed = store
            .fail(s, job.job_id, Some(&claim), &error, at(2), TTL)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(failed.status, ScoreStatus::Failed);
        assert!(failed.result.is_none());
    }

    let soon = store
        .start_job(&retryable, RequestReason::Miss, MISSING, at(30), TTL)
        .await
        .unwrap();
    let later = store
        .start_job(&retryable, RequestReason::Miss, MISSING, at(2 + 60), TTL)
        .await
        .unwrap();
    let permanent_later = store
        .start_job(&permanent, RequestReason::Miss, MISSING, at(2 + 600), TTL)
        .await
        .unwrap();
    let permanent_refresh = store
        .start_job(
            &permanent,
            RequestReason::Refresh,
            StartMode::Refresh,
            at(2 + 601),
            TTL,
        )
        .await
        .unwrap();

    assert!(matches!(soon, StartOutcome::Existing(Some(ref r)) if r.status == ScoreStatus::Failed));
    assert!(matches!(later, StartOutcome::Started(_)));
    assert!(
        matches!(permanent_later, StartOutcome::Existing(Some(ref r)) if r.status == ScoreStatus::Failed)
    );
    assert!(matches!(permanent_refresh, StartOutcome::Started(_)));
}

#[tokio::test]
async fn refresh_does_not_replace_a_job_in_flight() {
    let env = TestEnv::new().await;
    let store = env.score_store();
    let s = subject("shop-refresh");
    let job = started(&store, &s, MISSING, at(0)).await;

    let while_pending = store
        .start_job(&s, RequestReason::Refresh, StartMode::Refresh, at(1), TTL)
        .await
        .unwrap();
    let claim = ClaimId::new();
    claimed(&store, &job, &claim, at(2)).await;
    let while_running = store
        .start_job(&s, RequestReason::Refresh, StartMode::Refresh, at(3), TTL)
        .await
        .unwrap();
    store
        .complete(&s, &claim, &result(0.3), at(4), TTL)
        .await
        .unwrap()
        .unwrap();
    let when_done = store
        .start_job(&s, RequestReason::Refresh, StartMode::Refresh, at(5), TTL)
        .await
        .unwrap();

    assert!(matches!(while_pending, StartOutcome::Existing(_)));
    assert!(matches!(while_running, StartOutcome::Existing(_)));
    assert!(
        matches!(when_done, StartOutcome::Started(ref r) if r.reason == RequestReason::Refresh)
    );
}

#[tokio::test]
async fn an_unclaimed_job_is_redispatched_once_after_the_timeout() {
    let env = TestEnv::new().await;
    let store = env.score_store();
    let s = subject("shop-lost");
    let job = started(&store, &s, MISSING, at(0)).await;
    let timeout = Duration::from_secs(30);

    let early = store
        .redispatch(&s, job.job_id, 1, at(10), timeout)
        .await
        .unwrap();
    let racers = (0..4).map(|_| {
        let (store, s) = (store.clone(), s.clone());
        tokio::spawn(async move {
            store
                .redispatch(&s, job.job_id, 1, at(31), timeout)
                .await
                .unwrap()
        })
    });
    let winners = futures::future::join_all(racers)
        .await
        .into_iter()
        .filter(|r| r.as_ref().unwrap().is_some())
        .count();

    assert!(early.is_none());
    assert_eq!(winners, 1);
    let record = store.get(&s, at(32)).await.unwrap().unwrap();
    assert_eq!(record.job_id, job.job_id, "still one job");
    assert_eq!(record.dispatched_at, at(31));
}

#[tokio::test]
async fn a_last_attempt_fails_the_job_without_a_claim() {
    let env = TestEnv::new().await;
    let store = env.score_store();
    let s = subject("shop-last");
    let job = started(&store, &s, MISSING, at(0)).await;
    let error = JobError {
        code: ErrorCode::Internal,
        message: "gave up".into(),
        retryable: true,
    };

    let wrong_job = store
        .fail(&s, shared::domain::JobId::new(), None, &error, at(1), TTL)
        .await
        .unwrap();
    let failed = store
        .fail(&s, job.job_id, None, &error, at(2), TTL)
        .await
        .unwrap();

    assert!(wrong_job.is_none());
    assert_eq!(failed.unwrap().error.unwrap().code, ErrorCode::Internal);
}

#[tokio::test]
async fn batch_get_spans_chunks_and_skips_absent_and_expired() {
    let env = TestEnv::new().await;
    let store = env.score_store();
    let subjects: Vec<SubjectId> = (0..150).map(|i| subject(&format!("shop-b{i}"))).collect();
    for s in subjects.iter().step_by(2) {
        started(&store, s, MISSING, at(0)).await;
    }
    let short = Duration::from_secs(10);
    store
        .start_job(&subjects[1], RequestReason::Miss, MISSING, at(0), short)
        .await
        .unwrap();

    let mut asked = subjects.clone();
    asked.extend(subjects[..3].iter().cloned()); // DynamoDB rejects repeated keys; the store must not send them

    let found = store.batch_get(&asked, at(20)).await.unwrap();

    assert_eq!(found.len(), 75);
    assert!(subjects.iter().step_by(2).all(|s| found.contains_key(s)));
    assert!(!found.contains_key(&subjects[1]), "expired");
}

#[tokio::test]
async fn batch_get_reads_unprocessed_keys_again() {
    // Arrange: DynamoDB answers the first three calls with one item each and the rest as
    // UnprocessedKeys, as it does when a partition runs out of read capacity.
    let env = TestEnv::new().await;
    let store = env.score_store();
    let subjects: Vec<SubjectId> = (0..30).map(|i| subject(&format!("shop-u{i}"))).collect();
    for s in &subjects {
        started(&store, s, MISSING, at(0)).await;
    }
    let faults = PartialBatches::unprocessed_dynamodb_items(3);
    let pressured = ScoreStore::new(
        aws_sdk_dynamodb::Client::from_conf(
            aws_sdk_dynamodb::config::Builder::from(&env.sdk)
                .interceptor(faults.clone())
                .build(),
        ),
        &env.names.scores_table,
    );

    // Act
    let found = pressured.batch_get(&subjects, at(1)).await.unwrap();

    // Assert
    assert!(!faults.undone().is_empty(), "the fault was injected");
    assert_eq!(
        found.len(),
        30,
        "every record read despite the unprocessed keys"
    );
}

/// Regression: the job-level fail (used without a claim, on a message's last delivery) once
/// failed a job that another worker was running under a live lease.
#[tokio::test]
async fn a_failure_without_a_claim_leaves_a_job_held_under_a_live_lease_alone() {
    let env = TestEnv::new().await;
    let store = env.score_store();
    let s = subject("shop-held");
    let job = started(&store, &s, MISSING, at(0)).await;
    let worker = ClaimId::new();
    claimed(&store, &job, &worker, at(1)).await;
    let error = JobError::new(
        ErrorCode::Unavailable,
        "the last delivery could not claim it",
    );

    let while_held = store
        .fail(&s, job.job_id, None, &error, at(2), TTL)
        .await
        .unwrap();
    let after_lease = store
        .fail(
            &s,
            job.job_id,
            None,
            &error,
            at(1) + LEASE + Duration::from_secs(1),
            TTL,
        )
        .await
        .unwrap();

    assert_eq!(
        while_held, None,
        "a live worker's job is not failed under it"
    );
    assert_eq!(after_lease.unwrap().status, ScoreStatus::Failed);
}

#[tokio::test]
async fn a_job_out_of_attempts_cannot_be_claimed_again() {
    let env = TestEnv::new().await;
    let store = env.score_store();
    let s = subject("shop-attempts");
    let job = started(&store, &s, MISSING, at(0)).await;
    for run in 0..MAX_ATTEMPTS {
        let now = at(1 + i64::from(run) * 200);
        claimed(&store, &job, &ClaimId::new(), now).await;
    }
    let later = at(1 + i64::from(MAX_ATTEMPTS) * 200);

    let outcome = store
        .claim(&s, job.job_id, &ClaimId::new(), later, LEASE, MAX_ATTEMPTS)
        .await
        .unwrap();

    match outcome {
        ClaimOutcome::NotClaimable(Some(current)) => {
            assert_eq!(current.attempts, MAX_ATTEMPTS);
            assert!(
                current.is_claimable(job.job_id, later),
                "claimable but for its attempts"
            );
        }
        other => panic!("expected NotClaimable, got {other:?}"),
    }
}
