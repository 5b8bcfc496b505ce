//! AWS SDK clients, built once per cold start and kept for the container's life.
//!
//! The HTTPS client trusts the Mozilla root certificates compiled into the binary
//! (`webpki-root-certs`) instead of the system's store, which the SDK's default client loads from
//! disk: a bundle file plus, on Debian, a folder of about 150 more (docs/BENCHMARKS.md has the
//! measurements). `AWS_CA_BUNDLE`, a PEM file as the AWS CLI and the other SDKs read it, replaces
//! them: for a TLS-inspecting proxy, or a local HTTPS endpoint.
//!
//! Region and credentials come from the environment variables Lambda sets (or a profile, for
//! `cargo lambda watch` on a laptop), never from the instance metadata service: without a region
//! the SDK's default chains ask IMDS at init, a connection attempt that costs up to a second
//! where the address does not answer. ECS and web-identity credentials are left out for the same
//! reason; a Lambda function never has them.

use aws_config::environment::{
    EnvironmentVariableCredentialsProvider, EnvironmentVariableRegionProvider,
};
use aws_config::meta::credentials::CredentialsProviderChain;
use aws_config::meta::region::RegionProviderChain;
use aws_config::profile::{ProfileFileCredentialsProvider, ProfileFileRegionProvider};
use aws_config::{BehaviorVersion, SdkConfig};
use std::borrow::Cow;
use std::sync::OnceLock;

use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode, TlsContext, TrustStore};
use aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;

/// Loads the SDK configuration from the environment (region, credentials and, when set,
/// `AWS_ENDPOINT_URL`, which points every client at a local emulator).
pub async fn sdk_config() -> SdkConfig {
    let region = RegionProviderChain::first_try(EnvironmentVariableRegionProvider::new())
        .or_else(ProfileFileRegionProvider::new());
    let credentials = CredentialsProviderChain::first_try(
        "Environment",
        EnvironmentVariableCredentialsProvider::new(),
    )
    .or_else("Profile", ProfileFileCredentialsProvider::builder().build());
    aws_config::defaults(BehaviorVersion::latest())
        .region(region)
        .credentials_provider(credentials)
        .http_client(SharedHttpClient::new(LazyHttpsClient::default()))
        .load()
        .await
}

/// The roots the HTTPS client trusts: `AWS_CA_BUNDLE`'s certificates when it is set and
/// readable, else the compiled-in Mozilla roots.
fn trust_store() -> TrustStore {
    if let Some(path) = std::env::var_os("AWS_CA_BUNDLE") {
        match std::fs::read(&path) {
            Ok(pem) => return TrustStore::empty().with_pem_certificate(pem),
            Err(err) => tracing::warn!(
                path = %path.to_string_lossy(),
                error = %err,
                "AWS_CA_BUNDLE cannot be read: the compiled-in roots are used"
            ),
        }
    }
    TrustStore::empty().with_pem_certificate(compiled_in_roots_pem())
}

/// The compiled-in roots as PEM, the only form the SDK's trust store takes.
fn compiled_in_roots_pem() -> Vec<u8> {
    let mut pem = Vec::with_capacity(webpki_root_certs::TLS_SERVER_ROOT_CERTS.len() * 2048);
    for cert in webpki_root_certs::TLS_SERVER_ROOT_CERTS {
        pem.extend_from_slice(b"-----BEGIN CERTIFICATE-----\n");
        pem.extend_from_slice(aws_smithy_types::base64::encode(cert.as_ref()).as_bytes());
        pem.extend_from_slice(b"\n-----END CERTIFICATE-----\n");
    }
    pem
}

pub fn dynamodb(sdk: &SdkConfig) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(sdk)
}

pub fn sns(sdk: &SdkConfig) -> aws_sdk_sns::Client {
    aws_sdk_sns::Client::new(sdk)
}

/// S3 with path-style addressing whenever an endpoint override is set: an emulator on
/// 127.0.0.1 has no per-bucket DNS names.
pub fn s3(sdk: &SdkConfig) -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::config::Builder::from(sdk)
        .force_path_style(sdk.endpoint_url().is_some())
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

/// The SDK's HTTPS client, built on the first request instead of at init. The SDK's own client
/// builds its TLS connector when each SDK client is constructed (to load the system's roots
/// early), which with a trust store of PEM roots means parsing every root certificate once per
/// SDK client, in init. Through this wrapper the roots are read and parsed once, by the first
/// request (measured in docs/BENCHMARKS.md).
#[derive(Debug, Default)]
struct LazyHttpsClient {
    inner: OnceLock<SharedHttpClient>,
}

impl HttpClient for LazyHttpsClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        self.inner
            .get_or_init(|| https_client(trust_store()))
            .http_connector(settings, components)
    }

    fn connector_metadata(&self) -> Option<ConnectorMetadata> {
        Some(ConnectorMetadata::new("hyper", Some(Cow::Borrowed("1.x"))))
    }
}

fn https_client(trust_store: TrustStore) -> SharedHttpClient {
    let tls_context = TlsContext::builder()
        .with_trust_store(trust_store)
        .build()
        .expect("a TLS context of PEM roots builds");
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc))
        .tls_context(tls_context)
        .build_https()
}

#[cfg(test)]
mod tests {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::CertificateDer;

    #[test]
    fn the_compiled_in_roots_read_back_as_every_mozilla_root_certificate() {
        let pem = super::compiled_in_roots_pem();
        let parsed: Vec<CertificateDer> = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<_, _>>()
            .expect("valid PEM");
        assert!(parsed.len() > 100, "only {} roots", parsed.len());
        assert_eq!(parsed, webpki_root_certs::TLS_SERVER_ROOT_CERTS);
    }
}
