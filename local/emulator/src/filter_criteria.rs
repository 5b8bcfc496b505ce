//! Lambda event filtering (`FilterCriteria`), as the local runner applies it to records before
//! building a batch, the way an event source mapping does.
//!
//! A pattern is EventBridge's pattern language in the subset Lambda supports:
//!
//! | rule | pattern | matches |
//! |---|---|---|
//! | and | `{"a": [..], "b": [..]}` | every field matches |
//! | nested | `{"a": {"b": [..]}}` | the path `a.b` |
//! | or | `{"a": ["x", "y"]}`, `{"$or": [{..}, {..}]}` | any alternative |
//! | equals | `"x"`, `5`, `true` | the same string, number (numerically), bool |
//! | null / empty | `null`, `""` | a JSON null / an empty string |
//! | exists | `{"exists": true}` / `{"exists": false}` | the field is present / absent |
//! | begins / ends with | `{"prefix": "x"}`, `{"suffix": "x"}` (or `{"prefix": {"equals-ignore-case": "x"}}`) | strings |
//! | ignore case | `{"equals-ignore-case": "x"}` | strings |
//! | not | `{"anything-but": "x" \| ["x", 5] \| {"prefix": "x"} \| {"suffix": "x"} \| {"equals-ignore-case": ..}}` | a present value that is none of these |
//! | numeric | `{"numeric": [">", 0, "<=", 5]}`, `{"numeric": ["=", 3]}` | JSON numbers only |
//!
//! As in EventBridge, arrays in the event are sets: a field matches when any element matches,
//! and each path is matched on its own (the event is seen as flattened `path -> values`).
//! DynamoDB `N` values are strings in the record (`{"N": "5"}`), so `numeric` never matches
//! them: the same trap as in AWS.
//!
//! The filters of one event source are OR'ed ([`matches_any`]); an event source without
//! filters passes everything. A pattern outside this subset is rejected by [`validate`] and
//! matches nothing.

use serde_json::{Map, Value};

/// Why a pattern is not one Lambda would accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid filter pattern at {path}: {message}")]
pub struct PatternError {
    pub path: String,
    pub message: String,
}

/// Whether `event` (a record as Lambda serializes it) matches the filter `pattern`.
pub fn matches(pattern: &Value, event: &Value) -> bool {
    match pattern {
        Value::Object(fields) => validate(pattern).is_ok() && object_matches(fields, &[event]),
        _ => false,
    }
}

/// Whether `event` passes an event source's filters: any of them, or all events when there
/// are none.
pub fn matches_any(patterns: &[Value], event: &Value) -> bool {
    patterns.is_empty() || patterns.iter().any(|p| matches(p, event))
}

/// Checks that `pattern` uses only the supported syntax (leaf rules in arrays, known operators).
pub fn validate(pattern: &Value) -> Result<(), PatternError> {
    match pattern {
        Value::Object(fields) => validate_object(fields, "$"),
        _ => Err(error("$", "a pattern is a JSON object")),
    }
}

fn error(path: &str, message: impl Into<String>) -> PatternError {
    PatternError {
        path: path.to_owned(),
        message: message.into(),
    }
}

fn validate_object(fields: &Map<String, Value>, path: &str) -> Result<(), PatternError> {
    if fields.is_empty() {
        return Err(error(path, "an empty object matches nothing"));
    }
    for (key, value) in fields {
        let here = format!("{path}.{key}");
        match (key.as_str(), value) {
            ("$or", Value::Array(alternatives)) if alternatives.len() >= 2 => {
                for (i, alternative) in alternatives.iter().enumerate() {
                    match alternative {
                        Value::Object(o) => validate_object(o, &format!("{here}[{i}]"))?,
                        _ => return Err(error(&here, "$or takes objects")),
                    }
                }
            }
            ("$or", _) => return Err(error(&here, "$or takes an array of at least 2 objects")),
            (_, Value::Object(o)) => validate_object(o, &here)?,
            (_, Value::Array(rules)) if !rules.is_empty() => {
                for rule in rules {
                    validate_rule(rule, &here)?;
                }
            }
            (_, Value::Array(_)) => return Err(error(&here, "an empty rule list")),
            _ => return Err(error(&here, "a leaf rule must be an array")),
        }
    }
    Ok(())
}

fn validate_rule(rule: &Value, path: &str) -> Result<(), PatternError> {
    let Value::Object(op) = rule else {
        return match rule {
            Value::Array(_) => Err(error(path, "nested arrays are not rules")),
            _ => Ok(()), // literal: string, number, bool, null
        };
    };
    if op.len() != 1 {
        return Err(error(path, "an operator object has exactly one key"));
    }
    let (name, arg) = op.iter().next().expect("one key");
    let ok = match name.as_str() {
        "exists" => arg.is_boolean(),
        "prefix" | "suffix" => arg.is_string() || is_ignore_case(arg),
        "equals-ignore-case" => arg.is_string(),
        "numeric" => numeric_conditions(arg).is_some(),
        "anything-but" => match arg {
            Value::String(_) | Value::Number(_) => true,
            Value::Array(items) => {
                !items.is_empty() && items.iter().all(|i| i.is_string() || i.is_number())
            }
            Value::Object(inner) if inner.len() == 1 => {
                let (k, v) = inner.iter().next().expect("one key");
                match k.as_str() {
                    "prefix" | "suffix" => v.is_string(),
                    "equals-ignore-case" => {
                        v.is_string()
                            || v.as_array()
                                .is_some_and(|a| !a.is_empty() && a.iter().all(Value::is_string))
                    }
                    _ => false,
                }
            }
            _ => false,
        },
        _ => return Err(error(path, format!("unsupported operator {name:?}"))),
    };
    if ok {
        Ok(())
    } else {
        Err(error(path, format!("malformed {name:?} operator: {arg}")))
    }
}

fn is_ignore_case(arg: &Value) -> bool {
    arg.as_object()
        .is_some_and(|o| o.len() == 1 && o.get("equals-ignore-case").is_some_and(Value::is_string))
}

/// `[">", 0, "<=", 5]` as (operator, bound) pairs.
fn numeric_conditions(arg: &Value) -> Option<Vec<(&str, f64)>> {
    let items = arg.as_array()?;
    if items.is_empty() || items.len() % 2 != 0 || items.len() > 4 {
        return None;
    }
    items
        .chunks(2)
        .map(|pair| {
            let op = pair[0].as_str()?;
            let bound = pair[1].as_f64()?;
            matches!(op, "=" | "<" | "<=" | ">" | ">=").then_some((op, bound))
        })
        .collect()
}

/// The values under `key` of every object in `parents`; arrays are flattened (they are sets).
fn children<'a>(parents: &[&'a Value], key: &str) -> Vec<&'a Value> {
    let mut out = Vec::new();
    for parent in parents {
        if let Some(value) = parent.get(key) {
            flatten(value, &mut out);
        }
    }
    out
}

fn flatten<'a>(value: &'a Value, out: &mut Vec<&'a Value>) {
    match value {
        Value::Array(items) => items.iter().for_each(|i| flatten(i, out)),
        other => out.push(other),
    }
}

fn object_matches(fields: &Map<String, Value>, parents: &[&Value]) -> bool {
    fields
        .iter()
        .all(|(key, pattern)| match (key.as_str(), pattern) {
            ("$or", Value::Array(alternatives)) => alternatives.iter().any(|alternative| {
                alternative
                    .as_object()
                    .is_some_and(|o| object_matches(o, parents))
            }),
            (_, Value::Object(nested)) => object_matches(nested, &children(parents, key)),
            (_, Value::Array(rules)) => {
                let values = children(parents, key);
                rules.iter().any(|rule| rule_matches(rule, &values))
            }
            _ => false,
        })
}

/// One rule against the values found at its path (none when the field is absent).
fn rule_matches(rule: &Value, values: &[&Value]) -> bool {
    if let Some(exists) = rule.get("exists").and_then(Value::as_bool) {
        return exists != values.is_empty();
    }
    values.iter().any(|value| leaf_matches(rule, value))
}

fn leaf_matches(rule: &Value, value: &Value) -> bool {
    match rule {
        Value::Object(op) => {
            let Some((name, arg)) = op.iter().next() else {
                return false;
            };
            match name.as_str() {
                "prefix" => string_test(arg, value, |v, p| v.starts_with(p)),
                "suffix" => string_test(arg, value, |v, s| v.ends_with(s)),
                "equals-ignore-case" => match (arg, value) {
                    (Value::String(a), Value::String(v)) => a.to_lowercase() == v.to_lowercase(),
                    _ => false,
                },
                "numeric" => match (numeric_conditions(arg), value.as_f64()) {
                    (Some(conditions), Some(v)) if value.is_number() => {
                        conditions.iter().all(|(op, bound)| match *op {
                            "=" => v == *bound,
                            "<" => v < *bound,
                            "<=" => v <= *bound,
                            ">" => v > *bound,
                            ">=" => v >= *bound,
                            _ => false,
                        })
                    }
                    _ => false,
                },
                "anything-but" => anything_but(arg, value),
                _ => false,
            }
        }
        literal => literal_equals(literal, value),
    }
}

/// `prefix`/`suffix` with a plain string or `{"equals-ignore-case": ..}`.
fn string_test(arg: &Value, value: &Value, test: impl Fn(&str, &str) -> bool) -> bool {
    let Value::String(v) = value else {
        return false;
    };
    match arg {
        Value::String(a) => test(v, a),
        Value::Object(o) => match o.get("equals-ignore-case") {
            Some(Value::String(a)) => test(&v.to_lowercase(), &a.to_lowercase()),
            _ => false,
        },
        _ => false,
    }
}

fn anything_but(arg: &Value, value: &Value) -> bool {
    match arg {
        Value::Array(excluded) => !excluded.iter().any(|e| literal_equals(e, value)),
        Value::Object(inner) => {
            let Some((k, v)) = inner.iter().next() else {
                return false;
            };
            let Value::String(text) = value else {
                // anything-but on strings lets any non-string value through
                return true;
            };
            match (k.as_str(), v) {
                ("prefix", Value::String(p)) => !text.starts_with(p.as_str()),
                ("suffix", Value::String(s)) => !text.ends_with(s.as_str()),
                ("equals-ignore-case", Value::String(s)) => text.to_lowercase() != s.to_lowercase(),
                ("equals-ignore-case", Value::Array(list)) => !list
                    .iter()
                    .filter_map(Value::as_str)
                    .any(|s| s.to_lowercase() == text.to_lowercase()),
                _ => false,
            }
        }
        single => !literal_equals(single, value),
    }
}

fn literal_equals(rule: &Value, value: &Value) -> bool {
    match (rule, value) {
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (Value::Object(_) | Value::Array(_), _) | (_, Value::Object(_) | Value::Array(_)) => false,
        (a, b) => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The ScoresTable stream filter of template.yaml.
    fn finished() -> Value {
        json!({"dynamodb": {"NewImage": {"status": {"S": ["done", "failed"]}}}})
    }

    fn stream_record(event_name: &str, new_status: Option<&str>) -> Value {
        let mut dynamodb = json!({
            "Keys": {"subject_id": {"S": "shop-1"}},
            "SequenceNumber": "100",
            "SizeBytes": 10,
            "StreamViewType": "NEW_AND_OLD_IMAGES",
            "OldImage": {"subject_id": {"S": "shop-1"}, "status": {"S": "running"}}
        });
        if let Some(status) = new_status {
            dynamodb["NewImage"] = json!({"subject_id": {"S": "shop-1"}, "status": {"S": status}});
        }
        json!({"eventName": event_name, "eventSource": "aws:dynamodb", "dynamodb": dynamodb})
    }

    #[test]
    fn the_template_filter_passes_finished_images_only() {
        assert!(matches(&finished(), &stream_record("MODIFY", Some("done"))));
        assert!(matches(
            &finished(),
            &stream_record("INSERT", Some("failed"))
        ));
        assert!(!matches(
            &finished(),
            &stream_record("MODIFY", Some("running"))
        ));
        assert!(!matches(
            &finished(),
            &stream_record("MODIFY", Some("pending"))
        ));
        assert!(!matches(&finished(), &stream_record("REMOVE", None)));
    }

    #[test]
    fn type_of_a_dynamodb_value_is_part_of_the_path() {
        let record = json!({"dynamodb": {"NewImage": {"status": {"N": "1"}}}});
        assert!(!matches(
            &json!({"dynamodb": {"NewImage": {"status": {"S": ["1"]}}}}),
            &record
        ));
        // DynamoDB numbers are strings: numeric rules never see them.
        assert!(!matches(
            &json!({"dynamodb": {"NewImage": {"status": {"N": [{"numeric": ["=", 1]}]}}}}),
            &record
        ));
        assert!(matches(
            &json!({"dynamodb": {"NewImage": {"status": {"N": ["1"]}}}}),
            &record
        ));
    }

    #[test]
    fn every_field_must_match() {
        let pattern =
            json!({"eventName": ["MODIFY"], "dynamodb": {"NewImage": {"status": {"S": ["done"]}}}});
        assert!(matches(&pattern, &stream_record("MODIFY", Some("done"))));
        assert!(!matches(&pattern, &stream_record("INSERT", Some("done"))));
    }

    #[test]
    fn exists_tests_presence() {
        let present = json!({"a": {"b": 1}});
        assert!(matches(&json!({"a": {"b": [{"exists": true}]}}), &present));
        assert!(!matches(
            &json!({"a": {"b": [{"exists": false}]}}),
            &present
        ));
        assert!(matches(&json!({"a": {"c": [{"exists": false}]}}), &present));
        // an absent parent means an absent field
        assert!(matches(&json!({"x": {"y": [{"exists": false}]}}), &present));
        assert!(!matches(&json!({"x": {"y": [{"exists": true}]}}), &present));
        // INSERT records have no OldImage
        let insert = stream_record("INSERT", Some("done"));
        let mut insert = insert;
        insert["dynamodb"]
            .as_object_mut()
            .unwrap()
            .remove("OldImage");
        assert!(matches(
            &json!({"dynamodb": {"OldImage": {"status": {"S": [{"exists": false}]}}}}),
            &insert
        ));
    }

    #[test]
    fn prefix_suffix_and_ignore_case() {
        let event = json!({"key": "datasets/shop-1/a.ndjson.gz", "state": "Done"});
        assert!(matches(&json!({"key": [{"prefix": "datasets/"}]}), &event));
        assert!(!matches(&json!({"key": [{"prefix": "models/"}]}), &event));
        assert!(matches(&json!({"key": [{"suffix": ".gz"}]}), &event));
        assert!(matches(
            &json!({"key": [{"prefix": {"equals-ignore-case": "DATASETS/"}}]}),
            &event
        ));
        assert!(matches(
            &json!({"state": [{"equals-ignore-case": "done"}]}),
            &event
        ));
        assert!(!matches(&json!({"state": ["done"]}), &event));
        // string operators never match numbers
        assert!(!matches(
            &json!({"n": [{"prefix": "1"}]}),
            &json!({"n": 12})
        ));
    }

    #[test]
    fn anything_but_needs_a_present_value_that_differs() {
        let event = json!({"status": "running", "n": 3});
        assert!(matches(
            &json!({"status": [{"anything-but": "done"}]}),
            &event
        ));
        assert!(!matches(
            &json!({"status": [{"anything-but": ["running", "done"]}]}),
            &event
        ));
        assert!(matches(&json!({"n": [{"anything-but": [1, 2]}]}), &event));
        assert!(!matches(&json!({"n": [{"anything-but": 3}]}), &event));
        assert!(!matches(
            &json!({"status": [{"anything-but": {"prefix": "run"}}]}),
            &event
        ));
        assert!(matches(
            &json!({"status": [{"anything-but": {"suffix": "ed"}}]}),
            &event
        ));
        assert!(!matches(
            &json!({"status": [{"anything-but": {"equals-ignore-case": ["RUNNING"]}}]}),
            &event
        ));
        // absent field: anything-but does not match
        assert!(!matches(
            &json!({"missing": [{"anything-but": "x"}]}),
            &event
        ));
    }

    #[test]
    fn numeric_ranges_on_json_numbers() {
        let event = json!({"price": 150.5, "text": "150"});
        assert!(matches(
            &json!({"price": [{"numeric": [">", 0, "<=", 150.5]}]}),
            &event
        ));
        assert!(!matches(
            &json!({"price": [{"numeric": [">", 150.5]}]}),
            &event
        ));
        assert!(matches(
            &json!({"price": [{"numeric": ["=", 150.5]}]}),
            &event
        ));
        assert!(!matches(
            &json!({"text": [{"numeric": ["=", 150]}]}),
            &event
        ));
        // numbers compare numerically in plain equality too
        assert!(matches(&json!({"n": [5]}), &json!({"n": 5.0})));
    }

    #[test]
    fn null_empty_and_booleans_are_literals() {
        let event = json!({"a": null, "b": "", "c": false});
        assert!(matches(&json!({"a": [null]}), &event));
        assert!(matches(&json!({"b": [""]}), &event));
        assert!(matches(&json!({"c": [false]}), &event));
        assert!(!matches(&json!({"c": [true]}), &event));
        assert!(!matches(&json!({"b": [null]}), &event));
    }

    #[test]
    fn arrays_in_the_event_are_sets() {
        let event = json!({"tags": ["a", "b"], "items": [{"k": "x"}, {"k": "y"}]});
        assert!(matches(&json!({"tags": ["b"]}), &event));
        assert!(!matches(&json!({"tags": ["c"]}), &event));
        assert!(matches(&json!({"items": {"k": ["y"]}}), &event));
    }

    #[test]
    fn or_across_fields_and_across_filters() {
        let pattern = json!({"$or": [{"a": ["1"]}, {"b": ["2"]}]});
        assert!(matches(&pattern, &json!({"a": "1"})));
        assert!(matches(&pattern, &json!({"b": "2"})));
        assert!(!matches(&pattern, &json!({"a": "2"})));

        let filters = [json!({"a": ["1"]}), json!({"b": ["2"]})];
        assert!(matches_any(&filters, &json!({"b": "2"})));
        assert!(!matches_any(&filters, &json!({"c": "3"})));
        assert!(matches_any(&[], &json!({"c": "3"})));
    }

    #[test]
    fn invalid_patterns_are_rejected_and_match_nothing() {
        for bad in [
            json!({"a": "x"}),
            json!({"a": []}),
            json!({"a": [{"wildcard": "*"}]}),
            json!({"a": [{"numeric": [">"]}]}),
            json!({"a": [{"exists": "yes"}]}),
            json!({"$or": [{"a": ["1"]}]}),
            json!(["a"]),
            json!({}),
        ] {
            assert!(validate(&bad).is_err(), "{bad} should be invalid");
            assert!(!matches(&bad, &json!({"a": "x"})), "{bad} matched");
        }
        assert!(validate(&finished()).is_ok());
    }
}
