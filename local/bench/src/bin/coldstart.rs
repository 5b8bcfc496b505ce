//! `coldstart`: cold starts, memory and CPU of the release Lambda binaries next to the
//! hello-world floor, against the AWS emulator (run by `make bench` under `scripts/moto.sh run`).
//! Prints Markdown: the figures, then each figure against its target.

use std::collections::HashMap;
use std::path::PathBuf;

use clap::Parser;
use deferred_bench::report::{self, ColdStarts};
use deferred_bench::tls::TlsProxy;
use deferred_bench::{Bench, BenchError, FLOOR, FUNCTIONS};

#[derive(Parser)]
#[command(about = "Cold start, RSS and CPU per invocation of the release Lambda binaries")]
struct Args {
    /// Where the release binaries are (cargo's `release` folder).
    #[arg(long)]
    bin_dir: PathBuf,
    /// Cold starts per binary and endpoint (medians are reported).
    #[arg(long, default_value_t = 15)]
    cold_starts: usize,
    /// Warm invocations per binary and request path.
    #[arg(long, default_value_t = 1000)]
    warm: usize,
    /// A folder for the run's files (the HTTPS endpoint's CA, strace logs).
    #[arg(long, default_value = "target/bench")]
    work_dir: PathBuf,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    std::fs::create_dir_all(&args.work_dir)?;
    let mut bench = Bench::new(&args.bin_dir).await?;
    let binaries: Vec<&str> = std::iter::once(FLOOR)
        .chain(FUNCTIONS.iter().map(|(name, _)| *name))
        .collect();

    // Cold starts over plain HTTP to the emulator, the binaries interleaved so that a busy
    // moment of the machine does not land on one binary only.
    let http = cold_starts(&mut bench, &binaries, args.cold_starts).await?;

    // The same through an HTTPS endpoint: the first call pays the TLS handshake.
    let endpoint = emulator::endpoint_from_env().ok_or("AWS_ENDPOINT_URL is not set")?;
    let upstream = endpoint
        .trim_start_matches("http://")
        .parse()
        .map_err(|e| format!("the emulator's endpoint {endpoint}: {e}"))?;
    let proxy = TlsProxy::start(upstream, &std::fs::canonicalize(&args.work_dir)?).await?;
    let ca = proxy.ca_file.to_string_lossy().into_owned();
    bench.set_extra_env(HashMap::from([
        ("AWS_ENDPOINT_URL".to_owned(), proxy.endpoint.clone()),
        ("AWS_CA_BUNDLE".to_owned(), ca.clone()),
    ]));
    let https = cold_starts(&mut bench, &binaries, args.cold_starts).await?;
    bench.set_extra_env(HashMap::new());

    let mut traces = String::from(
        "| binary | files opened during init (besides shared libraries, /proc, /sys) | other connections |\n|---|---|---|\n",
    );
    for binary in &binaries {
        let trace = bench.init_trace(binary, &args.work_dir).await?;
        traces.push_str(&format!(
            "| {binary} | {} | {} |\n",
            if trace.files.is_empty() {
                "none".to_owned()
            } else {
                format!("{}: {}", trace.files.len(), trace.files.join(", "))
            },
            trace.other_connects
        ));
    }

    let mut warm = Vec::new();
    for binary in &binaries {
        for path in Bench::warm_paths(binary) {
            eprintln!("warm: {binary} {path}");
            warm.push(bench.warm(binary, path, args.warm).await?);
        }
    }

    let floor = &http[0];
    println!("#### Cold start, emulator over plain HTTP\n");
    println!("{}", report::cold_start_table(&http, floor));
    println!("#### Cold start, emulator behind HTTPS (first call pays the TLS handshake)\n");
    println!("{}", report::cold_start_table(&https, &https[0]));
    println!("#### What init touches (strace)\n");
    println!("{traces}");
    println!("#### Warm, one process per path\n");
    println!("{}", report::warm_table(&warm));
    println!("#### Targets\n");
    println!(
        "{}",
        report::targets_table(&report::targets(&http, floor, &warm))
    );
    Ok(())
}

async fn cold_starts(
    bench: &mut Bench,
    binaries: &[&str],
    runs: usize,
) -> Result<Vec<ColdStarts>, BenchError> {
    let mut rows: Vec<ColdStarts> = binaries
        .iter()
        .map(|binary| ColdStarts {
            binary: (*binary).to_owned(),
            starts: Vec::with_capacity(runs),
        })
        .collect();
    for run in 0..runs {
        eprintln!("cold starts: round {} of {runs}", run + 1);
        for row in &mut rows {
            let start = bench.cold_start(&row.binary).await?;
            row.starts.push(start);
        }
    }
    Ok(rows)
}
