//! Cold start, memory and CPU of the real (release) Lambda binaries, measured as Lambda measures
//! them, side by side with a hello-world floor built with the same profile (`make bench`).
//!
//! Each binary runs under the emulator crate's Runtime API ([`FunctionProcess`]) with the
//! environment Lambda would give it, against the AWS emulator (moto) behind a connection kept
//! open as AWS keeps it ([`forward::KeepAliveProxy`]; HTTPS through [`tls::TlsProxy`]):
//!
//! - **Cold starts**: a fresh process per run; init is exec to the first `invocation/next`
//!   (Lambda's `Init Duration`), then the first invocation's duration and the RSS after it.
//! - **Warm**: one process, a first invocation, then `warm` more of one request path; RSS after
//!   the first and after the last, and the process's own CPU per warm invocation (the sum of its
//!   threads' run time from `/proc/<pid>/task/*/schedstat`), which leaves out the emulator's time.
//!
//! Figures are medians of several processes, because one cold start on a shared machine is noise.

pub mod forward;
pub mod report;
pub mod tls;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::Utc;
use datagen::{Profile, SubjectSpec};
use emulator::fixtures;
use emulator::runtime_api::{FunctionProcess, Invocation, RuntimeApiError};
use emulator::TestEnv;
use serde_json::Value;
use shared::domain::{RequestReason, SubjectId};
use shared::score_store::{StartMode, StartOutcome};

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("{binary}: {source}")]
    Runtime {
        binary: String,
        #[source]
        source: RuntimeApiError,
    },
    #[error("{binary} ({path}) answered other than expected: {answer}")]
    UnexpectedAnswer {
        binary: String,
        path: &'static str,
        answer: String,
    },
    #[error("{0} is not built (make bench builds it)")]
    NotBuilt(PathBuf),
    #[error("reading /proc: {0}")]
    Proc(#[from] std::io::Error),
    #[error("arranging the emulator: {0}")]
    Arrange(String),
}

/// Memory and CPU of a live process, from `/proc` (Linux).
#[derive(Debug, Clone, Copy)]
pub struct ProcessStats {
    /// Resident set size now, KiB.
    pub rss_kib: u64,
    /// Peak resident set size so far (what Lambda reports as `Max Memory Used`), KiB.
    pub peak_rss_kib: u64,
    /// Of `rss_kib`: anonymous memory (heap, stacks, the binary's written data), KiB.
    pub anon_kib: u64,
    /// Of `rss_kib`: pages of files (the binary's code and read-only data, shared libraries).
    pub file_kib: u64,
    /// CPU time of the process's live threads so far.
    pub cpu: Duration,
}

pub fn process_stats(pid: u32) -> std::io::Result<ProcessStats> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib = |field: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(field))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    let mut cpu_ns: u64 = 0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        // The first field of schedstat is the thread's time on a CPU, in nanoseconds.
        let schedstat = std::fs::read_to_string(task?.path().join("schedstat"))?;
        cpu_ns += schedstat
            .split_whitespace()
            .next()
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0);
    }
    Ok(ProcessStats {
        rss_kib: kib("VmRSS:"),
        peak_rss_kib: kib("VmHWM:"),
        anon_kib: kib("RssAnon:"),
        file_kib: kib("RssFile:"),
        cpu: Duration::from_nanos(cpu_ns),
    })
}

/// One cold start: a fresh process, its init and its first invocation.
#[derive(Debug, Clone)]
pub struct ColdStart {
    pub init: Duration,
    pub first_invocation: Duration,
    pub rss_kib: u64,
}

/// The files and connections of one process's init, from strace's log.
#[derive(Debug, Clone, Default)]
pub struct InitTrace {
    /// Files opened, shared libraries and `/proc`, `/sys` left out.
    pub files: Vec<String>,
    /// `connect` calls besides the one to the runtime API.
    pub other_connects: usize,
}

impl InitTrace {
    /// The log ends at the first `invocation/next` (the process is stopped there), so all of
    /// it is init, and its one connection to the runtime API is not counted.
    pub fn parse(log: &str) -> Self {
        let mut trace = Self::default();
        let mut connects: usize = 0;
        for line in log.lines() {
            if line.contains("connect(") {
                connects += 1;
                continue;
            }
            let Some(path) = line.split('"').nth(1) else {
                continue;
            };
            let loader = path.contains(".so") || path == "/etc/ld.so.cache";
            let kernel = path.starts_with("/proc/") || path.starts_with("/sys/");
            if line.contains("open") && !loader && !kernel {
                trace.files.push(path.to_owned());
            }
        }
        trace.other_connects = connects.saturating_sub(1);
        trace
    }
}

/// One process kept warm on one request path.
#[derive(Debug, Clone)]
pub struct WarmRun {
    pub binary: String,
    pub path: &'static str,
    pub invocations: usize,
    pub rss_after_first_kib: u64,
    pub rss_after_kib: u64,
    /// Of `rss_after_kib`: anonymous and file-backed (see [`ProcessStats`]).
    pub anon_after_kib: u64,
    pub file_after_kib: u64,
    pub peak_rss_kib: u64,
    /// The process's own CPU per warm invocation (runtime API polling included).
    pub cpu_per_invocation: Duration,
    pub median_duration: Duration,
}

/// The binaries measured, in report order: the floor first.
pub const FLOOR: &str = "hello-floor";
pub const FUNCTIONS: [(&str, &str); 4] = [
    ("request-api", "RequestApiFunction"),
    ("compute", "ComputeFunction"),
    ("notifier", "NotifierFunction"),
    ("metadata-sync", "MetadataSyncFunction"),
];

/// What one invocation sends and what must come back for the figure to count.
pub struct Call {
    pub event: Value,
    pub path: &'static str,
    expect: Expect,
}

enum Expect {
    HttpStatus(u16),
    NoBatchItemFailures,
}

impl Call {
    fn check(&self, binary: &str, answer: &Invocation) -> Result<(), BenchError> {
        let ok = match (answer, &self.expect) {
            (Invocation::Response(body), Expect::HttpStatus(status)) => {
                body["statusCode"] == *status
            }
            (Invocation::Response(body), Expect::NoBatchItemFailures) => body["batchItemFailures"]
                .as_array()
                .is_some_and(|failures| failures.is_empty()),
            (Invocation::Error(_), _) => false,
        };
        if ok {
            return Ok(());
        }
        let answer = match answer {
            Invocation::Response(body) | Invocation::Error(body) => body.to_string(),
        };
        Err(BenchError::UnexpectedAnswer {
            binary: binary.to_owned(),
            path: self.path,
            answer: answer.chars().take(500).collect(),
        })
    }
}

/// The emulator's copy of the stack, its data, and where the binaries are.
pub struct Bench {
    pub env: TestEnv,
    /// The emulator behind keep-alive connections: the functions' `AWS_ENDPOINT_URL`.
    endpoint: forward::KeepAliveProxy,
    bin_dir: PathBuf,
    /// Extra process environment for every binary (e.g. the HTTPS endpoint and its CA).
    extra_env: HashMap<String, String>,
    timeout: Duration,
    counter: usize,
}

/// The subject with data that compute scores (one object of 400 transactions).
const DATA_SUBJECT: &str = "bench-data";

impl Bench {
    /// Provisions the template in the emulator and seeds [`DATA_SUBJECT`].
    pub async fn new(bin_dir: &Path) -> Result<Self, BenchError> {
        let env = TestEnv::new().await;
        let spec = SubjectSpec::new(subject(DATA_SUBJECT), 400, Profile::Normal);
        datagen::seed(
            &env.s3(),
            &env.catalog_store(),
            &env.names.data_bucket,
            &[spec],
            1,
        )
        .await
        .map_err(|e| BenchError::Arrange(format!("seeding {DATA_SUBJECT}: {e}")))?;
        let endpoint = forward::KeepAliveProxy::start(emulator_address()?).await?;
        Ok(Self {
            env,
            endpoint,
            bin_dir: bin_dir.to_owned(),
            extra_env: HashMap::new(),
            timeout: Duration::from_secs(60),
            counter: 0,
        })
    }

    /// Connections the functions have opened to the emulator's keep-alive endpoint so far.
    pub fn endpoint_connections(&self) -> usize {
        self.endpoint.connections()
    }

    /// Where the binaries are from now on (a run may arrange state with one build's binaries
    /// and measure another's).
    pub fn set_bin_dir(&mut self, bin_dir: &Path) {
        self.bin_dir = bin_dir.to_owned();
    }

    /// Every binary is started with these variables too (they win over the template's).
    pub fn set_extra_env(&mut self, extra: HashMap<String, String>) {
        self.extra_env = extra;
    }

    fn binary(&self, name: &str) -> Result<PathBuf, BenchError> {
        let path = self.bin_dir.join(name);
        if path.exists() {
            Ok(path)
        } else {
            Err(BenchError::NotBuilt(path))
        }
    }

    fn process_env(&self, binary: &str) -> HashMap<String, String> {
        // The floor gets request-api's environment: the same variables, none of them read.
        let logical_id = FUNCTIONS
            .iter()
            .find(|(name, _)| *name == binary)
            .map_or("RequestApiFunction", |(_, id)| *id);
        let mut env = self.env.lambda_process_env(logical_id);
        env.insert("AWS_ENDPOINT_URL".into(), self.endpoint.endpoint.clone());
        env.extend(self.extra_env.clone());
        env
    }

    fn unique(&mut self, what: &str) -> String {
        self.counter += 1;
        format!("bench-{what}-{}-{}", std::process::id(), self.counter)
    }

    /// The request or batch a cold start of `binary` answers first: a new subject for
    /// request-api, a whole job for compute, a completion for notifier, a new object for
    /// metadata-sync.
    pub async fn first_call(&mut self, binary: &str) -> Result<Call, BenchError> {
        match binary {
            FLOOR => Ok(http_call(&self.unique("floor"), "hello", 200)),
            "request-api" => Ok(http_call(&self.unique("new"), "new subject", 202)),
            "compute" => self.compute_job().await,
            "notifier" => Ok(Call {
                event: fixtures::load("notifier", "completed"),
                path: "completion",
                expect: Expect::NoBatchItemFailures,
            }),
            "metadata-sync" => {
                let key = format!("datasets/{}/orders.ndjson", self.unique("object"));
                Ok(self.object_created(&key))
            }
            other => Err(BenchError::Arrange(format!("no scenario for {other}"))),
        }
    }

    /// A job of [`DATA_SUBJECT`] started in the table, and compute's message for it.
    async fn compute_job(&mut self) -> Result<Call, BenchError> {
        let StartOutcome::Started(record) = self.start_job(DATA_SUBJECT).await? else {
            return Err(BenchError::Arrange(format!(
                "{DATA_SUBJECT}: a job is already running"
            )));
        };
        let text = fixtures::text("compute", "single")
            .replace("shop-0001", DATA_SUBJECT)
            .replace("01JBZ8Q3W5X7Y9A1B3C5D7E9F1", &record.job_id.to_string());
        Ok(Call {
            event: fixtures::parse("compute", "single", &text),
            path: "whole job",
            expect: Expect::NoBatchItemFailures,
        })
    }

    /// A job for `id`, as a refresh: started unless one is already pending or running.
    async fn start_job(&self, id: &str) -> Result<StartOutcome, BenchError> {
        self.env
            .score_store()
            .start_job(
                &subject(id),
                RequestReason::Refresh,
                StartMode::Refresh,
                Utc::now(),
                Duration::from_secs(3600),
            )
            .await
            .map_err(|e| BenchError::Arrange(format!("starting a job for {id}: {e}")))
    }

    fn object_created(&self, key: &str) -> Call {
        let text = fixtures::text("metadata-sync", "create")
            .replace(
                "deferred-data-123456789012-us-east-1",
                &self.env.names.data_bucket,
            )
            .replace("datasets/shop-42/2026-11/orders.ndjson", key);
        Call {
            event: fixtures::parse("metadata-sync", "create", &text),
            path: "new object",
            expect: Expect::NoBatchItemFailures,
        }
    }

    /// The request paths measured warm, per binary: each a first call (not counted) and the
    /// call repeated `warm` times (a new subject each time where the path needs one).
    pub fn warm_paths(binary: &str) -> Vec<&'static str> {
        match binary {
            FLOOR => vec!["hello"],
            "request-api" => vec!["done", "pending", "new subject"],
            "compute" => vec!["whole job"],
            "notifier" => vec!["completion"],
            "metadata-sync" => vec!["object again"],
            _ => vec![],
        }
    }

    /// The next call of a warm `path`.
    pub async fn warm_call(
        &mut self,
        binary: &str,
        path: &'static str,
    ) -> Result<Call, BenchError> {
        match (binary, path) {
            // compute's first cold start left DATA_SUBJECT done; a job in flight makes it pending.
            ("request-api", "done") => Ok(http_call(DATA_SUBJECT, "done", 200)),
            ("request-api", "pending") => Ok(http_call("bench-pending", "pending", 202)),
            ("request-api", "new subject") => {
                Ok(http_call(&self.unique("new"), "new subject", 202))
            }
            ("metadata-sync", "object again") => Ok(Call {
                path: "object again",
                ..self.object_created("datasets/bench-warm/orders.ndjson")
            }),
            _ => self.first_call(binary).await,
        }
    }

    /// One cold start of `binary`: a fresh process answering [`Bench::first_call`].
    pub async fn cold_start(&mut self, binary: &str) -> Result<ColdStart, BenchError> {
        let path = self.binary(binary)?;
        let env = self.process_env(binary);
        let call = self.first_call(binary).await?;
        let runtime = |source| BenchError::Runtime {
            binary: binary.to_owned(),
            source,
        };
        let mut process = FunctionProcess::spawn(&path, &env).await.map_err(runtime)?;
        let init = process.init_duration(self.timeout).await.map_err(runtime)?;
        let (answer, first_invocation) = process
            .invoke(call.event.clone(), self.timeout)
            .await
            .map_err(runtime)?;
        call.check(binary, &answer)?;
        let stats = process_stats(process.pid().expect("running"))?;
        process.stop().await;
        Ok(ColdStart {
            init,
            first_invocation,
            rss_kib: stats.rss_kib,
        })
    }

    /// What `binary` opens and connects to during its init, under strace: the files (shared
    /// libraries left out: every binary loads them) and the sockets it connects besides the
    /// runtime API's.
    pub async fn init_trace(&mut self, binary: &str, dir: &Path) -> Result<InitTrace, BenchError> {
        let path = self.binary(binary)?;
        let env = self.process_env(binary);
        let log = dir.join(format!("strace-{binary}.log"));
        let wrapper = [
            "strace",
            "-f",
            "-qq",
            "-e",
            "trace=open,openat,connect",
            "-o",
            &log.to_string_lossy(),
        ]
        .map(str::to_owned);
        let runtime = |source| BenchError::Runtime {
            binary: binary.to_owned(),
            source,
        };
        let mut process = FunctionProcess::spawn_wrapped(&wrapper, &path, &env)
            .await
            .map_err(runtime)?;
        process.init_duration(self.timeout).await.map_err(runtime)?;
        process.stop().await;
        Ok(InitTrace::parse(&std::fs::read_to_string(&log)?))
    }

    /// One process of `binary` on `path`: a first call, then `warm` more.
    pub async fn warm(
        &mut self,
        binary: &str,
        path: &'static str,
        warm: usize,
    ) -> Result<WarmRun, BenchError> {
        self.warm_observed(binary, path, warm, &[]).await
    }

    /// [`warm`](Self::warm) with `observer` (a program and its arguments, e.g. `perf record -g
    /// -o FILE`) attached to the process for the warm calls only: started with `-p <pid>` after
    /// the first call, interrupted (SIGINT, so it writes its file) after the last. An empty
    /// `observer` is [`warm`](Self::warm).
    pub async fn warm_observed(
        &mut self,
        binary: &str,
        path: &'static str,
        warm: usize,
        observer: &[String],
    ) -> Result<WarmRun, BenchError> {
        let exe = self.binary(binary)?;
        let env = self.process_env(binary);
        let runtime = |source| BenchError::Runtime {
            binary: binary.to_owned(),
            source,
        };
        if path == "pending" {
            // A job nothing computes: every request finds it pending (a second run finds the
            // first run's job, which is as good).
            self.start_job("bench-pending").await?;
        }
        let mut process = FunctionProcess::spawn(&exe, &env).await.map_err(runtime)?;
        let pid = process.pid().expect("running");
        let first = self.warm_call(binary, path).await?;
        let (answer, _) = process
            .invoke(first.event.clone(), self.timeout)
            .await
            .map_err(runtime)?;
        first.check(binary, &answer)?;
        let after_first = process_stats(pid)?;
        let observing = match observer.split_first() {
            Some((program, args)) => Some(Observer::attach(program, args, pid).await?),
            None => None,
        };
        let mut durations = Vec::with_capacity(warm);
        let mut cpu = Duration::ZERO;
        for _ in 0..warm {
            let call = self.warm_call(binary, path).await?;
            // Only the function's CPU during its invocation counts, not the harness's arranging.
            let before = process_stats(pid)?.cpu;
            let (answer, duration) = process
                .invoke(call.event.clone(), self.timeout)
                .await
                .map_err(runtime)?;
            cpu += process_stats(pid)?.cpu.saturating_sub(before);
            call.check(binary, &answer)?;
            durations.push(duration);
        }
        let after = process_stats(pid)?;
        if let Some(observing) = observing {
            observing.finish().await?;
        }
        process.stop().await;
        Ok(WarmRun {
            binary: binary.to_owned(),
            path,
            invocations: warm,
            rss_after_first_kib: after_first.rss_kib,
            rss_after_kib: after.rss_kib,
            anon_after_kib: after.anon_kib,
            file_after_kib: after.file_kib,
            peak_rss_kib: after.peak_rss_kib,
            cpu_per_invocation: cpu / warm.max(1) as u32,
            median_duration: median(&mut durations),
        })
    }
}

/// A profiler attached to a running process for as long as it is kept.
struct Observer {
    child: tokio::process::Child,
}

impl Observer {
    async fn attach(program: &str, args: &[String], pid: u32) -> Result<Self, BenchError> {
        let child = tokio::process::Command::new(program)
            .args(args)
            .args(["-p", &pid.to_string()])
            .kill_on_drop(true)
            .spawn()?;
        // perf has no "attached" signal; the calls made before it is are only not sampled.
        tokio::time::sleep(Duration::from_millis(500)).await;
        Ok(Self { child })
    }

    async fn finish(mut self) -> Result<(), BenchError> {
        if let Some(pid) = self.child.id() {
            std::process::Command::new("kill")
                .args(["-INT", &pid.to_string()])
                .status()?;
        }
        self.child.wait().await?;
        Ok(())
    }
}

/// The emulator's address, from `AWS_ENDPOINT_URL` (plain HTTP, as `scripts/moto.sh` sets it).
pub fn emulator_address() -> Result<std::net::SocketAddr, BenchError> {
    let endpoint = emulator::endpoint_from_env()
        .ok_or_else(|| BenchError::Arrange("AWS_ENDPOINT_URL is not set".into()))?;
    endpoint
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .map_err(|e| BenchError::Arrange(format!("the emulator's endpoint {endpoint}: {e}")))
}

fn subject(id: &str) -> SubjectId {
    SubjectId::parse(id).expect("a valid subject id")
}

/// request-api's `GET /v1/scores/{subject}` as API Gateway delivers it.
fn http_call(subject: &str, path: &'static str, status: u16) -> Call {
    let text = fixtures::text("request-api", "get-score").replace("shop-42", subject);
    Call {
        event: fixtures::parse("request-api", "get-score", &text),
        path,
        expect: Expect::HttpStatus(status),
    }
}

pub fn median(values: &mut [Duration]) -> Duration {
    values.sort();
    values.get(values.len() / 2).copied().unwrap_or_default()
}
