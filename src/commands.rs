//! The CLI's commands: wiring flags to the library's parts (the only place using anyhow).

use crate::admission::NamespaceLookup;
use crate::cli::ServeArgs;
use crate::cluster::{self, namespaces::NamespaceCache};
use crate::engine::{Capabilities, Engine};
use crate::policy::{ClusterPolicy, Layer};
use crate::server::{self, CertSource, Health, Server, metrics::Metrics};
use anyhow::Context as _;
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

pub async fn serve(args: ServeArgs, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let policy = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading --config {}", path.display()))?;
            ClusterPolicy::from_yaml(&text)
                .with_context(|| format!("--config {}", path.display()))?
        }
        None => ClusterPolicy::default(),
    };
    let metrics = Arc::new(Metrics::new());

    let client = if args.standalone {
        None
    } else {
        match tokio::time::timeout(Duration::from_secs(10), connect(&args)).await {
            Ok(Ok(found)) => Some(found),
            Ok(Err(e)) => {
                tracing::info!(reason = %e, "no cluster reachable: running standalone with the configured defaults");
                None
            }
            Err(_) => {
                tracing::info!(
                    "no cluster reachable (timed out): running standalone with the configured defaults"
                );
                None
            }
        }
    };

    let (namespaces, health, detected): (Arc<dyn NamespaceLookup>, Health, Option<Capabilities>) =
        match client {
            Some((client, caps)) => {
                let gauge = metrics.clone();
                let cache = NamespaceCache::start(client, move || {
                    gauge.namespace_cache_ready.set(1);
                });
                let probe = cache.clone();
                let health = Health::new(Box::new(move || probe.synced()));
                (Arc::new(cache), health, Some(caps))
            }
            None => {
                // Standalone: there is no cache to wait for.
                metrics.namespace_cache_ready.set(1);
                (
                    Arc::new(HashMap::<String, Layer>::new()),
                    Health::new(Box::new(|| true)),
                    None,
                )
            }
        };
    let caps = args
        .kube_version
        .or(detected)
        .unwrap_or(Capabilities::LATEST);
    tracing::info!(
        kubernetes = format!("1.{}", caps.minor),
        native_sleep = caps.native_sleep(),
        "capabilities"
    );

    let certs = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => CertSource::Files {
            cert: cert.clone(),
            key: key.clone(),
            reload_every: args.tls_reload_interval,
        },
        _ => CertSource::SelfSigned {
            ca_bundle_out: args.ca_bundle_out.clone(),
        },
    };
    let config = server::Config {
        listen: args.listen,
        admin_listen: args.admin_listen,
        certs,
        client_ca: args.client_ca.clone(),
        unknown_namespace_mode: args.unknown_namespace_mode.into(),
        shutdown_delay: args.shutdown_delay,
        shutdown_timeout: args.shutdown_timeout,
        header_timeout: args.header_timeout,
    };
    let state = server::State {
        engine: Engine::new(policy, caps),
        namespaces,
        unknown_namespace_mode: config.unknown_namespace_mode,
        metrics,
        health,
    };
    let server = Server::bind(config, state).await?;
    tracing::info!(tls = %server.tls_addr, admin = %server.admin_addr, "serving");
    server.serve(shutdown).await;
    Ok(())
}

async fn connect(args: &ServeArgs) -> anyhow::Result<(kube::Client, Capabilities)> {
    let client = cluster::client(args.kubeconfig.as_deref()).await?;
    let caps = cluster::capabilities(&client).await?;
    Ok((client, caps))
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
