//! The Lambda payloads of `events/<function>/<case>.json`, one way for every test crate.
//!
//! `function` is the folder under `events/` (`request-api`, `compute`, `notifier`,
//! `metadata-sync`) and `case` the file name without `.json`. The same files serve
//! `sam local invoke -e` and `cargo lambda invoke --data-file`, so they name a deployed stack's
//! resources; a test that needs its own (a bucket name, a job id) rewrites the [`text`] before
//! parsing it, and never the files.

use std::path::PathBuf;

/// `events/` at the repository root (this crate lives two levels below it).
pub fn root() -> PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events")
}

/// `events/<function>/<case>.json`.
pub fn path(function: &str, case: &str) -> PathBuf {
    root().join(function).join(format!("{case}.json"))
}

/// The payload's text, as in the file.
pub fn text(function: &str, case: &str) -> String {
    let path = path(function, case);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The payload as JSON (`serde_json::from_value` makes it the Lambda event type).
pub fn load(function: &str, case: &str) -> serde_json::Value {
    parse(function, case, &text(function, case))
}

/// A (rewritten) payload text of `function`/`case` as JSON, with the file named if it is not.
pub fn parse(function: &str, case: &str, text: &str) -> serde_json::Value {
    serde_json::from_str(text)
        .unwrap_or_else(|e| panic!("{}: not JSON: {e}", path(function, case).display()))
}

/// The cases of `events/<function>/`, sorted (never empty).
pub fn cases(function: &str) -> Vec<String> {
    let dir = root().join(function);
    let mut cases: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    cases.sort();
    assert!(!cases.is_empty(), "no payloads in {}", dir.display());
    cases
}
