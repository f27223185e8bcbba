//! One measured rollout of `zerodrop verify`: the action, the pods' events on the load's clock,
//! every failure in its window placed and given its cause; and the waits around it (a steady
//! load before the first action, the workload's convergence after each).

use super::advice::{self, PodEvents};
use super::loadpod::{Progress, Seen, Tally, classes};
use super::options::{Action, Options, VerifyError};
use super::report::{ActionRun, SHOWN_FAILURES, Timed};
use super::steady::{self, Verdict, Window};
use super::{podwatch, workload};
use k8s_openapi::api::core::v1::Pod;
use kube::{Api, Client};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::sync::mpsc;

/// What the workload is changed with; `patch` applies it, and returns once it converged.
pub enum Change<'a> {
    /// The user's action.
    Action(Action),
    /// Putting back the sweep's annotation (`None`: it had none): rolls the last value's pods.
    Restore(Option<&'a str>),
}

/// The load, its progress lines and the workload, as every measurement needs them.
pub struct Ctx<'a> {
    pub client: &'a Client,
    pub opts: &'a Options,
    pub state: &'a workload::State,
    pub load: &'a mut Tally,
    pub rx: &'a mut mpsc::Receiver<Progress>,
}

/// The sweep's annotation.
pub const SWEEP_ANNOTATION: &str = "zerodrop.dev/prestop-sleep";

/// Measures one change: from just before it until `settle` after convergence. `replicas` is
/// set while verify holds the workload scaled down (what must be put back on an error).
pub async fn measure(
    ctx: &mut Ctx<'_>,
    change: Change<'_>,
    repetition: u32,
    sleep_s: Option<u64>,
    replicas: &mut Option<i32>,
) -> Result<ActionRun, VerifyError> {
    let (client, opts, state) = (ctx.client, ctx.opts, ctx.state);
    let (ns, target) = (&opts.namespace, &opts.target);
    let (sent0, seen0) = (ctx.load.sent, ctx.load.failures.len());
    let pods_api = Api::<Pod>::namespaced(client.clone(), ns);
    let seen = podwatch::Seen::default();
    let events = tokio::spawn(podwatch::record(
        pods_api,
        workload::selector_string(&state.selector),
        ctx.load.started_unix_ms,
        seen.clone(),
    ));
    tokio::time::sleep(Duration::from_millis(500)).await; // the watch's initial list
    let acted_ms = ctx.load.clock_ms();
    let started = tokio::time::Instant::now();
    let action = match change {
        Change::Action(Action::Restart) => {
            let now = time::OffsetDateTime::now_utc()
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default();
            workload::patch(client, ns, target, workload::restart_patch(&now)).await?;
            converge(client, opts).await?;
            "restart"
        }
        Change::Action(Action::ScaleDown) => {
            *replicas = Some(state.replicas);
            let patch = workload::scale_patch(state.replicas - 1);
            workload::patch(client, ns, target, patch).await?;
            converge(client, opts).await?;
            workload::patch(client, ns, target, workload::scale_patch(state.replicas)).await?;
            converge(client, opts).await?;
            *replicas = None;
            "scale-down"
        }
        Change::Restore(original) => {
            let patch = workload::annotation_patch(SWEEP_ANNOTATION, original);
            workload::patch(client, ns, target, patch).await?;
            converge(client, opts).await?;
            "restore"
        }
    };
    let rollout_s = started.elapsed().as_secs_f64();
    tokio::time::sleep(opts.settle).await;
    let end_ms = ctx.load.clock_ms();
    // The load's report for the end of the window (failures are recorded when they complete).
    let timeout_ms = u64::try_from(opts.timeout.as_millis()).unwrap_or(u64::MAX);
    ctx.load
        .until(ctx.rx, |t| t.at_ms >= end_ms.saturating_add(timeout_ms))
        .await?;
    events.abort();
    let pods: Vec<PodEvents> = seen
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .values()
        .cloned()
        .collect();
    let window: Vec<&Seen> = ctx.load.failures[seen0..]
        .iter()
        .filter(|f| f.at_ms >= acted_ms && f.at_ms <= end_ms)
        .collect();
    let mut run = ActionRun {
        action,
        repetition,
        sleep_s,
        sent: ctx.load.sent - sent0,
        failed: window.len() as u64,
        by_kind: BTreeMap::new(),
        by_moment: BTreeMap::new(),
        by_cause: BTreeMap::new(),
        rollout_s: (rollout_s * 10.0).round() / 10.0,
        waits: pods.iter().filter_map(|p| p.drain.clone()).collect(),
        failures: Vec::new(),
    };
    for f in window {
        let answered = f.status.is_some();
        let moment = advice::moment(f.at_ms, answered, &pods);
        let cause = advice::cause(f.at_ms, answered, f.reused, &pods);
        *run.by_kind.entry(f.class()).or_default() += 1;
        *run.by_moment.entry(moment.as_str().to_owned()).or_default() += 1;
        *run.by_cause.entry(cause.as_str().to_owned()).or_default() += 1;
        if run.failures.len() < SHOWN_FAILURES {
            run.failures.push(Timed {
                after_action_ms: i64::try_from(f.at_ms).unwrap_or(i64::MAX)
                    - i64::try_from(acted_ms).unwrap_or(0),
                kind: if f.reused {
                    format!("{} (reused)", f.class())
                } else {
                    f.class()
                },
                moment,
            });
        }
    }
    Ok(run)
}

/// Waits for a steady load before the first action; refuses, with counts that add up, an app
/// that fails at rest, as soon as that is clear.
pub async fn steady(
    load: &mut Tally,
    rx: &mut mpsc::Receiver<Progress>,
    opts: &Options,
) -> Result<(), VerifyError> {
    let steady_ms = u64::try_from(opts.steady.as_millis()).unwrap_or(u64::MAX);
    let mark = |t: &Tally| (t.at_ms, t.sent, t.failed, t.answered());
    let mut from = mark(load);
    let mut windows = 0;
    loop {
        let last = load.at_ms;
        load.until(rx, |t| t.at_ms > last).await?;
        let now = mark(load);
        let window = Window {
            elapsed_ms: now.0.saturating_sub(from.0),
            sent: now.1.saturating_sub(from.1),
            failed: now.2.saturating_sub(from.2),
            answered: now.3.saturating_sub(from.3),
        };
        match steady::judge(&window, steady_ms, windows) {
            Verdict::Wait => {}
            Verdict::Steady => return Ok(()),
            Verdict::Next => (windows, from) = (windows + 1, now),
            Verdict::AtRest => {
                return Err(VerifyError::Cannot(format!(
                    "{} of {} requests failed before any action ({}): the app fails at rest; fix that first",
                    load.failed,
                    load.sent,
                    classes(&load.by_kind)
                )));
            }
        }
    }
}

pub async fn converge(client: &Client, opts: &Options) -> Result<(), VerifyError> {
    if workload::converge(client, &opts.namespace, &opts.target, opts.rollout_limit).await? {
        Ok(())
    } else {
        Err(VerifyError::Cannot(format!(
            "{} did not converge within {:?}; verify stopped (check `kubectl rollout status`)",
            opts.target, opts.rollout_limit
        )))
    }
}
