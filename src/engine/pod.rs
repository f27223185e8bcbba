//! Read-only accessors over a Pod or pod template as raw JSON, so unknown fields survive.

use serde_json::{Map, Value};

/// `obj.pointer("/a/b")` without parsing and unescaping a pointer string (two allocations per
/// token): the engine's paths are fixed field names.
pub fn at<'a>(obj: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(obj, |v, key| v.get(key))
}

pub fn annotations(obj: &Value) -> impl Iterator<Item = (&str, &str)> {
    at(obj, &["metadata", "annotations"])
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.as_str(), v.as_str()?)))
}

pub fn annotation<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    at(obj, &["metadata", "annotations"])?.get(key)?.as_str()
}

pub fn containers(obj: &Value) -> &[Value] {
    at(obj, &["spec", "containers"])
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

pub fn name(container: &Value) -> &str {
    container
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// A present, non-null field (`lifecycle: null` counts as absent, as the apiserver treats it).
pub fn field<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.get(key).filter(|x| !x.is_null())
}

/// TCP ports of a container: (number, name).
pub fn tcp_ports(container: &Value) -> Vec<(u16, Option<&str>)> {
    let Some(ports) = container.get("ports").and_then(Value::as_array) else {
        return Vec::new();
    };
    ports
        .iter()
        .filter(|p| {
            p.get("protocol")
                .and_then(Value::as_str)
                .is_none_or(|proto| proto == "TCP")
        })
        .filter_map(|p| {
            let number = p
                .get("containerPort")?
                .as_u64()
                .and_then(|n| u16::try_from(n).ok())?;
            Some((number, p.get("name").and_then(Value::as_str)))
        })
        .collect()
}

/// Which handler a probe uses: httpGet, grpc, exec or tcpSocket.
pub fn probe_handler(probe: &Value) -> Option<&'static str> {
    ["httpGet", "grpc", "exec", "tcpSocket"]
        .into_iter()
        .find(|h| field(probe, h).is_some())
}

/// command followed by args, when all are strings.
pub fn argv(container: &Value) -> Vec<(&'static str, usize, &str)> {
    let mut out = Vec::new();
    for key in ["command", "args"] {
        if let Some(list) = container.get(key).and_then(Value::as_array) {
            for (i, item) in list.iter().enumerate() {
                if let Some(s) = item.as_str() {
                    out.push((key, i, s));
                }
            }
        }
    }
    out
}

/// Container fields the rules read or write; everything else is never copied or compared.
pub const CONTAINER_FIELDS: [&str; 8] = [
    "name",
    "ports",
    "readinessProbe",
    "livenessProbe",
    "startupProbe",
    "lifecycle",
    "command",
    "args",
];

/// The part of a pod the engine works on: annotations, grace period and the rule fields of
/// each container, at their original paths. Diffing two projections gives the same paths as
/// diffing whole pods, while the bulk of the object (env, volumes, status...) is never copied
/// and cannot be touched.
pub fn projection(obj: &Value) -> Value {
    fn pick(from: &Value, keys: &[&str]) -> Value {
        let Some(map) = from.as_object() else {
            return from.clone();
        };
        let picked: Map<String, Value> = keys
            .iter()
            .filter_map(|k| map.get(*k).map(|v| ((*k).to_owned(), v.clone())))
            .collect();
        Value::Object(picked)
    }
    let mut out = Map::new();
    if let Some(meta) = obj.get("metadata") {
        out.insert("metadata".into(), pick(meta, &["annotations"]));
    }
    if let Some(spec) = obj.get("spec") {
        let mut s = pick(spec, &["terminationGracePeriodSeconds"]);
        if let (Some(s), Some(list)) = (s.as_object_mut(), spec.get("containers")) {
            let projected = match list.as_array() {
                Some(items) => {
                    Value::Array(items.iter().map(|c| pick(c, &CONTAINER_FIELDS)).collect())
                }
                None => list.clone(),
            };
            s.insert("containers".into(), projected);
        }
        out.insert("spec".into(), s);
    }
    Value::Object(out)
}
