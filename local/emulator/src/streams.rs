//! Reading a table's DynamoDB stream (DescribeStream, GetShardIterator, GetRecords) and turning
//! its records into the `aws_lambda_events` records Lambda hands a stream consumer.
//!
//! The local runner plays the stream event source mapping with a [`StreamReader`]; the handler
//! tests read the real stream of their table with it. moto keeps one shard per table; the
//! reader still follows a closed shard to its child, as a real stream needs.
//!
//! Never create Lambda event source mappings in moto to get these records: moto then hands the
//! records to its own Lambda and clears the stream.

use aws_config::SdkConfig;
use aws_lambda_events::dynamodb::EventRecord;
use aws_sdk_dynamodbstreams::types::{Record, ShardIteratorType};
use serde_json::Value;

/// GetRecords returns at most 1000 records a call.
pub const GET_RECORDS_MAX: usize = 1000;

/// Where a reader starts (or [`StreamReader::seek`]s to).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartingPosition {
    TrimHorizon,
    Latest,
    /// Redeliver from this record (a batch item failure).
    AtSequenceNumber(String),
    AfterSequenceNumber(String),
}

impl StartingPosition {
    /// The template's `StartingPosition` (`TRIM_HORIZON` or `LATEST`).
    pub fn from_template(value: &str) -> Option<Self> {
        match value {
            "TRIM_HORIZON" => Some(Self::TrimHorizon),
            "LATEST" => Some(Self::Latest),
            _ => None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("DynamoDB Streams {operation} failed")]
    Aws {
        operation: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("stream {0} has no shard")]
    NoShard(String),
    #[error("stream record {sequence_number:?}: {message}")]
    Record {
        sequence_number: Option<String>,
        message: String,
    },
}

fn aws<E: std::error::Error + Send + Sync + 'static>(
    operation: &'static str,
) -> impl FnOnce(E) -> StreamError {
    move |e| StreamError::Aws {
        operation,
        source: Box::new(e),
    }
}

/// Reads one stream in order, remembering its position between polls.
pub struct StreamReader {
    client: aws_sdk_dynamodbstreams::Client,
    stream_arn: String,
    region: String,
    shard_id: String,
    /// `None` once the shard is closed and its child is not known yet.
    iterator: Option<String>,
    /// Where to start again when an iterator expires (DynamoDB Streams: after 15 minutes).
    position: StartingPosition,
}

impl StreamReader {
    pub async fn new(
        sdk: &SdkConfig,
        stream_arn: &str,
        start: StartingPosition,
    ) -> Result<Self, StreamError> {
        let client = aws_sdk_dynamodbstreams::Client::new(sdk);
        let region = sdk
            .region()
            .map(|r| r.to_string())
            .unwrap_or_else(|| crate::provision::EMULATOR_REGION.to_owned());
        let shards = describe_shards(&client, stream_arn).await?;
        let shard_id = match start {
            // the newest (open) shard
            StartingPosition::Latest => {
                shards.iter().find(|s| s.ending.is_none()).or(shards.last())
            }
            // the oldest shard of the lineage
            _ => shards
                .iter()
                .find(|s| {
                    s.parent
                        .as_ref()
                        .is_none_or(|p| !shards.iter().any(|o| &o.id == p))
                })
                .or(shards.first()),
        }
        .map(|s| s.id.clone())
        .ok_or_else(|| StreamError::NoShard(stream_arn.to_owned()))?;
        let mut reader = Self {
            client,
            stream_arn: stream_arn.to_owned(),
            region,
            shard_id,
            iterator: None,
            position: start.clone(),
        };
        reader.seek(start).await?;
        Ok(reader)
    }

    pub fn stream_arn(&self) -> &str {
        &self.stream_arn
    }

    /// The shard the reader is in (the records of the last poll came from it).
    pub fn shard_id(&self) -> &str {
        &self.shard_id
    }

    /// The sequence number of the last record returned, once there is one.
    pub fn last_sequence_number(&self) -> Option<&str> {
        match &self.position {
            StartingPosition::AfterSequenceNumber(seq) => Some(seq),
            _ => None,
        }
    }

    /// Moves the reader in the current shard (e.g. back to a batch item failure with
    /// `AtSequenceNumber`).
    pub async fn seek(&mut self, position: StartingPosition) -> Result<(), StreamError> {
        let request = self
            .client
            .get_shard_iterator()
            .stream_arn(&self.stream_arn)
            .shard_id(&self.shard_id);
        let request = match &position {
            StartingPosition::TrimHorizon => {
                request.shard_iterator_type(ShardIteratorType::TrimHorizon)
            }
            StartingPosition::Latest => request.shard_iterator_type(ShardIteratorType::Latest),
            StartingPosition::AtSequenceNumber(seq) => request
                .shard_iterator_type(ShardIteratorType::AtSequenceNumber)
                .sequence_number(seq),
            StartingPosition::AfterSequenceNumber(seq) => request
                .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
                .sequence_number(seq),
        };
        let output = request.send().await.map_err(aws("GetShardIterator"))?;
        self.iterator = output.shard_iterator;
        self.position = position;
        Ok(())
    }

    /// The next records (at most `max`, capped at 1000), in stream order; empty when there is
    /// nothing new. The reader moves past what it returns.
    pub async fn poll(&mut self, max: usize) -> Result<Vec<EventRecord>, StreamError> {
        if self.iterator.is_none() && !self.follow_child_shard().await? {
            return Ok(Vec::new());
        }
        let limit = max.clamp(1, GET_RECORDS_MAX) as i32;
        let output = match self.get_records(limit).await {
            Err(err) if is_expired_iterator(&err) => {
                self.seek(self.position.clone()).await?;
                self.get_records(limit).await
            }
            other => other,
        }
        .map_err(aws("GetRecords"))?;
        self.iterator = output.next_shard_iterator;
        let records = output
            .records
            .unwrap_or_default()
            .iter()
            .map(|r| to_lambda_record(r, &self.stream_arn, &self.region))
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(seq) = records
            .last()
            .and_then(|r| r.change.sequence_number.clone())
        {
            self.position = StartingPosition::AfterSequenceNumber(seq);
        }
        Ok(records)
    }

    async fn get_records(
        &self,
        limit: i32,
    ) -> Result<
        aws_sdk_dynamodbstreams::operation::get_records::GetRecordsOutput,
        aws_sdk_dynamodbstreams::error::SdkError<
            aws_sdk_dynamodbstreams::operation::get_records::GetRecordsError,
        >,
    > {
        self.client
            .get_records()
            .shard_iterator(self.iterator.clone().unwrap_or_default())
            .limit(limit)
            .send()
            .await
    }

    /// After the shard closed: moves to its child shard, if it exists yet.
    async fn follow_child_shard(&mut self) -> Result<bool, StreamError> {
        let shards = describe_shards(&self.client, &self.stream_arn).await?;
        let Some(child) = shards
            .iter()
            .find(|s| s.parent.as_deref() == Some(self.shard_id.as_str()))
        else {
            return Ok(false);
        };
        self.shard_id = child.id.clone();
        self.seek(StartingPosition::TrimHorizon).await?;
        Ok(self.iterator.is_some())
    }
}

fn is_expired_iterator(
    err: &aws_sdk_dynamodbstreams::error::SdkError<
        aws_sdk_dynamodbstreams::operation::get_records::GetRecordsError,
    >,
) -> bool {
    matches!(
        err.as_service_error(),
        Some(aws_sdk_dynamodbstreams::operation::get_records::GetRecordsError::ExpiredIteratorException(_))
    )
}

struct ShardInfo {
    id: String,
    parent: Option<String>,
    ending: Option<String>,
}

async fn describe_shards(
    client: &aws_sdk_dynamodbstreams::Client,
    stream_arn: &str,
) -> Result<Vec<ShardInfo>, StreamError> {
    let mut shards = Vec::new();
    let mut start: Option<String> = None;
    loop {
        let description = client
            .describe_stream()
            .stream_arn(stream_arn)
            .set_exclusive_start_shard_id(start.take())
            .send()
            .await
            .map_err(aws("DescribeStream"))?
            .stream_description
            .ok_or_else(|| StreamError::NoShard(stream_arn.to_owned()))?;
        for shard in description.shards.unwrap_or_default() {
            if let Some(id) = shard.shard_id {
                shards.push(ShardInfo {
                    id,
                    parent: shard.parent_shard_id,
                    ending: shard
                        .sequence_number_range
                        .and_then(|r| r.ending_sequence_number),
                });
            }
        }
        match description.last_evaluated_shard_id {
            Some(last) if !last.is_empty() => start = Some(last),
            _ => return Ok(shards),
        }
    }
}

/// A DynamoDB Streams record as Lambda delivers it (`eventSourceARN` is the stream ARN); see
/// [`shared::stream_record::to_lambda_record`], which deferred-ops' replay uses too.
pub fn to_lambda_record(
    record: &Record,
    stream_arn: &str,
    default_region: &str,
) -> Result<EventRecord, StreamError> {
    shared::stream_record::to_lambda_record(record, stream_arn, default_region).map_err(|e| {
        StreamError::Record {
            sequence_number: e.sequence_number,
            message: e.message,
        }
    })
}

/// The record as Lambda serializes it into the invocation payload, which is also what
/// `FilterCriteria` patterns address: absent fields are left out (not `null`), and a record
/// without an image has no `NewImage`/`OldImage` (not `{}`).
///
/// `serde_json::to_value(&EventRecord)` writes `null`s and empty images; filter on this instead.
pub fn lambda_json(record: &EventRecord) -> Value {
    let mut value = serde_json::to_value(record).expect("an EventRecord serializes");
    strip_nulls(&mut value);
    if let Some(dynamodb) = value.get_mut("dynamodb").and_then(Value::as_object_mut) {
        for image in ["NewImage", "OldImage"] {
            if dynamodb
                .get(image)
                .and_then(Value::as_object)
                .is_some_and(|o| o.is_empty())
            {
                dynamodb.remove(image);
            }
        }
    }
    value
}

fn strip_nulls(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(strip_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodbstreams::primitives::{Blob, DateTime};
    use aws_sdk_dynamodbstreams::types::AttributeValue as StreamValue;
    use aws_sdk_dynamodbstreams::types::{Identity, OperationType, StreamRecord, StreamViewType};
    use serde_json::json;
    use std::collections::HashMap;

    fn sdk_record(new_image: Option<HashMap<String, StreamValue>>) -> Record {
        let key = HashMap::from([("subject_id".to_owned(), StreamValue::S("shop-1".into()))]);
        let mut change = StreamRecord::builder()
            .set_keys(Some(key.clone()))
            .sequence_number("1100000000017454423009")
            .size_bytes(42)
            .stream_view_type(StreamViewType::NewAndOldImages)
            .approximate_creation_date_time(DateTime::from_secs(1_700_000_000))
            .set_old_image(Some(key));
        if let Some(image) = new_image {
            change = change.set_new_image(Some(image));
        }
        Record::builder()
            .event_id("e1")
            .event_name(OperationType::Modify)
            .event_version("1.1")
            .event_source("aws:dynamodb")
            .aws_region("us-east-1")
            .dynamodb(change.build())
            .build()
    }

    #[test]
    fn every_attribute_type_converts_to_lambda_json() {
        let image = HashMap::from([
            ("subject_id".to_owned(), StreamValue::S("shop-1".into())),
            ("n".to_owned(), StreamValue::N("1.5".into())),
            ("b".to_owned(), StreamValue::B(Blob::new(b"hi".to_vec()))),
            ("t".to_owned(), StreamValue::Bool(true)),
            ("z".to_owned(), StreamValue::Null(true)),
            ("ss".to_owned(), StreamValue::Ss(vec!["a".into()])),
            ("ns".to_owned(), StreamValue::Ns(vec!["1".into()])),
            (
                "bs".to_owned(),
                StreamValue::Bs(vec![Blob::new(b"x".to_vec())]),
            ),
            (
                "m".to_owned(),
                StreamValue::M(HashMap::from([(
                    "l".to_owned(),
                    StreamValue::L(vec![StreamValue::S("v".into())]),
                )])),
            ),
        ]);
        let record = to_lambda_record(&sdk_record(Some(image)), "arn:stream", "us-east-1").unwrap();
        let json = lambda_json(&record);
        assert_eq!(
            json["dynamodb"]["NewImage"],
            json!({
                "subject_id": {"S": "shop-1"}, "n": {"N": "1.5"}, "b": {"B": "aGk="},
                "t": {"BOOL": true}, "z": {"NULL": true}, "ss": {"SS": ["a"]},
                "ns": {"NS": ["1"]}, "bs": {"BS": ["eA=="]},
                "m": {"M": {"l": {"L": [{"S": "v"}]}}}
            })
        );
        assert_eq!(json["eventSourceARN"], "arn:stream");
        assert_eq!(json["eventName"], "MODIFY");
        assert_eq!(json["dynamodb"]["SequenceNumber"], "1100000000017454423009");
        assert_eq!(
            record.change.approximate_creation_date_time.timestamp(),
            1_700_000_000
        );
    }

    #[test]
    fn lambda_json_leaves_out_what_lambda_leaves_out() {
        let mut sdk = sdk_record(None);
        sdk.event_name = Some(OperationType::Remove);
        sdk.user_identity = Some(
            Identity::builder()
                .r#type("Service")
                .principal_id("dynamodb.amazonaws.com")
                .build(),
        );
        let record = to_lambda_record(&sdk, "arn:stream", "us-east-1").unwrap();
        let raw = serde_json::to_value(&record).unwrap();
        assert_eq!(raw["dynamodb"]["NewImage"], json!({}));
        let json = lambda_json(&record);
        assert!(json["dynamodb"].get("NewImage").is_none());
        assert!(json["dynamodb"].get("OldImage").is_some());
        assert!(json.as_object().unwrap().values().all(|v| !v.is_null()));
        assert_eq!(
            json["userIdentity"],
            json!({"type": "Service", "principalId": "dynamodb.amazonaws.com"})
        );
    }
}
