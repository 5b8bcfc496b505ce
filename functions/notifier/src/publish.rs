//! The one capability the handler needs from SNS, as a seam: the tests inject per-entry
//! rejections (which moto cannot be made to produce for well-formed messages) while the
//! accepted entries still go to the real topic.

use std::future::Future;

use shared::publisher::{BatchFailure, OutgoingMessage, Publisher};

/// Publishes up to one PublishBatch call's worth of messages; returns the entries SNS rejected.
/// An `Err` means the call failed as a whole and nothing of it was published.
pub trait PublishBatch: Send + Sync {
    fn publish_batch(
        &self,
        topic_arn: &str,
        messages: &[OutgoingMessage],
    ) -> impl Future<Output = Result<Vec<BatchFailure>, shared::Error>> + Send;
}

impl PublishBatch for Publisher {
    async fn publish_batch(
        &self,
        topic_arn: &str,
        messages: &[OutgoingMessage],
    ) -> Result<Vec<BatchFailure>, shared::Error> {
        Publisher::publish_batch(self, topic_arn, messages).await
    }
}
