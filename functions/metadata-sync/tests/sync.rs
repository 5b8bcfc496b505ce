//! metadata-sync against the emulator: the payloads of `events/metadata-sync/`, objects in moto's
//! S3, the catalog and scores in moto's DynamoDB.
//!
//! Run with `scripts/moto.sh run cargo test -p metadata-sync`.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use chrono::Utc;
use emulator::TestEnv;
use lambda_runtime::{Context, LambdaEvent};
use metadata_sync::{handle, sync_batch, BatchReport, Deps};
use serde_json::Value;
use shared::catalog_store::{split_key, CatalogEntry, CatalogStore, Sequencer};
use shared::domain::{
    Band, ClaimId, FeatureSummary, RequestReason, ScoreResult, ScoreStatus, SubjectId,
};
use shared::score_store::{ClaimOutcome, StartMode, StartOutcome};

/// The bucket name in the files of `events/metadata-sync/`, replaced by the test's own.
const EVENTS_BUCKET: &str = "deferred-data-123456789012-us-east-1";
/// The key of create.json, overwrite.json and delete.json.
const ORDERS: &str = "datasets/shop-42/2026-11/orders.ndjson";
/// The key of out-of-order.json.
const REFUNDS: &str = "datasets/shop-42/2026-11/refunds.ndjson";
/// The key of delete-marker.json.
const RETURNS: &str = "datasets/shop-42/2026-11/returns.ndjson";
/// The keys of special-key.json, decoded, in message order.
const SPECIAL_KEYS: [&str; 5] = [
    "datasets/shop-42/2026 11/orders and refunds.ndjson",
    "datasets/shop-42/a+b=c&d.ndjson",
    "datasets/shop-42/résumé/日本語 ファイル.ndjson",
    "datasets/shop-42/100% real.ndjson",
    "datasets/shop-42/deep/er//than///you/think.ndjson",
];

/// metadata-sync as Lambda wires it: the template's environment, its own principal.
fn deps(env: &TestEnv) -> Deps {
    Deps::from_env(
        &env.function_env("MetadataSyncFunction"),
        &env.function_sdk("MetadataSyncFunction"),
    )
    .expect("metadata-sync's template environment is complete")
}

fn bucket(env: &TestEnv) -> String {
    env.names.data_bucket.clone()
}

/// A payload of `events/metadata-sync/`, for this test's bucket.
fn event_file(name: &str, bucket: &str) -> SqsEvent {
    let text = emulator::fixtures::text("metadata-sync", name).replace(EVENTS_BUCKET, bucket);
    serde_json::from_value(emulator::fixtures::parse("metadata-sync", name, &text))
        .expect("a Lambda SQS event")
}

fn lambda(payload: SqsEvent) -> LambdaEvent<SqsEvent> {
    LambdaEvent::new(payload, Context::default())
}

fn batch(messages: Vec<SqsMessage>) -> SqsEvent {
    let mut event = SqsEvent::default();
    event.records = messages;
    event
}

/// create.json's message with another id, key (S3-encoded here) and sequencer.
fn created_message(bucket: &str, id: &str, key: &str, sequencer: &str) -> SqsMessage {
    let mut message = event_file("create", bucket).records.remove(0);
    let mut body: Value = serde_json::from_str(message.body.as_deref().unwrap()).unwrap();
    let object = &mut body["Records"][0]["s3"]["object"];
    let encoded: String = form_urlencoded::byte_serialize(key.as_bytes()).collect();
    object["key"] = Value::String(encoded.replace("%2F", "/"));
    object["sequencer"] = Value::String(sequencer.to_owned());
    message.body = Some(body.to_string());
    message.message_id = Some(id.to_owned());
    message
}

fn message_with_body(id: &str, body: &str) -> SqsMessage {
    let mut message = SqsMessage::default();
    message.message_id = Some(id.to_owned());
    message.body = Some(body.to_owned());
    message
}

fn failed_ids(response: &aws_lambda_events::sqs::SqsBatchResponse) -> Vec<String> {
    response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect()
}

/// Uploads an object; returns its ETag as S3 reports it (quoted).
async fn put(env: &TestEnv, key: &str, body: &str) -> String {
    env.s3()
        .put_object()
        .bucket(bucket(env))
        .key(key)
        .content_type("application/x-ndjson")
        .metadata("source", "pos-export")
        .body(body.as_bytes().to_vec().into())
        .send()
        .await
        .unwrap_or_else(|e| panic!("put {key}: {e:?}"))
        .e_tag
        .expect("an ETag")
}

async fn catalog_get(env: &TestEnv, key: &str) -> Option<CatalogEntry> {
    let (dir, name) = split_key(key);
    env.catalog_store().get(&dir, &name).await.unwrap()
}

/// Counts catalog write requests (TransactWriteItems) as they go on the wire (retries included).
#[derive(Debug, Clone, Default)]
struct WriteCounter(Arc<AtomicUsize>);

impl Intercept for WriteCounter {
    fn name(&self) -> &'static str {
        "WriteCounter"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), aws_sdk_dynamodb::error::BoxError> {
        let target = context.request().headers().get("x-amz-target");
        if target.is_some_and(|t| t.ends_with(".TransactWriteItems")) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
        Ok(())
    }
}

#[tokio::test]
async fn bulk_batch_of_100_creates_is_written_in_one_write_call() {
    // Arrange
    let env = TestEnv::new().await;
    let bucket = bucket(&env);
    let keys: Vec<String> = (0..100)
        .map(|i| format!("datasets/shop-{}/2026-11/part-{i:03}.ndjson", i % 7))
        .collect();
    futures::future::join_all(keys.iter().map(|k| put(&env, k, "{}\n"))).await;
    let messages: Vec<SqsMessage> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| {
            created_message(
                &bucket,
                &format!("m{i}"),
                k,
                &format!("00674A3B2C1D{i:06X}"),
            )
        })
        .collect();
    let counter = WriteCounter::default();
    let counted = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&env.function_sdk("MetadataSyncFunction"))
            .interceptor(counter.clone())
            .build(),
    );
    let deps = Deps {
        catalog: CatalogStore::new(counted, &env.names.catalog_table),
        ..deps(&env)
    };

    // Act
    let report = sync_batch(&messages, &deps, Utc::now()).await;

    // Assert
    assert_eq!(report.failed, Vec::<String>::new());
    let writes = counter.0.load(Ordering::SeqCst);
    assert_eq!(writes, 1, "one TransactWriteItems of 100 conditional puts");
    let applied = report.apply.expect("the catalog was written");
    assert_eq!(applied.written, 100);
    assert_eq!(applied.requests, writes, "the logged request count");
    assert_eq!(report.head_requests, 100);
    let mut cataloged = 0;
    for shop in 0..7 {
        cataloged += env
            .catalog_store()
            .list_dir(&format!("datasets/shop-{shop}"))
            .await
            .unwrap()
            .len();
    }
    assert_eq!(cataloged, 100);
}

#[tokio::test]
async fn create_records_the_objects_metadata() {
    // Arrange
    let env = TestEnv::new().await;
    let etag = put(&env, ORDERS, "{\"amount\":1200}\n").await;
    let deps = deps(&env);

    // Act
    let response = handle(lambda(event_file("create", &bucket(&env))), &deps)
        .await
        .unwrap();

    // Assert
    assert!(response.batch_item_failures.is_empty());
    let entry = catalog_get(&env, ORDERS).await.expect("cataloged");
    assert_eq!(entry.dir, "datasets/shop-42");
    assert_eq!(entry.name, "2026-11/orders.ndjson");
    assert_eq!(entry.bucket, bucket(&env));
    assert_eq!(entry.size, 16);
    assert_eq!(
        entry.etag.as_deref(),
        Some(etag.trim_matches('"')),
        "unquoted"
    );
    assert_eq!(entry.content_type.as_deref(), Some("application/x-ndjson"));
    assert!(entry.last_modified.is_some());
    assert_eq!(
        entry.user_metadata,
        HashMap::from([("source".to_owned(), "pos-export".to_owned())])
    );
    assert_eq!(entry.sequencer, Sequencer::new("00674A3B2C1D0E0F10"));
    assert!(!entry.deleted);
}

#[tokio::test]
async fn delete_leaves_a_tombstone_that_readers_skip() {
    // Arrange
    let env = TestEnv::new().await;
    put(&env, ORDERS, "{}\n").await;
    let deps = deps(&env);
    handle(lambda(event_file("create", &bucket(&env))), &deps)
        .await
        .unwrap();
    env.s3()
        .delete_object()
        .bucket(bucket(&env))
        .key(ORDERS)
        .send()
        .await
        .unwrap();
    let before = Utc::now().timestamp();

    // Act
    let response = handle(lambda(event_file("delete", &bucket(&env))), &deps)
        .await
        .unwrap();

    // Assert
    assert!(response.batch_item_failures.is_empty());
    let tombstone = catalog_get(&env, ORDERS).await.expect("a tombstone");
    assert!(tombstone.deleted);
    assert_eq!(tombstone.sequencer, Sequencer::new("00674A3B2C1D0E0F30"));
    let ttl = deps.tombstone_ttl.as_secs() as i64;
    let expires = tombstone.expires_at.expect("tombstones expire");
    assert!((before + ttl..=Utc::now().timestamp() + ttl).contains(&expires));
    assert!(env
        .catalog_store()
        .list_dir("datasets/shop-42")
        .await
        .unwrap()
        .is_empty());
}

/// DataBucket is versioned: a plain delete leaves a delete marker, and S3 notifies
/// `ObjectRemoved:DeleteMarkerCreated` (with the marker's versionId). A removal like any other.
/// (The emulator's bucket is not versioned, see emulator::provision: the object is just deleted.)
#[tokio::test]
async fn a_delete_marker_on_the_versioned_bucket_leaves_a_tombstone() {
    // Arrange: the object is cataloged, then deleted.
    let env = TestEnv::new().await;
    put(&env, RETURNS, "{}\n").await;
    let deps = deps(&env);
    let create = created_message(&bucket(&env), "create", RETURNS, "00674A3B2C1D0E0F55");
    handle(lambda(batch(vec![create])), &deps).await.unwrap();
    assert!(!catalog_get(&env, RETURNS).await.expect("cataloged").deleted);
    env.s3()
        .delete_object()
        .bucket(bucket(&env))
        .key(RETURNS)
        .send()
        .await
        .unwrap();

    // Act
    let response = handle(lambda(event_file("delete-marker", &bucket(&env))), &deps)
        .await
        .unwrap();

    // Assert
    assert!(response.batch_item_failures.is_empty());
    let tombstone = catalog_get(&env, RETURNS).await.expect("a tombstone");
    assert!(tombstone.deleted);
    assert_eq!(tombstone.sequencer, Sequencer::new("00674A3B2C1D0E0F60"));
}

/// Deleting one version (`ObjectRemoved:Delete` with a `versionId`) may leave the key in place:
/// deleting the delete marker restores the object, and the catalog follows what is there now.
#[tokio::test]
async fn deleting_a_delete_marker_restores_the_object_in_the_catalog() {
    // Arrange: cataloged, then removed by a delete marker (a tombstone); then the marker is
    // deleted, so the object is back. (Locally the object simply stays in the unversioned
    // bucket: what S3 holds after the restore.)
    let env = TestEnv::new().await;
    put(&env, RETURNS, "{\"amount\":7}\n").await;
    let deps = deps(&env);
    let create = created_message(&bucket(&env), "create", RETURNS, "00674A3B2C1D0E0F55");
    handle(lambda(batch(vec![create])), &deps).await.unwrap();
    handle(lambda(event_file("delete-marker", &bucket(&env))), &deps)
        .await
        .unwrap();
    assert!(catalog_get(&env, RETURNS).await.unwrap().deleted);
    let marker = "Lw9nSg2.cTJ5vdx2YkgWZGXvkJmyq5Zq".to_owned();
    let mut restored = event_file("delete-marker", &bucket(&env)).records.remove(0);
    let mut body: Value = serde_json::from_str(restored.body.as_deref().unwrap()).unwrap();
    body["Records"][0]["eventName"] = Value::String("ObjectRemoved:Delete".into());
    body["Records"][0]["s3"]["object"]["versionId"] = Value::String(marker);
    body["Records"][0]["s3"]["object"]["sequencer"] = Value::String("00674A3B2C1D0E0F70".into());
    restored.body = Some(body.to_string());

    // Act
    let response = handle(lambda(batch(vec![restored])), &deps).await.unwrap();

    // Assert: cataloged again, as the object now is, with the newest sequencer.
    assert!(response.batch_item_failures.is_empty());
    let entry = catalog_get(&env, RETURNS).await.expect("cataloged");
    assert!(!entry.deleted, "{entry:?}");
    assert_eq!(entry.size, "{\"amount\":7}\n".len() as i64);
    assert_eq!(entry.sequencer, Sequencer::new("00674A3B2C1D0E0F70"));
}

/// Out of order, the worst case: the object exists in S3 (so the older create's HeadObject
/// succeeds), and still the newer delete must win.
async fn assert_refunds_absent(env: &TestEnv) {
    let entry = catalog_get(env, REFUNDS).await.expect("a tombstone");
    assert!(entry.deleted, "the older create overwrote the newer delete");
    assert_eq!(entry.sequencer, Sequencer::new("00674A3B2C1D0E0F50"));
    assert!(env
        .catalog_store()
        .list_dir("datasets/shop-42")
        .await
        .unwrap()
        .iter()
        .all(|e| e.key() != REFUNDS));
}

#[tokio::test]
async fn delete_delivered_before_its_create_in_one_batch_leaves_the_item_absent() {
    // Arrange
    let env = TestEnv::new().await;
    put(&env, REFUNDS, "{}\n").await;
    let deps = deps(&env);
    let event = event_file("out-of-order", &bucket(&env));

    // Act
    let report = sync_batch(&event.records, &deps, Utc::now()).await;

    // Assert
    assert!(report.failed.is_empty());
    assert_eq!(report.superseded, 1);
    assert_eq!(
        report.head_requests, 0,
        "the superseded create needs no HeadObject"
    );
    assert_refunds_absent(&env).await;
}

#[tokio::test]
async fn delete_delivered_before_its_create_in_two_batches_leaves_the_item_absent() {
    // Arrange
    let env = TestEnv::new().await;
    put(&env, REFUNDS, "{}\n").await;
    let deps = deps(&env);
    let mut event = event_file("out-of-order", &bucket(&env));
    let create = event.records.pop().unwrap();
    let delete = event.records.pop().unwrap();

    // Act
    let first = handle(lambda(batch(vec![delete])), &deps).await.unwrap();
    let second = sync_batch(&[create], &deps, Utc::now()).await;

    // Assert
    assert!(first.batch_item_failures.is_empty());
    assert!(second.failed.is_empty());
    assert_eq!(second.apply.map(|a| (a.written, a.skipped)), Some((0, 1)));
    assert_refunds_absent(&env).await;
}

#[tokio::test]
async fn duplicate_delivery_leaves_one_unchanged_item() {
    // Arrange
    let env = TestEnv::new().await;
    put(&env, ORDERS, "{}\n").await;
    let deps = deps(&env);
    let create = event_file("create", &bucket(&env)).records.remove(0);
    handle(lambda(batch(vec![create.clone()])), &deps)
        .await
        .unwrap();
    let first = catalog_get(&env, ORDERS).await.expect("cataloged");

    // Act: the same message again, twice in one batch (as SQS may deliver it).
    let mut again = create.clone();
    again.message_id = Some("redelivered".into());
    let report = sync_batch(&[create, again], &deps, Utc::now()).await;

    // Assert
    assert!(report.failed.is_empty());
    assert_eq!(report.superseded, 1);
    assert_eq!(report.apply.map(|a| (a.written, a.skipped)), Some((0, 1)));
    assert_eq!(catalog_get(&env, ORDERS).await, Some(first));
    assert_eq!(
        env.catalog_store()
            .list_dir("datasets/shop-42")
            .await
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn overwrite_wins_and_a_late_older_create_does_not_undo_it() {
    // Arrange
    let env = TestEnv::new().await;
    put(&env, ORDERS, "{}\n").await;
    let deps = deps(&env);
    handle(lambda(event_file("create", &bucket(&env))), &deps)
        .await
        .unwrap();
    put(&env, ORDERS, "{\"a\":1}\n{\"a\":2}\n").await;

    // Act
    let overwrite = handle(lambda(event_file("overwrite", &bucket(&env))), &deps)
        .await
        .unwrap();
    let late = sync_batch(
        &event_file("create", &bucket(&env)).records,
        &deps,
        Utc::now(),
    )
    .await;

    // Assert
    assert!(overwrite.batch_item_failures.is_empty());
    assert_eq!(late.apply.map(|a| (a.written, a.skipped)), Some((0, 1)));
    let entry = catalog_get(&env, ORDERS).await.expect("cataloged");
    assert_eq!(entry.size, 16);
    assert_eq!(entry.sequencer, Sequencer::new("00674A3B2C1D0E0F20"));
}

#[tokio::test]
async fn special_keys_round_trip_exactly() {
    // Arrange
    let env = TestEnv::new().await;
    for key in SPECIAL_KEYS {
        put(&env, key, key).await;
    }
    let deps = deps(&env);

    // Act
    let response = handle(lambda(event_file("special-key", &bucket(&env))), &deps)
        .await
        .unwrap();

    // Assert
    assert_eq!(failed_ids(&response), Vec::<String>::new());
    for key in SPECIAL_KEYS {
        let entry = catalog_get(&env, key)
            .await
            .unwrap_or_else(|| panic!("{key:?} cataloged"));
        assert_eq!(entry.key(), key);
        assert_eq!(entry.size, key.len() as i64, "HeadObject found {key:?}");
    }
    let listed: BTreeSet<String> = env
        .catalog_store()
        .list_dir("datasets/shop-42")
        .await
        .unwrap()
        .iter()
        .map(CatalogEntry::key)
        .collect();
    assert_eq!(listed, SPECIAL_KEYS.iter().map(|k| k.to_string()).collect());
}

async fn done_score(env: &TestEnv, subject: &SubjectId) {
    let store = env.score_store();
    let now = Utc::now();
    let StartOutcome::Started(job) = store
        .start_job(
            subject,
            RequestReason::Miss,
            StartMode::Refresh,
            now,
            Duration::from_secs(3600),
        )
        .await
        .unwrap()
    else {
        panic!("job started");
    };
    let claim = ClaimId::new();
    let ClaimOutcome::Claimed(_) = store
        .claim(
            subject,
            job.job_id,
            &claim,
            now,
            Duration::from_secs(150),
            5,
        )
        .await
        .unwrap()
    else {
        panic!("job claimed");
    };
    let result = ScoreResult {
        score: 0.2,
        band: Band::Low,
        reasons: vec![],
        model_version: "test".into(),
        feature_summary: FeatureSummary::default(),
    };
    store
        .complete(subject, &claim, &result, now, Duration::from_secs(3600))
        .await
        .unwrap()
        .expect("completed");
}

#[tokio::test]
async fn new_data_marks_the_subjects_score_stale_once_per_batch() {
    // Arrange
    let env = TestEnv::new().await;
    let subject = SubjectId::parse("shop-42").unwrap();
    done_score(&env, &subject).await;
    let before = env
        .score_store()
        .get(&subject, Utc::now())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((before.status, before.stale), (ScoreStatus::Done, false));
    for key in SPECIAL_KEYS {
        put(&env, key, "{}\n").await;
    }
    put(&env, "datasets/shop-7/a.ndjson", "{}\n").await; // no score record
    let mut messages = event_file("special-key", &bucket(&env)).records;
    messages.push(created_message(
        &bucket(&env),
        "shop-7",
        "datasets/shop-7/a.ndjson",
        "0001",
    ));
    let deps = deps(&env);

    // Act
    let report = sync_batch(&messages, &deps, Utc::now()).await;

    // Assert
    assert!(report.failed.is_empty());
    assert_eq!(report.stale_marked, 1, "shop-42 once; shop-7 has no score");
    let after = env
        .score_store()
        .get(&subject, Utc::now())
        .await
        .unwrap()
        .unwrap();
    assert!(after.stale);
    assert_eq!(after.status, ScoreStatus::Done);
    assert_eq!(after.result, before.result);
    let shop7 = SubjectId::parse("shop-7").unwrap();
    assert_eq!(
        env.score_store().get(&shop7, Utc::now()).await.unwrap(),
        None
    );
}

#[tokio::test]
async fn a_poison_record_fails_only_its_own_message() {
    // Arrange
    let env = TestEnv::new().await;
    let bucket = bucket(&env);
    put(&env, ORDERS, "{}\n").await;
    let good = event_file("create", &bucket).records.remove(0);
    let test_event = event_file("test-event", &bucket).records.remove(0);
    let not_json = message_with_body("not-json", "this is not an S3 event");
    let bad_key = created_message(&bucket, "bad-key", "x", "0002");
    let bad_key = {
        let mut m = bad_key;
        m.body = Some(
            m.body
                .unwrap()
                .replace("\"key\":\"x\"", "\"key\":\"datasets/shop-42/%FF.ndjson\""),
        );
        m
    };
    let no_records = message_with_body(
        "no-records",
        r#"{"Records":[{"eventName":"ObjectCreated:Put"}]}"#,
    );
    let other_bucket = created_message("someone-elses-bucket", "other-bucket", ORDERS, "0003");
    let messages = vec![
        good,
        not_json,
        test_event,
        bad_key,
        no_records,
        other_bucket,
    ];

    // Act
    let response = handle(lambda(batch(messages)), &deps(&env)).await.unwrap();

    // Assert
    assert_eq!(failed_ids(&response), ["not-json", "bad-key", "no-records"]);
    assert!(
        catalog_get(&env, ORDERS).await.is_some(),
        "the good record was written"
    );
}

/// Regression: a record whose key is longer than S3 allows (only a hostile sender makes one)
/// reached the catalog's bulk write, which DynamoDB refuses as a whole (a sort key is at most
/// 1024 bytes): every message of the batch failed, again and again, into the DLQ.
#[tokio::test]
async fn a_key_longer_than_s3_allows_fails_only_its_own_message() {
    // Arrange
    let env = TestEnv::new().await;
    let bucket = bucket(&env);
    let good = event_file("out-of-order", &bucket).records.remove(0);
    let too_long = format!("datasets/shop-42/{}.ndjson", "k".repeat(1024));
    let mut hostile = created_message(&bucket, "too-long", &too_long, "0002");
    hostile.body = Some(
        hostile
            .body
            .unwrap()
            .replace("ObjectCreated:Put", "ObjectRemoved:Delete"),
    );

    // Act
    let response = handle(lambda(batch(vec![good, hostile])), &deps(&env))
        .await
        .unwrap();

    // Assert
    assert_eq!(failed_ids(&response), ["too-long"]);
    assert!(
        catalog_get(&env, REFUNDS).await.expect("tombstone").deleted,
        "the good record was written"
    );
}

#[tokio::test]
async fn a_head_object_failure_fails_only_its_own_message() {
    // Arrange: S3 unreachable (a closed port), so HeadObject fails with a dispatch error.
    let env = TestEnv::new().await;
    let bucket = bucket(&env);
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let unreachable = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&env.function_sdk("MetadataSyncFunction"))
            .endpoint_url(format!("http://127.0.0.1:{closed_port}"))
            .force_path_style(true)
            .retry_config(aws_sdk_s3::config::retry::RetryConfig::disabled())
            .build(),
    );
    let deps = Deps {
        s3: unreachable,
        ..deps(&env)
    };
    let create = event_file("create", &bucket).records.remove(0);
    let delete = event_file("out-of-order", &bucket).records.remove(0);
    let failing_id = create.message_id.clone().unwrap();

    // Act
    let report = sync_batch(&[create, delete], &deps, Utc::now()).await;

    // Assert: the delete (no HeadObject needed) is written; only the create is redelivered.
    assert_eq!(report.failed, [failing_id]);
    assert_eq!(report.head_requests, 1);
    assert!(catalog_get(&env, REFUNDS).await.expect("tombstone").deleted);
    assert_eq!(catalog_get(&env, ORDERS).await, None);
}

#[tokio::test]
async fn a_catalog_failure_fails_only_the_messages_with_catalog_changes() {
    // Arrange: a catalog table that does not exist.
    let env = TestEnv::new().await;
    let bucket = bucket(&env);
    put(&env, ORDERS, "{}\n").await;
    let deps = Deps {
        catalog: CatalogStore::new(
            shared::aws::dynamodb(&env.function_sdk("MetadataSyncFunction")),
            "no-such-table",
        ),
        ..deps(&env)
    };
    let mut messages = event_file("test-event", &bucket).records;
    messages.extend(event_file("create", &bucket).records);
    messages.extend(event_file("out-of-order", &bucket).records);
    let ids: Vec<String> = messages
        .iter()
        .map(|m| m.message_id.clone().unwrap())
        .collect();

    // Act
    let report: BatchReport = sync_batch(&messages, &deps, Utc::now()).await;

    // Assert: everything but the test event is redelivered; nothing marked stale.
    assert_eq!(report.failed, ids[1..].to_vec());
    assert_eq!(report.apply, None);
    assert_eq!(report.stale_marked, 0);
}

#[tokio::test]
async fn s3_notifications_from_moto_are_synced_end_to_end() {
    // Arrange: an object with an awkward key, uploaded to the provisioned bucket, whose
    // notification configuration sends to MetadataQueue.
    let env = TestEnv::new().await;
    let key = "datasets/shop-42/2026 11/a+b %é.ndjson";
    let queue = env.resources.queues["MetadataQueue"].url.clone();
    let deps = deps(&env);
    // What the local runner does with a received message: Lambda's SQS record, the body
    // Lambda-shaped (or, `shape = false`, as moto wrote it).
    let lambda_message = |id: &Option<String>, body: &Option<String>, shape: bool| {
        let body = body.clone().expect("a body");
        let mut message = SqsMessage::default();
        message.message_id = id.clone();
        message.body = Some(if shape {
            emulator::s3_events::to_lambda_shape(&body)
        } else {
            body
        });
        message
    };

    // Act: the s3:TestEvent moto sent when the notification was configured.
    let tests = env.drain_queue(&queue, 1, Duration::from_secs(30)).await;
    let acknowledged = sync_batch(
        &tests
            .iter()
            .map(|m| lambda_message(&m.message_id, &m.body, true))
            .collect::<Vec<_>>(),
        &deps,
        Utc::now(),
    )
    .await;

    // Assert
    assert!(!tests.is_empty());
    assert_eq!(acknowledged.test_events, tests.len());
    assert!(acknowledged.failed.is_empty());

    // Act: the upload's notification, as moto sends it and Lambda-shaped.
    put(&env, key, "{}\n").await;
    let created = env.drain_queue(&queue, 1, Duration::from_secs(30)).await;
    let raw = sync_batch(
        &created
            .iter()
            .map(|m| lambda_message(&m.message_id, &m.body, false))
            .collect::<Vec<_>>(),
        &deps,
        Utc::now(),
    )
    .await;
    let shaped = handle(
        lambda(batch(
            created
                .iter()
                .map(|m| lambda_message(&m.message_id, &m.body, true))
                .collect(),
        )),
        &deps,
    )
    .await
    .unwrap();

    // Assert
    assert_eq!(created.len(), 1, "one notification for one upload");
    assert_eq!(
        raw.failed.len(),
        1,
        "moto's body as it is does not parse as a standard S3 event"
    );
    assert!(shaped.batch_item_failures.is_empty());
    let entry = catalog_get(&env, key).await.expect("cataloged");
    assert_eq!(entry.key(), key);
    assert_eq!(entry.size, 3);
    assert!(
        entry
            .sequencer
            .as_str()
            .chars()
            .all(|c| c.is_ascii_hexdigit()),
        "moto sends no sequencer: the emulator's fill-in, hex as S3's: {:?}",
        entry.sequencer
    );

    // Act: the delete notification, also through moto.
    env.s3()
        .delete_object()
        .bucket(bucket(&env))
        .key(key)
        .send()
        .await
        .unwrap();
    let removed = env.drain_queue(&queue, 1, Duration::from_secs(30)).await;
    let response = handle(
        lambda(batch(
            removed
                .iter()
                .map(|m| lambda_message(&m.message_id, &m.body, true))
                .collect(),
        )),
        &deps,
    )
    .await
    .unwrap();

    // Assert: the later eventTime wins.
    assert!(response.batch_item_failures.is_empty());
    assert!(catalog_get(&env, key).await.expect("a tombstone").deleted);
}

/// The EMF metrics metadata-sync writes. The only test of this binary that flushes metrics (the
/// recorder is per process; other tests only add to it, so these are lower bounds).
#[tokio::test]
async fn written_superseded_and_failed_objects_are_metrics() {
    emulator::emf::record("deferred-metadata-sync");
    let env = TestEnv::new().await;
    put(&env, ORDERS, "{\"amount\":1200}\n").await;
    let bucket = bucket(&env);
    // Two records of one key (the older one superseded) and a message that is not an S3 event.
    let event = batch(vec![
        created_message(&bucket, "m-1", ORDERS, "00674A3B2C1D0E0F10"),
        created_message(&bucket, "m-2", ORDERS, "00674A3B2C1D0E0F20"),
        message_with_body("m-3", "not an S3 event"),
    ]);

    let response = handle(lambda(event), &deps(&env)).await.unwrap();
    assert_eq!(failed_ids(&response), vec!["m-3"]);

    let emf = emulator::emf::flush();
    let total = |metric: &str, labels: &[(&str, &str)]| emf.total(metric, labels);
    assert!(
        total("CatalogObjects", &[("outcome", "written")]) >= Some(1.0),
        "{emf:#?}"
    );
    assert!(total("CatalogObjects", &[("outcome", "superseded")]) >= Some(1.0));
    assert!(total("MessagesFailed", &[]) >= Some(1.0));
}
