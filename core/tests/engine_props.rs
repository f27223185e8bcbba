//! Property tests over generated Pods: the engine's invariants hold for any shape we can build.

// A failed setup is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use zerodrop_testkit::pods;

use k8s_openapi::api::core::v1::Pod;
use pods::pod_any;
use proptest::prelude::*;
use serde_json::{Map, Value};
use zerodrop_core::engine::{Capabilities, Engine, Workload};
use zerodrop_core::policy::{ClusterPolicy, Layer};

/// The pod with every field zerodrop may touch removed, to compare the rest.
fn untouchable(mut p: Value) -> Value {
    if let Some(a) = p
        .pointer_mut("/metadata/annotations")
        .and_then(Value::as_object_mut)
    {
        a.remove("zerodrop.dev/injected");
    }
    if let Some(spec) = p.get_mut("spec").and_then(Value::as_object_mut) {
        spec.remove("terminationGracePeriodSeconds");
        // The adaptive drain's waiter is zerodrop's; the pod's own init containers are not.
        if let Some(init) = spec.get_mut("initContainers").and_then(Value::as_array_mut) {
            init.retain(|c| c["name"] != zerodrop_core::engine::waiter::NAME);
            if init.is_empty() {
                spec.remove("initContainers");
            }
        }
    }
    for c in p
        .pointer_mut("/spec/containers")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
    {
        let Some(c) = c.as_object_mut() else { continue };
        c.remove("readinessProbe");
        c.remove("command");
        if let Some(l) = c.get_mut("lifecycle").and_then(Value::as_object_mut) {
            l.remove("preStop");
        }
        if c.get("lifecycle")
            .is_some_and(|l| l.as_object().is_some_and(Map::is_empty))
        {
            c.remove("lifecycle");
        }
    }
    p
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn engine_invariants(obj in pod_any(), minor in 28u32..=37, cap in prop::option::of(10u32..120)) {
        let cluster = ClusterPolicy { max_grace_period: cap, ..ClusterPolicy::default() };
        let engine = Engine::new(cluster, Capabilities { minor });
        let ns = Layer::for_namespace(Some("enforce"), []);
        let decision = engine.evaluate(&obj, Workload::Pod, &ns);

        // The webhook decodes only a projection of the object; it must decide exactly the same.
        let text = obj.to_string();
        let mut de = serde_json::Deserializer::from_str(&text);
        let decoded = zerodrop_core::admission::projection::object(&mut de).unwrap().unwrap();
        let webhook = engine.evaluate(&decoded, Workload::Pod, &ns);
        // Same operations; their order may differ.
        let ops = |p: &json_patch::Patch| {
            let mut v: Vec<String> = p.0.iter().map(|op| serde_json::to_string(op).unwrap()).collect();
            v.sort();
            v
        };
        prop_assert_eq!(ops(&webhook.patch), ops(&decision.patch));
        prop_assert_eq!(&webhook.findings, &decision.findings);

        let mut patched = obj.clone();
        json_patch::patch(&mut patched, &decision.patch).map_err(|e| TestCaseError::fail(format!("patch: {e}")))?;

        let typed: Pod = serde_json::from_value(patched.clone()).map_err(|e| TestCaseError::fail(format!("typed: {e}")))?;
        let spec = typed.spec.expect("spec");
        let grace = spec.termination_grace_period_seconds.unwrap_or(30);
        for c in &spec.containers {
            if let Some(sleep) = c.lifecycle.as_ref().and_then(|l| l.pre_stop.as_ref()).and_then(|h| h.sleep.as_ref()) {
                // Hooks the pod brought itself are its own business; ours must fit.
                let ours = obj["spec"]["containers"].as_array().unwrap().iter()
                    .find(|o| o["name"] == c.name.as_str())
                    .is_some_and(|o| o.pointer("/lifecycle/preStop").is_none());
                if ours { prop_assert!(sleep.seconds <= grace, "sleep {} > grace {}", sleep.seconds, grace); }
            }
        }
        // A preStop that calls the drain waiter has the waiter to call.
        let calls = patched["spec"]["containers"].as_array().unwrap().iter()
            .any(|c| c.pointer("/lifecycle/preStop/httpGet/path").is_some_and(|p| p == "/drain"));
        let has_waiter = patched.pointer("/spec/initContainers").and_then(Value::as_array)
            .is_some_and(|i| i.iter().any(|c| c["name"] == zerodrop_core::engine::waiter::NAME));
        prop_assert_eq!(calls, has_waiter);
        prop_assert!(grace >= obj["spec"]["terminationGracePeriodSeconds"].as_i64().unwrap_or(30), "grace lowered");

        let again = engine.evaluate(&patched, Workload::Pod, &ns);
        prop_assert!(again.patch.0.is_empty(), "second pass: {:?}", again.patch);

        prop_assert_eq!(untouchable(patched), untouchable(obj));
        for f in &decision.findings {
            prop_assert!(f.message.chars().count() <= 120);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// The decision cache answers exactly what evaluating would answer.
    #[test]
    fn cached_answers_equal_fresh_ones(obj in pod_any()) {
        use zerodrop_core::admission::{Context, Endpoint, cache::DecisionCache, handle};
        let engine = Engine::new(ClusterPolicy::default(), Capabilities::LATEST);
        let namespaces: std::collections::HashMap<String, std::sync::Arc<Layer>> = std::collections::HashMap::new();
        let cache = DecisionCache::new(16);
        let review = |uid: &str| serde_json::to_vec(&serde_json::json!({
            "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": { "uid": uid, "kind": { "group": "", "version": "v1", "kind": "Pod" },
                "operation": "CREATE", "namespace": "ns", "object": obj }
        })).unwrap();
        let fresh = Context { engine: &engine, cache: None, namespaces: &namespaces, unknown_namespace_mode: zerodrop_core::policy::Mode::Enforce, images: None, paths: None };
        let memo = Context { cache: Some(&cache), ..fresh };
        let want = handle(Endpoint::Mutate, &review("u2"), &fresh).unwrap().encode();
        let _ = handle(Endpoint::Mutate, &review("u1"), &memo).unwrap();
        let hit = handle(Endpoint::Mutate, &review("u2"), &memo).unwrap();
        prop_assert!(hit.cached);
        prop_assert_eq!(hit.encode(), want);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// The engine's pruning diff and json-patch's own diff lead to the same object.
    #[test]
    fn pruned_diff_agrees_with_json_patch(before in pod_any(), after in pod_any()) {
        let ours = zerodrop_core::engine::patch::diff(&before, after.clone());
        let mut a = before.clone();
        json_patch::patch(&mut a, &ours).map_err(|e| TestCaseError::fail(format!("{e}")))?;
        let mut b = before.clone();
        json_patch::patch(&mut b, &json_patch::diff(&before, &after)).unwrap();
        prop_assert_eq!(&a, &after);
        prop_assert_eq!(a, b);
    }
}
