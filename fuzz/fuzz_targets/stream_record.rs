//! notifier's stream records: a DynamoDB stream event (JSON, as Lambda delivers it) through
//! `notifier::decide` and the handler, with a publisher that accepts everything. Every record is
//! published, skipped or reported undecodable; a published event is within SNS's limits, has
//! a score in [0, 1] when it has one, and an error message of at most 4096 bytes.
#![no_main]

use std::sync::OnceLock;

use aws_lambda_events::dynamodb::Event;
use libfuzzer_sys::fuzz_target;
use notifier::{decide, Decision, Deps, PublishBatch, MAX_ERROR_MESSAGE_BYTES};
use shared::publisher::{BatchFailure, OutgoingMessage, MAX_PAYLOAD_BYTES};

struct AcceptAll;

impl PublishBatch for AcceptAll {
    async fn publish_batch(
        &self,
        _topic_arn: &str,
        messages: &[OutgoingMessage],
    ) -> Result<Vec<BatchFailure>, shared::Error> {
        assert!(messages.len() <= shared::publisher::PUBLISH_BATCH_MAX);
        Ok(Vec::new())
    }
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(event) = serde_json::from_slice::<Event>(data) else {
        return;
    };
    for record in &event.records {
        if let Decision::Publish(event) = decide(record) {
            if let Some(score) = event.score {
                assert!((0.0..=1.0).contains(&score), "score {score}");
            }
            if let Some(error) = &event.error {
                assert!(error.message.len() <= MAX_ERROR_MESSAGE_BYTES);
            }
            let message = OutgoingMessage::score_event("fuzz", &event).unwrap();
            assert!(message.payload_bytes() <= MAX_PAYLOAD_BYTES);
        }
    }
    let deps = Deps::with_publisher(AcceptAll, "arn:aws:sns:us-east-1:123456789012:fuzz");
    let invocation = lambda_runtime::LambdaEvent::new(event, lambda_runtime::Context::default());
    let response = runtime()
        .block_on(notifier::handle(invocation, &deps))
        .expect("a batch whose messages are all accepted is handled");
    assert!(response.batch_item_failures.is_empty());
});
