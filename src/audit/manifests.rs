//! Reading manifests: files, folders, stdin; multi-document YAML, JSON and `List` objects,
//! each document with the file and line it starts at.

use serde_json::Value;
use std::io::Read;
use std::path::{Path, PathBuf};

/// One YAML/JSON document of an input.
#[derive(Debug, Clone)]
pub struct Document {
    pub file: String,
    /// 1-based line of the document's first line.
    pub line: usize,
    /// The document exactly as written (used by `--fix` for untouched documents).
    pub text: String,
    pub format: Format,
    pub value: Option<Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Yaml,
    Json,
}

/// A problem with one input; the others are still read.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct InputError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

/// Expands folders (recursively, `.yaml`, `.yml`, `.json`, sorted) and reads each input.
pub fn read_inputs(paths: &[PathBuf]) -> (Vec<Document>, Vec<InputError>) {
    let mut docs = Vec::new();
    let mut errors = Vec::new();
    for path in paths {
        if path.as_os_str() == "-" {
            let mut text = String::new();
            match std::io::stdin().read_to_string(&mut text) {
                Ok(_) => parse_into("-", &text, &mut docs, &mut errors),
                Err(e) => errors.push(InputError {
                    file: "-".into(),
                    line: 0,
                    message: e.to_string(),
                }),
            }
            continue;
        }
        let mut files = Vec::new();
        if let Err(e) = collect(path, &mut files) {
            errors.push(InputError {
                file: path.display().to_string(),
                line: 0,
                message: e.to_string(),
            });
        }
        for file in files {
            match std::fs::read_to_string(&file) {
                Ok(text) => parse_into(&file.display().to_string(), &text, &mut docs, &mut errors),
                Err(e) => errors.push(InputError {
                    file: file.display().to_string(),
                    line: 0,
                    message: e.to_string(),
                }),
            }
        }
    }
    (docs, errors)
}

fn collect(path: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    if !path.is_dir() {
        std::fs::metadata(path)?;
        out.push(path.to_owned());
        return Ok(());
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(path)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for entry in entries {
        let manifest = entry
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| matches!(e, "yaml" | "yml" | "json"));
        if entry.is_dir() {
            collect(&entry, out)?;
        } else if manifest {
            out.push(entry);
        }
    }
    Ok(())
}

/// Splits a stream into documents and parses each; parse errors name the file and line.
pub fn parse_into(file: &str, text: &str, docs: &mut Vec<Document>, errors: &mut Vec<InputError>) {
    if text.trim_start().starts_with(['{', '[']) {
        let value = serde_json::from_str::<Value>(text);
        match value {
            Ok(v) => docs.push(Document {
                file: file.into(),
                line: 1,
                text: text.into(),
                format: Format::Json,
                value: Some(v),
            }),
            Err(e) => errors.push(InputError {
                file: file.into(),
                line: e.line(),
                message: e.to_string(),
            }),
        }
        return;
    }
    for (line, chunk) in split_yaml(text) {
        // Every document is kept, parsed or not, so `--fix` prints the stream back in order.
        let mut doc = |value| {
            docs.push(Document {
                file: file.into(),
                line,
                text: chunk.into(),
                format: Format::Yaml,
                value,
            })
        };
        let blank = |l: &str| {
            let l = l.trim();
            l.is_empty() || l.starts_with('#') || l == "---" || l.starts_with("--- #")
        };
        if chunk.lines().all(blank) {
            doc(None);
            continue;
        }
        match serde_yaml_ng::from_str::<Value>(chunk) {
            Ok(v) => doc(Some(v)),
            Err(e) => {
                let at = e
                    .location()
                    .map_or(line, |l| line + l.line().saturating_sub(1));
                errors.push(InputError {
                    file: file.into(),
                    line: at,
                    message: e.to_string(),
                });
                doc(None);
            }
        }
    }
}

/// `(first line, text)` of each YAML document; the `---` separator lines stay with the
/// document they open so `--fix` can print the stream back verbatim.
fn split_yaml(text: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let (mut start, mut start_line) = (0, 1);
    let mut offset = 0;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let is_separator =
            line.starts_with("---") && line[3..].trim().is_empty() || line.starts_with("--- ");
        if is_separator && offset > start {
            out.push((start_line, &text[start..offset]));
            start = offset;
            start_line = i + 1;
        }
        offset += line.len();
    }
    if start < text.len() {
        out.push((start_line, &text[start..]));
    }
    out
}

/// Objects of a document: a `List` (any `*List` kind with items) becomes its items.
pub fn objects(value: &Value) -> Vec<(Option<usize>, &Value)> {
    let is_list = value
        .get("kind")
        .and_then(Value::as_str)
        .is_some_and(|k| k.ends_with("List"));
    match value.get("items").and_then(Value::as_array) {
        Some(items) if is_list => items
            .iter()
            .enumerate()
            .map(|(i, v)| (Some(i), v))
            .collect(),
        _ => vec![(None, value)],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_documents_with_their_lines() {
        let text = "a: 1\n---\nb: 2\n\n--- # comment\nc: 3\n";
        let docs = split_yaml(text);
        let lines: Vec<usize> = docs.iter().map(|d| d.0).collect();
        assert_eq!(lines, [1, 2, 5]);
        assert_eq!(docs.iter().map(|d| d.1).collect::<String>(), text);
    }

    #[test]
    fn parse_errors_name_file_and_line() {
        let (mut docs, mut errors) = (Vec::new(), Vec::new());
        parse_into(
            "x.yaml",
            "a: 1\n---\nb: [1,\nc: 3\n",
            &mut docs,
            &mut errors,
        );
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].file, "x.yaml");
        assert!(errors[0].line >= 3, "{:?}", errors[0]);
        assert_eq!(docs.len(), 2);
    }

    #[test]
    fn lists_expand_to_items() {
        let v: Value = serde_json::json!({ "kind": "List", "items": [{ "kind": "Pod" }, { "kind": "Service" }] });
        assert_eq!(objects(&v).len(), 2);
    }
}
