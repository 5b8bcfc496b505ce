//! `profile-warm`: one Lambda binary kept warm on one request path (as `coldstart` measures it)
//! with `perf record` attached for the warm calls only, then perf's report of where the
//! process's CPU went. Run by `make profile` on the `profiling` build (the release build with
//! its symbols), under `scripts/moto.sh run`.

use std::path::PathBuf;

use clap::Parser;
use deferred_bench::{Bench, FLOOR, FUNCTIONS};

#[derive(Parser)]
#[command(about = "Where a warm Lambda binary's CPU goes, per request path (perf)")]
struct Args {
    /// Where the binary profiled is (cargo's `profiling` folder: symbols kept).
    #[arg(long)]
    bin_dir: PathBuf,
    /// Where compute's release binary is: its cold start leaves the done path's score.
    #[arg(long, default_value = "target/release")]
    release_dir: PathBuf,
    /// The binary: hello-floor, request-api, compute, notifier or metadata-sync.
    #[arg(long, default_value = "request-api")]
    binary: String,
    /// The request path, as `coldstart` names it (request-api: done, pending, new subject).
    #[arg(long, default_value = "done")]
    path: String,
    /// Warm invocations sampled.
    #[arg(long, default_value_t = 2000)]
    warm: usize,
    /// perf's sampling frequency, Hz.
    #[arg(long, default_value_t = 4000)]
    frequency: u32,
    /// perf's data file (or strace's summary with `--syscalls`).
    #[arg(long, default_value = "target/bench/perf.data")]
    out: PathBuf,
    /// Count the system calls (strace -c) instead of sampling the CPU.
    #[arg(long)]
    syscalls: bool,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let binary = std::iter::once(FLOOR)
        .chain(FUNCTIONS.iter().map(|(name, _)| *name))
        .find(|name| *name == args.binary)
        .ok_or_else(|| format!("unknown binary {}", args.binary))?;
    let path = Bench::warm_paths(binary)
        .into_iter()
        .find(|path| *path == args.path)
        .ok_or_else(|| {
            format!(
                "{binary} has no path {:?} (it has {:?})",
                args.path,
                Bench::warm_paths(binary)
            )
        })?;
    let mut bench = Bench::new(&args.release_dir).await?;
    if binary == "request-api" && path == "done" {
        // The done path needs a finished score: compute's cold start leaves one.
        bench.cold_start("compute").await?;
    }
    bench.set_bin_dir(&args.bin_dir);
    let out = args.out.to_string_lossy();
    let frequency = args.frequency.to_string();
    let observer: Vec<String> = if args.syscalls {
        vec!["strace", "-c", "-f", "-o", &out]
    } else {
        vec![
            "perf", "record", "--quiet", "-g", "-F", &frequency, "-o", &out,
        ]
    }
    .into_iter()
    .map(str::to_owned)
    .collect();
    let run = bench
        .warm_observed(binary, path, args.warm, &observer)
        .await?;
    println!(
        "{binary} {path}: {} warm invocations, {:.3} ms own CPU each, duration p50 {:.2} ms; data in {}",
        run.invocations,
        run.cpu_per_invocation.as_secs_f64() * 1e3,
        run.median_duration.as_secs_f64() * 1e3,
        args.out.display()
    );
    Ok(())
}
