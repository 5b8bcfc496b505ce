//! The scoring model port and the shipped fraud model.
//!
//! - [`Model`]: what compute needs from a model (a team plugs in its own by implementing it).
//! - [`LogisticModel`]: the shipped logistic regression, read from a JSON artifact
//!   (format `logistic-regression/v1`, see docs/MODEL.md). The default artifact,
//!   `functions/compute/models/fraud-lr-1.json`, is embedded in the binary ([`LogisticModel::embedded`]).
//! - [`ModelStore`]: which model scores right now: a fixed one (the embedded default), or an S3
//!   artifact (`MODEL_URI`) loaded once, cached with a jittered TTL and swapped atomically.

mod store;

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::Error;
use shared::domain::{Band, FeatureSummary, Reason, ScoreResult};

pub use store::{ModelStore, S3Location};

/// The default model artifact, embedded at build time.
pub const EMBEDDED_MODEL_JSON: &str = include_str!("../models/fraud-lr-1.json");

/// The only artifact format [`LogisticModel`] reads.
pub const LOGISTIC_FORMAT: &str = "logistic-regression/v1";

/// Bounds on an artifact, so that every result it gives is a small DynamoDB item and a small
/// event (a result stores the version, up to `max_reasons` reasons named by their feature, and
/// the features): at most 64 terms, 16 reasons, 64 characters per name, version or feature.
pub const MAX_TERMS: usize = 64;
pub const MAX_REASONS: usize = 16;
pub const MAX_NAME_CHARS: usize = 64;

/// A scoring model. Implementations are shared by concurrent jobs (`Send + Sync`) and must be
/// deterministic: the same features give the same result.
pub trait Model: Send + Sync {
    /// `name/version`, stored with every result as `model_version`.
    fn version(&self) -> &str;

    /// Scores one subject. CPU-bound: callers run it on a blocking thread. An error means the
    /// features do not fit the model (a missing feature, a non-finite value).
    fn score(&self, features: &FeatureSummary) -> Result<ScoreResult, Error>;
}

/// How a raw feature value is transformed before centering and scaling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transform {
    Identity,
    /// `ln(1 + max(x, 0))`, for counts and ratios with long tails.
    Log1p,
}

impl Transform {
    fn apply(self, x: f64) -> f64 {
        match self {
            Self::Identity => x,
            Self::Log1p => x.max(0.0).ln_1p(),
        }
    }
}

/// One term of the logistic regression:
/// `weight * clamp((transform(value) - center) / scale, clip.0, clip.1)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Term {
    pub feature: String,
    pub transform: Transform,
    pub center: f64,
    pub scale: f64,
    pub weight: f64,
    pub clip: (f64, f64),
}

/// Score thresholds: `score < medium` is low, `score < high` is medium, the rest high.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Bands {
    pub medium: f64,
    pub high: f64,
}

impl Bands {
    pub fn band(&self, score: f64) -> Band {
        if score >= self.high {
            Band::High
        } else if score >= self.medium {
            Band::Medium
        } else {
            Band::Low
        }
    }
}

/// The JSON artifact of a logistic-regression model (docs/MODEL.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogisticArtifact {
    pub format: String,
    pub name: String,
    pub version: String,
    #[serde(default)]
    pub description: String,
    pub intercept: f64,
    pub terms: Vec<Term>,
    pub bands: Bands,
    /// At most this many reasons (terms with a positive contribution, largest first).
    pub max_reasons: usize,
}

/// The shipped model: `score = 1 / (1 + e^-(intercept + sum of terms))`.
#[derive(Debug, Clone)]
pub struct LogisticModel {
    artifact: LogisticArtifact,
    version: String,
}

impl LogisticModel {
    /// Parses and validates an artifact; the error says what is wrong with it.
    pub fn from_json(json: &[u8]) -> Result<Self, Error> {
        let artifact: LogisticArtifact = serde_json::from_slice(json)
            .map_err(|e| Error::Model(format!("not a model artifact: {e}")))?;
        Self::new(artifact)
    }

    pub fn new(artifact: LogisticArtifact) -> Result<Self, Error> {
        let invalid = |why: String| Err(Error::Model(format!("invalid model artifact: {why}")));
        if artifact.format != LOGISTIC_FORMAT {
            return invalid(format!(
                "format is {:?}, expected {LOGISTIC_FORMAT:?}",
                artifact.format
            ));
        }
        if artifact.name.is_empty() || artifact.version.is_empty() {
            return invalid("name and version must not be empty".into());
        }
        let too_long = |s: &str| s.chars().count() > MAX_NAME_CHARS;
        if too_long(&artifact.name) || too_long(&artifact.version) {
            return invalid(format!(
                "name and version may have at most {MAX_NAME_CHARS} characters each"
            ));
        }
        if artifact.terms.len() > MAX_TERMS || artifact.max_reasons > MAX_REASONS {
            return invalid(format!(
                "at most {MAX_TERMS} terms and max_reasons <= {MAX_REASONS} \
                 (got {} terms, max_reasons {})",
                artifact.terms.len(),
                artifact.max_reasons
            ));
        }
        if let Some(t) = artifact.terms.iter().find(|t| too_long(&t.feature)) {
            return invalid(format!(
                "feature {:?} is longer than {MAX_NAME_CHARS} characters",
                t.feature
            ));
        }
        if !artifact.intercept.is_finite() {
            return invalid("intercept is not finite".into());
        }
        if artifact.terms.is_empty() {
            return invalid("no terms".into());
        }
        let mut seen = HashSet::new();
        for t in &artifact.terms {
            if !seen.insert(t.feature.as_str()) {
                return invalid(format!("feature {:?} appears twice", t.feature));
            }
            let finite = [t.center, t.scale, t.weight, t.clip.0, t.clip.1]
                .iter()
                .all(|v| v.is_finite());
            if !finite || t.scale <= 0.0 || t.clip.0 > t.clip.1 {
                return invalid(format!(
                    "term {:?} needs finite numbers, scale > 0 and clip low <= high",
                    t.feature
                ));
            }
        }
        let b = artifact.bands;
        if !(0.0 <= b.medium && b.medium <= b.high && b.high <= 1.0) {
            return invalid("bands need 0 <= medium <= high <= 1".into());
        }
        let version = format!("{}/{}", artifact.name, artifact.version);
        Ok(Self { artifact, version })
    }

    /// The default model embedded in the binary (`functions/compute/models/fraud-lr-1.json`).
    pub fn embedded() -> Self {
        Self::from_json(EMBEDDED_MODEL_JSON.as_bytes()).expect("the embedded model is valid")
    }

    pub fn artifact(&self) -> &LogisticArtifact {
        &self.artifact
    }
}

impl Model for LogisticModel {
    fn version(&self) -> &str {
        &self.version
    }

    fn score(&self, summary: &FeatureSummary) -> Result<ScoreResult, Error> {
        let mut logit = self.artifact.intercept;
        let mut contributions = Vec::with_capacity(self.artifact.terms.len());
        for term in &self.artifact.terms {
            let value = *summary.features.get(&term.feature).ok_or_else(|| {
                Error::Model(format!(
                    "feature {:?} is missing from the features",
                    term.feature
                ))
            })?;
            if !value.is_finite() {
                return Err(Error::Model(format!(
                    "feature {:?} is not finite ({value})",
                    term.feature
                )));
            }
            let z = ((term.transform.apply(value) - term.center) / term.scale)
                .clamp(term.clip.0, term.clip.1);
            let contribution = term.weight * z;
            logit += contribution;
            contributions.push(Reason {
                feature: term.feature.clone(),
                value,
                contribution,
            });
        }
        let score = 1.0 / (1.0 + (-logit).exp());
        // Reasons explain risk: the terms that pushed the score above a typical shop's,
        // largest first (ties by feature name, so the order is deterministic).
        contributions.retain(|r| r.contribution > 0.0);
        contributions.sort_by(|a, b| {
            b.contribution
                .total_cmp(&a.contribution)
                .then_with(|| a.feature.cmp(&b.feature))
        });
        contributions.truncate(self.artifact.max_reasons);
        Ok(ScoreResult {
            score,
            band: self.artifact.bands.band(score),
            reasons: contributions,
            model_version: self.version.clone(),
            feature_summary: summary.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::names;

    /// A typical shop: every feature at its term's center.
    fn typical() -> FeatureSummary {
        let model = LogisticModel::embedded();
        let mut summary = FeatureSummary {
            rows: 200,
            ..FeatureSummary::default()
        };
        for term in &model.artifact().terms {
            let value = match term.transform {
                Transform::Identity => term.center,
                Transform::Log1p => term.center.exp_m1(),
            };
            summary.features.insert(term.feature.clone(), value);
        }
        summary
    }

    #[test]
    fn embedded_model_is_valid_and_versioned() {
        let model = LogisticModel::embedded();
        assert_eq!(model.version(), "fraud-lr/1");
        let artifact = model.artifact();
        assert_eq!(
            artifact.bands,
            Bands {
                medium: 0.3,
                high: 0.7
            }
        );
        for term in &artifact.terms {
            assert!(
                names::ALL.contains(&term.feature.as_str()),
                "{} is not a feature the accumulator produces",
                term.feature
            );
        }
    }

    #[test]
    fn a_typical_shop_scores_the_intercept_with_no_reasons() {
        let result = LogisticModel::embedded().score(&typical()).unwrap();
        let expected = 1.0 / (1.0 + 2.9f64.exp());
        assert!((result.score - expected).abs() < 1e-12, "{}", result.score);
        assert_eq!(result.band, Band::Low);
        assert!(result.reasons.is_empty(), "{:?}", result.reasons);
        assert_eq!(result.model_version, "fraud-lr/1");
    }

    #[test]
    fn chargebacks_and_mismatch_make_a_high_score_with_reasons() {
        let mut features = typical();
        features
            .features
            .insert(names::CHARGEBACK_RATE.into(), 0.045); // z = 4 -> +3.6
        features
            .features
            .insert(names::COUNTRY_MISMATCH_RATE.into(), 0.25); // z = 2 -> +1.4
        let result = LogisticModel::embedded().score(&features).unwrap();
        let logit: f64 = -2.9 + 0.9 * 4.0 + 0.7 * 2.0;
        assert!((result.score - 1.0 / (1.0 + (-logit).exp())).abs() < 1e-12);
        assert_eq!(result.band, Band::High);
        let reasons: Vec<&str> = result.reasons.iter().map(|r| r.feature.as_str()).collect();
        assert_eq!(
            reasons,
            [names::CHARGEBACK_RATE, names::COUNTRY_MISMATCH_RATE]
        );
        assert!((result.reasons[0].contribution - 3.6).abs() < 1e-12);
        assert_eq!(result.reasons[0].value, 0.045);
    }

    #[test]
    fn contributions_are_clipped() {
        let mut features = typical();
        features.features.insert(names::CHARGEBACK_RATE.into(), 1.0); // z = 99.5, clipped to 6
        let result = LogisticModel::embedded().score(&features).unwrap();
        assert!((result.reasons[0].contribution - 0.9 * 6.0).abs() < 1e-12);
    }

    #[test]
    fn bands_follow_the_documented_thresholds() {
        let bands = LogisticModel::embedded().artifact().bands;
        assert_eq!(bands.band(0.0), Band::Low);
        assert_eq!(bands.band(0.299_999), Band::Low);
        assert_eq!(bands.band(0.3), Band::Medium);
        assert_eq!(bands.band(0.699_999), Band::Medium);
        assert_eq!(bands.band(0.7), Band::High);
        assert_eq!(bands.band(1.0), Band::High);
    }

    #[test]
    fn missing_or_non_finite_features_are_errors() {
        let mut features = typical();
        features.features.remove(names::NIGHT_SHARE);
        let err = LogisticModel::embedded().score(&features).unwrap_err();
        assert!(err.to_string().contains("night_share"), "{err}");
        let mut features = typical();
        features
            .features
            .insert(names::NIGHT_SHARE.into(), f64::NAN);
        assert!(LogisticModel::embedded().score(&features).is_err());
    }

    #[test]
    fn invalid_artifacts_are_rejected_with_a_reason() {
        let valid: serde_json::Value = serde_json::from_str(EMBEDDED_MODEL_JSON).unwrap();
        let broken = |edit: &dyn Fn(&mut serde_json::Value)| {
            let mut v = valid.clone();
            edit(&mut v);
            LogisticModel::from_json(v.to_string().as_bytes())
                .unwrap_err()
                .to_string()
        };
        assert!(broken(&|v| v["format"] = "onnx".into()).contains("format"));
        assert!(broken(&|v| v["terms"][0]["scale"] = 0.0.into()).contains("scale > 0"));
        assert!(broken(&|v| v["terms"][1]["feature"] = "chargeback_rate".into()).contains("twice"));
        assert!(broken(&|v| v["bands"]["medium"] = 0.9.into()).contains("bands"));
        assert!(broken(&|v| v["terms"] = serde_json::json!([])).contains("no terms"));
        assert!(broken(&|v| v["version"] = "v".repeat(65).into()).contains("at most 64"));
        assert!(broken(&|v| v["max_reasons"] = 17.into()).contains("max_reasons <= 16"));
        assert!(broken(&|v| v["terms"][0]["feature"] = "f".repeat(65).into()).contains("longer"));
        assert!(broken(&|v| {
            let term = v["terms"][0].clone();
            v["terms"] = (0..65)
                .map(|i| {
                    let mut t = term.clone();
                    t["feature"] = format!("f{i}").into();
                    t
                })
                .collect();
        })
        .contains("at most 64 terms"));
        assert!(LogisticModel::from_json(b"{}").is_err());
    }
}
