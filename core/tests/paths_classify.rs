//! Table-driven tests of the traffic path: Services, Ingresses and routes to classes, and the
//! index's lookups as objects come, change and go.

// A failed setup is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use zerodrop_core::paths::classify::{self, ServiceFacts};
use zerodrop_core::paths::{PathClass, PathIndex, Paths};

fn service(name: &str, annotations: Value, spec: Value) -> Value {
    let mut spec = spec;
    if spec.get("selector").is_none() {
        spec["selector"] = json!({ "app": name });
    }
    json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": { "name": name, "namespace": "shop", "annotations": annotations },
        "spec": spec
    })
}

fn facts(obj: &Value) -> ServiceFacts {
    classify::service(obj).expect("selects pods")
}

#[test]
fn services_get_their_class_and_a_sentence() {
    let lb = json!({ "type": "LoadBalancer" });
    let cases = [
        (
            service("web", json!({}), json!({})),
            PathClass::Cluster,
            "Service web routes through kube-proxy",
        ),
        (
            service("web", json!({}), json!({ "type": "NodePort" })),
            PathClass::Cluster,
            "Service web routes through kube-proxy",
        ),
        (
            service("web", json!({}), lb.clone()),
            PathClass::LoadBalancer,
            "Service web is a LoadBalancer",
        ),
        (
            service(
                "web",
                json!({
                    "service.beta.kubernetes.io/aws-load-balancer-type": "external",
                    "service.beta.kubernetes.io/aws-load-balancer-nlb-target-type": "ip"
                }),
                lb.clone(),
            ),
            PathClass::AwsNlb,
            "Service web is an AWS NLB target (ip)",
        ),
        (
            service(
                "web",
                json!({}),
                json!({ "type": "LoadBalancer", "loadBalancerClass": "service.k8s.aws/nlb" }),
            ),
            PathClass::LoadBalancer,
            "Service web is an AWS NLB target (instance)",
        ),
        (
            service(
                "web",
                json!({ "service.beta.kubernetes.io/aws-load-balancer-type": "nlb-ip" }),
                lb.clone(),
            ),
            PathClass::AwsNlb,
            "Service web is an AWS NLB target (ip)",
        ),
        (
            service(
                "web",
                json!({ "cloud.google.com/l4-rbs": "enabled" }),
                lb.clone(),
            ),
            PathClass::GkeL4,
            "Service web is a GKE L4 load balancer",
        ),
        (
            service(
                "web",
                json!({ "cloud.google.com/neg": "{\"ingress\": true}" }),
                json!({}),
            ),
            PathClass::LoadBalancer,
            "Service web has GKE NEGs (pod targets)",
        ),
        (
            service(
                "web",
                json!({ "zerodrop.dev/path-class": "aws-alb" }),
                json!({}),
            ),
            PathClass::AwsAlb,
            "Service web is marked zerodrop.dev/path-class: aws-alb",
        ),
    ];
    for (obj, class, why) in cases {
        let f = facts(&obj);
        assert_eq!((f.class, f.why.as_str()), (class, why), "{obj}");
        assert!(f.problems.is_empty(), "{:?}", f.problems);
    }
}

#[test]
fn bad_annotations_are_problems_and_the_class_is_what_can_be_told() {
    let lb = json!({ "type": "LoadBalancer" });
    let cases = [
        (
            service(
                "web",
                json!({ "zerodrop.dev/path-class": "nlb" }),
                lb.clone(),
            ),
            PathClass::LoadBalancer,
            "ignored zerodrop.dev/path-class=\"nlb\": expected one of none, cluster",
        ),
        (
            service(
                "web",
                json!({
                    "service.beta.kubernetes.io/aws-load-balancer-type": "external",
                    "service.beta.kubernetes.io/aws-load-balancer-nlb-target-type": "pod"
                }),
                lb.clone(),
            ),
            PathClass::LoadBalancer,
            "nlb-target-type=\"pod\": expected ip or instance",
        ),
        (
            service(
                "web",
                json!({ "cloud.google.com/neg": "{ingress: yes" }),
                json!({}),
            ),
            PathClass::Cluster,
            "cloud.google.com/neg=\"{ingress: yes\": expected a JSON object",
        ),
    ];
    for (obj, class, problem) in cases {
        let f = facts(&obj);
        assert_eq!(f.class, class, "{obj}");
        assert!(
            f.problems.iter().any(|p| p.contains(problem)),
            "{:?}",
            f.problems
        );
    }
}

#[test]
fn services_that_select_nothing_are_not_indexed() {
    let mut none = service("web", json!({}), json!({}));
    none["spec"]["selector"] = json!({});
    assert!(classify::service(&none).is_none());
    let mut absent = service("web", json!({}), json!({}));
    absent["spec"].as_object_mut().unwrap().remove("selector");
    assert!(classify::service(&absent).is_none());
    let external = service("web", json!({}), json!({ "type": "ExternalName" }));
    assert!(classify::service(&external).is_none());
    let local = facts(&service(
        "web",
        json!({}),
        json!({ "externalTrafficPolicy": "Local" }),
    ));
    assert!(local.local);
}

fn ingress(name: &str, class: &str, annotations: Value, backend: &str) -> Value {
    json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": { "name": name, "namespace": "shop", "annotations": annotations },
        "spec": {
            "ingressClassName": class,
            "rules": [{ "http": { "paths": [
                { "path": "/", "pathType": "Prefix",
                  "backend": { "service": { "name": backend, "port": { "number": 80 } } } }
            ] } }]
        }
    })
}

fn route(name: &str, backends: Value) -> Value {
    json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
        "metadata": { "name": name, "namespace": "shop" },
        "spec": { "rules": [{ "backendRefs": backends }] }
    })
}

fn pod_labels(app: &str) -> serde_json::Map<String, Value> {
    json!({ "app": app, "tier": "front" })
        .as_object()
        .unwrap()
        .clone()
}

fn classes(p: &Paths) -> Vec<PathClass> {
    p.routes.iter().map(|r| r.class).collect()
}

#[test]
fn the_index_answers_from_selectors_and_fronts_as_they_change() {
    let mut index = PathIndex::new();
    assert!(index.add_object(&service("web", json!({}), json!({}))));
    assert!(!index.add_object(&json!({"apiVersion": "v1", "kind": "ConfigMap"})));
    let labels = pod_labels("web");
    assert_eq!(
        classes(&index.lookup("shop", Some(&labels))),
        [PathClass::Cluster]
    );
    // Another namespace, other labels, no labels: nothing.
    assert!(index.lookup("other", Some(&labels)).routes.is_empty());
    assert!(
        index
            .lookup("shop", Some(&pod_labels("api")))
            .routes
            .is_empty()
    );
    assert!(index.lookup("shop", None).routes.is_empty());

    let alb = json!({ "alb.ingress.kubernetes.io/target-type": "ip" });
    index.add_object(&ingress("shop", "alb", alb.clone(), "web"));
    let p = index.lookup("shop", Some(&labels));
    assert_eq!(classes(&p), [PathClass::Cluster, PathClass::AwsAlb]);
    assert_eq!(
        p.routes[1].why,
        "Service web is an AWS ALB target (ip) of Ingress shop"
    );

    // The Ingress moves to another Service, then a route and an AGIC Ingress send to web.
    index.add_object(&ingress("shop", "alb", alb, "api"));
    assert_eq!(
        classes(&index.lookup("shop", Some(&labels))),
        [PathClass::Cluster]
    );
    index.add_object(&route(
        "r",
        json!([{ "name": "web", "port": 80 }, { "kind": "Other", "name": "web" }]),
    ));
    index.add_object(&ingress(
        "agw",
        "azure-application-gateway",
        json!({}),
        "web",
    ));
    let p = index.lookup("shop", Some(&labels));
    assert_eq!(
        classes(&p),
        [
            PathClass::Cluster,
            PathClass::Ingress,
            PathClass::AzureAppGateway
        ]
    );
    assert_eq!(p.routes[1].why, "Service web is a backend of HTTPRoute r");
    index.remove_front("shop", "HTTPRoute", "r");
    index.replace_fronts("Ingress", Vec::new());
    assert_eq!(index.fronts(), 0);

    // A selector must match whole; a changed selector moves the Service.
    let two = service(
        "both",
        json!({}),
        json!({ "selector": { "app": "web", "tier": "back" } }),
    );
    index.add_object(&two);
    assert_eq!(
        classes(&index.lookup("shop", Some(&labels))),
        [PathClass::Cluster]
    );
    let lb = service(
        "both",
        json!({ "zerodrop.dev/path-class": "aws-nlb" }),
        json!({ "selector": { "tier": "front" }, "externalTrafficPolicy": "Local" }),
    );
    index.add_object(&lb);
    let p = index.lookup("shop", Some(&labels));
    assert_eq!(classes(&p), [PathClass::Cluster, PathClass::AwsNlb]);
    assert_eq!(p.local.as_deref(), Some("both"));
    index.remove_service("shop", "both");
    index.remove_service("shop", "web");
    assert_eq!(index.services(), 0);
    assert_eq!(index.lookup("shop", Some(&labels)), Paths::default());
}

#[test]
fn a_lookup_is_bounded_and_says_when_it_stopped() {
    let mut index = PathIndex::new();
    let many: Vec<ServiceFacts> = (0..zerodrop_core::paths::index::MAX_CANDIDATES + 10)
        .map(|i| {
            facts(&service(
                &format!("s{i}"),
                json!({}),
                json!({ "selector": { "app": "web", "z": i.to_string() } }),
            ))
        })
        .collect();
    index.replace_services(many);
    let p = index.lookup("shop", Some(&pod_labels("web")));
    assert!(p.partial);
    assert!(p.routes.is_empty());
}
