//! Helm for the tests: built from the Go module proxy by tools/helm/build.sh (or $ZERODROP_HELM).

use crate::tools;

use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

pub fn helm() -> &'static PathBuf {
    static HELM: OnceLock<PathBuf> = OnceLock::new();
    HELM.get_or_init(|| tools::path(&tools::HELM))
}

pub fn chart() -> PathBuf {
    crate::root().join("charts/zerodrop")
}

/// `helm template RELEASE -n NAMESPACE` with `--set` values; Err(stderr) when Helm refuses.
pub fn render_release(release: &str, namespace: &str, sets: &[&str]) -> Result<Vec<Value>, String> {
    render_for(release, namespace, None, sets)
}

/// As render_release, for a cluster of Kubernetes `version` (`--kube-version`).
pub fn render_for(
    release: &str,
    namespace: &str,
    version: Option<&str>,
    sets: &[&str],
) -> Result<Vec<Value>, String> {
    let mut cmd = Command::new(helm());
    cmd.args(["template", release, "-n", namespace])
        .arg(chart());
    if let Some(v) = version {
        cmd.args(["--kube-version", v]);
    }
    for s in sets {
        cmd.args(["--set", s]);
    }
    let out = cmd.output().unwrap();
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let text = String::from_utf8(out.stdout).unwrap();
    Ok(serde_yaml_ng::Deserializer::from_str(&text)
        .filter_map(|d| <Value as serde::Deserialize>::deserialize(d).ok())
        .filter(|v| v.is_object())
        .collect())
}

/// The alerting rules of the chart's PrometheusRule, as a Prometheus rules file.
pub fn prometheus_rules(sets: &[&str]) -> Value {
    let mut all = vec!["prometheusRule.enabled=true"];
    all.extend_from_slice(sets);
    let objs = render_release("zd", "zerodrop", &all).unwrap();
    let rule = objs.iter().find(|o| o["kind"] == "PrometheusRule").unwrap();
    rule["spec"].clone()
}

/// Every PromQL expression the chart ships: its alerts and its Grafana dashboard's panels.
pub fn monitoring_queries() -> Vec<String> {
    let objs = render_release(
        "zd",
        "zerodrop",
        &[
            "prometheusRule.enabled=true",
            "grafanaDashboard.enabled=true",
        ],
    )
    .unwrap();
    let mut out = Vec::new();
    for group in prometheus_rules(&[])["groups"].as_array().unwrap() {
        for rule in group["rules"].as_array().unwrap() {
            out.push(rule["expr"].as_str().unwrap().to_owned());
        }
    }
    let dashboard = objs
        .iter()
        .find(|o| o["kind"] == "ConfigMap" && o["data"].get("zerodrop.json").is_some())
        .unwrap();
    let json: Value =
        serde_json::from_str(dashboard["data"]["zerodrop.json"].as_str().unwrap()).unwrap();
    for panel in json["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            out.push(target["expr"].as_str().unwrap().to_owned());
        }
    }
    out
}

/// The zerodrop metric names a PromQL expression uses.
pub fn metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = expr;
    while let Some(at) = rest.find("zerodrop_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        names.push(tail[..end].to_owned());
        rest = &tail[end..];
    }
    names
}
