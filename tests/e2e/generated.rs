//! Hundreds of generated Pods through the real apiserver: whenever the apiserver accepts a Pod
//! as sent, it also accepts it with zerodrop's patch (validation runs after mutation, and a
//! rejected patch fails the create even with failurePolicy Ignore).

use zerodrop_testkit::pods;

use crate::harness::{client, log_line};
use crate::{SHARED, shared, shared_namespace};
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, TestRunner};
use serde_json::json;
use zerodrop_testkit::cluster::{create_pod, namespace};

#[tokio::test]
async fn generated_pods_valid_as_sent_stay_valid_with_zerodrops_patch() {
    shared().await;
    let c = client().await;
    let plain = namespace(&c, SHARED, None, json!({})).await;
    let enforce = namespace(&c, SHARED, Some("enforce"), json!({})).await;
    let mut runner = TestRunner::new(Config {
        rng_seed: proptest::test_runner::RngSeed::Fixed(7),
        ..Config::default()
    });
    let (mut accepted, mut mutated) = (0, 0);
    for i in 0..300 {
        let mut pod = pods::pod_any().new_tree(&mut runner).unwrap().current();
        pod["metadata"]["name"] = json!(format!("gen-{i}"));
        pod["metadata"]["namespace"] = json!(null);
        let as_sent = create_pod(&c, &plain, &pod, true).await;
        if as_sent.status != 201 {
            continue; // invalid before zerodrop saw it (duplicate port names and the like)
        }
        accepted += 1;
        let through = create_pod(&c, &enforce, &pod, true).await;
        assert_eq!(
            through.status, 201,
            "zerodrop's patch made a valid pod invalid: {}\npod: {pod}",
            through.body
        );
        if through
            .body
            .pointer("/metadata/annotations/zerodrop.dev~1injected")
            .is_some()
        {
            mutated += 1;
        }
    }
    assert!(accepted >= 200, "only {accepted} generated pods were valid");
    assert!(
        mutated >= accepted / 2,
        "only {mutated} of {accepted} were mutated"
    );
}

#[tokio::test]
async fn logs_carry_no_secret_key_or_object() {
    let (c, ns) = shared_namespace(Some("enforce"), json!({})).await;
    let marker = "zd-marker-7f3a9c";
    let mut container = zerodrop_testkit::cluster::web();
    container["env"] = json!([{ "name": "TOKEN", "value": marker }]);
    let pod = zerodrop_testkit::cluster::pod(
        "logged",
        json!({ "example.com/note": marker }),
        json!([container]),
    );
    create_pod(&c, &ns, &pod, false).await.ok_status();
    // The pod's admission is logged (by namespace and name), its content is not.
    let file = crate::shared().await.zerodrop.lock().unwrap().log.clone();
    let line = log_line(&file, std::time::Duration::from_secs(5), |l| {
        l.contains(&ns) && l.contains("\"name\":\"logged\"")
    })
    .await
    .expect("admission line");
    let logs = std::fs::read_to_string(&file).unwrap();
    assert!(
        line.contains("\"decision\":\"mutated\"") && line.contains("\"duration_us\""),
        "{line}"
    );
    assert!(
        !logs.contains(marker),
        "an object's content reached the logs"
    );
    for secret in ["PRIVATE KEY", "BEGIN CERTIFICATE", "ca.key", "tls.key\":"] {
        assert!(!logs.contains(secret), "{secret} in logs");
    }
}
