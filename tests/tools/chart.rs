//! charts/zerodrop: `helm lint` and `helm template` for each certificate mode and key value
//! combinations, with assertions on the rendered objects. Helm is built from the Go module
//! proxy by tools/helm/build.sh.

use zerodrop_testkit::helm as support;

use serde_json::{Value, json};
use std::process::Command;
use support::{chart, helm};

pub fn render(sets: &[&str]) -> Result<Vec<Value>, String> {
    support::render_release("zd", "zerodrop", sets)
}

fn find<'a>(objs: &'a [Value], kind: &str) -> &'a Value {
    objs.iter()
        .find(|o| o["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind}"))
}

const PROVIDED: [&str; 3] = [
    "certificates.mode=provided",
    "certificates.provided.secretName=zd-tls",
    "certificates.provided.caBundle=Y2E=",
];

#[test]
fn lint_passes_for_every_mode() {
    for sets in [
        vec![],
        vec!["certificates.mode=certManager"],
        PROVIDED.to_vec(),
        vec!["serviceMonitor.enabled=true"],
    ] {
        let mut cmd = Command::new(helm());
        cmd.args(["lint", "--strict"]).arg(chart());
        for s in &sets {
            cmd.args(["--set", s]);
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{sets:?}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
}

#[test]
fn webhooks_are_scoped_safe_and_skip_job_pods() {
    let objs = render(&[]).unwrap();
    let m = &find(&objs, "MutatingWebhookConfiguration")["webhooks"][0];
    assert_eq!(m["failurePolicy"], "Ignore");
    assert_eq!(m["sideEffects"], "None");
    assert_eq!(m["admissionReviewVersions"], serde_json::json!(["v1"]));
    assert_eq!(m["reinvocationPolicy"], "IfNeeded");
    assert!(m["timeoutSeconds"].as_i64().unwrap() <= 10);
    assert_eq!(m["rules"][0]["operations"], serde_json::json!(["CREATE"]));
    assert_eq!(m["rules"][0]["resources"], serde_json::json!(["pods"]));
    let exprs = m["namespaceSelector"]["matchExpressions"]
        .as_array()
        .unwrap();
    assert!(exprs.iter().any(|e| e["key"] == "zerodrop.dev/mode"
        && e["operator"] == "In"
        && e["values"] == serde_json::json!(["enforce", "audit"])));
    let excluded = exprs.iter().find(|e| e["operator"] == "NotIn").unwrap()["values"].clone();
    assert!(
        excluded.as_array().unwrap().contains(&"zerodrop".into())
            && excluded.as_array().unwrap().contains(&"kube-system".into())
    );
    assert!(
        m["matchConditions"][0]["expression"]
            .as_str()
            .unwrap()
            .contains("r.kind == 'Job'")
    );
    let v = &find(&objs, "ValidatingWebhookConfiguration")["webhooks"][0];
    assert_eq!(v["failurePolicy"], "Ignore");
    assert_eq!(v["namespaceSelector"], m["namespaceSelector"]);

    let objs = render(&[
        "webhook.failurePolicy=Fail",
        "webhook.skipJobPods=false",
        "webhook.excludeNamespaces={infra}",
    ])
    .unwrap();
    let m = &find(&objs, "MutatingWebhookConfiguration")["webhooks"][0];
    assert_eq!(m["failurePolicy"], "Fail");
    assert!(m.get("matchConditions").is_none());
    assert!(m["namespaceSelector"].to_string().contains("infra"));
}

#[test]
fn deployment_is_hardened_highly_available_and_eats_its_own_food() {
    let objs = render(&[]).unwrap();
    let d = find(&objs, "Deployment");
    assert_eq!(d["spec"]["replicas"], 2);
    assert_eq!(d["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"], 0);
    let pod = &d["spec"]["template"]["spec"];
    assert_eq!(pod["priorityClassName"], "system-cluster-critical");
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    assert!(
        !pod["topologySpreadConstraints"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert!(pod["affinity"]["podAntiAffinity"].is_object());
    let c = &pod["containers"][0];
    let sc = &c["securityContext"];
    assert_eq!(
        (
            sc["readOnlyRootFilesystem"].as_bool(),
            sc["allowPrivilegeEscalation"].as_bool()
        ),
        (Some(true), Some(false))
    );
    assert_eq!(sc["capabilities"]["drop"], serde_json::json!(["ALL"]));
    assert!(c["resources"]["requests"].is_object() && c["resources"]["limits"].is_object());
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    let sleep = c["lifecycle"]["preStop"]["sleep"]["seconds"]
        .as_i64()
        .unwrap();
    let arg = |flag: &str| -> i64 {
        let a = c["args"]
            .as_array()
            .unwrap()
            .iter()
            .find_map(|a| a.as_str()?.strip_prefix(flag))
            .unwrap();
        a.trim_end_matches('s').parse().unwrap()
    };
    let grace = pod["terminationGracePeriodSeconds"].as_i64().unwrap();
    assert!(
        grace >= sleep + arg("--shutdown-delay=") + arg("--shutdown-timeout="),
        "grace {grace}"
    );
    assert_eq!(
        find(&objs, "PodDisruptionBudget")["spec"]["minAvailable"],
        1
    );
    // zerodrop's own audit of its own Deployment finds nothing to change and nothing to warn about.
    let engine = zerodrop_core::engine::Engine::new(
        Default::default(),
        zerodrop_core::engine::Capabilities::LATEST,
    );
    let ns = zerodrop_core::policy::Layer::for_namespace(Some("enforce"), []);
    let entry = zerodrop::audit::evaluate(&engine, d, &ns).unwrap();
    assert!(
        !entry.would_change() && entry.findings.is_empty(),
        "{entry:?}"
    );
}

#[test]
fn certificate_modes_render_what_they_need() {
    let objs = render(&[]).unwrap();
    let args =
        find(&objs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"].to_string();
    assert!(
        args.contains("--self-managed-secret=zd-zerodrop-tls")
            && args.contains("--self-managed-dns=zd-zerodrop.zerodrop.svc")
    );
    assert!(!objs.iter().any(|o| o["kind"] == "Certificate"));

    let objs = render(&["certificates.mode=certManager"]).unwrap();
    let m = find(&objs, "MutatingWebhookConfiguration");
    assert_eq!(
        m["metadata"]["annotations"]["cert-manager.io/inject-ca-from"],
        "zerodrop/zd-zerodrop"
    );
    let cert = objs
        .iter()
        .find(|o| o["kind"] == "Certificate" && o["metadata"]["name"] == "zd-zerodrop")
        .unwrap();
    assert!(
        cert["spec"]["dnsNames"]
            .to_string()
            .contains("zd-zerodrop.zerodrop.svc")
    );
    assert!(objs.iter().any(|o| o["kind"] == "Issuer"));

    let objs = render(&PROVIDED).unwrap();
    assert_eq!(
        find(&objs, "MutatingWebhookConfiguration")["webhooks"][0]["clientConfig"]["caBundle"],
        "Y2E="
    );
    let vols = find(&objs, "Deployment")["spec"]["template"]["spec"]["volumes"].to_string();
    assert!(vols.contains("zd-tls"));
    assert!(
        !objs
            .iter()
            .filter(|o| o["kind"] == "Role")
            .any(|o| o["rules"].to_string().contains("secrets")),
        "provided mode needs no Secret access"
    );
    assert!(
        render(&["certificates.mode=provided"])
            .unwrap_err()
            .contains("is required in provided mode")
    );
    let no_secret = render(&[
        "certificates.mode=provided",
        "certificates.provided.caBundle=Y2E=",
    ])
    .unwrap_err();
    assert!(no_secret.contains("secretName is required"), "{no_secret}");
}

#[test]
fn values_schema_rejects_mistakes() {
    for bad in [
        "certificates.mode=bogus",
        "webhook.failurePolicy=Sometimes",
        "replicaCount=0",
        "policy.defaults.prestop-slep=5",
    ] {
        assert!(render(&[bad]).is_err(), "{bad} accepted");
    }
}

#[test]
fn policy_values_become_a_config_zerodrop_accepts() {
    let objs = render(&[
        "policy.defaults.prestop-sleep=10s",
        "policy.defaults.drain-timeout=30s",
        "policy.maxGracePeriod=2m",
    ])
    .unwrap();
    let text = find(&objs, "ConfigMap")["data"]["config.yaml"]
        .as_str()
        .unwrap()
        .to_owned();
    let policy = zerodrop_core::policy::ClusterPolicy::from_yaml(&text).unwrap();
    assert_eq!(policy.defaults.prestop_sleep, Some(10));
    assert_eq!(policy.max_grace_period, Some(120));
    let empty = render(&[]).unwrap();
    let text = find(&empty, "ConfigMap")["data"]["config.yaml"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        zerodrop_core::policy::ClusterPolicy::from_yaml(&text).unwrap(),
        Default::default()
    );
}

#[test]
fn service_monitor_only_when_enabled() {
    assert!(
        !render(&[])
            .unwrap()
            .iter()
            .any(|o| o["kind"] == "ServiceMonitor")
    );
    let objs = render(&["serviceMonitor.enabled=true"]).unwrap();
    assert_eq!(
        find(&objs, "ServiceMonitor")["spec"]["endpoints"][0]["port"],
        "admin"
    );
}

/// Every RBAC rule the chart can render must be in the README's justification table.
#[test]
fn rbac_is_the_minimum_and_every_rule_is_justified() {
    let justified: &[(&str, &str, &str, bool)] = &[
        // (apiGroup, resource, verb, restricted to resourceNames)
        ("", "namespaces", "get", false),
        ("", "namespaces", "list", false),
        ("", "namespaces", "watch", false),
        (
            "admissionregistration.k8s.io",
            "mutatingwebhookconfigurations",
            "get",
            true,
        ),
        (
            "admissionregistration.k8s.io",
            "mutatingwebhookconfigurations",
            "patch",
            true,
        ),
        (
            "admissionregistration.k8s.io",
            "validatingwebhookconfigurations",
            "get",
            true,
        ),
        (
            "admissionregistration.k8s.io",
            "validatingwebhookconfigurations",
            "patch",
            true,
        ),
        ("", "secrets", "get", true),
        ("", "secrets", "update", true),
        ("", "secrets", "create", false),
        // images.pullSecrets only (tests below: never by default).
        ("", "secrets", "get", false),
        ("", "serviceaccounts", "get", false),
        // The background scan: read-only lists, its PolicyReports, its Lease.
        ("", "pods", "list", false),
        ("", "replicationcontrollers", "list", false),
        ("apps", "deployments", "list", false),
        ("apps", "statefulsets", "list", false),
        ("apps", "daemonsets", "list", false),
        ("apps", "replicasets", "list", false),
        ("batch", "jobs", "list", false),
        ("batch", "cronjobs", "list", false),
        ("wgpolicyk8s.io", "policyreports", "get", false),
        ("wgpolicyk8s.io", "policyreports", "create", false),
        ("wgpolicyk8s.io", "policyreports", "patch", false),
        ("coordination.k8s.io", "leases", "get", true),
        ("coordination.k8s.io", "leases", "update", true),
        ("coordination.k8s.io", "leases", "patch", true),
        ("coordination.k8s.io", "leases", "create", false),
    ];
    let readme = std::fs::read_to_string(chart().join("README.md")).unwrap();
    for sets in [
        vec![],
        vec!["certificates.mode=certManager"],
        PROVIDED.to_vec(),
        vec!["scan.enabled=false"],
        vec!["images.pullSecrets=true"],
    ] {
        for obj in render(&sets)
            .unwrap()
            .iter()
            .filter(|o| o["kind"] == "ClusterRole" || o["kind"] == "Role")
        {
            for rule in obj["rules"].as_array().unwrap() {
                let names = rule.get("resourceNames").is_some();
                for group in rule["apiGroups"].as_array().unwrap() {
                    for resource in rule["resources"].as_array().unwrap() {
                        for verb in rule["verbs"].as_array().unwrap() {
                            let (g, r, v) = (
                                group.as_str().unwrap(),
                                resource.as_str().unwrap(),
                                verb.as_str().unwrap(),
                            );
                            let ok = justified.iter().any(|(jg, jr, jv, restricted)| {
                                (*jg, *jr, *jv) == (g, r, v) && (names || !restricted)
                            });
                            assert!(
                                ok,
                                "unjustified rule {g}/{r} {v} (resourceNames: {names}) in {sets:?}"
                            );
                            assert!(
                                readme.contains(&format!("`{r}`")),
                                "README does not justify {r}"
                            );
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn reading_pull_secrets_is_opt_in_and_its_rights_go_with_it() {
    let reads_any_secret = |sets: &[&str]| -> bool {
        let objs = render(sets).unwrap();
        objs.iter()
            .filter(|o| o["kind"] == "ClusterRole" || o["kind"] == "Role")
            .flat_map(|o| o["rules"].as_array().unwrap().clone())
            .any(|r| {
                r.get("resourceNames").is_none()
                    && r["resources"]
                        .as_array()
                        .unwrap()
                        .contains(&"secrets".into())
                    && r["verbs"].as_array().unwrap().contains(&"get".into())
            })
    };
    let flag = |sets: &[&str]| -> Value {
        let objs = render(sets).unwrap();
        let args =
            find(&objs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"].clone();
        args.as_array()
            .unwrap()
            .iter()
            .find(|a| a.as_str().unwrap().starts_with("--image-pull-secrets="))
            .cloned()
            .unwrap()
    };
    assert!(!reads_any_secret(&[]));
    assert_eq!(flag(&[]), "--image-pull-secrets=false");
    assert!(reads_any_secret(&["images.pullSecrets=true"]));
    assert_eq!(
        flag(&["images.pullSecrets=true"]),
        "--image-pull-secrets=true"
    );
    // Inspection off: no registry is called, so no secret is read either.
    let off = ["images.pullSecrets=true", "images.inspection=false"];
    assert!(!reads_any_secret(&off));
    assert_eq!(flag(&off), "--image-pull-secrets=false");
}

#[test]
fn the_scan_is_on_by_default_and_its_rights_go_with_it() {
    let rules = |sets: &[&str]| -> Vec<Value> {
        render(sets)
            .unwrap()
            .into_iter()
            .filter(|o| o["kind"] == "ClusterRole" || o["kind"] == "Role")
            .flat_map(|o| o["rules"].as_array().unwrap().clone())
            .collect()
    };
    let lists_pods = |rules: &[Value]| {
        rules.iter().any(|r| {
            r["resources"]
                .as_array()
                .unwrap()
                .contains(&Value::from("pods"))
        })
    };
    assert!(lists_pods(&rules(&[])));
    assert!(!lists_pods(&rules(&["scan.enabled=false"])));
    let objs = render(&[]).unwrap();
    let args =
        find(&objs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"].clone();
    assert!(
        args.as_array()
            .unwrap()
            .contains(&Value::from("--scan-interval=5m")),
        "{args}"
    );
    let objs = render(&["scan.enabled=false"]).unwrap();
    let args =
        find(&objs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"].clone();
    assert!(
        args.as_array()
            .unwrap()
            .contains(&Value::from("--scan-interval=0")),
        "{args}"
    );
}

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
    let rules = support::prometheus_rules(&[]);
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

#[test]
fn image_inspection_has_an_off_switch() {
    let args = |sets: &[&str]| {
        let objs = render(sets).unwrap();
        find(&objs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"].clone()
    };
    assert!(
        args(&[])
            .as_array()
            .unwrap()
            .contains(&Value::from("--image-inspection=true"))
    );
    let off = args(&["images.inspection=false"]);
    assert!(
        off.as_array()
            .unwrap()
            .contains(&Value::from("--image-inspection=false")),
        "{off}"
    );
    // Egress to registries only when inspection is on.
    let egress = |sets: &[&str]| {
        let mut all = vec!["networkPolicy.enabled=true"];
        all.extend_from_slice(sets);
        find(&render(&all).unwrap(), "NetworkPolicy")["spec"]["egress"]
            .as_array()
            .unwrap()
            .len()
    };
    assert_eq!(egress(&[]), egress(&["images.inspection=false"]) + 1);
}

#[test]
fn the_verify_cluster_role_is_opt_in_and_grants_what_verify_asks_for() {
    let roles = |sets: &[&str]| -> Vec<Value> {
        render(sets)
            .unwrap()
            .into_iter()
            .filter(|o| {
                o["kind"] == "ClusterRole"
                    && o["metadata"]["name"].as_str().unwrap().ends_with("-verify")
            })
            .collect()
    };
    assert!(roles(&[]).is_empty(), "off by default");
    let on = roles(&["verify.clusterRole=true"]);
    assert_eq!(on.len(), 1);
    let rules = on[0]["rules"].as_array().unwrap();
    let allows = |verb: &str, group: &str, resource: &str| {
        rules.iter().any(|r| {
            let has = |k: &str, v: &str| r[k].as_array().unwrap().iter().any(|x| x == v);
            has("verbs", verb) && has("apiGroups", group) && has("resources", resource)
        })
    };
    use zerodrop::verify::access::needed;
    for kind in ["deployment/web", "statefulset/db"] {
        let target = kind.parse().unwrap();
        for (verb, group, resource, sub) in needed(&target, true) {
            let resource = if sub.is_empty() {
                resource.to_owned()
            } else {
                format!("{resource}/{sub}")
            };
            assert!(
                allows(verb, group, &resource),
                "{verb} {group}/{resource} for {kind}"
            );
        }
    }
    // Nothing beyond the namespace's workloads, pods and Services (no secrets, no cluster objects).
    for r in rules {
        for res in r["resources"].as_array().unwrap() {
            assert!(
                [
                    "deployments",
                    "statefulsets",
                    "pods",
                    "pods/log",
                    "services",
                    "horizontalpodautoscalers"
                ]
                .contains(&res.as_str().unwrap()),
                "{res}"
            );
        }
    }
}
