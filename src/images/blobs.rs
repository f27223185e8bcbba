//! Content-addressed reads: a manifest or blob by its digest, bounded, checked against it.

use super::credentials::Login;
use super::reference::Reference;
use super::registry::RegistryClient;
use bytes::Bytes;

/// What to read and as whom (`None`: anonymously).
pub(super) type Pull<'a> = (&'a Reference, Option<&'a Login>);

/// A manifest or blob by its digest, at most `max` bytes, checked against the digest.
pub(super) async fn verified(
    client: &RegistryClient,
    (reference, login): Pull<'_>,
    kind: &str,
    digest: &str,
    accept: &str,
    max: usize,
) -> Result<Bytes, String> {
    let (_, body) = client
        .get(reference, login, kind, digest, accept, max)
        .await
        .map_err(|e| format!("{kind} {digest}: {e}"))?;
    if sha256(&body) != digest {
        return Err(format!("{kind} {digest} does not match its digest"));
    }
    Ok(body)
}

pub(super) fn sha256(bytes: &Bytes) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}
