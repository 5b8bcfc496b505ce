//! compute's handler against the emulator (moto): `scripts/moto.sh run cargo test -p compute`.
//!
//! Payloads are the files in `events/compute/`, with each message's subject and job replaced by
//! the ones a test creates. Data is arranged the way production has it: objects in the data
//! bucket and their entries in the catalog.
//!
//! Transient failures are real ones: the subject's objects are read through the shipped
//! [`LakeSource`] with an S3 client whose endpoint refuses connections, so the SDK's own
//! dispatch failure, classified by `shared::Error::aws`, is what the handler sees. A small
//! routing [`FeatureSource`] sends one subject there and the others to the working source.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use chrono::Utc;
use compute::{handle, Deps, FeatureSource, LakeSource};
use emulator::TestEnv;
use futures::future::BoxFuture;
use lambda_runtime::{Context, LambdaEvent};
use shared::catalog_store::{split_key, CatalogEntry, CatalogStore, Sequencer};
use shared::domain::{
    Band, ClaimId, ErrorCode, FeatureSummary, JobId, RequestReason, ScoreRecord, ScoreStatus,
    SubjectId,
};
use shared::score_store::{ClaimOutcome, StartMode, StartOutcome};

const TYPICAL: &[u8] = include_bytes!("data/golden-typical.ndjson");
const RISKY: &[u8] = include_bytes!("data/golden-risky.ndjson");
/// Pinned in tests/golden.rs from the documented model.
const TYPICAL_SCORE: f64 = 0.042_834_387_895_617_304;
const RISKY_SCORE: f64 = 0.999_990_038_228_955_4;

fn fixture(name: &str) -> SqsEvent {
    serde_json::from_value(emulator::fixtures::load("compute", name))
        .unwrap_or_else(|e| panic!("events/compute/{name}.json: {e}"))
}

/// Points message `index` of `event` at this test's subject and job.
fn retarget(event: &mut SqsEvent, index: usize, subject: &SubjectId, job: JobId) {
    let record = &mut event.records[index];
    let mut body: serde_json::Value =
        serde_json::from_str(record.body.as_deref().unwrap()).unwrap();
    body["subject_id"] = subject.as_str().into();
    body["job_id"] = job.to_string().into();
    record.body = Some(body.to_string());
}

fn set_receive_count(event: &mut SqsEvent, index: usize, count: u32) {
    event.records[index]
        .attributes
        .insert("ApproximateReceiveCount".into(), count.to_string());
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// The event as Lambda hands it over, with `remaining` function time.
fn invocation(event: SqsEvent, remaining: Duration) -> LambdaEvent<SqsEvent> {
    let mut context = Context::default();
    context.request_id = ulid_text();
    context.deadline = now_ms() + remaining.as_millis() as u64;
    LambdaEvent::new(event, context)
}

fn ulid_text() -> String {
    ClaimId::new().0
}

fn failures(response: &SqsBatchResponse) -> Vec<String> {
    let mut ids: Vec<String> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect();
    ids.sort();
    ids
}

/// Regression: failures carried the whole error chain (ARNs, the account id, the bucket and the
/// key) into 200 bodies and `score.failed` events.
fn assert_no_internals(h: &Harness, message: &str) {
    for internal in [
        h.env.names.data_bucket.as_str(),
        h.env.names.scores_table.as_str(),
        h.env.resources.prefix.as_str(),
        "arn:",
        "datasets/",
        "127.0.0.1",
        "s3://",
    ] {
        assert!(!message.contains(internal), "{internal:?} in {message:?}");
    }
}

fn message_id(event: &SqsEvent, index: usize) -> String {
    event.records[index].message_id.clone().unwrap()
}

struct Harness {
    env: TestEnv,
    config: compute::Config,
}

impl Harness {
    async fn new() -> Self {
        let env = TestEnv::new().await;
        let config = compute::Config::from_env(&env.function_env("ComputeFunction"))
            .expect("compute's template environment is complete");
        Self { env, config }
    }

    /// The emulator as compute sees it: its own principal, with the template's policy.
    fn compute_sdk(&self) -> aws_config::SdkConfig {
        self.env.function_sdk("ComputeFunction")
    }

    fn deps(&self) -> Deps {
        Deps::new(&self.config, &self.compute_sdk()).expect("deps")
    }

    fn compute_catalog(&self) -> CatalogStore {
        let dynamodb = shared::aws::dynamodb(&self.compute_sdk());
        CatalogStore::new(dynamodb, &self.env.names.catalog_table)
    }

    fn lake(&self) -> LakeSource {
        LakeSource::new(self.compute_catalog(), shared::aws::s3(&self.compute_sdk()))
    }

    /// The shipped source, but S3 refuses connections: every read fails transiently.
    fn unreachable_lake(&self) -> LakeSource {
        let sdk = self
            .compute_sdk()
            .to_builder()
            .endpoint_url("http://127.0.0.1:9")
            .build();
        LakeSource::new(self.compute_catalog(), shared::aws::s3(&sdk))
    }

    fn subject(&self, name: &str) -> SubjectId {
        SubjectId::parse(&format!("{}-{name}", self.env.resources.prefix)).unwrap()
    }

    /// Uploads an object under the subject's dataset dir and catalogs it.
    async fn put(&self, subject: &SubjectId, name: &str, content: &[u8]) {
        let key = format!("{}/{name}", subject.dataset_dir());
        self.env
            .s3()
            .put_object()
            .bucket(&self.env.names.data_bucket)
            .key(&key)
            .body(content.to_vec().into())
            .send()
            .await
            .expect("put object");
        self.catalog(&key, content.len()).await;
    }

    /// Catalogs an object (that may or may not exist in S3).
    async fn catalog(&self, key: &str, size: usize) {
        let (dir, name) = split_key(key);
        self.env
            .catalog_store()
            .apply(vec![CatalogEntry {
                dir,
                name,
                bucket: self.env.names.data_bucket.clone(),
                size: size as i64,
                etag: None,
                content_type: None,
                last_modified: Some(Utc::now()),
                user_metadata: Default::default(),
                sequencer: Sequencer::new("01"),
                deleted: false,
                expires_at: None,
            }])
            .await
            .expect("catalog apply");
    }

    /// Creates a pending job, as request-api does.
    async fn start(&self, subject: &SubjectId) -> JobId {
        let outcome = self
            .env
            .score_store()
            .start_job(
                subject,
                RequestReason::Miss,
                StartMode::Missing {
                    failed_retry_after: Duration::from_secs(60),
                    no_data_retry_after: Duration::from_secs(3600),
                },
                Utc::now(),
                self.config.result_ttl,
            )
            .await
            .expect("start job");
        match outcome {
            StartOutcome::Started(record) => record.job_id,
            other => panic!("job not started: {other:?}"),
        }
    }

    async fn record(&self, subject: &SubjectId) -> ScoreRecord {
        self.env
            .score_store()
            .get(subject, Utc::now())
            .await
            .expect("get")
            .expect("a record")
    }
}

/// Sends one subject to another source.
struct Route {
    normal: Arc<dyn FeatureSource>,
    subject: SubjectId,
    other: Arc<dyn FeatureSource>,
}

impl FeatureSource for Route {
    fn gather<'a>(
        &'a self,
        subject: &'a SubjectId,
    ) -> BoxFuture<'a, Result<FeatureSummary, compute::Error>> {
        if *subject == self.subject {
            self.other.gather(subject)
        } else {
            self.normal.gather(subject)
        }
    }
}

/// Counts the gathers (the computations) that reach the inner source.
struct Counting<S> {
    inner: S,
    calls: AtomicUsize,
}

impl<S: FeatureSource> FeatureSource for Counting<S> {
    fn gather<'a>(
        &'a self,
        subject: &'a SubjectId,
    ) -> BoxFuture<'a, Result<FeatureSummary, compute::Error>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.gather(subject)
    }
}

/// Never finishes within a test: for the deadline.
struct Stuck;

impl FeatureSource for Stuck {
    fn gather<'a>(
        &'a self,
        _subject: &'a SubjectId,
    ) -> BoxFuture<'a, Result<FeatureSummary, compute::Error>> {
        Box::pin(async {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok(FeatureSummary::default())
        })
    }
}

const PLENTY: Duration = Duration::from_secs(120);

#[tokio::test]
async fn a_single_message_is_scored_and_stored() {
    // Arrange
    let h = Harness::new().await;
    let subject = h.subject("single");
    h.put(&subject, "2026/10.ndjson", TYPICAL).await;
    let job = h.start(&subject).await;
    let mut event = fixture("single");
    retarget(&mut event, 0, &subject, job);

    // Act
    let response = handle(invocation(event, PLENTY), &h.deps()).await.unwrap();

    // Assert
    assert!(failures(&response).is_empty());
    let record = h.record(&subject).await;
    assert_eq!(record.status, ScoreStatus::Done);
    assert_eq!(record.job_id, job);
    assert_eq!(record.attempts, 1);
    assert!(record.lease_until.is_none());
    let result = record.result.expect("a result");
    assert!(
        (result.score - TYPICAL_SCORE).abs() < 1e-12,
        "{}",
        result.score
    );
    assert_eq!(result.band, Band::Low);
    assert_eq!(result.model_version, "fraud-lr/1");
    assert_eq!(result.reasons.len(), 3);
    let summary = &result.feature_summary;
    assert_eq!((summary.objects, summary.rows), (1, 12));
    assert_eq!(summary.bytes, TYPICAL.len() as u64);
    let completed = record.completed_at.unwrap().timestamp();
    let ttl = h.config.result_ttl.as_secs() as i64;
    assert!((record.expires_at - completed - ttl).abs() <= 1);
}

#[tokio::test]
async fn a_batch_reports_exactly_the_transient_failure() {
    // Arrange: message 0 is good, message 1 malformed, message 2's data is unreachable.
    let h = Harness::new().await;
    let good = h.subject("good");
    let flaky = h.subject("flaky");
    h.put(&good, "a.ndjson", TYPICAL).await;
    h.put(&flaky, "a.ndjson", TYPICAL).await;
    let good_job = h.start(&good).await;
    let flaky_job = h.start(&flaky).await;
    let mut event = fixture("batch");
    retarget(&mut event, 0, &good, good_job);
    event.records[1].body = fixture("malformed").records[0].body.clone();
    retarget(&mut event, 2, &flaky, flaky_job);
    let deps = h.deps().with_feature_source(Arc::new(Route {
        normal: Arc::new(h.lake()),
        subject: flaky.clone(),
        other: Arc::new(h.unreachable_lake()),
    }));

    // Act
    let response = handle(invocation(event.clone(), PLENTY), &deps)
        .await
        .unwrap();

    // Assert
    assert_eq!(failures(&response), [message_id(&event, 2)]);
    assert_eq!(h.record(&good).await.status, ScoreStatus::Done);
    // The transient failure leaves the job claimed; its lease lets a redelivery reclaim it.
    let flaky_record = h.record(&flaky).await;
    assert_eq!(flaky_record.status, ScoreStatus::Running);
    assert_eq!(flaky_record.job_id, flaky_job);
    assert!(flaky_record.error.is_none());
}

#[tokio::test]
async fn duplicate_delivery_computes_once() {
    // Arrange
    let h = Harness::new().await;
    let subject = h.subject("dup");
    h.put(&subject, "a.ndjson", TYPICAL).await;
    let job = h.start(&subject).await;
    let mut event = fixture("duplicate");
    retarget(&mut event, 0, &subject, job);
    retarget(&mut event, 1, &subject, job);
    let counting = Arc::new(Counting {
        inner: h.lake(),
        calls: AtomicUsize::new(0),
    });
    let deps = h.deps().with_feature_source(counting.clone());

    // Act: both copies in one batch, then a late redelivery.
    let first = handle(invocation(event.clone(), PLENTY), &deps)
        .await
        .unwrap();
    let done = h.record(&subject).await;
    let again = handle(invocation(event, PLENTY), &deps).await.unwrap();

    // Assert
    assert!(failures(&first).is_empty());
    assert!(failures(&again).is_empty());
    assert_eq!(counting.calls.load(Ordering::SeqCst), 1);
    let record = h.record(&subject).await;
    assert_eq!(record, done, "a duplicate changed the stored result");
    assert_eq!(record.status, ScoreStatus::Done);
    assert_eq!(record.attempts, 1);
}

#[tokio::test]
async fn of_two_concurrent_handlers_one_computes_and_the_other_acknowledges() {
    // Arrange
    let h = Harness::new().await;
    let subject = h.subject("race");
    h.put(&subject, "a.ndjson", RISKY).await;
    let job = h.start(&subject).await;
    let mut event = fixture("single");
    retarget(&mut event, 0, &subject, job);
    let counting = Arc::new(Counting {
        inner: h.lake(),
        calls: AtomicUsize::new(0),
    });
    let a = h.deps().with_feature_source(counting.clone());
    let b = h.deps().with_feature_source(counting.clone());

    // Act
    let (ra, rb) = tokio::join!(
        handle(invocation(event.clone(), PLENTY), &a),
        handle(invocation(event, PLENTY), &b)
    );

    // Assert
    assert!(failures(&ra.unwrap()).is_empty());
    assert!(failures(&rb.unwrap()).is_empty());
    assert_eq!(counting.calls.load(Ordering::SeqCst), 1);
    let record = h.record(&subject).await;
    assert_eq!(record.status, ScoreStatus::Done);
    assert_eq!(record.attempts, 1);
    let result = record.result.unwrap();
    assert!((result.score - RISKY_SCORE).abs() < 1e-12);
    assert_eq!(result.band, Band::High);
}

#[tokio::test]
async fn a_live_lease_is_respected_and_an_expired_one_is_reclaimed() {
    // Arrange: a worker claimed the job and crashed; its lease ran out 10 minutes ago.
    let h = Harness::new().await;
    let subject = h.subject("crash");
    h.put(&subject, "a.ndjson", TYPICAL).await;
    let job = h.start(&subject).await;
    let crashed = ClaimId::new();
    let long_ago = Utc::now() - chrono::Duration::minutes(10);
    let claimed = h
        .env
        .score_store()
        .claim(
            &subject,
            job,
            &crashed,
            long_ago,
            h.config.lease,
            h.config.max_receive_count,
        )
        .await
        .unwrap();
    assert!(matches!(claimed, ClaimOutcome::Claimed(_)));
    let mut event = fixture("single");
    retarget(&mut event, 0, &subject, job);
    set_receive_count(&mut event, 0, 2);

    // Act
    let response = handle(invocation(event, PLENTY), &h.deps()).await.unwrap();

    // Assert
    assert!(failures(&response).is_empty());
    let record = h.record(&subject).await;
    assert_eq!(record.status, ScoreStatus::Done);
    assert_eq!(record.attempts, 2);
    assert_ne!(record.claim_id, Some(crashed));

    // Arrange: another job, claimed just now by a live worker.
    let live_subject = h.subject("live");
    h.put(&live_subject, "a.ndjson", TYPICAL).await;
    let live_job = h.start(&live_subject).await;
    let worker = ClaimId::new();
    h.env
        .score_store()
        .claim(
            &live_subject,
            live_job,
            &worker,
            Utc::now(),
            h.config.lease,
            h.config.max_receive_count,
        )
        .await
        .unwrap();
    let mut event = fixture("single");
    retarget(&mut event, 0, &live_subject, live_job);

    // Act
    let response = handle(invocation(event, PLENTY), &h.deps()).await.unwrap();

    // Assert: acknowledged, and the live worker still holds the job.
    assert!(failures(&response).is_empty());
    let record = h.record(&live_subject).await;
    assert_eq!(record.status, ScoreStatus::Running);
    assert_eq!(record.claim_id, Some(worker));
}

/// Regression: a job whose every run killed its process (out of memory, out of time) never
/// reached compute's own failure path, so it stayed `running` and every later GET dispatched it
/// for more crashes. A claim beyond the attempt limit now fails the job instead of running it.
#[tokio::test]
async fn a_job_whose_every_run_crashed_is_failed_instead_of_run_again() {
    // Arrange: the job was claimed as often as it may be, each worker died (leases long past).
    let h = Harness::new().await;
    let subject = h.subject("crashes");
    h.put(&subject, "a.ndjson", TYPICAL).await;
    let job = h.start(&subject).await;
    let store = h.env.score_store();
    for run in 0..h.config.max_receive_count {
        let died_at = Utc::now() - chrono::Duration::hours(10 - i64::from(run));
        let outcome = store
            .claim(
                &subject,
                job,
                &ClaimId::new(),
                died_at,
                h.config.lease,
                h.config.max_receive_count,
            )
            .await
            .unwrap();
        assert!(matches!(outcome, ClaimOutcome::Claimed(_)), "run {run}");
    }
    let mut event = fixture("single");
    retarget(&mut event, 0, &subject, job);
    set_receive_count(&mut event, 0, 1);

    // Act
    let response = handle(invocation(event, PLENTY), &h.deps()).await.unwrap();

    // Assert: acknowledged, failed for good (a refresh may start it again), not computed.
    assert!(failures(&response).is_empty());
    let record = h.record(&subject).await;
    assert_eq!(record.status, ScoreStatus::Failed);
    assert_eq!(record.attempts, h.config.max_receive_count);
    let error = record.error.expect("the failure");
    assert_eq!(error.code, ErrorCode::AttemptsExhausted);
    assert!(!error.retryable);
    assert!(record.result.is_none());
}

#[tokio::test]
async fn the_last_attempt_marks_the_job_failed_and_sends_the_message_on_to_the_dlq() {
    // Arrange
    let h = Harness::new().await;
    let subject = h.subject("last");
    h.put(&subject, "a.ndjson", TYPICAL).await;
    let job = h.start(&subject).await;
    let mut event = fixture("single");
    retarget(&mut event, 0, &subject, job);
    set_receive_count(&mut event, 0, h.config.max_receive_count);
    let deps = h.deps().with_feature_source(Arc::new(h.unreachable_lake()));

    // Act
    let response = handle(invocation(event.clone(), PLENTY), &deps)
        .await
        .unwrap();

    // Assert: reported once more, so SQS moves it to the DLQ; the API sees the failure.
    assert_eq!(failures(&response), [message_id(&event, 0)]);
    let record = h.record(&subject).await;
    assert_eq!(record.status, ScoreStatus::Failed);
    let error = record.error.expect("an error");
    assert_eq!(error.code, ErrorCode::Unavailable);
    assert!(error.retryable);
    assert_eq!(error.message, ErrorCode::Unavailable.public_message());
    assert_no_internals(&h, &error.message);
    assert!(record.result.is_none());
}

#[tokio::test]
async fn a_subject_without_data_fails_with_no_data() {
    // Arrange: nothing cataloged but a file that is not a dataset, plus one of only junk.
    let h = Harness::new().await;
    let empty = h.subject("empty");
    let junk = h.subject("junk");
    h.put(&empty, "README.txt", b"not data").await;
    h.put(&junk, "a.ndjson", b"junk\n{}\n").await;
    let (empty_job, junk_job) = (h.start(&empty).await, h.start(&junk).await);
    let mut event = fixture("batch");
    event.records.truncate(2);
    retarget(&mut event, 0, &empty, empty_job);
    retarget(&mut event, 1, &junk, junk_job);

    // Act
    let response = handle(invocation(event, PLENTY), &h.deps()).await.unwrap();

    // Assert
    assert!(failures(&response).is_empty());
    for (subject, objects) in [(&empty, 0), (&junk, 1)] {
        let record = h.record(subject).await;
        assert_eq!(record.status, ScoreStatus::Failed);
        let error = record.error.unwrap();
        assert_eq!(error.code, ErrorCode::NoData);
        assert!(error.retryable);
        assert!(
            error.message.contains(&format!("{objects} objects")),
            "{}",
            error.message
        );
    }
    assert!(h
        .record(&junk)
        .await
        .error
        .unwrap()
        .message
        .contains("2 malformed lines"));
}

#[tokio::test]
async fn gzip_and_plain_objects_give_the_same_score() {
    // Arrange: the same transactions, plain in two objects and gzipped in one.
    let h = Harness::new().await;
    let plain = h.subject("plain");
    let gz = h.subject("gz");
    let cut = RISKY[..RISKY.len() / 2]
        .iter()
        .rposition(|b| *b == b'\n')
        .unwrap()
        + 1;
    h.put(&plain, "part-0.ndjson", &RISKY[..cut]).await;
    h.put(&plain, "part-1.ndjson", &RISKY[cut..]).await;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut encoder, RISKY).unwrap();
    let compressed = encoder.finish().unwrap();
    h.put(&gz, "all.ndjson.gz", &compressed).await;
    let (plain_job, gz_job) = (h.start(&plain).await, h.start(&gz).await);
    let mut event = fixture("batch");
    event.records.truncate(2);
    retarget(&mut event, 0, &plain, plain_job);
    retarget(&mut event, 1, &gz, gz_job);

    // Act
    let response = handle(invocation(event, PLENTY), &h.deps()).await.unwrap();

    // Assert
    assert!(failures(&response).is_empty());
    let plain_result = h.record(&plain).await.result.unwrap();
    let gz_result = h.record(&gz).await.result.unwrap();
    assert_eq!(plain_result.score, gz_result.score);
    assert_eq!(plain_result.reasons, gz_result.reasons);
    assert_eq!(
        plain_result.feature_summary.features,
        gz_result.feature_summary.features
    );
    assert_eq!(
        (
            plain_result.feature_summary.objects,
            gz_result.feature_summary.objects
        ),
        (2, 1)
    );
    assert_eq!(gz_result.feature_summary.bytes, compressed.len() as u64);
    assert!((gz_result.score - RISKY_SCORE).abs() < 1e-12);
    // Malformed lines are counted and reported in the result.
    assert_eq!(plain_result.feature_summary.malformed_lines, 3);
    assert_eq!(gz_result.feature_summary.malformed_lines, 3);
    assert_eq!(gz_result.feature_summary.rows, 9);
}

#[tokio::test]
async fn malformed_messages_are_acknowledged_and_change_nothing() {
    // Arrange
    let h = Harness::new().await;
    let subject = h.subject("victim");
    let job = h.start(&subject).await;
    let before = h.record(&subject).await;
    let mut event = fixture("malformed");
    // The wrong type and the wrong version carry this job's real ids: still not to be run.
    retarget(&mut event, 1, &subject, job);
    retarget(&mut event, 3, &subject, job);

    // Act
    let response = handle(invocation(event, PLENTY), &h.deps()).await.unwrap();

    // Assert
    assert!(failures(&response).is_empty());
    let after = h.record(&subject).await;
    assert_eq!(after, before);
    assert_eq!(after.job_id, job);
}

#[tokio::test]
async fn work_stops_before_the_deadline_and_is_retried() {
    // Arrange: a source that never answers, 2 s of work time left after the margin.
    let h = Harness::new().await;
    let slow = h.subject("slow");
    let late = h.subject("late");
    let slow_job = h.start(&slow).await;
    let late_job = h.start(&late).await;
    let deps = h.deps().with_feature_source(Arc::new(Stuck));
    let mut event = fixture("single");
    retarget(&mut event, 0, &slow, slow_job);
    let remaining = compute::DEADLINE_MARGIN + Duration::from_secs(2);

    // Act
    let response = handle(invocation(event.clone(), remaining), &deps)
        .await
        .unwrap();

    // Assert: reported for redelivery; the job keeps its claim until the lease passes.
    assert_eq!(failures(&response), [message_id(&event, 0)]);
    assert_eq!(h.record(&slow).await.status, ScoreStatus::Running);

    // Act: an invocation already inside the margin does not even start.
    let mut event = fixture("single");
    retarget(&mut event, 0, &late, late_job);
    let response = handle(invocation(event.clone(), Duration::from_secs(1)), &deps)
        .await
        .unwrap();

    // Assert
    assert_eq!(failures(&response), [message_id(&event, 0)]);
    assert_eq!(h.record(&late).await.status, ScoreStatus::Pending);

    // Act: the last attempt of a job that runs out of time is marked failed.
    let last = h.subject("last-slow");
    let last_job = h.start(&last).await;
    let mut event = fixture("single");
    retarget(&mut event, 0, &last, last_job);
    set_receive_count(&mut event, 0, h.config.max_receive_count);
    let response = handle(invocation(event.clone(), remaining), &deps)
        .await
        .unwrap();

    // Assert: failed, and on to the DLQ.
    assert_eq!(failures(&response), [message_id(&event, 0)]);
    let record = h.record(&last).await;
    assert_eq!(record.status, ScoreStatus::Failed);
    assert_eq!(record.error.unwrap().code, ErrorCode::DeadlineExceeded);

    // Act: a last attempt that cannot even start fails the unclaimed job too.
    let never = h.subject("never-started");
    let never_job = h.start(&never).await;
    let mut event = fixture("single");
    retarget(&mut event, 0, &never, never_job);
    set_receive_count(&mut event, 0, h.config.max_receive_count);
    let response = handle(invocation(event.clone(), Duration::from_secs(1)), &deps)
        .await
        .unwrap();

    // Assert
    assert_eq!(failures(&response), [message_id(&event, 0)]);
    let record = h.record(&never).await;
    assert_eq!(record.status, ScoreStatus::Failed);
    assert_eq!(record.error.unwrap().code, ErrorCode::DeadlineExceeded);
}

#[tokio::test]
async fn objects_gone_from_s3_are_skipped_and_corrupt_ones_fail_the_job() {
    // Arrange
    let h = Harness::new().await;
    let partial = h.subject("partial");
    let corrupt = h.subject("corrupt");
    h.put(&partial, "a.ndjson", TYPICAL).await;
    h.catalog(&format!("{}/deleted.ndjson", partial.dataset_dir()), 100)
        .await;
    let mut broken = {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut gz, &TYPICAL.repeat(50)).unwrap();
        gz.finish().unwrap()
    };
    let len = broken.len();
    broken[len / 3..].iter_mut().for_each(|b| *b ^= 0x5a);
    h.put(&corrupt, "a.ndjson.gz", &broken).await;
    let (partial_job, corrupt_job) = (h.start(&partial).await, h.start(&corrupt).await);
    let mut event = fixture("batch");
    event.records.truncate(2);
    retarget(&mut event, 0, &partial, partial_job);
    retarget(&mut event, 1, &corrupt, corrupt_job);

    // Act
    let response = handle(invocation(event, PLENTY), &h.deps()).await.unwrap();

    // Assert
    assert!(failures(&response).is_empty());
    let result = h.record(&partial).await.result.unwrap();
    assert_eq!(result.feature_summary.objects, 1);
    assert!((result.score - TYPICAL_SCORE).abs() < 1e-12);
    let record = h.record(&corrupt).await;
    assert_eq!(record.status, ScoreStatus::Failed);
    let error = record.error.unwrap();
    assert_eq!(error.code, ErrorCode::CorruptObject);
    assert!(!error.retryable);
    assert_eq!(error.message, ErrorCode::CorruptObject.public_message());
    assert_no_internals(&h, &error.message);
}

/// Regression: a subject's object count, bytes and distinct buyers were unbounded; a subject
/// over a limit now fails for good with TOO_LARGE instead of exhausting memory or time.
#[tokio::test]
async fn a_subject_over_a_limit_fails_with_too_large() {
    // Arrange: limits of 2 objects and 100 bytes; one subject over each, one within both.
    let mut h = Harness::new().await;
    h.config.limits = compute::SubjectLimits {
        max_objects: 2,
        max_bytes: 100_000,
        max_distinct_buyers: 1_000_000,
    };
    let (many, big, fine) = (h.subject("many"), h.subject("big"), h.subject("fine"));
    for name in ["a.ndjson", "b.ndjson", "c.ndjson"] {
        h.put(&many, name, TYPICAL).await;
    }
    h.put(&big, "a.ndjson", &TYPICAL.repeat(100)).await;
    h.put(&fine, "a.ndjson", TYPICAL).await;
    let jobs = [
        h.start(&many).await,
        h.start(&big).await,
        h.start(&fine).await,
    ];
    let mut event = fixture("batch");
    event.records.truncate(3);
    for (i, (subject, job)) in [&many, &big, &fine].into_iter().zip(jobs).enumerate() {
        retarget(&mut event, i, subject, job);
    }

    // Act
    let response = handle(invocation(event, PLENTY), &h.deps()).await.unwrap();

    // Assert
    assert!(failures(&response).is_empty(), "permanent: acknowledged");
    for subject in [&many, &big] {
        let error = h.record(subject).await.error.expect("failed");
        assert_eq!(error.code, ErrorCode::TooLarge, "{subject}");
        assert!(!error.retryable);
    }
    assert_eq!(h.record(&fine).await.status, ScoreStatus::Done);
}

/// The EMF metrics compute writes. The only test of this binary that flushes metrics (the
/// recorder is per process; other tests only add to it, so these are lower bounds).
#[tokio::test]
async fn jobs_durations_rows_bytes_bands_failures_and_queue_lag_are_metrics() {
    emulator::emf::record("deferred-compute");
    let h = Harness::new().await;
    let scored = h.subject("metrics-scored");
    let empty = h.subject("metrics-empty");
    h.put(&scored, "2026/10.ndjson", TYPICAL).await;
    let (scored_job, empty_job) = (h.start(&scored).await, h.start(&empty).await);
    let mut event = fixture("batch");
    event.records.truncate(2);
    retarget(&mut event, 0, &scored, scored_job);
    retarget(&mut event, 1, &empty, empty_job);
    // Sent a second ago: the lag at the claim is at least that.
    let sent_ms = Utc::now().timestamp_millis() - 1000;
    for record in &mut event.records {
        record
            .attributes
            .insert("SentTimestamp".into(), sent_ms.to_string());
    }

    let response = handle(invocation(event, PLENTY), &h.deps()).await.unwrap();
    assert!(failures(&response).is_empty());

    let emf = emulator::emf::flush();
    let total = |metric: &str, labels: &[(&str, &str)]| emf.total(metric, labels);
    assert!(
        total("Jobs", &[("outcome", "done")]) >= Some(1.0),
        "{emf:#?}"
    );
    assert!(total("Jobs", &[("outcome", "failed")]) >= Some(1.0));
    assert!(total("JobsFailed", &[("code", "NO_DATA")]) >= Some(1.0));
    assert!(total("Scores", &[("band", "low")]) >= Some(1.0));
    assert!(total("RowsRead", &[]) >= Some(12.0));
    assert!(total("BytesRead", &[]) >= Some(TYPICAL.len() as f64));
    assert!(emf.samples("JobDuration", &[]) >= 1);
    assert!(emf.samples("QueueLag", &[]) >= 2);
    assert!(total("QueueLag", &[]) >= Some(2000.0));
    let text = serde_json::to_string(&emf.documents).unwrap();
    assert!(
        !text.contains(scored.as_str()),
        "a subject id in metrics: {text}"
    );
}
