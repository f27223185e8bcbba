//! `zerodrop verify`'s run: preflight, the load pod, a steady state, each action measured, the
//! report; and, whatever happens (an error, Ctrl-C), putting back what it changed.

use super::advice::{self, PodEvents};
use super::load::Method;
use super::loadpod::{self, LoadSpec, Progress, Seen, Tally, classes};
use super::observed::{bound_s, rand_u32, template_annotation, zerodrop_image};
use super::options::{Action, Options, VerifyError};
use super::preflight::{self, Wanted};
use super::report::{ActionRun, Report, SweepPoint, Timed};
use super::{access, observed, podwatch, workload};
use k8s_openapi::api::core::v1::Pod;
use kube::{Api, Client};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::sync::mpsc;

const SWEEP_ANNOTATION: &str = "zerodrop.dev/prestop-sleep";

/// What verify changed and must put back.
#[derive(Default)]
struct Changes {
    run: Option<String>,
    replicas: Option<i32>,
    /// The sweep annotation's value before verify touched it (`Some(None)`: it had none).
    sleep: Option<Option<String>>,
}

/// Runs verify; `status` gets one line per step (a terminal's progress line).
pub async fn run(
    client: &Client,
    opts: &Options,
    cancel: impl std::future::Future<Output = ()>,
    status: &(dyn Fn(&str) + Sync),
) -> Result<Report, VerifyError> {
    let mut changes = Changes::default();
    let result = tokio::select! {
        r = body(client, opts, &mut changes, status) => r,
        () = cancel => Err(VerifyError::Interrupted),
    };
    status("cleaning up");
    let restored = restore(client, opts, &changes).await;
    match (result, restored) {
        (Ok(report), Ok(())) => Ok(report),
        (Err(e), _) => Err(e),
        (Ok(_), Err(e)) => Err(VerifyError::Cannot(format!(
            "putting back what verify changed: {e}"
        ))),
    }
}

async fn restore(client: &Client, opts: &Options, c: &Changes) -> kube::Result<()> {
    let ns = &opts.namespace;
    if let Some(run) = &c.run {
        loadpod::delete(client, ns, Some(run)).await?;
    }
    if let Some(n) = c.replicas {
        workload::patch(client, ns, &opts.target, workload::scale_patch(n)).await?;
    }
    if let Some(original) = &c.sleep {
        let patch = workload::annotation_patch(SWEEP_ANNOTATION, original.as_deref());
        workload::patch(client, ns, &opts.target, patch).await?;
    }
    Ok(())
}

async fn body(
    client: &Client,
    opts: &Options,
    changes: &mut Changes,
    status: &(dyn Fn(&str) + Sync),
) -> Result<Report, VerifyError> {
    let (ns, target) = (&opts.namespace, &opts.target);
    status("preflight");
    let scale_down = opts.actions.contains(&Action::ScaleDown);
    let denied = access::denied(client, ns, target, scale_down).await?;
    let state = if denied.is_empty() {
        workload::state(client, ns, target).await?
    } else {
        None
    };
    // zerodrop's own namespace is refused wherever it was installed, not only the flag's.
    let own = if denied.is_empty() && observed::zerodrop_runs_in(client, ns).await? {
        ns.clone()
    } else {
        opts.zerodrop_namespace.clone()
    };
    let facts = workload::facts(client, ns, target, state.as_ref(), Some(own), denied).await?;
    let wanted = Wanted {
        scale_down,
        ..opts.wanted.clone()
    };
    let chosen = preflight::decide(target, &facts, &wanted)?;
    let state = state.ok_or_else(|| VerifyError::Cannot(format!("{target} vanished")))?;
    let image = match &opts.image {
        Some(i) => i.clone(),
        None => zerodrop_image(client, &opts.zerodrop_namespace).await?,
    };
    // What an earlier verify that lost its connection left behind.
    loadpod::delete(client, ns, None).await?;
    let run = format!("{:08x}", rand_u32());
    let name = format!("zerodrop-verify-{run}");
    let spec = LoadSpec {
        target: chosen.target.clone(),
        path: chosen.path.clone(),
        method: opts.method,
        rate: opts.rate,
        keepalive: opts.keepalive,
        connections: opts.connections,
        timeout_ms: u64::try_from(opts.timeout.as_millis()).unwrap_or(u64::MAX),
        image,
        deadline_s: bound_s(opts),
    };
    status(&format!("starting load pod {name}"));
    changes.run = Some(run.clone());
    loadpod::create(client, ns, &loadpod::manifest(&name, &run, &spec)).await?;
    if let Err(why) = loadpod::running(client, ns, &name, Duration::from_secs(120)).await? {
        return Err(VerifyError::Cannot(format!(
            "the load pod did not start: {why}"
        )));
    }
    let (tx, mut rx) = mpsc::channel(64);
    tokio::spawn(loadpod::follow(client.clone(), ns.clone(), name, tx));
    let mut load = Tally::default();
    status("waiting for a steady state");
    // A window of `steady` with no failure (the first seconds may still see a Service that
    // kube-proxy has not programmed yet); failing all along for six windows is "at rest".
    let steady_ms = u64::try_from(opts.steady.as_millis()).unwrap_or(u64::MAX);
    let (mut window_from, mut failed_before) = (0, 0);
    loop {
        load.until(&mut rx, |t| t.at_ms >= window_from + steady_ms)
            .await?;
        if load.failed == failed_before {
            break;
        }
        if load.at_ms >= 6 * steady_ms {
            return Err(VerifyError::Cannot(format!(
                "{} of {} requests failed before any action: the app fails at rest ({}); fix that first",
                load.failed,
                load.sent,
                classes(&load.failures)
            )));
        }
        (window_from, failed_before) = (load.at_ms, load.failed);
    }
    let mut runs = Vec::new();
    let mut sweep = Vec::new();
    let sleeps: Vec<Option<u64>> = if opts.sweep.is_empty() {
        vec![None]
    } else {
        {
            // Largest first: a small sleep's failed connections leave unreplied conntrack
            // entries (SYN_SENT, 120 s) that time out the load's later connections on the same
            // ports (docs/proof.md), so they must not come before the values that are judged.
            let mut values = opts.sweep.clone();
            values.sort_unstable_by(|a, b| b.cmp(a));
            values.dedup();
            values.into_iter().map(Some).collect()
        }
    };
    for sleep in sleeps {
        if let Some(s) = sleep {
            if changes.sleep.is_none() {
                changes.sleep = Some(template_annotation(&state, SWEEP_ANNOTATION));
            }
            status(&format!("setting prestop-sleep {s}s (rolls the pods)"));
            let patch = workload::annotation_patch(SWEEP_ANNOTATION, Some(&format!("{s}s")));
            workload::patch(client, ns, target, patch).await?;
            converge(client, opts).await?;
        }
        let mut failed = Vec::new();
        for rep in 1..=opts.repeat {
            for &action in &opts.actions {
                status(&format!(
                    "{} {rep}/{}{}",
                    action.as_str(),
                    opts.repeat,
                    sleep.map_or(String::new(), |s| format!(" with prestop-sleep {s}s"))
                ));
                let r = measure(
                    client, opts, &state, action, rep, sleep, &mut load, &mut rx, changes,
                )
                .await?;
                failed.push(r.failed);
                runs.push(r);
            }
        }
        if let Some(s) = sleep {
            sweep.push(SweepPoint { sleep_s: s, failed });
        }
    }
    let after = workload::state(client, ns, target).await?.unwrap_or(state);
    let pods = workload::pods(client, ns, &after.selector).await?;
    let carried = observed::carried(pods.first());
    let kind = match target.kind {
        preflight::Kind::Deployment => crate::engine::Workload::Deployment,
        preflight::Kind::StatefulSet => crate::engine::Workload::StatefulSet,
    };
    // Reading the namespace's label needs a cluster-scoped get a RoleBinding cannot grant; the
    // advice then goes by what the pods carried.
    let mode = workload::mode(client, ns).await.ok().flatten();
    let seen = observed::observe(&runs, &carried, mode, &pods, &after, kind);
    let advice = advice::advise(ns, &seen);
    let recommended_sleep_s = super::report::recommend(&sweep).map(|(_, set)| set);
    Ok(Report {
        target: target.to_string(),
        namespace: ns.clone(),
        service: chosen.service,
        load: chosen.target,
        path: chosen.path,
        method: match opts.method {
            Method::Get => "GET".into(),
            Method::Post => "POST".into(),
        },
        keepalive: opts.keepalive,
        rate: opts.rate,
        runs,
        carried,
        advice,
        sweep,
        recommended_sleep_s,
    })
}

#[allow(clippy::too_many_arguments)]
async fn measure(
    client: &Client,
    opts: &Options,
    state: &workload::State,
    action: Action,
    repetition: u32,
    sleep_s: Option<u64>,
    load: &mut Tally,
    rx: &mut mpsc::Receiver<Progress>,
    changes: &mut Changes,
) -> Result<ActionRun, VerifyError> {
    let (ns, target) = (&opts.namespace, &opts.target);
    let (sent0, seen0) = (load.sent, load.failures.len());
    let pods_api = Api::<Pod>::namespaced(client.clone(), ns);
    let seen = podwatch::Seen::default();
    let events = tokio::spawn(podwatch::record(
        pods_api,
        workload::selector_string(&state.selector),
        load.started_unix_ms,
        seen.clone(),
    ));
    tokio::time::sleep(Duration::from_millis(500)).await; // the watch's initial list
    let acted_ms = load.clock_ms();
    let started = tokio::time::Instant::now();
    match action {
        Action::Restart => {
            let now = time::OffsetDateTime::now_utc()
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default();
            workload::patch(client, ns, target, workload::restart_patch(&now)).await?;
            converge(client, opts).await?;
        }
        Action::ScaleDown => {
            changes.replicas = Some(state.replicas);
            let patch = workload::scale_patch(state.replicas - 1);
            workload::patch(client, ns, target, patch).await?;
            converge(client, opts).await?;
            workload::patch(client, ns, target, workload::scale_patch(state.replicas)).await?;
            converge(client, opts).await?;
            changes.replicas = None;
        }
    }
    let rollout_s = started.elapsed().as_secs_f64();
    tokio::time::sleep(opts.settle).await;
    let end_ms = load.clock_ms();
    // The load's report for the end of the window (failures are recorded when they complete).
    load.until(rx, |t| t.at_ms >= end_ms + opts.timeout.as_millis() as u64)
        .await?;
    events.abort();
    let pods: Vec<PodEvents> = seen
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .values()
        .cloned()
        .collect();
    let window: Vec<&Seen> = load.failures[seen0..]
        .iter()
        .filter(|f| f.at_ms >= acted_ms && f.at_ms <= end_ms)
        .collect();
    let mut run = ActionRun {
        action: action.as_str(),
        repetition,
        sleep_s,
        sent: load.sent - sent0,
        failed: window.len() as u64,
        by_kind: BTreeMap::new(),
        by_moment: BTreeMap::new(),
        rollout_s: (rollout_s * 10.0).round() / 10.0,
        failures: Vec::new(),
    };
    for f in window {
        let moment = advice::moment(f.at_ms, f.status.is_some(), &pods);
        *run.by_kind.entry(f.class()).or_default() += 1;
        let key = serde_json::to_value(moment)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        *run.by_moment.entry(key).or_default() += 1;
        if run.failures.len() < super::report::SHOWN_FAILURES {
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

async fn converge(client: &Client, opts: &Options) -> Result<(), VerifyError> {
    if workload::converge(client, &opts.namespace, &opts.target, opts.rollout_limit).await? {
        Ok(())
    } else {
        Err(VerifyError::Cannot(format!(
            "{} did not converge within {:?}; verify stopped (check `kubectl rollout status`)",
            opts.target, opts.rollout_limit
        )))
    }
}
