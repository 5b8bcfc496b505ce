//! Smoke test of a deployed Deferred stack, through its HTTP API only, as a client sees it:
//!
//! | scenario | what it checks |
//! |---|---|
//! | `fresh-subject` | a subject nobody asked for: `202` (`status`, `job_id`, `Location`, `Retry-After`), then, polling as told, `200` `done` or `failed` (well-formed, same job). A subject without data in the lake ends `failed` (`NO_DATA`): the whole pipeline ran |
//! | `batch-get` | two fresh subjects and one repeated: `200`, one answer per distinct subject, in order |
//! | `problem-json` | an unknown route is `404`, an invalid subject id `400`, both `application/problem+json` with a `detail` |
//! | `refresh` | a refresh of the first subject: `202`, a new job |
//!
//! Requests are SigV4-signed for `execute-api` (the stack's default `ApiAuth=AWS_IAM`) unless
//! [`Auth::Unsigned`]. `deferred-smoke` (the binary, `make smoke`) runs it against a stack; the
//! tests run it against the local system.

mod api;
pub mod cli;
mod scenarios;
mod sign;

use std::fmt;
use std::time::Duration;

pub use api::{http_client, Answer};
pub use sign::{region_from_host, Signer, SERVICE};

/// Longest subject prefix: `{prefix}-{ulid}` must stay within the 128 characters of a subject id.
pub const MAX_PREFIX_LEN: usize = 128 - 1 - 26;

#[derive(Debug, Clone)]
pub enum Auth {
    /// For a stack deployed with `ApiAuth=NONE` (also the local system run with it).
    Unsigned,
    SigV4(Signer),
}

#[derive(Debug, Clone)]
pub struct SmokeOptions {
    /// The API's base URL (the stack's `ApiUrl` output).
    pub api_url: reqwest::Url,
    /// Fresh subjects are `{prefix}-{ulid}`.
    pub subject_prefix: String,
    /// How long `fresh-subject` may poll for the finished state.
    pub timeout: Duration,
    pub auth: Auth,
    /// The subject of `fresh-subject` and `refresh` instead of a new `{prefix}-{ulid}`; it must
    /// have no score yet. Lets a test seed data for it so that it ends `done`.
    pub subject: Option<String>,
}

impl SmokeOptions {
    /// Checks the URL; prefix `smoke`, a 120 s timeout, fresh subjects.
    pub fn new(api_url: &str, auth: Auth) -> Result<Self, String> {
        Ok(Self {
            api_url: parse_api_url(api_url)?,
            subject_prefix: "smoke".into(),
            timeout: Duration::from_secs(120),
            auth,
            subject: None,
        })
    }
}

/// An `http(s)` URL with a host and neither query nor fragment.
pub fn parse_api_url(url: &str) -> Result<reqwest::Url, String> {
    let parsed = reqwest::Url::parse(url.trim()).map_err(|e| format!("API URL {url:?}: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(format!(
            "API URL {url:?}: want http(s)://host[:port][/base-path]"
        ));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(format!(
            "API URL {url:?}: the base URL has no query or fragment"
        ));
    }
    Ok(parsed)
}

/// A prefix that keeps `{prefix}-{ulid}` a valid subject id.
pub fn check_subject_prefix(prefix: &str) -> Result<(), String> {
    let valid = (1..=MAX_PREFIX_LEN).contains(&prefix.len())
        && prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b));
    if valid {
        Ok(())
    } else {
        Err(format!(
            "subject prefix {prefix:?}: 1..{MAX_PREFIX_LEN} characters of [A-Za-z0-9._:-]"
        ))
    }
}

/// One scenario's verdict and what it saw (on failure: how far it got, and the answer that was
/// wrong).
#[derive(Debug, Clone)]
pub struct ScenarioResult {
    pub name: &'static str,
    pub passed: bool,
    pub seen: String,
    pub elapsed: Duration,
}

impl fmt::Display for ScenarioResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = if self.passed { "PASS" } else { "FAIL" };
        write!(f, "{:<13} {verdict}  {}", self.name, self.seen)
    }
}

#[derive(Debug, Clone)]
pub struct SmokeReport {
    /// The subject of `fresh-subject` and `refresh`.
    pub subject: String,
    /// How `fresh-subject` ended: `done` or `failed`; `None` if it did not finish.
    pub final_status: Option<String>,
    pub scenarios: Vec<ScenarioResult>,
}

impl SmokeReport {
    pub fn passed(&self) -> bool {
        !self.scenarios.is_empty() && self.scenarios.iter().all(|s| s.passed)
    }

    pub fn scenario(&self, name: &str) -> Option<&ScenarioResult> {
        self.scenarios.iter().find(|s| s.name == name)
    }

    pub fn summary(&self) -> String {
        let passed = self.scenarios.iter().filter(|s| s.passed).count();
        let total = self.scenarios.len();
        if self.passed() {
            format!("{passed}/{total} passed")
        } else {
            format!("{passed}/{total} passed: FAILED")
        }
    }
}

impl fmt::Display for SmokeReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for scenario in &self.scenarios {
            writeln!(f, "{scenario}")?;
        }
        write!(f, "{}", self.summary())
    }
}

/// Runs every scenario, in order.
pub async fn run(options: SmokeOptions) -> SmokeReport {
    run_with_progress(options, |_| {}).await
}

/// [`run`], telling `on_result` about each scenario as it ends (the first may poll for minutes).
pub async fn run_with_progress(
    options: SmokeOptions,
    mut on_result: impl FnMut(&ScenarioResult),
) -> SmokeReport {
    let api = api::Api::new(options.api_url.clone(), options.auth.clone());
    let subject = options
        .subject
        .clone()
        .unwrap_or_else(|| fresh_subject_id(&options.subject_prefix));
    let mut scenarios = Vec::new();
    let mut record = |result: ScenarioResult| {
        on_result(&result);
        scenarios.push(result);
    };

    let fresh = scenarios::fresh_subject(&api, &subject, options.timeout).await;
    let (final_status, first_job) = (fresh.final_status.clone(), fresh.job_id.clone());
    record(fresh.result);
    let batch = [
        fresh_subject_id(&options.subject_prefix),
        fresh_subject_id(&options.subject_prefix),
    ];
    record(scenarios::batch_get(&api, &batch).await);
    record(scenarios::problem_json(&api).await);
    record(
        scenarios::refresh(
            &api,
            &subject,
            first_job.as_deref(),
            final_status.as_deref(),
        )
        .await,
    );

    SmokeReport {
        subject,
        final_status,
        scenarios,
    }
}

/// `{prefix}-{ulid}`, lowercase: unique, and never seen by the stack before.
pub fn fresh_subject_id(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        ulid::Ulid::new().to_string().to_ascii_lowercase()
    )
}

/// An error with its sources (reqwest's and the SDK's top-level messages alone rarely say what
/// went wrong).
pub(crate) use shared::error::chain as error_chain;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_urls_are_bases_without_query() {
        assert!(parse_api_url("https://abc.execute-api.eu-west-1.amazonaws.com").is_ok());
        assert!(parse_api_url("https://api.example.com/scores-base/").is_ok());
        assert!(parse_api_url("http://127.0.0.1:3000").is_ok());
        assert!(parse_api_url("abc.execute-api.eu-west-1.amazonaws.com").is_err());
        assert!(parse_api_url("ftp://example.com").is_err());
        assert!(parse_api_url("https://example.com/?x=1").is_err());
    }

    #[test]
    fn fresh_subject_ids_are_valid_and_unique() {
        let long_prefix = "p".repeat(MAX_PREFIX_LEN);
        check_subject_prefix(&long_prefix).unwrap();
        let id = fresh_subject_id(&long_prefix);

        assert_eq!(id.len(), 128);
        assert_ne!(fresh_subject_id("smoke"), fresh_subject_id("smoke"));
        assert!(check_subject_prefix(&format!("{long_prefix}p")).is_err());
        assert!(check_subject_prefix("").is_err());
        assert!(check_subject_prefix("smoke test").is_err());
        check_subject_prefix("ci.run:42_a-b").unwrap();
    }

    #[test]
    fn a_report_passes_only_when_every_scenario_does() {
        let result = |passed| ScenarioResult {
            name: "x",
            passed,
            seen: "seen".into(),
            elapsed: Duration::ZERO,
        };
        let report = |scenarios| SmokeReport {
            subject: "s".into(),
            final_status: None,
            scenarios,
        };

        assert!(report(vec![result(true), result(true)]).passed());
        assert!(!report(vec![result(true), result(false)]).passed());
        assert!(!report(vec![]).passed());
        assert_eq!(result(false).to_string(), "x             FAIL  seen");
    }
}
