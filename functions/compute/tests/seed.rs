//! `datagen::seed` (what `make dev` uses) puts data where compute finds it: against the emulator.

use chrono::Utc;
use compute::{handle, Deps};
use datagen::Profile;
use emulator::TestEnv;
use lambda_runtime::{Context, LambdaEvent};
use shared::domain::{Band, RequestReason, ScoreStatus};
use shared::events::ComputeRequested;
use shared::score_store::{StartMode, StartOutcome};

#[tokio::test]
async fn seeded_subjects_are_scored_and_risky_profiles_stand_out() {
    // Arrange: the first six subjects of a plan (one large normal shop, one of each risky
    // profile, one more), kept small for a debug build.
    let env = TestEnv::new().await;
    let config = compute::Config::from_env(&env.function_env("ComputeFunction")).unwrap();
    let mut specs = datagen::plan(6, 7);
    for spec in &mut specs {
        spec.rows = spec.rows.min(3_000);
        spec.files = 2;
    }
    let seeded = datagen::seed(
        &env.s3(),
        &env.catalog_store(),
        &env.names.data_bucket,
        &specs,
        7,
    )
    .await
    .expect("seed");
    assert_eq!(seeded.len(), 6);
    assert!(seeded.iter().all(|s| s.objects == 2 && s.bytes > 0));

    let mut event: aws_lambda_events::event::sqs::SqsEvent =
        serde_json::from_value(emulator::fixtures::load("compute", "single")).unwrap();
    let template = event.records.remove(0);
    for spec in &specs {
        let StartOutcome::Started(job) = env
            .score_store()
            .start_job(
                &spec.subject_id,
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
        let body = ComputeRequested::new(
            spec.subject_id.clone(),
            job.job_id,
            RequestReason::Miss,
            Utc::now(),
            None,
        );
        let mut record = template.clone();
        record.message_id = Some(format!("m-{}", spec.subject_id));
        record.body = Some(serde_json::to_string(&body).unwrap());
        event.records.push(record);
    }

    // Act
    let deps = Deps::new(&config, &env.function_sdk("ComputeFunction")).unwrap();
    let response = handle(LambdaEvent::new(event, Context::default()), &deps)
        .await
        .unwrap();

    // Assert
    assert!(response.batch_item_failures.is_empty());
    for spec in &specs {
        let record = env
            .score_store()
            .get(&spec.subject_id, Utc::now())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(record.status, ScoreStatus::Done, "{}", spec.subject_id);
        let result = record.result.unwrap();
        let expected_malformed = (spec.rows * spec.malformed_per_mille as usize / 1000) as u64;
        assert_eq!(result.feature_summary.rows, spec.rows as u64);
        assert_eq!(result.feature_summary.malformed_lines, expected_malformed);
        assert_eq!(result.feature_summary.objects, 2);
        match spec.profile {
            Profile::Normal => assert_eq!(result.band, Band::Low, "{}", spec.subject_id),
            _ => assert_ne!(result.band, Band::Low, "{}", spec.subject_id),
        }
    }
}
