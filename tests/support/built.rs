//! Tools the tests build once (control plane, Helm): `$ENV` when CI set it, else the build
//! script, which prints the path on its last line and caches by content.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub fn built(env: &str, script: &str) -> PathBuf {
    if let Ok(path) = std::env::var(env) {
        return PathBuf::from(path);
    }
    let out = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join(script))
        .stderr(Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("run {script}: {e}"));
    assert!(out.status.success(), "{script} failed");
    let stdout = String::from_utf8(out.stdout).expect("path is UTF-8");
    PathBuf::from(
        stdout
            .trim()
            .lines()
            .last()
            .expect("the script prints a path"),
    )
}
