//! `score-files`: scores local NDJSON(.gz) files as compute would a subject's objects, on one
//! thread, and says how fast each step went: the files `datagen --out` writes, or any dataset.
//!
//! ```text
//! score-files [--mode split|parse|full] PATH...
//! ```
//! `split` only finds the lines; `parse` also parses each line into a transaction (nothing
//! accumulated); `full` (the default) is compute's work: features accumulated, then scored with
//! the embedded model. A directory means every `.ndjson`/`.ndjson.gz` file below it.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, ValueEnum};
use compute::features::FeatureAccumulator;
use compute::model::{LogisticModel, Model};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    /// Find the lines only.
    Split,
    /// Parse each line into a transaction, accumulating nothing.
    Parse,
    /// Accumulate the features and score them (what compute does).
    Full,
}

/// Scores local NDJSON(.gz) files with compute's own feature extraction and model, on one thread.
#[derive(Debug, Parser)]
#[command(name = "score-files")]
struct Args {
    /// How much of compute's work to do
    #[arg(long, value_enum, default_value_t = Mode::Full)]
    mode: Mode,
    /// Files, or directories to search for .ndjson / .ndjson.gz files
    #[arg(required = true)]
    paths: Vec<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("score-files: {err}");
            ExitCode::from(2)
        }
    }
}

fn run(args: &Args) -> Result<(), String> {
    let mut files = Vec::new();
    for path in &args.paths {
        collect(path, &mut files).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    if files.is_empty() {
        return Err("no .ndjson or .ndjson.gz file found".into());
    }
    let started = Instant::now();
    let mut bytes = 0u64;
    let mut lines = 0u64;
    let mut rows = 0u64;
    let mut accumulator = FeatureAccumulator::new();
    for file in &files {
        let reader = open(file).map_err(|e| format!("{}: {e}", file.display()))?;
        let counted = match args.mode {
            Mode::Split => split(reader),
            Mode::Parse => parse(reader, &mut rows),
            Mode::Full => {
                let mut counting = Counting::new(reader);
                accumulator
                    .push_reader(&mut counting)
                    .map(|()| counting.counted())
            }
        }
        .map_err(|e| format!("{}: {e}", file.display()))?;
        bytes += counted.0;
        lines += counted.1;
    }
    let seconds = started.elapsed().as_secs_f64();
    let mib_per_second = bytes as f64 / (1024.0 * 1024.0) / seconds;
    println!(
        "mode {:?}: {} files, {bytes} bytes (uncompressed), {lines} lines in {seconds:.3} s: {mib_per_second:.1} MiB/s, {:.0} lines/s",
        args.mode,
        files.len(),
        lines as f64 / seconds
    );
    match args.mode {
        Mode::Split => {}
        Mode::Parse => println!("rows {rows}, malformed {}", lines - rows),
        Mode::Full => {
            let summary = accumulator.finish();
            let result = LogisticModel::embedded()
                .score(&summary)
                .map_err(|e| e.to_string())?;
            println!(
                "rows {}, malformed {}, score {:.4} ({})",
                summary.rows,
                summary.malformed_lines,
                result.score,
                result.band.as_str()
            );
            let features = serde_json::to_string(&summary.features).map_err(|e| e.to_string())?;
            println!("features {features}");
        }
    }
    Ok(())
}

/// `path`, or the dataset files below it.
fn collect(path: &Path, files: &mut Vec<PathBuf>) -> std::io::Result<()> {
    if path.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)?
            .map(|e| e.map(|e| e.path()))
            .collect::<Result<_, _>>()?;
        entries.sort();
        for entry in entries {
            if entry.is_dir() || compute::source::is_dataset_object(&entry.to_string_lossy()) {
                collect(&entry, files)?;
            }
        }
    } else {
        files.push(path.to_owned());
    }
    Ok(())
}

/// The file's content, gunzipped when it starts with gzip's magic bytes (as compute does).
fn open(path: &Path) -> std::io::Result<Box<dyn BufRead>> {
    let mut file = BufReader::with_capacity(64 * 1024, File::open(path)?);
    let gzipped = file.fill_buf()?.starts_with(&[0x1f, 0x8b]);
    Ok(if gzipped {
        Box::new(BufReader::with_capacity(
            64 * 1024,
            flate2::bufread::MultiGzDecoder::new(file),
        ))
    } else {
        Box::new(file)
    })
}

/// Bytes and lines, lines found only.
fn split(mut reader: Box<dyn BufRead>) -> std::io::Result<(u64, u64)> {
    let (mut bytes, mut lines) = (0u64, 0u64);
    loop {
        let buffer = reader.fill_buf()?;
        if buffer.is_empty() {
            return Ok((bytes, lines));
        }
        lines += buffer.iter().filter(|&&b| b == b'\n').count() as u64;
        let length = buffer.len();
        bytes += length as u64;
        reader.consume(length);
    }
}

/// Bytes and lines, each line parsed; `rows` counts the transactions.
fn parse(mut reader: Box<dyn BufRead>, rows: &mut u64) -> std::io::Result<(u64, u64)> {
    let (mut bytes, mut lines) = (0u64, 0u64);
    let mut line = Vec::with_capacity(1024);
    loop {
        line.clear();
        let read = reader.read_until(b'\n', &mut line)?;
        if read == 0 {
            return Ok((bytes, lines));
        }
        bytes += read as u64;
        lines += 1;
        if FeatureAccumulator::parses(&line) {
            *rows += 1;
        }
    }
}

/// A reader that counts the bytes and newlines passing through it.
struct Counting<R> {
    inner: R,
    bytes: u64,
    lines: u64,
}

impl<R: BufRead> Counting<R> {
    fn new(inner: R) -> Self {
        Self {
            inner,
            bytes: 0,
            lines: 0,
        }
    }

    fn counted(&self) -> (u64, u64) {
        (self.bytes, self.lines)
    }
}

impl<R: BufRead> Read for Counting<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let read = self.inner.read(out)?;
        self.bytes += read as u64;
        self.lines += out[..read].iter().filter(|&&b| b == b'\n').count() as u64;
        Ok(read)
    }
}

impl<R: BufRead> BufRead for Counting<R> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        self.inner.fill_buf()
    }

    fn consume(&mut self, amount: usize) {
        if let Ok(buffer) = self.inner.fill_buf() {
            let consumed = &buffer[..amount.min(buffer.len())];
            self.bytes += consumed.len() as u64;
            self.lines += consumed.iter().filter(|&&b| b == b'\n').count() as u64;
        }
        self.inner.consume(amount);
    }
}
