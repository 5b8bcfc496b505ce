//! metadata-sync: MetadataQueue (S3 event notifications) -> CatalogTable. See the crate doc.

use lambda_runtime::service_fn;
use metadata_sync::{handle, Deps};
use shared::Config;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init();
    let config = Config::from_env()?;
    let deps = Deps::new(&config, &shared::aws::sdk_config().await);
    lambda_runtime::run(service_fn(|event| handle(event, &deps))).await
}
