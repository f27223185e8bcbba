//! Kyverno beside a harness apiserver (experiments/peers): its CRDs, its namespace and config,
//! the two peer policies, and the admission controller as a process outside the cluster.
//! Shared by tests/e2e/peers and the peers_bench program.

use crate::cluster::{PEER_LABEL, post};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::runtime::wait::{await_condition, conditions::is_crd_established};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// Values of `PEER_LABEL` the two policies select.
pub const CLUSTER_POLICY: &str = "kyverno-clusterpolicy";
pub const MUTATING_POLICY: &str = "kyverno-mutatingpolicy";
/// The label (setup.yaml) a namespace needs for the apiserver to call Kyverno at all.
pub const CALLED: (&str, &str) = ("e2e.zerodrop.dev/kyverno", "called");

/// The labels of a namespace where Kyverno is called and `policy` (a label above) selects it.
pub fn labels(policy: &str) -> Value {
    json!({ PEER_LABEL: policy, CALLED.0: CALLED.1 })
}

fn peers_dir() -> PathBuf {
    crate::root().join("experiments/peers")
}

/// The YAML documents of a file under experiments/peers.
pub fn documents(file: &str) -> Vec<Value> {
    yaml_documents(&peers_dir().join(file))
}

fn yaml_documents(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    crate::yaml_documents(&text)
}

/// The two policies and where each is created.
pub fn policies() -> Vec<(&'static str, Value)> {
    vec![
        (
            "/apis/kyverno.io/v1/clusterpolicies",
            documents("clusterpolicy.yaml").remove(0),
        ),
        (
            "/apis/policies.kyverno.io/v1/mutatingpolicies",
            documents("mutatingpolicy.yaml").remove(0),
        ),
    ]
}

/// Runs a script under tools/kyverno that prints a directory on its last line.
fn script(name: &str) -> PathBuf {
    let out = Command::new(crate::root().join("tools/kyverno").join(name))
        .stderr(Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("run {name}: {e}"));
    assert!(out.status.success(), "{name} failed");
    let text = String::from_utf8(out.stdout).unwrap();
    PathBuf::from(text.trim().lines().last().unwrap())
}

/// Kyverno's CRDs (its module, fetched, not built).
pub fn crds_dir() -> PathBuf {
    script("crds.sh")
}

/// The built admission controller: `$ZERODROP_KYVERNO` if set, else tools/kyverno/build.sh.
pub fn binary() -> PathBuf {
    match std::env::var_os("ZERODROP_KYVERNO") {
        Some(dir) => PathBuf::from(dir).join("kyverno"),
        None => script("build.sh").join("kyverno"),
    }
}

/// Creates every CRD of `dir` and waits until the apiserver serves them.
pub async fn install_crds(c: &kube::Client, dir: &Path) {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    let path = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions";
    let mut names = Vec::new();
    for file in files {
        for crd in yaml_documents(&file) {
            let r = post(c, path, &crd).await;
            assert!(
                matches!(r.status, 201 | 409),
                "{}: {}",
                file.display(),
                r.body
            );
            names.push(crd["metadata"]["name"].as_str().unwrap().to_owned());
        }
    }
    let api = kube::Api::<CustomResourceDefinition>::all(c.clone());
    for name in names {
        let established = await_condition(api.clone(), &name, is_crd_established());
        tokio::time::timeout(Duration::from_secs(60), established)
            .await
            .unwrap_or_else(|_| panic!("{name} not established"))
            .unwrap();
    }
}

/// Namespace, ConfigMaps (setup.yaml) and the policies; then the process is started by the
/// caller from `command` (tests tie it to the test process, the bench keeps its pid).
pub async fn install(c: &kube::Client) {
    install_crds(c, &crds_dir()).await;
    for doc in documents("setup.yaml") {
        let path = match doc["kind"].as_str() {
            Some("Namespace") => "/api/v1/namespaces".to_owned(),
            Some("ConfigMap") => "/api/v1/namespaces/kyverno/configmaps".to_owned(),
            other => panic!("unexpected {other:?} in setup.yaml"),
        };
        let r = post(c, &path, &doc).await;
        assert!(matches!(r.status, 201 | 409), "{path}: {}", r.body);
    }
    for (path, policy) in policies() {
        let r = post(c, path, &policy).await;
        assert!(matches!(r.status, 201 | 409), "{path}: {}", r.body);
    }
}

/// Kyverno's admission controller run as its DEVELOPMENT.md runs it outside a cluster, with the
/// Helm chart's defaults but for what needs controllers not run here (admission reports).
pub fn command(kubeconfig: &Path, port: u16, metrics_port: u16) -> Command {
    let mut cmd = Command::new(binary());
    cmd.arg(format!("--kubeconfig={}", kubeconfig.display()))
        .arg(format!("--serverIP=127.0.0.1:{port}"))
        .arg("--webhookServerHost=127.0.0.1")
        .arg(format!("--webhookServerPort={port}"))
        .arg("--caSecretName=kyverno-svc.kyverno.svc.kyverno-tls-ca")
        .arg("--tlsSecretName=kyverno-svc.kyverno.svc.kyverno-tls-pair")
        .arg("--backgroundServiceAccountName=system:serviceaccount:kyverno:kyverno-background-controller")
        .arg("--reportsServiceAccountName=system:serviceaccount:kyverno:kyverno-reports-controller")
        .arg("--admissionReports=false")
        .arg("--omitEvents=PolicyApplied,PolicySkipped")
        .arg("--metricsHost=127.0.0.1")
        .arg(format!("--metricsPort={metrics_port}"))
        .arg("--controllerRuntimeMetricsAddress=0")
        .env("KYVERNO_NAMESPACE", "kyverno")
        .env("KYVERNO_SERVICEACCOUNT_NAME", "kyverno-admission-controller")
        .env("KYVERNO_DEPLOYMENT", "kyverno-admission-controller")
        .env("KYVERNO_POD_NAME", "kyverno-admission-controller-local")
        .env("KYVERNO_SVC", "kyverno-svc")
        .env("INIT_CONFIG", "kyverno")
        .env("METRICS_CONFIG", "kyverno-metrics")
        .stdin(Stdio::null());
    cmd
}
