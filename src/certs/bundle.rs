//! CA bundles (`ca.crt`, a webhook's caBundle): several CA certificates in one PEM text.

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

/// The certificates of a PEM bundle; anything that is not a certificate block is ignored.
pub fn certificates(bundle: &str) -> Vec<CertificateDer<'static>> {
    CertificateDer::pem_slice_iter(bundle.as_bytes())
        .filter_map(Result::ok)
        .collect()
}

/// One PEM text of `certs`, in order, with Unix line endings.
pub fn encode(certs: &[CertificateDer<'_>]) -> String {
    let config = pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF);
    certs
        .iter()
        .map(|c| pem::encode_config(&pem::Pem::new("CERTIFICATE", c.as_ref()), config))
        .collect()
}

/// The first certificate of a bundle as PEM (empty when there is none): the signing CA.
pub fn first(bundle: &str) -> String {
    let first: Vec<_> = certificates(bundle).into_iter().take(1).collect();
    encode(&first)
}

/// The signing CA first, then those of `others` still valid at `now` and different from it
/// (during a rotation: the CA it replaced, until it expires).
pub fn merge(signing: &str, others: &str, now: i64) -> String {
    let mut out: Vec<CertificateDer<'static>> = certificates(signing).into_iter().take(1).collect();
    for cert in certificates(others) {
        let valid = super::pair::not_after(&cert).is_ok_and(|t| t > now);
        if valid && !out.contains(&cert) {
            out.push(cert);
        }
    }
    encode(&out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_skips_what_is_not_a_certificate() {
        let a = crate::certs::generate(&["a".into()], &[], time::Duration::days(1)).unwrap();
        let b = crate::certs::generate(&["b".into()], &[], time::Duration::days(1)).unwrap();
        let text = format!("junk\n{}\n{}{}", a.ca_cert_pem, a.key_pem, b.ca_cert_pem);
        let certs = certificates(&text);
        assert_eq!(certs.len(), 2, "the key block is not a certificate");
        let encoded = encode(&certs);
        assert_eq!(certificates(&encoded), certs);
        assert!(encoded.starts_with(a.ca_cert_pem.trim()));
    }
}
