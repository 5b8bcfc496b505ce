//! BatchGetItem over any number of keys, the way both stores need it: chunks of 100,
//! duplicate keys removed (DynamoDB rejects a request that repeats one), strongly consistent,
//! unprocessed keys retried with backoff.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};

use crate::expression::{Expressions, WithExpressions};
use crate::Error;

pub type Item = HashMap<String, AttributeValue>;

/// BatchGetItem takes at most 100 keys a call.
pub const BATCH_GET_MAX: usize = 100;

/// Every item found for `keys` (absent ones are simply missing), and the number of requests made.
pub async fn batch_get_items(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    mut keys: Vec<Item>,
    projection: Option<Expressions>,
) -> Result<(Vec<Item>, usize), Error> {
    let mut seen = std::collections::HashSet::new();
    keys.retain(|k| {
        let mut sorted: Vec<_> = k.iter().map(|(n, v)| format!("{n}={v:?}")).collect();
        sorted.sort();
        seen.insert(sorted.join("&"))
    });
    let (mut items, mut requests) = (Vec::with_capacity(keys.len()), 0);
    for chunk in keys.chunks(BATCH_GET_MAX) {
        let mut pending = chunk.to_vec();
        let mut backoff = backon::BackoffBuilder::build(crate::retry::batch_backoff());
        while !pending.is_empty() {
            let mut request = KeysAndAttributes::builder()
                .set_keys(Some(std::mem::take(&mut pending)))
                .consistent_read(true);
            if let Some(projection) = &projection {
                request = request.with_expressions(projection.clone())?;
            }
            let request = request.build().map_err(|source| Error::Build {
                service: "DynamoDB",
                source,
            })?;
            requests += 1;
            let output = client
                .batch_get_item()
                .request_items(table, request)
                .send()
                .await
                .map_err(|e| Error::aws("DynamoDB", "BatchGetItem", e))?;
            items.extend(
                output
                    .responses
                    .unwrap_or_default()
                    .remove(table)
                    .unwrap_or_default(),
            );
            pending = output
                .unprocessed_keys
                .unwrap_or_default()
                .remove(table)
                .map(|k| k.keys)
                .unwrap_or_default();
            if !pending.is_empty() {
                match backoff.next() {
                    Some(delay) => tokio::time::sleep(delay).await,
                    None => {
                        return Err(Error::Unprocessed {
                            service: "DynamoDB",
                            count: pending.len(),
                        })
                    }
                }
            }
        }
    }
    Ok((items, requests))
}
