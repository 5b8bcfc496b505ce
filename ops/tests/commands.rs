//! Every `deferred-ops` command against the emulator (template.yaml provisioned under a fresh
//! prefix per test), run as the operator (the emulator's administrator), parsed from its command
//! line as an operator would type it. Each asserts the effect on the resources, not only the
//! report.

use std::time::Duration;

use chrono::{DateTime, Utc};
use clap::Parser;
use deferred_ops::{Cli, Clients, Report, EXIT_ATTENTION};
use emulator::streams::{StartingPosition, StreamReader};
use emulator::TestEnv;
use shared::catalog_store::{CatalogEntry, Sequencer};
use shared::domain::{
    ClaimId, ErrorCode, JobError, RequestReason, ScoreRecord, ScoreStatus, SubjectId,
};
use shared::score_store::{ClaimOutcome, StartMode, StartOutcome};

const TTL: Duration = Duration::from_secs(86_400);
const LEASE: Duration = Duration::from_secs(150);

async fn ops(env: &TestEnv, args: &[&str], now: DateTime<Utc>) -> Report {
    let cli = Cli::try_parse_from(std::iter::once("deferred-ops").chain(args.iter().copied()))
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    deferred_ops::run(cli.command, &Clients::new(&env.sdk), now)
        .await
        .unwrap_or_else(|e| panic!("{args:?}: {}", shared::error::chain(&e)))
}

fn subject(id: &str) -> SubjectId {
    SubjectId::parse(id).unwrap()
}

fn ago(now: DateTime<Utc>, seconds: i64) -> DateTime<Utc> {
    now - chrono::Duration::seconds(seconds)
}

/// A new pending job for `id`, created at `at`.
async fn start(env: &TestEnv, id: &str, at: DateTime<Utc>) -> ScoreRecord {
    match env
        .score_store()
        .start_job(
            &subject(id),
            RequestReason::Miss,
            StartMode::Refresh,
            at,
            TTL,
        )
        .await
        .unwrap()
    {
        StartOutcome::Started(record) => record,
        other => panic!("{id}: {other:?}"),
    }
}

/// A job for `id` created at `created`, claimed at `claimed` (lease [`LEASE`]).
async fn running(
    env: &TestEnv,
    id: &str,
    created: DateTime<Utc>,
    claimed: DateTime<Utc>,
) -> ScoreRecord {
    let job = start(env, id, created).await;
    match env
        .score_store()
        .claim(&subject(id), job.job_id, &ClaimId::new(), claimed, LEASE, 5)
        .await
        .unwrap()
    {
        ClaimOutcome::Claimed(record) => record,
        other => panic!("{id}: {other:?}"),
    }
}

/// Fails `job` at `at` (by its claim when it has one), as compute or the store would.
async fn fail(env: &TestEnv, job: &ScoreRecord, error: &JobError, at: DateTime<Utc>) {
    env.score_store()
        .fail(
            &job.subject_id,
            job.job_id,
            job.claim_id.as_ref(),
            error,
            at,
            TTL,
        )
        .await
        .unwrap()
        .expect("the job fails");
}

async fn stored(env: &TestEnv, id: &str) -> ScoreRecord {
    env.score_store()
        .get(&subject(id), Utc::now())
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("{id} has no record"))
}

fn bodies(messages: &[aws_sdk_sqs::types::Message]) -> Vec<serde_json::Value> {
    messages
        .iter()
        .map(|m| serde_json::from_str(m.body().unwrap()).unwrap())
        .collect()
}

#[test]
fn help_lists_every_command() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_deferred-ops"))
        .arg("--help")
        .output()
        .expect("deferred-ops runs");
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).unwrap();
    for command in [
        "redrive",
        "stuck-jobs",
        "replay-notifier-failures",
        "catalog",
        "subject",
    ] {
        assert!(
            help.lines().any(|l| l.trim_start().starts_with(command)),
            "{command} missing from:\n{help}"
        );
    }
}

#[tokio::test]
async fn redrive_moves_dead_letters_back_to_their_source_queue() {
    let env = TestEnv::new().await;
    let dlq = env.resources.queue("ComputeDeadLetterQueue").url.clone();
    let source = env.resources.queue("ComputeQueue").url.clone();
    for i in 0..3 {
        env.sqs()
            .send_message()
            .queue_url(&dlq)
            .message_body(format!("{{\"n\":{i}}}"))
            .send()
            .await
            .unwrap();
    }

    let report = ops(
        &env,
        &["redrive", "--dlq", dlq.as_str(), "--wait-seconds", "10"],
        Utc::now(),
    )
    .await;

    let Report::Redrive(task) = &report else {
        panic!("{report:?}")
    };
    assert_eq!(task.status.as_deref(), Some("COMPLETED"), "{task:?}");
    assert_eq!(task.messages_moved, Some(3));
    assert_eq!(
        task.source_arn,
        env.resources.queue("ComputeDeadLetterQueue").arn
    );
    assert_eq!(report.exit_code(), 0);
    let mut moved: Vec<i64> = bodies(&env.drain_queue(&source, 3, Duration::from_secs(5)).await)
        .iter()
        .map(|b| b["n"].as_i64().unwrap())
        .collect();
    moved.sort();
    assert_eq!(moved, [0, 1, 2], "every message is back on ComputeQueue");
    assert!(env.drain_queue(&dlq, 0, Duration::ZERO).await.is_empty());
}

/// pending-stuck: pending, dispatched an hour ago; running-dead: claimed an hour ago (lease
/// long passed); running-live: dispatched an hour ago, claimed 10 s ago (live lease);
/// pending-fresh: dispatched 10 s ago. Returns the records as stored (times in milliseconds),
/// to compare with later reads.
async fn arrange_jobs(env: &TestEnv, now: DateTime<Utc>) -> [ScoreRecord; 4] {
    start(env, "pending-stuck", ago(now, 3600)).await;
    running(env, "running-dead", ago(now, 3600), ago(now, 3600)).await;
    running(env, "running-live", ago(now, 3600), ago(now, 10)).await;
    start(env, "pending-fresh", ago(now, 10)).await;
    [
        stored(env, "pending-stuck").await,
        stored(env, "running-dead").await,
        stored(env, "running-live").await,
        stored(env, "pending-fresh").await,
    ]
}

const SUBJECTS: [&str; 4] = [
    "pending-stuck",
    "running-dead",
    "running-live",
    "pending-fresh",
];

#[tokio::test]
async fn stuck_jobs_dry_run_changes_nothing_and_redispatch_republishes_only_stuck_jobs() {
    let env = TestEnv::new().await;
    let now = Utc::now();
    let jobs = arrange_jobs(&env, now).await;
    let probe = env
        .subscribe_queue(&env.names.compute_topic_arn, None)
        .await;
    let table = env.names.scores_table.clone();
    let topic = env.names.compute_topic_arn.clone();

    let dry = ops(
        &env,
        &["stuck-jobs", "--scores-table", table.as_str(), "--dry-run"],
        now,
    )
    .await;
    let Report::StuckJobs(dry) = dry else {
        panic!("{dry:?}")
    };
    let listed: Vec<&str> = dry.jobs.iter().map(|j| j.subject_id.as_str()).collect();
    assert_eq!(sorted(listed), ["pending-stuck", "running-dead"]);
    assert!(dry
        .jobs
        .iter()
        .all(|j| j.outcome == deferred_ops::stuck::Outcome::Listed));
    assert_eq!(dry.in_progress, 4);
    for (id, before) in SUBJECTS.iter().zip(&jobs) {
        assert_eq!(&stored(&env, id).await, before, "the dry run changed {id}");
    }
    assert!(env
        .drain_queue(&probe, 0, Duration::from_millis(300))
        .await
        .is_empty());

    let args: [&str; 7] = [
        "stuck-jobs",
        "--scores-table",
        &table,
        "--compute-topic-arn",
        &topic,
        "--action",
        "redispatch",
    ];
    let Report::StuckJobs(done) = ops(&env, &args, now).await else {
        panic!()
    };
    assert!(
        done.jobs
            .iter()
            .all(|j| j.outcome == deferred_ops::stuck::Outcome::Redispatched),
        "{done:?}"
    );
    let published = bodies(&env.drain_queue(&probe, 2, Duration::from_secs(5)).await);
    let mut republished: Vec<(String, String)> = published
        .iter()
        .map(|b| {
            assert_eq!(b["type"], "compute.requested");
            assert_eq!(b["reason"], "redispatch");
            (
                b["subject_id"].as_str().unwrap().to_owned(),
                b["job_id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    republished.sort();
    assert_eq!(
        republished,
        [
            ("pending-stuck".to_owned(), jobs[0].job_id.to_string()),
            ("running-dead".to_owned(), jobs[1].job_id.to_string()),
        ],
        "the same jobs, published again"
    );
    for (id, before) in SUBJECTS.iter().zip(&jobs) {
        let after = stored(&env, id).await;
        if ["pending-stuck", "running-dead"].contains(id) {
            assert_eq!(after.dispatches, 2, "{id}");
            assert_eq!(
                after.dispatched_at.timestamp_millis(),
                now.timestamp_millis()
            );
        } else {
            assert_eq!(&after, before, "{id} is not stuck and was changed");
        }
    }

    // A second run finds nothing: the re-dispatch reset the clock.
    let Report::StuckJobs(again) = ops(&env, &args, now).await else {
        panic!()
    };
    assert!(again.jobs.is_empty(), "{again:?}");
}

#[tokio::test]
async fn stuck_jobs_fail_fails_stuck_jobs_and_leaves_a_live_lease_alone() {
    let env = TestEnv::new().await;
    let now = Utc::now();
    let jobs = arrange_jobs(&env, now).await;
    let table = env.names.scores_table.clone();

    let report = ops(
        &env,
        &[
            "stuck-jobs",
            "--scores-table",
            table.as_str(),
            "--action",
            "fail",
        ],
        now,
    )
    .await;
    let Report::StuckJobs(report) = report else {
        panic!()
    };
    assert!(report
        .jobs
        .iter()
        .all(|j| j.outcome == deferred_ops::stuck::Outcome::Failed));
    assert_eq!(report.jobs.len(), 2, "{report:?}");

    for (id, before) in SUBJECTS.iter().zip(&jobs) {
        let after = stored(&env, id).await;
        if ["pending-stuck", "running-dead"].contains(id) {
            assert_eq!(after.status, ScoreStatus::Failed, "{id}");
            assert_eq!(after.job_id, before.job_id);
            let error = after.error.unwrap();
            assert_eq!(error.code, ErrorCode::DeadlineExceeded);
            assert!(error.retryable);
        } else {
            assert_eq!(&after, before, "{id} is not stuck and was changed");
        }
    }

    // The store's condition holds even against a caller that thinks the live job is stuck.
    let live = &jobs[2];
    let error = JobError::new(ErrorCode::DeadlineExceeded, "x");
    let refused = env
        .score_store()
        .fail(&live.subject_id, live.job_id, None, &error, now, TTL)
        .await
        .unwrap();
    assert_eq!(refused, None, "a live lease is respected");
}

#[tokio::test]
async fn replay_republishes_a_failed_range_and_reports_an_unreadable_one() {
    let env = TestEnv::new().await;
    let now = Utc::now();
    // Two jobs end failed: each a transition notifier announces (score.failed).
    let claimed = running(&env, "replay-a", ago(now, 60), ago(now, 50)).await;
    let error = JobError::new(ErrorCode::ModelError, "bad model");
    fail(&env, &claimed, &error, ago(now, 40)).await;
    let pending = start(&env, "replay-b", ago(now, 30)).await;
    fail(&env, &pending, &error, ago(now, 20)).await;

    let stream_arn = env
        .resources
        .table("ScoresTable")
        .stream_arn
        .clone()
        .unwrap();
    let mut reader = StreamReader::new(&env.sdk, &stream_arn, StartingPosition::TrimHorizon)
        .await
        .unwrap();
    let records = reader.poll(100).await.unwrap();
    assert_eq!(records.len(), 5, "insert, claim, fail; insert, fail");
    let sequence = |i: usize| records[i].change.sequence_number.clone().unwrap();
    let failure = |shard: &str| {
        serde_json::json!({
            "requestContext": {"condition": "RetryAttemptsExhausted", "approximateInvokeCount": 6},
            "responseContext": {"statusCode": 200, "functionError": "Unhandled"},
            "version": "1.0",
            "timestamp": now.to_rfc3339(),
            "DDBStreamBatchInfo": {
                "shardId": shard,
                "startSequenceNumber": sequence(0),
                "endSequenceNumber": sequence(4),
                "batchSize": 5,
                "streamArn": stream_arn,
            },
        })
        .to_string()
    };
    let queue = env.resources.queue("NotifierFailureQueue").url.clone();
    for body in [
        failure(reader.shard_id()),
        failure("shardId-00000001700000000000-00000000"),
    ] {
        env.sqs()
            .send_message()
            .queue_url(&queue)
            .message_body(body)
            .send()
            .await
            .unwrap();
    }
    let probe = env
        .subscribe_queue(&env.names.score_events_topic_arn, None)
        .await;
    let topic = env.names.score_events_topic_arn.clone();
    let args: [&str; 5] = [
        "replay-notifier-failures",
        "--failure-queue-url",
        &queue,
        "--score-events-topic-arn",
        &topic,
    ];

    let dry = ops(&env, &[&args[..], &["--dry-run"][..]].concat(), now).await;
    let Report::Replay(dry_report) = &dry else {
        panic!()
    };
    assert!(
        dry_report
            .ranges
            .iter()
            .any(|r| r.events == 2 && r.records == 5),
        "{dry_report:?}"
    );
    assert!(env
        .drain_queue(&probe, 0, Duration::from_millis(300))
        .await
        .is_empty());

    let report = ops(&env, &args, now).await;
    assert_eq!(
        report.exit_code(),
        EXIT_ATTENTION,
        "an unreadable range needs attention"
    );
    let Report::Replay(replay) = &report else {
        panic!()
    };
    assert_eq!(replay.ranges.len(), 2, "{replay:?}");
    let replayed = replay
        .ranges
        .iter()
        .find(|r| r.outcome == deferred_ops::replay::Outcome::Replayed)
        .expect("the readable range is replayed");
    assert_eq!((replayed.records, replayed.events), (5, 2));
    assert!(replay
        .ranges
        .iter()
        .any(|r| matches!(r.outcome, deferred_ops::replay::Outcome::Unreadable(_))));

    let events = bodies(&env.drain_queue(&probe, 2, Duration::from_secs(5)).await);
    let mut published: Vec<(String, String)> = events
        .iter()
        .map(|e| {
            assert_eq!(e["type"], "score.failed");
            assert_eq!(e["error"]["code"], "MODEL_ERROR");
            (
                e["subject_id"].as_str().unwrap().to_owned(),
                e["job_id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    published.sort();
    assert_eq!(
        published,
        [
            ("replay-a".to_owned(), claimed.job_id.to_string()),
            ("replay-b".to_owned(), pending.job_id.to_string()),
        ]
    );
    // Only the unreadable range's message is left, visible again for the next run and the alarm.
    let left = bodies(&env.drain_queue(&queue, 1, Duration::from_secs(5)).await);
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(
        left[0]["DDBStreamBatchInfo"]["shardId"],
        "shardId-00000001700000000000-00000000"
    );
}

fn entry(env: &TestEnv, key: &str, size: i64, etag: &str, sequencer: &str) -> CatalogEntry {
    let (dir, name) = shared::catalog_store::split_key(key);
    CatalogEntry {
        dir,
        name,
        bucket: env.names.data_bucket.clone(),
        size,
        etag: Some(etag.to_owned()),
        content_type: None,
        last_modified: None,
        user_metadata: Default::default(),
        sequencer: Sequencer::new(sequencer),
        deleted: false,
        expires_at: None,
    }
}

async fn put(env: &TestEnv, key: &str, body: &str) -> String {
    let output = env
        .s3()
        .put_object()
        .bucket(&env.names.data_bucket)
        .key(key)
        .body(body.as_bytes().to_vec().into())
        .send()
        .await
        .unwrap();
    output.e_tag.unwrap().trim_matches('"').to_owned()
}

async fn catalog_command(env: &TestEnv, mode: &str, now: DateTime<Utc>) -> Report {
    let (bucket, table) = (&env.names.data_bucket, &env.names.catalog_table);
    ops(
        env,
        &[
            "catalog",
            mode,
            "--bucket",
            bucket.as_str(),
            "--catalog-table",
            table.as_str(),
        ],
        now,
    )
    .await
}

#[tokio::test]
async fn catalog_verify_finds_drift_and_rebuild_fixes_it_below_later_events() {
    let env = TestEnv::new().await;
    let now = Utc::now();
    let line = "{\"buyer\":\"b\"}\n";
    let in_sync = put(&env, "datasets/shop-a/1.ndjson", line).await;
    put(&env, "datasets/shop-a/2.ndjson", line).await; // never cataloged: missing
    let changed = put(&env, "datasets/shop-b/x.ndjson", &line.repeat(3)).await;
    env.catalog_store()
        .apply(vec![
            entry(
                &env,
                "datasets/shop-a/1.ndjson",
                line.len() as i64,
                &in_sync,
                "0055AED6DCD90281E5",
            ),
            entry(
                &env,
                "datasets/shop-a/3.ndjson",
                10,
                "gone",
                "0055AED6DCD90281E5",
            ), // orphaned
            entry(
                &env,
                "datasets/shop-b/x.ndjson",
                1,
                "old",
                "0055AED6DCD90281E5",
            ), // stale
        ])
        .await
        .unwrap();
    let run = |mode: &'static str| catalog_command(&env, mode, now);

    let verify = run("verify").await;
    assert_eq!(verify.exit_code(), EXIT_ATTENTION);
    let Report::Catalog(found) = &verify else {
        panic!()
    };
    let drift: Vec<(String, deferred_ops::catalog::DriftKind)> = found
        .drift
        .iter()
        .map(|d| (d.key.clone(), d.kind))
        .collect();
    use deferred_ops::catalog::DriftKind::*;
    assert_eq!(
        drift,
        [
            ("datasets/shop-a/2.ndjson".to_owned(), Missing),
            ("datasets/shop-a/3.ndjson".to_owned(), Orphaned),
            ("datasets/shop-b/x.ndjson".to_owned(), Stale),
        ]
    );

    let rebuild = run("rebuild").await;
    let Report::Catalog(fixed) = &rebuild else {
        panic!()
    };
    assert_eq!(
        (fixed.written, fixed.skipped),
        (Some(3), Some(0)),
        "{fixed:?}"
    );
    let catalog = env.catalog_store();
    let x = catalog
        .get("datasets/shop-b", "x.ndjson")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (x.size, x.etag.as_deref()),
        (line.len() as i64 * 3, Some(changed.as_str()))
    );
    assert!(x.sequencer > Sequencer::new("0055AED6DCD90281E5"));
    let orphan = catalog
        .get("datasets/shop-a", "3.ndjson")
        .await
        .unwrap()
        .unwrap();
    assert!(orphan.deleted, "an orphan becomes a tombstone");
    assert!(catalog
        .get("datasets/shop-a", "2.ndjson")
        .await
        .unwrap()
        .is_some());

    let again = run("verify").await;
    let Report::Catalog(clean) = &again else {
        panic!()
    };
    assert!(clean.drift.is_empty(), "{clean:?}");
    assert_eq!(again.exit_code(), 0);

    // A real S3 event for a rebuilt key, even one only just newer than what was stored, wins.
    let later = entry(
        &env,
        "datasets/shop-b/x.ndjson",
        7,
        "new",
        "0055AED6DCD90281E6",
    );
    let applied = catalog.apply(vec![later]).await.unwrap();
    assert_eq!(applied.written, 1);
    assert_eq!(
        catalog
            .get("datasets/shop-b", "x.ndjson")
            .await
            .unwrap()
            .unwrap()
            .size,
        7
    );
}

#[tokio::test]
async fn subject_shows_the_record_its_objects_and_the_latest_jobs_history() {
    let env = TestEnv::new().await;
    let now = Utc::now();
    let claimed = running(&env, "shop-s", ago(now, 60), ago(now, 50)).await;
    let error = JobError::new(ErrorCode::CorruptObject, "2.ndjson line 3");
    fail(&env, &claimed, &error, ago(now, 40)).await;
    let etag = put(&env, "datasets/shop-s/1.ndjson", "{}\n").await;
    env.catalog_store()
        .apply(vec![entry(
            &env,
            "datasets/shop-s/1.ndjson",
            3,
            &etag,
            "01",
        )])
        .await
        .unwrap();
    let (scores, catalog) = (
        env.names.scores_table.clone(),
        env.names.catalog_table.clone(),
    );

    let report = ops(
        &env,
        &[
            "subject",
            "shop-s",
            "--scores-table",
            scores.as_str(),
            "--catalog-table",
            catalog.as_str(),
        ],
        now,
    )
    .await;

    let Report::Subject(shown) = &report else {
        panic!()
    };
    let record = shown.record.as_ref().expect("the record");
    assert_eq!(
        (record.job_id, record.status),
        (claimed.job_id, ScoreStatus::Failed)
    );
    assert!(!shown.expired);
    assert_eq!(shown.objects.len(), 1);
    assert_eq!(shown.objects[0].key(), "datasets/shop-s/1.ndjson");
    let history: Vec<&str> = shown.history.iter().map(|m| m.what.as_str()).collect();
    assert_eq!(history.len(), 3, "{history:?}");
    assert!(history[0].starts_with("requested"));
    assert!(history[1].starts_with("claimed (attempt 1"));
    assert!(history[2].starts_with("failed: CORRUPT_OBJECT"));
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    assert_eq!(json["record"]["job_id"], claimed.job_id.to_string());
    assert!(report.to_string().contains("failed: CORRUPT_OBJECT"));

    let unknown = ops(
        &env,
        &[
            "subject",
            "shop-none",
            "--scores-table",
            scores.as_str(),
            "--catalog-table",
            catalog.as_str(),
        ],
        now,
    )
    .await;
    let Report::Subject(none) = unknown else {
        panic!()
    };
    assert!(none.record.is_none() && none.objects.is_empty() && none.history.is_empty());
}

fn sorted<T: Ord>(mut items: Vec<T>) -> Vec<T> {
    items.sort();
    items
}
