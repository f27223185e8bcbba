//! What `zerodrop verify` tells the user to change, from what it measured and what the pods
//! carried: each failure placed in the rollout (a new pod joining, an old pod's preStop sleep,
//! its SIGTERM) and given the cause a setting can change, then one rule per cause. Pure.

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
    /// Under the adaptive drain: what its waiter said of the wait (`prestop_sleep_ms` is then
    /// the wait).
    pub drain: Option<DrainLine>,
}

/// A drain waiter's log line: how long the preStop call waited and why it ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct DrainLine {
    pub waited_ms: u64,
    /// `quiet`, `max` or `fallback`.
    pub ending: String,
    #[serde(default)]
    pub new_connections: u32,
    #[serde(default)]
    pub busy_connections: u32,
}

/// Where in the rollout a failure fell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Moment {
    /// Within 3 s after a new pod turned Ready: it got traffic it could not serve yet.
    Start,
    /// After an old pod's deletion, not within 1 s of its SIGTERM: routing had not caught up
    /// with the endpoint change, and the pod had stopped serving (no preStop) or is gone.
    Sleep,
    /// Within 1 s of an old pod's SIGTERM: the app closed connections or requests in flight.
    Sigterm,
    /// Anywhere else (the tables show when).
    Other,
}

impl Moment {
    pub fn as_str(self) -> &'static str {
        match self {
            Moment::Start => "start",
            Moment::Sleep => "sleep",
            Moment::Sigterm => "sigterm",
            Moment::Other => "other",
        }
    }
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

/// What can change a failure: the sweep recommends a sleep from `Routing` alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Cause {
    /// A new pod got traffic it could not serve yet: readiness, not the sleep.
    Readiness,
    /// Routing still sent a new connection (or request) to a pod after its deletion, when it no
    /// longer served: a longer preStop sleep moves SIGTERM past the routing's convergence.
    Routing,
    /// A kept-alive connection failed at the pod's SIGTERM: kube-proxy pinned it to the pod, so
    /// no sleep moves it; the app's drain does.
    AppClose,
    Other,
}

impl Cause {
    pub fn as_str(self) -> &'static str {
        match self {
            Cause::Readiness => "readiness",
            Cause::Routing => "routing",
            Cause::AppClose => "app-close",
            Cause::Other => "other",
        }
    }
}

/// The cause of a failure at `at_ms` (a non-2xx answer: `answered`; on a kept-alive
/// connection: `reused`).
pub fn cause(at_ms: u64, answered: bool, reused: bool, pods: &[PodEvents]) -> Cause {
    match moment(at_ms, answered, pods) {
        Moment::Start => Cause::Readiness,
        Moment::Other => Cause::Other,
        Moment::Sleep | Moment::Sigterm if reused => {
            // A pinned connection fails when the app closes it, at or after its SIGTERM; before
            // that the app still serves it.
            let at = i64::try_from(at_ms).unwrap_or(i64::MAX);
            let after_sigterm = pods.iter().any(|p| {
                p.deleted_ms.is_some_and(|d| {
                    at + AT_SIGTERM_MS >= i64::try_from(d + p.prestop_sleep_ms).unwrap_or(0)
                })
            });
            if after_sigterm {
                Cause::AppClose
            } else {
                Cause::Other
            }
        }
        Moment::Sleep | Moment::Sigterm => Cause::Routing,
    }
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
    /// Whether zerodrop runs in the cluster (`None`: verify may not look).
    pub installed: Option<bool>,
    /// Pods of the workload in an enforce namespace that the engine would still change but
    /// that carry no ledger: the webhook was not called for them.
    pub escaped: usize,
    /// Shell-PID-1 findings (code and message) the engine reports for the template.
    pub shell: Vec<String>,
    /// Failures by cause.
    pub at_start: u64,
    pub routing: u64,
    pub app_close: u64,
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
    if o.installed == Some(false) && !o.prestop {
        add(
            "install-zerodrop",
            format!(
                "the pods have no preStop hook and zerodrop is not running in this cluster (no zerodrop Deployment found), so a namespace label changes nothing yet: install it first (`helm install zerodrop charts/zerodrop -n zerodrop --create-namespace`, charts/zerodrop/README.md), then `kubectl label namespace {namespace} zerodrop.dev/mode=enforce` and roll again"
            ),
        );
    } else if !enforced && !o.prestop {
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
                "{} pod(s) in this enforce namespace lack what zerodrop would set and carry no zerodrop ledger: they were admitted while the webhook was not called (down, or its namespaceSelector/objectSelector excludes them); check `zerodrop_admission_requests_total` and the MutatingWebhookConfiguration",
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
    if o.routing > 0 && o.prestop {
        add(
            "prestop-sleep",
            format!(
                "{} request(s) reached pods after their deletion, when they no longer served: this cluster's routing takes longer than the {}s preStop sleep to drop a pod; raise `zerodrop.dev/prestop-sleep` (find the smallest safe value with --sweep-sleep)",
                o.routing, o.prestop_sleep_s
            ),
        );
    }
    // Whatever the sleep: kube-proxy never moves an established connection.
    if o.app_close > 0 {
        add(
            "app-drain",
            format!(
                "{} request(s) failed on kept-alive connections at the pods' SIGTERM: the app closes them (or exits) while clients still send on them, and no preStop sleep moves a connection pinned to its pod; after SIGTERM keep serving for a drain window and answer `Connection: close` (HTTP/2: send GOAWAY), finish what is in flight, then close",
                o.app_close
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
