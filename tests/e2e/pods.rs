//! Pods through the real apiserver: what is stored, what is warned, what is left alone.

use crate::{SHARED, shared_namespace};
use serde_json::{Value, json};
use zerodrop_testkit::cluster::{create_pod, get_pod, namespace, pod, web};

/// The first container's native preStop sleep.
fn sleep_of(p: &Value) -> &Value {
    &p["spec"]["containers"][0]["lifecycle"]["preStop"]["sleep"]["seconds"]
}

fn ledger(p: &Value) -> Option<&str> {
    p.pointer("/metadata/annotations/zerodrop.dev~1injected")
        .and_then(Value::as_str)
}

#[tokio::test]
async fn enforce_namespace_pod_is_stored_mutated() {
    let (c, ns) = shared_namespace(
        Some("enforce"),
        json!({ "zerodrop.dev/drain-timeout": "40s" }),
    )
    .await;
    let sent = pod(
        "web",
        json!({ "zerodrop.dev/readiness-path": "/ready" }),
        json!([web()]),
    );
    create_pod(&c, &ns, &sent, false).await.ok_status();
    let stored = serde_json::to_value(get_pod(&c, &ns, "web").await.unwrap()).unwrap();
    let container = &stored["spec"]["containers"][0];
    assert_eq!(
        container["lifecycle"]["preStop"],
        json!({ "sleep": { "seconds": 5 } })
    );
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/ready");
    assert_eq!(container["readinessProbe"]["httpGet"]["port"], 8080);
    // 5s sleep + 40s drain (namespace annotation) + 5s margin
    assert_eq!(stored["spec"]["terminationGracePeriodSeconds"], 50);
    assert!(ledger(&stored).unwrap().contains("lifecycle.preStop"));
}

#[tokio::test]
async fn unlabelled_namespace_pod_is_stored_as_sent() {
    let (c, ns) = shared_namespace(None, json!({})).await;
    create_pod(
        &c,
        &ns,
        &pod(
            "web",
            json!({ "zerodrop.dev/readiness-path": "/ready" }),
            json!([web()]),
        ),
        false,
    )
    .await
    .ok_status();
    let stored = serde_json::to_value(get_pod(&c, &ns, "web").await.unwrap()).unwrap();
    assert!(ledger(&stored).is_none());
    assert!(stored["spec"]["containers"][0].get("lifecycle").is_none());
    assert!(
        stored["spec"]["containers"][0]
            .get("readinessProbe")
            .is_none()
    );
    assert_eq!(stored["spec"]["terminationGracePeriodSeconds"], 30);
}

#[tokio::test]
async fn audit_namespace_pod_is_unchanged_and_warned() {
    let (c, ns) = shared_namespace(Some("audit"), json!({})).await;
    let r = create_pod(&c, &ns, &pod("web", json!({}), json!([web()])), false).await;
    r.ok_status();
    assert!(ledger(&r.body).is_none());
    assert!(r.body["spec"]["containers"][0].get("lifecycle").is_none());
    assert!(
        r.warnings
            .iter()
            .any(|w| w.contains("would set web: preStop sleep 5s")),
        "{:?}",
        r.warnings
    );
    assert!(
        r.warnings.iter().any(|w| w.contains("no readiness probe")),
        "{:?}",
        r.warnings
    );
}

#[tokio::test]
async fn server_side_dry_run_returns_the_mutation_and_persists_nothing() {
    let (c, ns) = shared_namespace(Some("enforce"), json!({})).await;
    let r = create_pod(&c, &ns, &pod("dry", json!({}), json!([web()])), true).await;
    r.ok_status();
    assert_eq!(sleep_of(&r.body), 5);
    assert!(ledger(&r.body).is_some());
    assert!(get_pod(&c, &ns, "dry").await.is_none());
}

#[tokio::test]
async fn long_sleep_is_accepted_because_grace_is_raised() {
    let (c, ns) = shared_namespace(Some("enforce"), json!({})).await;
    let r = create_pod(
        &c,
        &ns,
        &pod(
            "slow",
            json!({ "zerodrop.dev/prestop-sleep": "45s" }),
            json!([web()]),
        ),
        false,
    )
    .await;
    r.ok_status();
    assert_eq!(sleep_of(&r.body), 45);
    assert_eq!(r.body["spec"]["terminationGracePeriodSeconds"], 70);

    // The same sleep made by hand, without the grace rule, is rejected by the apiserver.
    let plain = namespace(&c, SHARED, None, json!({})).await;
    let mut by_hand = web();
    by_hand["lifecycle"] = json!({ "preStop": { "sleep": { "seconds": 45 } } });
    let r = create_pod(
        &c,
        &plain,
        &pod("by-hand", json!({}), json!([by_hand])),
        false,
    )
    .await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(
        r.body["message"].as_str().unwrap().contains("sleep"),
        "{}",
        r.body
    );
}

#[tokio::test]
async fn own_prestop_job_pods_and_tcp_probes_are_left_alone() {
    let (c, ns) = shared_namespace(Some("enforce"), json!({})).await;
    let mut own = web();
    own["lifecycle"] = json!({ "preStop": { "exec": { "command": ["/bin/drain"] } } });
    own["readinessProbe"] = json!({ "tcpSocket": { "port": 8080 } });
    let r = create_pod(&c, &ns, &pod("own", json!({}), json!([own])), false).await;
    r.ok_status();
    let stored = &r.body["spec"]["containers"][0];
    assert_eq!(
        stored["lifecycle"]["preStop"]["exec"]["command"],
        json!(["/bin/drain"])
    );
    assert_eq!(stored["readinessProbe"]["tcpSocket"]["port"], 8080);
    assert!(stored["readinessProbe"].get("httpGet").is_none());
    assert!(
        r.warnings.iter().any(|w| w.contains("tcpSocket readiness")),
        "{:?}",
        r.warnings
    );

    let mut job_pod = pod("job-pod", json!({}), json!([web()]));
    job_pod["metadata"]["ownerReferences"] = json!([{ "apiVersion": "batch/v1", "kind": "Job", "name": "j", "uid": "6f1c1c57-3e0e-4a4b-9c1a-2a6b5f6f7a01" }]);
    job_pod["spec"]["restartPolicy"] = json!("Never");
    let r = create_pod(&c, &ns, &job_pod, true).await;
    r.ok_status();
    assert!(ledger(&r.body).is_none());
    assert!(r.body["spec"]["containers"][0].get("lifecycle").is_none());
}

#[tokio::test]
async fn recreating_a_mutated_pod_does_not_inject_twice() {
    let (c, ns) = shared_namespace(Some("enforce"), json!({})).await;
    let first = create_pod(
        &c,
        &ns,
        &pod(
            "first",
            json!({ "zerodrop.dev/readiness-path": "/r" }),
            json!([web()]),
        ),
        false,
    )
    .await;
    first.ok_status();
    let mut again = first.body.clone();
    let meta = again["metadata"].as_object_mut().unwrap();
    for k in [
        "uid",
        "resourceVersion",
        "creationTimestamp",
        "managedFields",
    ] {
        meta.remove(k);
    }
    meta.insert("name".into(), json!("second"));
    again.as_object_mut().unwrap().remove("status");
    again["spec"].as_object_mut().unwrap().remove("nodeName");
    let second = create_pod(&c, &ns, &again, false).await;
    second.ok_status();
    assert_eq!(second.body["spec"], first.body["spec"]);
    assert_eq!(ledger(&second.body), ledger(&first.body));
}

#[tokio::test]
async fn bad_annotation_uses_the_default_and_warns() {
    let (c, ns) = shared_namespace(Some("enforce"), json!({})).await;
    let r = create_pod(
        &c,
        &ns,
        &pod(
            "banana",
            json!({ "zerodrop.dev/prestop-sleep": "banana" }),
            json!([web()]),
        ),
        false,
    )
    .await;
    r.ok_status();
    assert_eq!(sleep_of(&r.body), 5);
    let w = r
        .warnings
        .iter()
        .find(|w| w.contains("zerodrop.dev/prestop-sleep"))
        .expect("warning");
    assert!(w.contains("banana") && w.contains("10s"), "{w}");
}
