//! SARIF 2.1.0 output for code-scanning tools: findings and would-be changes with file and line.

use super::report::Report;
use serde_json::{Value, json};
use zerodrop_core::findings::{Code, Severity};

pub fn render(report: &Report) -> Value {
    let mut rules: Vec<Value> = Code::ALL
        .iter()
        .map(|c| json!({ "id": c.as_str(), "name": c.name(), "shortDescription": { "text": c.name() } }))
        .collect();
    rules.push(json!({ "id": "ZD900", "name": "would-change",
        "shortDescription": { "text": "zerodrop would change this pod template" } }));
    let mut results = Vec::new();
    for e in &report.workloads {
        let location = json!([{ "physicalLocation": {
            "artifactLocation": { "uri": e.file.clone().unwrap_or_default() },
            "region": { "startLine": e.line.unwrap_or(1) }
        }, "logicalLocations": [{ "name": e.title(), "kind": "object" }] }]);
        for f in &e.findings {
            let level = match f.severity {
                Severity::Warning => "warning",
                Severity::Info => "note",
            };
            results.push(json!({
                "ruleId": f.code.as_str(), "level": level,
                "message": { "text": format!("{}: {} (fix: {})", e.title(), f.message, f.fix) },
                "locations": location,
            }));
        }
        if e.would_change() {
            let what: Vec<&str> = e.changes.iter().map(|c| c.description.as_str()).collect();
            results.push(json!({
                "ruleId": "ZD900", "level": "note",
                "message": { "text": format!("{}: zerodrop would set {}", e.title(), what.join("; ")) },
                "locations": location,
            }));
        }
    }
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": { "driver": { "name": "zerodrop", "version": env!("CARGO_PKG_VERSION"), "rules": rules } },
            "results": results,
        }]
    })
}
