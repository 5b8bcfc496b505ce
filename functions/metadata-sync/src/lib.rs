//! metadata-sync: S3 event notifications (MetadataQueue) -> CatalogTable, in bulk, order-safe,
//! loss-free; subjects whose datasets changed get their score marked stale.
//!
//! One invocation ([`handle`] -> [`sync_batch`]):
//! 1. Each SQS body is read ([`notice`]): an `s3:TestEvent` is acknowledged with a log line;
//!    an S3 event notification gives one [`notice::Notice`] per record: the key URL-decoded the
//!    way S3 encodes it, `ObjectCreated:*` or `ObjectRemoved:*`, and its place in the key's
//!    event order. Records for other buckets than `DATA_BUCKET`, and other event kinds
//!    (restore, tagging, ...), are ignored with a log line.
//! 2. Per key, only the newest record of the batch is worked on (the others are superseded).
//! 3. A creation is turned into an upsert with HeadObject (size, ETag, content type, last
//!    modified, user metadata: the object as it is now); a HeadObject 404 (the object was deleted
//!    meanwhile) and a removal become a tombstone (`deleted`, `expires_at = now + tombstone
//!    TTL`). The data bucket is versioned: a plain delete leaves a delete marker
//!    (`ObjectRemoved:DeleteMarkerCreated`, a removal), while `ObjectRemoved:Delete` naming a
//!    `versionId` deleted one version, after which the key may still exist (an older version, or
//!    the object a deleted delete marker hid): it is resolved like a creation, with HeadObject.
//!    HeadObjects run concurrently ([`HEAD_CONCURRENCY`]).
//! 4. All upserts and tombstones of the batch go through ONE [`CatalogStore::apply`] call: it
//!    writes them as conditional puts (only where the stored sequencer is older) in
//!    TransactWriteItems calls of up to 100, so concurrent invocations cannot regress a key.
//!    Its [`ApplyReport`] (items written, skipped, DynamoDB requests) is logged.
//! 5. For every key of the batch's catalog changes under `datasets/{subject_id}/` (a valid
//!    subject id), the subject's score is marked stale once per batch
//!    ([`ScoreStore::mark_stale`]), after the catalog write, so that the recomputation it causes
//!    reads the new catalog. Changes that `apply` skipped as already written count too: a
//!    message redelivered because its mark failed must mark again (the price: a duplicate
//!    delivery marks a score stale once more than needed).
//!
//! # Order
//! S3's `sequencer` orders the events of one key ([`Sequencer`]'s order); an older event never
//! overwrites a newer one, whatever the delivery order (a deletion is a tombstone, which keeps its
//! sequencer). S3 sends a sequencer with every object event; a record without one is malformed
//! (it fails its message). The local emulator fills them in for moto's records
//! (`emulator::s3_events`).
//!
//! # Failures (partial batch response)
//! Every failure is mapped back to the messages it concerns; only those are reported in
//! `batchItemFailures` and redelivered, never the whole batch:
//! - a body or record that cannot be read (not JSON, not an S3 event, a key that is not UTF-8):
//!   its message (a poison message: it reaches the DLQ after `maxReceiveCount`);
//! - a HeadObject error other than 404: the message of that record;
//! - [`CatalogStore::apply`] failing as a whole (after its own retries): every message that
//!   carried a record for a key in it. They are not retried here one by one: apply already
//!   retried with backoff, so what is left is a throttled or broken table, and SQS redelivery
//!   after the visibility timeout is the better backoff. A redelivered message is idempotent
//!   (its change is skipped if it was written after all);
//! - a failed `mark_stale`: the messages of that subject's keys (redelivered, their catalog
//!   changes are skipped as already applied and the mark is tried again).
//!
//! Superseded records succeed with the message of the newest record of their key: if that one
//! fails, it is redelivered and still supersedes them.

pub mod config;
pub mod error;
pub mod notice;
pub mod object;

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use lambda_runtime::LambdaEvent;
use shared::catalog_store::{split_key, ApplyReport, CatalogEntry, CatalogStore, Sequencer};
use shared::config::{ConfigError, Env};
use shared::domain::SubjectId;
use shared::score_store::ScoreStore;
use tracing::{info, warn};

pub use config::Config;
pub use error::Error;
use notice::{Action, Body, Notice};

/// HeadObject calls in flight at once in one invocation.
pub const HEAD_CONCURRENCY: usize = 16;
/// `mark_stale` calls in flight at once in one invocation.
pub const STALE_CONCURRENCY: usize = 8;

/// Clients and settings, built once per container.
#[derive(Clone, Debug)]
pub struct Deps {
    pub s3: aws_sdk_s3::Client,
    pub catalog: CatalogStore,
    pub scores: ScoreStore,
    /// Records for other buckets are ignored.
    pub data_bucket: String,
    /// How long a deleted object's tombstone stays in the catalog.
    pub tombstone_ttl: Duration,
}

impl Deps {
    /// The function's configuration read from `env` and its clients built from `sdk`: how the
    /// Lambda binary (process environment), the local runner and the tests (the template's
    /// environment of MetadataSyncFunction) all wire it.
    pub fn from_env(env: &Env, sdk: &aws_config::SdkConfig) -> Result<Self, ConfigError> {
        Ok(Self::new(&Config::from_env(env)?, sdk))
    }

    pub fn new(config: &Config, sdk: &aws_config::SdkConfig) -> Self {
        let dynamodb = shared::aws::dynamodb(sdk);
        Self {
            s3: shared::aws::s3(sdk),
            catalog: CatalogStore::new(dynamodb.clone(), &config.catalog_table),
            scores: ScoreStore::new(dynamodb, &config.scores_table),
            data_bucket: config.data_bucket.clone(),
            tombstone_ttl: config.tombstone_ttl,
        }
    }
}

/// The Lambda handler: syncs the batch and reports the messages that failed. Never fails the
/// whole batch: every failure is a message's own (see the crate doc).
pub async fn handle(event: LambdaEvent<SqsEvent>, deps: &Deps) -> Result<SqsBatchResponse, Error> {
    let report = sync_batch(&event.payload.records, deps, Utc::now()).await;
    Ok(report.response())
}

/// What one batch did; [`handle`] logs it and answers with [`BatchReport::response`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BatchReport {
    pub messages: usize,
    pub test_events: usize,
    /// Records for other buckets, or of event kinds that do not change the catalog.
    pub ignored_records: usize,
    /// Records that change the catalog (created / removed, our bucket).
    pub changes: usize,
    /// Records left out because a newer record of the same key was in the batch.
    pub superseded: usize,
    pub head_requests: usize,
    /// Creations whose object was gone at HeadObject (written as tombstones).
    pub vanished: usize,
    /// The catalog write, when there was anything to write and it succeeded.
    pub apply: Option<ApplyReport>,
    /// Subjects whose score was marked stale (those with a score record).
    pub stale_marked: usize,
    /// The ids of the messages that failed, in batch order.
    pub failed: Vec<String>,
}

impl BatchReport {
    /// The partial batch response: the failed messages, nothing else.
    pub fn response(&self) -> SqsBatchResponse {
        let mut response = SqsBatchResponse::default();
        response.batch_item_failures = self
            .failed
            .iter()
            .map(|id| {
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = id.clone();
                failure
            })
            .collect();
        response
    }
}

fn message_id(message: &SqsMessage) -> &str {
    message.message_id.as_deref().unwrap_or_default()
}

/// A change worked on, with the message it came from (index in the batch).
struct Candidate {
    message: usize,
    notice: Notice,
}

enum Resolved {
    Entry {
        entry: CatalogEntry,
        headed: bool,
        vanished: bool,
    },
    Failed(Error),
}

/// Syncs one batch of MetadataQueue messages into the catalog (see the crate doc).
pub async fn sync_batch(messages: &[SqsMessage], deps: &Deps, now: DateTime<Utc>) -> BatchReport {
    let mut sync = BatchSync::new(messages, deps);
    let candidates = sync.read_messages();
    let newest = sync.newest_per_key(candidates);
    let (entries, written_keys) = sync.resolve(newest, now).await;
    if sync.write_catalog(entries, &written_keys).await {
        sync.mark_scores_stale(&written_keys).await;
    }
    sync.finish()
}

/// One batch on its way through [`sync_batch`]'s steps: what was done, and which messages failed.
struct BatchSync<'a> {
    messages: &'a [SqsMessage],
    deps: &'a Deps,
    report: BatchReport,
    /// Indexes into `messages`.
    failed: BTreeSet<usize>,
    /// Per key, every message with a record for it (all fail if the key's write fails).
    contributors: HashMap<String, Vec<usize>>,
}

impl<'a> BatchSync<'a> {
    fn new(messages: &'a [SqsMessage], deps: &'a Deps) -> Self {
        Self {
            messages,
            deps,
            report: BatchReport {
                messages: messages.len(),
                ..BatchReport::default()
            },
            failed: BTreeSet::new(),
            contributors: HashMap::new(),
        }
    }

    /// Step 1: Every message's records; a message with any unreadable record contributes nothing.
    fn read_messages(&mut self) -> Vec<Candidate> {
        let mut candidates = Vec::new();
        for (index, message) in self.messages.iter().enumerate() {
            match read_message(message, self.deps, &mut self.report) {
                Ok(notices) => candidates.extend(notices.into_iter().map(|notice| Candidate {
                    message: index,
                    notice,
                })),
                Err(err) => {
                    warn!(
                        message_id = message_id(message),
                        retryable = err.is_retryable(),
                        error = shared::error::chain(&err),
                        "message cannot be processed"
                    );
                    self.failed.insert(index);
                }
            }
        }
        self.report.changes = candidates.len();
        candidates
    }

    /// Step 2: The newest record per key (by sequencer); the others are superseded.
    fn newest_per_key(&mut self, candidates: Vec<Candidate>) -> Vec<Candidate> {
        let mut newest: HashMap<String, Candidate> = HashMap::new();
        for candidate in candidates {
            let key = candidate.notice.key.clone();
            self.contributors
                .entry(key.clone())
                .or_default()
                .push(candidate.message);
            match newest.get(&key) {
                Some(kept) => {
                    self.report.superseded += 1;
                    if candidate.notice.sequencer > kept.notice.sequencer {
                        newest.insert(key, candidate);
                    }
                }
                None => {
                    newest.insert(key, candidate);
                }
            }
        }
        newest.into_values().collect()
    }

    /// Step 3: The catalog entries: upserts (after a HeadObject) and tombstones, with the keys as S3
    /// names them (not `CatalogEntry::key`, which need not give them back verbatim).
    async fn resolve(
        &mut self,
        newest: Vec<Candidate>,
        now: DateTime<Utc>,
    ) -> (Vec<CatalogEntry>, Vec<String>) {
        let deps = self.deps;
        let resolved: Vec<(Candidate, Resolved)> = futures::stream::iter(newest)
            .map(|candidate| async move {
                let resolved = resolve(&candidate.notice, deps, now).await;
                (candidate, resolved)
            })
            .buffer_unordered(HEAD_CONCURRENCY)
            .collect()
            .await;
        let mut entries = Vec::with_capacity(resolved.len());
        let mut keys = Vec::with_capacity(resolved.len());
        for (candidate, resolved) in resolved {
            match resolved {
                Resolved::Entry {
                    entry,
                    headed,
                    vanished,
                } => {
                    self.report.head_requests += usize::from(headed);
                    self.report.vanished += usize::from(vanished);
                    entries.push(entry);
                    keys.push(candidate.notice.key);
                }
                Resolved::Failed(err) => {
                    self.report.head_requests += 1;
                    warn!(
                        message_id = message_id(&self.messages[candidate.message]),
                        key = candidate.notice.key,
                        retryable = err.is_retryable(),
                        error = shared::error::chain(&err),
                        "record cannot be processed"
                    );
                    self.failed.insert(candidate.message);
                }
            }
        }
        (entries, keys)
    }

    /// Step 4: One bulk write. On failure every message with a key in it fails. Returns whether
    /// the catalog was written.
    async fn write_catalog(&mut self, entries: Vec<CatalogEntry>, keys: &[String]) -> bool {
        if entries.is_empty() {
            return false;
        }
        match self
            .deps
            .catalog
            .apply(entries)
            .await
            .map_err(Error::Catalog)
        {
            Ok(applied) => {
                info!(
                    items = keys.len(),
                    written = applied.written,
                    skipped = applied.skipped,
                    dynamodb_requests = applied.requests,
                    "catalog applied"
                );
                self.report.apply = Some(applied);
                true
            }
            Err(err) => {
                let affected = self.messages_of(keys);
                warn!(
                    items = keys.len(),
                    messages = affected.len(),
                    retryable = err.is_retryable(),
                    error = shared::error::chain(&err),
                    "catalog write failed; failing the messages of its items"
                );
                self.failed.extend(affected);
                false
            }
        }
    }

    /// Step 5: The scores of the subjects whose data changed are marked stale, once per subject,
    /// after the catalog write (so the recomputation reads the new catalog).
    async fn mark_scores_stale(&mut self, keys: &[String]) {
        let mut subjects: HashMap<SubjectId, BTreeSet<usize>> = HashMap::new();
        for key in keys {
            if let Some(subject) = subject_of(key) {
                subjects
                    .entry(subject)
                    .or_default()
                    .extend(self.contributors[key].iter().copied());
            }
        }
        let deps = self.deps;
        let marks: Vec<_> = futures::stream::iter(subjects)
            .map(|(subject, messages)| async move {
                let result =
                    deps.scores
                        .mark_stale(&subject)
                        .await
                        .map_err(|source| Error::MarkStale {
                            subject: subject.to_string(),
                            source,
                        });
                (result, messages)
            })
            .buffer_unordered(STALE_CONCURRENCY)
            .collect()
            .await;
        for (result, affected) in marks {
            match result {
                Ok(true) => self.report.stale_marked += 1,
                Ok(false) => {}
                Err(err) => {
                    warn!(
                        messages = affected.len(),
                        retryable = err.is_retryable(),
                        error = shared::error::chain(&err),
                        "marking a score stale failed; failing the messages of its keys"
                    );
                    self.failed.extend(affected);
                }
            }
        }
    }

    fn messages_of(&self, keys: &[String]) -> BTreeSet<usize> {
        keys.iter()
            .flat_map(|k| self.contributors[k].iter().copied())
            .collect()
    }

    /// The report, with the failed messages' ids, logged once.
    fn finish(mut self) -> BatchReport {
        self.report.failed = self
            .failed
            .iter()
            .map(|i| message_id(&self.messages[*i]).to_owned())
            .collect();
        let report = &self.report;
        let (written, skipped) = report.apply.map_or((0, 0), |a| (a.written, a.skipped));
        for (outcome, count) in [
            ("written", written),
            ("skipped", skipped),
            ("superseded", report.superseded),
        ] {
            metrics::counter!("CatalogObjects", "outcome" => outcome).increment(count as u64);
        }
        metrics::counter!("MessagesFailed").increment(report.failed.len() as u64);
        info!(
            messages = report.messages,
            test_events = report.test_events,
            ignored = report.ignored_records,
            changes = report.changes,
            superseded = report.superseded,
            head_requests = report.head_requests,
            vanished = report.vanished,
            written = report.apply.map(|a| a.written),
            skipped = report.apply.map(|a| a.skipped),
            dynamodb_requests = report.apply.map(|a| a.requests),
            stale_marked = report.stale_marked,
            failed = report.failed.len(),
            "batch synced"
        );
        self.report
    }
}

/// The catalog changes one message asks for.
fn read_message(
    message: &SqsMessage,
    deps: &Deps,
    report: &mut BatchReport,
) -> Result<Vec<Notice>, Error> {
    let body = message.body.as_deref().ok_or(Error::NoBody)?;
    let event = match notice::parse_body(body)? {
        Body::TestEvent { bucket } => {
            info!(
                message_id = message_id(message),
                bucket, "s3:TestEvent acknowledged"
            );
            report.test_events += 1;
            return Ok(Vec::new());
        }
        Body::Notification(event) => event,
    };
    let mut notices = Vec::with_capacity(event.records.len());
    for record in &event.records {
        match notice::notice(record)? {
            None => {
                info!(
                    message_id = message_id(message),
                    event_name = record.event_name,
                    "event kind does not change the catalog; ignored"
                );
                report.ignored_records += 1;
            }
            Some(n) if n.bucket != deps.data_bucket => {
                info!(
                    message_id = message_id(message),
                    bucket = n.bucket,
                    data_bucket = deps.data_bucket,
                    "event for another bucket; ignored"
                );
                report.ignored_records += 1;
            }
            Some(n) => notices.push(n),
        }
    }
    Ok(notices)
}

async fn resolve(notice: &Notice, deps: &Deps, now: DateTime<Utc>) -> Resolved {
    let tombstone = |sequencer: Sequencer| {
        object::tombstone(
            &notice.bucket,
            &notice.key,
            sequencer,
            now,
            deps.tombstone_ttl,
        )
    };
    match notice.action {
        Action::Removed => Resolved::Entry {
            entry: tombstone(notice.sequencer.clone()),
            headed: false,
            vanished: false,
        },
        // What is there now: a creation's object (gone again: a tombstone), or, after one version
        // was deleted, whichever version is current (none: a tombstone).
        Action::Created | Action::VersionRemoved => {
            match object::head(
                &deps.s3,
                &notice.bucket,
                &notice.key,
                notice.sequencer.clone(),
            )
            .await
            {
                Ok(Some(entry)) => Resolved::Entry {
                    entry,
                    headed: true,
                    vanished: false,
                },
                Ok(None) if notice.action == Action::VersionRemoved => Resolved::Entry {
                    entry: tombstone(notice.sequencer.clone()),
                    headed: true,
                    vanished: false,
                },
                Ok(None) => {
                    info!(
                        key = notice.key,
                        event_name = notice.event_name,
                        "object deleted since its creation event; written as a tombstone"
                    );
                    Resolved::Entry {
                        entry: tombstone(notice.sequencer.clone()),
                        headed: true,
                        vanished: true,
                    }
                }
                Err(err) => Resolved::Failed(err),
            }
        }
    }
}

/// The subject whose dataset a key belongs to: `datasets/{subject_id}/...` with a valid id.
pub fn subject_of(key: &str) -> Option<SubjectId> {
    let (dir, _) = split_key(key);
    let id = dir.strip_prefix("datasets/")?;
    SubjectId::parse(id).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_come_from_dataset_keys_only() {
        let id = |k: &str| subject_of(k).map(|s| s.to_string());
        assert_eq!(
            id("datasets/shop-42/2026/11.ndjson").as_deref(),
            Some("shop-42")
        );
        assert_eq!(
            id("datasets/shop-42/a b.ndjson").as_deref(),
            Some("shop-42")
        );
        assert_eq!(id("datasets/shop 42/a.ndjson"), None, "invalid subject id");
        assert_eq!(
            id("datasets/shop-42"),
            None,
            "a file in datasets/, not a subject's"
        );
        assert_eq!(id("models/fraud/2.json"), None);
        assert_eq!(id("top.txt"), None);
    }

    #[test]
    fn response_lists_the_failed_messages() {
        let report = BatchReport {
            failed: vec!["m2".into(), "m5".into()],
            ..BatchReport::default()
        };
        let ids: Vec<_> = report
            .response()
            .batch_item_failures
            .into_iter()
            .map(|f| f.item_identifier)
            .collect();
        assert_eq!(ids, ["m2", "m5"]);
    }
}
