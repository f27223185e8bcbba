//! The escaped pods' causes, from pods built in memory (the cluster audit's pure part).

use super::*;
use serde_json::json;
use zerodrop_core::engine::Capabilities;
use zerodrop_core::policy::ClusterPolicy;

fn pod(created: &str, annotations: Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": { "name": "web-1", "namespace": "shop", "creationTimestamp": created, "annotations": annotations },
        "spec": { "containers": [{ "name": "web", "image": "web" }] },
        "status": { "phase": "Running" }
    })
}

#[test]
fn causes_tell_outages_late_opt_ins_and_changed_pods_apart() {
    let engine = Engine::new(ClusterPolicy::default(), Capabilities::LATEST);
    let layer = Layer::for_namespace(Some("enforce"), []);
    let replica_sets = HashMap::new();
    let at = |s: &str| s.parse::<Timestamp>().unwrap().as_second();
    let facts = Facts {
        outages: vec![Window {
            from: at("2026-01-01T10:00:00Z"),
            to: at("2026-01-01T10:05:00Z"),
        }],
        images: None,
        inspect_misses: false,
        paths: None,
        policy: false,
    };
    let seen = Seen {
        replica_sets: &replica_sets,
        opted_in_at: Some(at("2026-01-02T00:00:00Z")),
        facts: &facts,
    };
    let cause = |p: &Value| escaped(&engine, p, &layer, &seen, &Images::new()).map(|e| e.cause);
    assert_eq!(
        cause(&pod("2026-01-01T10:01:00Z", json!({}))),
        Some(Cause::CreatedDuringOutage)
    );
    assert_eq!(
        cause(&pod("2026-01-01T12:00:00Z", json!({}))),
        Some(Cause::OptedInAfterStart)
    );
    assert_eq!(
        cause(&pod("2026-01-03T00:00:00Z", json!({}))),
        Some(Cause::NotMutated)
    );
    let stamped = json!({ "zerodrop.dev/injected": "{\"v\":1,\"containers\":{\"web\":[\"lifecycle.preStop\"]}}" });
    assert_eq!(
        cause(&pod("2026-01-03T00:00:00Z", stamped)),
        Some(Cause::ChangedAfterAdmission)
    );
    let old = json!({ "zerodrop.dev/injected": "{\"v\":0}" });
    assert_eq!(
        cause(&pod("2026-01-03T00:00:00Z", old)),
        Some(Cause::OutdatedLedger)
    );
    // Mutated before its shell-form image was known: the rewrite is the image's.
    let mut early = pod(
        "2026-01-03T00:00:00Z",
        json!({ "zerodrop.dev/shell-exec": "true" }),
    );
    let decision = engine.evaluate(&early, Workload::Pod, &layer);
    json_patch::patch(&mut early, &decision.patch).unwrap();
    assert_eq!(cause(&early), None, "complete as far as its spec tells");
    let shell_form = zerodrop_core::engine::image::ImageConfig {
        digest: format!("sha256:{}", "a".repeat(64)),
        entrypoint: None,
        cmd: Some(vec!["/bin/sh".into(), "-c".into(), "./web".into()]),
        stop_signal: None,
        shell: zerodrop_core::engine::image::Shell::Dash,
        script: None,
        certain: true,
    };
    let known: Images = [(
        "web".to_owned(),
        zerodrop_core::engine::image::ImageFacts::Known(shell_form),
    )]
    .into_iter()
    .collect();
    assert_eq!(
        escaped(&engine, &early, &layer, &seen, &known).map(|e| e.cause),
        Some(Cause::ImageInspectedLater)
    );
    // A pod carrying the changes has not escaped, whatever its age.
    let mut mutated = pod("2026-01-01T10:01:00Z", json!({}));
    let decision = engine.evaluate(&mutated, Workload::Pod, &layer);
    json_patch::patch(&mut mutated, &decision.patch).unwrap();
    assert_eq!(cause(&mutated), None);
}

#[test]
fn a_waiter_missing_altered_or_down_leaves_an_adaptive_pod_unprotected() {
    let engine = Engine::new(ClusterPolicy::default(), Capabilities::LATEST);
    let layer = Layer::for_namespace(Some("enforce"), []);
    let replica_sets = HashMap::new();
    let facts = Facts {
        outages: Vec::new(),
        images: None,
        inspect_misses: false,
        paths: None,
        policy: false,
    };
    let seen = Seen {
        replica_sets: &replica_sets,
        opted_in_at: None,
        facts: &facts,
    };
    let cause = |p: &Value| escaped(&engine, p, &layer, &seen, &Images::new()).map(|e| e.cause);
    let mut mutated = pod(
        "2026-01-03T00:00:00Z",
        json!({ "zerodrop.dev/drain": "adaptive" }),
    );
    let decision = engine.evaluate(&mutated, Workload::Pod, &layer);
    json_patch::patch(&mut mutated, &decision.patch).unwrap();
    assert_eq!(cause(&mutated), None, "no status yet");
    let status = |running: bool| {
        let state = if running {
            json!({ "running": {} })
        } else {
            json!({ "waiting": { "reason": "CrashLoopBackOff" } })
        };
        json!([{ "name": waiter::NAME, "state": state }])
    };
    mutated["status"]["initContainerStatuses"] = status(true);
    assert_eq!(cause(&mutated), None);
    let mut down = mutated.clone();
    down["status"]["initContainerStatuses"] = status(false);
    assert_eq!(cause(&down), Some(Cause::WaiterDown));
    let mut missing = mutated.clone();
    missing["spec"]["initContainers"] = json!([]);
    assert_eq!(cause(&missing), Some(Cause::WaiterMissing));
    let mut altered = mutated.clone();
    altered["spec"]["initContainers"][0]["image"] = json!("elsewhere:1");
    assert_eq!(cause(&altered), Some(Cause::WaiterAltered));
    // Intact, with the bounds another path (or an earlier rule) gave it: the path changed.
    let mut other_path = mutated.clone();
    let args = other_path["spec"]["initContainers"][0]["args"]
        .as_array_mut()
        .unwrap();
    let count = args.iter().position(|a| a == "--count=requests").unwrap();
    args[count] = json!("--count=connections");
    let e = escaped(&engine, &other_path, &layer, &seen, &Images::new()).unwrap();
    assert_eq!(e.cause, Cause::PathChanged);
    assert!(e.reason.contains("(--count=requests)"), "{}", e.reason);
}

#[test]
fn a_pod_whose_path_got_slower_after_admission_is_path_changed() {
    use zerodrop_core::paths::PathIndex;
    let engine = Engine::new(ClusterPolicy::default(), Capabilities::LATEST);
    let layer = Layer::for_namespace(Some("enforce"), []);
    let replica_sets = HashMap::new();
    let mut mutated = pod("2026-01-03T00:00:00Z", json!({}));
    mutated["metadata"]["labels"] = json!({ "app": "web" });
    let decision = engine.evaluate(&mutated, Workload::Pod, &layer);
    json_patch::patch(&mut mutated, &decision.patch).unwrap();
    let service = |annotations: Value| {
        json!({ "apiVersion": "v1", "kind": "Service",
                "metadata": { "name": "web", "namespace": "shop", "annotations": annotations },
                "spec": { "type": "LoadBalancer", "selector": { "app": "web" } } })
    };
    let cause = |services: &[Value]| {
        let mut index = PathIndex::new();
        for s in services {
            index.add_object(s);
        }
        let facts = Facts {
            outages: Vec::new(),
            images: None,
            inspect_misses: false,
            paths: Some(std::sync::Arc::new(index)),
            policy: false,
        };
        let seen = Seen {
            replica_sets: &replica_sets,
            opted_in_at: None,
            facts: &facts,
        };
        escaped(&engine, &mutated, &layer, &seen, &Images::new()).map(|e| (e.cause, e.reason))
    };
    assert_eq!(
        cause(&[]),
        None,
        "nothing routes: the default sleep is right"
    );
    let cluster = service(json!({ "zerodrop.dev/path-class": "cluster" }));
    assert_eq!(cause(&[cluster]), None, "kube-proxy alone: the same");
    let nlb = service(json!({
        "service.beta.kubernetes.io/aws-load-balancer-type": "external",
        "service.beta.kubernetes.io/aws-load-balancer-nlb-target-type": "ip"
    }));
    let (got, reason) = cause(&[nlb]).unwrap();
    assert_eq!(got, Cause::PathChanged);
    assert!(
        reason
            .contains("container web sleeps 5s; Service web is an AWS NLB target (ip): needs 125s"),
        "{reason}"
    );
}

/// Under `admission: policy` a pod is judged by what the exported policy gives it: an adaptive
/// pod with the fixed sleep is protected, a pod
/// the policy declines is `declined-by-policy` with the reason, and the webhook's outage
/// windows say nothing.
#[test]
fn under_the_policy_declined_pods_are_unprotected_and_mutated_ones_are_not() {
    let engine = Engine::new(ClusterPolicy::default(), Capabilities::LATEST);
    let layer = Layer::for_namespace(Some("enforce"), []);
    let replica_sets = HashMap::new();
    let at = |s: &str| s.parse::<Timestamp>().unwrap().as_second();
    let facts = |policy| Facts {
        outages: vec![Window {
            from: at("2026-01-01T10:00:00Z"),
            to: at("2026-01-01T10:05:00Z"),
        }],
        policy,
        ..Facts::default()
    };
    let (webhook, policy) = (facts(false), facts(true));
    let seen = |facts| Seen {
        replica_sets: &replica_sets,
        opted_in_at: None,
        facts,
    };
    let judged = |p: &Value, facts| {
        escaped(&engine, p, &layer, &seen(facts), &Images::new()).map(|e| (e.cause, e.reason))
    };
    // What the policy gives: the engine's answer for the pod without its drain setting.
    let given = |p: &Value| {
        let view = export::sleeping(p).unwrap_or_else(|| p.clone());
        let mut out = p.clone();
        json_patch::patch(
            &mut out,
            &engine.evaluate(&view, Workload::Pod, &layer).patch,
        )
        .unwrap();
        out
    };
    let adaptive = given(&pod(
        "2026-01-03T00:00:00Z",
        json!({ "zerodrop.dev/drain": "adaptive" }),
    ));
    assert_eq!(judged(&adaptive, &policy), None);
    let shell = pod(
        "2026-01-03T00:00:00Z",
        json!({ "zerodrop.dev/shell-exec": "true" }),
    );
    let (cause, reason) = judged(&shell, &policy).unwrap();
    assert_eq!(cause, Cause::DeclinedByPolicy);
    assert!(reason.contains("shell-exec: true"), "{reason}");
    let during = pod("2026-01-01T10:01:00Z", json!({}));
    let (cause, reason) = judged(&during, &policy).unwrap();
    assert_eq!(cause, Cause::NotMutated);
    assert!(reason.contains("the policy did not apply"), "{reason}");
    assert_eq!(
        judged(&during, &webhook).map(|j| j.0),
        Some(Cause::CreatedDuringOutage)
    );
    assert_eq!(judged(&given(&during), &policy), None);
}
