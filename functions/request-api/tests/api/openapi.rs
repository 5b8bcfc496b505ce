//! docs/openapi.yaml and the handler agree. Every response any test in this binary sees is
//! checked against the document (`common::OpenApi::check`); these tests check the document's
//! own shape against the routes the handler knows.

use request_api::RouteKey;

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
    fn walk(doc: &OpenApi, node: &serde_norway::Value) {
        match node {
            serde_norway::Value::Mapping(map) => {
                if node.get("$ref").is_some() {
                    doc.resolve(node);
                }
                map.values().for_each(|v| walk(doc, v));
            }
            serde_norway::Value::Sequence(items) => items.iter().for_each(|v| walk(doc, v)),
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
            response["content"]["application/problem+json"].is_mapping(),
            "{name}"
        );
    }
    assert!(
        doc.doc["components"]["responses"]["MethodNotAllowed"]["headers"]["Allow"].is_mapping()
    );
}

#[test]
fn documented_examples_match_their_schemas() {
    let doc = openapi();
    let responses = doc.doc["components"]["responses"].as_mapping().unwrap();
    for (name, response) in responses {
        for (content_type, content) in response["content"].as_mapping().into_iter().flatten() {
            for (example, body) in content["examples"].as_mapping().into_iter().flatten() {
                let value: serde_json::Value =
                    serde_json::to_value(&body["value"]).expect("YAML example as JSON");
                let at = format!("{name:?} {content_type:?} example {example:?}");
                doc.validate(&value, &content["schema"], &at);
            }
        }
    }
}
