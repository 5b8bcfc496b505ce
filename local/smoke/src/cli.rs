//! Command line of `deferred-smoke` (hand-parsed: four options do not need a parser crate).

use std::time::Duration;

pub const USAGE: &str = "usage: deferred-smoke --api-url URL [--subject-prefix P] [--timeout-seconds N] [--unsigned]
  --api-url URL          the stack's ApiUrl output, e.g. https://a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com
  --subject-prefix P     fresh subjects are P-<ulid> (default: smoke)
  --timeout-seconds N    how long the first subject may take to finish (default: 120)
  --unsigned             do not sign (a stack deployed with ApiAuth=NONE)
Requests are SigV4-signed for execute-api with the credentials of the AWS default chain
(environment, AWS_PROFILE, web identity, container, instance; not SSO or credential_process
profiles: `eval \"$(aws configure export-credentials --format env)\"` first); the region is the
URL's (*.execute-api.<region>.amazonaws.com), else AWS_REGION or the profile's.
Exit status: 0 every scenario passed, 1 one failed, 2 usage or credentials.";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Args {
    pub api_url: String,
    pub subject_prefix: String,
    pub timeout: Duration,
    pub unsigned: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Run(Args),
    Help,
}

/// `--name value` or `--name=value`.
pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Command, String> {
    let mut api_url = None;
    let mut subject_prefix = "smoke".to_owned();
    let mut timeout = Duration::from_secs(120);
    let mut unsigned = false;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) if name.starts_with("--") => {
                (name.to_owned(), Some(value.to_owned()))
            }
            _ => (arg.clone(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{name} needs a value\n{USAGE}"))
        };
        match name.as_str() {
            "--api-url" => api_url = Some(value()?),
            "--subject-prefix" => {
                let prefix = value()?;
                crate::check_subject_prefix(&prefix)?;
                subject_prefix = prefix;
            }
            "--timeout-seconds" => {
                let raw = value()?;
                let seconds = raw.parse::<u64>().ok().filter(|s| *s >= 1).ok_or_else(|| {
                    format!("--timeout-seconds wants whole seconds >= 1, got {raw:?}")
                })?;
                timeout = Duration::from_secs(seconds);
            }
            "--unsigned" if inline.is_none() => unsigned = true,
            "-h" | "--help" => return Ok(Command::Help),
            _ => return Err(format!("unknown argument {arg:?}\n{USAGE}")),
        }
    }
    let api_url = api_url.ok_or_else(|| format!("--api-url is required\n{USAGE}"))?;
    crate::parse_api_url(&api_url)?;
    Ok(Command::Run(Args {
        api_url,
        subject_prefix,
        timeout,
        unsigned,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_strs(args: &[&str]) -> Result<Command, String> {
        parse(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn options_have_defaults_and_both_spellings() {
        let Command::Run(args) = parse_strs(&["--api-url", "https://x.example.com"]).unwrap()
        else {
            panic!("not a run")
        };
        assert_eq!(args.subject_prefix, "smoke");
        assert_eq!(args.timeout, Duration::from_secs(120));
        assert!(!args.unsigned);

        let parsed = parse_strs(&[
            "--api-url=http://127.0.0.1:3000",
            "--subject-prefix",
            "ci-42",
            "--timeout-seconds=30",
            "--unsigned",
        ])
        .unwrap();
        assert_eq!(
            parsed,
            Command::Run(Args {
                api_url: "http://127.0.0.1:3000".into(),
                subject_prefix: "ci-42".into(),
                timeout: Duration::from_secs(30),
                unsigned: true,
            })
        );
        assert_eq!(parse_strs(&["--help"]).unwrap(), Command::Help);
    }

    #[test]
    fn mistakes_are_reported() {
        assert!(parse_strs(&[])
            .unwrap_err()
            .contains("--api-url is required"));
        assert!(parse_strs(&["--api-url"])
            .unwrap_err()
            .contains("needs a value"));
        assert!(parse_strs(&["--api-url", "not a url"]).is_err());
        assert!(parse_strs(&["--api-url", "http://h", "--timeout-seconds", "0"]).is_err());
        assert!(parse_strs(&["--api-url", "http://h", "--subject-prefix", "a b"]).is_err());
        assert!(parse_strs(&["--api-url", "http://h", "--unsigned=yes"]).is_err());
        assert!(parse_strs(&["--api-url", "http://h", "--verbose"])
            .unwrap_err()
            .contains("unknown argument"));
    }
}
