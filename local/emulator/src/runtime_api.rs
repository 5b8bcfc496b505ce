//! A minimal Lambda Runtime API, to run the real function binaries locally: the binary is
//! started with `AWS_LAMBDA_RUNTIME_API` pointing here, polls `invocation/next` exactly as in
//! AWS, and posts its response or error back. `cargo lambda watch` does the same; this one needs
//! nothing installed, is driven from tests, and times each phase as Lambda reports it (the
//! cold-start benchmark, `deferred-bench`, reads those timings).

use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

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
    #[error("the function failed to initialise: {0}")]
    InitError(serde_json::Value),
}

/// An answer and how long the function took: from the moment `invocation/next` handed it the
/// event to the moment it posted the answer (Lambda's `Duration`).
type Answer = (Invocation, Duration);
type Pending = Arc<Mutex<HashMap<String, (Option<Instant>, oneshot::Sender<Answer>)>>>;

struct Shared {
    events: Mutex<mpsc::Receiver<(String, serde_json::Value)>>,
    pending: Pending,
    /// When the process first polled `invocation/next`: the end of its init phase.
    first_poll: Mutex<Option<oneshot::Sender<Instant>>>,
    init_error: Mutex<Option<oneshot::Sender<serde_json::Value>>>,
}

/// One function binary running under this runtime API, as one Lambda execution environment.
pub struct FunctionProcess {
    child: tokio::process::Child,
    spawned_at: Instant,
    shared: Arc<Shared>,
    event_tx: mpsc::Sender<(String, serde_json::Value)>,
    first_poll_rx: Option<oneshot::Receiver<Instant>>,
    init_error_rx: oneshot::Receiver<serde_json::Value>,
    init_duration: Option<Duration>,
    invocations: usize,
    server: tokio::task::JoinHandle<()>,
}

impl FunctionProcess {
    /// Starts the runtime API on a free loopback port and `binary` against it, with `env` and
    /// the variables Lambda sets for every function (named after the binary), and nothing of this
    /// process's own environment: a developer's `AWS_PROFILE` or `AWS_CA_BUNDLE` must not change
    /// what a test or a benchmark sees.
    pub async fn spawn(
        binary: &Path,
        env: &HashMap<String, String>,
    ) -> Result<Self, RuntimeApiError> {
        Self::spawn_wrapped(&[], binary, env).await
    }

    /// [`spawn`](Self::spawn), run by `wrapper` (a program and its arguments, e.g. `strace -o
    /// FILE`) with the binary's path as its last argument.
    pub async fn spawn_wrapped(
        wrapper: &[String],
        binary: &Path,
        env: &HashMap<String, String>,
    ) -> Result<Self, RuntimeApiError> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (event_tx, event_rx) = mpsc::channel(1);
        let (init_tx, init_error_rx) = oneshot::channel();
        let (first_poll_tx, first_poll_rx) = oneshot::channel();
        let shared = Arc::new(Shared {
            events: Mutex::new(event_rx),
            pending: Arc::new(Mutex::new(HashMap::new())),
            first_poll: Mutex::new(Some(first_poll_tx)),
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
                            async move {
                                Ok::<_, std::convert::Infallible>(route(request, &shared).await)
                            }
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
        let spawned_at = Instant::now();
        let mut command = match wrapper.split_first() {
            Some((program, args)) => {
                let mut command = tokio::process::Command::new(program);
                command.args(args).arg(binary);
                command
            }
            None => tokio::process::Command::new(binary),
        };
        let child = command
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("LANG", "en_US.UTF-8")
            .env("TZ", ":UTC")
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
        Ok(Self {
            child,
            spawned_at,
            shared,
            event_tx,
            first_poll_rx: Some(first_poll_rx),
            init_error_rx,
            init_duration: None,
            invocations: 0,
            server,
        })
    }

    /// The process id, to read its memory and CPU time from `/proc`.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Lambda's `Init Duration`: from exec to the process's first `invocation/next`. Waits for
    /// that poll on the first call.
    pub async fn init_duration(&mut self, timeout: Duration) -> Result<Duration, RuntimeApiError> {
        if let Some(duration) = self.init_duration {
            return Ok(duration);
        }
        let first_poll = self.first_poll_rx.take().expect("taken only here");
        let polled_at = tokio::select! {
            polled_at = first_poll => polled_at.map_err(|_| RuntimeApiError::Exited(None))?,
            error = &mut self.init_error_rx => {
                return Err(RuntimeApiError::InitError(error.unwrap_or_default()))
            }
            status = self.child.wait() => return Err(RuntimeApiError::Exited(status?.code())),
            _ = tokio::time::sleep(timeout) => return Err(RuntimeApiError::Timeout(timeout)),
        };
        let duration = polled_at - self.spawned_at;
        self.init_duration = Some(duration);
        Ok(duration)
    }

    /// Hands the function one event and waits for its answer (an `init/error` answers too).
    pub async fn invoke(
        &mut self,
        event: serde_json::Value,
        timeout: Duration,
    ) -> Result<Answer, RuntimeApiError> {
        let request_id = format!("local-{}-{}", self.invocations, std::process::id());
        self.invocations += 1;
        let (tx, mut rx) = oneshot::channel();
        self.shared
            .pending
            .lock()
            .await
            .insert(request_id.clone(), (None, tx));
        let _ = self.event_tx.send((request_id, event)).await;
        tokio::select! {
            answer = &mut rx => answer.map_err(|_| RuntimeApiError::Exited(None)),
            error = &mut self.init_error_rx => {
                Ok((Invocation::Error(error.unwrap_or_default()), Duration::ZERO))
            }
            status = self.child.wait() => Err(RuntimeApiError::Exited(status?.code())),
            _ = tokio::time::sleep(timeout) => Err(RuntimeApiError::Timeout(timeout)),
        }
    }

    /// Stops the process (and, when it runs under a wrapper, the wrapper's children: killing
    /// strace detaches it from the binary, which would live on) and the runtime API.
    pub async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
                .unwrap_or_default();
            for child in children.split_whitespace() {
                let _ = std::process::Command::new("kill")
                    .args(["-KILL", child])
                    .status();
            }
        }
        let _ = self.child.kill().await;
        self.server.abort();
    }
}

/// Runs `binary` under the runtime API with `env` and hands it `events` one at a time.
pub async fn invoke_binary(
    binary: &Path,
    env: &HashMap<String, String>,
    events: &[serde_json::Value],
    timeout: Duration,
) -> Result<Vec<Invocation>, RuntimeApiError> {
    let mut process = FunctionProcess::spawn(binary, env).await?;
    let mut answers = Vec::with_capacity(events.len());
    for event in events {
        let (answer, _) = process.invoke(event.clone(), timeout).await?;
        answers.push(answer);
    }
    process.stop().await;
    Ok(answers)
}

async fn route(request: hyper::Request<Incoming>, shared: &Shared) -> hyper::Response<Full<Bytes>> {
    let arrived_at = Instant::now();
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
            if let Some(tx) = shared.first_poll.lock().await.take() {
                let _ = tx.send(arrived_at);
            }
            let Some((request_id, event)) = shared.events.lock().await.recv().await else {
                return hyper::Response::builder()
                    .status(500)
                    .body(Full::new(Bytes::new()))
                    .expect("static");
            };
            if let Some((delivered_at, _)) = shared.pending.lock().await.get_mut(&request_id) {
                *delivered_at = Some(Instant::now());
            }
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
            if let Some((delivered_at, tx)) = shared.pending.lock().await.remove(*id) {
                let duration = Instant::now() - delivered_at.unwrap_or(arrived_at);
                let answer = if *outcome == "response" {
                    Invocation::Response(json())
                } else {
                    Invocation::Error(json())
                };
                let _ = tx.send((answer, duration));
            }
            accepted()
        }
        ["2018-06-01", "runtime", "init", "error"] => {
            if let Some(tx) = shared.init_error.lock().await.take() {
                let _ = tx.send(json());
            }
            accepted()
        }
        _ => hyper::Response::builder()
            .status(404)
            .body(Full::new(Bytes::new()))
            .expect("static"),
    }
}
