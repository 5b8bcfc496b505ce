//! The one place that makes moto's S3 event notifications look like the ones S3 sends in AWS, so
//! that production code keeps parsing them with the standard `aws_lambda_events` S3 types.
//!
//! What moto 5.2.5 puts on a notification queue (checked against the server: an object uploaded to
//! a bucket whose notification targets a queue, the message read back from the queue):
//!
//! ```json
//! {"Records": [{"eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
//!   "eventTime": "2026-11-21T23:43:36.328Z", "eventName": "ObjectCreated:Put",
//!   "s3": {"s3SchemaVersion": "1.0", "configurationId": "0672sOIL...",
//!          "bucket": {"name": "b", "arn": "arn:aws:s3:::b"},
//!          "object": {"key": "datasets%2Fshop-42%2Fa+b%2Bc%25%C3%A9.ndjson", "size": 5,
//!                     "eTag": "5d41402abc4b2a76b9719d911017c592"}}}]}
//! ```
//!
//! Compared with a record from S3 in AWS, it lacks:
//!
//! | field | in AWS | in moto | what [`to_lambda_shape`] does |
//! |---|---|---|---|
//! | `userIdentity` | `{"principalId": "AWS:AIDA..."}` | absent | fills `{"principalId": "AWS:<emulator account>"}`: `aws_lambda_events::s3::S3EventRecord` requires the field (deserialization fails without it) |
//! | `requestParameters` | `{"sourceIPAddress": "..."}` | absent | fills `{"sourceIPAddress": "127.0.0.1"}`: required by the same type |
//! | `responseElements` | `x-amz-request-id`, `x-amz-id-2` | absent | nothing: the type defaults it, no code reads it |
//! | `s3.bucket.ownerIdentity` | `{"principalId": "..."}` | absent | nothing: optional in the type, no code reads it |
//! | `s3.object.key` | form-encoded, `/` left as is: `datasets/shop-42/a+b%2Bc%25%C3%A9.ndjson` | `/` encoded as `%2F` (Python's `quote_plus`) | turns every `%2F` back into `/` (see below) |
//! | `s3.object.sequencer` | per-key order, hex | absent | fills one from `eventTime` and the event kind (see [`sequencer`]): metadata-sync orders a key's events by it and, like S3, expects one on every object event |
//! | `s3.object.versionId` | on versioned buckets | absent | nothing: the data bucket is versioned in AWS but not locally (moto 5.2.5 sends no notification for a delete marker, see `provision`); metadata-sync's tests feed the versioned shapes from `events/metadata-sync/` |
//!
//! moto's delete records carry the deleted object's `size` and `eTag`, which AWS omits; harmless,
//! left as they are. moto's `s3:TestEvent` body (`Service`, `Event`, `Time`, `Bucket`) lacks AWS's
//! `RequestId` and `HostId`, which nothing reads: bodies without `Records` pass through unchanged.
//!
//! Turning `%2F` back into `/` is exact: in a percent-encoded string every `%` starts an escape (a
//! literal `%` in a key is `%25`), so the three characters `%2F` can only be the escape of `/`.
//! Decoding is unchanged by it (`%2F` and `/` both decode to `/`); it only makes the key look like
//! S3's own encoding.

use serde_json::{json, Map, Value};

/// The `principalId` filled into `userIdentity`.
pub const EMULATOR_PRINCIPAL: &str = "AWS:123456789012";
/// The `sourceIPAddress` filled into `requestParameters`.
pub const EMULATOR_SOURCE_IP: &str = "127.0.0.1";

/// Makes one MetadataQueue message body (as moto wrote it) Lambda-shaped: an S3 event
/// notification gets what its records lack (see the module doc), anything else (an
/// `s3:TestEvent`, a body that is not JSON) is returned unchanged. Idempotent: a body that is
/// already Lambda-shaped (from AWS, or passed through here before) comes back equal in content.
pub fn to_lambda_shape(body: &str) -> String {
    let Ok(mut value) = serde_json::from_str::<Value>(body) else {
        return body.to_owned();
    };
    let Some(records) = value.get_mut("Records").and_then(Value::as_array_mut) else {
        return body.to_owned();
    };
    for record in records.iter_mut().filter_map(Value::as_object_mut) {
        fill_record(record);
    }
    value.to_string()
}

fn fill_record(record: &mut Map<String, Value>) {
    let filled = sequencer(
        record.get("eventTime").and_then(Value::as_str),
        record.get("eventName").and_then(Value::as_str),
    );
    if let (Some(object), Some(filled)) = (
        record
            .get_mut("s3")
            .and_then(|s3| s3.get_mut("object"))
            .and_then(Value::as_object_mut),
        filled,
    ) {
        object
            .entry("sequencer")
            .or_insert_with(|| Value::String(filled));
    }
    record
        .entry("userIdentity")
        .or_insert_with(|| json!({ "principalId": EMULATOR_PRINCIPAL }));
    record
        .entry("requestParameters")
        .or_insert_with(|| json!({ "sourceIPAddress": EMULATOR_SOURCE_IP }));
    if let Some(Value::String(key)) = record
        .get_mut("s3")
        .and_then(|s3| s3.pointer_mut("/object/key"))
    {
        *key = unescape_slashes(key);
    }
}

/// A sequencer for a record moto sent without one: upper-case hex, fixed width, of the event
/// time in microseconds times two, plus one for a creation. S3's own sequencers order a key's
/// events; this one orders them by `eventTime`, the only order moto's records carry:
/// - a later event is newer;
/// - at the same instant a creation is newer than a removal, so the creation's HeadObject (which
///   sees whether the object exists now; a 404 makes it a tombstone) decides;
/// - it is deterministic, so a redelivered record is recognised as the same event.
///
/// Its limit: two writes of one key within moto's `eventTime` resolution (a millisecond) look
/// like one event, and the first one processed stands until the key's next event. Real S3
/// sequencers do not have this limit. `None` for a record without a parsable time or a kind.
pub fn sequencer(event_time: Option<&str>, event_name: Option<&str>) -> Option<String> {
    let time: chrono::DateTime<chrono::Utc> = event_time?.parse().ok()?;
    let rank = match event_name? {
        name if name.starts_with("ObjectCreated") => 1,
        name if name.starts_with("ObjectRemoved") => 0,
        _ => return None,
    };
    let micros = u64::try_from(time.timestamp_micros()).ok()?;
    Some(format!("{:016X}", micros * 2 + rank))
}

/// `%2F` / `%2f` -> `/`, everything else as it is.
fn unescape_slashes(key: &str) -> String {
    key.replace("%2F", "/").replace("%2f", "/")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A body as moto 5.2.5 sends it (copied from the server, configurationId shortened).
    const MOTO_BODY: &str = r#"{"Records": [{"eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1", "eventTime": "2026-11-21T23:43:36.328Z", "eventName": "ObjectCreated:Put", "s3": {"s3SchemaVersion": "1.0", "configurationId": "0672sOILpF", "bucket": {"name": "ms5b", "arn": "arn:aws:s3:::ms5b"}, "object": {"key": "datasets%2Fshop-42%2F2026%2Fa+b%2Bc%25%C3%A9.ndjson", "size": 5, "eTag": "5d41402abc4b2a76b9719d911017c592"}}}]}"#;

    #[test]
    fn fills_what_the_standard_record_type_requires() {
        let shaped: Value = serde_json::from_str(&to_lambda_shape(MOTO_BODY)).unwrap();
        let record = &shaped["Records"][0];

        assert_eq!(record["userIdentity"]["principalId"], EMULATOR_PRINCIPAL);
        assert_eq!(
            record["requestParameters"]["sourceIPAddress"],
            EMULATOR_SOURCE_IP
        );
        assert_eq!(
            record["s3"]["object"]["key"],
            "datasets/shop-42/2026/a+b%2Bc%25%C3%A9.ndjson"
        );
        assert_eq!(
            record["s3"]["object"]["sequencer"],
            sequencer(Some("2026-11-21T23:43:36.328Z"), Some("ObjectCreated:Put")).unwrap()
        );
        // Left alone: size, eTag.
        assert_eq!(record["s3"]["object"]["size"], 5);
    }

    #[test]
    fn keeps_fields_already_present_and_is_idempotent() {
        let aws = r#"{"Records":[{"eventTime":"2026-11-21T23:43:36.328Z","eventName":"ObjectRemoved:Delete","userIdentity":{"principalId":"AWS:AIDAX"},"requestParameters":{"sourceIPAddress":"10.0.0.1"},"s3":{"bucket":{"name":"b"},"object":{"key":"a/b%252Fc","sequencer":"0055AED6DCD90281E5"}}}]}"#;

        let once = to_lambda_shape(aws);
        let twice = to_lambda_shape(&once);

        let v: Value = serde_json::from_str(&once).unwrap();
        assert_eq!(v["Records"][0]["userIdentity"]["principalId"], "AWS:AIDAX");
        assert_eq!(
            v["Records"][0]["requestParameters"]["sourceIPAddress"],
            "10.0.0.1"
        );
        // `%25` + `2F` is an escaped percent sign followed by "2F", not a slash.
        assert_eq!(v["Records"][0]["s3"]["object"]["key"], "a/b%252Fc");
        assert_eq!(
            serde_json::from_str::<Value>(&twice).unwrap(),
            v,
            "a second pass changes nothing"
        );
    }

    #[test]
    fn filled_sequencers_order_by_time_then_creation() {
        let seq = |time: &str, name: &str| {
            shared::catalog_store::Sequencer::new(sequencer(Some(time), Some(name)).unwrap())
        };
        let (t1, t2) = ("2026-11-21T23:43:36.328Z", "2026-11-21T23:43:36.329Z");
        assert!(seq(t1, "ObjectCreated:Put") < seq(t2, "ObjectRemoved:Delete"));
        assert!(seq(t2, "ObjectRemoved:Delete") < seq(t2, "ObjectCreated:Copy"));
        assert!(seq(t2, "ObjectCreated:Put") < seq("2100-01-01T00:00:00Z", "ObjectRemoved:Delete"));
        assert_eq!(seq(t1, "ObjectCreated:Put"), seq(t1, "ObjectCreated:Put"));
        assert_eq!(sequencer(Some(t1), Some("ObjectTagging:Put")), None);
        assert_eq!(
            sequencer(Some("yesterday"), Some("ObjectCreated:Put")),
            None
        );
    }

    #[test]
    fn passes_other_bodies_through() {
        let test_event = r#"{"Service": "Amazon S3", "Event": "s3:TestEvent", "Time": "2026-11-21T23:43:36.321Z", "Bucket": "ms5b"}"#;
        assert_eq!(to_lambda_shape(test_event), test_event);
        assert_eq!(to_lambda_shape("not json"), "not json");
    }
}
