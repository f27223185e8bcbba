//! What the image says about PID 1: the effective argv under Kubernetes' rules, which shell
//! `/bin/sh` is, whether an entrypoint script hands over to the app. Facts come in as values.

use super::pod;
use serde_json::Value;

/// Which shell the image's `/bin/sh` is: dash does not exec a lone command, bash and BusyBox
/// ash do (checked: bash 5.2 without redirections, BusyBox 1.35).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Shell {
    Dash,
    Bash,
    Busybox,
    Unknown,
}

impl Shell {
    pub fn as_str(self) -> &'static str {
        match self {
            Shell::Dash => "dash",
            Shell::Bash => "bash",
            Shell::Busybox => "busybox",
            Shell::Unknown => "unknown shell",
        }
    }

    pub fn execs_lone_command(self) -> bool {
        matches!(self, Shell::Bash | Shell::Busybox)
    }
}

/// The verdict on a script PID 1, from its text.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Script {
    /// The path that runs the app ends in `exec …` (or the script forwards TERM and waits).
    HandsOver,
    /// It runs the app as a child: this line (1-based) needs `exec`.
    Keeps { line: usize, text: String },
}

/// An image as the inspector read it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageConfig {
    /// `sha256:…` of the manifest the facts come from.
    pub digest: String,
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub stop_signal: Option<String>,
    pub shell: Shell,
    /// The verdict on the script the effective argv starts (for the pod's argv when the image
    /// was asked with it), when there is one.
    pub script: Option<(String, Script)>,
    /// Digest-pinned, or a fresh tag-to-digest answer, and every platform agrees: only then
    /// does zerodrop change a pod on the image's word.
    pub certain: bool,
}

/// What is known about a container's image.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ImageFacts {
    Known(ImageConfig),
    /// Inspected and failed: auth, rate limit, timeout, platform unknown, too large …
    Unknown(String),
}

/// The platform to pick from an index (from the pod's node selector), or `None`: then every
/// linux platform must agree.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Platform {
    pub os: Option<String>,
    pub arch: Option<String>,
}

impl Platform {
    /// What a pod (template) asks for with `kubernetes.io/os` and `kubernetes.io/arch`.
    pub fn of(template: &Value) -> Platform {
        let selector = |key: &str| {
            pod::at(template, &["spec", "nodeSelector"])
                .and_then(|s| s.get(key))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        Platform {
            os: selector("kubernetes.io/os"),
            arch: selector("kubernetes.io/arch"),
        }
    }
}

/// The distinct images a pod (template) runs in the containers the engine judges (init
/// containers are never touched), with the platform its node selector asks for.
pub fn images_of(template: &Value) -> (Vec<&str>, Platform) {
    let mut images: Vec<&str> = Vec::new();
    for c in pod::containers(template) {
        if let Some(image) = c.get("image").and_then(Value::as_str)
            && !images.contains(&image)
        {
            images.push(image);
        }
    }
    (images, Platform::of(template))
}

/// Where PID 1's argv comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The pod's `command` (the image's Entrypoint and Cmd do not count).
    Pod,
    /// The image's Entrypoint, with the pod's `args` or the image's Cmd.
    Image,
}

/// The argv the container runs, under Kubernetes' rules: `command` replaces Entrypoint and
/// drops Cmd; `args` alone replaces Cmd.
pub fn effective_argv(container: &Value, image: &ImageConfig) -> (Vec<String>, Origin) {
    let list = |field| {
        pod::get(container, field)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect::<Vec<_>>()
            })
    };
    let (command, args) = (list("command"), list("args"));
    if let Some(mut argv) = command.filter(|c| !c.is_empty()) {
        argv.extend(args.unwrap_or_default());
        return (argv, Origin::Pod);
    }
    let mut argv = image.entrypoint.clone().unwrap_or_default();
    argv.extend(args.or_else(|| image.cmd.clone()).unwrap_or_default());
    (argv, Origin::Image)
}

/// The signal the app gets on stop: the image's STOPSIGNAL, else SIGTERM.
pub fn stop_signal(image: &ImageConfig) -> String {
    match image.stop_signal.as_deref().map(str::trim) {
        Some(s) if !s.is_empty() => {
            let upper = s.to_ascii_uppercase();
            if upper.starts_with("SIG") || upper.chars().all(|c| c.is_ascii_digit()) {
                upper
            } else {
                format!("SIG{upper}")
            }
        }
        _ => "SIGTERM".into(),
    }
}

/// The program whose handling of the stop signal matters: argv[0], or what an init that
/// forwards only to its child (tini without -g) starts. The inspector reads this one.
pub fn program(argv: &[String]) -> Option<&str> {
    let first = argv.first()?;
    match first.rsplit('/').next().unwrap_or(first) {
        "tini" | "tini-static" => {
            let after = argv.iter().position(|a| a == "--").map_or(1, |i| i + 1);
            argv.get(after).map(String::as_str)
        }
        _ => Some(first),
    }
}

/// `tini -g …` and `dumb-init …` forward the stop signal to the whole process group; tini
/// without `-g` only to its direct child (a shell that does not exec still swallows it).
pub fn forwarding_init(argv: &[String]) -> bool {
    let Some(first) = argv.first() else {
        return false;
    };
    match first.rsplit('/').next().unwrap_or(first) {
        "dumb-init" => true,
        "tini" | "tini-static" => argv[1..]
            .iter()
            .take_while(|a| *a != "--")
            .any(|a| a.starts_with('-') && !a.starts_with("--") && a.contains('g')),
        _ => false,
    }
}

/// Classifies an entrypoint script: does the path that runs the app end in `exec`?
/// The last command line (closers like `fi`, `done`, `esac`, `}` skipped) decides: `exec cmd`
/// (not a bare redirection such as `exec 3>&1`) hands over, `exec "$@"` and `exec gosu …`
/// included; so does a `trap` on TERM with a `wait`. Anything else keeps the app as a child.
pub fn classify_script(text: &str) -> Script {
    let lines: Vec<(usize, &str)> = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let traps_term = lines.iter().any(|(_, l)| {
        l.starts_with("trap ") && (l.contains("TERM") || l.contains(" 15")) && !l.contains("''")
    });
    let waits = lines
        .iter()
        .any(|(_, l)| *l == "wait" || l.starts_with("wait ") || l.contains("; wait"));
    if traps_term && waits {
        return Script::HandsOver;
    }
    const CLOSERS: [&str; 6] = ["fi", "done", "esac", "}", ";;", "exit 0"];
    let last = lines
        .iter()
        .rev()
        .find(|(_, l)| !CLOSERS.contains(l) && !l.starts_with("else") && !l.ends_with(')'));
    let Some(&(line, text)) = last else {
        return Script::Keeps {
            line: 0,
            text: String::new(),
        };
    };
    if hands_over(text) {
        Script::HandsOver
    } else {
        Script::Keeps {
            line,
            text: text.to_owned(),
        }
    }
}

/// `exec cmd …` that replaces the shell, not `exec 3>&1` (a redirection of the shell itself).
fn hands_over(line: &str) -> bool {
    let line = line.trim_start_matches("then ").trim_start_matches("do ");
    let Some(rest) = line.strip_prefix("exec ") else {
        return false;
    };
    let first = rest.split_whitespace().next().unwrap_or_default();
    let redirection = first.starts_with(['<', '>'])
        || first.chars().next().is_some_and(|c| c.is_ascii_digit()) && first.contains(['<', '>']);
    !redirection && !first.is_empty()
}

/// The image facts of a request, by the image reference as the pod names it.
pub type Images = std::collections::BTreeMap<String, ImageFacts>;

/// What the image rule decided for one container.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Fields to set (`command`, and `args` when the image's Cmd must be kept), for the
    /// shell-form rewrite.
    pub rewrite: Vec<(&'static str, Value)>,
    /// The image gave a verdict on the script PID 1: the pod-spec guess (ZD302) is moot.
    pub script_judged: bool,
}

/// PID-1 findings from the image (ZD303, ZD304, ZD305) and, when allowed and the image facts
/// are certain, the rewrite of a one-command shell form to `exec` it (variables keep expanding).
pub fn apply(
    container: &Value,
    facts: Option<&ImageFacts>,
    allow_rewrite: bool,
    findings: &mut Vec<crate::findings::Finding>,
) -> Outcome {
    use crate::findings::{Code, Finding};
    let name = pod::name(container);
    let mut out = Outcome::default();
    let image = match facts {
        None => return out,
        Some(ImageFacts::Unknown(reason)) => {
            findings.push(Finding::new(
                Code::ImageUnknown,
                Some(name),
                format!("container {name}: image not inspected ({reason}); PID 1 judged from the pod spec only"),
                "image inspection",
            ));
            return out;
        }
        Some(ImageFacts::Known(image)) => image,
    };
    let (argv, origin) = effective_argv(container, image);
    let signal = stop_signal(image);
    let short = image.digest.get(..15).unwrap_or(&image.digest);
    if forwarding_init(&argv) {
        return out;
    }
    // The inspector read the script the image starts (by name or by its `#!` line), behind
    // an init that forwards only to its child if there is one.
    if let (Some(path), Some((judged, verdict))) = (program(&argv), &image.script)
        && judged == path
    {
        out.script_judged = true;
        if let Script::Keeps { line, text } = verdict {
            findings.push(Finding::new(
                Code::ImageScriptKeeps,
                Some(name),
                format!("container {name}: {path} line {line} runs the app without exec, {signal} lost: {text}"),
                format!("{path} line {line}: exec"),
            ));
        }
        return out;
    }
    if origin == Origin::Pod {
        return out;
    }
    // Shell form: ["/bin/sh", "-c", "cmd"] in the image's Entrypoint or Cmd.
    let Some((shell, script)) = shell_form(&argv, image.shell) else {
        return out;
    };
    let simple = super::shell::is_lone_simple(script);
    if simple && shell.execs_lone_command() && !script.contains(['<', '>']) {
        return out;
    }
    if allow_rewrite && simple && image.certain {
        let strings = |v: &[String]| v.iter().cloned().map(Value::String).collect::<Vec<_>>();
        let mut command = strings(&argv[..2]);
        command.push(Value::String(format!("exec {}", script.trim())));
        let entrypoint = image.entrypoint.as_deref().unwrap_or_default();
        if entrypoint.is_empty() {
            // The shell form is the image's Cmd: all of argv, now as `command`.
            command.extend(strings(&argv[3..]));
            out.rewrite.push(("command", Value::Array(command)));
        } else {
            // The shell form is the Entrypoint: setting `command` drops the image's Cmd, so
            // it moves to `args` unless the pod gives its own.
            command.extend(strings(&entrypoint[3.min(entrypoint.len())..]));
            out.rewrite.push(("command", Value::Array(command)));
            if let (None, Some(cmd)) = (pod::get(container, "args"), image.cmd.as_ref())
                && !cmd.is_empty()
            {
                out.rewrite.push(("args", Value::Array(strings(cmd))));
            }
        }
        return out;
    }
    let hint = if simple && image.certain {
        "set shell-exec: \"true\""
    } else if simple {
        "pin the image by digest, then shell-exec: \"true\""
    } else {
        "end the command with exec, or exec-form CMD"
    };
    findings.push(Finding::new(
        Code::ImageShellPid1,
        Some(name),
        format!(
            "container {name}: image {short}'s {} ({}) stays PID 1, {signal} lost; {hint}",
            argv[0],
            shell.as_str()
        ),
        if simple {
            "zerodrop.dev/shell-exec"
        } else {
            "the image's CMD"
        },
    ));
    out
}

/// `sh -c SCRIPT` (or bash, ash, dash): the shell that runs it and the script.
fn shell_form(argv: &[String], sh: Shell) -> Option<(Shell, &str)> {
    let base = argv.first()?.rsplit('/').next()?;
    let shell = match base {
        "sh" => sh,
        "bash" => Shell::Bash,
        "ash" => Shell::Busybox,
        "dash" => Shell::Dash,
        _ => return None,
    };
    let flag = argv.get(1)?;
    if !(flag.starts_with('-') && !flag.starts_with("--") && flag.contains('c')) {
        return None;
    }
    Some((shell, argv.get(2)?.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn image(entrypoint: Option<&[&str]>, cmd: Option<&[&str]>) -> ImageConfig {
        let own = |v: Option<&[&str]>| v.map(|v| v.iter().map(|s| s.to_string()).collect());
        ImageConfig {
            digest: "sha256:0".into(),
            entrypoint: own(entrypoint),
            cmd: own(cmd),
            stop_signal: None,
            shell: Shell::Dash,
            script: None,
            certain: true,
        }
    }

    #[test]
    fn argv_follows_kubernetes_rules() {
        let img = image(Some(&["/entry.sh"]), Some(&["serve", "--port", "80"]));
        let argv = |c: Value| effective_argv(&c, &img);
        let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            argv(json!({"name": "a"})),
            (s(&["/entry.sh", "serve", "--port", "80"]), Origin::Image)
        );
        assert_eq!(
            argv(json!({"name": "a", "args": ["x"]})),
            (s(&["/entry.sh", "x"]), Origin::Image)
        );
        assert_eq!(
            argv(json!({"name": "a", "command": ["app"]})),
            (s(&["app"]), Origin::Pod)
        );
        assert_eq!(
            argv(json!({"name": "a", "command": ["app"], "args": ["-v"]})),
            (s(&["app", "-v"]), Origin::Pod)
        );
        // Shell-form CMD, as the image config stores it.
        let shell_form = image(None, Some(&["/bin/sh", "-c", "./app"]));
        assert_eq!(
            effective_argv(&json!({"name": "a"}), &shell_form).0,
            s(&["/bin/sh", "-c", "./app"])
        );
    }

    #[test]
    fn scripts_hand_over_or_say_which_line_needs_exec() {
        let cases: &[(&str, Option<usize>)] = &[
            ("#!/bin/sh\nset -e\nexec \"$@\"\n", None),
            (
                "#!/bin/sh\nif [ \"$1\" = server ]; then\n  exec gosu app \"$@\"\nfi\n",
                None,
            ),
            ("#!/bin/sh\nexec su-exec app /app\n", None),
            ("#!/bin/sh\n./migrate\n/app/server --port 80\n", Some(3)),
            // A redirection of the shell itself is not a hand-over.
            ("#!/bin/sh\nexec 3>&1\n/app/server\n", Some(3)),
            ("#!/bin/sh\nexec >/var/log/app.log 2>&1\n", Some(2)),
            (
                "#!/bin/sh\n/app/server &\ntrap 'kill -TERM $!' TERM\nwait\n",
                None,
            ),
            ("#!/bin/bash\n# start\nnode server.js\n\n# done\n", Some(3)),
            (
                "#!/bin/sh\nif [ -n \"$X\" ]; then\n  run-a\nelse\n  run-b\nfi\n",
                Some(5),
            ),
        ];
        for (text, needs) in cases {
            let got = classify_script(text);
            match needs {
                None => assert_eq!(got, Script::HandsOver, "{text}"),
                Some(line) => match got {
                    Script::Keeps { line: l, .. } => assert_eq!(l, *line, "{text}"),
                    Script::HandsOver => panic!("hands over? {text}"),
                },
            }
        }
    }

    #[test]
    fn inits_and_signals() {
        let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(forwarding_init(&s(&[
            "/usr/bin/tini",
            "-g",
            "--",
            "/start.sh"
        ])));
        assert!(forwarding_init(&s(&["dumb-init", "/start.sh"])));
        assert!(!forwarding_init(&s(&["tini", "--", "/start.sh"])));
        assert!(!forwarding_init(&s(&["/app"])));
        assert_eq!(
            program(&s(&["/docker-entrypoint.sh", "nginx"])),
            Some("/docker-entrypoint.sh")
        );
        assert_eq!(
            program(&s(&["/tini", "--", "/start.sh"])),
            Some("/start.sh")
        );
        assert_eq!(program(&s(&["tini", "/start.sh"])), Some("/start.sh"));
        let mut nginx = image(None, None);
        assert_eq!(stop_signal(&nginx), "SIGTERM");
        nginx.stop_signal = Some("SIGQUIT".into());
        assert_eq!(stop_signal(&nginx), "SIGQUIT");
        nginx.stop_signal = Some("quit".into());
        assert_eq!(stop_signal(&nginx), "SIGQUIT");
    }
}
