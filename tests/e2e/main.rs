//! End-to-end tests: `zerodrop serve` behind a real kube-apiserver + etcd +
//! kube-controller-manager built from the Kubernetes Go modules (tools/harness). `scripts/test.sh
//! --stage e2e` builds the control plane and runs this, and `--stage versions` runs it against
//! the other supported releases; without a control plane it stops with one line saying how to
//! build it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod audit;
mod chart;
mod drain;
mod export_cli;
mod fixtures;
mod generated;
mod harness;
mod images;
mod named_metrics;
mod namespaces;
mod outage;
mod paths;
mod peers;
mod pods;
mod pull_secrets;
mod rotation;
mod scan;
mod startup;
mod versions;
mod webhook_server;
mod workloads;

use harness::Zerodrop;
use std::sync::Mutex;
use zerodrop_testkit::cluster;

/// One zerodrop registered as webhook "shared" for the tests that need no special setup.
pub struct Shared {
    pub zerodrop: Mutex<Zerodrop>,
}

pub const SHARED: &str = "shared";

pub async fn shared() -> &'static Shared {
    static CELL: tokio::sync::OnceCell<Shared> = tokio::sync::OnceCell::const_new();
    CELL.get_or_init(|| async {
        let zd = Zerodrop::start(0);
        let client = harness::client().await;
        cluster::register(&client, SHARED, zd.tls_port, &zd.ca_pem).await;
        zd.wait_ready().await;
        let ns = cluster::namespace(&client, SHARED, Some("enforce"), serde_json::json!({})).await;
        cluster::wait_for_webhook(&client, &ns).await;
        Shared {
            zerodrop: Mutex::new(zd),
        }
    })
    .await
}

/// A new namespace behind the shared zerodrop, in `mode` and with these annotations, and a
/// client: the setup most tests share.
pub async fn shared_namespace(
    mode: Option<&str>,
    annotations: serde_json::Value,
) -> (kube::Client, String) {
    shared().await;
    let client = harness::client().await;
    let ns = cluster::namespace(&client, SHARED, mode, annotations).await;
    (client, ns)
}
