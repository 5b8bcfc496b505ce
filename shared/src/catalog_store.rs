//! CatalogTable: one item per data-lake object (`dir` = parent path, `name` = the rest), written
//! in bulk, where a newer S3 event (by `sequencer`) always wins over an older one.
//!
//! Deletes are tombstones (`deleted = true`, with the delete's sequencer and an `expires_at` for
//! the table's TTL): removing the item would forget the sequencer, and a late, older create event
//! would then resurrect the object. Readers skip tombstones.
//!
//! [`CatalogStore::apply`] keeps the newest change per key within the batch, then writes every
//! change with the condition "no item yet, or its sequencer is older" in TransactWriteItems calls
//! of up to 100 items. The condition is what makes concurrent invocations safe: a delete and a
//! re-upload of one key handled by two invocations at once can interleave in any way, and the
//! older event still cannot overwrite the newer one (a read-then-write could: both read the old
//! item, then the older write lands last). A transaction is all or nothing: when some of its
//! conditions fail (those changes are superseded), it is sent again without them.
//!
//! Sequencers are stored normalized ([`Sequencer::new`]: upper case, right-padded with zeros to
//! a fixed width), so that DynamoDB's string comparison in the condition is S3's order.

use std::collections::HashMap;

use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};

use crate::expression::{Expressions, WithExpressions};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::Error;

/// TransactWriteItems takes at most 100 actions a call.
pub const TRANSACT_WRITE_MAX: usize = 100;

/// S3's per-key event order. S3 sequencers are hex strings of varying length, ordered after
/// right-padding the shorter with zeros; a `Sequencer` holds the padded, upper-case form, so that
/// plain string order (Rust's and DynamoDB's) is S3's order.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub struct Sequencer(String);

impl Sequencer {
    /// The width sequencers are padded to (S3's are about 18 hex digits).
    pub const WIDTH: usize = 32;

    pub fn new(value: impl Into<String>) -> Self {
        let mut value = value.into().to_ascii_uppercase();
        if value.len() < Self::WIDTH {
            value.extend(std::iter::repeat_n('0', Self::WIDTH - value.len()));
        }
        Self(value)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<String> for Sequencer {
    fn from(value: String) -> Self {
        Self::new(value)
    }
}

impl From<Sequencer> for String {
    fn from(value: Sequencer) -> String {
        value.0
    }
}

/// One catalog item: an object's metadata, or a tombstone of a deleted object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CatalogEntry {
    pub dir: String,
    pub name: String,
    pub bucket: String,
    #[serde(default)]
    pub size: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_modified: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "HashMap::is_empty")]
    pub user_metadata: HashMap<String, String>,
    pub sequencer: Sequencer,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deleted: bool,
    /// Epoch seconds; set on tombstones only, for the table's TTL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
}

/// Splits an object key into the catalog's (`dir`, `name`): `datasets/shop-42/2026/11.ndjson`
/// -> (`datasets/shop-42`, `2026/11.ndjson`). Keys of one path segment get `dir = ""`... which
/// DynamoDB rejects for a key attribute, so they go under `"/"`.
pub fn split_key(key: &str) -> (String, String) {
    let mut parts = key.splitn(3, '/');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(top), Some(sub), Some(rest))
            if !top.is_empty() && !sub.is_empty() && !rest.is_empty() =>
        {
            (format!("{top}/{sub}"), rest.to_owned())
        }
        _ => match key.rsplit_once('/') {
            // A dir of only slashes would collide with top-level keys (`//b` vs `b`).
            Some((dir, name)) if !dir.trim_matches('/').is_empty() && !name.is_empty() => {
                (dir.to_owned(), name.to_owned())
            }
            _ => ("/".to_owned(), key.to_owned()),
        },
    }
}

impl CatalogEntry {
    /// The object key this entry describes.
    pub fn key(&self) -> String {
        if self.dir == "/" {
            self.name.clone()
        } else {
            format!("{}/{}", self.dir, self.name)
        }
    }
}

/// What one [`CatalogStore::apply`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ApplyReport {
    /// Items written (upserts and tombstones).
    pub written: usize,
    /// Changes dropped because the same or a newer event was already applied (in the batch, or
    /// in the table when the write was made).
    pub skipped: usize,
    /// DynamoDB write requests made (TransactWriteItems calls, retries included).
    pub requests: usize,
}

#[derive(Clone, Debug)]
pub struct CatalogStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

fn key_of(dir: &str, name: &str) -> HashMap<String, AttributeValue> {
    HashMap::from([
        ("dir".to_owned(), AttributeValue::S(dir.to_owned())),
        ("name".to_owned(), AttributeValue::S(name.to_owned())),
    ])
}

impl CatalogStore {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// Applies upserts and tombstones in bulk; per key, only the newest change wins, and only if
    /// it is newer than what is stored when it is written.
    pub async fn apply(&self, changes: Vec<CatalogEntry>) -> Result<ApplyReport, Error> {
        let mut report = ApplyReport::default();
        let mut newest: HashMap<(String, String), CatalogEntry> = HashMap::new();
        for change in changes {
            let k = (change.dir.clone(), change.name.clone());
            match newest.get(&k) {
                Some(kept) if kept.sequencer >= change.sequencer => report.skipped += 1,
                Some(_) => {
                    report.skipped += 1;
                    newest.insert(k, change);
                }
                None => {
                    newest.insert(k, change);
                }
            }
        }
        let mut winners: Vec<CatalogEntry> = newest.into_values().collect();
        winners.sort_by(|a, b| (&a.dir, &a.name).cmp(&(&b.dir, &b.name)));
        for chunk in winners.chunks(TRANSACT_WRITE_MAX) {
            self.write_if_newer(chunk.to_vec(), &mut report).await?;
        }
        Ok(report)
    }

    /// One TransactWriteItems of conditional puts. Changes whose condition fails are older than
    /// what is stored: they are dropped and the rest sent again. A cancellation for any other
    /// reason (throttling, a concurrent transaction on an item) is retried with backoff.
    async fn write_if_newer(
        &self,
        mut entries: Vec<CatalogEntry>,
        report: &mut ApplyReport,
    ) -> Result<(), Error> {
        let mut backoff = backon::BackoffBuilder::build(crate::retry::batch_backoff());
        while !entries.is_empty() {
            let actions = entries
                .iter()
                .map(|entry| self.conditional_put(entry))
                .collect::<Result<Vec<_>, Error>>()?;
            report.requests += 1;
            let sent = self
                .client
                .transact_write_items()
                .set_transact_items(Some(actions))
                .client_request_token(ulid::Ulid::new().to_string())
                .send()
                .await;
            let reasons = match sent {
                Ok(_) => {
                    report.written += entries.len();
                    return Ok(());
                }
                Err(err) => match err.as_service_error() {
                    Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) => {
                        cancelled
                            .cancellation_reasons()
                            .iter()
                            .map(|r| r.code().unwrap_or_default().to_owned())
                            .collect::<Vec<_>>()
                    }
                    _ => return Err(Error::aws("DynamoDB", "TransactWriteItems", err)),
                },
            };
            if reasons.len() != entries.len() {
                return Err(Error::InvalidEvent(format!(
                    "TransactWriteItems cancelled with {} reasons for {} items",
                    reasons.len(),
                    entries.len()
                )));
            }
            let superseded = reasons
                .iter()
                .filter(|code| *code == "ConditionalCheckFailed")
                .count();
            let mut codes = reasons.iter();
            entries.retain(|_| {
                codes
                    .next()
                    .is_some_and(|code| code != "ConditionalCheckFailed")
            });
            report.skipped += superseded;
            let only_superseded = reasons
                .iter()
                .all(|code| code == "ConditionalCheckFailed" || code == "None");
            if only_superseded {
                continue;
            }
            // Throttled, or another transaction held an item: the same writes may succeed later.
            match backoff.next() {
                Some(delay) => tokio::time::sleep(delay).await,
                None => {
                    return Err(Error::Unprocessed {
                        service: "DynamoDB",
                        count: entries.len(),
                    })
                }
            }
        }
        Ok(())
    }

    fn conditional_put(&self, entry: &CatalogEntry) -> Result<TransactWriteItem, Error> {
        let (checked, names, values) = Expressions::new()
            .condition("attribute_not_exists(#dir) OR sequencer < :sequencer")
            .name("#dir", "dir")
            .value(
                ":sequencer",
                AttributeValue::S(entry.sequencer.as_str().to_owned()),
            )
            .into_checked()?;
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(serde_dynamo::to_item(entry)?))
            .set_condition_expression(checked.condition)
            .set_expression_attribute_names(names)
            .set_expression_attribute_values(values)
            .build()
            .map_err(|source| Error::Build {
                service: "DynamoDB",
                source,
            })?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// One item, tombstones included.
    pub async fn get(&self, dir: &str, name: &str) -> Result<Option<CatalogEntry>, Error> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key_of(dir, name)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| Error::aws("DynamoDB", "GetItem", e))?;
        output
            .item
            .map(serde_dynamo::from_item)
            .transpose()
            .map_err(Error::from)
    }

    /// The live objects under `dir`, or `None` when there are more than `max` items (the listing
    /// stops paging there, so a huge directory costs at most `max / 1 MB page` reads).
    pub async fn list_dir_at_most(
        &self,
        dir: &str,
        max: usize,
    ) -> Result<Option<Vec<CatalogEntry>>, Error> {
        let entries = self.list_dir_pages(dir, max.saturating_add(1)).await?;
        Ok((entries.len() <= max).then_some(entries))
    }

    /// The live objects under `dir` (tombstones left out), every page. Strongly consistent: a
    /// job started right after metadata-sync wrote an object (and marked the score stale) must
    /// see that object, or it would store a result marked fresh that lacks it.
    pub async fn list_dir(&self, dir: &str) -> Result<Vec<CatalogEntry>, Error> {
        self.list_dir_pages(dir, usize::MAX).await
    }

    /// Live objects under `dir`, page after page, until `stop_at` of them are found.
    async fn list_dir_pages(&self, dir: &str, stop_at: usize) -> Result<Vec<CatalogEntry>, Error> {
        let mut entries = Vec::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .with_expressions(
                    Expressions::new()
                        .key_condition("#dir = :dir")
                        .name("#dir", "dir")
                        .value(":dir", AttributeValue::S(dir.to_owned())),
                )?
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| Error::aws("DynamoDB", "Query", e))?;
            for item in output.items.unwrap_or_default() {
                let entry: CatalogEntry = serde_dynamo::from_item(item)?;
                if !entry.deleted {
                    entries.push(entry);
                }
            }
            match output.last_evaluated_key {
                Some(_) if entries.len() >= stop_at => break,
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
        Ok(entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequencers_order_as_s3_documents_it() {
        let s = Sequencer::new;
        assert!(s("0055AED6DCD90281E5") < s("0055AED6DCD90281E6"));
        assert!(s("0055AED6DCD9028") < s("0055AED6DCD90281E5"));
        assert!(s("0056") > s("0055FFFFFFFFFFFF"));
        assert_eq!(s("00A"), s("00a0"), "case and right-padding do not matter");
        assert_eq!(s("0055AED6DCD90281E5").as_str().len(), Sequencer::WIDTH);
        let json = serde_json::to_string(&s("0a")).unwrap();
        assert_eq!(serde_json::from_str::<Sequencer>(&json).unwrap(), s("0A"));
    }

    #[test]
    fn keys_split_into_subject_dir_and_name() {
        assert_eq!(
            split_key("datasets/shop-42/2026/11.ndjson"),
            ("datasets/shop-42".into(), "2026/11.ndjson".into())
        );
        assert_eq!(
            split_key("datasets/shop-42/a.ndjson"),
            ("datasets/shop-42".into(), "a.ndjson".into())
        );
        assert_eq!(
            split_key("models/fraud/2.json"),
            ("models/fraud".into(), "2.json".into())
        );
        assert_eq!(split_key("top.txt"), ("/".into(), "top.txt".into()));
        assert_eq!(split_key("a/b"), ("a".into(), "b".into()));
        for key in [
            "datasets/shop-42/2026/11.ndjson",
            "top.txt",
            "a/b",
            "x/y/z/w",
        ] {
            let (dir, name) = split_key(key);
            let entry = CatalogEntry {
                dir,
                name,
                bucket: "b".into(),
                size: 0,
                etag: None,
                content_type: None,
                last_modified: None,
                user_metadata: HashMap::new(),
                sequencer: Sequencer::new("01"),
                deleted: false,
                expires_at: None,
            };
            assert_eq!(entry.key(), key);
        }
    }
}
