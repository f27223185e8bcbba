//! One engine over objects: a workload (or Pod) to its audit entry, manifests to a report.

use super::manifests::{self, Document};
use super::report::{ChangeOut, Entry, Report, SCHEMA_VERSION};
use serde_json::Value;
use zerodrop_core::engine::image::Images;
use zerodrop_core::engine::{Engine, Facts, Workload, pod};
use zerodrop_core::paths::PathIndex;
use zerodrop_core::policy::Layer;

/// Evaluates one object; `None` when it is not a workload zerodrop knows.
pub fn evaluate(engine: &Engine, obj: &Value, namespace: &Layer) -> Option<Entry> {
    evaluate_with(engine, obj, namespace, Facts::default())
}

/// The same, with what is known of the containers' images and of what routes to its pods.
pub fn evaluate_with(
    engine: &Engine,
    obj: &Value,
    namespace: &Layer,
    facts: Facts<'_>,
) -> Option<Entry> {
    let kind = obj.get("kind")?.as_str()?;
    let workload = Workload::from_kind(kind)?;
    let meta = |k: &str| {
        obj.pointer(&format!("/metadata/{k}"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let template = pod::at(obj, workload.template_path()).unwrap_or(&Value::Null);
    let decision = engine.evaluate_with(template, workload, namespace, facts);
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
        patch: zerodrop_core::engine::patch::under(&decision.patch, workload.template_path()),
        origin: None,
    })
}

/// The Services, Ingresses and routes among the documents (`helm template` renders a whole
/// release); `None` when there are none: the path is unknown, not empty.
pub fn paths_of(docs: &[Document]) -> Option<PathIndex> {
    let mut index = PathIndex::new();
    let mut any = false;
    for value in docs.iter().filter_map(|d| d.value.as_ref()) {
        for (_, obj) in manifests::objects(value) {
            any |= index.add_object(obj);
        }
    }
    any.then_some(index)
}

/// Audits parsed manifests: every workload in every document, with its file and line, and the
/// path the set's own Services and fronts give its pods.
pub fn audit_documents(
    engine: &Engine,
    docs: &[Document],
    namespace: &Layer,
    images: &Images,
) -> Report {
    let routes = paths_of(docs);
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
            let paths = routes.as_ref().and_then(|routes| {
                let kind = obj.get("kind").and_then(Value::as_str)?;
                let template = pod::at(obj, Workload::from_kind(kind)?.template_path())?;
                let ns = pod::at(obj, &["metadata", "namespace"]).and_then(Value::as_str);
                let labels = pod::at(template, &["metadata", "labels"]).and_then(Value::as_object);
                Some(routes.lookup(ns.unwrap_or_default(), labels))
            });
            let facts = Facts {
                images,
                paths: paths.as_ref(),
            };
            if let Some(mut entry) = evaluate_with(engine, obj, namespace, facts) {
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
pub fn images_of(docs: &[Document]) -> Vec<(String, crate::images::Platform)> {
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
            let Some(template) = zerodrop_core::engine::pod::at(obj, workload.template_path())
            else {
                continue;
            };
            let (images, platform) = zerodrop_core::engine::image::images_of(template);
            for image in images {
                if !out.iter().any(|(i, _)| i == image) {
                    out.push((image.to_owned(), platform.clone()));
                }
            }
        }
    }
    out
}
