//! Scope: which pods and containers zerodrop leaves alone, and why.

use super::pod;
use serde::Serialize;
use serde_json::Value;

/// The kind of object whose pod (template) is evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Workload {
    Pod,
    Deployment,
    StatefulSet,
    DaemonSet,
    ReplicaSet,
    ReplicationController,
    Job,
    CronJob,
}

impl Workload {
    /// Where the pod (template) is inside an object of this kind.
    pub fn template_path(self) -> &'static [&'static str] {
        match self {
            Workload::Pod => &[],
            Workload::CronJob => &["spec", "jobTemplate", "spec", "template"],
            _ => &["spec", "template"],
        }
    }

    /// The API group of the kind (`""` is the core group).
    pub fn api_group(self) -> &'static str {
        match self {
            Workload::Pod | Workload::ReplicationController => "",
            Workload::Deployment
            | Workload::StatefulSet
            | Workload::DaemonSet
            | Workload::ReplicaSet => "apps",
            Workload::Job | Workload::CronJob => "batch",
        }
    }

    pub fn from_kind(kind: &str) -> Option<Workload> {
        Some(match kind {
            "Pod" => Workload::Pod,
            "Deployment" => Workload::Deployment,
            "StatefulSet" => Workload::StatefulSet,
            "DaemonSet" => Workload::DaemonSet,
            "ReplicaSet" => Workload::ReplicaSet,
            "ReplicationController" => Workload::ReplicationController,
            "Job" => Workload::Job,
            "CronJob" => Workload::CronJob,
            _ => return None,
        })
    }
}

/// Why a whole pod is out of scope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "reason", content = "detail")]
pub enum Skip {
    ModeOff,
    MirrorPod,
    /// Run-to-completion pods have no rollout to protect.
    JobOwned,
    RestartPolicy(String),
    NoContainers,
}

impl Skip {
    pub fn describe(&self) -> String {
        match self {
            Skip::ModeOff => "mode is off".into(),
            Skip::MirrorPod => "mirror/static pod".into(),
            Skip::JobOwned => "owned by a Job or CronJob (runs to completion)".into(),
            Skip::RestartPolicy(p) => format!("restartPolicy {p} (runs to completion)"),
            Skip::NoContainers => "no containers".into(),
        }
    }
}

pub fn pod_skip(obj: &Value, workload: Workload) -> Option<Skip> {
    if matches!(workload, Workload::Job | Workload::CronJob) {
        return Some(Skip::JobOwned);
    }
    if pod::annotation(obj, "kubernetes.io/config.mirror").is_some() {
        return Some(Skip::MirrorPod);
    }
    let owned_by_job = pod::at(obj, &["metadata", "ownerReferences"])
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|r| pod::get(r, "kind").and_then(Value::as_str) == Some("Job"));
    if owned_by_job {
        return Some(Skip::JobOwned);
    }
    if let Some(p @ ("Never" | "OnFailure")) =
        pod::at(obj, &["spec", "restartPolicy"]).and_then(Value::as_str)
    {
        return Some(Skip::RestartPolicy(p.to_owned()));
    }
    if pod::containers(obj).is_empty() {
        return Some(Skip::NoContainers);
    }
    None
}
