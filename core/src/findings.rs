//! Findings: what zerodrop tells people, with stable codes, severities and a 120-character budget.

use serde::Serialize;

/// Messages longer than this are cut: the apiserver drops long warnings and terminals wrap them.
pub const MAX_MESSAGE: usize = 120;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Info,
}

/// Stable machine codes; the string form (`as_str`, also what serde writes) is part of the
/// public contract (audit JSON, metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Code {
    BadAnnotation,
    UnknownSetting,
    UnknownContainer,
    NotPerContainer,
    ExecPrestopFallback,
    GraceCapped,
    DrainUnavailable,
    DrainBounds,
    TcpReadiness,
    NoReadiness,
    AmbiguousReadinessPort,
    UnknownReadinessPort,
    ShellPid1,
    ScriptPid1,
    ImageShellPid1,
    ImageScriptKeeps,
    ImageUnknown,
    PathAnnotation,
    PathPartial,
    PathBelowClass,
    PathLocalNoDelay,
}

impl Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl Code {
    pub const ALL: [Code; 21] = [
        Code::BadAnnotation,
        Code::UnknownSetting,
        Code::UnknownContainer,
        Code::NotPerContainer,
        Code::ExecPrestopFallback,
        Code::GraceCapped,
        Code::DrainUnavailable,
        Code::DrainBounds,
        Code::TcpReadiness,
        Code::NoReadiness,
        Code::AmbiguousReadinessPort,
        Code::UnknownReadinessPort,
        Code::ShellPid1,
        Code::ScriptPid1,
        Code::ImageShellPid1,
        Code::ImageScriptKeeps,
        Code::ImageUnknown,
        Code::PathAnnotation,
        Code::PathPartial,
        Code::PathBelowClass,
        Code::PathLocalNoDelay,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Code::BadAnnotation => "ZD001",
            Code::UnknownSetting => "ZD002",
            Code::UnknownContainer => "ZD003",
            Code::NotPerContainer => "ZD004",
            Code::ExecPrestopFallback => "ZD101",
            Code::GraceCapped => "ZD102",
            Code::DrainUnavailable => "ZD103",
            Code::DrainBounds => "ZD104",
            Code::TcpReadiness => "ZD201",
            Code::NoReadiness => "ZD202",
            Code::AmbiguousReadinessPort => "ZD203",
            Code::UnknownReadinessPort => "ZD204",
            Code::ShellPid1 => "ZD301",
            Code::ScriptPid1 => "ZD302",
            Code::ImageShellPid1 => "ZD303",
            Code::ImageScriptKeeps => "ZD304",
            Code::ImageUnknown => "ZD305",
            Code::PathAnnotation => "ZD401",
            Code::PathPartial => "ZD402",
            Code::PathBelowClass => "ZD403",
            Code::PathLocalNoDelay => "ZD404",
        }
    }

    /// A short name for logs and metrics labels.
    pub fn name(self) -> &'static str {
        match self {
            Code::BadAnnotation => "bad-annotation",
            Code::UnknownSetting => "unknown-setting",
            Code::UnknownContainer => "unknown-container",
            Code::NotPerContainer => "not-per-container",
            Code::ExecPrestopFallback => "exec-prestop-fallback",
            Code::GraceCapped => "grace-capped",
            Code::DrainUnavailable => "drain-unavailable",
            Code::DrainBounds => "drain-bounds",
            Code::TcpReadiness => "tcp-readiness",
            Code::NoReadiness => "no-readiness",
            Code::AmbiguousReadinessPort => "ambiguous-readiness-port",
            Code::UnknownReadinessPort => "unknown-readiness-port",
            Code::ShellPid1 => "shell-pid1",
            Code::ScriptPid1 => "script-pid1",
            Code::ImageShellPid1 => "image-shell-pid1",
            Code::ImageScriptKeeps => "image-script-keeps",
            Code::ImageUnknown => "image-unknown",
            Code::PathAnnotation => "path-annotation",
            Code::PathPartial => "path-partial",
            Code::PathBelowClass => "path-below-class",
            Code::PathLocalNoDelay => "path-local-no-delay",
        }
    }

    pub fn severity(self) -> Severity {
        match self {
            Code::ScriptPid1 | Code::NotPerContainer | Code::ImageUnknown | Code::PathPartial => {
                Severity::Info
            }
            _ => Severity::Warning,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Finding {
    pub code: Code,
    pub severity: Severity,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    pub message: String,
    /// The annotation or field a person changes to act on this finding.
    pub fix: String,
}

impl Finding {
    pub fn new(
        code: Code,
        container: Option<&str>,
        message: String,
        fix: impl Into<String>,
    ) -> Self {
        Finding {
            code,
            severity: code.severity(),
            container: container.map(str::to_owned),
            message: clip(message),
            fix: fix.into(),
        }
    }
}

/// Cuts a message to MAX_MESSAGE characters on a char boundary, marking the cut.
pub fn clip(mut message: String) -> String {
    if message.chars().count() > MAX_MESSAGE {
        let end = message
            .char_indices()
            .nth(MAX_MESSAGE - 1)
            .map_or(message.len(), |(i, _)| i);
        message.truncate(end);
        message.push('…');
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_keeps_short_and_cuts_long_messages_on_char_boundaries() {
        assert_eq!(clip("short".into()), "short");
        let long = "é".repeat(200);
        let cut = clip(long);
        assert_eq!(cut.chars().count(), MAX_MESSAGE);
        assert!(cut.ends_with('…'));
    }

    #[test]
    fn code_strings_match_their_serde_names() {
        for code in Code::ALL {
            let json = serde_json::to_value(code).unwrap();
            assert_eq!(json, code.as_str());
        }
    }
}
