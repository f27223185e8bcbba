//! PID 1: a shell that does not `exec` the app swallows SIGTERM, so the app is SIGKILLed.

use super::pod;
use crate::findings::{Code, Finding};
use serde_json::Value;

const SHELLS: [&str; 4] = ["sh", "bash", "ash", "dash"];

/// What the container's command/args show about PID 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pid1 {
    /// The app is (or becomes, through `exec`) PID 1, or we cannot tell.
    Fine,
    /// `sh -c SCRIPT` whose last command is not exec'ed; `simple` scripts can be rewritten.
    Shell {
        field: &'static str,
        index: usize,
        script: String,
        simple: bool,
    },
    /// A `*.sh` script: it must `exec` the app itself.
    Script(String),
}

pub fn inspect(container: &Value) -> Pid1 {
    let argv = pod::argv(container);
    let Some(&(_, _, first)) = argv.first() else {
        return Pid1::Fine;
    };
    let base = first.rsplit('/').next().unwrap_or(first);
    if !SHELLS.contains(&base) {
        return if base.ends_with(".sh") {
            Pid1::Script(base.to_owned())
        } else {
            Pid1::Fine
        };
    }
    // The script follows the first short option group containing `c` (-c, -ec, -xc ...).
    let c_flag = argv[1..]
        .iter()
        .position(|(_, _, a)| a.starts_with('-') && !a.starts_with("--") && a.contains('c'));
    let Some(at) = c_flag else {
        // `sh start.sh`: the script runs under a shell that is PID 1.
        return match argv.get(1) {
            Some((_, _, a)) if !a.starts_with('-') => Pid1::Script((*a).to_owned()),
            _ => Pid1::Fine,
        };
    };
    let Some(&(field, index, script)) = argv.get(at + 2) else {
        return Pid1::Fine;
    };
    let segments = split_commands(script);
    let last = segments.last().map_or("", |s| s.trim());
    if last.is_empty() || last == "exec" || last.starts_with("exec ") || script.contains("trap ") {
        return Pid1::Fine;
    }
    let simple = segments.len() == 1 && is_simple(last);
    // bash and BusyBox ash exec a lone simple command themselves (checked: bash 5.2 unless it
    // has a redirection, BusyBox 1.35); dash does not, and what `sh` is depends on the image.
    if simple && matches!(base, "bash" | "ash") && !last.contains(['<', '>']) {
        return Pid1::Fine;
    }
    Pid1::Shell {
        field,
        index,
        script: script.to_owned(),
        simple,
    }
}

/// Findings and, when allowed and safe, the rewrite `sh -c "exec <cmd>"`: the rewritten field
/// (`command` or `args`) and its new value.
pub fn apply(
    container: &Value,
    allow_rewrite: bool,
    findings: &mut Vec<Finding>,
) -> Option<(&'static str, Value)> {
    let name = pod::name(container);
    match inspect(container) {
        Pid1::Fine => None,
        Pid1::Script(script) => {
            findings.push(Finding::new(
                Code::ScriptPid1,
                Some(name),
                format!(
                    "container {name} starts via {script}: it must exec the app to pass on SIGTERM"
                ),
                "command",
            ));
            None
        }
        Pid1::Shell {
            field,
            index,
            script,
            simple,
        } => {
            if allow_rewrite && simple {
                let rewritten = format!("exec {}", script.trim());
                let mut list = pod::get(container, field).cloned();
                if let Some(slot) = list.as_mut().and_then(|l| l.get_mut(index)) {
                    *slot = Value::String(rewritten);
                    return list.map(|l| (field, l));
                }
            }
            let hint = if simple {
                "set shell-exec: \"true\""
            } else {
                "end the script with exec"
            };
            findings.push(Finding::new(
                Code::ShellPid1,
                Some(name),
                format!("container {name}: shell is PID 1 and swallows SIGTERM; {hint}"),
                if simple {
                    "zerodrop.dev/shell-exec"
                } else {
                    "command"
                },
            ));
            None
        }
    }
}

/// Splits a script at top-level `;`, `&&`, `||`, `|`, `&` and newlines, honouring quotes.
fn split_commands(script: &str) -> Vec<&str> {
    let bytes = script.as_bytes();
    let mut out = Vec::new();
    let (mut start, mut i) = (0, 0);
    let mut quote: Option<u8> = None;
    while i < bytes.len() {
        let b = bytes[i];
        match quote {
            Some(q) if b == q => quote = None,
            Some(_) => {}
            None if b == b'\'' || b == b'"' => quote = Some(b),
            None if b == b'\\' => i += 1,
            None if matches!(b, b';' | b'\n' | b'&' | b'|') => {
                out.push(&script[start..i]);
                start = i + 1;
            }
            None => {}
        }
        i += 1;
    }
    out.push(&script[start.min(script.len())..]);
    out.retain(|s| !s.trim().is_empty());
    out
}

/// A script that is one plain command (what `exec` can be put in front of).
pub fn is_lone_simple(script: &str) -> bool {
    let segments = split_commands(script);
    segments.len() == 1 && is_simple(segments[0].trim())
}

/// One plain command: no substitutions, groups, heredocs, keywords or leading assignments,
/// so prefixing `exec ` keeps its meaning.
fn is_simple(cmd: &str) -> bool {
    const KEYWORDS: [&str; 9] = [
        "if", "for", "while", "until", "case", "function", "{", "(", "!",
    ];
    let first = cmd.split_whitespace().next().unwrap_or_default();
    let compound =
        cmd.contains("$(") || cmd.contains('`') || cmd.contains("<<") || cmd.contains('(');
    !(compound || KEYWORDS.contains(&first) || first.contains('='))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn container(command: Value, args: Value) -> Value {
        json!({ "name": "app", "command": command, "args": args })
    }

    #[test]
    fn classifies_pid1() {
        let cases = [
            (
                json!(["sh", "-c", "node server.js"]),
                json!(null),
                "shell-simple",
            ),
            // bash execs a lone simple command itself, unless it redirects.
            (
                json!(["/bin/bash", "-ec"]),
                json!(["python app.py --port 80"]),
                "fine",
            ),
            (
                json!(["bash", "-c", "python app.py > /log"]),
                json!(null),
                "shell-simple",
            ),
            (
                json!(["/bin/ash", "-c", "node server.js"]),
                json!(null),
                "fine",
            ),
            (
                json!(["dash", "-c", "node server.js"]),
                json!(null),
                "shell-simple",
            ),
            (
                json!(["bash", "-c", "migrate && app"]),
                json!(null),
                "shell-complex",
            ),
            (
                json!(["sh", "-c", "migrate; exec app"]),
                json!(null),
                "fine",
            ),
            (json!(["sh", "-c", "exec app"]), json!(null), "fine"),
            (
                json!(["sh", "-c", "migrate && app"]),
                json!(null),
                "shell-complex",
            ),
            (json!(["sh", "-c", "A=1 app"]), json!(null), "shell-complex"),
            (
                json!(["sh", "-c", "app $(cat /args)"]),
                json!(null),
                "shell-complex",
            ),
            (
                json!(["sh", "-c", "trap 'kill $P' TERM; app & P=$!; wait"]),
                json!(null),
                "fine",
            ),
            (
                json!(["sh", "-c", "echo 'a;b'"]),
                json!(null),
                "shell-simple",
            ),
            (json!(["/start.sh"]), json!(null), "script"),
            (json!(["bash", "run.sh"]), json!(null), "script"),
            (json!(["/app/server"]), json!(["--port", "8080"]), "fine"),
            (json!(null), json!(["sh", "-c", "app"]), "shell-simple"),
            (json!(null), json!(null), "fine"),
        ];
        for (command, args, want) in cases {
            let got = match inspect(&container(command.clone(), args)) {
                Pid1::Fine => "fine",
                Pid1::Script(_) => "script",
                Pid1::Shell { simple: true, .. } => "shell-simple",
                Pid1::Shell { simple: false, .. } => "shell-complex",
            };
            assert_eq!(got, want, "{command}");
        }
    }

    #[test]
    fn rewrites_only_simple_scripts_when_allowed() {
        let c = container(json!(["sh", "-c", " node server.js "]), json!(null));
        let mut findings = Vec::new();
        assert_eq!(apply(&c, false, &mut findings), None);
        assert_eq!(findings[0].code, Code::ShellPid1);
        let (field, command) = apply(&c, true, &mut Vec::new()).unwrap();
        assert_eq!(field, "command");
        assert_eq!(command, json!(["sh", "-c", "exec node server.js"]));
        assert_eq!(inspect(&container(command, json!(null))), Pid1::Fine);

        let complex = container(json!(["sh", "-c", "a && b"]), json!(null));
        let mut findings = Vec::new();
        assert_eq!(apply(&complex, true, &mut findings), None);
        assert_eq!(findings[0].fix, "command");
    }
}
