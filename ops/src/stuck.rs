//! `stuck-jobs`: jobs `pending` or `running` past their deadline, found with a paginated,
//! strongly consistent Scan of ScoresTable, then re-dispatched or failed.
//!
//! A job is stuck when its last dispatch is at least `--stuck-after-seconds` old and it is
//! `pending` (nobody claimed it: the message was lost), or `running` with its lease passed (its
//! worker died). That is exactly the condition of `ScoreStore::redispatch` with that delay, so
//! what is listed is what the store agrees to act on. Each action is the store's own conditional
//! write, so a job that moved on since the scan (claimed under a live lease, finished, replaced)
//! is left alone and reported as such:
//!
//! - `redispatch`: `ScoreStore::redispatch`, then `compute.requested` (reason `redispatch`, the
//!   same `job_id`) through `shared::dispatch`, as request-api re-dispatches;
//! - `fail`: `ScoreStore::fail` without a claim (`DEADLINE_EXCEEDED`, retryable), which refuses a
//!   job held under a live lease; notifier then publishes its `score.failed`.

use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use serde::Serialize;
use shared::domain::{ErrorCode, JobError, RequestReason, ScoreRecord, ScoreStatus};
use shared::expression::{Expressions, WithExpressions};
use shared::publisher::Publisher;
use shared::score_store::ScoreStore;

use crate::{time, Clients, Error};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Publish `compute.requested` again for the same job
    Redispatch,
    /// Mark the job failed (DEADLINE_EXCEEDED, retryable): callers may retry it
    Fail,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// ScoresTable's name
    #[arg(long, env = "SCORES_TABLE")]
    pub scores_table: String,
    /// ComputeTopic's ARN (needed by `--action redispatch`)
    #[arg(long, env = "COMPUTE_TOPIC_ARN")]
    pub compute_topic_arn: Option<String>,
    /// A job is stuck when its last dispatch is this old and it is pending, or running with its
    /// lease passed
    #[arg(long, value_name = "SECONDS", default_value_t = 900,
          value_parser = clap::value_parser!(u64).range(1..=shared::config::MAX_SECONDS))]
    pub stuck_after_seconds: u64,
    /// How long a failed job's result is kept (the stack's ResultTtlSeconds)
    #[arg(long, env = "RESULT_TTL_SECONDS", default_value_t = 86_400,
          value_parser = clap::value_parser!(u64).range(1..=shared::config::MAX_SECONDS))]
    pub result_ttl_seconds: u64,
    /// List the stuck jobs and change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// What to do with each stuck job
    #[arg(long, value_enum, required_unless_present = "dry_run")]
    pub action: Option<Action>,
}

/// What happened to one stuck job.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// `--dry-run`: listed only.
    Listed,
    Redispatched,
    Failed,
    /// The store's condition no longer held (claimed, finished or replaced since the scan).
    Skipped,
    /// The action's write or publish failed; the message says why.
    Error(String),
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StuckJob {
    pub subject_id: String,
    pub job_id: String,
    pub status: ScoreStatus,
    pub dispatched_at: DateTime<Utc>,
    pub dispatches: u32,
    pub attempts: u32,
    pub lease_until: Option<DateTime<Utc>>,
    pub outcome: Outcome,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub dry_run: bool,
    pub action: Option<Action>,
    pub stuck_after_seconds: u64,
    /// Items of ScoresTable read that were pending or running (and not expired).
    pub in_progress: usize,
    /// Items that are not a valid ScoreRecord (logged with their key; left alone).
    pub undecodable: usize,
    pub jobs: Vec<StuckJob>,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{} stuck job(s) of {} in progress (last dispatch at least {} s ago){}",
            self.jobs.len(),
            self.in_progress,
            self.stuck_after_seconds,
            if self.dry_run { "; dry run" } else { "" }
        )?;
        for job in &self.jobs {
            writeln!(
                f,
                "  {} {} {} dispatched {} ({}x) attempts {} lease {}: {:?}",
                job.subject_id,
                job.job_id,
                job.status.as_str(),
                time(job.dispatched_at),
                job.dispatches,
                job.attempts,
                job.lease_until.map_or_else(|| "-".to_owned(), time),
                job.outcome
            )?;
        }
        if self.undecodable > 0 {
            writeln!(f, "  {} undecodable item(s), see the log", self.undecodable)?;
        }
        Ok(())
    }
}

/// The rule of `ScoreStore::redispatch`'s condition, with `stuck_after` as the delay.
pub fn is_stuck(record: &ScoreRecord, now: DateTime<Utc>, stuck_after: Duration) -> bool {
    let cutoff = chrono::Duration::from_std(stuck_after)
        .ok()
        .and_then(|d| now.checked_sub_signed(d))
        .unwrap_or(DateTime::<Utc>::MIN_UTC);
    let dispatched_long_ago = record.dispatched_at <= cutoff;
    match record.status {
        ScoreStatus::Pending => dispatched_long_ago,
        ScoreStatus::Running => dispatched_long_ago && record.lease_until.is_some_and(|l| l < now),
        ScoreStatus::Done | ScoreStatus::Failed => false,
    }
}

pub async fn run(args: &Args, clients: &Clients, now: DateTime<Utc>) -> Result<Report, Error> {
    let stuck_after = Duration::from_secs(args.stuck_after_seconds);
    let action = if args.dry_run { None } else { args.action };
    let topic = match (action, &args.compute_topic_arn) {
        (Some(Action::Redispatch), None) => {
            return Err(Error::InvalidArgument(
                "--action redispatch needs --compute-topic-arn (or COMPUTE_TOPIC_ARN)".into(),
            ))
        }
        (_, topic) => topic.clone().unwrap_or_default(),
    };
    let (records, undecodable) = in_progress(&clients.dynamodb, &args.scores_table, now).await?;
    let store = ScoreStore::new(clients.dynamodb.clone(), &args.scores_table);
    let publisher = Publisher::new(clients.sns.clone());
    let ttl = Duration::from_secs(args.result_ttl_seconds);
    let mut jobs = Vec::new();
    for record in records.iter().filter(|r| is_stuck(r, now, stuck_after)) {
        let outcome = match action {
            None => Outcome::Listed,
            Some(Action::Redispatch) => {
                redispatch(&store, &publisher, &topic, record, now, stuck_after).await
            }
            Some(Action::Fail) => fail(&store, record, now, ttl).await,
        };
        tracing::info!(
            subject_id = %record.subject_id,
            job_id = %record.job_id,
            status = record.status.as_str(),
            outcome = ?outcome,
            "stuck job"
        );
        jobs.push(StuckJob {
            subject_id: record.subject_id.as_str().to_owned(),
            job_id: record.job_id.to_string(),
            status: record.status,
            dispatched_at: record.dispatched_at,
            dispatches: record.dispatches,
            attempts: record.attempts,
            lease_until: record.lease_until,
            outcome,
        });
    }
    Ok(Report {
        dry_run: args.dry_run,
        action,
        stuck_after_seconds: args.stuck_after_seconds,
        in_progress: records.len(),
        undecodable,
        jobs,
    })
}

async fn redispatch(
    store: &ScoreStore,
    publisher: &Publisher,
    topic: &str,
    record: &ScoreRecord,
    now: DateTime<Utc>,
    stuck_after: Duration,
) -> Outcome {
    let written = store
        .redispatch(
            &record.subject_id,
            record.job_id,
            record.dispatches,
            now,
            stuck_after,
        )
        .await;
    let redispatched = match written {
        Ok(Some(redispatched)) => redispatched,
        Ok(None) => return Outcome::Skipped,
        Err(err) => return Outcome::Error(shared::error::chain(&err)),
    };
    // The original request's trace id, so the new attempt's logs join the job's story.
    match shared::dispatch::publish_compute_requested(
        publisher,
        topic,
        &redispatched,
        RequestReason::Redispatch,
        redispatched.trace_id.as_deref(),
    )
    .await
    {
        Ok(_) => Outcome::Redispatched,
        // The record says dispatched; the next read after the dispatch timeout (or another run
        // of this command) publishes again.
        Err(err) => Outcome::Error(shared::error::chain(&err)),
    }
}

async fn fail(
    store: &ScoreStore,
    record: &ScoreRecord,
    now: DateTime<Utc>,
    ttl: Duration,
) -> Outcome {
    let error = JobError::new(
        ErrorCode::DeadlineExceeded,
        "stuck in progress; failed by an operator (deferred-ops stuck-jobs)",
    );
    match store
        .fail(&record.subject_id, record.job_id, None, &error, now, ttl)
        .await
    {
        Ok(Some(_)) => Outcome::Failed,
        Ok(None) => Outcome::Skipped,
        Err(err) => Outcome::Error(shared::error::chain(&err)),
    }
}

/// Every pending or running, unexpired record of the table: a strongly consistent Scan, page
/// by page (each at most 1 MB, DynamoDB's limit), filtered by status on the server. Returns the
/// records and how many items did not decode.
async fn in_progress(
    dynamodb: &aws_sdk_dynamodb::Client,
    table: &str,
    now: DateTime<Utc>,
) -> Result<(Vec<ScoreRecord>, usize), Error> {
    let mut records = Vec::new();
    let mut undecodable = 0;
    // The SDK's paginator follows LastEvaluatedKey (each page at most 1 MB).
    let mut items = dynamodb
        .scan()
        .table_name(table)
        .consistent_read(true)
        .with_expressions(
            Expressions::new()
                .filter("#status IN (:pending, :running)")
                .name("#status", "status")
                .value(":pending", AttributeValue::S("pending".into()))
                .value(":running", AttributeValue::S("running".into())),
        )?
        .into_paginator()
        .items()
        .send();
    while let Some(item) = items.next().await {
        let item = item.map_err(|e| shared::Error::aws("DynamoDB", "Scan", e))?;
        let key = item.get("subject_id").cloned();
        match serde_dynamo::from_item::<_, ScoreRecord>(item) {
            Ok(record) if !record.is_expired(now) => records.push(record),
            Ok(_) => {}
            Err(err) => {
                undecodable += 1;
                tracing::warn!(key = ?key, error = %err, "not a ScoreRecord; left alone");
            }
        }
    }
    Ok((records, undecodable))
}
