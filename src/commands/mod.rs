//! The CLI's commands: wiring flags to the library's parts (the only place using anyhow).

mod serve;
mod verify;

pub use serve::serve;
pub use verify::verify;

use crate::cluster;
use crate::engine::{Capabilities, Engine};
use crate::policy::{ClusterPolicy, Layer};
use anyhow::Context as _;

/// The cluster layer from `--config`, validated; built-in defaults without one.
pub(crate) fn load_policy(path: Option<&std::path::Path>) -> anyhow::Result<ClusterPolicy> {
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
        let facts = audit::cluster::Facts {
            images: if args.images {
                Some(image_lookup(&args, &client)?)
            } else {
                None
            },
            inspect_misses: true,
            ..Default::default()
        };
        let report = audit::cluster::audit(
            &client,
            &engine,
            args.namespace.as_deref(),
            &facts,
            &progress,
        )
        .await?;
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
        let images = if args.images {
            inspect_images(&args.registry, &audit::images_of(&docs)).await?
        } else {
            Default::default()
        };
        let mut report = audit::audit_documents(&engine, &docs, &namespace, &images);
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

/// The cluster audit's image source: the registries the flags allow, and the workloads' own
/// pull secrets when --image-pull-secrets asks for them.
fn image_lookup(
    args: &crate::cli::AuditArgs,
    client: &kube::Client,
) -> anyhow::Result<std::sync::Arc<dyn crate::admission::ImageLookup>> {
    use std::sync::Arc;
    let pull: Option<Arc<dyn crate::images::credentials::PullCredentials>> =
        args.image_pull_secrets.then(|| {
            Arc::new(crate::cluster::pull_secrets::PullSecrets::new(
                client.clone(),
                std::time::Duration::from_secs(10),
            )) as _
        });
    Ok(Arc::new(crate::images::lookup::Shared::new(
        Arc::new(inspector(&args.registry)?),
        Arc::new(crate::metrics::Metrics::new()),
        pull,
    )))
}

/// The image inspector the registry flags describe (credentials, plain-HTTP hosts, CAs, bound).
pub(crate) fn inspector(
    args: &crate::cli::RegistryArgs,
) -> anyhow::Result<crate::images::Inspector> {
    let client = crate::images::registry::RegistryClient::new(registry_config(args)?)
        .map_err(|e| anyhow::anyhow!("registry client: {e}"))?;
    Ok(crate::images::Inspector::new(client, Default::default()))
}

/// Inspects every image (8 at a time) with the credentials and trust the flags give.
async fn inspect_images(
    args: &crate::cli::RegistryArgs,
    images: &[(String, crate::images::Platform)],
) -> anyhow::Result<crate::engine::image::Images> {
    use futures::StreamExt;
    let inspector = &inspector(args)?;
    let found: Vec<(String, crate::engine::image::ImageFacts)> =
        futures::stream::iter(images.iter().cloned())
            .map(|(image, platform)| async move {
                let facts = inspector.facts(&image, &platform).await;
                (image, facts)
            })
            .buffer_unordered(8)
            .collect()
            .await;
    Ok(found.into_iter().collect())
}

/// `zerodrop load`: runs the plan until one of its stops, prints the summary on stdout.
pub async fn load(args: crate::cli::LoadArgs) -> anyhow::Result<()> {
    use crate::verify::load::{Plan, run_reporting};
    let plan = Plan {
        target: args.target,
        path: args.path,
        host: args.host,
        method: args.method,
        rate: args.rate,
        keepalive: args.keepalive,
        connections: usize::from(args.connections),
        timeout: args.timeout,
    };
    let (closed_tx, stdin_closed) = tokio::sync::oneshot::channel::<()>();
    if args.until_stdin_closes {
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
            let _ = closed_tx.send(());
        });
    }
    let duration = args.duration;
    let stop = async move {
        let stdin = async {
            match stdin_closed.await {
                Ok(()) => (),
                Err(_) => std::future::pending().await,
            }
        };
        let limit = async {
            match duration {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = shutdown_signal() => (),
            () = stdin => (),
            () = limit => (),
        }
    };
    // Progress lines are {"progress": {...}}; the last line is the summary.
    let reporter = args.report_every.map(|every| {
        let print: Box<dyn FnMut(crate::verify::load::Progress) + Send> = Box::new(|p| {
            if let Ok(line) = serde_json::to_string(&serde_json::json!({ "progress": p })) {
                println!("{line}");
            }
        });
        (every, print)
    });
    let summary = run_reporting(plan, stop, reporter).await;
    println!("{}", serde_json::to_string(&summary)?);
    Ok(())
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
