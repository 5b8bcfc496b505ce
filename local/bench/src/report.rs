//! The benchmark's figures as Markdown tables, and each figure against its target.

use std::fmt::Write;
use std::time::Duration;

use crate::{median, ColdStart, WarmRun};

/// The cold starts of one binary against one endpoint.
pub struct ColdStarts {
    pub binary: String,
    pub starts: Vec<ColdStart>,
}

impl ColdStarts {
    pub fn init_median(&self) -> Duration {
        median(&mut self.starts.iter().map(|s| s.init).collect::<Vec<_>>())
    }

    pub fn init_min(&self) -> Duration {
        self.starts.iter().map(|s| s.init).min().unwrap_or_default()
    }

    pub fn first_invocation_median(&self) -> Duration {
        median(
            &mut self
                .starts
                .iter()
                .map(|s| s.first_invocation)
                .collect::<Vec<_>>(),
        )
    }

    pub fn init_plus_first_median(&self) -> Duration {
        median(
            &mut self
                .starts
                .iter()
                .map(|s| s.init + s.first_invocation)
                .collect::<Vec<_>>(),
        )
    }

    pub fn rss_median_kib(&self) -> u64 {
        let mut rss: Vec<u64> = self.starts.iter().map(|s| s.rss_kib).collect();
        rss.sort_unstable();
        rss.get(rss.len() / 2).copied().unwrap_or(0)
    }
}

pub fn ms(duration: Duration) -> String {
    format!("{:.2} ms", duration.as_secs_f64() * 1e3)
}

/// KiB as decimal megabytes (what Lambda's `Max Memory Used` and the targets say).
pub fn mb(kib: u64) -> String {
    format!("{:.1} MB", kib as f64 * 1024.0 / 1e6)
}

pub fn cold_start_table(rows: &[ColdStarts], floor: &ColdStarts) -> String {
    let floor_init = floor.init_median().as_secs_f64();
    let mut out = String::from(
        "| binary | init p50 | init min | init / floor | first invocation p50 | init + first p50 | RSS after first |\n\
         |---|---|---|---|---|---|---|\n",
    );
    for row in rows {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.2}x | {} | {} | {} |",
            row.binary,
            ms(row.init_median()),
            ms(row.init_min()),
            row.init_median().as_secs_f64() / floor_init,
            ms(row.first_invocation_median()),
            ms(row.init_plus_first_median()),
            mb(row.rss_median_kib()),
        );
    }
    out
}

pub fn warm_table(runs: &[WarmRun]) -> String {
    let mut out = String::from(
        "| binary | path | invocations | duration p50 | own CPU / invocation | RSS after first | RSS after last | of which anonymous / file | peak RSS |\n\
         |---|---|---|---|---|---|---|---|---|\n",
    );
    for run in runs {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {:.3} ms | {} | {} | {} / {} | {} |",
            run.binary,
            run.path,
            run.invocations,
            ms(run.median_duration),
            run.cpu_per_invocation.as_secs_f64() * 1e3,
            mb(run.rss_after_first_kib),
            mb(run.rss_after_kib),
            mb(run.anon_after_kib),
            mb(run.file_after_kib),
            mb(run.peak_rss_kib),
        );
    }
    out
}

/// One figure against its target.
pub struct Target {
    pub figure: String,
    pub target: String,
    pub measured: String,
    pub met: bool,
}

pub fn targets_table(targets: &[Target]) -> String {
    let mut out = String::from("| figure | target | measured | met |\n|---|---|---|---|\n");
    for t in targets {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            t.figure,
            t.target,
            t.measured,
            if t.met { "yes" } else { "**no**" }
        );
    }
    out
}

/// The targets of the cold-start benchmark: init within 1.8x the floor's, RSS within 8 MB after
/// the first and after the last warm invocation, request-api's done path within 0.3 ms of CPU.
pub fn targets(cold: &[ColdStarts], floor: &ColdStarts, warm: &[WarmRun]) -> Vec<Target> {
    const RSS_LIMIT_KIB: u64 = 8_000_000 / 1024;
    let floor_init = floor.init_median().as_secs_f64();
    let mut targets = Vec::new();
    for row in cold.iter().filter(|row| row.binary != floor.binary) {
        let ratio = row.init_median().as_secs_f64() / floor_init;
        targets.push(Target {
            figure: format!("{} init p50 / floor's", row.binary),
            target: "<= 1.8x".into(),
            measured: format!(
                "{ratio:.2}x ({} / {})",
                ms(row.init_median()),
                ms(floor.init_median())
            ),
            met: ratio <= 1.8,
        });
        targets.push(Target {
            figure: format!("{} RSS after the first invocation", row.binary),
            target: "<= 8 MB".into(),
            measured: mb(row.rss_median_kib()),
            met: row.rss_median_kib() <= RSS_LIMIT_KIB,
        });
    }
    for run in warm.iter().filter(|run| run.binary != floor.binary) {
        targets.push(Target {
            figure: format!(
                "{} RSS after {} warm invocations ({})",
                run.binary, run.invocations, run.path
            ),
            target: "<= 8 MB".into(),
            measured: mb(run.rss_after_kib),
            met: run.rss_after_kib <= RSS_LIMIT_KIB,
        });
        if run.binary == "request-api" && run.path == "done" {
            let cpu_ms = run.cpu_per_invocation.as_secs_f64() * 1e3;
            targets.push(Target {
                figure: "request-api own CPU per request, done path".into(),
                target: "<= 0.3 ms".into(),
                measured: format!("{cpu_ms:.3} ms"),
                met: cpu_ms <= 0.3,
            });
        }
    }
    targets
}
