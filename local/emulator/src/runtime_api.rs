//! A minimal Lambda Runtime API, to run the real function binaries locally: the binary is
//! started with `AWS_LAMBDA_RUNTIME_API` pointing here, polls `invocation/next` exactly as in
//! AWS, and posts its response or error back. `cargo lambda watch` does the same; this one needs
//! nothing installed and is driven from tests.

use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, Mutex};

/// What the function answered to one invocation.
#[derive(Debug, Clone, PartialEq)]
pub enum Invocation {
    Response(serde_json::Value),
    /// `invocation/{id}/error` (a handler error) or `init/error` (the binary failed to start).
    Error(serde_json::Value),
}

#[derive(Debug, thiserror::Error)]
pub enum RuntimeApiError {
    #[error("cannot start the runtime API or the binary")]
    Io(#[from] std::io::Error),
    #[error("the function did not answer within {0:?}")]
    Timeout(Duration),
    #[error("the function exited before answering (status {0:?})")]
    Exited(Option<i32>),
}

type Pending = Arc<Mutex<HashMap<String, oneshot::Sender<Invocation>>>>;

struct Shared {
    events: Mutex<mpsc::Receiver<(String, serde_json::Value)>>,
    pending: Pending,
    init_error: Mutex<Option<oneshot::Sender<Invocation>>>,
}

/// Runs `binary` under the runtime API with `env` and hands it `events` one at a time.
pub async fn invoke_binary(
    binary: &Path,
    env: &HashMap<String, String>,
    events: &[serde_json::Value],
    timeout: Duration,
) -> Result<Vec<Invocation>, RuntimeApiError> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (event_tx, event_rx) = mpsc::channel(1);
    let (init_tx, mut init_rx) = oneshot::channel();
    let shared = Arc::new(Shared {
        events: Mutex::new(event_rx),
        pending: Arc::new(Mutex::new(HashMap::new())),
        init_error: Mutex::new(Some(init_tx)),
    });
    let server = {
        let shared = shared.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let shared = shared.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let shared = shared.clone();
                        async move { Ok::<_, std::convert::Infallible>(route(request, &shared).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        })
    };
    let name = binary
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("function")
        .to_owned();
    let mut child = tokio::process::Command::new(binary)
        .envs(env)
        .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", &name)
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "local")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}"))
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;

    let mut answers = Vec::with_capacity(events.len());
    for (i, event) in events.iter().enumerate() {
        let request_id = format!("local-{i}-{}", std::process::id());
        let (tx, mut rx) = oneshot::channel();
        shared.pending.lock().await.insert(request_id.clone(), tx);
        let _ = event_tx.send((request_id, event.clone())).await;
        let answer = tokio::select! {
            answer = &mut rx => answer.map_err(|_| RuntimeApiError::Exited(None))?,
            init = &mut init_rx => init.map_err(|_| RuntimeApiError::Exited(None))?,
            status = child.wait() => return Err(RuntimeApiError::Exited(status?.code())),
            _ = tokio::time::sleep(timeout) => return Err(RuntimeApiError::Timeout(timeout)),
        };
        answers.push(answer);
    }
    let _ = child.kill().await;
    server.abort();
    Ok(answers)
}

async fn route(request: hyper::Request<Incoming>, shared: &Shared) -> hyper::Response<Full<Bytes>> {
    let path = request.uri().path().to_owned();
    let body = request
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let json = || {
        serde_json::from_slice(&body).unwrap_or_else(|_| {
            serde_json::Value::String(String::from_utf8_lossy(&body).into_owned())
        })
    };
    let accepted = || {
        hyper::Response::builder()
            .status(202)
            .body(Full::new(Bytes::new()))
            .expect("static")
    };
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match segments.as_slice() {
        ["2018-06-01", "runtime", "invocation", "next"] => {
            let Some((request_id, event)) = shared.events.lock().await.recv().await else {
                return hyper::Response::builder()
                    .status(500)
                    .body(Full::new(Bytes::new()))
                    .expect("static");
            };
            let deadline = chrono::Utc::now().timestamp_millis() + 60_000;
            hyper::Response::builder()
                .status(200)
                .header("lambda-runtime-aws-request-id", request_id)
                .header("lambda-runtime-deadline-ms", deadline.to_string())
                .header(
                    "lambda-runtime-invoked-function-arn",
                    "arn:aws:lambda:us-east-1:123456789012:function:local",
                )
                .header(
                    "lambda-runtime-trace-id",
                    "Root=1-00000000-000000000000000000000000;Sampled=0",
                )
                .body(Full::new(Bytes::from(event.to_string())))
                .expect("valid response")
        }
        ["2018-06-01", "runtime", "invocation", id, outcome @ ("response" | "error")] => {
            if let Some(tx) = shared.pending.lock().await.remove(*id) {
                let _ = tx.send(if *outcome == "response" {
                    Invocation::Response(json())
                } else {
                    Invocation::Error(json())
                });
            }
            accepted()
        }
        ["2018-06-01", "runtime", "init", "error"] => {
            if let Some(tx) = shared.init_error.lock().await.take() {
                let _ = tx.send(Invocation::Error(json()));
            }
            accepted()
        }
        _ => hyper::Response::builder()
            .status(404)
            .body(Full::new(Bytes::new()))
            .expect("static"),
    }
}
