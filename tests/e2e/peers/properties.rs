//! Random policy annotations (valid, near-valid and hostile values of every setting, at the
//! pod, per container and on the namespace) through the exported policy and the webhook on one
//! apiserver: for every pod the policy decides as the webhook at the fields zerodrop owns, or
//! declines it (export::declined, docs/no-webhook.md), and never fails it.

use super::{EXPORT_LABEL, export_agrees, export_peer, owned};
use crate::harness::{client, server_minor};
use crate::{SHARED, shared};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngSeed, TestRunner};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use zerodrop_core::export;
use zerodrop_core::policy::Layer;
use zerodrop_testkit::cluster::{create_pod, label, namespace, wait_for_webhook};

const DURATIONS: &[&str] = &[
    "0",
    "7",
    "45s",
    "1m30s",
    "1h",
    "2h0m5s",
    " 12s ",
    "012",
    "86400",
    "86401",
    "100000",
    "5m90s",
    "1m1h",
    "s",
    "",
    "-3",
    "4.5s",
    "1d",
    "\u{ff19}",
    "10\u{a0}",
    "99999999999",
];

/// Values for one setting: what the engine accepts, what it nearly does, and what it refuses.
fn values(setting: &str) -> &'static [&'static str] {
    match setting {
        "readiness-path" => &[
            "/ready",
            "ready",
            "/a b",
            "/ok\u{2003}",
            "/x?y=1",
            " /trim ",
            "/\"q\"",
            "/it's",
        ],
        "readiness-port" => &[
            "8080",
            "0",
            "65535",
            "65536",
            "http",
            "http-api",
            "metrics",
            "abcdefghijklmnop",
            "a--b",
            "-ab",
            "9abc",
            "00080",
        ],
        "readiness-scheme" => &["HTTP", "https", "Https", "tcp"],
        "prestop-action" => &["auto", "sleep", "exec", "Sleep"],
        "skip-containers" => &["c0", "c0,c1", " c1 , ", "C0", "c0,,c2", "bad_name"],
        "shell-exec" => &["true", "false", "TRUE", "yes"],
        "mode" => &["enforce", "audit", "off", "Enforce"],
        "drain" => &["adaptive", "sleep", "Adaptive"],
        _ => DURATIONS,
    }
}

const POD_WIDE: &[&str] = &["skip-containers", "sidecar-drain", "mode", "drain"];
const PER_CONTAINER: &[&str] = &[
    "prestop-sleep",
    "drain-timeout",
    "readiness-path",
    "readiness-port",
    "readiness-scheme",
    "prestop-action",
    "shell-exec",
];

/// Up to `max` annotations: a setting (per container for c0..c2 now and then), a value of its.
fn annotations(max: usize, containers: bool) -> impl Strategy<Value = Map<String, Value>> {
    let mut keys: Vec<String> = PER_CONTAINER
        .iter()
        .chain(POD_WIDE)
        .map(|s| format!("zerodrop.dev/{s}"))
        .collect();
    if containers {
        for s in PER_CONTAINER {
            keys.extend((0..3).map(|i| format!("zerodrop.dev/{s}.c{i}")));
        }
    } else {
        // The namespace's mode is its label; an annotation there is not a layer of it.
        keys.retain(|k| k != "zerodrop.dev/mode");
    }
    let entry = prop::sample::select(keys).prop_flat_map(|key| {
        let setting = key["zerodrop.dev/".len()..]
            .split('.')
            .next()
            .unwrap_or_default()
            .to_owned();
        (Just(key), prop::sample::select(values(&setting)))
    });
    // A key drawn twice keeps its last value.
    prop::collection::vec(entry, 0..=max)
        .prop_map(|v| v.into_iter().map(|(k, v)| (k, json!(v))).collect())
}

fn draw<S: Strategy>(runner: &mut TestRunner, s: S) -> S::Value {
    s.new_tree(runner).unwrap().current()
}

/// The namespaces' annotations (4) and 160 pods from the corpus' generator with random policy
/// annotations, each assigned a namespace; fixed seed (`ZERODROP_PROPTEST_SEED` to vary).
/// The namespaces' annotations, and each pod with the index of its namespace.
type Cases = (Vec<Map<String, Value>>, Vec<(usize, Value)>);

fn cases() -> Cases {
    let seed = std::env::var("ZERODROP_PROPTEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(23);
    let mut runner = TestRunner::new(Config {
        rng_seed: RngSeed::Fixed(seed),
        ..Config::default()
    });
    let namespaces: Vec<Map<String, Value>> = (0..4)
        .map(|_| draw(&mut runner, annotations(3, false)))
        .collect();
    let pods = (0..160)
        .map(|i| {
            let mut pod = draw(&mut runner, zerodrop_testkit::pods::pod());
            let a = draw(&mut runner, annotations(6, true));
            pod["metadata"]["name"] = json!(format!("prop-{i}"));
            pod["metadata"]["namespace"] = json!(null);
            pod["metadata"]["annotations"] = Value::Object(a);
            (i % namespaces.len(), pod)
        })
        .collect();
    (namespaces, pods)
}

#[tokio::test]
async fn random_policy_annotations_the_export_agrees_with_the_webhook_or_declines() {
    let c = client().await;
    let minor = server_minor(&c).await;
    if minor < export::MIN_MINOR {
        return; // MAP v1 is not served: the corpus test asserts the 404
    }
    shared().await;
    // The export's objects (and their readiness) once per apiserver; its namespaces here.
    let _ = export_peer(&c).await;
    let (layers, pods) = cases();
    let mut pairs = Vec::new();
    for annotations in &layers {
        let a = Value::Object(annotations.clone());
        let webhook = namespace(&c, SHARED, Some("enforce"), a.clone()).await;
        wait_for_webhook(&c, &webhook).await;
        let policy = namespace(&c, "none", None, a).await;
        label(&c, &policy, json!({ EXPORT_LABEL: "enforce" })).await;
        let pairs_annotations: Vec<(String, String)> = annotations
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
            .collect();
        let layer = Layer::for_namespace(
            Some("enforce"),
            pairs_annotations
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str())),
        );
        pairs.push((webhook, policy, layer));
    }
    // The policy's namespaces get it as soon as the binding is in force (export_peer waited).
    let plain = namespace(&c, "none", None, json!({})).await;
    let (mut agreed, mut mutated) = (0u32, 0u32);
    let mut declined: BTreeMap<String, u32> = BTreeMap::new();
    let mut differences = Vec::new();
    for (i, pod) in &pods {
        let (webhook_ns, policy_ns, layer) = &pairs[*i];
        let bare = create_pod(&c, &plain, pod, true).await;
        if bare.status != 201 {
            continue; // invalid as sent
        }
        let policy = create_pod(&c, policy_ns, pod, true).await;
        let view = export::sleeping(pod);
        let sent = view.as_ref().unwrap_or(pod);
        let webhook = create_pod(&c, webhook_ns, sent, true).await;
        match export_agrees(sent, [&policy, &webhook, &bare], minor, layer) {
            Err(d) => differences.push(format!(
                "{}: {d}\n  annotations: {}\n  namespace: {:?}",
                pod["metadata"]["name"], pod["metadata"]["annotations"], layers[*i]
            )),
            Ok(Some(why)) => *declined.entry(format!("{why:?}")).or_default() += 1,
            Ok(None) => {
                agreed += 1;
                mutated += u32::from(owned(&webhook.body) != owned(&bare.body));
            }
        }
    }
    eprintln!(
        "export properties on 1.{minor}: {agreed} agreed ({mutated} mutated), declined {declined:?}"
    );
    assert!(differences.is_empty(), "{differences:#?}");
    let declines: u32 = declined.values().sum();
    assert!(
        mutated > declines && mutated >= 40,
        "the comparison must have work to do: {mutated} mutated, {declines} declined"
    );
}
