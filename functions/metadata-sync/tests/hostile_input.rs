//! Hostile input to metadata-sync (docs/RELIABILITY.md, "Hostile input"): MetadataQueue message
//! bodies, their S3 event records and encoded keys. A body is an `s3:TestEvent`, notices or an
//! error; a notice carries a decoded key S3 could have made (UTF-8, 1..=1024 bytes), a sequencer
//! and a catalog place DynamoDB accepts; a message that cannot be read fails alone, without any
//! AWS call. The fuzz target `s3_event` checks the same with coverage guidance (`make fuzz`).
//!
//! No emulator needed: `cargo test -p metadata-sync --test hostile_input`.

use std::sync::atomic::Ordering;
use std::time::Duration;

use aws_lambda_events::sqs::SqsMessage;
use chrono::Utc;
use emulator::hostile::{json_string, junk, object, offline_sdk, or_hostile, STRINGS};
use metadata_sync::notice::{decode_key, notice, parse_body, Body, MAX_KEY_BYTES};
use metadata_sync::{sync_batch, Config, Deps, Error};
use proptest::prelude::*;
use shared::catalog_store::split_key;

/// The data bucket of these tests; generated records never name it, so no record needs S3.
const DATA_BUCKET: &str = "hostile-data-bucket";

/// A key as an S3 event carries it: form-encoded text of any kind, raw hostile strings, and
/// keys about S3's 1024-byte limit once decoded.
fn encoded_key() -> BoxedStrategy<String> {
    let encode =
        |key: &str| -> String { form_urlencoded::byte_serialize(key.as_bytes()).collect() };
    prop_oneof![
        3 => any::<String>().prop_map(move |k| encode(&k).replace("%2F", "/")),
        2 => "[a-z0-9/%+.]{0,40}",
        1 => prop::sample::select(STRINGS).prop_map(|s| serde_json::from_str::<String>(s).unwrap_or_default()),
        1 => (MAX_KEY_BYTES - 3..MAX_KEY_BYTES + 3).prop_map(|n| format!("datasets/s/{}", "k".repeat(n - 11))),
        1 => (340usize..344).prop_map(|n| "%E6%97%A5".repeat(n)),
    ]
    .boxed()
}

fn record() -> BoxedStrategy<String> {
    let key = encoded_key().prop_map(|k| serde_json::to_string(&k).unwrap());
    let s3_object = object(vec![
        (
            "key",
            prop_oneof![4 => key, 1 => or_hostile(&[r#""a""#])].boxed(),
        ),
        ("size", or_hostile(&["1024", "0"])),
        (
            "eTag",
            or_hostile(&[r#""d41d8cd98f00b204e9800998ecf8427e""#]),
        ),
        (
            "sequencer",
            or_hostile(&[r#""0055AED6DCD90281E5""#, r#""0A""#, r#""""#]),
        ),
    ]);
    let bucket = object(vec![("name", or_hostile(&[r#""other-bucket""#]))]);
    let s3 = object(vec![
        ("s3SchemaVersion", or_hostile(&[r#""1.0""#])),
        (
            "bucket",
            prop_oneof![4 => bucket, 1 => json_string()].boxed(),
        ),
        ("object", s3_object),
    ]);
    object(vec![
        ("eventVersion", or_hostile(&[r#""2.1""#, r#""3.0""#])),
        ("eventSource", or_hostile(&[r#""aws:s3""#])),
        ("eventTime", or_hostile(&[r#""2026-11-21T23:43:36.328Z""#])),
        (
            "eventName",
            or_hostile(&[
                r#""ObjectCreated:Put""#,
                r#""ObjectRemoved:Delete""#,
                r#""LifecycleExpiration:Delete""#,
                r#""ObjectTagging:Put""#,
                r#""""#,
            ]),
        ),
        ("userIdentity", or_hostile(&["{}"])),
        ("requestParameters", or_hostile(&["{}"])),
        ("s3", s3),
    ])
}

/// A MetadataQueue body: S3 event notifications, `s3:TestEvent`s, junk.
fn body() -> impl Strategy<Value = String> {
    let notification = prop::collection::vec(record(), 0..4)
        .prop_map(|records| format!(r#"{{"Records":[{}]}}"#, records.join(",")));
    let test_event = object(vec![
        ("Service", or_hostile(&[r#""Amazon S3""#])),
        ("Event", or_hostile(&[r#""s3:TestEvent""#, r#""s3:Other""#])),
        ("Bucket", or_hostile(&[r#""other-bucket""#])),
    ]);
    prop_oneof![
        6 => notification,
        1 => test_event,
        1 => junk().prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
    ]
}

/// Whether metadata-sync reads the message, by the crate's own parsing functions.
fn readable(body: Option<&str>) -> Result<bool, TestCaseError> {
    let Some(body) = body else {
        return Ok(false);
    };
    match parse_body(body) {
        Err(err) => {
            prop_assert!(!err.to_string().is_empty());
            Ok(false)
        }
        Ok(Body::TestEvent { .. }) => Ok(true),
        Ok(Body::Notification(event)) => {
            let mut ok = true;
            for record in &event.records {
                match notice(record) {
                    Ok(Some(n)) => {
                        prop_assert!(!n.key.is_empty() && n.key.len() <= MAX_KEY_BYTES);
                        let encoded = record.s3.object.key.as_deref().unwrap();
                        prop_assert_eq!(&decode_key(encoded).unwrap(), &n.key);
                        prop_assert!(!n.sequencer.as_str().is_empty());
                        let (dir, name) = split_key(&n.key);
                        prop_assert!(!dir.is_empty() && !name.is_empty());
                        prop_assert!(dir.len() <= MAX_KEY_BYTES && name.len() <= MAX_KEY_BYTES);
                        prop_assert_ne!(n.bucket.as_str(), DATA_BUCKET);
                    }
                    Ok(None) => {}
                    Err(err) => {
                        prop_assert!(!err.to_string().is_empty());
                        ok = false;
                    }
                }
            }
            Ok(ok)
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    /// Decoding never panics, never replaces a byte, and gives back any key S3 encoded.
    #[test]
    fn keys_decode_exactly_or_fail(key in any::<String>(), raw in "[%+a-fA-F0-9/]{0,24}|.{0,24}") {
        let encoded: String = form_urlencoded::byte_serialize(key.as_bytes()).collect();
        prop_assert_eq!(&decode_key(&encoded).unwrap(), &key);
        prop_assert_eq!(&decode_key(&encoded.replace("%2F", "/")).unwrap(), &key);
        let bytes: Vec<u8> = percent_encoding::percent_decode_str(&raw.replace('+', " ")).collect();
        match decode_key(&raw) {
            Ok(decoded) => prop_assert_eq!(decoded.as_bytes(), &bytes[..]),
            Err(Error::Key { .. }) => prop_assert!(std::str::from_utf8(&bytes).is_err()),
            Err(other) => prop_assert!(false, "{other}"),
        }
    }

    #[test]
    fn bodies_are_test_events_notices_or_errors(body in body()) {
        readable(Some(&body))?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, failure_persistence: None, ..ProptestConfig::default() })]

    /// Each message that cannot be read fails alone (a poison message, for the DLQ); the others
    /// are acknowledged; none of them makes an AWS call (no record names the data bucket).
    #[test]
    fn unreadable_messages_fail_alone_without_touching_aws(
        bodies in prop::collection::vec(prop::option::weighted(0.95, body()), 1..10),
    ) {
        let (sdk, calls) = offline_sdk();
        let config = Config {
            catalog_table: "catalog".into(),
            scores_table: "scores".into(),
            data_bucket: DATA_BUCKET.into(),
            tombstone_ttl: Duration::from_secs(3600),
        };
        let deps = Deps::new(&config, &sdk);
        let mut expected = Vec::new();
        let mut messages = Vec::new();
        for (i, body) in bodies.into_iter().enumerate() {
            let id = format!("m{i}");
            if !readable(body.as_deref())? {
                expected.push(id.clone());
            }
            let mut message = SqsMessage::default();
            message.message_id = Some(id);
            message.body = body;
            messages.push(message);
        }
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let report = runtime.block_on(sync_batch(&messages, &deps, Utc::now()));
        prop_assert_eq!(report.failed, expected);
        prop_assert_eq!(calls.load(Ordering::SeqCst), 0);
    }
}

/// The hostile cases the promise names, each with the error it gets.
#[test]
fn bodies_and_records_name_what_is_wrong() {
    let record = |key: &str, sequencer: &str, size: &str| {
        format!(
            r#"{{"Records":[{{"eventVersion":"2.1","eventSource":"aws:s3","eventTime":"2026-11-21T23:43:36.328Z",
               "eventName":"ObjectCreated:Put","userIdentity":{{}},"requestParameters":{{}},
               "s3":{{"bucket":{{"name":"b"}},"object":{{"key":"{key}","size":{size},"sequencer":"{sequencer}"}}}}}}]}}"#
        )
    };
    let first = |body: &str| -> Result<Option<String>, String> {
        match parse_body(body).map_err(|e| shared::error::chain(&e))? {
            Body::Notification(event) => notice(&event.records[0])
                .map(|n| n.map(|n| n.key))
                .map_err(|e| e.to_string()),
            Body::TestEvent { .. } => Ok(None),
        }
    };
    assert_eq!(first(&record("a+b", "0A", "1")), Ok(Some("a b".into())));
    assert_eq!(first(&record("%00", "0A", "1")), Ok(Some("\0".into())));
    let cases = [
        (String::new(), "EOF while parsing"),
        (" \n ".into(), "EOF while parsing"),
        ("\0".into(), "expected value"),
        ("[".repeat(100_000), "recursion limit exceeded"),
        ("{}".into(), "missing field `Records`"),
        (r#"{"Records":null}"#.into(), "invalid type: null"),
        (
            r#"{"Event":"s3:Other"}"#.into(),
            "an S3 event record has no Records",
        ),
        (record("a", "0A", "1e400"), "number out of range"),
        (
            record("a", "0A", "-0"),
            "invalid type: floating point `-0.0`, expected i64",
        ),
        (record("a", "0A", "1e300"), "expected i64"),
        (record("a", "0A", "18446744073709551616"), "expected i64"),
        (record("%FF", "0A", "1"), "does not decode to UTF-8"),
        (record("", "0A", "1"), "has no s3.object.key"),
        (
            record(&"k".repeat(1025), "0A", "1"),
            "S3 keys are at most 1024",
        ),
        (record("a", "", "1"), "has no s3.object.sequencer"),
    ];
    let mut wrong = Vec::new();
    for (body, expected) in cases {
        let shown = &body[..body.len().min(120)];
        match first(&body) {
            Err(error) if error.contains(expected) && error.len() < 2_000 => {}
            other => wrong.push(format!("{shown}: {other:?}")),
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}
