//! template.yaml is the one list of resources: everything in it is provisioned locally (or
//! listed as not emulated), and its defaults obey the failure policy of docs/ARCHITECTURE.md.

use std::collections::HashMap;

use aws_sdk_sqs::types::QueueAttributeName;
use emulator::provision::NOT_EMULATED;
use emulator::{EventSource, RouteAuthorization, Template, TestEnv};

fn template() -> Template {
    Template::load(&emulator::template_path()).expect("template.yaml loads")
}

fn param(template: &Template, name: &str) -> i64 {
    template
        .parameter_default(name)
        .unwrap_or_else(|| panic!("parameter {name} has a default"))
        .parse()
        .unwrap_or_else(|_| panic!("parameter {name} is a number"))
}

#[tokio::test]
async fn every_template_resource_is_provisioned_or_deliberately_not_emulated() {
    let template = template();

    let env = TestEnv::new().await;

    let r = &env.resources;
    let created =
        r.tables.len() + r.topics.len() + r.queues.len() + r.buckets.len() + r.subscriptions.len();
    assert_eq!(created + r.not_emulated.len(), template.resources.len());
    for resource in &template.resources {
        let id = &resource.logical_id;
        let accounted = r.tables.contains_key(id)
            || r.topics.contains_key(id)
            || r.queues.contains_key(id)
            || r.buckets.contains_key(id)
            || r.subscriptions.contains_key(id)
            || r.not_emulated.contains_key(id);
        assert!(
            accounted,
            "{id} ({}) is neither provisioned nor listed in NOT_EMULATED",
            resource.kind
        );
    }
    for function in [
        "RequestApiFunction",
        "ComputeFunction",
        "NotifierFunction",
        "MetadataSyncFunction",
    ] {
        // Each function's environment is checked against its config in local/runner's tests.
        assert!(r.functions.contains_key(function), "{function} missing");
    }
}

#[tokio::test]
async fn unknown_resource_types_are_rejected() {
    let template = Template::parse("Resources:\n  Thing:\n    Type: AWS::EC2::Instance\n").unwrap();

    let result = emulator::provision(
        &emulator::test_sdk_config(),
        &template,
        &emulator::unique_prefix(),
        &HashMap::new(),
    )
    .await;

    assert!(
        matches!(
            result,
            Err(emulator::provision::ProvisionError::Unsupported { .. })
        ),
        "{result:?}"
    );
    assert!(NOT_EMULATED
        .iter()
        .all(|(kind, _)| *kind != "AWS::EC2::Instance"));
}

#[test]
fn defaults_follow_the_concurrency_and_failure_policy() {
    let t = template();

    let compute_timeout = param(&t, "ComputeTimeout");
    assert!(
        param(&t, "ComputeQueueVisibilityTimeout") >= 6 * compute_timeout,
        "visibility >= 6 x timeout"
    );
    assert!((5..=10).contains(&param(&t, "ComputeMaxReceiveCount")));
    assert!(param(&t, "ComputeMaximumConcurrency") <= param(&t, "ComputeReservedConcurrency"));
    assert!(
        param(&t, "ComputeMaximumConcurrency") >= 2,
        "AWS minimum for MaximumConcurrency"
    );
    assert!((1..=10).contains(&param(&t, "ComputeBatchSize")));
    assert_eq!(param(&t, "DeadLetterRetentionSeconds"), 14 * 24 * 3600);
    assert!(param(&t, "MetadataQueueVisibilityTimeout") >= 6 * param(&t, "MetadataTimeout"));
    assert!((5..=10).contains(&param(&t, "MetadataMaxReceiveCount")));
    assert!(param(&t, "MetadataBatchingWindowSeconds") > 0);
    assert!(
        param(&t, "MetadataMaximumConcurrency") <= param(&t, "MetadataSyncReservedConcurrency")
    );
    assert!(
        param(&t, "ComputeLeaseSeconds") > compute_timeout,
        "a live worker never loses its lease"
    );
}

#[tokio::test]
async fn event_sources_carry_the_policy_settings() {
    let env = TestEnv::new().await;
    let f = &env.resources.functions;

    let compute = &f["ComputeFunction"];
    assert_eq!(compute.reserved_concurrency, Some(2));
    match compute.events.as_slice() {
        [EventSource::Sqs {
            queue_arn,
            maximum_concurrency,
            report_batch_item_failures,
            ..
        }] => {
            assert_eq!(queue_arn, &env.resources.queue("ComputeQueue").arn);
            assert_eq!(*maximum_concurrency, Some(2));
            assert!(report_batch_item_failures);
        }
        other => panic!("compute events: {other:?}"),
    }
    match f["MetadataSyncFunction"].events.as_slice() {
        [EventSource::Sqs {
            batch_size,
            batching_window_seconds,
            maximum_concurrency,
            report_batch_item_failures,
            ..
        }] => {
            assert_eq!(*batch_size, 100);
            assert!(*batching_window_seconds > 0);
            assert_eq!(*maximum_concurrency, Some(2));
            assert!(report_batch_item_failures);
        }
        other => panic!("metadata-sync events: {other:?}"),
    }
    match f["NotifierFunction"].events.as_slice() {
        [EventSource::DynamoDb {
            stream_arn,
            filter_patterns,
            bisect_batch_on_function_error,
            maximum_retry_attempts,
            on_failure_destination_arn,
            report_batch_item_failures,
            ..
        }] => {
            assert_eq!(
                Some(stream_arn),
                env.resources.table("ScoresTable").stream_arn.as_ref()
            );
            assert_eq!(filter_patterns.len(), 1);
            assert!(bisect_batch_on_function_error);
            assert!(maximum_retry_attempts.is_some());
            assert_eq!(
                on_failure_destination_arn.as_deref(),
                Some(env.resources.queue("NotifierFailureQueue").arn.as_str())
            );
            assert!(report_batch_item_failures);
        }
        other => panic!("notifier events: {other:?}"),
    }
    // ApiAuth=AWS_IAM, the default: API Gateway checks SigV4 on every route, $default included.
    assert!(f["RequestApiFunction"].events.iter().all(|e| matches!(
        e,
        EventSource::HttpApi {
            authorization: RouteAuthorization::AwsIam,
            ..
        }
    )));
    for (function, info) in f {
        assert!(
            info.reserved_concurrency.is_some(),
            "{function}: every function has reserved concurrency by default"
        );
    }
}

#[tokio::test]
async fn provisioned_resources_are_wired_as_the_template_says() {
    let env = TestEnv::new().await;
    let sqs = env.sqs();
    let compute_queue = env.resources.queue("ComputeQueue");

    let attributes = sqs
        .get_queue_attributes()
        .queue_url(&compute_queue.url)
        .attribute_names(QueueAttributeName::All)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap();
    env.sns()
        .publish()
        .topic_arn(&env.names.compute_topic_arn)
        .message(r#"{"hello":"compute"}"#)
        .message_attributes(
            "type",
            aws_sdk_sns::types::MessageAttributeValue::builder()
                .data_type("String")
                .string_value("compute.requested")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let delivered = env
        .drain_queue(&compute_queue.url, 1, std::time::Duration::from_secs(5))
        .await;
    let ttl = env
        .dynamodb()
        .describe_time_to_live()
        .table_name(&env.names.scores_table)
        .send()
        .await
        .unwrap()
        .time_to_live_description
        .unwrap();
    let notification = env
        .s3()
        .get_bucket_notification_configuration()
        .bucket(&env.names.data_bucket)
        .send()
        .await
        .unwrap();
    // DataBucket is versioned in AWS but deliberately not here (see create_buckets: moto sends
    // no notification for a delete marker): a delete removes the object, which notifies.
    env.s3()
        .put_object()
        .bucket(&env.names.data_bucket)
        .key("versioning-probe")
        .body(b"x".to_vec().into())
        .send()
        .await
        .unwrap();
    let deleted = env
        .s3()
        .delete_object()
        .bucket(&env.names.data_bucket)
        .key("versioning-probe")
        .send()
        .await
        .unwrap();
    let data_bucket = template()
        .resource("DataBucket")
        .unwrap()
        .properties
        .clone();

    let redrive: serde_json::Value =
        serde_json::from_str(&attributes[&QueueAttributeName::RedrivePolicy]).unwrap();
    assert_eq!(
        redrive["deadLetterTargetArn"],
        env.resources.queue("ComputeDeadLetterQueue").arn
    );
    assert_eq!(attributes[&QueueAttributeName::VisibilityTimeout], "720");
    assert_eq!(delivered.len(), 1);
    assert_eq!(
        delivered[0].body.as_deref(),
        Some(r#"{"hello":"compute"}"#),
        "raw delivery"
    );
    assert_eq!(ttl.attribute_name.as_deref(), Some("expires_at"));
    let queues = notification.queue_configurations.unwrap_or_default();
    assert!(queues
        .iter()
        .all(|q| q.queue_arn == env.resources.queue("MetadataQueue").arn));
    assert!(!queues.is_empty());
    assert_eq!(
        data_bucket["VersioningConfiguration"]["Status"].as_str(),
        Some("Enabled"),
        "versioned in AWS"
    );
    assert_eq!(deleted.delete_marker, None, "not versioned locally");
}
