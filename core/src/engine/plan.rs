//! Which containers zerodrop handles and how each waits before SIGTERM: its own hook, a
//! preStop sleep, or the drain waiter (and the waiter sidecar the pod then needs).

use super::{Engine, pod, prestop, waiter};
use crate::findings::Finding;
use crate::policy::{DrainMode, Layer, Settings};
use serde_json::Value;
use std::borrow::Cow;

/// A container zerodrop will handle, with its effective settings.
pub(super) struct Planned<'a> {
    pub index: usize,
    pub name: String,
    /// The pod's, unless the container has annotations of its own.
    pub settings: Cow<'a, Settings>,
    pub wait: Wait,
    /// Its sleep was set by an annotation (namespace, pod or its own), not by the path.
    pub pinned: bool,
}

/// How a planned container waits before SIGTERM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Wait {
    /// Its own preStop hook (or none: a sleep of 0), left alone.
    Own,
    /// A preStop sleep of this many seconds, to add.
    Sleep(u32),
    /// The drain waiter: a preStop call to add, or one an earlier pass added.
    Waiter { add: bool },
}

impl Engine {
    /// The containers zerodrop handles and how each waits; `pinned` says whether the pod's
    /// sleep came from an annotation.
    pub(super) fn plan<'a>(
        &self,
        containers: &[Value],
        pod_settings: &'a Settings,
        pod_layer: &Layer,
        pinned: bool,
    ) -> Vec<Planned<'a>> {
        let mut plans = Vec::new();
        for (index, c) in containers.iter().enumerate() {
            // Rules write fields into the container; anything else cannot be patched.
            if !c.is_object() {
                continue;
            }
            let name = pod::name(c);
            let skipped = self.cluster.skips(pod_settings, name);
            if skipped {
                continue;
            }
            let mut settings = Cow::Borrowed(pod_settings);
            let own = pod_layer.containers.get(name);
            if let Some(own) = own {
                settings.to_mut().apply(own);
            }
            let pinned = pinned || own.is_some_and(|o| o.prestop_sleep.is_some());
            let wait = if waiter::calls_waiter(c, self.cluster.drain_waiter.port) {
                Wait::Waiter { add: false }
            } else if prestop::existing_sleep(c).is_some() {
                Wait::Own
            } else if settings.drain == DrainMode::Adaptive {
                Wait::Waiter { add: true }
            } else if settings.prestop_sleep > 0 {
                Wait::Sleep(settings.prestop_sleep)
            } else {
                Wait::Own
            };
            plans.push(Planned {
                index,
                name: name.to_owned(),
                settings,
                wait,
                pinned,
            });
        }
        plans
    }

    /// The waiter sidecar the pod needs, if any container waits for it. A pod that cannot have
    /// it (or whose bounds make no sense) keeps the fixed sleep, with the finding saying why.
    pub(super) fn adaptive(
        &self,
        obj: &Value,
        plans: &mut [Planned<'_>],
        pod_settings: &Settings,
        bad_bounds: bool,
        findings: &mut Vec<Finding>,
    ) -> Option<Value> {
        let adding = plans.iter().any(|p| p.wait == Wait::Waiter { add: true });
        if adding {
            let refusal = waiter::bounds(pod_settings, self.cluster.max_grace_period, bad_bounds)
                .err()
                .or_else(|| {
                    waiter::unavailable(obj, self.caps, &self.cluster)
                        .map(|why| waiter::unavailable_finding(&why))
                });
            if let Some(finding) = refusal {
                findings.push(finding);
                for p in plans
                    .iter_mut()
                    .filter(|p| p.wait == Wait::Waiter { add: true })
                {
                    let sleep = p.settings.prestop_sleep;
                    p.wait = if sleep > 0 {
                        Wait::Sleep(sleep)
                    } else {
                        Wait::Own
                    };
                }
            }
        }
        let served: Vec<&Planned<'_>> = plans
            .iter()
            .filter(|p| matches!(p.wait, Wait::Waiter { .. }))
            .collect();
        if served.is_empty() {
            return None;
        }
        let containers = pod::containers(obj);
        let mut ports = Vec::new();
        for p in &served {
            let own = pod::tcp_ports(&containers[p.index]);
            if own.is_empty() {
                // One container without declared ports: watch every port the pod listens on.
                ports.clear();
                break;
            }
            ports.extend(own.into_iter().map(|(port, _)| port));
        }
        ports.sort_unstable();
        ports.dedup();
        let spec = waiter::Spec {
            image: &self.cluster.drain_waiter.image,
            port: self.cluster.drain_waiter.port,
            min: pod_settings.drain_min,
            quiet: pod_settings.drain_quiet,
            max: pod_settings.drain_max,
            fallback: served
                .iter()
                .map(|p| p.settings.prestop_sleep)
                .max()
                .unwrap_or(0),
            count: pod_settings.drain_count,
            ports,
        };
        Some(waiter::container(&spec))
    }
}
