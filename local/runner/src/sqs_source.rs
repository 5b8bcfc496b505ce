//! Plays an SQS event source mapping: polls the queue, builds the `SqsEvent` Lambda would
//! deliver, invokes the handler, and deletes what succeeded.
//!
//! As in AWS: when pollers receive is the mapping's [`Polling`] strategy (with
//! `MaximumConcurrency`, as shipped, no message is received just to be throttled; without it,
//! the incident of docs/RELIABILITY.md); batches fill up to `BatchSize` within
//! `MaximumBatchingWindowInSeconds`; with `ReportBatchItemFailures` only the listed messages
//! stay on the queue, otherwise an error leaves the whole batch; what stays becomes visible
//! again after the visibility timeout, so `ApproximateReceiveCount`, `maxReceiveCount` and the
//! DLQ behave as in AWS.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, Message, MessageSystemAttributeName};
use futures::future::BoxFuture;
use serde_json::json;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::stats::FunctionStats;

/// A function handling SQS batches, as the Lambda binary's `main.rs` wires it.
pub type SqsHandler = Arc<
    dyn Fn(
            lambda_runtime::LambdaEvent<SqsEvent>,
        ) -> BoxFuture<'static, Result<SqsBatchResponse, crate::functions::HandlerError>>
        + Send
        + Sync,
>;

/// A message body rewrite applied before the handler sees it (see `emulator::s3_events`).
pub type BodyRewrite = fn(&str) -> String;

/// When the pollers of a mapping receive: what separates the configuration Deferred ships from
/// the incident it exists to avoid (docs/RELIABILITY.md). Every poller receives one batch, runs
/// it, and only then receives again; the strategies differ in how many pollers there are and
/// whether the function can refuse their batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Polling {
    /// `ScalingConfig.MaximumConcurrency` set (template.yaml sets it on every SQS source): one
    /// poller per slot, `slots` = `min(MaximumConcurrency, reserved concurrency)`, so a message
    /// is received only when the function has a slot to run it. Nothing is ever throttled.
    Capped { slots: usize },
    /// No `MaximumConcurrency` (local-runner `--without-maximum-concurrency`): `pollers` (five,
    /// as Lambda starts; it then adds more while messages wait) receive whatever the function's
    /// free concurrency. A batch that arrives while the function runs `reserved_concurrency`
    /// invocations is throttled: not invoked, not deleted, it reappears when its visibility
    /// timeout passes with its receive count raised. After `maxReceiveCount` such receives SQS
    /// moves a valid message to the DLQ without the function ever having seen it. (Lambda also
    /// retries a throttled invocation for a while within the visibility timeout before giving
    /// the batch back; this gives up at once, which changes how fast messages are lost, not
    /// whether.)
    Uncapped {
        pollers: usize,
        reserved_concurrency: Option<usize>,
    },
}

impl Polling {
    fn pollers(self) -> usize {
        match self {
            Polling::Capped { slots } => slots,
            Polling::Uncapped { pollers, .. } => pollers,
        }
        .max(1)
    }

    /// The concurrency beyond which the function refuses an invocation from this mapping.
    fn throttles_beyond(self) -> Option<usize> {
        match self {
            // The pollers never have more batches in flight than the function has slots.
            Polling::Capped { .. } => None,
            Polling::Uncapped {
                reserved_concurrency,
                ..
            } => reserved_concurrency,
        }
    }
}

#[derive(Clone)]
pub struct SqsSource {
    pub function: String,
    pub queue_url: String,
    pub queue_arn: String,
    pub batch_size: u32,
    pub batching_window: Duration,
    pub polling: Polling,
    pub report_batch_item_failures: bool,
    pub timeout: Duration,
    pub rewrite: Option<BodyRewrite>,
}

impl SqsSource {
    /// Runs the pollers of its [`Polling`] strategy until `shutdown` turns true.
    pub async fn run(
        self,
        sqs: aws_sdk_sqs::Client,
        handler: SqsHandler,
        stats: Arc<FunctionStats>,
        shutdown: watch::Receiver<bool>,
    ) {
        let source = Arc::new(self);
        let pollers = (0..source.polling.pollers()).map(|_| {
            let (source, sqs, handler, stats, shutdown) = (
                source.clone(),
                sqs.clone(),
                handler.clone(),
                stats.clone(),
                shutdown.clone(),
            );
            tokio::spawn(async move { source.poll(sqs, handler, stats, shutdown).await })
        });
        futures::future::join_all(pollers).await;
    }

    async fn poll(
        &self,
        sqs: aws_sdk_sqs::Client,
        handler: SqsHandler,
        stats: Arc<FunctionStats>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        while !*shutdown.borrow() {
            let batch = tokio::select! {
                batch = self.receive_batch(&sqs) => batch,
                _ = shutdown.changed() => break,
            };
            match batch {
                Ok(batch) if batch.is_empty() => {
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(100)) => {},
                        _ = shutdown.changed() => break,
                    }
                }
                Ok(batch) => self.invoke(&sqs, &handler, &stats, batch).await,
                Err(e) => {
                    tracing::warn!(function = %self.function, error = %e, "receiving from the queue failed");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
    }

    async fn receive_batch(
        &self,
        sqs: &aws_sdk_sqs::Client,
    ) -> Result<Vec<Message>, aws_sdk_sqs::Error> {
        let started = Instant::now();
        let mut batch: Vec<Message> = Vec::new();
        loop {
            let wanted = (self.batch_size as usize - batch.len()).min(10) as i32;
            let output = sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(wanted)
                .message_system_attribute_names(MessageSystemAttributeName::All)
                .message_attribute_names("All")
                .send()
                .await?;
            let got = output.messages.unwrap_or_default();
            let got_none = got.is_empty();
            batch.extend(got);
            // Lambda invokes when the batch is full or the window has passed; an empty queue
            // is reported at once so the poller can back off.
            if batch.len() >= self.batch_size as usize
                || batch.is_empty()
                || started.elapsed() >= self.batching_window
            {
                return Ok(batch);
            }
            if got_none {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }

    /// The event exactly as Lambda shapes it.
    pub fn event(&self, batch: &[Message]) -> SqsEvent {
        let records: Vec<serde_json::Value> = batch
            .iter()
            .map(|m| {
                let body = m.body.clone().unwrap_or_default();
                let body = match self.rewrite {
                    Some(rewrite) => rewrite(&body),
                    None => body,
                };
                let attributes: serde_json::Map<String, serde_json::Value> = m
                    .attributes
                    .clone()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (k.as_str().to_owned(), json!(v)))
                    .collect();
                let message_attributes: serde_json::Map<String, serde_json::Value> = m
                    .message_attributes
                    .clone()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| {
                        (
                            k,
                            json!({
                                "stringValue": v.string_value,
                                "stringListValues": [],
                                "binaryListValues": [],
                                "dataType": v.data_type,
                            }),
                        )
                    })
                    .collect();
                json!({
                    "messageId": m.message_id,
                    "receiptHandle": m.receipt_handle,
                    "body": body,
                    "attributes": attributes,
                    "messageAttributes": message_attributes,
                    "md5OfBody": m.md5_of_body,
                    "eventSource": "aws:sqs",
                    "eventSourceARN": self.queue_arn,
                    "awsRegion": emulator::provision::EMULATOR_REGION,
                })
            })
            .collect();
        serde_json::from_value(json!({ "Records": records })).expect("the SQS event shape is valid")
    }

    /// Invokes the function with the batch and deletes what succeeded. A throttled invocation
    /// deletes nothing: the batch stays invisible until its visibility timeout passes.
    async fn invoke(
        &self,
        sqs: &aws_sdk_sqs::Client,
        handler: &SqsHandler,
        stats: &Arc<FunctionStats>,
        batch: Vec<Message>,
    ) {
        let event = self.event(&batch);
        let context = crate::invocation_context(&self.function, self.timeout);
        let started = Instant::now();
        let Some(outcome) = stats
            .invoke_within(
                self.polling.throttles_beyond(),
                self.timeout,
                handler(lambda_runtime::LambdaEvent::new(event, context)),
            )
            .await
        else {
            tracing::info!(
                function = %self.function,
                batch_size = batch.len(),
                outcome = "throttled",
                "invocation throttled at the reserved concurrency: the batch returns to the queue after its visibility timeout"
            );
            return;
        };
        let ids: Vec<String> = batch.iter().filter_map(|m| m.message_id.clone()).collect();
        let failed: HashSet<String> = match &outcome {
            Ok(Ok(response)) if self.report_batch_item_failures => response
                .batch_item_failures
                .iter()
                .map(|f| f.item_identifier.clone())
                .collect(),
            Ok(Ok(_)) => HashSet::new(),
            Ok(Err(_)) | Err(_) => ids.iter().cloned().collect(),
        };
        let (result, error) = match &outcome {
            Ok(Ok(_)) => ("ok", None),
            Ok(Err(e)) => ("error", Some(shared::error::chain(e.as_ref()))),
            Err(_) => (
                "timeout",
                Some(format!("timed out after {:?}", self.timeout)),
            ),
        };
        if error.is_some() {
            stats
                .errors
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        stats
            .item_failures
            .fetch_add(failed.len() as u64, std::sync::atomic::Ordering::SeqCst);
        tracing::info!(
            function = %self.function,
            batch_size = batch.len(),
            failed = failed.len(),
            outcome = result,
            error = error.as_deref().unwrap_or(""),
            duration_ms = started.elapsed().as_millis() as u64,
            "invocation"
        );
        let done: Vec<&Message> = batch
            .iter()
            .filter(|m| !m.message_id.as_ref().is_some_and(|id| failed.contains(id)))
            .collect();
        for chunk in done.chunks(10) {
            let entries = chunk
                .iter()
                .enumerate()
                .filter_map(|(i, m)| {
                    DeleteMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(m.receipt_handle.clone()?)
                        .build()
                        .ok()
                })
                .collect::<Vec<_>>();
            if let Err(e) = sqs
                .delete_message_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(entries))
                .send()
                .await
            {
                tracing::warn!(function = %self.function, error = %e, "deleting processed messages failed; they will be delivered again");
            }
        }
    }
}
