//! One change zerodrop makes to a pod, as reports, warnings, metrics and the ledger name it.

use super::waiter;
use serde::Serialize;

/// One change zerodrop makes (or would make, in audit mode).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Change {
    Prestop {
        container: String,
        seconds: u32,
        action: &'static str,
        /// Why this many seconds, when the traffic path decided it.
        #[serde(skip_serializing_if = "Option::is_none")]
        why: Option<String>,
    },
    Readiness {
        container: String,
        /// What happened to the probe. Serialised as `detail`: the report's entry adds its own
        /// `description`, and a JSON object must not name a key twice.
        #[serde(rename = "detail")]
        description: String,
    },
    Grace {
        from: i64,
        to: i64,
    },
    ShellExec {
        container: String,
    },
    /// The container's preStop calls the drain waiter, which answers within `max` seconds.
    Drain {
        container: String,
        max: u32,
    },
    /// The drain waiter sidecar added (or brought back to what the policy wants).
    Waiter {
        port: u16,
    },
}

impl Change {
    /// Every `kind`: the metrics' series known in advance.
    pub const KINDS: [&'static str; 6] = [
        "prestop",
        "readiness",
        "grace",
        "shell-exec",
        "drain",
        "waiter",
    ];

    /// Metric label and report column.
    pub fn kind(&self) -> &'static str {
        match self {
            Change::Prestop { .. } => "prestop",
            Change::Readiness { .. } => "readiness",
            Change::Grace { .. } => "grace",
            Change::ShellExec { .. } => "shell-exec",
            Change::Drain { .. } => "drain",
            Change::Waiter { .. } => "waiter",
        }
    }
}

impl Change {
    /// The container changed, or `None` for a pod-level field.
    pub fn container(&self) -> Option<&str> {
        match self {
            Change::Prestop { container, .. }
            | Change::Readiness { container, .. }
            | Change::ShellExec { container }
            | Change::Drain { container, .. } => Some(container),
            Change::Waiter { .. } => Some(waiter::NAME),
            Change::Grace { .. } => None,
        }
    }

    /// Why, when the traffic path decided the change.
    pub fn why(&self) -> Option<&str> {
        match self {
            Change::Prestop { why, .. } => why.as_deref(),
            _ => None,
        }
    }

    /// What changes, without where: the one wording reports, warnings and tables use.
    pub fn what(&self) -> String {
        match self {
            Change::Prestop {
                seconds,
                action,
                why: None,
                ..
            } => format!("preStop {action} {seconds}s"),
            Change::Prestop {
                seconds,
                action,
                why: Some(why),
                ..
            } => format!("preStop {action} {seconds}s: {why}"),
            Change::Readiness { description, .. } => description.clone(),
            Change::Grace { from, to } => format!("terminationGracePeriodSeconds {from} -> {to}"),
            Change::ShellExec { .. } => "shell command rewritten to exec".into(),
            Change::Drain { max, .. } => format!("preStop waits for the drain (at most {max}s)"),
            Change::Waiter { port } => format!("drain waiter sidecar on port {port}"),
        }
    }
}

/// `container: what`, or just `what` for the pod: the description reports and warnings show.
impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.container() {
            Some(container) => write!(f, "{container}: {}", self.what()),
            None => f.write_str(&self.what()),
        }
    }
}
