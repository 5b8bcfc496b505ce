//! `SubjectId::parse`, which every subject id from outside goes through (HTTP paths, batch-get
//! bodies, `compute.requested`, dataset keys): any text gives an id that keeps the documented
//! alphabet and length, or the error that names why not; never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shared::domain::{InvalidSubjectId, SubjectId};

fn allowed(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-')
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    match SubjectId::parse(&text) {
        Ok(id) => {
            assert_eq!(id.as_str(), text);
            assert!((1..=SubjectId::MAX_LEN).contains(&text.len()));
            assert!(text.chars().all(allowed));
            let json = serde_json::to_string(&id).unwrap();
            assert_eq!(serde_json::from_str::<SubjectId>(&json).unwrap(), id);
        }
        Err(InvalidSubjectId::Empty) => assert!(text.is_empty()),
        Err(InvalidSubjectId::TooLong(n)) => {
            assert_eq!(n, text.chars().count());
            assert!(n > SubjectId::MAX_LEN);
        }
        Err(InvalidSubjectId::BadCharacter(c)) => assert!(text.contains(c) && !allowed(c)),
    }
    // The same input as a JSON value (how events and bodies carry ids).
    let _ = serde_json::from_slice::<SubjectId>(data);
});
