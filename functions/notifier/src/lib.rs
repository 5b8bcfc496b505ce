//! notifier: turns ScoresTable stream records into `score.completed` / `score.failed` events on
//! ScoreEventsTopic.
//!
//! Lambda invokes it with a DynamoDB stream batch, already narrowed by the event source
//! mapping's `FilterCriteria` to records whose new image is `done` or `failed`. The handler
//! still decides on its own ([`decide`]): the filter cannot compare the old image with the new
//! one, and a filter is configuration that can drift.
//!
//! | record | published |
//! |---|---|
//! | INSERT of a `done`/`failed` item (no old image) | yes |
//! | MODIFY into `done`/`failed` from another status or another job | yes |
//! | MODIFY of a finished item that stays finished for the same job (re-write, `stale` flip) | no |
//! | REMOVE (TTL deletion or delete: no new image) | no |
//! | new image `pending`/`running` | no |
//! | new image that is not a `ScoreRecord`, or cannot make a valid event (done without a result or with a score outside [0, 1], failed without an error) | no: logged with its sequence number, skipped |
//!
//! Publishing is SNS PublishBatch, chunk by chunk (at most 10 entries and 256 KiB a call). At the
//! first chunk that fails as a whole, or the first entry SNS rejects, the handler stops and
//! reports that record's sequence number as the batch item failure: Lambda checkpoints the
//! records before it and retries from it. Nothing is published twice within one invocation;
//! entries of the failing chunk that came after the rejected one were accepted by SNS and are
//! published again on the retry, so delivery is at least once (subscribers dedupe on
//! `job_id` + `type`).

pub mod config;
pub mod publish;

use aws_lambda_events::dynamodb::{Event, EventRecord};
use aws_lambda_events::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use serde_dynamo::AttributeValue;
use shared::config::{ConfigError, Env};
use shared::domain::{ScoreRecord, ScoreStatus};
use shared::events::ScoreEvent;
use shared::publisher::{BatchFailure, OutgoingMessage, Publisher};

pub use config::Config;
pub use publish::PublishBatch;

/// Longest error message carried in a `score.failed` event (bytes, cut at a character
/// boundary): the item may hold more, the event stays far below SNS's 256 KiB.
pub const MAX_ERROR_MESSAGE_BYTES: usize = 4096;

/// The notifier's failures. Publishing failures are not errors: they become batch item failures.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("record {index} of the batch failed to publish and has no sequence number to report")]
    NoSequenceNumber { index: usize },
    #[error("building the event message failed")]
    Message(#[source] shared::Error),
}

impl From<Error> for lambda_runtime::Diagnostic {
    fn from(error: Error) -> Self {
        lambda_runtime::Diagnostic {
            error_type: "notifier::Error".to_owned(),
            error_message: shared::error::chain(&error),
        }
    }
}

/// What the handler needs, built once per container.
pub struct Deps<P = Publisher> {
    pub publisher: P,
    /// ScoreEventsTopic.
    pub topic_arn: String,
}

impl Deps {
    /// The function's configuration read from `env` and its client built from `sdk`: how the
    /// Lambda binary (process environment), the local runner and the tests (the template's
    /// environment of NotifierFunction) all wire it.
    pub fn from_env(env: &Env, sdk: &aws_config::SdkConfig) -> Result<Self, ConfigError> {
        Ok(Self::new(&Config::from_env(env)?, sdk))
    }

    pub fn new(config: &Config, sdk: &aws_config::SdkConfig) -> Self {
        Self::with_publisher(
            Publisher::new(shared::aws::sns(sdk)),
            &config.score_events_topic_arn,
        )
    }
}

impl<P: PublishBatch> Deps<P> {
    /// Deps with another publisher (a test seam).
    pub fn with_publisher(publisher: P, topic_arn: impl Into<String>) -> Self {
        Self {
            publisher,
            topic_arn: topic_arn.into(),
        }
    }
}

/// The handler's verdict on one stream record.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// A transition into `done`/`failed`: publish this event.
    Publish(Box<ScoreEvent>),
    /// Nothing to announce.
    Skip(SkipReason),
    /// The new image claims to be finished but is not a valid `ScoreRecord`, or cannot make a
    /// valid event; it can never succeed, so it is logged and skipped.
    Undecodable(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// REMOVE (TTL or delete): there is no new image.
    NoNewImage,
    /// The new image is not `done`/`failed`.
    NotFinished,
    /// The old image already had this status for this job (a re-write, a `stale` flip).
    AlreadyFinished,
}

/// Decides whether a record announces a finished job.
pub fn decide(record: &EventRecord) -> Decision {
    let new = &record.change.new_image;
    if new.is_empty() {
        return Decision::Skip(SkipReason::NoNewImage);
    }
    let status = string_attribute(new, "status");
    let finished = [ScoreStatus::Done.as_str(), ScoreStatus::Failed.as_str()];
    if !status.is_some_and(|s| finished.contains(&s)) {
        return Decision::Skip(SkipReason::NotFinished);
    }
    let old = &record.change.old_image;
    if !old.is_empty()
        && string_attribute(old, "status") == status
        && string_attribute(old, "job_id") == string_attribute(new, "job_id")
    {
        return Decision::Skip(SkipReason::AlreadyFinished);
    }
    let decoded: ScoreRecord = match serde_dynamo::from_item(new.clone()) {
        Ok(r) => r,
        Err(e) => {
            let why = e.to_string();
            return Decision::Undecodable(shared::error::shorten(
                &why,
                shared::error::MAX_ERROR_CHARS,
            ));
        }
    };
    if let Some(why) = breaks_the_event_contract(&decoded) {
        return Decision::Undecodable(why);
    }
    match ScoreEvent::from_record(&decoded) {
        Some(mut event) => {
            if let Some(error) = event.error.as_mut() {
                truncate_at_char_boundary(&mut error.message, MAX_ERROR_MESSAGE_BYTES);
            }
            Decision::Publish(Box::new(event))
        }
        // Unreachable while the raw status check above agrees with ScoreStatus; kept total.
        None => Decision::Skip(SkipReason::NotFinished),
    }
}

/// Why a finished record cannot make the event docs/ARCHITECTURE.md promises (`score.completed`
/// with a score in [0, 1], `score.failed` with an error), if it cannot.
fn breaks_the_event_contract(record: &ScoreRecord) -> Option<String> {
    match (record.status, &record.result, &record.error) {
        (ScoreStatus::Done, None, _) => Some("a done record without a result".to_owned()),
        // DynamoDB stores no NaN or infinity, but number strings such as "1e400" or "NaN" read
        // as one, and an event would carry it as `null`.
        (ScoreStatus::Done, Some(result), _) if !(0.0..=1.0).contains(&result.score) => {
            Some(format!("score {} is not a number in [0, 1]", result.score))
        }
        (ScoreStatus::Failed, _, None) => Some("a failed record without an error".to_owned()),
        _ => None,
    }
}

fn string_attribute<'a>(item: &'a serde_dynamo::Item, name: &str) -> Option<&'a str> {
    match item.get(name) {
        Some(AttributeValue::S(s)) => Some(s),
        _ => None,
    }
}

fn truncate_at_char_boundary(text: &mut String, max: usize) {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
}

/// One message to publish and the record it came from.
struct Pending {
    /// The event's type: the `type` label of the EventsPublished metric.
    kind: &'static str,
    index: usize,
    sequence_number: Option<String>,
    message: OutgoingMessage,
}

/// The stream batch handler: publishes the transitions, reports the first record that could
/// not be published.
pub async fn handle<P: PublishBatch>(
    event: lambda_runtime::LambdaEvent<Event>,
    deps: &Deps<P>,
) -> Result<DynamoDbEventResponse, Error> {
    let records = &event.payload.records;
    let (pending, tally) = transitions(records)?;
    let (published, stopped_at) = publish_in_order(&pending, deps).await?;
    for sent in &pending[..published] {
        metrics::counter!("EventsPublished", "type" => sent.kind).increment(1);
    }
    metrics::counter!("EventsFailed").increment((pending.len() - published) as u64);
    metrics::counter!("RecordsUndecodable").increment(tally.undecodable as u64);
    let mut response = DynamoDbEventResponse::default();
    if let Some(identifier) = stopped_at {
        let mut item = DynamoDbBatchItemFailure::default();
        item.item_identifier = Some(identifier);
        response.batch_item_failures.push(item);
    }
    tracing::info!(
        records = records.len(),
        published,
        skipped = tally.skipped,
        undecodable = tally.undecodable,
        failed = response.batch_item_failures.len(),
        "stream batch handled"
    );
    Ok(response)
}

/// Records that were not published, by why.
#[derive(Debug, Default)]
struct Tally {
    skipped: usize,
    undecodable: usize,
}

/// The messages to publish, in stream order: one per transition into done/failed.
fn transitions(records: &[EventRecord]) -> Result<(Vec<Pending>, Tally), Error> {
    let mut pending = Vec::new();
    let mut tally = Tally::default();
    for (index, record) in records.iter().enumerate() {
        let sequence_number = record.change.sequence_number.clone();
        match decide(record) {
            Decision::Publish(score_event) => {
                let message = OutgoingMessage::score_event(
                    entry_id(sequence_number.as_deref(), index),
                    &score_event,
                )
                .map_err(Error::Message)?;
                tracing::info!(
                    sequence_number = sequence_number.as_deref(),
                    subject_id = %score_event.subject_id,
                    job_id = %score_event.job_id,
                    kind = %score_event.kind,
                    trace_id = score_event.trace_id.as_deref(),
                    "transition to publish"
                );
                pending.push(Pending {
                    kind: score_event.kind.as_str(),
                    index,
                    sequence_number,
                    message,
                });
            }
            Decision::Skip(reason) => {
                tally.skipped += 1;
                tracing::debug!(
                    sequence_number = sequence_number.as_deref(),
                    ?reason,
                    "record skipped"
                );
            }
            Decision::Undecodable(error) => {
                tally.undecodable += 1;
                tracing::error!(
                    sequence_number = sequence_number.as_deref(),
                    event_id = %record.event_id,
                    error = %error,
                    "finished record cannot be decoded as a ScoreRecord; skipped (it can never succeed)"
                );
            }
        }
    }
    Ok((pending, tally))
}

/// Publishes chunk after chunk and stops at the first message SNS did not take. Returns how
/// many were published and the sequence number of the first record not published (Lambda then
/// retries the batch from it, so events keep their order).
async fn publish_in_order<P: PublishBatch>(
    pending: &[Pending],
    deps: &Deps<P>,
) -> Result<(usize, Option<String>), Error> {
    let mut published = 0usize;
    for chunk in chunks(pending) {
        let messages: Vec<OutgoingMessage> = chunk.iter().map(|p| p.message.clone()).collect();
        let first_failed = match deps
            .publisher
            .publish_batch(&deps.topic_arn, &messages)
            .await
        {
            Ok(failures) if failures.is_empty() => {
                published += chunk.len();
                continue;
            }
            Ok(failures) => {
                published += chunk.len() - failures.len();
                first_rejected(chunk, &failures)
            }
            Err(error) => {
                tracing::warn!(error = %shared::error::chain(&error), retryable = error.is_retryable(), "PublishBatch failed");
                0
            }
        };
        let failed = &chunk[first_failed];
        let identifier = failed
            .sequence_number
            .clone()
            .ok_or(Error::NoSequenceNumber {
                index: failed.index,
            })?;
        tracing::warn!(
            sequence_number = %identifier,
            "stopping at the first record not published; Lambda retries from it"
        );
        return Ok((published, Some(identifier)));
    }
    Ok((published, None))
}

/// The position in `chunk` of the first entry SNS rejected (0 when it named none of ours).
fn first_rejected(chunk: &[Pending], failures: &[BatchFailure]) -> usize {
    for failure in failures {
        tracing::warn!(
            entry = %failure.id,
            code = %failure.code,
            sender_fault = failure.sender_fault,
            "SNS rejected an event"
        );
    }
    failures
        .iter()
        .filter_map(|f| chunk.iter().position(|p| p.message.id == f.id))
        .min()
        .unwrap_or(0)
}

/// SNS batch entry ids: 1..=80 characters of `[A-Za-z0-9_-]`, unique in a call. A DynamoDB
/// sequence number (digits, unique in a shard) is one; anything else falls back to the index.
fn entry_id(sequence_number: Option<&str>, index: usize) -> String {
    match sequence_number {
        Some(seq)
            if !seq.is_empty()
                && seq.len() <= 80
                && seq
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
        {
            seq.to_owned()
        }
        _ => format!("record-{index}"),
    }
}

/// PublishBatch limits: 10 entries, and 256 KiB for all messages and their attributes together.
const BATCH_MAX_ENTRIES: usize = shared::publisher::PUBLISH_BATCH_MAX;
const BATCH_MAX_BYTES: usize = 256 * 1024;

fn message_size(message: &OutgoingMessage) -> usize {
    message.body.len()
        + message
            .attributes
            .iter()
            .map(|(name, value)| name.len() + "String".len() + value.len())
            .sum::<usize>()
}

/// Consecutive chunks within PublishBatch's limits (a single oversized message gets a chunk of
/// its own, and SNS rejects it).
fn chunks(pending: &[Pending]) -> Vec<&[Pending]> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut bytes = 0;
    for (i, p) in pending.iter().enumerate() {
        let size = message_size(&p.message);
        if i > start && (i - start == BATCH_MAX_ENTRIES || bytes + size > BATCH_MAX_BYTES) {
            out.push(&pending[start..i]);
            start = i;
            bytes = 0;
        }
        bytes += size;
    }
    if start < pending.len() {
        out.push(&pending[start..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(sizes: &[usize]) -> Vec<Pending> {
        sizes
            .iter()
            .enumerate()
            .map(|(index, size)| Pending {
                kind: "score.completed",
                index,
                sequence_number: Some(index.to_string()),
                message: OutgoingMessage {
                    id: index.to_string(),
                    body: "x".repeat(*size),
                    attributes: vec![],
                },
            })
            .collect()
    }

    #[test]
    fn chunks_hold_at_most_ten_entries() {
        let p = pending(&[10; 23]);
        let lens: Vec<usize> = chunks(&p).iter().map(|c| c.len()).collect();
        assert_eq!(lens, vec![10, 10, 3]);
        assert!(chunks(&[]).is_empty());
    }

    #[test]
    fn chunks_stay_under_the_batch_byte_limit() {
        let p = pending(&[100 * 1024, 100 * 1024, 100 * 1024, 300 * 1024, 1]);
        let lens: Vec<usize> = chunks(&p).iter().map(|c| c.len()).collect();
        assert_eq!(lens, vec![2, 1, 1, 1]);
    }

    #[test]
    fn entry_ids_are_sequence_numbers_when_sns_accepts_them() {
        assert_eq!(
            entry_id(Some("4421584500000000017450439091"), 3),
            "4421584500000000017450439091"
        );
        assert_eq!(entry_id(None, 3), "record-3");
        assert_eq!(entry_id(Some("a.b"), 4), "record-4");
        assert_eq!(entry_id(Some(&"9".repeat(81)), 5), "record-5");
    }

    #[test]
    fn long_error_messages_are_cut_at_a_character_boundary() {
        let mut text = "é".repeat(10);
        truncate_at_char_boundary(&mut text, 5);
        assert_eq!(text, "éé");
        let mut short = "ok".to_owned();
        truncate_at_char_boundary(&mut short, 5);
        assert_eq!(short, "ok");
    }
}
