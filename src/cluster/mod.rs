//! Kubernetes access: connecting, reading the apiserver version, the namespace cache.

pub mod certificates;
pub mod lease;
pub mod namespaces;
pub mod paths;
pub mod pull_secrets;

use kube::Client;
use kube::config::{KubeConfigOptions, Kubeconfig};
use std::path::Path;
use std::time::Duration;
use zerodrop_core::engine::Capabilities;

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("kubeconfig {path}: {message}")]
    Kubeconfig { path: String, message: String },
    #[error("no cluster credentials: {0}")]
    NoCredentials(String),
    #[error("kube client: {0}")]
    Client(#[from] kube::Error),
}

/// A client from `--kubeconfig`, else in-cluster or `$KUBECONFIG` credentials.
pub async fn client(kubeconfig: Option<&Path>) -> Result<Client, ClusterError> {
    let mut config = match kubeconfig {
        Some(path) => {
            let kc = Kubeconfig::read_from(path).map_err(|e| ClusterError::Kubeconfig {
                path: path.display().to_string(),
                message: e.to_string(),
            })?;
            kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
                .await
                .map_err(|e| ClusterError::Kubeconfig {
                    path: path.display().to_string(),
                    message: e.to_string(),
                })?
        }
        None => kube::Config::infer()
            .await
            .map_err(|e| ClusterError::NoCredentials(e.to_string()))?,
    };
    // Never let a slow apiserver hold up a caller for long.
    config.connect_timeout = Some(Duration::from_secs(5));
    config.read_timeout = Some(Duration::from_secs(30));
    Ok(Client::try_from(config)?)
}

/// Whether this process is meant to talk to a cluster: it runs in a pod, or a kubeconfig is
/// named or in its usual place. Then missing or broken credentials are an error, not a reason
/// to run standalone.
pub fn credentials_expected() -> bool {
    let home_config = std::env::var_os("HOME")
        .map(|home| Path::new(&home).join(".kube/config"))
        .is_some_and(|p| p.exists());
    std::env::var_os("KUBERNETES_SERVICE_HOST").is_some()
        || std::env::var_os("KUBECONFIG").is_some()
        || home_config
}

/// Asks for the apiserver's version until it answers, backing off from 1 s to 30 s, each
/// failure at WARN with its reason: a replica that starts while the control plane is slow or
/// restarting waits for it (not ready meanwhile) instead of running without it.
pub async fn wait_for_apiserver(client: &Client) -> Capabilities {
    let mut delay = Duration::from_secs(1);
    let mut attempt = 1u32;
    loop {
        let reason = match tokio::time::timeout(Duration::from_secs(10), capabilities(client)).await
        {
            Ok(Ok(caps)) => return caps,
            Ok(Err(e)) => e.to_string(),
            Err(_) => "no answer within 10s".to_owned(),
        };
        tracing::warn!(attempt, %reason, retry_in = ?delay, "cannot reach the apiserver: not ready, not protecting pods until it answers");
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(30));
        attempt += 1;
    }
}

/// The apiserver's minor version, as engine capabilities.
pub async fn capabilities(client: &Client) -> Result<Capabilities, ClusterError> {
    let info = client.apiserver_version().await?;
    let minor: String = info
        .minor
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    Ok(Capabilities::parse(&format!("{}.{minor}", info.major)).unwrap_or(Capabilities::LATEST))
}
