//! What `zerodrop verify` tells the user to change, from what it measured and what the pods
//! carried: each failure placed in the rollout (a new pod joining, an old pod's preStop sleep,
//! its SIGTERM), then one rule per cause. Pure.

use serde::Serialize;

/// A pod the action touched, on the load's clock (ms since the load started).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PodEvents {
    pub name: String,
    /// An old pod: when its deletion was seen, and its preStop sleep (0: none).
    pub deleted_ms: Option<u64>,
    pub prestop_sleep_ms: u64,
    /// A new pod: when it turned Ready.
    pub ready_ms: Option<u64>,
}

/// Where in the rollout a failure fell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Moment {
    /// Within 3 s after a new pod turned Ready: it got traffic it could not serve yet.
    Start,
    /// After an old pod's deletion, more than 1 s before its SIGTERM: routing had not caught
    /// up with the endpoint change, and the pod had stopped serving (no preStop) or is gone.
    Sleep,
    /// Within 1 s of an old pod's SIGTERM: the app closed connections or requests in flight.
    Sigterm,
    /// Anywhere else (the tables show when).
    Other,
}

/// SIGTERM ± this is "at SIGTERM".
const AT_SIGTERM_MS: i64 = 1000;
/// A new pod's first this long is "at start" for a failed connection; for an answer (a 503 of
/// an app that is up but not ready) the whole time any new pod is young.
const AT_START_MS: u64 = 3000;
const ANSWERED_START_MS: u64 = 30_000;

/// The moment of a failure at `at_ms`, from the pods' events. An answer (a non-2xx status)
/// while a new pod is in its first seconds is the new pod's: a closing connection gives none.
pub fn moment(at_ms: u64, answered: bool, pods: &[PodEvents]) -> Moment {
    let at = i64::try_from(at_ms).unwrap_or(i64::MAX);
    let young = |within: u64| {
        pods.iter().any(|p| {
            p.ready_ms
                .is_some_and(|r| at_ms >= r && at_ms - r <= within)
        })
    };
    if answered && young(ANSWERED_START_MS) {
        return Moment::Start;
    }
    let near_sigterm = pods.iter().any(|p| {
        p.deleted_ms.is_some_and(|d| {
            let sigterm = i64::try_from(d + p.prestop_sleep_ms).unwrap_or(i64::MAX);
            (at - sigterm).abs() <= AT_SIGTERM_MS
        })
    });
    if near_sigterm {
        return Moment::Sigterm;
    }
    if young(AT_START_MS) {
        return Moment::Start;
    }
    if pods
        .iter()
        .any(|p| p.deleted_ms.is_some_and(|d| at_ms >= d))
    {
        return Moment::Sleep;
    }
    Moment::Other
}

/// The readiness probe the pods carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Readiness {
    None,
    Tcp,
    /// httpGet, grpc or exec: the app's own check.
    Own,
}

/// What the run saw, summarised for the rules.
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    /// The namespace's `zerodrop.dev/mode` (`None`: no label).
    pub mode: Option<String>,
    /// The pods after the rollout carried a preStop hook.
    pub prestop: bool,
    pub prestop_sleep_s: u64,
    pub readiness: Readiness,
    /// Pods of the workload in an enforce namespace without zerodrop's ledger.
    pub escaped: usize,
    /// Shell-PID-1 findings (code and message) the engine reports for the template.
    pub shell: Vec<String>,
    /// Failures by moment.
    pub at_start: u64,
    pub in_sleep: u64,
    pub at_sigterm: u64,
    /// Of those at SIGTERM: on a reused keep-alive connection (eof/reset).
    pub at_sigterm_reused: u64,
    pub other: u64,
}

/// One thing to change, naming the setting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Advice {
    /// Stable key for tools: `label-namespace`, `readiness-path`, ...
    pub key: &'static str,
    pub text: String,
}

/// The rules, in the order a user applies them.
pub fn advise(namespace: &str, o: &Observed) -> Vec<Advice> {
    let mut out = Vec::new();
    let mut add = |key, text: String| out.push(Advice { key, text });
    let enforced = o.mode.as_deref() == Some("enforce");
    if !enforced && !o.prestop {
        add(
            "label-namespace",
            format!(
                "the pods have no preStop hook, so endpoint removal races SIGTERM: let zerodrop protect them with `kubectl label namespace {namespace} zerodrop.dev/mode=enforce`, then roll again"
            ),
        );
    }
    if enforced && o.escaped > 0 {
        add(
            "escaped",
            format!(
                "{} pod(s) in this enforce namespace carry no zerodrop ledger: they were admitted while the webhook was not called (down, or its namespaceSelector/objectSelector excludes them); check `zerodrop_admissions_total` and the MutatingWebhookConfiguration",
                o.escaped
            ),
        );
    }
    if o.at_start > 0 && o.readiness != Readiness::Own {
        let what = match o.readiness {
            Readiness::Tcp => "a TCP readiness probe only proves the port is open",
            _ => "without a readiness probe a pod is Ready the moment its container starts",
        };
        add(
            "readiness-path",
            format!(
                "{} request(s) failed as new pods joined: {what}; set `zerodrop.dev/readiness-path` (the app's ready URL) on the pod template",
                o.at_start
            ),
        );
    }
    if o.in_sleep > 0 && o.prestop {
        add(
            "prestop-sleep",
            format!(
                "{} request(s) failed after pods were deleted but before their SIGTERM: this cluster's routing takes longer than the {}s preStop sleep to drop a pod; raise `zerodrop.dev/prestop-sleep` (find the smallest safe value with --sweep-sleep)",
                o.in_sleep, o.prestop_sleep_s
            ),
        );
    }
    // Without a preStop, SIGTERM comes with the deletion and routing has not caught up: that is
    // the label's to fix, not the app's.
    if o.at_sigterm > 0 && o.prestop {
        let how = if o.at_sigterm_reused > 0 {
            "it closes keep-alive connections (or exits) while clients still use them: after SIGTERM keep serving for a drain window and answer `Connection: close` (HTTP/2: send GOAWAY), then close"
        } else {
            "requests in flight fail when it exits: after SIGTERM stop accepting and finish what is in flight before exiting"
        };
        add(
            "app-drain",
            format!(
                "{} request(s) failed at the pods' SIGTERM: the app's shutdown loses them; {how}",
                o.at_sigterm
            ),
        );
    }
    for finding in &o.shell {
        add(
            "shell-pid1",
            format!(
                "{finding}: the app never sees SIGTERM and is killed at the grace period's end; set `zerodrop.dev/shell-exec: \"true\"` or `exec` the app"
            ),
        );
    }
    out
}
