//! `zerodrop audit -f` over a corpus of realistic manifests: golden outputs for every format,
//! exit codes, and the `--fix` round trip.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

const CORPUS: &str = "tests/fixtures/manifests";

fn audit(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_zerodrop"))
        .arg("audit")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("NO_COLOR")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input
        .write_all(stdin.unwrap_or_default().as_bytes())
        .unwrap();
    drop(input);
    child.wait_with_output().unwrap()
}

fn golden(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/audit-golden")
        .join(name);
    if std::env::var_os("ZERODROP_UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).unwrap();
    }
    let expected =
        std::fs::read_to_string(&path).unwrap_or_else(|_| panic!("missing {}", path.display()));
    assert_eq!(
        actual, expected,
        "{name} differs from the golden file (ZERODROP_UPDATE_GOLDEN=1 rewrites it)"
    );
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

#[test]
fn golden_outputs_for_every_format() {
    for (format, file) in [
        ("table", "table.txt"),
        ("json", "report.json"),
        ("sarif", "report.sarif.json"),
    ] {
        let out = audit(&["-f", CORPUS, "-o", format], None);
        // The broken file is an input error: exit 2, and the rest is still audited.
        assert_eq!(out.status.code(), Some(2), "{format}");
        golden(file, &stdout(&out));
    }
    let out = audit(&["-f", CORPUS, "--fix"], None);
    golden("fixed.yaml", &stdout(&out));
}

#[test]
fn table_has_no_colour_when_not_a_terminal() {
    let out = audit(&["-f", &format!("{CORPUS}/web.yaml")], None);
    assert!(!stdout(&out).contains('\x1b'));
}

#[test]
fn json_schema_has_what_the_docs_promise() {
    let out = audit(&["-f", &format!("{CORPUS}/web.yaml"), "-o", "json"], None);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["version"], 1);
    let w = &report["workloads"][0];
    for key in [
        "file",
        "line",
        "kind",
        "namespace",
        "name",
        "mode",
        "changes",
        "findings",
        "patch",
    ] {
        assert!(w.get(key).is_some(), "missing {key}");
    }
    // The patch is against the whole object and applies to it.
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(CORPUS)
            .join("web.yaml"),
    )
    .unwrap();
    let doc: serde_json::Value =
        serde_yaml_ng::from_str(text.split("\n---\n").next().unwrap()).unwrap();
    let patch: json_patch::Patch = serde_json::from_value(w["patch"].clone()).unwrap();
    let mut fixed = doc.clone();
    json_patch::patch(&mut fixed, &patch).unwrap();
    assert_eq!(
        fixed["spec"]["template"]["spec"]["containers"][0]["lifecycle"]["preStop"]["sleep"]["seconds"],
        5
    );
}

#[test]
fn exit_codes_follow_fail_on() {
    let web = format!("{CORPUS}/web.yaml");
    let jobs = format!("{CORPUS}/jobs.yaml");
    assert_eq!(audit(&["-f", &web], None).status.code(), Some(1));
    assert_eq!(
        audit(&["-f", &web, "--fail-on", "none"], None)
            .status
            .code(),
        Some(0)
    );
    assert_eq!(audit(&["-f", &jobs], None).status.code(), Some(0));
    assert_eq!(
        audit(&["-f", &jobs, "--fail-on", "warning"], None)
            .status
            .code(),
        Some(0)
    );
    let warning_only = "apiVersion: v1\nkind: Pod\nmetadata: {name: p, annotations: {zerodrop.dev/prestop-sleep: '0'}}\nspec:\n  containers: [{name: a, image: i, ports: [{containerPort: 80}]}]\n";
    assert_eq!(
        audit(&["-f", "-", "--fail-on", "change"], Some(warning_only))
            .status
            .code(),
        Some(0)
    );
    assert_eq!(
        audit(&["-f", "-", "--fail-on", "warning"], Some(warning_only))
            .status
            .code(),
        Some(1)
    );
    assert_eq!(
        audit(&["-f", "does/not/exist.yaml"], None).status.code(),
        Some(2)
    );
    assert_eq!(audit(&["--bogus"], None).status.code(), Some(2));
}

#[test]
fn namespace_simulation_and_kube_version() {
    let web = format!("{CORPUS}/web.yaml");
    let off = audit(&["-f", &web, "--namespace-mode", "off", "-o", "json"], None);
    let report: serde_json::Value = serde_json::from_slice(&off.stdout).unwrap();
    assert_eq!(report["workloads"][0]["skipped"], "mode is off");
    assert_eq!(off.status.code(), Some(0));
    let slow = audit(
        &[
            "-f",
            &web,
            "--namespace-annotation",
            "zerodrop.dev/prestop-sleep=12s",
            "-o",
            "json",
        ],
        None,
    );
    let report: serde_json::Value = serde_json::from_slice(&slow.stdout).unwrap();
    assert_eq!(report["workloads"][0]["changes"][0]["seconds"], 12);
    let old = audit(&["-f", &web, "--kube-version", "1.29", "-o", "json"], None);
    let report: serde_json::Value = serde_json::from_slice(&old.stdout).unwrap();
    assert_eq!(report["workloads"][0]["changes"][0]["action"], "exec");
}

#[test]
fn fix_round_trip_leaves_nothing_to_change() {
    let valid: Vec<String> = [
        "web.yaml",
        "multi.yaml",
        "jobs.yaml",
        "grace.yaml",
        "helm-output.yaml",
    ]
    .iter()
    .map(|f| format!("{CORPUS}/{f}"))
    .collect();
    let fixed = audit(&["-f", &valid.join(","), "--fix"], None);
    assert_eq!(
        fixed.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&fixed.stderr)
    );
    let text = stdout(&fixed);
    // Documents zerodrop does not touch come out byte for byte.
    assert!(
        text.contains("  selector: {app: web}\n  ports:\n    - {port: 80, targetPort: http}\n")
    );
    assert!(text.contains("# The shop's web tier"));
    let again = audit(&["-f", "-", "-o", "json"], Some(&text));
    assert_eq!(again.status.code(), Some(0), "{}", stdout(&again));
    let report: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert!(
        report["workloads"]
            .as_array()
            .unwrap()
            .iter()
            .all(|w| w["patch"].as_array().unwrap().is_empty())
    );
    assert_eq!(report["workloads"].as_array().unwrap().len(), 9);
}

/// `helm template | zerodrop audit -f -` sees the whole release: its Services and Ingresses
/// give its workloads their path's sleep, in the report and in `--fix`.
#[test]
fn the_manifest_sets_own_services_and_ingresses_give_the_path() {
    let release = r#"
apiVersion: v1
kind: Service
metadata:
  name: web
  annotations:
    service.beta.kubernetes.io/aws-load-balancer-type: external
    service.beta.kubernetes.io/aws-load-balancer-nlb-target-type: ip
spec: {type: LoadBalancer, selector: {app: web}, ports: [{port: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: api}
spec: {selector: {app: api}, ports: [{port: 80}]}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: shop, annotations: {alb.ingress.kubernetes.io/target-type: ip}}
spec:
  ingressClassName: alb
  rules: [{http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: api, port: {number: 80}}}}]}}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: web:1}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: api}
spec:
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api}}
    spec: {containers: [{name: api, image: api:1}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: worker}
spec:
  selector: {matchLabels: {app: worker}}
  template:
    metadata: {labels: {app: worker}}
    spec: {containers: [{name: worker, image: worker:1}]}
"#;
    let out = audit(&["-f", "-", "-o", "json"], Some(release));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let prestop = |name: &str| {
        let entry = report["workloads"]
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["name"] == name)
            .unwrap();
        let change = entry["changes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["kind"] == "prestop")
            .unwrap();
        (
            change["seconds"].as_u64().unwrap(),
            change["why"].as_str().map(str::to_owned),
        )
    };
    assert_eq!(
        prestop("web"),
        (125, Some("Service web is an AWS NLB target (ip)".into()))
    );
    assert_eq!(
        prestop("api"),
        (
            20,
            Some("Service api is an AWS ALB target (ip) of Ingress shop".into())
        )
    );
    // Nothing in the set selects the worker: the default (Services often come later).
    assert_eq!(prestop("worker"), (5, None));

    let fixed = audit(&["-f", "-", "--fix"], Some(release));
    let docs: Vec<serde_json::Value> = stdout(&fixed)
        .split("\n---\n")
        .filter_map(|d| serde_yaml_ng::from_str(d).ok())
        .collect();
    let web = docs
        .iter()
        .find(|d| d["kind"] == "Deployment" && d["metadata"]["name"] == "web")
        .unwrap();
    let spec = &web["spec"]["template"]["spec"];
    assert_eq!(
        spec["containers"][0]["lifecycle"]["preStop"]["sleep"]["seconds"],
        125
    );
    assert_eq!(spec["terminationGracePeriodSeconds"], 150);
}
