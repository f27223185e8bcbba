//! Engine cost on a typical Deployment pod (~8 KB compact JSON), next to the JSON parse it
//! always follows, so the ratio is visible in one run.

// A measuring tool, not the request path: a failed step aborts the run with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::Value;
use std::hint::black_box;
use zerodrop_core::engine::{Capabilities, Engine, Workload};
use zerodrop_core::policy::{ClusterPolicy, Layer};

fn typical_pod() -> Vec<u8> {
    let text = include_str!("../tests/fixtures/pod-typical.json");
    let v: Value = serde_json::from_str(text).expect("fixture is JSON");
    serde_json::to_vec(&v).expect("serialise")
}

fn engine(c: &mut Criterion) {
    let bytes = typical_pod();
    let pod: Value = serde_json::from_slice(&bytes).expect("fixture is JSON");
    let engine = Engine::new(ClusterPolicy::default(), Capabilities::LATEST);
    let ns = Layer::for_namespace(Some("enforce"), []);
    let mut group = c.benchmark_group(format!("typical-pod-{}B", bytes.len()));
    group.bench_function("parse (floor)", |b| {
        b.iter(|| serde_json::from_slice::<Value>(black_box(&bytes)).expect("parse"))
    });
    group.bench_function("evaluate", |b| {
        b.iter(|| engine.evaluate(black_box(&pod), Workload::Pod, &ns))
    });
    group.finish();
}

criterion_group!(benches, engine);
criterion_main!(benches);
