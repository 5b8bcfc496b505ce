//! compute's line decoding with serde_json (today's) and sonic-rs, on the demo lake.
//!
//! ```sh
//! cargo run --release -p datagen -- --subjects 20 --out /tmp/lake   # the demo lake, seed 1
//! PARSER_TRIAL_LAKE=/tmp/lake cargo bench -p parser-trial
//! ```
//! Every `.ndjson` / `.ndjson.gz` file under `PARSER_TRIAL_LAKE` is read into one buffer and split into lines first (trimmed, blank ones dropped, as compute does);
//! each iteration then runs over every line, borrowed from that buffer as compute's are:
//! `decode/*` is the JSON decoding step alone, `parse/*` adds the contract's checks after it
//! (compute's `parse` whole). Throughput is per line, and in bytes of uncompressed NDJSON.
//! Results: docs/BENCHMARKS.md (simd-json's rows there come from commit caedb88, before it was
//! removed from this crate).
//!
//! Without `PARSER_TRIAL_LAKE` it measures nothing and says so: `make test` (`cargo test
//! --all-targets`) runs each benchmark once, and must not depend on a directory's contents.

use std::fs::File;
use std::hint::black_box;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use flate2::read::MultiGzDecoder;
use parser_trial::{with_serde_json, with_sonic_rs};

/// The lake's files, uncompressed, one after the other; `None` without `PARSER_TRIAL_LAKE`.
fn lake() -> Option<Vec<u8>> {
    let Some(dir) = std::env::var_os("PARSER_TRIAL_LAKE").map(PathBuf::from) else {
        eprintln!(
            "parser-trial: PARSER_TRIAL_LAKE is not set, nothing measured (write the demo lake \
             with `cargo run --release -p datagen -- --subjects 20 --out DIR`, then set it to DIR)"
        );
        return None;
    };
    let mut files = Vec::new();
    collect(&dir, &mut files);
    assert!(
        !files.is_empty(),
        "no .ndjson(.gz) file under {}: write the demo lake first \
         (cargo run --release -p datagen -- --subjects 20 --out {0})",
        dir.display()
    );
    files.sort();
    let mut data = Vec::new();
    for path in &files {
        let mut file = File::open(path).unwrap();
        if path.extension().is_some_and(|e| e == "gz") {
            MultiGzDecoder::new(file).read_to_end(&mut data).unwrap();
        } else {
            file.read_to_end(&mut data).unwrap();
        }
        if data.last().is_some_and(|&b| b != b'\n') {
            data.push(b'\n');
        }
    }
    eprintln!("lake: {} files under {}", files.len(), dir.display());
    Some(data)
}

fn collect(path: &Path, files: &mut Vec<PathBuf>) {
    if path.is_dir() {
        for entry in std::fs::read_dir(path).unwrap() {
            collect(&entry.unwrap().path(), files);
        }
    } else {
        let name = path.to_string_lossy();
        if name.ends_with(".ndjson") || name.ends_with(".ndjson.gz") {
            files.push(path.to_owned());
        }
    }
}

fn decode(c: &mut Criterion) {
    let Some(data) = lake() else {
        return;
    };
    let lines: Vec<&[u8]> = data
        .split(|&b| b == b'\n')
        .map(<[u8]>::trim_ascii)
        .filter(|line| !line.is_empty())
        .collect();

    // The same answer from each parser, line for line, before timing them.
    let (mut valid, mut sonic_differs) = (0, 0);
    for line in &lines {
        let expected = with_serde_json::parse(line);
        valid += usize::from(expected.is_some());
        sonic_differs += usize::from(with_sonic_rs::parse(line) != expected);
    }
    eprintln!(
        "lake: {} lines ({valid} valid), {} bytes; lines parsed differently from serde_json: \
         sonic-rs {sonic_differs}",
        lines.len(),
        data.len()
    );
    assert_eq!(sonic_differs, 0);

    for step in ["decode", "parse"] {
        let mut group = c.benchmark_group(step);
        group
            .sample_size(20)
            .warm_up_time(Duration::from_secs(2))
            .measurement_time(Duration::from_secs(8))
            .throughput(Throughput::ElementsAndBytes {
                elements: lines.len() as u64,
                bytes: data.len() as u64,
            });
        let decode = step == "decode";
        group.bench_function("serde_json", |b| {
            b.iter(|| {
                let mut ok = 0usize;
                for &line in &lines {
                    ok += usize::from(if decode {
                        black_box(with_serde_json::decode(black_box(line))).is_some()
                    } else {
                        black_box(with_serde_json::parse(black_box(line))).is_some()
                    });
                }
                ok
            })
        });
        group.bench_function("sonic_rs", |b| {
            b.iter(|| {
                let mut ok = 0usize;
                for &line in &lines {
                    ok += usize::from(if decode {
                        black_box(with_sonic_rs::decode(black_box(line))).is_some()
                    } else {
                        black_box(with_sonic_rs::parse(black_box(line))).is_some()
                    });
                }
                ok
            })
        });
        group.finish();
    }
}

criterion_group!(benches, decode);
criterion_main!(benches);
