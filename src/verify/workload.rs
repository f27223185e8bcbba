//! The workload `zerodrop verify` rolls: its facts for preflight, the changes it makes (the
//! restart annotation, the scale, the sweep's annotation) and waiting for it to converge.

use super::preflight::{Facts, Kind, Service, Target};
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{Namespace, Pod, PodTemplateSpec};
use kube::api::{ListParams, Patch, PatchParams};
use kube::{Api, Client};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;

/// What verify reads of a Deployment or a StatefulSet.
#[derive(Debug, Clone, Default)]
pub struct State {
    pub replicas: i32,
    pub ready: i32,
    /// Rolled out: the controller saw the latest spec and every replica is updated and available.
    pub converged: bool,
    pub selector: BTreeMap<String, String>,
    pub template: Option<PodTemplateSpec>,
}

/// The workload's state, `None` when it does not exist.
pub async fn state(client: &Client, ns: &str, target: &Target) -> kube::Result<Option<State>> {
    Ok(match target.kind {
        Kind::Deployment => {
            let Some(d) = Api::<Deployment>::namespaced(client.clone(), ns)
                .get_opt(&target.name)
                .await?
            else {
                return Ok(None);
            };
            let spec = d.spec;
            let st = d.status.unwrap_or_default();
            let want = spec.replicas.unwrap_or(1);
            let seen = st.observed_generation.unwrap_or(0) >= d.metadata.generation.unwrap_or(0);
            Some(State {
                replicas: want,
                ready: st.ready_replicas.unwrap_or(0),
                converged: seen
                    && st.updated_replicas.unwrap_or(0) == want
                    && st.available_replicas.unwrap_or(0) == want
                    && st.replicas.unwrap_or(0) == want,
                selector: spec.selector.match_labels.unwrap_or_default(),
                template: Some(spec.template),
            })
        }
        Kind::StatefulSet => {
            let Some(s) = Api::<StatefulSet>::namespaced(client.clone(), ns)
                .get_opt(&target.name)
                .await?
            else {
                return Ok(None);
            };
            let spec = s.spec;
            let st = s.status.unwrap_or_default();
            let want = spec.replicas.unwrap_or(1);
            let seen = st.observed_generation.unwrap_or(0) >= s.metadata.generation.unwrap_or(0);
            Some(State {
                replicas: want,
                ready: st.ready_replicas.unwrap_or(0),
                converged: seen
                    && st.current_revision == st.update_revision
                    && st.ready_replicas.unwrap_or(0) == want
                    && st.replicas == want,
                selector: spec.selector.match_labels.unwrap_or_default(),
                template: Some(spec.template),
            })
        }
    })
}

/// Everything preflight decides on, read without changing anything.
pub async fn facts(
    client: &Client,
    ns: &str,
    target: &Target,
    state: Option<&State>,
    zerodrop_namespace: Option<String>,
    denied: Vec<(String, String)>,
) -> kube::Result<Facts> {
    let mut facts = Facts {
        namespace: ns.to_owned(),
        zerodrop_namespace,
        denied,
        ..Facts::default()
    };
    let Some(state) = state else {
        return Ok(facts);
    };
    facts.replicas = Some(state.replicas);
    facts.ready_replicas = state.ready;
    facts.rolling = !state.converged;
    let labels = state
        .template
        .as_ref()
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    let first = state
        .template
        .as_ref()
        .and_then(|t| t.spec.as_ref())
        .and_then(|s| s.containers.first());
    facts.readiness_path = first
        .and_then(|c| c.readiness_probe.as_ref())
        .and_then(|p| p.http_get.as_ref())
        .and_then(|h| h.path.clone());
    let services = Api::<k8s_openapi::api::core::v1::Service>::namespaced(client.clone(), ns)
        .list(&ListParams::default())
        .await?;
    for s in services {
        let spec = s.spec.unwrap_or_default();
        let Some(selector) = spec.selector.filter(|sel| !sel.is_empty()) else {
            continue;
        };
        if !selector.iter().all(|(k, v)| labels.get(k) == Some(v)) {
            continue;
        }
        let ports = spec
            .ports
            .unwrap_or_default()
            .into_iter()
            .filter(|p| p.protocol.as_deref().unwrap_or("TCP") == "TCP")
            .filter_map(|p| {
                let port = u16::try_from(p.port).ok()?;
                let target = match p.target_port {
                    Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String(n)) => n,
                    Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(n)) => {
                        n.to_string()
                    }
                    None => port.to_string(),
                };
                Some((port, target))
            })
            .collect();
        facts.services.push(Service {
            name: s.metadata.name.unwrap_or_default(),
            cluster_ip: spec.cluster_ip.filter(|ip| !ip.is_empty() && ip != "None"),
            ports,
        });
    }
    let hpas = Api::<HorizontalPodAutoscaler>::namespaced(client.clone(), ns)
        .list(&ListParams::default())
        .await?;
    let kind = match target.kind {
        Kind::Deployment => "Deployment",
        Kind::StatefulSet => "StatefulSet",
    };
    facts.autoscalers = hpas
        .into_iter()
        .filter(|h| {
            h.spec.scale_target_ref.kind == kind && h.spec.scale_target_ref.name == target.name
        })
        .filter_map(|h| h.metadata.name)
        .collect();
    Ok(facts)
}

/// What verify read of the namespace: its `zerodrop.dev/mode` label and its annotations (the
/// namespace's policy layer), when it may read it.
#[derive(Debug, Clone, Default)]
pub struct NamespaceFacts {
    pub mode: Option<String>,
    pub annotations: std::collections::BTreeMap<String, String>,
}

/// The namespace's `zerodrop.dev/mode` label and its annotations.
pub async fn namespace(client: &Client, ns: &str) -> kube::Result<NamespaceFacts> {
    let n = Api::<Namespace>::all(client.clone()).get_opt(ns).await?;
    let meta = n.map(|n| n.metadata).unwrap_or_default();
    Ok(NamespaceFacts {
        mode: meta
            .labels
            .and_then(|l| l.get("zerodrop.dev/mode").cloned()),
        annotations: meta.annotations.unwrap_or_default(),
    })
}

/// A merge patch of the workload.
pub async fn patch(client: &Client, ns: &str, target: &Target, body: Value) -> kube::Result<()> {
    let params = PatchParams::default();
    match target.kind {
        Kind::Deployment => {
            Api::<Deployment>::namespaced(client.clone(), ns)
                .patch(&target.name, &params, &Patch::Merge(&body))
                .await?;
        }
        Kind::StatefulSet => {
            Api::<StatefulSet>::namespaced(client.clone(), ns)
                .patch(&target.name, &params, &Patch::Merge(&body))
                .await?;
        }
    }
    Ok(())
}

/// What `kubectl rollout restart` does: a new template annotation, so every pod is replaced.
pub fn restart_patch(now_rfc3339: &str) -> Value {
    json!({"spec": {"template": {"metadata": {"annotations": {
        "kubectl.kubernetes.io/restartedAt": now_rfc3339}}}}})
}

/// Sets (or, with `None`, removes) one pod-template annotation.
pub fn annotation_patch(key: &str, value: Option<&str>) -> Value {
    json!({"spec": {"template": {"metadata": {"annotations": {key: value}}}}})
}

pub fn scale_patch(replicas: i32) -> Value {
    json!({"spec": {"replicas": replicas}})
}

/// Waits until the workload has converged and none of its pods is terminating; false when
/// `limit` passed first.
pub async fn converge(
    client: &Client,
    ns: &str,
    target: &Target,
    limit: Duration,
) -> kube::Result<bool> {
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        if let Some(s) = state(client, ns, target).await?
            && s.converged
        {
            let pods = pods(client, ns, &s.selector).await?;
            let terminating = pods.iter().any(|p| p.metadata.deletion_timestamp.is_some());
            if !terminating && i32::try_from(pods.len()).unwrap_or(i32::MAX) == s.replicas {
                return Ok(true);
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Ok(false)
}

pub fn selector_string(selector: &BTreeMap<String, String>) -> String {
    selector
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

pub async fn pods(
    client: &Client,
    ns: &str,
    selector: &BTreeMap<String, String>,
) -> kube::Result<Vec<Pod>> {
    let lp = ListParams::default().labels(&selector_string(selector));
    Ok(Api::<Pod>::namespaced(client.clone(), ns)
        .list(&lp)
        .await?
        .items)
}
