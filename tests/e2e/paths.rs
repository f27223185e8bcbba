//! The traffic path index against the real apiserver: a pod created after its Service gets the
//! path's sleep and says why, one created before it is `path-changed` in the scan, and Gateway
//! API routes (their CRDs from the published module) count as fronts.

use crate::harness::{Zerodrop, client, free_port};
use crate::scan::{get, scan_flags, until};
use crate::shared_namespace;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use zerodrop_testkit::cluster::{
    Reply, create_pod, namespace, pod, post, register, wait_for_webhook, web,
};

fn labelled(name: &str, app: &str) -> Value {
    let mut p = pod(name, json!({}), json!([web()]));
    p["metadata"]["labels"] = json!({ "app": app });
    p
}

fn sleep_of(p: &Value) -> Option<u64> {
    p.pointer("/spec/containers/0/lifecycle/preStop/sleep/seconds")
        .and_then(Value::as_u64)
}

async fn create_service(c: &kube::Client, ns: &str, service: &Value) {
    post(c, &format!("/api/v1/namespaces/{ns}/services"), service)
        .await
        .ok_status();
}

fn service(name: &str, app: &str, kind: &str, annotations: Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": { "name": name, "annotations": annotations },
        "spec": { "type": kind, "selector": { "app": app }, "ports": [{ "port": 80, "targetPort": 8080 }] }
    })
}

/// Dry-run creates until the index has the Service (a watch event away), then the real create.
async fn create_when_routed(c: &kube::Client, ns: &str, p: &Value, sleep: u64) -> Reply {
    let started = Instant::now();
    loop {
        let dry = create_pod(c, ns, p, true).await;
        dry.ok_status();
        if sleep_of(&dry.body) == Some(sleep) {
            println!(
                "the index had the path {:?} after the Service",
                started.elapsed()
            );
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "sleep {sleep}s not within 15 s: {}",
            dry.body
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let reply = create_pod(c, ns, p, false).await;
    reply.ok_status();
    reply
}

#[tokio::test]
async fn a_pod_created_after_its_service_gets_the_paths_sleep_and_says_why() {
    let (c, ns) = shared_namespace(Some("enforce"), json!({})).await;
    let nlb = json!({
        "service.beta.kubernetes.io/aws-load-balancer-type": "external",
        "service.beta.kubernetes.io/aws-load-balancer-nlb-target-type": "ip"
    });
    create_service(&c, &ns, &service("web", "web", "LoadBalancer", nlb)).await;
    let reply = create_when_routed(&c, &ns, &labelled("web-1", "web"), 125).await;
    assert_eq!(reply.body["spec"]["terminationGracePeriodSeconds"], 150);
    assert!(
        reply
            .warnings
            .iter()
            .any(|w| w.contains("preStop sleep 125s: Service web is an AWS NLB target (ip)")),
        "{:?}",
        reply.warnings
    );
    // Another app's pod in the namespace: nothing selects it, today's default.
    let other = create_pod(&c, &ns, &labelled("api-1", "api"), false).await;
    other.ok_status();
    assert_eq!(sleep_of(&other.body), Some(5));
    // A bad balancer annotation is ignored with a warning; the pod keeps what can be told.
    let bad = json!({ "zerodrop.dev/path-class": "nlb" });
    create_service(&c, &ns, &service("bad", "bad", "LoadBalancer", bad)).await;
    let reply = create_when_routed(&c, &ns, &labelled("bad-1", "bad"), 15).await;
    assert!(
        reply
            .warnings
            .iter()
            // The Warning header escapes the quotes around the value.
            .any(|w| w.contains("ignored zerodrop.dev/path-class=") && w.contains("nlb")),
        "{:?}",
        reply.warnings
    );
}

#[tokio::test]
async fn a_pod_created_before_its_service_is_path_changed_in_the_scan() {
    crate::audit::policy_reports().await;
    let c = client().await;
    let name = "paths-scan";
    let zd = Zerodrop::start_with(
        free_port(),
        &scan_flags(name, name, "e2e.zerodrop.dev/webhook=paths-scan"),
    );
    register(&c, name, zd.tls_port, &zd.ca_pem).await;
    zd.wait_ready().await;
    let ns = namespace(&c, name, Some("enforce"), json!({})).await;
    wait_for_webhook(&c, &ns).await;
    let admitted = create_pod(&c, &ns, &labelled("web-1", "web"), false).await;
    admitted.ok_status();
    assert_eq!(sleep_of(&admitted.body), Some(5));
    let alb = json!({ "zerodrop.dev/path-class": "aws-alb" });
    create_service(&c, &ns, &service("web", "web", "ClusterIP", alb)).await;
    let series = format!(r#"zerodrop_unprotected_pods{{namespace="{ns}",reason="path-changed"}}"#);
    until(
        "path-changed in the gauge",
        Duration::from_secs(30),
        async || (zd.metric(&series).await == Some(1.0)).then_some(()),
    )
    .await;
    // ... and in the namespace's PolicyReport, saying why.
    let path = format!("/apis/wgpolicyk8s.io/v1alpha2/namespaces/{ns}/policyreports/zerodrop");
    until(
        "path-changed in the PolicyReport",
        Duration::from_secs(30),
        async || {
            let report = get(&c, &path).await?;
            report["results"].as_array()?.iter().find(|r| {
                r["rule"] == "escaped"
                    && r["result"] == "fail"
                    && r["message"].as_str().is_some_and(|m| {
                        m.contains("traffic path got slower")
                            && m.contains("container web sleeps 5s")
                            && m.contains("needs 20s")
                    })
            })?;
            Some(())
        },
    )
    .await;
    // The pod created now gets the path's sleep, and is not counted.
    create_when_routed(&c, &ns, &labelled("web-2", "web"), 20).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(zd.metric(&series).await, Some(1.0));
}

/// Installs the standard HTTPRoute CRD from the Gateway API module (tools/gateway-api/crds.sh).
async fn http_routes(c: &kube::Client) {
    static CRD: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    CRD.get_or_init(|| async {
        let dir = std::env::var("ZERODROP_GATEWAY_CRDS").expect(
            "ZERODROP_GATEWAY_CRDS: run through scripts/test.sh (tools/gateway-api/crds.sh)",
        );
        zerodrop_testkit::paths_apiserver::install_http_routes(c, &dir).await;
    })
    .await;
}

#[tokio::test]
async fn gateway_api_routes_are_fronts_of_their_services() {
    let c = client().await;
    http_routes(&c).await;
    // Its own replica: it discovers the route kinds at start and lists them before it is ready.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    std::fs::write(&config, "path-classes:\n  ingress: 9s\n").unwrap();
    let name = "paths-routes";
    let zd = Zerodrop::start_with(free_port(), &["--config", config.to_str().unwrap()]);
    register(&c, name, zd.tls_port, &zd.ca_pem).await;
    zd.wait_ready().await;
    let ns = namespace(&c, name, Some("enforce"), json!({})).await;
    wait_for_webhook(&c, &ns).await;
    create_service(&c, &ns, &service("web", "web", "ClusterIP", json!({}))).await;
    let route = json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
        "metadata": { "name": "shop" },
        "spec": { "rules": [{ "backendRefs": [{ "name": "web", "port": 80 }] }] }
    });
    post(
        &c,
        &format!("/apis/gateway.networking.k8s.io/v1/namespaces/{ns}/httproutes"),
        &route,
    )
    .await
    .ok_status();
    let reply = create_when_routed(&c, &ns, &labelled("web-1", "web"), 9).await;
    assert!(
        reply
            .warnings
            .iter()
            .any(|w| w.contains("preStop sleep 9s: Service web is a backend of HTTPRoute shop")),
        "{:?}",
        reply.warnings
    );
    let fronts = zd.metric("zerodrop_path_index_fronts").await.unwrap();
    assert!(fronts >= 1.0, "{fronts}");
}
