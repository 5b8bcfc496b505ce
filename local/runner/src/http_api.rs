//! Plays API Gateway (HTTP API, payload format 2.0) on 127.0.0.1: each HTTP request becomes the
//! `ApiGatewayV2httpRequest` event API Gateway would send, goes through lambda_http's own event
//! parsing, reaches the request-api handler, and its response goes back to the client.
//!
//! Routes come from the function's `HttpApi` events in template.yaml (`$default` catches the
//! rest). A route the template protects with IAM (`ApiAuth=AWS_IAM`, the default) takes only
//! SigV4-signed requests, checked as API Gateway does before invoking the function
//! ([`crate::api_auth`]).

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures::future::BoxFuture;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::api_auth::{Denial, IamAuth};
use crate::stats::FunctionStats;
use emulator::RouteAuthorization;

/// API Gateway rejects payloads above 10 MB before they reach the function.
pub const MAX_PAYLOAD_BYTES: usize = 10 * 1024 * 1024;

pub type HttpHandler = Arc<
    dyn Fn(
            lambda_http::Request,
        ) -> BoxFuture<
            'static,
            Result<lambda_http::Response<lambda_http::Body>, crate::functions::HandlerError>,
        > + Send
        + Sync,
>;

/// One `HttpApi` route of the template: `GET /v1/scores/{subject_id}` or `$default`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub method: String,
    pub path: String,
    pub authorization: RouteAuthorization,
}

impl Route {
    fn key(&self) -> String {
        if self.path == "$default" {
            "$default".to_owned()
        } else {
            format!("{} {}", self.method.to_ascii_uppercase(), self.path)
        }
    }

    /// Path parameters when this route matches (`{name}` one segment, `{name+}` the rest).
    fn matches(&self, method: &str, path: &str) -> Option<BTreeMap<String, String>> {
        if self.path == "$default" {
            return None;
        }
        let route_method = self.method.to_ascii_uppercase();
        if route_method != "ANY" && route_method != method {
            return None;
        }
        let mut params = BTreeMap::new();
        let mut actual = path.trim_start_matches('/').split('/');
        let pattern: Vec<&str> = self.path.trim_start_matches('/').split('/').collect();
        for (i, segment) in pattern.iter().enumerate() {
            if let Some(name) = segment.strip_prefix('{').and_then(|s| s.strip_suffix("+}")) {
                let rest: Vec<&str> = actual.by_ref().collect();
                if rest.is_empty() || i != pattern.len() - 1 {
                    return None;
                }
                params.insert(name.to_owned(), rest.join("/"));
                return Some(params);
            }
            let part = actual.next()?;
            match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some(name) if !part.is_empty() => {
                    params.insert(name.to_owned(), part.to_owned());
                }
                Some(_) => return None,
                None if *segment == part => {}
                None => return None,
            }
        }
        actual.next().is_none().then_some(params)
    }
}

#[derive(Clone)]
pub struct HttpApi {
    pub function: String,
    pub routes: Vec<Route>,
    pub timeout: Duration,
    /// Checks the signatures of requests to routes with [`RouteAuthorization::AwsIam`].
    pub iam: IamAuth,
}

impl HttpApi {
    /// Serves on `listener` until `shutdown` turns true.
    pub async fn serve(
        self,
        listener: TcpListener,
        handler: HttpHandler,
        stats: Arc<FunctionStats>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let api = Arc::new(self);
        loop {
            let (stream, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(pair) => pair,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        continue;
                    }
                },
                _ = shutdown.changed() => break,
            };
            let (api, handler, stats) = (api.clone(), handler.clone(), stats.clone());
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request| {
                    let (api, handler, stats) = (api.clone(), handler.clone(), stats.clone());
                    async move { Ok::<_, Infallible>(api.answer(request, peer, &handler, &stats).await) }
                });
                if let Err(e) = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await
                {
                    tracing::debug!(error = %e, "connection closed with an error");
                }
            });
        }
    }

    async fn answer(
        &self,
        request: hyper::Request<Incoming>,
        peer: SocketAddr,
        handler: &HttpHandler,
        stats: &Arc<FunctionStats>,
    ) -> hyper::Response<Full<Bytes>> {
        let (parts, body) = request.into_parts();
        let body = match Limited::new(body, MAX_PAYLOAD_BYTES).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(_) => return gateway_error(413, "Request Entity Too Large"),
        };
        let method = parts.method.as_str().to_owned();
        let path = percent_encoding::percent_decode_str(parts.uri.path())
            .decode_utf8_lossy()
            .into_owned();
        let matched = self
            .routes
            .iter()
            .find_map(|route| route.matches(&method, &path).map(|params| (route, params)))
            .or_else(|| {
                self.routes
                    .iter()
                    .find(|r| r.path == "$default")
                    .map(|route| (route, BTreeMap::new()))
            });
        let Some((route, path_parameters)) = matched else {
            return gateway_error(404, "Not Found");
        };
        let route_key = route.key();
        // API Gateway authorizes after routing and before invoking the function.
        if route.authorization == RouteAuthorization::AwsIam {
            if let Err(denial) = self.iam.check(&parts, &body, SystemTime::now()) {
                tracing::info!(
                    function = %self.function,
                    route = %route_key,
                    method = %method,
                    path = %path,
                    status = 403,
                    error_type = denial.error_type(),
                    "denied by IAM authorization"
                );
                return denied(&denial);
            }
        }
        let event = api_gateway_event(&parts, &body, peer, &route_key, &path_parameters);
        let mut lambda_request = match lambda_http::request::from_str(&event.to_string()) {
            Ok(request) => request,
            Err(e) => {
                tracing::error!(error = %e, "lambda_http could not parse the API Gateway event");
                return gateway_error(500, "Internal Server Error");
            }
        };
        lambda_request
            .extensions_mut()
            .insert(crate::invocation_context(&self.function, self.timeout));
        let started = tokio::time::Instant::now();
        let outcome = stats.invoke(self.timeout, handler(lambda_request)).await;
        let response = match outcome {
            Ok(Ok(response)) => {
                let (parts, body) = response.into_parts();
                let bytes = match body {
                    lambda_http::Body::Empty => Bytes::new(),
                    lambda_http::Body::Text(text) => Bytes::from(text),
                    lambda_http::Body::Binary(data) => Bytes::from(data),
                    _ => Bytes::new(),
                };
                hyper::Response::from_parts(parts, Full::new(bytes))
            }
            Ok(Err(e)) => {
                stats
                    .errors
                    .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let error = shared::error::chain(e.as_ref());
                tracing::error!(function = %self.function, %error, "handler failed");
                gateway_error(500, "Internal Server Error")
            }
            Err(_) => {
                stats
                    .errors
                    .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                gateway_error(503, "Service Unavailable")
            }
        };
        tracing::info!(
            function = %self.function,
            route = %route_key,
            method = %method,
            path = %path,
            status = response.status().as_u16(),
            duration_ms = started.elapsed().as_millis() as u64,
            "invocation"
        );
        response
    }
}

/// What API Gateway itself answers when it cannot reach or route to the function.
fn gateway_error(status: u16, message: &str) -> hyper::Response<Full<Bytes>> {
    hyper::Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(
            json!({ "message": message }).to_string(),
        )))
        .expect("static response")
}

/// API Gateway's own answer to a request IAM authorization refuses: `403` with its JSON message
/// and error type, not the function's problem+json.
fn denied(denial: &Denial) -> hyper::Response<Full<Bytes>> {
    let mut response = gateway_error(403, &denial.message());
    response.headers_mut().insert(
        "x-amzn-errortype",
        http::HeaderValue::from_static(denial.error_type()),
    );
    response
}

/// The payload format 2.0 event, as documented for HTTP APIs: headers lower-cased and joined
/// with commas, cookies split out, query parameters decoded and joined with commas, binary
/// bodies base64-encoded.
fn api_gateway_event(
    parts: &http::request::Parts,
    body: &Bytes,
    peer: SocketAddr,
    route_key: &str,
    path_parameters: &BTreeMap<String, String>,
) -> serde_json::Value {
    let (headers, cookies) = headers_and_cookies(&parts.headers);
    let raw_query = parts.uri.query().unwrap_or_default().to_owned();
    let query = query_parameters(&raw_query);
    let (body, is_base64) = match std::str::from_utf8(body) {
        Ok(text) => (text.to_owned(), false),
        Err(_) => (aws_smithy_types::base64::encode(body), true),
    };
    // HTTP APIs hand the function the percent-decoded path (the query string stays raw).
    let path = percent_encoding::percent_decode_str(parts.uri.path())
        .decode_utf8_lossy()
        .into_owned();
    let host = headers
        .get("host")
        .cloned()
        .unwrap_or_else(|| "127.0.0.1".into());
    let mut event = json!({
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": raw_query,
        "headers": headers,
        "requestContext": request_context(parts, peer, route_key, &path, &host),
        "isBase64Encoded": is_base64,
    });
    // Optional members are left out when empty, as API Gateway does.
    if !body.is_empty() {
        event["body"] = json!(body);
    }
    if !cookies.is_empty() {
        event["cookies"] = json!(cookies);
    }
    if !query.is_empty() {
        event["queryStringParameters"] = json!(query);
    }
    if !path_parameters.is_empty() {
        event["pathParameters"] = json!(path_parameters);
    }
    event
}

/// Headers as payload 2.0 has them (repeated ones joined with commas) and the cookies apart.
fn headers_and_cookies(headers: &http::HeaderMap) -> (BTreeMap<String, String>, Vec<String>) {
    let mut joined: BTreeMap<String, String> = BTreeMap::new();
    let mut cookies: Vec<String> = Vec::new();
    for (name, value) in headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        if name == http::header::COOKIE {
            cookies.extend(
                value
                    .split(';')
                    .map(|c| c.trim().to_owned())
                    .filter(|c| !c.is_empty()),
            );
            continue;
        }
        joined
            .entry(name.as_str().to_owned())
            .and_modify(|v| {
                v.push(',');
                v.push_str(&value);
            })
            .or_insert(value);
    }
    (joined, cookies)
}

/// The decoded query parameters, repeated ones joined with commas.
fn query_parameters(raw_query: &str) -> BTreeMap<String, String> {
    let mut query: BTreeMap<String, String> = BTreeMap::new();
    for (k, v) in form_urlencoded::parse(raw_query.as_bytes()) {
        query
            .entry(k.into_owned())
            .and_modify(|existing| {
                existing.push(',');
                existing.push_str(&v);
            })
            .or_insert_with(|| v.into_owned());
    }
    query
}

fn request_context(
    parts: &http::request::Parts,
    peer: SocketAddr,
    route_key: &str,
    path: &str,
    host: &str,
) -> serde_json::Value {
    let now = chrono::Utc::now();
    let user_agent = parts
        .headers
        .get(http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    json!({
        "accountId": emulator::provision::EMULATOR_ACCOUNT,
        "apiId": "local",
        "domainName": host,
        "domainPrefix": host.split('.').next().unwrap_or_default(),
        "http": {
            "method": parts.method.as_str(),
            "path": path,
            "protocol": "HTTP/1.1",
            "sourceIp": peer.ip().to_string(),
            "userAgent": user_agent,
        },
        "requestId": ulid::Ulid::new().to_string(),
        "routeKey": route_key,
        "stage": "$default",
        "time": now.format("%d/%b/%Y:%H:%M:%S %z").to_string(),
        "timeEpoch": now.timestamp_millis(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(method: &str, path: &str) -> Route {
        Route {
            method: method.into(),
            path: path.into(),
            authorization: RouteAuthorization::AwsIam,
        }
    }

    #[test]
    fn routes_match_like_api_gateway() {
        let get = route("get", "/v1/scores/{subject_id}");
        assert_eq!(
            get.matches("GET", "/v1/scores/shop-1").unwrap()["subject_id"],
            "shop-1"
        );
        assert!(get.matches("POST", "/v1/scores/shop-1").is_none());
        assert!(get.matches("GET", "/v1/scores/shop-1/refresh").is_none());
        assert!(get.matches("GET", "/v1/scores/").is_none());
        let proxy = route("ANY", "/{proxy+}");
        assert_eq!(proxy.matches("DELETE", "/a/b/c").unwrap()["proxy"], "a/b/c");
        assert_eq!(route("ANY", "$default").key(), "$default");
        assert_eq!(get.key(), "GET /v1/scores/{subject_id}");
    }

    #[test]
    fn the_path_arrives_decoded_as_from_api_gateway() {
        let (parts, ()) = http::Request::builder()
            .uri("/v1/scores/shop%2D1")
            .body(())
            .unwrap()
            .into_parts();
        let event = api_gateway_event(
            &parts,
            &Bytes::new(),
            "127.0.0.1:5000".parse().unwrap(),
            "$default",
            &BTreeMap::new(),
        );

        let parsed = lambda_http::request::from_str(&event.to_string()).unwrap();

        assert_eq!(event["rawPath"], "/v1/scores/shop-1");
        assert_eq!(parsed.uri().path(), "/v1/scores/shop-1");
    }

    #[test]
    fn the_event_parses_as_lambda_http_does_in_aws() {
        let request = http::Request::builder()
            .method("POST")
            .uri("/v1/scores/batch-get?wait=3&x=a&x=b")
            .header("host", "127.0.0.1:3000")
            .header("content-type", "application/json")
            .header("cookie", "a=1; b=2")
            .body(())
            .unwrap();
        let (parts, ()) = request.into_parts();
        let event = api_gateway_event(
            &parts,
            &Bytes::from_static(br#"{"subject_ids":["a"]}"#),
            "127.0.0.1:5000".parse().unwrap(),
            "POST /v1/scores/batch-get",
            &BTreeMap::new(),
        );

        let parsed = lambda_http::request::from_str(&event.to_string()).unwrap();

        use lambda_http::RequestExt;
        assert_eq!(parsed.method(), "POST");
        assert_eq!(parsed.uri().path(), "/v1/scores/batch-get");
        assert_eq!(
            parsed.query_string_parameters().all("x"),
            Some(vec!["a", "b"])
        );
        assert_eq!(event["queryStringParameters"]["x"], "a,b");
        assert_eq!(event["cookies"], json!(["a=1", "b=2"]));
        assert_eq!(parsed.body().as_ref(), br#"{"subject_ids":["a"]}"#);
    }
}
