//! Running Pods that escaped zerodrop, and why: the report's drift section.

use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct NamespaceMode {
    pub name: String,
    /// `enforce`, `audit`, or `off` (not opted in: audited as if it were enforce).
    pub mode: String,
}

/// Why a running Pod lacks zerodrop's changes, as far as the cluster lets one tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Cause {
    /// Created while no zerodrop replica was running (an outage window zerodrop recorded).
    CreatedDuringOutage,
    /// Created before its namespace got the `zerodrop.dev/mode` label.
    OptedInAfterStart,
    /// No ledger and enforce would change it: the webhook was not called or did not answer.
    NotMutated,
    /// Mutated, then changed by someone else (or by a later webhook).
    ChangedAfterAdmission,
    /// Mutated by a zerodrop whose rules were older.
    OutdatedLedger,
    /// Mutated before its image was inspected: what the image needs (the shell-exec rewrite)
    /// came later.
    ImageInspectedLater,
    /// Under the adaptive drain, mutated, and its waiter sidecar is gone: the preStop calls
    /// meet a closed port and the app gets SIGTERM at once.
    WaiterMissing,
    /// Its waiter sidecar is not what zerodrop put there (image, bounds, port).
    WaiterAltered,
    /// Its waiter sidecar is not running (crashed, restarting): a deletion now gets no wait.
    WaiterDown,
    /// What routes to it changed after admission (a Service created later, a balancer
    /// annotation added): its sleep is shorter than its path now needs, or its drain waiter's
    /// bounds are not the ones its path now calls for.
    PathChanged,
    /// Under `admission: policy`, a pod the exported policy leaves alone (export::Decline).
    DeclinedByPolicy,
}

impl Cause {
    /// The metric label and the JSON value.
    pub fn as_str(self) -> &'static str {
        match self {
            Cause::CreatedDuringOutage => "created-during-outage",
            Cause::OptedInAfterStart => "opted-in-after-start",
            Cause::NotMutated => "not-mutated",
            Cause::ChangedAfterAdmission => "changed-after-admission",
            Cause::OutdatedLedger => "outdated-ledger",
            Cause::ImageInspectedLater => "image-inspected-later",
            Cause::WaiterMissing => "waiter-missing",
            Cause::WaiterAltered => "waiter-altered",
            Cause::WaiterDown => "waiter-down",
            Cause::PathChanged => "path-changed",
            Cause::DeclinedByPolicy => "declined-by-policy",
        }
    }

    /// What the report says of such a Pod.
    pub(super) fn describe(self, ledger_version: u32) -> String {
        match self {
            Cause::CreatedDuringOutage => {
                "created while zerodrop was down (recorded outage): needs a rollout".into()
            }
            Cause::OptedInAfterStart => {
                "created before its namespace opted in: needs a rollout".into()
            }
            Cause::NotMutated => {
                "no zerodrop changes (webhook not called or did not answer): needs a rollout".into()
            }
            Cause::ChangedAfterAdmission => "changed after admission: needs a rollout".into(),
            Cause::OutdatedLedger => {
                format!("outdated zerodrop ledger v{ledger_version}: needs a rollout")
            }
            Cause::ImageInspectedLater => {
                "admitted before its image was inspected (PID 1 from the image): needs a rollout"
                    .into()
            }
            Cause::WaiterMissing => {
                "its drain waiter sidecar was removed: preStop gets no wait; needs a rollout".into()
            }
            Cause::WaiterAltered => {
                "its drain waiter sidecar was changed after admission: needs a rollout".into()
            }
            Cause::WaiterDown => {
                "its drain waiter sidecar is not running: a deletion now gets no wait".into()
            }
            Cause::PathChanged => "its traffic path got slower: needs a rollout".into(),
            Cause::DeclinedByPolicy => {
                "left alone by the MutatingAdmissionPolicy (it needs the webhook)".into()
            }
        }
    }
}

/// A running Pod that should carry zerodrop's changes but does not.
#[derive(Debug, Clone, Serialize)]
pub struct Escaped {
    pub namespace: String,
    pub name: String,
    /// The owning workload, `Kind/name`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    pub cause: Cause,
    pub reason: String,
}
