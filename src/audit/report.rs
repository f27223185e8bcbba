//! What an audit found: one entry per workload, the drift, the namespaces; the exit rule.

use super::drift::{Escaped, NamespaceMode};
use super::manifests::InputError;
use serde::Serialize;
use zerodrop_core::engine::Change;
use zerodrop_core::findings::{Finding, Severity};
use zerodrop_core::policy::Mode;

/// Version of the JSON report schema (docs/audit.md); bumped on incompatible changes.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize)]
pub struct ChangeOut {
    #[serde(flatten)]
    pub change: Change,
    pub description: String,
}

/// The audit of one workload (or Pod).
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    #[serde(rename = "apiVersion")]
    pub api_version: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub mode: Mode,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    pub changes: Vec<ChangeOut>,
    pub findings: Vec<Finding>,
    /// JSON Patch against the whole object (not just its pod template).
    pub patch: json_patch::Patch,
    /// Where the object came from, for `--fix`.
    #[serde(skip)]
    pub origin: Option<(usize, Option<usize>)>,
}

impl Entry {
    pub fn would_change(&self) -> bool {
        self.skipped.is_none() && !self.patch.0.is_empty()
    }

    pub fn has_warning(&self) -> bool {
        self.findings
            .iter()
            .any(|f| f.severity == Severity::Warning)
    }

    pub fn title(&self) -> String {
        let ns = if self.namespace.is_empty() {
            "(default)"
        } else {
            &self.namespace
        };
        format!("{ns}/{}/{}", self.kind, self.name)
    }
}

/// Everything one audit run found.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub version: u32,
    pub workloads: Vec<Entry>,
    pub notes: Vec<InputError>,
    pub errors: Vec<InputError>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub drift: Vec<Escaped>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<NamespaceMode>,
}

/// What makes `zerodrop audit` exit 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FailOn {
    None,
    Warning,
    Change,
}

impl Report {
    pub fn trips(&self, fail_on: FailOn) -> bool {
        let change = self.workloads.iter().any(Entry::would_change) || !self.drift.is_empty();
        match fail_on {
            FailOn::None => false,
            FailOn::Change => change,
            FailOn::Warning => change || self.workloads.iter().any(Entry::has_warning),
        }
    }
}
