//! Catalog entries from S3: an object's metadata (HeadObject) or a tombstone.

use std::time::Duration;

use chrono::{DateTime, Utc};
use shared::catalog_store::{split_key, CatalogEntry, Sequencer};

use crate::Error;

/// Reads the object's current metadata into an upsert carrying `sequencer`; `None` on a 404
/// (the object was deleted after the event was sent).
pub async fn head(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    sequencer: Sequencer,
) -> Result<Option<CatalogEntry>, Error> {
    let output = match s3.head_object().bucket(bucket).key(key).send().await {
        Ok(output) => output,
        Err(err) if is_not_found(&err) => return Ok(None),
        Err(err) => {
            return Err(Error::Head {
                bucket: bucket.to_owned(),
                key: key.to_owned(),
                source: shared::Error::aws("S3", "HeadObject", err),
            })
        }
    };
    let (dir, name) = split_key(key);
    Ok(Some(CatalogEntry {
        dir,
        name,
        bucket: bucket.to_owned(),
        size: output.content_length().unwrap_or(0),
        // HeadObject quotes the ETag (`"5d41..."`); events do not. Stored unquoted.
        etag: output.e_tag().map(|e| e.trim_matches('"').to_owned()),
        content_type: output.content_type().map(str::to_owned),
        last_modified: output
            .last_modified()
            .and_then(|t| DateTime::from_timestamp(t.secs(), t.subsec_nanos())),
        user_metadata: output.metadata().cloned().unwrap_or_default(),
        sequencer,
        deleted: false,
        expires_at: None,
    }))
}

/// A HeadObject 404. (Without `s3:ListBucket` on the bucket S3 answers 403 for a missing key;
/// a 403 stays an error, as it may well be a real permission problem.)
fn is_not_found(
    err: &aws_sdk_s3::error::SdkError<
        aws_sdk_s3::operation::head_object::HeadObjectError,
        aws_sdk_s3::config::http::HttpResponse,
    >,
) -> bool {
    err.as_service_error().is_some_and(|e| e.is_not_found())
        || err
            .raw_response()
            .is_some_and(|r| r.status().as_u16() == 404)
}

/// The tombstone of a deleted object: kept for `ttl` (the table's TTL removes it) so that an
/// older, late event for the key cannot bring the object back.
pub fn tombstone(
    bucket: &str,
    key: &str,
    sequencer: Sequencer,
    now: DateTime<Utc>,
    ttl: Duration,
) -> CatalogEntry {
    let (dir, name) = split_key(key);
    CatalogEntry {
        dir,
        name,
        bucket: bucket.to_owned(),
        size: 0,
        etag: None,
        content_type: None,
        last_modified: None,
        user_metadata: Default::default(),
        sequencer,
        deleted: true,
        expires_at: Some(now.timestamp() + ttl.as_secs() as i64),
    }
}
