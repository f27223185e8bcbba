//! The workload's pods during one action, on the load's clock: when each old pod's deletion
//! was seen (and its preStop sleep, or under the adaptive drain what its waiter waited), when
//! each new pod turned Ready.

use super::advice::{DrainLine, PodEvents};
use super::clock::unix_ms;
use futures::{AsyncBufReadExt as _, StreamExt as _};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::LogParams;
use kube::runtime::watcher;
use std::collections::BTreeMap;
use zerodrop_core::engine::waiter;

/// What is read of one waiter's log at most: its drain line comes after two or three others.
const WAITER_LOG_BYTES: i64 = 64 * 1024;

pub type Seen = std::sync::Arc<std::sync::Mutex<BTreeMap<String, PodEvents>>>;

/// Records pods' deletions and readiness on the load's clock into `seen`, until aborted.
pub async fn record(api: Api<Pod>, selector: String, started_unix_ms: u64, seen: Seen) {
    let mut existing = std::collections::BTreeSet::new();
    // One log follower per deleted pod with a waiter; dropped (aborted) with this task.
    let mut followers = tokio::task::JoinSet::new();
    let mut stream = watcher(api.clone(), watcher::Config::default().labels(&selector)).boxed();
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
            if has_waiter(&pod) {
                followers.spawn(follow(api.clone(), name.clone(), seen.clone()));
            }
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

fn has_waiter(pod: &Pod) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.init_containers.as_ref())
        .is_some_and(|init| init.iter().any(|c| c.name == waiter::NAME))
}

/// Follows a terminating pod's waiter log for its drain line; the wait it reports is when the
/// app got SIGTERM.
async fn follow(api: Api<Pod>, name: String, seen: Seen) {
    let params = LogParams {
        container: Some(waiter::NAME.to_owned()),
        follow: true,
        limit_bytes: Some(WAITER_LOG_BYTES),
        ..LogParams::default()
    };
    let Ok(reader) = api.log_stream(&name, &params).await else {
        return;
    };
    let mut lines = reader.lines();
    while let Some(Ok(line)) = lines.next().await {
        if let Some(drain) = drain_line(&line) {
            let mut map = seen.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(entry) = map.get_mut(&name) {
                entry.prestop_sleep_ms = drain.waited_ms;
                entry.drain = Some(drain);
            }
            return;
        }
    }
}

/// The waiter's one line per drain (`drain-wait --log-format=json`), or `None` for others.
pub fn drain_line(line: &str) -> Option<DrainLine> {
    #[derive(serde::Deserialize)]
    struct Line {
        message: String,
        #[serde(flatten)]
        drain: DrainLine,
    }
    serde_json::from_str::<Line>(line)
        .ok()
        .filter(|l| l.message == "drain")
        .map(|l| l.drain)
}
