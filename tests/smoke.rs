//! The smoke test of a deployed stack (`deferred-smoke`, `make smoke`) against the local system,
//! so that the scenarios stay true to the API: signed with the emulator's credentials from the
//! environment (the local API does not check them yet), and unsigned, as for `ApiAuth=NONE`.

use std::time::Duration;

use aws_config::BehaviorVersion;
use datagen::{Profile, SubjectSpec};
use deferred_smoke::{Auth, Signer, SmokeOptions, SmokeReport};
use e2e_tests::System;
use shared::domain::SubjectId;

/// Generous: these wait on pollers and a 2-core machine, never assert on speed.
const WITHIN: Duration = Duration::from_secs(120);

async fn seed(system: &System, subject: &str) {
    let config = system.names();
    let catalog = system.catalog();
    let spec = SubjectSpec::new(SubjectId::parse(subject).unwrap(), 300, Profile::Normal);
    datagen::seed(&system.s3(), &catalog, &config.data_bucket, &[spec], 11)
        .await
        .expect("seeding");
    // The uploads' own S3 events must not mark the score stale while the smoke test polls it.
    system.wait_for_empty_queue("MetadataQueue", WITHIN).await;
}

fn show(label: &str, report: &SmokeReport) {
    println!("{label} (subject {}):\n{report}", report.subject);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_smoke_test_of_a_deployed_stack_passes_against_the_local_system() {
    let system = System::start(&[]).await;
    let base_url = system.runner.base_url();
    // What the binary does: the default chain (here AWS_ACCESS_KEY_ID=test ... from
    // scripts/moto.sh), the region from the environment since 127.0.0.1 names none.
    let sdk = aws_config::defaults(BehaviorVersion::latest()).load().await;
    let mut signed = SmokeOptions::new(&base_url, Auth::Unsigned).unwrap();
    let signer = Signer::from_sdk_config(&sdk, &signed.api_url).expect("credentials and region");
    assert_eq!(signer.check().await.expect("credentials"), "test");
    signed.auth = Auth::SigV4(signer);
    signed.subject_prefix = "smoke-e2e".into();
    signed.timeout = WITHIN;
    // A subject with data, so that one run ends `done`; unsigned, as for ApiAuth=NONE.
    let mut unsigned = SmokeOptions::new(&base_url, Auth::Unsigned).unwrap();
    unsigned.subject = Some("smoke-seeded".into());
    unsigned.timeout = WITHIN;

    let (fresh, seeded) = tokio::join!(deferred_smoke::run(signed), async {
        seed(&system, "smoke-seeded").await;
        deferred_smoke::run(unsigned).await
    });
    show("signed, fresh subjects", &fresh);
    show("unsigned, seeded subject", &seeded);

    assert!(fresh.passed(), "{fresh}");
    assert!(seeded.passed(), "{seeded}");
    let names: Vec<&str> = fresh.scenarios.iter().map(|s| s.name).collect();
    assert_eq!(
        names,
        ["fresh-subject", "batch-get", "problem-json", "refresh"]
    );
    assert!(fresh.subject.starts_with("smoke-e2e-"));
    assert_eq!(
        fresh.final_status.as_deref(),
        Some("failed"),
        "a subject without data fails"
    );
    assert!(
        fresh
            .scenario("fresh-subject")
            .unwrap()
            .seen
            .contains("NO_DATA"),
        "{fresh}"
    );
    assert_eq!(seeded.subject, "smoke-seeded");
    assert_eq!(seeded.final_status.as_deref(), Some("done"), "{seeded}");
    system.runner.shutdown().await;
}
