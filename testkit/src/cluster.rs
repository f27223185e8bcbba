//! Webhook registration, namespaces and requests against the real apiserver.

use base64::Engine as _;
use http_body_util::BodyExt;
use k8s_openapi::api::core::v1::{Namespace, Pod, ServiceAccount};
use kube::Client;
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// Label every e2e namespace carries so each webhook only sees the namespaces of its tests.
pub const WEBHOOK_LABEL: &str = "e2e.zerodrop.dev/webhook";
/// Label selecting a namespace for one peer's policy (experiments/peers): `<label>: <peer>`.
pub const PEER_LABEL: &str = "e2e.zerodrop.dev/peer";

pub async fn register(client: &Client, name: &str, port: u16, ca_pem: &str) {
    register_url(
        client,
        name,
        &format!("https://127.0.0.1:{port}"),
        Some(ca_pem),
    )
    .await;
}

/// Registers both configurations for `base` (e.g. https://localhost:8443); without a CA the
/// caBundle is left for zerodrop to fill in (self-managed certificates).
pub async fn register_url(client: &Client, name: &str, base: &str, ca_pem: Option<&str>) {
    let ca = ca_pem.map(|p| base64::engine::general_purpose::STANDARD.encode(p));
    let selector = json!({ "matchExpressions": [
        { "key": "zerodrop.dev/mode", "operator": "In", "values": ["enforce", "audit"] },
        { "key": WEBHOOK_LABEL, "operator": "In", "values": [name] }
    ]});
    let mutating = json!({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
        "metadata": { "name": name },
        "webhooks": [{
            "name": "pods.zerodrop.dev",
            "clientConfig": { "url": format!("{base}/mutate"), "caBundle": ca },
            "rules": [{ "apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["pods"] }],
            "namespaceSelector": selector,
            "sideEffects": "None", "failurePolicy": "Ignore", "reinvocationPolicy": "IfNeeded",
            "timeoutSeconds": 5, "admissionReviewVersions": ["v1"]
        }]
    });
    let validating = json!({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
        "metadata": { "name": name },
        "webhooks": [{
            "name": "workloads.zerodrop.dev",
            "clientConfig": { "url": format!("{base}/validate"), "caBundle": ca },
            "rules": [
                { "apiGroups": ["apps"], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"],
                  "resources": ["deployments", "statefulsets", "daemonsets", "replicasets"] },
                { "apiGroups": ["batch"], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"], "resources": ["jobs", "cronjobs"] }
            ],
            "namespaceSelector": selector,
            "sideEffects": "None", "failurePolicy": "Ignore", "timeoutSeconds": 5, "admissionReviewVersions": ["v1"]
        }]
    });
    post(
        client,
        "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations",
        &mutating,
    )
    .await
    .ok_status();
    post(
        client,
        "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations",
        &validating,
    )
    .await
    .ok_status();
}

/// A fresh namespace for one test; `mode` becomes the opt-in label.
pub async fn namespace(
    client: &Client,
    webhook: &str,
    mode: Option<&str>,
    annotations: Value,
) -> String {
    let name = format!("t-{}", uuid_ish());
    let mut labels = json!({ WEBHOOK_LABEL: webhook });
    if let Some(m) = mode {
        labels["zerodrop.dev/mode"] = json!(m);
    }
    let ns: Namespace = serde_json::from_value(json!({
        "metadata": { "name": name, "labels": labels, "annotations": annotations }
    }))
    .unwrap();
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    // The ServiceAccount admission plugin needs the default ServiceAccount (made by the controller manager).
    let sa: Api<ServiceAccount> = Api::namespaced(client.clone(), &name);
    let started = Instant::now();
    while sa.get_opt("default").await.unwrap().is_none() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no default ServiceAccount"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    name
}

fn uuid_ish() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{:x}{:x}-{}",
        std::process::id(),
        nanos,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

pub struct Reply {
    pub status: u16,
    pub warnings: Vec<String>,
    pub body: Value,
}

impl Reply {
    pub fn ok_status(&self) -> &Self {
        assert!(
            (200..300).contains(&self.status),
            "status {}: {}",
            self.status,
            self.body
        );
        self
    }
}

/// A raw POST, so the apiserver's Warning headers can be read.
pub async fn post(client: &Client, path: &str, body: &Value) -> Reply {
    let req = http::Request::post(path)
        .header("content-type", "application/json")
        .body(kube::client::Body::from(serde_json::to_vec(body).unwrap()))
        .unwrap();
    let resp = client.send(req).await.unwrap();
    let status = resp.status().as_u16();
    let warnings = resp
        .headers()
        .get_all("warning")
        .iter()
        // UTF-8, not `to_str` (visible ASCII only): a clipped warning ends in '…'.
        .filter_map(|v| std::str::from_utf8(v.as_bytes()).ok())
        // Warning: 299 - "text"
        .map(|v| v.trim_start_matches("299 - ").trim_matches('"').to_owned())
        .collect();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    Reply {
        status,
        warnings,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    }
}

pub async fn create_pod(client: &Client, ns: &str, pod: &Value, dry_run: bool) -> Reply {
    let query = if dry_run { "?dryRun=All" } else { "" };
    post(client, &format!("/api/v1/namespaces/{ns}/pods{query}"), pod).await
}

pub fn pod(name: &str, annotations: Value, containers: Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": { "name": name, "annotations": annotations },
        "spec": { "containers": containers }
    })
}

/// A Deployment "shop" of `replicas` pods running `container`.
pub fn deployment(replicas: u32, container: Value) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": { "name": "shop" },
        "spec": { "replicas": replicas, "selector": { "matchLabels": { "app": "shop" } },
            "template": { "metadata": { "labels": { "app": "shop" } }, "spec": { "containers": [container] } } }
    })
}

pub async fn create_deployment(client: &Client, ns: &str, deployment: &Value) -> Reply {
    post(
        client,
        &format!("/apis/apps/v1/namespaces/{ns}/deployments"),
        deployment,
    )
    .await
}

pub fn web() -> Value {
    json!({ "name": "web", "image": "registry.invalid/web:1", "ports": [{ "name": "http", "containerPort": 8080 }] })
}

pub async fn get_pod(client: &Client, ns: &str, name: &str) -> Option<Pod> {
    Api::<Pod>::namespaced(client.clone(), ns)
        .get_opt(name)
        .await
        .unwrap()
}

/// Waits until the webhook answers for `ns` (an enforce namespace): a dry-run pod comes back
/// with the ledger. Webhook configuration changes reach the apiserver with a delay.
pub async fn wait_for_webhook(client: &Client, ns: &str) {
    wait_for(client, ns, Duration::from_secs(60), |p| {
        p.pointer("/metadata/annotations/zerodrop.dev~1injected")
            .is_some()
    })
    .await;
}

/// Waits until a dry-run probe pod created in `ns` comes back with `ready(pod)`: how every
/// test and benchmark learns that a mutator (webhook or policy) has taken effect there.
pub async fn wait_for(
    client: &Client,
    ns: &str,
    timeout: Duration,
    ready: impl Fn(&Value) -> bool,
) {
    let started = Instant::now();
    loop {
        let r = create_pod(client, ns, &pod("probe", json!({}), json!([web()])), true).await;
        if ready(&r.body) {
            return;
        }
        assert!(
            started.elapsed() < timeout,
            "{ns}: not ready after {timeout:?}: {}",
            r.body
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Whether a pod's first container has a preStop hook (what every peer adds).
pub fn has_prestop(pod: &Value) -> bool {
    !pod["spec"]["containers"][0]["lifecycle"]["preStop"].is_null()
}

/// Adds `labels` to namespace `ns` (a merge patch: existing labels stay).
pub async fn label(client: &Client, ns: &str, labels: Value) {
    let patch = json!({ "metadata": { "labels": labels } });
    let req = http::Request::patch(format!("/api/v1/namespaces/{ns}"))
        .header("content-type", "application/merge-patch+json")
        .body(serde_json::to_vec(&patch).unwrap())
        .unwrap();
    client.request::<Value>(req).await.unwrap();
}

pub async fn delete_webhooks(client: &Client, name: &str) {
    let dp = DeleteParams::default();
    let m: Api<k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration> =
        Api::all(client.clone());
    let v: Api<k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration> =
        Api::all(client.clone());
    let _ = m.delete(name, &dp).await;
    let _ = v.delete(name, &dp).await;
}

/// The first pod labelled `app=<app>` in `ns`, waiting up to 30 s for the controller to make it.
pub async fn first_pod(c: &Client, ns: &str, app: &str) -> Value {
    let started = Instant::now();
    loop {
        let req = http::Request::get(format!(
            "/api/v1/namespaces/{ns}/pods?labelSelector=app%3D{app}"
        ))
        .body(Vec::new())
        .unwrap();
        let list: Value = c.request(req).await.unwrap();
        if let Some(p) = list["items"].as_array().and_then(|i| i.first()) {
            return p.clone();
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no pod of {app}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A loopback port free a moment ago, for a server the caller starts next.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
