//! The admission path per request, as ratios against a floor measured in the same run:
//! floor = parse the AdmissionReview + serialise an `allowed` response (what any webhook must do);
//! full = parse + engine + patch + response. experiments/benchmarks/run.sh prints full/floor from these.

// A measuring tool, not the request path: a failed step aborts the run with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use zerodrop_testkit::reviews;

// The binary's allocator, so the numbers are the server's.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;
use zerodrop_core::admission::cache::DecisionCache;
use zerodrop_core::admission::review::{self, Response};
use zerodrop_core::admission::{Context, Endpoint, ImageLookup, handle};
use zerodrop_core::engine::image::{ImageConfig, ImageFacts, Platform, Shell};
use zerodrop_core::engine::{Capabilities, Engine, Workload};
use zerodrop_core::policy::{ClusterPolicy, Layer, Mode};

fn admission(c: &mut Criterion) {
    let engine = Engine::new(ClusterPolicy::default(), Capabilities::LATEST);
    let ns = Layer::for_namespace(Some("enforce"), []);
    let namespaces: HashMap<String, Arc<Layer>> =
        [(reviews::namespace(), Arc::new(ns.clone()))].into();
    let ctx = Context {
        engine: &engine,
        cache: None,
        namespaces: &namespaces,
        unknown_namespace_mode: Mode::Audit,
        images: None,
        paths: None,
    };
    let adaptive_ns = Layer::for_namespace(Some("enforce"), [("zerodrop.dev/drain", "adaptive")]);
    let adaptive_namespaces: HashMap<String, Arc<Layer>> =
        [(reviews::namespace(), Arc::new(adaptive_ns.clone()))].into();
    let adaptive = Context {
        namespaces: &adaptive_namespaces,
        ..ctx
    };
    let mut group = c.benchmark_group("admission");
    for (name, body) in [
        ("small", reviews::small()),
        ("typical", reviews::typical()),
        ("large", reviews::large()),
    ] {
        group.throughput(Throughput::Bytes(body.len() as u64));
        let label = format!("{name}-{}B", body.len());
        group.bench_with_input(BenchmarkId::new("parse", &label), &body, |b, body| {
            b.iter(|| review::decode(black_box(body)).expect("decode"))
        });
        group.bench_with_input(BenchmarkId::new("floor", &label), &body, |b, body| {
            b.iter(|| {
                let req = review::decode(black_box(body)).expect("decode");
                review::encode(
                    &req.uid,
                    &Response {
                        allowed: true,
                        ..Response::default()
                    },
                )
            })
        });
        // What a generic webhook does: the whole object into a tree (kube-rs DynamicObject and
        // the like). Shown for reference; the floor above uses zerodrop's own lean decoding.
        group.bench_with_input(
            BenchmarkId::new("floor-full-tree", &label),
            &body,
            |b, body| {
                b.iter(|| {
                    let v: serde_json::Value =
                        serde_json::from_slice(black_box(body)).expect("parse");
                    let uid = v["request"]["uid"].as_str().unwrap_or_default().to_owned();
                    review::encode(
                        &uid,
                        &Response {
                            allowed: true,
                            ..Response::default()
                        },
                    )
                })
            },
        );
        let object = review::decode(&body)
            .expect("decode")
            .object
            .expect("object");
        group.bench_with_input(
            BenchmarkId::new("evaluate", &label),
            &object,
            |b, object| b.iter(|| engine.evaluate(black_box(object), Workload::Pod, &ns)),
        );
        // Where the uncached time goes: the same pod once zerodrop's patch is applied (it needs
        // nothing: the cost of deciding alone), and encoding this pod's patch for the response.
        let decision = engine.evaluate(&object, Workload::Pod, &ns);
        let mut compliant = (*object).clone();
        json_patch::patch(&mut compliant, &decision.patch).expect("own patch applies");
        group.bench_with_input(
            BenchmarkId::new("evaluate-compliant", &label),
            &compliant,
            |b, object| b.iter(|| engine.evaluate(black_box(object), Workload::Pod, &ns)),
        );
        group.bench_with_input(
            BenchmarkId::new("encode-patch", &label),
            &decision.patch,
            |b, patch| {
                b.iter(|| zerodrop_core::admission::response::encode_patch(black_box(patch)))
            },
        );
        // The webhook's default: a rollout's pods are byte-identical, so after the first one
        // the answer comes from the decision cache (only the uid differs).
        let cache = DecisionCache::new(16);
        let cached = Context {
            cache: Some(&cache),
            ..ctx
        };
        group.bench_with_input(BenchmarkId::new("full-cached", &label), &body, |b, body| {
            b.iter(|| {
                let outcome = handle(Endpoint::Mutate, black_box(body), &cached).expect("handle");
                outcome.encode()
            })
        });
        // The server's first pod of a template: a miss, then the answer stored for the others.
        group.bench_with_input(BenchmarkId::new("full-miss", &label), &body, |b, body| {
            b.iter_batched(
                || DecisionCache::new(16),
                |cache| {
                    let ctx = Context {
                        cache: Some(&cache),
                        ..ctx
                    };
                    let outcome = handle(Endpoint::Mutate, black_box(body), &ctx).expect("handle");
                    (outcome.encode(), cache)
                },
                criterion::BatchSize::SmallInput,
            )
        });
        // With image inspection on: the pod's image facts from the inspector's cache (what
        // /mutate does), on a decision-cache hit and miss, next to the same without images.
        let facts = ImagesFixed(image_config());
        let with_images = Context {
            cache: Some(&cache),
            images: Some(&facts),
            paths: None,
            ..ctx
        };
        group.bench_with_input(
            BenchmarkId::new("full-cached-images", &label),
            &body,
            |b, body| {
                b.iter(|| {
                    let outcome =
                        handle(Endpoint::Mutate, black_box(body), &with_images).expect("handle");
                    outcome.encode()
                })
            },
        );
        group.bench_with_input(
            BenchmarkId::new("full-miss-images", &label),
            &body,
            |b, body| {
                b.iter_batched(
                    || DecisionCache::new(16),
                    |cache| {
                        let ctx = Context {
                            cache: Some(&cache),
                            images: Some(&facts),
                            paths: None,
                            ..ctx
                        };
                        let outcome =
                            handle(Endpoint::Mutate, black_box(body), &ctx).expect("handle");
                        (outcome.encode(), cache)
                    },
                    criterion::BatchSize::SmallInput,
                )
            },
        );
        group.bench_with_input(BenchmarkId::new("full", &label), &body, |b, body| {
            b.iter(|| {
                let outcome = handle(Endpoint::Mutate, black_box(body), &ctx).expect("handle");
                outcome.encode()
            })
        });
        // The adaptive drain's larger patch (the waiter sidecar, preStop calls), side by side
        // with the sleep's above: the same pods, their namespace under `drain: adaptive`.
        let decision = engine.evaluate(&object, Workload::Pod, &adaptive_ns);
        group.bench_with_input(
            BenchmarkId::new("evaluate-adaptive", &label),
            &object,
            |b, object| b.iter(|| engine.evaluate(black_box(object), Workload::Pod, &adaptive_ns)),
        );
        group.bench_with_input(
            BenchmarkId::new("encode-patch-adaptive", &label),
            &decision.patch,
            |b, patch| {
                b.iter(|| zerodrop_core::admission::response::encode_patch(black_box(patch)))
            },
        );
        group.bench_with_input(
            BenchmarkId::new("full-adaptive", &label),
            &body,
            |b, body| {
                b.iter(|| {
                    let outcome =
                        handle(Endpoint::Mutate, black_box(body), &adaptive).expect("handle");
                    outcome.encode()
                })
            },
        );
    }
    group.finish();
}

/// Every image known, as the inspector's cache answers once warm.
struct ImagesFixed(ImageFacts);

impl ImageLookup for ImagesFixed {
    fn cached(&self, _image: &str, _platform: &Platform, _namespace: &str) -> Option<ImageFacts> {
        Some(self.0.clone())
    }

    fn generation(&self) -> u64 {
        0
    }

    fn inspect(
        &self,
        _image: String,
        _platform: Platform,
        _puller: std::sync::Arc<zerodrop_core::admission::Puller>,
    ) -> futures::future::BoxFuture<'static, ImageFacts> {
        let facts = self.0.clone();
        Box::pin(async move { facts })
    }
}

/// A typical image: exec-form entrypoint, nothing to report.
fn image_config() -> ImageFacts {
    ImageFacts::Known(ImageConfig {
        digest: format!("sha256:{}", "a".repeat(64)),
        entrypoint: Some(vec!["/app".into()]),
        cmd: Some(vec!["serve".into()]),
        stop_signal: None,
        shell: Shell::Dash,
        script: None,
        certain: true,
    })
}

criterion_group!(benches, admission);
criterion_main!(benches);
