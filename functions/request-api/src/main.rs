//! request-api Lambda binary: configuration and clients once per cold start, then lambda_http.

use lambda_http::{service_fn, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init();
    let sdk = shared::aws::sdk_config().await;
    let deps = request_api::Deps::from_env(&shared::config::Env::process(), &sdk)?;
    lambda_http::run(service_fn(|request| request_api::handle(request, &deps))).await
}
