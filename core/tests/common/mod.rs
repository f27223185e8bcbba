//! What the engine's rule tests share: pods, an enforce namespace, and a run that applies the
//! patch and checks that a second evaluation is empty.

#![allow(dead_code)] // each test file uses part of it

use serde_json::{Value, json};
use zerodrop_core::engine::{Capabilities, Decision, Engine, Workload};
use zerodrop_core::findings::Code;
use zerodrop_core::policy::{ClusterPolicy, Layer};

pub fn enforce_ns() -> Layer {
    Layer::for_namespace(Some("enforce"), [])
}

pub fn pod(annotations: Value, containers: Value) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": { "name": "web-1", "namespace": "shop", "annotations": annotations },
        "spec": { "containers": containers }
    })
}

pub fn web() -> Value {
    json!({ "name": "web", "image": "shop:1", "ports": [{ "name": "http", "containerPort": 8080 }] })
}

/// Evaluates, applies the patch, and checks idempotence; returns the decision and patched pod.
pub fn run_with(engine: &Engine, obj: &Value, workload: Workload, ns: &Layer) -> (Decision, Value) {
    let decision = engine.evaluate(obj, workload, ns);
    let mut patched = obj.clone();
    json_patch::patch(&mut patched, &decision.patch).expect("patch applies");
    let again = engine.evaluate(&patched, workload, ns);
    assert!(
        again.patch.0.is_empty(),
        "second pass not empty: {:?}",
        again.patch
    );
    (decision, patched)
}

pub fn run(obj: &Value) -> (Decision, Value) {
    run_with(
        &Engine::new(ClusterPolicy::default(), Capabilities::LATEST),
        obj,
        Workload::Pod,
        &enforce_ns(),
    )
}

pub fn codes(d: &Decision) -> Vec<Code> {
    d.findings.iter().map(|f| f.code).collect()
}
