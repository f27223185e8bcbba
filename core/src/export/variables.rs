//! The exported policy's CEL variables: the engine's decision for one pod, step by step, in the
//! order the engine takes it (settings, scope, plan, grace, hooks, probes, ledger).

use super::cel::{self, ABSENT, resolve};
use super::params;
use crate::engine::{grace, waiter};
use crate::policy::{ClusterPolicy, LEDGER_ANNOTATION, PREFIX, Setting, Settings};

/// A pod's annotation (a CEL string expression for the key), or ABSENT.
fn pod_annotation(key: &str) -> String {
    format!("variables.pa[?{key}].orValue({ABSENT})")
}

fn namespace_annotation(key: &str) -> String {
    format!("variables.na[?{key}].orValue({ABSENT})")
}

/// The cluster layer's value for `key` (params.rs), or ABSENT.
fn param(key: &str) -> String {
    format!("variables.cfg[?{}].orValue({ABSENT})", quoted(key))
}

/// A CEL string literal of `s`: JSON's escapes are CEL's, so any config value (a quote in a
/// readiness path, a sidecar name) stays one literal.
fn quoted(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

/// The candidates of a per-container setting for container `c`: its own annotation, the pod's,
/// the namespace's, the cluster's.
fn per_container(setting: Setting) -> Vec<String> {
    let key = format!("{PREFIX}{}", setting.name());
    vec![
        pod_annotation(&format!("'{key}.' + c.name")),
        pod_annotation(&quoted(&key)),
        namespace_annotation(&quoted(&key)),
        param(setting.name()),
    ]
}

fn pod_wide(setting: Setting) -> Vec<String> {
    let key = quoted(&format!("{PREFIX}{}", setting.name()));
    vec![
        pod_annotation(&key),
        namespace_annotation(&key),
        param(setting.name()),
    ]
}

/// The cluster's sidecar names: the ConfigMap's list, else the config file's default.
fn sidecar_names(default: &[String]) -> String {
    format!(
        "variables.cfg[?{}].orValue({}).split(',').map(n, n.trim()).filter(n, n != '')",
        quoted(params::SIDECARS),
        quoted(&default.join(","))
    )
}

/// The readiness rule for the container bound to `c` (engine::readiness), given its resolved
/// `path`, `port` and `scheme` expressions: `{'kind': 'upgrade'|'add'|'none', 'value': ..}`.
fn readiness(path: &str, port: &str, scheme: &str) -> String {
    let tcp = "c.?ports.orValue([]).filter(p, p.?protocol.orValue('TCP') == 'TCP')";
    let named = |test: &str| format!("{tcp}.filter(p, {test})");
    let guessed = format!(
        "[{}, {}, {tcp}].filter(l, l.size() > 0)",
        named("p.?name.orValue('') == 'http'"),
        named("p.?name.orValue('').startsWith('http-')"),
    );
    // The policy's port; a name must be one of the container's; else the one obvious port.
    let chosen = format!(
        "(type({port}) == int ? {port} \
          : {port} != '' ? ({tcp}.exists(p, p.?name.orValue('') == {port}) ? {port} : dyn(-1)) \
          : ({guessed}.size() > 0 && {guessed}[0].size() == 1 ? dyn({guessed}[0][0].containerPort) : dyn(-1)))"
    );
    let http = |port: &str| {
        format!("{{'path': dyn({path}), 'port': dyn({port}), 'scheme': dyn({scheme})}}")
    };
    let upgraded = format!(
        "(has(c.readinessProbe.tcpSocket.host) \
          ? {{'path': dyn({path}), 'port': dyn(c.readinessProbe.tcpSocket.port), 'scheme': dyn({scheme}), \
              'host': dyn(c.readinessProbe.tcpSocket.host)}} \
          : {})",
        http("c.readinessProbe.tcpSocket.port")
    );
    let derived = |probe: &str| {
        format!(
            "has(c.{probe}) && has(c.{probe}.httpGet) \
               ? {{'kind': dyn('add'), 'value': dyn({{'httpGet': dyn(c.{probe}.httpGet), 'periodSeconds': dyn(5)}})}} \
             : has(c.{probe}) && !has(c.{probe}.httpGet) && has(c.{probe}.grpc) \
               ? {{'kind': dyn('add'), 'value': dyn({{'grpc': dyn(c.{probe}.grpc), 'periodSeconds': dyn(5)}})}}"
        )
    };
    format!(
        "(has(c.readinessProbe) \
           ? ((!has(c.readinessProbe.httpGet) && !has(c.readinessProbe.grpc) \
               && !has(c.readinessProbe.exec) && has(c.readinessProbe.tcpSocket) && {path} != '') \
              ? {{'kind': dyn('upgrade'), 'value': dyn({upgraded})}} : {{'kind': dyn('none'), 'value': dyn(0)}}) \
         : {path} != '' \
           ? [{chosen}].map(port, port != -1 \
               ? {{'kind': dyn('add'), 'value': dyn({{'httpGet': dyn({}), 'periodSeconds': dyn(5)}})}} \
               : {{'kind': dyn('none'), 'value': dyn(0)}})[0] \
         : {} : {} : {{'kind': dyn('none'), 'value': dyn(0)}})",
        http("port"),
        derived("livenessProbe"),
        derived("startupProbe"),
    )
}

/// `(name, CEL)` of every variable, in order (each may use the ones before it); the namespace's
/// mode is its label `mode_label`. The same for every config: the cluster layer is `params`.
pub fn all(mode_label: &str) -> Vec<(&'static str, String)> {
    let d = Settings::default();
    let builtin = ClusterPolicy::default();
    let list = |names: &[String]| {
        let quoted: Vec<String> = names.iter().map(|n| quoted(n)).collect();
        format!("[{}]", quoted.join(", "))
    };
    let port_default = match &d.readiness_port {
        Some(crate::policy::PortRef::Number(n)) => format!("dyn({n})"),
        Some(crate::policy::PortRef::Name(n)) => format!("dyn({})", quoted(n)),
        None => "dyn('')".into(),
    };
    let mode_label = format!(
        "namespaceObject.metadata.?labels[?{}].orValue({ABSENT})",
        quoted(mode_label)
    );
    let per = |s: Setting, default: String| resolve(s, &per_container(s), &default);
    let waiter_port = format!(
        "({v}.matches(r'^[0-9]{{1,5}}$') ? int({v}) : {})",
        builtin.drain_waiter.port,
        v = param(params::WAITER_PORT)
    );
    let plan = format!(
        "object.spec.containers.transformList(i, c, !(c.name in variables.skip), {{\
           'i': dyn(i), 'name': dyn(c.name), \
           'sleep': dyn({sleep}), 'timeout': dyn({timeout}), 'action': dyn({action}), \
           'shell': dyn({shell}), \
           'lifecycle': dyn(has(c.lifecycle)), \
           'hook': dyn(has(c.lifecycle) && has(c.lifecycle.preStop)), \
           'own': dyn({own}), \
           'waiter': dyn(has(c.lifecycle) && has(c.lifecycle.preStop) && has(c.lifecycle.preStop.httpGet) \
              && c.lifecycle.preStop.httpGet.?path.orValue('') == {drain_path} \
              && c.lifecycle.preStop.httpGet.port == {port} && !has(c.lifecycle.preStop.httpGet.host)), \
           'probe': dyn([[dyn({path}), dyn({rport}), dyn({scheme})]].map(r, {probe})[0])\
         }})",
        sleep = per(Setting::PrestopSleep, d.prestop_sleep.to_string()),
        timeout = per(Setting::DrainTimeout, d.drain_timeout.to_string()),
        action = per(Setting::PrestopAction, quoted(d.prestop_action.as_str())),
        shell = per(Setting::ShellExec, d.shell_exec.to_string()),
        own = cel::existing_sleep("c"),
        drain_path = quoted(waiter::DRAIN_PATH),
        port = waiter_port,
        path = per(
            Setting::ReadinessPath,
            quoted(d.readiness_path.as_deref().unwrap_or_default())
        ),
        rport = per(Setting::ReadinessPort, port_default),
        scheme = per(
            Setting::ReadinessScheme,
            quoted(d.readiness_scheme.as_str())
        ),
        probe = readiness("r[0]", "r[1]", "r[2]"),
    );
    // grace::sidecar_drain: Linkerd's annotation (a duration, as sidecar-drain reads), else
    // the sidecar's own sleep, else the default.
    let shown = format!(
        "({own} > 0 ? {own} : {default})",
        own = cel::existing_sleep("c"),
        default = grace::SIDECAR_DRAIN
    );
    let sidecars = format!(
        "variables.sidecarDrain >= 0 ? variables.sidecarDrain \
         : object.spec.?initContainers.orValue([]).filter(c, c.?restartPolicy.orValue('') == 'Always' \
             && c.name != {waiter}).map(c, c.name == 'linkerd-proxy' ? {linkerd} : {shown}).sum()",
        waiter = quoted(waiter::NAME),
        linkerd = resolve(
            Setting::SidecarDrain,
            &[pod_annotation(&quoted(grace::LINKERD_WAIT))],
            &shown
        ),
    );
    // max-grace-period: a duration above zero, as the config file takes it.
    let cap = resolve(Setting::DrainMax, &[param(params::MAX_GRACE)], "-1");
    vec![
        // A binding without its ConfigMap is skipped by the apiserver (parameterNotFoundAction
        // Allow; seen on 1.37), so `params` is there; a ConfigMap may have no data.
        ("cfg", "params.?data.orValue({})".into()),
        ("pa", "object.metadata.?annotations.orValue({})".into()),
        (
            "na",
            "namespaceObject.metadata.?annotations.orValue({})".into(),
        ),
        (
            "mode",
            resolve(
                Setting::Mode,
                &[pod_annotation(&quoted(&format!("{PREFIX}mode")))],
                &resolve(Setting::Mode, &[mode_label], "'off'"),
            ),
        ),
        (
            "skipped",
            "variables.mode != 'enforce' || 'kubernetes.io/config.mirror' in variables.pa \
             || object.metadata.?ownerReferences.orValue([]).exists(r, r.kind == 'Job') \
             || object.spec.?restartPolicy.orValue('') in ['Never', 'OnFailure'] \
             || object.spec.containers.size() == 0"
                .into(),
        ),
        (
            "skip",
            format!(
                "{} + {}",
                resolve(
                    Setting::SkipContainers,
                    &pod_wide(Setting::SkipContainers),
                    &list(&d.skip_containers)
                ),
                sidecar_names(&builtin.sidecar_containers)
            ),
        ),
        ("plans", plan),
        (
            "sidecarDrain",
            resolve(
                Setting::SidecarDrain,
                &pod_wide(Setting::SidecarDrain),
                &d.sidecar_drain.map_or("-1".into(), |s| s.to_string()),
            ),
        ),
        ("sidecars", sidecars),
        (
            "required",
            format!(
                "variables.plans.size() == 0 ? -1 \
                 : variables.plans.map(p, (p.hook ? p.own : p.sleep) + p.timeout).max() \
                   + variables.sidecars + {}",
                grace::MARGIN
            ),
        ),
        (
            "current",
            format!(
                "object.spec.?terminationGracePeriodSeconds.orValue({})",
                grace::KUBERNETES_DEFAULT
            ),
        ),
        (
            "target",
            format!(
                "{cap} >= 0 && {cap} < variables.required ? {cap} : variables.required"
            ),
        ),
        (
            "raise",
            "variables.required >= 0 && variables.target > variables.current".into(),
        ),
        (
            "effective",
            "variables.raise ? variables.target : variables.current".into(),
        ),
        (
            "changed",
            "variables.plans.map(p, {'p': dyn(p), 'seconds': dyn( \
               !p.hook && p.sleep > 0 ? (p.sleep < variables.effective ? p.sleep : variables.effective) : 0)}) \
             .map(x, {'name': dyn(x.p.name), 'i': dyn(x.p.i), 'p': dyn(x.p), 'seconds': dyn(x.seconds), \
               'fields': dyn((x.seconds > 0 ? ['lifecycle.preStop'] : []) \
                 + (x.p.probe.kind != 'none' ? ['readinessProbe'] : []))}) \
             .filter(x, x.fields.size() > 0)"
                .into(),
        ),
        ("prev", super::ledger::previous(LEDGER_ANNOTATION)),
        ("prevOk", super::ledger::well_formed()),
        ("ledger", super::ledger::text()),
        ("declined", super::declines::cel()),
    ]
}
