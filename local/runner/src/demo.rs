//! Demo data for `make dev`: 20 ordinary shops, one large and one risky, generated from a fixed
//! seed by the datagen dev crate, uploaded to the data bucket (so the upload also flows
//! through S3 -> MetadataQueue -> metadata-sync, as in AWS) and cataloged at once.

use datagen::{Profile, SubjectSpec};
use shared::domain::SubjectId;

use crate::Runner;

pub const DEMO_SEED: u64 = 42;

/// The demo subjects: `shop-1`..`shop-20`, `shop-big` (a few large gzip files), `shop-risky`.
pub fn subjects() -> Vec<SubjectSpec> {
    let id = |s: &str| SubjectId::parse(s).expect("valid demo id");
    let mut specs: Vec<SubjectSpec> = (1..=20)
        .map(|i| SubjectSpec::new(id(&format!("shop-{i}")), 200 + 37 * i, Profile::Normal))
        .collect();
    let mut big = SubjectSpec::new(id("shop-big"), 120_000, Profile::Normal);
    big.files = 4;
    big.gzip = true;
    specs.push(big);
    let mut risky = SubjectSpec::new(id("shop-risky"), 1_500, Profile::Chargebacks);
    risky.malformed_per_mille = 3;
    specs.push(risky);
    specs
}

pub async fn seed(runner: &Runner) -> Result<(), Box<dyn std::error::Error>> {
    let config = runner.names();
    let s3 = shared::aws::s3(&runner.sdk);
    let catalog = shared::catalog_store::CatalogStore::new(
        shared::aws::dynamodb(&runner.sdk),
        &config.catalog_table,
    );
    let seeded = datagen::seed(&s3, &catalog, &config.data_bucket, &subjects(), DEMO_SEED).await?;
    let rows: usize = seeded.iter().map(|s| s.rows).sum();
    let bytes: u64 = seeded.iter().map(|s| s.bytes).sum();
    tracing::info!(subjects = seeded.len(), rows, bytes, bucket = %config.data_bucket, "demo data seeded");
    // The uploads' S3 events reach metadata-sync too (as in AWS), which marks scores stale:
    // let it catch up so the first requests are not overtaken by the demo's own uploads.
    let queue = &runner.resources.queue("MetadataQueue").url;
    let sqs = aws_sdk_sqs::Client::new(&runner.sdk);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    while tokio::time::Instant::now() < deadline {
        let attributes = sqs
            .get_queue_attributes()
            .queue_url(queue)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(
                aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
            )
            .send()
            .await?
            .attributes
            .unwrap_or_default();
        if attributes.values().all(|v| v == "0") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    Ok(())
}
