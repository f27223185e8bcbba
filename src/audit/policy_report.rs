//! `--policy-report`: the audit as `wgpolicyk8s.io/v1alpha2` PolicyReports, one per namespace.

use super::Report;
use crate::findings::Severity;
use kube::Client;
use serde_json::{Value, json};
use std::collections::BTreeMap;

pub const GROUP_VERSION: &str = "wgpolicyk8s.io/v1alpha2";

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

pub async fn installed(client: &Client) -> bool {
    let Ok(req) = http::Request::get(format!("/apis/{GROUP_VERSION}")).body(Vec::new()) else {
        return false;
    };
    client.request::<Value>(req).await.is_ok()
}

/// The PolicyReport objects for a report, by namespace.
pub fn build(report: &Report) -> BTreeMap<String, Value> {
    let mut by_ns: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for ns in &report.namespaces {
        by_ns.entry(ns.name.clone()).or_default();
    }
    for e in &report.workloads {
        let resource =
            json!([{ "apiVersion": "", "kind": e.kind, "name": e.name, "namespace": e.namespace }]);
        let results = by_ns.entry(e.namespace.clone()).or_default();
        if let Some(reason) = &e.skipped {
            results.push(json!({ "policy": "zerodrop", "rule": "scope", "result": "skip", "message": reason, "source": "zerodrop", "resources": resource }));
            continue;
        }
        for f in &e.findings {
            let result = if f.severity == Severity::Warning {
                "warn"
            } else {
                "pass"
            };
            results.push(
                json!({ "policy": "zerodrop", "rule": f.code.as_str(), "result": result,
                "message": f.message, "source": "zerodrop", "resources": resource }),
            );
        }
        let (result, message) = if e.would_change() {
            let what: Vec<&str> = e.changes.iter().map(|c| c.description.as_str()).collect();
            ("fail", format!("zerodrop would set {}", what.join("; ")))
        } else {
            ("pass", "nothing to change".to_owned())
        };
        results.push(
            json!({ "policy": "zerodrop", "rule": "lossless-rollout", "result": result,
            "message": message, "source": "zerodrop", "resources": resource }),
        );
    }
    for d in &report.drift {
        by_ns.entry(d.namespace.clone()).or_default().push(json!({
            "policy": "zerodrop", "rule": "escaped", "result": "fail", "message": d.reason, "source": "zerodrop",
            "resources": [{ "apiVersion": "v1", "kind": "Pod", "name": d.name, "namespace": d.namespace }]
        }));
    }
    by_ns
        .into_iter()
        .map(|(ns, results)| {
            let count = |r: &str| results.iter().filter(|x| x["result"] == r).count();
            let summary = json!({ "pass": count("pass"), "fail": count("fail"), "warn": count("warn"), "error": 0, "skip": count("skip") });
            let obj = json!({
                "apiVersion": GROUP_VERSION, "kind": "PolicyReport",
                "metadata": { "name": "zerodrop", "namespace": ns, "labels": { "app.kubernetes.io/managed-by": "zerodrop" } },
                "summary": summary, "results": results
            });
            (ns, obj)
        })
        .collect()
}

/// Writes (server-side apply) one PolicyReport per namespace.
pub async fn write(client: &Client, report: &Report) -> Result<usize, PolicyReportError> {
    if !installed(client).await {
        return Err(PolicyReportError::NotInstalled);
    }
    let reports = build(report);
    for (ns, obj) in &reports {
        let url = format!(
            "/apis/{GROUP_VERSION}/namespaces/{ns}/policyreports/zerodrop?fieldManager=zerodrop&force=true"
        );
        let body = serde_json::to_vec(obj).unwrap_or_default();
        let req = http::Request::patch(url)
            .header("content-type", "application/apply-patch+yaml")
            .body(body)
            .map_err(|e| PolicyReportError::Write {
                namespace: ns.clone(),
                source: kube::Error::HttpError(e),
            })?;
        client
            .request::<Value>(req)
            .await
            .map_err(|source| PolicyReportError::Write {
                namespace: ns.clone(),
                source,
            })?;
    }
    Ok(reports.len())
}
