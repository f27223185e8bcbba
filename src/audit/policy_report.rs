//! `--policy-report`: the audit as `wgpolicyk8s.io/v1alpha2` PolicyReports, one per namespace,
//! written with server-side apply.

use super::report::Report;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use serde::Serialize;
use std::collections::BTreeMap;
use zerodrop_core::findings::Severity;

pub const GROUP: &str = "wgpolicyk8s.io";
pub const VERSION: &str = "v1alpha2";
pub const GROUP_VERSION: &str = "wgpolicyk8s.io/v1alpha2";
/// The field manager of every write, and each report's name.
const NAME: &str = "zerodrop";

#[derive(Debug, thiserror::Error)]
pub enum PolicyReportError {
    #[error(
        "the PolicyReport CRD ({GROUP_VERSION}) is not installed in this cluster; no reports written"
    )]
    NotInstalled,
    #[error("writing PolicyReport in {namespace}: {source}")]
    Write {
        namespace: String,
        source: kube::Error,
    },
}

/// The parts of the PolicyReport schema zerodrop writes.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PolicyReport {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub metadata: Metadata,
    pub summary: Summary,
    pub results: Vec<ReportResult>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Metadata {
    pub name: &'static str,
    pub namespace: String,
    pub labels: BTreeMap<&'static str, &'static str>,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Summary {
    pub pass: usize,
    pub fail: usize,
    pub warn: usize,
    pub error: usize,
    pub skip: usize,
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Pass,
    Fail,
    Warn,
    Skip,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ReportResult {
    pub policy: &'static str,
    pub rule: String,
    pub result: Outcome,
    pub message: String,
    pub source: &'static str,
    pub resources: Vec<ObjectReference>,
}

impl ReportResult {
    fn new(rule: &str, result: Outcome, message: String, resource: ObjectReference) -> Self {
        ReportResult {
            policy: NAME,
            rule: rule.to_owned(),
            result,
            message,
            source: NAME,
            resources: vec![resource],
        }
    }
}

fn reference(api_version: &str, kind: &str, name: &str, namespace: &str) -> ObjectReference {
    ObjectReference {
        api_version: Some(api_version.to_owned()),
        kind: Some(kind.to_owned()),
        name: Some(name.to_owned()),
        namespace: Some(namespace.to_owned()),
        ..ObjectReference::default()
    }
}

pub async fn installed(client: &Client) -> bool {
    client.list_api_group_resources(GROUP_VERSION).await.is_ok()
}

/// The PolicyReport objects for a report, by namespace.
pub fn build(report: &Report) -> BTreeMap<String, PolicyReport> {
    let mut by_ns: BTreeMap<String, Vec<ReportResult>> = BTreeMap::new();
    for ns in &report.namespaces {
        by_ns.entry(ns.name.clone()).or_default();
    }
    for e in &report.workloads {
        let resource = reference(&e.api_version, &e.kind, &e.name, &e.namespace);
        let results = by_ns.entry(e.namespace.clone()).or_default();
        if let Some(reason) = &e.skipped {
            results.push(ReportResult::new(
                "scope",
                Outcome::Skip,
                reason.clone(),
                resource,
            ));
            continue;
        }
        for f in &e.findings {
            let result = match f.severity {
                Severity::Warning => Outcome::Warn,
                Severity::Info => Outcome::Pass,
            };
            let message = f.message.clone();
            results.push(ReportResult::new(
                f.code.as_str(),
                result,
                message,
                resource.clone(),
            ));
        }
        let (result, message) = if e.would_change() {
            let what: Vec<&str> = e.changes.iter().map(|c| c.description.as_str()).collect();
            (
                Outcome::Fail,
                format!("zerodrop would set {}", what.join("; ")),
            )
        } else {
            (Outcome::Pass, "nothing to change".to_owned())
        };
        results.push(ReportResult::new(
            "lossless-rollout",
            result,
            message,
            resource,
        ));
    }
    for d in &report.drift {
        let resource = reference("v1", "Pod", &d.name, &d.namespace);
        let result = ReportResult::new("escaped", Outcome::Fail, d.reason.clone(), resource);
        by_ns.entry(d.namespace.clone()).or_default().push(result);
    }
    by_ns
        .into_iter()
        .map(|(namespace, results)| {
            let count = |o: Outcome| results.iter().filter(|r| r.result == o).count();
            let summary = Summary {
                pass: count(Outcome::Pass),
                fail: count(Outcome::Fail),
                warn: count(Outcome::Warn),
                error: 0,
                skip: count(Outcome::Skip),
            };
            let report = PolicyReport {
                api_version: GROUP_VERSION,
                kind: "PolicyReport",
                metadata: Metadata {
                    name: NAME,
                    namespace: namespace.clone(),
                    labels: [("app.kubernetes.io/managed-by", NAME)].into(),
                },
                summary,
                results,
            };
            (namespace, report)
        })
        .collect()
}

/// Writes one PolicyReport per namespace (server-side apply, zerodrop's field manager).
pub async fn write(client: &Client, report: &Report) -> Result<usize, PolicyReportError> {
    if !installed(client).await {
        return Err(PolicyReportError::NotInstalled);
    }
    let resource = ApiResource::from_gvk(&GroupVersionKind::gvk(GROUP, VERSION, "PolicyReport"));
    let reports = build(report);
    let params = PatchParams::apply(NAME).force();
    for (ns, obj) in &reports {
        let api = Api::<DynamicObject>::namespaced_with(client.clone(), ns, &resource);
        api.patch(NAME, &params, &Patch::Apply(obj))
            .await
            .map_err(|source| PolicyReportError::Write {
                namespace: ns.clone(),
                source,
            })?;
    }
    Ok(reports.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit;
    use serde_json::json;
    use zerodrop_core::engine::{Capabilities, Engine};
    use zerodrop_core::policy::{ClusterPolicy, Layer};

    #[test]
    fn every_result_names_its_resource_with_a_real_api_version() {
        let engine = Engine::new(ClusterPolicy::default(), Capabilities::LATEST);
        let deployment = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": { "name": "web", "namespace": "shop" },
            "spec": { "template": { "spec": { "containers": [{ "name": "web", "image": "web" }] } } }
        });
        let mut report = audit::Report::default();
        report
            .workloads
            .extend(audit::evaluate(&engine, &deployment, &Layer::default()));
        let reports = build(&report);
        let shop = &reports["shop"];
        assert_eq!(shop.summary.fail, 1, "the template would change");
        let value = serde_json::to_value(shop).unwrap();
        assert_eq!(value["apiVersion"], GROUP_VERSION);
        for result in value["results"].as_array().unwrap() {
            let r = &result["resources"][0];
            assert_eq!(
                (&r["apiVersion"], &r["kind"]),
                (&json!("apps/v1"), &json!("Deployment"))
            );
        }
    }
}
