//! Publishing events to SNS with message attributes (for subscription filter policies).

use aws_sdk_sns::types::{MessageAttributeValue, PublishBatchRequestEntry};

use crate::events::{ComputeRequested, ScoreEvent, COMPUTE_REQUESTED};
use crate::Error;

/// SNS PublishBatch takes at most 10 entries a call.
pub const PUBLISH_BATCH_MAX: usize = 10;

/// A message ready to publish: the body and its string attributes. `id` is unique within a
/// batch and comes back in [`BatchFailure`].
#[derive(Debug, Clone, PartialEq)]
pub struct OutgoingMessage {
    pub id: String,
    pub body: String,
    pub attributes: Vec<(&'static str, String)>,
}

impl OutgoingMessage {
    pub fn compute_requested(event: &ComputeRequested) -> Result<Self, Error> {
        Ok(Self {
            id: event.job_id.to_string(),
            body: serde_json::to_string(event)?,
            attributes: vec![("type", COMPUTE_REQUESTED.to_owned())],
        })
    }

    pub fn score_event(id: impl Into<String>, event: &ScoreEvent) -> Result<Self, Error> {
        Ok(Self {
            id: id.into(),
            body: serde_json::to_string(event)?,
            attributes: event.attributes(),
        })
    }

    fn sns_attributes(
        &self,
    ) -> Result<std::collections::HashMap<String, MessageAttributeValue>, Error> {
        self.attributes
            .iter()
            .map(|(name, value)| {
                MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value(value)
                    .build()
                    .map(|v| ((*name).to_owned(), v))
                    .map_err(|source| Error::Build {
                        service: "SNS",
                        source,
                    })
            })
            .collect()
    }
}

/// One entry of a PublishBatch that SNS did not accept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchFailure {
    pub id: String,
    pub code: String,
    /// SNS's own word on whether the failure was the sender's fault.
    pub sender_fault: bool,
}

#[derive(Clone, Debug)]
pub struct Publisher {
    client: aws_sdk_sns::Client,
}

impl Publisher {
    pub fn new(client: aws_sdk_sns::Client) -> Self {
        Self { client }
    }

    /// Publishes one message; returns SNS's message id.
    pub async fn publish(
        &self,
        topic_arn: &str,
        message: &OutgoingMessage,
    ) -> Result<String, Error> {
        let output = self
            .client
            .publish()
            .topic_arn(topic_arn)
            .message(&message.body)
            .set_message_attributes(Some(message.sns_attributes()?))
            .send()
            .await
            .map_err(|e| Error::aws("SNS", "Publish", e))?;
        Ok(output.message_id.unwrap_or_default())
    }

    /// Publishes in chunks of 10 and returns the entries SNS rejected (in input order). A call
    /// that fails as a whole is an `Err`; messages of earlier chunks were published by then.
    pub async fn publish_batch(
        &self,
        topic_arn: &str,
        messages: &[OutgoingMessage],
    ) -> Result<Vec<BatchFailure>, Error> {
        let mut failures = Vec::new();
        for chunk in messages.chunks(PUBLISH_BATCH_MAX) {
            let entries = chunk
                .iter()
                .map(|m| {
                    PublishBatchRequestEntry::builder()
                        .id(&m.id)
                        .message(&m.body)
                        .set_message_attributes(Some(m.sns_attributes()?))
                        .build()
                        .map_err(|source| Error::Build {
                            service: "SNS",
                            source,
                        })
                })
                .collect::<Result<Vec<_>, _>>()?;
            let output = self
                .client
                .publish_batch()
                .topic_arn(topic_arn)
                .set_publish_batch_request_entries(Some(entries))
                .send()
                .await
                .map_err(|e| Error::aws("SNS", "PublishBatch", e))?;
            let mut failed: Vec<BatchFailure> = output
                .failed
                .unwrap_or_default()
                .into_iter()
                .map(|f| BatchFailure {
                    id: f.id,
                    code: f.code,
                    sender_fault: f.sender_fault,
                })
                .collect();
            let position = |id: &str| chunk.iter().position(|m| m.id == id);
            failed.sort_by_key(|f| position(&f.id));
            failures.extend(failed);
        }
        Ok(failures)
    }
}
