//! The JSON events Deferred publishes. Each carries `"version": 1` and a `"type"`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::{Band, JobError, JobId, RequestReason, ScoreRecord, ScoreStatus, SubjectId};
use crate::Error;

/// The `type` of every event Deferred publishes (and its SNS `type` attribute). An unknown type
/// is rejected when an event is parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventType {
    #[serde(rename = "compute.requested")]
    ComputeRequested,
    #[serde(rename = "score.completed")]
    ScoreCompleted,
    #[serde(rename = "score.failed")]
    ScoreFailed,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ComputeRequested => "compute.requested",
            Self::ScoreCompleted => "score.completed",
            Self::ScoreFailed => "score.failed",
        }
    }
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The schema version every event carries. Only 1 exists: any other is rejected when parsed, so
/// a consumer never half-understands a newer event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct EventVersion;

impl TryFrom<u32> for EventVersion {
    type Error = String;
    fn try_from(version: u32) -> Result<Self, String> {
        match version {
            1 => Ok(Self),
            other => Err(format!("event version {other} is not supported (only 1)")),
        }
    }
}

impl From<EventVersion> for u32 {
    fn from(_: EventVersion) -> u32 {
        1
    }
}
/// A longer trace id (taken from a caller's header) is dropped rather than carried along.
pub const TRACE_ID_MAX_LEN: usize = 256;

/// Published on ComputeTopic when a job is created (or re-dispatched); compute consumes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComputeRequested {
    pub version: EventVersion,
    #[serde(rename = "type")]
    pub kind: EventType,
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
            version: EventVersion,
            kind: EventType::ComputeRequested,
            subject_id,
            job_id,
            reason,
            requested_at,
            trace_id: trace_id.filter(|t| t.len() <= TRACE_ID_MAX_LEN),
        }
    }

    /// Parses the message (an unknown version or type fails to parse) and checks it is a
    /// `compute.requested`; the error says what is wrong with it (in at most
    /// [`MAX_ERROR_CHARS`](crate::error::MAX_ERROR_CHARS) characters). A trace id longer than
    /// [`TRACE_ID_MAX_LEN`] is dropped, as [`ComputeRequested::new`] drops it.
    pub fn from_json(body: &str) -> Result<Self, Error> {
        let mut event: Self = serde_json::from_str(body).map_err(|e| {
            let text = format!("not a compute.requested event: {e}");
            Error::InvalidEvent(crate::error::shorten(&text, crate::error::MAX_ERROR_CHARS))
        })?;
        event.trace_id = event.trace_id.filter(|t| t.len() <= TRACE_ID_MAX_LEN);
        if event.kind != EventType::ComputeRequested {
            return Err(Error::InvalidEvent(format!(
                "expected {}, got {}",
                EventType::ComputeRequested,
                event.kind
            )));
        }
        Ok(event)
    }
}

/// Published on ScoreEventsTopic when a job finishes (`score.completed` or `score.failed`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoreEvent {
    pub version: EventVersion,
    #[serde(rename = "type")]
    pub kind: EventType,
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
    /// The trace header of the request that started the job, when it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
}

impl ScoreEvent {
    /// The event for a finished record; `None` while the record is not `done`/`failed`.
    pub fn from_record(record: &ScoreRecord) -> Option<Self> {
        let kind = match record.status {
            ScoreStatus::Done => EventType::ScoreCompleted,
            ScoreStatus::Failed => EventType::ScoreFailed,
            ScoreStatus::Pending | ScoreStatus::Running => return None,
        };
        let result = record.result.as_ref();
        Some(Self {
            version: EventVersion,
            kind,
            subject_id: record.subject_id.clone(),
            job_id: record.job_id,
            status: record.status,
            score: result.map(|r| r.score),
            band: result.map(|r| r.band),
            model_version: result.map(|r| r.model_version.clone()),
            completed_at: record.completed_at.unwrap_or(record.requested_at),
            duration_ms: record.duration_ms(),
            error: record.error.clone(),
            trace_id: record.trace_id.clone(),
        })
    }

    /// SNS message attributes for subscription filter policies (`type`, and `band` when
    /// there is one). Raw delivery to SQS keeps at most 10 attributes; we send at most 3.
    pub fn attributes(&self) -> Vec<(&'static str, String)> {
        let mut attributes = vec![
            ("type", self.kind.as_str().to_owned()),
            ("status", self.status.as_str().to_owned()),
        ];
        if let Some(band) = self.band {
            attributes.push(("band", band.as_str().to_owned()));
        }
        attributes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::JobId;

    fn requested() -> ComputeRequested {
        ComputeRequested::new(
            SubjectId::parse("shop-1").unwrap(),
            JobId::new(),
            RequestReason::Miss,
            Utc::now(),
            None,
        )
    }

    #[test]
    fn an_event_round_trips_with_its_version_and_type() {
        let event = requested();
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["version"], 1);
        assert_eq!(json["type"], "compute.requested");
        assert_eq!(
            ComputeRequested::from_json(&json.to_string()).unwrap(),
            event
        );
    }

    #[test]
    fn unknown_versions_and_types_are_rejected_when_parsed() {
        let mut json = serde_json::to_value(requested()).unwrap();
        json["version"] = 2.into();
        let err = ComputeRequested::from_json(&json.to_string()).unwrap_err();
        assert!(
            err.to_string().contains("version 2 is not supported"),
            "{err}"
        );

        json["version"] = 1.into();
        json["type"] = "compute.cancelled".into();
        assert!(ComputeRequested::from_json(&json.to_string()).is_err());

        json["type"] = "score.completed".into();
        let err = ComputeRequested::from_json(&json.to_string()).unwrap_err();
        assert!(
            err.to_string().contains("expected compute.requested"),
            "{err}"
        );
    }

    /// Regression: serde's error quotes the refused value whole, so a message of any size made
    /// an error (and a log line) as long.
    #[test]
    fn errors_quote_the_message_in_part() {
        let mut json = serde_json::to_value(requested()).unwrap();
        json["type"] = "x".repeat(200_000).into();
        let err = ComputeRequested::from_json(&json.to_string()).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("unknown variant `xxx"), "{text}");
        assert!(text.chars().count() <= crate::error::MAX_ERROR_CHARS + 20);
    }

    /// Regression: only `new` dropped an oversized trace id; one read from a message was kept
    /// whatever its length (and logged with every line of the job).
    #[test]
    fn an_oversized_trace_id_is_dropped_when_parsed_too() {
        let mut json = serde_json::to_value(requested()).unwrap();
        json["trace_id"] = "t".repeat(TRACE_ID_MAX_LEN).into();
        let kept = ComputeRequested::from_json(&json.to_string()).unwrap();
        assert_eq!(kept.trace_id.unwrap().len(), TRACE_ID_MAX_LEN);
        json["trace_id"] = "t".repeat(TRACE_ID_MAX_LEN + 1).into();
        let dropped = ComputeRequested::from_json(&json.to_string()).unwrap();
        assert_eq!(dropped.trace_id, None);
    }
}
