//! preStop: a sleep before SIGTERM so endpoints, kube-proxy and load balancers stop routing first.

use super::{Capabilities, pod};
use crate::findings::{Code, Finding};
use crate::policy::PrestopAction;
use serde_json::{Value, json};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// `lifecycle.preStop.sleep`: needs no binary in the image.
    Native,
    /// `exec: ["sleep", "N"]`: needs a `sleep` binary in the image.
    Exec,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Native => "sleep",
            Action::Exec => "exec",
        }
    }
}

/// The seconds an existing preStop hook is known to sleep; `None` when there is no hook.
/// Hooks we cannot read count as 0: they still delay SIGTERM, but by an unknown amount.
pub fn existing_sleep(container: &Value) -> Option<u32> {
    let hook = pod::field(container, "lifecycle").and_then(|l| pod::field(l, "preStop"))?;
    let native = pod::at(hook, &["sleep", "seconds"]).and_then(Value::as_u64);
    let exec = pod::at(hook, &["exec", "command"])
        .and_then(Value::as_array)
        .and_then(|cmd| match cmd.as_slice() {
            [bin, secs]
                if bin
                    .as_str()
                    .is_some_and(|b| b == "sleep" || b.ends_with("/sleep")) =>
            {
                secs.as_str()?.parse::<u64>().ok()
            }
            _ => None,
        });
    Some(
        native
            .or(exec)
            .map_or(0, |s| u32::try_from(s).unwrap_or(u32::MAX)),
    )
}

/// Picks how to implement the sleep, with a finding when the exec fallback is used.
pub fn choose(
    action: PrestopAction,
    caps: Capabilities,
    container: &str,
) -> (Action, Option<Finding>) {
    let exec_warning = |why: &str| {
        Finding::new(
            Code::ExecPrestopFallback,
            Some(container),
            format!("{why}: preStop uses exec sleep, which fails in images without a sleep binary"),
            "zerodrop.dev/prestop-action",
        )
    };
    match action {
        PrestopAction::Auto | PrestopAction::Sleep if caps.native_sleep() => (Action::Native, None),
        PrestopAction::Exec => (Action::Exec, Some(exec_warning("prestop-action is exec"))),
        PrestopAction::Auto | PrestopAction::Sleep => {
            let why = format!("Kubernetes 1.{} has no native sleep", caps.minor);
            (Action::Exec, Some(exec_warning(&why)))
        }
    }
}

/// The container's `lifecycle` with the hook added (other hooks kept); the caller has checked
/// that there is no preStop hook.
pub fn lifecycle(container: &Value, seconds: u32, action: Action) -> Value {
    let hook = match action {
        Action::Native => json!({ "sleep": { "seconds": seconds } }),
        Action::Exec => json!({ "exec": { "command": ["sleep", seconds.to_string()] } }),
    };
    let mut lifecycle = match pod::get(container, "lifecycle") {
        Some(Value::Object(l)) => l.clone(),
        _ => serde_json::Map::new(),
    };
    lifecycle.insert("preStop".into(), hook);
    Value::Object(lifecycle)
}
