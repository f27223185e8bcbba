//! Every metric a person is told about: in the docs, the chart's README, the chart's alerts and
//! dashboard, and the texts zerodrop prints (advice, warnings): what a live replica must export.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The workspace's crates, which the docs name as `zerodrop_core::...`: not metrics.
const CRATES: [&str; 2] = ["zerodrop_core", "zerodrop_testkit"];

/// `zerodrop_*` names as they appear in the text.
fn names_in(text: &str, out: &mut BTreeSet<(String, String)>, whence: &str) {
    for name in zerodrop_testkit::helm::metric_names(text) {
        if !CRATES.contains(&name.as_str()) {
            out.insert((name, whence.to_owned()));
        }
    }
}

fn files(dir: &Path, ext: &str, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files(&path, ext, out);
        } else if path.extension().is_some_and(|e| e == ext) {
            out.push(path);
        }
    }
}

/// (name, where it is named) for every metric named to a user. Prose names them in full
/// (`zerodrop_x_total`); the source only in backticks inside strings (the advice's and
/// warnings' texts), not its own identifiers.
pub fn named() -> BTreeSet<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut out = BTreeSet::new();
    let mut docs = vec![
        root.join("README.md"),
        root.join("charts/zerodrop/README.md"),
    ];
    files(&root.join("docs"), "md", &mut docs);
    for path in docs {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        names_in(&text, &mut out, &path.display().to_string());
    }
    let mut sources = Vec::new();
    files(&root.join("src"), "rs", &mut sources);
    for path in sources {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        for quoted in text.split('`').skip(1).step_by(2) {
            if quoted.starts_with("zerodrop_") {
                names_in(quoted, &mut out, &path.display().to_string());
            }
        }
    }
    for query in zerodrop_testkit::helm::monitoring_queries() {
        names_in(&query, &mut out, "the chart's alerts and dashboard");
    }
    out
}

/// The series names a Prometheus text exposes (`_total`, `_bucket`, ... as a scrape sees them).
pub fn exported(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("# TYPE ") else {
            continue;
        };
        let mut parts = rest.split_whitespace();
        let (Some(name), Some(kind)) = (parts.next(), parts.next()) else {
            continue;
        };
        let suffixes: &[&str] = match kind {
            "counter" => &["_total"],
            // A histogram is named by its base name too (what a person writes).
            "histogram" => &["", "_bucket", "_sum", "_count"],
            _ => &[""],
        };
        names.extend(suffixes.iter().map(|s| format!("{name}{s}")));
    }
    names
}
