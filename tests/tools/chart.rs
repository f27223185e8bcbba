//! charts/zerodrop: `helm lint` and `helm template` for each certificate mode and key value
//! combinations, with assertions on the rendered objects. Helm is built from the Go module
//! proxy by tools/helm/build.sh.

use zerodrop_testkit::helm as support;

use serde_json::Value;
use std::process::Command;
use support::{chart, helm};

pub fn render(sets: &[&str]) -> Result<Vec<Value>, String> {
    support::render_release("zd", "zerodrop", sets)
}

pub fn find<'a>(objs: &'a [Value], kind: &str) -> &'a Value {
    objs.iter()
        .find(|o| o["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind}"))
}

pub const PROVIDED: [&str; 3] = [
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
        vec!["admission=policy"],
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
        "policy.defaults.drain=fast",
        "policy.drainWaiter.port=0",
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
        "policy.defaults.drain=adaptive",
        "policy.defaults.drain-max=1m",
        "policy.drainWaiter.image=mirror.local/zerodrop:1",
        "policy.drainWaiter.port=9100",
    ])
    .unwrap();
    let text = find(&objs, "ConfigMap")["data"]["config.yaml"]
        .as_str()
        .unwrap()
        .to_owned();
    let policy = zerodrop_core::policy::ClusterPolicy::from_yaml(&text).unwrap();
    assert_eq!(policy.defaults.prestop_sleep, Some(10));
    assert_eq!(policy.max_grace_period, Some(120));
    assert_eq!(
        policy.defaults.drain,
        Some(zerodrop_core::policy::DrainMode::Adaptive)
    );
    assert_eq!(policy.defaults.drain_max, Some(60));
    assert_eq!(
        (policy.drain_waiter.image.as_str(), policy.drain_waiter.port),
        ("mirror.local/zerodrop:1", 9100)
    );
    let empty = render(&[]).unwrap();
    let text = find(&empty, "ConfigMap")["data"]["config.yaml"]
        .as_str()
        .unwrap()
        .to_owned();
    let policy = zerodrop_core::policy::ClusterPolicy::from_yaml(&text).unwrap();
    // The waiter runs the release's own image by default.
    let deployment = find(&empty, "Deployment");
    let image = deployment["spec"]["template"]["spec"]["containers"][0]["image"].clone();
    assert_eq!(policy.drain_waiter.image, image.as_str().unwrap());
    assert_eq!(
        zerodrop_core::policy::ClusterPolicy {
            drain_waiter: Default::default(),
            ..policy
        },
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
