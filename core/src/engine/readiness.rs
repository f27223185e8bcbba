//! Readiness: safe defaulting only. Never invents an exec probe, never guesses a path.

use super::pod;
use crate::findings::{Code, Finding};
use crate::policy::{PortRef, Settings};
use serde_json::{Map, Value, json};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// httpGet probe added from the readiness-path policy.
    Added { path: String, port: String },
    /// tcpSocket probe replaced by httpGet on the same port.
    Upgraded { path: String, port: String },
    /// Copied from the container's own httpGet/grpc liveness or startup probe.
    Derived { from: &'static str },
}

impl Change {
    pub fn describe(&self) -> String {
        match self {
            Change::Added { path, port } => {
                format!("readiness probe added: GET {path} on port {port}")
            }
            Change::Upgraded { path, port } => {
                format!("readiness probe upgraded tcp -> GET {path} on port {port}")
            }
            Change::Derived { from } => format!("readiness probe derived from {from}"),
        }
    }
}

/// The rule for one container: what changes and the new `readinessProbe`.
pub fn apply(
    container: &Value,
    s: &Settings,
    findings: &mut Vec<Finding>,
) -> Option<(Change, Value)> {
    let name = pod::name(container);
    match pod::field(container, "readinessProbe").map(pod::probe_handler) {
        Some(Some("tcpSocket")) => upgrade_tcp(container, s, name, findings),
        // An existing httpGet, grpc or exec probe (or one we cannot read) is the app's own call.
        Some(_) => None,
        None => add_missing(container, s, name, findings),
    }
}

fn upgrade_tcp(
    container: &Value,
    s: &Settings,
    name: &str,
    findings: &mut Vec<Finding>,
) -> Option<(Change, Value)> {
    let port = pod::at(container, &["readinessProbe", "tcpSocket", "port"])
        .filter(|p| !p.is_null())
        .cloned();
    let (Some(path), Some(port)) = (&s.readiness_path, port) else {
        findings.push(Finding::new(
            Code::TcpReadiness,
            Some(name),
            format!("container {name}: tcpSocket readiness only proves the port is open; set readiness-path"),
            "zerodrop.dev/readiness-path",
        ));
        return None;
    };
    let old = pod::get(container, "readinessProbe")?.as_object()?;
    let mut http = http_get(path, port.clone(), s);
    if let (Some(host), Some(h)) = (
        pod::at(container, &["readinessProbe", "tcpSocket", "host"]),
        http.as_object_mut(),
    ) {
        h.insert("host".into(), host.clone());
    }
    // The other fields keep their order (and the patch stays minimal); tcpSocket is not copied.
    let mut probe: Map<String, Value> = old
        .iter()
        .filter(|(k, _)| *k != "tcpSocket")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    probe.insert("httpGet".into(), http);
    let change = Change::Upgraded {
        path: path.clone(),
        port: show(&port),
    };
    Some((change, Value::Object(probe)))
}

fn add_missing(
    container: &Value,
    s: &Settings,
    name: &str,
    findings: &mut Vec<Finding>,
) -> Option<(Change, Value)> {
    if let Some(path) = &s.readiness_path {
        let port = match probe_port(container, s.readiness_port.as_ref(), name) {
            Ok(port) => port,
            Err(finding) => {
                findings.push(finding);
                return None;
            }
        };
        let probe = json!({ "httpGet": http_get(path, port.clone(), s), "periodSeconds": 5 });
        let change = Change::Added {
            path: path.clone(),
            port: show(&port),
        };
        return Some((change, probe));
    }
    for from in ["livenessProbe", "startupProbe"] {
        let Some(probe) = pod::field(container, from) else {
            continue;
        };
        let Some(handler @ ("httpGet" | "grpc")) = pod::probe_handler(probe) else {
            continue;
        };
        let mut derived = Map::new();
        derived.insert(handler.into(), pod::get(probe, handler)?.clone());
        derived.insert("periodSeconds".into(), json!(5));
        return Some((Change::Derived { from }, Value::Object(derived)));
    }
    if !pod::tcp_ports(container).is_empty() {
        findings.push(Finding::new(
            Code::NoReadiness,
            Some(name),
            format!("container {name} has no readiness probe: it gets traffic before it is ready"),
            "zerodrop.dev/readiness-path",
        ));
    }
    None
}

/// The port for a new probe: the policy's, else a port named http/http-*, else the only TCP port.
fn probe_port(container: &Value, wanted: Option<&PortRef>, name: &str) -> Result<Value, Finding> {
    let ports = pod::tcp_ports(container);
    match wanted {
        Some(PortRef::Number(n)) => return Ok(json!(n)),
        Some(PortRef::Name(port)) if ports.iter().any(|(_, n)| *n == Some(port.as_str())) => {
            return Ok(json!(port));
        }
        Some(PortRef::Name(port)) => {
            // A probe on a port that does not exist never succeeds and would stall the rollout.
            return Err(Finding::new(
                Code::UnknownReadinessPort,
                Some(name),
                format!("container {name} has no port named {port}; readiness probe not added"),
                "zerodrop.dev/readiness-port",
            ));
        }
        None => {}
    }
    let exact: Vec<u16> = ports
        .iter()
        .filter(|(_, n)| *n == Some("http"))
        .map(|(p, _)| *p)
        .collect();
    let prefixed: Vec<u16> = ports
        .iter()
        .filter(|(_, n)| n.is_some_and(|n| n.starts_with("http-")))
        .map(|(p, _)| *p)
        .collect();
    let only: Vec<u16> = ports.iter().map(|(p, _)| *p).collect();
    for candidates in [exact, prefixed, only] {
        match candidates.as_slice() {
            [one] => return Ok(json!(one)),
            [] => continue,
            _ => break,
        }
    }
    Err(Finding::new(
        Code::AmbiguousReadinessPort,
        Some(name),
        format!("container {name}: cannot tell which port serves readiness; set readiness-port"),
        "zerodrop.dev/readiness-port",
    ))
}

fn http_get(path: &str, port: Value, s: &Settings) -> Value {
    json!({ "path": path, "port": port, "scheme": s.readiness_scheme.as_str() })
}

fn show(port: &Value) -> String {
    match port {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
