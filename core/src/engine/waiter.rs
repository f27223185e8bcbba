//! The adaptive drain's native sidecar: whether a pod can have it, the container itself, and
//! the preStop hook that calls it (`zerodrop drain-wait` serves the calls).

use super::{Capabilities, pod};
use crate::findings::{Code, Finding};
use crate::policy::{ClusterPolicy, DrainCount, Setting, Settings};
use serde_json::{Map, Value, json};

/// The sidecar's container name: how zerodrop finds its own waiter again.
pub const NAME: &str = "zerodrop-drain";
/// The waiter's paths: the kubelet's preStop call, and the check that it serves.
pub const DRAIN_PATH: &str = "/drain";
pub const READY_PATH: &str = "/ready";
/// The binary in zerodrop's image (its ENTRYPOINT): the postStart hook runs it again.
pub const BINARY: &str = "/zerodrop";
/// How long the postStart hook waits for the waiter to serve before the kubelet restarts it.
const AWAIT: &str = "30s";
/// The ledger's pod-level entry for the sidecar.
pub const LEDGER_FIELD: &str = "initContainers.zerodrop-drain";
/// Native sidecars (`restartPolicy: Always` init containers) are on by default from 1.29.
pub const MIN_MINOR: u32 = 29;
/// What the sidecar asks for and may use: measured at 11-13 MiB idle, 26 MiB at its peak (the
/// postStart hook's process beside it for a moment), 0.25 s of CPU per 7.7 s drain
/// (docs/proof.md).
pub const RESOURCES: (&str, &str, &str, &str) = ("10m", "24Mi", "100m", "64Mi");
/// Annotations that mean a mesh proxy carries the pod's inbound traffic (it arrives from
/// localhost, and the proxy's pooled connections hide the callers).
const MESH_ANNOTATIONS: [(&str, Option<&str>); 3] = [
    ("sidecar.istio.io/status", None),
    ("sidecar.istio.io/inject", Some("true")),
    ("linkerd.io/inject", Some("enabled")),
];

/// The pod-wide settings that bound the wait: an invalid one means no adaptive drain.
pub const BOUNDS: [Setting; 4] = [
    Setting::DrainMin,
    Setting::DrainQuiet,
    Setting::DrainMax,
    Setting::DrainCount,
];

/// Everything the sidecar's command line carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec<'a> {
    pub image: &'a str,
    pub port: u16,
    pub min: u32,
    pub quiet: u32,
    pub max: u32,
    /// What it waits when it cannot observe: the sleep the pod would have had.
    pub fallback: u32,
    pub count: DrainCount,
    /// The app's ports; empty: every port the pod listens on but the waiter's.
    pub ports: Vec<u16>,
}

/// The pod-wide bounds make sense: none was ignored as invalid (`ignored`; each is above 0 by
/// parsing), the minimum and the quiet window fit in the maximum, and the maximum in the
/// cluster's grace cap.
pub fn bounds(s: &Settings, cap: Option<u32>, ignored: bool) -> Result<(), Finding> {
    let problem = if ignored {
        "a drain bound's annotation is invalid".to_owned()
    } else if s.drain_min > s.drain_max {
        format!(
            "drain-min {}s above drain-max {}s",
            s.drain_min, s.drain_max
        )
    } else if s.drain_quiet > s.drain_max {
        format!(
            "drain-quiet {}s above drain-max {}s",
            s.drain_quiet, s.drain_max
        )
    } else if let Some(cap) = cap.filter(|c| s.drain_max > *c) {
        format!("drain-max {}s above the grace cap {cap}s", s.drain_max)
    } else {
        return Ok(());
    };
    Err(Finding::new(
        Code::DrainBounds,
        None,
        format!("{problem}: the fixed preStop sleep is used"),
        "zerodrop.dev/drain-min, drain-quiet, drain-max (durations, min and quiet <= max)",
    ))
}

/// Why this pod cannot have the waiter, if it cannot: it then keeps the fixed sleep.
pub fn unavailable(obj: &Value, caps: Capabilities, cluster: &ClusterPolicy) -> Option<String> {
    let spec = pod::get(obj, "spec")?;
    if caps.minor < MIN_MINOR {
        return Some(format!(
            "Kubernetes 1.{} has no native sidecars (1.{MIN_MINOR})",
            caps.minor
        ));
    }
    if pod::get(spec, "hostNetwork").and_then(Value::as_bool) == Some(true) {
        return Some("hostNetwork pods share the node's sockets".into());
    }
    let windows = pod::at(spec, &["os", "name"]).and_then(Value::as_str) == Some("windows")
        || pod::at(spec, &["nodeSelector", "kubernetes.io/os"]).and_then(Value::as_str)
            == Some("windows");
    if windows {
        return Some("Windows pods have no sock_diag".into());
    }
    let all = pod::containers(obj).iter().chain(init_containers(obj));
    let mesh = MESH_ANNOTATIONS
        .iter()
        .any(|(key, want)| pod::annotation(obj, key).is_some_and(|v| want.is_none_or(|w| v == w)));
    let names: Vec<&str> = all.clone().map(pod::name).collect();
    if mesh
        || names
            .iter()
            .any(|n| cluster.sidecar_containers.iter().any(|s| s == n))
    {
        return Some("a mesh proxy carries its inbound traffic from localhost".into());
    }
    if pod::containers(obj).iter().any(|c| pod::name(c) == NAME) {
        return Some(format!("an app container is named {NAME}"));
    }
    let port = cluster.drain_waiter.port;
    let collides = all
        .filter(|c| pod::name(c) != NAME)
        .flat_map(pod::tcp_ports)
        .any(|(p, _)| p == port);
    collides.then(|| format!("a container uses the waiter's port {port}"))
}

/// The finding for a pod that asked for the adaptive drain and keeps the sleep.
pub fn unavailable_finding(reason: &str) -> Finding {
    Finding::new(
        Code::DrainUnavailable,
        None,
        format!("adaptive drain unavailable ({reason}): the fixed preStop sleep is used"),
        "zerodrop.dev/drain",
    )
}

pub fn init_containers(obj: &Value) -> &[Value] {
    pod::at(obj, &["spec", "initContainers"])
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// The container's preStop hook already calls the waiter on `port` (an earlier pass added it).
pub fn calls_waiter(container: &Value, port: u16) -> bool {
    let Some(get) = pod::at(container, &["lifecycle", "preStop", "httpGet"]) else {
        return false;
    };
    pod::get(get, "path").and_then(Value::as_str) == Some(DRAIN_PATH)
        && pod::get(get, "port").and_then(Value::as_u64) == Some(u64::from(port))
        && pod::get(get, "host").is_none()
}

/// The container's `lifecycle` with a preStop that calls the waiter on the pod's own address:
/// no `host`, so Pod Security Baseline and Restricted accept it (KEP-4940).
pub fn lifecycle(container: &Value, port: u16) -> Value {
    let mut lifecycle = match pod::get(container, "lifecycle") {
        Some(Value::Object(l)) => l.clone(),
        _ => Map::new(),
    };
    lifecycle.insert(
        "preStop".into(),
        json!({ "httpGet": { "path": DRAIN_PATH, "port": port } }),
    );
    Value::Object(lifecycle)
}

/// The sidecar: started before the app, stopped after it; PSS-restricted; small and bounded.
/// Its postStart hook holds the app back until it serves: the kubelet starts the next
/// container only once the hook has returned. A startup probe did the same ~0.9 s slower per
/// pod (the prober's period on top of a status round; docs/proof.md), which every rollout paid.
pub fn container(spec: &Spec<'_>) -> Value {
    let mut args = vec![
        "drain-wait".to_owned(),
        "--log-format=json".to_owned(),
        format!("--listen=[::]:{}", spec.port),
        format!("--min={}s", spec.min),
        format!("--quiet={}s", spec.quiet),
        format!("--max={}s", spec.max),
        format!("--fallback={}s", spec.fallback),
        format!("--count={}", spec.count.as_str()),
    ];
    if !spec.ports.is_empty() {
        let ports: Vec<String> = spec.ports.iter().map(u16::to_string).collect();
        args.push(format!("--ports={}", ports.join(",")));
    }
    let (cpu, memory, cpu_limit, memory_limit) = RESOURCES;
    json!({
        "name": NAME,
        "image": spec.image,
        "args": args,
        "restartPolicy": "Always",
        "lifecycle": {
            "postStart": { "exec": { "command": [
                BINARY,
                "drain-wait",
                format!("--await={AWAIT}"),
                format!("--listen=[::]:{}", spec.port),
            ] } }
        },
        "resources": {
            "requests": { "cpu": cpu, "memory": memory },
            "limits": { "cpu": cpu_limit, "memory": memory_limit }
        },
        "securityContext": {
            "runAsNonRoot": true,
            "runAsUser": 65532,
            "allowPrivilegeEscalation": false,
            "readOnlyRootFilesystem": true,
            "capabilities": { "drop": ["ALL"] },
            "seccompProfile": { "type": "RuntimeDefault" }
        }
    })
}

/// `init` (the pod's initContainers) with the waiter in place: appended last, or laid over an
/// existing one (what the apiserver defaulted in it stays, so a second pass changes nothing).
pub fn place(init: &[Value], wanted: Value) -> Vec<Value> {
    let mut out = init.to_vec();
    match out.iter_mut().find(|c| pod::name(c) == NAME) {
        Some(existing) => {
            let wanted = gated_as(existing, wanted);
            overlay(existing, wanted);
        }
        None => out.push(wanted),
    }
    out
}

/// `wanted`, without its postStart gate where `existing` is gated by the startup probe earlier
/// releases gave it: that gate holds the app back too (only slower), so pods and templates from
/// before an upgrade are neither patched again nor reported as altered.
fn gated_as(existing: &Value, mut wanted: Value) -> Value {
    let probe = pod::at(existing, &["startupProbe", "httpGet", "path"]).and_then(Value::as_str);
    let hooked = pod::at(existing, &["lifecycle", "postStart"]).is_some();
    if probe == Some(READY_PATH)
        && !hooked
        && let Some(w) = wanted.as_object_mut()
    {
        w.remove("lifecycle");
    }
    wanted
}

/// Objects merge key by key; anything else (arrays, scalars) is replaced.
fn overlay(base: &mut Value, top: Value) {
    match (base, top) {
        (Value::Object(b), Value::Object(t)) => {
            for (k, v) in t {
                match b.get_mut(&k) {
                    Some(slot) => overlay(slot, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (slot, top) => *slot = top,
    }
}
