//! What a client sees of a subject's score (the `Score` schema of docs/openapi.yaml).

use chrono::{DateTime, TimeZone, Utc};
use serde::Serialize;
use shared::domain::{
    Band, FeatureSummary, JobError, Reason, RequestReason, ScoreRecord, ScoreStatus,
};

/// Where a request left a subject.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// `done` (fresh) or `failed` (not yet retryable): a finished state, `200`.
    Finished(ScoreRecord),
    /// `pending` / `running`: `202`. `started` when this request created the job.
    InProgress { record: ScoreRecord, started: bool },
}

impl Answer {
    pub fn record(&self) -> &ScoreRecord {
        match self {
            Answer::Finished(record) | Answer::InProgress { record, .. } => record,
        }
    }

    pub fn is_finished(&self) -> bool {
        matches!(self, Answer::Finished(_))
    }
}

/// One subject's answer, as serialized in `200`/`202` bodies and in batch-get results.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScoreView {
    pub subject_id: String,
    /// `done` | `failed` | `started` | `pending` | `running`.
    pub status: &'static str,
    pub job_id: String,
    /// Why the current job was requested.
    pub reason: RequestReason,
    pub requested_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub band: Option<Band>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasons: Option<Vec<Reason>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub feature_summary: Option<FeatureSummary>,
    /// When the result was computed (`done`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub computed_at: Option<DateTime<Utc>>,
    /// When the job failed (`failed`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<JobError>,
    /// Until when this finished state is served (`done`, `failed`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
}

impl From<&Answer> for ScoreView {
    fn from(answer: &Answer) -> Self {
        let record = answer.record();
        let status = match answer {
            Answer::InProgress { started: true, .. } if record.status == ScoreStatus::Pending => {
                "started"
            }
            _ => record.status.as_str(),
        };
        let finished = answer.is_finished();
        let result = record.result.as_ref().filter(|_| finished);
        ScoreView {
            subject_id: record.subject_id.to_string(),
            status,
            job_id: record.job_id.to_string(),
            reason: record.reason,
            requested_at: record.requested_at,
            started_at: record
                .started_at
                .filter(|_| record.status == ScoreStatus::Running),
            score: result.map(|r| r.score),
            band: result.map(|r| r.band),
            reasons: result.map(|r| r.reasons.clone()),
            model_version: result.map(|r| r.model_version.clone()),
            feature_summary: result.map(|r| r.feature_summary.clone()),
            computed_at: record
                .completed_at
                .filter(|_| finished && record.status == ScoreStatus::Done),
            failed_at: record
                .completed_at
                .filter(|_| finished && record.status == ScoreStatus::Failed),
            error: record.error.clone().filter(|_| finished),
            expires_at: finished
                .then(|| Utc.timestamp_opt(record.expires_at, 0).single())
                .flatten(),
        }
    }
}
