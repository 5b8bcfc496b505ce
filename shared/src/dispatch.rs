//! Publishing `compute.requested` for a job: the one way a job reaches compute, whether
//! request-api just created it, re-dispatched it, or an operator re-dispatched a stuck one
//! (`deferred-ops stuck-jobs --action redispatch`).

use crate::domain::{RequestReason, ScoreRecord};
use crate::events::ComputeRequested;
use crate::publisher::{OutgoingMessage, Publisher};
use crate::Error;

/// Publishes `compute.requested` for `record`'s job (same `job_id`, so a duplicate delivery finds
/// the job claimed or finished) on ComputeTopic; returns SNS's message id. Call it only after
/// the store's conditional write (`start_job` or `redispatch`) said this caller won.
pub async fn publish_compute_requested(
    publisher: &Publisher,
    compute_topic_arn: &str,
    record: &ScoreRecord,
    reason: RequestReason,
    trace_id: Option<&str>,
) -> Result<String, Error> {
    let event = ComputeRequested::new(
        record.subject_id.clone(),
        record.job_id,
        reason,
        record.requested_at,
        trace_id.map(str::to_owned),
    );
    let message = OutgoingMessage::compute_requested(&event)?;
    publisher.publish(compute_topic_arn, &message).await
}
