//! CatalogStore against the emulator: bulk writes in chunks, newer sequencer wins.

use std::collections::HashMap;

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
        sequencer: Sequencer::new(sequencer),
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
async fn bulk_upserts_are_written_in_transactions_of_up_to_100() {
    let env = TestEnv::new().await;
    let store = env.catalog_store();
    let changes: Vec<_> = (0..60)
        .map(|i| entry("datasets/shop-1", &format!("f{i:03}.ndjson"), "0A", i))
        .collect();

    let report = store.apply(changes).await.unwrap();

    assert_eq!(report.written, 60);
    assert_eq!(report.skipped, 0);
    assert_eq!(
        report.requests, 1,
        "one TransactWriteItems of 60 conditional puts"
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

#[tokio::test]
async fn changes_older_than_what_is_stored_are_dropped_and_the_rest_written() {
    // Arrange: two of five keys already hold a newer event.
    let env = TestEnv::new().await;
    let store = env.catalog_store();
    let dir = "datasets/shop-7";
    store
        .apply(vec![
            entry(dir, "b.ndjson", "0F", 1),
            entry(dir, "d.ndjson", "0F", 1),
        ])
        .await
        .unwrap();
    let older: Vec<_> = ["a", "b", "c", "d", "e"]
        .iter()
        .map(|n| entry(dir, &format!("{n}.ndjson"), "0E", 2))
        .collect();

    // Act
    let report = store.apply(older).await.unwrap();

    // Assert: the cancelled transaction was sent again without the two superseded puts.
    assert_eq!((report.written, report.skipped, report.requests), (3, 2, 2));
    for (name, size) in [("a", 2), ("b", 1), ("c", 2), ("d", 1), ("e", 2)] {
        let stored = store
            .get(dir, &format!("{name}.ndjson"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored.size, size, "{name}");
    }
}

/// Before an invocation's write goes out, runs another writer's write (through its own client
/// and runtime, as a concurrent invocation would).
#[derive(Clone)]
struct WriteFirst {
    done: std::sync::Arc<std::sync::atomic::AtomicBool>,
    other: CatalogStore,
    change: CatalogEntry,
}

impl std::fmt::Debug for WriteFirst {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WriteFirst")
    }
}

impl aws_sdk_dynamodb::config::Intercept for WriteFirst {
    fn name(&self) -> &'static str {
        "WriteFirst"
    }

    fn read_before_transmit(
        &self,
        context: &aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef<'_>,
        _: &aws_sdk_dynamodb::config::RuntimeComponents,
        _: &mut aws_sdk_dynamodb::config::ConfigBag,
    ) -> Result<(), aws_sdk_dynamodb::error::BoxError> {
        let target = context
            .request()
            .headers()
            .get("x-amz-target")
            .unwrap_or_default();
        let is_write =
            target.ends_with(".TransactWriteItems") || target.ends_with(".BatchWriteItem");
        if is_write && !self.done.swap(true, std::sync::atomic::Ordering::SeqCst) {
            let (other, change) = (self.other.clone(), self.change.clone());
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                runtime.block_on(other.apply(vec![change])).unwrap();
            })
            .join()
            .unwrap();
        }
        Ok(())
    }
}

/// Regression: two invocations handling a delete and a re-upload of one key could interleave
/// between reading the stored sequencer and writing, and the older event won. Here the
/// re-upload (newer) lands just before the delete's (older) write goes out.
#[tokio::test]
async fn a_concurrent_newer_write_is_never_overwritten_by_an_older_one() {
    // Arrange
    let env = TestEnv::new().await;
    let dir = "datasets/shop-race";
    let reupload = entry(dir, "a.ndjson", "0055AED6DCD90281E6", 7);
    let delete = tombstone(dir, "a.ndjson", "0055AED6DCD90281E5");
    let interleaved = WriteFirst {
        done: Default::default(),
        other: env.catalog_store(),
        change: reupload.clone(),
    };
    let store = CatalogStore::new(
        aws_sdk_dynamodb::Client::from_conf(
            aws_sdk_dynamodb::config::Builder::from(&env.sdk)
                .interceptor(interleaved)
                .build(),
        ),
        &env.names.catalog_table,
    );

    // Act
    let report = store.apply(vec![delete]).await.unwrap();

    // Assert: the object exists, as the newer event says.
    assert_eq!((report.written, report.skipped), (0, 1));
    let stored = store.get(dir, "a.ndjson").await.unwrap().unwrap();
    assert!(!stored.deleted);
    assert_eq!(stored, reupload);
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
