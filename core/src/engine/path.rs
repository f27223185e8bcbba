//! The traffic path's rules: the sleep the classes that route to a pod need, and the path's
//! caveats as findings. The facts come from the index (paths::PathIndex), never from I/O here.

use super::ledger::Ledger;
use super::{Engine, pod, prestop, waiter};
use crate::findings::{Code, Finding};
use crate::paths::{Delays, PathClass, Paths, classify};
use crate::policy::{Layer, Source};
use serde_json::Value;

/// The sleep the path asks for, and the sentence that says why when the path decided it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Needed {
    pub seconds: u32,
    /// The slowest class, when the path is known.
    pub class: Option<PathClass>,
    /// The slowest class's sentence, when the path is known.
    pub why: Option<String>,
    /// The path moved the sleep away from `prestop-sleep`: changes say why.
    pub moved: bool,
}

/// The largest delay of the classes that route to the pod; `sleep` is the `prestop-sleep` in
/// effect (the kube-proxy classes' default). Unknown path: `sleep`, as before the index.
pub fn needed(paths: Option<&Paths>, delays: &Delays, sleep: u32) -> Needed {
    let Some(paths) = paths else {
        return Needed {
            seconds: sleep,
            class: None,
            why: None,
            moved: false,
        };
    };
    let slowest = paths
        .routes
        .iter()
        .map(|r| (delays.of(r.class, sleep), r))
        .max_by_key(|(seconds, r)| (*seconds, std::cmp::Reverse(r.class)));
    let (seconds, class, why) = match slowest {
        Some((seconds, route)) => (seconds, route.class, route.why.clone()),
        None => (
            delays.of(PathClass::None, sleep),
            PathClass::None,
            "no Service selects the pod".to_owned(),
        ),
    };
    Needed {
        seconds,
        class: Some(class),
        why: Some(why),
        moved: seconds != sleep,
    }
}

/// What the path says about the pod beyond the sleep: Service annotations ignored, a partial
/// lookup, and `externalTrafficPolicy: Local` where a container gets no delay.
pub fn findings(paths: Option<&Paths>, undelayed: Option<&str>, out: &mut Vec<Finding>) {
    let Some(paths) = paths else { return };
    for problem in &paths.problems {
        out.push(Finding::new(
            Code::PathAnnotation,
            None,
            format!("{problem}; its path class is what zerodrop can tell"),
            format!("the Service's annotation ({})", classify::CLASS_ANNOTATION),
        ));
    }
    if paths.partial {
        out.push(Finding::new(
            Code::PathPartial,
            None,
            "too many Services share this pod's labels: the path may be slower than found".into(),
            "narrower Service selectors",
        ));
    }
    if let (Some(service), Some(container)) = (&paths.local, undelayed) {
        out.push(Finding::new(
            Code::PathLocalNoDelay,
            Some(container),
            format!(
                "Service {service} has externalTrafficPolicy: Local and container {container} \
                 has no preStop delay: the node's balancer sends until it fails health checks"
            ),
            "zerodrop.dev/prestop-sleep",
        ));
    }
}

/// A sleep pinned by an annotation below what a balancer in front of the pod needs.
pub fn lowered(container: &str, pinned: u32, needed: &Needed) -> Option<Finding> {
    let class = needed.class.filter(|c| c.is_balancer())?;
    let sentence = needed.why.as_deref().unwrap_or_default();
    (pinned < needed.seconds).then(|| {
        Finding::new(
            Code::PathBelowClass,
            Some(container),
            format!(
                "container {container}: preStop sleep {pinned}s is below the {}s of {class}: {sentence}",
                needed.seconds
            ),
            "zerodrop.dev/prestop-sleep (remove it to get the path's delay)",
        )
    })
}

impl Engine {
    /// Whether a running pod's path got slower than the sleep zerodrop gave it (a Service
    /// created after the pod, a balancer annotation added): the first such container, said as
    /// the scan reports it. Sleeps an annotation pinned are the annotation's business.
    pub fn path_outgrown(&self, obj: &Value, namespace: &Layer, paths: &Paths) -> Option<String> {
        let ledger = Ledger::read(obj)?;
        let pod_layer = Layer::from_annotations(Source::Pod, pod::annotations(obj));
        if namespace.all.prestop_sleep.is_some() || pod_layer.all.prestop_sleep.is_some() {
            return None;
        }
        let settings = self.cluster.settings(namespace, &pod_layer);
        let need = needed(Some(paths), &self.cluster.paths, settings.prestop_sleep);
        for (name, fields) in &ledger.containers {
            let own = pod_layer.containers.get(name);
            if !fields.contains("lifecycle.preStop")
                || own.is_some_and(|o| o.prestop_sleep.is_some())
            {
                continue;
            }
            // A waiter's call is no sleep: the drain ends when traffic does.
            let sleeps = pod::containers(obj)
                .iter()
                .find(|c| pod::name(c) == name)
                .filter(|c| !waiter::calls_waiter(c, self.cluster.drain_waiter.port))
                .and_then(prestop::existing_sleep);
            if let Some(had) = sleeps.filter(|s| *s < need.seconds) {
                let why = need.why.as_deref().unwrap_or_default();
                return Some(format!(
                    "container {name} sleeps {had}s; {why}: needs {}s",
                    need.seconds
                ));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::paths::Route;

    fn paths(classes: &[PathClass]) -> Paths {
        Paths {
            routes: classes
                .iter()
                .map(|c| Route {
                    class: *c,
                    why: format!("Service s{} is {c}", *c as u8),
                })
                .collect(),
            ..Paths::default()
        }
    }

    #[test]
    fn the_slowest_class_decides_and_says_why() {
        let d = Delays::default();
        let cases: &[(&[PathClass], u32, Option<PathClass>, bool)] = &[
            (&[], 5, Some(PathClass::None), false),
            (&[PathClass::Cluster], 5, Some(PathClass::Cluster), false),
            (
                &[PathClass::Cluster, PathClass::Ingress],
                5,
                Some(PathClass::Cluster),
                false,
            ),
            (
                &[PathClass::Cluster, PathClass::AwsAlb],
                20,
                Some(PathClass::AwsAlb),
                true,
            ),
            (
                &[PathClass::AwsAlb, PathClass::AwsNlb, PathClass::GkeL4],
                125,
                Some(PathClass::AwsNlb),
                true,
            ),
            (
                &[PathClass::LoadBalancer],
                15,
                Some(PathClass::LoadBalancer),
                true,
            ),
            (
                &[PathClass::AzureAppGateway],
                45,
                Some(PathClass::AzureAppGateway),
                true,
            ),
        ];
        for (classes, seconds, class, why) in cases {
            let n = needed(Some(&paths(classes)), &d, 5);
            assert_eq!(
                (n.seconds, n.class, n.moved),
                (*seconds, *class, *why),
                "{classes:?}"
            );
        }
        let unknown = needed(None, &d, 7);
        assert_eq!(
            (unknown.seconds, unknown.class, unknown.moved),
            (7, None, false)
        );
        let short = Delays {
            unrouted: Some(1),
            ..Delays::default()
        };
        let n = needed(Some(&paths(&[])), &short, 5);
        assert_eq!(n.seconds, 1);
        assert_eq!(n.why.as_deref(), Some("no Service selects the pod"));
    }

    #[test]
    fn lowered_speaks_only_of_balancers() {
        let d = Delays::default();
        let n = needed(Some(&paths(&[PathClass::AwsNlb])), &d, 5);
        let f = lowered("app", 10, &n).unwrap();
        assert_eq!(f.code, Code::PathBelowClass);
        assert!(
            f.message.contains("10s is below the 125s of aws-nlb"),
            "{}",
            f.message
        );
        assert!(
            f.message.ends_with("Service s5 is aws-nlb"),
            "{}",
            f.message
        );
        assert!(lowered("app", 125, &n).is_none());
        let n = needed(Some(&paths(&[PathClass::Cluster])), &d, 5);
        assert!(lowered("app", 1, &n).is_none());
    }
}
