//! `deferred-smoke --api-url URL`: the smoke test of a deployed stack (see the library's docs and
//! `make smoke`). One line per scenario; exit status 0 when all passed, 1 if one failed, 2 when it
//! could not start (usage, credentials).

use std::process::ExitCode;

use aws_config::BehaviorVersion;
use deferred_smoke::cli::{self, Command};
use deferred_smoke::{Auth, Signer, SmokeOptions, SERVICE};

#[tokio::main]
async fn main() -> ExitCode {
    let args = match cli::parse(std::env::args().skip(1)) {
        Ok(Command::Run(args)) => args,
        Ok(Command::Help) => {
            println!("{}", cli::USAGE);
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let mut options = match SmokeOptions::new(&args.api_url, Auth::Unsigned) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    options.subject_prefix = args.subject_prefix;
    options.timeout = args.timeout;
    let how = if args.unsigned {
        "unsigned".to_owned()
    } else {
        let sdk = aws_config::defaults(BehaviorVersion::latest()).load().await;
        let signer = match Signer::from_sdk_config(&sdk, &options.api_url) {
            Ok(signer) => signer,
            Err(message) => {
                eprintln!("{message}");
                return ExitCode::from(2);
            }
        };
        let access_key = match signer.check().await {
            Ok(key) => key,
            Err(message) => {
                eprintln!("{message}\n(--unsigned for a stack deployed with ApiAuth=NONE)");
                return ExitCode::from(2);
            }
        };
        let shown: String = access_key
            .chars()
            .skip(access_key.len().saturating_sub(4))
            .collect();
        let how = format!(
            "SigV4 for {SERVICE} in {}, access key ...{shown}",
            signer.region()
        );
        options.auth = Auth::SigV4(signer);
        how
    };
    println!(
        "smoke test of {} ({how}; up to {}s for the first result)",
        options.api_url,
        options.timeout.as_secs()
    );
    let report = deferred_smoke::run_with_progress(options, |result| println!("{result}")).await;
    println!("{}", report.summary());
    if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
