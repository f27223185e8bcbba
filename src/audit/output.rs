//! Human and machine renderings of a Report: table (colour only on a terminal) and JSON.

use super::report::{Entry, Report};
use std::fmt::Write;
use zerodrop_core::engine::Change;
use zerodrop_core::findings::Severity;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
    Sarif,
}

pub fn render(report: &Report, format: Format, colour: bool) -> String {
    match format {
        Format::Table => table(report, colour),
        Format::Json => serde_json::to_string_pretty(report).unwrap_or_default() + "\n",
        Format::Sarif => {
            serde_json::to_string_pretty(&super::sarif::render(report)).unwrap_or_default() + "\n"
        }
    }
}

struct Paint(bool);

impl Paint {
    fn wrap(&self, code: &str, text: &str) -> String {
        if self.0 {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }
    fn bold(&self, t: &str) -> String {
        self.wrap("1", t)
    }
    fn yellow(&self, t: &str) -> String {
        self.wrap("33", t)
    }
    fn green(&self, t: &str) -> String {
        self.wrap("32", t)
    }
    fn red(&self, t: &str) -> String {
        self.wrap("31", t)
    }
    fn dim(&self, t: &str) -> String {
        self.wrap("2", t)
    }
}

fn container_of(c: &Change) -> &str {
    c.container().unwrap_or("(pod)")
}

fn entry(out: &mut String, e: &Entry, p: &Paint) {
    let place = match (&e.file, e.line) {
        (Some(f), Some(l)) => format!("  {f}:{l}"),
        _ => String::new(),
    };
    let _ = writeln!(out, "{}  [{}]{}", p.bold(&e.title()), e.mode, p.dim(&place));
    if let Some(reason) = &e.skipped {
        let _ = writeln!(out, "  {}", p.dim(&format!("skipped: {reason}")));
    }
    if e.skipped.is_none() && e.changes.is_empty() {
        let _ = writeln!(out, "  {}", p.green("nothing to change"));
    }
    let width = e
        .changes
        .iter()
        .map(|c| container_of(&c.change).len())
        .max()
        .unwrap_or(0);
    for c in &e.changes {
        let _ = writeln!(
            out,
            "  {:width$}  {}",
            container_of(&c.change),
            p.green(&c.change.what())
        );
    }
    for f in &e.findings {
        let label = match f.severity {
            Severity::Warning => p.yellow(&format!("warning {}", f.code.as_str())),
            Severity::Info => p.dim(&format!("info {}", f.code.as_str())),
        };
        let _ = writeln!(
            out,
            "  {label}  {}  {}",
            f.message,
            p.dim(&format!("(set {})", f.fix))
        );
    }
}

fn table(report: &Report, colour: bool) -> String {
    let p = Paint(colour);
    let mut out = String::new();
    for ns in &report.namespaces {
        let _ = writeln!(out, "namespace {}  mode {}", p.bold(&ns.name), ns.mode);
    }
    if !report.namespaces.is_empty() {
        out.push('\n');
    }
    for e in &report.workloads {
        entry(&mut out, e, &p);
    }
    for d in &report.drift {
        let owner = d.owner.as_deref().unwrap_or("no owner");
        let _ = writeln!(
            out,
            "{} {}/Pod/{} ({owner}): {}",
            p.yellow("escaped"),
            d.namespace,
            d.name,
            d.reason
        );
    }
    let located = report
        .notes
        .iter()
        .map(|n| (p.dim("note"), n))
        .chain(report.errors.iter().map(|e| (p.red("error"), e)));
    for (label, at) in located {
        let _ = writeln!(out, "{label} {}:{}: {}", at.file, at.line, at.message);
    }
    let changed = report.workloads.iter().filter(|e| e.would_change()).count();
    let findings: usize = report.workloads.iter().map(|e| e.findings.len()).sum();
    let _ = writeln!(
        out,
        "\n{} workloads, {changed} would change, {findings} findings, {} escaped pods, {} errors",
        report.workloads.len(),
        report.drift.len(),
        report.errors.len()
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use zerodrop_core::engine::{Capabilities, Engine};
    use zerodrop_core::policy::{ClusterPolicy, Layer};

    #[test]
    fn colour_only_when_asked_for() {
        let engine = Engine::new(ClusterPolicy::default(), Capabilities::LATEST);
        let pod = serde_json::json!({ "apiVersion": "v1", "kind": "Pod", "metadata": { "name": "p" },
            "spec": { "containers": [{ "name": "a", "image": "i", "ports": [{ "containerPort": 80 }] }] } });
        let entry = crate::audit::evaluate(&engine, &pod, &Layer::default()).unwrap();
        let report = Report {
            workloads: vec![entry],
            ..Report::default()
        };
        let coloured = render(&report, Format::Table, true);
        let plain = render(&report, Format::Table, false);
        assert!(
            coloured.contains("\x1b[33mwarning ZD202\x1b[0m"),
            "{coloured}"
        );
        assert!(!plain.contains('\x1b'));
        assert!(plain.contains("warning ZD202") && plain.contains("preStop sleep 5s"));
    }
}
