//! What `zerodrop verify` read off the cluster after its runs, for the report and the advice:
//! what the pods carried, what the engine finds in the template (the same engine as the
//! webhook's), and small helpers of the run.

use super::advice::{Moment, Observed, Readiness};
use super::options::{Options, VerifyError};
use super::report::{ActionRun, Carried};
use super::workload::State;
use crate::engine::{Capabilities, Engine, Workload};
use crate::policy::{ClusterPolicy, LEDGER_ANNOTATION, Layer};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::ListParams;
use kube::{Api, Client};

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
    mode: Option<String>,
    pods: &[Pod],
    state: &State,
    kind: Workload,
) -> Observed {
    let moment = |m: &str| -> u64 {
        runs.iter()
            .map(|r| r.by_moment.get(m).copied().unwrap_or(0))
            .sum()
    };
    let enforced = mode.as_deref() == Some("enforce");
    Observed {
        escaped: if enforced {
            pods.iter()
                .filter(|p| {
                    !p.metadata
                        .annotations
                        .as_ref()
                        .is_some_and(|a| a.contains_key(LEDGER_ANNOTATION))
                })
                .count()
        } else {
            0
        },
        mode,
        prestop: carried.prestop.is_some(),
        prestop_sleep_s: pods.first().map_or(0, prestop_sleep_s),
        readiness: carried.readiness,
        shell: shell_findings(state, kind),
        at_start: moment("start"),
        in_sleep: moment("sleep"),
        at_sigterm: moment("sigterm"),
        at_sigterm_reused: runs
            .iter()
            .flat_map(|r| &r.failures)
            .filter(|f| f.moment == Moment::Sigterm && f.kind.ends_with("(reused)"))
            .count() as u64,
        other: moment("other"),
    }
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

/// The image zerodrop runs with in this cluster: its Deployment's first container's.
pub async fn zerodrop_image(client: &Client, ns: &str) -> Result<String, VerifyError> {
    let lp = ListParams::default().labels("app.kubernetes.io/name=zerodrop");
    let found = Api::<Deployment>::namespaced(client.clone(), ns)
        .list(&lp)
        .await?
        .into_iter()
        .find_map(|d| d.spec.template.spec?.containers.first()?.image.clone());
    found.ok_or_else(|| {
        VerifyError::Cannot(format!(
            "no zerodrop Deployment in {ns} to take the load pod's image from: pass --image (a zerodrop image) or --zerodrop-namespace"
        ))
    })
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
