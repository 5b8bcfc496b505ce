//! Hostile input to compute (docs/RELIABILITY.md, "Hostile input"): dataset objects and SQS
//! messages. A line is a transaction or counted malformed and skipped, whatever it holds; an
//! object gives the same features however it is chunked or compressed; a message compute
//! cannot read is acknowledged without any AWS call. The fuzz targets `dataset` and
//! `compute_message` check the same with coverage guidance (`make fuzz`).
//!
//! No emulator needed: `cargo test -p compute --test hostile_input`.

use std::io::{Read, Write};
use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use compute::features::{FeatureAccumulator, MAX_LINE_BYTES};
use compute::source::extract;
use emulator::hostile::{junk, nested_arrays, nested_objects, object, offline_sdk, or_hostile};
use lambda_runtime::{Context, LambdaEvent};
use proptest::prelude::*;
use shared::domain::FeatureSummary;
use shared::events::ComputeRequested;

const GOOD: &str = r#"{"ts":"2026-11-01T12:00:00+09:00","amount":1200,"currency":"JPY","status":"paid","buyer":"b-91","card_country":"JP","ip_country":"JP"}"#;

/// A reader that hands out at most `chunk` bytes a read, as a download does.
struct Chunked<'a> {
    data: &'a [u8],
    chunk: usize,
}

impl Read for Chunked<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.chunk).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

/// A transaction line: valid members most of the time, any of them hostile at times.
fn transaction() -> impl Strategy<Value = Vec<u8>> {
    object(vec![
        (
            "ts",
            or_hostile(&[
                r#""2026-11-01T12:00:00+09:00""#,
                r#""2026-11-01T02:00:00Z""#,
                r#""2026-11-01t02:00:00.123z""#,
                r#""2016-12-31T23:59:60Z""#,
            ]),
        ),
        (
            "amount",
            or_hostile(&[
                "1200",
                "0",
                "-0",
                "0.01",
                "1.005",
                "1.5E-2",
                "1e12",
                "999999999999.99",
            ]),
        ),
        (
            "currency",
            or_hostile(&[r#""JPY""#, r#""KWD""#, r#""USD""#, "null"]),
        ),
        (
            "status",
            or_hostile(&[
                r#""paid""#,
                r#""refunded""#,
                r#""chargeback""#,
                r#""cancelled""#,
            ]),
        ),
        (
            "buyer",
            or_hostile(&[r#""b-1""#, r#""b-2""#, r#""\u0000""#]),
        ),
        ("card_country", or_hostile(&[r#""JP""#, r#""US""#, "null"])),
        ("ip_country", or_hostile(&[r#""JP""#, r#""us""#])),
    ])
    .prop_map(String::into_bytes)
}

/// A line of about the limit: a transaction padded with blanks before and after.
fn near_the_limit() -> impl Strategy<Value = Vec<u8>> {
    (MAX_LINE_BYTES - 2..MAX_LINE_BYTES + 3, 0usize..100).prop_map(|(len, lead)| {
        let mut line = " ".repeat(lead).into_bytes();
        line.extend_from_slice(GOOD.as_bytes());
        line.resize(len, b' ');
        line
    })
}

/// An object: lines of transactions, junk and lines about the limit, ended by `\n` or `\r\n`.
fn object_bytes() -> impl Strategy<Value = Vec<u8>> {
    let line = prop_oneof![
        8 => transaction(),
        2 => junk(),
        1 => near_the_limit(),
    ];
    (
        prop::collection::vec(line, 0..12),
        prop::sample::select(vec![&b"\n"[..], b"\r\n"]),
        any::<bool>(),
    )
        .prop_map(|(lines, end, final_end)| {
            let mut data = lines.join(end);
            if final_end {
                data.extend_from_slice(end);
            }
            data
        })
}

fn line_by_line(data: &[u8]) -> FeatureAccumulator {
    let mut acc = FeatureAccumulator::new();
    for line in data.split(|&b| b == b'\n') {
        acc.push_line(line);
    }
    acc
}

fn extracted(reader: impl Read) -> FeatureSummary {
    let mut acc = FeatureAccumulator::new();
    extract(reader, &mut acc).expect("a plain or well-formed gzip object is always readable");
    acc.finish()
}

fn check_features(summary: &FeatureSummary) -> Result<(), TestCaseError> {
    for (name, value) in &summary.features {
        prop_assert!(value.is_finite() && *value >= 0.0, "{name} = {value}");
        if name.ends_with("_rate") || name.ends_with("_ratio") || name.ends_with("_share") {
            prop_assert!(*value <= 1.0, "{name} = {value}");
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 192, failure_persistence: None, ..ProptestConfig::default() })]

    /// Every non-blank line is a row or malformed; the object gives the same features line by
    /// line, whole, in chunks of any size, and gzipped in chunks.
    #[test]
    fn every_line_is_a_row_or_malformed_however_the_object_arrives(
        data in object_bytes(),
        chunk in 1usize..300,
    ) {
        let by_line = line_by_line(&data);
        let pieces = data.split(|&b| b == b'\n');
        let blank = pieces
            .clone()
            .filter(|l| l.len() <= MAX_LINE_BYTES && l.iter().all(u8::is_ascii_whitespace))
            .count() as u64;
        prop_assert_eq!(by_line.rows() + by_line.malformed_lines() + blank, pieces.count() as u64);
        let expected = by_line.finish();
        check_features(&expected)?;
        if !data.starts_with(&[0x1f, 0x8b]) {
            prop_assert_eq!(&extracted(&data[..]), &expected);
            prop_assert_eq!(&extracted(Chunked { data: &data, chunk }), &expected);
        }
        let gzipped = gzip(&data);
        prop_assert_eq!(&extracted(Chunked { data: &gzipped, chunk }), &expected);
    }

    /// Junk that starts like gzip is an error or features, never a panic.
    #[test]
    fn corrupt_gzip_is_an_error(mut data in prop::collection::vec(any::<u8>(), 0..400)) {
        data.splice(0..0, [0x1f, 0x8b]);
        let _ = extract(&data[..], &mut FeatureAccumulator::new());
    }
}

/// GOOD with a buyer that is not UTF-8.
fn invalid_utf8_buyer() -> Vec<u8> {
    let mut line = GOOD.replacen("b-91", "b-#", 1).into_bytes();
    let at = line.iter().position(|&b| b == b'#').unwrap();
    line[at] = 0xff;
    line
}

/// The hostile lines the promise names, each with what it counts as.
#[test]
fn hostile_lines_are_rows_or_malformed() {
    let with = |from: &str, to: &str| {
        assert!(GOOD.contains(from), "{from}");
        GOOD.replacen(from, to, 1).into_bytes()
    };
    let row = (1, 0);
    let malformed = (0, 1);
    let ignored = (0, 0);
    let mut long = GOOD.as_bytes().to_vec();
    long.resize(MAX_LINE_BYTES + 1, b' ');
    let cases: Vec<(Vec<u8>, (u64, u64))> = vec![
        (GOOD.into(), row),
        (Vec::new(), ignored),
        (b" \t\r".to_vec(), ignored),
        (b"\0".to_vec(), malformed),
        (with("1200", "1e400"), malformed),
        (with("1200", "-1e400"), malformed),
        (with("1200", "1e300"), malformed),
        (with("1200", "-0"), row),
        (with("1200", "1e12"), row),
        (with("1200", "1000000000000.01"), malformed),
        (with("1200", "18446744073709551616"), malformed),
        (with("1200", "-1"), malformed),
        (with("1200", "NaN"), malformed),
        (with("1200", "\"1200\""), malformed),
        (with("b-91", "\\u0000"), row),
        (with("b-91", "b\u{0}91"), malformed),
        (with("b-91", "b\\ud800"), malformed),
        (invalid_utf8_buyer(), malformed),
        (with("\"b-91\"", "\"\""), malformed),
        (
            with("2026-11-01T12:00:00+09:00", "+262143-12-31T23:59:59Z"),
            malformed,
        ),
        (
            with("2026-11-01T12:00:00+09:00", "2026-02-30T00:00:00Z"),
            malformed,
        ),
        (with("paid", "PAID"), malformed),
        // The line contract (docs/MODEL.md), case by case in features.rs's unit tests.
        (
            br#"["2026-11-01T12:00:00+09:00",1200,"JPY","paid","b-91","JP","JP"]"#.to_vec(),
            malformed,
        ),
        (with("T12", " 12"), malformed),
        (with("+09:00", "\\u221209:00"), malformed),
        (with("12:00:00+09:00", "12:00:60+09:00"), malformed),
        (with("12:00:00+09:00", "08:59:60+09:00"), row),
        (with("2026-11-01", "0000-11-01"), malformed),
        (with("1200", "1.5E-2"), row),
        (with("1200", "-0.001"), malformed),
        (with(r#""JPY""#, r#""jpy""#), malformed),
        (with(r#""JPY""#, "null"), row),
        (with(r#""JPY""#, r#""XTS""#), row),
        (
            with(r#""card_country":"JP""#, r#""card_country":"JPN""#),
            malformed,
        ),
        (
            with(r#""card_country":"JP""#, r#""card_country":null"#),
            row,
        ),
        (with(r#""ip_country":"JP""#, r#""ip_country":"""#), row),
        (with("}", r#","currency":"JPY"}"#), malformed),
        (with("}", r#","amount":1}"#), malformed),
        (nested_arrays(100_000, true).into_bytes(), malformed),
        (nested_arrays(30_000, true).into_bytes(), malformed),
        (nested_objects(5_000).into_bytes(), malformed),
        (long, malformed),
    ];
    for (line, expected) in cases {
        let shown = String::from_utf8_lossy(&line[..line.len().min(120)]).into_owned();
        let mut acc = FeatureAccumulator::new();
        acc.push_line(&line);
        assert_eq!((acc.rows(), acc.malformed_lines()), expected, "{shown}");
        let mut read = FeatureAccumulator::new();
        extract(&line[..], &mut read).unwrap();
        assert_eq!((read.rows(), read.malformed_lines()), expected, "{shown}");
    }
}

/// Extreme but valid amounts keep every feature finite.
#[test]
fn the_largest_amounts_keep_features_finite() {
    let mut acc = FeatureAccumulator::new();
    let big = GOOD.replacen("1200", "1e12", 1);
    for _ in 0..10_000 {
        acc.push_line(big.as_bytes());
        acc.push_line(GOOD.replacen("1200", "0", 1).as_bytes());
    }
    let summary = acc.finish();
    for (name, value) in &summary.features {
        assert!(value.is_finite() && *value >= 0.0, "{name} = {value}");
    }
    assert_eq!(summary.features["amount_max"], 1e12);
}

/// compute as Lambda calls it, with an AWS that counts calls and answers none.
fn offline_deps() -> (
    compute::Deps,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    let (sdk, calls) = offline_sdk();
    let config = compute::Config {
        scores_table: "scores".into(),
        catalog_table: "catalog".into(),
        result_ttl: Duration::from_secs(3600),
        lease: Duration::from_secs(150),
        max_receive_count: 5,
        model_uri: None,
        model_cache_ttl: Duration::from_secs(300),
        timeout: Duration::from_secs(120),
        limits: compute::SubjectLimits::default(),
        objects_in_flight: compute::OBJECTS_IN_FLIGHT,
    };
    (compute::Deps::new(&config, &sdk).unwrap(), calls)
}

/// Bodies that are not a `compute.requested` v1: hostile members, junk.
fn unreadable_body() -> impl Strategy<Value = String> {
    let message = object(vec![
        ("version", or_hostile(&["1", "2"])),
        ("type", or_hostile(&[r#""compute.requested""#])),
        ("subject_id", or_hostile(&[r#""shop-1""#])),
        ("job_id", or_hostile(&[r#""01JD6Q8YV1R8XG5W3Z7R1M2N3P""#])),
        ("reason", or_hostile(&[r#""miss""#])),
        ("requested_at", or_hostile(&[r#""2026-11-01T12:00:00Z""#])),
    ]);
    prop_oneof![
        3 => message,
        1 => junk().prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
    ]
    .prop_filter("not a readable message", |body| {
        ComputeRequested::from_json(body).is_err()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, failure_persistence: None, ..ProptestConfig::default() })]

    /// A message compute cannot read can never succeed: it is acknowledged (not retried into
    /// the DLQ) and nothing is read or written.
    #[test]
    fn unreadable_messages_are_acknowledged_without_touching_aws(
        bodies in prop::collection::vec(prop::option::weighted(0.9, unreadable_body()), 1..10),
    ) {
        let (deps, calls) = offline_deps();
        let mut event = SqsEvent::default();
        event.records = bodies
            .into_iter()
            .enumerate()
            .map(|(i, body)| {
                let mut message = SqsMessage::default();
                message.message_id = Some(format!("m{i}"));
                message.body = body;
                message
                    .attributes
                    .insert("ApproximateReceiveCount".into(), "99".into());
                message
            })
            .collect();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let response = runtime
            .block_on(compute::handle(LambdaEvent::new(event, Context::default()), &deps))
            .unwrap();
        prop_assert!(response.batch_item_failures.is_empty(), "{:?}", response.batch_item_failures);
        prop_assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 0);
    }
}
