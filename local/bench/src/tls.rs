//! An HTTPS endpoint in front of the emulator, so a benchmark pays what a function pays in AWS on
//! its first call: a TLS handshake and certificate verification against its trust store.
//!
//! A certificate authority and a `localhost` certificate are made for each run; the CA's PEM is
//! written to a file the functions are told to trust (`AWS_CA_BUNDLE`, see `shared::aws`). Like
//! an AWS endpoint it keeps each connection open ([`Forwarder`]).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::forward::Forwarder;
use crate::BenchError;

/// A TLS terminator on a loopback port forwarding every request to `upstream`.
pub struct TlsProxy {
    pub endpoint: String,
    pub ca_file: PathBuf,
    task: tokio::task::JoinHandle<()>,
}

impl TlsProxy {
    pub async fn start(upstream: SocketAddr, dir: &Path) -> Result<Self, BenchError> {
        let tls = |e: rcgen::Error| BenchError::Arrange(format!("making a certificate: {e}"));
        let ca_key = KeyPair::generate().map_err(tls)?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(tls)?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).map_err(tls)?;
        let issuer = Issuer::new(ca_params, ca_key);
        let leaf_key = KeyPair::generate().map_err(tls)?;
        let leaf = CertificateParams::new(vec!["localhost".to_owned()])
            .map_err(tls)?
            .signed_by(&leaf_key, &issuer)
            .map_err(tls)?;

        let ca_file = dir.join("bench-ca.pem");
        std::fs::write(&ca_file, ca.pem())?;
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .and_then(|builder| {
            builder.with_no_client_auth().with_single_cert(
                vec![leaf.der().clone(), ca.der().clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
            )
        })
        .map_err(|e| BenchError::Arrange(format!("TLS server config: {e}")))?;
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let forwarder = Forwarder::new(upstream);
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                let forwarder = forwarder.clone();
                tokio::spawn(async move {
                    if let Ok(client) = acceptor.accept(client).await {
                        forwarder.serve(client).await;
                    }
                });
            }
        });
        Ok(Self {
            endpoint: format!("https://localhost:{port}"),
            ca_file,
            task,
        })
    }
}

impl Drop for TlsProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}
