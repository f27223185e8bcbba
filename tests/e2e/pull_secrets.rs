//! Private images through the real apiserver, with zerodrop running under the chart's own
//! rights for `images.pullSecrets=true` (a ServiceAccount token, RBAC enforced): a workload's
//! pull secret, a ServiceAccount's, and a namespace with neither.

use crate::harness::{Zerodrop, client, control_plane, free_port, log_line};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use zerodrop_testkit::cluster::{
    create_deployment, delete_webhooks, deployment, first_pod, namespace, post, register,
    wait_for_webhook,
};
use zerodrop_testkit::registry::{PASSWORD, Registry, USER};

/// The chart's ServiceAccount and cluster rights for `sets`, created in `ns`; a kubeconfig
/// that authenticates as that ServiceAccount (a TokenRequest token).
async fn as_the_chart(c: &kube::Client, ns: &str, sets: &[&str], dir: &Path) -> PathBuf {
    let objs = zerodrop_testkit::helm::render_release("zd-ps", ns, sets).unwrap();
    let mut account = None;
    for obj in &objs {
        let path = match obj["kind"].as_str().unwrap() {
            "ServiceAccount" => format!("/api/v1/namespaces/{ns}/serviceaccounts"),
            "ClusterRole" => "/apis/rbac.authorization.k8s.io/v1/clusterroles".into(),
            "ClusterRoleBinding" => "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings".into(),
            _ => continue,
        };
        post(c, &path, obj).await.ok_status();
        if obj["kind"] == "ServiceAccount" {
            account = Some(obj["metadata"]["name"].as_str().unwrap().to_owned());
        }
    }
    let account = account.unwrap();
    let r = post(
        c,
        &format!("/api/v1/namespaces/{ns}/serviceaccounts/{account}/token"),
        &json!({ "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                 "spec": { "expirationSeconds": 3600 } }),
    )
    .await;
    r.ok_status();
    let token = r.body["status"]["token"].as_str().unwrap().to_owned();
    let text = std::fs::read_to_string(&control_plane().kubeconfig).unwrap();
    let mut doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
    doc["users"][0]["user"] = serde_yaml_ng::to_value(json!({ "token": token })).unwrap();
    let path = dir.join("kubeconfig");
    std::fs::write(&path, serde_yaml_ng::to_string(&doc).unwrap()).unwrap();
    path
}

fn pull_secret(name: &str, registry: &str) -> Value {
    use base64::Engine as _;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let config = json!({ "auths": { registry: { "auth": b64(&format!("{USER}:{PASSWORD}")) } } });
    json!({ "apiVersion": "v1", "kind": "Secret", "metadata": { "name": name },
            "type": "kubernetes.io/dockerconfigjson",
            "data": { ".dockerconfigjson": b64(&config.to_string()) } })
}

fn named(mut d: Value, name: &str) -> Value {
    d["metadata"]["name"] = json!(name);
    d["spec"]["selector"]["matchLabels"]["app"] = json!(name);
    d["spec"]["template"]["metadata"]["labels"]["app"] = json!(name);
    d
}

/// A registry with TLS and Basic auth holding `private/<app>:1`: a shell-form `CMD ./<app>`
/// on a Debian-like layer (`/bin/sh -> dash`).
fn private_image(app: &str) -> (Registry, String) {
    let registry = Registry::start(true);
    let image = registry.push_shell_form(&format!("private/{app}"), &format!("./{app}"));
    (registry, image)
}

#[tokio::test]
async fn private_images_are_inspected_with_the_pods_own_pull_secrets_under_the_charts_rights() {
    let (registry, image) = private_image("web");
    let c = client().await;
    let name = "pullsecrets";
    let release = namespace(&c, "none", None, json!({})).await;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = as_the_chart(&c, &release, &["images.pullSecrets=true"], dir.path()).await;
    std::fs::write(
        dir.path().join("ca.pem"),
        registry.ca_pem.as_deref().unwrap(),
    )
    .unwrap();
    let ca = dir.path().join("ca.pem").display().to_string();
    // zerodrop has no login of its own: only the pods' secrets open the repository.
    let zd = Zerodrop::start_files(
        free_port(),
        &kubeconfig,
        &[
            "--image-inspection=true",
            // The mechanism, not the default's margin: a loaded 2-core CI machine can take
            // more than 1 s to read the layers.
            "--image-validate-budget",
            "5s",
            "--image-pull-secrets=true",
            "--registry-ca",
            &ca,
        ],
    );
    register(&c, name, zd.tls_port, &zd.ca_pem).await;
    zd.wait_ready().await;
    let ns = namespace(&c, name, Some("enforce"), json!({})).await;
    wait_for_webhook(&c, &ns).await;
    let container = json!({ "name": "web", "image": image,
        "readinessProbe": { "httpGet": { "path": "/ready", "port": 8080 } } });
    let stays = |warnings: &[String]| {
        warnings
            .iter()
            .any(|w| w.contains("/bin/sh (dash) stays PID 1"))
    };

    // The workload's own pull secret.
    post(
        &c,
        &format!("/api/v1/namespaces/{ns}/secrets"),
        &pull_secret("regcred", &registry.host),
    )
    .await
    .ok_status();
    let mut own = named(deployment(1, container.clone()), "own");
    own["spec"]["template"]["spec"]["imagePullSecrets"] = json!([{ "name": "regcred" }]);
    let r = create_deployment(&c, &ns, &own).await;
    r.ok_status();
    assert!(stays(&r.warnings), "{:?}\n{}", r.warnings, zd.logs());

    // A ServiceAccount's pull secret: the template names none; its pods get the account's
    // (the ServiceAccount admission plugin), and with shell-exec the rewrite.
    post(
        &c,
        &format!("/api/v1/namespaces/{ns}/secrets"),
        &pull_secret("robot", &registry.host),
    )
    .await
    .ok_status();
    post(
        &c,
        &format!("/api/v1/namespaces/{ns}/serviceaccounts"),
        &json!({ "apiVersion": "v1", "kind": "ServiceAccount", "metadata": { "name": "builder" },
                 "imagePullSecrets": [{ "name": "robot" }] }),
    )
    .await
    .ok_status();
    let mut by_account = named(deployment(1, container.clone()), "by-account");
    by_account["spec"]["template"]["spec"]["serviceAccountName"] = json!("builder");
    by_account["spec"]["template"]["metadata"]["annotations"] =
        json!({ "zerodrop.dev/shell-exec": "true" });
    let r = create_deployment(&c, &ns, &by_account).await;
    r.ok_status();
    assert!(
        r.warnings
            .iter()
            .any(|w| w.contains("shell command rewritten to exec")),
        "{:?}",
        r.warnings
    );
    let pod = first_pod(&c, &ns, "by-account").await;
    assert_eq!(
        pod["spec"]["imagePullSecrets"],
        json!([{ "name": "robot" }])
    );
    assert_eq!(
        pod["spec"]["containers"][0]["command"],
        json!(["/bin/sh", "-c", "exec ./web"]),
        "{pod}"
    );

    // Another namespace, no secret: what the first one's secrets read is not its to know.
    let other = namespace(&c, name, Some("enforce"), json!({})).await;
    let r = create_deployment(&c, &other, &named(deployment(1, container), "none")).await;
    r.ok_status();
    assert!(!stays(&r.warnings), "{:?}", r.warnings);
    // ZD305 is an info finding (no warning); the log line says which namespace and why.
    let line = log_line(&zd.log, std::time::Duration::from_secs(5), |l| {
        l.contains("image not inspected")
            && l.contains(&format!("\"namespace\":\"{other}\""))
            && l.contains("unauthorized")
    })
    .await;
    assert!(line.is_some(), "{}", zd.logs());
    delete_webhooks(&c, name).await;
}

/// `zerodrop audit --cluster --images` as a platform engineer runs it (their kubeconfig): each
/// workload's images read with its own pull secrets, the finding naming the digest; without
/// --image-pull-secrets the same image is ZD305 "unauthorized".
#[tokio::test]
async fn the_cluster_audit_inspects_images_with_each_workloads_pull_secrets() {
    let (registry, image) = private_image("api");
    let digest = registry.crane(&["digest", &image]);
    let c = client().await;
    let ns = namespace(&c, "none", Some("enforce"), json!({})).await;
    post(
        &c,
        &format!("/api/v1/namespaces/{ns}/secrets"),
        &pull_secret("regcred", &registry.host),
    )
    .await
    .ok_status();
    let mut api = named(
        deployment(1, json!({ "name": "api", "image": image })),
        "api",
    );
    api["spec"]["template"]["spec"]["imagePullSecrets"] = json!([{ "name": "regcred" }]);
    create_deployment(&c, &ns, &api).await.ok_status();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("ca.pem"),
        registry.ca_pem.as_deref().unwrap(),
    )
    .unwrap();
    let ca = dir.path().join("ca.pem").display().to_string();
    let audit = |extra: &[&str]| -> Vec<Value> {
        let mut args = vec!["--cluster", "-n", &ns, "-o", "json", "--fail-on", "none"];
        args.extend(["--images", "--registry-ca", &ca]);
        args.extend(extra);
        let (code, out, err) = crate::audit::zerodrop_audit(&args);
        assert_eq!(code, 0, "{err}");
        let report: Value = serde_json::from_str(&out).unwrap();
        let entry = report["workloads"]
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["kind"] == "Deployment" && w["name"] == "api")
            .cloned()
            .unwrap_or_else(|| panic!("{report}"));
        entry["findings"].as_array().unwrap().clone()
    };
    let findings = audit(&["--image-pull-secrets"]);
    let shell = findings
        .iter()
        .find(|f| f["code"] == "ZD303")
        .unwrap_or_else(|| panic!("{findings:?}"));
    let message = shell["message"].as_str().unwrap();
    assert!(
        message.contains(&digest[..15]) && message.contains("/bin/sh (dash)"),
        "{message}"
    );
    let findings = audit(&[]);
    assert!(
        !findings.iter().any(|f| f["code"] == "ZD303"),
        "{findings:?}"
    );
    let unknown = findings
        .iter()
        .find(|f| f["code"] == "ZD305")
        .unwrap_or_else(|| panic!("{findings:?}"));
    assert!(
        unknown["message"]
            .as_str()
            .unwrap()
            .contains("unauthorized"),
        "{unknown}"
    );
}
