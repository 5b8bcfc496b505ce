//! Command line of `local-runner`, and what it prints once the system is up.

use std::collections::HashMap;

use crate::Runner;

#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    pub port: u16,
    pub prefix: String,
    pub seed_demo: bool,
    pub parameter_overrides: HashMap<String, String>,
}

pub const USAGE: &str =
    "usage: local-runner [--port N] [--prefix NAME] [--seed-demo] [--param Name=Value]...
  --port N           HTTP API port (default: $PORT, else 3000; 0 picks a free one)
  --prefix NAME      names the emulated resources (default: deferred)
  --seed-demo        upload demo datasets (generated, seeded) to the data bucket
  --param Name=Value override a template.yaml Parameter (as sam deploy --parameter-overrides)
The emulator endpoint comes from AWS_ENDPOINT_URL (scripts/moto.sh env prints it).";

impl Options {
    pub fn from_env_and_args(args: impl IntoIterator<Item = String>) -> Result<Self, String> {
        let port_env = std::env::var("PORT").ok();
        Self::parse(port_env.as_deref(), args)
    }

    pub fn parse(
        port_env: Option<&str>,
        args: impl IntoIterator<Item = String>,
    ) -> Result<Self, String> {
        let parse_port = |v: &str| {
            v.parse::<u16>()
                .map_err(|_| format!("invalid port {v:?}\n{USAGE}"))
        };
        let mut options = Self {
            port: port_env
                .filter(|p| !p.is_empty())
                .map(parse_port)
                .transpose()?
                .unwrap_or(3000),
            prefix: "deferred".into(),
            seed_demo: false,
            parameter_overrides: HashMap::new(),
        };
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let mut value = |name: &str| {
                args.next()
                    .ok_or_else(|| format!("{name} needs a value\n{USAGE}"))
            };
            match arg.as_str() {
                "--port" => options.port = parse_port(&value("--port")?)?,
                "--prefix" => options.prefix = value("--prefix")?.to_ascii_lowercase(),
                "--seed-demo" => options.seed_demo = true,
                "--param" => {
                    let pair = value("--param")?;
                    let (k, v) = pair
                        .split_once('=')
                        .ok_or_else(|| format!("--param wants Name=Value, got {pair:?}"))?;
                    options
                        .parameter_overrides
                        .insert(k.to_owned(), v.to_owned());
                }
                "-h" | "--help" => return Err(USAGE.to_owned()),
                other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
            }
        }
        Ok(options)
    }
}

/// The curl lines a newcomer runs next, and where to look.
pub fn print_next_steps(runner: &Runner, endpoint: &str) {
    let base = runner.base_url();
    let config = runner.names();
    println!(
        "
Deferred is running locally.
  HTTP API        {base}   (API Gateway HTTP API, played by the local runner; IAM auth not enforced)
  AWS emulator    {endpoint}   (moto; AWS_ENDPOINT_URL={endpoint} AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1)
  ScoresTable     {scores}
  Data bucket     {bucket}

Try it (the first call starts the computation and answers 202; a moment later the second answers 200):
  curl -i {base}/v1/scores/shop-1
  curl -i {base}/v1/scores/shop-1
  curl -i '{base}/v1/scores/shop-risky?wait=10'
  curl -i -X POST {base}/v1/scores/shop-1/refresh
  curl -i -X POST {base}/v1/scores/batch-get -H 'content-type: application/json' -d '{{\"subject_ids\":[\"shop-1\",\"shop-2\",\"shop-big\"]}}'
",
        scores = config.scores_table,
        bucket = config.data_bucket,
    );
    if let Some(url) = &runner.score_events_tail {
        println!(
            "Completion events (score.completed / score.failed on ScoreEventsTopic) appear in this log as
\"score event published\" lines, read from {url}, a queue subscribed to the topic as any subscriber's.
"
        );
    }
    println!("Ctrl-C stops the runner.");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
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
        assert_eq!(options.parameter_overrides["ComputeTimeout"], "30");
        assert_eq!(options.prefix, "demo");
        assert!(Options::parse(None, args(&["--param", "oops"])).is_err());
        assert!(Options::parse(None, args(&["--what"])).is_err());
    }
}
