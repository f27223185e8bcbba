//! Image inspection through the real apiserver and kube-controller-manager: a Deployment on a
//! shell-form image gets the workload warning (its images inspected within /validate's
//! budget), its pods get the cached verdict, and with shell-exec they get the rewrite.

use crate::harness::{Zerodrop, client, free_port};
use serde_json::json;
use zerodrop_testkit::cluster::{
    create_deployment, delete_webhooks, deployment, first_pod, namespace, register,
    wait_for_webhook,
};
use zerodrop_testkit::registry::{PASSWORD, Registry, USER};

#[tokio::test]
async fn a_shell_form_image_is_found_through_the_webhook_and_rewritten_with_shell_exec() {
    use base64::Engine as _;
    let registry = Registry::start(true);
    let image = registry.push_shell_form("shop/web", "./web --port 8080");
    let dir = tempfile::tempdir().unwrap();
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
    std::fs::write(
        dir.path().join("config.json"),
        json!({ "auths": { registry.host.clone(): { "auth": auth } } }).to_string(),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("ca.pem"),
        registry.ca_pem.as_deref().unwrap(),
    )
    .unwrap();
    let config = dir.path().join("config.json").display().to_string();
    let ca = dir.path().join("ca.pem").display().to_string();
    let zd = Zerodrop::start_with(
        free_port(),
        &[
            "--image-inspection=true",
            // The mechanism, not the default's margin: a loaded 2-core CI machine can take
            // more than 1 s to read the layers.
            "--image-validate-budget",
            "5s",
            "--registry-config",
            &config,
            "--registry-ca",
            &ca,
        ],
    );
    let c = client().await;
    let name = "images";
    register(&c, name, zd.tls_port, &zd.ca_pem).await;
    zd.wait_ready().await;
    let ns = namespace(&c, name, Some("enforce"), json!({})).await;
    wait_for_webhook(&c, &ns).await;

    let container = json!({ "name": "web", "image": image, "readinessProbe": { "httpGet": { "path": "/ready", "port": 8080 } } });
    let mut shop = deployment(1, container);
    shop["spec"]["template"]["metadata"]["annotations"] =
        json!({ "zerodrop.dev/shell-exec": "true" });
    let r = create_deployment(&c, &ns, &shop).await;
    r.ok_status();
    // The workload's answer: its image was inspected within /validate's budget.
    assert!(
        r.warnings
            .iter()
            .any(|w| w.contains("shell command rewritten to exec")),
        "{:?}",
        r.warnings
    );
    // The controller's pod: the cached verdict, the rewrite, the ledger.
    let pod = first_pod(&c, &ns, "shop").await;
    assert_eq!(
        pod["spec"]["containers"][0]["command"],
        json!(["/bin/sh", "-c", "exec ./web --port 8080"]),
        "{pod}"
    );
    let ledger = pod["metadata"]["annotations"]["zerodrop.dev/injected"]
        .as_str()
        .unwrap();
    assert!(ledger.contains("command"), "{ledger}");

    // Without shell-exec: the warning names the shell, the pod is left as it is.
    let mut warned = deployment(
        1,
        json!({ "name": "web", "image": image, "readinessProbe": { "httpGet": { "path": "/ready", "port": 8080 } } }),
    );
    warned["metadata"]["name"] = json!("warned");
    warned["spec"]["selector"]["matchLabels"]["app"] = json!("warned");
    warned["spec"]["template"]["metadata"]["labels"]["app"] = json!("warned");
    let r = create_deployment(&c, &ns, &warned).await;
    r.ok_status();
    assert!(
        r.warnings
            .iter()
            .any(|w| w.contains("/bin/sh (dash) stays PID 1")),
        "{:?}",
        r.warnings
    );
    delete_webhooks(&c, name).await;
}
