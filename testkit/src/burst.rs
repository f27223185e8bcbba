//! A Deployment's scale-up burst of real pods through kube-controller-manager, measured from
//! the apiserver's audit log (each pod create's latency, Deployment create to last pod): the
//! peers benchmark's fourth measurement.

use anyhow::Context as _;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

async fn pod_count(c: &kube::Client, ns: &str) -> anyhow::Result<usize> {
    let req = http::Request::get(format!(
        "/api/v1/namespaces/{ns}/pods?labelSelector=app%3Dburst"
    ))
    .body(Vec::new())?;
    let list: Value = c.request(req).await?;
    Ok(list["items"].as_array().map_or(0, Vec::len))
}

/// One burst in the namespace of `arm` (its name, its namespace): the per-pod create latencies (µs, from the audit log) and
/// the milliseconds from the Deployment's create to its last pod's.
pub async fn once(
    c: &kube::Client,
    arm: (&str, &str),
    pods: u32,
    audit_log: &str,
) -> anyhow::Result<(Vec<u64>, u64)> {
    let (name, ns) = arm;
    let d = json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": { "name": "burst" },
        "spec": { "replicas": pods, "selector": { "matchLabels": { "app": "burst" } },
            "template": { "metadata": { "labels": { "app": "burst" } }, "spec": { "containers": [crate::cluster::web()] } } }
    });
    let r = crate::cluster::create_deployment(c, ns, &d).await;
    anyhow::ensure!(r.status == 201, "{}: {}", name, r.body);
    let started = Instant::now();
    while pod_count(c, ns).await? < pods as usize {
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(600),
            "{}: burst never completed",
            name
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // Batch mode writes the audit log within a second.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (mut lat, mut first, mut last) = (Vec::new(), None, 0u64);
    for line in std::fs::read_to_string(audit_log)?.lines() {
        let Ok(e) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let dry_run = e["requestURI"]
            .as_str()
            .is_some_and(|u| u.contains("dryRun"));
        if e["objectRef"]["namespace"] != ns
            || e["verb"] != "create"
            || e["stage"] != "ResponseComplete"
            || dry_run
        {
            continue;
        }
        let (Some(at), Some(done)) = (
            micros(&e["requestReceivedTimestamp"]),
            micros(&e["stageTimestamp"]),
        ) else {
            continue;
        };
        match (
            e["objectRef"]["resource"].as_str(),
            e["responseStatus"]["code"].as_u64(),
        ) {
            // A second burst in the namespace: only what follows its own Deployment counts.
            (Some("deployments"), _) => {
                first = Some(at);
                lat.clear();
                last = 0;
            }
            (Some("pods"), Some(201)) if e["objectRef"]["subresource"].is_null() => {
                lat.push(done - at);
                last = last.max(done);
            }
            _ => {}
        }
    }
    let first = first.context("the Deployment's create is not in the audit log")?;
    anyhow::ensure!(
        lat.len() >= pods as usize,
        "{}: {} pod creates in the audit log",
        name,
        lat.len()
    );
    // Pending pods (no node) go at once; wait so the next burst starts on a quiet apiserver.
    let path = format!(
        "/apis/apps/v1/namespaces/{}/deployments/burst?propagationPolicy=Foreground",
        ns
    );
    c.request_text(http::Request::delete(path.clone()).body(Vec::new())?)
        .await?;
    while pod_count(c, ns).await? > 0
        || c.request_text(
            http::Request::get(path.replace("?propagationPolicy=Foreground", ""))
                .body(Vec::new())?,
        )
        .await
        .is_ok()
    {
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Ok((lat, (last - first) / 1000))
}

/// An audit timestamp (RFC 3339) as microseconds since the epoch.
fn micros(v: &Value) -> Option<u64> {
    let at =
        time::OffsetDateTime::parse(v.as_str()?, &time::format_description::well_known::Rfc3339)
            .ok()?;
    u64::try_from(at.unix_timestamp_nanos() / 1000).ok()
}
