//! Dataset objects: bytes as S3 streams them (in chunks of any size, plain or gzipped) through
//! `compute::source::extract`, and the same lines one by one through
//! `FeatureAccumulator::push_line`. Both agree; every non-blank line is a row or counted
//! malformed; features are finite; a plain object never fails, a gzipped one decodes or fails
//! with an error.
//!
//! Input: byte 0 picks the chunk size of the reads (1..=256), byte 1 whether the object is
//! gzipped first; the rest is the object.
#![no_main]

use std::io::{Read, Write};

use compute::features::FeatureAccumulator;
use compute::source::extract;
use libfuzzer_sys::fuzz_target;

/// A reader that hands out at most `chunk` bytes a read, as a download does.
struct Chunked<'a> {
    data: &'a [u8],
    chunk: usize,
}

impl Read for Chunked<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.chunk).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

fuzz_target!(|data: &[u8]| {
    let [chunk, mode, lines @ ..] = data else {
        return;
    };
    let chunk = usize::from(*chunk) + 1;

    let mut by_line = FeatureAccumulator::new();
    for line in lines.split(|&b| b == b'\n') {
        by_line.push_line(line);
    }
    let blank = lines
        .split(|&b| b == b'\n')
        .filter(|l| l.iter().all(u8::is_ascii_whitespace))
        .count() as u64;
    let total = lines.split(|&b| b == b'\n').count() as u64;
    assert_eq!(by_line.rows() + by_line.malformed_lines() + blank, total);

    let object = if mode & 1 == 1 {
        gzip(lines)
    } else {
        lines.to_vec()
    };
    let mut whole = FeatureAccumulator::new();
    let whole_result = extract(&object[..], &mut whole);
    let mut streamed = FeatureAccumulator::new();
    let streamed_result = extract(
        Chunked {
            data: &object,
            chunk,
        },
        &mut streamed,
    );
    assert_eq!(whole_result.is_ok(), streamed_result.is_ok());
    if mode & 1 == 1 || !lines.starts_with(&[0x1f, 0x8b]) {
        // Plain text, or gzip of our own making: always readable, the same as line by line.
        whole_result.unwrap();
        assert_eq!(whole.finish(), by_line.finish());
        assert_eq!(streamed.finish(), by_line.finish());
    }

    let summary = by_line.finish();
    for (name, value) in &summary.features {
        assert!(value.is_finite() && *value >= 0.0, "{name} = {value}");
    }
});
