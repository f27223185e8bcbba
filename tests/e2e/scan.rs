//! The background scan against the real apiserver and kube-controller-manager: the outage drill
//! shows the escaped pods within one interval (gauge and PolicyReport), a rollout restart under
//! zerodrop brings the gauge back to 0, only the Lease holder scans, and losing the holder
//! moves the scan within the lease duration.

use crate::audit::policy_reports;
use crate::harness::{Zerodrop, client, free_port};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use zerodrop_testkit::cluster::{
    create_deployment, delete_webhooks, deployment, namespace, register, wait_for_webhook, web,
};

/// A scan every second on a Lease of the test's own, held 3 s, over the namespaces of the
/// test's own webhook (`selector`), so tests scanning in parallel never write each other's
/// PolicyReports.
pub fn scan_flags<'a>(lease: &'a str, identity: &'a str, selector: &'a str) -> Vec<&'a str> {
    vec![
        "--scan-namespace-selector",
        selector,
        "--scan-interval",
        "1s",
        "--scan-lease-name",
        lease,
        "--scan-lease-namespace",
        "default",
        "--scan-lease-duration",
        "3s",
        "--scan-identity",
        identity,
    ]
}

pub async fn until<T>(
    what: &str,
    within: Duration,
    mut check: impl AsyncFnMut() -> Option<T>,
) -> T {
    let started = Instant::now();
    loop {
        if let Some(found) = check().await {
            return found;
        }
        assert!(started.elapsed() < within, "{what} not within {within:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn get(c: &kube::Client, path: &str) -> Option<Value> {
    let req = http::Request::get(path).body(Vec::new()).unwrap();
    c.request::<Value>(req).await.ok()
}

/// The namespace's PolicyReport, once written, and its failed `escaped` results.
async fn escaped_results(c: &kube::Client, ns: &str) -> (Value, Vec<Value>) {
    let report = until("the PolicyReport", Duration::from_secs(10), async || {
        get(
            c,
            &format!("/apis/wgpolicyk8s.io/v1alpha2/namespaces/{ns}/policyreports/zerodrop"),
        )
        .await
    })
    .await;
    let escaped = report["results"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["rule"] == "escaped" && r["result"] == "fail")
        .cloned()
        .collect();
    (report, escaped)
}

/// Pods of the namespace that exist and are not being deleted.
async fn live_pods(c: &kube::Client, ns: &str) -> Vec<Value> {
    let list = get(c, &format!("/api/v1/namespaces/{ns}/pods"))
        .await
        .unwrap();
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["metadata"].get("deletionTimestamp").is_none())
        .cloned()
        .collect()
}

#[tokio::test]
async fn the_outage_drill_shows_escaped_pods_and_a_rollout_brings_them_back_to_zero() {
    policy_reports().await;
    let c = client().await;
    let name = "scan-drill";
    let mut zd = Zerodrop::start_with(
        free_port(),
        &scan_flags("scan-drill", "drill", "e2e.zerodrop.dev/webhook=scan-drill"),
    );
    register(&c, name, zd.tls_port, &zd.ca_pem).await;
    zd.wait_ready().await;
    let ns = namespace(&c, name, Some("enforce"), json!({})).await;
    wait_for_webhook(&c, &ns).await;
    until("the Lease", Duration::from_secs(20), async || {
        (zd.metric("zerodrop_scan_leader").await == Some(1.0)).then_some(())
    })
    .await;

    // The outage: the only replica stops (its Lease lapses), a Deployment's pods are created
    // meanwhile and escape (failurePolicy Ignore).
    zd.stop();
    let mut shop = deployment(2, web());
    shop["spec"]["strategy"] = json!({ "type": "RollingUpdate", "rollingUpdate": { "maxSurge": "100%", "maxUnavailable": "100%" } });
    create_deployment(&c, &ns, &shop).await.ok_status();
    let pods = until(
        "2 pods from the controller",
        Duration::from_secs(30),
        async || {
            let pods = live_pods(&c, &ns).await;
            (pods.len() == 2).then_some(pods)
        },
    )
    .await;
    assert!(
        pods.iter()
            .all(|p| p["spec"]["containers"][0].get("lifecycle").is_none())
    );
    tokio::time::sleep(Duration::from_secs(4)).await;

    // Back: the first scan reports them, as created during the outage, within one interval.
    let zd = zd.restart();
    zd.wait_ready().await;
    let series =
        format!(r#"zerodrop_unprotected_pods{{namespace="{ns}",reason="created-during-outage"}}"#);
    let back = Instant::now();
    until(
        "the escaped pods in the gauge",
        Duration::from_secs(20),
        async || (zd.metric(&series).await == Some(2.0)).then_some(()),
    )
    .await;
    println!(
        "escaped pods in the gauge {:?} after the restart",
        back.elapsed()
    );
    // Every metric named to a user (the docs, the chart's alerts and dashboard, the advice
    // and warnings zerodrop prints) is on this replica's /metrics, once it has answered an
    // admission, as any replica in a cluster has.
    wait_for_webhook(&c, &ns).await;
    let text = zd.metrics_text().await.unwrap();
    let exported = crate::named_metrics::exported(&text);
    let named = crate::named_metrics::named();
    assert!(
        named
            .iter()
            .any(|(n, _)| n == "zerodrop_admission_requests_total"),
        "the collection finds the names: {named:?}"
    );
    for (name, whence) in &named {
        assert!(
            exported.contains(name),
            "{name} (named in {whence}) is not exported:\n{text}"
        );
    }
    let (report, escaped) = escaped_results(&c, &ns).await;
    assert_eq!(escaped.len(), 2, "{report}");
    assert!(
        escaped[0]["message"]
            .as_str()
            .unwrap()
            .contains("zerodrop was down"),
        "{report}"
    );

    // A rollout restart under zerodrop (what `kubectl rollout restart` does): new pods carry
    // the changes, the old ones go, the gauge returns to 0.
    let restart = json!({ "spec": { "template": { "metadata": { "annotations": { "kubectl.kubernetes.io/restartedAt": "2026-12-01T00:00:00Z" } } } } });
    let req = http::Request::patch(format!("/apis/apps/v1/namespaces/{ns}/deployments/shop"))
        .header("content-type", "application/strategic-merge-patch+json")
        .body(serde_json::to_vec(&restart).unwrap())
        .unwrap();
    c.request::<Value>(req).await.unwrap();
    until("the gauge back at 0", Duration::from_secs(40), async || {
        (zd.metric(&series).await == Some(0.0)).then_some(())
    })
    .await;
    let pods = live_pods(&c, &ns).await;
    assert!(!pods.is_empty());
    assert!(
        pods.iter()
            .all(|p| p["spec"]["containers"][0]["lifecycle"]["preStop"].is_object()),
        "{pods:?}"
    );
    delete_webhooks(&c, name).await;
}

#[tokio::test]
async fn only_the_lease_holder_scans_and_losing_it_moves_the_scan_within_the_lease_duration() {
    let lease = "scan-handover";
    let a = Zerodrop::start_with(
        free_port(),
        &scan_flags(lease, "a", "e2e.zerodrop.dev/webhook=scan-handover"),
    );
    let b = Zerodrop::start_with(
        free_port(),
        &scan_flags(lease, "b", "e2e.zerodrop.dev/webhook=scan-handover"),
    );
    a.wait_ready().await;
    b.wait_ready().await;
    // (holds the Lease, scans completed) of a replica.
    async fn leader(zd: &Zerodrop) -> Option<(bool, f64)> {
        let leads = zd.metric("zerodrop_scan_leader").await? == 1.0;
        let scans = zd.metric(r#"zerodrop_scans_total{result="success"}"#).await;
        Some((leads, scans.unwrap_or(0.0)))
    }
    let (holder, other) = until("one holder", Duration::from_secs(20), async || {
        let (la, sa) = leader(&a).await?;
        let (lb, sb) = leader(&b).await?;
        match (la, lb) {
            (true, false) if sa >= 2.0 => Some((a_or_b(true), sb)),
            (false, true) if sb >= 2.0 => Some((a_or_b(false), sa)),
            _ => None,
        }
    })
    .await;
    // Scans every second, and the other replica has not scanned at all.
    assert_eq!(other, 0.0, "the replica without the Lease scanned");
    let (mut holder, waiting) = if holder == "a" { (a, b) } else { (b, a) };

    // The holder dies without releasing the Lease: the other takes over within its duration.
    holder.child.kill().unwrap();
    let _ = holder.child.wait();
    let lost = Instant::now();
    until(
        "the other replica scanning",
        Duration::from_secs(10),
        async || {
            let (leads, scans) = leader(&waiting).await?;
            (leads && scans >= 1.0).then_some(())
        },
    )
    .await;
    let took = lost.elapsed();
    println!("scan moved {took:?} after the holder was lost (lease 3 s)");
    // The lease duration, plus the new holder's own renewal period and the first scan.
    assert!(
        took < Duration::from_secs(3) + Duration::from_secs(3),
        "{took:?}"
    );
}

fn a_or_b(a: bool) -> &'static str {
    if a { "a" } else { "b" }
}

/// A pod admitted before its image's verdict was known (the webhook never waits for a registry
/// on /mutate) lacks the shell-exec rewrite; once the webhook has inspected the image, the scan
/// counts that pod as unprotected with its own reason, without calling a registry itself.
#[tokio::test]
async fn a_pod_admitted_before_its_image_was_known_is_counted_unprotected() {
    use zerodrop_testkit::registry::Registry;
    let registry = Registry::start(false);
    let image = registry.push_shell_form("shop/late", "./late");
    let c = client().await;
    let name = "scan-images";
    let mut flags = scan_flags(
        "scan-images",
        "images",
        "e2e.zerodrop.dev/webhook=scan-images",
    );
    flags.extend([
        "--image-inspection=true",
        "--insecure-registry",
        registry.host.as_str(),
    ]);
    let zd = Zerodrop::start_with(free_port(), &flags);
    register(&c, name, zd.tls_port, &zd.ca_pem).await;
    zd.wait_ready().await;
    let ns = namespace(&c, name, Some("enforce"), json!({})).await;
    wait_for_webhook(&c, &ns).await;
    // A bare Pod: no workload admission warmed the cache, so it is admitted without the
    // rewrite while the inspection runs in the background.
    let mut container = web();
    container["image"] = json!(image);
    let sent = json!({ "apiVersion": "v1", "kind": "Pod",
        "metadata": { "name": "late", "annotations": { "zerodrop.dev/shell-exec": "true" } },
        "spec": { "containers": [container] } });
    zerodrop_testkit::cluster::create_pod(&c, &ns, &sent, false)
        .await
        .ok_status();
    let stored = get(&c, &format!("/api/v1/namespaces/{ns}/pods/late"))
        .await
        .unwrap();
    assert!(
        stored["spec"]["containers"][0]["command"].is_null(),
        "{stored}"
    );
    let series =
        format!(r#"zerodrop_unprotected_pods{{namespace="{ns}",reason="image-inspected-later"}}"#);
    until(
        "the late pod in the gauge",
        Duration::from_secs(20),
        async || (zd.metric(&series).await == Some(1.0)).then_some(()),
    )
    .await;
    delete_webhooks(&c, name).await;
}

/// `--admission policy`: the scan judges pods by what the exported policy gives them. Pods the
/// policy mutated (an adaptive one included: it gets the fixed sleep) count as protected; the
/// one it declines (shell-exec) is `declined-by-policy`, with its reason in the PolicyReport.
#[tokio::test]
async fn under_the_policy_the_scan_counts_declined_pods_with_their_reason() {
    let c = client().await;
    if crate::harness::server_minor(&c).await < zerodrop_core::export::MIN_MINOR {
        return; // MAP v1 is not served
    }
    policy_reports().await;
    let name = "scan-policy";
    let mode_label = "e2e.zerodrop.dev/scan-policy";
    let options = zerodrop_core::export::Options {
        name: "zerodrop-scan-policy".into(),
        mode_label: mode_label.into(),
        namespace: "default".into(),
        ..Default::default()
    };
    let cluster = zerodrop_core::policy::ClusterPolicy::default();
    zerodrop_testkit::export::install(&c, &cluster, &options).await;
    let mut flags = scan_flags(name, name, "e2e.zerodrop.dev/webhook=scan-policy");
    flags.extend(["--admission", "policy"]);
    let zd = Zerodrop::start_with(free_port(), &flags);
    zd.wait_ready().await;
    // No webhook selects it (none is registered for `scan-policy`); the policy's binding does.
    let ns = namespace(&c, name, Some("enforce"), json!({})).await;
    zerodrop_testkit::cluster::label(&c, &ns, json!({ mode_label: "enforce" })).await;
    zerodrop_testkit::cluster::wait_for(&c, &ns, Duration::from_secs(60), |p| {
        zerodrop_testkit::cluster::has_prestop(p)
    })
    .await;
    for (pod, annotations) in [
        ("plain", json!({})),
        ("adaptive", json!({ "zerodrop.dev/drain": "adaptive" })),
        ("shell", json!({ "zerodrop.dev/shell-exec": "true" })),
    ] {
        let sent = zerodrop_testkit::cluster::pod(pod, annotations, json!([web()]));
        zerodrop_testkit::cluster::create_pod(&c, &ns, &sent, false)
            .await
            .ok_status();
    }
    let series = |reason: &str| {
        format!(r#"zerodrop_unprotected_pods{{namespace="{ns}",reason="{reason}"}}"#)
    };
    until(
        "the declined pod in the gauge",
        Duration::from_secs(20),
        async || (zd.metric(&series("declined-by-policy")).await == Some(1.0)).then_some(()),
    )
    .await;
    let text = zd.metrics_text().await.unwrap();
    let unprotected: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("zerodrop_unprotected_pods{") && l.contains(&ns))
        .collect();
    assert_eq!(
        unprotected,
        [format!("{} 1", series("declined-by-policy"))],
        "{text}"
    );
    let (report, escaped) = escaped_results(&c, &ns).await;
    assert_eq!(escaped.len(), 1, "{report}");
    let message = escaped[0]["message"].as_str().unwrap();
    assert!(
        message.contains("MutatingAdmissionPolicy") && message.contains("shell-exec"),
        "{report}"
    );
}
