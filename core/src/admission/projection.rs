//! Decoding only the parts of the admitted object the engine reads: everything else (env,
//! volumes, managedFields, status...) is skipped by the parser instead of being built into a
//! tree. Paths and array indices are kept, so patches computed on it apply to the object.

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use std::fmt;
use std::sync::Arc;

/// What to keep of a JSON value.
#[derive(Debug)]
pub enum Keep {
    All,
    /// For an object: these fields (others are skipped). Other JSON types are kept as they are.
    Fields(&'static [(&'static str, Keep)]),
    /// For an array: every element, each kept like this.
    Each(&'static Keep),
}

/// Every container field a rule reads (core/tests/engine_props.rs checks that evaluating this
/// projection decides exactly what evaluating the whole object does).
const CONTAINER: Keep = Keep::Fields(&[
    ("name", Keep::All),
    ("ports", Keep::All),
    ("readinessProbe", Keep::All),
    ("livenessProbe", Keep::All),
    ("startupProbe", Keep::All),
    ("lifecycle", Keep::All),
    ("command", Keep::All),
    ("args", Keep::All),
    // The image facts are looked up by it.
    ("image", Keep::All),
]);
const METADATA: Keep = Keep::Fields(&[
    ("name", Keep::All),
    ("generateName", Keep::All),
    ("namespace", Keep::All),
    ("annotations", Keep::All),
    // What routes to the pod is looked up by them (paths::PathIndex).
    ("labels", Keep::All),
    ("ownerReferences", Keep::All),
]);
const TEMPLATE: Keep = Keep::Fields(&[("metadata", METADATA), ("spec", POD_SPEC)]);
const POD_SPEC: Keep = Keep::Fields(&[
    ("restartPolicy", Keep::All),
    ("terminationGracePeriodSeconds", Keep::All),
    ("containers", Keep::Each(&CONTAINER)),
    ("nodeSelector", Keep::All),
    // The adaptive drain: its waiter, and the pods it cannot serve.
    ("initContainers", Keep::All),
    ("hostNetwork", Keep::All),
    ("os", Keep::All),
    // Who pulls the images (admission::Puller).
    ("imagePullSecrets", Keep::All),
    ("serviceAccountName", Keep::All),
    ("serviceAccount", Keep::All),
]);
/// A Pod, or a workload with its pod template (CronJobs one level deeper).
pub const OBJECT: Keep = Keep::Fields(&[
    ("apiVersion", Keep::All),
    ("kind", Keep::All),
    ("metadata", METADATA),
    (
        "spec",
        Keep::Fields(&[
            ("restartPolicy", Keep::All),
            ("terminationGracePeriodSeconds", Keep::All),
            ("containers", Keep::Each(&CONTAINER)),
            ("nodeSelector", Keep::All),
            ("initContainers", Keep::All),
            ("hostNetwork", Keep::All),
            ("os", Keep::All),
            ("imagePullSecrets", Keep::All),
            ("template", TEMPLATE),
            (
                "jobTemplate",
                Keep::Fields(&[("spec", Keep::Fields(&[("template", TEMPLATE)]))]),
            ),
        ]),
    ),
]);

/// serde `deserialize_with` for the admitted object; shared, so the decision cache keeps it
/// without a copy.
pub fn object<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Arc<Value>>, D::Error> {
    let value = (&OBJECT).deserialize(d)?;
    Ok((!value.is_null()).then(|| Arc::new(value)))
}

impl<'de> DeserializeSeed<'de> for &'static Keep {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        match self {
            Keep::All => serde::Deserialize::deserialize(d),
            _ => d.deserialize_any(Projector(self)),
        }
    }
}

struct Projector(&'static Keep);

impl<'de> Visitor<'de> for Projector {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let fields = match self.0 {
            Keep::Fields(f) => *f,
            _ => &[],
        };
        let mut out = Map::new();
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match fields.iter().find(|(name, _)| *name == key) {
                Some((_, keep)) => {
                    let v = map.next_value_seed(keep)?;
                    out.insert(key.into_owned(), v);
                }
                // A map under Each/All never reaches here; unknown fields are skipped unbuilt.
                None if matches!(self.0, Keep::Fields(_)) => {
                    map.next_value::<IgnoredAny>()?;
                }
                None => {
                    let v = map.next_value::<Value>()?;
                    out.insert(key.into_owned(), v);
                }
            }
        }
        Ok(Value::Object(out))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let element: &'static Keep = match self.0 {
            Keep::Each(k) => k,
            _ => &Keep::All,
        };
        let mut out = Vec::new();
        while let Some(v) = seq.next_element_seed(element)? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keeps_rule_fields_at_their_paths_and_drops_the_rest() {
        let pod = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": { "name": "p", "annotations": { "a/b": "c" }, "managedFields": [{ "x": 1 }], "labels": { "l": "v" } },
            "spec": { "containers": [
                { "name": "a", "image": "i", "env": [{ "name": "E", "value": "v" }], "ports": [{ "containerPort": 80 }] },
                { "name": "b", "lifecycle": { "preStop": { "sleep": { "seconds": 3 } } } }
            ], "volumes": [{ "name": "v" }], "terminationGracePeriodSeconds": 10 },
            "status": { "phase": "Pending" }
        });
        let text = pod.to_string();
        let mut de = serde_json::Deserializer::from_str(&text);
        let got = object(&mut de).unwrap().unwrap();
        assert_eq!(
            *got,
            json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": { "name": "p", "annotations": { "a/b": "c" }, "labels": { "l": "v" } },
                "spec": { "containers": [
                    { "name": "a", "image": "i", "ports": [{ "containerPort": 80 }] },
                    { "name": "b", "lifecycle": { "preStop": { "sleep": { "seconds": 3 } } } }
                ], "terminationGracePeriodSeconds": 10 }
            })
        );
    }

    #[test]
    fn odd_shapes_are_kept_not_rejected() {
        for v in [
            json!(null),
            json!(5),
            json!({ "spec": null }),
            json!({ "spec": { "containers": "x" } }),
            json!({ "metadata": [1, 2] }),
        ] {
            let text = v.to_string();
            let mut de = serde_json::Deserializer::from_str(&text);
            let got = object(&mut de).unwrap();
            assert_eq!(got.map_or(Value::Null, |o| (*o).clone()), v);
        }
    }
}
