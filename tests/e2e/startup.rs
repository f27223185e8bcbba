//! A replica that starts while the apiserver is not listening yet (control plane restarting,
//! first install on a busy cluster): it retries, is not ready and says why until the apiserver
//! answers, then becomes ready and enforces without a restart.

use crate::harness::{Zerodrop, client, control_plane, free_port};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use zerodrop_testkit::cluster::{
    create_pod, delete_webhooks, namespace, pod, register, wait_for_webhook, web,
};

/// The control plane's kubeconfig with its server moved to `port` on loopback.
fn kubeconfig_at(port: u16, dir: &std::path::Path) -> (std::path::PathBuf, String) {
    let text = std::fs::read_to_string(&control_plane().kubeconfig).unwrap();
    let mut doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
    let server = doc["clusters"][0]["cluster"]["server"]
        .as_str()
        .unwrap()
        .to_owned();
    let upstream = server.trim_start_matches("https://").to_owned();
    assert!(upstream.starts_with("127.0.0.1:"), "{server}");
    doc["clusters"][0]["cluster"]["server"] = format!("https://127.0.0.1:{port}").into();
    let path = dir.join("kubeconfig");
    std::fs::write(&path, serde_yaml_ng::to_string(&doc).unwrap()).unwrap();
    (path, upstream)
}

/// Relays connections on `listener` to `upstream` (the apiserver): the same apiserver, now
/// reachable at the address zerodrop was given.
async fn relay(listener: TcpListener, upstream: String) {
    loop {
        let Ok((mut inbound, _)) = listener.accept().await else {
            return;
        };
        let upstream = upstream.clone();
        tokio::spawn(async move {
            if let Ok(mut outbound) = TcpStream::connect(&upstream).await {
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            }
        });
    }
}

async fn readyz(zd: &Zerodrop) -> (u16, String) {
    let r = reqwest::get(format!("{}/readyz", zd.admin)).await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test]
async fn a_replica_started_before_the_apiserver_waits_for_it_then_enforces() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let (kubeconfig, upstream) = kubeconfig_at(port, dir.path());
    let zd = Zerodrop::start_against(free_port(), &kubeconfig);

    // Nothing listens at the apiserver's address: not ready, and it says why, for as long as
    // that lasts (here 4 s: several retries).
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(4) {
        let (status, reason) = readyz(&zd).await;
        assert_eq!(status, 503, "ready without a cluster: {reason}");
        assert!(reason.contains("not connected to the cluster"), "{reason}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(zd.metric("zerodrop_cluster_connected").await, Some(0.0));
    let retries = zd
        .logs()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| {
            v["level"] == "WARN"
                && v["message"]
                    .as_str()
                    .unwrap_or("")
                    .contains("cannot reach the apiserver")
        })
        .count();
    assert!(retries >= 2, "retries are logged at WARN:\n{}", zd.logs());

    // The apiserver appears at that address: ready without a restart, and enforcing.
    let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    tokio::spawn(relay(listener, upstream));
    zd.wait_ready().await;
    assert_eq!(zd.metric("zerodrop_cluster_connected").await, Some(1.0));

    let c = client().await;
    let name = "startup";
    register(&c, name, zd.tls_port, &zd.ca_pem).await;
    let ns = namespace(&c, name, Some("enforce"), json!({})).await;
    wait_for_webhook(&c, &ns).await;
    let r = create_pod(
        &c,
        &ns,
        &pod("after-start", json!({}), json!([web()])),
        false,
    )
    .await;
    r.ok_status();
    assert_eq!(
        r.body["spec"]["containers"][0]["lifecycle"]["preStop"]["sleep"]["seconds"], 5,
        "{}",
        r.body
    );
    delete_webhooks(&c, name).await;
}
