//! Reads a Service, an Ingress or a Gateway API route into what the index keeps: which pods it
//! selects or which Services it sends to, its path class, and the sentence that says why.

use super::class::PathClass;
use serde_json::Value;

/// The annotation with which a Service names its path class where zerodrop cannot tell it
/// (an external balancer of its own, a MetalLB, an F5).
pub const CLASS_ANNOTATION: &str = "zerodrop.dev/path-class";

/// Gateway API's group and the route kinds whose backendRefs name Services.
pub const GATEWAY_GROUP: &str = "gateway.networking.k8s.io";
pub const ROUTE_KINDS: [&str; 5] = ["HTTPRoute", "GRPCRoute", "TLSRoute", "TCPRoute", "UDPRoute"];

const AWS_LB_TYPE: &str = "service.beta.kubernetes.io/aws-load-balancer-type";
const AWS_NLB_TARGET: &str = "service.beta.kubernetes.io/aws-load-balancer-nlb-target-type";
const AWS_LB_CLASS: &str = "service.k8s.aws/nlb";
const GKE_NEG: &str = "cloud.google.com/neg";
const ALB_TARGET: &str = "alb.ingress.kubernetes.io/target-type";
const INGRESS_CLASS: &str = "kubernetes.io/ingress.class";

/// A Service that selects pods, as the index keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceFacts {
    pub namespace: String,
    pub name: String,
    /// The selector's pairs, sorted; never empty (a Service without one selects no pod).
    pub selector: Vec<(String, String)>,
    pub class: PathClass,
    /// Why that class, as warnings and `changes` say it: "Service web is an AWS NLB target (ip)".
    pub why: String,
    /// `externalTrafficPolicy: Local`.
    pub local: bool,
    /// Annotations that were ignored, each saying what was expected.
    pub problems: Vec<String>,
}

/// An Ingress or route, and the Services it sends to (namespace, name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Front {
    /// `Ingress/shop`, `HTTPRoute/shop`.
    pub id: String,
    pub namespace: String,
    pub class: PathClass,
    /// The phrase after "Service web is ": "a backend of Ingress shop".
    pub role: String,
    pub targets: Vec<(String, String)>,
}

fn text<'a>(obj: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter()
        .try_fold(obj, |v, k| v.get(k))
        .and_then(Value::as_str)
}

fn annotation<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    text(obj, &["metadata", "annotations", key])
}

/// A Service's facts, or `None` when it selects no pod (no selector, ExternalName).
pub fn service(obj: &Value) -> Option<ServiceFacts> {
    let namespace = text(obj, &["metadata", "namespace"]).unwrap_or_default();
    let name = text(obj, &["metadata", "name"])?;
    let kind = text(obj, &["spec", "type"]).unwrap_or("ClusterIP");
    if kind == "ExternalName" {
        return None;
    }
    let mut selector: Vec<(String, String)> = obj
        .pointer("/spec/selector")
        .and_then(Value::as_object)?
        .iter()
        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
        .collect();
    if selector.is_empty() {
        return None;
    }
    selector.sort();
    let mut problems = Vec::new();
    let (class, what) = marked(obj, name, &mut problems)
        .unwrap_or_else(|| detected(obj, kind, name, &mut problems));
    Some(ServiceFacts {
        namespace: namespace.to_owned(),
        name: name.to_owned(),
        selector,
        class,
        why: format!("Service {name} {what}"),
        local: text(obj, &["spec", "externalTrafficPolicy"]) == Some("Local"),
        problems,
    })
}

/// The class a person gave the Service, if it is a known one.
fn marked(obj: &Value, name: &str, problems: &mut Vec<String>) -> Option<(PathClass, String)> {
    let raw = annotation(obj, CLASS_ANNOTATION)?;
    match PathClass::from_name(raw.trim()) {
        Some(class) => Some((class, format!("is marked {CLASS_ANNOTATION}: {class}"))),
        None => {
            let known = PathClass::ALL.map(PathClass::as_str).join(", ");
            problems.push(format!(
                "Service {name}: ignored {CLASS_ANNOTATION}={raw:?}: expected one of {known}"
            ));
            None
        }
    }
}

/// The class told by the Service's type, class and the clouds' well-known annotations.
fn detected(
    obj: &Value,
    kind: &str,
    name: &str,
    problems: &mut Vec<String>,
) -> (PathClass, String) {
    let neg = annotation(obj, GKE_NEG);
    if let Some(raw) = neg {
        // `{"ingress": true}` or `{"exposed_ports": {...}}`: pod addresses behind Google's balancers.
        match serde_json::from_str::<Value>(raw) {
            Ok(Value::Object(_)) => {
                return (PathClass::LoadBalancer, "has GKE NEGs (pod targets)".into());
            }
            _ => problems.push(format!(
                "Service {name}: ignored {GKE_NEG}={raw:?}: expected a JSON object"
            )),
        }
    }
    if kind != "LoadBalancer" {
        return (PathClass::Cluster, "routes through kube-proxy".into());
    }
    let lb_class = text(obj, &["spec", "loadBalancerClass"]).unwrap_or_default();
    let aws_type = annotation(obj, AWS_LB_TYPE);
    if lb_class == AWS_LB_CLASS || matches!(aws_type, Some("external" | "nlb-ip")) {
        let target = match (aws_type, annotation(obj, AWS_NLB_TARGET)) {
            (Some("nlb-ip"), _) | (_, Some("ip")) => Some(true),
            (_, Some("instance")) => Some(false),
            (_, Some(raw)) => {
                problems.push(format!(
                    "Service {name}: ignored {AWS_NLB_TARGET}={raw:?}: expected ip or instance"
                ));
                None
            }
            (_, None) => Some(false),
        };
        return match target {
            Some(true) => (PathClass::AwsNlb, "is an AWS NLB target (ip)".into()),
            _ => (
                PathClass::LoadBalancer,
                "is an AWS NLB target (instance)".into(),
            ),
        };
    }
    if lb_class.starts_with("networking.gke.io/")
        || annotation(obj, "cloud.google.com/l4-rbs").is_some()
        || annotation(obj, "networking.gke.io/load-balancer-type").is_some()
    {
        return (PathClass::GkeL4, "is a GKE L4 load balancer".into());
    }
    (PathClass::LoadBalancer, "is a LoadBalancer".into())
}

/// An Ingress: its class decides whether a cloud balancer sends straight to pod addresses.
pub fn ingress(obj: &Value) -> Option<Front> {
    let namespace = text(obj, &["metadata", "namespace"]).unwrap_or_default();
    let name = text(obj, &["metadata", "name"])?;
    let class_name = text(obj, &["spec", "ingressClassName"])
        .or_else(|| annotation(obj, INGRESS_CLASS))
        .unwrap_or_default();
    let (class, role) = match class_name {
        "alb" if annotation(obj, ALB_TARGET) == Some("ip") => (
            PathClass::AwsAlb,
            format!("an AWS ALB target (ip) of Ingress {name}"),
        ),
        "azure-application-gateway" | "azure/application-gateway" => (
            PathClass::AzureAppGateway,
            format!("an Azure Application Gateway backend of Ingress {name}"),
        ),
        _ => (PathClass::Ingress, format!("a backend of Ingress {name}")),
    };
    let mut targets = Vec::new();
    let mut add = |backend: Option<&Value>| {
        if let Some(svc) = backend.and_then(|b| text(b, &["service", "name"])) {
            targets.push((namespace.to_owned(), svc.to_owned()));
        }
    };
    add(obj.pointer("/spec/defaultBackend"));
    for rule in array(obj.pointer("/spec/rules")) {
        for path in array(rule.pointer("/http/paths")) {
            add(path.get("backend"));
        }
    }
    Some(front(
        format!("Ingress/{name}"),
        namespace,
        class,
        role,
        targets,
    ))
}

/// A Gateway API route (HTTPRoute, GRPCRoute, TLSRoute, TCPRoute, UDPRoute): its rules'
/// backendRefs to Services.
pub fn route(kind: &str, obj: &Value) -> Option<Front> {
    let namespace = text(obj, &["metadata", "namespace"]).unwrap_or_default();
    let name = text(obj, &["metadata", "name"])?;
    let mut targets = Vec::new();
    for rule in array(obj.pointer("/spec/rules")) {
        for backend in array(rule.get("backendRefs")) {
            let group = backend.get("group").and_then(Value::as_str).unwrap_or("");
            let kind = backend
                .get("kind")
                .and_then(Value::as_str)
                .unwrap_or("Service");
            if !group.is_empty() || kind != "Service" {
                continue;
            }
            if let Some(svc) = backend.get("name").and_then(Value::as_str) {
                let ns = backend
                    .get("namespace")
                    .and_then(Value::as_str)
                    .unwrap_or(namespace);
                targets.push((ns.to_owned(), svc.to_owned()));
            }
        }
    }
    let role = format!("a backend of {kind} {name}");
    Some(front(
        format!("{kind}/{name}"),
        namespace,
        PathClass::Ingress,
        role,
        targets,
    ))
}

fn front(
    id: String,
    namespace: &str,
    class: PathClass,
    role: String,
    mut targets: Vec<(String, String)>,
) -> Front {
    targets.sort();
    targets.dedup();
    Front {
        id,
        namespace: namespace.to_owned(),
        class,
        role,
        targets,
    }
}

fn array(v: Option<&Value>) -> &[Value] {
    v.and_then(Value::as_array).map_or(&[], Vec::as_slice)
}
