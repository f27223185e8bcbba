//! The exported policy's shape (its CEL is checked by the apiserver in tests/e2e/peers) and the
//! Rust side of its declines.

use serde_json::{Value, json};
use zerodrop_core::engine::{Capabilities, Engine, Workload};
use zerodrop_core::export::{self, Decline, Options};
use zerodrop_core::policy::{ClusterPolicy, Layer};

#[test]
fn the_policy_and_its_binding_use_only_variables_defined_before_them() {
    let [policy, binding] = export::objects(&ClusterPolicy::default(), &Options::default());
    assert_eq!(policy["kind"], "MutatingAdmissionPolicy");
    assert_eq!(binding["spec"]["policyName"], policy["metadata"]["name"]);
    let variables = policy["spec"]["variables"].as_array().unwrap();
    let mut known: Vec<&str> = Vec::new();
    let used = |text: &str| -> Vec<String> {
        text.split("variables.")
            .skip(1)
            .map(|rest| {
                rest.chars()
                    .take_while(|c| c.is_ascii_alphanumeric())
                    .collect()
            })
            .collect()
    };
    for v in variables {
        let (name, text) = (
            v["name"].as_str().unwrap(),
            v["expression"].as_str().unwrap(),
        );
        assert!(!text.contains("$V"), "{name}: a placeholder left");
        for u in used(text) {
            assert!(
                known.contains(&u.as_str()),
                "{name} uses {u} before it is defined"
            );
        }
        known.push(name);
    }
    let patch = policy["spec"]["mutations"][0]["jsonPatch"]["expression"]
        .as_str()
        .unwrap();
    for u in used(patch) {
        assert!(known.contains(&u.as_str()), "the patch uses {u}");
    }
    let selector = &binding["spec"]["matchResources"]["namespaceSelector"]["matchExpressions"];
    assert_eq!(selector[0]["key"], "zerodrop.dev/mode");
}

fn declined(pod: &Value) -> Option<Decline> {
    let cluster = ClusterPolicy::default();
    let engine = Engine::new(cluster.clone(), Capabilities { minor: 37 });
    let ns = Layer::for_namespace(Some("enforce"), std::iter::empty::<(&str, &str)>());
    let decision = engine.evaluate(pod, Workload::Pod, &ns);
    export::declined(pod, &ns, &cluster, &decision)
}

fn pod(annotations: Value, container: Value) -> Value {
    json!({ "metadata": { "name": "p", "annotations": annotations },
            "spec": { "containers": [container] } })
}

#[test]
fn it_declines_what_needs_the_webhook_and_nothing_else() {
    let web = json!({ "name": "web", "image": "w" });
    assert_eq!(declined(&pod(json!({}), web.clone())), None);
    // Adaptive pods are not declined: they are decided as without the setting (the sleep).
    let adaptive = pod(
        json!({ "zerodrop.dev/drain.web": "adaptive", "zerodrop.dev/drain-max": "9s" }),
        web.clone(),
    );
    let sleeping = export::sleeping(&adaptive).unwrap();
    assert_eq!(
        sleeping["metadata"]["annotations"],
        json!({ "zerodrop.dev/drain-max": "9s" })
    );
    assert_eq!(declined(&sleeping), None);
    assert_eq!(
        export::sleeping(&pod(json!({ "zerodrop.dev/drain-max": "9s" }), web.clone())),
        None
    );
    let mut called = web.clone();
    called["lifecycle"] = json!({ "preStop": { "httpGet": { "path": "/drain", "port": 9797 } } });
    assert_eq!(
        declined(&pod(json!({}), called)),
        Some(Decline::WaiterCalled)
    );
    let shell = pod(
        json!({ "zerodrop.dev/shell-exec.web": "true" }),
        web.clone(),
    );
    assert_eq!(declined(&shell), Some(Decline::ShellExec));
    let hooked = |secs: &str| {
        let mut c = web.clone();
        c["lifecycle"] = json!({ "preStop": { "exec": { "command": ["sleep", secs] } } });
        pod(json!({}), c)
    };
    assert_eq!(declined(&hooked("+000000000012")), None);
    assert_eq!(declined(&hooked("1234567890")), Some(Decline::HugeSleep));
    let ours = r#"{"v":1,"containers":{"web":["lifecycle.preStop"]}}"#;
    assert_eq!(
        declined(&pod(json!({ "zerodrop.dev/injected": ours }), web.clone())),
        None
    );
    let spaced = r#"{"v": 1, "containers": {"web": ["lifecycle.preStop"]}}"#;
    assert_eq!(
        declined(&pod(json!({ "zerodrop.dev/injected": spaced }), web)),
        Some(Decline::ForeignLedger)
    );
}
