//! The asynchronous request-reply policy: what a read or a refresh does with the subject's
//! record, and the conditional writes and publications that follow.
//!
//! [`assess_read`] and [`assess_refresh`] are pure: they look at a record and name the next
//! step. [`settle`] carries the steps out against the store; every write is conditional, so of
//! concurrent requests exactly one creates (or re-dispatches) a job and publishes it, and the
//! others answer with that job.

use std::time::Duration;

use crate::Config;
use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};
use shared::domain::{ErrorCode, RequestReason, ScoreRecord, ScoreStatus, SubjectId};
use shared::score_store::{StartMode, StartOutcome};

use crate::error::ApiError;
use crate::view::Answer;
use crate::Deps;

/// How often a request re-reads the record after a conditional write lost a race, before
/// giving up with `503` (each round means another request changed the record meanwhile).
const MAX_ROUNDS: usize = 4;

/// Subjects of one batch-get settled concurrently.
const BATCH_CONCURRENCY: usize = 8;

/// The `?wait=N` long-poll: first re-read after this, doubling up to [`WAIT_MAX_INTERVAL`].
const WAIT_FIRST_INTERVAL: Duration = Duration::from_millis(100);
const WAIT_MAX_INTERVAL: Duration = Duration::from_secs(1);

/// The next thing to do for a subject.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    Answer(Answer),
    /// Create a new job (conditional put) for this reason.
    Start(RequestReason),
    /// The job's message was probably lost (or its worker died): publish it again.
    Redispatch(ScoreRecord),
}

/// A read (`GET`, batch-get): serve a usable result, or start / re-dispatch the job.
pub fn assess_read(record: Option<ScoreRecord>, now: DateTime<Utc>, config: &Config) -> Step {
    let Some(record) = record.filter(|r| !r.is_expired(now)) else {
        return Step::Start(RequestReason::Miss);
    };
    if record.stale {
        return Step::Start(RequestReason::Stale);
    }
    match record.status {
        ScoreStatus::Done => Step::Answer(Answer::Finished(record)),
        ScoreStatus::Failed if failure_is_retryable(&record, now, config) => {
            Step::Start(RequestReason::Miss)
        }
        ScoreStatus::Failed => Step::Answer(Answer::Finished(record)),
        ScoreStatus::Pending | ScoreStatus::Running => in_progress(record, now, config),
    }
}

/// A forced recomputation: start one unless a job is already pending or running.
pub fn assess_refresh(record: Option<ScoreRecord>, now: DateTime<Utc>, config: &Config) -> Step {
    match record.filter(|r| !r.is_expired(now)) {
        Some(record) if !record.status.is_finished() => in_progress(record, now, config),
        _ => Step::Start(RequestReason::Refresh),
    }
}

fn in_progress(record: ScoreRecord, now: DateTime<Utc>, config: &Config) -> Step {
    if needs_redispatch(&record, now, redispatch_delay(&record, config)) {
        Step::Redispatch(record)
    } else {
        Step::Answer(Answer::InProgress {
            record,
            started: false,
        })
    }
}

/// The same rule as `ScoreStore::start_job`'s condition for a retryable failure.
fn failure_is_retryable(record: &ScoreRecord, now: DateTime<Utc>, config: &Config) -> bool {
    let Some(error) = record.error.as_ref().filter(|e| e.retryable) else {
        return false;
    };
    let retry_after = match error.code {
        ErrorCode::NoData => config.no_data_retry_after,
        _ => config.failed_retry_after,
    };
    record
        .completed_at
        .is_some_and(|at| at <= now - chrono_duration(retry_after))
}

/// How long after its last dispatch a job is dispatched again: the dispatch timeout, doubled
/// for every re-dispatch so far (at most 32 times), so that a job stuck for a reason a new
/// message cannot cure does not add a message every timeout.
pub fn redispatch_delay(record: &ScoreRecord, config: &Config) -> Duration {
    let doublings = record.dispatches.saturating_sub(1).min(5);
    config.dispatch_timeout * (1u32 << doublings)
}

/// The same rule as `ScoreStore::redispatch`'s condition.
fn needs_redispatch(record: &ScoreRecord, now: DateTime<Utc>, delay: Duration) -> bool {
    let dispatched_long_ago = record.dispatched_at <= now - chrono_duration(delay);
    match record.status {
        ScoreStatus::Pending => dispatched_long_ago,
        ScoreStatus::Running => dispatched_long_ago && record.lease_until.is_some_and(|l| l < now),
        ScoreStatus::Done | ScoreStatus::Failed => false,
    }
}

fn chrono_duration(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

/// Whether this request reads or forces a recomputation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intent {
    Read,
    Refresh,
}

/// Carries out `step` (and the steps that follow from what the store answers) until there is
/// an answer for the subject.
pub async fn settle(
    deps: &Deps,
    subject: &SubjectId,
    intent: Intent,
    mut step: Step,
    trace_id: Option<&str>,
) -> Result<Answer, ApiError> {
    let config = &deps.config;
    let assess = |record: Option<ScoreRecord>, now| match intent {
        Intent::Read => assess_read(record, now, config),
        Intent::Refresh => assess_refresh(record, now, config),
    };
    for _ in 0..MAX_ROUNDS {
        step = match step {
            Step::Answer(answer) => return Ok(answer),
            Step::Start(reason) => {
                let now = deps.now();
                let mode = match intent {
                    Intent::Read => StartMode::Missing {
                        failed_retry_after: config.failed_retry_after,
                        no_data_retry_after: config.no_data_retry_after,
                    },
                    Intent::Refresh => StartMode::Refresh,
                };
                let outcome = deps
                    .store
                    .start_traced_job(subject, reason, mode, now, config.result_ttl, trace_id)
                    .await?;
                match outcome {
                    StartOutcome::Started(record) => {
                        dispatch(deps, &record, reason, trace_id).await?;
                        return Ok(Answer::InProgress {
                            record,
                            started: true,
                        });
                    }
                    // Lost the race, or what is there is usable after all (it changed since it
                    // was read): look again at what is there.
                    StartOutcome::Existing(Some(record)) => assess(Some(record), now),
                    StartOutcome::Existing(None) => {
                        assess(deps.store.get(subject, deps.now()).await?, deps.now())
                    }
                }
            }
            Step::Redispatch(record) if deps.backlog.is_backed_up().await => {
                tracing::info!(job_id = %record.job_id, "ComputeQueue is backed up: not re-dispatched");
                return Ok(Answer::InProgress {
                    record,
                    started: false,
                });
            }
            Step::Redispatch(record) => {
                let now = deps.now();
                let redispatched = deps
                    .store
                    .redispatch(
                        subject,
                        record.job_id,
                        record.dispatches,
                        now,
                        redispatch_delay(&record, config),
                    )
                    .await?;
                match redispatched {
                    Some(record) => {
                        dispatch(deps, &record, RequestReason::Redispatch, trace_id).await?;
                        return Ok(Answer::InProgress {
                            record,
                            started: false,
                        });
                    }
                    // Another request re-dispatched it, or the job moved on.
                    None => assess(deps.store.get(subject, now).await?, now),
                }
            }
        };
    }
    match step {
        Step::Answer(answer) => Ok(answer),
        _ => Err(ApiError::Contended {
            subject: subject.clone(),
        }),
    }
}

/// Publishes `compute.requested` for a job this request created or re-dispatched.
async fn dispatch(
    deps: &Deps,
    record: &ScoreRecord,
    reason: RequestReason,
    trace_id: Option<&str>,
) -> Result<(), ApiError> {
    let published = shared::dispatch::publish_compute_requested(
        &deps.publisher,
        &deps.config.compute_topic_arn,
        record,
        reason,
        trace_id,
    )
    .await;
    match published {
        Ok(message_id) => {
            metrics::counter!("JobsStarted", "reason" => reason_name(reason)).increment(1);
            tracing::info!(
                subject_id = %record.subject_id,
                job_id = %record.job_id,
                reason = reason_name(reason),
                message_id,
                "compute.requested published"
            );
            Ok(())
        }
        Err(source) => Err(ApiError::DispatchFailed {
            subject: record.subject_id.clone(),
            retry_after: deps.config.dispatch_timeout.max(Duration::from_secs(1)),
            source,
        }),
    }
}

fn reason_name(reason: RequestReason) -> &'static str {
    match reason {
        RequestReason::Miss => "miss",
        RequestReason::Refresh => "refresh",
        RequestReason::Stale => "stale",
        RequestReason::Redispatch => "redispatch",
    }
}

/// `GET /v1/scores/{subject_id}[?wait=N]`.
pub async fn get(
    deps: &Deps,
    subject: &SubjectId,
    wait: Duration,
    trace_id: Option<&str>,
) -> Result<Answer, ApiError> {
    let answer = read(deps, subject, trace_id).await?;
    if answer.is_finished() || wait.is_zero() {
        return Ok(answer);
    }
    long_poll(deps, subject, answer, wait, trace_id).await
}

/// One plain read: the record, then whatever it calls for.
async fn read(
    deps: &Deps,
    subject: &SubjectId,
    trace_id: Option<&str>,
) -> Result<Answer, ApiError> {
    let now = deps.now();
    let record = deps.store.get(subject, now).await?;
    let step = assess_read(record, now, &deps.config);
    settle(deps, subject, Intent::Read, step, trace_id).await
}

/// Reads again with backoff until the job finishes or `wait` has passed. Each read acts as a
/// plain `GET` would (a job that went stale or was lost meanwhile is started or re-dispatched).
async fn long_poll(
    deps: &Deps,
    subject: &SubjectId,
    mut answer: Answer,
    wait: Duration,
    trace_id: Option<&str>,
) -> Result<Answer, ApiError> {
    let deadline = tokio::time::Instant::now() + wait;
    let mut interval = WAIT_FIRST_INTERVAL;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            return Ok(answer);
        }
        tokio::time::sleep(interval.min(left)).await;
        interval = (interval * 2).min(WAIT_MAX_INTERVAL);
        match read(deps, subject, trace_id).await? {
            finished @ Answer::Finished(_) => return Ok(finished),
            Answer::InProgress { record, started } => {
                // Still "started" while the job this request created waits for a worker.
                let created_here = matches!(&answer, Answer::InProgress { started: true, record: first }
                    if first.job_id == record.job_id);
                answer = Answer::InProgress {
                    record,
                    started: started || created_here,
                };
            }
        }
    }
}

/// `POST /v1/scores/{subject_id}/refresh`.
pub async fn refresh(
    deps: &Deps,
    subject: &SubjectId,
    trace_id: Option<&str>,
) -> Result<Answer, ApiError> {
    settle(
        deps,
        subject,
        Intent::Refresh,
        Step::Start(RequestReason::Refresh),
        trace_id,
    )
    .await
}

/// One subject of a batch-get.
#[derive(Debug, Clone, PartialEq)]
pub enum BatchAnswer {
    Answer(Box<Answer>),
    /// It needs a job, but this request already started as many as one request may
    /// (`REQUEST_MAX_JOB_STARTS`): ask again.
    Deferred(SubjectId),
}

/// `POST /v1/scores/batch-get`: `subjects` distinct, in request order; answers in that order.
/// At most `max_job_starts` new jobs are started; the other subjects that need one are
/// [`BatchAnswer::Deferred`], so that one request cannot fill the compute queue.
pub async fn batch_get(
    deps: &Deps,
    subjects: &[SubjectId],
    trace_id: Option<&str>,
) -> Result<Vec<BatchAnswer>, ApiError> {
    let now = deps.now();
    let mut found = deps.store.batch_get(subjects, now).await?;
    let mut starts_left = deps.config.max_job_starts;
    let steps: Vec<Option<Step>> = subjects
        .iter()
        .map(
            |subject| match assess_read(found.remove(subject), now, &deps.config) {
                Step::Start(_) if starts_left == 0 => None,
                step => {
                    if matches!(step, Step::Start(_)) {
                        starts_left -= 1;
                    }
                    Some(step)
                }
            },
        )
        .collect();
    // Indexed (not `&SubjectId`) closures: a future borrowing the closure's argument trips
    // the compiler's higher-ranked `Send` check in `lambda_http::run`.
    futures::stream::iter(steps.into_iter().enumerate().map(|(i, step)| async move {
        match step {
            Some(step) => settle(deps, &subjects[i], Intent::Read, step, trace_id)
                .await
                .map(|answer| BatchAnswer::Answer(Box::new(answer))),
            None => Ok(BatchAnswer::Deferred(subjects[i].clone())),
        }
    }))
    .buffered(BATCH_CONCURRENCY)
    .try_collect()
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use shared::domain::{JobError, JobId};

    fn config() -> Config {
        Config::from_env(&shared::config::Env::from_lookup(|name| {
            matches!(
                name,
                "SCORES_TABLE" | "COMPUTE_TOPIC_ARN" | "COMPUTE_QUEUE_URL"
            )
            .then(|| "x".to_owned())
        }))
        .expect("defaults are valid")
    }

    fn at(seconds: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_800_000_000 + seconds, 0).unwrap()
    }

    fn record(status: ScoreStatus) -> ScoreRecord {
        ScoreRecord {
            subject_id: SubjectId::parse("shop-1").unwrap(),
            status,
            job_id: JobId::new(),
            reason: RequestReason::Miss,
            attempts: 0,
            requested_at: at(0),
            dispatched_at: at(0),
            dispatches: 1,
            started_at: None,
            lease_until: None,
            claim_id: None,
            completed_at: None,
            expires_at: at(86_400).timestamp(),
            stale: false,
            result: None,
            error: None,
            trace_id: None,
        }
    }

    fn failed(retryable: bool) -> ScoreRecord {
        ScoreRecord {
            completed_at: Some(at(10)),
            error: Some(JobError {
                code: shared::domain::ErrorCode::ModelError,
                message: "y".into(),
                retryable,
            }),
            ..record(ScoreStatus::Failed)
        }
    }

    #[test]
    fn a_read_serves_finished_states_and_starts_missing_ones() {
        let c = config();
        assert_eq!(
            assess_read(None, at(1), &c),
            Step::Start(RequestReason::Miss)
        );
        let done = record(ScoreStatus::Done);
        assert_eq!(
            assess_read(Some(done.clone()), at(1), &c),
            Step::Answer(Answer::Finished(done.clone()))
        );
        let expired = at(86_400);
        assert_eq!(
            assess_read(Some(done.clone()), expired, &c),
            Step::Start(RequestReason::Miss)
        );
        let stale = ScoreRecord {
            stale: true,
            ..done
        };
        assert_eq!(
            assess_read(Some(stale), at(1), &c),
            Step::Start(RequestReason::Stale)
        );
    }

    #[test]
    fn a_retryable_failure_is_reported_until_failed_retry_after() {
        let c = config();
        let f = failed(true);
        let within = at(10) + chrono_duration(c.failed_retry_after) - chrono::Duration::seconds(1);
        assert_eq!(
            assess_read(Some(f.clone()), within, &c),
            Step::Answer(Answer::Finished(f.clone()))
        );
        let after = at(10) + chrono_duration(c.failed_retry_after);
        assert_eq!(
            assess_read(Some(f.clone()), after, &c),
            Step::Start(RequestReason::Miss)
        );
        let permanent = failed(false);
        assert_eq!(
            assess_read(Some(permanent.clone()), at(80_000), &c),
            Step::Answer(Answer::Finished(permanent))
        );
        // A refresh retries at once.
        assert_eq!(
            assess_refresh(Some(f), at(11), &c),
            Step::Start(RequestReason::Refresh)
        );
    }

    #[test]
    fn an_unclaimed_job_is_redispatched_after_the_dispatch_timeout() {
        let c = config();
        let pending = record(ScoreStatus::Pending);
        let timeout = chrono_duration(c.dispatch_timeout);
        assert!(matches!(
            assess_read(
                Some(pending.clone()),
                at(0) + timeout - chrono::Duration::milliseconds(1),
                &c
            ),
            Step::Answer(Answer::InProgress { started: false, .. })
        ));
        assert_eq!(
            assess_read(Some(pending.clone()), at(0) + timeout, &c),
            Step::Redispatch(pending.clone())
        );
        assert_eq!(
            assess_refresh(Some(pending.clone()), at(0) + timeout, &c),
            Step::Redispatch(pending)
        );
    }

    #[test]
    fn a_running_job_is_redispatched_only_once_its_lease_passed() {
        let c = config();
        let running = ScoreRecord {
            started_at: Some(at(1)),
            lease_until: Some(at(151)),
            ..record(ScoreStatus::Running)
        };
        assert!(matches!(
            assess_read(Some(running.clone()), at(100), &c),
            Step::Answer(Answer::InProgress { .. })
        ));
        assert_eq!(
            assess_read(Some(running.clone()), at(152), &c),
            Step::Redispatch(running)
        );
    }
}
