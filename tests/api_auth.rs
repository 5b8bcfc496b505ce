//! The local HTTP API plays the template's auth, through the runner's real HTTP server: with
//! `ApiAuth=AWS_IAM` (the default) only requests SigV4-signed with the emulator's credentials
//! reach the function, everything else gets API Gateway's own 403; with `ApiAuth=NONE` unsigned
//! requests are served.

use std::time::{Duration, SystemTime};

use aws_sdk_sqs::config::Credentials;
use deferred_smoke::Signer;
use e2e_tests::{Answer, System};
use reqwest::Method;
use serde_json::json;

const MISMATCH: &str = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.";

fn request_api_invocations(system: &System) -> u64 {
    system
        .runner
        .stats
        .function("RequestApiFunction")
        .invocations()
}

/// The answer is API Gateway's 403 (JSON `message`, `x-amzn-errortype`), not the function's.
fn assert_denied(answer: &Answer, error_type: &str, message: &str) {
    assert_eq!(answer.status, 403, "{}", answer.body);
    assert_eq!(
        answer.headers["x-amzn-errortype"], error_type,
        "{}",
        answer.body
    );
    assert_eq!(answer.headers["content-type"], "application/json");
    let text = answer.body["message"].as_str().unwrap_or_default();
    assert!(
        text.starts_with(message),
        "{text:?} does not start with {message:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn under_aws_iam_only_requests_signed_by_the_known_key_reach_the_function() {
    let system = System::start(&[]).await;
    assert!(
        system.runner.http_auth.iam_required,
        "ApiAuth=AWS_IAM is the default"
    );
    let region = system.runner.http_auth.iam.region().to_owned();
    let signed_get = |path: &str| {
        let path = path.to_owned();
        let system = &system;
        async move {
            let mut request = system.build(Method::GET, &path).build().unwrap();
            system.sign(&mut request).await;
            request
        }
    };

    // Signed: served by the function.
    let accepted = system.get("/v1/scores/auth-signed").await;
    assert_eq!(accepted.status, 202, "{}", accepted.body);
    let batch = system
        .request(
            Method::POST,
            "/v1/scores/batch-get",
            Some(json!({"subject_ids": ["auth-batch"]})),
        )
        .await;
    assert_eq!(batch.status, 200, "{}", batch.body);
    // An unknown route is $default's, IAM too: signed, the function's own problem+json 404.
    let unknown = system.get("/v2/nothing").await;
    assert_eq!(unknown.status, 404, "{}", unknown.body);
    assert_eq!(
        unknown.headers["content-type"], "application/problem+json",
        "{}",
        unknown.body
    );
    let served = request_api_invocations(&system);

    // Unsigned, on a route and on $default.
    for path in ["/v1/scores/auth-signed", "/v2/nothing"] {
        let request = system.build(Method::GET, path).build().unwrap();
        let answer = system.send(request).await;
        assert_denied(&answer, "ForbiddenException", "Forbidden");
        assert_eq!(answer.body, json!({"message": "Forbidden"}));
    }

    // A signature changed in transit.
    let mut request = signed_get("/v1/scores/auth-signed").await;
    let authorization = request.headers()["authorization"].to_str().unwrap();
    let last = authorization.chars().last().unwrap();
    let flipped = format!(
        "{}{}",
        &authorization[..authorization.len() - 1],
        if last == '0' { '1' } else { '0' }
    );
    request
        .headers_mut()
        .insert("authorization", flipped.parse().unwrap());
    assert_denied(
        &system.send(request).await,
        "InvalidSignatureException",
        MISMATCH,
    );

    // A path changed after signing.
    let mut request = signed_get("/v1/scores/auth-signed").await;
    request.url_mut().set_path("/v1/scores/auth-someone-else");
    assert_denied(
        &system.send(request).await,
        "InvalidSignatureException",
        MISMATCH,
    );

    // A query changed after signing.
    let mut request = signed_get("/v1/scores/auth-signed?wait=1").await;
    request.url_mut().set_query(Some("wait=2"));
    assert_denied(
        &system.send(request).await,
        "InvalidSignatureException",
        MISMATCH,
    );

    // A body changed after signing (same length, same content type).
    let mut request = system
        .build(Method::POST, "/v1/scores/batch-get")
        .json(&json!({"subject_ids": ["auth-a"]}))
        .build()
        .unwrap();
    system.sign(&mut request).await;
    *request.body_mut() = Some(r#"{"subject_ids":["auth-b"]}"#.into());
    assert_denied(
        &system.send(request).await,
        "InvalidSignatureException",
        MISMATCH,
    );

    // A key the API does not know, and the known key with the wrong secret.
    for (key, secret) in [("AKIDUNKNOWNEXAMPLE", "secret"), ("test", "not-the-secret")] {
        let signer = Signer::new(Credentials::new(key, secret, None, None, "test"), &region);
        let mut request = system
            .build(Method::GET, "/v1/scores/auth-signed")
            .build()
            .unwrap();
        signer.sign(&mut request).await.unwrap();
        let answer = system.send(request).await;
        match key {
            "test" => assert_denied(&answer, "InvalidSignatureException", MISMATCH),
            _ => assert_denied(
                &answer,
                "UnrecognizedClientException",
                "The security token included in the request is invalid.",
            ),
        }
    }

    // Signed more than five minutes ago, or ahead.
    for (offset, message) in [
        (-600, "Signature expired: "),
        (600, "Signature not yet current: "),
    ] {
        let mut request = system
            .build(Method::GET, "/v1/scores/auth-signed")
            .build()
            .unwrap();
        let at = match offset < 0 {
            true => SystemTime::now() - Duration::from_secs(600),
            false => SystemTime::now() + Duration::from_secs(600),
        };
        system.signer.sign_at(&mut request, at).await.unwrap();
        assert_denied(
            &system.send(request).await,
            "InvalidSignatureException",
            message,
        );
    }

    // Scoped to another region, or another service's signature.
    let signer = Signer::new(
        Credentials::new("test", "test", None, None, "test"),
        "eu-west-1",
    );
    let mut request = system
        .build(Method::GET, "/v1/scores/auth-signed")
        .build()
        .unwrap();
    signer.sign(&mut request).await.unwrap();
    assert_denied(
        &system.send(request).await,
        "InvalidSignatureException",
        "Credential should be scoped to a valid region, not 'eu-west-1'.",
    );
    let mut request = signed_get("/v1/scores/auth-signed").await;
    let other_service = request.headers()["authorization"]
        .to_str()
        .unwrap()
        .replace("/execute-api/", "/s3/");
    request
        .headers_mut()
        .insert("authorization", other_service.parse().unwrap());
    assert_denied(
        &system.send(request).await,
        "InvalidSignatureException",
        "Credential should be scoped to correct service: 'execute-api'.",
    );

    // Not an AWS4-HMAC-SHA256 header at all.
    let request = system
        .build(Method::GET, "/v1/scores/auth-signed")
        .header("authorization", "Bearer abc")
        .build()
        .unwrap();
    assert_denied(
        &system.send(request).await,
        "IncompleteSignatureException",
        "Authorization header requires 'Credential' parameter.",
    );

    assert_eq!(
        request_api_invocations(&system),
        served,
        "no refused request reached the function"
    );

    // As curl --aws-sigv4 signs: only host and x-amz-date, no x-amz-content-sha256 header. A
    // subject of its own: a first request is always 202, while auth-signed's job may be done.
    let request = signed_get("/v1/scores/auth-curl-style").await;
    let authorization = request.headers()["authorization"].to_str().unwrap();
    assert!(
        authorization.contains("SignedHeaders=host;x-amz-date,"),
        "{authorization}"
    );
    assert!(!request.headers().contains_key("x-amz-content-sha256"));
    assert_eq!(system.send(request).await.status, 202);
    system.runner.shutdown().await;
}

/// The curl lines the runner prints for `make dev` work as printed: curl's own SigV4
/// (`--aws-sigv4`, curl 7.75 or later), another implementation than the SDK's.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_printed_curl_lines_are_accepted() {
    let system = System::start(&[]).await;
    let steps = local_runner::cli::next_steps(&system.runner, "http://emulator");
    let lines: Vec<&str> = steps
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("curl "))
        .collect();
    assert_eq!(lines.len(), 5, "{steps}");
    assert!(
        lines
            .iter()
            .all(|l| l.contains("--aws-sigv4 'aws:amz:us-east-1:execute-api' --user 'test:test'")),
        "{steps}"
    );
    if !curl_with_sigv4() {
        println!("SKIPPED running them: no curl with --aws-sigv4 on PATH (the SDK's signing is tested above)");
        system.runner.shutdown().await;
        return;
    }
    // The line as a shell runs it, with only the status code printed.
    let status = |line: &str| {
        let output = std::process::Command::new("bash")
            .arg("-c")
            .arg(format!("{line} -s -o /dev/null -w '%{{http_code}}'"))
            .output()
            .expect("bash runs");
        String::from_utf8_lossy(&output.stdout).into_owned()
    };

    for line in &lines {
        let answer = status(line);
        assert!(
            ["200", "202"].contains(&answer.as_str()),
            "{answer} from {line}"
        );
    }
    let unsigned = lines[0].replace(
        " --aws-sigv4 'aws:amz:us-east-1:execute-api' --user 'test:test'",
        "",
    );
    assert_eq!(status(&unsigned), "403", "{unsigned}");
    system.runner.shutdown().await;
}

/// Whether the `curl` on PATH knows `--aws-sigv4`.
fn curl_with_sigv4() -> bool {
    std::process::Command::new("curl")
        .args(["--help", "all"])
        .output()
        .is_ok_and(|help| String::from_utf8_lossy(&help.stdout).contains("--aws-sigv4"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn under_api_auth_none_unsigned_requests_are_served() {
    let system = System::start(&[("ApiAuth", "NONE")]).await;
    assert!(!system.runner.http_auth.iam_required);

    let request = system
        .build(Method::GET, "/v1/scores/open-1")
        .build()
        .unwrap();
    let unsigned = system.send(request).await;
    // A signature is not checked either: API Gateway ignores it on a route without auth.
    let signed = system.get("/v1/scores/open-2").await;
    let steps = local_runner::cli::next_steps(&system.runner, "http://emulator");

    assert_eq!(unsigned.status, 202, "{}", unsigned.body);
    assert_eq!(signed.status, 202, "{}", signed.body);
    assert!(steps.contains("no auth (ApiAuth=NONE)"), "{steps}");
    assert!(!steps.contains("--aws-sigv4"), "{steps}");
    system.runner.shutdown().await;
}
