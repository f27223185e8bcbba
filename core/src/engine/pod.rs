//! Read-only accessors over a Pod or pod template as raw JSON, so unknown fields survive.

use serde_json::{Map, Value};

/// `v.get(key)` for the engine's reads: see `find`.
pub fn get<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    find(v.as_object()?, key).map(|(_, v)| v)
}

/// A map's entry for `key`. serde_json's ordered map hashes every lookup with SipHash; the
/// objects rules read (a container, a probe, a port) have a handful of fields, where comparing
/// keys in order is several times cheaper.
pub fn find<'a>(map: &'a Map<String, Value>, key: &str) -> Option<(&'a String, &'a Value)> {
    if map.len() <= SCAN {
        map.iter().find(|(k, _)| *k == key)
    } else {
        map.get_key_value(key)
    }
}

/// Above this many fields a hashed lookup wins (measured with benches/admission.rs).
const SCAN: usize = 16;

/// `obj.pointer("/a/b")` without parsing and unescaping a pointer string (two allocations per
/// token): the engine's paths are fixed field names.
pub fn at<'a>(obj: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(obj, |v, key| get(v, key))
}

pub fn annotations(obj: &Value) -> impl Iterator<Item = (&str, &str)> {
    at(obj, &["metadata", "annotations"])
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.as_str(), v.as_str()?)))
}

pub fn annotation<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    get(at(obj, &["metadata", "annotations"])?, key)?.as_str()
}

pub fn containers(obj: &Value) -> &[Value] {
    at(obj, &["spec", "containers"])
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

pub fn name(container: &Value) -> &str {
    get(container, "name")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// A present, non-null field (`lifecycle: null` counts as absent, as the apiserver treats it).
pub fn field<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    get(v, key).filter(|x| !x.is_null())
}

/// TCP ports of a container: (number, name).
pub fn tcp_ports(container: &Value) -> Vec<(u16, Option<&str>)> {
    let Some(ports) = get(container, "ports").and_then(Value::as_array) else {
        return Vec::new();
    };
    ports
        .iter()
        .filter(|p| {
            get(p, "protocol")
                .and_then(Value::as_str)
                .is_none_or(|proto| proto == "TCP")
        })
        .filter_map(|p| {
            let number = get(p, "containerPort")?
                .as_u64()
                .and_then(|n| u16::try_from(n).ok())?;
            Some((number, get(p, "name").and_then(Value::as_str)))
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
        if let Some(list) = get(container, key).and_then(Value::as_array) {
            for (i, item) in list.iter().enumerate() {
                if let Some(s) = item.as_str() {
                    out.push((key, i, s));
                }
            }
        }
    }
    out
}

/// A copy of `obj` holding only what lies along `paths`: each object on the way with just the
/// next key, the value at the end whole. Diffing it against a changed copy gives the same
/// operations as diffing whole objects, as long as only those paths change.
pub fn sparse(obj: &Value, paths: &[&[&str]]) -> Value {
    let mut out = match obj {
        Value::Object(_) => Value::Object(Map::new()),
        other => return other.clone(),
    };
    for path in paths {
        let (mut from, mut to) = (obj, &mut out);
        for (depth, key) in path.iter().enumerate() {
            let (Some(src), Some(dst)) = (get(from, key), to.as_object_mut()) else {
                break;
            };
            let last = depth + 1 == path.len() || !src.is_object();
            let copy = if last {
                src.clone()
            } else {
                Value::Object(Map::new())
            };
            to = dst.entry(*key).or_insert(copy);
            from = src;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sparse_keeps_each_path_and_where_it_ends() {
        let pod = json!({
            "metadata": { "name": "p", "annotations": { "a": "1", "b": "2" } },
            "spec": { "containers": [], "terminationGracePeriodSeconds": 9 }
        });
        assert_eq!(
            sparse(&pod, &[&["metadata", "annotations", "b"], &["spec", "x"]]),
            json!({ "metadata": { "annotations": { "b": "2" } }, "spec": {} })
        );
        // Missing or non-object steps end the path there, so a diff adds the whole branch.
        assert_eq!(
            sparse(
                &json!({ "metadata": "odd" }),
                &[&["metadata", "annotations"], &["spec"]]
            ),
            json!({ "metadata": "odd" })
        );
        assert_eq!(sparse(&json!(5), &[&["spec"]]), json!(5));
    }
}
