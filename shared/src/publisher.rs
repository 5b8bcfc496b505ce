//! Publishing events to SNS with message attributes (for subscription filter policies).

use aws_sdk_sns::types::{MessageAttributeValue, PublishBatchRequestEntry};

use crate::events::{ComputeRequested, EventType, ScoreEvent};
use crate::Error;

/// SNS PublishBatch takes at most 10 entries a call.
pub const PUBLISH_BATCH_MAX: usize = 10;

/// SNS's size limit for one message, and for all the messages of one PublishBatch together:
/// 256 KiB, message attributes (names, data types and values) included.
pub const MAX_PAYLOAD_BYTES: usize = 262_144;

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
            attributes: vec![("type", EventType::ComputeRequested.as_str().to_owned())],
        })
    }

    pub fn score_event(id: impl Into<String>, event: &ScoreEvent) -> Result<Self, Error> {
        Ok(Self {
            id: id.into(),
            body: serde_json::to_string(event)?,
            attributes: event.attributes(),
        })
    }

    /// The size SNS counts against [`MAX_PAYLOAD_BYTES`].
    pub fn payload_bytes(&self) -> usize {
        self.body.len()
            + self
                .attributes
                .iter()
                .map(|(name, value)| name.len() + "String".len() + value.len())
                .sum::<usize>()
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
        check_sizes(std::slice::from_ref(message))?;
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

    /// Publishes in calls of at most 10 messages and 256 KiB, and returns the entries SNS
    /// rejected (in input order). A call that fails as a whole is an `Err`; messages of earlier
    /// calls were published by then. A message over 256 KiB fails the whole batch before
    /// anything is published.
    pub async fn publish_batch(
        &self,
        topic_arn: &str,
        messages: &[OutgoingMessage],
    ) -> Result<Vec<BatchFailure>, Error> {
        check_sizes(messages)?;
        let mut failures = Vec::new();
        for chunk in batches(messages) {
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

/// Refuses a message SNS would refuse for its size, naming it.
fn check_sizes(messages: &[OutgoingMessage]) -> Result<(), Error> {
    match messages
        .iter()
        .find(|m| m.payload_bytes() > MAX_PAYLOAD_BYTES)
    {
        Some(m) => Err(Error::TooLarge {
            what: format!("SNS message {}", m.id),
            bytes: m.payload_bytes(),
            limit: MAX_PAYLOAD_BYTES,
        }),
        None => Ok(()),
    }
}

/// Consecutive runs of at most [`PUBLISH_BATCH_MAX`] messages and [`MAX_PAYLOAD_BYTES`] in all.
fn batches(messages: &[OutgoingMessage]) -> Vec<&[OutgoingMessage]> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, message) in messages.iter().enumerate() {
        let size = message.payload_bytes();
        if i > start && (i - start == PUBLISH_BATCH_MAX || bytes + size > MAX_PAYLOAD_BYTES) {
            out.push(&messages[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += size;
    }
    if start < messages.len() {
        out.push(&messages[start..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(id: usize, body_bytes: usize) -> OutgoingMessage {
        OutgoingMessage {
            id: id.to_string(),
            body: "x".repeat(body_bytes),
            attributes: vec![("type", "score.completed".into())],
        }
    }

    fn sizes(batches: &[&[OutgoingMessage]]) -> Vec<usize> {
        batches.iter().map(|b| b.len()).collect()
    }

    #[test]
    fn batches_hold_at_most_ten_messages() {
        let messages: Vec<_> = (0..23).map(|i| message(i, 100)).collect();
        assert_eq!(sizes(&batches(&messages)), [10, 10, 3]);
        assert!(batches(&[]).is_empty());
    }

    #[test]
    fn batches_hold_at_most_256_kib_in_all() {
        // 100 KiB each: two fit in one call, a third would pass 256 KiB.
        let messages: Vec<_> = (0..5).map(|i| message(i, 100 * 1024)).collect();
        let got = batches(&messages);
        assert_eq!(sizes(&got), [2, 2, 1]);
        for batch in got {
            let total: usize = batch.iter().map(OutgoingMessage::payload_bytes).sum();
            assert!(total <= MAX_PAYLOAD_BYTES, "{total}");
        }
    }

    #[test]
    fn a_message_over_256_kib_is_refused_by_name() {
        let limit = MAX_PAYLOAD_BYTES - message(0, 0).payload_bytes();
        assert!(check_sizes(&[message(1, limit)]).is_ok());
        let err = check_sizes(&[message(1, 10), message(2, limit + 1)]).unwrap_err();
        assert!(matches!(err, Error::TooLarge { ref what, .. } if what == "SNS message 2"));
        assert!(!err.is_retryable());
    }
}
