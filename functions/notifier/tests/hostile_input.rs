//! Hostile input to notifier (docs/RELIABILITY.md, "Hostile input"): DynamoDB stream records
//! with any attribute values. Every record is published, skipped, or reported undecodable and
//! skipped; a published event has a score in [0, 1] (when it has one), an error message of at
//! most 4096 bytes, and fits SNS; the handler never fails a batch for what a record holds. The
//! fuzz target `stream_record` checks the same with coverage guidance (`make fuzz`).
//!
//! No emulator needed: `cargo test -p notifier --test hostile_input`.

use aws_lambda_events::dynamodb::Event;
use emulator::hostile::{json_string, json_value, junk, object, or_hostile};
use lambda_runtime::{Context, LambdaEvent};
use notifier::{decide, handle, Decision, Deps, PublishBatch, MAX_ERROR_MESSAGE_BYTES};
use proptest::prelude::*;
use shared::publisher::{BatchFailure, OutgoingMessage, MAX_PAYLOAD_BYTES};

/// Accepts every message, checking what a call may hold.
struct AcceptAll;

impl PublishBatch for AcceptAll {
    async fn publish_batch(
        &self,
        _topic_arn: &str,
        messages: &[OutgoingMessage],
    ) -> Result<Vec<BatchFailure>, shared::Error> {
        assert!(messages.len() <= shared::publisher::PUBLISH_BATCH_MAX);
        let bytes: usize = messages.iter().map(OutgoingMessage::payload_bytes).sum();
        assert!(bytes <= MAX_PAYLOAD_BYTES || messages.len() == 1);
        Ok(Vec::new())
    }
}

/// Number strings as DynamoDB-stream JSON carries them (`{"N": "..."}`), hostile ones included.
const NUMBER_STRINGS: &[&str] = &[
    "1",
    "0.5",
    "-0",
    "1e400",
    "-1e400",
    "NaN",
    "inf",
    "-Infinity",
    "1e126",
    "9.99e125",
    "1e-130",
    "4294967296",
    "9223372036854775808",
    "99999999999999999999999",
    "",
    " 1",
    "1_000",
    "0x10",
];

fn n(valid: &'static str) -> BoxedStrategy<String> {
    prop_oneof![
        4 => Just(valid.to_owned()),
        2 => prop::sample::select(NUMBER_STRINGS).prop_map(str::to_owned),
    ]
    .prop_map(|text| format!(r#"{{"N":"{text}"}}"#))
    .boxed()
}

fn s(valid: &[&'static str]) -> BoxedStrategy<String> {
    let valid: Vec<String> = valid.iter().map(|v| format!("\"{v}\"")).collect();
    prop_oneof![
        4 => prop::sample::select(valid),
        1 => json_string(),
        1 => (4000usize..5000).prop_map(|n| format!("\"{}\"", "é".repeat(n))),
    ]
    .prop_map(|text| format!(r#"{{"S":{text}}}"#))
    .boxed()
}

/// An attribute of any type, or not an attribute value at all.
fn any_attribute() -> BoxedStrategy<String> {
    prop_oneof![
        Just(r#"{"NULL":true}"#.to_owned()),
        Just(r#"{"BOOL":false}"#.to_owned()),
        Just(r#"{"M":{}}"#.to_owned()),
        Just(r#"{"L":[]}"#.to_owned()),
        Just(r#"{"X":"1"}"#.to_owned()),
        Just(r#"{"S":1}"#.to_owned()),
        Just("{}".to_owned()),
        json_value(),
    ]
    .boxed()
}

/// `valid` most of the time, another type of attribute otherwise.
fn attr(valid: BoxedStrategy<String>) -> BoxedStrategy<String> {
    prop_oneof![6 => valid, 1 => any_attribute()].boxed()
}

fn image() -> BoxedStrategy<String> {
    let reason = object(vec![
        ("feature", attr(s(&["chargeback_rate"]))),
        ("value", attr(n("0.12"))),
        ("contribution", attr(n("1.84"))),
    ]);
    let result = object(vec![
        ("score", attr(n("0.91"))),
        ("band", attr(s(&["high", "low", "medium"]))),
        (
            "reasons",
            attr(
                prop::collection::vec(reason.prop_map(|r| format!(r#"{{"M":{r}}}"#)), 0..3)
                    .prop_map(|v| format!(r#"{{"L":[{}]}}"#, v.join(",")))
                    .boxed(),
            ),
        ),
        ("model_version", attr(s(&["fraud-lr/1"]))),
        (
            "feature_summary",
            attr(Just(r#"{"M":{"objects":{"N":"1"},"bytes":{"N":"1"},"rows":{"N":"1"},"malformed_lines":{"N":"0"},"features":{"M":{}}}}"#.to_owned()).boxed()),
        ),
    ]);
    let error = object(vec![
        ("code", attr(s(&["NO_DATA", "SOMETHING_NEW"]))),
        ("message", attr(s(&["no transactions"]))),
        (
            "retryable",
            attr(Just(r#"{"BOOL":true}"#.to_owned()).boxed()),
        ),
    ]);
    object(vec![
        ("subject_id", attr(s(&["shop-42"]))),
        ("status", attr(s(&["done", "failed", "running"]))),
        (
            "job_id",
            attr(s(&[
                "01JBQ4Y2C8D5F7H9K1M3N5P7R0",
                "01JBQ4Y2C8D5F7H9K1M3N5P7R1",
            ])),
        ),
        ("reason", attr(s(&["miss"]))),
        ("attempts", attr(n("1"))),
        ("requested_at", attr(n("1793534400000"))),
        ("dispatched_at", attr(n("1793534400000"))),
        ("started_at", attr(n("1793534400150"))),
        ("completed_at", attr(n("1793534408150"))),
        ("expires_at", attr(n("1793620808"))),
        (
            "result",
            attr(result.prop_map(|m| format!(r#"{{"M":{m}}}"#)).boxed()),
        ),
        (
            "error",
            attr(error.prop_map(|m| format!(r#"{{"M":{m}}}"#)).boxed()),
        ),
    ])
}

fn stream_record() -> BoxedStrategy<String> {
    let dynamodb = object(vec![
        ("ApproximateCreationDateTime", or_hostile(&["1793534409"])),
        ("Keys", or_hostile(&[r#"{"subject_id":{"S":"shop-42"}}"#])),
        (
            "SequenceNumber",
            or_hostile(&[r#""4421584500000000017450439100""#, r#""a.b""#]),
        ),
        ("SizeBytes", or_hostile(&["900"])),
        ("StreamViewType", or_hostile(&[r#""NEW_AND_OLD_IMAGES""#])),
        (
            "NewImage",
            prop_oneof![6 => image(), 1 => or_hostile(&["{}"])].boxed(),
        ),
        (
            "OldImage",
            prop_oneof![3 => image(), 1 => or_hostile(&["{}"])].boxed(),
        ),
    ]);
    object(vec![
        (
            "eventID",
            or_hostile(&[r#""c81e728d9d4c2f636f067f89cc14862d""#]),
        ),
        (
            "eventName",
            or_hostile(&[r#""MODIFY""#, r#""INSERT""#, r#""REMOVE""#]),
        ),
        ("eventVersion", or_hostile(&[r#""1.1""#, r#""9.9""#])),
        ("eventSource", or_hostile(&[r#""aws:dynamodb""#])),
        ("awsRegion", or_hostile(&[r#""us-east-1""#])),
        ("dynamodb", dynamodb),
    ])
}

/// A stream batch, or junk in its place.
fn stream_event() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => prop::collection::vec(stream_record(), 0..6)
            .prop_map(|records| format!(r#"{{"Records":[{}]}}"#, records.join(","))),
        1 => junk().prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
    ]
}

fn check_decision(decision: &Decision) -> Result<(), TestCaseError> {
    match decision {
        Decision::Publish(event) => {
            if let Some(score) = event.score {
                prop_assert!((0.0..=1.0).contains(&score), "score {score}");
            }
            if let Some(error) = &event.error {
                prop_assert!(error.message.len() <= MAX_ERROR_MESSAGE_BYTES);
            }
            let message = OutgoingMessage::score_event("hostile", event).unwrap();
            prop_assert!(message.payload_bytes() <= MAX_PAYLOAD_BYTES);
            let body: serde_json::Value = serde_json::from_str(&message.body).unwrap();
            prop_assert!(body.get("score").is_none_or(serde_json::Value::is_number));
        }
        Decision::Skip(_) => {}
        Decision::Undecodable(why) => prop_assert!(!why.is_empty()),
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn every_record_is_published_skipped_or_undecodable(text in stream_event()) {
        let Ok(event) = serde_json::from_str::<Event>(&text) else {
            return Ok(());
        };
        for record in &event.records {
            check_decision(&decide(record))?;
        }
        let deps = Deps::with_publisher(AcceptAll, "arn:aws:sns:us-east-1:123456789012:events");
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let response = runtime
            .block_on(handle(LambdaEvent::new(event, Context::default()), &deps))
            .expect("no record fails the batch for what it holds");
        prop_assert!(response.batch_item_failures.is_empty());
    }
}

/// A completed record (events/notifier/completed.json) with one attribute replaced.
fn completed_with(path: &[&str], value: serde_json::Value) -> Decision {
    let mut event = emulator::fixtures::load("notifier", "completed");
    let mut at = &mut event["Records"][0]["dynamodb"]["NewImage"];
    for step in path {
        at = &mut at[*step];
    }
    *at = value;
    let event: Event = serde_json::from_value(event).unwrap();
    decide(&event.records[0])
}

/// The hostile numbers the promise names, in the places they can reach.
#[test]
fn hostile_numbers_are_undecodable_never_published() {
    use serde_json::json;
    let undecodable = |d: &Decision| matches!(d, Decision::Undecodable(_));
    assert!(matches!(
        completed_with(&["attempts"], json!({"N": "1"})),
        Decision::Publish(_)
    ));
    let score = ["result", "M", "score"];
    for text in ["1e400", "-1e400", "NaN", "inf", "1.5", "-1"] {
        let decision = completed_with(&score, json!({ "N": text }));
        assert!(undecodable(&decision), "score {text}: {decision:?}");
    }
    match completed_with(&score, json!({"N": "-0"})) {
        Decision::Publish(event) => assert_eq!(event.score, Some(0.0)),
        other => panic!("{other:?}"),
    }
    for (name, text) in [
        ("attempts", "4294967296"),
        ("attempts", "-1"),
        ("attempts", "1e400"),
        ("expires_at", "9223372036854775808"),
        ("expires_at", "1e400"),
        ("completed_at", "99999999999999999999"),
        ("completed_at", "9223372036854775807"),
        ("requested_at", ""),
    ] {
        let decision = completed_with(&[name], json!({ "N": text }));
        assert!(undecodable(&decision), "{name} {text}: {decision:?}");
    }
    for (name, value) in [
        ("subject_id", json!({"S": "shop\u{0}42"})),
        ("subject_id", json!({"S": ""})),
        ("job_id", json!({"S": "ZZZZZZZZZZZZZZZZZZZZZZZZZZ"})),
        ("job_id", json!({"N": "1"})),
        ("result", json!({"NULL": true})),
    ] {
        let decision = completed_with(&[name], value.clone());
        assert!(undecodable(&decision), "{name} {value}: {decision:?}");
    }
}

/// Regression: a score that reads as NaN or infinity was published, as `"score": null`, and a
/// done record without a result as a `score.completed` without a score.
#[test]
fn records_that_cannot_make_a_valid_event_are_not_published() {
    let why = |decision: Decision| match decision {
        Decision::Undecodable(why) => why,
        other => panic!("{other:?}"),
    };
    let nan = completed_with(&["result", "M", "score"], serde_json::json!({"N": "NaN"}));
    assert!(why(nan).contains("not a number in [0, 1]"));
    let no_result = completed_with(&["result"], serde_json::json!({"NULL": true}));
    assert_eq!(why(no_result), "a done record without a result");
    let mut failed = emulator::fixtures::load("notifier", "failed");
    let image = &mut failed["Records"][0]["dynamodb"]["NewImage"];
    image.as_object_mut().unwrap().remove("error");
    let failed: Event = serde_json::from_value(failed).unwrap();
    assert_eq!(
        why(decide(&failed.records[0])),
        "a failed record without an error"
    );
}
