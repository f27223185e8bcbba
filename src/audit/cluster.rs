//! `zerodrop audit --cluster`: every workload's pod template and every escaped Pod, read-only.

use super::{Report, SCHEMA_VERSION, evaluate};
use crate::engine::ledger::{self, Ledger};
use crate::engine::{Engine, Workload};
use crate::policy::{Layer, MODE_LABEL, Mode};
use kube::Client;
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

/// Collections audited, with their API paths.
const WORKLOADS: [(&str, &str); 7] = [
    ("/apis/apps/v1", "deployments"),
    ("/apis/apps/v1", "statefulsets"),
    ("/apis/apps/v1", "daemonsets"),
    ("/apis/apps/v1", "replicasets"),
    ("/api/v1", "replicationcontrollers"),
    ("/apis/batch/v1", "jobs"),
    ("/apis/batch/v1", "cronjobs"),
];
const PAGE: u32 = 500;

/// Lists a collection page by page, as raw JSON so no field is lost.
pub async fn list(client: &Client, path: &str) -> Result<Vec<Value>, kube::Error> {
    let mut items = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let mut url = format!("{path}?limit={PAGE}");
        if let Some(token) = &next {
            url.push_str("&continue=");
            url.push_str(&form_encode(token));
        }
        let req = http::Request::get(url)
            .body(Vec::new())
            .map_err(kube::Error::HttpError)?;
        let page: Value = client.request(req).await?;
        let kind = page
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .trim_end_matches("List")
            .to_owned();
        let api_version = page.get("apiVersion").cloned();
        for mut item in page
            .get("items")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
        {
            // List items carry no apiVersion/kind; put them back so reports are self-describing.
            if let (Some(obj), Some(v)) = (item.as_object_mut(), &api_version) {
                obj.entry("apiVersion").or_insert(v.clone());
                obj.entry("kind").or_insert(Value::String(kind.clone()));
            }
            items.push(item);
        }
        next = page
            .pointer("/metadata/continue")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .map(str::to_owned);
        if next.is_none() {
            return Ok(items);
        }
    }
}

fn form_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
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
    let namespaces = match only {
        Some(ns) => {
            let req = http::Request::get(format!("/api/v1/namespaces/{ns}"))
                .body(Vec::new())
                .map_err(kube::Error::HttpError)?;
            vec![client.request::<Value>(req).await?]
        }
        None => list(client, "/api/v1/namespaces").await?,
    };
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
            "off".into()
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
        for (group, resource) in WORKLOADS {
            for obj in list(client, &format!("{group}/namespaces/{name}/{resource}")).await? {
                if resource == "replicasets" {
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
            for pod in list(client, &format!("/api/v1/namespaces/{name}/pods")).await? {
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
