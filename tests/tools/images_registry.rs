//! The image inspector against a real OCI registry (distribution) on loopback, once with TLS and
//! htpasswd Basic auth, once plain HTTP: shell forms with dash, bash and BusyBox, entrypoint
//! scripts with and without exec, tini with and without -g, a multi-arch index whose platforms
//! disagree, STOPSIGNAL, a whiteout, a symlinked entrypoint; then what the engine makes of them.

use serde_json::{Value, json};
use std::collections::HashMap;
use zerodrop::images::credentials::{Keyring, Login};
use zerodrop::images::inspect::LayerBudget;
use zerodrop::images::registry::{RegistryClient, RegistryConfig};
use zerodrop::images::{Inspector, Platform};
use zerodrop_core::engine::image::{ImageFacts, Script, Shell};
use zerodrop_testkit::registry::{Layout, PASSWORD, Platform as Arch, Registry, USER};

const DASH: (&str, &str, bool) = ("bin/sh", "dash", true);

fn dash() -> (String, String, bool) {
    ("bin/sh".into(), "dash".into(), true)
}

fn dash_binary() -> (String, String, bool) {
    ("bin/dash".into(), "\x7fELF".into(), false)
}

fn inspector(registry: &Registry, with_credentials: bool) -> Inspector {
    let mut config = RegistryConfig::default();
    if let Some(ca) = &registry.ca_pem {
        config.extra_roots.push(ca.as_bytes().to_vec());
    } else {
        config.insecure.insert(registry.host.clone());
    }
    if with_credentials {
        config
            .credentials
            .insert(registry.host.clone(), login(USER, PASSWORD));
    }
    Inspector::new(RegistryClient::new(config).unwrap(), LayerBudget::default())
}

fn login(user: &str, password: &str) -> Login {
    Login {
        user: user.into(),
        password: password.into(),
    }
}

fn known(facts: ImageFacts) -> zerodrop_core::engine::image::ImageConfig {
    match facts {
        ImageFacts::Known(c) => c,
        ImageFacts::Unknown(why) => panic!("not inspected: {why}"),
    }
}

/// The images of the issue, pushed to `registry`; their references by name.
fn push_all(registry: &Registry) -> HashMap<&'static str, String> {
    let no_exec = "#!/bin/sh\n./migrate\n/app/server --port 80\n";
    let images: Vec<(&str, Layout)> = vec![
        (
            "dash",
            Layout::single(
                json!({ "Cmd": ["/bin/sh", "-c", "./app"] }),
                vec![vec![DASH, ("bin/dash", "\x7fELF", false)]],
            ),
        ),
        (
            "bash",
            Layout::single(
                json!({ "Cmd": ["/bin/sh", "-c", "./app"] }),
                vec![vec![
                    ("bin/sh", "bash", true),
                    ("bin/bash", "GNU bash", false),
                ]],
            ),
        ),
        (
            "busybox",
            Layout::single(
                json!({ "Cmd": ["/bin/sh", "-c", "./app"] }),
                vec![vec![
                    ("bin/sh", "/bin/busybox", true),
                    ("bin/busybox", "BusyBox v1.36.1", false),
                ]],
            ),
        ),
        (
            "start-no-exec",
            Layout::single(
                json!({ "Entrypoint": ["/start.sh"] }),
                vec![vec![DASH, ("start.sh", no_exec, false)]],
            ),
        ),
        (
            "entrypoint-exec",
            Layout::single(
                json!({ "Entrypoint": ["docker-entrypoint.sh"], "Cmd": ["nginx"], "Env": ["PATH=/usr/local/bin:/usr/bin"], "StopSignal": "SIGQUIT" }),
                vec![vec![
                    DASH,
                    (
                        "usr/local/bin/docker-entrypoint.sh",
                        "#!/bin/sh\nset -e\nexec \"$@\"\n",
                        false,
                    ),
                ]],
            ),
        ),
        (
            "tini-g",
            Layout::single(
                json!({ "Entrypoint": ["/tini", "-g", "--", "/start.sh"] }),
                vec![vec![
                    DASH,
                    ("tini", "\x7fELF", false),
                    ("start.sh", no_exec, false),
                ]],
            ),
        ),
        (
            "tini",
            Layout::single(
                json!({ "Entrypoint": ["/tini", "--", "/start.sh"] }),
                vec![vec![
                    DASH,
                    ("tini", "\x7fELF", false),
                    ("start.sh", no_exec, false),
                ]],
            ),
        ),
        // The script exists in the lower layer and is deleted by the upper one.
        (
            "whiteout",
            Layout::single(
                json!({ "Entrypoint": ["/start.sh"] }),
                vec![
                    vec![DASH, ("start.sh", no_exec, false)],
                    vec![(".wh.start.sh", "", false)],
                ],
            ),
        ),
        (
            "symlinked",
            Layout::single(
                json!({ "Entrypoint": ["/usr/local/bin/start"] }),
                vec![vec![
                    DASH,
                    ("usr/local/bin/start", "../../../opt/app/run.sh", true),
                    ("opt/app/run.sh", no_exec, false),
                ]],
            ),
        ),
        (
            "disagree",
            Layout {
                platforms: vec![
                    Arch {
                        arch: "amd64",
                        config: json!({ "Cmd": ["/app", "--amd64"] }),
                        layers: vec![vec![dash(), dash_binary()]],
                    },
                    Arch {
                        arch: "arm64",
                        config: json!({ "Cmd": ["/bin/sh", "-c", "/app"] }),
                        layers: vec![vec![dash(), dash_binary()]],
                    },
                ],
            },
        ),
    ];
    images
        .into_iter()
        .map(|(name, layout)| (name, registry.push(&format!("test/{name}"), "1", &layout).0))
        .collect()
}

#[tokio::test]
async fn a_tls_registry_with_basic_auth_tells_what_pid1_is() {
    let registry = Registry::start(true);
    let refs = push_all(&registry);
    let inspect = inspector(&registry, true);
    let any = Platform::default();
    let facts = |name: &str| {
        let image = refs[name].clone();
        let inspect = &inspect;
        let any = any.clone();
        async move { inspect.facts(&image, &any).await }
    };
    assert_eq!(known(facts("dash").await).shell, Shell::Dash);
    assert_eq!(known(facts("bash").await).shell, Shell::Bash);
    assert_eq!(known(facts("busybox").await).shell, Shell::Busybox);
    let start = known(facts("start-no-exec").await);
    assert_eq!(start.entrypoint, Some(vec!["/start.sh".into()]));
    match &start.script {
        Some((path, Script::Keeps { line, .. })) => {
            assert_eq!((path.as_str(), *line), ("/start.sh", 3))
        }
        other => panic!("{other:?}"),
    }
    let nginx = known(facts("entrypoint-exec").await);
    assert_eq!(
        nginx.script,
        Some(("docker-entrypoint.sh".into(), Script::HandsOver)),
        "found through the config's PATH"
    );
    assert_eq!(nginx.stop_signal.as_deref(), Some("SIGQUIT"));
    assert!(
        known(facts("whiteout").await).script.is_none(),
        "the whiteout deleted the script"
    );
    match known(facts("symlinked").await).script {
        Some((path, Script::Keeps { .. })) => assert_eq!(path, "/usr/local/bin/start"),
        other => panic!("{other:?}"),
    }
    // The index's linux platforms run different commands: unknown, unless the pod says which.
    match facts("disagree").await {
        ImageFacts::Unknown(why) => assert!(why.contains("disagree"), "{why}"),
        known => panic!("{known:?}"),
    }
    let arm = Platform {
        os: None,
        arch: Some("arm64".into()),
    };
    assert_eq!(
        known(inspect.facts(&refs["disagree"], &arm).await).cmd,
        Some(vec!["/bin/sh".into(), "-c".into(), "/app".into()])
    );
    // Pinned by digest: the same facts, checked against the digest.
    let digest = registry.crane(&["digest", &refs["dash"]]);
    let pinned = format!("{}/test/dash@{digest}", registry.host);
    assert_eq!(known(inspect.facts(&pinned, &any).await).digest, digest);

    // Without the credentials: unauthorized, said as such.
    let anonymous = inspector(&registry, false);
    match anonymous.facts(&refs["dash"], &any).await {
        ImageFacts::Unknown(why) => assert!(why.contains("unauthorized"), "{why}"),
        known => panic!("{known:?}"),
    }
}

#[tokio::test]
async fn a_pods_pull_secret_logins_are_tried_in_order_and_kept_for_its_namespace() {
    let registry = Registry::start(true);
    let layout = Layout::single(
        json!({ "Cmd": ["/bin/sh", "-c", "./web"] }),
        vec![vec![DASH, ("bin/dash", "\x7fELF", false)]],
    );
    let (image, _) = registry.push("private/web", "1", &layout);
    let inspect = inspector(&registry, false);
    let any = Platform::default();
    // A stale login first (a rotated password), then the one that works: as the kubelet does.
    let keyring: Keyring = [(
        registry.host.clone(),
        vec![login(USER, "rotated-away"), login(USER, PASSWORD)],
    )]
    .into();
    let facts = inspect
        .facts_for(&image, &any, Some(("shop", &keyring)))
        .await;
    assert_eq!(known(facts).shell, Shell::Dash);
    assert!(inspect.cached_in(&image, &any, Some("shop")).is_some());
    // What shop's secret read is not anyone else's: without secrets it is still unauthorized.
    assert!(inspect.cached(&image, &any).is_none());
    match inspect
        .facts_for(&image, &any, Some(("other", &Keyring::new())))
        .await
    {
        ImageFacts::Unknown(why) => assert!(why.contains("unauthorized"), "{why}"),
        known => panic!("{known:?}"),
    }
    // Only wrong logins: unauthorized, for that namespace.
    let wrong: Keyring = [(registry.host.clone(), vec![login(USER, "nope")])].into();
    match inspect
        .facts_for(&image, &any, Some(("third", &wrong)))
        .await
    {
        ImageFacts::Unknown(why) => assert!(why.contains("unauthorized"), "{why}"),
        known => panic!("{known:?}"),
    }
}

#[tokio::test]
async fn a_plain_http_registry_only_when_listed_insecure() {
    let registry = Registry::start(false);
    let (image, _) = registry.push(
        "test/plain",
        "1",
        &Layout::single(
            json!({ "Cmd": ["/bin/sh", "-c", "./app"] }),
            vec![vec![DASH, ("bin/dash", "\x7fELF", false)]],
        ),
    );
    let any = Platform::default();
    assert_eq!(
        known(inspector(&registry, false).facts(&image, &any).await).shell,
        Shell::Dash
    );
    // Not listed: spoken to over TLS, which a plain HTTP registry cannot answer.
    let strict = Inspector::new(
        RegistryClient::new(RegistryConfig::default()).unwrap(),
        LayerBudget::default(),
    );
    assert!(matches!(
        strict.facts(&image, &any).await,
        ImageFacts::Unknown(_)
    ));
}

/// What the engine makes of the real images: the pods of a Deployment on each.
#[tokio::test]
async fn the_engine_on_the_real_images() {
    let registry = Registry::start(true);
    let refs = push_all(&registry);
    let inspect = inspector(&registry, true);
    let engine = zerodrop_core::engine::Engine::new(
        Default::default(),
        zerodrop_core::engine::Capabilities::LATEST,
    );
    let ns = zerodrop_core::policy::Layer::for_namespace(Some("enforce"), []);
    let mut codes = HashMap::new();
    for (name, image) in &refs {
        let pod = json!({ "metadata": { "name": "p" }, "spec": { "containers": [{ "name": "app", "image": image, "readinessProbe": { "exec": { "command": ["true"] } } }] } });
        let images = [(
            image.clone(),
            inspect.facts(image, &Platform::default()).await,
        )]
        .into();
        let d = engine.evaluate_with(
            &pod,
            zerodrop_core::engine::Workload::Pod,
            &ns,
            zerodrop_core::engine::Facts {
                images: &images,
                paths: None,
            },
        );
        let found: Vec<&str> = d
            .findings
            .iter()
            .map(|f| f.code.as_str())
            .filter(|c| c.starts_with("ZD30"))
            .collect();
        codes.insert(*name, found.join(","));
    }
    let expected: Value = json!({
        "dash": "ZD303", "bash": "", "busybox": "", "start-no-exec": "ZD304", "entrypoint-exec": "",
        "tini-g": "", "tini": "ZD304", "whiteout": "", "symlinked": "ZD304", "disagree": "ZD305"
    });
    for (name, want) in expected.as_object().unwrap() {
        assert_eq!(
            codes[name.as_str()],
            want.as_str().unwrap(),
            "{name}: {codes:?}"
        );
    }
}

/// `zerodrop audit -f --images` as a person runs it: credentials from a Docker config file,
/// the registry's CA from --registry-ca; the findings name the digest, the command and the line.
#[tokio::test]
async fn audit_with_images_reads_the_registry() {
    use base64::Engine as _;
    let registry = Registry::start(true);
    let refs = push_all(&registry);
    let dir = tempfile::tempdir().unwrap();
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
    let docker = json!({ "auths": { registry.host.clone(): { "auth": auth } } });
    std::fs::write(dir.path().join("config.json"), docker.to_string()).unwrap();
    std::fs::write(
        dir.path().join("ca.pem"),
        registry.ca_pem.as_deref().unwrap(),
    )
    .unwrap();
    let manifest = format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{ name: web, namespace: shop }}\nspec:\n  selector: {{ matchLabels: {{ app: web }} }}\n  template:\n    metadata: {{ labels: {{ app: web }} }}\n    spec:\n      containers:\n        - {{ name: shell, image: \"{}\" }}\n        - {{ name: script, image: \"{}\" }}\n",
        refs["dash"], refs["start-no-exec"]
    );
    std::fs::write(dir.path().join("web.yaml"), manifest).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_zerodrop"))
        .args(["audit", "--images", "-o", "json", "--fail-on", "none", "-f"])
        .arg(dir.path().join("web.yaml"))
        .arg("--registry-config")
        .arg(dir.path().join("config.json"))
        .arg("--registry-ca")
        .arg(dir.path().join("ca.pem"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let findings = report["workloads"][0]["findings"].as_array().unwrap();
    let of = |code: &str| {
        findings
            .iter()
            .find(|f| f["code"] == code)
            .unwrap_or_else(|| panic!("no {code}: {report}"))
    };
    let digest = registry.crane(&["digest", &refs["dash"]]);
    let shell = of("ZD303");
    assert_eq!(shell["container"], "shell");
    let message = shell["message"].as_str().unwrap();
    assert!(
        message.contains(&digest[..15]) && message.contains("/bin/sh (dash)"),
        "{message}"
    );
    let script = of("ZD304");
    assert_eq!(script["container"], "script");
    assert!(
        script["message"].as_str().unwrap().contains("line 3"),
        "{script}"
    );
    // Without --images the registry is not asked and nothing is said about the images.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_zerodrop"))
        .args(["audit", "-o", "json", "--fail-on", "none", "-f"])
        .arg(dir.path().join("web.yaml"))
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(!report.to_string().contains("ZD30"), "{report}");
}
