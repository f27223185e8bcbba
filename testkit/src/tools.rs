//! The tools the tool and end-to-end tests need and do not build themselves (the control plane,
//! Helm, promtool, a registry): the path scripts/test.sh exports, else what the tool's build
//! script has already built. A tool that is not there stops the test binary with one line
//! naming it and the command that builds it: no panic trace, no silent skip, no surprise
//! half-hour build inside `cargo test`.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A built tool: the variable that points at it, the script that builds it, and the stage of
/// scripts/test.sh that builds it and runs the tests needing it.
pub struct Tool {
    pub env: &'static str,
    pub script: &'static str,
    pub what: &'static str,
    pub stage: &'static str,
}

pub const HARNESS: Tool = Tool {
    env: "ZERODROP_HARNESS_BIN",
    script: "tools/harness/build.sh",
    what: "the Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager)",
    stage: "e2e",
};
pub const HELM: Tool = Tool {
    env: "ZERODROP_HELM",
    script: "tools/helm/build.sh",
    what: "Helm",
    stage: "tools",
};
pub const PROMTOOL: Tool = Tool {
    env: "ZERODROP_PROMTOOL",
    script: "tools/promtool/build.sh",
    what: "promtool",
    stage: "tools",
};
pub const REGISTRY: Tool = Tool {
    env: "ZERODROP_REGISTRY_TOOLS",
    script: "tools/registry/build.sh",
    what: "the registry tools (distribution's registry, crane, htpasswd)",
    stage: "tools",
};

/// The tool's path: `$ENV`, else the build script's cached output (`--cached`: it builds
/// nothing). Exits the test process with one line when neither has it.
pub fn path(tool: &Tool) -> PathBuf {
    if let Ok(path) = std::env::var(tool.env) {
        if Path::new(&path).exists() {
            return PathBuf::from(path);
        }
        missing(tool, &format!("{}={path} does not exist", tool.env));
    }
    let out = Command::new(crate::root().join(tool.script))
        .arg("--cached")
        .stderr(Stdio::null())
        .output();
    match out {
        Ok(out) if out.status.success() => {
            let stdout = String::from_utf8_lossy(&out.stdout);
            match stdout.trim().lines().last() {
                Some(line) if Path::new(line).exists() => PathBuf::from(line),
                _ => missing(tool, "its build script printed no path"),
            }
        }
        _ => missing(tool, "not built yet"),
    }
}

fn missing(tool: &Tool, why: &str) -> ! {
    let line = format!(
        "these tests need {} ({why}): build it with `{}` (or run `scripts/test.sh --stage {}`), or point {} at it\n",
        tool.what, tool.script, tool.stage, tool.env
    );
    // Straight to the file descriptor: libtest captures the print macros, and this exits.
    let _ = std::io::stderr().write_all(line.as_bytes());
    std::process::exit(2)
}
