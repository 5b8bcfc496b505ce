//! `deferred-ops`: the operator CLI (see the crate docs and docs/DEPLOY.md#alarms).

use clap::Parser;

#[tokio::main]
async fn main() {
    let cli = deferred_ops::Cli::parse();
    // Logs (flat JSON, RUST_LOG) on stderr; the report alone on stdout, for scripts.
    let _ = tracing::subscriber::set_global_default(shared::telemetry::json_subscriber(
        None,
        std::io::stderr,
    ));
    // The SDK's default chains, unlike the functions' (shared::aws): an operator's credentials may
    // come from an instance or container role as well as the environment or a profile.
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let clients = deferred_ops::Clients::new(&sdk);
    match deferred_ops::run(cli.command, &clients, chrono::Utc::now()).await {
        Ok(report) => {
            if cli.json {
                println!("{}", report.to_json());
            } else {
                print!("{report}");
            }
            std::process::exit(report.exit_code());
        }
        Err(err) => {
            eprintln!("deferred-ops: {}", shared::error::chain(&err));
            std::process::exit(1);
        }
    }
}
