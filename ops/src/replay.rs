//! `replay-notifier-failures`: republishes the score events of the stream batches notifier gave
//! up on.
//!
//! When notifier's retries or record age run out, Lambda sends NotifierFailureQueue a description
//! of the batch, not its records: `DDBStreamBatchInfo` with the stream, the shard and the first
//! and last sequence numbers. For each such message this command reads that range again
//! (GetShardIterator `AT_SEQUENCE_NUMBER`, then GetRecords until past the last sequence number)
//! and hands the records to notifier's own handler, which decides what to publish exactly as it
//! did live (only transitions into `done`/`failed`) and publishes through the same publisher.
//!
//! "What is missing" is the whole range: SNS does not say which of its events subscribers got
//! (notifier may have published some before it failed), and events carry no id of their own, so
//! every transition in the range is published again. That is safe because delivery is at least
//! once anyway: subscribers deduplicate on `job_id` + `type`.
//!
//! A message is deleted only after its whole range was published. A range that can no longer be
//! read (stream records expire after 24 hours; the shard or its records are gone), or that
//! notifier could not publish entirely, is reported and its message left on the queue (visible
//! again at once), so the alarm stays and nothing is dropped silently.

use std::cmp::Ordering;
use std::collections::HashSet;
use std::time::Duration;

use aws_lambda_events::dynamodb::{Event, EventRecord};
use aws_sdk_dynamodbstreams::operation::get_records::GetRecordsError;
use aws_sdk_dynamodbstreams::operation::get_shard_iterator::GetShardIteratorError;
use aws_sdk_dynamodbstreams::types::ShardIteratorType;
use serde::{Deserialize, Serialize};
use shared::publisher::Publisher;

use crate::{Clients, Error};

/// GetRecords returns at most 1000 records a call.
const GET_RECORDS_MAX: i32 = 1000;
/// Empty GetRecords answers in a row before a range whose end was not reached is reported
/// incomplete (an open shard may answer empty before later records).
const EMPTY_POLLS_MAX: usize = 5;
/// How long a received failure message stays invisible to others while its range is replayed.
const VISIBILITY_TIMEOUT_SECONDS: i32 = 300;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// NotifierFailureQueue's URL (the stack's NotifierFailureQueueUrl output)
    #[arg(long, env = "NOTIFIER_FAILURE_QUEUE_URL")]
    pub failure_queue_url: String,
    /// ScoreEventsTopic's ARN
    #[arg(long, env = "SCORE_EVENTS_TOPIC_ARN")]
    pub score_events_topic_arn: String,
    /// Handle at most this many failure messages
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub max_messages: usize,
    /// Read the ranges and count their events; publish nothing, delete nothing
    #[arg(long)]
    pub dry_run: bool,
}

/// Lambda's record of a stream batch that went to the on-failure destination (the fields used).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct FailureRecord {
    #[serde(rename = "DDBStreamBatchInfo")]
    pub batch: BatchInfo,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchInfo {
    pub shard_id: String,
    pub start_sequence_number: String,
    pub end_sequence_number: String,
    pub stream_arn: String,
    #[serde(default)]
    pub batch_size: Option<u64>,
}

/// What became of one failure message.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "outcome", content = "detail")]
pub enum Outcome {
    /// Every transition of the range was published; the message was deleted.
    Replayed,
    /// `--dry-run`: read, nothing published or deleted.
    Read,
    /// The range cannot be read any more (expired, or the shard is gone); message kept.
    Unreadable(String),
    /// notifier could not publish the whole range (SNS refused); message kept.
    NotPublished(String),
    /// The message is not Lambda's stream failure record; kept.
    NotAFailureRecord(String),
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Range {
    pub message_id: String,
    pub batch: Option<BatchInfo>,
    /// Stream records read in the range.
    pub records: usize,
    /// Transitions into done/failed among them: the events (re)published.
    pub events: usize,
    #[serde(flatten)]
    pub outcome: Outcome,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub dry_run: bool,
    pub ranges: Vec<Range>,
}

impl Report {
    /// A range left on the queue for a reason a rerun cannot fix by itself.
    pub fn needs_attention(&self) -> bool {
        self.ranges
            .iter()
            .any(|r| !matches!(r.outcome, Outcome::Replayed | Outcome::Read))
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{} failure message(s){}",
            self.ranges.len(),
            if self.dry_run { "; dry run" } else { "" }
        )?;
        for range in &self.ranges {
            let span = range.batch.as_ref().map_or_else(String::new, |b| {
                format!(
                    " shard {} {}..{}",
                    b.shard_id, b.start_sequence_number, b.end_sequence_number
                )
            });
            writeln!(
                f,
                "  {}{span}: {} record(s), {} event(s): {:?}",
                range.message_id, range.records, range.events, range.outcome
            )?;
        }
        Ok(())
    }
}

pub async fn run(args: &Args, clients: &Clients) -> Result<Report, Error> {
    let deps = notifier::Deps::with_publisher(
        Publisher::new(clients.sns.clone()),
        &args.score_events_topic_arn,
    );
    let mut ranges = Vec::new();
    let mut seen = HashSet::new();
    let mut kept = Vec::new();
    while ranges.len() < args.max_messages {
        let received = clients
            .sqs
            .receive_message()
            .queue_url(&args.failure_queue_url)
            .max_number_of_messages(10)
            .visibility_timeout(VISIBILITY_TIMEOUT_SECONDS)
            .wait_time_seconds(1)
            .send()
            .await
            .map_err(|e| shared::Error::aws("SQS", "ReceiveMessage", e))?;
        let messages = received.messages.unwrap_or_default();
        if messages.is_empty() {
            break;
        }
        for message in messages {
            let id = message.message_id.clone().unwrap_or_default();
            let handle = message.receipt_handle.clone().unwrap_or_default();
            if !seen.insert(id.clone()) || ranges.len() >= args.max_messages {
                // Delivered twice (SQS is at least once) or over the limit: left for later.
                kept.push(handle);
                continue;
            }
            let range = replay_one(clients, &deps, id, message.body(), args.dry_run).await?;
            tracing::info!(message_id = %range.message_id, records = range.records, events = range.events, outcome = ?range.outcome, "failure message");
            if matches!(range.outcome, Outcome::Replayed) {
                clients
                    .sqs
                    .delete_message()
                    .queue_url(&args.failure_queue_url)
                    .receipt_handle(&handle)
                    .send()
                    .await
                    .map_err(|e| shared::Error::aws("SQS", "DeleteMessage", e))?;
            } else {
                kept.push(handle);
            }
            ranges.push(range);
        }
    }
    // What is left is visible again at once: for the next run, and for the queue's alarm.
    for handle in kept {
        clients
            .sqs
            .change_message_visibility()
            .queue_url(&args.failure_queue_url)
            .receipt_handle(handle)
            .visibility_timeout(0)
            .send()
            .await
            .map_err(|e| shared::Error::aws("SQS", "ChangeMessageVisibility", e))?;
    }
    Ok(Report {
        dry_run: args.dry_run,
        ranges,
    })
}

async fn replay_one<P: notifier::PublishBatch>(
    clients: &Clients,
    deps: &notifier::Deps<P>,
    message_id: String,
    body: Option<&str>,
    dry_run: bool,
) -> Result<Range, Error> {
    let mut range = Range {
        message_id,
        batch: None,
        records: 0,
        events: 0,
        outcome: Outcome::Read,
    };
    let batch = match serde_json::from_str::<FailureRecord>(body.unwrap_or_default()) {
        Ok(record) => record.batch,
        Err(err) => {
            range.outcome = Outcome::NotAFailureRecord(err.to_string());
            return Ok(range);
        }
    };
    range.batch = Some(batch.clone());
    let records = match read_range(&clients.streams, &batch).await? {
        Ok(records) => records,
        Err(why) => {
            range.outcome = Outcome::Unreadable(why);
            return Ok(range);
        }
    };
    range.records = records.len();
    range.events = records
        .iter()
        .filter(|r| matches!(notifier::decide(r), notifier::Decision::Publish(_)))
        .count();
    if dry_run {
        return Ok(range);
    }
    let mut event = Event::default();
    event.records = records;
    let response = notifier::handle(
        lambda_runtime::LambdaEvent::new(event, lambda_runtime::Context::default()),
        deps,
    )
    .await?;
    range.outcome = match response.batch_item_failures.first() {
        None => Outcome::Replayed,
        Some(failure) => Outcome::NotPublished(format!(
            "SNS did not take the event of record {}",
            failure.item_identifier.as_deref().unwrap_or("?")
        )),
    };
    Ok(range)
}

/// DynamoDB sequence numbers are decimal strings of up to 40 digits: compared as numbers.
pub fn compare_sequence_numbers(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.trim_start_matches('0'), b.trim_start_matches('0'));
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// The records of the range in Lambda's shape, or why the range cannot be read (the outer
/// `Err` is a failure of this run: throttling, network, permissions).
async fn read_range(
    streams: &aws_sdk_dynamodbstreams::Client,
    batch: &BatchInfo,
) -> Result<Result<Vec<EventRecord>, String>, Error> {
    let region = batch.stream_arn.split(':').nth(3).unwrap_or_default();
    let iterator = streams
        .get_shard_iterator()
        .stream_arn(&batch.stream_arn)
        .shard_id(&batch.shard_id)
        .shard_iterator_type(ShardIteratorType::AtSequenceNumber)
        .sequence_number(&batch.start_sequence_number)
        .send()
        .await;
    let mut iterator = match iterator {
        Ok(output) => output.shard_iterator,
        Err(err) => {
            return match err.as_service_error() {
                Some(GetShardIteratorError::TrimmedDataAccessException(_)) => Ok(Err(
                    "the range's records have expired (streams keep records 24 hours)".into(),
                )),
                Some(GetShardIteratorError::ResourceNotFoundException(_)) => Ok(Err(format!(
                    "stream or shard {} is gone (expired or the table's stream was replaced)",
                    batch.shard_id
                ))),
                _ => Err(shared::Error::aws("DynamoDB Streams", "GetShardIterator", err).into()),
            }
        }
    };
    let mut records = Vec::new();
    let mut empty_polls = 0;
    while let Some(current) = iterator.take() {
        let output = match streams
            .get_records()
            .shard_iterator(current)
            .limit(GET_RECORDS_MAX)
            .send()
            .await
        {
            Ok(output) => output,
            Err(err) => {
                return match err.as_service_error() {
                    Some(GetRecordsError::TrimmedDataAccessException(_)) => {
                        Ok(Err("the range's records expired while it was read".into()))
                    }
                    _ => Err(shared::Error::aws("DynamoDB Streams", "GetRecords", err).into()),
                }
            }
        };
        let page = output.records.unwrap_or_default();
        empty_polls = if page.is_empty() { empty_polls + 1 } else { 0 };
        for record in &page {
            let sequence = record
                .dynamodb
                .as_ref()
                .and_then(|d| d.sequence_number.as_deref())
                .unwrap_or_default();
            if compare_sequence_numbers(sequence, &batch.end_sequence_number) == Ordering::Greater {
                return Ok(Ok(records));
            }
            let converted =
                shared::stream_record::to_lambda_record(record, &batch.stream_arn, region)
                    .map_err(|e| shared::Error::InvalidEvent(e.to_string()))?;
            records.push(converted);
            if compare_sequence_numbers(sequence, &batch.end_sequence_number) == Ordering::Equal {
                return Ok(Ok(records));
            }
        }
        if empty_polls >= EMPTY_POLLS_MAX {
            break;
        }
        if page.is_empty() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        iterator = output.next_shard_iterator;
    }
    Ok(Err(format!(
        "the stream ended before sequence number {} ({} record(s) read); nothing published",
        batch.end_sequence_number,
        records.len()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_numbers_compare_as_numbers() {
        assert_eq!(compare_sequence_numbers("9", "10"), Ordering::Less);
        assert_eq!(compare_sequence_numbers("010", "10"), Ordering::Equal);
        assert_eq!(
            compare_sequence_numbers(
                "4421584500000000017450439092",
                "4421584500000000017450439091"
            ),
            Ordering::Greater
        );
    }

    #[test]
    fn lambdas_failure_record_parses() {
        let body = r#"{"requestContext":{"condition":"RetryAttemptsExhausted"},"version":"1.0",
            "DDBStreamBatchInfo":{"shardId":"shardId-0001","startSequenceNumber":"100",
            "endSequenceNumber":"200","batchSize":2,"streamArn":"arn:aws:dynamodb:eu-west-1:1:table/t/stream/x",
            "approximateArrivalOfFirstRecord":"2026-01-01T00:00:00Z"}}"#;
        let record: FailureRecord = serde_json::from_str(body).unwrap();
        assert_eq!(record.batch.shard_id, "shardId-0001");
        assert_eq!(record.batch.end_sequence_number, "200");
        assert_eq!(record.batch.batch_size, Some(2));
    }
}
