//! `redrive`: moves a dead-letter queue's messages back with an SQS message move task
//! (StartMessageMoveTask), the same mechanism as the console's "Start DLQ redrive", and
//! optionally waits for the task to finish (ListMessageMoveTasks).
//!
//! Safe for every DLQ of the stack: compute's messages find their job claimed, finished or
//! replaced when the job moved on; metadata-sync's S3 events are ordered by `sequencer`.

use std::time::Duration;

use aws_sdk_sqs::types::QueueAttributeName;
use serde::Serialize;

use crate::{Clients, Error};

/// How often the task's status is asked for while waiting.
const POLL_INTERVAL: Duration = Duration::from_secs(1);

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The dead-letter queue: its URL (the stack's `*DeadLetterQueueUrl` outputs) or ARN
    #[arg(long, value_name = "URL|ARN")]
    pub dlq: String,
    /// Where to move the messages (a queue ARN); default: back to the queues they came from
    #[arg(long, value_name = "ARN")]
    pub destination_arn: Option<String>,
    /// Throttle the move (SQS's default: as fast as it can, up to 500 messages/s)
    #[arg(long, value_name = "N")]
    pub max_per_second: Option<i32>,
    /// Wait up to this long for the task to finish and report its counts (0: start and return)
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    pub wait_seconds: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub source_arn: String,
    pub destination_arn: Option<String>,
    pub task_handle: String,
    /// RUNNING, COMPLETED, CANCELLING, CANCELLED or FAILED; `None` when not waited for.
    pub status: Option<String>,
    pub messages_moved: Option<i64>,
    pub messages_to_move: Option<i64>,
    pub failure_reason: Option<String>,
}

impl Report {
    /// A task that did not complete (failed, cancelled, or still running when the wait ended).
    pub fn needs_attention(&self) -> bool {
        self.status.as_deref().is_some_and(|s| s != "COMPLETED")
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "message move task {}", self.task_handle)?;
        writeln!(f, "  from {}", self.source_arn)?;
        writeln!(
            f,
            "  to   {}",
            self.destination_arn
                .as_deref()
                .unwrap_or("the queues the messages came from")
        )?;
        match &self.status {
            None => writeln!(f, "  started (not waited for)"),
            Some(status) => {
                write!(
                    f,
                    "  {status}: {} of {} moved",
                    self.messages_moved.unwrap_or(0),
                    self.messages_to_move
                        .map_or_else(|| "?".to_owned(), |n| n.to_string())
                )?;
                match &self.failure_reason {
                    Some(reason) => writeln!(f, " ({reason})"),
                    None => writeln!(f),
                }
            }
        }
    }
}

pub async fn run(args: &Args, clients: &Clients) -> Result<Report, Error> {
    let source_arn = queue_arn(&clients.sqs, &args.dlq).await?;
    let started = clients
        .sqs
        .start_message_move_task()
        .source_arn(&source_arn)
        .set_destination_arn(args.destination_arn.clone())
        .set_max_number_of_messages_per_second(args.max_per_second)
        .send()
        .await
        .map_err(|e| shared::Error::aws("SQS", "StartMessageMoveTask", e))?;
    let task_handle = started.task_handle.unwrap_or_default();
    tracing::info!(source_arn, task_handle, "message move task started");
    let mut report = Report {
        source_arn,
        destination_arn: args.destination_arn.clone(),
        task_handle,
        status: None,
        messages_moved: None,
        messages_to_move: None,
        failure_reason: None,
    };
    if args.wait_seconds == 0 {
        return Ok(report);
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(args.wait_seconds);
    loop {
        // The most recent task of the source is ours: SQS runs one task per source at a time,
        // and lists the handle only while a task runs, so it cannot be matched by handle.
        let listed = clients
            .sqs
            .list_message_move_tasks()
            .source_arn(&report.source_arn)
            .max_results(1)
            .send()
            .await
            .map_err(|e| shared::Error::aws("SQS", "ListMessageMoveTasks", e))?;
        if let Some(task) = listed.results.unwrap_or_default().into_iter().next() {
            report.status = task.status;
            report.messages_moved = Some(task.approximate_number_of_messages_moved);
            report.messages_to_move = task.approximate_number_of_messages_to_move;
            report.failure_reason = task.failure_reason;
        }
        let running = matches!(report.status.as_deref(), None | Some("RUNNING"));
        if !running || tokio::time::Instant::now() >= deadline {
            return Ok(report);
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// The queue's ARN: given as one, or asked of SQS for a URL.
async fn queue_arn(sqs: &aws_sdk_sqs::Client, queue: &str) -> Result<String, Error> {
    if queue.starts_with("arn:") {
        return Ok(queue.to_owned());
    }
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(queue)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| shared::Error::aws("SQS", "GetQueueAttributes", e))?;
    attributes
        .attributes
        .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
        .ok_or_else(|| Error::InvalidArgument(format!("SQS did not give the ARN of {queue}")))
}
