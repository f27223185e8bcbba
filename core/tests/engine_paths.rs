//! The engine with the traffic path known: the sleep of the slowest class, who pins it, the
//! grace budget across the sidecars, the path's findings, and the drain waiter's bounds.

// A failed setup is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use zerodrop_core::admission::response::{Advice, warnings};
use zerodrop_core::engine::{Capabilities, Change, Decision, Engine, Facts, Workload};
use zerodrop_core::findings::Code;
use zerodrop_core::paths::{PathClass, Paths, Route};
use zerodrop_core::policy::{ClusterPolicy, Layer};

mod common;
use common::*;

fn routed(classes: &[PathClass]) -> Paths {
    Paths {
        routes: classes
            .iter()
            .map(|c| Route {
                class: *c,
                why: format!("Service web is {c}"),
            })
            .collect(),
        ..Paths::default()
    }
}

/// Evaluates with the path, applies, and checks that a second pass is empty.
fn run_routed(engine: &Engine, obj: &Value, ns: &Layer, paths: &Paths) -> (Decision, Value) {
    let facts = Facts {
        paths: Some(paths),
        ..Facts::default()
    };
    let d = engine.evaluate_with(obj, Workload::Pod, ns, facts);
    let mut patched = obj.clone();
    json_patch::patch(&mut patched, &d.patch).unwrap();
    let again = engine.evaluate_with(&patched, Workload::Pod, ns, facts);
    assert!(again.patch.0.is_empty(), "second pass: {:?}", again.patch);
    (d, patched)
}

fn engine(config: &str) -> Engine {
    Engine::new(
        ClusterPolicy::from_yaml(config).unwrap(),
        Capabilities::LATEST,
    )
}

fn sleep_of(p: &Value, container: usize) -> Option<u64> {
    p["spec"]["containers"][container]["lifecycle"]["preStop"]["sleep"]["seconds"].as_u64()
}

#[test]
fn the_slowest_class_sets_the_sleep_and_the_grace_and_says_why() {
    let e = engine("");
    let obj = pod(json!({}), json!([web()]));
    // (classes, sleep, grace): grace = sleep + 20 drain + 5 margin, raised only above 30.
    let cases: &[(&[PathClass], u64, Option<u64>)] = &[
        (&[], 5, None),
        (&[PathClass::Cluster], 5, None),
        (&[PathClass::Cluster, PathClass::Ingress], 5, None),
        (&[PathClass::Cluster, PathClass::AwsAlb], 20, Some(45)),
        (&[PathClass::LoadBalancer], 15, Some(40)),
        (&[PathClass::AwsNlb, PathClass::GkeL4], 125, Some(150)),
    ];
    for (classes, sleep, grace) in cases {
        let (d, p) = run_routed(&e, &obj, &enforce_ns(), &routed(classes));
        assert_eq!(sleep_of(&p, 0), Some(*sleep), "{classes:?}");
        assert_eq!(
            p["spec"]["terminationGracePeriodSeconds"].as_u64(),
            *grace,
            "{classes:?}"
        );
        let why = d.changes.iter().find_map(|c| c.why().map(str::to_owned));
        assert_eq!(why.is_some(), *sleep != 5, "{classes:?}: {:?}", d.changes);
        if *sleep != 5 {
            // A pod's warnings show a change only when the path decided it.
            let w = warnings(&d, Advice::Pod);
            assert!(
                w.iter()
                    .any(|w| w.contains(&format!("preStop sleep {sleep}s: Service web is"))),
                "{w:?}"
            );
        }
    }
    // Unknown path (no index): exactly today's decision.
    let (d, p) = run(&obj);
    assert_eq!(sleep_of(&p, 0), Some(5));
    assert!(d.changes.iter().all(|c| c.why().is_none()));
}

#[test]
fn annotations_still_win_and_a_lowered_balancer_delay_is_a_finding() {
    let e = engine("");
    let nlb = routed(&[PathClass::AwsNlb]);
    let by_pod = pod(
        json!({ "zerodrop.dev/prestop-sleep": "10s" }),
        json!([web()]),
    );
    let (d, p) = run_routed(&e, &by_pod, &enforce_ns(), &nlb);
    assert_eq!(sleep_of(&p, 0), Some(10));
    assert!(
        codes(&d).contains(&Code::PathBelowClass),
        "{:?}",
        d.findings
    );

    let ns = Layer::for_namespace(Some("enforce"), [("zerodrop.dev/prestop-sleep", "8")]);
    let (d, p) = run_routed(&e, &pod(json!({}), json!([web()])), &ns, &nlb);
    assert_eq!(sleep_of(&p, 0), Some(8));
    assert!(codes(&d).contains(&Code::PathBelowClass));

    // Per container: only that container is pinned; the other gets the path's delay.
    let two = pod(
        json!({ "zerodrop.dev/prestop-sleep.side": "3" }),
        json!([web(), { "name": "side", "image": "s" }]),
    );
    let (d, p) = run_routed(&e, &two, &enforce_ns(), &nlb);
    assert_eq!((sleep_of(&p, 0), sleep_of(&p, 1)), (Some(125), Some(3)));
    let lowered: Vec<_> = d
        .findings
        .iter()
        .filter(|f| f.code == Code::PathBelowClass)
        .collect();
    assert_eq!(lowered.len(), 1);
    assert_eq!(lowered[0].container.as_deref(), Some("side"));

    // Behind kube-proxy alone a lower sleep is no finding: the class is the sleep itself.
    let (d, _) = run_routed(&e, &by_pod, &enforce_ns(), &routed(&[PathClass::Cluster]));
    assert!(!codes(&d).contains(&Code::PathBelowClass));
}

#[test]
fn the_cluster_config_sets_class_delays_and_the_unrouted_sleep() {
    let e = engine("path-classes:\n  cluster: 2s\n  aws-alb: 30\nunrouted-sleep: 1\n");
    let obj = pod(json!({}), json!([web()]));
    let cases: &[(&[PathClass], u64)] = &[
        (&[], 1),
        (&[PathClass::Cluster], 2),
        (&[PathClass::Cluster, PathClass::AwsAlb], 30),
    ];
    for (classes, sleep) in cases {
        let (d, p) = run_routed(&e, &obj, &enforce_ns(), &routed(classes));
        assert_eq!(sleep_of(&p, 0), Some(*sleep), "{classes:?}");
        let why = d.changes.iter().find_map(|c| c.why().map(str::to_owned));
        if classes.is_empty() {
            assert_eq!(why.as_deref(), Some("no Service selects the pod"));
        }
    }
    // The kube-proxy classes follow the cluster's prestop-sleep unless given their own.
    let e = engine("defaults:\n  prestop-sleep: 8\n");
    let (_, p) = run_routed(&e, &obj, &enforce_ns(), &routed(&[PathClass::Ingress]));
    assert_eq!(sleep_of(&p, 0), Some(8));
}

#[test]
fn local_traffic_policy_without_a_delay_and_bad_service_annotations_are_findings() {
    let e = engine("");
    let paths = Paths {
        local: Some("web".into()),
        problems: vec![
            "Service web: ignored zerodrop.dev/path-class=\"x\": expected one of".into(),
        ],
        partial: true,
        ..routed(&[PathClass::LoadBalancer])
    };
    let zero = pod(json!({ "zerodrop.dev/prestop-sleep": "0" }), json!([web()]));
    let (d, _) = run_routed(&e, &zero, &enforce_ns(), &paths);
    let got = codes(&d);
    for code in [
        Code::PathLocalNoDelay,
        Code::PathAnnotation,
        Code::PathPartial,
    ] {
        assert!(got.contains(&code), "{code:?} in {got:?}");
    }
    let (d, _) = run_routed(&e, &pod(json!({}), json!([web()])), &enforce_ns(), &paths);
    assert!(!codes(&d).contains(&Code::PathLocalNoDelay));
}

#[test]
fn grace_covers_the_native_sidecars_drain() {
    let e = engine("");
    let mut obj = pod(json!({}), json!([web()]));
    obj["spec"]["initContainers"] =
        json!([{ "name": "istio-proxy", "image": "p", "restartPolicy": "Always" }]);
    obj["metadata"]["annotations"]["proxy.istio.io/config"] =
        json!("terminationDrainDuration: 20s");
    // 20 ALB + 20 drain + 20 sidecar + 5 margin.
    let (_, p) = run_routed(&e, &obj, &enforce_ns(), &routed(&[PathClass::AwsAlb]));
    assert_eq!(p["spec"]["terminationGracePeriodSeconds"], 65);
    obj["metadata"]["annotations"]["zerodrop.dev/sidecar-drain"] = json!("2s");
    let (_, p) = run_routed(&e, &obj, &enforce_ns(), &routed(&[PathClass::AwsAlb]));
    assert_eq!(p["spec"]["terminationGracePeriodSeconds"], 47);
    // The cap still applies, with its finding; the sleep stays within the grace period.
    let capped = engine("max-grace-period: 60\n");
    let (d, p) = run_routed(&capped, &obj, &enforce_ns(), &routed(&[PathClass::AwsNlb]));
    assert_eq!(p["spec"]["terminationGracePeriodSeconds"], 60);
    assert_eq!(sleep_of(&p, 0), Some(60));
    assert!(codes(&d).contains(&Code::GraceCapped));
}

#[test]
fn the_adaptive_drain_takes_its_maximum_and_count_from_the_path() {
    let e = engine("");
    let obj = pod(json!({ "zerodrop.dev/drain": "adaptive" }), json!([web()]));
    let arg = |p: &Value, name: &str| -> Option<String> {
        let init = p["spec"]["initContainers"].as_array()?;
        let args = init.iter().find(|c| c["name"] == "zerodrop-drain")?["args"].as_array()?;
        args.iter()
            .filter_map(Value::as_str)
            .find_map(|a| a.strip_prefix(&format!("--{name}=")).map(str::to_owned))
    };
    let (d, p) = run_routed(&e, &obj, &enforce_ns(), &routed(&[PathClass::Cluster]));
    assert_eq!(
        arg(&p, "count").as_deref(),
        Some("connections"),
        "{:?}",
        d.changes
    );
    assert_eq!(arg(&p, "max").as_deref(), Some("30s"));
    // An ingress controller pools connections like a balancer: requests, its class's delay.
    let (_, p) = run_routed(
        &e,
        &obj,
        &enforce_ns(),
        &routed(&[PathClass::Cluster, PathClass::Ingress]),
    );
    assert_eq!(arg(&p, "count").as_deref(), Some("requests"));
    assert_eq!(arg(&p, "max").as_deref(), Some("5s"));
    // Behind a balancer the maximum is the class's delay (the path's sleep), both ways.
    let (_, p) = run_routed(&e, &obj, &enforce_ns(), &routed(&[PathClass::AwsAlb]));
    assert_eq!(arg(&p, "count").as_deref(), Some("requests"));
    assert_eq!(arg(&p, "max").as_deref(), Some("20s"));
    let (_, p) = run_routed(
        &e,
        &obj,
        &enforce_ns(),
        &routed(&[PathClass::Cluster, PathClass::LoadBalancer]),
    );
    assert_eq!(arg(&p, "count").as_deref(), Some("requests"));
    assert_eq!(arg(&p, "max").as_deref(), Some("15s"));
    let (d, p) = run_routed(&e, &obj, &enforce_ns(), &routed(&[PathClass::AwsNlb]));
    assert_eq!(arg(&p, "max").as_deref(), Some("125s"));
    assert!(
        d.changes
            .iter()
            .any(|c| matches!(c, Change::Drain { max: 125, .. }))
    );
    // What a layer sets wins.
    let pinned = pod(
        json!({ "zerodrop.dev/drain": "adaptive", "zerodrop.dev/drain-count": "requests",
                "zerodrop.dev/drain-max": "40" }),
        json!([web()]),
    );
    let (_, p) = run_routed(&e, &pinned, &enforce_ns(), &routed(&[PathClass::Cluster]));
    assert_eq!(arg(&p, "count").as_deref(), Some("requests"));
    assert_eq!(arg(&p, "max").as_deref(), Some("40s"));
}

#[test]
fn a_pod_whose_path_got_slower_is_outgrown() {
    let e = engine("");
    let ns = enforce_ns();
    // Admitted with no Service: the default sleep.
    let (_, admitted) = run_routed(&e, &pod(json!({}), json!([web()])), &ns, &routed(&[]));
    assert_eq!(sleep_of(&admitted, 0), Some(5));
    assert_eq!(e.path_outgrown(&admitted, &ns, &routed(&[])), None);
    assert_eq!(
        e.path_outgrown(&admitted, &ns, &routed(&[PathClass::Cluster])),
        None
    );
    let why = e
        .path_outgrown(&admitted, &ns, &routed(&[PathClass::AwsAlb]))
        .unwrap();
    assert_eq!(
        why,
        "container web sleeps 5s; Service web is aws-alb: needs 20s"
    );
    // Pinned by an annotation, never mutated, or waiting for the drain waiter: not the path's.
    let pinned = pod(json!({ "zerodrop.dev/prestop-sleep": "5" }), json!([web()]));
    let (_, pinned) = run_routed(&e, &pinned, &ns, &routed(&[]));
    assert_eq!(
        e.path_outgrown(&pinned, &ns, &routed(&[PathClass::AwsAlb])),
        None
    );
    let untouched = pod(json!({}), json!([web()]));
    assert_eq!(
        e.path_outgrown(&untouched, &ns, &routed(&[PathClass::AwsAlb])),
        None
    );
    let adaptive = pod(json!({ "zerodrop.dev/drain": "adaptive" }), json!([web()]));
    let (_, adaptive) = run_routed(&e, &adaptive, &ns, &routed(&[]));
    assert_eq!(
        e.path_outgrown(&adaptive, &ns, &routed(&[PathClass::AwsAlb])),
        None
    );
}
