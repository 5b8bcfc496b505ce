//! Golden tests: fixed datasets pinned to the documented model (functions/compute/models/fraud-lr-1.json,
//! docs/MODEL.md). The pinned scores were computed independently of this code, from the formula
//! in docs/MODEL.md; a change to the features or the model that moves them is a model change
//! and needs a new model version.

use std::io::Write;

use compute::features::FeatureAccumulator;
use compute::model::{LogisticModel, Model};
use compute::source::extract;
use shared::domain::{Band, ScoreResult};

fn score(data: &[u8]) -> ScoreResult {
    let mut acc = FeatureAccumulator::new();
    extract(data, &mut acc).unwrap();
    LogisticModel::embedded().score(&acc.finish()).unwrap()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(data).unwrap();
    gz.finish().unwrap()
}

fn reasons(result: &ScoreResult) -> Vec<&str> {
    result.reasons.iter().map(|r| r.feature.as_str()).collect()
}

fn assert_pinned(result: &ScoreResult, score: f64) {
    assert!(
        (result.score - score).abs() < 1e-12,
        "score {} moved from the pinned {score}",
        result.score
    );
    assert_eq!(result.model_version, "fraud-lr/1");
}

const TYPICAL: &[u8] = include_bytes!("data/golden-typical.ndjson");
const MEDIUM: &[u8] = include_bytes!("data/golden-medium.ndjson");
const RISKY: &[u8] = include_bytes!("data/golden-risky.ndjson");

pub const TYPICAL_SCORE: f64 = 0.042_834_387_895_617_304;
pub const MEDIUM_SCORE: f64 = 0.384_820_777_717_914_1;
pub const RISKY_SCORE: f64 = 0.999_990_038_228_955_4;

#[test]
fn typical_shop() {
    let result = score(TYPICAL);
    assert_pinned(&result, TYPICAL_SCORE);
    assert_eq!(result.band, Band::Low);
    assert_eq!(
        reasons(&result),
        ["order_count", "refund_rate", "country_mismatch_rate"]
    );
    assert_eq!(result.feature_summary.rows, 12);
    assert_eq!(result.feature_summary.malformed_lines, 0);
}

#[test]
fn medium_shop() {
    let result = score(MEDIUM);
    assert_pinned(&result, MEDIUM_SCORE);
    assert_eq!(result.band, Band::Medium);
    assert_eq!(
        reasons(&result),
        ["refund_rate", "country_mismatch_rate", "order_count"]
    );
    assert!((result.reasons[0].contribution - 1.92).abs() < 1e-12);
    assert_eq!(result.reasons[0].value, 0.2);
}

#[test]
fn risky_shop_with_malformed_lines() {
    let result = score(RISKY);
    assert_pinned(&result, RISKY_SCORE);
    assert_eq!(result.band, Band::High);
    assert_eq!(
        reasons(&result),
        ["chargeback_rate", "country_mismatch_rate", "night_share"]
    );
    assert_eq!(result.feature_summary.rows, 9);
    assert_eq!(result.feature_summary.malformed_lines, 3);
}

#[test]
fn gzip_and_line_order_do_not_change_the_score() {
    for data in [TYPICAL, MEDIUM, RISKY] {
        let plain = score(data);
        assert_eq!(score(&gzip(data)), plain);
        let mut lines: Vec<&[u8]> = data.split(|b| *b == b'\n').collect();
        lines.reverse();
        assert_eq!(score(&lines.join(&b'\n')), plain);
    }
}
