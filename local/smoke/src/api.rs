//! The HTTP client: HTTPS with compiled-in roots, requests signed (or not) as the stack expects,
//! and answers kept whole (status, headers, body) for the scenarios to judge.

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderMap, CONTENT_TYPE, RETRY_AFTER};
use reqwest::{Method, Url};
use serde_json::Value;

use crate::{error_chain, Auth};

/// API Gateway ends an integration after 30 s; a request that takes longer is not coming back.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(35);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// TLS for reqwest: rustls with the aws-lc-rs provider (the one the AWS SDK already links) and
/// the Mozilla roots compiled in (webpki-roots), so it works the same on any machine, offline
/// from any OS trust store. HTTP/1.1 only, as the workspace's reqwest is built without HTTP/2.
pub(crate) fn tls_config() -> rustls::ClientConfig {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("aws-lc-rs supports TLS 1.2 and 1.3")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config
}

/// A reqwest client with this workspace's TLS set up (see `tls_config`): in a build that includes
/// this crate, reqwest's default backend is rustls without a crypto provider, and
/// `reqwest::Client::new()` panics. Redirects are not followed (the API never redirects, and a
/// signature does not survive one).
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .use_preconfigured_tls(tls_config())
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        .user_agent(concat!("deferred-smoke/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("a client with a preconfigured rustls config builds")
}

/// An answer of the API, as received.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub text: String,
    /// The body as JSON, when it is JSON.
    pub body: Option<Value>,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The media type of `Content-Type`, without parameters, lowercased.
    pub fn media_type(&self) -> Option<String> {
        self.headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                v.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase()
            })
    }

    /// `Retry-After` in seconds (the API sends delay-seconds, never an HTTP date).
    pub fn retry_after(&self) -> Option<u64> {
        self.headers
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok())
    }

    /// The body, shortened for a one-line report.
    pub fn excerpt(&self) -> String {
        const MAX: usize = 200;
        let text = self.text.trim();
        if text.chars().count() <= MAX {
            text.to_owned()
        } else {
            format!("{}...", text.chars().take(MAX).collect::<String>())
        }
    }

    /// A string field of the JSON body.
    pub fn str_field(&self, name: &str) -> Option<&str> {
        self.body.as_ref()?.get(name)?.as_str()
    }
}

pub(crate) struct Api {
    http: reqwest::Client,
    base: Url,
    auth: Auth,
}

impl Api {
    pub(crate) fn new(base: Url, auth: Auth) -> Self {
        Self {
            http: http_client(),
            base,
            auth,
        }
    }

    /// `path` (already percent-encoded) under the API's base URL, which may have a path of its
    /// own (a custom domain's base path mapping).
    pub(crate) fn url(&self, path: &str) -> Url {
        let joined = format!("{}{path}", self.base.as_str().trim_end_matches('/'));
        Url::parse(&joined).unwrap_or_else(|e| panic!("{joined:?} is not a URL: {e}"))
    }

    pub(crate) async fn send(
        &self,
        method: Method,
        url: Url,
        json: Option<&Value>,
    ) -> Result<Answer, String> {
        let what = format!("{method} {url}");
        let mut builder = self.http.request(method, url);
        if let Some(json) = json {
            builder = builder
                .header(CONTENT_TYPE, "application/json")
                .body(serde_json::to_vec(json).expect("a JSON value serialises"));
        }
        let mut request = builder.build().map_err(|e| format!("{what}: {e}"))?;
        if let Auth::SigV4(signer) = &self.auth {
            signer
                .sign(&mut request)
                .await
                .map_err(|e| format!("{what}: {e}"))?;
        }
        let response = self
            .http
            .execute(request)
            .await
            .map_err(|e| format!("{what}: {}", error_chain(&e)))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response
            .text()
            .await
            .map_err(|e| format!("{what}: reading the body: {}", error_chain(&e)))?;
        let body = serde_json::from_str(&text).ok();
        Ok(Answer {
            status,
            headers,
            text,
            body,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Accepts one connection, returns what the client sent first (after answering `reply`).
    async fn one_connection(reply: &'static [u8]) -> (Url, tokio::task::JoinHandle<Vec<u8>>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 8192];
            let n = stream.read(&mut buf).await.unwrap();
            buf.truncate(n);
            let _ = stream.write_all(reply).await;
            buf
        });
        (
            Url::parse(&format!("http://127.0.0.1:{port}")).unwrap(),
            task,
        )
    }

    #[test]
    fn paths_go_under_the_base_url() {
        let api = |base: &str| Api::new(Url::parse(base).unwrap(), Auth::Unsigned);

        assert_eq!(
            api("https://abc.execute-api.eu-west-1.amazonaws.com")
                .url("/v1/scores/bad%20id")
                .as_str(),
            "https://abc.execute-api.eu-west-1.amazonaws.com/v1/scores/bad%20id"
        );
        assert_eq!(
            api("https://api.example.com/scores/")
                .url("/v1/scores/a")
                .as_str(),
            "https://api.example.com/scores/v1/scores/a"
        );
    }

    #[tokio::test]
    async fn https_urls_are_spoken_to_in_tls() {
        let (url, received) = one_connection(b"").await;
        let https = format!("https://localhost:{}/", url.port().unwrap());

        let outcome = http_client().get(&https).send().await;
        let first_bytes = received.await.unwrap();

        assert!(outcome.is_err(), "no TLS server there");
        assert_eq!(
            first_bytes.get(..2),
            Some(&[0x16, 0x03][..]),
            "a TLS handshake record (ClientHello), not plain HTTP"
        );
        assert!(
            first_bytes.windows(9).any(|w| w == b"localhost"),
            "with SNI for the host"
        );
        assert!(!webpki_roots::TLS_SERVER_ROOTS.is_empty());
    }

    #[tokio::test]
    async fn an_answer_is_kept_whole_and_signed_requests_say_so() {
        let (url, received) = one_connection(
            b"HTTP/1.1 404 Not Found\r\ncontent-type: application/problem+json; charset=utf-8\r\n\
              retry-after: 3\r\ncontent-length: 27\r\nconnection: close\r\n\r\n{\"status\":404,\"detail\":\"x\"}",
        )
        .await;
        let signer = crate::Signer::new(
            aws_credential_types::Credentials::new("AKIDLOCAL", "secret", None, None, "test"),
            "us-east-1",
        );
        let api = Api::new(url, Auth::SigV4(signer));

        let answer = api
            .send(Method::GET, api.url("/v1/scores/bad%20id"), None)
            .await
            .unwrap();
        let request = String::from_utf8(received.await.unwrap()).unwrap();

        assert_eq!(answer.status, 404);
        assert_eq!(
            answer.media_type().as_deref(),
            Some("application/problem+json")
        );
        assert_eq!(answer.retry_after(), Some(3));
        assert_eq!(answer.str_field("detail"), Some("x"));
        assert!(
            request.starts_with("GET /v1/scores/bad%20id HTTP/1.1\r\n"),
            "{request}"
        );
        assert!(
            request.contains("authorization: AWS4-HMAC-SHA256 Credential=AKIDLOCAL/"),
            "{request}"
        );
        assert!(request.contains("x-amz-date: "), "{request}");
    }
}
