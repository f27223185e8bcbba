//! The adaptive drain at admission: the waiter sidecar and the preStop calls, who cannot have
//! them (and keeps the sleep), bad bounds, reinvocation.

// A failed setup is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use zerodrop_core::engine::{Capabilities, Change, Engine, Workload, waiter};
use zerodrop_core::findings::Code;
use zerodrop_core::policy::{ClusterPolicy, Mode};

mod common;
use common::*;

fn adaptive(extra: Value) -> Value {
    let mut annotations = json!({ "zerodrop.dev/drain": "adaptive" });
    if let (Some(a), Some(e)) = (annotations.as_object_mut(), extra.as_object()) {
        a.extend(e.clone());
    }
    annotations
}

fn waiter_of(p: &Value) -> &Value {
    p["spec"]["initContainers"]
        .as_array()
        .and_then(|init| init.iter().find(|c| c["name"] == waiter::NAME))
        .expect("the waiter is there")
}

fn args(p: &Value) -> Vec<String> {
    serde_json::from_value(waiter_of(p)["args"].clone()).unwrap()
}

#[test]
fn an_adaptive_pod_gets_the_waiter_and_calls_it_before_sigterm() {
    let mut obj = pod(adaptive(json!({})), json!([web()]));
    obj["spec"]["initContainers"] = json!([{ "name": "migrate", "image": "shop:1" }]);
    let (d, p) = run(&obj);
    assert_eq!(
        p["spec"]["containers"][0]["lifecycle"]["preStop"],
        json!({ "httpGet": { "path": "/drain", "port": 9797 } })
    );
    // The waiter comes after the pod's own init containers, as a native sidecar.
    assert_eq!(p["spec"]["initContainers"][0]["name"], "migrate");
    let w = &p["spec"]["initContainers"][1];
    assert_eq!(w["name"], waiter::NAME);
    assert_eq!(w["restartPolicy"], "Always");
    // Its postStart hook holds the app back until it serves; no probe that costs a period.
    assert_eq!(
        w["lifecycle"]["postStart"]["exec"]["command"],
        json!([
            "/zerodrop",
            "drain-wait",
            "--await=30s",
            "--listen=[::]:9797"
        ])
    );
    assert!(w.get("startupProbe").is_none());
    assert_eq!(
        args(&p),
        [
            "drain-wait",
            "--log-format=json",
            "--listen=[::]:9797",
            "--min=1s",
            "--quiet=2s",
            "--max=30s",
            "--fallback=5s",
            "--count=requests",
            "--ports=8080",
        ]
    );
    // Pod Security Restricted's container rules.
    let sc = &w["securityContext"];
    assert_eq!(sc["runAsNonRoot"], true);
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]));
    assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault");
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert!(w["resources"]["limits"]["memory"].is_string());
    // The grace covers the longest wait: 30s max + 20s drain + 5s margin.
    assert_eq!(p["spec"]["terminationGracePeriodSeconds"], 55);
    let kinds: Vec<&str> = d.changes.iter().map(Change::kind).collect();
    assert_eq!(kinds, ["drain", "waiter", "grace"]);
    let ledger = p["metadata"]["annotations"]["zerodrop.dev/injected"]
        .as_str()
        .unwrap();
    assert!(ledger.contains(waiter::LEDGER_FIELD), "{ledger}");
    assert!(ledger.contains("lifecycle.preStop"), "{ledger}");
}

#[test]
fn bounds_count_and_the_sleep_reach_the_waiter() {
    let obj = pod(
        adaptive(json!({
            "zerodrop.dev/drain-min": "2s",
            "zerodrop.dev/drain-quiet": "5s",
            "zerodrop.dev/drain-max": "1m",
            "zerodrop.dev/drain-count": "connections",
            "zerodrop.dev/prestop-sleep": "8s",
        })),
        json!([web(), { "name": "worker", "image": "shop:1" }]),
    );
    let (_, p) = run(&obj);
    let a = args(&p);
    for want in [
        "--min=2s",
        "--quiet=5s",
        "--max=60s",
        "--fallback=8s",
        "--count=connections",
    ] {
        assert!(a.iter().any(|x| x == want), "{want} in {a:?}");
    }
    // A container without declared ports: the waiter watches every port.
    assert!(!a.iter().any(|x| x.starts_with("--ports")), "{a:?}");
    assert_eq!(p["spec"]["terminationGracePeriodSeconds"], 85);
}

#[test]
fn the_drain_is_per_container_and_own_hooks_stay() {
    let mut own = web();
    own["name"] = json!("own");
    own["lifecycle"] = json!({ "preStop": { "exec": { "command": ["/bin/stop"] } } });
    let obj = pod(
        json!({ "zerodrop.dev/drain.web": "adaptive" }),
        json!([web(), { "name": "side", "image": "x:1" }, own]),
    );
    let (_, p) = run(&obj);
    let c = &p["spec"]["containers"];
    assert_eq!(c[0]["lifecycle"]["preStop"]["httpGet"]["port"], 9797);
    assert_eq!(
        c[1]["lifecycle"]["preStop"],
        json!({ "sleep": { "seconds": 5 } })
    );
    assert_eq!(
        c[2]["lifecycle"]["preStop"],
        json!({ "exec": { "command": ["/bin/stop"] } })
    );
    assert_eq!(args(&p).last().unwrap(), "--ports=8080");
}

#[test]
fn pods_it_cannot_serve_keep_the_sleep_with_the_reason() {
    let base = || pod(adaptive(json!({})), json!([web()]));
    let mut host = base();
    host["spec"]["hostNetwork"] = json!(true);
    let mut windows = base();
    windows["spec"]["os"] = json!({ "name": "windows" });
    let mut mesh = base();
    mesh["metadata"]["annotations"]["sidecar.istio.io/status"] = json!("{}");
    let mut istio = base();
    istio["spec"]["initContainers"] =
        json!([{ "name": "istio-proxy", "image": "proxy", "restartPolicy": "Always" }]);
    let mut collide = base();
    collide["spec"]["containers"][0]["ports"] = json!([{ "containerPort": 9797 }]);
    let mut named = base();
    named["spec"]["containers"][0]["name"] = json!(waiter::NAME);
    let latest = Capabilities::LATEST;
    let old = Capabilities { minor: 28 };
    let cases = [
        (host, latest, "hostNetwork"),
        (windows, latest, "Windows"),
        (mesh, latest, "mesh"),
        (istio, latest, "mesh"),
        (collide, latest, "port 9797"),
        (named, latest, "named zerodrop-drain"),
        (base(), old, "1.28"),
    ];
    for (obj, caps, why) in cases {
        let engine = Engine::new(ClusterPolicy::default(), caps);
        let (d, p) = run_with(&engine, &obj, Workload::Pod, &enforce_ns());
        let f = d
            .findings
            .iter()
            .find(|f| f.code == Code::DrainUnavailable)
            .unwrap_or_else(|| panic!("{why}: {:?}", d.findings));
        assert!(f.message.contains(why), "{why}: {}", f.message);
        let hook = &p["spec"]["containers"][0]["lifecycle"]["preStop"];
        assert!(hook.get("httpGet").is_none(), "{why}: {hook}");
        assert!(
            hook.get("sleep").is_some() || hook.get("exec").is_some(),
            "{why}"
        );
        assert!(p["spec"].get("initContainers").is_none_or(|init| {
            init.as_array()
                .unwrap()
                .iter()
                .all(|c| c["name"] != waiter::NAME)
        }));
    }
}

#[test]
fn bad_bounds_and_values_keep_the_sleep_and_say_which_annotation() {
    let cases = [
        (
            json!({ "zerodrop.dev/drain-min": "40s" }),
            Code::DrainBounds,
            "drain-min",
        ),
        (
            json!({ "zerodrop.dev/drain-quiet": "1m" }),
            Code::DrainBounds,
            "drain-quiet",
        ),
        (
            json!({ "zerodrop.dev/drain-max": "0s" }),
            Code::BadAnnotation,
            "drain-max",
        ),
        (
            json!({ "zerodrop.dev/drain": "fast" }),
            Code::BadAnnotation,
            "zerodrop.dev/drain",
        ),
    ];
    for (extra, code, names) in cases {
        let bad_bound = names.starts_with("drain-") && code == Code::BadAnnotation;
        let mut annotations = adaptive(json!({}));
        annotations
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let (d, p) = run(&pod(annotations, json!([web()])));
        let f = d.findings.iter().find(|f| f.code == code);
        let text = f
            .map(|f| format!("{} {}", f.message, f.fix))
            .unwrap_or_default();
        assert!(
            text.contains(names),
            "{code:?} naming {names}: {:?}",
            d.findings
        );
        if bad_bound {
            assert!(codes(&d).contains(&Code::DrainBounds), "{:?}", d.findings);
        }
        assert_eq!(
            p["spec"]["containers"][0]["lifecycle"]["preStop"],
            json!({ "sleep": { "seconds": 5 } })
        );
    }
    // A maximum beyond the cluster's grace cap.
    let cluster = ClusterPolicy {
        max_grace_period: Some(20),
        ..ClusterPolicy::default()
    };
    let engine = Engine::new(cluster, Capabilities::LATEST);
    let (d, _) = run_with(
        &engine,
        &pod(adaptive(json!({})), json!([web()])),
        Workload::Pod,
        &enforce_ns(),
    );
    assert!(codes(&d).contains(&Code::DrainBounds), "{:?}", d.findings);
}

/// The default engine, and a one-container pod under `drain: adaptive` as it admits it.
fn admitted_adaptive() -> (Engine, Value) {
    let engine = Engine::new(ClusterPolicy::default(), Capabilities::LATEST);
    let (_, p) = run_with(
        &engine,
        &pod(adaptive(json!({})), json!([web()])),
        Workload::Pod,
        &enforce_ns(),
    );
    (engine, p)
}

#[test]
fn reinvocation_keeps_one_waiter_and_what_the_apiserver_defaulted() {
    let (engine, mut p) = admitted_adaptive();
    // The apiserver defaults fields around ours; another webhook adds a container.
    let w = p["spec"]["initContainers"][0].as_object_mut().unwrap();
    w.insert(
        "terminationMessagePath".into(),
        json!("/dev/termination-log"),
    );
    w.insert("imagePullPolicy".into(), json!("IfNotPresent"));
    w.insert("terminationMessagePolicy".into(), json!("File"));
    let again = engine.evaluate(&p, Workload::Pod, &enforce_ns());
    assert!(again.patch.0.is_empty(), "{:?}", again.patch);
    p["spec"]["containers"]
        .as_array_mut()
        .unwrap()
        .push(json!({ "name": "metrics", "image": "m:1", "ports": [{ "containerPort": 7070 }] }));
    let (d, p) = run_with(&engine, &p, Workload::Pod, &enforce_ns());
    let init = p["spec"]["initContainers"].as_array().unwrap();
    assert_eq!(init.len(), 1);
    assert_eq!(init[0]["terminationMessagePath"], "/dev/termination-log");
    assert_eq!(init[0]["terminationMessagePolicy"], "File");
    assert_eq!(args(&p).last().unwrap(), "--ports=7070,8080");
    assert_eq!(
        p["spec"]["containers"][1]["lifecycle"]["preStop"]["httpGet"]["port"],
        9797
    );
    let kinds: Vec<&str> = d.changes.iter().map(Change::kind).collect();
    assert_eq!(kinds, ["drain", "waiter"]);
}

#[test]
fn a_waiter_gated_by_the_earlier_startup_probe_is_neither_patched_nor_altered() {
    let (engine, mut p) = admitted_adaptive();
    let now = waiter_of(&p).clone();
    // What zerodrop wrote before the postStart hook, as the apiserver stored it.
    let w = p["spec"]["initContainers"][0].as_object_mut().unwrap();
    w.remove("lifecycle");
    w.insert(
        "startupProbe".into(),
        json!({ "httpGet": { "path": "/ready", "port": 9797, "scheme": "HTTP" },
                "periodSeconds": 1, "failureThreshold": 30, "timeoutSeconds": 1 }),
    );
    let again = engine.evaluate(&p, Workload::Pod, &enforce_ns());
    assert!(again.patch.0.is_empty(), "{:?}", again.patch);
    // Without either gate it is altered (what the scan sees), and a pass gives it the hook.
    let w = p["spec"]["initContainers"][0].as_object_mut().unwrap();
    w.remove("startupProbe");
    let again = engine.evaluate(&p, Workload::Pod, &enforce_ns());
    assert!(!again.patch.0.is_empty());
    let (_, fixed) = run_with(&engine, &p, Workload::Pod, &enforce_ns());
    assert_eq!(waiter_of(&fixed)["lifecycle"], now["lifecycle"]);
}

#[test]
fn audit_mode_and_templates_decide_the_same_patch() {
    let obj = pod(
        adaptive(json!({ "zerodrop.dev/mode": "audit" })),
        json!([web()]),
    );
    let engine = Engine::new(ClusterPolicy::default(), Capabilities::LATEST);
    let d = engine.evaluate(&obj, Workload::Pod, &enforce_ns());
    assert_eq!(d.mode, Mode::Audit);
    assert!(d.changes.iter().any(|c| c.kind() == "waiter"));
    let template = json!({ "metadata": obj["metadata"].clone(), "spec": obj["spec"].clone() });
    let t = engine.evaluate(&template, Workload::Deployment, &enforce_ns());
    assert_eq!(t.patch, d.patch);
}

#[test]
fn the_waiter_image_and_port_come_from_the_cluster_config() {
    let cluster =
        ClusterPolicy::from_yaml("drain-waiter:\n  image: mirror.local/zerodrop:9\n  port: 9100\n")
            .unwrap();
    let engine = Engine::new(cluster, Capabilities::LATEST);
    let (_, mut p) = run_with(
        &engine,
        &pod(adaptive(json!({})), json!([web()])),
        Workload::Pod,
        &enforce_ns(),
    );
    assert_eq!(waiter_of(&p)["image"], "mirror.local/zerodrop:9");
    assert!(args(&p).contains(&"--listen=[::]:9100".to_owned()));
    assert_eq!(
        p["spec"]["containers"][0]["lifecycle"]["preStop"]["httpGet"]["port"],
        9100
    );
    // The scan's test of an altered waiter: a second pass patches nothing, unless changed.
    assert!(
        engine
            .evaluate(&p, Workload::Pod, &enforce_ns())
            .patch
            .0
            .is_empty()
    );
    p["spec"]["initContainers"][0]["args"][3] = json!("--min=9s");
    assert!(
        !engine
            .evaluate(&p, Workload::Pod, &enforce_ns())
            .patch
            .0
            .is_empty()
    );
}

#[test]
fn every_change_kind_is_listed_for_the_metrics() {
    let changes = [
        Change::Drain {
            container: "c".into(),
            max: 1,
        },
        Change::Waiter { port: 1 },
        Change::Grace { from: 1, to: 2 },
        Change::ShellExec {
            container: "c".into(),
        },
    ];
    for c in changes {
        assert!(Change::KINDS.contains(&c.kind()), "{}", c.kind());
    }
}
