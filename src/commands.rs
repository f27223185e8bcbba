//! The CLI's commands: wiring flags to the library's parts (the only place using anyhow).

use crate::admission::NamespaceLookup;
use crate::cli::ServeArgs;
use crate::cluster::certificates::{self, SelfManaged};
use crate::cluster::{self, namespaces::NamespaceCache};
use crate::engine::{Capabilities, Engine};
use crate::metrics::Metrics;
use crate::policy::{ClusterPolicy, Layer};
use crate::server::{self, CertSource, Health, Server};
use anyhow::Context as _;
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

pub async fn serve(args: ServeArgs, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let policy = load_policy(args.config.as_deref())?;
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

    let mut kube_client = None;
    let (namespaces, health, detected): (Arc<dyn NamespaceLookup>, Health, Option<Capabilities>) =
        match client {
            Some((client, caps)) => {
                kube_client = Some(client.clone());
                let cache = NamespaceCache::start(client, metrics.clone());
                let probe = cache.clone();
                let health = Health::new(Box::new(move || probe.synced()));
                (Arc::new(cache), health, Some(caps))
            }
            None => {
                // Standalone: there is no cache to wait for.
                metrics.namespace_cache_ready.set(1);
                (
                    Arc::new(HashMap::<String, Arc<Layer>>::new()),
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

    let certs = match (&args.tls_cert, &args.tls_key, &args.self_managed_secret) {
        (Some(cert), Some(key), _) => CertSource::Files {
            cert: cert.clone(),
            key: key.clone(),
            reload_every: args.tls_reload_interval,
        },
        (_, _, Some(secret)) => {
            let client = kube_client.clone().context(
                "--self-managed-secret needs a reachable cluster to store the certificate",
            )?;
            self_managed(&args, secret, client, metrics.clone()).await?
        }
        _ => CertSource::SelfSigned {
            ca_bundle_out: args.ca_bundle_out.clone(),
        },
    };
    let config = server::Config {
        listen: args.listen,
        admin_listen: args.admin_listen,
        certs,
        client_ca: args.client_ca.clone(),
        unknown_namespace_mode: args.unknown_namespace_mode,
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
        limits: server::Limits::with_bytes(
            args.max_concurrent_requests as usize,
            args.max_in_flight_mib,
            args.body_timeout,
        ),
        cache: crate::admission::cache::DecisionCache::new(args.decision_cache_size),
    };
    let server = Server::bind(config, state).await?;
    tracing::info!(tls = %server.tls_addr, admin = %server.admin_addr, "serving");
    server.serve(shutdown).await;
    Ok(())
}

/// Bootstraps the shared Secret and caBundle, then keeps them fresh in the background.
async fn self_managed(
    args: &ServeArgs,
    secret: &str,
    client: kube::Client,
    metrics: Arc<Metrics>,
) -> anyhow::Result<CertSource> {
    let cfg = SelfManaged {
        secret: secret.to_owned(),
        namespace: args.self_managed_namespace.clone().unwrap_or_default(),
        webhook: args.self_managed_webhook.clone().unwrap_or_default(),
        dns: args.self_managed_dns.clone(),
        validity: args.self_managed_validity,
        renew_before: args.self_managed_renew_before,
        check_every: args.self_managed_check_interval,
    };
    let material = cfg
        .ensure(&client)
        .await
        .context("self-managed certificate")?;
    cfg.publish_ca(&client, &material.ca_cert)
        .await
        .context("setting caBundle")?;
    let loaded = crate::certs::load_pair(material.cert.as_bytes(), material.key.as_bytes())?;
    metrics.cert_expiry.set(loaded.not_after);
    let resolver = crate::certs::Resolver::new(loaded.key);
    tokio::spawn(certificates::keep_fresh(
        cfg,
        client,
        resolver.clone(),
        metrics,
        material,
    ));
    Ok(CertSource::Resolver(resolver))
}

async fn connect(args: &ServeArgs) -> anyhow::Result<(kube::Client, Capabilities)> {
    let client = cluster::client(args.kubeconfig.as_deref()).await?;
    let caps = cluster::capabilities(&client).await?;
    Ok((client, caps))
}

/// The cluster layer from `--config`, validated; built-in defaults without one.
fn load_policy(path: Option<&std::path::Path>) -> anyhow::Result<ClusterPolicy> {
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

/// `zerodrop audit`: returns the process exit code (0, 1 or 2).
pub async fn audit(args: crate::cli::AuditArgs) -> anyhow::Result<i32> {
    use crate::audit::{self, output};
    use std::io::IsTerminal;
    let policy = load_policy(args.config.as_deref())?;
    let (report, docs) = if args.cluster {
        let client = cluster::client(args.kubeconfig.as_deref()).await?;
        let caps = match args.kube_version {
            Some(c) => c,
            None => cluster::capabilities(&client).await?,
        };
        let engine = Engine::new(policy, caps);
        let progress = |line: &str| eprintln!("{line}");
        let report =
            audit::cluster::audit(&client, &engine, args.namespace.as_deref(), &progress).await?;
        if args.policy_report {
            match audit::policy_report::write(&client, &report).await {
                Ok(n) => eprintln!("wrote {n} PolicyReports"),
                Err(e) => eprintln!("{e}"),
            }
        }
        (report, Vec::new())
    } else {
        let engine = Engine::new(policy, args.kube_version.unwrap_or(Capabilities::LATEST));
        let mode = args.namespace_mode.map(crate::policy::Mode::as_str);
        let pairs = args
            .namespace_annotation
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()));
        // Without --namespace-mode the namespace is taken as opted in with the default mode.
        let mut namespace = Layer::for_namespace(mode, pairs);
        if mode.is_none() {
            namespace.all.mode = None;
        }
        let (docs, errors) = audit::manifests::read_inputs(&args.filename);
        let mut report = audit::audit_documents(&engine, &docs, &namespace);
        report.errors = errors;
        (report, docs)
    };
    if args.fix || args.output != output::Format::Table {
        for e in &report.errors {
            eprintln!("error: {}:{}: {}", e.file, e.line, e.message);
        }
    }
    if args.fix {
        let files = audit::fix::fixed(&docs, &report);
        let mut out = String::new();
        for (i, (_, text)) in files.iter().enumerate() {
            if i > 0 && !text.starts_with("---") {
                out.push_str("---\n");
            }
            out.push_str(text);
            if !text.ends_with('\n') {
                out.push('\n');
            }
        }
        print!("{out}");
        eprint!(
            "{}",
            output::render(
                &report,
                output::Format::Table,
                std::io::stderr().is_terminal()
            )
        );
    } else {
        let colour = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        print!("{}", output::render(&report, args.output, colour));
    }
    Ok(if !report.errors.is_empty() {
        2
    } else if report.trips(args.fail_on) {
        1
    } else {
        0
    })
}

/// `zerodrop certs generate`: PEM files for development and tests; keys are written 0600.
pub fn certs_generate(args: &crate::cli::CertsArgs) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let validity = time::Duration::seconds(i64::try_from(args.validity.as_secs())?);
    let bundle = crate::certs::generate(&args.dns, &args.ip, validity)?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    for (file, text, private) in [
        ("ca.crt", &bundle.ca_cert_pem, false),
        ("ca.key", &bundle.ca_key_pem, true),
        ("tls.crt", &bundle.cert_pem, false),
        ("tls.key", &bundle.key_pem, true),
    ] {
        let path = args.out.join(file);
        let mode = if private { 0o600 } else { 0o644 };
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&path)
            .with_context(|| format!("writing {}", path.display()))?;
        std::io::Write::write_all(&mut f, text.as_bytes())?;
    }
    println!(
        "wrote ca.crt, ca.key, tls.crt, tls.key to {}",
        args.out.display()
    );
    Ok(())
}
