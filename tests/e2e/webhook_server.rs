//! A small HTTPS webhook server the tests register with the real apiserver: the fixture
//! recorder and the reinvocation injectors. It answers each AdmissionReview with `answer`.

use axum::Router;
use axum::body::Bytes;
use axum::routing::post;
use serde_json::{Value, json};
use std::sync::Arc;

pub struct Server {
    pub port: u16,
    pub ca_pem: String,
    pub task: tokio::task::JoinHandle<()>,
}

/// Serves POST /<any path> with `answer(review) -> response` (uid filled in, `allowed` defaults
/// to true) over TLS with a fresh certificate for 127.0.0.1.
pub async fn serve<F>(answer: F) -> Server
where
    F: Fn(&Value) -> Value + Clone + Send + Sync + 'static,
{
    let ip = "127.0.0.1".parse().unwrap();
    let b =
        zerodrop::certs::generate(&["localhost".into()], &[ip], time::Duration::days(1)).unwrap();
    let loaded = zerodrop::certs::load_pair(b.cert_pem.as_bytes(), b.key_pem.as_bytes()).unwrap();
    let config =
        zerodrop::server::tls::server_config(zerodrop::certs::Resolver::new(loaded.key), None)
            .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let handler = move |body: Bytes| {
        let answer = answer.clone();
        async move {
            let review: Value = serde_json::from_slice(&body).unwrap();
            let mut response = answer(&review);
            response["uid"] = review["request"]["uid"].clone();
            if response.get("allowed").is_none() {
                response["allowed"] = json!(true);
            }
            let out = json!({
                "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response
            });
            ([("content-type", "application/json")], out.to_string())
        }
    };
    let app = Router::new().route("/{*path}", post(handler));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let acceptor = acceptor.clone();
            let svc = hyper_util::service::TowerToHyperService::new(app.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), svc)
                    .await;
            });
        }
    });
    Server {
        port,
        ca_pem: b.ca_cert_pem,
        task,
    }
}

/// A mesh-injector-like webhook, registered as MutatingWebhookConfiguration `name` (named to
/// sort after the webhook under test, so the apiserver calls it later): appends `container`
/// (named `injected`) to every pod of a namespace labelled `label: yes`; the webhook under test
/// sees it only if the apiserver reinvokes it.
pub async fn injector(c: &kube::Client, name: &str, label: &str, container: Value) -> Server {
    use base64::Engine as _;
    let server = serve(move |review: &Value| {
        let has = review["request"]["object"]["spec"]["containers"]
            .as_array()
            .is_some_and(|cs| cs.iter().any(|c| c["name"] == "injected"));
        if has {
            return json!({});
        }
        let patch = json!([{ "op": "add", "path": "/spec/containers/-", "value": container }]);
        json!({ "patchType": "JSONPatch",
            "patch": base64::engine::general_purpose::STANDARD.encode(patch.to_string()) })
    })
    .await;
    let config = json!({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
        "metadata": { "name": name },
        "webhooks": [{
            "name": format!("{name}.e2e.zerodrop.dev"),
            "clientConfig": { "url": format!("https://127.0.0.1:{}/inject", server.port),
                "caBundle": base64::engine::general_purpose::STANDARD.encode(&server.ca_pem) },
            "rules": [{ "apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["pods"] }],
            "namespaceSelector": { "matchLabels": { label: "yes" } },
            "sideEffects": "None", "failurePolicy": "Fail", "reinvocationPolicy": "Never",
            "timeoutSeconds": 5, "admissionReviewVersions": ["v1"]
        }]
    });
    let r = zerodrop_testkit::cluster::post(
        c,
        "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations",
        &config,
    )
    .await;
    assert!(matches!(r.status, 201 | 409), "{}", r.body);
    server
}
