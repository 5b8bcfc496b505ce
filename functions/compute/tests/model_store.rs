//! The S3 model artifact (`MODEL_URI`): loaded once, cached with a TTL, swapped on reload,
//! kept when a reload fails; and used by the handler. Against the emulator.

use std::time::Duration;

use chrono::Utc;
use compute::model::{ModelStore, EMBEDDED_MODEL_JSON};
use compute::{handle, Deps};
use emulator::TestEnv;
use lambda_runtime::{Context, LambdaEvent};
use shared::catalog_store::{split_key, CatalogEntry, Sequencer};
use shared::domain::{RequestReason, ScoreStatus, SubjectId};
use shared::score_store::{StartMode, StartOutcome};

/// The embedded artifact with another version and intercept.
/// compute's configuration from the template.
fn compute_config(env: &TestEnv) -> compute::Config {
    compute::Config::from_env(&env.function_env("ComputeFunction")).unwrap()
}

/// S3 as compute sees it: its own principal, with the template's policy.
fn compute_s3(env: &TestEnv) -> aws_sdk_s3::Client {
    shared::aws::s3(&env.function_sdk("ComputeFunction"))
}

fn artifact(version: &str, intercept: f64) -> Vec<u8> {
    let mut value: serde_json::Value = serde_json::from_str(EMBEDDED_MODEL_JSON).unwrap();
    value["version"] = version.into();
    value["intercept"] = intercept.into();
    serde_json::to_vec(&value).unwrap()
}

async fn upload(env: &TestEnv, key: &str, body: Vec<u8>) {
    env.s3()
        .put_object()
        .bucket(&env.names.data_bucket)
        .key(key)
        .body(body.into())
        .send()
        .await
        .expect("put");
}

async fn version(store: &ModelStore) -> String {
    store.current().await.expect("a model").version().to_owned()
}

#[tokio::test]
async fn the_model_is_cached_for_its_ttl_and_swapped_after_it() {
    // Arrange
    let env = TestEnv::new().await;
    let key = "models/fraud-lr/live.json";
    let uri = format!("s3://{}/{key}", env.names.data_bucket);
    upload(&env, key, artifact("2", -3.0)).await;
    let cached = ModelStore::s3(compute_s3(&env), &uri, Duration::from_secs(3600)).unwrap();
    let uncached = ModelStore::s3(compute_s3(&env), &uri, Duration::ZERO).unwrap();
    assert_eq!(version(&cached).await, "fraud-lr/2");
    assert_eq!(version(&uncached).await, "fraud-lr/2");

    // Act: a new artifact replaces the object.
    upload(&env, key, artifact("3", -3.0)).await;

    // Assert: the long TTL keeps the loaded model, the expired one swaps.
    assert_eq!(version(&cached).await, "fraud-lr/2");
    assert_eq!(version(&uncached).await, "fraud-lr/3");

    // Act: the object disappears (or is broken): reloads fail.
    env.s3()
        .delete_object()
        .bucket(&env.names.data_bucket)
        .key(key)
        .send()
        .await
        .unwrap();

    // Assert: the loaded model keeps serving; a store that never loaded one reports the error.
    assert_eq!(version(&uncached).await, "fraud-lr/3");
    let fresh = ModelStore::s3(compute_s3(&env), &uri, Duration::ZERO).unwrap();
    let err = fresh.current().await.err().expect("no model to serve");
    assert!(
        matches!(err, compute::Error::Shared(shared::Error::Aws { .. })),
        "{err:?}"
    );
}

#[tokio::test]
async fn an_invalid_artifact_is_a_model_error() {
    let env = TestEnv::new().await;
    let key = "models/fraud-lr/broken.json";
    upload(&env, key, br#"{"format":"onnx"}"#.to_vec()).await;
    let uri = format!("s3://{}/{key}", env.names.data_bucket);
    let store = ModelStore::s3(compute_s3(&env), &uri, Duration::ZERO).unwrap();
    let err = store.current().await.err().expect("invalid");
    assert!(matches!(err, compute::Error::Model(_)), "{err:?}");
}

#[tokio::test]
async fn a_malformed_model_uri_fails_at_cold_start() {
    let env = TestEnv::new().await;
    let mut config = compute_config(&env);
    config.model_uri = Some("https://example.com/model.json".into());
    assert!(Deps::new(&config, &env.function_sdk("ComputeFunction")).is_err());
}

#[tokio::test]
async fn the_handler_scores_with_the_configured_s3_model() {
    // Arrange: MODEL_URI names an artifact with a higher intercept.
    let env = TestEnv::new().await;
    let key = "models/fraud-lr/9.json";
    upload(&env, key, artifact("9", 0.0)).await;
    let mut config = compute_config(&env);
    config.model_uri = Some(format!("s3://{}/{key}", env.names.data_bucket));
    let deps = Deps::new(&config, &env.function_sdk("ComputeFunction")).unwrap();

    let subject = SubjectId::parse(&format!("{}-model", env.resources.prefix)).unwrap();
    let data_key = format!("{}/a.ndjson", subject.dataset_dir());
    let data = include_bytes!("data/golden-typical.ndjson");
    upload(&env, &data_key, data.to_vec()).await;
    let (dir, name) = split_key(&data_key);
    env.catalog_store()
        .apply(vec![CatalogEntry {
            dir,
            name,
            bucket: env.names.data_bucket.clone(),
            size: data.len() as i64,
            etag: None,
            content_type: None,
            last_modified: None,
            user_metadata: Default::default(),
            sequencer: Sequencer::new("01"),
            deleted: false,
            expires_at: None,
        }])
        .await
        .unwrap();
    let StartOutcome::Started(job) = env
        .score_store()
        .start_job(
            &subject,
            RequestReason::Miss,
            StartMode::Refresh,
            Utc::now(),
            config.result_ttl,
        )
        .await
        .unwrap()
    else {
        panic!("not started")
    };
    let body = shared::events::ComputeRequested::new(
        subject.clone(),
        job.job_id,
        RequestReason::Miss,
        Utc::now(),
        None,
    );
    let mut event: aws_lambda_events::event::sqs::SqsEvent =
        serde_json::from_value(emulator::fixtures::load("compute", "single")).unwrap();
    event.records[0].body = Some(serde_json::to_string(&body).unwrap());

    // Act
    let response = handle(LambdaEvent::new(event, Context::default()), &deps)
        .await
        .unwrap();

    // Assert
    assert!(response.batch_item_failures.is_empty());
    let record = env
        .score_store()
        .get(&subject, Utc::now())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.status, ScoreStatus::Done);
    let result = record.result.unwrap();
    assert_eq!(result.model_version, "fraud-lr/9");
    // Same features as the golden typical shop, intercept 0 instead of -2.9.
    let typical_logit = (0.042_834_387_895_617_304f64 / (1.0 - 0.042_834_387_895_617_304)).ln();
    let expected = 1.0 / (1.0 + (-(typical_logit + 2.9)).exp());
    assert!((result.score - expected).abs() < 1e-9, "{}", result.score);
}
