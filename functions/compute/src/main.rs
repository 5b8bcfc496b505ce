//! The compute Lambda: configuration and clients once per cold start, then [`compute::handle`].

use lambda_runtime::{service_fn, LambdaEvent};

#[tokio::main]
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
