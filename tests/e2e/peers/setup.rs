//! Where each peer mutates: a namespace per peer, a second one where a later webhook injects a
//! container (so the apiserver reinvokes the peer), the injector itself, and Kyverno's process.

use crate::harness::control_plane;
use crate::webhook_server::Server;
use serde_json::{Value, json};
use std::time::Duration;
use zerodrop_testkit::cluster::{has_prestop, label, namespace, wait_for};
use zerodrop_testkit::kyverno;

const INJECT_LABEL: &str = "e2e.zerodrop.dev/inject";
/// Named after every peer's webhook configuration, so the apiserver calls it last.
const INJECTOR: &str = "zz-peers-injector";

/// One peer's two namespaces.
pub struct Peer {
    pub name: &'static str,
    pub ns: String,
    pub injected_ns: String,
}

/// A peer selected by namespace labels (`webhook`/`mode` as `cluster::namespace` takes them).
pub async fn peer(
    c: &kube::Client,
    name: &'static str,
    webhook: &str,
    mode: Option<&str>,
    labels: Value,
) -> Peer {
    let ns = namespace(c, webhook, mode, json!({})).await;
    let injected_ns = namespace(c, webhook, mode, json!({})).await;
    label(c, &ns, labels.clone()).await;
    let mut both = labels;
    both[INJECT_LABEL] = json!("yes");
    label(c, &injected_ns, both).await;
    Peer {
        name,
        ns,
        injected_ns,
    }
}

/// The injector of the peers' second namespaces (webhook_server::injector).
pub async fn injector(c: &kube::Client) -> Server {
    let container = json!({ "name": "injected", "image": "registry.invalid/proxy:1" });
    crate::webhook_server::injector(c, INJECTOR, INJECT_LABEL, container).await
}

pub fn injected(pod: &Value) -> bool {
    pod["spec"]["containers"]
        .as_array()
        .is_some_and(|cs| cs.len() > 1)
}

pub async fn delete_injector(c: &kube::Client) {
    zerodrop_testkit::cluster::delete_webhooks(c, INJECTOR).await;
}

/// Kyverno started against the shared apiserver, its two peers ready; the process dies with
/// the test process.
pub async fn kyverno(c: &kube::Client) -> (std::process::Child, Vec<Peer>) {
    // Kyverno's CRDs include the PolicyReport's: the audit tests' "not installed" half first.
    crate::audit::policy_reports().await;
    kyverno::install(c).await;
    let port = crate::harness::free_port();
    let metrics = crate::harness::free_port();
    let mut cmd = kyverno::command(&control_plane().kubeconfig, port, metrics);
    let log = std::env::temp_dir().join(format!("zerodrop-kyverno-{port}.log"));
    let file = std::fs::File::create(&log).unwrap();
    cmd.stdout(file.try_clone().unwrap()).stderr(file);
    let child = zerodrop_testkit::process::spawn_tied(cmd);
    let mut peers = Vec::new();
    for (name, value) in [
        ("Kyverno ClusterPolicy", kyverno::CLUSTER_POLICY),
        ("Kyverno MutatingPolicy", kyverno::MUTATING_POLICY),
    ] {
        let p = peer(c, name, "none", None, kyverno::labels(value)).await;
        // Kyverno makes its certificates and registers its webhooks first.
        eprintln!(
            "waiting for Kyverno in {}; its log: {}",
            p.ns,
            log.display()
        );
        wait_for(c, &p.ns, Duration::from_secs(180), has_prestop).await;
        peers.push(p);
    }
    (child, peers)
}
