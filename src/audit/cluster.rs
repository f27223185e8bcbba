//! `zerodrop audit --cluster`: every workload's pod template and every escaped Pod, read-only.

use super::{Report, SCHEMA_VERSION, evaluate};
use crate::engine::ledger::{self, Ledger};
use crate::engine::{Engine, Workload};
use crate::policy::{Layer, MODE_LABEL, Mode};
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject, ListParams, TypeMeta};
use serde::Serialize;
use serde_json::Value;
use std::collections::HashMap;

#[derive(Debug, Clone, Serialize)]
pub struct NamespaceMode {
    pub name: String,
    /// `enforce`, `audit`, or `off` (not opted in: audited as if it were enforce).
    pub mode: String,
}

/// A running Pod that should carry zerodrop's changes but does not.
#[derive(Debug, Clone, Serialize)]
pub struct Escaped {
    pub namespace: String,
    pub name: String,
    /// The owning workload, `Kind/name`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    pub reason: String,
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

const PAGE: u32 = 500;

/// Lists a collection page by page (kube's paging), as JSON with every field the server sent.
pub async fn list(
    api: &Api<DynamicObject>,
    resource: &ApiResource,
) -> Result<Vec<Value>, kube::Error> {
    let mut items = Vec::new();
    let mut params = ListParams::default().limit(PAGE);
    loop {
        let page = api.list(&params).await?;
        for mut item in page.items {
            // List items carry no apiVersion/kind; put them back so reports are self-describing.
            item.types = Some(TypeMeta {
                api_version: resource.api_version.clone(),
                kind: resource.kind.clone(),
            });
            items.push(serde_json::to_value(item).map_err(kube::Error::SerdeError)?);
        }
        match page.metadata.continue_.filter(|t| !t.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => return Ok(items),
        }
    }
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
    progress: &dyn Fn(&str),
) -> Result<Report, kube::Error> {
    let namespace_resource = ApiResource::erase::<Namespace>(&());
    let namespace_api = Api::<DynamicObject>::all_with(client.clone(), &namespace_resource);
    let namespaces = match only {
        Some(ns) => {
            let found = namespace_api.get(ns).await?;
            vec![serde_json::to_value(found).map_err(kube::Error::SerdeError)?]
        }
        None => list(&namespace_api, &namespace_resource).await?,
    };
    let pod_resource = ApiResource::erase::<Pod>(&());
    let mut report = Report {
        version: SCHEMA_VERSION,
        ..Report::default()
    };
    for (i, ns) in namespaces.iter().enumerate() {
        let name = meta(ns, "name").to_owned();
        progress(&format!(
            "[{}/{}] namespace {name}",
            i + 1,
            namespaces.len()
        ));
        let labels = ns.pointer("/metadata/labels");
        let label = labels
            .and_then(|l| l.get(MODE_LABEL))
            .and_then(Value::as_str);
        let annotations = ns
            .pointer("/metadata/annotations")
            .and_then(Value::as_object);
        let pairs = annotations
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| Some((k.as_str(), v.as_str()?)));
        let mut layer = Layer::for_namespace(label, pairs);
        let opted_in = layer.all.mode != Some(Mode::Off);
        let shown = if opted_in {
            layer.all.mode.unwrap_or(Mode::Enforce).to_string()
        } else {
            Mode::Off.to_string()
        };
        report.namespaces.push(NamespaceMode {
            name: name.clone(),
            mode: shown,
        });
        if !opted_in && label.is_none() {
            // Not opted in yet: show what enforce would do, which is the point of auditing first.
            layer.all.mode = Some(Mode::Enforce);
        }

        let mut replica_sets: HashMap<String, Option<String>> = HashMap::new();
        for resource in workloads() {
            let api = Api::<DynamicObject>::namespaced_with(client.clone(), &name, &resource);
            for obj in list(&api, &resource).await? {
                if resource.kind == "ReplicaSet" {
                    let owner = controller(&obj).map(|(k, n)| format!("{k}/{n}"));
                    replica_sets.insert(meta(&obj, "name").to_owned(), owner.clone());
                    // A Deployment's ReplicaSets mirror its template: report the Deployment only.
                    if owner.is_some() {
                        continue;
                    }
                }
                report.workloads.extend(evaluate(engine, &obj, &layer));
            }
        }
        if layer.all.mode == Some(Mode::Enforce) && opted_in {
            let api = Api::<DynamicObject>::namespaced_with(client.clone(), &name, &pod_resource);
            for pod in list(&api, &pod_resource).await? {
                report
                    .drift
                    .extend(escaped(engine, &pod, &layer, &replica_sets));
            }
        }
    }
    Ok(report)
}

/// A Pod escaped when enforce mode would still change it (no ledger: webhook down or pod older
/// than the opt-in), or when its ledger predates this version's rules.
fn escaped(
    engine: &Engine,
    pod: &Value,
    layer: &Layer,
    replica_sets: &HashMap<String, Option<String>>,
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
    let decision = engine.evaluate(pod, Workload::Pod, layer);
    if decision.skipped.is_some() || decision.mode != Mode::Enforce {
        return None;
    }
    let reason = match Ledger::read(pod) {
        Some(l) if l.v < ledger::VERSION => {
            format!("outdated zerodrop ledger v{}: needs a rollout", l.v)
        }
        _ if decision.patch.0.is_empty() => return None,
        Some(_) => "changed after admission: needs a rollout".into(),
        None => "no zerodrop changes (webhook down or pod older than the opt-in): needs a rollout"
            .into(),
    };
    let owner = controller(pod).map(|(kind, name)| match (kind, replica_sets.get(name)) {
        ("ReplicaSet", Some(Some(deployment))) => deployment.clone(),
        _ => format!("{kind}/{name}"),
    });
    Some(Escaped {
        namespace: meta(pod, "namespace").to_owned(),
        name: meta(pod, "name").to_owned(),
        owner,
        reason,
    })
}
