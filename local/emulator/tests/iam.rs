//! Each function's code runs locally as its own principal, with exactly the permissions
//! template.yaml gives its execution role; the emulator enforces them as AWS would.

use std::collections::HashMap;
use std::time::Duration;

use chrono::Utc;
use emulator::{provision, Template, TestEnv};
use shared::domain::{RequestReason, SubjectId};
use shared::score_store::{ScoreStore, StartMode};

const MISSING: StartMode = StartMode::Missing {
    failed_retry_after: Duration::from_secs(60),
    no_data_retry_after: Duration::from_secs(3600),
};

fn is_access_denied(err: &shared::Error) -> bool {
    format!("{err:?}").contains("AccessDenied")
}

#[tokio::test]
async fn a_function_may_call_what_its_policy_allows_and_nothing_else() {
    // Arrange
    let env = TestEnv::new().await;
    let table = &env.names.scores_table;
    let subject = SubjectId::parse("shop-1").unwrap();
    let as_request_api = ScoreStore::new(
        shared::aws::dynamodb(&env.function_sdk("RequestApiFunction")),
        table,
    );
    let as_notifier = ScoreStore::new(
        shared::aws::dynamodb(&env.function_sdk("NotifierFunction")),
        table,
    );
    let catalog_as_request_api = shared::catalog_store::CatalogStore::new(
        shared::aws::dynamodb(&env.function_sdk("RequestApiFunction")),
        &env.names.catalog_table,
    );

    // Act
    let allowed = as_request_api
        .start_job(
            &subject,
            RequestReason::Miss,
            MISSING,
            Utc::now(),
            Duration::from_secs(60),
        )
        .await;
    let not_in_policy = as_notifier.get(&subject, Utc::now()).await;
    let other_table = catalog_as_request_api.list_dir("datasets/shop-1").await;
    let other_topic =
        shared::publisher::Publisher::new(shared::aws::sns(&env.function_sdk("NotifierFunction")))
            .publish_batch(
                &env.names.compute_topic_arn,
                &[shared::publisher::OutgoingMessage {
                    id: "1".into(),
                    body: "{}".into(),
                    attributes: vec![],
                }],
            )
            .await;

    // Assert
    allowed.expect("request-api may create jobs");
    assert!(is_access_denied(&not_in_policy.unwrap_err()));
    assert!(is_access_denied(&other_table.unwrap_err()));
    assert!(is_access_denied(&other_topic.unwrap_err()));
}

#[tokio::test]
async fn removing_an_action_from_a_policy_denies_the_call_that_needed_it() {
    // Arrange: template.yaml with dynamodb:PutItem taken out of request-api's policy.
    let mut template = Template::load(&emulator::template_path()).unwrap();
    let function = template
        .resources
        .iter_mut()
        .find(|r| r.logical_id == "RequestApiFunction")
        .unwrap();
    let mut removed = 0;
    for policy in function.properties["Policies"].as_sequence_mut().unwrap() {
        for statement in policy["Statement"].as_sequence_mut().unwrap() {
            // (A statement under a condition, `!If [...]`, is not a mapping: not indexed.)
            if let Some(actions) = statement
                .get_mut("Action")
                .and_then(|a| a.as_sequence_mut())
            {
                let before = actions.len();
                actions.retain(|a| a.as_str() != Some("dynamodb:PutItem"));
                removed += before - actions.len();
            }
        }
    }
    assert_eq!(
        removed, 1,
        "request-api's policy grants dynamodb:PutItem once"
    );
    let sdk = emulator::test_sdk_config();
    let resources = provision(&sdk, &template, &emulator::unique_prefix(), &HashMap::new())
        .await
        .unwrap();
    let store = ScoreStore::new(
        shared::aws::dynamodb(&resources.function_sdk(&sdk, "RequestApiFunction").unwrap()),
        &resources.tables["ScoresTable"].name,
    );

    // Act
    let start = store
        .start_job(
            &SubjectId::parse("shop-1").unwrap(),
            RequestReason::Miss,
            MISSING,
            Utc::now(),
            Duration::from_secs(60),
        )
        .await;

    // Assert
    let err = start.expect_err("PutItem is no longer allowed");
    assert!(is_access_denied(&err), "{err:?}");
    assert!(!err.is_retryable(), "AccessDenied is permanent: {err:?}");
}

#[tokio::test]
async fn each_principal_holds_its_template_statements_and_what_sam_adds_for_its_events() {
    let env = TestEnv::new().await;

    for (function, info) in &env.resources.functions {
        let statements = info.policy["Statement"].as_array().unwrap();
        let sids: Vec<&str> = statements
            .iter()
            .filter_map(|s| s["Sid"].as_str())
            .collect();
        assert!(sids.contains(&"SamBasicExecution"), "{function}: {sids:?}");
        let has = |sid: &str| sids.contains(&sid);
        match function.as_str() {
            "ComputeFunction" | "MetadataSyncFunction" => assert!(has("SamSqsPoller")),
            "NotifierFunction" => {
                assert!(has("SamStreamReader") && has("SamOnFailureDestination"))
            }
            "RequestApiFunction" => assert!(!has("SamSqsPoller") && !has("SamStreamReader")),
            other => panic!("unexpected function {other}"),
        }
        // Without KmsKeyArn (the default) no statement is about KMS, and the statements under
        // UseCustomerManagedKey are left out, not left as nulls.
        assert!(
            statements
                .iter()
                .all(|s| s.is_object() && !s.to_string().contains("kms:")),
            "{function}: {statements:?}"
        );
        // Every resource ARN is resolved to the emulator's resources of this run.
        for statement in statements {
            let resources = match &statement["Resource"] {
                serde_json::Value::Array(list) => list.clone(),
                one => vec![one.clone()],
            };
            for resource in resources {
                let arn = resource.as_str().unwrap_or_default();
                assert!(
                    arn == "*" || arn.contains(&env.resources.prefix),
                    "{function}: unresolved or foreign resource {resource}"
                );
            }
        }
        assert!(info.credentials.is_some(), "{function} has a principal");
    }
}

#[tokio::test]
async fn with_a_customer_managed_key_each_function_may_use_it_for_what_it_does_and_no_more() {
    let key = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    let overrides = HashMap::from([("KmsKeyArn".to_owned(), key.to_owned())]);

    let env = TestEnv::with_overrides(&overrides).await;

    for (function, info) in &env.resources.functions {
        let kms: Vec<&serde_json::Value> = info.policy["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s.to_string().contains("kms:"))
            .collect();
        assert_eq!(kms.len(), 1, "{function}: {kms:?}");
        assert_eq!(kms[0]["Effect"], "Allow");
        assert_eq!(kms[0]["Resource"], key, "{function}: only the stack's key");
        let actions: Vec<&str> = kms[0]["Action"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|a| a.as_str())
            .collect();
        // Decrypt: the tables' keys (DynamoDB), the stream, received queue messages.
        // GenerateDataKey: only where the function publishes to a topic or sends to a queue.
        let expected: &[&str] = match function.as_str() {
            "RequestApiFunction" | "NotifierFunction" => &["kms:Decrypt", "kms:GenerateDataKey"],
            "ComputeFunction" | "MetadataSyncFunction" => &["kms:Decrypt"],
            other => panic!("unexpected function {other}"),
        };
        assert_eq!(actions, expected, "{function}");
        assert!(
            info.credentials.is_some(),
            "{function}: moto accepts the policy"
        );
    }
}
