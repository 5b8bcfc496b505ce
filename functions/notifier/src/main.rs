//! The notifier Lambda: configuration and clients once per cold start, then [`notifier::handle`].

use lambda_runtime::{service_fn, LambdaEvent};

// One thread: the function handles one event at a time and only waits on I/O; a
// multi-threaded runtime spent more CPU waking its workers than the work itself
// (docs/BENCHMARKS.md).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init();
    let sdk = shared::aws::sdk_config().await;
    let deps = notifier::Deps::from_env(&shared::config::Env::process(), &sdk)?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<_>| async {
        let request_id = event.context.request_id.clone();
        shared::telemetry::invocation(&request_id, Box::pin(notifier::handle(event, &deps))).await
    }))
    .await
}
