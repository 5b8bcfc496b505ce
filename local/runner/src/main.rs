//! `local-runner`: the whole system over the local emulator (see the crate docs and `make dev`).

use local_runner::{Runner, RunnerOptions};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    shared::telemetry::init();
    let options = local_runner::cli::Options::from_env();
    let endpoint = emulator::endpoint_from_env().ok_or("AWS_ENDPOINT_URL is not set: start the emulator with `scripts/moto.sh start` (make dev does)")?;
    let runner = Runner::start(
        emulator::sdk_config(&endpoint),
        RunnerOptions {
            port: options.port,
            prefix: options.prefix.clone(),
            parameter_overrides: options.parameter_overrides.clone(),
            tail_score_events: true,
            faults: None,
            without_maximum_concurrency: options.without_maximum_concurrency,
        },
    )
    .await?;
    if options.seed_demo {
        local_runner::demo::seed(&runner).await?;
    }
    local_runner::cli::print_next_steps(&runner, &endpoint);
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = terminate.recv() => {},
    }
    tracing::info!("shutting down");
    runner.shutdown().await;
    Ok(())
}
