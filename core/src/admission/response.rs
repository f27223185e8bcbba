//! Building the response: warnings within the apiserver's budget, audit annotations, patch.

use crate::engine::Decision;
use crate::findings::{MAX_MESSAGE, Severity, clip};
use crate::policy::Mode;
use base64::Engine as _;
use serde_json::value::RawValue;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// More than a handful of warnings is noise in `kubectl apply` output.
pub const MAX_WARNINGS: usize = 8;
/// Audit annotations end up in every audit event: each value is bounded.
pub const MAX_AUDIT_ANNOTATION: usize = 4096;

/// `value`, or a short note of its size when it is over the bound.
fn bounded(value: String, what: &str) -> String {
    if value.len() <= MAX_AUDIT_ANNOTATION {
        return value;
    }
    format!(
        "{what} of {} bytes omitted; run `zerodrop audit`",
        value.len()
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Advice {
    /// A Pod: warnings are the findings (the changes are in the patch).
    Pod,
    /// A workload: warnings also say what zerodrop will do to its pods.
    Workload,
}

/// Most important first: warnings, then what will change, then information.
pub fn warnings(decision: &Decision, advice: Advice) -> Vec<String> {
    let prefix = "zerodrop: ";
    let mut out: Vec<String> = Vec::new();
    let by = |severity| {
        decision
            .findings
            .iter()
            .filter(move |f| f.severity == severity)
    };
    out.extend(by(Severity::Warning).map(|f| format!("{prefix}{}", f.message)));
    let verb = match decision.mode {
        Mode::Audit => "would set",
        _ => "will set",
    };
    // A pod's own changes are in its patch; one the traffic path decided also says why here.
    let show_all = advice == Advice::Workload || decision.mode == Mode::Audit;
    if decision.skipped.is_none() {
        out.extend(
            decision
                .changes
                .iter()
                .filter(|c| show_all || c.why().is_some())
                .map(|c| format!("{prefix}{verb} {c}")),
        );
    }
    out.extend(by(Severity::Info).map(|f| format!("{prefix}{}", f.message)));
    if out.len() > MAX_WARNINGS {
        let hidden = out.len() - (MAX_WARNINGS - 1);
        out.truncate(MAX_WARNINGS - 1);
        out.push(format!(
            "{prefix}{hidden} more; run `zerodrop audit` for the full report"
        ));
    }
    out.into_iter()
        .map(|w| {
            if w.chars().count() > MAX_MESSAGE {
                clip(w)
            } else {
                w
            }
        })
        .collect()
}

/// Recorded by the apiserver in its audit log under `<webhook name>/<key>`.
pub fn audit_annotations(decision: &Decision) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    out.insert("mode".into(), decision.mode.as_str().into());
    if !decision.changes.is_empty() {
        let mut changes = String::with_capacity(64 * decision.changes.len());
        for (i, change) in decision.changes.iter().enumerate() {
            if i > 0 {
                changes.push_str("; ");
            }
            let _ = write!(changes, "{change}");
        }
        out.insert("changes".into(), bounded(changes, "changes"));
    }
    if decision.mode == Mode::Audit && !decision.patch.0.is_empty() {
        let patch = serde_json::to_string(&decision.patch).unwrap_or_default();
        out.insert("would-patch".into(), bounded(patch, "patch"));
    }
    if !decision.findings.is_empty() {
        let codes: Vec<&str> = decision.findings.iter().map(|f| f.code.as_str()).collect();
        out.insert("findings".into(), bounded(codes.join(","), "findings"));
    }
    out
}

/// The patch as the response carries it: a JSON string of its base64.
pub fn encode_patch(patch: &json_patch::Patch) -> Option<Box<RawValue>> {
    // Sized for a typical patch: growing from serde_json's default 128 bytes copies it 4 times.
    let mut bytes = Vec::with_capacity(2048);
    serde_json::to_writer(&mut bytes, patch).ok()?;
    let mut text = String::with_capacity(bytes.len() * 4 / 3 + 6);
    text.push('"');
    base64::engine::general_purpose::STANDARD.encode_string(bytes, &mut text);
    text.push('"');
    RawValue::from_string(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Change;
    use crate::findings::{Code, Finding};

    fn decision(mode: Mode) -> Decision {
        Decision {
            mode,
            skipped: None,
            changes: vec![Change::Prestop {
                container: "web".into(),
                seconds: 5,
                action: "sleep",
                why: None,
            }],
            findings: vec![
                Finding::new(
                    Code::ScriptPid1,
                    Some("web"),
                    "info first in the list".into(),
                    "command",
                ),
                Finding::new(
                    Code::TcpReadiness,
                    Some("web"),
                    "warning second in the list".into(),
                    "x",
                ),
            ],
            patch: json_patch::Patch(Vec::new()),
        }
    }

    #[test]
    fn most_important_first() {
        let w = warnings(&decision(Mode::Audit), Advice::Pod);
        assert_eq!(
            w,
            [
                "zerodrop: warning second in the list",
                "zerodrop: would set web: preStop sleep 5s",
                "zerodrop: info first in the list",
            ]
        );
        // Enforced pods carry their changes in the patch, not in warnings; workloads get them.
        assert_eq!(warnings(&decision(Mode::Enforce), Advice::Pod).len(), 2);
        assert!(warnings(&decision(Mode::Enforce), Advice::Workload)[1].contains("will set web"));
    }
}
