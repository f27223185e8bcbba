//! `zerodrop audit --cluster` and the background scan: every workload's pod template and every
//! escaped Pod, read-only, one namespace and one page at a time so memory stays bounded.

pub use super::drift::{Cause, Escaped, NamespaceMode};
use super::evaluate::evaluate_with;
pub use super::listing::{Pages, Scope, scopes};
use super::report::{Report, SCHEMA_VERSION};
use crate::cluster::lease::Window;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject};
use serde_json::Value;
use std::collections::HashMap;
use zerodrop_core::engine::image::Images;
use zerodrop_core::engine::ledger::{self, Ledger};
use zerodrop_core::engine::{Change, Engine, Facts as PodFacts, Workload, waiter};
use zerodrop_core::policy::{Layer, Mode};

/// What the cluster audit knows beyond the objects: when zerodrop was down, and where to learn
/// what the workloads' images do (`None`: from the pod specs only).
#[derive(Clone, Default)]
pub struct Facts {
    pub outages: Vec<Window>,
    pub images: Option<std::sync::Arc<dyn zerodrop_core::admission::ImageLookup>>,
    /// Inspect images the lookup does not know yet (`false`: what it knows only, no registry
    /// call: the background scan).
    pub inspect_misses: bool,
}

/// The workload collections audited.
fn workloads() -> [ApiResource; 7] {
    use k8s_openapi::api::{apps::v1 as apps, batch::v1 as batch, core::v1 as core};
    [
        ApiResource::erase::<apps::Deployment>(&()),
        ApiResource::erase::<apps::StatefulSet>(&()),
        ApiResource::erase::<apps::DaemonSet>(&()),
        ApiResource::erase::<apps::ReplicaSet>(&()),
        ApiResource::erase::<core::ReplicationController>(&()),
        ApiResource::erase::<batch::Job>(&()),
        ApiResource::erase::<batch::CronJob>(&()),
    ]
}

fn meta<'a>(obj: &'a Value, key: &str) -> &'a str {
    obj.get("metadata")
        .and_then(|m| m.get(key))
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn controller(obj: &Value) -> Option<(&str, &str)> {
    let refs = obj.pointer("/metadata/ownerReferences")?.as_array()?;
    let r = refs
        .iter()
        .find(|r| r.get("controller") == Some(&Value::Bool(true)))?;
    Some((r.get("kind")?.as_str()?, r.get("name")?.as_str()?))
}

/// Audits one namespace or all of them; `progress` gets a line per namespace.
pub async fn audit(
    client: &Client,
    engine: &Engine,
    only: Option<&str>,
    facts: &Facts,
    progress: &dyn Fn(&str),
) -> Result<Report, kube::Error> {
    let scopes = scopes(client, only, None).await?;
    let mut report = Report {
        version: SCHEMA_VERSION,
        ..Report::default()
    };
    for (i, scope) in scopes.iter().enumerate() {
        progress(&format!(
            "[{}/{}] namespace {}",
            i + 1,
            scopes.len(),
            scope.name
        ));
        let one = audit_namespace(client, engine, scope, facts).await?;
        report.namespaces.extend(one.namespaces);
        report.workloads.extend(one.workloads);
        report.drift.extend(one.drift);
    }
    Ok(report)
}

/// The audit of one namespace: its mode, its workloads' templates, and (enforce namespaces)
/// its escaped pods.
pub async fn audit_namespace(
    client: &Client,
    engine: &Engine,
    scope: &Scope,
    facts: &Facts,
) -> Result<Report, kube::Error> {
    let mut report = Report {
        version: SCHEMA_VERSION,
        ..Report::default()
    };
    let name = &scope.name;
    let mut layer = scope.layer.clone();
    let opted_in = layer.all.mode != Some(Mode::Off);
    let shown = match layer.all.mode {
        _ if !opted_in => Mode::Off,
        mode => mode.unwrap_or(Mode::Enforce),
    };
    report.namespaces.push(NamespaceMode {
        name: name.clone(),
        mode: shown.to_string(),
    });
    if !opted_in && scope.label.is_none() {
        // Not opted in yet: show what enforce would do, which is the point of auditing first.
        layer.all.mode = Some(Mode::Enforce);
    }

    let mut replica_sets: HashMap<String, Option<String>> = HashMap::new();
    for resource in workloads() {
        let api = Api::<DynamicObject>::namespaced_with(client.clone(), name, &resource);
        let mut pages = Pages::new(&api, &resource);
        while let Some(mut objs) = pages.next().await? {
            if resource.kind == "ReplicaSet" {
                for obj in &objs {
                    let owner = controller(obj).map(|(k, n)| format!("{k}/{n}"));
                    replica_sets.insert(meta(obj, "name").to_owned(), owner);
                }
                // A Deployment's ReplicaSets mirror its template: report the Deployment only.
                objs.retain(|obj| controller(obj).is_none());
            }
            let images = page_images(facts, name, &objs).await;
            for (obj, images) in objs.iter().zip(&images) {
                report.workloads.extend(evaluate_with(
                    engine,
                    obj,
                    &layer,
                    PodFacts {
                        images,
                        paths: None,
                    },
                ));
            }
        }
    }
    if layer.all.mode == Some(Mode::Enforce) && opted_in {
        let pods = ApiResource::erase::<Pod>(&());
        let api = Api::<DynamicObject>::namespaced_with(client.clone(), name, &pods);
        let seen = Seen {
            replica_sets: &replica_sets,
            opted_in_at: scope.opted_in_at,
            facts,
        };
        let mut pages = Pages::new(&api, &pods);
        while let Some(pods) = pages.next().await? {
            let images = page_images(facts, name, &pods).await;
            for (pod, images) in pods.iter().zip(&images) {
                report
                    .drift
                    .extend(escaped(engine, pod, &layer, &seen, images));
            }
        }
    }
    Ok(report)
}

/// What an escaped pod is judged against besides itself.
struct Seen<'a> {
    replica_sets: &'a HashMap<String, Option<String>>,
    opted_in_at: Option<i64>,
    facts: &'a Facts,
}

/// What is known of each object's images (nothing without an image source).
async fn page_images(facts: &Facts, namespace: &str, objs: &[Value]) -> Vec<Images> {
    match &facts.images {
        Some(lookup) => {
            super::images::of_page(lookup.as_ref(), namespace, objs, facts.inspect_misses).await
        }
        None => vec![Images::new(); objs.len()],
    }
}

/// A Pod escaped when enforce mode would still change it (no ledger: webhook down or pod older
/// than the opt-in), or when its ledger predates this version's rules.
fn escaped(
    engine: &Engine,
    pod: &Value,
    layer: &Layer,
    seen: &Seen<'_>,
    images: &Images,
) -> Option<Escaped> {
    let phase = pod
        .pointer("/status/phase")
        .and_then(Value::as_str)
        .unwrap_or("Pending");
    if matches!(phase, "Succeeded" | "Failed")
        || pod.pointer("/metadata/deletionTimestamp").is_some()
    {
        return None;
    }
    let facts = PodFacts {
        images,
        paths: None,
    };
    let decision = engine.evaluate_with(pod, Workload::Pod, layer, facts);
    if decision.skipped.is_some() || decision.mode != Mode::Enforce {
        return None;
    }
    let ledger = Ledger::read(pod);
    let created = meta(pod, "creationTimestamp")
        .parse::<Timestamp>()
        .ok()
        .map(|t| t.as_second());
    let waiter = waiter::init_containers(pod)
        .iter()
        .find(|c| c["name"] == waiter::NAME);
    let wants_waiter = decision
        .changes
        .iter()
        .any(|c| matches!(c, Change::Waiter { .. }));
    let cause = match &ledger {
        Some(l) if l.v < ledger::VERSION => Cause::OutdatedLedger,
        _ if decision.patch.0.is_empty() => {
            if phase == "Running" && waiter.is_some() && !waiter_running(pod) {
                Cause::WaiterDown
            } else {
                return None;
            }
        }
        Some(_) if wants_waiter && waiter.is_none() => Cause::WaiterMissing,
        Some(_) if wants_waiter => Cause::WaiterAltered,
        // From its spec alone the pod is complete: the change is the image's.
        Some(_)
            if !images.is_empty()
                && engine
                    .evaluate(pod, Workload::Pod, layer)
                    .patch
                    .0
                    .is_empty() =>
        {
            Cause::ImageInspectedLater
        }
        Some(_) => Cause::ChangedAfterAdmission,
        None => match created {
            Some(t) if seen.facts.outages.iter().any(|w| w.from <= t && t <= w.to) => {
                Cause::CreatedDuringOutage
            }
            Some(t) if seen.opted_in_at.is_some_and(|at| t < at) => Cause::OptedInAfterStart,
            _ => Cause::NotMutated,
        },
    };
    let owner = controller(pod).map(|(kind, name)| match (kind, seen.replica_sets.get(name)) {
        ("ReplicaSet", Some(Some(deployment))) => deployment.clone(),
        _ => format!("{kind}/{name}"),
    });
    Some(Escaped {
        namespace: meta(pod, "namespace").to_owned(),
        name: meta(pod, "name").to_owned(),
        owner,
        cause,
        reason: cause.describe(ledger.map_or(0, |l| l.v)),
    })
}

/// The waiter's status says running (no status yet: not judged down).
fn waiter_running(pod: &Value) -> bool {
    let statuses = pod
        .pointer("/status/initContainerStatuses")
        .and_then(Value::as_array);
    statuses
        .and_then(|s| s.iter().find(|c| c["name"] == waiter::NAME))
        .is_none_or(|s| s.pointer("/state/running").is_some())
}

#[cfg(test)]
mod tests {
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
    }
}
