//! The smoke test of a deployed stack (`deferred-smoke`, `make smoke`) against the local system,
//! so that the scenarios stay true to the API: signed with the emulator's credentials from the
//! environment against `ApiAuth=AWS_IAM` (the default, whose signatures the local API checks),
//! and unsigned against a system run with `ApiAuth=NONE`, as `--unsigned` is for such a stack.

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
    let (system, open_system) =
        tokio::join!(System::start(&[]), System::start(&[("ApiAuth", "NONE")]));
    assert!(system.runner.http_auth.iam_required);
    assert!(!open_system.runner.http_auth.iam_required);
    // What the binary does: the default chain (here AWS_ACCESS_KEY_ID=test ... from
    // scripts/moto.sh), the region from the environment since 127.0.0.1 names none.
    let sdk = aws_config::defaults(BehaviorVersion::latest()).load().await;
    let mut signed = SmokeOptions::new(&system.runner.base_url(), Auth::Unsigned).unwrap();
    let signer = Signer::from_sdk_config(&sdk, &signed.api_url).expect("credentials and region");
    assert_eq!(signer.check().await.expect("credentials"), "test");
    signed.auth = Auth::SigV4(signer);
    signed.subject_prefix = "smoke-e2e".into();
    signed.timeout = WITHIN;
    // A subject with data, so that one run ends `done`; unsigned, as for ApiAuth=NONE.
    let mut unsigned = SmokeOptions::new(&open_system.runner.base_url(), Auth::Unsigned).unwrap();
    unsigned.subject = Some("smoke-seeded".into());
    unsigned.timeout = WITHIN;
    // Unsigned against IAM auth: the first scenario already sees API Gateway's 403.
    let mut refused = SmokeOptions::new(&system.runner.base_url(), Auth::Unsigned).unwrap();
    refused.timeout = Duration::from_secs(5);

    let (fresh, seeded, denied) = tokio::join!(
        deferred_smoke::run(signed),
        async {
            seed(&open_system, "smoke-seeded").await;
            deferred_smoke::run(unsigned).await
        },
        deferred_smoke::run(refused)
    );
    show("signed, fresh subjects (ApiAuth=AWS_IAM)", &fresh);
    show("unsigned, seeded subject (ApiAuth=NONE)", &seeded);
    show("unsigned against ApiAuth=AWS_IAM", &denied);

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
    assert!(
        denied.scenarios.iter().all(|s| !s.passed),
        "no scenario passes unsigned under IAM auth: {denied}"
    );
    assert!(
        denied
            .scenario("fresh-subject")
            .unwrap()
            .seen
            .contains("403"),
        "{denied}"
    );
    system.runner.shutdown().await;
    open_system.runner.shutdown().await;
}
