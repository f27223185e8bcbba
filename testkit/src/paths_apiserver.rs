//! The traffic path index's objects at scale (`paths::objects`) in a real apiserver: for the
//! pod-create latency with the index (peers_bench: a zerodrop of its own over them) and the
//! HTTPRoute CRD for the e2e tests.

use crate::cluster::{self, post};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Installs the standard HTTPRoute CRD from `crds` (tools/gateway-api/crds.sh's directory)
/// and waits until HTTPRoutes are served.
pub async fn install_http_routes(c: &kube::Client, crds: &str) {
    let path = format!("{crds}/gateway.networking.k8s.io_httproutes.yaml");
    let crd: Value = serde_yaml_ng::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let reply = post(
        c,
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
        &crd,
    )
    .await;
    assert!(
        matches!(reply.status, 201 | 409),
        "{}: {}",
        reply.status,
        reply.body
    );
    let started = Instant::now();
    loop {
        let req = http::Request::get("/apis/gateway.networking.k8s.io/v1/httproutes")
            .body(Vec::new())
            .unwrap();
        if c.request::<Value>(req).await.is_ok() {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "HTTPRoutes not served 30 s after their CRD"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Where an object of `paths::objects` is created.
fn collection(obj: &Value) -> String {
    let ns = obj["metadata"]["namespace"].as_str().unwrap_or_default();
    match obj["kind"].as_str() {
        Some("Service") => format!("/api/v1/namespaces/{ns}/services"),
        Some("Ingress") => format!("/apis/networking.k8s.io/v1/namespaces/{ns}/ingresses"),
        _ => format!("/apis/gateway.networking.k8s.io/v1/namespaces/{ns}/httproutes"),
    }
}

/// Creates `paths::objects_scaled(namespace, per_namespace)` (`namespace` exists; the others
/// are made here), 32 at a time; HTTPRoutes only with `routes` (their CRD installed). A name listed twice keeps its
/// last object, as the in-memory index does. Returns how many objects were created.
pub async fn create_objects(
    c: &kube::Client,
    namespace: &str,
    per_namespace: usize,
    routes: bool,
) -> usize {
    let mut last: HashMap<(String, String, String), Value> = HashMap::new();
    for obj in crate::paths::objects_scaled(namespace, per_namespace) {
        if !routes && obj["kind"] == "HTTPRoute" {
            continue;
        }
        let meta = &obj["metadata"];
        let key = [&obj["kind"], &meta["namespace"], &meta["name"]].map(|v| v.to_string());
        last.insert(key.into(), obj);
    }
    let mut namespaces: Vec<&str> = last
        .values()
        .filter_map(|o| o["metadata"]["namespace"].as_str())
        .filter(|ns| *ns != namespace)
        .collect();
    namespaces.sort_unstable();
    namespaces.dedup();
    for ns in namespaces {
        let reply = post(
            c,
            "/api/v1/namespaces",
            &json!({ "metadata": { "name": ns } }),
        )
        .await;
        assert!(matches!(reply.status, 201 | 409), "{ns}: {}", reply.body);
    }
    let objects: Vec<Value> = last.into_values().collect();
    let mut tasks = tokio::task::JoinSet::new();
    for chunk in objects.chunks(objects.len().div_ceil(32).max(1)) {
        let (c, chunk) = (c.clone(), chunk.to_vec());
        tasks.spawn(async move {
            let mut created = 0;
            for obj in &chunk {
                let reply = post(&c, &collection(obj), obj).await;
                assert!(
                    matches!(reply.status, 201 | 409),
                    "{}: {}",
                    reply.status,
                    reply.body
                );
                created += usize::from(reply.status == 201);
            }
            created
        });
    }
    tasks.join_all().await.into_iter().sum()
}

/// A second zerodrop with the traffic path index over the objects of `paths::objects_scaled`
/// (`services` in 10 namespaces, Ingresses, and HTTPRoutes with ZERODROP_GATEWAY_CRDS), ready
/// (its index listed) and registered for a namespace of its own.
pub async fn serve_with_index(
    c: &kube::Client,
    kubeconfig: &std::path::Path,
    bin: &str,
    services: usize,
) -> anyhow::Result<(std::process::Child, String)> {
    let ns = cluster::namespace(c, "peers-paths", Some("enforce"), json!({})).await;
    let crds = std::env::var("ZERODROP_GATEWAY_CRDS").ok();
    if let Some(dir) = &crds {
        install_http_routes(c, dir).await;
    }
    let started = Instant::now();
    let created = create_objects(c, &ns, services / 10, crds.is_some()).await;
    eprintln!(
        "path index objects: {created} created in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let certs = std::env::temp_dir().join(format!("zerodrop-peers-paths-{}", std::process::id()));
    let status = std::process::Command::new(bin)
        .args([
            "certs",
            "generate",
            "--dns",
            "localhost",
            "--ip",
            "127.0.0.1",
            "--out",
        ])
        .arg(&certs)
        .stdout(std::process::Stdio::null())
        .status()?;
    anyhow::ensure!(status.success(), "zerodrop certs generate: {status}");
    let (port, admin) = (cluster::free_port(), cluster::free_port());
    let mut serve = std::process::Command::new(bin);
    serve
        .args([
            "serve",
            "--image-inspection=false",
            "--scan-interval",
            "0",
            "--traffic-paths=true",
        ])
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--admin-listen", &format!("127.0.0.1:{admin}")])
        .arg("--tls-cert")
        .arg(certs.join("tls.crt"))
        .arg("--tls-key")
        .arg(certs.join("tls.key"))
        .args(["--log-level", "warn"])
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(
            std::env::temp_dir().join("zerodrop-peers-paths.log"),
        )?);
    let ca = std::fs::read_to_string(certs.join("ca.crt"))?;
    let mut child = crate::process::spawn_tied(serve);
    let started = Instant::now();
    while !ready(admin).await {
        if let Some(exit) = child.try_wait()? {
            anyhow::bail!("zerodrop with the path index exited: {exit}");
        }
        if started.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            let _ = child.wait();
            anyhow::bail!("zerodrop with the path index not ready in 120 s");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!(
        "zerodrop with the path index ready in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let base = format!("https://127.0.0.1:{port}");
    cluster::register_url(c, "peers-paths", &base, Some(&ca)).await;
    cluster::wait_for_webhook(c, &ns).await;
    Ok((child, ns))
}

/// `/readyz` on the admin port answers 200 (plain HTTP/1.0, one request).
async fn ready(admin: u16) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(mut s) = tokio::net::TcpStream::connect(("127.0.0.1", admin)).await else {
        return false;
    };
    let mut head = [0u8; 12];
    s.write_all(b"GET /readyz HTTP/1.0\r\n\r\n").await.is_ok()
        && s.read_exact(&mut head).await.is_ok()
        && head.ends_with(b" 200")
}
