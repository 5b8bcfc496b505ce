//! Command line of `local-runner`, and what it prints once the system is up.

use std::collections::HashMap;

use clap::Parser;

use crate::Runner;

#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    pub port: u16,
    pub prefix: String,
    pub seed_demo: bool,
    pub parameter_overrides: HashMap<String, String>,
    pub without_maximum_concurrency: bool,
}

/// The local runner: API Gateway and every event source mapping of template.yaml, played over
/// the local AWS emulator.
#[derive(Debug, Parser)]
#[command(name = "local-runner")]
#[command(
    after_help = "The emulator endpoint comes from AWS_ENDPOINT_URL (scripts/moto.sh env prints it)."
)]
struct Args {
    /// HTTP API port (default: $PORT, else 3000; 0 picks a free one)
    #[arg(long, value_name = "N")]
    port: Option<u16>,
    /// Names the emulated resources (lowercased)
    #[arg(long, value_name = "NAME", default_value = "deferred")]
    prefix: String,
    /// Upload demo datasets (generated, seeded) to the data bucket
    #[arg(long)]
    seed_demo: bool,
    /// Override a template.yaml Parameter (as sam deploy --parameter-overrides); repeatable
    #[arg(long = "param", value_name = "Name=Value", value_parser = name_value)]
    params: Vec<(String, String)>,
    /// Play the SQS event sources as if their ScalingConfig.MaximumConcurrency were removed:
    /// pollers blind to the reserved concurrency, throttled batches back on the queue (the
    /// incident of docs/RELIABILITY.md; never what is deployed)
    #[arg(long)]
    without_maximum_concurrency: bool,
}

fn name_value(pair: &str) -> Result<(String, String), String> {
    pair.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("wants Name=Value, got {pair:?}"))
}

impl Options {
    /// The options of this process (`$PORT` and the command line). On a usage error this prints
    /// the usage and exits with status 2; `--help` prints the help and exits 0.
    pub fn from_env() -> Self {
        let port_env = std::env::var("PORT").ok();
        Self::parse(port_env.as_deref(), std::env::args()).unwrap_or_else(|e| e.exit())
    }

    /// `args` includes the program name first, as `std::env::args()` does.
    pub fn parse(
        port_env: Option<&str>,
        args: impl IntoIterator<Item = String>,
    ) -> Result<Self, clap::Error> {
        let args = Args::try_parse_from(args)?;
        let port = match (args.port, port_env.filter(|p| !p.is_empty())) {
            (Some(port), _) => port,
            (None, Some(env)) => env.parse::<u16>().map_err(|_| {
                <Args as clap::CommandFactory>::command().error(
                    clap::error::ErrorKind::ValueValidation,
                    format!("invalid port {env:?} in $PORT"),
                )
            })?,
            (None, None) => 3000,
        };
        Ok(Self {
            port,
            prefix: args.prefix.to_ascii_lowercase(),
            seed_demo: args.seed_demo,
            parameter_overrides: args.params.into_iter().collect(),
            without_maximum_concurrency: args.without_maximum_concurrency,
        })
    }
}

/// The curl lines a newcomer runs next, and where to look.
pub fn print_next_steps(runner: &Runner, endpoint: &str) {
    println!("{}", next_steps(runner, endpoint));
}

/// What [`print_next_steps`] prints. Under `ApiAuth=AWS_IAM` the curl lines sign with curl's own
/// SigV4 (`--aws-sigv4`) and the emulator's credentials, the one key the local API knows.
pub fn next_steps(runner: &Runner, endpoint: &str) -> String {
    let base = runner.base_url();
    let config = runner.names();
    let iam = &runner.http_auth.iam;
    let credentials = iam.credentials();
    let (auth, sign) = match runner.http_auth.iam_required {
        true => (
            format!(
                "IAM auth (ApiAuth=AWS_IAM): SigV4 for execute-api in {region}, by access key {key}; unsigned requests get 403",
                region = iam.region(),
                key = credentials.access_key_id(),
            ),
            format!(
                " --aws-sigv4 'aws:amz:{region}:execute-api' --user '{key}:{secret}'",
                region = iam.region(),
                key = credentials.access_key_id(),
                secret = credentials.secret_access_key(),
            ),
        ),
        false => (
            "no auth (ApiAuth=NONE): unsigned requests are served".to_owned(),
            String::new(),
        ),
    };
    let mut text = format!(
        "
Deferred is running locally.
  HTTP API        {base}   (API Gateway HTTP API, played by the local runner; {auth})
  AWS emulator    {endpoint}   (moto; AWS_ENDPOINT_URL={endpoint} AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1)
  ScoresTable     {scores}
  Data bucket     {bucket}

Try it (the first call starts the computation and answers 202; a moment later the second answers 200):
  curl -i{sign} {base}/v1/scores/shop-1
  curl -i{sign} {base}/v1/scores/shop-1
  curl -i{sign} '{base}/v1/scores/shop-risky?wait=10'
  curl -i{sign} -X POST {base}/v1/scores/shop-1/refresh
  curl -i{sign} -X POST {base}/v1/scores/batch-get -H 'content-type: application/json' -d '{{\"subject_ids\":[\"shop-1\",\"shop-2\",\"shop-big\"]}}'
",
        scores = config.scores_table,
        bucket = config.data_bucket,
    );
    if runner.http_auth.iam_required {
        text.push_str(
            "(--param ApiAuth=NONE, e.g. `scripts/dev.sh --param ApiAuth=NONE`, serves unsigned requests.)\n",
        );
    }
    if let Some(url) = &runner.score_events_tail {
        text.push_str(&format!(
            "
Completion events (score.completed / score.failed on ScoreEventsTopic) appear in this log as
\"score event published\" lines, read from {url}, a queue subscribed to the topic as any subscriber's.
"
        ));
    }
    text.push_str("\nCtrl-C stops the runner.");
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        std::iter::once("local-runner")
            .chain(list.iter().copied())
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn port_comes_from_flag_then_env_then_default() {
        assert_eq!(Options::parse(None, args(&[])).unwrap().port, 3000);
        assert_eq!(Options::parse(Some("8080"), args(&[])).unwrap().port, 8080);
        assert_eq!(
            Options::parse(Some("8080"), args(&["--port", "9000"]))
                .unwrap()
                .port,
            9000
        );
        assert!(Options::parse(Some("http"), args(&[])).is_err());
    }

    #[test]
    fn parameters_and_flags_parse() {
        let options = Options::parse(
            None,
            args(&[
                "--seed-demo",
                "--param",
                "ComputeTimeout=30",
                "--prefix",
                "Demo",
            ]),
        )
        .unwrap();
        assert!(options.seed_demo);
        assert!(!options.without_maximum_concurrency, "off by default");
        assert!(
            Options::parse(None, args(&["--without-maximum-concurrency"]))
                .unwrap()
                .without_maximum_concurrency
        );
        assert_eq!(options.parameter_overrides["ComputeTimeout"], "30");
        assert_eq!(options.prefix, "demo");
        assert!(Options::parse(None, args(&["--param", "oops"])).is_err());
        assert!(Options::parse(None, args(&["--what"])).is_err());
        assert!(Options::parse(None, args(&["--port"])).is_err());
        let repeated = Options::parse(None, args(&["--param", "A=1", "--param", "B=x=y"])).unwrap();
        assert_eq!(repeated.parameter_overrides["A"], "1");
        assert_eq!(repeated.parameter_overrides["B"], "x=y");
    }

    #[test]
    fn help_lists_every_flag() {
        use clap::CommandFactory;
        Args::command().debug_assert();
        let help = Args::command().render_help().to_string();
        for flag in [
            "--port",
            "--prefix",
            "--seed-demo",
            "--param",
            "--without-maximum-concurrency",
            "AWS_ENDPOINT_URL",
        ] {
            assert!(help.contains(flag), "{flag} missing from\n{help}");
        }
        let err = Options::parse(None, args(&["--help"])).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::DisplayHelp);
    }
}
