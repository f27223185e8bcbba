//! The adaptive drain through the real apiserver: a `restricted` PodSecurity namespace accepts
//! the waiter and the preStop call, dry-run answers the same, and a later injector's container
//! (the apiserver reinvokes zerodrop) gets the call and joins the waiter's ports.

use crate::shared_namespace;
use crate::webhook_server::injector;
use serde_json::{Value, json};
use zerodrop_testkit::cluster::{create_pod, delete_webhooks, label, pod, web};

const INJECT_LABEL: &str = "e2e.zerodrop.dev/inject-drain";
/// After zerodrop's configuration by name, so the apiserver calls it later.
const INJECTOR: &str = "zzz-drain-injector";

fn waiters(p: &Value) -> Vec<&Value> {
    p["spec"]["initContainers"]
        .as_array()
        .map(|init| {
            init.iter()
                .filter(|c| c["name"] == "zerodrop-drain")
                .collect()
        })
        .unwrap_or_default()
}

/// A new namespace under `enforce` and `drain: adaptive`, and a client.
async fn adaptive_namespace() -> (kube::Client, String) {
    shared_namespace(Some("enforce"), json!({ "zerodrop.dev/drain": "adaptive" })).await
}

/// What Pod Security Restricted asks of a container.
fn restricted(mut container: Value) -> Value {
    container["securityContext"] = json!({
        "runAsNonRoot": true, "runAsUser": 1000, "allowPrivilegeEscalation": false,
        "capabilities": { "drop": ["ALL"] }, "seccompProfile": { "type": "RuntimeDefault" }
    });
    container
}

#[tokio::test]
async fn a_restricted_namespace_accepts_the_waiter_and_dry_run_answers_the_same() {
    let (c, ns) = adaptive_namespace().await;
    label(
        &c,
        &ns,
        json!({ "pod-security.kubernetes.io/enforce": "restricted" }),
    )
    .await;
    // PodSecurity is enforcing: a pod that is not restricted is refused.
    let loose = create_pod(&c, &ns, &pod("loose", json!({}), json!([web()])), false).await;
    assert_eq!(loose.status, 403, "{}", loose.body);
    assert!(
        loose.body.to_string().contains("restricted"),
        "{}",
        loose.body
    );

    let sent = pod("web", json!({}), json!([restricted(web())]));
    let dry = create_pod(&c, &ns, &sent, true).await;
    dry.ok_status();
    let stored = create_pod(&c, &ns, &sent, false).await;
    stored.ok_status();
    for p in [&dry.body, &stored.body] {
        assert_eq!(
            p["spec"]["containers"][0]["lifecycle"]["preStop"]["httpGet"],
            json!({ "path": "/drain", "port": 9797, "scheme": "HTTP" })
        );
        let w = waiters(p);
        assert_eq!(w.len(), 1, "{p}");
        assert_eq!(w[0]["restartPolicy"], "Always");
        assert!(
            w[0]["args"]
                .as_array()
                .unwrap()
                .contains(&json!("--ports=8080"))
        );
        assert_eq!(p["spec"]["terminationGracePeriodSeconds"], 55);
    }
    // The same waiter either way, but for the ServiceAccount token's volume (a name per pod).
    let without_token = |p: &Value| {
        let mut w = waiters(p)[0].clone();
        w.as_object_mut().unwrap().remove("volumeMounts");
        w
    };
    assert_eq!(without_token(&dry.body), without_token(&stored.body));
}

#[tokio::test]
async fn reinvocation_after_an_injector_keeps_one_waiter_watching_every_port() {
    let (c, ns) = adaptive_namespace().await;
    label(&c, &ns, json!({ INJECT_LABEL: "yes" })).await;
    let container = json!({ "name": "injected", "image": "registry.invalid/proxy:1",
        "ports": [{ "containerPort": 7070 }] });
    let server = injector(&c, INJECTOR, INJECT_LABEL, container).await;
    // The apiserver's webhook configuration cache takes a moment to see the injector.
    let started = std::time::Instant::now();
    let stored = loop {
        let name = format!("web-{}", started.elapsed().as_millis());
        let r = create_pod(&c, &ns, &pod(&name, json!({}), json!([web()])), false).await;
        r.ok_status();
        if r.body["spec"]["containers"].as_array().unwrap().len() == 2 {
            break r.body;
        }
        assert!(started.elapsed().as_secs() < 30, "the injector never ran");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    delete_webhooks(&c, INJECTOR).await;
    server.task.abort();
    let containers = stored["spec"]["containers"].as_array().unwrap();
    for container in containers {
        assert_eq!(
            container["lifecycle"]["preStop"]["httpGet"]["port"], 9797,
            "{container}"
        );
    }
    let w = waiters(&stored);
    assert_eq!(w.len(), 1, "{stored}");
    assert!(
        w[0]["args"]
            .as_array()
            .unwrap()
            .contains(&json!("--ports=7070,8080")),
        "{}",
        w[0]
    );
}
