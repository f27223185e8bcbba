//! What `zerodrop verify` read off the cluster after its runs, for the report and the advice:
//! what the pods carried, what the engine finds in the template (the same engine as the
//! webhook's), and small helpers of the run.

use super::advice::{Cause, Observed, Readiness};
use super::options::{Options, VerifyError};
use super::report::{ActionRun, Carried};
use super::workload::{NamespaceFacts, State};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::ListParams;
use kube::{Api, Client};
use zerodrop_core::engine::{Capabilities, Engine, Workload};
use zerodrop_core::policy::{ClusterPolicy, LEDGER_ANNOTATION, Layer};

/// What the first pod of the workload carries.
pub fn carried(pod: Option<&Pod>) -> Carried {
    let spec = pod.and_then(|p| p.spec.as_ref());
    let container = spec.and_then(|s| s.containers.first());
    let prestop = container
        .and_then(|c| c.lifecycle.as_ref()?.pre_stop.as_ref())
        .map(|h| serde_json::to_string(h).unwrap_or_default());
    let readiness = match container.and_then(|c| c.readiness_probe.as_ref()) {
        None => Readiness::None,
        Some(p) if p.tcp_socket.is_some() => Readiness::Tcp,
        Some(_) => Readiness::Own,
    };
    Carried {
        prestop,
        grace_s: spec
            .and_then(|s| s.termination_grace_period_seconds)
            .unwrap_or(30),
        readiness,
        ledger: pod
            .and_then(|p| p.metadata.annotations.as_ref())
            .and_then(|a| a.get(LEDGER_ANNOTATION).cloned()),
    }
}

pub fn prestop_sleep_s(pod: &Pod) -> u64 {
    pod.spec
        .as_ref()
        .and_then(|s| s.containers.first())
        .and_then(|c| c.lifecycle.as_ref()?.pre_stop.as_ref()?.sleep.as_ref())
        .map_or(0, |s| u64::try_from(s.seconds).unwrap_or(0))
}

/// The runs and pods, summarised for the advice rules.
pub fn observe(
    runs: &[ActionRun],
    carried: &Carried,
    namespace: NamespaceFacts,
    installed: Option<bool>,
    pods: &[Pod],
    state: &State,
    kind: Workload,
) -> Observed {
    let count = |c: Cause, r: &&ActionRun| r.by_cause.get(c.as_str()).copied().unwrap_or(0);
    let cause = |c: Cause| -> u64 { runs.iter().map(|r| count(c, &r)).sum() };
    // Routing failures speak of the sleep the pods carry only in runs made with it: a sweep's
    // runs at other values are judged by its recommendation.
    let routing = runs
        .iter()
        .filter(|r| r.sleep_s.is_none())
        .map(|r| count(Cause::Routing, &r))
        .sum();
    let enforced = namespace.mode.as_deref() == Some("enforce");
    let escaped = if enforced {
        let layer = Layer::for_namespace(
            namespace.mode.as_deref(),
            namespace
                .annotations
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str())),
        );
        pods.iter().filter(|p| escaped(p, &layer)).count()
    } else {
        0
    };
    Observed {
        escaped,
        mode: namespace.mode,
        installed,
        prestop: carried.prestop.is_some(),
        prestop_sleep_s: pods.first().map_or(0, prestop_sleep_s),
        readiness: carried.readiness,
        shell: shell_findings(state, kind),
        at_start: cause(Cause::Readiness),
        routing,
        app_close: cause(Cause::AppClose),
        other: cause(Cause::Other),
    }
}

/// A pod the webhook was not called for: no ledger, and enforce would still change it (a pod
/// whose policy asks for nothing, `prestop-sleep: 0` say, is admitted unchanged and unstamped).
fn escaped(pod: &Pod, layer: &Layer) -> bool {
    let stamped = pod
        .metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(LEDGER_ANNOTATION));
    if stamped || pod.metadata.deletion_timestamp.is_some() {
        return false;
    }
    let Ok(value) = serde_json::to_value(pod) else {
        return false;
    };
    let engine = Engine::new(ClusterPolicy::default(), Capabilities::LATEST);
    !engine
        .evaluate(&value, Workload::Pod, layer)
        .patch
        .0
        .is_empty()
}

/// The shell-PID-1 findings the engine reports for the workload's template, as audit would.
fn shell_findings(state: &State, kind: Workload) -> Vec<String> {
    let Some(template) = state
        .template
        .as_ref()
        .and_then(|t| serde_json::to_value(t).ok())
    else {
        return Vec::new();
    };
    let engine = Engine::new(ClusterPolicy::default(), Capabilities::LATEST);
    let layer = Layer::for_namespace(Some("audit"), std::iter::empty());
    engine
        .evaluate(&template, kind, &layer)
        .findings
        .into_iter()
        .filter(|f| matches!(f.code.as_str(), "ZD301" | "ZD303"))
        .map(|f| format!("{} {}", f.code.as_str(), f.message))
        .collect()
}

/// Whether zerodrop runs in `ns` (its chart's Deployment is there), wherever it was installed.
pub async fn zerodrop_runs_in(client: &Client, ns: &str) -> kube::Result<bool> {
    let lp = ListParams::default()
        .labels("app.kubernetes.io/name=zerodrop")
        .limit(1);
    let found = Api::<Deployment>::namespaced(client.clone(), ns)
        .list(&lp)
        .await?;
    Ok(!found.items.is_empty())
}

/// Where zerodrop runs in this cluster, as far as verify may look.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Located {
    /// Its chart's Deployment, in this namespace, with its first container's image.
    Found {
        namespace: String,
        image: Option<String>,
    },
    /// In no namespace: verify could list them all.
    Absent,
    /// Not in `--zerodrop-namespace`, and verify may not list the others.
    Unknown,
}

impl Located {
    pub fn installed(&self) -> Option<bool> {
        match self {
            Located::Found { .. } => Some(true),
            Located::Absent => Some(false),
            Located::Unknown => None,
        }
    }
}

/// zerodrop's Deployment: in `preferred` (`--zerodrop-namespace`) first, then wherever it was
/// installed (the README installs it in `zerodrop`, the flag's default is `zerodrop-system`).
pub async fn locate(client: &Client, preferred: &str) -> Located {
    let lp = ListParams::default().labels("app.kubernetes.io/name=zerodrop");
    let first = |list: kube::core::ObjectList<Deployment>| {
        list.items.into_iter().next().map(|d| Located::Found {
            namespace: d.metadata.namespace.unwrap_or_default(),
            image: d
                .spec
                .template
                .spec
                .and_then(|s| s.containers.into_iter().next())
                .and_then(|c| c.image),
        })
    };
    if let Ok(list) = Api::<Deployment>::namespaced(client.clone(), preferred)
        .list(&lp)
        .await
        && let Some(found) = first(list)
    {
        return found;
    }
    match Api::<Deployment>::all(client.clone()).list(&lp).await {
        Ok(list) => first(list).unwrap_or(Located::Absent),
        Err(_) => Located::Unknown,
    }
}

/// The load pod's image: `--image`, else the one zerodrop runs with here.
pub fn load_image(
    given: Option<&str>,
    located: &Located,
    preferred: &str,
) -> Result<String, VerifyError> {
    if let Some(image) = given {
        return Ok(image.to_owned());
    }
    match located {
        Located::Found {
            image: Some(image), ..
        } => Ok(image.clone()),
        _ => Err(VerifyError::Cannot(format!(
            "no zerodrop Deployment found (in {preferred}, or in any namespace you may list) to take the load pod's image from: pass --image (a zerodrop image) or --zerodrop-namespace"
        ))),
    }
}

/// A template annotation's value now.
pub fn template_annotation(state: &State, key: &str) -> Option<String> {
    state
        .template
        .as_ref()?
        .metadata
        .as_ref()?
        .annotations
        .as_ref()?
        .get(key)
        .cloned()
}

/// The load pod's own deadline: every planned rollout at its limit, plus margin.
pub fn bound_s(opts: &Options) -> i64 {
    let rollouts = u64::from(opts.repeat)
        * opts.actions.len().max(1) as u64
        * (opts.sweep.len().max(1) as u64 + 1)
        * 2;
    let secs = rollouts * (opts.rollout_limit.as_secs() + opts.settle.as_secs()) + 300;
    i64::try_from(secs).unwrap_or(i64::MAX)
}

pub fn rand_u32() -> u32 {
    use ring::rand::SecureRandom as _;
    let mut b = [0u8; 4];
    let _ = ring::rand::SystemRandom::new().fill(&mut b);
    u32::from_le_bytes(b) ^ (super::clock::unix_ms() as u32)
}
