//! CatalogStore against the emulator: bulk writes in chunks, newer sequencer wins.

use std::collections::HashMap;

use emulator::faults::PartialBatches;
use emulator::TestEnv;
use shared::catalog_store::{CatalogEntry, CatalogStore, Sequencer};

fn entry(dir: &str, name: &str, sequencer: &str, size: i64) -> CatalogEntry {
    CatalogEntry {
        dir: dir.into(),
        name: name.into(),
        bucket: "lake".into(),
        size,
        etag: Some(format!("etag-{size}")),
        content_type: Some("application/x-ndjson".into()),
        last_modified: None,
        user_metadata: HashMap::from([("source".to_owned(), "test".to_owned())]),
        sequencer: Sequencer(sequencer.into()),
        deleted: false,
        expires_at: None,
    }
}

fn tombstone(dir: &str, name: &str, sequencer: &str) -> CatalogEntry {
    CatalogEntry {
        deleted: true,
        expires_at: Some(4_000_000_000),
        ..entry(dir, name, sequencer, 0)
    }
}

#[tokio::test]
async fn bulk_upserts_are_chunked_at_25() {
    let env = TestEnv::new().await;
    let store = env.catalog_store();
    let changes: Vec<_> = (0..60)
        .map(|i| entry("datasets/shop-1", &format!("f{i:03}.ndjson"), "0A", i))
        .collect();

    let report = store.apply(changes).await.unwrap();

    assert_eq!(report.written, 60);
    assert_eq!(report.skipped, 0);
    assert_eq!(
        report.requests,
        1 + 3,
        "one BatchGetItem, three BatchWriteItem of at most 25"
    );
    let listed = store.list_dir("datasets/shop-1").await.unwrap();
    assert_eq!(listed.len(), 60);
    assert_eq!(listed[7].user_metadata["source"], "test");
}

#[tokio::test]
async fn an_older_event_never_overwrites_a_newer_one() {
    let env = TestEnv::new().await;
    let store = env.catalog_store();
    let dir = "datasets/shop-2";

    store
        .apply(vec![entry(dir, "a.ndjson", "0055AED6DCD90281E6", 200)])
        .await
        .unwrap();
    let late = store
        .apply(vec![entry(dir, "a.ndjson", "0055AED6DCD90281E5", 100)])
        .await
        .unwrap();

    assert_eq!(late.written, 0);
    assert_eq!(late.skipped, 1);
    assert_eq!(store.get(dir, "a.ndjson").await.unwrap().unwrap().size, 200);
}

#[tokio::test]
async fn a_delete_delivered_before_its_create_leaves_the_object_absent() {
    let env = TestEnv::new().await;
    let store = env.catalog_store();
    let dir = "datasets/shop-3";

    store
        .apply(vec![tombstone(dir, "gone.ndjson", "0B")])
        .await
        .unwrap();
    store
        .apply(vec![entry(dir, "gone.ndjson", "0A", 10)])
        .await
        .unwrap();

    assert!(store.list_dir(dir).await.unwrap().is_empty());
    assert!(
        store
            .get(dir, "gone.ndjson")
            .await
            .unwrap()
            .unwrap()
            .deleted
    );
}

#[tokio::test]
async fn within_a_batch_the_newest_change_per_key_wins() {
    let env = TestEnv::new().await;
    let store = env.catalog_store();
    let dir = "datasets/shop-4";

    let report = store
        .apply(vec![
            entry(dir, "x.ndjson", "03", 3),
            tombstone(dir, "x.ndjson", "05"),
            entry(dir, "x.ndjson", "04", 4),
            entry(dir, "y.ndjson", "01", 1),
        ])
        .await
        .unwrap();

    assert_eq!((report.written, report.skipped), (2, 2));
    let listed = store.list_dir(dir).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].name, "y.ndjson");
}

#[tokio::test]
async fn a_duplicate_delivery_changes_nothing() {
    let env = TestEnv::new().await;
    let store = env.catalog_store();
    let dir = "datasets/shop-5";
    let change = entry(dir, "dup.ndjson", "0C", 5);

    store.apply(vec![change.clone()]).await.unwrap();
    let again = store.apply(vec![change.clone()]).await.unwrap();

    assert_eq!((again.written, again.skipped), (0, 1));
    assert_eq!(store.get(dir, "dup.ndjson").await.unwrap().unwrap(), change);
}

/// A store whose DynamoDB client meets DynamoDB's partial batches (moto never returns any).
fn store_under_pressure(env: &TestEnv, faults: PartialBatches) -> (CatalogStore, PartialBatches) {
    let client = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&env.sdk)
            .interceptor(faults.clone())
            .build(),
    );
    (CatalogStore::new(client, &env.names.catalog_table), faults)
}

#[tokio::test]
async fn unprocessed_items_and_keys_are_retried_until_everything_is_applied() {
    // Arrange
    let env = TestEnv::new().await;
    let (store, faults) = store_under_pressure(&env, PartialBatches::unprocessed_dynamodb_items(4));
    let changes: Vec<_> = (0..60)
        .map(|i| entry("datasets/shop-9", &format!("f{i:03}.ndjson"), "0B", i))
        .collect();

    // Act
    let report = store.apply(changes).await.unwrap();

    // Assert
    assert!(!faults.undone().is_empty(), "the fault was injected");
    assert_eq!(report.written, 60);
    assert!(
        report.requests > 1 + 3,
        "retries are counted: {}",
        report.requests
    );
    let listed = env
        .catalog_store()
        .list_dir("datasets/shop-9")
        .await
        .unwrap();
    assert_eq!(
        listed.len(),
        60,
        "every item written despite the partial batches"
    );
}

#[tokio::test]
async fn items_that_stay_unprocessed_end_in_a_retryable_error() {
    // Arrange: DynamoDB never catches up.
    let env = TestEnv::new().await;
    let (store, _) = store_under_pressure(&env, PartialBatches::stuck_dynamodb_batches());
    let changes: Vec<_> = (0..3)
        .map(|i| entry("datasets/shop-8", &format!("f{i}.ndjson"), "0C", i))
        .collect();

    // Act
    let err = store.apply(changes).await.unwrap_err();

    // Assert
    assert!(
        matches!(err, shared::Error::Unprocessed { count: 3, .. }),
        "{err:?}"
    );
    assert!(err.is_retryable(), "the caller retries the message later");
}

/// The JSON bodies of the Query requests a client sends.
#[derive(Debug, Clone, Default)]
struct QueryBodies(std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>>);

impl aws_sdk_dynamodb::config::Intercept for QueryBodies {
    fn name(&self) -> &'static str {
        "QueryBodies"
    }

    fn read_before_transmit(
        &self,
        context: &aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef<'_>,
        _: &aws_sdk_dynamodb::config::RuntimeComponents,
        _: &mut aws_sdk_dynamodb::config::ConfigBag,
    ) -> Result<(), aws_sdk_dynamodb::error::BoxError> {
        let request = context.request();
        if request
            .headers()
            .get("x-amz-target")
            .is_some_and(|t| t.ends_with(".Query"))
        {
            let body = request.body().bytes().unwrap_or_default();
            self.0.lock().unwrap().push(serde_json::from_slice(body)?);
        }
        Ok(())
    }
}

/// Regression: the listing was eventually consistent, so a job started right after
/// metadata-sync cataloged a new object (and marked the score stale) could miss it and store a
/// result marked fresh.
#[tokio::test]
async fn listing_a_subjects_objects_reads_consistently() {
    let env = TestEnv::new().await;
    let queries = QueryBodies::default();
    let client = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&env.sdk)
            .interceptor(queries.clone())
            .build(),
    );
    let store = CatalogStore::new(client, &env.names.catalog_table);
    env.catalog_store()
        .apply(vec![entry("datasets/shop-c", "a.ndjson", "0D", 1)])
        .await
        .unwrap();

    let listed = store.list_dir("datasets/shop-c").await.unwrap();

    assert_eq!(listed.len(), 1);
    let sent = queries.0.lock().unwrap().clone();
    assert!(!sent.is_empty());
    assert!(sent.iter().all(|q| q["ConsistentRead"] == true), "{sent:?}");
}
