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
use zerodrop_core::engine::{Change, Engine, Facts as PodFacts, Workload, pod, waiter};
use zerodrop_core::export;
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
    /// What routes to pods (`None`: unknown; no `path-changed`).
    pub paths: Option<std::sync::Arc<dyn zerodrop_core::admission::PathLookup>>,
    /// Pods are mutated by the exported MutatingAdmissionPolicy, not the webhook: a pod is
    /// judged against what the policy gives (no image facts, no path, the fixed sleep), and one
    /// it declines is `declined-by-policy`.
    pub policy: bool,
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
                        paths: paths_of(facts, name, obj).as_ref(),
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
    if seen.facts.policy {
        return declined(engine, pod, layer, seen);
    }
    let paths = paths_of(seen.facts, meta(pod, "namespace"), pod);
    let facts = PodFacts {
        images,
        paths: paths.as_ref(),
    };
    let decision = engine.evaluate_with(pod, Workload::Pod, layer, facts);
    let mut detail = None;
    let mut bounds = None;
    if decision.skipped.is_some() || decision.mode != Mode::Enforce {
        return None;
    }
    let ledger = Ledger::read(pod);
    let created = created_at(pod);
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
            detail = paths
                .as_ref()
                .and_then(|p| engine.path_outgrown(pod, layer, p));
            if phase == "Running" && waiter.is_some() && !waiter_running(pod) {
                Cause::WaiterDown
            } else if detail.is_some() {
                Cause::PathChanged
            } else {
                return None;
            }
        }
        Some(_) if wants_waiter && waiter.is_none() => Cause::WaiterMissing,
        Some(_) if wants_waiter => match bounds_now(pod, &decision.patch) {
            Some(args) => {
                bounds = Some(args);
                Cause::PathChanged
            }
            None => Cause::WaiterAltered,
        },
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
    let reason = match (detail, bounds) {
        (Some(detail), _) => format!("its traffic path got slower: {detail}; needs a rollout"),
        (None, Some(args)) => format!(
            "its drain waiter's bounds are not what its traffic path now calls for ({args}); needs a rollout"
        ),
        (None, None) => cause.describe(ledger.map_or(0, |l| l.v)),
    };
    Some(escape(pod, seen, cause, reason))
}

/// Under `admission: policy`: the pod against what the exported policy gives it. The webhook's
/// outage windows say nothing of the apiserver's policy, and the waiter is not the policy's.
fn declined(engine: &Engine, pod: &Value, layer: &Layer, seen: &Seen<'_>) -> Option<Escaped> {
    let view = export::sleeping(pod);
    let pod_view = view.as_ref().unwrap_or(pod);
    let decision = engine.evaluate(pod_view, Workload::Pod, layer);
    if decision.skipped.is_some() || decision.mode != Mode::Enforce || decision.patch.0.is_empty() {
        return None;
    }
    let ledger = Ledger::read(pod);
    let created = created_at(pod);
    let (cause, reason) = match (&ledger, export::declined(pod_view, layer, &engine.cluster, &decision)) {
        (Some(l), _) if l.v < ledger::VERSION => (Cause::OutdatedLedger, Cause::OutdatedLedger.describe(l.v)),
        (Some(_), _) => (Cause::ChangedAfterAdmission, Cause::ChangedAfterAdmission.describe(0)),
        (None, Some(why)) => (
            Cause::DeclinedByPolicy,
            format!(
                "left alone by the MutatingAdmissionPolicy: {}; needs the webhook (admission: webhook)",
                why.describe()
            ),
        ),
        (None, None) if created.is_some_and(|t| seen.opted_in_at.is_some_and(|at| t < at)) => {
            (Cause::OptedInAfterStart, Cause::OptedInAfterStart.describe(0))
        }
        (None, None) => (
            Cause::NotMutated,
            "no zerodrop changes (the policy did not apply: its ConfigMap missing, a CEL error, or created before the policy): needs a rollout".into(),
        ),
    };
    Some(escape(pod, seen, cause, reason))
}

fn escape(pod: &Value, seen: &Seen<'_>, cause: Cause, reason: String) -> Escaped {
    let owner = controller(pod).map(|(kind, name)| match (kind, seen.replica_sets.get(name)) {
        ("ReplicaSet", Some(Some(deployment))) => deployment.clone(),
        _ => format!("{kind}/{name}"),
    });
    Escaped {
        namespace: meta(pod, "namespace").to_owned(),
        name: meta(pod, "name").to_owned(),
        owner,
        cause,
        reason,
    }
}

/// The pod's creation time, in seconds since the epoch.
fn created_at(pod: &Value) -> Option<i64> {
    meta(pod, "creationTimestamp")
        .parse::<Timestamp>()
        .ok()
        .map(|t| t.as_second())
}

/// What routes to a pod, or to a workload's pods (its template's labels).
fn paths_of(facts: &Facts, namespace: &str, obj: &Value) -> Option<zerodrop_core::paths::Paths> {
    let index = facts.paths.as_ref()?;
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("Pod");
    let template = Workload::from_kind(kind).map_or(Some(obj), |w| pod::at(obj, w.template_path()));
    let labels = template
        .and_then(|t| pod::at(t, &["metadata", "labels"]))
        .and_then(Value::as_object);
    Some(index.paths(namespace, labels))
}

/// The waiter's arguments zerodrop would now give and the pod lacks, where `patch` changes
/// nothing else: the waiter is intact and its bounds were decided for another path (a Service,
/// Ingress or balancer mark added after admission, or an earlier zerodrop's rule).
fn bounds_now(pod: &Value, patch: &json_patch::Patch) -> Option<String> {
    let mut after = pod.clone();
    json_patch::patch(&mut after, patch).ok()?;
    let at = waiter::init_containers(&after)
        .iter()
        .position(|c| c["name"] == waiter::NAME)?;
    let had = waiter::init_containers(pod)
        .iter()
        .find(|c| c["name"] == waiter::NAME)?["args"]
        .clone();
    let wanted = std::mem::replace(
        &mut after["spec"]["initContainers"][at]["args"],
        had.clone(),
    );
    let had = had.as_array()?;
    let new: Vec<&str> = wanted
        .as_array()?
        .iter()
        .filter(|a| !had.contains(a))
        .filter_map(Value::as_str)
        .collect();
    (after == *pod && !new.is_empty()).then(|| new.join(" "))
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
#[path = "cluster_tests.rs"]
mod tests;
