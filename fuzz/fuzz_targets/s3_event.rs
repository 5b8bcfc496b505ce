//! metadata-sync's message bodies: an SQS body through `notice::parse_body`, every record through
//! `notice::notice` (which decodes the key with `notice::decode_key`), and the key's catalog
//! place. A body is an `s3:TestEvent`, notices, or an error; a notice has a non-empty key within
//! S3's 1024 bytes, a sequencer, and a catalog `dir`/`name` DynamoDB accepts.
#![no_main]

use libfuzzer_sys::fuzz_target;
use metadata_sync::notice::{decode_key, notice, parse_body, Body};
use shared::catalog_store::split_key;

fuzz_target!(|data: &[u8]| {
    let Ok(body) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(Body::Notification(event)) = parse_body(body) {
        for record in &event.records {
            if let Ok(Some(notice)) = notice(record) {
                assert!(!notice.key.is_empty());
                assert!(notice.key.len() <= metadata_sync::notice::MAX_KEY_BYTES);
                assert!(!notice.sequencer.as_str().is_empty());
                let (dir, name) = split_key(&notice.key);
                assert!(!dir.is_empty() && !name.is_empty());
                let _ = metadata_sync::subject_of(&notice.key);
            }
        }
    }
    // The body as an encoded key: decoding never makes it longer.
    if let Ok(key) = decode_key(body) {
        assert!(key.len() <= body.len());
    }
});
