//! The emulator is as strict as DynamoDB where moto alone is not: requests that DynamoDB rejects
//! are rejected here too, with the request in the message (local/moto_server.py + dynalite).
//! Tables named `expect-rejection-*` keep these deliberate rejections out of the run's
//! violations file.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, PutRequest,
    ScalarAttributeType, WriteRequest,
};
use aws_sdk_dynamodb::Client;

async fn table(client: &Client) -> String {
    let name = format!("expect-rejection-{}", emulator::unique_prefix());
    client
        .create_table()
        .table_name(&name)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("pk")
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("pk")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("create table");
    name
}

fn item(pk: &str) -> HashMap<String, AttributeValue> {
    HashMap::from([("pk".to_owned(), AttributeValue::S(pk.to_owned()))])
}

/// The error DynamoDB (and now the emulator) answers, as code and message.
fn rejection<E, R>(result: Result<R, aws_sdk_dynamodb::error::SdkError<E>>) -> (String, String)
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::fmt::Debug,
    R: std::fmt::Debug,
{
    let err = result.expect_err("the emulator accepted a request that DynamoDB rejects");
    let service = err.as_service_error().expect("a service error");
    (
        service.code().unwrap_or_default().to_owned(),
        service.message().unwrap_or_default().to_owned(),
    )
}

#[tokio::test]
async fn an_unused_expression_value_is_rejected_with_the_request_in_the_message() {
    let client = Client::new(&emulator::test_sdk_config());
    let table = table(&client).await;

    let (code, message) = rejection(
        client
            .put_item()
            .table_name(&table)
            .set_item(Some(item("a")))
            .condition_expression("attribute_not_exists(pk)")
            .expression_attribute_values(":pending", AttributeValue::S("pending".into()))
            .send()
            .await,
    );

    assert_eq!(code, "ValidationException");
    assert!(
        message.contains("unused in expressions: keys: {:pending}"),
        "{message}"
    );
    assert!(message.contains("attribute_not_exists(pk)"), "{message}");
}

#[tokio::test]
async fn a_bare_reserved_word_in_a_condition_is_rejected() {
    let client = Client::new(&emulator::test_sdk_config());
    let table = table(&client).await;

    let (code, message) = rejection(
        client
            .put_item()
            .table_name(&table)
            .set_item(Some(item("a")))
            .condition_expression("attribute_not_exists(status)")
            .send()
            .await,
    );

    assert_eq!(code, "ValidationException");
    assert!(message.contains("reserved keyword"), "{message}");
}

#[tokio::test]
async fn more_than_25_writes_in_one_batch_are_rejected() {
    let client = Client::new(&emulator::test_sdk_config());
    let table = table(&client).await;
    let writes = (0..26)
        .map(|i| {
            WriteRequest::builder()
                .put_request(
                    PutRequest::builder()
                        .set_item(Some(item(&i.to_string())))
                        .build()
                        .unwrap(),
                )
                .build()
        })
        .collect();

    let (code, _) = rejection(
        client
            .batch_write_item()
            .request_items(&table, writes)
            .send()
            .await,
    );

    assert_eq!(code, "ValidationException");
}

#[tokio::test]
async fn an_item_over_400_kb_is_rejected() {
    let client = Client::new(&emulator::test_sdk_config());
    let table = table(&client).await;
    let mut big = item("a");
    big.insert("blob".into(), AttributeValue::S("x".repeat(401 * 1024)));

    let (code, message) = rejection(
        client
            .put_item()
            .table_name(&table)
            .set_item(Some(big))
            .send()
            .await,
    );

    assert_eq!(code, "ValidationException");
    assert!(message.contains("size"), "{message}");
}
