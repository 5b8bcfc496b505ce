//! `catalog verify` / `catalog rebuild`: CatalogTable against a listing of the data bucket.
//!
//! `verify` lists the bucket (ListObjectsV2, every page) and reads the catalog (a strongly
//! consistent Scan, every page), and reports the drift:
//!
//! - missing: an object with no live catalog item (none, or a tombstone);
//! - stale: a live item whose size or ETag is not the object's;
//! - orphaned: a live item whose object is not in the bucket.
//!
//! `rebuild` fixes it with metadata-sync's own entries (HeadObject for missing and stale objects,
//! a tombstone for orphans) written by `CatalogStore::apply`, whose writes are conditional on the
//! stored `sequencer` being older. A listing has no S3 sequencer, so a rebuilt entry gets the one
//! just above what the catalog holds for the key (the lowest there is when it holds nothing): it
//! replaces the drifted item, and every real S3 event for the key, a later one or a lost one
//! redriven from MetadataDeadLetterQueue, still wins over it (S3's sequencers never end in
//! anything but the zeros they are padded with, so none equals "just above"). An event whose
//! sequencer is older than what the catalog held was superseded already and stays so.
//!
//! The listing and the scan are not one snapshot: an upload or delete in flight (its event not
//! yet handled by metadata-sync) shows up as drift. Verify again after a minute before acting.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use shared::catalog_store::{CatalogEntry, CatalogStore, Sequencer};

use crate::{Clients, Error};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Report the drift (exit status 3 when there is any)
    Verify,
    /// Report the drift and fix it
    Rebuild,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(value_enum)]
    pub mode: Mode,
    /// The data bucket (the stack's DataBucketName output)
    #[arg(long, env = "DATA_BUCKET")]
    pub bucket: String,
    /// CatalogTable's name
    #[arg(long, env = "CATALOG_TABLE")]
    pub catalog_table: String,
    /// Only keys under this prefix (e.g. `datasets/shop-42/`)
    #[arg(long, default_value = "")]
    pub prefix: String,
    /// How long a tombstone written for an orphan is kept (the stack's CatalogTombstoneTtlSeconds)
    #[arg(long, env = "CATALOG_TOMBSTONE_TTL_SECONDS", default_value_t = 604_800)]
    pub tombstone_ttl_seconds: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DriftKind {
    Missing,
    Stale,
    Orphaned,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Drift {
    pub key: String,
    pub kind: DriftKind,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub mode: Mode,
    pub bucket: String,
    pub prefix: String,
    pub objects: usize,
    /// Live catalog items of the bucket under the prefix.
    pub cataloged: usize,
    pub drift: Vec<Drift>,
    /// `rebuild`: items written, and fixes skipped because a newer S3 event got there first.
    pub written: Option<usize>,
    pub skipped: Option<usize>,
}

impl Report {
    /// Drift found by `verify` (a rebuild has fixed what it reports).
    pub fn needs_attention(&self) -> bool {
        self.mode == Mode::Verify && !self.drift.is_empty()
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "s3://{}/{}: {} object(s), {} live catalog item(s), {} drifted",
            self.bucket,
            self.prefix,
            self.objects,
            self.cataloged,
            self.drift.len()
        )?;
        for drift in &self.drift {
            writeln!(f, "  {:?} {}: {}", drift.kind, drift.key, drift.detail)?;
        }
        if let (Some(written), Some(skipped)) = (self.written, self.skipped) {
            writeln!(
                f,
                "rebuilt: {written} item(s) written, {skipped} skipped (a newer S3 event won)"
            )?;
        }
        Ok(())
    }
}

/// An object as the listing shows it.
#[derive(Debug, Clone, PartialEq)]
struct Listed {
    size: i64,
    etag: Option<String>,
}

pub async fn run(args: &Args, clients: &Clients, now: DateTime<Utc>) -> Result<Report, Error> {
    let objects = list_bucket(&clients.s3, &args.bucket, &args.prefix).await?;
    let catalog = scan_catalog(&clients.dynamodb, &args.catalog_table, args).await?;
    let drift = compare(&objects, &catalog);
    let mut report = Report {
        mode: args.mode,
        bucket: args.bucket.clone(),
        prefix: args.prefix.clone(),
        objects: objects.len(),
        cataloged: catalog.values().filter(|e| !e.deleted).count(),
        drift,
        written: None,
        skipped: None,
    };
    tracing::info!(
        objects = report.objects,
        cataloged = report.cataloged,
        drifted = report.drift.len(),
        "catalog compared"
    );
    if args.mode == Mode::Rebuild && !report.drift.is_empty() {
        let ttl = Duration::from_secs(args.tombstone_ttl_seconds);
        let mut changes = Vec::new();
        for drift in &report.drift {
            let stored = catalog.get(&drift.key);
            let sequencer = stored.map_or_else(|| Sequencer::new(""), |e| after(&e.sequencer));
            let head = match drift.kind {
                DriftKind::Orphaned => None,
                DriftKind::Missing | DriftKind::Stale => {
                    metadata_sync::object::head(
                        &clients.s3,
                        &args.bucket,
                        &drift.key,
                        sequencer.clone(),
                    )
                    .await?
                }
            };
            match head {
                Some(entry) => changes.push(entry),
                // An orphan, or an object deleted since the listing: a tombstone where the
                // catalog holds a live item.
                None if stored.is_some_and(|e| !e.deleted) => changes.push(
                    metadata_sync::object::tombstone(&args.bucket, &drift.key, sequencer, now, ttl),
                ),
                None => {}
            }
        }
        let store = CatalogStore::new(clients.dynamodb.clone(), &args.catalog_table);
        let applied = store.apply(changes).await?;
        tracing::info!(
            written = applied.written,
            skipped = applied.skipped,
            "catalog rebuilt"
        );
        report.written = Some(applied.written);
        report.skipped = Some(applied.skipped);
    }
    Ok(report)
}

/// The drift between the listing and the catalog (tombstones included), in key order.
fn compare(
    objects: &BTreeMap<String, Listed>,
    catalog: &HashMap<String, CatalogEntry>,
) -> Vec<Drift> {
    let mut drift = Vec::new();
    for (key, object) in objects {
        match catalog.get(key).filter(|e| !e.deleted) {
            None => drift.push(Drift {
                key: key.clone(),
                kind: DriftKind::Missing,
                detail: format!("{} bytes in the bucket, not in the catalog", object.size),
            }),
            Some(entry) => {
                let etag_differs = entry.etag.is_some() && entry.etag != object.etag;
                if entry.size != object.size || etag_differs {
                    drift.push(Drift {
                        key: key.clone(),
                        kind: DriftKind::Stale,
                        detail: format!(
                            "bucket {} bytes etag {}, catalog {} bytes etag {}",
                            object.size,
                            object.etag.as_deref().unwrap_or("-"),
                            entry.size,
                            entry.etag.as_deref().unwrap_or("-")
                        ),
                    });
                }
            }
        }
    }
    let mut orphans: Vec<&String> = catalog
        .iter()
        .filter(|(key, entry)| !entry.deleted && !objects.contains_key(*key))
        .map(|(key, _)| key)
        .collect();
    orphans.sort();
    drift.extend(orphans.into_iter().map(|key| Drift {
        key: key.clone(),
        kind: DriftKind::Orphaned,
        detail: "in the catalog, not in the bucket".into(),
    }));
    drift.sort_by(|a, b| a.key.cmp(&b.key));
    drift
}

/// The sequencer just above `sequencer` (its hex digits plus one). S3's sequencers, padded with
/// zeros, never fall strictly between the two.
pub fn after(sequencer: &Sequencer) -> Sequencer {
    let mut digits = sequencer.as_str().as_bytes().to_vec();
    for digit in digits.iter_mut().rev() {
        match *digit {
            b'F' => *digit = b'0',
            b'9' => {
                *digit = b'A';
                return Sequencer::new(String::from_utf8_lossy(&digits).into_owned());
            }
            _ => {
                *digit += 1;
                return Sequencer::new(String::from_utf8_lossy(&digits).into_owned());
            }
        }
    }
    // All F: nothing is above it; the write is then skipped as not newer.
    sequencer.clone()
}

async fn list_bucket(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
) -> Result<BTreeMap<String, Listed>, Error> {
    let mut objects = BTreeMap::new();
    // The SDK's paginator follows the continuation token.
    let mut pages = s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| shared::Error::aws("S3", "ListObjectsV2", e))?;
        for object in page.contents.unwrap_or_default() {
            if let Some(key) = object.key {
                objects.insert(
                    key,
                    Listed {
                        size: object.size.unwrap_or(0),
                        // Listed quoted, stored unquoted (as metadata-sync stores HeadObject's).
                        etag: object.e_tag.map(|e| e.trim_matches('"').to_owned()),
                    },
                );
            }
        }
    }
    Ok(objects)
}

/// The catalog's items (tombstones included) of `bucket` under `prefix`, by key.
async fn scan_catalog(
    dynamodb: &aws_sdk_dynamodb::Client,
    table: &str,
    args: &Args,
) -> Result<HashMap<String, CatalogEntry>, Error> {
    let mut entries = HashMap::new();
    // The SDK's paginator follows LastEvaluatedKey (each page at most 1 MB).
    let mut items = dynamodb
        .scan()
        .table_name(table)
        .consistent_read(true)
        .into_paginator()
        .items()
        .send();
    while let Some(item) = items.next().await {
        let item = item.map_err(|e| shared::Error::aws("DynamoDB", "Scan", e))?;
        let entry: CatalogEntry = serde_dynamo::from_item(item).map_err(shared::Error::from)?;
        let key = entry.key();
        if entry.bucket == args.bucket && key.starts_with(&args.prefix) {
            entries.insert(key, entry);
        }
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn after_is_the_next_sequencer_and_below_every_later_s3_one() {
        let stored = Sequencer::new("0055AED6DCD90281E5");
        let rebuilt = after(&stored);
        assert!(rebuilt > stored);
        assert!(rebuilt < Sequencer::new("0055AED6DCD90281E6"));
        assert_eq!(
            after(&Sequencer::new("")).as_str(),
            format!("{}1", "0".repeat(31))
        );
        assert_eq!(
            after(&Sequencer::new(format!("{}9", "0".repeat(31)))).as_str(),
            format!("{}A", "0".repeat(31))
        );
        let all_f = Sequencer::new("F".repeat(Sequencer::WIDTH));
        assert_eq!(after(&all_f), all_f);
    }
}
