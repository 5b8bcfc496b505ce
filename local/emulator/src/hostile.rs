//! Hostile input for the property tests of docs/RELIABILITY.md ("Hostile input"): the values
//! every parser of untrusted input must survive, as proptest strategies, and an SDK
//! configuration that shows a handler made no AWS call.
//!
//! Strategies give JSON *text* (not `serde_json::Value`), so that they can say what a `Value`
//! cannot hold: numbers beyond f64 (`1e400`), `-0`, integers beyond u64/i64, duplicate keys,
//! invalid escapes, nesting deeper than any parser allows.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::{Credentials, SharedCredentialsProvider};
use aws_smithy_runtime_api::client::http::{
    http_client_fn, HttpConnector, HttpConnectorFuture, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::result::ConnectorError;
use proptest::prelude::*;

/// Numbers, as JSON text, that naive code mishandles: beyond f64, negative zero, beyond
/// u32/u64/i64, fractions where integers are expected, and what JSON does not allow at all.
pub const NUMBERS: &[&str] = &[
    "0",
    "-0",
    "-0.0",
    "1",
    "-1",
    "1.0",
    "0.5",
    "1e400",
    "-1e400",
    "1e300",
    "-1e300",
    "1e-400",
    "1e12",
    "4294967296",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775809",
    "18446744073709551615",
    "18446744073709551616",
    "123456789012345678901234567890",
    "1E2",
    "01",
    "+1",
    "1.",
    ".5",
    "1e",
    "0x10",
    "NaN",
    "Infinity",
    "-Infinity",
];

/// Strings, as JSON text (quoted, escaped as JSON requires or deliberately not): empty, blank,
/// NUL and other control characters, a lone surrogate, non-ASCII, path tricks.
pub const STRINGS: &[&str] = &[
    r#""""#,
    r#"" ""#,
    r#""\t\n""#,
    r#""\u0000""#,
    r#""a\u0000b""#,
    "\"a\u{0}b\"",
    "\"line\nbreak\"",
    r#""\ud800""#,
    r#""\udfff\ud800""#,
    r#""\x41""#,
    r#""日本語""#,
    r#""é""#,
    r#""../../etc/passwd""#,
    r#""a/b""#,
    r#""%FF""#,
    r#""%00""#,
    r#""+""#,
    r#""null""#,
    r#""1e400""#,
    r#""shop-1""#,
    r#""01ARZ3NDEKTSV4RRFFQ69G5FAV""#,
    r#""ZZZZZZZZZZZZZZZZZZZZZZZZZZ""#,
    r#""2026-11-01T12:00:00Z""#,
    r#""+262143-12-31T23:59:59Z""#,
    r#""2026-02-30T00:00:00Z""#,
    r#""2026-11-01T24:00:00Z""#,
    r#""2026-11-01T23:59:60Z""#,
];

/// A hostile number, or any integer or float.
pub fn json_number() -> BoxedStrategy<String> {
    prop_oneof![
        3 => prop::sample::select(NUMBERS).prop_map(str::to_owned),
        1 => any::<i64>().prop_map(|n| n.to_string()),
        1 => any::<f64>().prop_map(|x| format!("{x:e}")),
    ]
    .boxed()
}

/// A hostile string, or any text (escaped as JSON requires), or a long one.
pub fn json_string() -> BoxedStrategy<String> {
    prop_oneof![
        3 => prop::sample::select(STRINGS).prop_map(str::to_owned),
        2 => any::<String>().prop_map(|s| serde_json::to_string(&s).unwrap()),
        1 => (1usize..3000).prop_map(|n| format!("\"{}\"", "x".repeat(n))),
    ]
    .boxed()
}

/// Any JSON value (and some that are not quite JSON), nested a few levels.
pub fn json_value() -> BoxedStrategy<String> {
    let leaf = prop_oneof![
        Just("null".to_owned()),
        Just("true".to_owned()),
        Just("false".to_owned()),
        json_number(),
        json_string(),
    ];
    leaf.prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(|v| format!("[{}]", v.join(","))),
            prop::collection::vec((json_string(), inner), 0..4).prop_map(|fields| {
                let fields: Vec<String> = fields
                    .into_iter()
                    .map(|(k, v)| format!("{k}:{v}"))
                    .collect();
                format!("{{{}}}", fields.join(","))
            }),
        ]
    })
    .boxed()
}

/// `depth` nested arrays (`[[[...]]]`), closed or left open.
pub fn nested_arrays(depth: usize, closed: bool) -> String {
    let mut text = "[".repeat(depth);
    if closed {
        text.push_str(&"]".repeat(depth));
    }
    text
}

/// `depth` nested objects (`{"a":{"a":...1}}`).
pub fn nested_objects(depth: usize) -> String {
    format!("{}1{}", r#"{"a":"#.repeat(depth), "}".repeat(depth))
}

/// What arrives instead of the expected document: nothing, blanks, NUL, bare values, invalid
/// UTF-8, random bytes, nesting far past serde_json's recursion limit (128), truncation.
pub fn junk() -> BoxedStrategy<Vec<u8>> {
    prop_oneof![
        4 => prop::sample::select(vec![
            &b""[..],
            b" ",
            b" \t\r\n ",
            b"\0",
            b"\0\0\0\0",
            b"null",
            b"{}",
            b"[]",
            b"\"\"",
            b"0",
            b"-0",
            b"1e400",
            b"{\"a\":1}{\"a\":1}",
            b"{\"a\":",
            b"\xff\xfe\xfd",
            b"{\"a\":\"\xc3\x28\"}",
            b"{\"a\":\"\xed\xa0\x80\"}",
            b"\xc0\xaf",
            b"\xef\xbb\xbf{}",
        ])
        .prop_map(<[u8]>::to_vec),
        2 => prop::collection::vec(any::<u8>(), 0..128),
        1 => (1usize..200).prop_map(|d| nested_arrays(d, true).into_bytes()),
        1 => prop::sample::select(vec![129usize, 1_000, 100_000])
            .prop_map(|d| nested_arrays(d, d % 2 == 0).into_bytes()),
        1 => prop::sample::select(vec![127usize, 128, 5_000])
            .prop_map(|d| nested_objects(d).into_bytes()),
    ]
    .boxed()
}

/// `valid` most of the time, otherwise a hostile value of any type.
pub fn or_hostile(valid: &[&'static str]) -> BoxedStrategy<String> {
    let valid: Vec<&'static str> = valid.to_vec();
    prop_oneof![
        6 => prop::sample::select(valid).prop_map(str::to_owned),
        1 => json_number(),
        1 => json_string(),
        1 => json_value(),
    ]
    .boxed()
}

/// A JSON object with these members, each left out now and then, sometimes given twice, with
/// an unknown member at times, in a random order.
pub fn object(members: Vec<(&'static str, BoxedStrategy<String>)>) -> BoxedStrategy<String> {
    let count = members.len();
    let members: Vec<BoxedStrategy<Vec<String>>> = members
        .into_iter()
        .map(|(name, value)| {
            let quoted = serde_json::to_string(name).unwrap();
            (value, 0u8..20)
                .prop_map(move |(value, dice)| match dice {
                    0 => Vec::new(),
                    1 => vec![format!("{quoted}:{value}"), format!("{quoted}:null")],
                    _ => vec![format!("{quoted}:{value}")],
                })
                .boxed()
        })
        .collect();
    let extra = prop::option::weighted(0.2, (json_string(), json_value()))
        .prop_map(|extra| extra.map(|(k, v)| format!("{k}:{v}")));
    let order = prop::collection::vec(any::<u16>(), 2 * count + 1);
    (members, extra, order)
        .prop_map(|(members, extra, order)| {
            let all = members.into_iter().flatten().chain(extra);
            let mut keyed: Vec<(u16, String)> = order.into_iter().zip(all).collect();
            keyed.sort_by_key(|(key, _)| *key);
            let all: Vec<String> = keyed.into_iter().map(|(_, member)| member).collect();
            format!("{{{}}}", all.join(","))
        })
        .boxed()
}

/// An SDK configuration under which every AWS call fails at once (no retries) and is counted:
/// a handler given it for input that must be refused without touching AWS shows, with a
/// count of 0, that it did.
pub fn offline_sdk() -> (SdkConfig, Arc<AtomicUsize>) {
    #[derive(Debug)]
    struct Refuse(Arc<AtomicUsize>);
    impl HttpConnector for Refuse {
        fn call(&self, _request: HttpRequest) -> HttpConnectorFuture {
            self.0.fetch_add(1, Ordering::SeqCst);
            HttpConnectorFuture::ready(Err(ConnectorError::other(
                "offline: this input must not reach AWS".into(),
                None,
            )))
        }
    }
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let sdk = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            "offline", "offline", None, None, "hostile",
        )))
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .http_client(http_client_fn(move |_, _| {
            SharedHttpConnector::new(Refuse(counter.clone()))
        }))
        .build();
    (sdk, calls)
}
