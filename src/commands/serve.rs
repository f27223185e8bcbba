//! `zerodrop serve`: the server starts at once; a replica with cluster credentials joins the
//! cluster in the background (retrying, not ready meanwhile) and only then protects pods.

use super::setup::{inspector, load_policy};
use crate::certs::{self, Resolver};
use crate::cli::ServeArgs;
use crate::cluster::certificates::{self, SelfManaged};
use crate::cluster::lease::LeaseConfig;
use crate::cluster::paths::PathCache;
use crate::cluster::{self, ClusterError, namespaces::NamespaceCache};
use crate::metrics::Metrics;
use crate::scan::ScanConfig;
use crate::server::{self, Backend, CertSource, Server, State};
use anyhow::Context as _;
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use zerodrop_core::engine::{Capabilities, Engine};
use zerodrop_core::policy::{ClusterPolicy, Layer};

pub async fn serve(args: ServeArgs, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let policy = load_policy(args.config.as_deref())?;
    let metrics = Arc::new(Metrics::new());
    let client = cluster_client(&args).await?;

    // Until the cluster is joined (for ever, standalone): no namespace is known, so every pod
    // is answered with --unknown-namespace-mode.
    let provisional = args.kube_version.unwrap_or(Capabilities::LATEST);
    let fallback = Backend::fixed(
        Engine::new(policy.clone(), provisional),
        Arc::new(HashMap::<String, Arc<Layer>>::new()),
        args.decision_cache_size,
    );
    let (certs, self_managed) = cert_source(&args, client.is_some())?;
    let limits = server::Limits::with_bytes(
        args.max_concurrent_requests as usize,
        args.max_in_flight_mib,
        args.body_timeout,
    );
    let mut state = State::new(
        fallback,
        args.unknown_namespace_mode,
        metrics.clone(),
        limits,
    );
    state.expects_cluster = client.is_some();
    if args.image_inspection {
        let inspector = Arc::new(inspector(&args.registry)?);
        state.images = server::ImageInspection {
            lookup: Some(Arc::new(crate::images::lookup::Shared::new(
                inspector,
                metrics.clone(),
                pull_secrets(&args, client.as_ref())?,
            ))),
            validate_budget: args.image_validate_budget,
            mutate_budget: args.image_mutate_budget,
            warming: Arc::new(tokio::sync::Semaphore::new(4)),
        };
    }
    let state = Arc::new(state);
    if client.is_none() {
        // Standalone: there is no cache to wait for.
        metrics.namespace_cache_ready.set(1);
    }
    let config = server::Config {
        listen: args.listen,
        admin_listen: args.admin_listen,
        certs,
        client_ca: args.client_ca.clone(),
        unknown_namespace_mode: args.unknown_namespace_mode,
        shutdown_delay: args.shutdown_delay,
        shutdown_timeout: args.shutdown_timeout,
        connections: server::listener::Connections {
            header_timeout: args.header_timeout,
            idle_timeout: args.idle_timeout,
            max: args.max_connections as usize,
        },
    };
    let server = Server::bind(config, state.clone()).await?;
    tracing::info!(tls = %server.tls_addr, admin = %server.admin_addr, "serving");
    if let Some(client) = client {
        let join = Join {
            scan: scan_config(&args, &client, state.images.lookup.clone()),
            client,
            policy,
            kube_version: args.kube_version,
            cache_size: args.decision_cache_size,
            traffic_paths: args.traffic_paths,
            self_managed,
            state,
        };
        tokio::spawn(join.run());
    }
    server.serve(shutdown).await;
    Ok(())
}

/// The pods' pull secrets as a login source, when --image-pull-secrets asks for them.
fn pull_secrets(
    args: &ServeArgs,
    client: Option<&kube::Client>,
) -> anyhow::Result<Option<Arc<dyn crate::images::credentials::PullCredentials>>> {
    match (args.image_pull_secrets, client) {
        (false, _) => Ok(None),
        (true, None) => anyhow::bail!("--image-pull-secrets needs a cluster to read them from"),
        (true, Some(client)) => Ok(Some(Arc::new(
            crate::cluster::pull_secrets::PullSecrets::new(client.clone(), Duration::from_secs(2)),
        ))),
    }
}

/// The cluster's credentials, or `None` for a standalone run. Credentials that exist but
/// cannot be read are an error: running standalone would leave every pod unprotected.
async fn cluster_client(args: &ServeArgs) -> anyhow::Result<Option<kube::Client>> {
    if args.standalone {
        tracing::info!(
            "--standalone: no cluster; every pod is answered with --unknown-namespace-mode"
        );
        return Ok(None);
    }
    match cluster::client(args.kubeconfig.as_deref()).await {
        Ok(client) => Ok(Some(client)),
        Err(ClusterError::NoCredentials(reason)) if !cluster::credentials_expected() => {
            tracing::warn!(%reason, "no cluster credentials found: running standalone, every pod is answered with --unknown-namespace-mode; pass --standalone to say this is meant");
            Ok(None)
        }
        Err(e) => Err(e)
            .context("cluster credentials are present but unusable; refusing to run standalone"),
    }
}

/// The background scan's settings, or `None` when it is off.
fn scan_config(
    args: &ServeArgs,
    client: &kube::Client,
    images: Option<Arc<dyn zerodrop_core::admission::ImageLookup>>,
) -> Option<ScanConfig> {
    if args.scan_interval.is_zero() {
        return None;
    }
    let identity = args.scan_identity.clone().unwrap_or_else(|| {
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "zerodrop".into());
        format!("{host}-{}", std::process::id())
    });
    let namespace = args
        .scan_lease_namespace
        .clone()
        .unwrap_or_else(|| client.default_namespace().to_owned());
    Some(ScanConfig {
        images,
        paths: None,
        policy: args.admission == crate::cli::Admission::Policy,
        namespace_selector: args.scan_namespace_selector.clone(),
        interval: args.scan_interval,
        lease: LeaseConfig {
            name: args.scan_lease_name.clone(),
            namespace,
            identity,
            duration: args.scan_lease_duration,
        },
    })
}

/// Self-managed certificates, with the resolver that serves them, once the cluster is joined.
type SelfManagedCerts = Option<(SelfManaged, Arc<Resolver>)>;

/// Self-managed certificates start from a throwaway pair (not ready meanwhile, so the
/// apiserver never uses it); joining the cluster swaps in the shared Secret's.
fn cert_source(
    args: &ServeArgs,
    have_cluster: bool,
) -> anyhow::Result<(CertSource, SelfManagedCerts)> {
    match (&args.tls_cert, &args.tls_key, &args.self_managed_secret) {
        (Some(cert), Some(key), _) => Ok((
            CertSource::Files {
                cert: cert.clone(),
                key: key.clone(),
                reload_every: args.tls_reload_interval,
            },
            None,
        )),
        (_, _, Some(secret)) => {
            anyhow::ensure!(
                have_cluster,
                "--self-managed-secret needs cluster credentials to store the certificate"
            );
            let cfg = SelfManaged {
                secret: secret.to_owned(),
                namespace: args.self_managed_namespace.clone().unwrap_or_default(),
                webhook: args.self_managed_webhook.clone().unwrap_or_default(),
                dns: args.self_managed_dns.clone(),
                validity: args.self_managed_validity,
                renew_before: args.self_managed_renew_before,
                check_every: args.self_managed_check_interval,
            };
            let throwaway = certs::generate(&cfg.dns, &[], time::Duration::hours(1))?;
            let loaded =
                certs::load_pair(throwaway.cert_pem.as_bytes(), throwaway.key_pem.as_bytes())?;
            let resolver = Resolver::new(loaded.key);
            Ok((
                CertSource::Resolver(resolver.clone()),
                Some((cfg, resolver)),
            ))
        }
        _ => Ok((
            CertSource::SelfSigned {
                ca_bundle_out: args.ca_bundle_out.clone(),
            },
            None,
        )),
    }
}

/// Joining the cluster: wait for the apiserver, take over the shared certificate, start the
/// namespace watch, then hand the server the cluster's backend.
struct Join {
    scan: Option<ScanConfig>,
    client: kube::Client,
    policy: ClusterPolicy,
    kube_version: Option<Capabilities>,
    cache_size: usize,
    traffic_paths: bool,
    self_managed: SelfManagedCerts,
    state: Arc<State>,
}

impl Join {
    async fn run(self) {
        let Join {
            scan,
            client,
            policy,
            kube_version,
            cache_size,
            traffic_paths,
            self_managed,
            state,
        } = self;
        let metrics = state.metrics.clone();
        let detected = cluster::wait_for_apiserver(&client).await;
        let caps = kube_version.unwrap_or(detected);
        tracing::info!(
            kubernetes = format!("1.{}", caps.minor),
            detected = format!("1.{}", detected.minor),
            native_sleep = caps.native_sleep(),
            "capabilities"
        );
        if let Some((cfg, resolver)) = self_managed {
            take_over_certificate(cfg, &client, resolver, &metrics).await;
        }
        let paths = match traffic_paths {
            true => Some(PathCache::start(client.clone(), metrics.clone()).await),
            false => None,
        };
        if let Some(mut cfg) = scan {
            cfg.paths = paths
                .clone()
                .map(|p| Arc::new(p) as Arc<dyn zerodrop_core::admission::PathLookup>);
            let engine = Engine::new(policy.clone(), caps);
            tokio::spawn(crate::scan::run(
                client.clone(),
                engine,
                cfg,
                metrics.clone(),
            ));
        }
        let cache = NamespaceCache::start(client, metrics.clone());
        let (probe, paths_probe) = (cache.clone(), paths.clone());
        let backend = Backend {
            engine: Engine::new(policy, caps),
            namespaces: Arc::new(cache),
            cache: zerodrop_core::admission::cache::DecisionCache::new(cache_size),
            paths: paths.map(|p| Arc::new(p) as Arc<dyn zerodrop_core::admission::PathLookup>),
            unsynced: Box::new(move || {
                if !probe.synced() {
                    Some("namespace cache not synced")
                } else if paths_probe.as_ref().is_some_and(|p| !p.synced()) {
                    Some("traffic path index not synced (Services, Ingresses, routes)")
                } else {
                    None
                }
            }),
        };
        if state.connected.set(backend).is_ok() {
            metrics.cluster_connected.set(1);
            tracing::info!("joined the cluster: ready once the namespace cache has synced");
        }
    }
}

/// Bootstraps the shared Secret and caBundle (retrying until the apiserver lets us), serves
/// their pair, then keeps them fresh in the background.
async fn take_over_certificate(
    cfg: SelfManaged,
    client: &kube::Client,
    resolver: Arc<Resolver>,
    metrics: &Arc<Metrics>,
) {
    let mut delay = Duration::from_secs(1);
    let material = loop {
        let attempt = async {
            let material = cfg.ensure(client).await?;
            cfg.publish_ca(client, &material.ca_cert).await?;
            Ok::<_, certificates::SelfManagedError>(material)
        };
        match attempt.await {
            Ok(material) => {
                match certs::load_pair(material.cert.as_bytes(), material.key.as_bytes()) {
                    Ok(loaded) => {
                        metrics.cert_expiry.set(loaded.not_after);
                        resolver.set(loaded.key);
                        break material;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "the self-managed Secret holds an unusable pair; retrying")
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?delay, "self-managed certificate not in place yet: not ready, retrying")
            }
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(30));
    };
    tokio::spawn(certificates::keep_fresh(
        cfg,
        client.clone(),
        resolver,
        metrics.clone(),
        material,
    ));
}
