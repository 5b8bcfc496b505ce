//! The emulator behind a connection that stays open, as an AWS endpoint's does.
//!
//! moto's server (werkzeug) answers every request with `Connection: close`, so a function
//! measured directly against it opens a new TCP connection for each AWS call: a socket, a
//! connect, a shutdown and a close, plus the HTTP client's connection setup, none of which a
//! warm function pays in AWS, where the SDK's pooled connection is reused. [`Forwarder`] serves
//! HTTP/1.1 with keep-alive and forwards each request, unchanged (the `Host` header included, so
//! the SigV4 signature still verifies), over a fresh connection to the emulator. Its own CPU is
//! the benchmark process's, not the function's.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;

use crate::BenchError;

/// Headers about one connection, which a proxy must not pass on (RFC 9110, section 7.6.1).
const HOP_BY_HOP: [&str; 5] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
];

/// Forwards requests to the emulator at `upstream`.
#[derive(Clone)]
pub struct Forwarder {
    upstream: SocketAddr,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Forwarder {
    pub fn new(upstream: SocketAddr) -> Self {
        Self {
            upstream,
            client: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    /// Serves one client connection (plain or TLS) until the client closes it.
    pub async fn serve<I>(self, io: I)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let service = hyper::service::service_fn(move |request| {
            let forwarder = self.clone();
            async move { Ok::<_, std::convert::Infallible>(forwarder.forward(request).await) }
        });
        let _ = hyper::server::conn::http1::Builder::new()
            .keep_alive(true)
            .serve_connection(TokioIo::new(io), service)
            .await;
    }

    async fn forward(&self, request: Request<Incoming>) -> Response<Full<Bytes>> {
        match self.try_forward(request).await {
            Ok(response) => response,
            Err(message) => {
                let mut response = Response::new(Full::new(Bytes::from(message)));
                *response.status_mut() = StatusCode::BAD_GATEWAY;
                response
            }
        }
    }

    async fn try_forward(
        &self,
        request: Request<Incoming>,
    ) -> Result<Response<Full<Bytes>>, String> {
        let (mut parts, body) = request.into_parts();
        let body = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
        let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        parts.uri = format!("http://{}{path}", self.upstream)
            .parse()
            .map_err(|e| format!("{e}"))?;
        for name in HOP_BY_HOP {
            parts.headers.remove(name);
        }
        let response = self
            .client
            .request(Request::from_parts(parts, Full::new(body)))
            .await
            .map_err(|e| format!("the emulator: {e}"))?;
        let (mut parts, body) = response.into_parts();
        let body = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
        for name in HOP_BY_HOP {
            parts.headers.remove(name);
        }
        Ok(Response::from_parts(parts, Full::new(body)))
    }
}

/// A keep-alive HTTP endpoint on a loopback port in front of the emulator.
pub struct KeepAliveProxy {
    pub endpoint: String,
    accepted: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl KeepAliveProxy {
    pub async fn start(upstream: SocketAddr) -> Result<Self, BenchError> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let forwarder = Forwarder::new(upstream);
        let accepted = Arc::new(AtomicUsize::new(0));
        let task = {
            let accepted = accepted.clone();
            tokio::spawn(async move {
                while let Ok((client, _)) = listener.accept().await {
                    accepted.fetch_add(1, Ordering::Relaxed);
                    tokio::spawn(forwarder.clone().serve(client));
                }
            })
        };
        Ok(Self {
            endpoint: format!("http://127.0.0.1:{port}"),
            accepted,
            task,
        })
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.accepted.load(Ordering::Relaxed)
    }
}

impl Drop for KeepAliveProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}
