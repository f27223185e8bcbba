//! `zerodrop policy export`'s objects in a real apiserver: created (ConfigMap, policy,
//! binding), a namespace its binding selects, and pods wide enough to find its CEL's cost.

use crate::cluster;
use serde_json::{Value, json};
use std::time::Duration;
use zerodrop_core::export;
use zerodrop_core::policy::ClusterPolicy;

/// The export's objects created; 409 where an earlier test or run of the same apiserver made
/// them.
pub async fn install(c: &kube::Client, cluster: &ClusterPolicy, options: &export::Options) {
    for object in export::objects(cluster, options) {
        let created = create(c, &object).await;
        assert!(matches!(created.status, 201 | 409), "{}", created.body);
    }
}

/// Creates one of the export's objects (a ConfigMap, the policy or its binding) where its kind
/// and namespace say.
pub async fn create(c: &kube::Client, object: &Value) -> cluster::Reply {
    let path = match object["kind"].as_str() {
        Some("ConfigMap") => format!(
            "/api/v1/namespaces/{}/configmaps",
            object["metadata"]["namespace"]
                .as_str()
                .unwrap_or("default")
        ),
        Some("MutatingAdmissionPolicy") => {
            "/apis/admissionregistration.k8s.io/v1/mutatingadmissionpolicies".into()
        }
        _ => "/apis/admissionregistration.k8s.io/v1/mutatingadmissionpolicybindings".into(),
    };
    cluster::post(c, &path, object).await
}

/// A namespace no webhook sees whose label puts it in the policy's `enforce`, once the
/// policy mutates there.
pub async fn namespace(c: &kube::Client, options: &export::Options) -> String {
    let ns = cluster::namespace(c, "none", None, json!({})).await;
    cluster::label(c, &ns, json!({ options.mode_label.clone(): "enforce" })).await;
    cluster::wait_for(c, &ns, Duration::from_secs(60), cluster::has_prestop).await;
    ns
}

/// A pod of `n` web containers (each its own port), the shape whose CEL cost grows.
pub fn wide_pod(n: usize) -> Value {
    let containers: Vec<Value> = (0..n)
        .map(|i| {
            let mut c = cluster::web();
            c["name"] = json!(format!("web-{i}"));
            c["ports"][0]["containerPort"] = json!(8080 + i);
            c["ports"][0]["name"] = json!(format!("http-{i}"));
            c
        })
        .collect();
    cluster::pod("wide", json!({}), json!(containers))
}

/// Whether every container of an answered pod has a preStop hook.
pub fn all_hooked(pod: &Value) -> bool {
    pod["spec"]["containers"]
        .as_array()
        .is_some_and(|cs| cs.iter().all(|c| c["lifecycle"]["preStop"].is_object()))
}
