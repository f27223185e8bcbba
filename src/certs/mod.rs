//! Certificates: generating a CA and the serving certificates it signs (rcgen), loading and
//! serving pairs, and CA bundles. The server, the cluster's self-managed mode and the CLI share it.

pub mod bundle;
mod pair;

pub use pair::{Loaded, PairError, Resolver, load_pair, not_after, provider};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use std::net::IpAddr;
use time::{Duration, OffsetDateTime};

#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("certificate generation failed: {0}")]
    Rcgen(#[from] rcgen::Error),
    #[error("invalid DNS name {0:?} for a certificate")]
    DnsName(String),
}

/// A CA and a serving certificate it signed, all PEM. Keys live only in memory unless the
/// caller writes them somewhere.
pub struct Bundle {
    pub ca_cert_pem: String,
    pub ca_key_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

/// A CA valid for `ca_valid_for`, and a serving certificate from it valid for `valid_for`.
pub fn generate(dns: &[String], ips: &[IpAddr], valid_for: Duration) -> Result<Bundle, CertError> {
    generate_with_ca_validity(dns, ips, valid_for, valid_for + Duration::days(1))
}

pub fn generate_with_ca_validity(
    dns: &[String],
    ips: &[IpAddr],
    valid_for: Duration,
    ca_valid_for: Duration,
) -> Result<Bundle, CertError> {
    let now = OffsetDateTime::now_utc();
    let mut ca = CertificateParams::default();
    ca.distinguished_name = name("zerodrop CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    // A little slack for clocks that run behind ours.
    ca.not_before = now - Duration::hours(1);
    ca.not_after = now + ca_valid_for;
    let ca_key = KeyPair::generate()?;
    let ca_key_pem = ca_key.serialize_pem();
    let issuer = CertifiedIssuer::self_signed(ca, ca_key)?;
    let (cert_pem, key_pem) = sign(&issuer, dns, ips, valid_for)?;
    Ok(Bundle {
        ca_cert_pem: issuer.pem(),
        ca_key_pem,
        cert_pem,
        key_pem,
    })
}

/// A new serving certificate from an existing CA (rotation keeps the caBundle unchanged).
pub fn issue(
    ca_cert_pem: &str,
    ca_key_pem: &str,
    dns: &[String],
    ips: &[IpAddr],
    valid_for: Duration,
) -> Result<(String, String), CertError> {
    let key = KeyPair::from_pem(ca_key_pem)?;
    let issuer = Issuer::from_ca_cert_pem(ca_cert_pem, key)?;
    sign(&issuer, dns, ips, valid_for)
}

fn sign(
    issuer: &Issuer<'_, impl rcgen::SigningKey>,
    dns: &[String],
    ips: &[IpAddr],
    valid_for: Duration,
) -> Result<(String, String), CertError> {
    let now = OffsetDateTime::now_utc();
    let mut leaf = CertificateParams::default();
    leaf.distinguished_name = name(dns.first().map_or("zerodrop", String::as_str));
    for d in dns {
        let d = d
            .clone()
            .try_into()
            .map_err(|_| CertError::DnsName(d.clone()))?;
        leaf.subject_alt_names.push(SanType::DnsName(d));
    }
    leaf.subject_alt_names
        .extend(ips.iter().copied().map(SanType::IpAddress));
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    leaf.not_before = now - Duration::hours(1);
    leaf.not_after = now + valid_for;
    let leaf_key = KeyPair::generate()?;
    let cert = leaf.signed_by(&leaf_key, issuer)?;
    Ok((cert.pem(), leaf_key.serialize_pem()))
}

fn name(common: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common);
    dn
}
