//! Kubernetes access: connecting, reading the apiserver version, the namespace cache.

pub mod certificates;
pub mod namespaces;

use crate::engine::Capabilities;
use kube::Client;
use kube::config::{KubeConfigOptions, Kubeconfig};
use std::path::Path;
use std::time::Duration;

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
