//! Real-shaped AdmissionReview bodies for benchmarks: small (captured from the apiserver),
//! typical (a Deployment pod with several containers, env, volumes, probes) and large (~1 MiB).

use serde_json::{Value, json};

const CAPTURED: &str = include_str!("../../tests/fixtures/admission/pod-create.json");
const TYPICAL_POD: &str = include_str!("../../tests/fixtures/pod-typical.json");

fn envelope(object: Value) -> Value {
    let mut review: Value = serde_json::from_str(CAPTURED).expect("captured fixture");
    review["request"]["object"] = object;
    review
}

/// The namespace the reviews are in (treat it as `enforce`).
pub fn namespace() -> String {
    let review: Value = serde_json::from_str(CAPTURED).expect("captured fixture");
    review["request"]["namespace"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

pub fn small() -> Vec<u8> {
    let review: Value = serde_json::from_str(CAPTURED).expect("captured fixture");
    serde_json::to_vec(&review).expect("serialise")
}

pub fn typical() -> Vec<u8> {
    let pod: Value = serde_json::from_str(TYPICAL_POD).expect("typical pod");
    serde_json::to_vec(&envelope(pod)).expect("serialise")
}

/// ~1 MiB: 40 containers with 60 env vars each and 1,500 annotations.
pub fn large() -> Vec<u8> {
    let mut pod: Value = serde_json::from_str(TYPICAL_POD).expect("typical pod");
    let template = pod["spec"]["containers"][0].clone();
    let containers: Vec<Value> = (0..40)
        .map(|i| {
            let mut c = template.clone();
            c["name"] = json!(format!("c{i}"));
            c["ports"] = json!([{ "name": "http", "containerPort": 8000 + i }]);
            c["env"] = json!((0..60)
                .map(|e| json!({ "name": format!("SETTING_{i}_{e}"), "value": format!("value-{e}-{}", "x".repeat(200)) }))
                .collect::<Vec<_>>());
            c
        })
        .collect();
    pod["spec"]["containers"] = json!(containers);
    let annotations = pod["metadata"]["annotations"]
        .as_object_mut()
        .expect("annotations");
    for i in 0..1500 {
        annotations.insert(format!("example.com/key-{i}"), json!("y".repeat(96)));
    }
    serde_json::to_vec(&envelope(pod)).expect("serialise")
}
