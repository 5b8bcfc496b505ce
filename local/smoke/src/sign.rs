//! SigV4 for the HTTP API (service `execute-api`), with the AWS SDK's own signer and the caller's
//! credentials from the usual chain, as API Gateway checks when the stack has `ApiAuth=AWS_IAM`.

use std::sync::Arc;
use std::time::SystemTime;

use aws_config::SdkConfig;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use reqwest::header::HeaderValue;

use crate::error_chain;

/// The signing name of API Gateway's invoke endpoint.
pub const SERVICE: &str = "execute-api";

/// Signs requests for `execute-api` in one region with credentials from a provider (resolved, and
/// cached by the provider, for each request, so refreshed credentials are picked up).
#[derive(Clone)]
pub struct Signer {
    credentials: SharedCredentialsProvider,
    region: Arc<str>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

impl Signer {
    pub fn new(credentials: impl ProvideCredentials + 'static, region: &str) -> Self {
        Self {
            credentials: SharedCredentialsProvider::new(credentials),
            region: region.into(),
        }
    }

    /// Credentials from the SDK config (the default chain: environment, profile, web identity,
    /// container, instance). The region is the API's own when its host names one
    /// (`*.execute-api.<region>.amazonaws.com`: a signature for any other region is refused),
    /// else the SDK config's (`AWS_REGION`, the profile).
    pub fn from_sdk_config(sdk: &SdkConfig, api_url: &reqwest::Url) -> Result<Self, String> {
        let credentials = sdk.credentials_provider().ok_or(
            "no AWS credentials provider is configured (set AWS_PROFILE or AWS_ACCESS_KEY_ID/\
             AWS_SECRET_ACCESS_KEY; --unsigned for a stack deployed with ApiAuth=NONE)",
        )?;
        let region = api_url
            .host_str()
            .and_then(region_from_host)
            .or_else(|| sdk.region().map(|r| r.as_ref().to_owned()))
            .ok_or(
                "no AWS region: the URL's host does not name one and none is configured \
                 (set AWS_REGION or the profile's region)",
            )?;
        Ok(Self {
            credentials,
            region: region.into(),
        })
    }

    pub fn region(&self) -> &str {
        &self.region
    }

    /// Resolves the credentials once, so that a missing or expired login is reported before any
    /// request; returns the access key id.
    pub async fn check(&self) -> Result<String, String> {
        self.credentials
            .provide_credentials()
            .await
            .map(|c| c.access_key_id().to_owned())
            .map_err(|e| format!("no AWS credentials: {}", error_chain(&e)))
    }

    /// Adds `Authorization`, `X-Amz-Date` (and `X-Amz-Security-Token` for temporary credentials)
    /// over the request as it will be sent: method, URL, its headers and its body. Sign last:
    /// a header or body changed afterwards breaks the signature.
    pub async fn sign(&self, request: &mut reqwest::Request) -> Result<(), String> {
        self.sign_at(request, SystemTime::now()).await
    }

    /// [`Signer::sign`] as of `time` (a signature more than five minutes old is refused: tests
    /// sign in the past to see that).
    pub async fn sign_at(
        &self,
        request: &mut reqwest::Request,
        time: SystemTime,
    ) -> Result<(), String> {
        let credentials = self
            .credentials
            .provide_credentials()
            .await
            .map_err(|e| format!("no AWS credentials: {}", error_chain(&e)))?;
        let identity = credentials.into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name(SERVICE)
            .time(time)
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| format!("signing parameters: {e}"))?
            .into();
        let signed_headers = {
            let headers = request
                .headers()
                .iter()
                .map(|(name, value)| {
                    value
                        .to_str()
                        .map(|v| (name.as_str(), v))
                        .map_err(|_| format!("header {name} is not visible ASCII"))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let body = match request.body() {
                None => &[][..],
                Some(body) => body.as_bytes().ok_or("a streamed body cannot be signed")?,
            };
            let signable = SignableRequest::new(
                request.method().as_str(),
                request.url().as_str(),
                headers.into_iter(),
                SignableBody::Bytes(body),
            )
            .map_err(|e| format!("signing: {}", error_chain(&e)))?;
            let (instructions, _signature) = sign(signable, &params)
                .map_err(|e| format!("signing: {}", error_chain(&e)))?
                .into_parts();
            instructions.into_parts().0
        };
        for header in signed_headers {
            let mut value = HeaderValue::from_str(header.value())
                .map_err(|_| format!("the signer produced an invalid {}", header.name()))?;
            // Kept out of Debug output: the token, and the signature (replayable for minutes).
            value.set_sensitive(header.sensitive() || header.name() == "authorization");
            request.headers_mut().insert(header.name(), value);
        }
        Ok(())
    }
}

/// The region named by an API Gateway host: `<api-id>.execute-api.<region>.amazonaws.com` (or
/// `.amazonaws.com.cn`, or a VPC endpoint's `...execute-api.<region>.vpce.amazonaws.com`).
pub fn region_from_host(host: &str) -> Option<String> {
    let labels: Vec<&str> = host.split('.').collect();
    let at = labels
        .iter()
        .position(|l| l.eq_ignore_ascii_case(SERVICE))?;
    let region = labels.get(at + 1)?;
    let rest = &labels[at + 2..];
    let aws = rest.iter().any(|l| l.eq_ignore_ascii_case("amazonaws"));
    (aws && !region.is_empty()).then(|| region.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_credential_types::Credentials;

    #[test]
    fn the_region_comes_from_an_api_gateway_host() {
        assert_eq!(
            region_from_host("a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com").as_deref(),
            Some("eu-west-1")
        );
        assert_eq!(
            region_from_host("a1b2c3d4e5.execute-api.cn-north-1.amazonaws.com.cn").as_deref(),
            Some("cn-north-1")
        );
        assert_eq!(
            region_from_host("a1b2-vpce-0123.execute-api.us-east-2.vpce.amazonaws.com").as_deref(),
            Some("us-east-2")
        );
        assert_eq!(region_from_host("127.0.0.1"), None);
        assert_eq!(region_from_host("api.example.com"), None);
        assert_eq!(region_from_host("execute-api.example.com"), None);
    }

    #[test]
    fn the_url_region_wins_over_the_configured_one() {
        let sdk = SdkConfig::builder()
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
                "AKID", "secret", None, None, "test",
            )))
            .build();
        let deployed =
            reqwest::Url::parse("https://abc.execute-api.ap-south-1.amazonaws.com").unwrap();
        let local = reqwest::Url::parse("http://127.0.0.1:3000").unwrap();

        assert_eq!(
            Signer::from_sdk_config(&sdk, &deployed).unwrap().region(),
            "ap-south-1"
        );
        assert_eq!(
            Signer::from_sdk_config(&sdk, &local).unwrap().region(),
            "us-east-1"
        );
    }

    #[tokio::test]
    async fn a_signed_request_carries_an_execute_api_signature_over_its_headers() {
        let signer = Signer::new(
            Credentials::new("AKIDEXAMPLE", "secret", Some("token".into()), None, "test"),
            "eu-west-1",
        );
        let client = reqwest::Client::builder()
            .use_preconfigured_tls(crate::api::tls_config())
            .build()
            .unwrap();
        let mut request = client
            .post("https://abc.execute-api.eu-west-1.amazonaws.com/v1/scores/batch-get")
            .header("content-type", "application/json")
            .body(r#"{"subject_ids":["a"]}"#)
            .build()
            .unwrap();

        signer.sign(&mut request).await.unwrap();

        let header = |name: &str| request.headers()[name].to_str().unwrap().to_owned();
        let authorization = header("authorization");
        assert!(
            authorization.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"),
            "{authorization}"
        );
        assert!(
            authorization.contains("/eu-west-1/execute-api/aws4_request"),
            "{authorization}"
        );
        assert!(
            authorization
                .contains("SignedHeaders=content-type;host;x-amz-date;x-amz-security-token"),
            "{authorization}"
        );
        assert_eq!(header("x-amz-security-token"), "token");
        assert!(request.headers()["authorization"].is_sensitive());
        assert!(request.headers()["x-amz-security-token"].is_sensitive());
        assert!(request.headers().contains_key("x-amz-date"));
    }
}
