//! The in-tree peer on one corpus: bench/peers/mutating-admission-policy.yaml (the native
//! MutatingAdmissionPolicy, GA from 1.36) and zerodrop side by side on the same generated and
//! hand-made pods, through the same apiserver (server-side dry-run): what each rejects,
//! overwrites, or changes where it should not. Before 1.36 the v1 API is not served: shown too.

use crate::e2e::cluster::{create_pod, namespace, post};
use crate::e2e::harness::client;
use crate::e2e::{SHARED, shared};
use crate::support::pods;
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const LABEL: &str = "e2e.zerodrop.dev/peer";

fn policy() -> Vec<Value> {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("bench/peers/mutating-admission-policy.yaml"),
    )
    .unwrap();
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .collect()
}

/// The hand-made part of the corpus: what the generator does not make.
fn fixtures() -> Vec<(&'static str, Value)> {
    let web = json!({ "name": "web", "image": "registry.invalid/web:1" });
    let pod = |spec: Value, meta: Value| {
        let mut p = json!({ "apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec });
        p["metadata"]["name"] = json!("fixture");
        p
    };
    vec![
        (
            "job pod",
            pod(
                json!({ "restartPolicy": "Never", "containers": [web] }),
                json!({ "ownerReferences": [{ "apiVersion": "batch/v1", "kind": "Job",
                    "name": "j", "uid": "00000000-0000-0000-0000-000000000001", "controller": true }] }),
            ),
        ),
        (
            "native sidecar",
            pod(
                json!({ "initContainers": [{ "name": "proxy", "image": "registry.invalid/proxy:1",
                    "restartPolicy": "Always" }], "containers": [web] }),
                json!({}),
            ),
        ),
        (
            "grace 1 s",
            pod(
                json!({ "terminationGracePeriodSeconds": 1, "containers": [web] }),
                json!({}),
            ),
        ),
    ]
}

/// What a peer did to one pod, as the dry-run answer shows.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Tally {
    rejected: u32,
    mutated: u32,
    overwrote_prestop: u32,
    touched_job_or_sidecar: u32,
}

fn judge(sent: &Value, answer: &crate::e2e::cluster::Reply, name: &str, t: &mut Tally) {
    if answer.status != 201 {
        t.rejected += 1;
        return;
    }
    let got = &answer.body;
    let hooks = |p: &Value, list: &str| -> Vec<Value> {
        p["spec"][list]
            .as_array()
            .map(|cs| {
                cs.iter()
                    .map(|c| c["lifecycle"]["preStop"].clone())
                    .collect()
            })
            .unwrap_or_default()
    };
    let (before, after) = (hooks(sent, "containers"), hooks(got, "containers"));
    if before != after {
        t.mutated += 1;
    }
    if before
        .iter()
        .zip(&after)
        .any(|(b, a)| !b.is_null() && b != a)
    {
        t.overwrote_prestop += 1;
    }
    let touched = (name == "job pod" && before != after)
        || hooks(sent, "initContainers") != hooks(got, "initContainers");
    if touched {
        t.touched_job_or_sidecar += 1;
    }
}

#[tokio::test]
async fn the_in_tree_policy_and_zerodrop_on_one_corpus() {
    shared().await;
    let c = client().await;
    let minor: u32 = c
        .apiserver_version()
        .await
        .unwrap()
        .minor
        .trim_end_matches('+')
        .parse()
        .unwrap();
    let docs = policy();
    let created = post(
        &c,
        "/apis/admissionregistration.k8s.io/v1/mutatingadmissionpolicies",
        &docs[0],
    )
    .await;
    if minor < 36 {
        assert_eq!(
            created.status, 404,
            "1.{minor} serves MAP v1: {}",
            created.body
        );
        return;
    }
    assert!(matches!(created.status, 201 | 409), "{}", created.body);
    let bound = post(
        &c,
        "/apis/admissionregistration.k8s.io/v1/mutatingadmissionpolicybindings",
        &docs[1],
    )
    .await;
    assert!(matches!(bound.status, 201 | 409), "{}", bound.body);
    let plain = namespace(&c, "none", None, json!({})).await;
    let peer = namespace(&c, "none", None, json!({})).await;
    let patch = json!({ "metadata": { "labels": { LABEL: "mutating-admission-policy" } } });
    let req = http::Request::patch(format!("/api/v1/namespaces/{peer}"))
        .header("content-type", "application/merge-patch+json")
        .body(serde_json::to_vec(&patch).unwrap())
        .unwrap();
    c.request::<Value>(req).await.unwrap();
    let zerodrop = namespace(&c, SHARED, Some("enforce"), json!({})).await;
    // The policy is served once the apiserver's policy source has it.
    let probe = json!({ "apiVersion": "v1", "kind": "Pod", "metadata": { "name": "probe" },
        "spec": { "containers": [{ "name": "web", "image": "registry.invalid/web:1" }] } });
    let started = Instant::now();
    loop {
        let r = create_pod(&c, &peer, &probe, true).await;
        if !r.body["spec"]["containers"][0]["lifecycle"]["preStop"].is_null() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "policy not active: {}",
            r.body
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let mut runner = TestRunner::new(Config {
        rng_seed: proptest::test_runner::RngSeed::Fixed(11),
        ..Config::default()
    });
    let mut corpus: Vec<(String, Value)> = (0..200)
        .map(|i| {
            let mut pod = pods::pod().new_tree(&mut runner).unwrap().current();
            pod["metadata"]["name"] = json!(format!("gen-{i}"));
            pod["metadata"]["namespace"] = json!(null);
            ("generated".to_owned(), pod)
        })
        .collect();
    corpus.extend(fixtures().into_iter().map(|(n, p)| (n.to_owned(), p)));
    let (mut map, mut zd) = (Tally::default(), Tally::default());
    let (mut valid, mut differ) = (0, (0u32, 0u32));
    for (name, pod) in &corpus {
        if create_pod(&c, &plain, pod, true).await.status != 201 {
            continue; // invalid as sent
        }
        valid += 1;
        let by_map = create_pod(&c, &peer, pod, true).await;
        let by_zd = create_pod(&c, &zerodrop, pod, true).await;
        judge(pod, &by_map, name, &mut map);
        judge(pod, &by_zd, name, &mut zd);
        let hooks = |r: &crate::e2e::cluster::Reply| {
            r.body["spec"]["containers"].as_array().map(|cs| {
                cs.iter()
                    .map(|c| c["lifecycle"].clone())
                    .collect::<Vec<_>>()
            })
        };
        let grace = |r: &crate::e2e::cluster::Reply| {
            r.body["spec"]["terminationGracePeriodSeconds"].clone()
        };
        differ.0 += u32::from(hooks(&by_map) != hooks(&by_zd));
        differ.1 += u32::from(grace(&by_map) != grace(&by_zd));
    }
    eprintln!(
        "peers on 1.{minor}: {valid} valid pods; mutating-admission-policy {map:?}; zerodrop {zd:?}; \
         preStop hooks differ on {}, grace periods on {}",
        differ.0, differ.1
    );
    assert!(valid >= 120, "only {valid} valid pods");
    // zerodrop's guarantees, on the same corpus.
    assert_eq!(zd.rejected, 0);
    assert_eq!(zd.overwrote_prestop, 0);
    assert_eq!(zd.touched_job_or_sidecar, 0);
    // The policy is live and does mutate.
    assert!(map.mutated > 0, "{map:?}");
}
