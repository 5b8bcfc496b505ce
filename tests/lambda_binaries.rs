//! The real Lambda binaries (what `sam build` packages), each fed its `events/` payloads through
//! the Lambda Runtime API, with its environment from template.yaml and the emulator behind it.
//! They must answer every payload with a response of their trigger's shape, never crash.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use emulator::runtime_api::{invoke_binary, Invocation};
use emulator::TestEnv;

/// `LAMBDA_BIN_DIR` when set (e.g. `target/release`, see `make lambda-check`), else the
/// binaries cargo built beside the `deps/` folder holding this test.
fn binary(name: &str) -> PathBuf {
    let dir = match std::env::var_os("LAMBDA_BIN_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => {
            let exe = std::env::current_exe().expect("test executable path");
            exe.parent()
                .and_then(|deps| deps.parent())
                .expect("target profile dir")
                .to_path_buf()
        }
    };
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is not built: run `cargo build --workspace --bins` (make test does)",
        path.display()
    );
    path
}

fn events(function: &str, env: &TestEnv) -> Vec<(String, serde_json::Value)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../events")
        .join(function);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no events in {}", dir.display());
    files
        .into_iter()
        .map(|path| {
            // Point the payloads at this test's resources, as a deployed stack's would be.
            let text = std::fs::read_to_string(&path)
                .unwrap()
                .replace("${DATA_BUCKET}", &env.names.data_bucket);
            (
                path.file_name().unwrap().to_string_lossy().into_owned(),
                serde_json::from_str(&text).unwrap(),
            )
        })
        .collect()
}

fn lambda_env(env: &TestEnv, function: &str) -> HashMap<String, String> {
    let mut vars: HashMap<String, String> = env.resources.functions[function]
        .environment
        .clone()
        .into_iter()
        .collect();
    // The binary runs as the function's own principal, with the template's policy, as Lambda
    // gives it its execution role's credentials.
    let credentials = env.resources.functions[function]
        .credentials
        .clone()
        .expect("a principal per function");
    for (k, v) in [
        ("AWS_ENDPOINT_URL", emulator::endpoint_from_env().unwrap()),
        ("AWS_ACCESS_KEY_ID", credentials.access_key_id),
        ("AWS_SECRET_ACCESS_KEY", credentials.secret_access_key),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_LAMBDA_LOG_FORMAT", "JSON".into()),
    ] {
        vars.insert(k.to_owned(), v);
    }
    vars
}

async fn run(
    function: &str,
    binary_name: &str,
    events_dir: &str,
    check: impl Fn(&str, &serde_json::Value),
) {
    let env = TestEnv::new().await;
    let payloads = events(events_dir, &env);
    let inputs: Vec<serde_json::Value> = payloads.iter().map(|(_, p)| p.clone()).collect();

    let answers = invoke_binary(
        &binary(binary_name),
        &lambda_env(&env, function),
        &inputs,
        Duration::from_secs(60),
    )
    .await
    .unwrap_or_else(|e| panic!("{binary_name}: {e}"));

    assert_eq!(answers.len(), payloads.len());
    for ((name, _), answer) in payloads.iter().zip(&answers) {
        match answer {
            Invocation::Response(body) => check(name, body),
            Invocation::Error(error) => panic!("{binary_name} failed on {name}: {error}"),
        }
    }
}

fn is_batch_response(name: &str, body: &serde_json::Value) {
    assert!(
        body["batchItemFailures"].is_array(),
        "{name}: not a partial batch response: {body}"
    );
}

#[tokio::test]
async fn request_api_binary_answers_every_http_payload() {
    run(
        "RequestApiFunction",
        "request-api",
        "request-api",
        |name, body| {
            let status = body["statusCode"]
                .as_u64()
                .unwrap_or_else(|| panic!("{name}: no statusCode in {body}"));
            assert!((200..500).contains(&status), "{name}: status {status}");
        },
    )
    .await;
}

#[tokio::test]
async fn compute_binary_answers_every_sqs_payload() {
    run("ComputeFunction", "compute", "compute", is_batch_response).await;
}

#[tokio::test]
async fn metadata_sync_binary_answers_every_sqs_payload() {
    run(
        "MetadataSyncFunction",
        "metadata-sync",
        "metadata-sync",
        is_batch_response,
    )
    .await;
}

#[tokio::test]
async fn notifier_binary_answers_every_stream_payload() {
    run(
        "NotifierFunction",
        "notifier",
        "notifier",
        is_batch_response,
    )
    .await;
}
