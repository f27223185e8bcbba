//! TLS: the rustls server config, and the serving pair hot-reloaded from files.

use crate::certs::{PairError, Resolver, load_pair, provider};
use crate::metrics::{Metrics, ResultLabels};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Pair(#[from] PairError),
    #[error("no certificate found in the client CA file")]
    NoClientCa,
    #[error("client CA: invalid PEM: {0}")]
    ClientCaPem(String),
    #[error("TLS configuration: {0}")]
    Config(String),
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
                let cert = cert.map_err(|e| TlsError::ClientCaPem(e.to_string()))?;
                roots
                    .add(cert)
                    .map_err(|e| TlsError::Config(e.to_string()))?;
            }
            if roots.is_empty() {
                return Err(TlsError::NoClientCa);
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
