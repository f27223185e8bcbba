//! The traffic path index at scale (10,000 Services, 1,000 Ingresses and routes): its memory,
//! one lookup for the typical pod beside an unrouted one and the worst case (1,000 Services
//! sharing their first selector pair), and the admission path with it, side by side with the
//! same without an index, cached and uncached.

// A measuring tool, not the request path: a failed step aborts the run with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;
use zerodrop_core::admission::cache::DecisionCache;
use zerodrop_core::admission::{Context, Endpoint, handle};
use zerodrop_core::engine::{Capabilities, Engine};
use zerodrop_core::paths::PathIndex;
use zerodrop_core::policy::{ClusterPolicy, Layer, Mode};
use zerodrop_testkit::{paths, reviews};

/// Resident memory of this process, in KiB (Linux).
fn rss_kib() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4
}

fn labels(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

fn index_at_scale(c: &mut Criterion) {
    let ns = reviews::namespace();
    let objects = paths::objects(&ns);
    let before = rss_kib();
    let mut index = PathIndex::new();
    for obj in &objects {
        index.add_object(obj);
    }
    let grown = rss_kib().saturating_sub(before);
    eprintln!(
        "path index: {} Services, {} fronts; resident memory grew {:.1} MiB while building it",
        index.services(),
        index.fronts(),
        grown as f64 / 1024.0
    );
    let pod = labels(
        json!({ "app.kubernetes.io/name": "shop-web", "app.kubernetes.io/part-of": "shop",
                             "pod-template-hash": "7d9f8b6c5d", "version": "v2.14.3" }),
    );
    assert_eq!(index.lookup(&ns, Some(&pod)).routes.len(), 3);
    let unrouted = labels(json!({ "app": "worker", "pod-template-hash": "5d" }));
    let shared = labels(json!({ "tier": "web", "zone": "z7" }));
    let mut group = c.benchmark_group("paths");
    group.bench_function("lookup-typical", |b| {
        b.iter(|| index.lookup(black_box(&ns), Some(black_box(&pod))))
    });
    group.bench_function("lookup-unrouted", |b| {
        b.iter(|| index.lookup(black_box(&ns), Some(black_box(&unrouted))))
    });
    group.bench_function("lookup-1000-sharing-a-pair", |b| {
        b.iter(|| index.lookup(black_box("shared"), Some(black_box(&shared))))
    });
    group.sample_size(10);
    group.bench_function("build-10000-services", |b| {
        b.iter(|| {
            let mut index = PathIndex::new();
            for obj in &objects {
                index.add_object(obj);
            }
            index
        })
    });
    group.finish();

    let engine = Engine::new(ClusterPolicy::default(), Capabilities::LATEST);
    let layer = Layer::for_namespace(Some("enforce"), []);
    let namespaces: HashMap<String, Arc<Layer>> = [(ns.clone(), Arc::new(layer))].into();
    let body = reviews::typical();
    let plain = Context {
        engine: &engine,
        cache: None,
        namespaces: &namespaces,
        unknown_namespace_mode: Mode::Audit,
        images: None,
        paths: None,
    };
    let routed = Context {
        paths: Some(&index),
        ..plain
    };
    let mut group = c.benchmark_group("admission-paths");
    for (name, ctx) in [("without-index", plain), ("with-index", routed)] {
        group.bench_function(format!("full/{name}"), |b| {
            b.iter(|| {
                let outcome = handle(Endpoint::Mutate, black_box(&body), &ctx).expect("handle");
                outcome.encode()
            })
        });
        let cache = DecisionCache::new(16);
        let cached = Context {
            cache: Some(&cache),
            ..ctx
        };
        group.bench_function(format!("full-cached/{name}"), |b| {
            b.iter(|| {
                let outcome = handle(Endpoint::Mutate, black_box(&body), &cached).expect("handle");
                outcome.encode()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, index_at_scale);
criterion_main!(benches);
