//! What differs between Kubernetes releases, shown against the real apiserver the suite runs on
//! (`scripts/test.sh` runs these on every supported release): the version zerodrop detects,
//! the exec fallback it uses below 1.30, and `sleep: 0`, which zerodrop never emits because
//! servers before 1.33 refuse it.

use crate::harness::{Zerodrop, client, free_port, log_line, server_minor};
use crate::{SHARED, shared};
use serde_json::{Value, json};
use zerodrop_testkit::cluster::{
    create_pod, delete_webhooks, get_pod, namespace, pod, register, wait_for_webhook, web,
};

/// The `capabilities` line zerodrop logs once it has asked the apiserver.
async fn capabilities(zd: &Zerodrop) -> Value {
    let within = std::time::Duration::from_secs(30);
    let line = log_line(&zd.log, within, |l| l.contains("\"capabilities\"")).await;
    serde_json::from_str(&line.unwrap_or_else(|| panic!("no capabilities line: {}", zd.logs())))
        .unwrap()
}

#[tokio::test]
async fn the_version_is_read_from_the_real_apiserver_and_kube_version_overrides_it() {
    let c = client().await;
    let minor = server_minor(&c).await;
    let zd = Zerodrop::start(free_port());
    zd.wait_ready().await;
    let caps = capabilities(&zd).await;
    assert_eq!(caps["detected"], format!("1.{minor}"), "{caps}");
    assert_eq!(caps["kubernetes"], format!("1.{minor}"), "{caps}");
    assert_eq!(
        caps["native_sleep"], true,
        "every supported release has it: {caps}"
    );
}

/// Below 1.30 there is no native sleep (1.29 had it alpha, off by default): zerodrop uses
/// `exec sleep` there and says so. 1.29 cannot be built here (the module proxy serves no
/// k8s.io/legacy-cloud-providers v0.29, which its apiserver imports), so the decision is shown
/// with --kube-version 1.29 against this server: the exec hook is what such a server accepts,
/// and this one accepts it too.
#[tokio::test]
async fn below_1_30_the_prestop_is_exec_sleep_and_the_server_accepts_it() {
    let c = client().await;
    let name = "old-kube";
    let zd = Zerodrop::start_with(free_port(), &["--kube-version", "1.29"]);
    register(&c, name, zd.tls_port, &zd.ca_pem).await;
    zd.wait_ready().await;
    let caps = capabilities(&zd).await;
    assert_eq!(caps["kubernetes"], "1.29", "{caps}");
    assert_eq!(caps["native_sleep"], false, "{caps}");
    let ns = namespace(&c, name, Some("enforce"), json!({})).await;
    wait_for_webhook(&c, &ns).await;
    let r = create_pod(&c, &ns, &pod("web", json!({}), json!([web()])), false).await;
    r.ok_status();
    assert!(
        r.warnings.iter().any(|w| w.contains("no native sleep")),
        "{:?}",
        r.warnings
    );
    let stored = serde_json::to_value(get_pod(&c, &ns, "web").await.unwrap()).unwrap();
    assert_eq!(
        stored["spec"]["containers"][0]["lifecycle"]["preStop"],
        json!({ "exec": { "command": ["sleep", "5"] } }),
        "{stored}"
    );
    delete_webhooks(&c, name).await;
}

/// `preStop: {sleep: {seconds: 0}}` is refused before 1.33 (PodLifecycleSleepActionAllowZero:
/// alpha in 1.32, on from 1.33). zerodrop's per-pod opt-out `prestop-sleep: "0"` therefore
/// means "no hook", never `sleep: 0`: the pod is accepted on every release.
#[tokio::test]
async fn sleep_zero_is_refused_before_1_33_and_zerodrops_zero_means_no_hook_everywhere() {
    shared().await;
    let c = client().await;
    let minor = server_minor(&c).await;
    let plain = namespace(&c, "none", None, json!({})).await;
    let mut container = web();
    container["lifecycle"] = json!({ "preStop": { "sleep": { "seconds": 0 } } });
    let r = create_pod(
        &c,
        &plain,
        &pod("zero", json!({}), json!([container])),
        true,
    )
    .await;
    assert_eq!(
        (200..300).contains(&r.status),
        minor >= 33,
        "1.{minor} answered {} {}",
        r.status,
        r.body
    );
    let ns = namespace(&c, SHARED, Some("enforce"), json!({})).await;
    let sent = pod(
        "web",
        json!({ "zerodrop.dev/prestop-sleep": "0" }),
        json!([web()]),
    );
    create_pod(&c, &ns, &sent, false).await.ok_status();
    let stored = serde_json::to_value(get_pod(&c, &ns, "web").await.unwrap()).unwrap();
    assert!(
        stored["spec"]["containers"][0]["lifecycle"]["preStop"].is_null(),
        "{stored}"
    );
}
