//! Self-managed certificates: one Secret shared by every replica, the caBundle of our own
//! webhook configurations, and renewal before expiry with no failed admissions.

use crate::certs;
use crate::certs::{Resolver, bundle};
use crate::metrics::{Metrics, ResultLabels};
use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use k8s_openapi::api::core::v1::Secret;
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct SelfManaged {
    pub secret: String,
    pub namespace: String,
    /// Name of our MutatingWebhookConfiguration and ValidatingWebhookConfiguration.
    pub webhook: String,
    pub dns: Vec<String>,
    pub validity: Duration,
    pub renew_before: Duration,
    pub check_every: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum SelfManagedError {
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("certificate: {0}")]
    Certs(#[from] certs::CertError),
    #[error("could not agree on the TLS Secret after several attempts")]
    Contention,
}

/// The PEMs the Secret holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Material {
    pub ca_cert: String,
    pub ca_key: String,
    pub cert: String,
    pub key: String,
}

const DNS_ANNOTATION: &str = "zerodrop.dev/dns-names";

fn field(secret: &Secret, key: &str) -> Option<String> {
    let bytes = secret.data.as_ref()?.get(key)?;
    String::from_utf8(bytes.0.clone()).ok()
}

fn material(secret: &Secret) -> Option<Material> {
    Some(Material {
        ca_cert: field(secret, "ca.crt")?,
        ca_key: field(secret, "ca.key")?,
        cert: field(secret, "tls.crt")?,
        key: field(secret, "tls.key")?,
    })
}

impl SelfManaged {
    /// Whether the pair loads, is for our names and is not yet due for renewal.
    fn usable(&self, secret: &Secret, m: &Material) -> bool {
        let names = secret
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(DNS_ANNOTATION));
        if names != Some(&self.dns.join(",")) {
            return false;
        }
        let Ok(loaded) = certs::load_pair(m.cert.as_bytes(), m.key.as_bytes()) else {
            return false;
        };
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let renew = i64::try_from(self.renew_before.as_secs()).unwrap_or(i64::MAX);
        loaded.not_after.saturating_sub(renew) > now
    }

    fn secret(&self, m: &Material, resource_version: Option<String>) -> Secret {
        let data: BTreeMap<String, ByteString> = [
            ("ca.crt", &m.ca_cert),
            ("ca.key", &m.ca_key),
            ("tls.crt", &m.cert),
            ("tls.key", &m.key),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), ByteString(v.as_bytes().to_vec())))
        .collect();
        let mut secret = Secret {
            data: Some(data),
            type_: Some("kubernetes.io/tls".into()),
            ..Secret::default()
        };
        secret.metadata.name = Some(self.secret.clone());
        secret.metadata.namespace = Some(self.namespace.clone());
        secret.metadata.resource_version = resource_version;
        secret.metadata.annotations =
            Some([(DNS_ANNOTATION.to_owned(), self.dns.join(","))].into());
        secret.metadata.labels = Some(
            [(
                "app.kubernetes.io/managed-by".to_owned(),
                "zerodrop".to_owned(),
            )]
            .into(),
        );
        secret
    }

    fn validity(d: Duration) -> time::Duration {
        time::Duration::seconds(i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 2))
    }

    /// Returns the material every replica agrees on, creating or renewing it when needed.
    /// Writes are conditional (create, or update at the resourceVersion we read), so replicas
    /// that race simply adopt the winner's Secret.
    pub async fn ensure(&self, client: &Client) -> Result<Material, SelfManagedError> {
        let api: Api<Secret> = Api::namespaced(client.clone(), &self.namespace);
        for _ in 0..5 {
            let current = api.get_opt(&self.secret).await?;
            let existing = current.as_ref().and_then(|s| material(s).map(|m| (s, m)));
            if let Some((s, m)) = &existing
                && self.usable(s, m)
            {
                return Ok(m.clone());
            }
            let now = time::OffsetDateTime::now_utc().unix_timestamp();
            // Renewal keeps the CA while it outlives the new certificate, so the caBundle holds.
            let fresh = match &existing {
                Some((_, m)) if ca_outlives(&m.ca_cert, self.validity) => {
                    let (cert, key) = certs::issue(
                        &signing_ca(&m.ca_cert),
                        &m.ca_key,
                        &self.dns,
                        &[],
                        Self::validity(self.validity),
                    )?;
                    Material {
                        ca_cert: bundle::merge(&m.ca_cert, &m.ca_cert, now),
                        ca_key: m.ca_key.clone(),
                        cert,
                        key,
                    }
                }
                _ => {
                    let b = certs::generate_with_ca_validity(
                        &self.dns,
                        &[],
                        Self::validity(self.validity),
                        Self::validity(self.validity * 5),
                    )?;
                    // The CA it replaces stays in the bundle: other replicas serve certificates
                    // it signed until they pick up the new Secret.
                    let previous = existing
                        .as_ref()
                        .map(|(_, m)| signing_ca(&m.ca_cert))
                        .unwrap_or_default();
                    Material {
                        ca_cert: bundle::merge(&b.ca_cert_pem, &previous, now),
                        ca_key: b.ca_key_pem,
                        cert: b.cert_pem,
                        key: b.key_pem,
                    }
                }
            };
            let result = match current {
                Some(s) => {
                    let rv = s.metadata.resource_version.clone();
                    api.replace(
                        &self.secret,
                        &PostParams::default(),
                        &self.secret(&fresh, rv),
                    )
                    .await
                    .map(|_| ())
                }
                None => api
                    .create(&PostParams::default(), &self.secret(&fresh, None))
                    .await
                    .map(|_| ()),
            };
            match result {
                Ok(()) => {
                    tracing::info!(secret = %self.secret, "wrote a new serving certificate");
                    return Ok(fresh);
                }
                // Another replica got there first: read its Secret and use that.
                Err(kube::Error::Api(e)) if e.code == 409 => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(SelfManagedError::Contention)
    }

    /// Sets caBundle on every webhook of our two configurations (only when it differs). The
    /// bundle is published before any replica serves a certificate from a new CA in it.
    pub async fn publish_ca(&self, client: &Client, ca_pem: &str) -> Result<(), SelfManagedError> {
        let mutating: Api<MutatingWebhookConfiguration> = Api::all(client.clone());
        self.set_bundles(mutating, ca_pem, |c| {
            c.webhooks
                .iter()
                .flatten()
                .map(|w| w.client_config.ca_bundle.clone())
                .collect()
        })
        .await?;
        let validating: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
        self.set_bundles(validating, ca_pem, |c| {
            c.webhooks
                .iter()
                .flatten()
                .map(|w| w.client_config.ca_bundle.clone())
                .collect()
        })
        .await
    }

    /// Patches every webhook's caBundle of configuration `self.webhook` when any differs.
    async fn set_bundles<K>(
        &self,
        api: Api<K>,
        ca_pem: &str,
        bundles: impl Fn(&K) -> Vec<Option<ByteString>>,
    ) -> Result<(), SelfManagedError>
    where
        K: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    {
        let Some(cfg) = api.get_opt(&self.webhook).await? else {
            return Ok(());
        };
        let current = bundles(&cfg);
        let wanted = ByteString(ca_pem.as_bytes().to_vec());
        if current.iter().any(|b| b.as_ref() != Some(&wanted)) {
            let patch = Patch::Json::<()>(ca_patch(current.len(), ca_pem));
            api.patch(&self.webhook, &PatchParams::default(), &patch)
                .await?;
        }
        Ok(())
    }
}

/// Whether the signing CA (the bundle's first) is valid for `validity` more.
fn ca_outlives(ca_bundle: &str, validity: Duration) -> bool {
    let end = time::OffsetDateTime::now_utc().unix_timestamp()
        + i64::try_from(validity.as_secs()).unwrap_or(i64::MAX / 2);
    not_after(ca_bundle).is_some_and(|t| t > end)
}

/// The CA that signs: the first of the bundle ("ca.crt" and the caBundle hold the bundle).
fn signing_ca(ca_bundle: &str) -> String {
    bundle::first(ca_bundle)
}

fn not_after(pem: &str) -> Option<i64> {
    let cert = bundle::certificates(pem).into_iter().next()?;
    certs::not_after(&cert).ok()
}

fn ca_patch(webhooks: usize, ca_pem: &str) -> json_patch::Patch {
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    let ops: Vec<serde_json::Value> = (0..webhooks)
        .map(|i| serde_json::json!({ "op": "add", "path": format!("/webhooks/{i}/clientConfig/caBundle"), "value": encoded }))
        .collect();
    serde_json::from_value(serde_json::Value::Array(ops)).unwrap_or(json_patch::Patch(Vec::new()))
}

/// Keeps the served certificate in step with the Secret: renews when due and picks up
/// renewals made by other replicas.
pub async fn keep_fresh(
    cfg: SelfManaged,
    client: Client,
    resolver: Arc<Resolver>,
    metrics: Arc<Metrics>,
    mut current: Material,
) {
    let mut tick = tokio::time::interval(cfg.check_every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let next = match cfg.ensure(&client).await {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "certificate check failed; serving the current certificate");
                continue;
            }
        };
        if let Err(e) = cfg.publish_ca(&client, &next.ca_cert).await {
            tracing::warn!(error = %e, "could not update caBundle");
        }
        if next == current {
            continue;
        }
        match certs::load_pair(next.cert.as_bytes(), next.key.as_bytes()) {
            Ok(loaded) => {
                metrics.cert_expiry.set(loaded.not_after);
                metrics
                    .cert_reloads
                    .get_or_create(&ResultLabels { result: "success" })
                    .inc();
                resolver.set(loaded.key);
                tracing::info!(
                    not_after = loaded.not_after,
                    "serving the renewed certificate"
                );
                current = next;
            }
            Err(e) => {
                metrics
                    .cert_reloads
                    .get_or_create(&ResultLabels { result: "failure" })
                    .inc();
                tracing::warn!(error = %e, "renewed certificate unusable; keeping the current one");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::client::WebPkiServerVerifier;
    use rustls::client::danger::ServerCertVerifier;
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime, pem::PemObject};

    fn ca(valid_for: time::Duration) -> certs::Bundle {
        let dns = ["zerodrop.test".to_owned()];
        certs::generate_with_ca_validity(&dns, &[], time::Duration::hours(1), valid_for).unwrap()
    }

    /// Whether a client trusting `bundle` accepts `leaf` for zerodrop.test.
    fn trusts(bundle: &str, leaf: &str) -> bool {
        let mut roots = rustls::RootCertStore::empty();
        for der in CertificateDer::pem_slice_iter(bundle.as_bytes()) {
            roots.add(der.unwrap()).unwrap();
        }
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let verifier = WebPkiServerVerifier::builder_with_provider(roots.into(), provider)
            .build()
            .unwrap();
        let leaf = CertificateDer::from_pem_slice(leaf.as_bytes()).unwrap();
        let name = ServerName::try_from("zerodrop.test").unwrap();
        verifier
            .verify_server_cert(&leaf, &[], &name, &[], UnixTime::now())
            .is_ok()
    }

    #[test]
    fn a_rotated_bundle_trusts_certificates_of_both_cas_until_the_old_one_expires() {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let (old, new) = (ca(time::Duration::days(1)), ca(time::Duration::days(5)));
        let rotated = bundle::merge(&new.ca_cert_pem, &old.ca_cert_pem, now);
        assert_eq!(bundle::certificates(&rotated).len(), 2);
        assert_eq!(signing_ca(&rotated).trim(), new.ca_cert_pem.trim());
        // A replica still serving the old certificate and one serving the new: both verify.
        assert!(trusts(&rotated, &old.cert_pem));
        assert!(trusts(&rotated, &new.cert_pem));
        // The old CA alone would have refused the new certificate (what a one-step swap does).
        assert!(!trusts(&old.ca_cert_pem, &new.cert_pem));

        // Renewals keep the bundle; once the old CA has expired it is dropped.
        assert_eq!(bundle::merge(&rotated, &rotated, now), rotated);
        let later = now + 2 * 86_400;
        let pruned = bundle::merge(&rotated, &rotated, later);
        assert_eq!(pruned.trim(), new.ca_cert_pem.trim());
        // A first CA (no Secret yet) is a bundle of one.
        assert_eq!(
            bundle::certificates(&bundle::merge(&new.ca_cert_pem, "", now)).len(),
            1
        );
    }

    #[test]
    fn the_signing_ca_is_the_first_of_the_bundle() {
        let (a, b) = (ca(time::Duration::days(1)), ca(time::Duration::days(1)));
        let both = format!("{}\n{}", a.ca_cert_pem, b.ca_cert_pem);
        let (cert, _) = certs::issue(
            &signing_ca(&both),
            &a.ca_key_pem,
            &["zerodrop.test".into()],
            &[],
            time::Duration::hours(1),
        )
        .unwrap();
        assert!(trusts(&a.ca_cert_pem, &cert));
        assert!(ca_outlives(&both, Duration::from_secs(3600)));
        assert!(!ca_outlives(&both, Duration::from_secs(3 * 86_400)));
    }
}
