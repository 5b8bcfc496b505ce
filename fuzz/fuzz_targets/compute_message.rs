//! compute's message parsing: an SQS body (Unicode text, as SQS only carries text) through
//! `ComputeRequested::from_json`. A message is understood completely or rejected with an
//! error, and what is understood writes back to an equal event.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shared::events::{ComputeRequested, EventType, TRACE_ID_MAX_LEN};

fuzz_target!(|data: &[u8]| {
    let Ok(body) = std::str::from_utf8(data) else {
        return;
    };
    match ComputeRequested::from_json(body) {
        Ok(event) => {
            assert_eq!(event.kind, EventType::ComputeRequested);
            assert!(event
                .trace_id
                .as_ref()
                .is_none_or(|t| t.len() <= TRACE_ID_MAX_LEN));
            let json = serde_json::to_string(&event).unwrap();
            assert_eq!(ComputeRequested::from_json(&json).unwrap(), event);
        }
        Err(err) => assert!(!err.to_string().is_empty()),
    }
});
