//! The real binary under continuous load receives SIGTERM: readiness flips first, no request
//! fails up to the process's exit (answers close their connections while shutting down), it
//! exits 0.

use crate::admission_load as support;
use crate::serve::Served;
use std::time::{Duration, Instant};

const BODY: &str = r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","kind":{"group":"","version":"v1","kind":"Pod"},"operation":"CREATE","namespace":"n","object":{"metadata":{"name":"p"},"spec":{"containers":[{"name":"a","image":"i"}]}}}}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_loses_nothing() {
    let mut served = Served::start(&["--standalone", "--shutdown-delay", "2"]).await;
    let client = served.client.clone();
    // Like the apiserver: keep sending over the open connection through the whole shutdown,
    // the close of the connection included.
    let load = support::Load::start(&client, &served.url("/mutate"), BODY, 4);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(served.admin_get("/readyz").await.0, 200);

    zerodrop_testkit::process::sigterm(&served.child);
    let signalled = Instant::now();
    loop {
        if served.admin_get("/readyz").await.0 == 503 {
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
    let status = served.exited(Duration::from_secs(20)).await;
    // Once gone, new connections are refused (the Service sends them elsewhere); a request
    // sent on an open connection must never be lost.
    let (_, failed, refused) = load.finish().await;
    assert!(
        refused > 0,
        "the load did not run until the listener closed"
    );
    assert!(status.success(), "exit status {status}");
    assert!(
        signalled.elapsed() >= Duration::from_secs(2),
        "exited before the shutdown delay"
    );
    assert_eq!(failed, 0, "requests failed during shutdown");
    let logs = served.logs();
    assert!(logs.contains("shutdown complete"), "{logs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_close_their_connection_once_shutting_down() {
    let mut served = Served::start(&["--standalone", "--shutdown-delay", "2"]).await;
    let client = served.client.clone();
    let post = || {
        client
            .post(served.url("/mutate"))
            .header("content-type", "application/json")
            .body(BODY)
            .send()
    };
    let before = post().await.unwrap();
    assert_eq!(before.headers().get("connection"), None);
    zerodrop_testkit::process::sigterm(&served.child);
    while served.admin_get("/readyz").await.0 != 503 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Closing idle keep-alive connections later would race with requests sent on them.
    let during = post().await.unwrap();
    assert_eq!(during.status(), 200);
    assert_eq!(
        during.headers().get("connection").map(|v| v.as_bytes()),
        Some(&b"close"[..])
    );
    assert!(served.exited(Duration::from_secs(20)).await.success());
}
