//! The compute Lambda: config and clients once per cold start, then [`compute::handle`].
use lambda_runtime::service_fn;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init();
    let config = shared::Config::from_env()?;
    let deps = compute::Deps::new(&config, &shared::aws::sdk_config().await)?;
    lambda_runtime::run(service_fn(|event| compute::handle(event, &deps))).await
}
