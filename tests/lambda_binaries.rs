//! The real Lambda binaries (what `sam build` packages), each fed its `events/` payloads through
//! the Lambda Runtime API, with its environment from template.yaml and the emulator behind it.
//!
//! Every payload has its expected outcome here, asserted exactly: the status code and problem
//! type of each HTTP answer, the `batchItemFailures` of each batch, and what the binary left in
//! the tables. A new payload in `events/<function>/` fails its test until its outcome is added.
//! The files name a deployed stack's resources (they also serve `sam local invoke -e`); a test
//! points them at its own by rewriting their text, never the files.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use chrono::Utc;
use datagen::{Profile, SubjectSpec};
use emulator::fixtures;
use emulator::runtime_api::{invoke_binary, Invocation};
use emulator::TestEnv;
use serde_json::Value;
use shared::catalog_store::{split_key, CatalogEntry, Sequencer};
use shared::domain::{Band, RequestReason, ScoreRecord, ScoreStatus, SubjectId};
use shared::score_store::{StartMode, StartOutcome};

/// `LAMBDA_BIN_DIR` when set (e.g. `target/release`, see `make lambda-check`), else the
/// binaries cargo built beside the `deps/` folder holding this test.
fn binary(name: &str) -> PathBuf {
    let dir = match std::env::var_os("LAMBDA_BIN_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => {
            let exe = std::env::current_exe().expect("test executable path");
            exe.parent()
                .and_then(|deps| deps.parent())
                .expect("target profile dir")
                .to_path_buf()
        }
    };
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is not built: run `cargo build --workspace --bins` (make test does)",
        path.display()
    );
    path
}

/// Feeds the binary every payload of `events/<folder>/` (sorted by case, each text passed
/// through `rewrite` first) and returns each case with its response. `expected` must name
/// exactly those cases, in that order, so no payload goes unchecked.
async fn run(
    env: &TestEnv,
    function: &str,
    folder: &str,
    expected: &[&str],
    rewrite: impl Fn(String) -> String,
) -> Vec<(String, Value)> {
    let cases = fixtures::cases(folder);
    assert_eq!(
        cases, expected,
        "events/{folder}/ and this test's expected outcomes name different cases"
    );
    let inputs: Vec<Value> = cases
        .iter()
        .map(|case| fixtures::parse(folder, case, &rewrite(fixtures::text(folder, case))))
        .collect();

    let answers = invoke_binary(
        &binary(folder),
        &env.lambda_process_env(function),
        &inputs,
        Duration::from_secs(60),
    )
    .await
    .unwrap_or_else(|e| panic!("{folder}: {e}"));

    assert_eq!(answers.len(), cases.len());
    cases
        .into_iter()
        .zip(answers)
        .map(|(case, answer)| match answer {
            Invocation::Response(body) => (case, body),
            Invocation::Error(error) => panic!("{folder} failed on {case}: {error}"),
        })
        .collect()
}

/// The message ids (SQS) or sequence numbers (streams) of a partial batch response.
fn failures(case: &str, body: &Value) -> Vec<String> {
    body["batchItemFailures"]
        .as_array()
        .unwrap_or_else(|| panic!("{case}: not a partial batch response: {body}"))
        .iter()
        .map(|f| {
            f["itemIdentifier"]
                .as_str()
                .unwrap_or_else(|| panic!("{case}: {f}"))
                .to_owned()
        })
        .collect()
}

/// Each request-api payload: the status, and the problem `type` for an error (`None`: a score
/// or batch answer, `application/json`).
const REQUEST_API: &[(&str, u16, Option<&str>)] = &[
    ("batch-get", 200, None),
    ("get-score", 202, None),
    ("get-score-wait", 202, None),
    ("invalid-subject", 400, Some("/problems/invalid-subject-id")),
    ("malformed-json", 400, Some("/problems/invalid-request")),
    ("refresh", 202, None),
    ("too-many-subjects", 400, Some("/problems/invalid-request")),
    ("unknown-route", 404, Some("about:blank")),
    ("wrong-content-type", 415, Some("about:blank")),
    ("wrong-method", 405, Some("about:blank")),
];

#[tokio::test]
async fn request_api_binary_answers_each_http_payload_as_expected() {
    let env = TestEnv::new().await;
    let cases: Vec<&str> = REQUEST_API.iter().map(|(case, ..)| *case).collect();

    let answers = run(&env, "RequestApiFunction", "request-api", &cases, |text| {
        text
    })
    .await;

    let mut shop_42_job = None;
    for ((case, answer), (_, status, problem)) in answers.iter().zip(REQUEST_API) {
        let at = format!("{case}: {answer}");
        assert_eq!(answer["statusCode"], *status, "{at}");
        let header = |name: &str| answer["headers"][name].as_str().map(str::to_owned);
        let body: Value = serde_json::from_str(answer["body"].as_str().expect("a body"))
            .unwrap_or_else(|e| panic!("{at}: body is not JSON: {e}"));
        match problem {
            Some(kind) => {
                assert_eq!(
                    header("content-type").as_deref(),
                    Some("application/problem+json"),
                    "{at}"
                );
                assert_eq!(body["type"], *kind, "{at}");
                assert_eq!(body["status"], *status, "{at}");
                for member in ["title", "detail", "instance"] {
                    assert!(body[member].is_string(), "{at}: no {member}");
                }
            }
            None => assert_eq!(
                header("content-type").as_deref(),
                Some("application/json"),
                "{at}"
            ),
        }
        match case.as_str() {
            "batch-get" => {
                // A fresh table: every subject is started, once each, in request order.
                let results = body["results"].as_array().expect("results");
                let ids: Vec<&str> = results
                    .iter()
                    .map(|r| r["subject_id"].as_str().unwrap())
                    .collect();
                assert_eq!(ids, ["shop-42", "shop-7", "shop-99"], "{at}");
                assert!(results.iter().all(|r| r["status"] == "started"), "{at}");
                shop_42_job = Some(results[0]["job_id"].clone());
            }
            "get-score" | "get-score-wait" | "refresh" => {
                // batch-get started shop-42 and nothing computes it here: the same job, pending
                // (the long poll gives up), and refresh does not start another one.
                assert_eq!(body["subject_id"], "shop-42", "{at}");
                assert_eq!(body["status"], "pending", "{at}");
                assert_eq!(Some(&body["job_id"]), shop_42_job.as_ref(), "{at}");
                assert_eq!(
                    header("location").as_deref(),
                    Some("/v1/scores/shop-42"),
                    "{at}"
                );
                assert!(header("retry-after").is_some(), "{at}");
            }
            "wrong-method" => assert_eq!(header("allow").as_deref(), Some("GET"), "{at}"),
            _ => {}
        }
    }
}

/// The job ids in `events/compute/`, per subject.
const COMPUTE_JOBS: [(&str, &str); 3] = [
    ("shop-0001", "01JBZ8Q3W5X7Y9A1B3C5D7E9F1"),
    ("shop-0002", "01JBZ8Q3W6K2M4N6P8R0S2T4V6"),
    ("shop-0003", "01JBZ8Q3W7A9C1E3G5H7J9K1M3"),
];

async fn record(env: &TestEnv, subject: &str) -> ScoreRecord {
    env.score_store()
        .get(&SubjectId::parse(subject).unwrap(), Utc::now())
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("no score record for {subject}"))
}

#[tokio::test]
async fn compute_binary_scores_the_seeded_jobs_and_acknowledges_the_rest() {
    // Arrange: datasets for shop-0001 (a normal shop) and shop-0002 (many chargebacks), none
    // for shop-0003; a job for each, which the payloads' messages are pointed at.
    let env = TestEnv::new().await;
    let specs = [
        SubjectSpec::new(SubjectId::parse("shop-0001").unwrap(), 400, Profile::Normal),
        SubjectSpec::new(
            SubjectId::parse("shop-0002").unwrap(),
            400,
            Profile::Chargebacks,
        ),
    ];
    datagen::seed(
        &env.s3(),
        &env.catalog_store(),
        &env.names.data_bucket,
        &specs,
        3,
    )
    .await
    .expect("seed");
    let mut jobs = Vec::new();
    for (subject, fixture_job) in COMPUTE_JOBS {
        let outcome = env
            .score_store()
            .start_job(
                &SubjectId::parse(subject).unwrap(),
                RequestReason::Miss,
                StartMode::Refresh,
                Utc::now(),
                std::time::Duration::from_secs(3600),
            )
            .await
            .unwrap();
        let StartOutcome::Started(job) = outcome else {
            panic!("{subject}: not started")
        };
        jobs.push((fixture_job, job.job_id.to_string()));
    }

    // Act: batch, duplicate, malformed, single, in this order.
    let answers = run(
        &env,
        "ComputeFunction",
        "compute",
        &["batch", "duplicate", "malformed", "single"],
        |mut text| {
            for (fixture_job, job) in &jobs {
                text = text.replace(fixture_job, job);
            }
            text
        },
    )
    .await;

    // Assert: no message is to be delivered again. batch scores shop-0001 and shop-0002 and
    // fails shop-0003's job for want of data (a result, not a retry); duplicate and single
    // deliver shop-0001's finished job again; malformed has nothing that can ever succeed.
    for (case, answer) in &answers {
        assert_eq!(failures(case, answer), Vec::<String>::new(), "{case}");
    }
    let normal = record(&env, "shop-0001").await;
    assert_eq!(normal.status, ScoreStatus::Done, "{normal:?}");
    assert_eq!(normal.attempts, 1, "duplicates computed again: {normal:?}");
    let result = normal.result.expect("a result");
    assert_eq!(result.band, Band::Low);
    assert_eq!(result.feature_summary.rows, 400);
    let risky = record(&env, "shop-0002").await;
    assert_eq!(risky.status, ScoreStatus::Done, "{risky:?}");
    assert_ne!(risky.result.expect("a result").band, Band::Low);
    let empty = record(&env, "shop-0003").await;
    assert_eq!(empty.status, ScoreStatus::Failed, "{empty:?}");
    assert_eq!(
        empty.error.expect("an error").code,
        shared::domain::ErrorCode::NoData
    );
}

/// The bucket named in `events/metadata-sync/`.
const EVENTS_BUCKET: &str = "deferred-data-123456789012-us-east-1";
/// The key of create.json, delete.json and overwrite.json.
const ORDERS: &str = "datasets/shop-42/2026-11/orders.ndjson";
/// The key of out-of-order.json.
const REFUNDS: &str = "datasets/shop-42/2026-11/refunds.ndjson";
/// The key of delete-marker.json (a delete on the versioned bucket).
const RETURNS: &str = "datasets/shop-42/2026-11/returns.ndjson";
/// The keys of special-key.json, decoded, with their sequencers.
const SPECIAL_KEYS: [(&str, &str); 5] = [
    (
        "datasets/shop-42/2026 11/orders and refunds.ndjson",
        "00674A3B2C1D0E1000",
    ),
    ("datasets/shop-42/a+b=c&d.ndjson", "00674A3B2C1D0E1001"),
    (
        "datasets/shop-42/résumé/日本語 ファイル.ndjson",
        "00674A3B2C1D0E1002",
    ),
    ("datasets/shop-42/100% real.ndjson", "00674A3B2C1D0E1003"),
    (
        "datasets/shop-42/deep/er//than///you/think.ndjson",
        "00674A3B2C1D0E1004",
    ),
];

async fn catalog_entry(env: &TestEnv, key: &str) -> CatalogEntry {
    let (dir, name) = split_key(key);
    env.catalog_store()
        .get(&dir, &name)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("{key} is not in the catalog"))
}

#[tokio::test]
async fn metadata_sync_binary_catalogs_the_payloads_objects() {
    // Arrange: every object the payloads name is in this test's bucket, and the payloads name
    // that bucket (as a deployed stack's events name its own).
    let env = TestEnv::new().await;
    let bucket = env.names.data_bucket.clone();
    let body = "{\"amount\":1200}\n";
    for key in [ORDERS, REFUNDS, RETURNS]
        .into_iter()
        .chain(SPECIAL_KEYS.iter().map(|(key, _)| *key))
    {
        env.s3()
            .put_object()
            .bucket(&bucket)
            .key(key)
            .body(body.as_bytes().to_vec().into())
            .send()
            .await
            .unwrap_or_else(|e| panic!("put {key}: {e:?}"));
    }

    // Act: create, delete, delete-marker, out-of-order, overwrite, special-key, test-event, in
    // this order.
    let answers = run(
        &env,
        "MetadataSyncFunction",
        "metadata-sync",
        &[
            "create",
            "delete",
            "delete-marker",
            "out-of-order",
            "overwrite",
            "special-key",
            "test-event",
        ],
        |text| text.replace(EVENTS_BUCKET, &bucket),
    )
    .await;

    // Assert: every message succeeds, and the catalog holds the newest event of each key.
    for (case, answer) in &answers {
        assert_eq!(failures(case, answer), Vec::<String>::new(), "{case}");
    }
    // orders: created (…F10), deleted (…F30); the older overwrite (…F20) came too late.
    let orders = catalog_entry(&env, ORDERS).await;
    assert!(orders.deleted, "{orders:?}");
    assert_eq!(orders.sequencer, Sequencer::new("00674A3B2C1D0E0F30"));
    // refunds: the newer delete (…F50) wins over the create (…F40) delivered after it.
    let refunds = catalog_entry(&env, REFUNDS).await;
    assert!(refunds.deleted, "{refunds:?}");
    assert_eq!(refunds.sequencer, Sequencer::new("00674A3B2C1D0E0F50"));
    // returns: removed by a delete marker (ObjectRemoved:DeleteMarkerCreated).
    let returns = catalog_entry(&env, RETURNS).await;
    assert!(returns.deleted, "{returns:?}");
    assert_eq!(returns.sequencer, Sequencer::new("00674A3B2C1D0E0F60"));
    for (key, sequencer) in SPECIAL_KEYS {
        let entry = catalog_entry(&env, key).await;
        assert!(!entry.deleted, "{key}: {entry:?}");
        assert_eq!(entry.bucket, bucket, "{key}");
        assert_eq!(entry.size, body.len() as i64, "{key}");
        assert_eq!(entry.sequencer, Sequencer::new(sequencer), "{key}");
    }
    let listed = env
        .catalog_store()
        .list_dir("datasets/shop-42")
        .await
        .unwrap();
    assert_eq!(listed.len(), SPECIAL_KEYS.len(), "{listed:?}");
}

#[tokio::test]
async fn notifier_binary_publishes_exactly_the_finished_transitions() {
    // Arrange: a subscriber of ScoreEventsTopic.
    let env = TestEnv::new().await;
    let topic = env.resources.topics["ScoreEventsTopic"].clone();
    let subscriber = env.subscribe_queue(&topic, None).await;

    // Act
    let answers = run(
        &env,
        "NotifierFunction",
        "notifier",
        &[
            "completed",
            "failed",
            "mixed-batch",
            "rewritten-done",
            "stale-flip",
            "ttl-remove",
            "undecodable",
        ],
        |text| text,
    )
    .await;

    // Assert: no record is retried (an undecodable one can never succeed: it is logged, not
    // retried), and one event is published per finished transition: completed 1, failed 1,
    // mixed-batch 12 (10 completed, 2 failed), the others none.
    for (case, answer) in &answers {
        assert_eq!(failures(case, answer), Vec::<String>::new(), "{case}");
    }
    let published = env
        .drain_queue(&subscriber, 14, Duration::from_secs(20))
        .await;
    let mut kinds: HashMap<String, usize> = HashMap::new();
    for message in &published {
        let event: Value = serde_json::from_str(message.body().unwrap_or_default()).unwrap();
        *kinds
            .entry(event["type"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    assert_eq!(
        kinds,
        HashMap::from([
            ("score.completed".to_owned(), 11),
            ("score.failed".to_owned(), 3)
        ]),
        "{published:#?}"
    );
}
