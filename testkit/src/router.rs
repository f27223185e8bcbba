//! In-process router helpers for the tests: state over a fixed namespace map, one call.

use axum::body::{Body, to_bytes};
use axum::http::{Method, Request, StatusCode};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use tower::ServiceExt;
use zerodrop::metrics::Metrics;
use zerodrop::server::{Backend, State, router};
use zerodrop_core::admission::NamespaceLookup;
use zerodrop_core::engine::{Capabilities, Engine};
use zerodrop_core::policy::{ClusterPolicy, Layer, Mode};

pub fn fixture(name: &str) -> Value {
    let path = crate::root().join(format!("tests/fixtures/admission/{name}.json"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

pub fn namespace_of(review: &Value) -> String {
    review["request"]["namespace"].as_str().unwrap().to_owned()
}

pub fn state_with(namespaces: Arc<dyn NamespaceLookup>, ready: bool) -> Arc<State> {
    let mut backend = Backend::fixed(
        Engine::new(ClusterPolicy::default(), Capabilities::LATEST),
        namespaces,
        1024,
    );
    backend.unsynced = Box::new(move || (!ready).then_some("namespace cache not synced"));
    let metrics = Arc::new(Metrics::new());
    Arc::new(State::new(
        backend,
        Mode::Audit,
        metrics,
        Default::default(),
    ))
}

pub fn state(review: &Value, mode: &str) -> Arc<State> {
    let mut map = HashMap::new();
    map.insert(
        namespace_of(review),
        Arc::new(Layer::for_namespace(Some(mode), [])),
    );
    state_with(Arc::new(map), true)
}

pub async fn call(
    state: Arc<State>,
    method: Method,
    path: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> (StatusCode, Vec<u8>) {
    let mut req = Request::builder().method(method).uri(path);
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    let app = if path.starts_with("/mutate") || path.starts_with("/validate") || path == "/other" {
        router::admission(state)
    } else {
        router::admin(state)
    };
    let resp = app
        .oneshot(req.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    (
        status,
        to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap()
            .to_vec(),
    )
}

/// A POST that must answer 200 with a well-formed AdmissionReview for the same uid; its response.
pub async fn review(state: Arc<State>, path: &str, body: &Value) -> Value {
    let (status, bytes) = call(
        state,
        Method::POST,
        path,
        Some("application/json"),
        serde_json::to_vec(body).unwrap(),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&bytes)
    );
    // Strictly: a key named twice would break the apiserver's decoder.
    let out = crate::strict_json::parse(&bytes).unwrap();
    assert_eq!(out["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(out["kind"], "AdmissionReview");
    assert_eq!(out["response"]["uid"], body["request"]["uid"]);
    assert_eq!(out["response"]["allowed"], true);
    out["response"].clone()
}
