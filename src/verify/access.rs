//! What `zerodrop verify` needs to be allowed, asked of the apiserver before it changes anything
//! (SelfSubjectAccessReview), so a missing permission is a clear refusal, not a half-done run.

use super::preflight::{Kind, Target};
use k8s_openapi::api::authorization::v1::SelfSubjectAccessReview;
use kube::api::PostParams;
use kube::{Api, Client};
use serde_json::json;

/// (verb, group, resource, subresource) verify uses in the workload's namespace.
pub fn needed(
    target: &Target,
    scale_down: bool,
) -> Vec<(&'static str, &'static str, &'static str, &'static str)> {
    let workload = match target.kind {
        Kind::Deployment => "deployments",
        Kind::StatefulSet => "statefulsets",
    };
    let mut out = vec![
        ("get", "apps", workload, ""),
        ("patch", "apps", workload, ""),
        // Is zerodrop itself here (never verified)?
        ("list", "apps", "deployments", ""),
        ("list", "", "pods", ""),
        ("watch", "", "pods", ""),
        ("create", "", "pods", ""),
        ("delete", "", "pods", ""),
        ("get", "", "pods", "log"),
        ("list", "", "services", ""),
    ];
    if scale_down {
        out.push(("list", "autoscaling", "horizontalpodautoscalers", ""));
    }
    out
}

/// The needed permissions the caller lacks, as ("verb", "resource[/sub]").
pub async fn denied(
    client: &Client,
    ns: &str,
    target: &Target,
    scale_down: bool,
) -> kube::Result<Vec<(String, String)>> {
    let api = Api::<SelfSubjectAccessReview>::all(client.clone());
    let mut out = Vec::new();
    for (verb, group, resource, sub) in needed(target, scale_down) {
        let review: SelfSubjectAccessReview = serde_json::from_value(json!({
            "apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": {"namespace": ns, "verb": verb, "group": group,
                                            "resource": resource, "subresource": sub}}
        }))
        .unwrap_or_default();
        let answer = api.create(&PostParams::default(), &review).await?;
        if !answer.status.is_some_and(|s| s.allowed) {
            let what = if sub.is_empty() {
                resource.to_owned()
            } else {
                format!("{resource}/{sub}")
            };
            out.push((verb.to_owned(), format!("{what} in {ns}")));
        }
    }
    Ok(out)
}
