//! The background scan: the Lease holder audits every opted-in namespace each interval with the
//! webhook's engine, exports the pods enforce would still change, and keeps PolicyReports.

use crate::audit::cluster::{self, Cause, Facts};
use crate::audit::policy_report;
use crate::cluster::lease::LeaseConfig;
use crate::metrics::{Metrics, ResultLabels, UnprotectedLabels};
use kube::Client;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;
use zerodrop_core::engine::Engine;
use zerodrop_core::policy::{MODE_LABEL, Mode};

#[derive(Clone)]
pub struct ScanConfig {
    pub interval: Duration,
    pub lease: LeaseConfig,
    /// Only namespaces this label selector matches too (e.g. one installation's share).
    pub namespace_selector: Option<String>,
    /// The webhook's image facts (cached verdicts only), when image inspection is on.
    pub images: Option<Arc<dyn zerodrop_core::admission::ImageLookup>>,
    /// The webhook's traffic path index (`path-changed`), when it runs one.
    pub paths: Option<Arc<dyn zerodrop_core::admission::PathLookup>>,
    /// The exported policy mutates pods, not the webhook (Facts::policy).
    pub policy: bool,
}

/// What one scan found: unprotected pods by namespace and cause, over the namespaces scanned.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Found {
    pub scanned: BTreeSet<String>,
    pub unprotected: BTreeMap<(String, Cause), i64>,
}

/// Runs for the life of the process: competes for the Lease, scans while holding it.
pub async fn run(client: Client, engine: Engine, cfg: ScanConfig, metrics: Arc<Metrics>) {
    // Before competing: was nobody running? (The first replica back after an outage sees it.)
    if let Err(e) = cfg.lease.record_outage(&client).await {
        tracing::warn!(error = %e, "could not read or record the scan Lease's outage windows");
    }
    let mut delay = Duration::from_secs(1);
    let mut leader = loop {
        match cfg.lease.leadership(&client).await {
            Ok(receiver) => break receiver,
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?delay, "cannot compete for the scan Lease; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(30));
            }
        }
    };
    let mut exported = Found::default();
    loop {
        if !*leader.borrow_and_update() {
            metrics.scan_leader.set(0);
            // Only the holder reports: a replica that lost the Lease must not keep stale values.
            metrics.unprotected_pods.clear();
            exported = Found::default();
            if leader.changed().await.is_err() {
                return;
            }
            continue;
        }
        metrics.scan_leader.set(1);
        let scanned = tokio::select! {
            result = scan(&client, &engine, &cfg) => Some(result),
            _ = leader.changed() => None,
        };
        match scanned {
            Some(Ok(found)) => {
                let unprotected: i64 = found.unprotected.values().sum();
                tracing::info!(namespaces = found.scanned.len(), unprotected, "scan done");
                exported = export(&metrics, &exported, found);
                metrics
                    .scans
                    .get_or_create(&ResultLabels { result: "success" })
                    .inc();
                metrics
                    .scan_last_success
                    .set(k8s_openapi::jiff::Timestamp::now().as_second());
            }
            Some(Err(e)) => {
                tracing::warn!(error = %e, "scan failed; keeping the last values until the next one");
                metrics
                    .scans
                    .get_or_create(&ResultLabels { result: "failure" })
                    .inc();
            }
            None => continue,
        }
        tokio::select! {
            () = tokio::time::sleep(cfg.interval) => {}
            _ = leader.changed() => {}
        }
    }
}

/// One pass over the opted-in namespaces (one at a time, so memory stays that of the largest).
async fn scan(client: &Client, engine: &Engine, cfg: &ScanConfig) -> Result<Found, kube::Error> {
    // What the webhook already knows of images, and no more: the scan calls no registry
    // (that would be every image of every opted-in namespace, each interval).
    let facts = Facts {
        outages: cfg.lease.outages(client).await?,
        images: cfg.images.clone(),
        inspect_misses: false,
        paths: cfg.paths.clone(),
        policy: cfg.policy,
    };
    let reports = policy_report::installed(client).await;
    let mut found = Found::default();
    // Opted-in namespaces carry the mode label: only those are listed.
    let selector = match &cfg.namespace_selector {
        Some(extra) => format!("{MODE_LABEL},{extra}"),
        None => MODE_LABEL.to_owned(),
    };
    for scope in cluster::scopes(client, None, Some(&selector)).await? {
        // Opted in: the label says enforce or audit. Others are nobody's business here.
        if scope.label.is_none() || scope.layer.all.mode == Some(Mode::Off) {
            continue;
        }
        let report = cluster::audit_namespace(client, engine, &scope, &facts).await?;
        for pod in &report.drift {
            *found
                .unprotected
                .entry((scope.name.clone(), pod.cause))
                .or_default() += 1;
        }
        if reports && let Err(e) = policy_report::write(client, &report).await {
            tracing::warn!(namespace = %scope.name, error = %e, "could not write the PolicyReport");
        }
        found.scanned.insert(scope.name);
    }
    Ok(found)
}

/// Sets the gauge and returns what it now shows: a series once exported stays (at 0 when the
/// pods are gone) while its namespace is scanned, so "back to zero" is visible; namespaces no
/// longer scanned go.
fn export(metrics: &Metrics, shown: &Found, now: Found) -> Found {
    let labels = |(namespace, cause): &(String, Cause)| UnprotectedLabels {
        namespace: namespace.clone(),
        reason: cause.as_str(),
    };
    let mut next = now;
    for key in shown.unprotected.keys() {
        if !next.scanned.contains(&key.0) {
            metrics.unprotected_pods.remove(&labels(key));
        } else {
            next.unprotected.entry(key.clone()).or_insert(0);
        }
    }
    for (key, count) in &next.unprotected {
        metrics
            .unprotected_pods
            .get_or_create(&labels(key))
            .set(*count);
    }
    next
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_series_goes_to_zero_then_leaves_with_its_namespace() {
        let metrics = Metrics::new();
        let shop = || ("shop".to_owned(), Cause::NotMutated);
        let found = Found {
            scanned: ["shop".to_owned()].into(),
            unprotected: [(shop(), 3)].into(),
        };
        let shown = export(&metrics, &Found::default(), found);
        let line = r#"zerodrop_unprotected_pods{namespace="shop",reason="not-mutated"}"#;
        assert!(metrics.encode().contains(&format!("{line} 3")));
        let fixed = || Found {
            scanned: ["shop".to_owned()].into(),
            unprotected: BTreeMap::new(),
        };
        let shown = export(&metrics, &shown, fixed());
        assert!(metrics.encode().contains(&format!("{line} 0")));
        // Still shown at 0 on the scan after that, and gone with its namespace.
        let shown = export(&metrics, &shown, fixed());
        assert!(metrics.encode().contains(&format!("{line} 0")));
        export(&metrics, &shown, Found::default());
        assert!(!metrics.encode().contains(line));
    }
}
