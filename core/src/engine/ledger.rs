//! Ledger: the `zerodrop.dev/injected` annotation records which fields zerodrop changed.

use crate::policy::LEDGER_ANNOTATION;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

/// Bumped when the meaning of the recorded entries changes; the cluster audit calls older
/// versions outdated.
pub const VERSION: u32 = 1;

/// The apiserver refuses an object whose annotations (keys + values) exceed 256 KiB in total.
pub const ANNOTATIONS_LIMIT: usize = 256 * 1024;
/// A ledger above this (hundreds of containers) is written per field, not per container.
pub const MAX_LEDGER: usize = 8 * 1024;
/// The container name of a collapsed ledger: "these fields, in the containers that needed them".
pub const ALL_CONTAINERS: &str = "*";

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ledger {
    pub v: u32,
    /// Container name -> changed fields (`lifecycle.preStop`, `readinessProbe`, `command`, `args`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub containers: BTreeMap<String, BTreeSet<String>>,
    /// Pod-level changed fields (`terminationGracePeriodSeconds`).
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub pod: BTreeSet<String>,
}

impl Ledger {
    pub fn read(obj: &Value) -> Option<Ledger> {
        let raw = super::pod::annotation(obj, LEDGER_ANNOTATION)?;
        serde_json::from_str(raw).ok()
    }

    pub fn is_empty(&self) -> bool {
        self.containers.is_empty() && self.pod.is_empty()
    }

    pub fn container(&mut self, name: &str, field: &str) {
        // Called for every change: allocate only what is new.
        let fields = match self.containers.get_mut(name) {
            Some(fields) => fields,
            None => self.containers.entry(name.to_owned()).or_default(),
        };
        if !fields.contains(field) {
            fields.insert(field.to_owned());
        }
    }

    /// Writes the ledger into `obj`, merged with what an earlier pass recorded
    /// (reinvocation after another webhook added a container, for instance). `others` is the
    /// size of the object's other annotations: the ledger is collapsed when it is large, and
    /// left out (returns false) rather than push the annotations past the apiserver's limit.
    /// Nothing depends on it for correctness: every rule looks at the fields themselves.
    pub fn stamp(mut self, obj: &mut Value, others: usize) -> bool {
        if let Some(previous) = Ledger::read(obj) {
            for (name, fields) in previous.containers {
                self.containers.entry(name).or_default().extend(fields);
            }
            self.pod.extend(previous.pod);
        }
        self.v = VERSION;
        let Ok(mut text) = serde_json::to_string(&self) else {
            return false;
        };
        if text.len() > MAX_LEDGER {
            let fields = std::mem::take(&mut self.containers)
                .into_values()
                .flatten()
                .collect();
            self.containers.insert(ALL_CONTAINERS.to_owned(), fields);
            let Ok(collapsed) = serde_json::to_string(&self) else {
                return false;
            };
            text = collapsed;
        }
        if others + LEDGER_ANNOTATION.len() + text.len() > ANNOTATIONS_LIMIT {
            return false;
        }
        let Some(root) = obj.as_object_mut() else {
            return false;
        };
        let meta = root.entry("metadata").or_insert_with(|| json!({}));
        if !meta.is_object() {
            *meta = json!({});
        }
        let Some(meta) = meta.as_object_mut() else {
            return false;
        };
        let annotations = meta.entry("annotations").or_insert_with(|| json!({}));
        if !annotations.is_object() {
            *annotations = json!({});
        }
        match annotations.as_object_mut() {
            Some(a) => {
                a.insert(LEDGER_ANNOTATION.into(), Value::String(text));
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_and_merges_with_an_earlier_pass() {
        let mut pod = json!({"metadata": {"name": "p"}});
        let mut first = Ledger::default();
        first.container("web", "lifecycle.preStop");
        assert!(first.stamp(&mut pod, 0));
        let mut second = Ledger::default();
        second.container("late", "lifecycle.preStop");
        second.pod.insert("terminationGracePeriodSeconds".into());
        assert!(second.stamp(&mut pod, 0));
        let ledger = Ledger::read(&pod).unwrap();
        assert_eq!(ledger.v, VERSION);
        assert_eq!(
            ledger.containers.keys().collect::<Vec<_>>(),
            ["late", "web"]
        );
        assert!(ledger.pod.contains("terminationGracePeriodSeconds"));
    }

    #[test]
    fn a_large_ledger_is_collapsed_and_never_breaks_the_annotation_limit() {
        let mut ledger = Ledger::default();
        for i in 0..1000 {
            ledger.container(&format!("container-{i:04}"), "lifecycle.preStop");
        }
        ledger.container("container-0001", "readinessProbe");
        let mut pod = json!({"metadata": {}});
        assert!(ledger.clone().stamp(&mut pod, 0));
        let text = super::super::pod::annotation(&pod, LEDGER_ANNOTATION).unwrap();
        assert!(text.len() <= MAX_LEDGER, "{} bytes", text.len());
        let read = Ledger::read(&pod).unwrap();
        assert_eq!(read.containers.keys().collect::<Vec<_>>(), [ALL_CONTAINERS]);
        assert_eq!(read.containers[ALL_CONTAINERS].len(), 2);

        // Annotations already near the limit: no ledger at all rather than a refused pod.
        let mut full = json!({"metadata": {}});
        assert!(!ledger.stamp(&mut full, ANNOTATIONS_LIMIT - 10));
        assert!(Ledger::read(&full).is_none());
    }
}
