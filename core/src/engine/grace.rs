//! Grace period: long enough for the preStop sleep plus the app's drain, never lowered.

use super::{pod, prestop, waiter};
use crate::findings::{Code, Finding};
use crate::policy::duration;
use serde_json::Value;

/// Seconds added on top of sleep + drain, so the app is not SIGKILLed at the very moment it
/// finishes draining (kubelet and runtime need a moment to deliver signals and reap).
pub const MARGIN: u32 = 5;
/// The apiserver's default when the field is absent.
pub const KUBERNETES_DEFAULT: i64 = 30;
pub const FIELD: &str = "terminationGracePeriodSeconds";

/// What a native sidecar that shows nothing of its own drain gets: Istio's default
/// `terminationDrainDuration`.
pub const SIDECAR_DRAIN: u32 = 5;
pub const ISTIO_CONFIG: &str = "proxy.istio.io/config";
pub const LINKERD_WAIT: &str = "config.alpha.linkerd.io/proxy-wait-before-exit-seconds";

/// The seconds the pod's native sidecars need after the app exits (KEP-753: they get SIGTERM
/// only then), from what the pod shows: Istio's `terminationDrainDuration`, Linkerd's
/// wait-before-exit, a sidecar's own preStop sleep, else SIDECAR_DRAIN each. Summed: the
/// kubelet may stop them one after another.
pub fn sidecar_drain(obj: &Value) -> u32 {
    let annotation = |key| pod::at(obj, &["metadata", "annotations", key]).and_then(Value::as_str);
    native_sidecars(obj)
        .map(|c| {
            let shown = match pod::name(c) {
                "istio-proxy" => annotation(ISTIO_CONFIG).and_then(istio_drain),
                "linkerd-proxy" => annotation(LINKERD_WAIT).and_then(duration::parse_seconds),
                _ => None,
            };
            shown
                .or_else(|| prestop::existing_sleep(c).filter(|s| *s > 0))
                .unwrap_or(SIDECAR_DRAIN)
        })
        .fold(0u32, u32::saturating_add)
}

/// The pod's native sidecars (`restartPolicy: Always` init containers) but zerodrop's waiter.
pub fn native_sidecars(obj: &Value) -> impl Iterator<Item = &Value> {
    waiter::init_containers(obj)
        .iter()
        .filter(|c| pod::get(c, "restartPolicy").and_then(Value::as_str) == Some("Always"))
        .filter(|c| pod::name(c) != waiter::NAME)
}

/// `terminationDrainDuration` from Istio's per-pod proxy config (YAML or JSON).
fn istio_drain(config: &str) -> Option<u32> {
    let v: Value = serde_yaml_ng::from_str(config).ok()?;
    duration::parse_seconds(v.get("terminationDrainDuration")?.as_str()?)
}

pub fn current(obj: &Value) -> i64 {
    pod::at(obj, &["spec", FIELD])
        .and_then(Value::as_i64)
        .unwrap_or(KUBERNETES_DEFAULT)
}

#[derive(Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The grace period the pod ends up with.
    pub effective: i64,
    /// Set when the field must be raised to this value.
    pub raise_to: Option<i64>,
    pub finding: Option<Finding>,
}

/// `required` is max(sleep + drain) + MARGIN over eligible containers.
pub fn decide(current: i64, required: u32, cap: Option<u32>) -> Outcome {
    let mut finding = None;
    let mut target = i64::from(required);
    if let Some(cap) = cap.filter(|c| *c < required) {
        target = i64::from(cap);
        finding = Some(Finding::new(
            Code::GraceCapped,
            None,
            format!(
                "grace period capped at {cap}s by cluster policy; sleep + drain + margin needs {required}s"
            ),
            "max-grace-period (cluster config)",
        ));
    }
    if target > current {
        Outcome {
            effective: target,
            raise_to: Some(target),
            finding,
        }
    } else {
        Outcome {
            effective: current,
            raise_to: None,
            finding: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn raises_but_never_lowers() {
        assert_eq!(decide(30, 45, None).raise_to, Some(45));
        assert_eq!(
            decide(60, 45, None),
            Outcome {
                effective: 60,
                raise_to: None,
                finding: None
            }
        );
        assert_eq!(decide(0, 10, None).raise_to, Some(10));
    }

    #[test]
    fn cap_limits_the_raise_and_says_so() {
        let o = decide(30, 100, Some(60));
        assert_eq!(o.raise_to, Some(60));
        assert_eq!(o.finding.unwrap().code, Code::GraceCapped);
        // A pod already above the cap keeps its own value: the cap never lowers.
        assert_eq!(decide(90, 100, Some(60)).effective, 90);
    }

    #[test]
    fn sidecars_drain_from_what_the_pod_shows() {
        let pod = |annotations: Value, init: Value| json!({"metadata": {"annotations": annotations}, "spec": {"initContainers": init}});
        let always = |name: &str| json!({"name": name, "restartPolicy": "Always"});
        let cases = [
            (pod(json!({}), json!([])), 0),
            (pod(json!({}), json!([{"name": "setup"}])), 0),
            (pod(json!({}), json!([always(waiter::NAME)])), 0),
            (pod(json!({}), json!([always("istio-proxy")])), 5),
            (
                pod(
                    json!({ISTIO_CONFIG: "terminationDrainDuration: 30s\n"}),
                    json!([always("istio-proxy")]),
                ),
                30,
            ),
            (
                pod(
                    json!({ISTIO_CONFIG: "{\"terminationDrainDuration\": \"1m\"}"}),
                    json!([always("istio-proxy")]),
                ),
                60,
            ),
            (
                pod(
                    json!({ISTIO_CONFIG: "[not: a map"}),
                    json!([always("istio-proxy")]),
                ),
                5,
            ),
            (
                pod(
                    json!({LINKERD_WAIT: "12"}),
                    json!([always("linkerd-proxy")]),
                ),
                12,
            ),
            (
                pod(
                    json!({}),
                    json!([
                        {"name": "log", "restartPolicy": "Always",
                         "lifecycle": {"preStop": {"sleep": {"seconds": 3}}}},
                        always("other")
                    ]),
                ),
                8,
            ),
        ];
        for (obj, want) in cases {
            assert_eq!(sidecar_drain(&obj), want, "{obj}");
        }
    }

    #[test]
    fn absent_field_means_the_kubernetes_default() {
        assert_eq!(current(&json!({"spec": {}})), 30);
        assert_eq!(
            current(&json!({"spec": {"terminationGracePeriodSeconds": 5}})),
            5
        );
    }
}
