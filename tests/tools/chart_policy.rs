//! charts/zerodrop with `admission=policy`: the exported MutatingAdmissionPolicy, its binding
//! and its parameters instead of the MutatingWebhookConfiguration, each equal to what
//! `zerodrop policy export` writes for the config the chart gives zerodrop, and a clear refusal
//! below Kubernetes 1.36.

use super::chart::find;
use serde_json::Value;
use zerodrop_core::export::{self, Options};
use zerodrop_core::policy::{ClusterPolicy, Partial, Setting};
use zerodrop_testkit::helm::render_for;

const VALUES: [&str; 7] = [
    "admission=policy",
    "policy.defaults.prestop-sleep=1m5s",
    "policy.defaults.readiness-path=/healthz",
    "policy.defaults.shell-exec=true",
    "policy.maxGracePeriod=2m",
    "policy.sidecarContainers={envoy,vault-agent}",
    "policy.drainWaiter.port=9100",
];

fn kinds(objs: &[Value]) -> Vec<&str> {
    objs.iter().filter_map(|o| o["kind"].as_str()).collect()
}

#[test]
fn admission_policy_installs_the_export_instead_of_the_webhook() {
    let objs = render_for("zd", "zerodrop", Some("1.36.0"), &VALUES).unwrap();
    let rendered = kinds(&objs);
    assert!(
        !rendered.contains(&"MutatingWebhookConfiguration"),
        "{rendered:?}"
    );
    // zerodrop still runs: the scan (judging pods by the policy), metrics, the warnings.
    assert!(rendered.contains(&"ValidatingWebhookConfiguration"));
    let deployment = find(&objs, "Deployment");
    let args = deployment["spec"]["template"]["spec"]["containers"][0]["args"].to_string();
    assert!(args.contains("--admission=policy"), "{args}");
    assert!(args.contains("--traffic-paths=false"), "{args}");

    let options = Options {
        name: "zd-zerodrop".into(),
        namespace: "zerodrop".into(),
        excluded_namespaces: vec!["zerodrop".into(), "kube-system".into()],
        ..Options::default()
    };
    let policy = find(&objs, "MutatingAdmissionPolicy");
    assert_eq!(policy["metadata"]["name"], "zd-zerodrop");
    assert_eq!(policy["spec"], export::policy(&options)["spec"]);
    let binding = find(&objs, "MutatingAdmissionPolicyBinding");
    assert_eq!(binding["spec"], export::binding(&options)["spec"]);

    // The parameters mean the config the chart gives zerodrop itself.
    let config = objs
        .iter()
        .find(|o| o["kind"] == "ConfigMap" && o["metadata"]["name"] == "zd-zerodrop")
        .unwrap();
    let cluster =
        ClusterPolicy::from_yaml(config["data"]["config.yaml"].as_str().unwrap()).unwrap();
    let params = objs
        .iter()
        .find(|o| o["metadata"]["name"] == options.parameters_name())
        .unwrap();
    let data = params["data"].as_object().unwrap();
    let mut layer = Partial::default();
    for (key, value) in data {
        if let Some(setting) = Setting::from_name(key) {
            setting
                .parse_into(value.as_str().unwrap(), &mut layer)
                .unwrap();
        }
    }
    assert_eq!(layer, cluster.defaults);
    assert_eq!(layer.prestop_sleep, Some(65));
    let exported = export::params::data(&cluster);
    for key in [export::params::SIDECARS, export::params::WAITER_PORT] {
        assert_eq!(data[key], exported[key], "{key}");
    }
    let cap = zerodrop_core::policy::duration::parse_seconds(
        data[export::params::MAX_GRACE].as_str().unwrap(),
    );
    assert_eq!(cap, cluster.max_grace_period);
    assert_eq!(cap, Some(120));

    // Its alert says what stops without zerodrop under the policy: the drift signal, not pods'
    // protection.
    let alerts = render_for(
        "zd",
        "zerodrop",
        Some("1.37.0"),
        &["admission=policy", "prometheusRule.enabled=true"],
    )
    .unwrap();
    let none_ready = find(&alerts, "PrometheusRule")["spec"]["groups"][0]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["alert"] == "ZerodropNoReadyReplica")
        .unwrap()
        .clone();
    assert_eq!(none_ready["labels"]["severity"], "warning", "{none_ready}");
    assert!(
        none_ready["annotations"]["summary"]
            .as_str()
            .unwrap()
            .contains("still mutates pods"),
        "{none_ready}"
    );
    let quiet = render_for(
        "zd",
        "zerodrop",
        Some("1.37.0"),
        &["admission=policy", "webhook.warnings=false"],
    )
    .unwrap();
    let quiet = kinds(&quiet);
    assert!(
        !quiet.iter().any(|k| k.ends_with("WebhookConfiguration")),
        "{quiet:?}"
    );
    let webhook = render_for("zd", "zerodrop", Some("1.37.0"), &[]).unwrap();
    let webhook = kinds(&webhook);
    assert!(webhook.contains(&"MutatingWebhookConfiguration"));
    assert!(
        !webhook
            .iter()
            .any(|k| k.starts_with("MutatingAdmissionPolicy"))
    );
}

#[test]
fn admission_policy_refuses_a_cluster_below_1_36() {
    let err = render_for("zd", "zerodrop", Some("1.35.4"), &["admission=policy"]).unwrap_err();
    assert!(
        err.contains("admission=policy needs Kubernetes 1.36 or later")
            && err.contains("v1.35.4")
            && err.contains("admission=webhook"),
        "{err}"
    );
    assert!(render_for("zd", "zerodrop", Some("1.35.4"), &[]).is_ok());
}
