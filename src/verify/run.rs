//! `zerodrop verify`'s run: preflight, the load pod, a steady state, each action measured (in a
//! sweep also the restore, which replaces the last value's pods), the report; and, whatever
//! happens (an error, Ctrl-C), putting back what it changed and waiting until the workload has
//! converged again, so no unprotected pod is left rolling unmeasured and the next verify finds
//! no rollout in progress.

use super::load::Method;
use super::loadpod::{self, LoadSpec, Tally};
use super::measure::{self, Change, Ctx, SWEEP_ANNOTATION};
use super::observed::{self, bound_s, rand_u32, template_annotation};
use super::options::{Options, VerifyError};
use super::preflight::{self, Wanted};
use super::report::{self, Report};
use super::{access, advice, workload};
use kube::Client;
use std::time::Duration;
use tokio::sync::mpsc;

/// What verify changed and must put back.
#[derive(Default)]
struct Changes {
    run: Option<String>,
    replicas: Option<i32>,
    /// The sweep annotation's value before verify touched it (`Some(None)`: it had none).
    sleep: Option<Option<String>>,
    /// The workload was changed and may still be rolling.
    rolled: bool,
}

/// Runs verify; `status` gets one line per step (a terminal's progress line). `cancel` is
/// called for the run and again while putting things back: the second Ctrl-C leaves the
/// workload rolling (and says so) instead of waiting for it.
pub async fn run<F: std::future::Future<Output = ()>>(
    client: &Client,
    opts: &Options,
    cancel: impl Fn() -> F,
    status: &(dyn Fn(&str) + Sync),
) -> Result<Report, VerifyError> {
    let mut changes = Changes::default();
    let result = tokio::select! {
        r = body(client, opts, &mut changes, status) => r,
        () = cancel() => Err(VerifyError::Interrupted),
    };
    let restored = tokio::select! {
        r = restore(client, opts, &changes, status) => r,
        () = cancel() => Err(format!(
            "interrupted again: {} may still be rolling (check `kubectl rollout status`)",
            opts.target
        )),
    };
    match (result, restored) {
        (Ok(report), Ok(())) => Ok(report),
        (Err(e), Ok(())) => Err(e),
        (Err(VerifyError::Interrupted), Err(why)) => Err(VerifyError::Cannot(format!(
            "interrupted; putting back what verify changed: {why}"
        ))),
        (Err(e), Err(why)) => Err(VerifyError::Cannot(format!(
            "{e}; and putting back what verify changed: {why}"
        ))),
        (Ok(_), Err(why)) => Err(VerifyError::Cannot(format!(
            "putting back what verify changed: {why}"
        ))),
    }
}

/// After an error or Ctrl-C: the load pod deleted, the scale and the sweep's annotation put
/// back, then the workload's convergence awaited (bounded by `--rollout-timeout`).
async fn restore(
    client: &Client,
    opts: &Options,
    c: &Changes,
    status: &(dyn Fn(&str) + Sync),
) -> Result<(), String> {
    let ns = &opts.namespace;
    status("cleaning up");
    let put_back = async {
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
        Ok::<_, kube::Error>(())
    };
    put_back.await.map_err(|e| e.to_string())?;
    if c.rolled || c.replicas.is_some() || c.sleep.is_some() {
        status(&format!(
            "waiting for {} to converge (Ctrl-C again to leave it rolling)",
            opts.target
        ));
        measure::converge(client, opts)
            .await
            .map_err(|e| e.to_string())?;
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
    let scale_down = opts.actions.contains(&super::options::Action::ScaleDown);
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
    let located = observed::locate(client, &opts.zerodrop_namespace).await;
    let image = observed::load_image(opts.image.as_deref(), &located, &opts.zerodrop_namespace)?;
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
    measure::steady(&mut load, &mut rx, opts).await?;
    let mut ctx = Ctx {
        client,
        opts,
        state: &state,
        load: &mut load,
        rx: &mut rx,
    };
    // Largest first: a small sleep's failed connections leave unreplied conntrack entries
    // (SYN_SENT, 120 s) that time out the load's later connections on the same ports
    // (docs/proof.md), so they must not come before the values that are judged.
    let mut values = opts.sweep.clone();
    values.sort_unstable_by(|a, b| b.cmp(a));
    values.dedup();
    let sleeps: Vec<Option<u64>> = if values.is_empty() {
        vec![None]
    } else {
        values.into_iter().map(Some).collect()
    };
    let mut runs = Vec::new();
    for &sleep in &sleeps {
        if let Some(s) = sleep {
            if changes.sleep.is_none() {
                changes.sleep = Some(template_annotation(&state, SWEEP_ANNOTATION));
            }
            status(&format!("setting prestop-sleep {s}s (rolls the pods)"));
            let patch = workload::annotation_patch(SWEEP_ANNOTATION, Some(&format!("{s}s")));
            changes.rolled = true;
            workload::patch(client, ns, target, patch).await?;
            measure::converge(client, opts).await?;
        }
        for rep in 1..=opts.repeat {
            for &action in &opts.actions {
                status(&format!(
                    "{} {rep}/{}{}",
                    action.as_str(),
                    opts.repeat,
                    sleep.map_or(String::new(), |s| format!(" with prestop-sleep {s}s"))
                ));
                changes.rolled = true;
                let change = Change::Action(action);
                let r = measure::measure(&mut ctx, change, rep, sleep, &mut changes.replicas);
                runs.push(r.await?);
            }
        }
    }
    // Putting the annotation back replaces the last (smallest) value's pods, the least
    // protected: that rollout is measured as one more run of that value.
    let mut restored = None;
    if let (Some(original), Some(&last)) = (changes.sleep.clone(), sleeps.last()) {
        status("putting back prestop-sleep (measured: it replaces the last value's pods)");
        let change = Change::Restore(original.as_deref());
        let r = measure::measure(&mut ctx, change, 1, last, &mut changes.replicas).await?;
        changes.sleep = None;
        restored = Some(format!(
            "{SWEEP_ANNOTATION} {}; the workload rolled and converged in {:.1}s (the restore run above)",
            original.map_or("removed again".into(), |v| format!("back to {v:?}")),
            r.rollout_s
        ));
        runs.push(r);
    }
    changes.rolled = false;
    let after = workload::state(client, ns, target).await?.unwrap_or(state);
    let pods = workload::pods(client, ns, &after.selector).await?;
    let carried = observed::carried(pods.first());
    let kind = match target.kind {
        preflight::Kind::Deployment => zerodrop_core::engine::Workload::Deployment,
        preflight::Kind::StatefulSet => zerodrop_core::engine::Workload::StatefulSet,
    };
    // Reading the namespace needs a cluster-scoped get a RoleBinding cannot grant; the advice
    // then goes by what the pods carried.
    let namespace = workload::namespace(client, ns).await.unwrap_or_default();
    let seen = observed::observe(
        &runs,
        &carried,
        namespace,
        located.installed(),
        &pods,
        &after,
        kind,
    );
    let sweep = report::sweep_points(&runs);
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
        advice: advice::advise(ns, &seen),
        recommended_sleep_s: report::recommend(&sweep).map(|(_, set)| set),
        runs,
        carried,
        sweep,
        restored,
    })
}
