//! A serving pair: loaded and checked to belong together, and the one currently served.

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::sync::{Arc, RwLock};

#[derive(Debug, thiserror::Error)]
pub enum PairError {
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
}

/// The one crypto provider of the process (ring): every TLS config and key load uses it.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A certificate pair checked to belong together, with its notAfter as Unix time.
pub struct Loaded {
    pub key: Arc<CertifiedKey>,
    pub not_after: i64,
}

pub fn load_pair(cert_pem: &[u8], key_pem: &[u8]) -> Result<Loaded, PairError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| PairError::Pem(e.to_string()))?;
    let not_after = not_after(certs.first().ok_or(PairError::NoCertificate)?)?;
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| PairError::Pem(e.to_string()))?;
    let signer = provider()
        .key_provider
        .load_private_key(key)
        .map_err(PairError::Key)?;
    let certified = CertifiedKey::new(certs, signer);
    certified.keys_match().map_err(PairError::Mismatch)?;
    Ok(Loaded {
        key: Arc::new(certified),
        not_after,
    })
}

/// A certificate's notAfter as Unix time.
pub fn not_after(cert: &CertificateDer<'_>) -> Result<i64, PairError> {
    let (_, parsed) =
        x509_parser::parse_x509_certificate(cert).map_err(|e| PairError::Parse(e.to_string()))?;
    Ok(parsed.validity().not_after.timestamp())
}

/// Serves whatever certificate is current; swapped atomically by whoever keeps it fresh
/// (the file reloader, the self-managed Secret).
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
