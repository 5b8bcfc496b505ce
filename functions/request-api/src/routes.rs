//! Routing on the request's raw path, so the function answers the same whether API Gateway
//! sends it an explicit route (`GET /v1/scores/{subject_id}`, ...) or its `$default` catch-all.

use http::Method;

use crate::error::ApiError;

/// One operation of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RouteKey {
    GetScore,
    RefreshScore,
    BatchGet,
}

impl RouteKey {
    pub const ALL: [RouteKey; 3] = [Self::GetScore, Self::RefreshScore, Self::BatchGet];

    pub fn method(self) -> Method {
        match self {
            Self::GetScore => Method::GET,
            Self::RefreshScore | Self::BatchGet => Method::POST,
        }
    }

    /// The path template, as in docs/openapi.yaml and template.yaml.
    pub fn template(self) -> &'static str {
        match self {
            Self::GetScore => "/v1/scores/{subject_id}",
            Self::RefreshScore => "/v1/scores/{subject_id}/refresh",
            Self::BatchGet => "/v1/scores/batch-get",
        }
    }

    /// `METHOD /template`, as API Gateway writes a route key (used in logs).
    pub fn name(self) -> &'static str {
        match self {
            Self::GetScore => "GET /v1/scores/{subject_id}",
            Self::RefreshScore => "POST /v1/scores/{subject_id}/refresh",
            Self::BatchGet => "POST /v1/scores/batch-get",
        }
    }
}

/// A matched route and the (not yet validated) subject id segment it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matched<'a> {
    pub key: RouteKey,
    pub subject: Option<&'a str>,
}

const PREFIX: &str = "/v1/scores/";
const BATCH_GET: &str = "batch-get";

/// Matches a path (stage prefix already removed) and method.
///
/// `/v1/scores/batch-get` is the batch operation's path: as in OpenAPI (a concrete path wins
/// over a templated one), it does not also name a subject `batch-get` for `GET` (that subject
/// can still be read through batch-get, and refreshed through its own refresh path).
pub fn route<'a>(method: &Method, path: &'a str) -> Result<Matched<'a>, ApiError> {
    let not_found = || ApiError::NotFound;
    let rest = path.strip_prefix(PREFIX).ok_or_else(not_found)?;
    let segments: Vec<&str> = rest.split('/').collect();
    let (key, subject, allow) = match segments.as_slice() {
        [BATCH_GET] => (RouteKey::BatchGet, None, "POST"),
        [id] if !id.is_empty() => (RouteKey::GetScore, Some(*id), "GET"),
        [id, "refresh"] if !id.is_empty() => (RouteKey::RefreshScore, Some(*id), "POST"),
        _ => return Err(not_found()),
    };
    if *method != key.method() {
        return Err(ApiError::MethodNotAllowed {
            method: method.clone(),
            allow,
        });
    }
    Ok(Matched { key, subject })
}

/// Removes a named stage's leading segment (`/prod/v1/...` -> `/v1/...`). HTTP APIs put the
/// stage into `rawPath` unless it is `$default`.
pub fn strip_stage<'a>(path: &'a str, stage: Option<&str>) -> (&'a str, &'a str) {
    if let Some(stage) = stage.filter(|s| !s.is_empty() && *s != "$default") {
        if let Some(rest) = path.strip_prefix('/').and_then(|p| p.strip_prefix(stage)) {
            if rest.starts_with('/') {
                return (&path[..path.len() - rest.len()], rest);
            }
        }
    }
    ("", path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ok(method: Method, path: &str) -> (RouteKey, Option<&str>) {
        let m = route(&method, path).unwrap();
        (m.key, m.subject)
    }

    #[test]
    fn routes_the_three_operations() {
        assert_eq!(
            ok(Method::GET, "/v1/scores/shop-1"),
            (RouteKey::GetScore, Some("shop-1"))
        );
        assert_eq!(
            ok(Method::POST, "/v1/scores/shop-1/refresh"),
            (RouteKey::RefreshScore, Some("shop-1"))
        );
        assert_eq!(
            ok(Method::POST, "/v1/scores/batch-get"),
            (RouteKey::BatchGet, None)
        );
        assert_eq!(
            ok(Method::POST, "/v1/scores/batch-get/refresh"),
            (RouteKey::RefreshScore, Some("batch-get"))
        );
    }

    #[test]
    fn wrong_method_names_the_allowed_one() {
        for (method, path, allowed) in [
            (Method::POST, "/v1/scores/a", "GET"),
            (Method::DELETE, "/v1/scores/a", "GET"),
            (Method::GET, "/v1/scores/a/refresh", "POST"),
            (Method::GET, "/v1/scores/batch-get", "POST"),
        ] {
            match route(&method, path) {
                Err(ApiError::MethodNotAllowed { allow, .. }) => assert_eq!(allow, allowed),
                other => panic!("{method} {path}: {other:?}"),
            }
        }
    }

    #[test]
    fn unknown_paths_are_not_found() {
        for path in [
            "",
            "/",
            "/v1/scores",
            "/v1/scores/",
            "/v1/scores//refresh",
            "/v1/scores/a/",
            "/v1/scores/a/b",
            "/v1/scores/a/refresh/",
            "/v2/scores/a",
            "v1/scores/a",
        ] {
            assert!(
                matches!(route(&Method::GET, path), Err(ApiError::NotFound)),
                "{path}"
            );
        }
    }

    #[test]
    fn stage_prefix_is_removed_only_for_named_stages() {
        assert_eq!(
            strip_stage("/prod/v1/scores/a", Some("prod")),
            ("/prod", "/v1/scores/a")
        );
        assert_eq!(
            strip_stage("/v1/scores/a", Some("$default")),
            ("", "/v1/scores/a")
        );
        assert_eq!(
            strip_stage("/v1/scores/a", Some("prod")),
            ("", "/v1/scores/a")
        );
        assert_eq!(strip_stage("/prod", Some("prod")), ("", "/prod"));
        assert_eq!(
            strip_stage("/production/x", Some("prod")),
            ("", "/production/x")
        );
        assert_eq!(strip_stage("/é/x", Some("é")), ("/é", "/x"));
    }

    proptest! {
        #[test]
        fn routing_never_panics(method in "[A-Z]{1,8}", path in ".{0,64}", stage in proptest::option::of(".{0,8}")) {
            let method = Method::from_bytes(method.as_bytes()).unwrap();
            let (_, path) = strip_stage(&path, stage.as_deref());
            let _ = route(&method, path);
        }
    }
}
