//! `zerodrop policy export | kubectl apply -f -`: the real command's output, every document
//! created in the apiserver as written, mutates a pod with the config it was given (1.36+);
//! below 1.36 the apiserver does not serve the policy's kind (404).

use crate::harness::{client, server_minor};
use serde_json::json;
use std::process::Command;
use std::time::Duration;
use zerodrop_testkit::cluster::{create_pod, has_prestop, label, namespace, pod, wait_for, web};

#[tokio::test]
async fn the_commands_output_applied_as_written_mutates_pods() {
    let c = client().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    std::fs::write(
        &config,
        "defaults:\n  prestop-sleep: 9s\nmax-grace-period: 40s\n",
    )
    .unwrap();
    let mode_label = "e2e.zerodrop.dev/cli";
    let out = Command::new(env!("CARGO_BIN_EXE_zerodrop"))
        .args([
            "policy",
            "export",
            "--name",
            "zerodrop-cli",
            "--namespace",
            "default",
        ])
        .args([
            "--mode-label",
            mode_label,
            "--exclude-namespace",
            "kube-system",
        ])
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let objects = zerodrop_testkit::yaml_documents(&text);
    let kinds: Vec<&str> = objects.iter().filter_map(|o| o["kind"].as_str()).collect();
    assert_eq!(
        kinds,
        [
            "ConfigMap",
            "MutatingAdmissionPolicy",
            "MutatingAdmissionPolicyBinding"
        ]
    );
    let minor = server_minor(&c).await;
    for object in &objects {
        let created = zerodrop_testkit::export::create(&c, object).await;
        let served = minor >= zerodrop_core::export::MIN_MINOR || object["kind"] == "ConfigMap";
        let want: &[u16] = if served { &[201, 409] } else { &[404] };
        assert!(
            want.contains(&created.status),
            "{}: {}",
            object["kind"],
            created.body
        );
    }
    if minor < zerodrop_core::export::MIN_MINOR {
        return;
    }
    let ns = namespace(&c, "none", None, json!({})).await;
    label(&c, &ns, json!({ mode_label: "enforce" })).await;
    wait_for(&c, &ns, Duration::from_secs(60), has_prestop).await;
    let got = create_pod(&c, &ns, &pod("web", json!({}), json!([web()])), true).await;
    let hook = &got.body["spec"]["containers"][0]["lifecycle"]["preStop"];
    assert_eq!(hook["sleep"]["seconds"], 9, "{}", got.body);
    // 9 + 20 s drain + 5 s margin, under the 40 s cap.
    assert_eq!(got.body["spec"]["terminationGracePeriodSeconds"], 34);
}
