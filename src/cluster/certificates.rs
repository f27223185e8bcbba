//! Self-managed certificates: one Secret shared by every replica, the caBundle of our own
//! webhook configurations, and renewal before expiry with no failed admissions.

use crate::certs;
use crate::server::metrics::{Metrics, ResultLabels};
use crate::server::tls::{self, Resolver};
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
        let Ok(loaded) = tls::load_pair(m.cert.as_bytes(), m.key.as_bytes()) else {
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
            // Renewal keeps the CA while it outlives the new certificate, so the caBundle holds.
            let fresh = match &existing {
                Some((_, m)) if ca_outlives(&m.ca_cert, self.validity) => {
                    let (cert, key) = certs::issue(
                        &m.ca_cert,
                        &m.ca_key,
                        &self.dns,
                        &[],
                        Self::validity(self.validity),
                    )?;
                    Material {
                        ca_cert: m.ca_cert.clone(),
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
                    Material {
                        ca_cert: b.ca_cert_pem,
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

    /// Sets caBundle on every webhook of our two configurations (only when it differs).
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

fn ca_outlives(ca_pem: &str, validity: Duration) -> bool {
    let Some(Ok(der)) = rustls::pki_types::pem::PemObject::pem_slice_iter(ca_pem.as_bytes())
        .map(|c: Result<rustls::pki_types::CertificateDer<'static>, _>| c)
        .next()
    else {
        return false;
    };
    let Ok((_, ca)) = x509_parser::parse_x509_certificate(&der) else {
        return false;
    };
    let end = time::OffsetDateTime::now_utc().unix_timestamp()
        + i64::try_from(validity.as_secs()).unwrap_or(i64::MAX / 2);
    ca.validity().not_after.timestamp() > end
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
        match tls::load_pair(next.cert.as_bytes(), next.key.as_bytes()) {
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
