//! DynamoDB Streams records (as the Streams API returns them) in the shape Lambda hands a stream
//! consumer (`aws_lambda_events`' `EventRecord`): the local runner feeds them to notifier, and
//! `deferred-ops replay-notifier-failures` replays a range of the stream through notifier's own
//! handler.

use std::collections::HashMap;

use aws_lambda_events::dynamodb::EventRecord;
use aws_sdk_dynamodbstreams::types::{AttributeValue as StreamValue, Record};
use serde_dynamo::AttributeValue;
use serde_json::{json, Value};

/// A stream record that cannot be put in Lambda's shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("stream record {sequence_number:?}: {message}")]
pub struct InvalidStreamRecord {
    pub sequence_number: Option<String>,
    pub message: String,
}

/// A DynamoDB Streams record as Lambda delivers it (`eventSourceARN` is the stream ARN).
pub fn to_lambda_record(
    record: &Record,
    stream_arn: &str,
    default_region: &str,
) -> Result<EventRecord, InvalidStreamRecord> {
    let change = record.dynamodb.as_ref();
    let sequence_number = change.and_then(|c| c.sequence_number.clone());
    let invalid = |message: String| InvalidStreamRecord {
        sequence_number: sequence_number.clone(),
        message,
    };
    let Some(change) = change else {
        return Err(invalid("no dynamodb section".into()));
    };
    let mut dynamodb = json!({
        "Keys": item_json(change.keys.as_ref()).map_err(&invalid)?,
        "SequenceNumber": change.sequence_number,
        "SizeBytes": change.size_bytes.unwrap_or_default(),
        "StreamViewType": change.stream_view_type.as_ref().map(|v| v.as_str()),
    });
    if let Some(time) = change.approximate_creation_date_time {
        dynamodb["ApproximateCreationDateTime"] = json!(time.secs());
    }
    if change.new_image.is_some() {
        dynamodb["NewImage"] = item_json(change.new_image.as_ref()).map_err(&invalid)?;
    }
    if change.old_image.is_some() {
        dynamodb["OldImage"] = item_json(change.old_image.as_ref()).map_err(&invalid)?;
    }
    let mut lambda = json!({
        "eventID": record.event_id,
        "eventName": record.event_name.as_ref().map(|n| n.as_str()),
        "eventVersion": record.event_version,
        "eventSource": record.event_source.as_deref().unwrap_or("aws:dynamodb"),
        "awsRegion": record.aws_region.as_deref().unwrap_or(default_region),
        "eventSourceARN": stream_arn,
        "dynamodb": dynamodb,
    });
    if let Some(identity) = &record.user_identity {
        lambda["userIdentity"] = json!({
            "type": identity.r#type,
            "principalId": identity.principal_id,
        });
    }
    serde_json::from_value(lambda).map_err(|e| invalid(e.to_string()))
}

fn item_json(item: Option<&HashMap<String, StreamValue>>) -> Result<Value, String> {
    let converted: HashMap<String, AttributeValue> = item
        .into_iter()
        .flatten()
        .map(|(k, v)| Ok((k.clone(), attribute(v)?)))
        .collect::<Result<_, String>>()?;
    serde_json::to_value(serde_dynamo::Item::from(converted)).map_err(|e| e.to_string())
}

/// The SDK's stream attribute value as serde_dynamo's (the workspace enables serde_dynamo only
/// for aws-sdk-dynamodb, not aws-sdk-dynamodbstreams).
fn attribute(value: &StreamValue) -> Result<AttributeValue, String> {
    Ok(match value {
        StreamValue::S(s) => AttributeValue::S(s.clone()),
        StreamValue::N(n) => AttributeValue::N(n.clone()),
        StreamValue::Bool(b) => AttributeValue::Bool(*b),
        StreamValue::Null(b) => AttributeValue::Null(*b),
        StreamValue::B(b) => AttributeValue::B(b.as_ref().to_vec()),
        StreamValue::Ss(v) => AttributeValue::Ss(v.clone()),
        StreamValue::Ns(v) => AttributeValue::Ns(v.clone()),
        StreamValue::Bs(v) => AttributeValue::Bs(v.iter().map(|b| b.as_ref().to_vec()).collect()),
        StreamValue::L(items) => {
            AttributeValue::L(items.iter().map(attribute).collect::<Result<_, _>>()?)
        }
        StreamValue::M(map) => AttributeValue::M(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), attribute(v)?)))
                .collect::<Result<_, String>>()?,
        ),
        other => return Err(format!("unknown attribute value type {other:?}")),
    })
}
