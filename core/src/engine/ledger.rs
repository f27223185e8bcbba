//! Ledger: the `zerodrop.dev/injected` annotation records which fields zerodrop changed.

use crate::policy::LEDGER_ANNOTATION;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

/// Bumped when the meaning of the recorded entries changes; the cluster audit calls older
/// versions outdated.
pub const VERSION: u32 = 1;

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
    /// (reinvocation after another webhook added a container, for instance).
    pub fn stamp(mut self, obj: &mut Value) {
        if let Some(previous) = Ledger::read(obj) {
            for (name, fields) in previous.containers {
                self.containers.entry(name).or_default().extend(fields);
            }
            self.pod.extend(previous.pod);
        }
        self.v = VERSION;
        let Ok(text) = serde_json::to_string(&self) else {
            return;
        };
        let Some(root) = obj.as_object_mut() else {
            return;
        };
        let meta = root.entry("metadata").or_insert_with(|| json!({}));
        if !meta.is_object() {
            *meta = json!({});
        }
        let Some(meta) = meta.as_object_mut() else {
            return;
        };
        let annotations = meta.entry("annotations").or_insert_with(|| json!({}));
        if !annotations.is_object() {
            *annotations = json!({});
        }
        if let Some(a) = annotations.as_object_mut() {
            a.insert(LEDGER_ANNOTATION.into(), Value::String(text));
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
        first.stamp(&mut pod);
        let mut second = Ledger::default();
        second.container("late", "lifecycle.preStop");
        second.pod.insert("terminationGracePeriodSeconds".into());
        second.stamp(&mut pod);
        let ledger = Ledger::read(&pod).unwrap();
        assert_eq!(ledger.v, VERSION);
        assert_eq!(
            ledger.containers.keys().collect::<Vec<_>>(),
            ["late", "web"]
        );
        assert!(ledger.pod.contains("terminationGracePeriodSeconds"));
    }
}
