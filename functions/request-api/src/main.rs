//! request-api Lambda binary: configuration and clients once per cold start, then lambda_http.

use lambda_http::{service_fn, Error, Request, RequestExt};

// One thread: the function handles one request at a time and only waits on I/O; a
// multi-threaded runtime spent more CPU waking its workers than the request itself
// (docs/BENCHMARKS.md).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    shared::telemetry::init();
    let sdk = shared::aws::sdk_config().await;
    let deps = request_api::Deps::from_env(&shared::config::Env::process(), &sdk)?;
    lambda_http::run(service_fn(|request: Request| async {
        let request_id = request
            .lambda_context_ref()
            .map(|context| context.request_id.clone())
            .unwrap_or_default();
        shared::telemetry::invocation(&request_id, Box::pin(request_api::handle(request, &deps)))
            .await
    }))
    .await
}
