//! Plays a DynamoDB stream event source mapping: reads the table's stream in order, drops the
//! records its `FilterCriteria` rejects (as Lambda does, before invoking), and invokes with up to
//! `BatchSize` records. A partial batch response retries from the reported record; an error
//! retries the batch, halved first when `BisectBatchOnFunctionError` is set; after
//! `MaximumRetryAttempts` the batch's description goes to the on-failure destination and the
//! stream moves on (records too old for `MaximumRecordAgeInSeconds` are skipped the same way).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::dynamodb::{Event, EventRecord};
use aws_lambda_events::streams::DynamoDbEventResponse;
use emulator::streams::{lambda_json, StartingPosition, StreamReader};
use emulator::{EventSource, Provisioned};
use futures::future::BoxFuture;
use serde_json::json;
use tokio::sync::watch;

use crate::stats::FunctionStats;

pub type StreamHandler = Arc<
    dyn Fn(
            lambda_runtime::LambdaEvent<Event>,
        )
            -> BoxFuture<'static, Result<DynamoDbEventResponse, crate::functions::HandlerError>>
        + Send
        + Sync,
>;

/// MaximumRetryAttempts -1 means "until the record expires" in AWS (24 h); locally we stop here.
pub const LOCAL_RETRY_CAP: u32 = 10;

#[derive(Clone)]
pub struct StreamSource {
    pub function: String,
    pub stream_arn: String,
    pub starting_position: StartingPosition,
    pub batch_size: usize,
    pub filter_patterns: Vec<serde_json::Value>,
    pub bisect_batch_on_function_error: bool,
    pub maximum_retry_attempts: u32,
    pub maximum_record_age: Option<Duration>,
    pub on_failure_queue_url: Option<String>,
    pub report_batch_item_failures: bool,
    pub timeout: Duration,
}

enum Outcome {
    Done,
    /// Retry from this sequence number.
    FailedAt(String),
    Error(String),
}

impl StreamSource {
    pub fn from_event(
        function: &str,
        event: &EventSource,
        timeout: Duration,
        resources: &Provisioned,
    ) -> Option<Self> {
        let EventSource::DynamoDb {
            stream_arn,
            starting_position,
            batch_size,
            filter_patterns,
            bisect_batch_on_function_error,
            maximum_retry_attempts,
            maximum_record_age_seconds,
            on_failure_destination_arn,
            report_batch_item_failures,
            ..
        } = event
        else {
            return None;
        };
        Some(Self {
            function: function.to_owned(),
            stream_arn: stream_arn.clone(),
            starting_position: StartingPosition::from_template(starting_position)
                .unwrap_or(StartingPosition::TrimHorizon),
            batch_size: (*batch_size).max(1) as usize,
            filter_patterns: filter_patterns.clone(),
            bisect_batch_on_function_error: *bisect_batch_on_function_error,
            maximum_retry_attempts: match maximum_retry_attempts {
                Some(n) if *n >= 0 => (*n as u32).min(LOCAL_RETRY_CAP),
                _ => LOCAL_RETRY_CAP,
            },
            maximum_record_age: maximum_record_age_seconds
                .filter(|s| *s > 0)
                .map(|s| Duration::from_secs(s as u64)),
            on_failure_queue_url: on_failure_destination_arn
                .as_ref()
                .and_then(|arn| resources.queue_by_arn(arn))
                .map(|q| q.url.clone()),
            report_batch_item_failures: *report_batch_item_failures,
            timeout,
        })
    }

    fn passes_filter(&self, record: &EventRecord) -> bool {
        self.filter_patterns.is_empty()
            || emulator::filter_criteria::matches_any(&self.filter_patterns, &lambda_json(record))
    }

    pub async fn run(
        self,
        sdk: aws_config::SdkConfig,
        handler: StreamHandler,
        stats: Arc<FunctionStats>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let sqs = aws_sdk_sqs::Client::new(&sdk);
        let mut reader = loop {
            match StreamReader::new(&sdk, &self.stream_arn, self.starting_position.clone()).await {
                Ok(reader) => break reader,
                Err(e) => {
                    tracing::warn!(function = %self.function, error = %e, "opening the stream failed; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {},
                        _ = shutdown.changed() => return,
                    }
                }
            }
        };
        while !*shutdown.borrow() {
            let records = tokio::select! {
                polled = reader.poll(self.batch_size) => polled,
                _ = shutdown.changed() => break,
            };
            let records = match records {
                Ok(records) => records,
                Err(e) => {
                    tracing::warn!(function = %self.function, error = %e, "reading the stream failed");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
            };
            let now = chrono::Utc::now();
            let (fresh, expired): (Vec<EventRecord>, Vec<EventRecord>) =
                records.into_iter().partition(|r| {
                    self.maximum_record_age.is_none_or(|age| {
                        now - r.change.approximate_creation_date_time
                            <= chrono::Duration::from_std(age).unwrap_or(chrono::Duration::MAX)
                    })
                });
            // The shard the records came from (the reader moves to a child shard only on a
            // later poll), named in what goes to the on-failure destination, as Lambda does.
            let shard_id = reader.shard_id().to_owned();
            if !expired.is_empty() {
                self.send_to_on_failure(&sqs, &shard_id, &expired, "RecordAgeExceeded")
                    .await;
            }
            let batch: Vec<EventRecord> = fresh
                .into_iter()
                .filter(|r| self.passes_filter(r))
                .collect();
            if batch.is_empty() {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(100)) => {},
                    _ = shutdown.changed() => break,
                }
                continue;
            }
            self.deliver(&sqs, &handler, &stats, &shard_id, batch).await;
        }
    }

    /// Delivers one batch until it succeeds or its retries are spent.
    fn deliver<'a>(
        &'a self,
        sqs: &'a aws_sdk_sqs::Client,
        handler: &'a StreamHandler,
        stats: &'a Arc<FunctionStats>,
        shard_id: &'a str,
        mut batch: Vec<EventRecord>,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>> {
        Box::pin(async move {
            let mut attempts = 0;
            loop {
                match self.invoke(handler, stats, &batch).await {
                    Outcome::Done => return,
                    Outcome::FailedAt(sequence_number) => {
                        if let Some(at) = batch.iter().position(|r| {
                            r.change.sequence_number.as_deref() == Some(sequence_number.as_str())
                        }) {
                            batch.drain(..at);
                        }
                    }
                    Outcome::Error(e) => {
                        if self.bisect_batch_on_function_error && batch.len() > 1 {
                            tracing::info!(function = %self.function, error = %e, size = batch.len(), "bisecting the failed batch");
                            let second = batch.split_off(batch.len() / 2);
                            self.deliver(sqs, handler, stats, shard_id, batch).await;
                            self.deliver(sqs, handler, stats, shard_id, second).await;
                            return;
                        }
                    }
                }
                attempts += 1;
                if attempts > self.maximum_retry_attempts {
                    self.send_to_on_failure(sqs, shard_id, &batch, "RetryAttemptsExhausted")
                        .await;
                    return;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
    }

    async fn invoke(
        &self,
        handler: &StreamHandler,
        stats: &Arc<FunctionStats>,
        batch: &[EventRecord],
    ) -> Outcome {
        let payload: Event = serde_json::from_value(json!({
            "Records": batch.iter().map(lambda_json).collect::<Vec<_>>()
        }))
        .expect("stream records round-trip");
        let context = crate::invocation_context(&self.function, self.timeout);
        let started = tokio::time::Instant::now();
        let result = stats
            .invoke(
                self.timeout,
                handler(lambda_runtime::LambdaEvent::new(payload, context)),
            )
            .await;
        let outcome = match result {
            Ok(Ok(response)) => match response
                .batch_item_failures
                .first()
                .and_then(|f| f.item_identifier.clone())
            {
                Some(sequence_number) if self.report_batch_item_failures => {
                    Outcome::FailedAt(sequence_number)
                }
                Some(_) => {
                    Outcome::Error("partial batch response without ReportBatchItemFailures".into())
                }
                None => Outcome::Done,
            },
            Ok(Err(e)) => Outcome::Error(shared::error::chain(e.as_ref())),
            Err(_) => Outcome::Error(format!("timed out after {:?}", self.timeout)),
        };
        let (label, detail) = match &outcome {
            Outcome::Done => ("ok", String::new()),
            Outcome::FailedAt(seq) => ("partial", seq.clone()),
            Outcome::Error(e) => ("error", e.clone()),
        };
        if matches!(outcome, Outcome::Error(_)) {
            stats
                .errors
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        if matches!(outcome, Outcome::FailedAt(_)) {
            stats
                .item_failures
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        tracing::info!(
            function = %self.function,
            batch_size = batch.len(),
            outcome = label,
            detail = %detail,
            duration_ms = started.elapsed().as_millis() as u64,
            "invocation"
        );
        outcome
    }

    /// What Lambda sends to an SQS on-failure destination of a stream mapping: where the
    /// batch is in the stream, not the records themselves.
    async fn send_to_on_failure(
        &self,
        sqs: &aws_sdk_sqs::Client,
        shard_id: &str,
        batch: &[EventRecord],
        condition: &str,
    ) {
        let first = batch.first().and_then(|r| r.change.sequence_number.clone());
        let last = batch.last().and_then(|r| r.change.sequence_number.clone());
        tracing::warn!(function = %self.function, condition, size = batch.len(), "records go to the on-failure destination");
        let Some(url) = &self.on_failure_queue_url else {
            return;
        };
        let body = json!({
            "requestContext": {
                "functionArn": crate::invocation_context(&self.function, self.timeout).invoked_function_arn,
                "condition": condition,
                "approximateInvokeCount": self.maximum_retry_attempts + 1,
            },
            "responseContext": {"statusCode": 200, "functionError": "Unhandled"},
            "version": "1.0",
            "timestamp": chrono::Utc::now().to_rfc3339(),
            "DDBStreamBatchInfo": {
                "shardId": shard_id,
                "startSequenceNumber": first,
                "endSequenceNumber": last,
                "batchSize": batch.len(),
                "streamArn": self.stream_arn,
            },
        });
        if let Err(e) = sqs
            .send_message()
            .queue_url(url)
            .message_body(body.to_string())
            .send()
            .await
        {
            tracing::error!(function = %self.function, error = %e, "the on-failure destination could not be written");
        }
    }
}
