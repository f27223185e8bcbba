//! The pods the exported policy leaves alone, and why: what needs the webhook (a waiter already
//! called, the shell rewrite, Istio's YAML config) or what CEL cannot write the way the engine
//! does. The same rule in CEL (for the policy) and in Rust (for the scan and the tests). The
//! adaptive drain is not declined: the policy gives such pods the fixed sleep, as the webhook
//! does for a pod that cannot have the waiter (`sleeping`).

use crate::engine::{Decision, grace, pod, prestop, waiter};
use crate::policy::settings::is_dns_label;
use crate::policy::{ClusterPolicy, LEDGER_ANNOTATION, Layer, PREFIX, Setting, Source};
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decline {
    /// A container's preStop already calls the drain waiter: the native sidecar is the webhook's.
    WaiterCalled,
    /// `shell-exec: true`: the rewrite reads the command (and the image).
    ShellExec,
    /// An Istio sidecar whose drain is in `proxy.istio.io/config` (YAML) and no `sidecar-drain`.
    IstioConfig,
    /// A preStop sleep of 10 or more digits (the engine saturates at u32; CEL's ints do not).
    HugeSleep,
    /// An earlier ledger in another form than the engine's (hand-written, or collapsed).
    ForeignLedger,
    /// The ledger would be collapsed (hundreds of containers) or not fit the annotations.
    LargeLedger,
}

impl Decline {
    /// Why, in the words of a report: what the policy cannot do that the webhook would.
    pub fn describe(self) -> &'static str {
        match self {
            Decline::WaiterCalled => {
                "a preStop already calls the drain waiter (the webhook's sidecar)"
            }
            Decline::ShellExec => "shell-exec: true (the rewrite reads the command and the image)",
            Decline::IstioConfig => {
                "an Istio sidecar drains by proxy.istio.io/config (YAML, which CEL cannot read) and no sidecar-drain"
            }
            Decline::HugeSleep => "a preStop sleep of 10 or more digits",
            Decline::ForeignLedger => "an earlier zerodrop.dev/injected not in zerodrop's own form",
            Decline::LargeLedger => "its ledger would be collapsed or not fit the annotations",
        }
    }
}

/// The pod as the exported policy decides it: without its `drain` annotations (the policy
/// ignores the setting at every layer, so an adaptive pod gets the fixed sleep); `None` when
/// it has none.
pub fn sleeping(obj: &Value) -> Option<Value> {
    let key = format!("{PREFIX}{}", Setting::Drain.name());
    let drains = |k: &str| k == key || k.strip_prefix(&key).is_some_and(|c| c.starts_with('.'));
    let annotations = pod::at(obj, &["metadata", "annotations"])?.as_object()?;
    if !annotations.keys().any(|k| drains(k)) {
        return None;
    }
    let mut out = obj.clone();
    if let Some(map) = out["metadata"]["annotations"].as_object_mut() {
        map.retain(|k, _| !drains(k));
    }
    Some(out)
}

/// Why the exported policy declines `obj` (a Pod in an enforce namespace, not skipped, whose
/// `drain` is not adaptive: see `sleeping`), given the engine's decision for it: `None` when
/// the policy decides exactly as the engine.
pub fn declined(
    obj: &Value,
    namespace: &Layer,
    cluster: &ClusterPolicy,
    decision: &Decision,
) -> Option<Decline> {
    let pod_layer = Layer::from_annotations(Source::Pod, pod::annotations(obj));
    let settings = cluster.settings(namespace, &pod_layer);
    let huge = |c: &Value| {
        prestop::existing_sleep(c).is_some_and(|s| s >= 1_000_000_000)
            || exec_digits(c).is_some_and(|d| d.trim_start_matches('0').len() > 9)
    };
    let mut waiter_called = false;
    let mut shell = false;
    let mut huge_sleep = false;
    for c in pod::containers(obj) {
        let name = pod::name(c);
        if cluster.skips(&settings, name) {
            continue;
        }
        let mut own = settings.clone();
        if let Some(layer) = pod_layer.containers.get(name) {
            own.apply(layer);
        }
        waiter_called |= waiter::calls_waiter(c, cluster.drain_waiter.port);
        shell |= own.shell_exec;
        huge_sleep |= huge(c);
    }
    let sidecars: Vec<&Value> = grace::native_sidecars(obj).collect();
    if settings.sidecar_drain.is_none() {
        huge_sleep |= sidecars.iter().any(|c| huge(c));
    }
    let istio = settings.sidecar_drain.is_none()
        && pod::annotation(obj, grace::ISTIO_CONFIG).is_some()
        && sidecars.iter().any(|c| pod::name(c) == "istio-proxy");
    let ledger = pod::annotation(obj, LEDGER_ANNOTATION);
    let foreign = ledger.is_some_and(|l| !l.is_empty() && !canonical(l));
    let mut patched = obj.clone();
    let stamped = json_patch::patch(&mut patched, &decision.patch)
        .ok()
        .and_then(|()| pod::annotation(&patched, LEDGER_ANNOTATION).map(str::to_owned));
    let large =
        !decision.changes.is_empty() && stamped.as_deref().is_none_or(|l| l.contains("\"*\""));
    [
        (waiter_called, Decline::WaiterCalled),
        (shell, Decline::ShellExec),
        (istio, Decline::IstioConfig),
        (huge_sleep, Decline::HugeSleep),
        (foreign, Decline::ForeignLedger),
        (large, Decline::LargeLedger),
    ]
    .into_iter()
    .find_map(|(hit, why)| hit.then_some(why))
}

fn exec_digits(c: &Value) -> Option<&str> {
    let cmd = pod::at(c, &["lifecycle", "preStop", "exec", "command"])?.as_array()?;
    match cmd.as_slice() {
        [bin, secs]
            if bin
                .as_str()
                .is_some_and(|b| b == "sleep" || b.ends_with("/sleep")) =>
        {
            let s = secs.as_str()?;
            let d = s.strip_prefix('+').unwrap_or(s);
            (!d.is_empty() && d.bytes().all(|b| b.is_ascii_digit())).then_some(d)
        }
        _ => None,
    }
}

/// The earlier ledger is in the engine's own form (ledger.rs's CANONICAL, sorted), checked
/// without a regex engine: it reads back, and writing it back gives the same text.
fn canonical(text: &str) -> bool {
    let Ok(ledger) = serde_json::from_str::<crate::engine::ledger::Ledger>(text) else {
        return false;
    };
    let fields_ok = ledger.containers.iter().all(|(n, f)| {
        !f.is_empty() && !n.is_empty() && is_dns_label(n) && f.iter().all(|x| is_field(x))
    }) && ledger.pod.iter().all(|x| is_field(x));
    fields_ok && serde_json::to_string(&ledger).is_ok_and(|back| back == text)
}

fn is_field(f: &str) -> bool {
    f.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
        && f.bytes()
            .all(|b| b.is_ascii_alphabetic() || b == b'.' || b == b'-')
}

/// The same rule in CEL, over the policy's variables.
pub fn cel() -> String {
    format!(
        "variables.plans.exists(p, p.waiter || p.shell || p.own < 0) \
         || (variables.sidecarDrain < 0 && object.spec.?initContainers.orValue([]).exists(c, \
               c.?restartPolicy.orValue('') == 'Always' && c.name != '{waiter}' \
               && ((c.name == 'istio-proxy' && '{istio}' in variables.pa) || {sidecar_sleep} < 0))) \
         || !variables.prevOk \
         || bytes(variables.ledger).size() > {max} \
         || (variables.ledger != '' && variables.pa.transformList(k, v, k != '{key}', \
               bytes(k).size() + bytes(v).size()).sum() + {key_len} + bytes(variables.ledger).size() > {limit})",
        waiter = waiter::NAME,
        istio = grace::ISTIO_CONFIG,
        sidecar_sleep = super::cel::existing_sleep("c"),
        max = crate::engine::ledger::MAX_LEDGER,
        key = LEDGER_ANNOTATION,
        key_len = LEDGER_ANNOTATION.len(),
        limit = crate::engine::ledger::ANNOTATIONS_LIMIT,
    )
}
