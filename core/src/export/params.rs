//! The cluster layer as the policy's parameters: a ConfigMap whose keys are the config file's
//! (each default by its setting's name), so the policy's CEL is the same for every config and
//! the chart can ship it as a file and render only this map from its values.

use crate::policy::settings::is_dns_label;
use crate::policy::{ClusterPolicy, Partial, PortRef, Setting};
use std::collections::BTreeMap;

/// The cluster's sidecar names, comma-separated (`sidecar-containers`).
pub const SIDECARS: &str = "sidecar-containers";
/// The grace cap in seconds (`max-grace-period`).
pub const MAX_GRACE: &str = "max-grace-period";
/// The adaptive drain's port, to recognise a hook that already calls the waiter.
pub const WAITER_PORT: &str = "drain-waiter.port";

/// The ConfigMap's data for `cluster`: every value in the form the policy's CEL parses, which is
/// the form annotations take.
pub fn data(cluster: &ClusterPolicy) -> BTreeMap<String, String> {
    let mut data: BTreeMap<String, String> = Setting::ALL
        .iter()
        .filter_map(|s| text(*s, &cluster.defaults).map(|t| (s.name().to_owned(), t)))
        .collect();
    // A name that is not a container name can never match one; leaving it out keeps the
    // comma-joined list exact.
    let sidecars: Vec<&str> = cluster
        .sidecar_containers
        .iter()
        .map(String::as_str)
        .filter(|n| is_dns_label(n))
        .collect();
    data.insert(SIDECARS.into(), sidecars.join(","));
    if let Some(cap) = cluster.max_grace_period {
        data.insert(MAX_GRACE.into(), cap.to_string());
    }
    data.insert(WAITER_PORT.into(), cluster.drain_waiter.port.to_string());
    data
}

/// What a setting's layer holds, as its annotation would say it; None where it is not set.
fn text(setting: Setting, p: &Partial) -> Option<String> {
    let secs = |v: Option<u32>| v.map(|s| s.to_string());
    match setting {
        Setting::Mode => p.mode.map(|m| m.as_str().to_owned()),
        Setting::PrestopSleep => secs(p.prestop_sleep),
        Setting::DrainTimeout => secs(p.drain_timeout),
        Setting::ReadinessPath => p.readiness_path.clone(),
        Setting::ReadinessPort => p.readiness_port.as_ref().map(|r| match r {
            PortRef::Number(n) => n.to_string(),
            PortRef::Name(n) => n.clone(),
        }),
        Setting::ReadinessScheme => p.readiness_scheme.map(|s| s.as_str().to_owned()),
        Setting::PrestopAction => p.prestop_action.map(|a| a.as_str().to_owned()),
        Setting::SkipContainers => p.skip_containers.as_ref().map(|n| n.join(",")),
        Setting::ShellExec => p.shell_exec.map(|b| b.to_string()),
        Setting::Drain => p.drain.map(|d| d.as_str().to_owned()),
        Setting::DrainMin => secs(p.drain_min),
        Setting::DrainQuiet => secs(p.drain_quiet),
        Setting::DrainMax => secs(p.drain_max),
        Setting::DrainCount => p.drain_count.map(|c| c.as_str().to_owned()),
        Setting::SidecarDrain => secs(p.sidecar_drain),
    }
}
