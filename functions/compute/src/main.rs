//! The compute Lambda: configuration and clients once per cold start, then [`compute::handle`].

use lambda_runtime::{service_fn, LambdaEvent};

// One thread for the I/O: parsing runs on tokio's blocking threads (spawn_blocking) either way,
// and a multi-threaded runtime spent more CPU waking its workers than the I/O itself
// (docs/BENCHMARKS.md).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init();
    let sdk = shared::aws::sdk_config().await;
    let deps = compute::Deps::from_env(&shared::config::Env::process(), &sdk)?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<_>| async {
        let request_id = event.context.request_id.clone();
        shared::telemetry::invocation(&request_id, Box::pin(compute::handle(event, &deps))).await
    }))
    .await
}
