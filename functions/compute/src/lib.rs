//! The compute function: for each `compute.requested` message of an SQS batch, claim the job,
//! gather the subject's features, score them, store the result.
//!
//! Each message is handled on its own (a few at a time, [`MESSAGES_IN_FLIGHT`]), and the
//! batch response names only the messages SQS should deliver again:
//!
//! | situation | job | message |
//! |---|---|---|
//! | malformed message (not a `compute.requested` v1) | untouched | acknowledged (it can never succeed), logged |
//! | job done, held by another worker's live lease, or replaced by a newer job | untouched | acknowledged (duplicate delivery) |
//! | scored | `done` with the result (TTL `result_ttl`) | acknowledged |
//! | no data for the subject | `failed`, `NO_DATA` | acknowledged |
//! | permanent error (corrupt object, model rejects the features) | `failed`, see [`ErrorCode`] | acknowledged |
//! | transient error (throttling, 5xx, broken download), or the deadline is near | stays `running` under this claim until its lease passes; the redelivery (after the queue's visibility timeout, longer than the lease) claims it again | **failed**: SQS delivers it again |
//! | the same on the message's last attempt (`ApproximateReceiveCount >= compute_max_receive_count`), or that attempt starting too close to its deadline | `failed` (`UNAVAILABLE` / `DEADLINE_EXCEEDED`, retryable) | **failed** once more, so SQS moves it to the DLQ (alarmed, inspectable) |
//! | the claim could not even be made (DynamoDB failing) | untouched | **failed** |
//!
//! Time: the invocation's deadline (`context.deadline`) minus [`DEADLINE_MARGIN`] bounds the
//! work; a message whose work is not done by then is reported failed, and the margin is kept
//! for the final conditional write, so the function is never killed mid-write. Every status
//! change is a conditional write in [`ScoreStore`], so duplicates and races are harmless.
//!
//! Other pieces: [`config`] (the function's variables), [`source`] (the [`FeatureSource`] port
//! and the catalog + S3 adapter), [`features`] (extraction), [`model`] (the [`model::Model`] port,
//! the shipped logistic model and the [`model::ModelStore`]). Seeded demo and test data come from
//! the `datagen` dev crate (local/datagen).

pub mod config;
pub mod error;
pub mod features;
pub mod model;
pub mod source;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use chrono::Utc;
use futures::StreamExt;
use lambda_runtime::LambdaEvent;
use shared::catalog_store::CatalogStore;
use shared::config::Env;
use shared::domain::{ClaimId, ErrorCode, FeatureSummary, JobError, JobId, ScoreResult, SubjectId};
use shared::events::ComputeRequested;
use shared::score_store::{ClaimOutcome, ScoreStore};

use crate::model::ModelStore;
use tokio::time::Instant;
use tracing::Instrument;

pub use config::Config;
pub use error::Error;
pub use source::{FeatureSource, LakeSource, SubjectLimits, OBJECTS_IN_FLIGHT};

/// Messages of one batch worked on at once. Jobs in flight (and so reads on the feature
/// source) are at most `MaximumConcurrency x min(BatchSize, MESSAGES_IN_FLIGHT)`.
pub const MESSAGES_IN_FLIGHT: usize = 2;

/// Work stops this long before the invocation's deadline, leaving time for the final write.
pub const DEADLINE_MARGIN: Duration = Duration::from_secs(5);

/// Clients, stores, the model and the settings, built once per container.
#[derive(Clone)]
pub struct Deps {
    scores: ScoreStore,
    features: Arc<dyn FeatureSource>,
    models: ModelStore,
    result_ttl: Duration,
    lease: Duration,
    max_receive_count: u32,
}

impl Deps {
    /// The function's configuration read from `env` and its clients built from `sdk`: how the
    /// Lambda binary (process environment), the local runner and the tests (the template's
    /// environment of ComputeFunction) all wire it.
    pub fn from_env(env: &Env, sdk: &aws_config::SdkConfig) -> Result<Self, Error> {
        Self::new(&Config::from_env(env).map_err(shared::Error::from)?, sdk)
    }

    /// The ScoresTable store, the catalog + S3 feature source and the model (`config.model_uri`
    /// or the embedded one). Fails only on a malformed `MODEL_URI`, so a misconfigured function
    /// fails at cold start.
    pub fn new(config: &Config, sdk: &aws_config::SdkConfig) -> Result<Self, Error> {
        let dynamodb = shared::aws::dynamodb(sdk);
        let s3 = shared::aws::s3(sdk);
        Ok(Self {
            scores: ScoreStore::new(dynamodb.clone(), &config.scores_table),
            features: Arc::new(
                LakeSource::new(
                    CatalogStore::new(dynamodb, &config.catalog_table),
                    s3.clone(),
                )
                .with_limits(config.limits)
                .with_objects_in_flight(config.objects_in_flight),
            ),
            models: ModelStore::from_uri(config.model_uri.as_deref(), s3, config.model_cache_ttl)?,
            result_ttl: config.result_ttl,
            lease: config.lease,
            max_receive_count: config.max_receive_count,
        })
    }

    /// Replaces where features come from (a team's own source; tests inject failures).
    pub fn with_feature_source(mut self, source: Arc<dyn FeatureSource>) -> Self {
        self.features = source;
        self
    }

    /// Replaces the model (e.g. `ModelStore::fixed(Arc::new(MyModel))`).
    pub fn with_model_store(mut self, models: ModelStore) -> Self {
        self.models = models;
        self
    }
}

/// What became of one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// Scored and stored.
    Done,
    /// Acknowledged without work (malformed, duplicate, claim lost).
    Skipped,
    /// The job was marked failed; acknowledged.
    Failed,
    /// Reported as a batch item failure: SQS delivers it again.
    Retry,
    /// The last attempt gave up: the job is marked failed (so the API reports it) and the
    /// message is reported failed, so SQS moves it to the DLQ at its next receive. The DLQ
    /// then holds exactly the work that exhausted its attempts, and its alarm fires.
    Exhausted,
}

impl Outcome {
    /// The `outcome` label of the Jobs metric.
    fn name(self) -> &'static str {
        match self {
            Outcome::Done => "done",
            Outcome::Skipped => "skipped",
            Outcome::Failed => "failed",
            Outcome::Retry => "retry",
            Outcome::Exhausted => "exhausted",
        }
    }
}

/// The Lambda handler: one [`SqsBatchResponse`] naming the messages to deliver again.
pub async fn handle(event: LambdaEvent<SqsEvent>, deps: &Deps) -> Result<SqsBatchResponse, Error> {
    let deadline = work_deadline(event.context.deadline, DEADLINE_MARGIN);
    let records = event.payload.records;
    let outcomes: Vec<(Option<String>, Outcome)> = futures::stream::iter(records)
        .map(|record| async move {
            let outcome = process(&record, deps, deadline).await;
            metrics::counter!("Jobs", "outcome" => outcome.name()).increment(1);
            (record.message_id, outcome)
        })
        .buffer_unordered(MESSAGES_IN_FLIGHT)
        .collect()
        .await;
    let mut response = SqsBatchResponse::default();
    for (message_id, outcome) in outcomes {
        if matches!(outcome, Outcome::Retry | Outcome::Exhausted) {
            match message_id {
                Some(id) => response.add_failure(id),
                None => tracing::error!("a message without a messageId cannot be retried"),
            }
        }
    }
    Ok(response)
}

/// The instant work must stop: the deadline (epoch ms) less the margin; `None` when the
/// context carries no deadline (0).
fn work_deadline(deadline_ms: u64, margin: Duration) -> Option<Instant> {
    if deadline_ms == 0 {
        return None;
    }
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default();
    let remaining = Duration::from_millis(deadline_ms.saturating_sub(now_ms));
    Some(Instant::now() + remaining.saturating_sub(margin))
}

async fn process(record: &SqsMessage, deps: &Deps, deadline: Option<Instant>) -> Outcome {
    let message_id = record.message_id.as_deref().unwrap_or_default();
    let request = match ComputeRequested::from_json(record.body.as_deref().unwrap_or_default()) {
        Ok(request) => request,
        Err(err) => {
            tracing::error!(message_id, error = %err, "malformed message acknowledged: it can never succeed");
            return Outcome::Skipped;
        }
    };
    let receive_count: u32 = record
        .attributes
        .get("ApproximateReceiveCount")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    // When SQS received the message: the queue lag is measured from it at the claim.
    let sent_at_ms: Option<u64> = record
        .attributes
        .get("SentTimestamp")
        .and_then(|v| v.parse().ok());
    let job = Job {
        sent_at_ms,
        subject: request.subject_id,
        job_id: request.job_id,
        claim_id: ClaimId::new(),
        last_attempt: receive_count >= deps.max_receive_count,
        deadline,
    };
    let span = tracing::info_span!(
        "job",
        subject_id = %job.subject,
        job_id = %job.job_id,
        message_id,
        receive_count,
        trace_id = request.trace_id.as_deref().unwrap_or_default(),
    );
    job.run(deps).instrument(span).await
}

struct Job {
    sent_at_ms: Option<u64>,
    subject: SubjectId,
    job_id: JobId,
    claim_id: ClaimId,
    last_attempt: bool,
    deadline: Option<Instant>,
}

enum Computed {
    Scored(ScoreResult),
    NoData(FeatureSummary),
}

impl Job {
    async fn run(&self, deps: &Deps) -> Outcome {
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            if self.last_attempt {
                tracing::warn!("the last attempt started too close to the function's deadline");
                return self
                    .give_up(deps, None, ErrorCode::DeadlineExceeded, None)
                    .await;
            }
            tracing::warn!("not started: the invocation's deadline is near");
            return Outcome::Retry;
        }
        let started = Instant::now();
        match deps
            .scores
            .claim(
                &self.subject,
                self.job_id,
                &self.claim_id,
                Utc::now(),
                deps.lease,
                deps.max_receive_count,
            )
            .await
        {
            Ok(ClaimOutcome::Claimed(record)) => {
                tracing::info!(attempts = record.attempts, "job claimed");
                if let Some(sent_at_ms) = self.sent_at_ms {
                    let lag_ms = (Utc::now().timestamp_millis() as u64).saturating_sub(sent_at_ms);
                    metrics::histogram!("QueueLag").record(lag_ms as f64);
                }
            }
            Ok(ClaimOutcome::NotClaimable(Some(current)))
                if current.is_claimable(self.job_id, Utc::now())
                    && current.attempts >= deps.max_receive_count =>
            {
                // Every earlier run died (out of memory, out of time) before it could record
                // a failure: stop here instead of running it once more.
                tracing::error!(
                    attempts = current.attempts,
                    "job out of attempts: marking it failed instead of running it again"
                );
                return self
                    .mark_failed(deps, None, ErrorCode::AttemptsExhausted, None)
                    .await;
            }
            Ok(ClaimOutcome::NotClaimable(current)) => {
                tracing::info!(
                    status = current.as_ref().map(|r| r.status.as_str()),
                    current_job_id = current.as_ref().map(|r| r.job_id.to_string()),
                    "job not claimable (finished, held by another worker, or replaced): acknowledged"
                );
                return Outcome::Skipped;
            }
            Err(err) => {
                tracing::error!(error = %shared::error::chain(&err), retryable = err.is_retryable(), "claim failed");
                return Outcome::Retry;
            }
        }

        let work = self.compute(deps);
        let computed = match self.deadline {
            Some(deadline) => tokio::time::timeout_at(deadline, work).await,
            None => Ok(work.await),
        };
        match computed {
            Ok(Ok(Computed::Scored(result))) => self.complete(deps, result, started).await,
            Ok(Ok(Computed::NoData(summary))) => {
                // Counts only: safe to show, and they tell an empty dataset from a broken one.
                let message = format!(
                    "No transactions were found for this subject ({} objects, {} malformed lines).",
                    summary.objects, summary.malformed_lines
                );
                self.fail(deps, ErrorCode::NoData, Some(message)).await
            }
            Ok(Err(err)) if err.is_retryable() && !self.last_attempt => {
                tracing::warn!(error = %shared::error::chain(&err), "transient failure: the message will be delivered again");
                Outcome::Retry
            }
            Ok(Err(err)) if err.is_retryable() => {
                tracing::warn!(error = %shared::error::chain(&err), "transient failure on the last attempt");
                self.give_up(deps, Some(&self.claim_id), err.code(), None)
                    .await
            }
            Ok(Err(err)) => {
                tracing::warn!(error = %shared::error::chain(&err), "job failed");
                self.fail(deps, err.code(), None).await
            }
            Err(_elapsed) if !self.last_attempt => {
                tracing::warn!("stopped at the deadline: the message will be delivered again");
                Outcome::Retry
            }
            Err(_elapsed) => {
                tracing::warn!("the last attempt ran out of function time");
                self.give_up(
                    deps,
                    Some(&self.claim_id),
                    ErrorCode::DeadlineExceeded,
                    None,
                )
                .await
            }
        }
    }

    async fn compute(&self, deps: &Deps) -> Result<Computed, Error> {
        let model = deps.models.current().await?;
        let summary = deps.features.gather(&self.subject).await?;
        if summary.rows == 0 {
            return Ok(Computed::NoData(summary));
        }
        let result = tokio::task::spawn_blocking(move || model.score(&summary)).await??;
        Ok(Computed::Scored(result))
    }

    async fn complete(&self, deps: &Deps, result: ScoreResult, started: Instant) -> Outcome {
        let stored = deps
            .scores
            .complete(
                &self.subject,
                &self.claim_id,
                &result,
                Utc::now(),
                deps.result_ttl,
            )
            .await;
        match stored {
            Ok(Some(_)) => {
                let summary = &result.feature_summary;
                metrics::histogram!("JobDuration").record(started.elapsed().as_secs_f64() * 1000.0);
                metrics::counter!("RowsRead").increment(summary.rows);
                metrics::counter!("BytesRead").increment(summary.bytes);
                metrics::counter!("Scores", "band" => result.band.as_str()).increment(1);
                tracing::info!(
                    score = result.score,
                    band = result.band.as_str(),
                    model_version = %result.model_version,
                    objects = summary.objects,
                    bytes = summary.bytes,
                    rows = summary.rows,
                    malformed_lines = summary.malformed_lines,
                    duration_ms = started.elapsed().as_millis() as u64,
                    "scored"
                );
                Outcome::Done
            }
            Ok(None) => {
                tracing::warn!("claim lost before the result was stored (lease passed and the job was reclaimed, or replaced): acknowledged");
                Outcome::Skipped
            }
            Err(err) if self.last_attempt => {
                tracing::error!(error = %shared::error::chain(&err), "storing the result failed on the last attempt");
                self.give_up(deps, Some(&self.claim_id), ErrorCode::Unavailable, None)
                    .await
            }
            Err(err) => {
                tracing::warn!(error = %shared::error::chain(&err), "storing the result failed: the message will be delivered again");
                Outcome::Retry
            }
        }
    }

    /// A permanent failure: the job is marked failed and the message acknowledged.
    async fn fail(&self, deps: &Deps, code: ErrorCode, message: Option<String>) -> Outcome {
        self.mark_failed(deps, Some(&self.claim_id), code, message)
            .await
    }

    /// The last attempt's transient failure: the job is marked failed, and the message goes on
    /// to the DLQ. Without a claim (the attempt could not start), any pending/running state of
    /// this job is failed.
    async fn give_up(
        &self,
        deps: &Deps,
        claim: Option<&ClaimId>,
        code: ErrorCode,
        message: Option<String>,
    ) -> Outcome {
        match self.mark_failed(deps, claim, code, message).await {
            Outcome::Failed => Outcome::Exhausted,
            other => other,
        }
    }

    /// Stores the failure with `message` for callers, or the code's public message: never an
    /// error chain, which names tables, ARNs, buckets and keys (the chain is in the log, next to
    /// the job and the Lambda request id).
    async fn mark_failed(
        &self,
        deps: &Deps,
        claim: Option<&ClaimId>,
        code: ErrorCode,
        message: Option<String>,
    ) -> Outcome {
        let message = message.unwrap_or_else(|| code.public_message().to_owned());
        let error = JobError::new(code, message);
        let stored = deps
            .scores
            .fail(
                &self.subject,
                self.job_id,
                claim,
                &error,
                Utc::now(),
                deps.result_ttl,
            )
            .await;
        match stored {
            Ok(Some(_)) => {
                metrics::counter!("JobsFailed", "code" => code.as_str()).increment(1);
                tracing::info!(code = %code, retryable = error.retryable, message = %error.message, "job marked failed");
                Outcome::Failed
            }
            Ok(None) => {
                tracing::warn!(
                    code = %code,
                    "claim lost before the failure was stored: acknowledged"
                );
                Outcome::Skipped
            }
            Err(err) => {
                tracing::error!(error = %shared::error::chain(&err), code = %code, "marking the job failed did not work: the message will be delivered again");
                Outcome::Retry
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadline_leaves_the_margin() {
        assert_eq!(work_deadline(0, DEADLINE_MARGIN), None);
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let far = work_deadline(now_ms + 60_000, Duration::from_secs(5)).unwrap();
        let left = far - Instant::now();
        assert!(
            left <= Duration::from_secs(55) && left > Duration::from_secs(50),
            "{left:?}"
        );
        let past = work_deadline(now_ms - 1_000, DEADLINE_MARGIN).unwrap();
        assert!(past <= Instant::now());
    }
}
