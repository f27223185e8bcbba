//! Webhook outage with failurePolicy Ignore: pods are still created; mutation resumes after.

use crate::harness::{Zerodrop, client, free_port};
use serde_json::json;
use zerodrop_testkit::cluster::{
    create_pod, delete_webhooks, namespace, pod, register, wait_for_webhook, web,
};

#[tokio::test]
async fn stopped_webhook_lets_pods_through_and_mutation_resumes() {
    let c = client().await;
    let name = "outage";
    let mut zd = Zerodrop::start(free_port());
    register(&c, name, zd.tls_port, &zd.ca_pem).await;
    zd.wait_ready().await;
    let ns = namespace(&c, name, Some("enforce"), json!({})).await;
    wait_for_webhook(&c, &ns).await;

    zd.stop();
    for i in 0..3 {
        let r = create_pod(
            &c,
            &ns,
            &pod(&format!("escaped-{i}"), json!({}), json!([web()])),
            false,
        )
        .await;
        r.ok_status();
        assert!(
            r.body["spec"]["containers"][0].get("lifecycle").is_none(),
            "{}",
            r.body
        );
    }

    let zd = zd.restart();
    zd.wait_ready().await;
    wait_for_webhook(&c, &ns).await;
    let r = create_pod(&c, &ns, &pod("after", json!({}), json!([web()])), false).await;
    r.ok_status();
    assert_eq!(
        r.body["spec"]["containers"][0]["lifecycle"]["preStop"]["sleep"]["seconds"],
        5
    );
    delete_webhooks(&c, name).await;
}
