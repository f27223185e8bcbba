//! Dry-run policy audits: what zerodrop would do, over manifests or a live cluster, through
//! the very engine the webhook uses.

pub mod cluster;
pub mod fix;
pub mod images;
pub mod listing;
pub mod manifests;
pub mod output;
pub mod policy_report;
pub mod sarif;

use crate::engine::image::Images;
use crate::engine::{Change, Engine, Workload};
use crate::findings::{Finding, Severity};
use crate::policy::{Layer, Mode};
use serde::Serialize;
use serde_json::Value;

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

/// Evaluates one object; `None` when it is not a workload zerodrop knows.
pub fn evaluate(engine: &Engine, obj: &Value, namespace: &Layer) -> Option<Entry> {
    evaluate_with(engine, obj, namespace, &Images::new())
}

/// The same, with what is known of the containers' images.
pub fn evaluate_with(
    engine: &Engine,
    obj: &Value,
    namespace: &Layer,
    images: &Images,
) -> Option<Entry> {
    let kind = obj.get("kind")?.as_str()?;
    let workload = Workload::from_kind(kind)?;
    let meta = |k: &str| {
        obj.pointer(&format!("/metadata/{k}"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let template = crate::engine::pod::at(obj, workload.template_path()).unwrap_or(&Value::Null);
    let decision = engine.evaluate_with(template, workload, namespace, images);
    Some(Entry {
        file: None,
        line: None,
        api_version: obj
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        kind: kind.to_owned(),
        namespace: meta("namespace"),
        name: meta("name"),
        mode: decision.mode,
        skipped: decision.skipped.as_ref().map(|s| s.describe()),
        changes: decision
            .changes
            .iter()
            .map(|c| ChangeOut {
                change: c.clone(),
                description: c.to_string(),
            })
            .collect(),
        findings: decision.findings,
        patch: crate::engine::patch::under(&decision.patch, workload.template_path()),
        origin: None,
    })
}

/// Everything one audit run found.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub version: u32,
    pub workloads: Vec<Entry>,
    pub notes: Vec<manifests::InputError>,
    pub errors: Vec<manifests::InputError>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub drift: Vec<cluster::Escaped>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<cluster::NamespaceMode>,
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

/// Audits parsed manifests: every workload in every document, with its file and line.
pub fn audit_documents(
    engine: &Engine,
    docs: &[manifests::Document],
    namespace: &Layer,
    images: &Images,
) -> Report {
    let mut report = Report {
        version: SCHEMA_VERSION,
        ..Report::default()
    };
    for (index, doc) in docs.iter().enumerate() {
        let Some(value) = &doc.value else { continue };
        let is_object = value.get("apiVersion").is_some() && value.get("kind").is_some();
        if !is_object {
            report.notes.push(manifests::InputError {
                file: doc.file.clone(),
                line: doc.line,
                message: "not a Kubernetes object (no apiVersion/kind); skipped".into(),
            });
            continue;
        }
        for (item, obj) in manifests::objects(value) {
            if let Some(mut entry) = evaluate_with(engine, obj, namespace, images) {
                entry.file = Some(doc.file.clone());
                entry.line = Some(doc.line);
                entry.origin = Some((index, item));
                report.workloads.push(entry);
            }
        }
    }
    report
}

/// The images the pod templates of `docs` run, with the platform their node selector asks for.
pub fn images_of(docs: &[manifests::Document]) -> Vec<(String, crate::images::Platform)> {
    let mut out = Vec::new();
    for doc in docs {
        let Some(value) = &doc.value else { continue };
        for (_, obj) in manifests::objects(value) {
            let Some(workload) = obj
                .get("kind")
                .and_then(Value::as_str)
                .and_then(Workload::from_kind)
            else {
                continue;
            };
            let Some(template) = crate::engine::pod::at(obj, workload.template_path()) else {
                continue;
            };
            let (images, platform) = crate::engine::image::images_of(template);
            for image in images {
                if !out.iter().any(|(i, _)| i == image) {
                    out.push((image.to_owned(), platform.clone()));
                }
            }
        }
    }
    out
}
