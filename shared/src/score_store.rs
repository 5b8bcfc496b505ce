//! ScoresTable: one item per subject, every status transition a conditional write.
//!
//! | transition | method | condition |
//! |---|---|---|
//! | absent / expired / stale / retryable-failed -> pending | [`ScoreStore::start_job`] (`Missing`) | see [`StartMode`] |
//! | anything but pending/running -> pending | [`ScoreStore::start_job`] (`Refresh`) | |
//! | pending past the dispatch timeout, or running past its lease: publish again | [`ScoreStore::redispatch`] | same job id |
//! | pending, or running with an expired lease -> running | [`ScoreStore::claim`] | same job id |
//! | running -> done / failed | [`ScoreStore::complete`] / [`ScoreStore::fail`] | same claim id |
//! | any -> stale | [`ScoreStore::mark_stale`] | item exists |

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};
use chrono::{DateTime, Utc};

use crate::domain::{
    ClaimId, ErrorCode, JobError, JobId, RequestReason, ScoreRecord, ScoreResult, ScoreStatus,
    SubjectId,
};
use crate::expression::{Expressions, WithExpressions};
use crate::Error;

use crate::batch_get::batch_get_items;
pub use crate::batch_get::BATCH_GET_MAX;

/// Which existing items a new job may replace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartMode {
    /// A read that found no usable result: starts when the item is absent, expired, stale, or a
    /// retryable failure older than `failed_retry_after` (`no_data_retry_after` for `NO_DATA`:
    /// a made-up subject must not start a job every minute).
    Missing {
        failed_retry_after: Duration,
        no_data_retry_after: Duration,
    },
    /// A forced recomputation: starts unless a job is already pending or running.
    Refresh,
}

#[derive(Debug, Clone, PartialEq)]
pub enum StartOutcome {
    /// This caller created the job and must publish `compute.requested`.
    Started(ScoreRecord),
    /// Another job or a usable result is there (the current item, when it could be read).
    Existing(Option<ScoreRecord>),
}

#[derive(Debug, Clone, PartialEq)]
pub enum ClaimOutcome {
    /// This worker holds the job until `lease_until`.
    Claimed(ScoreRecord),
    /// Done already, held by another worker under a live lease, or superseded by another job.
    NotClaimable(Option<ScoreRecord>),
}

#[derive(Clone, Debug)]
pub struct ScoreStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

fn s(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_owned())
}

fn n(value: i64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn status(value: ScoreStatus) -> AttributeValue {
    s(value.as_str())
}

fn key(subject: &SubjectId) -> HashMap<String, AttributeValue> {
    HashMap::from([("subject_id".to_owned(), s(subject.as_str()))])
}

fn expires_at(now: DateTime<Utc>, ttl: Duration) -> i64 {
    now.timestamp() + ttl.as_secs() as i64
}

fn record_from(
    item: Option<HashMap<String, AttributeValue>>,
) -> Result<Option<ScoreRecord>, Error> {
    item.filter(|i| !i.is_empty())
        .map(serde_dynamo::from_item)
        .transpose()
        .map_err(Error::from)
}

impl ScoreStore {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// The subject's record, or `None` when there is none or it has expired. Strongly
    /// consistent, so a caller polling after a write sees it.
    pub async fn get(
        &self,
        subject: &SubjectId,
        now: DateTime<Utc>,
    ) -> Result<Option<ScoreRecord>, Error> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(subject)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| Error::aws("DynamoDB", "GetItem", e))?;
        Ok(record_from(output.item)?.filter(|r| !r.is_expired(now)))
    }

    /// The records of many subjects (absent and expired ones left out), in chunks of 100 with
    /// unprocessed keys retried with backoff.
    pub async fn batch_get(
        &self,
        subjects: &[SubjectId],
        now: DateTime<Utc>,
    ) -> Result<HashMap<SubjectId, ScoreRecord>, Error> {
        let keys = subjects.iter().map(key).collect();
        let (items, _) = batch_get_items(&self.client, &self.table, keys, None).await?;
        let mut found = HashMap::with_capacity(items.len());
        for item in items {
            let record: ScoreRecord = serde_dynamo::from_item(item)?;
            if !record.is_expired(now) {
                found.insert(record.subject_id.clone(), record);
            }
        }
        Ok(found)
    }

    /// Creates a new `pending` job for the subject if `mode` allows replacing what is there.
    /// Of concurrent callers exactly one gets `Started`.
    pub async fn start_job(
        &self,
        subject: &SubjectId,
        reason: RequestReason,
        mode: StartMode,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> Result<StartOutcome, Error> {
        self.start_traced_job(subject, reason, mode, now, ttl, None)
            .await
    }

    /// [`start_job`](Self::start_job), recording the trace header of the request that started
    /// it (at most [`TRACE_ID_MAX_LEN`](crate::events::TRACE_ID_MAX_LEN) bytes, else dropped).
    pub async fn start_traced_job(
        &self,
        subject: &SubjectId,
        reason: RequestReason,
        mode: StartMode,
        now: DateTime<Utc>,
        ttl: Duration,
        trace_id: Option<&str>,
    ) -> Result<StartOutcome, Error> {
        let trace_id = trace_id
            .filter(|t| t.len() <= crate::events::TRACE_ID_MAX_LEN)
            .map(str::to_owned);
        let record = ScoreRecord {
            subject_id: subject.clone(),
            status: ScoreStatus::Pending,
            job_id: JobId::new(),
            reason,
            attempts: 0,
            requested_at: now,
            dispatched_at: now,
            dispatches: 1,
            started_at: None,
            lease_until: None,
            claim_id: None,
            completed_at: None,
            expires_at: expires_at(now, ttl),
            stale: false,
            result: None,
            error: None,
            trace_id,
        };
        // Each mode binds exactly what its condition uses (DynamoDB rejects anything else).
        let condition = match mode {
            StartMode::Missing {
                failed_retry_after,
                no_data_retry_after,
            } => Expressions::new()
                .condition(
                    "attribute_not_exists(subject_id) OR expires_at <= :now_s OR stale = :true \
                     OR (#status = :failed AND #error.retryable = :true \
                         AND ((#error.#code <> :no_data AND completed_at <= :retry_cutoff) \
                           OR (#error.#code = :no_data AND completed_at <= :no_data_cutoff)))",
                )
                .name("#status", "status")
                .name("#error", "error")
                .name("#code", "code")
                .value(":now_s", n(now.timestamp()))
                .value(":true", AttributeValue::Bool(true))
                .value(":failed", status(ScoreStatus::Failed))
                .value(":no_data", s(ErrorCode::NoData.as_str()))
                .value(
                    ":retry_cutoff",
                    n((now - failed_retry_after).timestamp_millis()),
                )
                .value(
                    ":no_data_cutoff",
                    n((now - no_data_retry_after).timestamp_millis()),
                ),
            StartMode::Refresh => Expressions::new()
                .condition(
                    "attribute_not_exists(subject_id) OR expires_at <= :now_s \
                     OR NOT (#status IN (:pending, :running))",
                )
                .name("#status", "status")
                .value(":now_s", n(now.timestamp()))
                .value(":pending", status(ScoreStatus::Pending))
                .value(":running", status(ScoreStatus::Running)),
        };
        let request = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(serde_dynamo::to_item(&record)?))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .with_expressions(condition)?;
        match request.send().await {
            Ok(_) => Ok(StartOutcome::Started(record)),
            Err(err) => {
                use aws_sdk_dynamodb::operation::put_item::PutItemError;
                if let Some(PutItemError::ConditionalCheckFailedException(e)) =
                    err.as_service_error()
                {
                    let existing = match record_from(e.item.clone())? {
                        Some(r) => Some(r),
                        None => self.get(subject, now).await?,
                    };
                    Ok(StartOutcome::Existing(existing))
                } else {
                    Err(Error::aws("DynamoDB", "PutItem", err))
                }
            }
        }
    }

    /// Marks a pending job whose message was probably lost (not claimed within `after` of its
    /// last dispatch), or a running job whose worker died (lease passed), as dispatched again,
    /// provided it was dispatched `dispatches` times so far (the caller's view of the record;
    /// callers grow `after` with it). Of concurrent callers exactly one gets the record back and
    /// must publish `compute.requested` (reason `redispatch`) for the same job id.
    pub async fn redispatch(
        &self,
        subject: &SubjectId,
        job_id: JobId,
        dispatches: u32,
        now: DateTime<Utc>,
        after: Duration,
    ) -> Result<Option<ScoreRecord>, Error> {
        let cutoff = now - after;
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(subject)))
            .with_expressions(
                Expressions::new()
                    .update("SET dispatched_at = :now_ms, dispatches = :next")
                    .condition(
                        "job_id = :job AND expires_at > :now_s AND dispatched_at <= :cutoff \
                         AND (dispatches = :seen OR (attribute_not_exists(dispatches) AND :seen = :one)) \
                         AND (#status = :pending OR (#status = :running AND lease_until < :now_ms))",
                    )
                    .name("#status", "status")
                    .value(":seen", n(i64::from(dispatches)))
                    .value(":next", n(i64::from(dispatches) + 1))
                    .value(":one", n(1))
                    .value(":job", s(&job_id.to_string()))
                    .value(":now_ms", n(now.timestamp_millis()))
                    .value(":now_s", n(now.timestamp()))
                    .value(":cutoff", n(cutoff.timestamp_millis()))
                    .value(":pending", status(ScoreStatus::Pending))
                    .value(":running", status(ScoreStatus::Running)),
            )?
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match result {
            Ok(output) => record_from(output.attributes),
            Err(err) if is_conditional_update_failure(&err) => Ok(None),
            Err(err) => Err(Error::aws("DynamoDB", "UpdateItem", err)),
        }
    }

    /// Claims the job for one worker until `now + lease`: `pending`, or `running` whose lease
    /// has passed (its worker died), as long as it was claimed fewer than `max_attempts` times.
    /// Of concurrent claimers exactly one wins. A job that is claimable but out of attempts
    /// comes back as `NotClaimable` (see [`ScoreRecord::is_claimable`]); the caller fails it.
    pub async fn claim(
        &self,
        subject: &SubjectId,
        job_id: JobId,
        claim_id: &ClaimId,
        now: DateTime<Utc>,
        lease: Duration,
        max_attempts: u32,
    ) -> Result<ClaimOutcome, Error> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(subject)))
            .with_expressions(
                Expressions::new()
                    .update(
                        "SET #status = :running, started_at = :now_ms, lease_until = :lease, \
                         claim_id = :claim, attempts = if_not_exists(attempts, :zero) + :one",
                    )
                    .condition(
                        "job_id = :job AND expires_at > :now_s \
                         AND (attribute_not_exists(attempts) OR attempts < :max_attempts) \
                         AND (#status = :pending OR (#status = :running AND lease_until < :now_ms))",
                    )
                    .name("#status", "status")
                    .value(":job", s(&job_id.to_string()))
                    .value(":max_attempts", n(i64::from(max_attempts)))
                    .value(":claim", s(&claim_id.0))
                    .value(":now_ms", n(now.timestamp_millis()))
                    .value(":now_s", n(now.timestamp()))
                    .value(":lease", n((now + lease).timestamp_millis()))
                    .value(":pending", status(ScoreStatus::Pending))
                    .value(":running", status(ScoreStatus::Running))
                    .value(":zero", n(0))
                    .value(":one", n(1)),
            )?
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(output) => Ok(match record_from(output.attributes)? {
                Some(record) => ClaimOutcome::Claimed(record),
                None => ClaimOutcome::NotClaimable(None),
            }),
            Err(err) => {
                use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
                if let Some(UpdateItemError::ConditionalCheckFailedException(e)) =
                    err.as_service_error()
                {
                    let current = match record_from(e.item.clone())? {
                        Some(r) => Some(r),
                        None => self.get(subject, now).await?,
                    };
                    Ok(ClaimOutcome::NotClaimable(current))
                } else {
                    Err(Error::aws("DynamoDB", "UpdateItem", err))
                }
            }
        }
    }

    /// `running -> done`, only for the holder of `claim_id`. `None`: the claim was lost (the
    /// lease passed and another worker reclaimed the job, or a newer job replaced it). Numbers
    /// outside DynamoDB's range are stored clamped ([`ScoreResult::storable`]).
    pub async fn complete(
        &self,
        subject: &SubjectId,
        claim_id: &ClaimId,
        result: &ScoreResult,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> Result<Option<ScoreRecord>, Error> {
        self.finish(
            subject,
            FinishCondition::Claim(claim_id),
            "SET #status = :final, #result = :value, completed_at = :now_ms, expires_at = :expires \
             REMOVE lease_until, #error",
            ScoreStatus::Done,
            serde_dynamo::to_attribute_value(result.storable())?,
            now,
            ttl,
        )
        .await
    }

    /// `running -> failed` for the holder of `claim`. Without a claim (a job out of attempts, or
    /// a message on its last delivery whose job could not be claimed): `job_id`, when pending or
    /// running under a lease that has passed, `-> failed`; a job another worker holds under a
    /// live lease is left alone.
    pub async fn fail(
        &self,
        subject: &SubjectId,
        job_id: JobId,
        claim: Option<&ClaimId>,
        error: &JobError,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> Result<Option<ScoreRecord>, Error> {
        let condition = match claim {
            Some(claim_id) => FinishCondition::Claim(claim_id),
            None => FinishCondition::Job(job_id),
        };
        self.finish(
            subject,
            condition,
            "SET #status = :final, #error = :value, completed_at = :now_ms, expires_at = :expires \
             REMOVE lease_until, #result",
            ScoreStatus::Failed,
            serde_dynamo::to_attribute_value(error)?,
            now,
            ttl,
        )
        .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn finish(
        &self,
        subject: &SubjectId,
        condition: FinishCondition<'_>,
        update: &str,
        final_status: ScoreStatus,
        value: AttributeValue,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> Result<Option<ScoreRecord>, Error> {
        let expressions = Expressions::new()
            .update(update)
            .name("#status", "status")
            .name("#result", "result")
            .name("#error", "error")
            .value(":final", status(final_status))
            .value(":value", value)
            .value(":now_ms", n(now.timestamp_millis()))
            .value(":expires", n(expires_at(now, ttl)))
            .value(":running", status(ScoreStatus::Running));
        let expressions = match condition {
            FinishCondition::Claim(claim_id) => expressions
                .condition("#status = :running AND claim_id = :claim")
                .value(":claim", s(&claim_id.0)),
            FinishCondition::Job(job_id) => expressions
                .condition(
                    "job_id = :job AND (#status = :pending \
                     OR (#status = :running AND (attribute_not_exists(lease_until) OR lease_until < :now_ms)))",
                )
                .value(":job", s(&job_id.to_string()))
                .value(":pending", status(ScoreStatus::Pending)),
        };
        let request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(subject)))
            .with_expressions(expressions)?
            .return_values(ReturnValue::AllNew);
        match request.send().await {
            Ok(output) => record_from(output.attributes),
            Err(err) if is_conditional_update_failure(&err) => Ok(None),
            Err(err) => Err(Error::aws("DynamoDB", "UpdateItem", err)),
        }
    }

    /// Flags the subject's record (if any) as computed from outdated data, so the next read
    /// starts a new job. Returns whether there was a record.
    pub async fn mark_stale(&self, subject: &SubjectId) -> Result<bool, Error> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(subject)))
            .with_expressions(
                Expressions::new()
                    .update("SET stale = :true")
                    .condition("attribute_exists(subject_id)")
                    .value(":true", AttributeValue::Bool(true)),
            )?
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(err) if is_conditional_update_failure(&err) => Ok(false),
            Err(err) => Err(Error::aws("DynamoDB", "UpdateItem", err)),
        }
    }
}

enum FinishCondition<'a> {
    Claim(&'a ClaimId),
    Job(JobId),
}

fn is_conditional_update_failure<R>(
    err: &aws_smithy_runtime_api::client::result::SdkError<
        aws_sdk_dynamodb::operation::update_item::UpdateItemError,
        R,
    >,
) -> bool {
    matches!(
        err.as_service_error(),
        Some(aws_sdk_dynamodb::operation::update_item::UpdateItemError::ConditionalCheckFailedException(_))
    )
}
