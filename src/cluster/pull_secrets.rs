//! A pod's pull secrets, read when one of its images is inspected (Secret and ServiceAccount
//! GETs by name, cached briefly), so private images are read with the logins their kubelet uses.

use crate::images::credentials::{Keyring, Login, PullCredentials, from_pull_secret};
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use kube::Client;
use kube::api::Api;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use zerodrop_core::admission::Puller;
use zerodrop_core::admission::types::MAX_PULL_SECRETS;

/// A Secret changed or deleted is seen this late at most; pods of one template arrive
/// together, so they share one read.
const KEPT_FOR: Duration = Duration::from_secs(30);
/// Entries kept (secrets and accounts each); beyond, expired ones go, then new ones are not kept.
const MAX_KEPT: usize = 4096;

type Logins = Arc<Vec<(String, Login)>>;
/// By (namespace, name): what was read, and when.
type Kept<V> = Mutex<HashMap<(String, String), (Instant, V)>>;

#[derive(Clone)]
pub struct PullSecrets {
    client: Client,
    /// Bound of one GET.
    timeout: Duration,
    secrets: Arc<Kept<Logins>>,
    accounts: Arc<Kept<Arc<Vec<String>>>>,
}

impl PullSecrets {
    pub fn new(client: Client, timeout: Duration) -> PullSecrets {
        PullSecrets {
            client,
            timeout,
            secrets: Arc::default(),
            accounts: Arc::default(),
        }
    }

    /// The secret names a template's pods will carry: its own, else its ServiceAccount's.
    async fn names(&self, puller: &Puller) -> Vec<String> {
        let Some(account) = &puller.service_account else {
            return puller.secrets.clone();
        };
        let key = (puller.namespace.clone(), account.clone());
        if let Some(names) = fresh(&self.accounts, &key) {
            return names.to_vec();
        }
        let api: Api<ServiceAccount> = Api::namespaced(self.client.clone(), &puller.namespace);
        let names: Vec<String> = match self.get(&api, account).await {
            Ok(Some(sa)) => sa
                .image_pull_secrets
                .unwrap_or_default()
                .into_iter()
                .map(|r| r.name)
                .filter(|n| !n.is_empty())
                .take(MAX_PULL_SECRETS)
                .collect(),
            Ok(None) => Vec::new(),
            Err(e) => {
                tracing::warn!(namespace = %puller.namespace, serviceaccount = %account, error = %e, "pull secrets of the ServiceAccount not read");
                Vec::new()
            }
        };
        keep(&self.accounts, key, Arc::new(names.clone()));
        names
    }

    /// The logins one Secret holds (none when it is missing, unreadable or not a pull secret).
    async fn logins(&self, namespace: &str, name: &str) -> Logins {
        let key = (namespace.to_owned(), name.to_owned());
        if let Some(logins) = fresh(&self.secrets, &key) {
            return logins;
        }
        let api: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
        let logins = match self.get(&api, name).await {
            Ok(Some(secret)) => {
                let data = secret.data.unwrap_or_default();
                let kind = secret.type_.unwrap_or_default();
                match from_pull_secret(&kind, |k| data.get(k).map(|b| b.0.as_slice())) {
                    Ok(logins) => logins,
                    Err(e) => {
                        tracing::warn!(%namespace, secret = %name, error = %e, "pull secret ignored");
                        Vec::new()
                    }
                }
            }
            Ok(None) => Vec::new(),
            Err(e) => {
                tracing::warn!(%namespace, secret = %name, error = %e, "pull secret not read (does zerodrop's ClusterRole allow get on secrets? chart: images.pullSecrets)");
                Vec::new()
            }
        };
        let logins = Arc::new(logins);
        keep(&self.secrets, key, logins.clone());
        logins
    }

    async fn get<K>(&self, api: &Api<K>, name: &str) -> Result<Option<K>, String>
    where
        K: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    {
        match tokio::time::timeout(self.timeout, api.get_opt(name)).await {
            Ok(Ok(found)) => Ok(found),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no answer within {:?}", self.timeout)),
        }
    }
}

impl PullCredentials for PullSecrets {
    fn keyring(&self, puller: Arc<Puller>) -> BoxFuture<'static, Arc<Keyring>> {
        let this = self.clone();
        Box::pin(async move {
            let mut keyring = Keyring::new();
            for name in this.names(&puller).await {
                for (host, login) in this.logins(&puller.namespace, &name).await.iter() {
                    keyring.entry(host.clone()).or_default().push(login.clone());
                }
            }
            tracing::debug!(namespace = %puller.namespace, registries = ?keyring.keys().collect::<Vec<_>>(), "pull secrets read");
            Arc::new(keyring)
        })
    }
}

fn fresh<V: Clone>(map: &Kept<V>, key: &(String, String)) -> Option<V> {
    let map = map.lock().unwrap_or_else(|p| p.into_inner());
    let (at, value) = map.get(key)?;
    (at.elapsed() < KEPT_FOR).then(|| value.clone())
}

fn keep<V>(map: &Kept<V>, key: (String, String), value: V) {
    let mut map = map.lock().unwrap_or_else(|p| p.into_inner());
    if map.len() >= MAX_KEPT {
        map.retain(|_, (at, _)| at.elapsed() < KEPT_FOR);
    }
    if map.len() < MAX_KEPT {
        map.insert(key, (Instant::now(), value));
    }
}
