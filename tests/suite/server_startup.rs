//! How `zerodrop serve` starts without a cluster: standalone only when that is what the
//! machine says (no credentials anywhere) or the flag says, loudly; credentials that exist
//! but cannot be used stop it instead of leaving every pod unprotected.

use crate::serve::Served;
use serde_json::Value;

/// The log lines of a JSON log at `level` that contain `text`.
fn lines_at(logs: &str, level: &str, text: &str) -> usize {
    logs.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["level"] == level && v["message"].as_str().is_some_and(|m| m.contains(text)))
        .count()
}

#[tokio::test]
async fn without_credentials_it_runs_standalone_and_says_so_at_warn() {
    let served = Served::start(&[]).await;
    assert_eq!(served.admin_get("/readyz").await.0, 200);
    assert_eq!(served.metric("zerodrop_cluster_connected").await, Some(0.0));
    let logs = served.logs();
    assert_eq!(
        lines_at(
            &logs,
            "WARN",
            "no cluster credentials found: running standalone"
        ),
        1,
        "{logs}"
    );
}

#[tokio::test]
async fn standalone_by_flag_works_without_any_cluster() {
    let served = Served::start(&["--standalone"]).await;
    assert_eq!(served.admin_get("/readyz").await.0, 200);
    let body = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/admission/pod-create.json"
    ))
    .unwrap();
    let answer = served.review("/mutate", &body).await;
    assert_eq!(answer["response"]["allowed"], true);
    assert_eq!(answer["response"]["auditAnnotations"]["mode"], "audit");
    assert_eq!(lines_at(&served.logs(), "INFO", "--standalone"), 1);
}

#[test]
fn credentials_that_cannot_be_used_stop_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = crate::serve::command(&[], dir.path())
        .env("KUBECONFIG", dir.path().join("missing"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("refusing to run standalone"), "{err}");
}

/// Text logs written to a file (or a pipe) carry no colour codes: those are for a terminal.
#[tokio::test]
async fn text_logs_to_a_file_carry_no_colour_codes() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("zerodrop.log");
    let mut child = crate::serve::command(&["--standalone"], dir.path())
        .args(["--log-format", "text", "--ca-bundle-out"])
        .arg(dir.path().join("ca.pem"))
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    let text = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("serving") || started.elapsed() > std::time::Duration::from_secs(20) {
            break text;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    let _ = child.kill();
    let _ = child.wait();
    assert!(text.contains("serving") && text.contains("INFO"), "{text}");
    assert!(
        !text.contains('\u{1b}'),
        "colour codes in a file:\n{text:?}"
    );
}
