//! `zerodrop policy export`: the config file's policy as YAML objects on stdout.

use super::setup::load_policy;
use crate::cli::PolicyExportArgs;
use std::io::Write as _;
use zerodrop_core::export::{self, Options};

pub fn policy_export(args: &PolicyExportArgs) -> anyhow::Result<()> {
    let cluster = load_policy(args.config.as_deref())?;
    let options = Options {
        name: args.name.clone(),
        mode_label: args.mode_label.clone(),
        excluded_namespaces: args.exclude_namespaces.clone(),
        namespace: args.namespace.clone(),
    };
    let mut out = String::new();
    out.push_str(&format!(
        "# zerodrop {}: the policy as a MutatingAdmissionPolicy (Kubernetes 1.{}+).\n\
         # Pods it declines (the adaptive drain, shell-exec, ...) keep no protection from it:\n\
         # docs/no-webhook.md.\n",
        env!("CARGO_PKG_VERSION"),
        export::MIN_MINOR
    ));
    for (i, object) in export::objects(&cluster, &options).iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        out.push_str(&serde_yaml_ng::to_string(object)?);
    }
    std::io::stdout().lock().write_all(out.as_bytes())?;
    Ok(())
}
