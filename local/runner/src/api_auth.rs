//! IAM authorization of the HTTP API's routes (`ApiAuth=AWS_IAM`), as API Gateway checks it
//! before the function is invoked: a SigV4 signature for `execute-api` in the API's region, by
//! a known access key, made within five minutes of now.
//!
//! The signature is recomputed with the AWS SDK's own signer (`aws-sigv4`, the one clients sign
//! with) over the request as received: method, path, query, exactly the headers the
//! `Authorization` header lists as signed, the SHA-256 of the body received, and the request's
//! `X-Amz-Date`; then compared in constant time. The payload hash is always the body's own (as
//! for every service but S3): an `X-Amz-Content-Sha256` header is only a header, so a body that
//! was changed after signing fails even if that header was left alone.
//!
//! The one key the local API knows is the runner's own: the emulator's credentials
//! (`AWS_ACCESS_KEY_ID=test`, `AWS_SECRET_ACCESS_KEY=test` from `scripts/moto.sh env`), which
//! `make dev`'s shell and the tests sign with. Any other key is unknown, as an invalid key is to
//! API Gateway; execute-api:Invoke policies are not evaluated (the known key is the emulator's
//! administrator). Not played: presigned URLs (`X-Amz-Signature` in the query; such a request
//! is answered as unsigned), a `Date` header instead of `X-Amz-Date`, SigV4a.

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use chrono::{DateTime, NaiveDateTime, Utc};

/// The signing name of API Gateway's invoke endpoint.
pub const SERVICE: &str = "execute-api";

/// How far a request's time may be from the server's, either way.
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(5 * 60);

const ALGORITHM: &str = "AWS4-HMAC-SHA256";
const AMZ_DATE_FORMAT: &str = "%Y%m%dT%H%M%SZ";

/// Why API Gateway refuses a request to an IAM-authorized route (always `403`, answered by API
/// Gateway itself: the function is not invoked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denial {
    /// No `Authorization` header.
    MissingAuthentication,
    /// An `Authorization` header that is not a complete `AWS4-HMAC-SHA256` one, or no usable
    /// `X-Amz-Date`.
    IncompleteSignature(String),
    /// A credential scope for another service, region or day, or without `aws4_request`.
    InvalidScope(String),
    /// A request time more than [`MAX_CLOCK_SKEW`] before or after now.
    Expired(String),
    /// An access key (or session token) the API does not know.
    UnknownAccessKey,
    /// A signature other than the one the request's own content gives.
    SignatureMismatch,
}

impl Denial {
    /// The `message` of API Gateway's JSON body.
    pub fn message(&self) -> String {
        match self {
            Self::MissingAuthentication => "Forbidden".to_owned(),
            Self::IncompleteSignature(message)
            | Self::InvalidScope(message)
            | Self::Expired(message) => message.clone(),
            Self::UnknownAccessKey => "The security token included in the request is invalid.".to_owned(),
            Self::SignatureMismatch => "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.".to_owned(),
        }
    }

    /// API Gateway's `x-amzn-ErrorType` header.
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::MissingAuthentication => "ForbiddenException",
            Self::IncompleteSignature(_) => "IncompleteSignatureException",
            Self::InvalidScope(_) | Self::Expired(_) | Self::SignatureMismatch => {
                "InvalidSignatureException"
            }
            Self::UnknownAccessKey => "UnrecognizedClientException",
        }
    }
}

/// Checks SigV4 signatures for `execute-api` in one region, by the one set of credentials the
/// local API knows (see the module docs).
#[derive(Clone)]
pub struct IamAuth {
    credentials: Credentials,
    region: String,
}

impl std::fmt::Debug for IamAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IamAuth")
            .field("access_key_id", &self.credentials.access_key_id())
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

/// The `Authorization` header's three parameters.
struct Authorization<'a> {
    credential: &'a str,
    signed_headers: &'a str,
    signature: &'a str,
}

impl IamAuth {
    pub fn new(credentials: Credentials, region: &str) -> Self {
        Self {
            credentials,
            region: region.to_owned(),
        }
    }

    pub fn region(&self) -> &str {
        &self.region
    }

    /// The credentials callers must sign with (printed by `make dev` for its curl lines).
    pub fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    /// Whether API Gateway would let the request through to the function. `body` is the whole
    /// body as received; `now` is the server's clock.
    pub fn check(
        &self,
        parts: &http::request::Parts,
        body: &[u8],
        now: SystemTime,
    ) -> Result<(), Denial> {
        let header = parts
            .headers
            .get(http::header::AUTHORIZATION)
            .ok_or(Denial::MissingAuthentication)?;
        let header = header
            .to_str()
            .map_err(|_| incomplete(&[], "(not visible ASCII)"))?;
        let authorization = parse_authorization(header)?;
        let amz_date = parts
            .headers
            .get("x-amz-date")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                Denial::IncompleteSignature(format!(
                    "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. Authorization={header}"
                ))
            })?;
        let signed_at = NaiveDateTime::parse_from_str(amz_date, AMZ_DATE_FORMAT)
            .map(|t| t.and_utc())
            .map_err(|_| {
                Denial::IncompleteSignature(format!(
                    "X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\", not {amz_date:?}"
                ))
            })?;
        let access_key = self.check_scope(authorization.credential, amz_date)?;
        check_clock(signed_at, DateTime::<Utc>::from(now))?;
        self.check_identity(access_key, parts)?;
        let expected = self.signature(parts, body, &authorization, signed_at.into())?;
        match constant_time_eq(expected.as_bytes(), authorization.signature.as_bytes()) {
            true => Ok(()),
            false => Err(Denial::SignatureMismatch),
        }
    }

    /// `AKID/yyyymmdd/region/execute-api/aws4_request`: the scope API Gateway accepts. Returns
    /// the access key id.
    fn check_scope<'a>(&self, credential: &'a str, amz_date: &str) -> Result<&'a str, Denial> {
        let parts: Vec<&str> = credential.split('/').collect();
        let [access_key, date, region, service, terminator] = parts[..] else {
            return Err(Denial::IncompleteSignature(format!(
                "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '{credential}'"
            )));
        };
        let mut problems = String::new();
        if region != self.region {
            problems.push_str(&format!(
                "Credential should be scoped to a valid region, not '{region}'. "
            ));
        }
        if service != SERVICE {
            problems.push_str(&format!(
                "Credential should be scoped to correct service: '{SERVICE}'. "
            ));
        }
        if terminator != "aws4_request" {
            problems.push_str(&format!(
                "Credential should be scoped with a valid terminator: 'aws4_request', not '{terminator}'. "
            ));
        }
        let day = amz_date.get(..8).unwrap_or_default();
        if date != day {
            problems.push_str(&format!(
                "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{date}' != '{day}', from '{amz_date}'."
            ));
        }
        match problems.is_empty() {
            true => Ok(access_key),
            false => Err(Denial::InvalidScope(problems.trim_end().to_owned())),
        }
    }

    /// The access key must be the known one, with its session token when it has one (and none
    /// otherwise: temporary credentials the API never issued are as unknown as a wrong key).
    fn check_identity(&self, access_key: &str, parts: &http::request::Parts) -> Result<(), Denial> {
        let token = parts
            .headers
            .get("x-amz-security-token")
            .map(|v| v.as_bytes());
        let known_token = self.credentials.session_token().map(str::as_bytes);
        let token_matches = match (token, known_token) {
            (None, None) => true,
            (Some(given), Some(known)) => constant_time_eq(given, known),
            _ => false,
        };
        match access_key == self.credentials.access_key_id() && token_matches {
            true => Ok(()),
            false => Err(Denial::UnknownAccessKey),
        }
    }

    /// The signature the SDK's signer gives this request with the known secret, signing exactly
    /// the headers the client listed, at the client's time, in the client's scope.
    fn signature(
        &self,
        parts: &http::request::Parts,
        body: &[u8],
        authorization: &Authorization<'_>,
        signed_at: SystemTime,
    ) -> Result<String, Denial> {
        let mut headers = Vec::new();
        for name in authorization.signed_headers.split(';') {
            let mut values = parts.headers.get_all(name).iter().peekable();
            // A listed header that is not there cannot give the client's signature.
            values.peek().ok_or(Denial::SignatureMismatch)?;
            for value in values {
                let value = value.to_str().map_err(|_| Denial::SignatureMismatch)?;
                headers.push((name, value));
            }
        }
        // An origin-form request has no authority; the signer wants an absolute URI (the
        // `host` it signs comes from the headers above).
        let host = parts
            .headers
            .get(http::header::HOST)
            .and_then(|v| v.to_str().ok())
            .filter(|h| h.parse::<http::uri::Authority>().is_ok())
            .unwrap_or("localhost");
        let path_and_query = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        let uri = format!("http://{host}{path_and_query}");
        let signable = SignableRequest::new(
            parts.method.as_str(),
            uri,
            headers.into_iter(),
            SignableBody::Bytes(body),
        )
        .map_err(|_| Denial::SignatureMismatch)?;
        let mut settings = SigningSettings::default();
        // The client decided what it signed (curl signs what the SDK would exclude).
        settings.excluded_headers = None;
        let identity = self.credentials.clone().into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name(SERVICE)
            .time(signed_at)
            .settings(settings)
            .build()
            .expect("every signing parameter is set")
            .into();
        let (_, signature) = sign(signable, &params)
            .map_err(|_| Denial::SignatureMismatch)?
            .into_parts();
        Ok(signature)
    }
}

/// `AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...`.
fn parse_authorization(header: &str) -> Result<Authorization<'_>, Denial> {
    let Some(rest) = header
        .strip_prefix(ALGORITHM)
        .filter(|r| r.starts_with(' '))
    else {
        return Err(incomplete(&[], header));
    };
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for pair in rest.split(',') {
        match pair.trim().split_once('=') {
            Some(("Credential", v)) => credential = Some(v),
            Some(("SignedHeaders", v)) => signed_headers = Some(v),
            Some(("Signature", v)) => signature = Some(v),
            _ => {}
        }
    }
    match (credential, signed_headers, signature) {
        (Some(credential), Some(signed_headers), Some(signature)) => Ok(Authorization {
            credential,
            signed_headers,
            signature,
        }),
        _ => {
            let present: Vec<&str> = [
                credential.map(|_| "Credential"),
                signed_headers.map(|_| "SignedHeaders"),
                signature.map(|_| "Signature"),
            ]
            .into_iter()
            .flatten()
            .collect();
            Err(incomplete(&present, header))
        }
    }
}

/// API Gateway's message for an `Authorization` header missing some of its parameters (another
/// scheme than `AWS4-HMAC-SHA256` has none of them).
fn incomplete(present: &[&str], header: &str) -> Denial {
    let mut message = String::new();
    for parameter in ["Credential", "Signature", "SignedHeaders"] {
        if !present.contains(&parameter) {
            message.push_str(&format!(
                "Authorization header requires '{parameter}' parameter. "
            ));
        }
    }
    message.push_str(&format!("Authorization={header}"));
    Denial::IncompleteSignature(message)
}

/// The request's time within [`MAX_CLOCK_SKEW`] of now, with API Gateway's messages.
fn check_clock(signed_at: DateTime<Utc>, now: DateTime<Utc>) -> Result<(), Denial> {
    let skew = chrono::Duration::from_std(MAX_CLOCK_SKEW).expect("five minutes");
    let format = |t: DateTime<Utc>| t.format(AMZ_DATE_FORMAT).to_string();
    if signed_at < now - skew {
        return Err(Denial::Expired(format!(
            "Signature expired: {} is now earlier than {} ({} - 5 min.)",
            format(signed_at),
            format(now - skew),
            format(now)
        )));
    }
    if signed_at > now + skew {
        return Err(Denial::Expired(format!(
            "Signature not yet current: {} is still later than {} ({} + 5 min.)",
            format(signed_at),
            format(now + skew),
            format(now)
        )));
    }
    Ok(())
}

/// Equality that takes as long whatever the first differing byte (lengths are not secret: a
/// SigV4 signature is always 64 hex digits).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_750_000_000;

    fn at(seconds: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(seconds)
    }

    fn known() -> IamAuth {
        IamAuth::new(
            Credentials::new("test", "test", None, None, "emulator"),
            "us-east-1",
        )
    }

    /// A request as a client sends it, signed by the SDK's signer with `credentials` in
    /// `region` at `time` (headers: host, and those given).
    fn signed(
        method: &str,
        uri: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        credentials: &Credentials,
        region: &str,
        time: SystemTime,
    ) -> http::request::Parts {
        let mut request = http::Request::builder()
            .method(method)
            .uri(uri)
            .header("host", "127.0.0.1:3000");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let mut request = request.body(()).unwrap();
        let signable = SignableRequest::new(
            method,
            format!("http://127.0.0.1:3000{uri}"),
            request
                .headers()
                .iter()
                .map(|(n, v)| (n.as_str(), v.to_str().unwrap())),
            SignableBody::Bytes(body),
        )
        .unwrap();
        let identity = credentials.clone().into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(region)
            .name(SERVICE)
            .time(time)
            .settings(SigningSettings::default())
            .build()
            .unwrap()
            .into();
        let (instructions, _) = sign(signable, &params).unwrap().into_parts();
        instructions.apply_to_request_http1x(&mut request);
        request.into_parts().0
    }

    fn get(uri: &str, credentials: &Credentials, time: SystemTime) -> http::request::Parts {
        signed("GET", uri, &[], b"", credentials, "us-east-1", time)
    }

    fn test_key() -> Credentials {
        Credentials::new("test", "test", None, None, "client")
    }

    #[test]
    fn a_request_signed_by_the_known_key_passes() {
        let parts = get("/v1/scores/shop-1?wait=3&a=b", &test_key(), at(NOW));
        let body = br#"{"subject_ids":["a"]}"#;
        let post = signed(
            "POST",
            "/v1/scores/batch-get",
            &[("content-type", "application/json")],
            body,
            &test_key(),
            "us-east-1",
            at(NOW),
        );

        assert_eq!(known().check(&parts, b"", at(NOW + 60)), Ok(()));
        assert_eq!(known().check(&post, body, at(NOW)), Ok(()));
    }

    #[test]
    fn anything_changed_after_signing_is_a_mismatch() {
        let body = br#"{"subject_ids":["a"]}"#;
        let post = || {
            signed(
                "POST",
                "/v1/scores/batch-get",
                &[("content-type", "application/json")],
                body,
                &test_key(),
                "us-east-1",
                at(NOW),
            )
        };
        let mut header = post();
        header
            .headers
            .insert("content-type", "text/plain".parse().unwrap());
        let mut path = post();
        path.uri = "/v1/scores/batch-get2".parse().unwrap();
        let mut method = post();
        method.method = http::Method::PUT;
        let mut listed_but_gone = post();
        listed_but_gone.headers.remove("content-type");

        for (what, parts, sent) in [
            ("body", post(), &br#"{"subject_ids":["b"]}"#[..]),
            ("header", header, body),
            ("path", path, body),
            ("method", method, body),
            ("signed header removed", listed_but_gone, body),
        ] {
            assert_eq!(
                known().check(&parts, sent, at(NOW)),
                Err(Denial::SignatureMismatch),
                "{what}"
            );
        }
        let wrong_secret = Credentials::new("test", "other", None, None, "client");
        assert_eq!(
            known().check(&get("/", &wrong_secret, at(NOW)), b"", at(NOW)),
            Err(Denial::SignatureMismatch)
        );
    }

    #[test]
    fn an_unsigned_request_is_forbidden_and_a_malformed_one_incomplete() {
        let (unsigned, ()) = http::Request::get("/v1/scores/shop-1")
            .body(())
            .unwrap()
            .into_parts();
        let (bearer, ()) = http::Request::get("/")
            .header("authorization", "Bearer abc")
            .header("x-amz-date", "20250615T000000Z")
            .body(())
            .unwrap()
            .into_parts();
        let mut no_date = get("/", &test_key(), at(NOW));
        no_date.headers.remove("x-amz-date");

        let forbidden = known().check(&unsigned, b"", at(NOW)).unwrap_err();
        let incomplete = known().check(&bearer, b"", at(NOW)).unwrap_err();
        let dateless = known().check(&no_date, b"", at(NOW)).unwrap_err();

        assert_eq!(forbidden, Denial::MissingAuthentication);
        assert_eq!(forbidden.message(), "Forbidden");
        assert_eq!(forbidden.error_type(), "ForbiddenException");
        assert_eq!(incomplete.error_type(), "IncompleteSignatureException");
        assert!(incomplete
            .message()
            .starts_with("Authorization header requires 'Credential' parameter. Authorization header requires 'Signature' parameter. Authorization header requires 'SignedHeaders' parameter."));
        assert!(
            dateless
                .message()
                .contains("'X-Amz-Date' or a 'Date' header"),
            "{dateless:?}"
        );
    }

    #[test]
    fn only_the_known_key_and_its_token_are_valid() {
        let stranger = Credentials::new("AKIDEXAMPLE", "secret", None, None, "client");
        let with_token = Credentials::new("test", "test", Some("token".into()), None, "client");
        let known_with_token = IamAuth::new(with_token.clone(), "us-east-1");
        let other_token = Credentials::new("test", "test", Some("other".into()), None, "client");

        let denial = known()
            .check(&get("/", &stranger, at(NOW)), b"", at(NOW))
            .unwrap_err();
        assert_eq!(denial, Denial::UnknownAccessKey);
        assert_eq!(
            denial.message(),
            "The security token included in the request is invalid."
        );
        assert_eq!(
            known().check(&get("/", &with_token, at(NOW)), b"", at(NOW)),
            Err(Denial::UnknownAccessKey),
            "a token for a key that has none"
        );
        assert_eq!(
            known_with_token.check(&get("/", &other_token, at(NOW)), b"", at(NOW)),
            Err(Denial::UnknownAccessKey)
        );
        assert_eq!(
            known_with_token.check(&get("/", &with_token, at(NOW)), b"", at(NOW)),
            Ok(())
        );
    }

    #[test]
    fn the_request_time_may_be_five_minutes_off_either_way() {
        let parts = get("/", &test_key(), at(NOW));

        assert_eq!(known().check(&parts, b"", at(NOW + 299)), Ok(()));
        assert_eq!(known().check(&parts, b"", at(NOW - 299)), Ok(()));
        let expired = known().check(&parts, b"", at(NOW + 301)).unwrap_err();
        let early = known().check(&parts, b"", at(NOW - 301)).unwrap_err();

        // NOW is 2025-06-15T15:06:40Z.
        assert_eq!(
            expired.message(),
            "Signature expired: 20250615T150640Z is now earlier than 20250615T150641Z (20250615T151141Z - 5 min.)"
        );
        assert_eq!(expired.error_type(), "InvalidSignatureException");
        assert_eq!(
            early.message(),
            "Signature not yet current: 20250615T150640Z is still later than 20250615T150639Z (20250615T150139Z + 5 min.)"
        );
    }

    #[test]
    fn the_scope_must_be_execute_api_in_the_apis_region_on_the_requests_day() {
        let elsewhere = signed("GET", "/", &[], b"", &test_key(), "eu-west-1", at(NOW));
        let mut s3 = get("/", &test_key(), at(NOW));
        let header = s3.headers["authorization"]
            .to_str()
            .unwrap()
            .replace("/execute-api/", "/s3/");
        s3.headers.insert("authorization", header.parse().unwrap());
        let mut other_day = get("/", &test_key(), at(NOW));
        let header = other_day.headers["authorization"]
            .to_str()
            .unwrap()
            .replace("/20250615/", "/20250614/");
        other_day
            .headers
            .insert("authorization", header.parse().unwrap());

        let region = known().check(&elsewhere, b"", at(NOW)).unwrap_err();
        let service = known().check(&s3, b"", at(NOW)).unwrap_err();
        let day = known().check(&other_day, b"", at(NOW)).unwrap_err();

        assert_eq!(
            region.message(),
            "Credential should be scoped to a valid region, not 'eu-west-1'."
        );
        assert_eq!(
            service.message(),
            "Credential should be scoped to correct service: 'execute-api'."
        );
        assert!(day
            .message()
            .starts_with("Date in Credential scope does not match"));
        assert_eq!(region.error_type(), "InvalidSignatureException");
    }

    #[test]
    fn equality_is_exact() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert!(constant_time_eq(b"", b""));
    }
}
