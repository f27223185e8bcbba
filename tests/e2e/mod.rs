//! End-to-end tests: `zerodrop serve` behind a real kube-apiserver + etcd (tests/harness).

pub mod audit;
mod chart;
mod cluster;
mod fixtures;
mod generated;
mod harness;
mod images;
mod kyverno;
mod namespaces;
mod outage;
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
