//! `coldstart`: cold starts, memory and CPU of the release Lambda binaries next to the
//! hello-world floor, against the AWS emulator (run by `make bench` under `scripts/moto.sh run`).
//! Prints Markdown: the figures, then each figure against its target.

use std::collections::HashMap;
use std::path::PathBuf;

use clap::Parser;
use deferred_bench::report::{self, ColdStarts};
use deferred_bench::tls::TlsProxy;
use deferred_bench::{Bench, FLOOR, FUNCTIONS};

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
    /// Where the Markdown report goes (the binaries' own logs go to standard output).
    #[arg(long)]
    out: PathBuf,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    std::fs::create_dir_all(&args.work_dir)?;
    let mut bench = Bench::new(&args.bin_dir).await?;
    let binaries: Vec<&str> = std::iter::once(FLOOR)
        .chain(FUNCTIONS.iter().map(|(name, _)| *name))
        .collect();

    // The HTTPS endpoint: the first call pays the TLS handshake. Its CA is given as
    // AWS_CA_BUNDLE (these binaries) and SSL_CERT_FILE (a build that loads the system's store).
    let proxy = TlsProxy::start(
        deferred_bench::emulator_address()?,
        &std::fs::canonicalize(&args.work_dir)?,
    )
    .await?;
    let ca = proxy.ca_file.to_string_lossy().into_owned();
    let https_env = HashMap::from([
        ("AWS_ENDPOINT_URL".to_owned(), proxy.endpoint.clone()),
        ("AWS_CA_BUNDLE".to_owned(), ca.clone()),
        ("SSL_CERT_FILE".to_owned(), ca),
    ]);

    // Cold starts, the binaries and the two endpoints interleaved in every round, so that a busy
    // moment of the machine (or of the emulator) does not land on one of them only.
    let mut http = rows(&binaries, args.cold_starts);
    let mut https = rows(&binaries, args.cold_starts);
    for round in 0..args.cold_starts {
        eprintln!("cold starts: round {} of {}", round + 1, args.cold_starts);
        for (plain, tls) in http.iter_mut().zip(https.iter_mut()) {
            bench.set_extra_env(HashMap::new());
            plain.starts.push(bench.cold_start(&plain.binary).await?);
            bench.set_extra_env(https_env.clone());
            tls.starts.push(bench.cold_start(&tls.binary).await?);
        }
    }
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
                let shown: Vec<&str> = trace.files.iter().take(4).map(String::as_str).collect();
                let more = trace.files.len().saturating_sub(shown.len());
                let more = if more > 0 {
                    format!(" and {more} more")
                } else {
                    String::new()
                };
                format!("{}: {}{more}", trace.files.len(), shown.join(", "))
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
    let markdown = format!(
        "#### Cold start, emulator over plain HTTP\n\n{}\n\
         #### Cold start, emulator behind HTTPS (the first call pays the TLS handshake)\n\n{}\n\
         #### What init touches (strace)\n\n{traces}\n\
         #### Warm, one process per path\n\n{}\n\
         #### Targets\n\n{}",
        report::cold_start_table(&http, floor),
        report::cold_start_table(&https, &https[0]),
        report::warm_table(&warm),
        report::targets_table(&report::targets(&http, floor, &warm)),
    );
    std::fs::write(&args.out, markdown)?;
    Ok(())
}

fn rows(binaries: &[&str], runs: usize) -> Vec<ColdStarts> {
    binaries
        .iter()
        .map(|binary| ColdStarts {
            binary: (*binary).to_owned(),
            starts: Vec::with_capacity(runs),
        })
        .collect()
}
