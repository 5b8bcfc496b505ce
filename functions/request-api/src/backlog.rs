//! Whether ComputeQueue is backed up, asked before a job is dispatched again.
//!
//! A job that waits in a deep queue looks like a job whose message was lost: it stays pending
//! past the dispatch timeout. Dispatching it again would add a message per polled job every
//! timeout, growing the very backlog it waits in. So a re-dispatch first asks SQS how many
//! messages wait (one GetQueueAttributes per container every [`BACKLOG_CACHE`], whatever the
//! request rate), and does not happen while that is above the configured depth.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use aws_sdk_sqs::types::QueueAttributeName;

/// How long one reading of the queue's depth is trusted.
pub const BACKLOG_CACHE: Duration = Duration::from_secs(10);

#[derive(Debug)]
pub struct Backlog {
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
    max_depth: u64,
    last: Mutex<Option<(Instant, u64)>>,
}

impl Backlog {
    pub fn new(sqs: aws_sdk_sqs::Client, queue_url: impl Into<String>, max_depth: u64) -> Self {
        Self {
            sqs,
            queue_url: queue_url.into(),
            max_depth,
            last: Mutex::new(None),
        }
    }

    /// Whether more than the configured number of messages wait. When SQS cannot be asked, the
    /// answer is no: a lost message must still be re-dispatched (and the error is logged).
    pub async fn is_backed_up(&self) -> bool {
        let cached = *self.last.lock().unwrap_or_else(|e| e.into_inner());
        let depth = match cached {
            Some((at, depth)) if at.elapsed() < BACKLOG_CACHE => depth,
            _ => match self.depth().await {
                Ok(depth) => {
                    *self.last.lock().unwrap_or_else(|e| e.into_inner()) =
                        Some((Instant::now(), depth));
                    depth
                }
                Err(err) => {
                    tracing::warn!(error = %shared::error::chain(&err), "ComputeQueue depth unknown; re-dispatching anyway");
                    return false;
                }
            },
        };
        depth > self.max_depth
    }

    async fn depth(&self) -> Result<u64, shared::Error> {
        let output = self
            .sqs
            .get_queue_attributes()
            .queue_url(&self.queue_url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .send()
            .await
            .map_err(|e| shared::Error::aws("SQS", "GetQueueAttributes", e))?;
        Ok(output
            .attributes
            .and_then(|a| {
                a.get(&QueueAttributeName::ApproximateNumberOfMessages)
                    .and_then(|v| v.parse().ok())
            })
            .unwrap_or(0))
    }
}
