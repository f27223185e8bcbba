//! The admission and admin routes in-process, fed AdmissionReviews captured from the real
//! apiserver (tests/fixtures/admission, written by the e2e fixtures test).

use zerodrop_testkit::router as support;

use axum::http::{Method, StatusCode};
use base64::Engine as _;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use support::{call, fixture, review, state, state_with};
use zerodrop_core::admission::NamespaceLookup;
use zerodrop_core::policy::Layer;

fn decode_patch(response: &Value) -> json_patch::Patch {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(response["patch"].as_str().unwrap())
        .unwrap();
    serde_json::from_slice(&raw).unwrap()
}

#[tokio::test]
async fn enforce_pod_create_gets_a_patch_that_applies() {
    let req = fixture("pod-create");
    let resp = review(state(&req, "enforce"), "/mutate", &req).await;
    assert_eq!(resp["patchType"], "JSONPatch");
    let mut pod = req["request"]["object"].clone();
    json_patch::patch(&mut pod, &decode_patch(&resp)).unwrap();
    let c = &pod["spec"]["containers"][0];
    assert_eq!(c["lifecycle"]["preStop"]["sleep"]["seconds"], 5);
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/ready");
    assert!(c["readinessProbe"].get("tcpSocket").is_none());
    assert!(pod["metadata"]["annotations"]["zerodrop.dev/injected"].is_string());
    assert_eq!(resp["auditAnnotations"]["mode"], "enforce");
    assert!(
        resp["auditAnnotations"]["changes"]
            .as_str()
            .unwrap()
            .contains("preStop sleep 5s")
    );
}

#[tokio::test]
async fn audit_mode_answers_without_patch_but_says_what_it_would_do() {
    let req = fixture("pod-create");
    let st = state(&req, "audit");
    let resp = review(st.clone(), "/mutate", &req).await;
    assert!(resp.get("patch").is_none() && resp.get("patchType").is_none());
    let warnings: Vec<&str> = resp["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap())
        .collect();
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("would set web: preStop sleep 5s")),
        "{warnings:?}"
    );
    let would: json_patch::Patch =
        serde_json::from_str(resp["auditAnnotations"]["would-patch"].as_str().unwrap()).unwrap();
    assert!(!would.0.is_empty());
    let (_, metrics) = call(st, Method::GET, "/metrics", None, Vec::new()).await;
    let metrics = String::from_utf8(metrics).unwrap();
    assert!(
        metrics.contains("zerodrop_audit_would_mutate_total 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn dry_run_gets_the_same_answer() {
    let wet = fixture("pod-create");
    let mut dry = fixture("pod-create-dry-run");
    assert_eq!(dry["request"]["dryRun"], true);
    dry["request"]["namespace"] = wet["request"]["namespace"].clone();
    let st = state(&wet, "enforce");
    let a = review(st.clone(), "/mutate", &wet).await;
    let b = review(st, "/mutate", &dry).await;
    assert_eq!(decode_patch(&a), decode_patch(&b));
}

#[tokio::test]
async fn unknown_namespaces_fall_back_to_the_configured_mode() {
    let req = fixture("pod-create");
    let resp = review(
        state_with(Arc::new(HashMap::<String, Arc<Layer>>::new()), true),
        "/mutate",
        &req,
    )
    .await;
    assert!(resp.get("patch").is_none());
    assert_eq!(resp["auditAnnotations"]["mode"], "audit");
}

#[tokio::test]
async fn other_operations_kinds_and_subresources_are_allowed_untouched() {
    let base = fixture("pod-create");
    let st = state(&base, "enforce");
    let edits: [(&str, Value); 5] = [
        ("/request/operation", json!("UPDATE")),
        ("/request/operation", json!("DELETE")),
        ("/request/subResource", json!("status")),
        (
            "/request/kind",
            json!({ "group": "apps", "version": "v1", "kind": "Deployment" }),
        ),
        (
            "/request/kind",
            json!({ "group": "", "version": "v1", "kind": "ConfigMap" }),
        ),
    ];
    for (pointer, value) in edits {
        let mut req = base.clone();
        let field = pointer.trim_start_matches("/request/");
        req["request"][field] = value;
        let resp = review(st.clone(), "/mutate", &req).await;
        assert!(resp.get("patch").is_none(), "{pointer}");
        assert!(resp.get("warnings").is_none(), "{pointer}");
    }
}

#[tokio::test]
async fn workloads_get_warnings_never_patches() {
    let req = fixture("deployment-create");
    let st = state(&req, "enforce");
    let resp = review(st.clone(), "/validate", &req).await;
    assert!(resp.get("patch").is_none());
    let warnings = resp["warnings"].as_array().unwrap();
    assert!(
        warnings.iter().any(|w| w
            .as_str()
            .unwrap()
            .contains("will set web: preStop sleep 5s")),
        "{warnings:?}"
    );

    // A CronJob's pods run to completion: nothing to say.
    let mut cron = req.clone();
    cron["request"]["kind"] = json!({ "group": "batch", "version": "v1", "kind": "CronJob" });
    let template = req["request"]["object"]["spec"]["template"].clone();
    cron["request"]["object"]["spec"] =
        json!({ "schedule": "* * * * *", "jobTemplate": { "spec": { "template": template } } });
    let resp = review(st, "/validate", &cron).await;
    assert!(resp.get("warnings").is_none(), "{resp}");
}

#[tokio::test]
async fn warnings_stay_within_budget() {
    let mut req = fixture("pod-create");
    let mut containers = Vec::new();
    for i in 0..12 {
        containers.push(json!({ "name": format!("c{i}"), "image": "i", "command": ["sh", "-c", "a && b"],
            "ports": [{ "containerPort": 80 }], "readinessProbe": { "tcpSocket": { "port": 80 } } }));
    }
    req["request"]["object"]["spec"]["containers"] = json!(containers);
    let resp = review(state(&req, "enforce"), "/mutate", &req).await;
    let warnings = resp["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 8);
    assert!(
        warnings[7].as_str().unwrap().contains("more"),
        "{warnings:?}"
    );
    for w in warnings {
        assert!(w.as_str().unwrap().chars().count() <= 120, "{w}");
    }
}

#[tokio::test]
async fn malformed_reviews_get_400_with_a_reason() {
    let base = fixture("pod-create");
    let st = state(&base, "enforce");
    let mut wrong_version = base.clone();
    wrong_version["apiVersion"] = json!("admission.k8s.io/v1beta1");
    let mut wrong_kind = base.clone();
    wrong_kind["kind"] = json!("Pod");
    let mut no_request = base.clone();
    no_request.as_object_mut().unwrap().remove("request");
    let mut no_uid = base.clone();
    no_uid["request"].as_object_mut().unwrap().remove("uid");
    let cases: [(Vec<u8>, &str); 6] = [
        (b"{not json".to_vec(), "not valid JSON"),
        (Vec::new(), "not valid JSON"),
        (
            serde_json::to_vec(&wrong_version).unwrap(),
            "apiVersion must be admission.k8s.io/v1",
        ),
        (
            serde_json::to_vec(&wrong_kind).unwrap(),
            "kind must be AdmissionReview",
        ),
        (serde_json::to_vec(&no_request).unwrap(), "no request"),
        (serde_json::to_vec(&no_uid).unwrap(), "no uid"),
    ];
    for (body, reason) in cases {
        let (status, text) = call(
            st.clone(),
            Method::POST,
            "/mutate",
            Some("application/json"),
            body,
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let text = String::from_utf8(text).unwrap();
        assert!(text.contains(reason) && text.lines().count() == 1, "{text}");
    }
}

#[tokio::test]
async fn transport_errors_have_their_status() {
    let req = fixture("pod-create");
    let st = state(&req, "enforce");
    let body = serde_json::to_vec(&req).unwrap();
    let (s, _) = call(
        st.clone(),
        Method::POST,
        "/mutate",
        Some("text/plain"),
        body.clone(),
    )
    .await;
    assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let (s, _) = call(st.clone(), Method::POST, "/mutate", None, body.clone()).await;
    assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let (s, _) = call(
        st.clone(),
        Method::POST,
        "/mutate",
        Some("application/json; charset=utf-8"),
        body.clone(),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = call(
        st.clone(),
        Method::POST,
        "/mutate",
        Some("application/json"),
        vec![b' '; 9 * 1024 * 1024],
    )
    .await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    let (_, metrics) = call(st.clone(), Method::GET, "/metrics", None, Vec::new()).await;
    let metrics = String::from_utf8(metrics).unwrap();
    assert!(
        metrics.contains(
            r#"zerodrop_admission_requests_total{endpoint="mutate",operation="",result="too-large"} 1"#
        ),
        "{metrics}"
    );
    let (s, _) = call(st.clone(), Method::GET, "/mutate", None, Vec::new()).await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED);
    let (s, _) = call(st, Method::POST, "/other", Some("application/json"), body).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

struct Panics;
impl NamespaceLookup for Panics {
    fn layer(&self, _: &str) -> Option<Arc<Layer>> {
        panic!("lookup exploded")
    }
}

#[tokio::test]
async fn a_panic_becomes_a_500_and_the_router_keeps_serving() {
    let req = fixture("pod-create");
    let st = state_with(Arc::new(Panics), true);
    let body = serde_json::to_vec(&req).unwrap();
    let (s, _) = call(
        st.clone(),
        Method::POST,
        "/mutate",
        Some("application/json"),
        body.clone(),
    )
    .await;
    assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR);
    // The same router instance still answers the next request.
    let (s, _) = call(
        st,
        Method::POST,
        "/mutate",
        Some("application/json"),
        b"{}".to_vec(),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn admin_endpoints() {
    let ready = state_with(Arc::new(HashMap::<String, Arc<Layer>>::new()), true);
    let (s, _) = call(ready.clone(), Method::GET, "/healthz", None, Vec::new()).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = call(ready, Method::GET, "/readyz", None, Vec::new()).await;
    assert_eq!(s, StatusCode::OK);
    let syncing = state_with(Arc::new(HashMap::<String, Arc<Layer>>::new()), false);
    let (s, body) = call(syncing, Method::GET, "/readyz", None, Vec::new()).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    assert!(String::from_utf8(body).unwrap().contains("namespace cache"));
    let expired = state_with(Arc::new(HashMap::<String, Arc<Layer>>::new()), true);
    expired.metrics.cert_expiry.set(1_000_000);
    let (s, body) = call(expired, Method::GET, "/readyz", None, Vec::new()).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        String::from_utf8(body)
            .unwrap()
            .contains("certificate expired")
    );
}

#[tokio::test]
async fn identical_requests_are_answered_from_the_cache_with_their_own_uid() {
    let first = fixture("pod-create");
    let st = state(&first, "enforce");
    let a = review(st.clone(), "/mutate", &first).await;
    let mut second = first.clone();
    second["request"]["uid"] = json!("another-uid");
    let b = review(st.clone(), "/mutate", &second).await;
    assert_eq!(b["uid"], "another-uid");
    let (mut a2, mut b2) = (a.clone(), b.clone());
    a2["uid"] = json!(null);
    b2["uid"] = json!(null);
    assert_eq!(a2, b2);
    // A different pod (here: its policy annotation) is a different key.
    let mut third = first.clone();
    third["request"]["object"]["metadata"]["annotations"]["zerodrop.dev/prestop-sleep"] =
        json!("9s");
    let c = review(st.clone(), "/mutate", &third).await;
    assert!(decode_patch(&c).0.len() >= 2);
    assert_ne!(decode_patch(&c), decode_patch(&a));
    let (_, metrics) = call(st, Method::GET, "/metrics", None, Vec::new()).await;
    let metrics = String::from_utf8(metrics).unwrap();
    assert!(
        metrics.contains("zerodrop_decision_cache_hits_total 1"),
        "{metrics}"
    );
}

/// A namespace whose policy changes while the server runs.
struct Changing(std::sync::Mutex<Layer>);
impl NamespaceLookup for Changing {
    fn layer(&self, _: &str) -> Option<Arc<Layer>> {
        Some(Arc::new(self.0.lock().unwrap().clone()))
    }
}

#[tokio::test]
async fn a_namespace_policy_change_is_never_answered_from_the_cache() {
    let req = fixture("pod-create");
    let lookup = Arc::new(Changing(std::sync::Mutex::new(Layer::for_namespace(
        Some("enforce"),
        [],
    ))));
    let st = state_with(lookup.clone(), true);
    let enforce = review(st.clone(), "/mutate", &req).await;
    assert!(enforce.get("patch").is_some());
    *lookup.0.lock().unwrap() = Layer::for_namespace(Some("audit"), []);
    let audit = review(st.clone(), "/mutate", &req).await;
    assert!(
        audit.get("patch").is_none(),
        "served the enforce answer after the switch to audit"
    );
    *lookup.0.lock().unwrap() =
        Layer::for_namespace(Some("enforce"), [("zerodrop.dev/prestop-sleep", "9s")]);
    let slower = review(st, "/mutate", &req).await;
    assert_ne!(decode_patch(&slower), decode_patch(&enforce));
}
