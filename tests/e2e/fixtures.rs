//! Captures the AdmissionReview requests the real apiserver sends (tests/fixtures/admission/)
//! and checks the in-process handler agrees with what the running webhook did.
//!
//! A recorder webhook named `aaa-recorder` is called before zerodrop's (the apiserver calls
//! webhook configurations in name order), so it sees the objects as clients sent them.
//! Set ZERODROP_UPDATE_FIXTURES=1 to rewrite the saved fixtures.

use crate::harness::client;
use crate::webhook_server::serve;
use crate::{SHARED, shared};
use base64::Engine as _;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use zerodrop_core::admission::{Context, Endpoint, handle};
use zerodrop_core::engine::{Capabilities, Engine};
use zerodrop_core::policy::{ClusterPolicy, Layer};
use zerodrop_testkit::cluster::{WEBHOOK_LABEL, create_pod, namespace, pod, post, web};

type Captured = Arc<Mutex<Vec<Value>>>;

async fn recorder() -> (u16, String, Captured, tokio::task::JoinHandle<()>) {
    let captured: Captured = Arc::default();
    let store = captured.clone();
    let server = serve(move |review: &Value| {
        store.lock().unwrap().push(review.clone());
        json!({})
    })
    .await;
    (server.port, server.ca_pem, captured, server.task)
}

#[tokio::test]
async fn real_apiserver_requests_match_the_in_process_handler() {
    shared().await;
    let c = client().await;
    let (port, ca, captured, task) = recorder().await;
    let ca = base64::engine::general_purpose::STANDARD.encode(ca);
    let selector = json!({ "matchLabels": { "e2e.zerodrop.dev/record": "yes" } });
    let hook = |rules: Value| {
        json!({
            "name": "record.zerodrop.dev",
            "clientConfig": { "url": format!("https://127.0.0.1:{port}/record"), "caBundle": ca },
            "rules": rules, "namespaceSelector": selector, "sideEffects": "None", "failurePolicy": "Fail",
            "timeoutSeconds": 5, "admissionReviewVersions": ["v1"]
        })
    };
    let pods = json!([{ "apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["pods"] }]);
    let apps = json!([{ "apiGroups": ["apps"], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"], "resources": ["deployments"] }]);
    let m = json!({ "apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
        "metadata": { "name": "aaa-recorder" }, "webhooks": [hook(pods)] });
    let v = json!({ "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
        "metadata": { "name": "aaa-recorder" }, "webhooks": [hook(apps)] });
    post(
        &c,
        "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations",
        &m,
    )
    .await
    .ok_status();
    post(
        &c,
        "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations",
        &v,
    )
    .await
    .ok_status();

    let ns = namespace(
        &c,
        SHARED,
        Some("enforce"),
        json!({ "zerodrop.dev/drain-timeout": "30s" }),
    )
    .await;
    let labelled = json!({ "metadata": { "labels": { "e2e.zerodrop.dev/record": "yes", WEBHOOK_LABEL: SHARED } } });
    let patch = kube::api::Patch::Merge(&labelled);
    kube::api::Api::<k8s_openapi::api::core::v1::Namespace>::all(c.clone())
        .patch(&ns, &Default::default(), &patch)
        .await
        .unwrap();

    // Wait (with dry-run probes) until both webhooks see this namespace's pods.
    let started = std::time::Instant::now();
    let mut pod_sent = pod(
        "shop-web",
        json!({ "zerodrop.dev/readiness-path": "/ready" }),
        json!([web()]),
    );
    pod_sent["spec"]["containers"][0]["readinessProbe"] = json!({ "tcpSocket": { "port": 8080 } });
    loop {
        let r = create_pod(&c, &ns, &pod_sent, true).await;
        let recorded = captured
            .lock()
            .unwrap()
            .iter()
            .any(|r| r["request"]["dryRun"] == true);
        if recorded
            && r.body
                .pointer("/metadata/annotations/zerodrop.dev~1injected")
                .is_some()
        {
            break;
        }
        assert!(
            started.elapsed().as_secs() < 60,
            "recorder never saw a request"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let stored = create_pod(&c, &ns, &pod_sent, false).await;
    stored.ok_status();
    let deployment = zerodrop_testkit::cluster::deployment(1, web());
    zerodrop_testkit::cluster::create_deployment(&c, &ns, &deployment)
        .await
        .ok_status();
    delete_recorder(&c).await;
    task.abort();

    let all = captured.lock().unwrap().clone();
    let pick = |f: &dyn Fn(&Value) -> bool| {
        all.iter()
            .rev()
            .find(|r| f(&r["request"]))
            .cloned()
            .expect("captured")
    };
    let dry = pick(&|r| r["kind"]["kind"] == "Pod" && r["dryRun"] == true);
    let create =
        pick(&|r| r["kind"]["kind"] == "Pod" && r["dryRun"] == false && r["name"] == "shop-web");
    let deploy = pick(&|r| r["kind"]["kind"] == "Deployment");

    // The in-process handler, fed the captured request, produces what the webhook stored.
    let engine = Engine::new(ClusterPolicy::default(), Capabilities::LATEST);
    let mut namespaces = std::collections::HashMap::new();
    namespaces.insert(
        ns.clone(),
        std::sync::Arc::new(Layer::for_namespace(
            Some("enforce"),
            [("zerodrop.dev/drain-timeout", "30s")],
        )),
    );
    let ctx = Context {
        engine: &engine,
        cache: None,
        namespaces: &namespaces,
        unknown_namespace_mode: zerodrop_core::policy::Mode::Audit,
        images: None,
        paths: None,
    };
    let outcome = handle(
        Endpoint::Mutate,
        &serde_json::to_vec(&create).unwrap(),
        &ctx,
    )
    .unwrap();
    let patch_bytes = base64::engine::general_purpose::STANDARD
        .decode(answered(&outcome)["patch"].as_str().unwrap())
        .unwrap();
    let patch: json_patch::Patch = serde_json::from_slice(&patch_bytes).unwrap();
    let mut ours = create["request"]["object"].clone();
    json_patch::patch(&mut ours, &patch).unwrap();
    let theirs = &stored.body;
    for pointer in [
        "/spec/containers/0/lifecycle",
        "/spec/containers/0/readinessProbe/httpGet",
        "/spec/terminationGracePeriodSeconds",
        "/metadata/annotations",
    ] {
        assert_eq!(ours.pointer(pointer), theirs.pointer(pointer), "{pointer}");
    }
    let advice = handle(
        Endpoint::Validate,
        &serde_json::to_vec(&deploy).unwrap(),
        &ctx,
    )
    .unwrap();
    let warnings = answered(&advice)["warnings"].clone();
    assert!(
        warnings
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap().contains("preStop sleep 5s")),
        "{warnings}"
    );

    if std::env::var_os("ZERODROP_UPDATE_FIXTURES").is_some() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/admission");
        std::fs::create_dir_all(&dir).unwrap();
        for (name, review) in [
            ("pod-create", &create),
            ("pod-create-dry-run", &dry),
            ("deployment-create", &deploy),
        ] {
            let text = serde_json::to_string_pretty(review).unwrap();
            std::fs::write(dir.join(format!("{name}.json")), text + "\n").unwrap();
        }
    }
}

async fn delete_recorder(c: &kube::Client) {
    zerodrop_testkit::cluster::delete_webhooks(c, "aaa-recorder").await;
}

/// The AdmissionReview response the outcome is sent as.
fn answered(outcome: &zerodrop_core::admission::Outcome) -> Value {
    let review: Value = serde_json::from_slice(&outcome.encode()).unwrap();
    review["response"].clone()
}
