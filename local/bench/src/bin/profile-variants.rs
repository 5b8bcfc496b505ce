//! `profile-variants`: the same binaries built with different Cargo profiles (LTO, panic
//! strategy, opt-level), measured side by side in one run: stripped size, init, the first call,
//! RSS, warm CPU per invocation, and compute's parser throughput (`score-files`). Run by
//! `scripts/profile-variants.sh` (which builds the variants) under `scripts/moto.sh run`.

use std::path::PathBuf;
use std::process::Command;

use clap::Parser;
use deferred_bench::report::{mb, ColdStarts};
use deferred_bench::{Bench, ColdStart, WarmRun, FLOOR, FUNCTIONS};

#[derive(Parser)]
#[command(
    about = "Size, init, memory, CPU and throughput of one set of binaries per Cargo profile"
)]
struct Args {
    /// `NAME=DIR`: a variant and the folder of its binaries (repeat; the first is the baseline).
    #[arg(long = "variant", required = true, value_parser = parse_variant)]
    variants: Vec<(String, PathBuf)>,
    /// Cold starts per binary and variant (medians are reported).
    #[arg(long, default_value_t = 10)]
    cold_starts: usize,
    /// Warm invocations per binary and variant, on the binary's first warm path.
    #[arg(long, default_value_t = 300)]
    warm: usize,
    /// NDJSON files `score-files --mode full` reads, best of `--throughput-runs`.
    #[arg(long)]
    lake: PathBuf,
    #[arg(long, default_value_t = 3)]
    throughput_runs: usize,
    /// Where the Markdown report goes.
    #[arg(long)]
    out: PathBuf,
}

fn parse_variant(text: &str) -> Result<(String, PathBuf), String> {
    let (name, dir) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?} is not NAME=DIR"))?;
    Ok((name.to_owned(), PathBuf::from(dir)))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let binaries: Vec<&str> = std::iter::once(FLOOR)
        .chain(FUNCTIONS.iter().map(|(name, _)| *name))
        .collect();
    let mut bench = Bench::new(&args.variants[0].1).await?;

    // cold[binary][variant], every round going through all of them, so that a busy moment of
    // the machine does not land on one variant only.
    let mut cold: Vec<Vec<ColdStarts>> = binaries
        .iter()
        .map(|binary| {
            args.variants
                .iter()
                .map(|_| ColdStarts {
                    binary: (*binary).to_owned(),
                    starts: Vec::<ColdStart>::with_capacity(args.cold_starts),
                })
                .collect()
        })
        .collect();
    for round in 0..args.cold_starts {
        eprintln!("cold starts: round {} of {}", round + 1, args.cold_starts);
        for (binary, per_variant) in binaries.iter().zip(cold.iter_mut()) {
            for ((_, dir), row) in args.variants.iter().zip(per_variant.iter_mut()) {
                bench.set_bin_dir(dir);
                row.starts.push(bench.cold_start(binary).await?);
            }
        }
    }

    // compute's cold starts above left the done path's score in place.
    let mut warm: Vec<Vec<WarmRun>> = Vec::new();
    for binary in &binaries {
        let path = Bench::warm_paths(binary)[0];
        let mut per_variant = Vec::new();
        for (name, dir) in &args.variants {
            eprintln!("warm: {binary} {path} ({name})");
            bench.set_bin_dir(dir);
            per_variant.push(bench.warm(binary, path, args.warm).await?);
        }
        warm.push(per_variant);
    }

    let mut throughput = Vec::new();
    for (name, dir) in &args.variants {
        eprintln!("throughput: {name}");
        throughput.push(best_lines_per_second(
            &dir.join("score-files"),
            &args.lake,
            args.throughput_runs,
        )?);
    }

    let names: Vec<&str> = args
        .variants
        .iter()
        .map(|(name, _)| name.as_str())
        .collect();
    let mut sizes = Vec::new();
    for binary in &binaries {
        let mut row = Vec::new();
        for (_, dir) in &args.variants {
            let bytes = std::fs::metadata(dir.join(binary))?.len();
            row.push(format!("{:.1} MB", bytes as f64 / 1e6));
        }
        sizes.push(row);
    }
    let baseline_lps = throughput[0];
    let throughput_row: Vec<String> = throughput
        .iter()
        .map(|lps| format!("{lps:.0} ({:.2}x)", lps / baseline_lps))
        .collect();
    let markdown = [
        table("Stripped size", &binaries, &names, &sizes),
        table(
            "Init p50",
            &binaries,
            &names,
            &cells(&cold, |row| format!("{:.2} ms", row.init_median().as_secs_f64() * 1e3)),
        ),
        table(
            "Init + first invocation p50",
            &binaries,
            &names,
            &cells(&cold, |row| {
                format!("{:.2} ms", row.init_plus_first_median().as_secs_f64() * 1e3)
            }),
        ),
        table(
            "RSS after the first invocation (median)",
            &binaries,
            &names,
            &cells(&cold, |row| mb(row.rss_median_kib())),
        ),
        table(
            &format!(
                "Own CPU per warm invocation ({} invocations on each binary's first path: {})",
                args.warm,
                binaries
                    .iter()
                    .map(|binary| format!("{binary} {}", Bench::warm_paths(binary)[0]))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            &binaries,
            &names,
            &cells(&warm, |run| format!("{:.3} ms", run.cpu_per_invocation.as_secs_f64() * 1e3)),
        ),
        table(
            &format!(
                "RSS after {} warm invocations (anonymous / file-backed)",
                args.warm
            ),
            &binaries,
            &names,
            &cells(&warm, |run| {
                format!(
                    "{} ({} / {})",
                    mb(run.rss_after_kib),
                    mb(run.anon_after_kib),
                    mb(run.file_after_kib)
                )
            }),
        ),
        table(
            &format!(
                "compute's parser: `score-files --mode full`, lines/s, best of {} (vs the first variant)",
                args.throughput_runs
            ),
            &["score-files"],
            &names,
            &[throughput_row],
        ),
    ]
    .join("\n");
    std::fs::write(&args.out, markdown)?;
    Ok(())
}

/// A table's cells from measurements per binary and variant.
fn cells<T>(measured: &[Vec<T>], cell: impl Fn(&T) -> String) -> Vec<Vec<String>> {
    measured
        .iter()
        .map(|per_variant| per_variant.iter().map(&cell).collect())
        .collect()
}

/// A Markdown table: a row per binary, a column per variant.
fn table(title: &str, rows: &[&str], variants: &[&str], cells: &[Vec<String>]) -> String {
    let mut out = format!(
        "#### {title}\n\n| binary | {} |\n|---|{}\n",
        variants.join(" | "),
        "---|".repeat(variants.len())
    );
    for (row, values) in rows.iter().zip(cells) {
        out.push_str(&format!("| {row} | {} |\n", values.join(" | ")));
    }
    out
}

/// `score-files --mode full` over `lake`, `runs` times; the best lines per second.
fn best_lines_per_second(
    score_files: &std::path::Path,
    lake: &std::path::Path,
    runs: usize,
) -> Result<f64, Box<dyn std::error::Error>> {
    let mut best: f64 = 0.0;
    for _ in 0..runs {
        let output = Command::new(score_files)
            .args(["--mode", "full"])
            .arg(lake)
            .output()?;
        if !output.status.success() {
            return Err(format!(
                "{} failed: {}",
                score_files.display(),
                String::from_utf8_lossy(&output.stderr)
            )
            .into());
        }
        // "mode Full: … MiB/s, 123456 lines/s"
        let stdout = String::from_utf8_lossy(&output.stdout);
        let lines_per_second = stdout
            .lines()
            .next()
            .and_then(|line| line.strip_suffix(" lines/s"))
            .and_then(|line| line.rsplit(' ').next())
            .and_then(|n| n.parse::<f64>().ok())
            .ok_or_else(|| format!("no lines/s in {stdout:?}"))?;
        best = best.max(lines_per_second);
    }
    Ok(best)
}
