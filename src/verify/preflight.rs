//! `zerodrop verify`'s preflight: from what the cluster says about a workload, either what to
//! send load to, or the reason it cannot run (exit 2). Pure: the cluster shell gathers `Facts`.

use std::fmt;
use std::str::FromStr;

/// The workloads verify rolls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Deployment,
    StatefulSet,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Deployment => "deployment",
            Kind::StatefulSet => "statefulset",
        }
    }
}

/// `deployment/NAME` or `statefulset/NAME` (kubectl's spellings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub kind: Kind,
    pub name: String,
}

impl FromStr for Target {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (kind, name) = s
            .split_once('/')
            .ok_or_else(|| format!("{s:?}: expected deployment/NAME or statefulset/NAME"))?;
        let kind = match kind.to_ascii_lowercase().as_str() {
            "deployment" | "deployments" | "deploy" | "deployment.apps" => Kind::Deployment,
            "statefulset" | "statefulsets" | "sts" | "statefulset.apps" => Kind::StatefulSet,
            other => {
                return Err(format!(
                    "{other:?}: verify rolls a deployment or a statefulset"
                ));
            }
        };
        let valid = !name.is_empty()
            && name.len() <= 253
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
        if !valid {
            return Err(format!("{name:?} is not a Kubernetes object name"));
        }
        Ok(Target {
            kind,
            name: name.to_owned(),
        })
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.kind.as_str(), self.name)
    }
}

/// A Service whose selector matches the workload's pods.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    pub name: String,
    /// `None` for a headless Service (no VIP to send to).
    pub cluster_ip: Option<String>,
    /// (port, targetPort as written: a number or a container port's name).
    pub ports: Vec<(u16, String)>,
}

/// What the cluster says, gathered before anything is changed.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    pub namespace: String,
    /// The namespace zerodrop itself runs in, when found.
    pub zerodrop_namespace: Option<String>,
    /// `None`: the workload does not exist.
    pub replicas: Option<i32>,
    pub ready_replicas: i32,
    /// generation > observedGeneration, or not every replica updated and available.
    pub rolling: bool,
    /// Services in the namespace selecting the pods (selector ⊆ template labels).
    pub services: Vec<Service>,
    /// HorizontalPodAutoscalers whose scaleTargetRef is the workload.
    pub autoscalers: Vec<String>,
    /// (verb, resource) the caller may not do, from SelfSubjectAccessReviews.
    pub denied: Vec<(String, String)>,
    /// The first container's readiness probe HTTP path, if it has one.
    pub readiness_path: Option<String>,
}

/// What the user asked for that preflight checks.
#[derive(Debug, Clone, Default)]
pub struct Wanted {
    pub service: Option<String>,
    pub port: Option<u16>,
    pub path: Option<String>,
    pub scale_down: bool,
}

/// Where the load goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chosen {
    pub service: String,
    /// `clusterIP:port`.
    pub target: String,
    pub path: String,
}

/// Why verify will not run: each says what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("verify never rolls workloads in {0}: it is {1}")]
    Protected(String, &'static str),
    #[error("{0} not found in namespace {1}")]
    NotFound(String, String),
    #[error(
        "{0} has {1} ready replica(s): with fewer than 2 every rollout drops requests; scale it to 2 or more first"
    )]
    TooFewReplicas(String, i32),
    #[error("{0} is rolling out now; run verify once it has converged")]
    Rolling(String),
    #[error("no Service selects the pods of {0}; verify sends its load through a Service")]
    NoService(String),
    #[error("{n} Services select the pods of {0}: {names}; pick one with --service", n = .1.len(), names = .1.join(", "))]
    AmbiguousService(String, Vec<String>),
    #[error("Service {0} does not select the pods of {1} (those that do: {2})")]
    UnknownService(String, String, String),
    #[error("Service {0} is headless (no cluster IP): verify sends to a Service's cluster IP")]
    Headless(String),
    #[error("Service {0} has no port {1} (it has {2}); set --port")]
    UnknownPort(String, u16, String),
    #[error("Service {0} has {1} ports ({2}); pick one with --port")]
    AmbiguousPort(String, usize, String),
    #[error(
        "HorizontalPodAutoscaler {0} scales {1}: it would fight the scale-down; drop scale-down from --actions or pause the autoscaler"
    )]
    Autoscaled(String, String),
    #[error("missing permission: {list}", list = .0.iter().map(|(v, r)| format!("{v} {r}")).collect::<Vec<_>>().join(", "))]
    Forbidden(Vec<(String, String)>),
}

/// The preflight decision, in the order a user fixes things: where, what, whether, how.
pub fn decide(target: &Target, facts: &Facts, wanted: &Wanted) -> Result<Chosen, Refusal> {
    let ns = &facts.namespace;
    if ns == "kube-system" {
        return Err(Refusal::Protected(ns.clone(), "the cluster's own"));
    }
    if facts.zerodrop_namespace.as_deref() == Some(ns.as_str()) {
        return Err(Refusal::Protected(ns.clone(), "zerodrop's own"));
    }
    if !facts.denied.is_empty() {
        return Err(Refusal::Forbidden(facts.denied.clone()));
    }
    let Some(_) = facts.replicas else {
        return Err(Refusal::NotFound(target.to_string(), ns.clone()));
    };
    if facts.rolling {
        return Err(Refusal::Rolling(target.to_string()));
    }
    if facts.ready_replicas < 2 {
        return Err(Refusal::TooFewReplicas(
            target.to_string(),
            facts.ready_replicas,
        ));
    }
    if wanted.scale_down
        && let Some(hpa) = facts.autoscalers.first()
    {
        return Err(Refusal::Autoscaled(hpa.clone(), target.to_string()));
    }
    let names = || {
        facts
            .services
            .iter()
            .map(|s| s.name.clone())
            .collect::<Vec<_>>()
    };
    let service = match (&wanted.service, facts.services.as_slice()) {
        (Some(name), all) => all.iter().find(|s| &s.name == name).ok_or_else(|| {
            let those = names();
            Refusal::UnknownService(
                name.clone(),
                target.to_string(),
                if those.is_empty() {
                    "none".into()
                } else {
                    those.join(", ")
                },
            )
        })?,
        (None, []) => return Err(Refusal::NoService(target.to_string())),
        (None, [one]) => one,
        (None, _) => return Err(Refusal::AmbiguousService(target.to_string(), names())),
    };
    let Some(ip) = &service.cluster_ip else {
        return Err(Refusal::Headless(service.name.clone()));
    };
    let listed = || {
        service
            .ports
            .iter()
            .map(|(p, _)| p.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let port = match (wanted.port, service.ports.as_slice()) {
        (Some(p), ports) if ports.iter().any(|(q, _)| *q == p) => p,
        (Some(p), _) => return Err(Refusal::UnknownPort(service.name.clone(), p, listed())),
        (None, [(p, _)]) => *p,
        (None, ports) => {
            return Err(Refusal::AmbiguousPort(
                service.name.clone(),
                ports.len(),
                listed(),
            ));
        }
    };
    let path = wanted
        .path
        .clone()
        .or_else(|| facts.readiness_path.clone())
        .unwrap_or_else(|| "/".into());
    Ok(Chosen {
        service: service.name.clone(),
        target: format!("{}:{port}", bracket(ip)),
        path,
    })
}

/// An IPv6 cluster IP needs brackets in `host:port`.
fn bracket(ip: &str) -> String {
    if ip.contains(':') {
        format!("[{ip}]")
    } else {
        ip.to_owned()
    }
}
