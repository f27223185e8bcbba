//! The load pod `zerodrop verify` runs in the namespace: `zerodrop load` sending to the
//! Service's cluster IP (the cluster's real path), its progress followed from its log. It ends
//! itself (activeDeadlineSeconds) if verify is gone, and a later verify deletes what is left.

use super::clock::unix_ms;
use super::load::Method;
use super::options::VerifyError;
use futures::{AsyncBufReadExt as _, StreamExt as _};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, ListParams, LogParams, PostParams};
use kube::{Api, Client};
use serde::Deserialize;
use serde_json::json;
use std::collections::BTreeMap;
use tokio::sync::mpsc;

/// Every object verify creates carries this label (and its run's id).
pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by=zerodrop-verify";
pub const RUN_LABEL: &str = "zerodrop.dev/verify-run";

/// What the load sends, as `zerodrop load` flags.
#[derive(Debug, Clone)]
pub struct LoadSpec {
    pub target: String,
    pub path: String,
    pub method: Method,
    pub rate: u32,
    pub keepalive: bool,
    pub connections: u16,
    pub timeout_ms: u64,
    pub image: String,
    /// The pod's own bound: it stops by itself after this long.
    pub deadline_s: i64,
}

/// One failure as the load pod reported it.
#[derive(Debug, Clone, Deserialize)]
pub struct Seen {
    pub at_ms: u64,
    pub kind: String,
    #[serde(default)]
    pub status: Option<u16>,
    #[serde(default)]
    pub reused: bool,
}

impl Seen {
    /// `status-503`, or the kind.
    pub fn class(&self) -> String {
        self.status
            .map_or_else(|| self.kind.clone(), |c| format!("status-{c}"))
    }
}

/// A progress line of the load pod.
#[derive(Debug, Clone, Deserialize)]
pub struct Progress {
    pub started_unix_ms: u64,
    pub at_ms: u64,
    pub sent: u64,
    pub failed: u64,
    /// Every failure so far by class (an older load image sends none).
    #[serde(default)]
    pub by_kind: BTreeMap<String, u64>,
    #[serde(default)]
    pub unreported: u64,
    pub failures: Vec<Seen>,
}

#[derive(Deserialize)]
struct Line {
    progress: Progress,
}

pub fn manifest(name: &str, run: &str, spec: &LoadSpec) -> Pod {
    let method = match spec.method {
        Method::Get => "get",
        Method::Post => "post",
    };
    let (label, value) = MANAGED_BY.split_once('=').unwrap_or_default();
    let pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {label: value, RUN_LABEL: run}},
        "spec": {
            "restartPolicy": "Never",
            "activeDeadlineSeconds": spec.deadline_s,
            "terminationGracePeriodSeconds": 1,
            "automountServiceAccountToken": false,
            "enableServiceLinks": false,
            "containers": [{
                "name": "load", "image": spec.image,
                "args": ["load", "--target", spec.target, "--path", spec.path, "--method", method,
                         "--rate", spec.rate.to_string(), format!("--keepalive={}", spec.keepalive),
                         "--connections", spec.connections.to_string(),
                         "--timeout", format!("{}ms", spec.timeout_ms), "--report-every", "1s"],
                "resources": {"requests": {"cpu": "50m", "memory": "32Mi"}, "limits": {"memory": "128Mi"}},
                "securityContext": {"runAsNonRoot": true, "runAsUser": 65532,
                                    "allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true,
                                    "capabilities": {"drop": ["ALL"]}}
            }]
        }
    });
    serde_json::from_value(pod).unwrap_or_default()
}

pub async fn create(client: &Client, ns: &str, pod: &Pod) -> kube::Result<()> {
    Api::<Pod>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), pod)
        .await
        .map(|_| ())
}

/// Waits until the pod runs (its image pulled, its container started); the phase it ended in
/// otherwise.
pub async fn running(
    client: &Client,
    ns: &str,
    name: &str,
    limit: std::time::Duration,
) -> kube::Result<Result<(), String>> {
    let api = Api::<Pod>::namespaced(client.clone(), ns);
    let deadline = tokio::time::Instant::now() + limit;
    let mut last = String::from("not created");
    while tokio::time::Instant::now() < deadline {
        if let Some(p) = api.get_opt(name).await? {
            let status = p.status.unwrap_or_default();
            let phase = status.phase.unwrap_or_default();
            if phase == "Running" {
                return Ok(Ok(()));
            }
            let waiting = status
                .container_statuses
                .unwrap_or_default()
                .into_iter()
                .filter_map(|c| c.state?.waiting)
                .map(|w| {
                    format!(
                        "{}: {}",
                        w.reason.unwrap_or_default(),
                        w.message.unwrap_or_default()
                    )
                })
                .next();
            last = waiting.unwrap_or(phase);
            if last == "Failed" || last == "Succeeded" {
                break;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    Ok(Err(last))
}

/// Follows the pod's log; each progress line goes to `tx` until the log ends or `tx` closes.
pub async fn follow(client: Client, ns: String, name: String, tx: mpsc::Sender<Progress>) {
    let api = Api::<Pod>::namespaced(client, &ns);
    let params = LogParams {
        follow: true,
        ..LogParams::default()
    };
    let Ok(reader) = api.log_stream(&name, &params).await else {
        return;
    };
    let mut lines = reader.lines();
    while let Some(Ok(line)) = lines.next().await {
        if let Ok(Line { progress }) = serde_json::from_str::<Line>(&line)
            && tx.send(progress).await.is_err()
        {
            return;
        }
    }
}

/// Deletes the pods of this run (or, with `None`, every verify pod that has ended: what a
/// verify that lost its connection left behind).
pub async fn delete(client: &Client, ns: &str, run: Option<&str>) -> kube::Result<usize> {
    let api = Api::<Pod>::namespaced(client.clone(), ns);
    let selector = match run {
        Some(id) => format!("{MANAGED_BY},{RUN_LABEL}={id}"),
        None => MANAGED_BY.to_owned(),
    };
    let pods = api.list(&ListParams::default().labels(&selector)).await?;
    let mut n = 0;
    for p in pods {
        let ended = matches!(
            p.status.as_ref().and_then(|s| s.phase.as_deref()),
            Some("Failed" | "Succeeded")
        );
        if run.is_none() && !ended {
            continue;
        }
        if let Some(name) = p.metadata.name {
            let dp = DeleteParams {
                grace_period_seconds: Some(0),
                ..DeleteParams::default()
            };
            match api.delete(&name, &dp).await {
                Ok(_) => n += 1,
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(n)
}

/// The load's counts and failures so far, fed by its progress lines.
#[derive(Default)]
pub struct Tally {
    pub started_unix_ms: u64,
    pub at_ms: u64,
    pub sent: u64,
    pub failed: u64,
    pub by_kind: BTreeMap<String, u64>,
    pub failures: Vec<Seen>,
}

impl Tally {
    pub fn add(&mut self, p: Progress) {
        self.started_unix_ms = p.started_unix_ms;
        self.at_ms = p.at_ms;
        self.sent = p.sent;
        self.failed = p.failed;
        if p.by_kind.is_empty() {
            // An older load: only its listed failures can be counted.
            for f in &p.failures {
                *self.by_kind.entry(f.class()).or_default() += 1;
            }
        } else {
            self.by_kind = p.by_kind;
        }
        self.failures.extend(p.failures);
    }

    /// Failures the app answered (a non-2xx status), so far.
    pub fn answered(&self) -> u64 {
        self.by_kind
            .iter()
            .filter(|(k, _)| k.starts_with("status-"))
            .map(|(_, n)| n)
            .sum()
    }

    /// Now, on the load's clock.
    pub fn clock_ms(&self) -> u64 {
        unix_ms().saturating_sub(self.started_unix_ms)
    }

    /// Consumes progress lines until `done` holds.
    pub async fn until(
        &mut self,
        rx: &mut mpsc::Receiver<Progress>,
        done: impl Fn(&Tally) -> bool,
    ) -> Result<(), VerifyError> {
        while !done(self) {
            match tokio::time::timeout(std::time::Duration::from_secs(30), rx.recv()).await {
                Ok(Some(p)) => self.add(p),
                _ => {
                    return Err(VerifyError::Cannot(
                        "the load pod stopped reporting (its log ended or stalled)".into(),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Counts by class: `status-503 4, reset 1`.
pub fn classes(counts: &BTreeMap<String, u64>) -> String {
    counts
        .iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}
