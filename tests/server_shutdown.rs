//! The real binary under continuous load receives SIGTERM: readiness flips first, no request
//! fails, the process exits 0.

use crate::support::load as support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BODY: &str = r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","kind":{"group":"","version":"v1","kind":"Pod"},"operation":"CREATE","namespace":"n","object":{"metadata":{"name":"p"},"spec":{"containers":[{"name":"a","image":"i"}]}}}}"#;

fn serving_line(log: &std::path::Path) -> Option<(String, String)> {
    let text = std::fs::read_to_string(log).ok()?;
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find_map(|v| {
            (v["message"] == "serving").then(|| {
                (
                    v["tls"].as_str().unwrap().to_owned(),
                    v["admin"].as_str().unwrap().to_owned(),
                )
            })
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    let log = dir.path().join("zerodrop.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_zerodrop"))
        .args([
            "serve",
            "--standalone",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
        ])
        .args([
            "--shutdown-delay",
            "2",
            "--log-format",
            "json",
            "--ca-bundle-out",
        ])
        .arg(&ca)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let (tls, admin) = loop {
        if let Some(found) = serving_line(&log) {
            break found;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let port = tls.rsplit(':').next().unwrap().to_owned();
    let pem = std::fs::read(&ca).unwrap();
    let client = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .build()
        .unwrap();

    // Like the apiserver: keep sending over keep-alive connections until the endpoint is gone
    // (here: shortly after readiness fails, well within the shutdown delay).
    let load = support::Load::start(
        &client,
        &format!("https://localhost:{port}/mutate"),
        BODY,
        4,
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        reqwest::get(format!("http://{admin}/readyz"))
            .await
            .unwrap()
            .status(),
        200
    );

    crate::support::process::sigterm(&child);
    let signalled = Instant::now();
    loop {
        let status = reqwest::get(format!("http://{admin}/readyz"))
            .await
            .unwrap()
            .status();
        if status == 503 {
            break;
        }
        assert!(
            signalled.elapsed() < Duration::from_millis(500),
            "readiness did not flip at once"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let at_flip = load.ok();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        load.ok() > at_flip,
        "requests were not served after readiness failed"
    );
    let (_, failed) = load.finish().await;

    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert!(status.success(), "exit status {status}");
    assert!(
        signalled.elapsed() >= Duration::from_secs(2),
        "exited before the shutdown delay"
    );
    assert_eq!(failed, 0, "requests failed during shutdown");
    let logs = std::fs::read_to_string(&log).unwrap();
    assert!(logs.contains("shutdown complete"), "{logs}");
}
