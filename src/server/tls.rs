//! TLS: rustls config with a serving certificate that hot-reloads from files.

use super::metrics::{Metrics, ResultLabels};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{RootCertStore, ServerConfig};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("no certificate found in the PEM")]
    NoCertificate,
    #[error("invalid PEM: {0}")]
    Pem(String),
    #[error("unusable private key: {0}")]
    Key(rustls::Error),
    #[error("certificate and key do not belong together: {0}")]
    Mismatch(rustls::Error),
    #[error("cannot parse the certificate: {0}")]
    Parse(String),
    #[error("TLS configuration: {0}")]
    Config(String),
}

pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A certificate pair checked to belong together, with its notAfter as Unix time.
pub struct Loaded {
    pub key: Arc<CertifiedKey>,
    pub not_after: i64,
}

pub fn load_pair(cert_pem: &[u8], key_pem: &[u8]) -> Result<Loaded, TlsError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::Pem(e.to_string()))?;
    let not_after = not_after(certs.first().ok_or(TlsError::NoCertificate)?)?;
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| TlsError::Pem(e.to_string()))?;
    let signer = provider()
        .key_provider
        .load_private_key(key)
        .map_err(TlsError::Key)?;
    let certified = CertifiedKey::new(certs, signer);
    certified.keys_match().map_err(TlsError::Mismatch)?;
    Ok(Loaded {
        key: Arc::new(certified),
        not_after,
    })
}

/// A certificate's notAfter as Unix time.
pub fn not_after(cert: &CertificateDer<'_>) -> Result<i64, TlsError> {
    let (_, parsed) =
        x509_parser::parse_x509_certificate(cert).map_err(|e| TlsError::Parse(e.to_string()))?;
    Ok(parsed.validity().not_after.timestamp())
}

/// Serves whatever certificate is current; swapped atomically by the reloader.
#[derive(Debug)]
pub struct Resolver {
    current: RwLock<Arc<CertifiedKey>>,
}

impl Resolver {
    pub fn new(key: Arc<CertifiedKey>) -> Arc<Resolver> {
        Arc::new(Resolver {
            current: RwLock::new(key),
        })
    }

    pub fn set(&self, key: Arc<CertifiedKey>) {
        // A poisoned lock still holds a valid Arc; keep serving.
        let mut slot = self.current.write().unwrap_or_else(|p| p.into_inner());
        *slot = key;
    }
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        )
    }
}

pub fn server_config(
    resolver: Arc<Resolver>,
    client_ca: Option<&Path>,
) -> Result<ServerConfig, TlsError> {
    let builder = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(path) => {
            let pem = std::fs::read(path).map_err(|source| TlsError::Read {
                path: path.to_owned(),
                source,
            })?;
            let mut roots = RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(&pem) {
                let cert = cert.map_err(|e| TlsError::Pem(e.to_string()))?;
                roots
                    .add(cert)
                    .map_err(|e| TlsError::Config(e.to_string()))?;
            }
            if roots.is_empty() {
                return Err(TlsError::NoCertificate);
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
                .build()
                .map_err(|e| TlsError::Config(e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Polls the files and swaps in a new pair only when it loads and matches. Reading the paths
/// anew each time follows Kubernetes' `..data` symlink swap of mounted Secrets.
pub async fn watch_files(
    cert: PathBuf,
    key: PathBuf,
    every: Duration,
    resolver: Arc<Resolver>,
    metrics: Arc<Metrics>,
) {
    let mut last: Option<(Vec<u8>, Vec<u8>)> = None;
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let (Ok(c), Ok(k)) = (tokio::fs::read(&cert).await, tokio::fs::read(&key).await) else {
            continue;
        };
        let pair = (c, k);
        if last.as_ref() == Some(&pair) {
            continue;
        }
        match load_pair(&pair.0, &pair.1) {
            Ok(loaded) => {
                if last.is_some() {
                    tracing::info!(cert = %cert.display(), not_after = loaded.not_after, "serving certificate reloaded");
                    metrics
                        .cert_reloads
                        .get_or_create(&ResultLabels { result: "success" })
                        .inc();
                }
                metrics.cert_expiry.set(loaded.not_after);
                resolver.set(loaded.key);
            }
            Err(e) => {
                // Half-written or mismatched: keep serving the working pair; the next change retries.
                tracing::warn!(cert = %cert.display(), error = %e, "new certificate rejected, keeping the current one");
                metrics
                    .cert_reloads
                    .get_or_create(&ResultLabels { result: "failure" })
                    .inc();
            }
        }
        last = Some(pair);
    }
}
