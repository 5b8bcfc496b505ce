//! Reading the CloudWatch embedded metric format (EMF) documents a handler wrote
//! (`shared::telemetry::flush_metrics`), so tests can check each metric as CloudWatch would
//! extract it: namespace, dimension set, unit and values.

use serde_json::Value;
use shared::telemetry::NAMESPACE;

/// Installs this process's metrics recorder for a test binary (once; later calls are no-ops).
pub fn record(function: &str) {
    shared::telemetry::init_metrics(NAMESPACE, function).expect("the metrics recorder installs");
}

/// Flushes what the process's handlers recorded since the last flush, and reads it.
pub fn flush() -> Emf {
    let mut output = Vec::new();
    shared::telemetry::flush_metrics("test", &mut output);
    Emf::parse(&output).expect("EMF documents")
}

/// Every EMF document of a flush, one JSON object per line.
#[derive(Debug)]
pub struct Emf {
    pub documents: Vec<Value>,
}

impl Emf {
    /// Parses the lines; a line that is not an EMF document is an error (it would be a plain
    /// log line to CloudWatch, and its metrics lost).
    pub fn parse(output: &[u8]) -> Result<Self, String> {
        let text = std::str::from_utf8(output).map_err(|e| e.to_string())?;
        let mut documents = Vec::new();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let document: Value = serde_json::from_str(line).map_err(|e| format!("{e}: {line}"))?;
            let directives = &document["_aws"]["CloudWatchMetrics"];
            if !document["_aws"]["Timestamp"].is_u64() || !directives.is_array() {
                return Err(format!("not an EMF document: {line}"));
            }
            documents.push(document);
        }
        Ok(Self { documents })
    }

    /// The sum of `metric`'s values (a histogram's samples summed) over the documents whose
    /// dimensions are exactly `Function` plus `labels`, in the Deferred namespace. `None` when
    /// no such document names the metric.
    pub fn total(&self, metric: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let mut total = None;
        for document in &self.documents {
            if !Self::declares(document, metric, labels) {
                continue;
            }
            let value = match &document[metric] {
                Value::Array(values) => values.iter().filter_map(Value::as_f64).sum(),
                other => other.as_f64()?,
            };
            *total.get_or_insert(0.0) += value;
        }
        total
    }

    /// The number of samples of a histogram `metric` with these labels.
    pub fn samples(&self, metric: &str, labels: &[(&str, &str)]) -> usize {
        self.documents
            .iter()
            .filter(|d| Self::declares(d, metric, labels))
            .map(|d| d[metric].as_array().map_or(1, Vec::len))
            .sum()
    }

    fn declares(document: &Value, metric: &str, labels: &[(&str, &str)]) -> bool {
        let Some(directive) = document["_aws"]["CloudWatchMetrics"]
            .as_array()
            .and_then(|d| d.first())
        else {
            return false;
        };
        let names_metric = directive["Metrics"]
            .as_array()
            .is_some_and(|m| m.iter().any(|m| m["Name"] == metric));
        let dimensions: Vec<&str> = directive["Dimensions"][0]
            .as_array()
            .map(|d| d.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let mut expected: Vec<&str> = labels.iter().map(|(k, _)| *k).collect();
        expected.push("Function");
        let mut actual = dimensions.clone();
        expected.sort_unstable();
        actual.sort_unstable();
        directive["Namespace"] == NAMESPACE
            && names_metric
            && expected == actual
            && document["Function"].is_string()
            && labels.iter().all(|(k, v)| document[*k] == *v)
    }
}
