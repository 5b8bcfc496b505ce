//! request-api Lambda binary: config and clients once per cold start, then lambda_http.

use lambda_http::{service_fn, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init();
    let config = shared::Config::from_env()?;
    let deps = request_api::Deps::new(&config, &shared::aws::sdk_config().await);
    lambda_http::run(service_fn(|request| request_api::handle(request, &deps))).await
}
