//! Grace period: long enough for the preStop sleep plus the app's drain, never lowered.

use super::pod;
use crate::findings::{Code, Finding};
use serde_json::Value;

/// Seconds added on top of sleep + drain, so the app is not SIGKILLed at the very moment it
/// finishes draining (kubelet and runtime need a moment to deliver signals and reap).
pub const MARGIN: u32 = 5;
/// The apiserver's default when the field is absent.
pub const KUBERNETES_DEFAULT: i64 = 30;
pub const FIELD: &str = "terminationGracePeriodSeconds";

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
    fn absent_field_means_the_kubernetes_default() {
        assert_eq!(current(&json!({"spec": {}})), 30);
        assert_eq!(
            current(&json!({"spec": {"terminationGracePeriodSeconds": 5}})),
            5
        );
    }
}
