//! The policy as a MutatingAdmissionPolicy (admissionregistration.k8s.io/v1, GA in 1.36): the
//! engine's decision for the pods CEL can decide from the pod alone, the fixed sleep where the
//! webhook would add the adaptive drain's waiter, declined for the rest (declines.rs); the
//! cluster config is its parameters (params.rs). Pure: `zerodrop policy export` writes them.

mod cel;
pub mod declines;
mod ledger;
pub mod params;
mod variables;

pub use declines::{Decline, declined, sleeping};

use crate::policy::{ClusterPolicy, MODE_LABEL};
use serde_json::{Value, json};

/// The first Kubernetes minor that serves MutatingAdmissionPolicy v1.
pub const MIN_MINOR: u32 = 36;

/// What the binding selects, the objects' name, and where the parameters live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub name: String,
    /// The namespace label whose value is the mode (`enforce`, `audit`).
    pub mode_label: String,
    /// Namespaces never selected (zerodrop's own, kube-system).
    pub excluded_namespaces: Vec<String>,
    /// The namespace of the parameters' ConfigMap.
    pub namespace: String,
}

impl Options {
    /// The parameters' ConfigMap: `<name>-policy` (the chart's own ConfigMap is `<name>`).
    pub fn parameters_name(&self) -> String {
        format!("{}-policy", self.name)
    }
}

impl Default for Options {
    fn default() -> Self {
        Options {
            name: "zerodrop".into(),
            mode_label: MODE_LABEL.into(),
            excluded_namespaces: vec!["zerodrop-system".into(), "kube-system".into()],
            namespace: "zerodrop-system".into(),
        }
    }
}

/// The parameters' ConfigMap, the MutatingAdmissionPolicy and its binding, in the order they
/// can be applied.
pub fn objects(cluster: &ClusterPolicy, options: &Options) -> [Value; 3] {
    [
        parameters(cluster, options),
        policy(options),
        binding(options),
    ]
}

/// The cluster layer (params.rs) as the ConfigMap the binding names.
pub fn parameters(cluster: &ClusterPolicy, options: &Options) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": { "name": options.parameters_name(), "namespace": options.namespace },
        "data": params::data(cluster)
    })
}

/// The policy: the same for every config (the chart ships it as a file).
pub fn policy(options: &Options) -> Value {
    let variables: Vec<Value> = variables::all(&options.mode_label)
        .into_iter()
        .map(|(name, expression)| json!({ "name": name, "expression": expression }))
        .collect();
    json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingAdmissionPolicy",
        "metadata": { "name": options.name },
        "spec": {
            "paramKind": { "apiVersion": "v1", "kind": "ConfigMap" },
            // An error leaves the pod as it came, as the webhook's failurePolicy does.
            "failurePolicy": "Ignore",
            // Another mutation may add a container after this one; the policy then runs again.
            "reinvocationPolicy": "IfNeeded",
            "matchConstraints": {
                "resourceRules": [{
                    "apiGroups": [""],
                    "apiVersions": ["v1"],
                    "operations": ["CREATE"],
                    "resources": ["pods"]
                }]
            },
            "variables": variables,
            "mutations": [{
                "patchType": "JSONPatch",
                "jsonPatch": { "expression": patch() }
            }]
        }
    })
}

/// The binding: the opted-in namespaces, and the parameters. Without its ConfigMap the
/// apiserver skips the policy (Allow) rather than deny every pod (Deny).
pub fn binding(options: &Options) -> Value {
    json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingAdmissionPolicyBinding",
        "metadata": { "name": options.name },
        "spec": {
            "policyName": options.name,
            "paramRef": {
                "name": options.parameters_name(),
                "namespace": options.namespace,
                "parameterNotFoundAction": "Allow"
            },
            "matchResources": {
                "namespaceSelector": {
                    "matchExpressions": [
                        { "key": options.mode_label, "operator": "In", "values": ["enforce", "audit"] },
                        {
                            "key": "kubernetes.io/metadata.name",
                            "operator": "NotIn",
                            "values": options.excluded_namespaces
                        }
                    ]
                }
            }
        }
    })
}

/// The JSON patch: per planned container its preStop and readiness probe, then the grace
/// period, then the ledger; nothing for a skipped or declined pod.
fn patch() -> String {
    let at = "'/spec/containers/' + string(x.i)";
    let hook = "(x.p.action == 'exec' ? dyn({'exec': {'command': ['sleep', string(x.seconds)]}}) \
                : dyn({'sleep': {'seconds': x.seconds}}))";
    format!(
        "variables.skipped || variables.declined ? [] \
         : variables.changed.map(x, \
             (x.seconds > 0 \
               ? [x.p.lifecycle \
                   ? JSONPatch{{op: 'add', path: {at} + '/lifecycle/preStop', value: {hook}}} \
                   : JSONPatch{{op: 'add', path: {at} + '/lifecycle', value: {{'preStop': {hook}}}}}] \
               : []) \
             + (x.p.probe.kind == 'upgrade' \
               ? [JSONPatch{{op: 'remove', path: {at} + '/readinessProbe/tcpSocket'}}, \
                  JSONPatch{{op: 'add', path: {at} + '/readinessProbe/httpGet', value: x.p.probe.value}}] \
               : x.p.probe.kind == 'add' \
               ? [JSONPatch{{op: 'add', path: {at} + '/readinessProbe', value: x.p.probe.value}}] \
               : [])).flatten() \
           + (variables.raise \
               ? [JSONPatch{{op: 'add', path: '/spec/terminationGracePeriodSeconds', value: variables.target}}] \
               : []) \
           + (variables.ledger == '' ? [] \
               : has(object.metadata.annotations) \
               ? [JSONPatch{{op: 'add', path: '/metadata/annotations/' + jsonpatch.escapeKey('{key}'), \
                   value: variables.ledger}}] \
               : [JSONPatch{{op: 'add', path: '/metadata/annotations', value: {{'{key}': variables.ledger}}}}])",
        key = crate::policy::LEDGER_ANNOTATION,
    )
}
