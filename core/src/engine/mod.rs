//! The engine: pod (or pod template) + policy + capabilities -> Decision. Pure, no I/O.

pub mod change;
pub mod grace;
pub mod image;
pub mod ledger;
pub mod patch;
pub mod path;
mod plan;
pub mod pod;
pub mod prestop;
pub mod readiness;
pub mod scope;
pub mod shell;
pub mod waiter;

pub use change::Change;
pub use scope::{Skip, Workload};

use crate::findings::{Code, Finding};
use crate::paths::Paths;
use crate::policy::{ClusterPolicy, DrainCount, LEDGER_ANNOTATION, Layer, Mode, Settings, Source};
use serde::Serialize;
use serde_json::Value;

/// What the cluster can do, decided by the caller (apiserver version, `--kube-version`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// Kubernetes minor version (1.<minor>).
    pub minor: u32,
}

impl Capabilities {
    /// The newest Kubernetes this build knows (k8s-openapi `latest`).
    pub const LATEST: Capabilities = Capabilities { minor: 37 };

    /// `lifecycle.*.sleep` is beta and on by default from 1.30, GA in 1.34.
    pub fn native_sleep(self) -> bool {
        self.minor >= 30
    }

    /// Parses `1.34`, `v1.34.2` or `1.34+` (as some distributions report).
    pub fn parse(version: &str) -> Option<Capabilities> {
        let v = version.trim().trim_start_matches('v');
        let mut parts = v.split('.');
        if parts.next()? != "1" {
            return None;
        }
        let minor: String = parts
            .next()?
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        minor.parse().ok().map(|minor| Capabilities { minor })
    }
}

/// What zerodrop does to one pod. In audit mode `patch` is what enforce would apply.
#[derive(Debug, Clone, Serialize)]
pub struct Decision {
    pub mode: Mode,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<Skip>,
    pub changes: Vec<Change>,
    pub findings: Vec<Finding>,
    pub patch: json_patch::Patch,
}

impl Decision {
    fn skipped(mode: Mode, skip: Skip, findings: Vec<Finding>) -> Decision {
        Decision {
            mode,
            skipped: Some(skip),
            changes: Vec::new(),
            findings,
            patch: json_patch::Patch(Vec::new()),
        }
    }
}

/// The engine holds what is fixed for a process: cluster policy and capabilities.
#[derive(Debug, Clone)]
pub struct Engine {
    pub cluster: ClusterPolicy,
    pub caps: Capabilities,
}

/// What the shells know of a pod beyond its spec: its images' facts and its traffic path.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    pub images: &'a image::Images,
    /// What routes to the pod; `None`: unknown (no index), the sleep is `prestop-sleep`.
    pub paths: Option<&'a Paths>,
}

static NO_IMAGES: image::Images = image::Images::new();

impl Default for Facts<'_> {
    fn default() -> Self {
        Facts {
            images: &NO_IMAGES,
            paths: None,
        }
    }
}

/// Where the ledger annotation lives.
const LEDGER_PATH: [&str; 3] = ["metadata", "annotations", LEDGER_ANNOTATION];

impl Engine {
    pub fn new(cluster: ClusterPolicy, caps: Capabilities) -> Engine {
        Engine { cluster, caps }
    }

    /// Evaluates a Pod, or a pod template (`{metadata, spec}`) of `workload`: a whole object, or
    /// the webhook's projection of one (`admission::projection`); both decide the same.
    pub fn evaluate(&self, obj: &Value, workload: Workload, namespace: &Layer) -> Decision {
        self.evaluate_with(obj, workload, namespace, Facts::default())
    }

    /// The same, with what is known of the containers' images (by reference): PID 1 from the
    /// image (shell-form CMD, entrypoint scripts), and the shell-form rewrite when certain; and
    /// of what routes to the pod: the sleep its slowest path class needs.
    pub fn evaluate_with(
        &self,
        obj: &Value,
        workload: Workload,
        namespace: &Layer,
        facts: Facts<'_>,
    ) -> Decision {
        let images = facts.images;
        let pod_layer = Layer::from_annotations(Source::Pod, pod::annotations(obj));
        let mut findings = namespace.findings.clone();
        findings.extend(pod_layer.findings.iter().cloned());

        let mut pod_settings = self.cluster.settings(namespace, &pod_layer);
        let mode = pod_settings.mode;
        if mode == Mode::Off {
            return Decision::skipped(mode, Skip::ModeOff, findings);
        }
        if let Some(skip) = scope::pod_skip(obj, workload) {
            return Decision::skipped(mode, skip, findings);
        }

        let containers = pod::containers(obj);
        for name in pod_layer.containers.keys() {
            if !containers.iter().any(|c| pod::name(c) == name) {
                findings.push(Finding::new(
                    Code::UnknownContainer,
                    None,
                    format!("ignored per-container annotations for {name}: no such container"),
                    format!("zerodrop.dev/<setting>.{name}"),
                ));
            }
        }

        let pinned = namespace.all.prestop_sleep.is_some() || pod_layer.all.prestop_sleep.is_some();
        let needed = path::needed(facts.paths, &self.cluster.paths, pod_settings.prestop_sleep);
        if !pinned {
            pod_settings.prestop_sleep = needed.seconds;
        }
        self.path_bounds(
            &mut pod_settings,
            &needed,
            facts.paths,
            [namespace, &pod_layer],
        );
        let mut plans = self.plan(containers, &pod_settings, &pod_layer, pinned);
        let bad_bounds = [namespace, &pod_layer]
            .iter()
            .flat_map(|l| &l.ignored)
            .any(|s| waiter::BOUNDS.contains(s));
        let waiter = self.adaptive(obj, &mut plans, &pod_settings, bad_bounds, &mut findings);
        let required = plans
            .iter()
            .map(|p| {
                let wait = match p.wait {
                    plan::Wait::Sleep(s) => s,
                    plan::Wait::Waiter { .. } => pod_settings.drain_max,
                    plan::Wait::Own => prestop::existing_sleep(&containers[p.index]).unwrap_or(0),
                };
                wait.saturating_add(p.settings.drain_timeout)
            })
            .max()
            .map(|m| {
                let sidecars = pod_settings
                    .sidecar_drain
                    .unwrap_or_else(|| grace::sidecar_drain(obj));
                m.saturating_add(sidecars).saturating_add(grace::MARGIN)
            });
        let undelayed = plans.iter().find(|p| {
            p.wait == plan::Wait::Own
                && prestop::existing_sleep(&containers[p.index]).unwrap_or(0) == 0
        });
        path::findings(
            facts.paths,
            undelayed.map(|p| p.name.as_str()),
            &mut findings,
        );
        let current = grace::current(obj);
        let outcome = required.map(|r| grace::decide(current, r, self.cluster.max_grace_period));
        let effective = outcome.as_ref().map_or(current, |o| o.effective);

        // Each rule returns the new value of the one container field it changes; that value is
        // diffed against the original field at once, so nothing else is copied or compared.
        let mut ops = Vec::new();
        let mut changes = Vec::new();
        let mut ledger = ledger::Ledger::default();
        for planned in &plans {
            let container = &containers[planned.index];
            let at = [
                patch::Step::Key("spec"),
                patch::Step::Key("containers"),
                patch::Step::Index(planned.index),
            ];
            if planned.wait == (plan::Wait::Waiter { add: true }) {
                let port = self.cluster.drain_waiter.port;
                let lifecycle = waiter::lifecycle(container, port);
                patch::diff_field(container, "lifecycle", lifecycle, &at, &mut ops);
                ledger.container(&planned.name, "lifecycle.preStop");
                changes.push(Change::Drain {
                    container: planned.name.clone(),
                    max: pod_settings.drain_max,
                });
            }
            if let plan::Wait::Sleep(wanted) = planned.wait {
                // The apiserver rejects a native sleep longer than the grace period.
                let seconds = wanted.min(u32::try_from(effective.max(0)).unwrap_or(u32::MAX));
                if seconds < wanted {
                    findings.push(Finding::new(
                        Code::GraceCapped,
                        Some(&planned.name),
                        format!("container {}: preStop sleep cut from {wanted}s to {seconds}s by the grace cap", planned.name),
                        "max-grace-period (cluster config)",
                    ));
                }
                if seconds > 0 {
                    let (action, finding) =
                        prestop::choose(planned.settings.prestop_action, self.caps, &planned.name);
                    findings.extend(finding);
                    let lifecycle = prestop::lifecycle(container, seconds, action);
                    patch::diff_field(container, "lifecycle", lifecycle, &at, &mut ops);
                    ledger.container(&planned.name, "lifecycle.preStop");
                    let why = (!planned.pinned && needed.moved).then(|| needed.why.clone());
                    changes.push(Change::Prestop {
                        container: planned.name.clone(),
                        seconds,
                        action: action.as_str(),
                        why: why.flatten(),
                    });
                }
                if planned.pinned {
                    findings.extend(path::lowered(&planned.name, wanted, &needed));
                }
            }
            if let Some((change, probe)) =
                readiness::apply(container, &planned.settings, &mut findings)
            {
                patch::diff_field(container, "readinessProbe", probe, &at, &mut ops);
                ledger.container(&planned.name, "readinessProbe");
                changes.push(Change::Readiness {
                    container: planned.name.clone(),
                    description: change.describe(),
                });
            }
            let mut rewrite: Vec<(&'static str, Value)> =
                shell::apply(container, planned.settings.shell_exec, &mut findings)
                    .into_iter()
                    .collect();
            let known = pod::get(container, "image")
                .and_then(Value::as_str)
                .and_then(|i| images.get(i));
            let from_image =
                image::apply(container, known, planned.settings.shell_exec, &mut findings);
            if from_image.script_judged {
                // The image's script was read: its verdict replaces the pod-spec guess.
                findings.retain(|f| {
                    !(f.code == Code::ScriptPid1 && f.container.as_deref() == Some(&planned.name))
                });
            }
            if rewrite.is_empty() {
                rewrite = from_image.rewrite;
            }
            if !rewrite.is_empty() {
                changes.push(Change::ShellExec {
                    container: planned.name.clone(),
                });
            }
            for (field, value) in rewrite {
                patch::diff_field(container, field, value, &at, &mut ops);
                ledger.container(&planned.name, field);
            }
        }

        let init: &[&str] = &["spec", "initContainers"];
        let paths: &[&[&str]] = if waiter.is_some() {
            &[&["spec", grace::FIELD], &LEDGER_PATH, init]
        } else {
            &[&["spec", grace::FIELD], &LEDGER_PATH]
        };
        let before = pod::sparse(obj, paths);
        let mut after = before.clone();
        if let (Some(wanted), Some(spec)) =
            (waiter, after.get_mut("spec").and_then(Value::as_object_mut))
        {
            let existing = waiter::init_containers(obj);
            let placed = waiter::place(existing, wanted);
            let same = placed.len() == existing.len()
                && existing.iter().zip(&placed).all(|(a, b)| patch::same(a, b));
            if !same {
                spec.insert("initContainers".into(), Value::Array(placed));
                ledger.pod.insert(waiter::LEDGER_FIELD.into());
                changes.push(Change::Waiter {
                    port: self.cluster.drain_waiter.port,
                });
            }
        }
        if let Some(outcome) = outcome {
            findings.extend(outcome.finding);
            if let (Some(to), Some(spec)) = (
                outcome.raise_to,
                after.get_mut("spec").and_then(Value::as_object_mut),
            ) {
                spec.insert(grace::FIELD.into(), Value::from(to));
                ledger.pod.insert(grace::FIELD.into());
                changes.push(Change::Grace { from: current, to });
            }
        }
        if !ledger.is_empty() {
            let others = pod::annotations(obj)
                .filter(|(k, _)| *k != LEDGER_ANNOTATION)
                .map(|(k, v)| k.len() + v.len())
                .sum();
            ledger.stamp(&mut after, others);
        }
        ops.extend(patch::diff(&before, after).0);
        Decision {
            mode,
            skipped: None,
            changes,
            findings,
            patch: json_patch::Patch(ops),
        }
    }

    /// Where the path is known and no layer set them, the drain waiter's bounds follow it. It
    /// counts requests only where a balancer or an ingress controller pools connections to the
    /// pod (clients pinned through kube-proxy would otherwise hold every wait to the maximum),
    /// and there its maximum is the class's delay, the sleep the path would give: a pinned
    /// client then holds the wait exactly as long as that sleep, and a layer that lets go early
    /// ends it early (the default 30 s, and the delay + quiet, made such pods slower than the
    /// sleep; counting connections behind Traefik ended a wait before Traefik let go, a 502;
    /// docs/proof.md "Adaptive drain"). Elsewhere the maximum only grows to cover the slowest
    /// class and a quiet window, so a slow kube-proxy can still hold the wait.
    fn path_bounds(
        &self,
        settings: &mut Settings,
        needed: &path::Needed,
        paths: Option<&Paths>,
        layers: [&Layer; 2],
    ) {
        let Some(paths) = paths else { return };
        let set = |f: fn(&crate::policy::Partial) -> bool| {
            f(&self.cluster.defaults) || layers.iter().any(|l| f(&l.all))
        };
        let pooled = paths.routes.iter().any(|r| r.class.pools_connections());
        if !set(|p| p.drain_max.is_some()) {
            let cover = needed.seconds.saturating_add(settings.drain_quiet);
            settings.drain_max = if pooled {
                // Never below the window itself (a tiny class delay would refuse the waiter).
                needed.seconds.max(settings.drain_quiet)
            } else {
                settings.drain_max.max(cover)
            };
        }
        if !set(|p| p.drain_count.is_some()) {
            settings.drain_count = if pooled {
                DrainCount::Requests
            } else {
                DrainCount::Connections
            };
        }
    }
}
