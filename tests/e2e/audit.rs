//! `zerodrop audit` against the real apiserver: --fix output is valid, the cluster audit shows
//! modes, workloads and escaped pods, and PolicyReports are written when the CRD exists.

use crate::harness::{client, control_plane};
use crate::{SHARED, shared, shared_namespace};
use serde_json::{Value, json};
use std::process::Command;
use zerodrop_testkit::cluster::{create_pod, namespace, pod, post, web};

/// Runs the real binary: (exit code, stdout, stderr).
pub fn zerodrop_audit(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_zerodrop"))
        .arg("audit")
        .args(args)
        .arg("--kubeconfig")
        .arg(&control_plane().kubeconfig)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn audit_with_policy_report(ns: &str) -> (i32, String, String) {
    zerodrop_audit(&[
        "--cluster",
        "-n",
        ns,
        "--policy-report",
        "--fail-on",
        "none",
    ])
}

pub fn cluster_report(ns: &str) -> Value {
    let (code, out, err) =
        zerodrop_audit(&["--cluster", "-n", ns, "-o", "json", "--fail-on", "none"]);
    assert_eq!(code, 0, "{err}");
    serde_json::from_str(&out).unwrap()
}

#[tokio::test]
async fn fixed_manifests_are_accepted_by_the_apiserver() {
    let c = client().await;
    let target = namespace(&c, "none", None, json!({})).await;
    let files = [
        "web.yaml",
        "multi.yaml",
        "jobs.yaml",
        "grace.yaml",
        "helm-output.yaml",
    ]
    .map(|f| format!("tests/fixtures/manifests/{f}"))
    .join(",");
    let (code, fixed, err) = zerodrop_audit(&["-f", &files, "--fix"]);
    assert_eq!(code, 1, "{err}");
    let mut checked = 0;
    for doc in serde_yaml_ng::Deserializer::from_str(&fixed) {
        let Ok(mut obj) = <Value as serde::Deserialize>::deserialize(doc) else {
            continue;
        };
        let items = match obj.get("kind").and_then(Value::as_str) {
            Some("List") => obj["items"].as_array().cloned().unwrap_or_default(),
            Some(_) => vec![obj.take()],
            None => continue,
        };
        for mut item in items {
            item["metadata"]["namespace"] = json!(target);
            let (kind, version) = (
                item["kind"].as_str().unwrap().to_owned(),
                item["apiVersion"].as_str().unwrap().to_owned(),
            );
            let plural = format!("{}s", kind.to_lowercase());
            let base = if version == "v1" {
                "/api/v1".to_owned()
            } else {
                format!("/apis/{version}")
            };
            let r = post(
                &c,
                &format!("{base}/namespaces/{target}/{plural}?dryRun=All"),
                &item,
            )
            .await;
            assert!((200..300).contains(&r.status), "{kind}: {}", r.body);
            checked += 1;
        }
    }
    assert!(checked >= 9, "only {checked} objects checked");
}

#[tokio::test]
async fn cluster_audit_shows_each_namespace_mode_and_what_would_change() {
    shared().await;
    let c = client().await;
    let deployment = zerodrop_testkit::cluster::deployment(0, web());
    for (mode, shown) in [
        (Some("enforce"), "enforce"),
        (Some("audit"), "audit"),
        (None, "off"),
    ] {
        let ns = namespace(&c, SHARED, mode, json!({})).await;
        zerodrop_testkit::cluster::create_deployment(&c, &ns, &deployment)
            .await
            .ok_status();
        let report = cluster_report(&ns);
        assert_eq!(report["namespaces"][0]["mode"], shown);
        let w = &report["workloads"][0];
        assert_eq!(
            (w["kind"].as_str(), w["name"].as_str()),
            (Some("Deployment"), Some("shop")),
            "{report}"
        );
        assert_eq!(w["changes"][0]["kind"], "prestop", "{shown}: {report}");
        // The Deployment's ReplicaSet mirrors it and is not reported twice.
        assert_eq!(report["workloads"].as_array().unwrap().len(), 1, "{report}");
    }
}

#[tokio::test]
async fn policy_reports_need_the_crd_and_are_written_when_it_exists() {
    let (c, ns) = shared_namespace(Some("enforce"), json!({})).await;
    create_pod(&c, &ns, &pod("p", json!({}), json!([web()])), false)
        .await
        .ok_status();
    let deployment = zerodrop_testkit::cluster::deployment(0, web());
    zerodrop_testkit::cluster::create_deployment(&c, &ns, &deployment)
        .await
        .ok_status();
    let report = || audit_with_policy_report(&ns);
    policy_reports().await;
    // Discovery may list the CRD a moment before its endpoint takes writes.
    let started = std::time::Instant::now();
    loop {
        let (code, _, err) = report();
        assert_eq!(code, 0, "{err}");
        if err.contains("wrote 1 PolicyReports") {
            break;
        }
        assert!(started.elapsed().as_secs() < 30, "{err}");
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    let req = http::Request::get(format!(
        "/apis/wgpolicyk8s.io/v1alpha2/namespaces/{ns}/policyreports/zerodrop"
    ))
    .body(Vec::new())
    .unwrap();
    let report: Value = c.request(req).await.unwrap();
    // The Deployment's template would change; the pod went through the webhook and did not escape.
    assert_eq!(report["summary"]["fail"], 1, "{report}");
    let results = report["results"].as_array().unwrap();
    let rollout = results
        .iter()
        .find(|r| r["rule"] == "lossless-rollout")
        .expect("lossless-rollout result");
    assert_eq!(rollout["resources"][0]["name"], "shop");
    assert_eq!(rollout["resources"][0]["apiVersion"], "apps/v1", "{report}");
    assert!(!results.iter().any(|r| r["rule"] == "escaped"), "{report}");
}

/// The PolicyReport CRD, installed once per control plane by whichever test needs it first,
/// after checking that `--policy-report` without it says so and writes nothing: so the
/// "not installed" half always runs first, whatever order the tests run in.
pub async fn policy_reports() {
    static CRD: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    CRD.get_or_init(|| async {
        let c = client().await;
        // Not served yet: every test that installs CRDs carrying it (Kyverno's) calls this first.
        let r = post(&c, "/apis/wgpolicyk8s.io/v1alpha2", &json!({})).await;
        assert_eq!(
            r.status, 404,
            "the PolicyReport CRD exists before this helper installed it: {}",
            r.body
        );
        let ns = namespace(&c, SHARED, Some("enforce"), json!({})).await;
        let (code, _, err) = audit_with_policy_report(&ns);
        assert_eq!(code, 0);
        assert!(
            err.contains("PolicyReport CRD (wgpolicyk8s.io/v1alpha2) is not installed"),
            "{err}"
        );
        let crd: Value =
            serde_json::from_str(include_str!("../fixtures/policyreport-crd.json")).unwrap();
        post(
            &c,
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
            &crd,
        )
        .await
        .ok_status();
        // The CRD takes a moment to be served.
        let started = std::time::Instant::now();
        while !zerodrop::audit::policy_report::installed(&c).await {
            assert!(
                started.elapsed().as_secs() < 30,
                "the PolicyReport CRD is not served"
            );
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        }
    })
    .await;
}
