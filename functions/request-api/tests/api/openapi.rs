//! docs/openapi.yaml and the handler agree. Every response any test in this binary sees is
//! checked against the document (`common::OpenApi::check`); these tests check the document's
//! own shape against the routes the handler knows.

use request_api::RouteKey;
use serde_json::{json, Value};

use crate::common::*;

#[test]
fn every_route_is_documented_and_every_documented_operation_is_served() {
    let doc = openapi();
    for route in RouteKey::ALL {
        assert!(
            doc.methods(route.template())
                .contains(route.method().as_str()),
            "{} is not in docs/openapi.yaml",
            route.name()
        );
    }
    for template in doc.paths() {
        for method in doc.methods(&template) {
            assert!(
                RouteKey::ALL
                    .iter()
                    .any(|r| r.template() == template && r.method().as_str() == method),
                "docs/openapi.yaml documents {method} {template}, which the handler does not serve"
            );
        }
    }
}

#[test]
fn every_reference_resolves() {
    let doc = openapi();
    fn walk(doc: &OpenApi, node: &Value) {
        match node {
            Value::Object(map) => {
                if node.get("$ref").is_some() {
                    doc.resolve(node);
                }
                map.values().for_each(|v| walk(doc, v));
            }
            Value::Array(items) => items.iter().for_each(|v| walk(doc, v)),
            _ => {}
        }
    }
    walk(doc, &doc.doc);
}

#[test]
fn the_unrouted_answers_are_documented() {
    let doc = openapi();
    for name in ["NotFound", "MethodNotAllowed"] {
        let response = &doc.doc["components"]["responses"][name];
        assert!(
            response["content"]["application/problem+json"].is_object(),
            "{name}"
        );
    }
    assert!(doc.doc["components"]["responses"]["MethodNotAllowed"]["headers"]["Allow"].is_object());
}

#[test]
fn documented_examples_match_their_schemas() {
    let doc = openapi();
    let responses = doc.doc["components"]["responses"].as_object().unwrap();
    let mut examples = 0;
    for (name, response) in responses {
        for (content_type, content) in response["content"].as_object().into_iter().flatten() {
            for (example, body) in content["examples"].as_object().into_iter().flatten() {
                let at = format!("{name:?} {content_type:?} example {example:?}");
                doc.validate(&body["value"], &content["schema"], &at);
                examples += 1;
            }
        }
    }
    assert!(examples >= 4, "{examples} examples checked");
}

/// The check is not a formality: a documented example, broken in each way the document rules
/// out, is refused, by keyword.
#[test]
fn a_response_that_breaks_the_document_is_refused() {
    let doc = openapi();
    let content =
        &doc.doc["components"]["responses"]["ScoreFinished"]["content"]["application/json"];
    let schema = &content["schema"];
    let done = &content["examples"]["done"]["value"];
    assert!(doc.violations(done, schema).is_empty());
    type Break = fn(&mut Value);
    let broken: [(&str, Break); 9] = [
        ("required", |v| {
            drop(v.as_object_mut().unwrap().remove("job_id"))
        }),
        ("enum", |v| v["status"] = json!("finished")),
        ("pattern", |v| v["job_id"] = json!("not-a-ulid")),
        ("maxLength", |v| v["subject_id"] = json!("s".repeat(129))),
        ("format", |v| v["computed_at"] = json!("yesterday")),
        ("maximum", |v| v["score"] = json!(1.5)),
        ("type", |v| v["feature_summary"]["rows"] = json!("420")),
        ("additionalProperties", |v| v["debug"] = json!(true)),
        ("additionalProperties", |v| {
            v["reasons"][0]["weight"] = json!(1)
        }),
    ];
    for (keyword, breaks) in broken {
        let mut value = done.clone();
        breaks(&mut value);
        let violations = doc.violations(&value, schema);
        assert!(!violations.is_empty(), "{keyword}: accepted {value}");
        let refused = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            doc.validate(&value, schema, "body")
        }));
        assert!(refused.is_err(), "{keyword}: validate did not fail");
    }
    // The problem type is a URI reference; a status outside the integers is not a status.
    let problem =
        &doc.doc["components"]["responses"]["BadRequest"]["content"]["application/problem+json"];
    let mut value = problem["examples"]["invalid-subject-id"]["value"].clone();
    assert!(doc.violations(&value, &problem["schema"]).is_empty());
    value["status"] = json!(400.5);
    assert!(!doc.violations(&value, &problem["schema"]).is_empty());
}
