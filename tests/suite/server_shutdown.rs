//! The real binary under continuous load receives SIGTERM: readiness flips first, no request
//! fails, the process exits 0.

use crate::admission_load as support;
use crate::serve::Served;
use std::time::{Duration, Instant};

const BODY: &str = r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","kind":{"group":"","version":"v1","kind":"Pod"},"operation":"CREATE","namespace":"n","object":{"metadata":{"name":"p"},"spec":{"containers":[{"name":"a","image":"i"}]}}}}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_loses_nothing() {
    let mut served = Served::start(&["--standalone", "--shutdown-delay", "2"]).await;
    let client = served.client.clone();

    // Like the apiserver: keep sending over keep-alive connections until the endpoint is gone
    // (here: shortly after readiness fails, well within the shutdown delay).
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
    let (_, failed) = load.finish().await;

    let status = served.exited(Duration::from_secs(20)).await;
    assert!(status.success(), "exit status {status}");
    assert!(
        signalled.elapsed() >= Duration::from_secs(2),
        "exited before the shutdown delay"
    );
    assert_eq!(failed, 0, "requests failed during shutdown");
    let logs = served.logs();
    assert!(logs.contains("shutdown complete"), "{logs}");
}
