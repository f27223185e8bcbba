//! `zerodrop policy export`: the policy as a MutatingAdmissionPolicy, binding and parameters.

use clap::{Args, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Write the policy as a MutatingAdmissionPolicy, its binding and its parameters (a
    /// ConfigMap holding the config's cluster layer; YAML, on stdout), from the same config
    /// file `serve` takes: what CEL can decide from the pod alone, in the apiserver,
    /// with no webhook (Kubernetes 1.36+). docs/no-webhook.md says what stays the webhook's.
    Export(PolicyExportArgs),
}

#[derive(Debug, Args)]
pub struct PolicyExportArgs {
    /// Cluster policy defaults (YAML), as `serve --config`.
    #[arg(long, env = "ZERODROP_CONFIG")]
    pub config: Option<PathBuf>,
    /// The objects' name.
    #[arg(long, env = "ZERODROP_POLICY_NAME", default_value_t = zerodrop_core::export::Options::default().name)]
    pub name: String,
    /// The namespace label whose value (enforce, audit) opts a namespace in and gives its mode.
    #[arg(long, env = "ZERODROP_MODE_LABEL", default_value = zerodrop_core::policy::MODE_LABEL)]
    pub mode_label: String,
    /// Namespaces the binding never selects (repeat, or comma-separated).
    #[arg(
        long = "exclude-namespace",
        env = "ZERODROP_EXCLUDE_NAMESPACES",
        value_delimiter = ',',
        default_values_t = zerodrop_core::export::Options::default().excluded_namespaces
    )]
    pub exclude_namespaces: Vec<String>,
    /// Namespace of the parameters' ConfigMap (the cluster layer of the config); it must exist.
    #[arg(long, env = "ZERODROP_POLICY_NAMESPACE", default_value_t = zerodrop_core::export::Options::default().namespace)]
    pub namespace: String,
}
