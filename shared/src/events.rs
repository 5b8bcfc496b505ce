//! The JSON events Deferred publishes. Each carries `"version": 1` and a `"type"`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::{Band, JobError, JobId, RequestReason, ScoreRecord, ScoreStatus, SubjectId};
use crate::Error;

pub const EVENT_VERSION: u32 = 1;
pub const COMPUTE_REQUESTED: &str = "compute.requested";
pub const SCORE_COMPLETED: &str = "score.completed";
pub const SCORE_FAILED: &str = "score.failed";
/// A longer trace id (taken from a caller's header) is dropped rather than carried along.
pub const TRACE_ID_MAX_LEN: usize = 256;

/// Published on ComputeTopic when a job is created (or re-dispatched); compute consumes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComputeRequested {
    pub version: u32,
    #[serde(rename = "type")]
    pub kind: String,
    pub subject_id: SubjectId,
    pub job_id: JobId,
    pub reason: RequestReason,
    pub requested_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
}

impl ComputeRequested {
    pub fn new(
        subject_id: SubjectId,
        job_id: JobId,
        reason: RequestReason,
        requested_at: DateTime<Utc>,
        trace_id: Option<String>,
    ) -> Self {
        Self {
            version: EVENT_VERSION,
            kind: COMPUTE_REQUESTED.to_owned(),
            subject_id,
            job_id,
            reason,
            requested_at,
            trace_id: trace_id.filter(|t| t.len() <= TRACE_ID_MAX_LEN),
        }
    }

    /// Parses and checks version and type; the error says what is wrong with the message.
    pub fn from_json(body: &str) -> Result<Self, Error> {
        let event: Self = serde_json::from_str(body)
            .map_err(|e| Error::InvalidEvent(format!("not a compute.requested event: {e}")))?;
        if event.version != EVENT_VERSION || event.kind != COMPUTE_REQUESTED {
            return Err(Error::InvalidEvent(format!(
                "expected {COMPUTE_REQUESTED} version {EVENT_VERSION}, got {} version {}",
                event.kind, event.version
            )));
        }
        Ok(event)
    }
}

/// Published on ScoreEventsTopic when a job finishes (`score.completed` or `score.failed`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoreEvent {
    pub version: u32,
    #[serde(rename = "type")]
    pub kind: String,
    pub subject_id: SubjectId,
    pub job_id: JobId,
    pub status: ScoreStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub band: Option<Band>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_version: Option<String>,
    pub completed_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<JobError>,
}

impl ScoreEvent {
    /// The event for a finished record; `None` while the record is not `done`/`failed`.
    pub fn from_record(record: &ScoreRecord) -> Option<Self> {
        let kind = match record.status {
            ScoreStatus::Done => SCORE_COMPLETED,
            ScoreStatus::Failed => SCORE_FAILED,
            ScoreStatus::Pending | ScoreStatus::Running => return None,
        };
        let result = record.result.as_ref();
        Some(Self {
            version: EVENT_VERSION,
            kind: kind.to_owned(),
            subject_id: record.subject_id.clone(),
            job_id: record.job_id,
            status: record.status,
            score: result.map(|r| r.score),
            band: result.map(|r| r.band),
            model_version: result.map(|r| r.model_version.clone()),
            completed_at: record.completed_at.unwrap_or(record.requested_at),
            duration_ms: record.duration_ms(),
            error: record.error.clone(),
        })
    }

    /// SNS message attributes for subscription filter policies (`type`, and `band` when
    /// there is one). Raw delivery to SQS keeps at most 10 attributes; we send at most 3.
    pub fn attributes(&self) -> Vec<(&'static str, String)> {
        let mut attributes = vec![
            ("type", self.kind.clone()),
            ("status", self.status.as_str().to_owned()),
        ];
        if let Some(band) = self.band {
            attributes.push(("band", band.as_str().to_owned()));
        }
        attributes
    }
}
