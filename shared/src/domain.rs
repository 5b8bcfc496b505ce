//! Domain types: subjects, jobs, score records and results.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A subject (a shop) whose score is computed: 1..=128 characters of `[A-Za-z0-9._:-]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SubjectId(String);

/// Why a subject id was rejected; the message is fit for an HTTP `detail`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidSubjectId {
    #[error("subject id must not be empty")]
    Empty,
    #[error("subject id is {0} characters long; at most 128 are allowed")]
    TooLong(usize),
    #[error("subject id contains {0:?}; only letters, digits and . _ : - are allowed")]
    BadCharacter(char),
}

impl SubjectId {
    pub const MAX_LEN: usize = 128;

    pub fn parse(value: &str) -> Result<Self, InvalidSubjectId> {
        if value.is_empty() {
            return Err(InvalidSubjectId::Empty);
        }
        let len = value.chars().count();
        if len > Self::MAX_LEN {
            return Err(InvalidSubjectId::TooLong(len));
        }
        if let Some(bad) = value
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-')))
        {
            return Err(InvalidSubjectId::BadCharacter(bad));
        }
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The catalog `dir` (and S3 prefix without the trailing slash) of this subject's datasets.
    pub fn dataset_dir(&self) -> String {
        format!("datasets/{}", self.0)
    }
}

impl TryFrom<String> for SubjectId {
    type Error = InvalidSubjectId;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<SubjectId> for String {
    fn from(value: SubjectId) -> Self {
        value.0
    }
}

impl fmt::Display for SubjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One computation of one subject: a ULID, so ids sort by creation time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct JobId(ulid::Ulid);

impl JobId {
    pub fn new() -> Self {
        Self(ulid::Ulid::new())
    }
}

impl Default for JobId {
    fn default() -> Self {
        Self::new()
    }
}

impl TryFrom<String> for JobId {
    type Error = ulid::DecodeError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl std::str::FromStr for JobId {
    type Err = ulid::DecodeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // 26 base-32 characters hold 130 bits and a ULID has 128, so the first is 0-7. The ulid
        // crate drops the 2 extra bits: "8ZZ…" would read as "0ZZ…", two texts for one job.
        if s.as_bytes()
            .first()
            .is_some_and(|c| !(b'0'..=b'7').contains(c))
        {
            return Err(ulid::DecodeError::InvalidChar);
        }
        ulid::Ulid::from_string(s).map(Self)
    }
}

impl From<JobId> for String {
    fn from(value: JobId) -> Self {
        value.0.to_string()
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Identifies one claim on a job: a job reclaimed after its lease expired gets a new claim id,
/// so the earlier holder can no longer complete it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ClaimId(pub String);

impl ClaimId {
    pub fn new() -> Self {
        Self(ulid::Ulid::new().to_string())
    }
}

impl Default for ClaimId {
    fn default() -> Self {
        Self::new()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScoreStatus {
    Pending,
    Running,
    Done,
    Failed,
}

impl ScoreStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Done => "done",
            Self::Failed => "failed",
        }
    }

    pub fn is_finished(self) -> bool {
        matches!(self, Self::Done | Self::Failed)
    }
}

/// Why a computation was requested.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RequestReason {
    /// No usable result existed.
    Miss,
    /// A caller forced a recomputation.
    Refresh,
    /// The subject's data changed since the result was computed.
    Stale,
    /// A pending job nobody claimed, or a running job whose lease passed, was published again.
    Redispatch,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Band {
    Low,
    Medium,
    High,
}

impl Band {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
        }
    }
}

/// A feature that pushed the score, with its value and its contribution to the logit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reason {
    pub feature: String,
    pub value: f64,
    pub contribution: f64,
}

/// What the features were computed from, and their values.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct FeatureSummary {
    pub objects: u64,
    pub bytes: u64,
    pub rows: u64,
    pub malformed_lines: u64,
    pub features: BTreeMap<String, f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoreResult {
    /// In [0, 1].
    pub score: f64,
    pub band: Band,
    pub reasons: Vec<Reason>,
    pub model_version: String,
    pub feature_summary: FeatureSummary,
}

/// The largest magnitude stored in a DynamoDB number (whose range ends just under 1e126; an f64
/// of 9.999...e125 rounds up to 1e126), and the smallest non-zero one (1e-130). A number
/// outside that range fails the whole write.
pub const DYNAMODB_MAX_NUMBER: f64 = 9.99e125;
pub const DYNAMODB_MIN_NUMBER: f64 = 1e-130;

/// `x` brought into DynamoDB's number range: larger magnitudes (and infinities) are clamped,
/// smaller ones become 0, NaN becomes 0.
pub fn dynamodb_number(x: f64) -> f64 {
    if x.is_nan() || x.abs() < DYNAMODB_MIN_NUMBER {
        0.0
    } else {
        x.clamp(-DYNAMODB_MAX_NUMBER, DYNAMODB_MAX_NUMBER)
    }
}

impl ScoreResult {
    /// The result with every number in DynamoDB's range (see [`dynamodb_number`]): a feature
    /// computed from extreme data (an amount of 1e300) must not make the result unstorable.
    pub fn storable(&self) -> Self {
        let mut result = self.clone();
        result.score = dynamodb_number(result.score);
        for reason in &mut result.reasons {
            reason.value = dynamodb_number(reason.value);
            reason.contribution = dynamodb_number(reason.contribution);
        }
        for value in result.feature_summary.features.values_mut() {
            *value = dynamodb_number(*value);
        }
        result
    }
}

/// Why a job failed, as callers and subscribers see it.
///
/// | code | retryable | when |
/// |---|---|---|
/// | `NO_DATA` | yes | the subject has no objects, or no valid transaction in them (data may arrive later) |
/// | `CORRUPT_OBJECT` | no | an object cannot be decoded; replacing it marks the score stale, which restarts it |
/// | `MODEL_ERROR` | yes | the model rejects the features or its artifact is invalid (an operator fix makes a retry succeed) |
/// | `UNAVAILABLE` | yes | S3/DynamoDB kept failing transiently until the message's last attempt |
/// | `DEADLINE_EXCEEDED` | yes | the last attempt ran out of function time |
/// | `INTERNAL` | yes | anything else (a bug) |
/// | `TOO_LARGE` | no | the subject's data is over a limit of this deployment (objects, bytes, distinct buyers); new data restarts it |
/// | `ATTEMPTS_EXHAUSTED` | no | the job was claimed as often as it may be and never finished (each run crashed or timed out); a refresh starts it again |
///
/// A code this version does not know (written by a newer one) reads as `UNKNOWN`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    NoData,
    CorruptObject,
    ModelError,
    Unavailable,
    DeadlineExceeded,
    Internal,
    TooLarge,
    AttemptsExhausted,
    #[serde(other)]
    Unknown,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NoData => "NO_DATA",
            Self::CorruptObject => "CORRUPT_OBJECT",
            Self::ModelError => "MODEL_ERROR",
            Self::Unavailable => "UNAVAILABLE",
            Self::DeadlineExceeded => "DEADLINE_EXCEEDED",
            Self::Internal => "INTERNAL",
            Self::TooLarge => "TOO_LARGE",
            Self::AttemptsExhausted => "ATTEMPTS_EXHAUSTED",
            Self::Unknown => "UNKNOWN",
        }
    }

    /// What callers and subscribers are told: the kind of failure and what to do, never a
    /// resource name, key or error chain (those go to the function's log).
    pub fn public_message(self) -> &'static str {
        match self {
            Self::NoData => "No transactions were found for this subject.",
            Self::CorruptObject => {
                "A data file of this subject cannot be decoded; replacing it restarts the computation."
            }
            Self::ModelError => "The model could not score this subject's features.",
            Self::Unavailable => "A dependency was unavailable; the computation can be retried.",
            Self::DeadlineExceeded => "The computation ran out of time; it can be retried.",
            Self::Internal => "The computation failed unexpectedly; it can be retried.",
            Self::TooLarge => {
                "The subject's data is larger than this deployment computes (objects, bytes or distinct buyers)."
            }
            Self::AttemptsExhausted => {
                "Every run of the computation stopped before it finished; a refresh starts it again."
            }
            Self::Unknown => "The computation failed.",
        }
    }

    /// Whether a job failed with this code may be retried by a later request.
    pub fn retryable(self) -> bool {
        !matches!(
            self,
            Self::CorruptObject | Self::TooLarge | Self::AttemptsExhausted
        )
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a job failed; `retryable` says whether a later request may try again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobError {
    pub code: ErrorCode,
    pub message: String,
    pub retryable: bool,
}

impl JobError {
    /// Messages are cut to this many characters, so that a failed record and its `score.failed`
    /// event stay far below DynamoDB's 400 KB item and SNS's 256 KiB message limits whatever
    /// an error says.
    pub const MAX_MESSAGE_CHARS: usize = 512;

    /// A failure with `code`, retryable as the code says.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        let mut message = message.into();
        if message.chars().nth(Self::MAX_MESSAGE_CHARS).is_some() {
            // Longer than the limit: keep MAX - 1 characters and mark the cut.
            let (cut, _) = message
                .char_indices()
                .nth(Self::MAX_MESSAGE_CHARS - 1)
                .expect("longer than the limit");
            message.truncate(cut);
            message.push('…');
        }
        Self {
            code,
            message,
            retryable: code.retryable(),
        }
    }
}

/// One ScoresTable item. Times are epoch milliseconds, except `expires_at`, which is the
/// table's TTL attribute in epoch seconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoreRecord {
    pub subject_id: SubjectId,
    pub status: ScoreStatus,
    pub job_id: JobId,
    pub reason: RequestReason,
    #[serde(default)]
    pub attempts: u32,
    #[serde(with = "chrono::serde::ts_milliseconds")]
    pub requested_at: DateTime<Utc>,
    /// When `compute.requested` was last published for this job.
    #[serde(with = "chrono::serde::ts_milliseconds")]
    pub dispatched_at: DateTime<Utc>,
    /// How many times `compute.requested` was published for this job (1 when it was created);
    /// each re-dispatch waits twice as long as the one before.
    #[serde(default = "one")]
    pub dispatches: u32,
    #[serde(
        default,
        with = "chrono::serde::ts_milliseconds_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(
        default,
        with = "chrono::serde::ts_milliseconds_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub lease_until: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claim_id: Option<ClaimId>,
    #[serde(
        default,
        with = "chrono::serde::ts_milliseconds_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub completed_at: Option<DateTime<Utc>>,
    /// Epoch seconds; DynamoDB deletes the item some time after this, code treats it as gone.
    pub expires_at: i64,
    /// The subject's data changed after this job was requested.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stale: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<ScoreResult>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<JobError>,
    /// The trace header (`X-Amzn-Trace-Id`) of the request that started the job, carried into
    /// its completion event so one search finds the request's whole story.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
}

fn one() -> u32 {
    1
}

impl ScoreRecord {
    /// DynamoDB deletes expired items late: an expired item counts as absent.
    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        self.expires_at <= now.timestamp()
    }

    /// Whether a worker may claim this job now: it is the same job, not expired, and pending or
    /// running under a lease that has passed (its worker died).
    pub fn is_claimable(&self, job_id: JobId, now: DateTime<Utc>) -> bool {
        self.job_id == job_id
            && !self.is_expired(now)
            && match self.status {
                ScoreStatus::Pending => true,
                ScoreStatus::Running => self.lease_until.is_none_or(|lease| lease < now),
                ScoreStatus::Done | ScoreStatus::Failed => false,
            }
    }

    /// How long the job ran, when it has finished.
    pub fn duration_ms(&self) -> Option<i64> {
        let end = self.completed_at?;
        let start = self.started_at.unwrap_or(self.requested_at);
        Some((end - start).num_milliseconds().max(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_id_accepts_the_documented_alphabet() {
        for ok in ["shop-42", "a", "A.b_c:d-9", &"x".repeat(128)] {
            assert_eq!(SubjectId::parse(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn subject_id_rejects_with_a_reason() {
        assert_eq!(SubjectId::parse(""), Err(InvalidSubjectId::Empty));
        assert_eq!(
            SubjectId::parse(&"x".repeat(129)),
            Err(InvalidSubjectId::TooLong(129))
        );
        assert_eq!(
            SubjectId::parse("a/b"),
            Err(InvalidSubjectId::BadCharacter('/'))
        );
        assert_eq!(
            SubjectId::parse("ü"),
            Err(InvalidSubjectId::BadCharacter('ü'))
        );
    }

    #[test]
    fn subject_id_deserialization_validates() {
        assert!(serde_json::from_str::<SubjectId>("\"a b\"").is_err());
        assert_eq!(
            serde_json::from_str::<SubjectId>("\"shop-1\"")
                .unwrap()
                .dataset_dir(),
            "datasets/shop-1"
        );
    }

    #[test]
    fn job_error_messages_are_bounded_at_a_character_boundary() {
        let short = JobError::new(ErrorCode::CorruptObject, "fine");
        assert_eq!(short.message, "fine");
        assert!(!short.retryable);
        let long = JobError::new(ErrorCode::Internal, "é".repeat(100_000));
        assert_eq!(long.message.chars().count(), JobError::MAX_MESSAGE_CHARS);
        assert!(long.message.ends_with('…'));
        let exact = JobError::new(ErrorCode::Internal, "a".repeat(JobError::MAX_MESSAGE_CHARS));
        assert_eq!(exact.message.len(), JobError::MAX_MESSAGE_CHARS);
        assert!(!exact.message.ends_with('…'));
    }

    #[test]
    fn numbers_are_brought_into_dynamodbs_range() {
        assert_eq!(dynamodb_number(0.25), 0.25);
        assert_eq!(dynamodb_number(-3e100), -3e100);
        assert_eq!(dynamodb_number(f64::MAX), DYNAMODB_MAX_NUMBER);
        assert_eq!(dynamodb_number(f64::NEG_INFINITY), -DYNAMODB_MAX_NUMBER);
        assert_eq!(dynamodb_number(f64::MIN_POSITIVE), 0.0);
        assert_eq!(dynamodb_number(f64::NAN), 0.0);
        assert!(
            DYNAMODB_MAX_NUMBER.to_string().len() <= 126,
            "{DYNAMODB_MAX_NUMBER}"
        );
    }

    #[test]
    fn error_codes_read_and_write_as_documented() {
        let code: ErrorCode = serde_json::from_str("\"NO_DATA\"").unwrap();
        assert_eq!(code, ErrorCode::NoData);
        assert_eq!(
            serde_json::to_string(&ErrorCode::DeadlineExceeded).unwrap(),
            "\"DEADLINE_EXCEEDED\""
        );
        let newer: ErrorCode = serde_json::from_str("\"SOMETHING_NEW\"").unwrap();
        assert_eq!(newer, ErrorCode::Unknown);
        for code in [ErrorCode::NoData, ErrorCode::Internal, ErrorCode::Unknown] {
            assert_eq!(serde_json::to_string(&code).unwrap(), format!("\"{code}\""));
        }
    }

    #[test]
    fn job_id_round_trips_as_a_ulid_string() {
        let id = JobId::new();
        let text: String = id.into();
        assert_eq!(text.len(), 26);
        assert_eq!(JobId::try_from(text).unwrap(), id);
        assert!(JobId::try_from("not-a-ulid".to_owned()).is_err());
    }

    /// Regression: a first character above 7 overflowed 128 bits and was read as another id
    /// ("ZZZ…" as "7ZZ…"), so two different texts named one job.
    #[test]
    fn job_ids_beyond_128_bits_are_refused() {
        let max = "7ZZZZZZZZZZZZZZZZZZZZZZZZZ";
        assert_eq!(max.parse::<JobId>().unwrap().to_string(), max);
        for overflow in [
            "8ZZZZZZZZZZZZZZZZZZZZZZZZZ",
            "ZZZZZZZZZZZZZZZZZZZZZZZZZZ",
            "80000000000000000000000000",
        ] {
            assert!(overflow.parse::<JobId>().is_err(), "{overflow}");
            assert!(serde_json::from_str::<JobId>(&format!("\"{overflow}\"")).is_err());
        }
        for text in [
            "",
            "0",
            "01ARZ3NDEKTSV4RRFFQ69G5FA",
            "01ARZ3NDEKTSV4RRFFQ69G5FAVV",
        ] {
            assert!(text.parse::<JobId>().is_err(), "{text}");
        }
    }
}
