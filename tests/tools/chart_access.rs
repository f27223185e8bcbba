//! charts/zerodrop's rights: every RBAC rule the chart can render is the minimum and is
//! justified in its README, and each optional feature brings its rights with it.

use super::chart::{PROVIDED, find, render};
use serde_json::Value;
use zerodrop_testkit::helm::chart;

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
        // The traffic path index: list and watch, nothing else.
        ("", "services", "list", false),
        ("", "services", "watch", false),
        ("networking.k8s.io", "ingresses", "list", false),
        ("networking.k8s.io", "ingresses", "watch", false),
        ("gateway.networking.k8s.io", "httproutes", "list", false),
        ("gateway.networking.k8s.io", "httproutes", "watch", false),
        ("gateway.networking.k8s.io", "grpcroutes", "list", false),
        ("gateway.networking.k8s.io", "grpcroutes", "watch", false),
        ("gateway.networking.k8s.io", "tlsroutes", "list", false),
        ("gateway.networking.k8s.io", "tlsroutes", "watch", false),
        ("gateway.networking.k8s.io", "tcproutes", "list", false),
        ("gateway.networking.k8s.io", "tcproutes", "watch", false),
        ("gateway.networking.k8s.io", "udproutes", "list", false),
        ("gateway.networking.k8s.io", "udproutes", "watch", false),
    ];
    let readme = std::fs::read_to_string(chart().join("README.md")).unwrap();
    for sets in [
        vec![],
        vec!["certificates.mode=certManager"],
        PROVIDED.to_vec(),
        vec!["scan.enabled=false"],
        vec!["images.pullSecrets=true"],
        vec!["trafficPaths.enabled=false"],
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

/// The server's argument that starts with `prefix`, as the chart renders it with `sets`.
fn arg(sets: &[&str], prefix: &str) -> Value {
    let objs = render(sets).unwrap();
    let args =
        find(&objs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"].clone();
    args.as_array()
        .unwrap()
        .iter()
        .find(|a| a.as_str().unwrap().starts_with(prefix))
        .cloned()
        .unwrap()
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
    let flag = |sets: &[&str]| arg(sets, "--image-pull-secrets=");
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

#[test]
fn the_traffic_path_index_is_on_by_default_and_its_rights_go_with_it() {
    let watches_services = |sets: &[&str]| -> bool {
        render(sets)
            .unwrap()
            .iter()
            .filter(|o| o["kind"] == "ClusterRole")
            .flat_map(|o| o["rules"].as_array().unwrap().clone())
            .any(|r| {
                r["resources"]
                    .as_array()
                    .unwrap()
                    .contains(&"services".into())
            })
    };
    let flag = |sets: &[&str]| arg(sets, "--traffic-paths=");
    assert!(watches_services(&[]));
    assert_eq!(flag(&[]), "--traffic-paths=true");
    let off = ["trafficPaths.enabled=false"];
    assert!(!watches_services(&off));
    assert_eq!(flag(&off), "--traffic-paths=false");
}
