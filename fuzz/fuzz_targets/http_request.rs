//! request-api: `request_api::handle` with any method, raw path, query string, headers and
//! body, over an AWS that answers every call successfully (DynamoDB: no item, writes accepted;
//! SNS: published). No input gets a 5xx (a panic inside the handler would be one, and aborts
//! here besides), every error is problem+json, and every `compute.requested` published is one
//! compute can read.
//!
//! Input, close to HTTP/1.1 so that seeds can be read and written by hand:
//! `METHOD RAW-PATH[?QUERY]\n` then `name: value\n` header lines, an empty line, and the body
//! (any bytes). The raw path is used as API Gateway delivers `rawPath` (percent-decoded, any
//! text); the query is percent-encoded where a URI needs it.
#![no_main]

use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_smithy_runtime_api::client::http::{
    http_client_fn, HttpConnector, HttpConnectorFuture, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_types::body::SdkBody;
use lambda_http::request::RequestContext;
use lambda_http::{Body, RequestExt};
use libfuzzer_sys::fuzz_target;
use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};
use request_api::{Config, Deps};
use shared::events::{ComputeRequested, TRACE_ID_MAX_LEN};

/// What a URI's query cannot carry as it is.
const QUERY: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'<')
    .add(b'>')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'|')
    .add(b'\\')
    .add(b'^');

/// A successful answer to every DynamoDB and SNS call the handler makes, checking each
/// published `compute.requested` on the way.
#[derive(Debug)]
struct CannedAws;

impl HttpConnector for CannedAws {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let target = request
            .headers()
            .get("x-amz-target")
            .unwrap_or_default()
            .to_owned();
        let (content_type, body) = match target.rsplit('.').next() {
            Some("BatchGetItem") => (
                "application/x-amz-json-1.0",
                r#"{"Responses":{},"UnprocessedKeys":{}}"#.to_owned(),
            ),
            Some("GetItem" | "PutItem" | "UpdateItem") => {
                ("application/x-amz-json-1.0", "{}".to_owned())
            }
            _ => {
                let form = request.body().bytes().unwrap_or_default();
                let message = form_urlencoded::parse(form)
                    .find(|(name, _)| name == "Message")
                    .map(|(_, value)| value.into_owned())
                    .expect("an SNS Publish with a Message");
                let event = ComputeRequested::from_json(&message)
                    .expect("compute can read every compute.requested published");
                assert!(event.trace_id.is_none_or(|t| t.len() <= TRACE_ID_MAX_LEN));
                (
                    "text/xml",
                    "<PublishResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\">\
                     <PublishResult><MessageId>fuzz</MessageId></PublishResult>\
                     <ResponseMetadata><RequestId>fuzz</RequestId></ResponseMetadata>\
                     </PublishResponse>"
                        .to_owned(),
                )
            }
        };
        let mut response = HttpResponse::new(200.try_into().unwrap(), SdkBody::from(body));
        response.headers_mut().insert("content-type", content_type);
        HttpConnectorFuture::ready(Ok(response))
    }
}

struct Fixture {
    runtime: tokio::runtime::Runtime,
    deps: Deps,
    context: RequestContext,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let sdk = runtime.block_on(
            aws_config::defaults(aws_config::BehaviorVersion::latest())
                .region(aws_config::Region::new("us-east-1"))
                .credentials_provider(aws_credential_types::Credentials::new(
                    "fuzz", "fuzz", None, None, "fuzz",
                ))
                .http_client(http_client_fn(|_, _| SharedHttpConnector::new(CannedAws)))
                .load(),
        );
        // The template's defaults, as Lambda would give them.
        let env = shared::config::Env::from_pairs([
            ("SCORES_TABLE", "scores"),
            ("COMPUTE_TOPIC_ARN", "arn:aws:sns:us-east-1:123456789012:compute"),
            ("COMPUTE_QUEUE_URL", "https://sqs.us-east-1.amazonaws.com/123456789012/compute"),
        ]);
        let config = Config::from_env(&env).unwrap();
        let event: serde_json::Value =
            serde_json::from_str(include_str!("../../events/request-api/get-score.json")).unwrap();
        let context = serde_json::from_value(event["requestContext"].clone()).unwrap();
        Fixture {
            runtime,
            deps: Deps::new(&config, &sdk),
            context,
        }
    })
}

/// The request the input describes, or `None` when no HTTP request could carry it (a method
/// that is not a token).
fn request(data: &[u8], context: &RequestContext) -> Option<lambda_http::Request> {
    let (head, body) = match data.windows(2).position(|w| w == b"\n\n") {
        Some(at) => (&data[..at], &data[at + 2..]),
        None => (data, &[][..]),
    };
    let mut lines = head.split(|&b| b == b'\n');
    let first = String::from_utf8_lossy(lines.next().unwrap_or_default()).into_owned();
    let (method, target) = first.split_once(' ').unwrap_or((&first, ""));
    let (raw_path, query) = target.split_once('?').unwrap_or((target, ""));
    let method = http::Method::from_bytes(method.as_bytes()).ok()?;
    let query = utf8_percent_encode(query, QUERY).to_string();
    let uri = if query.is_empty() {
        "/".to_owned()
    } else {
        format!("/?{query}")
    };
    let mut lambda = lambda_runtime::Context::default();
    lambda.request_id = "fuzz".to_owned();
    // The invocation ends within a second: `?wait=N` is capped to nothing, as the handler
    // does near its deadline, so that no input sleeps.
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    lambda.deadline = (now + Duration::from_secs(1)).as_millis() as u64;
    let mut request = http::Request::builder()
        .method(method)
        .uri(uri)
        .body(Body::from(body.to_vec()))
        .ok()?
        .with_raw_http_path(raw_path)
        .with_request_context(context.clone())
        .with_lambda_context(lambda);
    for line in lines {
        let (name, value) = match line.iter().position(|&b| b == b':') {
            Some(at) => (&line[..at], line[at + 1..].trim_ascii()),
            None => (line, &[][..]),
        };
        if let (Ok(name), Ok(value)) = (
            http::header::HeaderName::from_bytes(name),
            http::header::HeaderValue::from_bytes(value),
        ) {
            request.headers_mut().append(name, value);
        }
    }
    Some(request)
}

fuzz_target!(|data: &[u8]| {
    let fixture = fixture();
    let Some(request) = request(data, &fixture.context) else {
        return;
    };
    let response = fixture
        .runtime
        .block_on(request_api::handle(request, &fixture.deps))
        .unwrap();
    let status = response.status().as_u16();
    assert!(status < 500, "{status}: {:?}", response.body());
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if status >= 400 {
        assert_eq!(content_type, "application/problem+json");
    }
    let body: &[u8] = response.body().as_ref();
    serde_json::from_slice::<serde_json::Value>(body).expect("every body is JSON");
});
