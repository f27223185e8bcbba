//! `--fix`: the manifests with zerodrop's changes applied, in order; other documents verbatim.

use super::manifests::{Document, Format};
use super::report::Report;
use serde_json::Value;

/// The fixed stream for each input file, in input order: `(file, text)`.
pub fn fixed(docs: &[Document], report: &Report) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for (index, doc) in docs.iter().enumerate() {
        let text = fixed_document(index, doc, report).unwrap_or_else(|| doc.text.clone());
        match out.last_mut() {
            Some((file, acc)) if *file == doc.file => acc.push_str(&text),
            _ => out.push((doc.file.clone(), text)),
        }
    }
    out
}

fn fixed_document(index: usize, doc: &Document, report: &Report) -> Option<String> {
    let mut value: Value = doc.value.clone()?;
    let mut changed = false;
    for entry in report.workloads.iter().filter(|e| e.would_change()) {
        let Some((i, item)) = entry.origin else {
            continue;
        };
        if i != index {
            continue;
        }
        let patch = match item {
            Some(n) => {
                zerodrop_core::engine::patch::under(&entry.patch, &["items", &n.to_string()])
            }
            None => entry.patch.clone(),
        };
        json_patch::patch(&mut value, &patch).ok()?;
        changed = true;
    }
    if !changed {
        return None;
    }
    match doc.format {
        Format::Json => serde_json::to_string_pretty(&value).ok().map(|t| t + "\n"),
        Format::Yaml => {
            let body = serde_yaml_ng::to_string(&value).ok()?;
            // Keep what opened the document: its `---` line and leading comments.
            let header: String = doc
                .text
                .lines()
                .take_while(|l| {
                    l.trim().is_empty() || l.starts_with("---") || l.trim_start().starts_with('#')
                })
                .map(|l| format!("{l}\n"))
                .collect();
            Some(header + &body)
        }
    }
}
