//! charts/zerodrop's monitoring: the objects only when enabled, the network policy, and the
//! alerting rules checked and unit-tested by promtool (built by tools/promtool/build.sh).

use super::chart::{find, render};
use serde_json::{Value, json};
use std::process::Command;

#[test]
fn monitoring_objects_only_when_enabled() {
    let kinds = |sets: &[&str]| -> Vec<String> {
        render(sets)
            .unwrap()
            .iter()
            .map(|o| o["kind"].as_str().unwrap().to_owned())
            .collect()
    };
    let off = kinds(&[]);
    assert!(
        !off.iter()
            .any(|k| k == "PrometheusRule" || k == "NetworkPolicy")
    );
    let on = kinds(&[
        "prometheusRule.enabled=true",
        "grafanaDashboard.enabled=true",
        "networkPolicy.enabled=true",
    ]);
    assert!(on.iter().any(|k| k == "PrometheusRule"));
    assert!(on.iter().any(|k| k == "NetworkPolicy"));
    let objs = render(&["grafanaDashboard.enabled=true"]).unwrap();
    let dashboard = objs
        .iter()
        .find(|o| o["kind"] == "ConfigMap" && o["metadata"]["labels"]["grafana_dashboard"] == "1")
        .expect("the dashboard ConfigMap with the sidecar's label");
    let json: Value =
        serde_json::from_str(dashboard["data"]["zerodrop.json"].as_str().unwrap()).unwrap();
    assert!(json["panels"].as_array().unwrap().len() >= 7);
}

#[test]
fn the_network_policy_admits_the_apiserver_and_the_scraper_only() {
    let objs = render(&[
        "networkPolicy.enabled=true",
        "networkPolicy.apiserverCIDRs={10.0.0.1/32}",
    ])
    .unwrap();
    let np = find(&objs, "NetworkPolicy");
    let ingress = np["spec"]["ingress"].as_array().unwrap();
    assert_eq!(ingress.len(), 2, "{np}");
    assert_eq!(ingress[0]["ports"][0]["port"], "https");
    assert_eq!(ingress[0]["from"][0]["ipBlock"]["cidr"], "10.0.0.1/32");
    assert_eq!(ingress[1]["ports"][0]["port"], "admin");
    assert!(ingress[1]["from"][0]["namespaceSelector"].is_object());
    let egress = np["spec"]["egress"].as_array().unwrap();
    assert!(
        egress.iter().any(|e| e["ports"][0]["port"] == 53),
        "DNS stays open: {np}"
    );
    // Registries: HTTPS and the listed insecure ports, never link-local (metadata) addresses.
    let registries = |sets: &[&str]| -> Option<Value> {
        let objs = render(sets).unwrap();
        let np = find(&objs, "NetworkPolicy");
        np["spec"]["egress"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["ports"][0]["port"] == 443 && e["to"][0]["ipBlock"]["cidr"] == "0.0.0.0/0")
            .cloned()
    };
    let rule = registries(&[
        "networkPolicy.enabled=true",
        "images.insecureRegistries={registry.example:5000,mirror.example}",
    ])
    .unwrap();
    let ports: Vec<&Value> = rule["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| &p["port"])
        .collect();
    assert_eq!(ports, [&json!(443), &json!(5000)], "{rule}");
    assert_eq!(
        rule["to"][0]["ipBlock"]["except"],
        json!(["169.254.0.0/16"])
    );
    assert_eq!(rule["to"][1]["ipBlock"]["except"], json!(["fe80::/10"]));
    assert!(
        registries(&["networkPolicy.enabled=true", "images.inspection=false"]).is_none(),
        "no registry egress without inspection"
    );
}

#[test]
fn alerting_rules_pass_promtool_and_fire_as_meant() {
    let dir = tempfile::tempdir().unwrap();
    let rules = zerodrop_testkit::helm::prometheus_rules(&[]);
    let file = dir.path().join("rules.yaml");
    std::fs::write(&file, serde_yaml_ng::to_string(&rules).unwrap()).unwrap();
    let promtool = zerodrop_testkit::tools::path(&zerodrop_testkit::tools::PROMTOOL);
    let check = Command::new(&promtool)
        .args(["check", "rules"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    // Unit tests of the rules (promtool's own format): unprotected pods alert only after
    // unprotectedFor, with the count in the summary; no ready replica fires, a ready one not.
    let description = |alert: &str| -> Value {
        rules["groups"][0]["rules"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["alert"] == alert)
            .unwrap()["annotations"]["description"]
            .clone()
    };
    let tests = json!({
        "rule_files": [file.display().to_string()],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    { "series": r#"zerodrop_unprotected_pods{namespace="shop",reason="not-mutated",pod="zd-1"}"#, "values": "0 0 3x30" },
                    { "series": r#"zerodrop_ready{pod="zd-1"}"#, "values": "1x40" }
                ],
                "alert_rule_test": [
                    { "eval_time": "10m", "alertname": "ZerodropUnprotectedPods", "exp_alerts": [] },
                    { "eval_time": "20m", "alertname": "ZerodropUnprotectedPods", "exp_alerts": [{
                        "exp_labels": { "severity": "warning", "namespace": "shop", "reason": "not-mutated" },
                        "exp_annotations": {
                            "summary": "3 pods in shop run without zerodrop's changes (not-mutated).",
                            "description": description("ZerodropUnprotectedPods")
                        }
                    }] },
                    { "eval_time": "20m", "alertname": "ZerodropNoReadyReplica", "exp_alerts": [] }
                ]
            },
            {
                "interval": "1m",
                "input_series": [{ "series": r#"zerodrop_ready{pod="zd-1"}"#, "values": "0x20" }],
                "alert_rule_test": [
                    { "eval_time": "3m", "alertname": "ZerodropNoReadyReplica", "exp_alerts": [] },
                    { "eval_time": "10m", "alertname": "ZerodropNoReadyReplica", "exp_alerts": [{
                        "exp_labels": { "severity": "critical" },
                        "exp_annotations": {
                            "summary": "No zerodrop replica is ready; pods are admitted without zerodrop's changes.",
                            "description": description("ZerodropNoReadyReplica")
                        }
                    }] }
                ]
            }
        ]
    });
    let tests = serde_yaml_ng::to_string(&tests).unwrap();
    let test_file = dir.path().join("tests.yaml");
    std::fs::write(&test_file, tests).unwrap();
    let test = Command::new(&promtool)
        .args(["test", "rules"])
        .arg(&test_file)
        .output()
        .unwrap();
    assert!(
        test.status.success(),
        "{}{}",
        String::from_utf8_lossy(&test.stdout),
        String::from_utf8_lossy(&test.stderr)
    );
}
