//! CatalogTable: one item per data-lake object (`dir` = parent path, `name` = the rest), written
//! in bulk, where a newer S3 event (by `sequencer`) always wins over an older one.
//!
//! Deletes are tombstones (`deleted = true`, with the delete's sequencer and an `expires_at` for
//! the table's TTL): removing the item would forget the sequencer, and a late, older create event
//! would then resurrect the object. Readers skip tombstones.
//!
//! BatchWriteItem cannot be conditional, so [`CatalogStore::apply`] orders changes itself: it keeps
//! the newest change per key within the batch, reads the stored sequencers (BatchGetItem), drops
//! changes that are not newer, and writes the rest in chunks of 25. Two concurrent invocations
//! writing the same key in the same instant could still interleave between that read and write;
//! metadata-sync's low MaximumConcurrency and S3's per-key ordering make that rare, and the next
//! event for the key repairs it.

use std::cmp::Ordering;
use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};

use crate::batch_get::batch_get_items;
use crate::expression::{Expressions, WithExpressions};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::Error;

/// BatchWriteItem takes at most 25 requests a call.
pub const BATCH_WRITE_MAX: usize = 25;

/// S3's per-key event order: hex strings of varying length, compared after right-padding the
/// shorter with zeros (as S3 documents). Equal sequencers are the same event.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Sequencer(pub String);

impl Ord for Sequencer {
    fn cmp(&self, other: &Self) -> Ordering {
        let (a, b) = (self.0.to_ascii_uppercase(), other.0.to_ascii_uppercase());
        let width = a.len().max(b.len());
        format!("{a:0<width$}").cmp(&format!("{b:0<width$}"))
    }
}

impl PartialOrd for Sequencer {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
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
    /// Changes dropped because the same or a newer event was already applied.
    pub skipped: usize,
    /// DynamoDB requests made (BatchGetItem + BatchWriteItem calls, retries included).
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
    /// it is newer than what is stored.
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
        let keys: Vec<(String, String)> = newest.keys().cloned().collect();
        let stored = self.stored_sequencers(&keys, &mut report).await?;
        let mut winners: Vec<CatalogEntry> = Vec::with_capacity(newest.len());
        for (k, change) in newest {
            match stored.get(&k) {
                Some(current) if *current >= change.sequencer => report.skipped += 1,
                _ => winners.push(change),
            }
        }
        winners.sort_by(|a, b| (&a.dir, &a.name).cmp(&(&b.dir, &b.name)));
        for chunk in winners.chunks(BATCH_WRITE_MAX) {
            let mut requests = chunk
                .iter()
                .map(|entry| {
                    let put = PutRequest::builder()
                        .set_item(Some(serde_dynamo::to_item(entry)?))
                        .build()
                        .map_err(|source| Error::Build {
                            service: "DynamoDB",
                            source,
                        })?;
                    Ok(WriteRequest::builder().put_request(put).build())
                })
                .collect::<Result<Vec<_>, Error>>()?;
            let mut backoff = backon::BackoffBuilder::build(crate::retry::batch_backoff());
            loop {
                report.requests += 1;
                let output = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, std::mem::take(&mut requests))
                    .send()
                    .await
                    .map_err(|e| Error::aws("DynamoDB", "BatchWriteItem", e))?;
                requests = output
                    .unprocessed_items
                    .unwrap_or_default()
                    .remove(&self.table)
                    .unwrap_or_default();
                if requests.is_empty() {
                    break;
                }
                match backoff.next() {
                    Some(delay) => tokio::time::sleep(delay).await,
                    None => {
                        return Err(Error::Unprocessed {
                            service: "DynamoDB",
                            count: requests.len(),
                        })
                    }
                }
            }
            report.written += chunk.len();
        }
        Ok(report)
    }

    async fn stored_sequencers(
        &self,
        keys: &[(String, String)],
        report: &mut ApplyReport,
    ) -> Result<HashMap<(String, String), Sequencer>, Error> {
        let projection = Expressions::new()
            .projection("#dir, #name, sequencer")
            .name("#dir", "dir")
            .name("#name", "name");
        let keys = keys.iter().map(|(d, n)| key_of(d, n)).collect();
        let (items, requests) =
            batch_get_items(&self.client, &self.table, keys, Some(projection)).await?;
        report.requests += requests;
        let text = |item: &crate::batch_get::Item, name: &str| match item.get(name) {
            Some(AttributeValue::S(v)) => Some(v.clone()),
            _ => None,
        };
        Ok(items
            .iter()
            .filter_map(|item| {
                Some((
                    (text(item, "dir")?, text(item, "name")?),
                    Sequencer(text(item, "sequencer")?),
                ))
            })
            .collect())
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

    /// The live objects under `dir` (tombstones left out), every page. Strongly consistent: a
    /// job started right after metadata-sync wrote an object (and marked the score stale) must
    /// see that object, or it would store a result marked fresh that lacks it.
    pub async fn list_dir(&self, dir: &str) -> Result<Vec<CatalogEntry>, Error> {
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
    fn sequencer_compares_after_right_padding() {
        let s = |v: &str| Sequencer(v.to_owned());
        assert!(s("0055AED6DCD90281E5") < s("0055AED6DCD90281E6"));
        assert!(s("0055AED6DCD9028") < s("0055AED6DCD90281E5"));
        assert!(s("0056") > s("0055FFFFFFFFFFFF"));
        assert_eq!(s("00A").cmp(&s("00a0")), Ordering::Equal);
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
                sequencer: Sequencer("01".into()),
                deleted: false,
                expires_at: None,
            };
            assert_eq!(entry.key(), key);
        }
    }
}
