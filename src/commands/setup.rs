//! What several commands set up the same way: the policy file, the image inspector the
//! registry flags describe, the stop signal.

use anyhow::Context as _;
use zerodrop_core::policy::ClusterPolicy;

/// The cluster layer from `--config`, validated; built-in defaults without one.
pub fn load_policy(path: Option<&std::path::Path>) -> anyhow::Result<ClusterPolicy> {
    let Some(path) = path else {
        return Ok(ClusterPolicy::default());
    };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading --config {}", path.display()))?;
    ClusterPolicy::from_yaml(&text).with_context(|| format!("--config {}", path.display()))
}

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let term = async {
        match signal(SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = term => tracing::info!("SIGTERM received"),
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
    }
}

/// The image inspector the registry flags describe (credentials, plain-HTTP hosts, CAs, bound).
pub fn inspector(args: &crate::cli::RegistryArgs) -> anyhow::Result<crate::images::Inspector> {
    let client = crate::images::registry::RegistryClient::new(registry_config(args)?)
        .map_err(|e| anyhow::anyhow!("registry client: {e}"))?;
    Ok(crate::images::Inspector::new(client, Default::default()))
}

/// Credentials, plain-HTTP hosts, extra CAs and the call bound the flags give.
fn registry_config(
    args: &crate::cli::RegistryArgs,
) -> anyhow::Result<crate::images::registry::RegistryConfig> {
    let config_path = args.registry_config.clone().or_else(|| {
        let home = std::env::var_os("HOME")?;
        Some(std::path::Path::new(&home).join(".docker/config.json"))
    });
    let mut config = crate::images::registry::RegistryConfig {
        insecure: args.insecure_registry.iter().cloned().collect(),
        timeout: args.image_timeout,
        ..Default::default()
    };
    if let Some(path) = config_path.filter(|p| args.registry_config.is_some() || p.exists()) {
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        config.credentials = crate::images::credentials::from_docker_config(&text)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    }
    for ca in &args.registry_ca {
        let pem = std::fs::read(ca).with_context(|| format!("reading {}", ca.display()))?;
        config.extra_roots.push(pem);
    }
    Ok(config)
}
