//! `zerodrop audit`: manifests or the live cluster through the webhook's engine, reported.

use super::setup::{inspector, load_policy};
use crate::cluster;
use zerodrop_core::engine::{Capabilities, Engine};
use zerodrop_core::policy::Layer;

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
            paths: paths_index(&client).await,
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
        let mode = args.namespace_mode.map(zerodrop_core::policy::Mode::as_str);
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

/// The cluster audit's image source: the registries the flags allow, and the workloads' own
/// pull secrets when --image-pull-secrets asks for them.
fn image_lookup(
    args: &crate::cli::AuditArgs,
    client: &kube::Client,
) -> anyhow::Result<std::sync::Arc<dyn zerodrop_core::admission::ImageLookup>> {
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

/// Inspects every image (8 at a time) with the credentials and trust the flags give.
async fn inspect_images(
    args: &crate::cli::RegistryArgs,
    images: &[(String, crate::images::Platform)],
) -> anyhow::Result<zerodrop_core::engine::image::Images> {
    use futures::StreamExt;
    let inspector = &inspector(args)?;
    let found: Vec<(String, zerodrop_core::engine::image::ImageFacts)> =
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

/// The traffic path index for a cluster audit: the server's watches, until they have listed
/// (a minute at most; without it the path is unknown and sleeps are `prestop-sleep`).
async fn paths_index(
    client: &kube::Client,
) -> Option<std::sync::Arc<dyn zerodrop_core::admission::PathLookup>> {
    let metrics = std::sync::Arc::new(crate::metrics::Metrics::new());
    let cache = cluster::paths::PathCache::start(client.clone(), metrics).await;
    let started = std::time::Instant::now();
    while !cache.synced() {
        if started.elapsed() > std::time::Duration::from_secs(60) {
            eprintln!(
                "the traffic path index did not list within 60 s (RBAC on services, ingresses?): auditing without it"
            );
            return None;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    Some(std::sync::Arc::new(cache))
}
