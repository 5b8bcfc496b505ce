//! The scenarios, each judging the answers against docs/openapi.yaml.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};
use tokio::time::Instant;

use crate::api::{Answer, Api};
use crate::ScenarioResult;

const IN_PROGRESS: [&str; 3] = ["started", "pending", "running"];
const FINISHED: [&str; 2] = ["done", "failed"];
const REASONS: [&str; 4] = ["miss", "refresh", "stale", "redispatch"];
const BANDS: [&str; 3] = ["low", "medium", "high"];
/// A path the API does not serve (the `$default` route hands it to the function).
const UNKNOWN_ROUTE: &str = "/v1/smoke-no-such-route";
/// A space is not allowed in a subject id.
const INVALID_SUBJECT_PATH: &str = "/v1/scores/bad%20id";

/// A scenario's steps so far, so that a failure says how far it got.
#[derive(Default)]
struct Seen(Vec<String>);

impl Seen {
    fn push(&mut self, step: impl Into<String>) {
        self.0.push(step.into());
    }

    fn verdict(
        self,
        name: &'static str,
        started: Instant,
        outcome: Result<(), String>,
    ) -> ScenarioResult {
        let mut steps = self.0;
        let passed = outcome.is_ok();
        if let Err(e) = outcome {
            steps.push(e);
        }
        ScenarioResult {
            name,
            passed,
            seen: steps.join(" -> "),
            elapsed: started.elapsed(),
        }
    }
}

fn ensure(condition: bool, failure: impl FnOnce() -> String) -> Result<(), String> {
    if condition {
        Ok(())
    } else {
        Err(failure())
    }
}

fn unexpected(want: &str, answer: &Answer) -> String {
    let hint = if answer.status == 403 {
        " (API Gateway refused the caller: unsigned against ApiAuth=AWS_IAM, credentials without \
         execute-api:Invoke on this API, or a signature for another region)"
    } else {
        ""
    };
    format!(
        "want {want}, got {} {}: {}{hint}",
        answer.status,
        answer
            .media_type()
            .unwrap_or_else(|| "(no content-type)".into()),
        answer.excerpt()
    )
}

/// A job id is a ULID: 26 characters of Crockford's base 32.
fn is_ulid(id: &str) -> bool {
    id.len() == 26
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b.is_ascii_uppercase() && !b"ILOU".contains(&b)))
}

/// The fields every `Score` has (openapi `Score.required`), for `subject`; returns its status.
fn check_score<'a>(body: &'a Value, subject: &str, statuses: &[&str]) -> Result<&'a str, String> {
    let field = |name: &str| body.get(name).and_then(Value::as_str);
    ensure(body.is_object(), || format!("not a JSON object: {body}"))?;
    ensure(field("subject_id") == Some(subject), || {
        format!("subject_id {:?}, want {subject:?}", body.get("subject_id"))
    })?;
    let status = field("status").unwrap_or("");
    ensure(statuses.contains(&status), || {
        format!("status {:?}, want one of {statuses:?}", body.get("status"))
    })?;
    ensure(field("job_id").is_some_and(is_ulid), || {
        format!("job_id {:?} is not a ULID", body.get("job_id"))
    })?;
    ensure(
        field("reason").is_some_and(|r| REASONS.contains(&r)),
        || format!("reason {:?}, want one of {REASONS:?}", body.get("reason")),
    )?;
    ensure(field("requested_at").is_some(), || {
        format!("no requested_at: {body}")
    })?;
    Ok(status)
}

/// A well-formed `202`.
#[derive(Debug)]
struct Accepted {
    status: String,
    job_id: String,
    retry_after: Duration,
}

fn expect_accepted(answer: &Answer, subject: &str) -> Result<Accepted, String> {
    ensure(answer.status == 202, || unexpected("202", answer))?;
    ensure(
        answer.media_type().as_deref() == Some("application/json"),
        || unexpected("202 application/json", answer),
    )?;
    let body = answer
        .body
        .as_ref()
        .ok_or_else(|| unexpected("a JSON body", answer))?;
    let status = check_score(body, subject, &IN_PROGRESS)?;
    let location = answer
        .header("location")
        .ok_or_else(|| format!("202 {status} without Location"))?;
    let own_path = format!("/v1/scores/{subject}");
    ensure(location.ends_with(&own_path), || {
        format!("Location {location:?}, want {own_path:?}")
    })?;
    let retry_after = answer.retry_after().filter(|s| *s >= 1).ok_or_else(|| {
        format!(
            "Retry-After {:?}, want seconds >= 1",
            answer.header("retry-after")
        )
    })?;
    Ok(Accepted {
        status: status.to_owned(),
        job_id: body["job_id"].as_str().unwrap_or_default().to_owned(),
        retry_after: Duration::from_secs(retry_after),
    })
}

/// A well-formed `200`: `done` with a score, or `failed` with an error. Returns a description.
fn expect_finished(answer: &Answer, subject: &str) -> Result<(String, String), String> {
    ensure(
        answer.media_type().as_deref() == Some("application/json"),
        || unexpected("200 application/json", answer),
    )?;
    let body = answer
        .body
        .as_ref()
        .ok_or_else(|| unexpected("a JSON body", answer))?;
    let status = check_score(body, subject, &FINISHED)?;
    let described = if status == "done" {
        let score = body.get("score").and_then(Value::as_f64);
        let band = body.get("band").and_then(Value::as_str);
        ensure(score.is_some_and(|s| (0.0..=1.0).contains(&s)), || {
            format!("done with score {:?}, want 0..1", body.get("score"))
        })?;
        ensure(band.is_some_and(|b| BANDS.contains(&b)), || {
            format!(
                "done with band {:?}, want one of {BANDS:?}",
                body.get("band")
            )
        })?;
        ensure(
            body.get("computed_at").is_some_and(Value::is_string),
            || format!("done without computed_at: {body}"),
        )?;
        format!(
            "done, score {:.3} ({})",
            score.unwrap_or_default(),
            band.unwrap_or_default()
        )
    } else {
        let error = &body["error"];
        let code = error.get("code").and_then(Value::as_str).unwrap_or("");
        ensure(!code.is_empty(), || {
            format!("failed without error.code: {body}")
        })?;
        ensure(error.get("message").is_some_and(Value::is_string), || {
            format!("failed without error.message: {body}")
        })?;
        let retryable = error.get("retryable").and_then(Value::as_bool);
        ensure(retryable.is_some(), || {
            format!("failed without error.retryable: {body}")
        })?;
        ensure(body.get("failed_at").is_some_and(Value::is_string), || {
            format!("failed without failed_at: {body}")
        })?;
        let retryable = if retryable == Some(true) {
            "retryable"
        } else {
            "not retryable"
        };
        format!("failed, {code} ({retryable})")
    };
    Ok((status.to_owned(), described))
}

pub(crate) struct FreshOutcome {
    pub result: ScenarioResult,
    pub final_status: Option<String>,
    pub job_id: Option<String>,
}

/// `fresh-subject`: `202` at once, then `200` within `timeout`, polling as `Retry-After` says.
pub(crate) async fn fresh_subject(api: &Api, subject: &str, timeout: Duration) -> FreshOutcome {
    let started = Instant::now();
    let deadline = started + timeout;
    let mut seen = Seen::default();
    let mut final_status = None;
    let mut job_id = None;
    let outcome = async {
        let url = api.url(&format!("/v1/scores/{subject}"));
        let first = api.send(Method::GET, url.clone(), None).await?;
        let accepted = expect_accepted(&first, subject)?;
        seen.push(format!(
            "GET {subject}: 202 {} job {} (Retry-After {}s)",
            accepted.status,
            accepted.job_id,
            accepted.retry_after.as_secs()
        ));
        job_id = Some(accepted.job_id.clone());
        // `expect_accepted` checked that Location names this subject's score; polling asks the
        // URL the answer came from, which also keeps the base path of a custom domain mapping
        // (Location is `/v1/scores/...`, the path as the function sees it).
        let poll_url = url;
        let (mut wait, mut last, mut polls, mut unavailable) =
            (accepted.retry_after, accepted.status, 0u32, 0u32);
        loop {
            let now = Instant::now();
            ensure(now < deadline, || {
                format!(
                    "still {last} after {polls} polls in {}s (--timeout-seconds {})",
                    started.elapsed().as_secs(),
                    timeout.as_secs()
                )
            })?;
            tokio::time::sleep(wait.min(deadline - now)).await;
            let answer = api.send(Method::GET, poll_url.clone(), None).await?;
            polls += 1;
            match answer.status {
                200 => {
                    let (status, described) = expect_finished(&answer, subject)?;
                    let finished_job = answer.str_field("job_id").unwrap_or_default();
                    ensure(Some(finished_job) == job_id.as_deref(), || {
                        format!("200 {described} for job {finished_job}, not the job started")
                    })?;
                    let busy = if unavailable > 0 {
                        format!(", {unavailable}x 503")
                    } else {
                        String::new()
                    };
                    let plural = if polls == 1 { "" } else { "s" };
                    seen.push(format!(
                        "200 {described} after {polls} poll{plural} in {:.1}s{busy}, same job",
                        started.elapsed().as_secs_f64()
                    ));
                    final_status = Some(status);
                    return Ok(());
                }
                202 => {
                    let still = expect_accepted(&answer, subject)?;
                    ensure(Some(still.job_id.as_str()) == job_id.as_deref(), || {
                        format!(
                            "202 {} for job {}, not the job started",
                            still.status, still.job_id
                        )
                    })?;
                    (wait, last) = (still.retry_after, still.status);
                }
                // A throttled dependency: the contract says to ask again after Retry-After.
                503 => {
                    unavailable += 1;
                    let seconds = answer
                        .retry_after()
                        .ok_or_else(|| unexpected("503 with Retry-After", &answer))?;
                    wait = Duration::from_secs(seconds.max(1));
                }
                _ => return Err(unexpected("200 or 202", &answer)),
            }
        }
    }
    .await;
    FreshOutcome {
        result: seen.verdict("fresh-subject", started, outcome),
        final_status,
        job_id,
    }
}

/// `batch-get`: two fresh subjects, the first named twice: one answer each, in request order.
pub(crate) async fn batch_get(api: &Api, subjects: &[String; 2]) -> ScenarioResult {
    let started = Instant::now();
    let mut seen = Seen::default();
    let outcome = async {
        let asked = [&subjects[0], &subjects[1], &subjects[0]];
        let answer = api
            .send(
                Method::POST,
                api.url("/v1/scores/batch-get"),
                Some(&json!({ "subject_ids": asked })),
            )
            .await?;
        ensure(answer.status == 200, || unexpected("200", &answer))?;
        ensure(answer.media_type().as_deref() == Some("application/json"), || {
            unexpected("200 application/json", &answer)
        })?;
        let results = answer
            .body
            .as_ref()
            .and_then(|b| b.get("results"))
            .and_then(Value::as_array)
            .ok_or_else(|| unexpected("{\"results\": [...]}", &answer))?;
        ensure(results.len() == 2, || {
            format!(
                "{} answers for 3 ids of 2 subjects, want 2: {}",
                results.len(),
                answer.excerpt()
            )
        })?;
        let mut statuses = Vec::new();
        for (result, subject) in results.iter().zip(subjects) {
            statuses.push(check_score(result, subject, &[&IN_PROGRESS[..], &FINISHED[..]].concat())?);
        }
        seen.push(format!(
            "POST batch-get of 3 ids (2 fresh subjects, one repeated): 200 with 2 answers in order ({})",
            statuses.join(", ")
        ));
        Ok(())
    }
    .await;
    seen.verdict("batch-get", started, outcome)
}

/// An RFC 9457 problem: `application/problem+json`, `status` as the HTTP status, `title`, `detail`.
fn expect_problem(answer: &Answer, want: u16) -> Result<String, String> {
    ensure(answer.status == want, || {
        unexpected(&want.to_string(), answer)
    })?;
    ensure(
        answer.media_type().as_deref() == Some("application/problem+json"),
        || unexpected(&format!("{want} application/problem+json"), answer),
    )?;
    let body = answer
        .body
        .as_ref()
        .ok_or_else(|| unexpected("a problem+json body", answer))?;
    ensure(
        body.get("status").and_then(Value::as_u64) == Some(want.into()),
        || format!("problem status {:?}, want {want}", body.get("status")),
    )?;
    ensure(body.get("title").is_some_and(Value::is_string), || {
        format!("problem without title: {body}")
    })?;
    let detail = answer.str_field("detail").unwrap_or("");
    ensure(!detail.is_empty(), || {
        format!("problem without detail: {body}")
    })?;
    Ok(detail.to_owned())
}

/// `problem-json`: an unknown route (`404`) and an invalid subject id (`400`).
pub(crate) async fn problem_json(api: &Api) -> ScenarioResult {
    let started = Instant::now();
    let mut seen = Seen::default();
    let outcome = async {
        let answer = api.send(Method::GET, api.url(UNKNOWN_ROUTE), None).await?;
        let detail = expect_problem(&answer, 404)?;
        seen.push(format!(
            "GET {UNKNOWN_ROUTE}: 404 problem+json ({detail:?})"
        ));

        let answer = api
            .send(Method::GET, api.url(INVALID_SUBJECT_PATH), None)
            .await?;
        let detail = expect_problem(&answer, 400)?;
        let kind = answer.str_field("type").unwrap_or("");
        ensure(kind == "/problems/invalid-subject-id", || {
            format!("400 of type {kind:?}, want /problems/invalid-subject-id")
        })?;
        seen.push(format!(
            "GET {INVALID_SUBJECT_PATH}: 400 problem+json ({detail:?})"
        ));
        Ok(())
    }
    .await;
    seen.verdict("problem-json", started, outcome)
}

/// `refresh`: `202` for the subject of `fresh-subject`; a new job once that one finished.
pub(crate) async fn refresh(
    api: &Api,
    subject: &str,
    previous_job: Option<&str>,
    previous_status: Option<&str>,
) -> ScenarioResult {
    let started = Instant::now();
    let mut seen = Seen::default();
    let outcome = async {
        let answer = api
            .send(
                Method::POST,
                api.url(&format!("/v1/scores/{subject}/refresh")),
                None,
            )
            .await?;
        let accepted = expect_accepted(&answer, subject)?;
        let same_job = previous_job == Some(accepted.job_id.as_str());
        let relation = match (previous_status, same_job) {
            (Some(status), false) => format!("a new job after the {status} one"),
            (Some(status), true) => {
                return Err(format!(
                    "202 {} with the {status} job {}: a finished job must be recomputed",
                    accepted.status, accepted.job_id
                ))
            }
            (None, true) => "the job still in progress".to_owned(),
            (None, false) => "a new job".to_owned(),
        };
        seen.push(format!(
            "POST {subject}/refresh: 202 {} job {} ({relation})",
            accepted.status, accepted.job_id
        ));
        Ok(())
    }
    .await;
    seen.verdict("refresh", started, outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_ids_are_ulids() {
        assert!(is_ulid("01JC8ZQ7W1X3V9M2K5H6D4R8TB"));
        assert!(!is_ulid("01jc8zq7w1x3v9m2k5h6d4r8tb"));
        assert!(!is_ulid("01JC8ZQ7W1X3V9M2K5H6D4R8T"));
        assert!(!is_ulid("01JC8ZQ7W1X3V9M2K5H6D4R8TI"));
    }

    fn answer(
        status: u16,
        content_type: &str,
        headers: &[(&'static str, &str)],
        body: Value,
    ) -> Answer {
        let mut map = reqwest::header::HeaderMap::new();
        map.insert("content-type", content_type.parse().unwrap());
        for (k, v) in headers {
            map.insert(*k, v.parse().unwrap());
        }
        Answer {
            status,
            headers: map,
            text: body.to_string(),
            body: Some(body),
        }
    }

    fn score(status: &str) -> Value {
        json!({
            "subject_id": "shop-42", "status": status, "job_id": "01JC8ZQ7W1X3V9M2K5H6D4R8TB",
            "reason": "miss", "requested_at": "2026-11-01T12:00:00Z",
        })
    }

    #[test]
    fn an_accepted_answer_needs_location_and_retry_after() {
        let headers = [("location", "/v1/scores/shop-42"), ("retry-after", "2")];
        let ok = answer(202, "application/json", &headers, score("started"));
        let no_retry = answer(202, "application/json", &headers[..1], score("started"));
        let wrong_status = answer(202, "application/json", &headers, score("done"));

        let accepted = expect_accepted(&ok, "shop-42").unwrap();
        assert_eq!(accepted.retry_after, Duration::from_secs(2));
        assert!(expect_accepted(&no_retry, "shop-42")
            .unwrap_err()
            .contains("Retry-After"));
        assert!(expect_accepted(&wrong_status, "shop-42").is_err());
        assert!(expect_accepted(&ok, "shop-43").is_err());
    }

    #[test]
    fn a_finished_answer_is_a_score_or_an_error() {
        let mut done = score("done");
        done["score"] = json!(0.25);
        done["band"] = json!("low");
        done["computed_at"] = json!("2026-11-01T12:00:09Z");
        let mut failed = score("failed");
        failed["failed_at"] = json!("2026-11-01T12:00:09Z");
        failed["error"] = json!({"code": "NO_DATA", "message": "no objects", "retryable": true});
        let mut bare_failed = score("failed");
        bare_failed["failed_at"] = json!("2026-11-01T12:00:09Z");

        let (_, done) =
            expect_finished(&answer(200, "application/json", &[], done), "shop-42").unwrap();
        let (_, failed) =
            expect_finished(&answer(200, "application/json", &[], failed), "shop-42").unwrap();
        assert_eq!(done, "done, score 0.250 (low)");
        assert_eq!(failed, "failed, NO_DATA (retryable)");
        assert!(expect_finished(
            &answer(200, "application/json", &[], bare_failed),
            "shop-42"
        )
        .is_err());
    }

    #[test]
    fn a_problem_is_problem_json_with_a_detail() {
        let body = json!({"type": "about:blank", "title": "Not Found", "status": 404, "detail": "no route"});
        let good = answer(404, "application/problem+json", &[], body.clone());
        let plain_json = answer(404, "application/json", &[], body);
        let no_detail = answer(
            404,
            "application/problem+json",
            &[],
            json!({"title": "Not Found", "status": 404}),
        );

        assert_eq!(expect_problem(&good, 404).unwrap(), "no route");
        assert!(expect_problem(&good, 400).is_err());
        assert!(expect_problem(&plain_json, 404).is_err());
        assert!(expect_problem(&no_detail, 404).is_err());
    }
}
