//! What a MetadataQueue message says: an `s3:TestEvent`, or S3 event records, each read as one
//! [`Notice`] (bucket, decoded key, created or removed, and its place in the key's event order).

use aws_lambda_events::s3::{S3Event, S3EventRecord};
use serde::Deserialize;
use shared::catalog_store::Sequencer;

use crate::Error;

/// One message body.
#[derive(Debug)]
pub enum Body {
    /// S3 sends it once when the bucket's notification is configured; it is acknowledged.
    TestEvent {
        bucket: Option<String>,
    },
    Notification(S3Event),
}

/// The fields of an `s3:TestEvent` we look at (`{"Service":"Amazon S3","Event":"s3:TestEvent",
/// "Time":...,"Bucket":...,"RequestId":...,"HostId":...}`).
#[derive(Deserialize)]
struct TestEvent {
    #[serde(rename = "Event")]
    event: String,
    #[serde(rename = "Bucket", default)]
    bucket: Option<String>,
}

pub fn parse_body(body: &str) -> Result<Body, Error> {
    let value: serde_json::Value = serde_json::from_str(body).map_err(Error::Body)?;
    if value.get("Event").is_some() {
        let test: TestEvent = serde_json::from_value(value).map_err(Error::Body)?;
        if test.event == "s3:TestEvent" {
            return Ok(Body::TestEvent {
                bucket: test.bucket,
            });
        }
        return Err(Error::MissingField("Records"));
    }
    serde_json::from_value(value)
        .map(Body::Notification)
        .map_err(Error::Body)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// `ObjectCreated:*` (Put, Post, Copy, CompleteMultipartUpload).
    Created,
    /// `ObjectRemoved:*` (Delete, DeleteMarkerCreated) and `LifecycleExpiration:Delete*`.
    Removed,
    /// `ObjectRemoved:Delete` of one version of an object in a versioned bucket (the record names
    /// a `versionId`): a noncurrent version or a delete marker was deleted, or the current version,
    /// and the key may still exist (its current version, an older one that became current, or the
    /// one a deleted delete marker hid: a restore). Resolved like a creation, by what is there now.
    VersionRemoved,
}

/// One record that changes the catalog.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    pub bucket: String,
    /// The object key, decoded.
    pub key: String,
    pub action: Action,
    /// S3's `sequencer`: the order of this key's events.
    pub sequencer: Sequencer,
    pub event_name: String,
}

/// Reads one record. `Ok(None)`: an event kind that does not change the catalog (restore,
/// tagging, ACL, replication...).
pub fn notice(record: &S3EventRecord) -> Result<Option<Notice>, Error> {
    let event_name = record
        .event_name
        .clone()
        .ok_or(Error::MissingField("eventName"))?;
    let versioned = record
        .s3
        .object
        .version_id
        .as_deref()
        .is_some_and(|v| !v.is_empty());
    let action = if event_name.starts_with("ObjectCreated:") {
        Action::Created
    } else if event_name == "ObjectRemoved:Delete" && versioned {
        Action::VersionRemoved
    } else if event_name.starts_with("ObjectRemoved:")
        || event_name.starts_with("LifecycleExpiration:Delete")
    {
        Action::Removed
    } else {
        return Ok(None);
    };
    let bucket = record
        .s3
        .bucket
        .name
        .clone()
        .ok_or(Error::MissingField("s3.bucket.name"))?;
    let encoded = record
        .s3
        .object
        .key
        .as_deref()
        .ok_or(Error::MissingField("s3.object.key"))?;
    let key = decode_key(encoded)?;
    if key.is_empty() {
        return Err(Error::MissingField("s3.object.key"));
    }
    // S3 makes no longer keys; one would fail the catalog's bulk write (and with it every
    // message of the batch), as the catalog's `name` can hold no more either.
    if key.len() > MAX_KEY_BYTES {
        return Err(Error::KeyTooLong {
            bytes: key.len(),
            limit: MAX_KEY_BYTES,
        });
    }
    // S3 puts a sequencer on every object event; without one no order can be kept.
    let sequencer = match record.s3.object.sequencer.as_deref() {
        Some(s) if !s.is_empty() => Sequencer::new(s),
        _ => return Err(Error::MissingField("s3.object.sequencer")),
    };
    Ok(Some(Notice {
        bucket,
        key,
        action,
        sequencer,
        event_name,
    }))
}

/// The longest object key S3 allows (UTF-8 bytes), and so the longest a notice carries.
pub const MAX_KEY_BYTES: usize = 1024;

/// Decodes a key as S3 encodes it in event notifications: form encoding, where `+` is a space
/// and everything else (`%2B` for a plus, `%25` for a percent sign, UTF-8 bytes of non-ASCII
/// characters, and `%2F` for a slash, which moto encodes and S3 does not) is percent-encoded.
/// Bytes that are not UTF-8 are an error, never replaced.
pub fn decode_key(encoded: &str) -> Result<String, Error> {
    let spaced = encoded.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .map(|key| key.into_owned())
        .map_err(|source| Error::Key {
            encoded: prefix(encoded, MAX_KEY_BYTES).to_owned(),
            source,
        })
}

/// At most the first `max` bytes of `text`, cut at a character boundary.
fn prefix(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_decode_as_s3_encodes_them() {
        let cases = [
            ("datasets/shop-42/a.ndjson", "datasets/shop-42/a.ndjson"),
            (
                "datasets/shop-42/my+file.ndjson",
                "datasets/shop-42/my file.ndjson",
            ),
            (
                "datasets/shop-42/a%2Bb.ndjson",
                "datasets/shop-42/a+b.ndjson",
            ),
            (
                "datasets/shop-42/100%25.ndjson",
                "datasets/shop-42/100%.ndjson",
            ),
            (
                "datasets/shop-42/r%C3%A9sum%C3%A9+%E6%97%A5%E6%9C%AC.ndjson",
                "datasets/shop-42/résumé 日本.ndjson",
            ),
            ("a/b//c///d.txt", "a/b//c///d.txt"),
            // moto encodes the slashes too.
            (
                "datasets%2Fshop-42%2Fa+b%2Bc.ndjson",
                "datasets/shop-42/a b+c.ndjson",
            ),
            ("k%3Dv%26x", "k=v&x"),
        ];
        for (encoded, decoded) in cases {
            assert_eq!(decode_key(encoded).unwrap(), decoded, "{encoded}");
        }
    }

    #[test]
    fn keys_round_trip_through_form_encoding() {
        for key in ["a b+c/%/é/日本/x=y&z", "  ", "+/+", "a//b"] {
            let encoded: String = form_urlencoded::byte_serialize(key.as_bytes()).collect();
            let s3_style = encoded.replace("%2F", "/");
            assert_eq!(decode_key(&encoded).unwrap(), key);
            assert_eq!(decode_key(&s3_style).unwrap(), key);
        }
    }

    #[test]
    fn invalid_utf8_is_an_error() {
        assert!(matches!(decode_key("a%FFb"), Err(Error::Key { .. })));
        // The error quotes at most the first 1024 bytes of the key, whatever its length.
        let long = format!("{}%FF", "é".repeat(100_000));
        match decode_key(&long) {
            Err(Error::Key { encoded, .. }) => assert!(encoded.len() <= MAX_KEY_BYTES),
            other => panic!("{other:?}"),
        }
    }

    /// Regression: a key longer than S3 allows went on to the catalog, whose bulk write then
    /// failed for every message of the batch.
    #[test]
    fn a_key_longer_than_s3_allows_is_an_error_of_its_own_record() {
        let with_key = |key: &str| {
            record(&format!(
                r#"{{"eventTime":"2026-11-21T23:43:36.328Z","eventName":"ObjectRemoved:Delete",
                    "userIdentity":{{}},"requestParameters":{{}},
                    "s3":{{"bucket":{{"name":"b"}},"object":{{"key":"{key}","sequencer":"0A"}}}}}}"#
            ))
        };
        let longest = format!("datasets/shop-1/{}", "k".repeat(MAX_KEY_BYTES - 16));
        assert_eq!(notice(&with_key(&longest)).unwrap().unwrap().key, longest);
        let too_long = format!("{longest}k");
        assert!(matches!(
            notice(&with_key(&too_long)),
            Err(Error::KeyTooLong {
                bytes: 1025,
                limit: 1024
            })
        ));
        // Counted decoded: 342 encoded characters are 1026 bytes.
        assert!(matches!(
            notice(&with_key(&"%E6%97%A5".repeat(342))),
            Err(Error::KeyTooLong { bytes: 1026, .. })
        ));
    }

    fn record(json: &str) -> S3EventRecord {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn records_become_notices() {
        let created = record(
            r#"{"eventTime":"2026-11-21T23:43:36.328Z","eventName":"ObjectCreated:CompleteMultipartUpload",
                "userIdentity":{},"requestParameters":{},
                "s3":{"bucket":{"name":"b"},"object":{"key":"datasets/s/a+b.ndjson","sequencer":"0055AED6DCD90281E5"}}}"#,
        );
        let n = notice(&created).unwrap().unwrap();
        assert_eq!(n.key, "datasets/s/a b.ndjson");
        assert_eq!(n.action, Action::Created);
        assert_eq!(n.sequencer, Sequencer::new("0055AED6DCD90281E5"));

        let removed = record(
            r#"{"eventTime":"2026-11-21T23:43:36.328Z","eventName":"ObjectRemoved:DeleteMarkerCreated",
                "userIdentity":{},"requestParameters":{},
                "s3":{"bucket":{"name":"b"},"object":{"key":"x","sequencer":"0A"}}}"#,
        );
        let n = notice(&removed).unwrap().unwrap();
        assert_eq!(n.action, Action::Removed);

        // On a versioned bucket: a plain delete leaves a delete marker (a removal, whatever its
        // versionId); deleting one version may leave the key in place.
        let marker = record(
            r#"{"eventTime":"2026-11-21T23:43:36.328Z","eventName":"ObjectRemoved:DeleteMarkerCreated",
                "userIdentity":{},"requestParameters":{},
                "s3":{"bucket":{"name":"b"},"object":{"key":"x","versionId":"v2","sequencer":"0B"}}}"#,
        );
        assert_eq!(notice(&marker).unwrap().unwrap().action, Action::Removed);
        let version = record(
            r#"{"eventTime":"2026-11-21T23:43:36.328Z","eventName":"ObjectRemoved:Delete",
                "userIdentity":{},"requestParameters":{},
                "s3":{"bucket":{"name":"b"},"object":{"key":"x","versionId":"v1","sequencer":"0C"}}}"#,
        );
        assert_eq!(
            notice(&version).unwrap().unwrap().action,
            Action::VersionRemoved
        );

        let without_sequencer = record(
            r#"{"eventTime":"2026-11-21T23:43:36.328Z","eventName":"ObjectCreated:Put",
                "userIdentity":{},"requestParameters":{},
                "s3":{"bucket":{"name":"b"},"object":{"key":"x"}}}"#,
        );
        assert!(matches!(
            notice(&without_sequencer),
            Err(Error::MissingField("s3.object.sequencer"))
        ));

        let tagging = record(
            r#"{"eventTime":"2026-11-21T23:43:36.328Z","eventName":"ObjectTagging:Put",
                "userIdentity":{},"requestParameters":{},
                "s3":{"bucket":{"name":"b"},"object":{"key":"x"}}}"#,
        );
        assert_eq!(notice(&tagging).unwrap(), None);
    }

    #[test]
    fn bodies_are_test_events_or_notifications() {
        let test = r#"{"Service":"Amazon S3","Event":"s3:TestEvent","Time":"2026-11-21T23:43:36.321Z","Bucket":"b","RequestId":"R","HostId":"H"}"#;
        assert!(matches!(
            parse_body(test).unwrap(),
            Body::TestEvent { bucket: Some(b) } if b == "b"
        ));
        assert!(matches!(
            parse_body(r#"{"Records":[]}"#).unwrap(),
            Body::Notification(e) if e.records.is_empty()
        ));
        assert!(parse_body("not json").is_err());
        assert!(parse_body(r#"{"Records":[{"eventName":"ObjectCreated:Put"}]}"#).is_err());
        assert!(parse_body(r#"{"Event":"s3:SomethingElse"}"#).is_err());
    }
}
