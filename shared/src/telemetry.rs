//! Logs and metrics as operators of a Lambda function expect them (what Powertools gives other
//! runtimes), from well-kept crates:
//!
//! - **Logs**: with `AWS_LAMBDA_LOG_FORMAT=JSON` (the template's `LogFormat: JSON`), one flat JSON
//!   object per line (json-subscriber): `timestamp`, `level`, `function`, `message`, the event's
//!   fields, and the fields of every enclosing span at the top level: the runtime's `requestId`
//!   and `xrayTraceId`, [`invocation`]'s `cold_start`, and the handlers' `job_id`, `subject_id`
//!   and `trace_id`. Span and event field names must not repeat one another (a repeated key
//!   would make the line invalid JSON); `a_log_line_is_flat_json_with_every_context_field` checks
//!   the shape. Otherwise (the local runner, a terminal) tracing's text format.
//! - **Metrics**: CloudWatch embedded metric format (EMF) through the `metrics` facade
//!   (metrics_cloudwatch_embedded): namespace [`NAMESPACE`], the dimension `Function` (the Lambda
//!   function's name, unique per stack, so stacks sharing an account stay apart) plus each
//!   metric's own low-cardinality labels (never a subject id), written to stdout after every
//!   invocation by [`invocation`].
//!   Without [`init`] (tests, the local runner) the `metrics` macros record nothing.

use std::future::Future;
use std::io::Write;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

use lambda_runtime::tracing::subscriber::filter::{EnvFilter, LevelFilter};
use lambda_runtime::tracing::subscriber::fmt::MakeWriter;
use lambda_runtime::tracing::subscriber::layer::SubscriberExt;
use lambda_runtime::tracing::subscriber::util::SubscriberInitExt;
use lambda_runtime::tracing::subscriber::Registry;
use metrics_cloudwatch_embedded::Collector;
use tracing::Instrument;

/// The CloudWatch namespace of every metric.
pub const NAMESPACE: &str = "Deferred";
/// The metric counted once per process, on its first invocation.
pub const COLD_START_METRIC: &str = "ColdStart";

static COLLECTOR: OnceLock<&'static Collector> = OnceLock::new();
static COLD_START: AtomicBool = AtomicBool::new(true);

/// Logs and metrics for a Lambda function, once at cold start (main.rs). Outside Lambda (no
/// `AWS_LAMBDA_FUNCTION_NAME`: the local runner, which plays every function in one process and
/// names each in its invocation span) no `function` field and no metrics.
pub fn init() {
    let function = std::env::var("AWS_LAMBDA_FUNCTION_NAME").ok();
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    if json {
        json_subscriber(function.as_deref(), std::io::stdout).init();
    } else {
        lambda_runtime::tracing::init_default_subscriber();
    }
    let Some(function) = function else { return };
    if let Err(err) = init_metrics(NAMESPACE, &function) {
        tracing::warn!(error = %err, "metrics are off");
    }
}

/// The log level: `AWS_LAMBDA_LOG_LEVEL` (Lambda's advanced logging controls), else `RUST_LOG`,
/// else INFO.
fn level() -> LevelFilter {
    std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .ok()
        .and_then(|level| LevelFilter::from_str(&level).ok())
        .unwrap_or(LevelFilter::INFO)
}

/// The flat JSON log format, written to `writer`, with a `function` field on every line when
/// the process is one function.
pub fn json_subscriber<W>(
    function: Option<&str>,
    writer: W,
) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'writer> MakeWriter<'writer> + Send + Sync + 'static,
{
    let mut layer = json_subscriber::JsonLayer::new(writer);
    layer
        .with_timer(
            "timestamp",
            lambda_runtime::tracing::subscriber::fmt::time::SystemTime,
        )
        .with_level("level")
        .with_flattened_event()
        .with_top_level_flattened_span_list();
    if let Some(function) = function {
        layer.add_static_field("function", function.into());
    }
    let filter = EnvFilter::builder()
        .with_default_directive(level().into())
        .from_env_lossy();
    Registry::default().with(filter).with(layer)
}

/// Installs the EMF recorder (once per process; later calls return the first collector).
pub fn init_metrics(
    namespace: &str,
    function: &str,
) -> Result<&'static Collector, metrics_cloudwatch_embedded::Error> {
    if let Some(collector) = COLLECTOR.get() {
        return Ok(collector);
    }
    let collector = metrics_cloudwatch_embedded::Builder::new()
        .cloudwatch_namespace(namespace.to_owned())
        .with_dimension("Function", function.to_owned())
        .init()?;
    Ok(COLLECTOR.get_or_init(|| collector))
}

/// Writes the metrics recorded since the last flush as EMF documents (one JSON object per line
/// and label set), tagged with the invocation's request id.
pub fn flush_metrics(request_id: &str, writer: impl Write) {
    if let Some(collector) = COLLECTOR.get() {
        if let Err(err) = collector
            .set_property("requestId", request_id)
            .flush(writer)
        {
            tracing::warn!(error = %err, "metrics could not be written");
        }
    }
}

/// Runs one invocation: `cold_start` on its log lines, the ColdStart metric on the first, and
/// the invocation's metrics flushed to stdout when it ends.
pub async fn invocation<F: Future>(request_id: &str, work: F) -> F::Output {
    invocation_to(request_id, work, || std::io::stdout().lock()).await
}

/// [`invocation`], with the metrics written to `output()`.
async fn invocation_to<F: Future, W: Write>(
    request_id: &str,
    work: F,
    output: impl FnOnce() -> W,
) -> F::Output {
    let cold_start = COLD_START.swap(false, Ordering::Relaxed);
    if cold_start {
        metrics::counter!(COLD_START_METRIC).increment(1);
    }
    let result = work
        .instrument(tracing::info_span!("invocation", cold_start))
        .await;
    flush_metrics(request_id, output());
    result
}

#[cfg(test)]
mod tests {
    use emulator::capture::CapturedLogs;

    use super::*;

    /// The only test of this binary that records metrics (the recorder is per process).
    #[tokio::test]
    async fn the_first_invocation_counts_a_cold_start_and_every_one_flushes_its_metrics() {
        init_metrics("Deferred", "deferred-test").unwrap();
        let first = CapturedLogs::default();
        let second = CapturedLogs::default();
        let answer = invocation_to("req-1", async { 7 }, || first.clone()).await;
        assert_eq!(answer, 7);
        invocation_to(
            "req-2",
            async { metrics::counter!("Widgets", "kind" => "blue").increment(2) },
            || second.clone(),
        )
        .await;
        let first = emulator::emf::Emf::parse(&first.bytes()).unwrap();
        let second = emulator::emf::Emf::parse(&second.bytes()).unwrap();
        assert_eq!(first.total(COLD_START_METRIC, &[]), Some(1.0));
        assert_eq!(first.documents[0]["requestId"], "req-1");
        assert_eq!(first.documents[0]["Function"], "deferred-test");
        assert_eq!(second.total(COLD_START_METRIC, &[]), None);
        assert_eq!(second.total("Widgets", &[("kind", "blue")]), Some(2.0));
        assert_eq!(second.documents[0]["requestId"], "req-2");
    }

    #[test]
    fn a_log_line_is_flat_json_with_every_context_field() {
        let buffer = CapturedLogs::default();
        let subscriber = json_subscriber(Some("deferred-compute"), buffer.clone());
        tracing::subscriber::with_default(subscriber, || {
            // As lambda_runtime names the fields of its span.
            let runtime = tracing::info_span!(
                "Lambda runtime invoke",
                requestId = "req-1",
                xrayTraceId = "Root=1-abc"
            );
            let _runtime = runtime.enter();
            let invocation = tracing::info_span!("invocation", cold_start = true);
            let _invocation = invocation.enter();
            let job = tracing::info_span!("job", job_id = "01J", subject_id = "shop-1");
            let _job = job.enter();
            tracing::info!(rows = 3, "job done");
        });
        let lines = buffer.lines();
        assert_eq!(lines.len(), 1);
        let line = &lines[0];
        assert_eq!(line["function"], "deferred-compute");
        assert_eq!(line["level"], "INFO");
        assert_eq!(line["message"], "job done");
        assert_eq!(line["requestId"], "req-1");
        assert_eq!(line["xrayTraceId"], "Root=1-abc");
        assert_eq!(line["cold_start"], true);
        assert_eq!(line["job_id"], "01J");
        assert_eq!(line["subject_id"], "shop-1");
        assert_eq!(line["rows"], 3);
        let timestamp = line["timestamp"].as_str().unwrap();
        assert!(
            chrono::DateTime::parse_from_rfc3339(timestamp).is_ok(),
            "{timestamp}"
        );
    }
}
