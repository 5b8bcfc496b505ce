//! Hostile input to shared's parsers (docs/RELIABILITY.md, "Hostile input"): subject ids and
//! `compute.requested` messages. No panic; an id or event that keeps every documented rule, or
//! an error that says what is wrong. The fuzz targets `subject_id` and `compute_message` check
//! the same with coverage guidance (`make fuzz`).
//!
//! No emulator needed: `cargo test -p shared --test hostile_input`.

use emulator::hostile::{json_string, json_value, junk, nested_arrays, object, or_hostile};
use proptest::prelude::*;
use shared::domain::{InvalidSubjectId, SubjectId};
use shared::error::MAX_ERROR_CHARS;
use shared::events::{ComputeRequested, EventType, TRACE_ID_MAX_LEN};

fn allowed(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-')
}

/// Checks one input against `SubjectId::parse`'s contract.
fn check_subject_id(text: &str) -> Result<(), TestCaseError> {
    match SubjectId::parse(text) {
        Ok(id) => {
            prop_assert_eq!(id.as_str(), text);
            prop_assert!((1..=SubjectId::MAX_LEN).contains(&text.len()));
            prop_assert!(text.chars().all(allowed));
            let json = serde_json::to_string(&id).unwrap();
            prop_assert_eq!(serde_json::from_str::<SubjectId>(&json).unwrap(), id);
        }
        Err(InvalidSubjectId::Empty) => prop_assert!(text.is_empty()),
        Err(InvalidSubjectId::TooLong(n)) => {
            prop_assert_eq!(n, text.chars().count());
            prop_assert!(n > SubjectId::MAX_LEN);
        }
        Err(InvalidSubjectId::BadCharacter(c)) => {
            prop_assert!(text.contains(c) && !allowed(c), "{c:?} in {text:?}");
        }
    }
    Ok(())
}

/// Checks one body against `ComputeRequested::from_json`'s contract: understood completely
/// (and written back to an equal event), or refused with an error that says so.
fn check_compute_message(body: &str) -> Result<(), TestCaseError> {
    match ComputeRequested::from_json(body) {
        Ok(event) => {
            prop_assert_eq!(event.kind, EventType::ComputeRequested);
            prop_assert!(event
                .trace_id
                .as_ref()
                .is_none_or(|t| t.len() <= TRACE_ID_MAX_LEN));
            let json = serde_json::to_string(&event).unwrap();
            prop_assert_eq!(ComputeRequested::from_json(&json).unwrap(), event);
        }
        Err(err) => {
            let message = err.to_string();
            let text = message.strip_prefix("invalid event: ");
            prop_assert!(text.is_some(), "{message}");
            prop_assert!(
                text.unwrap().chars().count() <= MAX_ERROR_CHARS,
                "{message}"
            );
        }
    }
    Ok(())
}

/// A `compute.requested` body: valid members most of the time, any of them hostile at times.
fn compute_message() -> impl Strategy<Value = String> {
    let trace = prop_oneof![
        3 => or_hostile(&[r#""Root=1-5759e988-bd862e3fe1be46a994272793""#]),
        1 => (TRACE_ID_MAX_LEN - 2..TRACE_ID_MAX_LEN + 100)
            .prop_map(|n| format!("\"{}\"", "t".repeat(n))),
    ];
    object(vec![
        ("version", or_hostile(&["1"])),
        (
            "type",
            or_hostile(&[r#""compute.requested""#, r#""score.completed""#]),
        ),
        ("subject_id", or_hostile(&[r#""shop-1""#, r#""a.b_c:d-9""#])),
        ("job_id", or_hostile(&[r#""01JD6Q8YV1R8XG5W3Z7R1M2N3P""#])),
        (
            "reason",
            or_hostile(&[r#""miss""#, r#""refresh""#, r#""stale""#, r#""redispatch""#]),
        ),
        (
            "requested_at",
            or_hostile(&[
                r#""2026-11-01T12:00:00Z""#,
                r#""2026-11-01T12:00:00.123456789+09:00""#,
            ]),
        ),
        ("trace_id", trace.boxed()),
    ])
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn subject_ids_are_valid_or_refused_with_the_reason(
        text in prop_oneof![
            "[A-Za-z0-9._:-]{0,130}",
            ".{0,140}",
            any::<String>(),
            Just("x".repeat(100_000)),
        ]
    ) {
        check_subject_id(&text)?;
    }

    #[test]
    fn subject_ids_from_json_never_panic(value in prop_oneof![json_string(), json_value()]) {
        let _ = serde_json::from_str::<SubjectId>(&value);
    }

    #[test]
    fn compute_messages_are_understood_completely_or_refused(body in compute_message()) {
        check_compute_message(&body)?;
    }

    #[test]
    fn compute_messages_of_junk_are_refused(bytes in junk()) {
        check_compute_message(&String::from_utf8_lossy(&bytes))?;
    }
}

/// The hostile cases the promise names, each with the error it gets. On a 1 MiB stack: 100,000
/// levels of nesting parsed by recursion would need a hundred times more.
#[test]
fn compute_messages_name_what_is_wrong() {
    std::thread::Builder::new()
        .stack_size(1 << 20)
        .spawn(compute_message_cases)
        .unwrap()
        .join()
        .unwrap();
}

fn compute_message_cases() {
    let valid = serde_json::json!({
        "version": 1,
        "type": "compute.requested",
        "subject_id": "shop-1",
        "job_id": "01JD6Q8YV1R8XG5W3Z7R1M2N3P",
        "reason": "miss",
        "requested_at": "2026-11-01T12:00:00Z",
    })
    .to_string();
    assert!(ComputeRequested::from_json(&valid).is_ok());
    let with = |from: &str, to: &str| {
        assert!(valid.contains(from), "{from}");
        valid.replacen(from, to, 1)
    };
    let cases = [
        (String::new(), "EOF while parsing"),
        (" \n\t ".to_owned(), "EOF while parsing"),
        ("\0".to_owned(), "expected value"),
        // A struct may come as an array: the first element is refused before any depth.
        (
            nested_arrays(100_000, true),
            "invalid type: sequence, expected u32",
        ),
        (
            with(
                "{",
                &format!("{{\"extra\":{}", nested_arrays(100_000, false)),
            ),
            "expected `,` or `]`",
        ),
        (
            with("\"miss\"", &nested_arrays(100_000, true)),
            "expected value",
        ),
        (
            with("\"version\":1", "\"version\":2"),
            "event version 2 is not supported",
        ),
        (
            with("\"version\":1", "\"version\":0"),
            "event version 0 is not supported",
        ),
        (with("\"version\":1", "\"version\":-0"), "expected u32"),
        (with("\"version\":1", "\"version\":1.0"), "expected u32"),
        (
            with("\"version\":1", "\"version\":1e400"),
            "number out of range",
        ),
        (
            with("\"version\":1", "\"version\":4294967297"),
            "expected u32",
        ),
        (
            with("\"version\":1", "\"version\":18446744073709551616"),
            "expected u32",
        ),
        (with("\"version\":1", "\"version\":\"1\""), "expected u32"),
        (with(",\"version\":1", ""), "missing field `version`"),
        (
            with("compute.requested", "compute.cancelled"),
            "unknown variant `compute.cancelled`",
        ),
        (
            with("compute.requested", "score.completed"),
            "expected compute.requested, got score.completed",
        ),
        (with("shop-1", "shop\\u00001"), "only letters, digits"),
        (with("shop-1", "shop\u{0}1"), "control character"),
        (with("shop-1", &"x".repeat(129)), "at most 128 are allowed"),
        (
            with("01JD6Q8YV1R8XG5W3Z7R1M2N3P", "ZZZZZZZZZZZZZZZZZZZZZZZZZZ"),
            "invalid character",
        ),
        (
            with("2026-11-01T12:00:00Z", "2026-02-30T00:00:00Z"),
            "input is out of range",
        ),
        (
            with("2026-11-01T12:00:00Z", "+262143-12-31T23:59:59Z"),
            "input is out of range",
        ),
        (format!("{valid} x"), "trailing characters"),
        (format!("{valid}{valid}"), "trailing characters"),
        (with("}", r#","version":1}"#), "duplicate field `version`"),
    ];
    // An unknown member is skipped however deep it goes: serde_json skips without recursion.
    let deep_extra = with(
        "{",
        &format!("{{\"extra\":{},", nested_arrays(100_000, true)),
    );
    assert!(ComputeRequested::from_json(&deep_extra).is_ok());
    let mut wrong = Vec::new();
    for (body, expected) in cases {
        let shown = &body[..body.len().min(120)];
        match ComputeRequested::from_json(&body) {
            Err(err) if err.to_string().contains(expected) && err.to_string().len() < 400 => {}
            other => wrong.push(format!("{shown}: {other:?}")),
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}
