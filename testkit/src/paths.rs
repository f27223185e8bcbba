//! A traffic path index at the scale issue 30 asks to measure: 10,000 Services in 10
//! namespaces and 1,000 Ingresses and HTTPRoutes, with the typical review's pod behind an AWS
//! NLB Service, a ClusterIP Service and an ALB Ingress among them.

use serde_json::{Value, json};
use zerodrop_core::paths::PathIndex;

fn service(ns: &str, name: &str, selector: Value, kind: &str, annotations: Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": { "name": name, "namespace": ns, "annotations": annotations },
        "spec": { "type": kind, "selector": selector, "ports": [{ "port": 80 }] }
    })
}

/// Every object of the index, `namespace` being the typical review's.
pub fn objects(namespace: &str) -> Vec<Value> {
    objects_scaled(namespace, 1000)
}

/// The same shape with `per_namespace` Services in each of the 10 namespaces (and in the
/// worst case's), a twentieth of that in Ingresses and in HTTPRoutes.
pub fn objects_scaled(namespace: &str, per_namespace: usize) -> Vec<Value> {
    let fronts = per_namespace / 20;
    let mut out = Vec::new();
    for n in 0..10 {
        let ns = if n == 0 {
            namespace.to_owned()
        } else {
            format!("team-{n}")
        };
        for i in 0..per_namespace {
            let selector = json!({ "app.kubernetes.io/name": format!("svc-{i}"), "app.kubernetes.io/part-of": "shop" });
            out.push(service(
                &ns,
                &format!("svc-{i}"),
                selector,
                "ClusterIP",
                json!({}),
            ));
        }
        for i in 0..fronts {
            let backend =
                json!({ "service": { "name": format!("svc-{i}"), "port": { "number": 80 } } });
            out.push(json!({
                "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                "metadata": { "name": format!("ing-{i}"), "namespace": ns },
                "spec": { "ingressClassName": "nginx", "rules": [{ "http": { "paths": [{ "path": "/", "pathType": "Prefix", "backend": backend }] } }] }
            }));
            out.push(json!({
                "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
                "metadata": { "name": format!("route-{i}"), "namespace": ns },
                "spec": { "rules": [{ "backendRefs": [{ "name": format!("svc-{}", per_namespace / 2 + i), "port": 80 }] }] }
            }));
        }
    }
    // The typical pod's own Services (replacing two of the thousand) and its ALB.
    let nlb = json!({
        "service.beta.kubernetes.io/aws-load-balancer-type": "external",
        "service.beta.kubernetes.io/aws-load-balancer-nlb-target-type": "ip"
    });
    out.push(service(
        namespace,
        "svc-998",
        json!({ "app.kubernetes.io/name": "shop-web" }),
        "LoadBalancer",
        nlb,
    ));
    out.push(service(
        namespace,
        "svc-999",
        json!({ "app.kubernetes.io/part-of": "shop" }),
        "ClusterIP",
        json!({}),
    ));
    out.push(json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": { "name": "ing-0", "namespace": namespace, "annotations": { "alb.ingress.kubernetes.io/target-type": "ip" } },
        "spec": { "ingressClassName": "alb", "defaultBackend": { "service": { "name": "svc-999", "port": { "number": 80 } } } }
    }));
    // The worst case: a namespace whose 1,000 Services share their selector's first pair.
    for i in 0..per_namespace {
        let selector = json!({ "tier": "web", "zone": format!("z{i}") });
        out.push(service(
            "shared",
            &format!("s{i}"),
            selector,
            "ClusterIP",
            json!({}),
        ));
    }
    out
}

pub fn index(namespace: &str) -> PathIndex {
    let mut index = PathIndex::new();
    for obj in objects(namespace) {
        index.add_object(&obj);
    }
    index
}
