//! Workloads: `kubectl apply`-style creates get zerodrop's advice; their pods get the mutation.

use crate::harness::client;
use crate::{SHARED, shared};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use serde_json::json;
use std::time::{Duration, Instant};
use zerodrop_testkit::cluster::{namespace, post, web};

#[tokio::test]
async fn deployment_create_returns_warnings_and_its_pods_are_mutated() {
    shared().await;
    let c = client().await;
    let ns = namespace(&c, SHARED, Some("enforce"), json!({})).await;
    let mut container = web();
    container["command"] = json!(["sh", "-c", "web --port 8080"]);
    let deployment = zerodrop_testkit::cluster::deployment(2, container);
    let r = post(
        &c,
        &format!(
            "/apis/apps/v1/namespaces/{ns}/deployments?fieldManager=kubectl-client-side-apply"
        ),
        &deployment,
    )
    .await;
    r.ok_status();
    assert!(
        r.warnings
            .iter()
            .any(|w| w.contains("will set web: preStop sleep 5s")),
        "{:?}",
        r.warnings
    );
    assert!(
        r.warnings.iter().any(|w| w.contains("shell is PID 1")),
        "{:?}",
        r.warnings
    );
    // The stored Deployment is not patched.
    assert!(
        r.body["spec"]["template"]["spec"]["containers"][0]
            .get("lifecycle")
            .is_none()
    );

    // kube-controller-manager creates the pods through the webhook.
    let pods: Api<Pod> = Api::namespaced(c.clone(), &ns);
    let started = Instant::now();
    let listed = loop {
        let list = pods
            .list(&ListParams::default().labels("app=shop"))
            .await
            .unwrap();
        if list.items.len() == 2 {
            break list;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "ReplicaSet controller created {} pods",
            list.items.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    for p in listed.items {
        let c = &p.spec.unwrap().containers[0];
        let sleep = c
            .lifecycle
            .as_ref()
            .unwrap()
            .pre_stop
            .as_ref()
            .unwrap()
            .sleep
            .as_ref()
            .unwrap();
        assert_eq!(sleep.seconds, 5);
    }
}
