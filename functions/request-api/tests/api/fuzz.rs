//! Arbitrary client input never panics the handler and never gets a 5xx; every answer is
//! documented (checked in `common::decode`).

use std::sync::OnceLock;

use lambda_http::request::RequestContext;
use lambda_http::{Body, RequestExt};
use proptest::prelude::*;

use crate::common::*;

struct Shared {
    runtime: tokio::runtime::Runtime,
    harness: Harness,
}

fn shared() -> &'static Shared {
    static SHARED: OnceLock<Shared> = OnceLock::new();
    SHARED.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let harness = runtime.block_on(Harness::new());
        Shared { runtime, harness }
    })
}

fn method() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(vec!["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"])
            .prop_map(str::to_owned),
        1 => "[A-Z]{1,10}",
    ]
}

/// A path as an HTTP API delivers it: percent-decoded, so anything may appear after the `/`.
fn path() -> impl Strategy<Value = String> {
    let segment = prop_oneof![
        3 => "[A-Za-z0-9._:-]{1,12}",
        1 => ".{0,20}",
        1 => "[A-Za-z0-9._:-]{120,140}",
        1 => prop::sample::select(vec!["batch-get", "refresh", "", "..", "%2F", "v1", "scores"])
            .prop_map(str::to_owned),
    ];
    prop_oneof![
        2 => segment.clone().prop_map(|s| format!("/v1/scores/{s}")),
        1 => segment.clone().prop_map(|s| format!("/v1/scores/{s}/refresh")),
        1 => Just("/v1/scores/batch-get".to_owned()),
        1 => prop::collection::vec(segment, 0..5).prop_map(|s| format!("/{}", s.join("/"))),
        1 => ".{0,40}".prop_map(|s| format!("/{s}")),
    ]
}

fn query() -> impl Strategy<Value = Vec<(String, String)>> {
    let name = prop_oneof![Just("wait".to_owned()), "[a-z]{1,6}", ".{0,6}"];
    let value = prop_oneof![
        "[0-9]{1,3}",
        Just("-1".to_owned()),
        Just("20".to_owned()),
        ".{0,10}",
    ];
    prop::collection::vec((name, value), 0..3)
}

fn headers() -> impl Strategy<Value = Vec<(String, String)>> {
    let name = prop_oneof![
        Just("content-type".to_owned()),
        Just("x-amzn-trace-id".to_owned()),
        Just("accept".to_owned()),
        "[a-z][a-z0-9-]{0,15}",
    ];
    let value = prop_oneof![
        Just("application/json".to_owned()),
        Just("text/plain".to_owned()),
        Just("application/merge-patch+json; charset=utf-8".to_owned()),
        "[ -~]{0,40}",
    ];
    prop::collection::vec((name, value), 0..4)
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    let id = prop_oneof![3 => "[A-Za-z0-9._:-]{1,16}", 1 => ".{0,16}"];
    prop_oneof![
        1 => Just(Vec::new()),
        2 => prop::collection::vec(any::<u8>(), 0..256),
        2 => ".{0,200}".prop_map(String::into_bytes),
        4 => prop::collection::vec(id, 0..110).prop_map(|ids| {
            serde_json::json!({ "subject_ids": ids }).to_string().into_bytes()
        }),
        1 => Just(b"{\"subject_ids\": [null]}".to_vec()),
        1 => (65_000usize..70_000).prop_map(|n| {
            let mut b = b"{\"subject_ids\": [\"a\"]".to_vec();
            b.resize(n, b' ');
            b.push(b'}');
            b
        }),
    ]
}

/// A request as lambda_http would hand it over, with a raw path that no URI could carry.
fn build(
    method: &str,
    raw_path: &str,
    query: &[(String, String)],
    headers: &[(String, String)],
    body: Vec<u8>,
) -> lambda_http::Request {
    let encoded: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(query)
        .finish();
    let uri = if encoded.is_empty() {
        "/".to_owned()
    } else {
        format!("/?{encoded}")
    };
    let mut event = event_for(method, "/", &encoded, None);
    event["requestContext"]["requestId"] = "fuzz".into();
    let context: RequestContext =
        serde_json::from_value(event["requestContext"].clone()).expect("a v2 request context");
    let mut request = http::Request::builder()
        .method(http::Method::from_bytes(method.as_bytes()).unwrap())
        .uri(uri)
        .body(Body::from(body))
        .unwrap()
        .with_raw_http_path(raw_path)
        .with_request_context(context);
    for (name, value) in headers {
        if let (Ok(name), Ok(value)) = (
            http::header::HeaderName::from_bytes(name.as_bytes()),
            http::header::HeaderValue::from_str(value),
        ) {
            request.headers_mut().append(name, value);
        }
    }
    request
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn client_input_never_gets_a_5xx(
        method in method(),
        path in path(),
        query in query(),
        headers in headers(),
        body in body(),
    ) {
        let s = shared();
        let request = build(&method, &path, &query, &headers, body);
        let reply = s.runtime.block_on(call(&s.harness.deps, request));
        prop_assert!(reply.status < 500, "{method} {path:?} {query:?}: {reply:#?}");
        if reply.status >= 400 {
            prop_assert_eq!(reply.content_type(), "application/problem+json");
        }
    }

    /// The same through lambda_http's own event conversion, for paths a URI can carry.
    #[test]
    fn client_events_never_get_a_5xx(
        method in method(),
        path in "/[A-Za-z0-9._:~!$&'()*+,;=@/-]{0,60}",
        query in query(),
        body in ".{0,120}",
    ) {
        let s = shared();
        let encoded: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&query)
            .finish();
        let event = event_for(&method, &path, &encoded, Some(&body));
        let reply = s.runtime.block_on(s.harness.call(&event));
        prop_assert!(reply.status < 500, "{method} {path:?} {query:?}: {reply:#?}");
    }
}
