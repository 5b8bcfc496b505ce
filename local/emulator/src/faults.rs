//! AWS behaviours the emulator never shows, injected into real calls with an SDK interceptor.
//!
//! moto processes every key of a BatchGetItem and every entry of an SNS PublishBatch. AWS may
//! not: under load DynamoDB returns `UnprocessedKeys`, and SNS reports entries in `Failed` while
//! the call as a whole succeeds. [`PartialBatches`]
//! makes a real call behave that way: it takes the chosen items out of the request before it is
//! sent (so the emulator really does not process them) and puts them into the response where
//! AWS would, so the code under test meets exactly AWS's shapes.
//!
//! Attach it to a client with `Builder::from(&sdk).interceptor(faults.clone())`.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::operation::batch_get_item::{BatchGetItemInput, BatchGetItemOutput};
use aws_sdk_dynamodb::types::KeysAndAttributes;
use aws_sdk_sns::operation::publish_batch::{PublishBatchInput, PublishBatchOutput};
use aws_sdk_sns::types::BatchResultErrorEntry;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeSerializationInterceptorContextMut, FinalizerInterceptorContextMut,
};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};

/// Which batch calls leave work undone, and which part of it.
#[derive(Debug, Clone)]
pub struct PartialBatches {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// DynamoDB batch calls that may still be made partial; later calls pass untouched.
    dynamodb_calls_left: AtomicUsize,
    /// SNS PublishBatch entry ids to fail (every time they are sent).
    failing_entries: HashSet<String>,
    /// What was left undone so far: DynamoDB keys (debug form), SNS entry ids.
    undone: Mutex<Vec<String>>,
}

/// The part taken out of one request, carried from the request to its response.
#[derive(Debug, Clone)]
enum Removed {
    Keys(HashMap<String, KeysAndAttributes>),
    Entries(Vec<String>),
}

impl Storable for Removed {
    type Storer = StoreReplace<Self>;
}

impl PartialBatches {
    /// The first `calls` BatchGetItem calls read only their first key per table and return the
    /// rest as unprocessed, as DynamoDB does when a partition runs out of read capacity.
    pub fn unprocessed_dynamodb_items(calls: usize) -> Self {
        Self::new(calls, HashSet::new())
    }

    /// SNS PublishBatch entries with these ids are not published and come back in `Failed`
    /// (`InternalError`, not the sender's fault), however often they are sent.
    pub fn failed_publish_entries<I: IntoIterator<Item = S>, S: Into<String>>(ids: I) -> Self {
        Self::new(0, ids.into_iter().map(Into::into).collect())
    }

    fn new(dynamodb_calls: usize, failing_entries: HashSet<String>) -> Self {
        Self {
            inner: Arc::new(Inner {
                dynamodb_calls_left: AtomicUsize::new(dynamodb_calls),
                failing_entries,
                undone: Mutex::new(Vec::new()),
            }),
        }
    }

    /// Everything left undone so far, in order.
    pub fn undone(&self) -> Vec<String> {
        self.inner.undone.lock().expect("not poisoned").clone()
    }

    fn take_dynamodb_call(&self) -> bool {
        self.inner
            .dynamodb_calls_left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }

    fn record<T: std::fmt::Debug>(&self, items: impl IntoIterator<Item = T>) {
        let mut undone = self.inner.undone.lock().expect("not poisoned");
        undone.extend(items.into_iter().map(|i| format!("{i:?}")));
    }

    fn split_keys(&self, input: &mut BatchGetItemInput) -> Option<Removed> {
        let mut removed = HashMap::new();
        for (table, request) in input.request_items.iter_mut().flatten() {
            if request.keys.len() > 1 {
                let rest: Vec<_> = request.keys.drain(1..).collect();
                self.record(&rest);
                // The keys come back with the request's projection, as DynamoDB returns them.
                let mut unprocessed = request.clone();
                unprocessed.keys = rest;
                removed.insert(table.clone(), unprocessed);
            }
        }
        (!removed.is_empty()).then_some(Removed::Keys(removed))
    }

    fn split_entries(&self, input: &mut PublishBatchInput) -> Result<Option<Removed>, BoxError> {
        let Some(entries) = input.publish_batch_request_entries.as_mut() else {
            return Ok(None);
        };
        let failing: Vec<String> = entries
            .iter()
            .map(|e| e.id.clone())
            .filter(|id| self.inner.failing_entries.contains(id))
            .collect();
        if failing.is_empty() {
            return Ok(None);
        }
        if failing.len() == entries.len() {
            // SNS rejects an empty batch, so such a call cannot be sent.
            return Err("PartialBatches: every entry of this PublishBatch is set to fail".into());
        }
        entries.retain(|e| !failing.contains(&e.id));
        self.record(&failing);
        Ok(Some(Removed::Entries(failing)))
    }
}

impl Intercept for PartialBatches {
    fn name(&self) -> &'static str {
        "PartialBatches"
    }

    fn modify_before_serialization(
        &self,
        context: &mut BeforeSerializationInterceptorContextMut<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let input = context.input_mut();
        let removed = if let Some(reads) = input.downcast_mut::<BatchGetItemInput>() {
            self.take_dynamodb_call()
                .then(|| self.split_keys(reads))
                .flatten()
        } else if let Some(publish) = input.downcast_mut::<PublishBatchInput>() {
            self.split_entries(publish)?
        } else {
            None
        };
        if let Some(removed) = removed {
            cfg.interceptor_state().store_put(removed);
        }
        Ok(())
    }

    fn modify_before_attempt_completion(
        &self,
        context: &mut FinalizerInterceptorContextMut<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(removed) = cfg.load::<Removed>().cloned() else {
            return Ok(());
        };
        let Some(Ok(output)) = context.output_or_error_mut() else {
            return Ok(());
        };
        match removed {
            Removed::Keys(rest) => {
                if let Some(output) = output.downcast_mut::<BatchGetItemOutput>() {
                    output
                        .unprocessed_keys
                        .get_or_insert_with(HashMap::new)
                        .extend(rest);
                }
            }
            Removed::Entries(ids) => {
                if let Some(output) = output.downcast_mut::<PublishBatchOutput>() {
                    let failed = output.failed.get_or_insert_with(Vec::new);
                    for id in ids {
                        failed.push(
                            BatchResultErrorEntry::builder()
                                .id(id)
                                .code("InternalError")
                                .message("injected: not published")
                                .sender_fault(false)
                                .build()?,
                        );
                    }
                }
            }
        }
        Ok(())
    }
}
