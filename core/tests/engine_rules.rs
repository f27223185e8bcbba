//! Table-driven tests of every engine rule and every bad policy value.

// A failed setup is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use zerodrop_core::engine::{Capabilities, Change, Engine, Skip, Workload};
use zerodrop_core::findings::Code;
use zerodrop_core::policy::{ClusterPolicy, Layer, Mode};

mod common;
use common::*;

#[test]
fn default_pod_gets_native_sleep_and_ledger_but_keeps_grace() {
    let (d, p) = run(&pod(json!({}), json!([web()])));
    assert_eq!(d.mode, Mode::Enforce);
    assert_eq!(
        p["spec"]["containers"][0]["lifecycle"]["preStop"],
        json!({ "sleep": { "seconds": 5 } })
    );
    // 5s sleep + 20s drain + 5s margin = 30s, the Kubernetes default: nothing to raise.
    assert!(p["spec"].get("terminationGracePeriodSeconds").is_none());
    assert!(p["spec"]["containers"][0].get("readinessProbe").is_none());
    assert_eq!(codes(&d), [Code::NoReadiness]);
    let ledger: Value = serde_json::from_str(
        p["metadata"]["annotations"]["zerodrop.dev/injected"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        ledger,
        json!({ "v": 1, "containers": { "web": ["lifecycle.preStop"] } })
    );
}

#[test]
fn out_of_scope_pods_are_left_alone() {
    let engine = Engine::new(ClusterPolicy::default(), Capabilities::LATEST);
    let mirror = pod(
        json!({ "kubernetes.io/config.mirror": "abc" }),
        json!([web()]),
    );
    let mut job = pod(json!({}), json!([web()]));
    job["metadata"]["ownerReferences"] =
        json!([{ "apiVersion": "batch/v1", "kind": "Job", "name": "j", "uid": "1" }]);
    let mut never = pod(json!({}), json!([web()]));
    never["spec"]["restartPolicy"] = json!("Never");
    let off = pod(json!({ "zerodrop.dev/mode": "off" }), json!([web()]));
    let cases = [
        (&mirror, Workload::Pod, enforce_ns(), Skip::MirrorPod),
        (&job, Workload::Pod, enforce_ns(), Skip::JobOwned),
        (
            &never,
            Workload::Pod,
            enforce_ns(),
            Skip::RestartPolicy("Never".into()),
        ),
        (&off, Workload::Pod, enforce_ns(), Skip::ModeOff),
        (&mirror, Workload::CronJob, enforce_ns(), Skip::JobOwned),
        (&job, Workload::Job, enforce_ns(), Skip::JobOwned),
        (
            &web_pod(),
            Workload::Pod,
            Layer::for_namespace(None, []),
            Skip::ModeOff,
        ),
    ];
    for (obj, workload, ns, want) in cases {
        let d = engine.evaluate(obj, workload, &ns);
        assert_eq!(d.skipped, Some(want));
        assert!(d.patch.0.is_empty());
    }
}

fn web_pod() -> Value {
    pod(json!({}), json!([web()]))
}

#[test]
fn init_containers_sidecars_meshes_and_skip_list_are_untouched() {
    let mut obj = pod(
        json!({ "zerodrop.dev/skip-containers": "metrics" }),
        json!([web(), { "name": "istio-proxy", "image": "proxy" }, { "name": "metrics", "image": "m" }]),
    );
    obj["spec"]["initContainers"] = json!([
        { "name": "migrate", "image": "m" },
        { "name": "log-shipper", "image": "l", "restartPolicy": "Always" }
    ]);
    let (d, p) = run(&obj);
    // The native sidecar is left alone, but its drain after the app's (5 s when it shows none)
    // counts in the grace period: 5 sleep + 20 drain + 5 sidecar + 5 margin.
    assert_eq!(d.changes.len(), 2, "{:?}", d.changes);
    assert_eq!(p["spec"]["terminationGracePeriodSeconds"], 35);
    assert_eq!(p["spec"]["initContainers"], obj["spec"]["initContainers"]);
    assert_eq!(p["spec"]["containers"][1], obj["spec"]["containers"][1]);
    assert_eq!(p["spec"]["containers"][2], obj["spec"]["containers"][2]);
}

#[test]
fn existing_prestop_is_kept_exactly_and_counts_for_grace() {
    let mut c = web();
    c["lifecycle"] = json!({ "preStop": { "exec": { "command": ["sleep", "40"] } }, "postStart": { "exec": { "command": ["true"] } } });
    let (d, p) = run(&pod(json!({}), json!([c.clone()])));
    assert_eq!(p["spec"]["containers"][0]["lifecycle"], c["lifecycle"]);
    // 40 + 20 + 5
    assert_eq!(p["spec"]["terminationGracePeriodSeconds"], 65);
    assert!(
        !d.changes
            .iter()
            .any(|c| matches!(c, Change::Prestop { .. }))
    );
}

#[test]
fn prestop_goes_beside_an_existing_post_start() {
    let mut c = web();
    c["lifecycle"] = json!({ "postStart": { "exec": { "command": ["true"] } } });
    let (_, p) = run(&pod(json!({}), json!([c])));
    let lifecycle = &p["spec"]["containers"][0]["lifecycle"];
    assert_eq!(lifecycle["preStop"]["sleep"]["seconds"], 5);
    assert_eq!(lifecycle["postStart"]["exec"]["command"][0], "true");
}

#[test]
fn exec_fallback_on_old_clusters_and_on_request() {
    let old = Engine::new(ClusterPolicy::default(), Capabilities { minor: 29 });
    let (d, p) = run_with(&old, &web_pod(), Workload::Pod, &enforce_ns());
    assert_eq!(
        p["spec"]["containers"][0]["lifecycle"]["preStop"],
        json!({ "exec": { "command": ["sleep", "5"] } })
    );
    assert!(codes(&d).contains(&Code::ExecPrestopFallback));

    let (d, p) = run(&pod(
        json!({ "zerodrop.dev/prestop-action": "exec" }),
        json!([web()]),
    ));
    assert_eq!(
        p["spec"]["containers"][0]["lifecycle"]["preStop"]["exec"]["command"][1],
        "5"
    );
    assert!(codes(&d).contains(&Code::ExecPrestopFallback));

    let (d, p) = run(&pod(
        json!({ "zerodrop.dev/prestop-action": "sleep" }),
        json!([web()]),
    ));
    assert_eq!(
        p["spec"]["containers"][0]["lifecycle"]["preStop"]["sleep"]["seconds"],
        5
    );
    assert!(!codes(&d).contains(&Code::ExecPrestopFallback));
}

#[test]
fn grace_covers_sleep_plus_drain_and_is_never_lowered() {
    let cases = [
        (
            json!({ "zerodrop.dev/prestop-sleep": "45s" }),
            None,
            Some(70),
        ),
        (
            json!({ "zerodrop.dev/drain-timeout": "1m" }),
            None,
            Some(70),
        ),
        (
            json!({ "zerodrop.dev/drain-timeout": "1m" }),
            Some(120),
            Some(120),
        ),
        (json!({}), Some(5), Some(30)),
        (json!({ "zerodrop.dev/prestop-sleep": "0" }), None, None),
        (
            json!({ "zerodrop.dev/prestop-sleep.web": "20", "zerodrop.dev/drain-timeout.web": "30" }),
            None,
            Some(55),
        ),
    ];
    for (annotations, grace, want) in cases {
        let mut obj = pod(annotations.clone(), json!([web()]));
        if let Some(g) = grace {
            obj["spec"]["terminationGracePeriodSeconds"] = json!(g);
        }
        let (d, p) = run(&obj);
        assert_eq!(
            p["spec"]
                .get("terminationGracePeriodSeconds")
                .and_then(Value::as_i64),
            want,
            "{annotations}"
        );
        let sleep = p["spec"]["containers"][0]
            .pointer("/lifecycle/preStop/sleep/seconds")
            .and_then(Value::as_i64);
        assert!(
            sleep.unwrap_or(0) <= want.unwrap_or(30),
            "{annotations}: {d:?}"
        );
    }
}

#[test]
fn grace_cap_clamps_the_sleep_and_warns() {
    let cluster = ClusterPolicy {
        max_grace_period: Some(20),
        ..ClusterPolicy::default()
    };
    let engine = Engine::new(cluster, Capabilities::LATEST);
    let mut obj = pod(
        json!({ "zerodrop.dev/prestop-sleep": "45s" }),
        json!([web()]),
    );
    obj["spec"]["terminationGracePeriodSeconds"] = json!(10);
    let (d, p) = run_with(&engine, &obj, Workload::Pod, &enforce_ns());
    assert_eq!(p["spec"]["terminationGracePeriodSeconds"], 20);
    assert_eq!(
        p["spec"]["containers"][0]["lifecycle"]["preStop"]["sleep"]["seconds"],
        20
    );
    assert!(
        codes(&d)
            .iter()
            .filter(|c| **c == Code::GraceCapped)
            .count()
            >= 1
    );
}

#[test]
fn shell_pid1_is_warned_and_rewritten_only_when_allowed() {
    let mut c = web();
    c["command"] = json!(["/bin/sh", "-c", "node server.js"]);
    let (d, p) = run(&pod(json!({}), json!([c.clone()])));
    assert_eq!(p["spec"]["containers"][0]["command"], c["command"]);
    assert!(codes(&d).contains(&Code::ShellPid1));

    let (d, p) = run(&pod(
        json!({ "zerodrop.dev/shell-exec": "true" }),
        json!([c]),
    ));
    assert_eq!(
        p["spec"]["containers"][0]["command"][2],
        "exec node server.js"
    );
    assert!(d.changes.contains(&Change::ShellExec {
        container: "web".into()
    }));
    assert!(!codes(&d).contains(&Code::ShellPid1));
    assert!(
        p["metadata"]["annotations"]["zerodrop.dev/injected"]
            .as_str()
            .unwrap()
            .contains("command")
    );
}

#[test]
fn bad_policy_values_fall_back_to_the_next_layer() {
    let ns = Layer::for_namespace(Some("enforce"), [("zerodrop.dev/prestop-sleep", "12s")]);
    let engine = Engine::new(ClusterPolicy::default(), Capabilities::LATEST);
    let cases = [
        ("zerodrop.dev/prestop-sleep", "banana", Code::BadAnnotation),
        ("zerodrop.dev/prestop-sleep", "-3", Code::BadAnnotation),
        (
            "zerodrop.dev/prestop-sleep.web",
            "1.5s",
            Code::BadAnnotation,
        ),
        (
            "zerodrop.dev/prestop-sleep.nginx",
            "3",
            Code::UnknownContainer,
        ),
        ("zerodrop.dev/mode", "sometimes", Code::BadAnnotation),
        (
            "zerodrop.dev/prestop-action",
            "teleport",
            Code::BadAnnotation,
        ),
    ];
    for (key, value, code) in cases {
        let obj = pod(json!({ key: value }), json!([web()]));
        let (d, p) = run_with(&engine, &obj, Workload::Pod, &ns);
        assert_eq!(d.mode, Mode::Enforce, "{key}");
        assert_eq!(
            p["spec"]["containers"][0]["lifecycle"]["preStop"]["sleep"]["seconds"], 12,
            "{key}"
        );
        let f = d
            .findings
            .iter()
            .find(|f| f.code == code)
            .unwrap_or_else(|| panic!("{key}: {:?}", d.findings));
        assert!(
            f.message.contains(key.split('.').next().unwrap())
                || f.fix.contains("web")
                || f.message.contains("nginx"),
            "{f:?}"
        );
    }
}

#[test]
fn audit_mode_reports_the_patch_it_would_apply() {
    let ns = Layer::for_namespace(Some("audit"), []);
    let engine = Engine::new(ClusterPolicy::default(), Capabilities::LATEST);
    let d = engine.evaluate(&web_pod(), Workload::Pod, &ns);
    assert_eq!(d.mode, Mode::Audit);
    assert!(!d.patch.0.is_empty());
}

#[test]
fn odd_annotation_keys_and_unknown_fields_survive_byte_for_byte() {
    let mut obj = pod(
        json!({ "a~b/c": "tilde", "x/y~1z": "slash" }),
        json!([web()]),
    );
    obj["spec"]["containers"][0]["futureField"] = json!({ "added": "in 1.40" });
    obj["spec"]["containers"][0]["lifecycle"] = json!({ "stopSignal": "SIGUSR1" });
    obj["spec"]["newPodField"] = json!([1, 2, 3]);
    obj["metadata"]["futureMeta"] = json!("kept");
    let (_, p) = run(&obj);
    assert_eq!(p["metadata"]["annotations"]["a~b/c"], "tilde");
    assert_eq!(p["metadata"]["annotations"]["x/y~1z"], "slash");
    assert_eq!(
        p["spec"]["containers"][0]["futureField"],
        obj["spec"]["containers"][0]["futureField"]
    );
    assert_eq!(
        p["spec"]["containers"][0]["lifecycle"]["stopSignal"],
        "SIGUSR1"
    );
    assert_eq!(p["spec"]["newPodField"], json!([1, 2, 3]));
    assert_eq!(p["metadata"]["futureMeta"], "kept");
}

#[test]
fn pods_without_annotations_or_metadata_get_a_ledger_that_applies() {
    let obj = json!({ "spec": { "containers": [web()] } });
    let (_, p) = run(&obj);
    assert!(p["metadata"]["annotations"]["zerodrop.dev/injected"].is_string());
}

#[test]
fn pod_templates_are_evaluated_like_pods() {
    let template =
        json!({ "metadata": { "labels": { "app": "web" } }, "spec": { "containers": [web()] } });
    let engine = Engine::new(ClusterPolicy::default(), Capabilities::LATEST);
    let (d, p) = run_with(&engine, &template, Workload::Deployment, &enforce_ns());
    assert!(d.skipped.is_none());
    assert_eq!(
        p["spec"]["containers"][0]["lifecycle"]["preStop"]["sleep"]["seconds"],
        5
    );
}

#[test]
fn reinvocation_after_another_webhook_adds_a_container_merges_the_ledger() {
    let (_, mut p) = run(&web_pod());
    p["spec"]["containers"]
        .as_array_mut()
        .unwrap()
        .push(json!({ "name": "late", "image": "l" }));
    let (d, p) = run(&p);
    assert_eq!(d.changes.len(), 1);
    let ledger = p["metadata"]["annotations"]["zerodrop.dev/injected"]
        .as_str()
        .unwrap();
    assert!(
        ledger.contains("\"web\"") && ledger.contains("\"late\""),
        "{ledger}"
    );
}

#[test]
fn cluster_config_defaults_apply_below_namespace_and_pod() {
    let cluster =
        ClusterPolicy::from_yaml("defaults:\n  prestop-sleep: 8\n  drain-timeout: 10\n").unwrap();
    let engine = Engine::new(cluster, Capabilities::LATEST);
    let (_, p) = run_with(&engine, &web_pod(), Workload::Pod, &enforce_ns());
    assert_eq!(
        p["spec"]["containers"][0]["lifecycle"]["preStop"]["sleep"]["seconds"],
        8
    );
    let ns = Layer::for_namespace(Some("enforce"), [("zerodrop.dev/prestop-sleep", "9")]);
    let (_, p) = run_with(&engine, &web_pod(), Workload::Pod, &ns);
    assert_eq!(
        p["spec"]["containers"][0]["lifecycle"]["preStop"]["sleep"]["seconds"],
        9
    );
}

#[test]
fn capabilities_parse_versions() {
    assert_eq!(
        Capabilities::parse("1.34"),
        Some(Capabilities { minor: 34 })
    );
    assert_eq!(
        Capabilities::parse("v1.29.3"),
        Some(Capabilities { minor: 29 })
    );
    assert_eq!(
        Capabilities::parse("1.31+"),
        Some(Capabilities { minor: 31 })
    );
    assert_eq!(Capabilities::parse("2.0"), None);
    assert_eq!(Capabilities::parse("banana"), None);
}

#[test]
fn every_finding_message_fits_the_warning_budget() {
    let mut c = web();
    c["command"] = json!(["sh", "-c", "a && b"]);
    c["readinessProbe"] = json!({ "tcpSocket": { "port": 8080 } });
    let long = "x".repeat(63);
    let obj = pod(
        json!({ format!("zerodrop.dev/prestop-sleep.{long}"): "1", "zerodrop.dev/mode": "x".repeat(500) }),
        json!([c]),
    );
    let (d, _) = run(&obj);
    assert!(d.findings.len() >= 3);
    for f in &d.findings {
        assert!(f.message.chars().count() <= 120, "{}", f.message);
    }
}
