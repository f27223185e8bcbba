//! The engine with image facts (PID 1 from the image): shell-form CMD, entrypoint scripts,
//! inits, stop signals, unknown images, and the certain-only rewrite, table-driven.

// A failed setup is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use zerodrop_core::engine::image::{ImageConfig, ImageFacts, Images, Script, Shell};
use zerodrop_core::engine::{Capabilities, Engine, Facts, Workload};
use zerodrop_core::findings::Code;
use zerodrop_core::policy::{ClusterPolicy, Layer};

const IMAGE: &str = "registry.test/shop/web:1";

fn config(entrypoint: Option<&[&str]>, cmd: Option<&[&str]>, shell: Shell) -> ImageConfig {
    let own = |v: Option<&[&str]>| v.map(|v| v.iter().map(|s| s.to_string()).collect());
    ImageConfig {
        digest: "sha256:4d2a0c5e1b7f9a3c6e8d0b2f4a6c8e0d1b3f5a7c9e1d3b5f7a9c1e3d5b7f9a1c".into(),
        entrypoint: own(entrypoint),
        cmd: own(cmd),
        stop_signal: None,
        shell,
        script: None,
        certain: true,
    }
}

fn pod(annotations: Value, container: Value) -> Value {
    let mut c = json!({ "name": "web", "image": IMAGE, "readinessProbe": { "httpGet": { "path": "/", "port": 80 } } });
    if let (Some(c), Some(extra)) = (c.as_object_mut(), container.as_object()) {
        c.extend(extra.clone());
    }
    json!({ "metadata": { "name": "p", "annotations": annotations }, "spec": { "containers": [c] } })
}

/// Evaluates, applies, re-evaluates (idempotence); the codes found and the patched container.
fn run(obj: &Value, facts: ImageFacts) -> (Vec<Code>, Value, String) {
    let engine = Engine::new(ClusterPolicy::default(), Capabilities::LATEST);
    let images: Images = [(IMAGE.to_owned(), facts)].into();
    let ns = Layer::for_namespace(Some("enforce"), []);
    let facts = Facts {
        images: &images,
        paths: None,
    };
    let d = engine.evaluate_with(obj, Workload::Pod, &ns, facts);
    let mut patched = obj.clone();
    json_patch::patch(&mut patched, &d.patch).unwrap();
    let again = engine.evaluate_with(&patched, Workload::Pod, &ns, facts);
    assert!(
        again.patch.0.is_empty(),
        "second pass changes: {:?}",
        again.patch
    );
    let messages = d
        .findings
        .iter()
        .map(|f| f.message.clone())
        .collect::<Vec<_>>()
        .join(" | ");
    let codes = d
        .findings
        .iter()
        .map(|f| f.code)
        .filter(|c| {
            matches!(
                c,
                Code::ShellPid1
                    | Code::ScriptPid1
                    | Code::ImageShellPid1
                    | Code::ImageScriptKeeps
                    | Code::ImageUnknown
            )
        })
        .collect();
    (codes, patched["spec"]["containers"][0].clone(), messages)
}

const SHELL_EXEC: &str = r#"{"zerodrop.dev/shell-exec": "true"}"#;

#[test]
fn shell_form_cmd_in_the_image() {
    let shell_form = |shell| config(None, Some(&["/bin/sh", "-c", "./app --port $PORT"]), shell);
    // dash stays PID 1: warned, and the stop signal named.
    let (codes, _, msg) = run(
        &pod(json!({}), json!({})),
        ImageFacts::Known(shell_form(Shell::Dash)),
    );
    assert_eq!(codes, [Code::ImageShellPid1]);
    assert!(
        msg.contains("SIGTERM") && msg.contains("shell-exec"),
        "{msg}"
    );
    // bash and BusyBox exec a lone command themselves.
    for shell in [Shell::Bash, Shell::Busybox] {
        let (codes, _, _) = run(
            &pod(json!({}), json!({})),
            ImageFacts::Known(shell_form(shell)),
        );
        assert!(codes.is_empty(), "{shell:?}: {codes:?}");
    }
    // With shell-exec and a certain image: command set to the same shell with exec.
    let annotations: Value = serde_json::from_str(SHELL_EXEC).unwrap();
    let (codes, c, _) = run(
        &pod(annotations.clone(), json!({})),
        ImageFacts::Known(shell_form(Shell::Dash)),
    );
    assert!(codes.is_empty(), "{codes:?}");
    assert_eq!(
        c["command"],
        json!(["/bin/sh", "-c", "exec ./app --port $PORT"])
    );
    assert!(c.get("args").is_none());
    // Not certain (a tag whose digest is not known fresh): no rewrite, the finding says why.
    let mut unsure = shell_form(Shell::Dash);
    unsure.certain = false;
    let (codes, c, msg) = run(&pod(annotations, json!({})), ImageFacts::Known(unsure));
    assert_eq!(codes, [Code::ImageShellPid1]);
    assert!(c.get("command").is_none());
    assert!(msg.contains("pin the image"), "{msg}");
    // Several commands cannot be fixed from outside.
    let multi = config(
        None,
        Some(&["/bin/sh", "-c", "./migrate && ./app"]),
        Shell::Bash,
    );
    let (codes, _, msg) = run(&pod(json!({}), json!({})), ImageFacts::Known(multi));
    assert_eq!(codes, [Code::ImageShellPid1]);
    assert!(msg.contains("end the command with exec"), "{msg}");
}

#[test]
fn shell_form_entrypoint_keeps_the_images_cmd() {
    let image = config(
        Some(&["/bin/sh", "-c", "exec_me=1 ./serve"]),
        Some(&["ignored"]),
        Shell::Dash,
    );
    // A leading assignment is not a plain command: warned, not rewritten.
    let (codes, _, _) = run(
        &pod(serde_json::from_str(SHELL_EXEC).unwrap(), json!({})),
        ImageFacts::Known(image),
    );
    assert_eq!(codes, [Code::ImageShellPid1]);
    let image = config(
        Some(&["/bin/sh", "-c", "./serve \"$0\""]),
        Some(&["--verbose"]),
        Shell::Dash,
    );
    let (_, c, _) = run(
        &pod(serde_json::from_str(SHELL_EXEC).unwrap(), json!({})),
        ImageFacts::Known(image),
    );
    assert_eq!(
        c["command"],
        json!(["/bin/sh", "-c", "exec ./serve \"$0\""])
    );
    assert_eq!(
        c["args"],
        json!(["--verbose"]),
        "the Cmd in use moves to args"
    );
}

#[test]
fn the_pods_command_wins_over_the_image() {
    let image = config(None, Some(&["/bin/sh", "-c", "./app"]), Shell::Dash);
    let (codes, _, _) = run(
        &pod(json!({}), json!({ "command": ["/app"] })),
        ImageFacts::Known(image),
    );
    assert!(codes.is_empty(), "{codes:?}");
}

#[test]
fn entrypoint_scripts_are_judged_by_their_text() {
    let mut keeps = config(
        Some(&["/docker-entrypoint.sh"]),
        Some(&["serve"]),
        Shell::Dash,
    );
    keeps.stop_signal = Some("SIGQUIT".into());
    keeps.script = Some((
        "/docker-entrypoint.sh".into(),
        Script::Keeps {
            line: 7,
            text: "nginx -g 'daemon off;'".into(),
        },
    ));
    let (codes, _, msg) = run(&pod(json!({}), json!({})), ImageFacts::Known(keeps.clone()));
    assert_eq!(codes, [Code::ImageScriptKeeps]);
    assert!(msg.contains("line 7") && msg.contains("SIGQUIT"), "{msg}");
    // The pod naming the same script keeps the verdict, and the pod-spec guess (ZD302) goes.
    let (codes, _, _) = run(
        &pod(json!({}), json!({ "command": ["/docker-entrypoint.sh"] })),
        ImageFacts::Known(keeps.clone()),
    );
    assert_eq!(codes, [Code::ImageScriptKeeps]);
    let mut hands = keeps.clone();
    hands.script = Some(("/docker-entrypoint.sh".into(), Script::HandsOver));
    let (codes, _, _) = run(&pod(json!({}), json!({})), ImageFacts::Known(hands));
    assert!(codes.is_empty(), "{codes:?}");
    // tini -g forwards to the group; tini without -g in front of that script does not help.
    let mut grouped = keeps.clone();
    grouped.entrypoint = Some(vec![
        "/tini".into(),
        "-g".into(),
        "--".into(),
        "/docker-entrypoint.sh".into(),
    ]);
    let (codes, _, _) = run(&pod(json!({}), json!({})), ImageFacts::Known(grouped));
    assert!(codes.is_empty(), "{codes:?}");
    let mut child_only = keeps;
    child_only.entrypoint = Some(vec![
        "/tini".into(),
        "--".into(),
        "/docker-entrypoint.sh".into(),
    ]);
    let (codes, _, _) = run(&pod(json!({}), json!({})), ImageFacts::Known(child_only));
    assert_eq!(codes, [Code::ImageScriptKeeps]);
}

#[test]
fn an_image_that_could_not_be_inspected_says_so() {
    let (codes, _, msg) = run(
        &pod(json!({}), json!({})),
        ImageFacts::Unknown("registry answered 429".into()),
    );
    assert_eq!(codes, [Code::ImageUnknown]);
    assert!(msg.contains("429"), "{msg}");
}
