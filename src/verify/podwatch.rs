//! The workload's pods during one action, on the load's clock: when each old pod's deletion
//! was seen (and its preStop sleep), when each new pod turned Ready.

use super::advice::PodEvents;
use super::clock::unix_ms;
use futures::StreamExt as _;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::runtime::watcher;
use std::collections::BTreeMap;

pub type Seen = std::sync::Arc<std::sync::Mutex<BTreeMap<String, PodEvents>>>;

/// Records pods' deletions and readiness on the load's clock into `seen`, until aborted.
pub async fn record(api: Api<Pod>, selector: String, started_unix_ms: u64, seen: Seen) {
    let mut existing = std::collections::BTreeSet::new();
    let mut stream = watcher(api, watcher::Config::default().labels(&selector)).boxed();
    while let Some(Ok(event)) = stream.next().await {
        let now = unix_ms().saturating_sub(started_unix_ms);
        let (pod, initial) = match event {
            watcher::Event::InitApply(p) => (p, true),
            watcher::Event::Apply(p) | watcher::Event::Delete(p) => (p, false),
            _ => continue,
        };
        let Some(name) = pod.metadata.name.clone() else {
            continue;
        };
        if initial {
            existing.insert(name.clone());
        }
        let mut map = seen.lock().unwrap_or_else(|p| p.into_inner());
        let entry = map.entry(name.clone()).or_insert_with(|| PodEvents {
            name: name.clone(),
            ..PodEvents::default()
        });
        if pod.metadata.deletion_timestamp.is_some() && entry.deleted_ms.is_none() {
            entry.deleted_ms = Some(now);
            entry.prestop_sleep_ms = super::observed::prestop_sleep_s(&pod) * 1000;
        }
        let ready = pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
        if ready && !existing.contains(&name) && entry.ready_ms.is_none() {
            entry.ready_ms = Some(now);
        }
    }
}
