//! The exported policy's shape (its CEL is checked by the apiserver in tests/e2e/peers) and the
//! Rust side of its declines.

use serde_json::{Value, json};
use zerodrop_core::engine::{Capabilities, Engine, Workload};
use zerodrop_core::export::{self, Decline, Options};
use zerodrop_core::policy::{ClusterPolicy, Layer};

#[test]
fn the_policy_and_its_binding_use_only_variables_defined_before_them() {
    let [params, policy, binding] = export::objects(&ClusterPolicy::default(), &Options::default());
    assert_eq!(policy["kind"], "MutatingAdmissionPolicy");
    assert_eq!(binding["spec"]["policyName"], policy["metadata"]["name"]);
    let by = &binding["spec"]["paramRef"];
    assert_eq!(by["name"], params["metadata"]["name"]);
    assert_eq!(by["namespace"], params["metadata"]["namespace"]);
    // Deny would refuse every pod while the ConfigMap is missing.
    assert_eq!(by["parameterNotFoundAction"], "Allow");
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

/// The ConfigMap says the config's cluster layer in the annotations' form: read back through the
/// settings' own parser it is the same layer, and the other keys carry the rest.
#[test]
fn the_parameters_read_back_as_the_config() {
    use zerodrop_core::policy::{Partial, Setting};
    let cluster = ClusterPolicy::from_yaml(
        "defaults:\n  mode: audit\n  prestop-sleep: 1m5s\n  drain-timeout: 12\n  \
         readiness-path: \"/a\\\"b,c\"\n  readiness-port: http-alt\n  readiness-scheme: https\n  \
         prestop-action: exec\n  skip-containers: \"a, b\"\n  shell-exec: true\n  drain: adaptive\n  \
         drain-min: 2s\n  drain-quiet: 3\n  drain-max: 40s\n  drain-count: connections\n  \
         sidecar-drain: 7s\nsidecar-containers: [envoy, \"Not A Name\", vault-agent]\n\
         max-grace-period: 2m\ndrain-waiter:\n  port: 9000\n",
    )
    .unwrap();
    let data = export::params::data(&cluster);
    let mut back = Partial::default();
    for s in Setting::ALL {
        let text = data
            .get(s.name())
            .unwrap_or_else(|| panic!("{} missing", s.name()));
        s.parse_into(text, &mut back).unwrap();
    }
    assert_eq!(back, cluster.defaults);
    assert_eq!(data[export::params::SIDECARS], "envoy,vault-agent");
    assert_eq!(data[export::params::MAX_GRACE], "120");
    assert_eq!(data[export::params::WAITER_PORT], "9000");
    let none = export::params::data(&ClusterPolicy::default());
    assert!(Setting::ALL.iter().all(|s| !none.contains_key(s.name())));
}

/// charts/zerodrop ships the policy as a file (it is the same for every config); this keeps it
/// what the export writes. `ZERODROP_WRITE_REFERENCE=1` rewrites it.
#[test]
fn the_chart_ships_the_policy_the_export_writes() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../charts/zerodrop/files/mutating-admission-policy.json");
    let wanted = format!(
        "{}\n",
        serde_json::to_string_pretty(&export::policy(&Options::default())).unwrap()
    );
    let current = std::fs::read_to_string(&path).unwrap_or_default();
    if current != wanted {
        if std::env::var_os("ZERODROP_WRITE_REFERENCE").is_some() {
            std::fs::write(&path, wanted).unwrap();
        } else {
            panic!(
                "{} is stale: ZERODROP_WRITE_REFERENCE=1 cargo test -p zerodrop-core --test export",
                path.display()
            );
        }
    }
}
